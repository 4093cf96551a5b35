import { type FormEvent, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useSearchParams } from "react-router";

import { api, describeError } from "../api";
import { EXPORT_ENCODINGS, type ExportEncoding, exportLeads } from "../download";
import { when } from "../i18n";
import { useMay } from "../me";
import { useLatestRequest } from "../useLatestRequest";

export interface LeadRow {
  lead_id: string;
  email: string;
  name: string | null;
  company: string | null;
  owner_email: string | null;
  stage: string;
  score: number | null;
  grade: string | null;
  tags: string[];
  last_activity_at: string | null;
}

interface SearchPage {
  items: LeadRow[];
  next_cursor: string | null;
  truncated: boolean;
}

export const STAGES = ["lead", "mql", "sql", "opportunity", "customer", "recycled", "disqualified"];
const FILTERS = ["q", "stage", "owner", "tag", "grade", "score_min", "score_max"] as const;

/** Which encoding an exported CSV is written in, each choice said for whom it is. */
export function EncodingChoice({
  value,
  onChange,
}: {
  value: ExportEncoding;
  onChange: (encoding: ExportEncoding) => void;
}) {
  const { t } = useTranslation();
  return (
    <label>
      {t("export.encoding")}
      <select value={value} onChange={(event) => onChange(event.target.value as ExportEncoding)}>
        {EXPORT_ENCODINGS.map((encoding) => (
          <option key={encoding} value={encoding}>
            {t(`export.encodings.${encoding}`)}
          </option>
        ))}
      </select>
    </label>
  );
}

/** Every lead as CSV (marketers and admins), on the record in the audit log. */
function ExportAll() {
  const { t } = useTranslation();
  const [encoding, setEncoding] = useState<ExportEncoding>("utf-8");
  const [message, setMessage] = useState<string | null>(null);

  async function exportAll() {
    setMessage(null);
    try {
      setMessage(await exportLeads(null, encoding));
    } catch (error) {
      setMessage(describeError(error));
    }
  }

  return (
    <div className="toolbar">
      <EncodingChoice value={encoding} onChange={setEncoding} />
      <button type="button" className="secondary" onClick={() => void exportAll()}>
        {t("export.button")}
      </button>
      <span className="note">
        {t("export.every_lead")} {t("export.audited")}
      </span>
      {message && <span role="status">{message}</span>}
    </div>
  );
}

export function Leads() {
  const { t } = useTranslation();
  const may = useMay();
  const [params, setParams] = useSearchParams();
  const [draft, setDraft] = useState<Record<string, string>>(() =>
    Object.fromEntries(FILTERS.map((name) => [name, params.get(name) ?? ""])),
  );
  const [pages, setPages] = useState<SearchPage[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);

  const query = Object.fromEntries(FILTERS.map((name) => [name, params.get(name) ?? ""]));
  const key = JSON.stringify(query);

  // Only the answer to the last request asked is shown: the list first read unfiltered can
  // answer after a search typed at once, and would put every lead back under her search word.
  const begin = useLatestRequest();
  async function load(cursor: string | null) {
    const isLatest = begin();
    setLoading(true);
    setProblem(null);
    try {
      const page = await api<SearchPage>("GET", "/admin/leads", {
        query: { ...query, limit: 50, cursor },
      });
      if (!isLatest()) return;
      setPages((before) => (cursor ? [...before, page] : [page]));
    } catch (error) {
      if (isLatest()) setProblem(describeError(error));
    } finally {
      if (isLatest()) setLoading(false);
    }
  }

  useEffect(() => {
    void load(null);
    // Loads again when the filters in the address change (key), not on every render.
  }, [key]);

  function search(event: FormEvent) {
    event.preventDefault();
    const next = Object.fromEntries(Object.entries(draft).filter(([, value]) => value.trim()));
    // The same filters leave the address as it is, so nothing would load: the list would stay
    // as it was when first shown, without the leads captured or imported since. Search again
    // means "show me the list now".
    const unchanged = FILTERS.every((name) => (next[name] ?? "") === (params.get(name) ?? ""));
    if (unchanged) void load(null);
    else setParams(next);
  }

  const rows = pages.flatMap((page) => page.items);
  const last = pages[pages.length - 1];
  const field = (name: string) => ({
    value: draft[name],
    onChange: (event: { target: { value: string } }) =>
      setDraft((before) => ({ ...before, [name]: event.target.value })),
  });

  return (
    <section>
      <h1>{t("leads.title")}</h1>
      <form className="filters" role="search" onSubmit={search}>
        <label>
          {t("leads.word")}
          <input type="search" placeholder={t("leads.word_hint")} {...field("q")} />
        </label>
        <label>
          {t("leads.stage")}
          <select {...field("stage")}>
            <option value="">{t("common.any")}</option>
            {STAGES.map((stage) => (
              <option key={stage} value={stage}>
                {t(`stages.${stage}`)}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t("leads.owner")}
          <input type="email" {...field("owner")} />
        </label>
        <label>
          {t("leads.tag")}
          <input {...field("tag")} />
        </label>
        <label>
          {t("leads.grade")}
          <select {...field("grade")}>
            <option value="">{t("common.any")}</option>
            {["A", "B", "C", "D"].map((grade) => (
              <option key={grade}>{grade}</option>
            ))}
          </select>
        </label>
        <label>
          {t("leads.score_min")}
          <input type="number" inputMode="numeric" {...field("score_min")} />
        </label>
        <label>
          {t("leads.score_max")}
          <input type="number" inputMode="numeric" {...field("score_max")} />
        </label>
        <button type="submit">{t("leads.search")}</button>
      </form>
      {may("leads.export") && <ExportAll />}
      {problem && (
        <p role="alert" className="problem">
          {problem}
        </p>
      )}
      {last?.truncated && <p className="note">{t("leads.truncated")}</p>}
      <table className="list">
        <caption className="visually-hidden">{t("leads.title")}</caption>
        <thead>
          <tr>
            <th scope="col">{t("leads.email")}</th>
            <th scope="col">{t("leads.name")}</th>
            <th scope="col">{t("leads.company")}</th>
            <th scope="col">{t("leads.stage")}</th>
            <th scope="col">{t("leads.score")}</th>
            <th scope="col">{t("leads.grade")}</th>
            <th scope="col">{t("leads.tags")}</th>
            <th scope="col">{t("leads.last_activity")}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((lead) => (
            <tr key={lead.lead_id}>
              <td>
                <Link to={`/leads/${encodeURIComponent(lead.email)}`}>{lead.email}</Link>
              </td>
              <td>{lead.name}</td>
              <td>{lead.company}</td>
              <td>{t(`stages.${lead.stage}`, lead.stage)}</td>
              <td className="number">{lead.score === null ? "—" : Math.round(lead.score)}</td>
              <td>{lead.grade ?? "—"}</td>
              <td>{lead.tags.join(", ")}</td>
              <td>{when(lead.last_activity_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && rows.length === 0 && <p>{t("leads.none")}</p>}
      {loading && <p className="loading">{t("common.loading")}</p>}
      {last?.next_cursor && !loading && (
        <button type="button" onClick={() => void load(last.next_cursor)}>
          {t("common.more")}
        </button>
      )}
    </section>
  );
}
