// What a journey's start asks for besides who enters: the date-times its live version's mails
// read as their deadline (`start_input` of GET /admin/journeys/{id}, such as `seminar_at`). The
// server checks a start against the live version, so the form asks for what the server will
// check - not for what a draft on screen happens to read. The journey canvas and the lead page
// both start journeys; both use this.
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";

import { ApiError, api, describeError } from "./api";

export interface StartInput {
  names: string[];
  /** Why the fields could not be read (a start then goes without them: each is optional). */
  problem: string | null;
  values: Record<string, string>;
  setValues: (values: Record<string, string>) => void;
}

/** The start input of the journey (none while no journey is chosen); ``live`` is the live
 * version as the screen knows it: a publish or a rollback reads the fields again. */
export function useStartInput(journeyId: string | undefined, live?: number | null): StartInput {
  const [names, setNames] = useState<string[]>([]);
  const [values, setValues] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    setValues({});
    setNames([]);
    setProblem(null);
    if (!journeyId) return;
    let current = true;
    api<{ start_input?: string[] }>("GET", `/admin/journeys/${journeyId}`)
      .then((shown) => current && setNames(shown.start_input ?? []))
      .catch((error) => {
        // 404: a journey only drafted so far has no live version, and asks for nothing yet
        if (current && !(error instanceof ApiError && error.status === 404)) {
          setProblem(describeError(error));
        }
      });
    return () => {
      current = false;
    };
  }, [journeyId, live]);
  return { names, problem, values, setValues };
}

/** The body's ``input``: each field given, as an ISO date-time with the browser's offset
 * (undefined when none is given: the start then carries no input). */
export function startInputBody(state: StartInput): Record<string, string> | undefined {
  const given = state.names
    .filter((name) => state.values[name])
    .map((name) => [name, new Date(state.values[name]).toISOString()]);
  return given.length > 0 ? Object.fromEntries(given) : undefined;
}

/** A date-time field for each name, with one hint under them. */
export function StartInputFields({ state, hintId }: { state: StartInput; hintId: string }) {
  const { t } = useTranslation();
  if (state.problem) {
    return <p className="problem">{t("canvas.start_input_unreadable", { reason: state.problem })}</p>;
  }
  if (state.names.length === 0) return null;
  return (
    <>
      {state.names.map((name) => (
        <label key={name}>
          {t("canvas.start_input", { name })}
          <input
            type="datetime-local"
            aria-describedby={hintId}
            value={state.values[name] ?? ""}
            onChange={(event) => state.setValues({ ...state.values, [name]: event.target.value })}
          />
        </label>
      ))}
      <p className="note" id={hintId}>
        {t("canvas.start_input_help")}
      </p>
    </>
  );
}
