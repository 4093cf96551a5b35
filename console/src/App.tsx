import { type ReactNode, Suspense, lazy, useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import {
  NavLink,
  Navigate,
  Outlet,
  Route,
  RouterProvider,
  createHashRouter,
  createRoutesFromElements,
} from "react-router";

import { ApiError, api, describeError, useBusy } from "./api";
import { currentSession, signOut } from "./auth";
import { type Me, MeContext, useMe } from "./me";
import { SignIn } from "./screens/SignIn";
import { Leads } from "./screens/Leads";
import { useLeaveGuard } from "./unsaved";

// Every screen but the first is its own chunk, loaded when it is opened.
const LeadPage = lazy(() => import("./screens/LeadPage"));
const Journeys = lazy(() => import("./screens/Journeys"));
const JourneyCanvas = lazy(() => import("./screens/JourneyCanvas"));
const Templates = lazy(() => import("./screens/Templates"));
const FormsAndSites = lazy(() => import("./screens/FormsAndSites"));
const Settings = lazy(() => import("./screens/Settings"));
const Audit = lazy(() => import("./screens/Audit"));
const Imports = lazy(() => import("./screens/Imports"));
const Reports = lazy(() => import("./screens/Reports"));
const Segments = lazy(() => import("./screens/Segments"));

export function App() {
  const { t } = useTranslation();
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(currentSession() !== null);
  /** The session ended under a signed-in user (the refresh token expired or was revoked): she
   * signs in again over the screen she was on, which stays mounted, hidden, with whatever she
   * had not saved (a journey's draft on the canvas); signed in as someone else, it starts over. */
  const [ended, setEnded] = useState(false);
  /** Why a signed-in user was sent back to the sign-in form (the admin API refused her: an
   * address outside the IP allowlist, say); a 401 is only "signed out" and says nothing. */
  const [refused, setRefused] = useState<string | null>(null);

  const loadMe = useCallback(() => {
    setChecking(true);
    setRefused(null);
    api<Me>("GET", "/admin/me")
      .then((found) => {
        setMe(found);
        setEnded(false);
      })
      .catch((error: unknown) => {
        setMe(null);
        if (!(error instanceof ApiError && error.status === 401)) setRefused(describeError(error));
      })
      .finally(() => setChecking(false));
  }, []);

  useEffect(() => {
    if (currentSession() !== null) loadMe();
    const out = () => setEnded(true);
    window.addEventListener("tsunagu:signed-out", out);
    return () => window.removeEventListener("tsunagu:signed-out", out);
  }, [loadMe]);

  if (checking && me === null) return <p className="loading">{t("common.loading")}</p>;
  if (me === null) return <SignIn onSignedIn={loadMe} refused={refused} />;

  return (
    <MeContext.Provider value={me}>
      {ended && <SignIn onSignedIn={loadMe} refused={refused} ended={me.email ?? ""} />}
      {/* Keyed by the user, so another user signing in here gets none of the last one's work */}
      <div hidden={ended} key={me.email ?? ""}>
        <ConsoleRouter onSignOut={() => (signOut(), setEnded(false), setMe(null))} />
      </div>
    </MeContext.Provider>
  );
}

/** The screens, under the menu. A data router (not ``<HashRouter>``), so that an editor can ask
 * before unsaved work is left for another screen (``useBlocker``, see unsaved.ts). Made once per
 * signed-in user (the element around it is keyed by the user); ``onSignOut`` only calls
 * setters and ``signOut``, so the one it was made with stays right. */
function ConsoleRouter({ onSignOut }: { onSignOut: () => void }) {
  const [router] = useState(() =>
    createHashRouter(
      createRoutesFromElements(
        <Route element={<Layout onSignOut={onSignOut} />}>
          <Route path="/" element={<Navigate to="/leads" replace />} />
          <Route path="/leads" element={<Leads />} />
          <Route path="/leads/:email" element={<LeadPage />} />
          <Route path="/segments" element={<Segments />} />
          <Route path="/journeys" element={<Journeys />} />
          <Route path="/journeys/new" element={<JourneyCanvas />} />
          <Route path="/journeys/:journeyId" element={<JourneyCanvas />} />
          <Route path="/templates" element={<Templates />} />
          <Route path="/templates/:templateId" element={<Templates />} />
          <Route path="/forms" element={<FormsAndSites />} />
          <Route path="/settings" element={<Settings />} />
          <Route path="/audit" element={<Audit />} />
          <Route path="/imports" element={<Imports />} />
          <Route path="/reports" element={<Reports />} />
          <Route path="/reports/:kind" element={<Reports />} />
          <Route path="/reports/:kind/:id" element={<Reports />} />
          <Route path="*" element={<NotFound />} />
        </Route>,
      ),
    ),
  );
  return <RouterProvider router={router} />;
}

function Layout({ onSignOut }: { onSignOut: () => void }) {
  const { t } = useTranslation();
  useLeaveGuard();
  return (
    <>
      <Header me={useMe()} onSignOut={onSignOut} />
      <BusyMain>
        <Suspense fallback={<p className="loading">{t("common.loading")}</p>}>
          <Outlet />
        </Suspense>
      </BusyMain>
    </>
  );
}

function NotFound() {
  const { t } = useTranslation();
  return <p>{t("common.not_found")}</p>;
}

function Header({ me, onSignOut }: { me: Me; onSignOut: () => void }) {
  const { t, i18n } = useTranslation();
  // A screen is in the menu only when the role may read what it shows (a sales rep reads
  // leads only); Settings holds the user's own sign-in security, so everyone has it.
  const links: [string, string, boolean][] = [
    ["/leads", t("nav.leads"), true],
    ["/segments", t("nav.segments"), me.operations.includes("segments.list")],
    ["/journeys", t("nav.journeys"), me.operations.includes("journeys.list")],
    ["/templates", t("nav.mail"), me.operations.includes("templates.list")],
    ["/forms", t("nav.forms"), me.operations.includes("forms.list")],
    ["/reports", t("nav.reports"), me.operations.includes("reports.show")],
    ["/imports", t("nav.imports"), me.operations.includes("imports.plan")],
    ["/settings", t("nav.settings"), true],
    ["/audit", t("nav.audit"), me.operations.includes("audit.list")],
  ];
  return (
    <header className="top">
      <a className="skip" href="#main">
        {t("nav.skip")}
      </a>
      <span className="brand">Tsunagu</span>
      <nav aria-label={t("nav.label")}>
        {links
          .filter(([, , shown]) => shown)
          .map(([to, label]) => (
            <NavLink key={to} to={to}>
              {label}
            </NavLink>
          ))}
      </nav>
      {/* Two lines, to leave the menu room on one */}
      <span className="who">
        <span>{me.email}</span> <span>({t(`roles.${me.role ?? "none"}`)})</span>
      </span>
      <label className="language">
        <span className="visually-hidden">{t("nav.language")}</span>
        <select
          value={i18n.language?.startsWith("ja") ? "ja" : "en"}
          onChange={(event) => void i18n.changeLanguage(event.target.value)}
        >
          <option value="ja">日本語</option>
          <option value="en">English</option>
        </select>
      </label>
      <button type="button" onClick={onSignOut}>
        {t("nav.sign_out")}
      </button>
    </header>
  );
}

/** The main region, marked busy while a request is under way; its own component so that a
 * request starting or ending re-renders only this element, not the screen inside it. */
function BusyMain({ children }: { children: ReactNode }) {
  const busy = useBusy();
  return (
    <main id="main" aria-busy={busy}>
      {children}
    </main>
  );
}
