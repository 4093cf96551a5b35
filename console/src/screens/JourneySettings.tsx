// A journey's settings beside its graph: the consent topic its mails need, what enters a lead
// (a form, an event, a score crossed, a stage reached, a segment, or only by hand), who may
// enter again, what ends a lead's time in it, and what held mails do when it resumes. Saved
// through PUT /admin/journeys/{j}/settings: no new version, the graph and the live version stay.
import { type FormEvent, useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";

import { ApiError, api, describeError, type FieldProblem, problemText } from "../api";
import { formIds, type SegmentChoice, savedSegments } from "../choices";
import { WordsInput } from "../inputs";
import { useUnsavedWarning } from "../unsaved";
import { useLatestRequest } from "../useLatestRequest";
import { POLICIES } from "./Journeys";
import { STAGES } from "./Leads";

const TRIGGER_KINDS = ["form_submitted", "event", "score_crossed", "stage_reached", "segment", "manual"] as const;
const REENTRY_KINDS = ["never", "after_interval", "always"] as const;

/** An activity's conditions (tsunagu.event_match): its kind, and what else it must concern. */
interface EventMatch {
  type: string;
  form_id?: string | null;
  template_id?: string | null;
  url_contains?: string | null;
  [other: string]: unknown;
}

interface Trigger {
  kind: (typeof TRIGGER_KINDS)[number];
  form_id?: string | null;
  event?: EventMatch | null;
  threshold?: number | null;
  stage?: string | null;
  segment?: string | null;
}

interface Settings {
  topic: string;
  triggers: Trigger[];
  reentry: { kind: (typeof REENTRY_KINDS)[number]; interval_days: number };
  exit: { stages: string[]; crm_statuses: string[]; goals: EventMatch[]; goal_window_days: number };
  resume: { kind: (typeof POLICIES)[number]; rate_per_minute: number };
}

/** A new trigger of ``kind``, with the one value it needs. */
function triggerOf(kind: Trigger["kind"]): Trigger {
  switch (kind) {
    case "event":
      return { kind, event: { type: "page_view" } };
    case "score_crossed":
      return { kind, threshold: 50 };
    case "stage_reached":
      return { kind, stage: "mql" };
    case "segment":
      return { kind, segment: "" };
    default:
      return { kind };
  }
}

export function JourneySettings({ journeyId, editable }: { journeyId: string; editable: boolean }) {
  const { t } = useTranslation();
  const [settings, setSettings] = useState<Settings | null>(null);
  // The settings as read or last saved (JSON): leaving with others in the form asks first
  const [kept, setKept] = useState<string | null>(null);
  useUnsavedWarning(settings !== null && kept !== null && JSON.stringify(settings) !== kept);
  // The journey's record as read: the save is refused (409) if someone stored it since
  const [revision, setRevision] = useState(0);
  const [missing, setMissing] = useState(false);
  const [problems, setProblems] = useState<FieldProblem[]>([]);
  const [message, setMessage] = useState<string | null>(null);
  const [segments, setSegments] = useState<SegmentChoice[]>([]);
  const [forms, setForms] = useState<string[]>([]);
  const path = `/admin/journeys/${encodeURIComponent(journeyId)}`;

  // Only the last reading is shown: two saves made quickly read the journey twice, and the
  // first reading, answering last, put back the settings and revision before the second save
  // (the next save then refused as changed meanwhile); a journey opened since, another's
  const begin = useLatestRequest();
  const load = useCallback(async () => {
    const isLatest = begin();
    try {
      const journey = await api<Settings & { revision: number }>("GET", path);
      if (!isLatest()) return;
      const { topic, triggers, reentry, exit, resume } = journey;
      const read = { topic, triggers, reentry, exit, resume };
      setSettings(read);
      setKept(JSON.stringify(read));
      setRevision(journey.revision);
      setMissing(false);
    } catch (error) {
      if (!isLatest()) return; // a reading asked since answers for the screen, a failure included
      if (error instanceof ApiError && error.status === 404) setMissing(true);
      else setMessage(describeError(error));
    }
  }, [path, begin]);

  useEffect(() => {
    void load();
    void savedSegments().then(setSegments);
    void formIds().then(setForms);
  }, [load]);

  if (missing) return <p className="note">{t("journey_settings.publish_first")}</p>;
  if (settings === null) return <p className="loading">{message ?? t("common.loading")}</p>;

  const change = (update: Partial<Settings>) => setSettings({ ...settings, ...update });
  const setTrigger = (index: number, trigger: Trigger) =>
    change({ triggers: settings.triggers.map((one, at) => (at === index ? trigger : one)) });
  const problemsAt = (prefix: string) =>
    problems.filter((p) => p.field === prefix || p.field.startsWith(`${prefix}.`));
  const shown = (prefix: string) =>
    problemsAt(prefix).map((p) => (
      <p key={`${p.field}:${p.message}`} className="problem" role="alert">
        {problemText(p)}
      </p>
    ));

  async function save(event: FormEvent) {
    event.preventDefault();
    setProblems([]);
    setMessage(null);
    try {
      // Whole, over the record this panel read: another's save meanwhile is not overwritten
      const stored = await api<{ revision: number }>("PUT", `${path}/settings`, {
        body: { ...settings, revision },
      });
      // The record as saved is the one the next save goes over: saved again before the
      // reading below answers (a slow network), it is not refused as someone else's change
      setRevision(stored.revision);
      setKept(JSON.stringify(settings));
      setMessage(t("common.saved"));
      await load();
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        // The edits stay in the panel, and the revision moves on to the journey as it is now:
        // saving again stores them over the other change, as the user then chooses to (with
        // the revision first read, every later save was refused too)
        setMessage(t("journey_settings.changed_meanwhile"));
        if (error.revision !== undefined) setRevision(error.revision);
        else {
          const isLatest = begin();
          await api<{ revision: number }>("GET", path)
            .then((now) => {
              if (isLatest()) setRevision(now.revision);
            })
            .catch((again) => {
              if (isLatest()) setMessage(describeError(again));
            });
        }
        return;
      }
      // Each problem is shown under its field (a trigger refusal once, in the user's language)
      setMessage(describeError(error, { problemsShownApart: true }));
      if (error instanceof ApiError) setProblems(error.problems);
    }
  }

  return (
    <form className="journey-settings" aria-label={t("journey_settings.title")} onSubmit={(event) => void save(event)}>
      <fieldset disabled={!editable}>
        <legend>{t("journey_settings.triggers")}</legend>
        {settings.triggers.length === 0 && <p className="note">{t("journey_settings.by_hand_only")}</p>}
        {settings.triggers.map((trigger, index) => (
          <div key={index} className="card">
            <label>
              {t("journey_settings.trigger_n", { n: index + 1 })}
              <select value={trigger.kind} onChange={(event) => setTrigger(index, triggerOf(event.target.value as Trigger["kind"]))}>
                {TRIGGER_KINDS.map((kind) => (
                  <option key={kind} value={kind}>
                    {t(`journey_settings.kinds.${kind}`)}
                  </option>
                ))}
              </select>
            </label>
            {trigger.kind === "form_submitted" && (
              <FormChoice value={trigger.form_id} forms={forms}
                onChange={(form_id) => setTrigger(index, { ...trigger, form_id })} />
            )}
            {trigger.kind === "event" && (
              <label>
                {t("journey_settings.event")}
                <input value={trigger.event?.type ?? ""} pattern="[a-z][a-z0-9_]*"
                  onChange={(event) => setTrigger(index, { ...trigger, event: { ...trigger.event, type: event.target.value } })} />
              </label>
            )}
            {trigger.kind === "score_crossed" && (
              <label>
                {t("journey_settings.threshold")}
                <input type="number" value={trigger.threshold ?? ""}
                  onChange={(event) => setTrigger(index, { ...trigger, threshold: Number(event.target.value) })} />
              </label>
            )}
            {trigger.kind === "stage_reached" && (
              <label>
                {t("journey_settings.stage")}
                <select value={trigger.stage ?? "mql"} onChange={(event) => setTrigger(index, { ...trigger, stage: event.target.value })}>
                  {STAGES.map((stage) => (
                    <option key={stage} value={stage}>
                      {t(`stages.${stage}`)}
                    </option>
                  ))}
                </select>
              </label>
            )}
            {trigger.kind === "segment" && (
              <label>
                {t("journey_settings.segment")}
                <input list="settings-segments" placeholder="silent_days>=90" value={trigger.segment ?? ""}
                  onChange={(event) => setTrigger(index, { ...trigger, segment: event.target.value })} />
              </label>
            )}
            {shown(`triggers.${index}`)}
            {editable && (
              <button type="button" className="link"
                onClick={() => change({ triggers: settings.triggers.filter((_, at) => at !== index) })}>
                {t("journey_settings.remove_trigger", { n: index + 1 })}
              </button>
            )}
          </div>
        ))}
        {problems
          .filter((p) => p.field === "triggers")
          .map((p) => (
            <p key={p.message} className="problem" role="alert">
              {problemText(p)}
            </p>
          ))}
        <datalist id="settings-segments">
          {segments.map((segment) => (
            <option key={segment.name} value={`in_segment=${segment.name}`} />
          ))}
        </datalist>
        {editable && (
          <button type="button" className="secondary"
            onClick={() => change({ triggers: [...settings.triggers, triggerOf("form_submitted")] })}>
            {t("journey_settings.add_trigger")}
          </button>
        )}
      </fieldset>

      <fieldset disabled={!editable}>
        <legend>{t("journey_settings.entering_again")}</legend>
        <label>
          {t("journey_settings.reentry")}
          <select value={settings.reentry.kind}
            onChange={(event) => change({ reentry: { ...settings.reentry, kind: event.target.value as Settings["reentry"]["kind"] } })}>
            {REENTRY_KINDS.map((kind) => (
              <option key={kind} value={kind}>
                {t(`journey_settings.reentries.${kind}`)}
              </option>
            ))}
          </select>
        </label>
        {settings.reentry.kind === "after_interval" && (
          <label>
            {t("journey_settings.interval_days")}
            <input type="number" min={1} max={3650} value={settings.reentry.interval_days}
              onChange={(event) => change({ reentry: { ...settings.reentry, interval_days: Number(event.target.value) } })} />
          </label>
        )}
        {shown("reentry")}
      </fieldset>

      <fieldset disabled={!editable}>
        <legend>{t("journey_settings.leaving")}</legend>
        <p className="note">{t("journey_settings.always_leaves")}</p>
        <fieldset className="stages">
          <legend>{t("journey_settings.exit_stages")}</legend>
          {STAGES.map((stage) => (
            <label key={stage} className="check">
              <input type="checkbox" checked={settings.exit.stages.includes(stage)}
                onChange={(event) =>
                  change({
                    exit: {
                      ...settings.exit,
                      stages: event.target.checked
                        ? [...settings.exit.stages, stage]
                        : settings.exit.stages.filter((one) => one !== stage),
                    },
                  })
                } />
              {t(`stages.${stage}`)}
            </label>
          ))}
        </fieldset>
        <label>
          {t("journey_settings.crm_statuses")}
          <WordsInput commasOnly value={settings.exit.crm_statuses}
            onChange={(crm_statuses) => change({ exit: { ...settings.exit, crm_statuses } })} />
        </label>
        <Goals goals={settings.exit.goals} forms={forms} editable={editable}
          onChange={(goals) => change({ exit: { ...settings.exit, goals } })} />
        <label>
          {t("journey_settings.goal_window_days")}
          <input type="number" min={1} max={365} value={settings.exit.goal_window_days}
            onChange={(event) => change({ exit: { ...settings.exit, goal_window_days: Number(event.target.value) } })} />
        </label>
        {shown("exit")}
      </fieldset>

      <fieldset disabled={!editable}>
        <legend>{t("journey_settings.mail")}</legend>
        <label>
          {t("journey_settings.topic")}
          <input required value={settings.topic} onChange={(event) => change({ topic: event.target.value })} />
        </label>
        {shown("topic")}
        <label>
          {t("journey_settings.resume")}
          <select value={settings.resume.kind}
            onChange={(event) => change({ resume: { ...settings.resume, kind: event.target.value as Settings["resume"]["kind"] } })}>
            {POLICIES.map((policy) => (
              <option key={policy} value={policy}>
                {t(`journeys.policies.${policy}.name`)}
              </option>
            ))}
          </select>
        </label>
        <p className="note">{t(`journeys.policies.${settings.resume.kind}.explained`)}</p>
        {settings.resume.kind === "pace" && (
          <label>
            {t("journey_settings.rate_per_minute")}
            <input type="number" min={1} max={10000} value={settings.resume.rate_per_minute}
              onChange={(event) => change({ resume: { ...settings.resume, rate_per_minute: Number(event.target.value) } })} />
          </label>
        )}
        {shown("resume")}
      </fieldset>
      {editable && <button type="submit">{t("journey_settings.save")}</button>}
      {message && <p role="status">{message}</p>}
    </form>
  );
}

