// The chosen node's settings as forms, per kind: which mail a send sends (and its result slot
// and deadline), when a wait lets the lead go on (in business time) and how its steps are
// named, what a wait-for listens for and for how long, what an update sets on the lead, what
// the owner is told, each case of a branch (its name and condition; the saved segments offered
// as in_segment=<name>), each path's share of a split, a holdout's share and a webhook's event.
// Edges (exits, next, default, timed-out) are drawn on the canvas, not typed. Every field is
// also in the node's JSON under "Every field".
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";

import { savedSegments, templateIds } from "../choices";
import { PairsInput, WordsInput } from "../inputs";
import { STAGES } from "./Leads";

export type JourneyNode = { id: string; kind: string; label: string; [field: string]: unknown };

interface Awaited {
  type: string;
  outcome: string;
  of_mail?: string | null;
  url_contains?: string | null;
}
interface Exit {
  outcome: string;
  next: string;
}
interface Case {
  outcome: string;
  when: string;
  next: string;
}
interface SplitPath {
  outcome: string;
  percent: number;
  next: string;
}

const RULE_KINDS = ["next_business_day", "same_day_or_next", "business_days_later"] as const;
const AWAITED_KINDS = [
  "link_clicked", "mail_opened", "email_replied", "form_submitted", "seminar_attended", "page_view",
];
const DAY = 86_400;

