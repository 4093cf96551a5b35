import { type FormEvent, useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";

import { Link } from "react-router";

import { allItems, api, describeError } from "../api";
import { when } from "../i18n";
import { useMay } from "../me";
import { useAction } from "../useAction";
import { latestAnswer, useLatestRequest } from "../useLatestRequest";

interface JourneyRow {
  journey_id: string;
  name: string;
  status: string;
  paused_at: string | null;
  published?: { version: number; published_at: string } | null;
}

interface JourneyStatus {
  journey: string;
  status: string;
  paused_at: string | null;
  resume_policy: string;
  /** The policy chosen during the emergency stop: lifting the stop releases the held mails by it. */
  resume_after_stop: (typeof POLICIES)[number] | null;
  parked: number;
  parked_at_step: Record<string, number>;
  waiting_at_node: Record<string, number>;
  /** Counted up to 1,000 (one Step Functions request a journey): past it, ``running_at_least``. */
  running: number | null;
  running_at_least: boolean;
}

/** What resuming a journey answers: while the emergency stop holds, nothing is released yet. */
interface Resumed {
  released: number;
  by_action: Record<string, number>;
  held_by_emergency_stop: { kind: (typeof POLICIES)[number] } | null;
}

/** A count, and where it is when there is any: "3 (invitation: 2, reminder: 1)", each place by
 * its name in ``names`` where it has one (a node's label, not its id). */
function CountAt({ at, names = {} }: { at: Record<string, number>; names?: Record<string, string> }) {
  const total = Object.values(at).reduce((sum, count) => sum + count, 0);
  return (
    <>
      {total}
      {total > 0 && (
        <small>
          {" ("}
          {Object.entries(at)
            .map(([where, count]) => `${names[where] ?? where}: ${count}`)
            .join(", ")}
          {")"}
        </small>
      )}
    </>
  );
}

export const POLICIES = ["send_missed", "skip_missed", "pace", "expire"] as const;

export default function Journeys() {
  const { t } = useTranslation();
  const may = useMay();
  const [rows, setRows] = useState<JourneyRow[]>([]);
  const [statuses, setStatuses] = useState<Record<string, JourneyStatus>>({});
  /** Each node's label, by journey and node id: where leads wait is said in the graph's words. */
  const [labels, setLabels] = useState<Record<string, Record<string, string>>>({});
  const [stopped, setStopped] = useState(false);
  const [resuming, setResuming] = useState<string | null>(null);

  // Only the last reading is shown: two changes made quickly (two journeys paused) read the
  // list twice, and the first reading, answering last, showed the second journey as before
  const begin = useLatestRequest();
  const load = useCallback(async () => {
    const isLatest = begin();
    const found = await latestAnswer(
      isLatest,
      Promise.all([
        allItems<JourneyRow>("/admin/journeys"),
        api<{ journeys: JourneyStatus[]; emergency_stop: boolean }>("GET", "/admin/journeys/status"),
      ]),
    );
    if (!found) return;
    const [listed, status] = found.answer;
    setRows(listed);
    setStopped(status.emergency_stop);
    setStatuses(Object.fromEntries(status.journeys.map((one) => [one.journey, one])));
    // Only the journeys someone waits in, and after the list is shown: a graph each
    const waited = status.journeys.filter((one) => Object.keys(one.waiting_at_node ?? {}).length > 0);
    const named = await Promise.all(
      waited.map((one) =>
        api<{ definition: { nodes: { id: string; label: string }[] } }>(
          "GET",
          `/admin/journeys/${one.journey}/graph`,
        )
          .then((graph) => Object.fromEntries(graph.definition.nodes.map((node) => [node.id, node.label])))
          .catch(() => ({}))
          .then((byId) => [one.journey, byId] as const),
      ),
    );
    if (isLatest()) setLabels(Object.fromEntries(named));
  }, [begin]);

  const { message, setMessage, run } = useAction(load);

  useEffect(() => {
    void load().catch((error) => setMessage(describeError(error)));
  }, [load, setMessage]);

  return (
    <section>
      <h1>{t("journeys.title")}</h1>
      {stopped && (
        <p className="banner" role="status">
          {t("journeys.stopped_all")}
        </p>
      )}
      <div className="toolbar">
        {may("journeys.save") && <Link to="/journeys/new">{t("journeys.new")}</Link>}
        {may("journeys.stop_all") && !stopped && (
          <button
            type="button"
            className="danger"
            onClick={() => {
              if (window.confirm(t("journeys.stop_all_confirm"))) {
                void run(() => api("PUT", "/admin/emergency-stop"), t("journeys.stopped_all"));
              }
            }}
          >
            {t("journeys.stop_all")}
          </button>
        )}
        {may("journeys.resume_all") && stopped && (
          <button
            type="button"
            onClick={() => {
              if (window.confirm(t("journeys.resume_all_confirm"))) {
                void run(() => api("DELETE", "/admin/emergency-stop"), t("journeys.resumed"));
              }
            }}
          >
            {t("journeys.resume_all")}
          </button>
        )}
      </div>
      {message && <p role="status">{message}</p>}
      <table className="list">
        <thead>
          <tr>
            <th scope="col">{t("journeys.name")}</th>
            <th scope="col">{t("journeys.status")}</th>
            <th scope="col">{t("journeys.version")}</th>
            <th scope="col">{t("journeys.running")}</th>
            <th scope="col">{t("journeys.waiting")}</th>
            <th scope="col">{t("journeys.parked")}</th>
            <th scope="col">{t("journeys.actions")}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((journey) => {
            const status = statuses[journey.journey_id];
            return (
              <tr key={journey.journey_id}>
                <td>
                  <Link to={`/journeys/${journey.journey_id}`}>{journey.name}</Link>
                  <br />
                  <small>{journey.journey_id}</small>
                </td>
                <td>
                  {t(`journeys.statuses.${journey.status}`, journey.status)}
                  {journey.paused_at && <small> ({when(journey.paused_at)})</small>}
                  {status?.resume_after_stop && (
                    <>
                      <br />
                      <small>
                        {t("journeys.after_stop", {
                          policy: t(`journeys.policies.${status.resume_after_stop}.name`),
                        })}
                      </small>
                    </>
                  )}
                </td>
                {/* Never published: the journey runs as deployed with the stack */}
                <td>{journey.published?.version ?? t("canvas.which.shipped")}</td>
                <td className="number">
                  {status?.running_at_least
                    ? t("journeys.running_at_least", { count: status.running })
                    : (status?.running ?? "—")}
                </td>
                <td className="number">
                  <CountAt at={status?.waiting_at_node ?? {}} names={labels[journey.journey_id]} />
                </td>
                <td className="number">
                  <CountAt at={status?.parked_at_step ?? {}} />
                </td>
                <td>
                  {may("journeys.pause") && journey.status === "active" && (
                    <button
                      type="button"
                      onClick={() => {
                        if (window.confirm(t("journeys.pause_confirm", { name: journey.name }))) {
                          void run(
                            () => api("POST", `/admin/journeys/${journey.journey_id}/pause`),
                            t("journeys.paused"),
                          );
                        }
                      }}
                    >
                      {t("journeys.pause")}
                    </button>
                  )}
                  {may("journeys.resume") && journey.status === "paused" && (
                    <button type="button" onClick={() => setResuming(journey.journey_id)}>
                      {t("journeys.resume")}
                    </button>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {resuming && (
        <ResumeDialog
          journeyId={resuming}
          defaultPolicy={statuses[resuming]?.resume_policy ?? "send_missed"}
          onClose={() => setResuming(null)}
          onResume={(policy, rate) =>
            run(
              () =>
                api<Resumed>("POST", `/admin/journeys/${resuming}/resume`, {
                  body: { policy: { kind: policy, ...(policy === "pace" ? { rate_per_minute: rate } : {}) } },
                }),
              (answer) =>
                answer.held_by_emergency_stop
                  ? t("journeys.resumed_held", {
                      policy: t(`journeys.policies.${answer.held_by_emergency_stop.kind}.name`),
                    })
                  : t("journeys.resumed"),
              // A resume refused (the journey changed meanwhile) leaves the choice open to try again
            ).then((done) => done && setResuming(null))
          }
        />
      )}
    </section>
  );
}

function ResumeDialog(props: {
  journeyId: string;
  defaultPolicy: string;
  onClose: () => void;
  onResume: (policy: string, rate: number) => Promise<unknown>;
}) {
  const { t } = useTranslation();
  const [policy, setPolicy] = useState(props.defaultPolicy);
  const [rate, setRate] = useState(60);
  return (
    <dialog open aria-labelledby="resume-title" className="dialog">
      <form
        onSubmit={(event: FormEvent) => {
          event.preventDefault();
          void props.onResume(policy, rate);
        }}
      >
        <h2 id="resume-title">{t("journeys.resume_title", { journey: props.journeyId })}</h2>
        <fieldset>
          <legend>{t("journeys.policy")}</legend>
          {POLICIES.map((kind) => (
            <label key={kind} className="choice">
              <input
                type="radio"
                name="policy"
                value={kind}
                checked={policy === kind}
                onChange={() => setPolicy(kind)}
              />
              <strong>{t(`journeys.policies.${kind}.name`)}</strong>
              <span>{t(`journeys.policies.${kind}.explained`)}</span>
            </label>
          ))}
        </fieldset>
        {policy === "pace" && (
          <label>
            {t("journeys.rate")}
            <input
              type="number"
              min={1}
              max={10000}
              value={rate}
              onChange={(event) => setRate(Number(event.target.value))}
            />
          </label>
        )}
        <div className="toolbar">
          <button type="submit">{t("journeys.resume")}</button>
          <button type="button" onClick={props.onClose}>
            {t("common.cancel")}
          </button>
        </div>
      </form>
    </dialog>
  );
}