/** The goals: each an activity, and the form, mail or page it must concern (any other
 * condition a goal was given elsewhere is kept as it is). */
/** Which form a trigger or a goal means (blank: any). The stored one stays offered even when the
 * list no longer has it, so saving never turns "this form" into "any form" unasked. */
function FormChoice({ value, forms, onChange }: { value?: string | null; forms: string[]; onChange: (form: string | null) => void }) {
  const { t } = useTranslation();
  return (
    <label>
      {t("journey_settings.form")}
      <select value={value ?? ""} onChange={(event) => onChange(event.target.value || null)}>
        <option value="">{t("journey_settings.any_form")}</option>
        {[...new Set([...(value ? [value] : []), ...forms])].map((form) => (
          <option key={form} value={form}>
            {form}
          </option>
        ))}
      </select>
    </label>
  );
}

function Goals(props: { goals: EventMatch[]; forms: string[]; editable: boolean; onChange: (goals: EventMatch[]) => void }) {
  const { t } = useTranslation();
  const set = (index: number, field: keyof EventMatch, value: string) =>
    props.onChange(props.goals.map((goal, at) => (at === index ? { ...goal, [field]: value || null } : goal)));
  return (
    <fieldset className="goals">
      <legend>{t("journey_settings.goals")}</legend>
      {props.goals.map((goal, index) => (
        <div key={index} className="card">
          <label>
            {t("journey_settings.goal_n", { n: index + 1 })}
            <input required pattern="[a-z][a-z0-9_]*" value={goal.type} onChange={(event) => set(index, "type", event.target.value)} />
          </label>
          {goal.type === "form_submitted" && (
            <FormChoice value={goal.form_id} forms={props.forms}
              onChange={(form_id) => set(index, "form_id", form_id ?? "")} />
          )}
          {goal.type === "page_view" && (
            <label>
              {t("rules.url_contains")}
              <input value={goal.url_contains ?? ""} onChange={(event) => set(index, "url_contains", event.target.value)} />
            </label>
          )}
          {props.editable && (
            <button type="button" className="link" onClick={() => props.onChange(props.goals.filter((_, at) => at !== index))}>
              {t("journey_settings.remove_goal", { n: index + 1 })}
            </button>
          )}
        </div>
      ))}
      {props.editable && props.goals.length < 10 && (
        <button type="button" className="secondary" onClick={() => props.onChange([...props.goals, { type: "form_submitted" }])}>
          {t("journey_settings.add_goal")}
        </button>
      )}
    </fieldset>
  );
}
