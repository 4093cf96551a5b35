// Saved segments: named lead filters that journeys start for and branch on (in_segment=<name>),
// that leads are exported by, and that, marked "exclude from marketing", keep marketing mail off
// the leads they select. A filter is tried (how many leads, the first of them) before it is
// saved. Everyone sees the segments and may try a filter; marketers and admins save, delete and
// export (every export is in the audit log).
import { type FormEvent, useCallback, useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router";

import { ApiError, api, describeError } from "../api";
import { type ExportEncoding, exportLeads } from "../download";
import { when } from "../i18n";
import { useMay } from "../me";
import { useUnsavedWarning } from "../unsaved";
import { latestAnswer, useLatestRequest } from "../useLatestRequest";
import { EncodingChoice, type LeadRow } from "./Leads";

interface SavedSegment {
  name: string;
  filter: string;
  description: string;
  exclude_from_marketing: boolean;
  by: string;
  at: string;
  version: number;
}

interface Preview {
  count: number;
  sample: LeadRow[];
}

interface Shown extends SavedSegment, Preview {
  used_by: string[];
}

/** The filter's conditions, each with an example as it is typed (the help under the filter). */
const CONDITIONS = [
  ["stage", "stage=lead"],
  ["tag", "tag=vip"],
  ["score", "score>=50,score<=80"],
  ["grade", "grade=A"],
  ["owner", "owner=a@example.jp"],
  ["domain", "domain=example.co.jp"],
  ["source", "source=web_form"],
  ["field", "field.company=株式会社Example"],
  ["consent", "consent.newsletter=yes"],
  ["did", "did=form_submitted/30d"],
  ["did_not", "did_not=mail_opened/90d"],
  ["silent_days", "silent_days>=90"],
  ["import", "import=imp_..."],
  ["in_segment", "in_segment=other"],
] as const;

const NAME_PATTERN = "[a-z][a-z0-9_\\-]{0,62}";

export default function Segments() {
  const { t } = useTranslation();
  const may = useMay();
  const maySave = may("segments.save");
  const mayDelete = may("segments.delete");
  const mayExport = may("leads.export");
  const [segments, setSegments] = useState<SavedSegment[] | null>(null);
  // The form: a new segment (opened null) or the one opened, at the version read.
  const [opened, setOpened] = useState<{ name: string; version: number } | null>(null);
  const [filter, setFilter] = useState("");
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [exclude, setExclude] = useState(false);
  // The form as opened (or emptied for a new one): while it differs, leaving it asks first
  const [kept, setKept] = useState({ filter: "", name: "", description: "", exclude: false });
  useUnsavedWarning(
    filter !== kept.filter || name !== kept.name || description !== kept.description || exclude !== kept.exclude,
  );
  const [preview, setPreview] = useState<Preview | null>(null);
  const [usedBy, setUsedBy] = useState<string[] | null>(null);
  const [encoding, setEncoding] = useState<ExportEncoding>("utf-8");
  const [message, setMessage] = useState<string | null>(null);
  // What went wrong, said next to what caused it: the saved list (reading, opening, exporting
  // a segment), the filter tried, or the segment saved or deleted.
  const [problem, setProblem] = useState<{ at: "list" | "try" | "save"; text: string } | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);

  const load = useCallback(async () => {
    const found = await api<{ items: SavedSegment[] }>("GET", "/admin/segments");
    setSegments(found.items);
  }, []);

  useEffect(() => {
    void load().catch((error) => {
      setSegments([]);
      setProblem({ at: "list", text: describeError(error) });
    });
  }, [load]);

  /** What was done (a status), or what went wrong (an alert, next to the control ``at``): one
   * of the two at a time, and nothing left from the action before. */
  function say(done: string | null, error: unknown = null, at: "list" | "try" | "save" = "save") {
    setMessage(done);
    setProblem(
      error === null ? null : { at, text: typeof error === "string" ? error : describeError(error) },
    );
  }

  // The form holds the segment asked for last: one opened can answer after another opened
  // since (or after "New segment"), and would replace it unasked
  const opening = useLatestRequest();

  /** The segment as saved now: its filter in the form, who it selects, what reads it. False:
   * another segment was asked for meanwhile, and this one is not shown. */
  async function open(segment: string): Promise<boolean> {
    const found = await latestAnswer(opening(), api<Shown>("GET", `/admin/segments/${encodeURIComponent(segment)}`));
    if (!found) return false;
    const shown = found.answer;
    setOpened({ name: shown.name, version: shown.version });
    setFilter(shown.filter);
    setName(shown.name);
    setDescription(shown.description);
    setExclude(shown.exclude_from_marketing);
    setKept({
      filter: shown.filter,
      name: shown.name,
      description: shown.description,
      exclude: shown.exclude_from_marketing,
    });
    setPreview({ count: shown.count, sample: shown.sample });
    setUsedBy(shown.used_by);
    return true;
  }

  function openClicked(segment: string) {
    say(null);
    void open(segment)
      .then((shown) => shown && heading.current?.focus())
      .catch((error) => say(null, error, "list"));
  }

  function startNew() {
    opening(); // a segment still on its way to the form is not wanted any more
    say(null);
    setOpened(null);
    setFilter("");
    setName("");
    setDescription("");
    setExclude(false);
    setKept({ filter: "", name: "", description: "", exclude: false });
    setPreview(null);
    setUsedBy(null);
    heading.current?.focus();
  }

  async function tryFilter() {
    say(null);
    setPreview(null);
    try {
      setPreview(await api<Preview>("POST", "/admin/segments/try", { body: { filter: filter.trim() } }));
    } catch (error) {
      say(null, error, "try");
    }
  }

  async function save(event: FormEvent) {
    event.preventDefault();
    say(null);
    const chosen = opened?.name ?? name.trim();
    const body = {
      name: chosen,
      filter: filter.trim(),
      description: description.trim(),
      exclude_from_marketing: exclude,
    };
    try {
      if (opened === null) {
        await api("POST", "/admin/segments", { body });
      } else {
        const path = `/admin/segments/${encodeURIComponent(opened.name)}`;
        await api("PUT", path, { body: { ...body, version: opened.version } });
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && opened !== null) {
        // Saved by someone else since it was opened. What the user typed stays in the form
        // (open() would overwrite it); only the version read moves on, so saving again stores
        // these edits over theirs, as the user then chooses to.
        say(null, t("segments.changed_meanwhile", { name: opened.name }));
        const stale = opened.name;
        await Promise.all([
          api<Shown>("GET", `/admin/segments/${encodeURIComponent(stale)}`).then((now) =>
            setOpened({ name: now.name, version: now.version }),
          ),
          load(),
        ]).catch((again) => say(null, again));
      } else {
        say(null, error);
      }
      return;
    }
    // Saved as typed: nothing is unsaved from here, even before open() below reads the segment
    // back (leaving at once must not ask)
    setKept({ filter, name, description, exclude });
    say(t("segments.saved", { name: chosen }));
    await Promise.all([open(chosen), load()]).catch((error) => say(null, error));
  }

  async function remove() {
    if (opened === null) return;
    const gone = opened.name;
    if (!window.confirm(t("segments.delete_confirm", { name: gone }))) return;
    say(null);
    try {
      await api("DELETE", `/admin/segments/${encodeURIComponent(gone)}`);
    } catch (error) {
      // 422: a journey or another segment still reads it (the API names them).
      say(null, error);
      return;
    }
    startNew();
    say(t("segments.deleted", { name: gone }));
    await load().catch((error) => say(null, error));
  }

  async function exportCsv(segment: string) {
    say(null);
    try {
      say(await exportLeads(segment, encoding));
    } catch (error) {
      say(null, error, "list");
    }
  }

  return (
    <section className="segments">
      <h1>{t("segments.title")}</h1>
      <p className="note">{t("segments.explained")}</p>

      <h2>{t("segments.saved_title")}</h2>
      {mayExport && (
        <div className="toolbar">
          <EncodingChoice value={encoding} onChange={setEncoding} />
          <span className="note">{t("export.audited")}</span>
        </div>
      )}
      {segments === null ? (
        <p className="loading">{t("common.loading")}</p>
      ) : segments.length === 0 ? (
        <p>{t("segments.none")}</p>
      ) : (
        <table className="list" aria-label={t("segments.saved_title")}>
          <thead>
            <tr>
              <th scope="col">{t("segments.name")}</th>
              <th scope="col">{t("segments.filter")}</th>
              <th scope="col">{t("segments.description")}</th>
              <th scope="col">{t("segments.by")}</th>
              <th scope="col">{t("journeys.actions")}</th>
            </tr>
          </thead>
          <tbody>
            {segments.map((segment) => (
              <tr key={segment.name}>
                <th scope="row">
                  {segment.name}
                  {segment.exclude_from_marketing && (
                    <span className="badge banner">{t("segments.excluded_badge")}</span>
                  )}
                </th>
                <td>
                  <code>{segment.filter}</code>
                </td>
                <td>{segment.description || "—"}</td>
                <td>
                  {segment.by}
                  <div className="detail">{when(segment.at)}</div>
                </td>
                <td>
                  <button type="button" className="secondary" onClick={() => openClicked(segment.name)}>
                    {t("segments.open")}
                    <span className="visually-hidden"> {segment.name}</span>
                  </button>{" "}
                  {mayExport && (
                    <button type="button" className="secondary" onClick={() => void exportCsv(segment.name)}>
                      {t("export.button")}
                      <span className="visually-hidden"> {segment.name}</span>
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      {problem?.at === "list" && <Problem text={problem.text} />}

      <h2 ref={heading} tabIndex={-1}>
        {opened === null ? t("segments.write") : t("segments.editing", { name: opened.name })}
      </h2>
      {opened !== null && (
        <p>
          <button type="button" className="link" onClick={startNew}>
            {t("segments.new")}
          </button>
        </p>
      )}
      <form onSubmit={(event) => void save(event)}>
        <label style={{ display: "flex" }}>
          {t("segments.filter")}
          <textarea
            required
            rows={2}
            maxLength={1000}
            placeholder="stage=lead,score>=50"
            value={filter}
            aria-invalid={problem?.at === "try" || undefined}
            aria-describedby={problem?.at === "try" ? "segment-try-problem" : undefined}
            onChange={(event) => {
              setFilter(event.target.value);
              // What was said of the filter before is not said of this one
              if (problem?.at === "try") setProblem(null);
            }}
          />
        </label>
        <details>
          <summary>{t("segments.help_summary")}</summary>
          <p className="note">{t("segments.help_intro")}</p>
          <dl className="definitions">
            {CONDITIONS.map(([condition, example]) => (
              <div key={condition}>
                <dt>
                  <code>{example}</code>
                </dt>
                <dd>{t(`segments.conditions.${condition}`)}</dd>
              </div>
            ))}
          </dl>
        </details>
        <p>
          <button
            type="button"
            className="secondary"
            disabled={!filter.trim()}
            onClick={() => void tryFilter()}
          >
            {t("segments.try")}
          </button>{" "}
          <span className="note">{t("segments.try_explained")}</span>
        </p>
        {problem?.at === "try" && <Problem id="segment-try-problem" text={problem.text} />}

        <div aria-live="polite">
          {preview && (
            <>
              <p className="selected">
                <strong>{t("segments.selected", { count: preview.count })}</strong>
              </p>
              {preview.sample.length > 0 && (
                <table className="list" aria-label={t("segments.sample")}>
                  <thead>
                    <tr>
                      <th scope="col">{t("leads.email")}</th>
                      <th scope="col">{t("leads.company")}</th>
                      <th scope="col">{t("leads.stage")}</th>
                      <th scope="col">{t("leads.score")}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {preview.sample.map((lead) => (
                      <tr key={lead.lead_id}>
                        <td>
                          <Link to={`/leads/${encodeURIComponent(lead.email)}`}>{lead.email}</Link>
                        </td>
                        <td>{lead.company ?? "—"}</td>
                        <td>{t(`stages.${lead.stage}`, lead.stage)}</td>
                        <td className="number">{lead.score === null ? "—" : Math.round(lead.score)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </>
          )}
        </div>
        {usedBy !== null && (
          <div className="used-by">
            <h3>{t("segments.used_by")}</h3>
            {usedBy.length === 0 ? (
              <p className="note">{t("segments.used_by_none")}</p>
            ) : (
              <ul>
                {usedBy.map((reader) => (
                  <li key={reader}>{reader}</li>
                ))}
              </ul>
            )}
          </div>
        )}

        {maySave && (
          <fieldset className="rules">
            <legend>{opened === null ? t("segments.save_title") : t("segments.change_title")}</legend>
            <div className="filters">
              <label>
                {t("segments.name")}
                <input
                  required
                  pattern={NAME_PATTERN}
                  maxLength={63}
                  readOnly={opened !== null}
                  aria-describedby="segment-name-hint"
                  value={name}
                  onChange={(event) => setName(event.target.value)}
                />
              </label>
              <label>
                {t("segments.description")}
                <input
                  maxLength={500}
                  size={40}
                  value={description}
                  onChange={(event) => setDescription(event.target.value)}
                />
              </label>
            </div>
            <p id="segment-name-hint" className="detail">
              {t("segments.name_hint")}
            </p>
            <div className="choice">
              <input
                id="segment-exclude"
                type="checkbox"
                checked={exclude}
                aria-describedby="segment-exclude-explained"
                onChange={(event) => setExclude(event.target.checked)}
              />
              <label htmlFor="segment-exclude">{t("segments.exclude")}</label>
              <span id="segment-exclude-explained">{t("segments.exclude_explained")}</span>
            </div>
            <p>
              <button type="submit">{t("segments.save")}</button>{" "}
              {opened !== null && mayDelete && (
                <button type="button" className="danger" onClick={() => void remove()}>
                  {t("segments.delete")}
                  <span className="visually-hidden"> {opened.name}</span>
                </button>
              )}
            </p>
            {problem?.at === "save" && <Problem text={problem.text} />}
          </fieldset>
        )}
      </form>
      {message && <p role="status">{message}</p>}
    </section>
  );
}

function Problem({ id, text }: { id?: string; text: string }) {
  return (
    <p id={id} role="alert" className="problem">
      {text}
    </p>
  );
}
