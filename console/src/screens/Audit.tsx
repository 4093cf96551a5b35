import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useTranslation } from "react-i18next";

import { api, apiFile, describeError } from "../api";
import { saveAs } from "../download";
import i18n, { when } from "../i18n";
import { useMe } from "../me";
import { fieldName } from "../names";
import { useLatestRequest } from "../useLatestRequest";
import "../screens.css";

interface AuditRow {
  entry_id: string;
  at: string;
  user_id: string;
  email: string | null;
  role: string;
  via: string;
  source_ip: string | null;
  operation: string;
  target: string;
  /** The lead's address, for an entry about a lead (the log keeps its id). */
  target_email?: string | null;
  outcome: string;
  before: Record<string, unknown>;
  after: Record<string, unknown>;
  detail: string | null;
}

/** An operation in words (``leads.suppress``: すべての配信を停止); the code when it has none. */
function operationName(operation: string): string {
  return i18n.t(`audit.operations.${operation}`, { defaultValue: operation });
}

/** What an entry was done to, in words: a lead by its address, else the kind of thing by its
 * name and then its id (``segment:warm_leads``: セグメント warm_leads). */
function targetText(row: AuditRow): string {
  if (row.target_email) return row.target_email;
  const [kind, ...rest] = row.target.split(":");
  const named = i18n.t(`audit.target_kinds.${kind}`, { defaultValue: kind });
  return rest.length ? `${named} ${rest.join(":")}` : named;
}

/** A value as a person reads it: an instant in the browser's time, a list joined, a yes/no,
 * "—" for none. */
function valueText(name: string, value: unknown): string {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "boolean") return i18n.t(value ? "audit.yes" : "audit.no");
  if (typeof value === "string") {
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value)) return when(value);
    if (name === "stage") return i18n.t(`stages.${value}`, { defaultValue: value });
    if (name === "suppressed") return i18n.t(`suppressions.reasons.${value}`, { defaultValue: value });
    return value;
  }
  if (Array.isArray(value)) return value.length ? value.map((item) => valueText("", item)).join(", ") : "—";
  if (typeof value === "object") {
    // An import's rows by what they did (create 3, update 0…) in the imports screen's words
    const label = (key: string) =>
      name === "counts" ? i18n.t(`imports.actions.${key}`, { defaultValue: key }) : key;
    return Object.entries(value as Record<string, unknown>)
      .map(([key, inner]) => `${label(key)} ${valueText(key, inner)}`)
      .join(", ");
  }
  return String(value);
}

const blank = (value: unknown) => value === null || value === undefined || value === "";

/** What changed, field by field: only the fields whose value is not the same before and after,
 * and not absent on both sides (the log writes every field of a new record's "before" as null).
 * ``before`` is null for a record made by the entry: its values alone are said. */
function changesOf(row: AuditRow): { name: string; before: string | null; after: string }[] {
  const names = [...new Set([...Object.keys(row.after), ...Object.keys(row.before)])];
  const made = Object.values(row.before).every(blank);
  return names
    .filter((name) => JSON.stringify(row.before[name]) !== JSON.stringify(row.after[name]))
    .filter((name) => !(blank(row.before[name]) && blank(row.after[name])))
    .map((name) => ({
      name: i18n.t(`audit.fields.${name}`, { defaultValue: fieldName(name) }),
      before: made ? null : valueText(name, row.before[name]),
      after: name in row.after ? valueText(name, row.after[name]) : i18n.t("audit.removed"),
    }));
}

/** The browser's own calendar day ``days`` before today, as a date input holds it. A UTC date
 * here would put "today" a day off for half of every day in Tokyo. */
