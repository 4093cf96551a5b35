// Importing a lead list: the dry run (the file as Excel or Sheets saved it, what each row would
// do before anything is written, and the rejected rows to download, fix and import again), then
// applying exactly that plan, and the imports so far, each of which may be undone.
import { type FormEvent, useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";

import { api, ApiError, describeError } from "../api";
import { saveAs } from "../download";
import { when } from "../i18n";
import { useMay } from "../me";

const SOURCES = ["import", "trade_show", "seminar", "web_form", "sales", "crm"] as const;
const ACTIONS = ["create", "update", "unchanged", "merged", "rejected"] as const;

interface PlannedRow {
  row: number;
  action: (typeof ACTIONS)[number];
  email: string | null;
  changes: Record<string, { before: string | null; after: string }>;
  kept: Record<string, { kept: string; source: string; file: string }>;
  consent: "yes" | "no" | null;
  reason: string | null;
  into: number | null;
}
interface Plan {
  plan_digest: string;
  encoding: string;
  columns: Record<string, string>;
  unmapped: string[];
  counts: Record<string, number>;
  rows: PlannedRow[];
  rejected_csv_base64?: string;
}

interface ImportRecord {
  import_id: string;
  file_name: string;
  source: string;
  encoding: string;
  by: string;
  at: string;
  plan_digest: string;
  counts: Record<string, number>;
  status: "applying" | "applied" | "undone";
  undone_at: string | null;
  undo: { removed: number; restored: number; kept: number } | null;
}
interface KeptRow {
  row: number;
  email: string;
  changed_since: string[];
}
interface Undone extends ImportRecord {
  kept: KeptRow[];
}

/** What a dry run asked: sent again, with the plan's digest, to apply exactly that plan. */
interface PlanRequest {
  file_name: string;
  content_base64: string;
  source: string;
  consent?: { column: string; yes: string[]; no: string[] };
  rows: number;
}

function base64Of(buffer: ArrayBuffer): string {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function values(text: string): string[] {
  return text
    .split(/[,、]/)
    .map((part) => part.trim())
    .filter(Boolean);
}

/** "create 1 · update 0 · …", in the screen's words. */
function countsText(t: (key: string) => string, counts: Record<string, number>): string {
  return ACTIONS.map((action) => `${t(`imports.actions.${action}`)} ${counts[action] ?? 0}`).join(" · ");
}

export default function Imports() {
  const { t } = useTranslation();
  const may = useMay();
  const mayRun = may("imports.run");
  const [file, setFile] = useState<File | null>(null);
  const [source, setSource] = useState<string>("import");
  const [consentColumn, setConsentColumn] = useState("");
  const [yes, setYes] = useState("");
  const [no, setNo] = useState("");
  const [plan, setPlan] = useState<Plan | null>(null);
  const [asked, setAsked] = useState<PlanRequest | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [history, setHistory] = useState(0);

  async function dryRun(event: FormEvent) {
    event.preventDefault();
    if (file === null) return;
    setMessage(null);
    setPlan(null);
    setAsked(null);
    try {
      const body: PlanRequest = {
        file_name: file.name,
        content_base64: base64Of(await file.arrayBuffer()),
        source,
        consent: consentColumn.trim()
          ? { column: consentColumn.trim(), yes: values(yes), no: values(no) }
          : undefined,
        rows: 1000,
      };
      setPlan(await api<Plan>("POST", "/admin/imports/plans", { body }));
      setAsked(body);
    } catch (error) {
      setMessage(describeError(error));
    }
  }

  async function apply(plan: Plan, asked: PlanRequest) {
    const counts = { create: plan.counts.create ?? 0, update: plan.counts.update ?? 0 };
    if (!window.confirm(t("imports.apply_confirm", counts))) return;
    setMessage(null);
    try {
      const record = await api<ImportRecord>("POST", "/admin/imports", {
        body: { ...asked, plan_digest: plan.plan_digest },
      });
      setPlan(null);
      setAsked(null);
      setMessage(t("imports.applied", { id: record.import_id, counts: countsText(t, record.counts) }));
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        // The leads changed since the dry run: this plan is not what would happen any more.
        setPlan(null);
        setAsked(null);
      }
      setMessage(describeError(error));
    }
    setHistory((count) => count + 1);
  }

  function download(plan: Plan) {
    const bytes = Uint8Array.from(atob(plan.rejected_csv_base64 ?? ""), (c) => c.charCodeAt(0));
    // In the encoding the list came in, so it imports again as it was: no charset named.
    saveAs(bytes, `rejected-${file?.name ?? "rows.csv"}`, "text/csv");
  }

  return (
    <section>
      <h1>{t("imports.title")}</h1>
      <p className="note">{t("imports.explained")}</p>
      <form className="filters" onSubmit={(event) => void dryRun(event)}>
        <label>
          {t("imports.file")}
          <input type="file" accept=".csv,.tsv,.txt,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" required
            onChange={(event) => setFile(event.target.files?.[0] ?? null)} />
        </label>
        <label>
          {t("forms.source")}
          <select value={source} onChange={(event) => setSource(event.target.value)}>
            {SOURCES.map((name) => (
              <option key={name} value={name}>
                {t(`forms.sources.${name}`)}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t("imports.consent_column")}
          <input value={consentColumn} onChange={(event) => setConsentColumn(event.target.value)} />
        </label>
        <label>
          {t("imports.yes")}
          <input value={yes} onChange={(event) => setYes(event.target.value)} />
        </label>
        <label>
          {t("imports.no")}
          <input value={no} onChange={(event) => setNo(event.target.value)} />
        </label>
        <button type="submit">{t("imports.dry_run")}</button>
      </form>
      {message && <p role="status">{message}</p>}
      {plan && (
        <>
          <p role="status">
            {t("imports.read_as", { encoding: plan.encoding })} {countsText(t, plan.counts)}
          </p>
          {mayRun && asked && (
            <p>
              <button type="button" onClick={() => void apply(plan, asked)}>
                {t("imports.apply")}
              </button>{" "}
              <span className="note">{t("imports.apply_explained")}</span>
            </p>
          )}
          <p>
            {Object.entries(plan.columns)
              .map(([header, field]) => `${header} → ${field}`)
              .join(", ")}
            {plan.unmapped.length > 0 && <span className="note"> ({t("imports.left_out")}: {plan.unmapped.join(", ")})</span>}
          </p>
          {plan.rejected_csv_base64 && (
            <button type="button" className="secondary" onClick={() => download(plan)}>
              {t("imports.download_rejected")}
            </button>
          )}
          <table className="list" aria-label={t("imports.rows")}>
            <thead>
              <tr>
                <th scope="col">{t("imports.row")}</th>
                <th scope="col">{t("imports.action")}</th>
                <th scope="col">{t("settings.email")}</th>
                <th scope="col">{t("imports.what")}</th>
              </tr>
            </thead>
            <tbody>
              {plan.rows.map((row) => (
                <tr key={row.row} className={row.action === "rejected" ? "refused" : undefined}>
                  <td className="number">{row.row}</td>
                  <td>{t(`imports.actions.${row.action}`)}</td>
                  <td>{row.email}</td>
                  <td>
                    {row.reason}
                    {row.into !== null && t("imports.joins", { row: row.into })}
                    {Object.entries(row.changes).map(([name, change]) => (
                      <div key={name}>
                        {name}: {change.before ?? "—"} → {change.after}
                      </div>
                    ))}
                    {Object.entries(row.kept).map(([name, kept]) => (
                      <div key={name} className="detail">
                        {t("imports.kept", { field: name, value: kept.kept, source: kept.source, file: kept.file })}
                      </div>
                    ))}
                    {row.consent && <div>{t(`imports.consent_${row.consent}`)}</div>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <History changed={history} onUndone={() => setMessage(null)} />
    </section>
  );
}

/** The imports so far, newest first; each applied one may be undone. */
function History({ changed, onUndone }: { changed: number; onUndone: () => void }) {
  const { t } = useTranslation();
  const may = useMay();
  const mayUndo = may("imports.undo");
  const [records, setRecords] = useState<ImportRecord[] | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [undone, setUndone] = useState<Undone | null>(null);

  const load = useCallback(async () => {
    const found = await api<{ items: ImportRecord[] }>("GET", "/admin/imports");
    setRecords(found.items);
  }, []);

  useEffect(() => {
    void load().catch((error) => {
      setRecords([]);
      setMessage(describeError(error));
    });
  }, [load, changed]);

  async function undo(record: ImportRecord) {
    if (!window.confirm(t("imports.undo_confirm", { file: record.file_name, when: when(record.at) }))) return;
    onUndone();
    setMessage(null);
    setUndone(null);
    try {
      const result = await api<Undone>("POST", `/admin/imports/${encodeURIComponent(record.import_id)}/undo`);
      setUndone(result);
      setMessage(
        t("imports.undone", {
          id: result.import_id,
          removed: result.undo?.removed ?? 0,
          restored: result.undo?.restored ?? 0,
          kept: result.undo?.kept ?? 0,
        }),
      );
    } catch (error) {
      setMessage(describeError(error));
    }
    try {
      await load();
    } catch (error) {
      setMessage(describeError(error));
    }
  }

  return (
    <section className="import-history">
      <h2>{t("imports.history")}</h2>
      {records === null ? (
        <p className="loading">{t("common.loading")}</p>
      ) : records.length === 0 ? (
        <p>{t("imports.none")}</p>
      ) : (
        <table className="list" aria-label={t("imports.history")}>
          <thead>
            <tr>
              <th scope="col">{t("imports.when")}</th>
              <th scope="col">{t("imports.by")}</th>
              <th scope="col">{t("imports.file")}</th>
              <th scope="col">{t("forms.source")}</th>
              <th scope="col">{t("imports.counts")}</th>
              <th scope="col">{t("imports.status")}</th>
              {mayUndo && <th scope="col">{t("journeys.actions")}</th>}
            </tr>
          </thead>
          <tbody>
            {records.map((record) => (
              <tr key={record.import_id}>
                <td>{when(record.at)}</td>
                <td>{record.by}</td>
                <td>
                  {record.file_name}
                  <div className="detail">
                    {record.import_id} · {record.encoding}
                  </div>
                </td>
                <td>{t(`forms.sources.${record.source}`, { defaultValue: record.source })}</td>
                <td>{countsText(t, record.counts)}</td>
                <td>
                  {t(`imports.statuses.${record.status}`)}
                  {record.status === "undone" && (
                    <div className="detail">
                      {when(record.undone_at)}
                      {record.undo && ` · ${t("imports.undo_counts", { ...record.undo })}`}
                    </div>
                  )}
                </td>
                {mayUndo && (
                  <td>
                    {record.status !== "undone" && (
                      <button type="button" className="danger" onClick={() => void undo(record)}>
                        {t("imports.undo")}
                        <span className="visually-hidden"> {record.file_name} ({when(record.at)})</span>
                      </button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {message && <p role="status">{message}</p>}
      {undone && undone.kept.length > 0 && (
        <table className="list" aria-label={t("imports.kept_rows")}>
          <thead>
            <tr>
              <th scope="col">{t("imports.row")}</th>
              <th scope="col">{t("settings.email")}</th>
              <th scope="col">{t("imports.changed_since")}</th>
            </tr>
          </thead>
          <tbody>
            {undone.kept.map((row) => (
              <tr key={row.row}>
                <td className="number">{row.row}</td>
                <td>{row.email}</td>
                <td>{row.changed_since.join(", ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
