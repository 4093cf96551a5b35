// Work typed into an editor and not saved is not lost without a word. While an editor's draft
// differs from what it loaded or last saved (``useUnsavedWarning(dirty)``), closing or reloading
// the tab asks the browser's own question, and leaving for another screen of the console (a menu
// link, a link on the page, the back button) asks the user to confirm first (``useLeaveGuard``,
// once, around the screens). A screen's own replace navigation (a new journey's address after
// its first save) is not leaving, so it is not asked about.
import { useEffect, useLayoutEffect } from "react";
import { useTranslation } from "react-i18next";
import { useBlocker } from "react-router";

/** The editors holding unsaved work now. One guard reads them all: a router keeps only one
 * blocker, and a screen can hold several editors (a form's, and the new form's). */
const unsaved = new Set<symbol>();

export function useUnsavedWarning(dirty: boolean): void {
  // A layout effect: the set is right as soon as the screen shows the change (a "saved" status
  // painted before a passive effect ran would still ask a user who leaves at once)
  useLayoutEffect(() => {
    if (!dirty) return;
    const editor = Symbol("editor");
    const warn = (event: BeforeUnloadEvent) => {
      // Browsers say their own words; both calls are needed for all of them to ask
      event.preventDefault();
      event.returnValue = "";
    };
    unsaved.add(editor);
    window.addEventListener("beforeunload", warn);
    return () => {
      unsaved.delete(editor);
      window.removeEventListener("beforeunload", warn);
    };
  }, [dirty]);
}

export function useLeaveGuard(): void {
  const { t } = useTranslation();
  // Read when the navigation happens (not at the last render), so a save just made counts
  const blocker = useBlocker(
    ({ currentLocation, nextLocation, historyAction }) =>
      unsaved.size > 0 && historyAction !== "REPLACE" && currentLocation.pathname !== nextLocation.pathname,
  );
  useEffect(() => {
    if (blocker.state !== "blocked") return;
    if (window.confirm(t("common.leave_unsaved"))) blocker.proceed();
    else blocker.reset();
  }, [blocker, t]);
}