export function NodeFields({
  node,
  editable,
  sends,
  onChange,
}: {
  node: JourneyNode;
  editable: boolean;
  /** The journey's send nodes: what a wait-for may listen to the activity of. */
  sends: { slot: string; label: string }[];
  onChange: (node: JourneyNode) => void;
}) {
  const { t } = useTranslation();
  const set = (field: string, value: unknown) => {
    const next = { ...node, [field]: value };
    if (value === undefined || value === null || value === "") delete next[field];
    onChange(next);
  };
  const disabled = !editable;

  const optionalText = (field: string, label: string, help?: string, pattern?: string) => (
    <>
      <label>
        {label}
        <input value={String(node[field] ?? "")} pattern={pattern} readOnly={disabled}
          onChange={(event) => set(field, event.target.value)} />
      </label>
      {help && <p className="note">{help}</p>}
    </>
  );
  // An outcome names the edge it is taken on: renaming one renames that edge, never moves it
  const renamed = <T extends { outcome: string }>(items: T[], index: number, outcome: string) =>
    items.map((item, at) => (at === index ? { ...item, outcome } : item));

  switch (node.kind) {
    case "send":
      return (
        <>
          <TemplateChoice value={String(node.template ?? "")} disabled={disabled} onChange={(v) => set("template", v)} />
          <details>
            <summary>{t("node.send_more")}</summary>
            {optionalText("result", t("node.result"), t("node.result_help"), "[a-z][a-z0-9_]*")}
            {optionalText("deadline_input_field", t("node.deadline"), t("node.deadline_help"), "[a-z][a-z0-9_]*")}
          </details>
        </>
      );
    case "wait": {
      const rule = (node.rule ?? { kind: "next_business_day", at: "10:00" }) as Record<string, unknown>;
      const setRule = (field: string, value: unknown) => {
        const next: Record<string, unknown> = { ...rule, [field]: value };
        if (field === "kind") {
          // Only the fields of the chosen kind: the definition refuses the others' leftovers
          delete next.days;
          delete next.cutoff;
          delete next.only_that_day;
          if (value === "business_days_later") next.days = 3;
          if (value === "same_day_or_next") next.cutoff = "17:00";
        }
        if (value === false) delete next[field];
        set("rule", next);
      };
      return (
        <fieldset className="node-fields" disabled={disabled}>
          <legend>{t("node.when")}</legend>
          <label>
            {t("node.rule")}
            <select value={String(rule.kind)} onChange={(event) => setRule("kind", event.target.value)}>
              {RULE_KINDS.map((kind) => (
                <option key={kind} value={kind}>
                  {t(`node.rules.${kind}`)}
                </option>
              ))}
            </select>
          </label>
          {rule.kind === "business_days_later" && (
            <label>
              {t("node.days")}
              <input type="number" min={1} max={60} value={Number(rule.days ?? 1)}
                onChange={(event) => setRule("days", Number(event.target.value))} />
            </label>
          )}
          {rule.kind === "same_day_or_next" && (
            <label>
              {t("node.cutoff")}
              <input type="time" value={String(rule.cutoff ?? "17:00")}
                onChange={(event) => setRule("cutoff", event.target.value)} />
            </label>
          )}
          <label>
            {t("node.at")}
            <input type="time" value={String(rule.at ?? "10:00")} onChange={(event) => setRule("at", event.target.value)} />
          </label>
          {rule.kind === "same_day_or_next" && (
            <label className="check">
              <input type="checkbox" checked={Boolean(rule.only_that_day)}
                onChange={(event) => setRule("only_that_day", event.target.checked)} />
              {t("node.only_that_day")}
            </label>
          )}
          <p className="note">{t("node.business_time")}</p>
          {optionalText("schedule_label", t("node.schedule_label"))}
          {optionalText("wait_label", t("node.wait_label"), t("node.step_labels_help"))}
        </fieldset>
      );
    }
    case "wait_for": {
      const events = (Array.isArray(node.events) ? node.events : []) as Awaited[];
      const exits = (Array.isArray(node.exits) ? node.exits : []) as Exit[];
      const seconds = Number(node.within_seconds ?? 3 * DAY);
      const setEvent = (index: number, field: keyof Awaited, value: string) => {
        const changed = events.map((event, i) => {
          if (i !== index) return event;
          const next: Awaited = { ...event, [field]: value || undefined };
          if (!value) delete next[field];
          return next;
        });
        const update: JourneyNode = { ...node, events: changed };
        if (field === "outcome") {
          // The exit of the old outcome follows the rename: its edge stays where it was drawn
          const before = events[index].outcome;
          update.exits = exits.map((exit) => (exit.outcome === before ? { ...exit, outcome: value } : exit));
        }
        onChange(update);
      };
      return (
        <fieldset className="node-fields" disabled={disabled}>
          <legend>{t("node.listens")}</legend>
          <label>
            {t("node.within_days")}
            <input type="number" min={1} max={365} step="any" value={Math.round((seconds / DAY) * 100) / 100}
              onChange={(event) => set("within_seconds", Math.max(60, Math.round(Number(event.target.value) * DAY)))} />
          </label>
          {events.map((event, index) => (
            <div key={index} className="card awaited">
              <label>
                {t("node.activity")}
                <select value={event.type} onChange={(e) => setEvent(index, "type", e.target.value)}>
                  {[...new Set([event.type, ...AWAITED_KINDS])].map((kind) => (
                    <option key={kind} value={kind}>
                      {t(`events.${kind}`, { defaultValue: kind })}
                    </option>
                  ))}
                </select>
              </label>
              {(event.type === "link_clicked" || event.type === "mail_opened") && (
                <label>
                  {t("node.of_mail")}
                  <select value={event.of_mail ?? ""} onChange={(e) => setEvent(index, "of_mail", e.target.value)}>
                    <option value="">{t("node.any_mail")}</option>
                    {sends.map((send) => (
                      <option key={send.slot} value={send.slot}>
                        {send.label}
                      </option>
                    ))}
                  </select>
                </label>
              )}
              {(event.type === "link_clicked" || event.type === "page_view") && (
                <label>
                  {t("rules.url_contains")}
                  <input value={event.url_contains ?? ""} onChange={(e) => setEvent(index, "url_contains", e.target.value)} />
                </label>
              )}
              <label>
                {t("node.outcome")}
                <input value={event.outcome} pattern="[a-z][a-z0-9_]*"
                  onChange={(e) => setEvent(index, "outcome", e.target.value)} />
              </label>
              {editable && events.length > 1 && (
                <button type="button" className="link"
                  onClick={() => onChange({ ...node, events: events.filter((_, i) => i !== index) })}>
                  {t("rules.remove")}
                </button>
              )}
            </div>
          ))}
          {editable && events.length < 10 && (
            <button type="button" className="secondary"
              onClick={() => onChange({ ...node, events: [...events, { type: "link_clicked", outcome: `outcome_${events.length + 1}` }] })}>
              {t("node.add_event")}
            </button>
          )}
          <p className="note">{t("node.exits_by_edges")}</p>
          {optionalText("question", t("node.question"), t("node.question_help"))}
        </fieldset>
      );
    }
    case "update_lead":
      return (
        <fieldset className="node-fields" disabled={disabled}>
          <legend>{t("node.sets")}</legend>
          <label>
            {t("node.stage")}
            <select value={String(node.stage ?? "")} onChange={(event) => set("stage", event.target.value)}>
              <option value="">{t("node.stage_unchanged")}</option>
              {STAGES.map((stage) => (
                <option key={stage} value={stage}>
                  {t(`stages.${stage}`)}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t("node.add_tags")}
            <WordsInput value={(node.add_tags as string[] | undefined) ?? []} onChange={(v) => set("add_tags", v.length ? v : undefined)} />
          </label>
          <label>
            {t("node.remove_tags")}
            <WordsInput value={(node.remove_tags as string[] | undefined) ?? []} onChange={(v) => set("remove_tags", v.length ? v : undefined)} />
          </label>
          <label>
            {t("node.fields")}
            <PairsInput
              value={(node.fields as Record<string, string> | undefined) ?? {}}
              placeholder="interest=pricing"
              readOnly={disabled}
              onChange={(v) => set("fields", Object.keys(v).length ? v : undefined)}
            />
          </label>
          <p className="note">{t("node.fields_help")}</p>
        </fieldset>
      );
    case "branch": {
      const cases = Array.isArray(node.cases) ? (node.cases as Case[]) : [];
      const setWhen = (index: number, when: string) =>
        set("cases", cases.map((one, at) => (at === index ? { ...one, when } : one)));
      return (
        <fieldset className="node-fields" disabled={disabled}>
          <legend>{t("node.cases")}</legend>
          {cases.length === 0 && <p className="note">{t("node.cases_by_edges")}</p>}
          {cases.map((one, index) => (
            <div key={index} className="card">
              <label>
                {t("node.case_name", { number: index + 1 })}
                <input value={one.outcome} pattern="[a-z][a-z0-9_]*"
                  onChange={(event) => set("cases", renamed(cases, index, event.target.value))} />
              </label>
              <label>
                {t("node.case_when", { outcome: one.outcome })}
                <input list="segment-conditions" maxLength={1000} value={one.when}
                  onChange={(event) => setWhen(index, event.target.value)} />
              </label>
            </div>
          ))}
          {cases.length > 0 && <p className="detail">{t("node.case_help")}</p>}
          <SegmentConditions />
        </fieldset>
      );
    }
    case "split": {
      const paths = Array.isArray(node.paths) ? (node.paths as SplitPath[]) : [];
      const total = paths.reduce((sum, path) => sum + (Number(path.percent) || 0), 0);
      const setShare = (index: number, percent: number) =>
        set("paths", paths.map((path, at) => (at === index ? { ...path, percent } : path)));
      return (
        <fieldset className="node-fields" disabled={disabled}>
          <legend>{t("node.paths")}</legend>
          {paths.length < 2 && <p className="note">{t("node.paths_by_edges")}</p>}
          {paths.map((path, index) => (
            <div key={index} className="card">
              <label>
                {t("node.path_name", { number: index + 1 })}
                <input value={path.outcome} pattern="[a-z][a-z0-9_]*"
                  onChange={(event) => set("paths", renamed(paths, index, event.target.value))} />
              </label>
              <label>
                {t("node.path_share", { outcome: path.outcome })}
                <input type="number" min={1} max={99} value={path.percent}
                  onChange={(event) => setShare(index, Number(event.target.value))} />
              </label>
            </div>
          ))}
          {paths.length > 0 && (
            <p className={total === 100 ? "note" : "problem"} role={total === 100 ? undefined : "alert"}>
              {t("node.paths_total", { total })}
            </p>
          )}
        </fieldset>
      );
    }
    case "holdout":
      return (
        <fieldset className="node-fields" disabled={disabled}>
          <legend>{t("node.holdout")}</legend>
          <label>
            {t("node.holdout_percent")}
            <input type="number" min={1} max={50} value={Number(node.percent ?? 10)}
              onChange={(event) => set("percent", Number(event.target.value))} />
          </label>
          <p className="note">{t("node.holdout_help")}</p>
        </fieldset>
      );
    case "webhook":
      return optionalText("event", t("node.webhook_event"), t("node.webhook_help"), "[a-z][a-z0-9_.]*");
    case "notify_owner":
      return (
        <label>
          {t("node.message")}
          <textarea rows={4} value={String(node.message ?? "")} readOnly={disabled}
            onChange={(event) => set("message", event.target.value)} />
        </label>
      );
    default:
      return null;
  }
}

function TemplateChoice({ value, disabled, onChange }: { value: string; disabled: boolean; onChange: (v: string) => void }) {
  const { t } = useTranslation();
  const [ids, setIds] = useState<string[]>([]);
  useEffect(() => {
    void templateIds().then(setIds);
  }, []);
  return (
    <label>
      {t("canvas.template")}
      <input value={value} list="template-ids" readOnly={disabled} onChange={(event) => onChange(event.target.value)} />
      <datalist id="template-ids">
        {ids.map((id) => (
          <option key={id} value={id} />
        ))}
      </datalist>
    </label>
  );
}

/** The saved segments as conditions a case may hold (in_segment=<name>), for its input's list. */
function SegmentConditions() {
  const [found, setFound] = useState<{ name: string; description: string }[]>([]);
  useEffect(() => {
    void savedSegments().then(setFound);
  }, []);
  return (
    <datalist id="segment-conditions">
      {found.map((segment) => (
        <option key={segment.name} value={`in_segment=${segment.name}`}>
          {segment.description || segment.name}
        </option>
      ))}
    </datalist>
  );
}
