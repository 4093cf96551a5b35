import { type FormEvent, useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { useParams } from "react-router";

import { allItems, api, describeError } from "../api";
import { reasonText, when } from "../i18n";
import { useMay, useMe } from "../me";
import { eventName, fieldName, sourceName, topicName, triggerName } from "../names";
import { StartInputFields, startInputBody, useStartInput } from "../startInput";
import { mayLift, type SuppressionView } from "../suppression";
import { useAction } from "../useAction";
import { useLatestRequest } from "../useLatestRequest";
import { STAGES } from "./Leads";

interface FieldValue {
  value: string | number | boolean | null;
  source: string;
  at: string;
}

interface LeadView {
  lead_id: string;
  email: string;
  stage: string;
  fields: Record<string, FieldValue>;
  tags: string[];
  score: number | null;
  grade: string | null;
  crm_status: string | null;
  consent: Record<string, string>;
  /** Every mail to the lead stopped, why, since when and who may lift it (null: consent decides
   * what goes). */
  suppression: SuppressionView | null;
  consent_evidence: {
    topic?: string;
    status?: string;
    text?: string;
    at?: string;
    form_id?: string | null;
    ip?: string;
  }[];
  journeys: {
    journey_id: string;
    status: string;
    entered_at: string;
    trigger: string;
    entries: number;
    exit_reason: string | null;
  }[];
}

interface TimelineEvent {
  event_id: string;
  type: string;
  at: string;
  properties: Record<string, unknown>;
  automated: boolean;
}

interface Timeline {
  events: TimelineEvent[];
  /** The cursor of the events before these (null: these go back to the first). */
  next_before: string | null;
}

/** Whether the event is a journey's decision for the lead (where it went, and why). */
function isDecision(event: TimelineEvent): boolean {
  return Boolean(event.properties.node && event.properties.outcome);
}

interface ScoreLine {
  event_id: string;
  event_type: string;
  occurred_at: string;
  rule_id: string;
  description: string;
  points: number;
  decayed: number;
  note: string | null;
}

interface ScoreView {
  score: number;
  threshold: number;
  grade: string;
  cell: string;
  lines: ScoreLine[];
  fit: { attribute: string; value: unknown; matched: string | null; points: number }[];
  stage_history: { from?: string; to?: string; by?: string; at?: string }[];
}

/** One page per lead. Another lead opened by its address (a link in a colleague's mail, one
 * typed or pasted) starts on a page of its own: React Router keeps a screen's state when only
 * its parameters change, so the last lead stayed on screen under the new address until the
 * new one answered (or for good, if it was refused), its answer could arrive last and win, and
 * the actions offered the stage chosen for it and said "Saved." of what was done to it. */
export default function LeadPageScreen() {
  const { email = "" } = useParams();
  return <LeadPage key={email} email={email} />;
}

function LeadPage({ email }: { email: string }) {
  const { t } = useTranslation();
  const [lead, setLead] = useState<LeadView | null>(null);
  const [events, setEvents] = useState<TimelineEvent[]>([]);
  const [earlier, setEarlier] = useState<string | null>(null);
  const [score, setScore] = useState<ScoreView | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const path = `/admin/leads/${encodeURIComponent(email)}`;

  // Only the last reading of the lead is shown: two changes made quickly (two tags added) read
  // it twice, and the first reading, answering last, took the second change off the page
  const reading = useLatestRequest();
  // An earlier page of the timeline goes before the events shown when it was asked for: the
  // lead read again since (after an action) shows the newest events, and the page, put before
  // them, left out the events between (one pushed off the newest by the action's own)
  const earlierPage = useLatestRequest();
  const load = useCallback(async () => {
    const isLatest = reading();
    setProblem(null);
    try {
      const [shown, timeline, explained] = await Promise.all([
        api<LeadView>("GET", path),
        api<Timeline>("GET", `${path}/timeline`),
        api<ScoreView>("GET", `${path}/score`).catch(() => null),
      ]);
      if (!isLatest()) return;
      earlierPage(); // a page on its way was asked of the events shown until now
      setLead(shown);
      setEvents(timeline.events);
      setEarlier(timeline.next_before);
      setScore(explained);
    } catch (error) {
      if (isLatest()) setProblem(describeError(error));
    }
  }, [path, reading, earlierPage]);

  async function loadEarlier() {
    if (earlier === null) return;
    const isLatest = earlierPage();
    try {
      const page = await api<Timeline>("GET", `${path}/timeline`, { query: { before: earlier } });
      if (!isLatest()) return;
      setEvents((shown) => [...page.events, ...shown]);
      setEarlier(page.next_before);
    } catch (error) {
      if (isLatest()) setProblem(describeError(error));
    }
  }

  useEffect(() => {
    void load();
  }, [load]);

  if (problem) {
    return (
      <p role="alert" className="problem">
        {problem}
      </p>
    );
  }
  if (lead === null) return <p className="loading">{t("common.loading")}</p>;
  const name = lead.fields.name?.value;
  // One score on the page: the breakdown's (as it stands now, decay included) where there is
  // one, so the header never says "—" above a breakdown that says 0
  const scoreNow = score !== null ? score.score : lead.score;
  // Rule ids in words, for the timeline's score changes: the rules the breakdown names
  const ruleNames = new Map((score?.lines ?? []).map((line) => [line.rule_id, line.description]));
  const hasDecisions = events.some(isDecision);

  return (
    <article className="lead">
      <h1>
        {name ? `${String(name)} ` : ""}
        <small>{lead.email}</small>
      </h1>
      <dl className="facts">
        <dt>{t("leads.stage")}</dt>
        <dd>{t(`stages.${lead.stage}`, lead.stage)}</dd>
        <dt>{t("leads.score")}</dt>
        <dd>{scoreNow === null ? "—" : Math.round(scoreNow)}</dd>
        <dt>{t("leads.grade")}</dt>
        <dd>{lead.grade ?? "—"}</dd>
        <dt>{t("leads.tags")}</dt>
        <dd>{lead.tags.join(", ") || "—"}</dd>
        <dt>{t("lead.crm_status")}</dt>
        <dd>{lead.crm_status ?? "—"}</dd>
        <dt>{t("lead.mail")}</dt>
        <dd>
          {lead.suppression === null ? (
            t("lead.not_suppressed")
          ) : (
            <>
              <strong>
                {t("lead.suppressed_since", {
                  reason: t(`suppressions.reasons.${lead.suppression.reason}`),
                  at: when(lead.suppression.at),
                })}
              </strong>
              <div className="detail">{t(`suppressions.why.${lead.suppression.reason}`)}</div>
            </>
          )}
        </dd>
      </dl>
      <Actions lead={lead} onChanged={() => void load()} />

      <section>
        <h2>{t("lead.fields")}</h2>
        <table className="list">
          <thead>
            <tr>
              <th scope="col">{t("lead.field")}</th>
              <th scope="col">{t("lead.value")}</th>
              <th scope="col">{t("lead.source")}</th>
              <th scope="col">{t("lead.at")}</th>
            </tr>
          </thead>
          <tbody>
            {Object.entries(lead.fields).map(([field, value]) => (
              <tr key={field}>
                <th scope="row">{fieldName(field)}</th>
                <td>{String(value.value ?? "")}</td>
                <td>{sourceName(value.source)}</td>
                <td>{when(value.at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      <section>
        <h2>{t("lead.timeline")}</h2>
        {earlier && (
          <button type="button" className="secondary" onClick={() => void loadEarlier()}>
            {t("lead.earlier")}
          </button>
        )}
        <ol className="timeline">
          {events.map((event) => (
            <li key={event.event_id} className={event.automated ? "automated" : undefined}>
              <time dateTime={event.at}>{when(event.at)}</time>{" "}
              <strong>{eventName(event.type)}</strong>
              {event.automated && (
                <span className="badge automated-badge">
                  {t("lead.automated")}
                  {Array.isArray(event.properties.reasons) && (
                    <>
                      {": "}
                      {(event.properties.reasons as string[]).map((code, index) => (
                        <span key={code}>
                          {index > 0 && "; "}
                          {reasonText(code)} <code>{code}</code>
                        </span>
                      ))}
                    </>
                  )}
                </span>
              )}
              <EventDetail type={event.type} properties={event.properties} ruleNames={ruleNames} />
            </li>
          ))}
        </ol>
        {events.length === 0 && <p>{t("lead.no_events")}</p>}
      </section>

      <section>
        <h2>{t("lead.journeys")}</h2>
        {lead.journeys.length === 0 ? (
          <p>{t("lead.no_journeys")}</p>
        ) : (
          <ul>
            {lead.journeys.map((entry) => (
              <li key={entry.journey_id}>
                <strong>{entry.journey_id}</strong> — {t(`lead.entry_status.${entry.status}`, entry.status)}
                {", "}
                {t("lead.entered", { at: when(entry.entered_at), trigger: triggerName(entry.trigger) })}
                {entry.exit_reason && ` (${reasonText(entry.exit_reason)})`}
                <Decisions
                  of={events.filter((e) => isDecision(e) && e.properties.journey_id === entry.journey_id)}
                />
              </li>
            ))}
          </ul>
        )}
        {/* Said only where decisions are listed: pointing at none would send people looking */}
        {hasDecisions && (
          <p className="note">{t(earlier ? "lead.decisions_shown" : "lead.decisions_all")}</p>
        )}
      </section>

      {score && (
        <section>
          <h2>{t("lead.score_explained")}</h2>
          <p>
            {t("lead.score_summary", {
              score: Math.round(score.score),
              threshold: score.threshold,
              grade: score.grade,
              cell: score.cell,
            })}
          </p>
          {score.lines.length === 0 && <p className="note">{t("lead.no_score_lines")}</p>}
          {score.lines.length > 0 && (
            <table className="list">
              <thead>
                <tr>
                  <th scope="col">{t("lead.at")}</th>
                  <th scope="col">{t("lead.event")}</th>
                  <th scope="col">{t("lead.rule")}</th>
                  <th scope="col">{t("lead.points")}</th>
                  <th scope="col">{t("lead.after_decay")}</th>
                </tr>
              </thead>
              <tbody>
                {score.lines.map((line) => (
                  <tr key={`${line.event_id}-${line.rule_id}`}>
                    <td>{when(line.occurred_at)}</td>
                    <td>{eventName(line.event_type)}</td>
                    <td>
                      {line.description}
                      {line.note && <small> ({line.note})</small>}
                    </td>
                    <td className="number">{line.points}</td>
                    <td className="number">{line.decayed.toFixed(1)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h3>{t("lead.fit")}</h3>
          {score.fit.length === 0 ? (
            <p className="note">{t("lead.no_fit")}</p>
          ) : (
            <ul>
              {score.fit.map((reason) => (
                <li key={reason.attribute}>
                  {fieldName(reason.attribute)}: {String(reason.value ?? "—")}{" "}
                  {reason.matched ? `→ ${reason.matched} (${reason.points})` : ""}
                </li>
              ))}
            </ul>
          )}
          <h3>{t("lead.stage_history")}</h3>
          {score.stage_history.length === 0 ? (
            <p className="note">{t("lead.no_stage_changes")}</p>
          ) : (
            <ol>
              {score.stage_history.map((change, index) => (
                <li key={index}>
                  {when(change.at)}:{" "}
                  {t("lead.stage_move", { from: stageName(t, change.from), to: stageName(t, change.to) })}
                  {change.by && ` (${t("lead.by", { by: change.by })})`}
                </li>
              ))}
            </ol>
          )}
        </section>
      )}

      <section>
        <h2>{t("lead.consent")}</h2>
        <dl className="facts">
          {Object.entries(lead.consent).map(([topic, status]) => (
            <div key={topic}>
              <dt>{topicName(topic)}</dt>
              <dd>{t(`lead.consent_status.${status}`, { defaultValue: status })}</dd>
            </div>
          ))}
        </dl>
        <h3>{t("lead.evidence")}</h3>
        <ul>
          {lead.consent_evidence.map((evidence, index) => (
            <li key={index}>
              {when(evidence.at)} {evidence.topic && topicName(evidence.topic)}:{" "}
              {t(`lead.consent_status.${evidence.status}`, { defaultValue: evidence.status })}
              {evidence.text && (
                <>
                  {" "}
                  <q>{evidence.text}</q>
                </>
              )}
              {evidence.form_id && ` (${t("lead.evidence_form", { form: evidence.form_id })})`}
            </li>
          ))}
        </ul>
      </section>
    </article>
  );
}

/** A journey's decisions for the lead, in order: at which node, which way, and the values it
 * read ("why this branch"). */
function Decisions({ of }: { of: TimelineEvent[] }) {
  const { t } = useTranslation();
  if (of.length === 0) return null;
  return (
    <ol className="decisions" aria-label={t("lead.decisions")}>
      {of.map((event) => (
        <li key={event.event_id}>
          <time dateTime={event.at}>{when(event.at)}</time>
          <EventDetail type={event.type} properties={event.properties} />
        </li>
      ))}
    </ol>
  );
}

/** A stage code in words ("—" for none). */
function stageName(t: (key: string, fallback: string) => string, stage: unknown): string {
  return typeof stage === "string" ? t(`stages.${stage}`, stage) : "—";
}

function EventDetail({
  type,
  properties,
  ruleNames,
}: {
  type: string;
  properties: Record<string, unknown>;
  /** Scoring rules' descriptions by id, for a score change's rules. */
  ruleNames?: Map<string, string>;
}) {
  const { t } = useTranslation();
  if (type === "score_changed" && typeof properties.points === "number") {
    // The points, the score before and after, and the rules that gave them
    const rules = Array.isArray(properties.rules) ? (properties.rules as string[]) : [];
    const shown = [
      t("lead.score_points", {
        points: properties.points > 0 ? `+${properties.points}` : String(properties.points),
        from: Math.round(Number(properties.from ?? 0)),
        to: Math.round(Number(properties.to ?? 0)),
      }),
    ];
    if (rules.length) {
      shown.push(t("lead.score_rules", { rules: rules.map((id) => ruleNames?.get(id) || id).join(", ") }));
    }
    return <span className="detail"> {shown.join(" · ")}</span>;
  }
  if (type === "stage_changed" && typeof properties.to === "string") {
    const by = typeof properties.by === "string" && properties.by ? ` (${t("lead.by", { by: properties.by })})` : "";
    return (
      <span className="detail">
        {" "}
        {t("lead.stage_move", { from: stageName(t, properties.from), to: stageName(t, properties.to) })}
        {by}
      </span>
    );
  }
  if (properties.node && properties.outcome) {
    // A journey's decision: where it went, and the values it read ("why this branch")
    const values = Object.entries((properties.values as Record<string, unknown>) ?? {})
      .map(([name, value]) => `${name}=${String(value)}`)
      .join(", ");
    return (
      <span className="detail decision">
        {" "}
        {String(properties.journey_id)} · {String(properties.node)} → <strong>{String(properties.outcome)}</strong>
        {properties.control_group ? ` (${t("lead.control_group")})` : ""}
        {values && ` — ${t("lead.because", { values })}`}
      </span>
    );
  }
  const shown = ["url", "path", "form_id", "subject", "template_id", "journey_id", "link_url"]
    .filter((name) => properties[name])
    .map((name) => `${t(`lead.detail.${name}`)}: ${String(properties[name])}`);
  // Why a mail was not sent (the gate's or the send's reason), and until when it waits
  if (typeof properties.reason === "string") shown.push(reasonText(properties.reason));
  if (typeof properties.until === "string") shown.push(t("lead.until", { at: when(properties.until) }));
  // Fields an update, a form or an import asked for and did not set (a higher channel's value
  // stays), with why where the event says it
  const kept = Array.isArray(properties.kept_fields) ? (properties.kept_fields as string[]) : [];
  if (kept.length) {
    const reasons = (properties.kept_reasons as Record<string, string> | undefined) ?? {};
    const named = kept.map((name) => (reasons[name] ? `${name} (${reasons[name]})` : name));
    shown.push(t("lead.kept_fields", { fields: named.join(", ") }));
  }
  return shown.length ? <span className="detail"> {shown.join(" · ")}</span> : null;
}

function Actions({ lead, onChanged }: { lead: LeadView; onChanged: () => void }) {
  const { t } = useTranslation();
  const may = useMay();
  const me = useMe();
  const [stage, setStage] = useState(lead.stage);
  const [tag, setTag] = useState("");
  const [journeys, setJourneys] = useState<{ journey_id: string; name: string; status: string }[]>(
    [],
  );
  const [journey, setJourney] = useState("");
  const startInput = useStartInput(journey || undefined);
  const { message, setMessage, run } = useAction(onChanged);
  const owner = lead.fields.owner_email?.value;
  const mayUpdate =
    // As the API compares them: an owner from the CRM may be written in capitals
    may("leads.update") &&
    (me.role !== "sales" || (owner !== undefined && String(owner).toLowerCase() === me.email?.toLowerCase()));
  const path = `/admin/leads/${encodeURIComponent(lead.email)}`;
  const mayStart = may("journeys.start");

  useEffect(() => {
    if (!mayStart) return;
    allItems<{ journey_id: string; name: string; status: string }>("/admin/journeys")
      .then((found) => setJourneys(found.filter((one) => one.status === "active")))
      .catch((error) => setMessage(t("lead.journeys_unreadable", { reason: describeError(error) })));
  }, [mayStart]);

  // A suppressed lead is not offered "Stop all mail" again (a manual stop never replaces a
  // bounce or a complaint: the API refuses it), but a lift where this role may lift its reason
  const suppressed = lead.suppression;
  const maySuppress = suppressed === null && may("leads.suppress");
  const mayLiftIt = suppressed !== null && mayLift(suppressed, me.role);
  if (!mayUpdate && !may("leads.record_event") && !maySuppress && !mayLiftIt && !mayStart) return null;
  // What the last action said is cleared as the next one starts: a choice changed, or a form
  // the browser stops for a missing value (which never reaches run()). Else "Saved." stood
  // beside the next attempt as if it answered that.
  const startingAnother = () => setMessage(null);
  return (
    <section className="actions" aria-label={t("lead.actions")} onChangeCapture={startingAnother}>
      {mayUpdate && (
        <form
          onSubmit={(event: FormEvent) => {
            event.preventDefault();
            void run(() => api("PATCH", path, { body: { stage } }), t("lead.saved"));
          }}
        >
          <label>
            {t("leads.stage")}
            <select value={stage} onChange={(event) => setStage(event.target.value)}>
              {STAGES.map((value) => (
                <option key={value} value={value}>
                  {t(`stages.${value}`)}
                </option>
              ))}
            </select>
          </label>
          <button type="submit">{t("lead.set_stage")}</button>
        </form>
      )}
      {mayUpdate && me.role !== "sales" && (
        <form
          onSubmit={(event: FormEvent) => {
            event.preventDefault();
            void run(
              () => api("PATCH", path, { body: { add_tags: [tag.trim()] } }),
              t("lead.saved"),
            );
          }}
        >
          <label>
            {t("lead.add_tag")}
            <input value={tag} required onInvalid={startingAnother} onChange={(event) => setTag(event.target.value)} />
          </label>
          <button type="submit">{t("lead.add")}</button>
        </form>
      )}
      {may("leads.record_event") && (
        <button
          type="button"
          onClick={() =>
            void run(
              () => api("POST", `${path}/events`, { body: { kind: "seminar_attended" } }),
              t("lead.recorded"),
            )
          }
        >
          {t("lead.record_attendance")}
        </button>
      )}
      {maySuppress && (
        <button
          type="button"
          className="danger"
          onClick={() => {
            if (window.confirm(t("lead.suppress_confirm"))) {
              void run(() => api("POST", `${path}/suppression`, { body: {} }), t("lead.suppressed"));
            }
          }}
        >
          {t("lead.suppress")}
        </button>
      )}
      {mayLiftIt && (
        <button
          type="button"
          className="secondary"
          onClick={() => {
            const why = window.prompt(t("suppressions.lift_prompt", { email: lead.email }));
            if (why) {
              void run(
                () => api("DELETE", `${path}/suppression`, { body: { note: why } }),
                t("suppressions.lifted", { email: lead.email }),
              );
            }
          }}
        >
          {t("lead.lift_suppression")}
        </button>
      )}
      {mayStart && journeys.length > 0 && (
        <form
          onSubmit={(event: FormEvent) => {
            event.preventDefault();
            void (async () => {
              setMessage(null);
              try {
                const input = startInputBody(startInput);
                const answer = await api<{
                  entered: number;
                  already_in: number;
                  results: { reason: string | null }[];
                }>(
                  "POST",
                  `/admin/journeys/${journey}/entries`,
                  { body: input ? { lead: lead.email, input } : { lead: lead.email } },
                );
                setMessage(
                  answer.entered || answer.already_in // already in: started before today
                    ? t("lead.started")
                    : t("lead.not_started", { reason: reasonText(answer.results[0]?.reason ?? "—") }),
                );
                onChanged();
              } catch (error) {
                setMessage(describeError(error));
              }
            })();
          }}
        >
          <label>
            {t("lead.start_journey")}
            <select required value={journey} onInvalid={startingAnother} onChange={(event) => setJourney(event.target.value)}>
              <option value="">—</option>
              {journeys.map((one) => (
                <option key={one.journey_id} value={one.journey_id}>
                  {one.name}
                </option>
              ))}
            </select>
          </label>
          <StartInputFields state={startInput} hintId="lead-start-input-hint" />
          <button type="submit">{t("lead.start")}</button>
        </form>
      )}
      {message && <p role="status">{message}</p>}
    </section>
  );
}