function localDayAgo(days: number): string {
  const now = new Date();
  const day = new Date(now.getFullYear(), now.getMonth(), now.getDate() - days);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${day.getFullYear()}-${pad(day.getMonth() + 1)}-${pad(day.getDate())}`;
}

/** Where the file after a cut one starts, and what it is asked with: the first file's filters
 * and name. */
interface NextFile {
  filters: Record<string, string | undefined>;
  name: string;
  before: string;
  part: number;
}

/** The instant a local calendar day starts, ``later`` days after ``day``. */
function startOfLocalDay(day: string, later = 0): string {
  const [year, month, date] = day.split("-").map(Number);
  return new Date(year, month - 1, date + later).toISOString();
}

/** Entries a page shows (more on asking), and the most one CSV export holds (the API's cap). */
const PAGE = 500;
const EXPORT_MAX = 5000;
/** Sent with a CSV file the API cut: the ``before`` of the next file. */
const NEXT_BEFORE_HEADER = "x-tsunagu-next-before";
const WHO_PAUSE_MS = 300;

export default function Audit() {
  const { t } = useTranslation();
  const me = useMe();
  // Both days are included: the last seven days up to and with today, on the browser's calendar.
  const [since, setSince] = useState(localDayAgo(7));
  const [until, setUntil] = useState(localDayAgo(0));
  const [who, setWho] = useState("");
  const [operation, setOperation] = useState("");
  const [outcome, setOutcome] = useState("");
  const [rows, setRows] = useState<AuditRow[]>([]);
  const [nextBefore, setNextBefore] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  // After a file the API cut (the range holds more than one file): where the next file starts
  const [nextFile, setNextFile] = useState<NextFile | null>(null);
  const [exporting, setExporting] = useState(false);
  // What is typed in "who" is asked for once the typing pauses, not at every key
  const [typed, setTyped] = useState("");
  useEffect(() => {
    const timer = window.setTimeout(() => setTyped(who.trim()), WHO_PAUSE_MS);
    return () => window.clearTimeout(timer);
  }, [who]);

  // The filters are the API's (the same entries in the table and in the CSV), each page full
  const asked = useMemo(
    () => ({
      since: startOfLocalDay(since),
      until: startOfLocalDay(until, 1),
      who: typed || undefined,
      operation: operation || undefined,
      outcome: outcome || undefined,
    }),
    [since, until, typed, operation, outcome],
  );

  const begin = useLatestRequest();
  const load = useCallback(
    async (before?: string) => {
      setProblem(null);
      const isLatest = begin();
      try {
        const page = await api<{ items: AuditRow[]; next_before: string | null }>("GET", "/admin/audit", {
          query: { ...asked, before, limit: PAGE },
        });
        if (!isLatest()) return; // the filters changed meanwhile: a newer answer comes
        setRows((shown) => (before ? [...shown, ...page.items] : page.items));
        setNextBefore(page.next_before);
      } catch (error) {
        // An older request's failure is not said over the newer answer (nor its refusal of
        // filters she has since changed)
        if (isLatest()) setProblem(describeError(error));
      }
    },
    [asked, begin],
  );

  // Other filters: a file cut under the old ones does not go on, not even one still on its way
  const filtersSeen = useRef(0);
  useEffect(() => {
    void load();
    filtersSeen.current += 1;
    setNextFile(null);
  }, [load]);

  /** One file of the filtered range, newest first: the first, or the one after a cut file
   * (asked with that file's filters and name, whatever the form holds now). */
  async function exportCsv(after?: NextFile) {
    setProblem(null);
    setExporting(true);
    const filters = after?.filters ?? asked;
    const name = after?.name ?? `tsunagu-audit-${since}-${until}`;
    const part = after?.part ?? 1;
    const seen = filtersSeen.current;
    try {
      // Byte for byte: text() would drop the BOM Excel needs
      const file = await apiFile("/admin/audit", {
        ...filters,
        before: after?.before,
        limit: EXPORT_MAX,
        format: "csv",
      });
      saveAs(new Uint8Array(file.bytes), `${name}${part > 1 ? `-part${part}` : ""}.csv`);
      const before = file.headers.get(NEXT_BEFORE_HEADER);
      if (seen === filtersSeen.current) {
        setNextFile(before ? { filters, name, before, part: part + 1 } : null);
      }
    } catch (error) {
      setProblem(describeError(error));
    } finally {
      setExporting(false);
    }
  }

  // An admin may do every operation: the ones there are to filter by
  const operations = me.operations.filter((name) => name.includes(".")).sort();
  return (
    <section>
      <h1>{t("audit.title")}</h1>
      <form className="filters" onSubmit={(event) => event.preventDefault()}>
        <label>
          {t("audit.since")}
          <input type="date" value={since} onChange={(event) => setSince(event.target.value)} />
        </label>
        <label>
          {t("audit.until")}
          <input type="date" value={until} onChange={(event) => setUntil(event.target.value)} />
        </label>
        <label>
          {t("audit.who")}
          <input value={who} onChange={(event) => setWho(event.target.value)} />
        </label>
        <label>
          {t("audit.operation")}
          <select value={operation} onChange={(event) => setOperation(event.target.value)}>
            <option value="">{t("common.any")}</option>
            {operations.map((name) => (
              <option key={name} value={name}>
                {operationName(name)}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t("audit.outcome")}
          <select value={outcome} onChange={(event) => setOutcome(event.target.value)}>
            <option value="">{t("common.any")}</option>
            <option value="done">{t("audit.outcomes.done")}</option>
            <option value="refused">{t("audit.outcomes.refused")}</option>
          </select>
        </label>
        <button type="button" disabled={exporting} onClick={() => void exportCsv()}>
          {t("audit.export")}
        </button>
      </form>
      {problem && (
        <p role="alert" className="problem">
          {problem}
        </p>
      )}
      <p className="note">
        {t(nextBefore ? "audit.count_more" : "audit.count", { count: rows.length })}{" "}
        {t("audit.export_holds", { count: EXPORT_MAX })}
      </p>
      {nextFile && (
        <p role="status" className="note">
          {t("audit.export_cut", { part: nextFile.part - 1, count: EXPORT_MAX })}{" "}
          <button
            type="button"
            className="secondary"
            disabled={exporting}
            onClick={() => void exportCsv(nextFile)}
          >
            {t("audit.export_next", { part: nextFile.part })}
          </button>
        </p>
      )}
      <table className="list audit">
        <thead>
          <tr>
            <th scope="col">{t("audit.at")}</th>
            <th scope="col">{t("audit.who")}</th>
            <th scope="col">{t("audit.operation")}</th>
            <th scope="col">{t("audit.target")}</th>
            <th scope="col" className="outcome">
              {t("audit.outcome")}
            </th>
            <th scope="col">{t("audit.change")}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.entry_id} className={row.outcome === "refused" ? "refused" : undefined}>
              <td>{when(row.at)}</td>
              <td>
                {row.email ?? row.user_id}
                <br />
                <small>
                  {row.role} · {row.via}
                  {row.source_ip ? ` · ${row.source_ip}` : ""}
                </small>
              </td>
              <td>{operationName(row.operation)}</td>
              <td>
                {targetText(row)}
                {row.target_email && <div className="detail">{row.target}</div>}
              </td>
              <td className="outcome">{t(`audit.outcomes.${row.outcome}`, row.outcome)}</td>
              <td>
                <Changes row={row} />
                {row.detail && <div>{row.detail}</div>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {nextBefore && (
        <p>
          <button type="button" className="secondary" onClick={() => void load(nextBefore)}>
            {t("common.more")}
          </button>
        </p>
      )}
    </section>
  );
}

/** An entry's change, field by field (before → after), with the entry as stored one click
 * away for whoever needs it whole. */
function Changes({ row }: { row: AuditRow }) {
  const { t } = useTranslation();
  const stored = Object.keys(row.before).length > 0 || Object.keys(row.after).length > 0;
  if (!stored) return null;
  const changes = changesOf(row);
  return (
    <>
      {changes.length > 0 && (
        <ul className="changes">
          {changes.map((change) => (
            <li key={change.name}>
              {change.name}: {change.before !== null && `${change.before} → `}
              {change.after}
            </li>
          ))}
        </ul>
      )}
      <details>
        <summary>{t("audit.raw")}</summary>
        <code>
          {JSON.stringify(row.before)} → {JSON.stringify(row.after)}
        </code>
      </details>
    </>
  );
}
