// Importing a lead list, the dry run: the file as Excel or Sheets saved it, what each row would
// do before anything is written, and the rejected rows to download, fix and import again.
import { type FormEvent, useState } from "react";
import { useTranslation } from "react-i18next";

import { api, describeError } from "../api";
import { saveAs } from "../download";

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
  encoding: string;
  columns: Record<string, string>;
  unmapped: string[];
  counts: Record<string, number>;
  rows: PlannedRow[];
  rejected_csv_base64?: string;
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

export default function Imports() {
  const { t } = useTranslation();
  const [file, setFile] = useState<File | null>(null);
  const [source, setSource] = useState<string>("import");
  const [consentColumn, setConsentColumn] = useState("");
  const [yes, setYes] = useState("");
  const [no, setNo] = useState("");
  const [plan, setPlan] = useState<Plan | null>(null);
  const [message, setMessage] = useState<string | null>(null);

  async function dryRun(event: FormEvent) {
    event.preventDefault();
    if (file === null) return;
    setMessage(null);
    setPlan(null);
    try {
      const body = {
        file_name: file.name,
        content_base64: base64Of(await file.arrayBuffer()),
        source,
        consent: consentColumn.trim()
          ? { column: consentColumn.trim(), yes: values(yes), no: values(no) }
          : undefined,
        rows: 1000,
      };
      setPlan(await api<Plan>("POST", "/admin/imports/plans", { body }));
    } catch (error) {
      setMessage(describeError(error));
    }
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
            {t("imports.read_as", { encoding: plan.encoding })}{" "}
            {ACTIONS.map((action) => `${t(`imports.actions.${action}`)} ${plan.counts[action] ?? 0}`).join(" · ")}
          </p>
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
    </section>
  );
}
