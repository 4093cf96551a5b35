// Scoring, grading, owner and CRM rules as forms: the sheet a marketer keeps (what an activity
// is worth and on which form or mail, how fit is graded, who gets which lead, which side wins
// when the CRM disagrees), saved whole through the API, which checks it and answers each
// problem with the field it concerns. The JSON stays one tab away for the rare conditions the
// forms leave out (a mail's message id, a link id).
import { type FormEvent, type ReactNode, useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";

import { ApiError, allItems, api, describeError, type FieldProblem, problemText } from "../api";
import { useMay } from "../me";
import { PairsInput } from "../inputs";
import { eventName } from "../names";
import { useUnsavedWarning } from "../unsaved";
import "../screens.css";

interface ScoringRule {
  rule_id: string;
  description: string;
  type: string;
  url_contains: string | null;
  form_id: string | null;
  template_id?: string | null;
  properties?: Record<string, string>;
  points: number;
  cap: number | null;
  cap_period: "day" | "week" | "month" | "ever";
  half_life_days: number | null;
  [other: string]: unknown;
}
interface KeywordPoints {
  keyword: string;
  points: number;
}
interface SizeBand {
  min_employees: number;
  points: number;
}
type OwnerRule =
  | { kind: "domain"; domains: string[]; owner: string }
  | { kind: "country"; countries: string[]; owner: string }
  | { kind: "round_robin"; team: string; members: string[] };
interface Config {
  scoring: { rules: ScoringRule[]; mql_threshold: number; time_zone: string };
  grading: {
    job_titles: KeywordPoints[];
    departments: KeywordPoints[];
    industries: KeywordPoints[];
    company_sizes: SizeBand[];
    countries: Record<string, number>;
    email_domains: Record<string, number>;
    thresholds: { a: number; b: number; c: number };
  };
  minimum_grade: "A" | "B" | "C" | "D";
  owners: { rules: OwnerRule[] };
  crm_merge: Record<(typeof CRM_FIELDS)[number], (typeof MERGE_POLICIES)[number]>;
  [other: string]: unknown;
}
/** The rules as the API answers them: with how many times they were saved, which a save sends
 * back (refused, 409, if someone saved them since). */
type Revised = Config & { revision: number };

const CRM_FIELDS = ["status", "owner", "deal_amount", "currency"] as const;
const MERGE_POLICIES = ["crm_wins", "tsunagu_wins", "newest_wins"] as const;

const TABS = ["scoring", "grading", "owners", "crm", "json"] as const;
/** The activities a scoring rule is offered, by name; any other kind (a site's own event) is
 * typed as it is sent. */
const EVENT_KINDS = [
  "page_view",
  "form_submitted",
  "mail_opened",
  "link_clicked",
  "email_replied",
  "seminar_attended",
  "consent_changed",
  "unsubscribed",
  "lead_imported",
];
/** The activity choice that opens a field to type an event kind not listed. */
const OTHER_KIND = "";
const KEYWORD_LISTS = ["job_titles", "departments", "industries"] as const;
const MAPS = ["countries", "email_domains"] as const;

/** A number input's value: null when blank (no cap, no decay), else the number. */
function optionalNumber(text: string): number | null {
  return text.trim() === "" ? null : Number(text);
}

function list(text: string): string[] {
  return text
    .split(/[,、\n]/)
    .map((part) => part.trim())
    .filter(Boolean);
}

export function Rules() {
  const { t } = useTranslation();
  const may = useMay();
  const [config, setConfig] = useState<Config | null>(null);
  const [tab, setTab] = useState<(typeof TABS)[number]>("scoring");
  const [json, setJson] = useState("");
  const [message, setMessage] = useState<string | null>(null);
  const [problems, setProblems] = useState<FieldProblem[]>([]);
  // The rules as read (after each save too): while the forms or the JSON differ, leaving asks
  const [kept, setKept] = useState<Config | null>(null);
  // The revision the next save goes over: the one read, saved, or named by a refusal (someone
  // saved meanwhile). The store's count, never an edit of the user's: kept out of the forms
  // and the JSON, so the edits are compared and shown without it.
  const [over, setOver] = useState<number | undefined>(undefined);
  useUnsavedWarning(
    kept !== null &&
      (tab === "json"
        ? json !== JSON.stringify(kept, null, 2)
        : JSON.stringify(config) !== JSON.stringify(kept)),
  );

  const show = useCallback(({ revision, ...found }: Revised) => {
    setOver(revision);
    setConfig(found);
    setKept(found);
    setJson(JSON.stringify(found, null, 2));
  }, []);
  const load = useCallback(async () => {
    show(await api<Revised>("GET", "/admin/qualification"));
  }, [show]);

  useEffect(() => {
    void load().catch((error) => setMessage(describeError(error)));
  }, [load]);

  function change(update: (draft: Config) => void) {
    setConfig((before) => {
      if (before === null) return before;
      const draft = structuredClone(before);
      update(draft);
      return draft;
    });
  }

  // The JSON tab edits the same rules: entering it shows the forms' state, leaving it takes
  // the text back (and stays when it is not JSON, saying why).
  function open(next: (typeof TABS)[number]) {
    setMessage(null);
    if (next === "json" && config !== null) {
      setJson(JSON.stringify(config, null, 2));
    } else if (tab === "json" && next !== "json") {
      try {
        setConfig(JSON.parse(json) as Config);
      } catch (error) {
        setMessage(t("settings.not_json", { error: (error as Error).message }));
        return;
      }
    }
    setTab(next);
  }

  async function save(event: FormEvent) {
    event.preventDefault();
    setMessage(null);
    setProblems([]);
    let body: unknown = config;
    if (tab === "json") {
      try {
        body = JSON.parse(json);
      } catch (error) {
        setMessage(t("settings.not_json", { error: (error as Error).message }));
        return;
      }
    }
    // Over the revision read: refused, nothing stored, if someone saved the rules since -
    // their change is not silently lost (a body that is no object is the API's to refuse)
    if (typeof body === "object" && body !== null && !Array.isArray(body)) body = { ...body, revision: over };
    try {
      // The answer is the rules as saved, with their new revision: shown before it is said
      // saved (until then the editor still counts as unsaved, and leaving at once would ask)
      show(await api<Revised>("PUT", "/admin/qualification", { body }));
      setMessage(t("common.saved"));
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && error.revision !== undefined) {
        // The edits stay as they are; a second save goes over the revision saved meanwhile
        setOver(error.revision);
        setMessage(t("settings.rules_changed_meanwhile"));
        return;
      }
      // Each problem is shown at its field (and all of them in the list under the form)
      setMessage(describeError(error, { problemsShownApart: true }));
      if (error instanceof ApiError) setProblems(error.problems);
    }
  }

  if (config === null) return <p className="loading">{message ?? t("common.loading")}</p>;
  const readOnly = !may("qualification.set");
  const problemsAt = (prefix: string) =>
    problems.filter((p) => p.field === prefix || p.field.startsWith(`${prefix}.`));

  return (
    <section>
      <h2>{t("settings.qualification")}</h2>
      <p className="note">{t("settings.qualification_explained")}</p>
      <div className="toolbar" role="group" aria-label={t("rules.sections")}>
        {TABS.map((name) => (
          <button
            key={name}
            type="button"
            className={tab === name ? undefined : "secondary"}
            aria-pressed={tab === name}
            onClick={() => open(name)}
          >
            {t(`rules.tabs.${name}`)}
          </button>
        ))}
      </div>
      <form onSubmit={(event) => void save(event)}>
        <fieldset disabled={readOnly} className="rules">
          {tab === "scoring" && <Scoring config={config} change={change} problemsAt={problemsAt} editable={!readOnly} />}
          {tab === "grading" && <Grading config={config} change={change} problemsAt={problemsAt} editable={!readOnly} />}
          {tab === "owners" && <Owners config={config} change={change} problemsAt={problemsAt} editable={!readOnly} />}
          {tab === "crm" && <CrmMerge config={config} change={change} problemsAt={problemsAt} editable={!readOnly} />}
          {tab === "json" && (
            // The whole width: rules are long lines of JSON
            <label style={{ display: "flex" }}>
              {t("settings.rules_json")}
              <textarea
                rows={22}
                value={json}
                spellCheck={false}
                onChange={(event) => setJson(event.target.value)}
              />
            </label>
          )}
        </fieldset>
        {!readOnly && <button type="submit">{t("common.save")}</button>}
      </form>
      {message && <p role="status">{message}</p>}
      {problems.length > 0 && (
        <ul className="problem" aria-label={t("rules.problems")}>
          {problems.map((problem) => (
            <li key={`${problem.field}:${problem.message}`}>
              <code>{problem.field}</code> {problem.message}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

interface Part {
  config: Config;
  editable: boolean;
  change: (update: (draft: Config) => void) => void;
  problemsAt: (prefix: string) => FieldProblem[];
}

function Problems({ found }: { found: FieldProblem[] }) {
  if (found.length === 0) return null;
  return (
    <div className="problem" role="alert">
      {found.map(problemText).join(" ")}
    </div>
  );
}

function RemoveButton({ label, onClick, shown }: { label: string; onClick: () => void; shown: boolean }) {
  const { t } = useTranslation();
  if (!shown) return null;
  return (
    <button type="button" className="link" aria-label={t("rules.remove_named", { name: label })} onClick={onClick}>
      {t("rules.remove")}
    </button>
  );
}

function Scoring({ config, change, problemsAt, editable }: Part) {
  const { t } = useTranslation();
  const rules = config.scoring.rules;
  return (
    <>
      <div className="filters">
        <label>
          {t("rules.mql_threshold")}
          <input
            type="number"
            min={1}
            value={config.scoring.mql_threshold}
            onChange={(event) => change((d) => void (d.scoring.mql_threshold = Number(event.target.value)))}
          />
        </label>
        <label>
          {t("rules.minimum_grade")}
          <select
            value={config.minimum_grade}
            onChange={(event) => change((d) => void (d.minimum_grade = event.target.value as Config["minimum_grade"]))}
          >
            {["A", "B", "C", "D"].map((grade) => (
              <option key={grade} value={grade}>
                {grade}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t("rules.time_zone")}
          <input
            value={config.scoring.time_zone}
            onChange={(event) => change((d) => void (d.scoring.time_zone = event.target.value))}
          />
        </label>
      </div>
      <Problems found={[...problemsAt("scoring.mql_threshold"), ...problemsAt("scoring.time_zone")]} />
      <p className="note">{t("rules.scoring_explained")}</p>
      <IdList id="rule-forms" path="/admin/forms" idOf="form_id" />
      <IdList id="rule-templates" path="/admin/templates" idOf="template_id" />
      <table className="list scoring-rules" aria-label={t("rules.tabs.scoring")}>
        <thead>
          <tr>
            <th scope="col">{t("rules.description")}</th>
            <th scope="col">{t("rules.event")}</th>
            <th scope="col">{t("rules.url_contains")}</th>
            <th scope="col">{t("rules.which")}</th>
            <th scope="col">{t("rules.properties")}</th>
            <th scope="col">{t("rules.points")}</th>
            <th scope="col">{t("rules.cap_per")}</th>
            <th scope="col">{t("rules.half_life")}</th>
            <th scope="col">
              <span className="visually-hidden">{t("journeys.actions")}</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {rules.map((rule, index) => {
            const name = rule.description || rule.rule_id;
            const at = (field: string) => t("rules.field_of", { field: t(`rules.${field}`), name });
            const edit = (update: (r: ScoringRule) => void) =>
              change((d) => update(d.scoring.rules[index]));
            const found = problemsAt(`scoring.rules.${index}`);
            return (
              <tr key={rule.rule_id} className={found.length ? "refused" : undefined}>
                <td>
                  <input aria-label={at("description")} value={rule.description} size={12}
                    onChange={(event) => edit((r) => void (r.description = event.target.value))} />
                  <Problems found={found} />
                </td>
                <td>
                  <Activity rule={rule} label={at("event")} otherLabel={at("event_kind")} edit={edit} />
                </td>
                <td>
                  <input aria-label={at("url_contains")} value={rule.url_contains ?? ""} size={8}
                    onChange={(event) => edit((r) => void (r.url_contains = event.target.value || null))} />
                </td>
                <td>
                  <Which rule={rule} label={at("which")} edit={edit} />
                </td>
                <td>
                  {/* An example, not a value: blank means no other condition */}
                  <PairsInput label={at("properties")} rows={1} placeholder={t("rules.properties_example")}
                    value={rule.properties ?? {}}
                    onChange={(properties) => edit((r) => void (r.properties = properties))} />
                </td>
                <td>
                  <input aria-label={at("points")} type="number" value={rule.points} style={{ width: "4rem" }}
                    onChange={(event) => edit((r) => void (r.points = Number(event.target.value)))} />
                </td>
                <td className="cap">
                  <input aria-label={at("cap")} type="number" min={1} value={rule.cap ?? ""} style={{ width: "4rem" }}
                    onChange={(event) => edit((r) => void (r.cap = optionalNumber(event.target.value)))} />{" "}
                  <select aria-label={at("per")} value={rule.cap_period}
                    onChange={(event) => edit((r) => void (r.cap_period = event.target.value as ScoringRule["cap_period"]))}>
                    {(["day", "week", "month", "ever"] as const).map((period) => (
                      <option key={period} value={period}>
                        {t(`rules.periods.${period}`)}
                      </option>
                    ))}
                  </select>
                </td>
                <td>
                  <input aria-label={at("half_life")} type="number" min={1} value={rule.half_life_days ?? ""} style={{ width: "4rem" }}
                    onChange={(event) => edit((r) => void (r.half_life_days = optionalNumber(event.target.value)))} />
                </td>
                <td>
                  <RemoveButton shown={editable} label={name} onClick={() => change((d) => void d.scoring.rules.splice(index, 1))} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {editable && <button
        type="button"
        className="secondary"
        onClick={() =>
          change((d) => {
            const taken = new Set(d.scoring.rules.map((r) => r.rule_id));
            let n = d.scoring.rules.length + 1;
            while (taken.has(`rule-${n}`)) n += 1;
            d.scoring.rules.push({
              rule_id: `rule-${n}`,
              description: "",
              type: "page_view",
              url_contains: null,
              form_id: null,
              points: 5,
              cap: null,
              cap_period: "day",
              half_life_days: null,
            });
          })
        }
      >
        {t("rules.add_rule")}
      </button>}
    </>
  );
}

function PointsTable({
  caption,
  keyLabel,
  rows,
  onKey,
  onPoints,
  onRemove,
  onAdd,
  numericKey = false,
  found,
  editable,
}: {
  caption: string;
  keyLabel: string;
  rows: [string, number][];
  onKey: (index: number, value: string) => void;
  onPoints: (index: number, value: number) => void;
  onRemove: (index: number) => void;
  onAdd: () => void;
  numericKey?: boolean;
  found: FieldProblem[];
  editable: boolean;
}) {
  const { t } = useTranslation();
  return (
    <div className="card">
      <h3>{caption}</h3>
      <Problems found={found} />
      <table className="list" aria-label={caption}>
        <thead>
          <tr>
            <th scope="col">{keyLabel}</th>
            <th scope="col">{t("rules.points")}</th>
            <th scope="col">
              <span className="visually-hidden">{t("journeys.actions")}</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map(([key, points], index) => (
            <tr key={index}>
              <td>
                <input aria-label={`${caption}: ${keyLabel} ${index + 1}`} type={numericKey ? "number" : "text"}
                  value={key} onChange={(event) => onKey(index, event.target.value)} />
              </td>
              <td>
                <input aria-label={`${caption}: ${t("rules.points")} ${index + 1}`} type="number" value={points}
                  style={{ width: "5rem" }} onChange={(event) => onPoints(index, Number(event.target.value))} />
              </td>
              <td>
                <RemoveButton shown={editable} label={`${caption} ${key}`} onClick={() => onRemove(index)} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {editable && (
        <button type="button" className="secondary" onClick={onAdd}>
          {t("rules.add_row")}
        </button>
      )}
    </div>
  );
}

function Grading({ config, change, problemsAt, editable }: Part) {
  const { t } = useTranslation();
  const grading = config.grading;
  const thresholds = grading.thresholds;
  return (
    <>
      <p className="note">{t("rules.grading_explained")}</p>
      <div className="filters">
        {(["a", "b", "c"] as const).map((grade) => (
          <label key={grade}>
            {t("rules.threshold", { grade: grade.toUpperCase() })}
            <input type="number" value={thresholds[grade]}
              onChange={(event) => change((d) => void (d.grading.thresholds[grade] = Number(event.target.value)))} />
          </label>
        ))}
      </div>
      <Problems found={problemsAt("grading.thresholds")} />
      <div className="split">
        {KEYWORD_LISTS.map((name) => (
          <PointsTable
            key={name}
            caption={t(`rules.grading.${name}`)}
            keyLabel={t("rules.keyword")}
            rows={grading[name].map((row) => [row.keyword, row.points])}
            onKey={(i, value) => change((d) => void (d.grading[name][i].keyword = value))}
            onPoints={(i, value) => change((d) => void (d.grading[name][i].points = value))}
            onRemove={(i) => change((d) => void d.grading[name].splice(i, 1))}
            onAdd={() => change((d) => void d.grading[name].push({ keyword: "", points: 10 }))}
            found={problemsAt(`grading.${name}`)}
            editable={editable}
          />
        ))}
        <PointsTable
          caption={t("rules.grading.company_sizes")}
          keyLabel={t("rules.min_employees")}
          numericKey
          rows={grading.company_sizes.map((row) => [String(row.min_employees), row.points])}
          onKey={(i, value) => change((d) => void (d.grading.company_sizes[i].min_employees = Number(value)))}
          onPoints={(i, value) => change((d) => void (d.grading.company_sizes[i].points = value))}
          onRemove={(i) => change((d) => void d.grading.company_sizes.splice(i, 1))}
          onAdd={() => change((d) => void d.grading.company_sizes.push({ min_employees: 0, points: 5 }))}
          found={problemsAt("grading.company_sizes")}
          editable={editable}
        />
        {MAPS.map((name) => {
          const rows = Object.entries(grading[name]);
          const rebuild = (d: Config, next: [string, number][]) => {
            d.grading[name] = Object.fromEntries(next);
          };
          return (
            <PointsTable
              key={name}
              caption={t(`rules.grading.${name}`)}
              keyLabel={t(name === "countries" ? "rules.country" : "rules.domain")}
              rows={rows}
              onKey={(i, value) =>
                change((d) => rebuild(d, rows.map(([k, p], j) => [j === i ? value : k, p])))
              }
              onPoints={(i, value) =>
                change((d) => rebuild(d, rows.map(([k, p], j) => [k, j === i ? value : p])))
              }
              onRemove={(i) => change((d) => rebuild(d, rows.filter((_, j) => j !== i)))}
              onAdd={() => change((d) => rebuild(d, [...rows, ["", 10]]))}
              found={problemsAt(`grading.${name}`)}
              editable={editable}
            />
          );
        })}
      </div>
    </>
  );
}

function Owners({ config, change, problemsAt, editable }: Part) {
  const { t } = useTranslation();
  const rules = config.owners.rules;
  const move = (from: number, to: number) =>
    change((d) => {
      const [rule] = d.owners.rules.splice(from, 1);
      d.owners.rules.splice(to, 0, rule);
    });
  return (
    <>
      <p className="note">{t("rules.owners_explained")}</p>
      {/* Problems of the order (a rule after the round robin), not of one rule */}
      <Problems found={problemsAt("owners.rules").filter((p) => p.field === "owners.rules")} />
      {rules.length === 0 && <p>{t("rules.no_owner_rules")}</p>}
      <ol className="owner-rules">
        {rules.map((rule, index) => {
          const edit = (update: (r: OwnerRule) => void) => change((d) => update(d.owners.rules[index]));
          let fields: ReactNode;
          if (rule.kind === "round_robin") {
            fields = (
              <>
                <label>
                  {t("rules.team")}
                  <input value={rule.team}
                    onChange={(event) => edit((r) => void ((r as typeof rule).team = event.target.value))} />
                </label>
                <label className="wide">
                  {t("rules.members")}
                  <input value={rule.members.join(", ")}
                    onChange={(event) => edit((r) => void ((r as typeof rule).members = list(event.target.value)))} />
                </label>
              </>
            );
          } else {
            const values = rule.kind === "domain" ? rule.domains : rule.countries;
            fields = (
              <>
                <label className="wide">
                  {t(rule.kind === "domain" ? "rules.domains" : "rules.countries")}
                  <input value={values.join(", ")}
                    onChange={(event) =>
                      edit((r) => {
                        if (r.kind === "domain") r.domains = list(event.target.value);
                        else if (r.kind === "country") r.countries = list(event.target.value);
                      })
                    } />
                </label>
                <label>
                  {t("rules.owner")}
                  <input type="email" value={rule.owner}
                    onChange={(event) => edit((r) => void ((r as { owner: string }).owner = event.target.value))} />
                </label>
              </>
            );
          }
          return (
            <li key={index} className="card">
              <div className="journey-fields">
                <label>
                  {t("rules.kind")}
                  <select value={rule.kind}
                    onChange={(event) =>
                      change((d) => {
                        const kind = event.target.value as OwnerRule["kind"];
                        d.owners.rules[index] =
                          kind === "round_robin"
                            ? { kind, team: "sales", members: [] }
                            : kind === "domain"
                              ? { kind, domains: [], owner: "" }
                              : { kind, countries: [], owner: "" };
                      })
                    }>
                    {(["domain", "country", "round_robin"] as const).map((kind) => (
                      <option key={kind} value={kind}>
                        {t(`rules.owner_kinds.${kind}`)}
                      </option>
                    ))}
                  </select>
                </label>
                {fields}
              </div>
              <Problems found={problemsAt(`owners.rules.${index}`)} />
              {editable && <div className="toolbar">
                <button type="button" className="link" disabled={index === 0} onClick={() => move(index, index - 1)}>
                  {t("rules.up")}
                </button>
                <button type="button" className="link" disabled={index === rules.length - 1} onClick={() => move(index, index + 1)}>
                  {t("rules.down")}
                </button>
                <RemoveButton shown={editable} label={t("rules.owner_rule", { n: index + 1 })}
                  onClick={() => change((d) => void d.owners.rules.splice(index, 1))} />
              </div>}
            </li>
          );
        })}
      </ol>
      {editable && (
        <button type="button" className="secondary"
          onClick={() => change((d) => void d.owners.rules.push({ kind: "domain", domains: [], owner: "" }))}>
          {t("rules.add_owner_rule")}
        </button>
      )}
    </>
  );
}

/** The form or the mail a scoring rule's activity must concern, where its kind has one: a form
 * submission of that form, an open or click of that mail. Blank: any. */
function Which({
  rule,
  label,
  edit,
}: {
  rule: ScoringRule;
  label: string;
  edit: (update: (r: ScoringRule) => void) => void;
}) {
  const { t } = useTranslation();
  const field = rule.type === "form_submitted" ? "form_id" : MAIL_EVENTS.has(rule.type) ? "template_id" : null;
  if (field === null) return <span aria-hidden="true">—</span>;
  // Blank is any form or mail: the placeholder says so, rather than an id that looks chosen
  return (
    <input aria-label={label} size={10} list={field === "form_id" ? "rule-forms" : "rule-templates"}
      placeholder={t(field === "form_id" ? "rules.any_form" : "rules.any_mail")} value={rule[field] ?? ""}
      onChange={(event) => edit((r) => void (r[field] = event.target.value || null))} />
  );
}

/** A scoring rule's activity, chosen by its name; "another" opens a field for an event kind
 * not listed (a site's own event, sent by its name). */
function Activity({
  rule,
  label,
  otherLabel,
  edit,
}: {
  rule: ScoringRule;
  label: string;
  otherLabel: string;
  edit: (update: (r: ScoringRule) => void) => void;
}) {
  const { t } = useTranslation();
  const listed = EVENT_KINDS.includes(rule.type);
  const [typing, setTyping] = useState(!listed);
  const other = typing || !listed;
  return (
    <>
      <select aria-label={label} className="activity" value={other ? OTHER_KIND : rule.type}
        onChange={(event) => {
          const kind = event.target.value;
          setTyping(kind === OTHER_KIND);
          if (kind !== OTHER_KIND) edit((r) => void (r.type = kind));
        }}>
        {EVENT_KINDS.map((kind) => (
          <option key={kind} value={kind}>
            {eventName(kind)}
          </option>
        ))}
        <option value={OTHER_KIND}>{t("rules.other_event")}</option>
      </select>
      {other && (
        <input aria-label={otherLabel} value={rule.type} size={14} required
          onChange={(event) => edit((r) => void (r.type = event.target.value.trim()))} />
      )}
    </>
  );
}

const MAIL_EVENTS = new Set(["mail_opened", "link_clicked"]);

/** Which side wins, per field, when the CRM and Tsunagu disagree (the CRM webhook's merge). */
function CrmMerge({ config, change, problemsAt }: Part) {
  const { t } = useTranslation();
  return (
    <>
      <p className="note">{t("rules.crm_explained")}</p>
      <dl className="policies">
        {MERGE_POLICIES.map((policy) => (
          <div key={policy}>
            <dt>{t(`rules.policies.${policy}`)}</dt>
            <dd>{t(`rules.policy_explained.${policy}`)}</dd>
          </div>
        ))}
      </dl>
      {CRM_FIELDS.map((field) => (
        <label key={field}>
          {t(`rules.crm_fields.${field}`)}
          <select value={config.crm_merge[field]}
            onChange={(event) => change((d) => void (d.crm_merge[field] = event.target.value as (typeof MERGE_POLICIES)[number]))}>
            {MERGE_POLICIES.map((policy) => (
              <option key={policy} value={policy}>
                {t(`rules.policies.${policy}`)}
              </option>
            ))}
          </select>
        </label>
      ))}
      <Problems found={problemsAt("crm_merge")} />
    </>
  );
}

/** The forms or templates stored, offered by id with their names where a rule names one (a
 * list that cannot be read offers nothing: the id may still be typed). */
function IdList({ id, path, idOf }: { id: string; path: string; idOf: string }) {
  const [items, setItems] = useState<{ id: string; name: string }[]>([]);
  useEffect(() => {
    allItems<Record<string, unknown>>(path)
      .then((found) => setItems(found.map((item) => ({ id: String(item[idOf]), name: String(item.name ?? "") }))))
      .catch(() => setItems([]));
  }, [path, idOf]);
  return (
    <datalist id={id}>
      {items.map((item) => (
        <option key={item.id} value={item.id}>
          {item.name}
        </option>
      ))}
    </datalist>
  );
}
