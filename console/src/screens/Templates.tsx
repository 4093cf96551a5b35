import { type FormEvent, useCallback, useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate, useParams } from "react-router";

import { ApiError, allItems, api, describeError } from "../api";
import { when } from "../i18n";
import { useMay } from "../me";
import { pairsOf, pairsText } from "../pairs";
import { useUnsavedWarning } from "../unsaved";
import { latestAnswer, useLatestRequest } from "../useLatestRequest";

interface MailTemplate {
  template_id: string;
  version: number;
  name: string;
  kind: string;
  topic: string;
  subject: string;
  html: string;
  text: string | null;
  from_address: string;
  from_name: string | null;
  reply_to: string | null;
  sender_is_owner: boolean;
  defaults: Record<string, string>;
  created_at?: string | null;
}

interface TemplateVersion {
  version: number;
  created_at: string;
  saved_by: string | null;
  name: string;
  subject: string;
}

/** The template as the editor holds it, as the API takes it: empty optional fields unset, not
 * "" (the text is then made from the HTML; a blank reply-to is no address), the defaults read
 * from their lines. The preview and the save send the same. */
function asStored(template: MailTemplate, defaults: string) {
  return {
    ...editable(template),
    text: template.text || null,
    from_name: template.from_name || null,
    reply_to: template.reply_to || null,
    defaults: pairsOf(defaults),
  };
}

/** What a new template starts from: the lead's name, a line to write, and nothing to undo. */
const STARTER_HTML = "<p>{{ lead.name }} 様</p>\n<p></p>";
const KINDS = ["marketing", "transactional"] as const;

/** The fields a template has beyond what is stored about it (its id, version and date). */
function editable(template: MailTemplate) {
  const { version: _version, created_at: _created, ...draft } = template;
  return draft;
}


interface Preview {
  version: number | null;
  subject: string;
  html: string;
  text: string;
}

/** How long the editor rests before its preview is rendered again. */
const PREVIEW_AFTER_MS = 400;

/** The page the preview is shown in (console/public/mail-preview.html). */
const PREVIEW_PAGE = `${import.meta.env.BASE_URL}mail-preview.html`;

/** The mail as it will look when sent: its styles and images shown, which the console's own
 * strict CSP forbids, and which a srcdoc frame here would inherit. So it is shown by a page of
 * its own, under its own policy (template.yaml MailPreviewHeaders), that puts it in a frame
 * sandboxed without scripts; that page runs sandboxed too (its own script only, no access to
 * the console or its session), hence its opaque origin and the message sent to any origin. */
function MailPreview({ html, title }: { html: string; title: string }) {
  const frame = useRef<HTMLIFrameElement>(null);
  const [loaded, setLoaded] = useState(0);
  useEffect(() => {
    if (loaded > 0) frame.current?.contentWindow?.postMessage({ html, title }, "*");
  }, [html, title, loaded]);
  return (
    <iframe
      ref={frame}
      title={title}
      src={PREVIEW_PAGE}
      sandbox="allow-scripts"
      onLoad={() => setLoaded((times) => times + 1)}
    />
  );
}

export default function Templates() {
  const { templateId } = useParams();
  // One editor per template: another one opened by its address starts clean, not with the
  // last one's status, preview address and test address (React Router keeps a screen's state
  // when only its parameters change), nor with the last template shown while it loads
  return templateId ? <TemplateEditor key={templateId} templateId={templateId} /> : <TemplateList />;
}

function TemplateList() {
  const { t } = useTranslation();
  const may = useMay();
  const [templates, setTemplates] = useState<MailTemplate[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  useEffect(() => {
    allItems<MailTemplate>("/admin/templates")
      .then(setTemplates)
      .catch((error) => setProblem(describeError(error)));
  }, []);
  const topics = [...new Set(templates.map((template) => template.topic))].sort();
  return (
    <section>
      <h1>{t("mail.title")}</h1>
      {problem && <p role="alert" className="problem">{problem}</p>}
      {may("templates.save") &&
        (creating ? (
          <NewTemplate topics={topics} onCancel={() => setCreating(false)} />
        ) : (
          <p>
            <button type="button" onClick={() => setCreating(true)}>
              {t("mail.new")}
            </button>
          </p>
        ))}
      <table className="list">
        <thead>
          <tr>
            <th scope="col">{t("mail.name")}</th>
            <th scope="col">{t("mail.subject")}</th>
            <th scope="col">{t("mail.topic")}</th>
            <th scope="col">{t("mail.version")}</th>
          </tr>
        </thead>
        <tbody>
          {templates.map((template) => (
            <tr key={template.template_id}>
              <td>
                <Link to={`/templates/${template.template_id}`}>{template.name}</Link>
                <br />
                <small>{template.template_id}</small>
              </td>
              <td>{template.subject}</td>
              <td>{template.topic}</td>
              <td className="number">{template.version}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function NewTemplate({ topics, onCancel }: { topics: string[]; onCancel: () => void }) {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const [draft, setDraft] = useState({
    template_id: "",
    name: "",
    subject: "",
    from_address: "",
    kind: "marketing",
    topic: "marketing",
  });
  const [problem, setProblem] = useState<string | null>(null);
  const set = (name: keyof typeof draft) => (event: { target: { value: string } }) =>
    setDraft({ ...draft, [name]: event.target.value });

  async function create(event: FormEvent) {
    event.preventDefault();
    setProblem(null);
    const { template_id: id, ...rest } = draft;
    try {
      await api("POST", `/admin/templates/${encodeURIComponent(id.trim())}/versions`, {
        query: { new: "true" },
        body: { ...rest, html: STARTER_HTML },
      });
      navigate(`/templates/${id.trim()}`);
    } catch (error) {
      setProblem(describeError(error));
    }
  }

  return (
    <form className="new-template" aria-label={t("mail.new")} onSubmit={(event) => void create(event)}>
      <h2>{t("mail.new")}</h2>
      <label>
        {t("mail.id")}
        <input
          required
          pattern="[a-z0-9][a-z0-9\-]{0,62}"
          value={draft.template_id}
          onChange={set("template_id")}
          aria-describedby="new-template-id"
        />
      </label>
      <p className="note" id="new-template-id">{t("mail.id_explained")}</p>
      <label>
        {t("mail.name")}
        <input required value={draft.name} onChange={set("name")} />
      </label>
      <label>
        {t("mail.subject")}
        <input required value={draft.subject} onChange={set("subject")} />
      </label>
      <label>
        {t("mail.from_address")}
        <input required type="email" value={draft.from_address} onChange={set("from_address")} />
      </label>
      <KindAndTopic
        kind={draft.kind}
        topic={draft.topic}
        topics={topics}
        onKind={set("kind")}
        onTopic={set("topic")}
      />
      {problem && <p role="alert" className="problem">{problem}</p>}
      <button type="submit">{t("mail.create")}</button>{" "}
      <button type="button" onClick={onCancel}>{t("common.cancel")}</button>
    </form>
  );
}

/** Marketing mail needs the lead's consent to its topic; transactional mail (a confirmation)
 * needs none, but never goes to a suppressed address. */
function KindAndTopic(props: {
  kind: string;
  topic: string;
  topics: string[];
  readOnly?: boolean;
  onKind: (event: { target: { value: string } }) => void;
  onTopic: (event: { target: { value: string } }) => void;
}) {
  const { t } = useTranslation();
  return (
    <>
      <label>
        {t("mail.kind")}
        <select value={props.kind} disabled={props.readOnly} onChange={props.onKind}>
          {KINDS.map((kind) => (
            <option key={kind} value={kind}>
              {t(`mail.kinds.${kind}`)}
            </option>
          ))}
        </select>
      </label>
      <label>
        {t("mail.topic")}
        <input
          list="template-topics"
          required
          value={props.topic}
          readOnly={props.readOnly}
          onChange={props.onTopic}
        />
      </label>
      <datalist id="template-topics">
        {props.topics.map((topic) => (
          <option key={topic} value={topic} />
        ))}
      </datalist>
      <p className="note">{t("mail.kind_explained")}</p>
    </>
  );
}

function TemplateEditor({ templateId }: { templateId: string }) {
  const { t } = useTranslation();
  const may = useMay();
  const navigate = useNavigate();
  const [template, setTemplate] = useState<MailTemplate | null>(null);
  const [defaults, setDefaults] = useState("");
  // The version as read (opened, or just stored): while the editor differs, leaving asks first
  const [kept, setKept] = useState<string | null>(null);
  useUnsavedWarning(template !== null && kept !== JSON.stringify(asStored(template, defaults)));
  const [history, setHistory] = useState<TemplateVersion[]>([]);
  const [lead, setLead] = useState("");
  const [preview, setPreview] = useState<Preview | null>(null);
  const [previewProblem, setPreviewProblem] = useState<string | null>(null);
  const [to, setTo] = useState("");
  const [message, setMessage] = useState<string | null>(null);
  // The latest version when this editor last read the history: a save goes over it only, and
  // is refused (409) if a colleague stored a newer one meanwhile - not made newest over theirs.
  // The latest, not the version shown: storing an older version again is how one restores it.
  const [over, setOver] = useState<number | undefined>(undefined);
  const path = `/admin/templates/${encodeURIComponent(templateId)}`;

  // Only the version asked for last is put in the editor: one opened from the history can
  // answer after another opened since, and would replace it unasked
  const reading = useLatestRequest();
  const load = useCallback(
    async (version?: number) => {
      const found = await latestAnswer(
        reading(),
        Promise.all([
          api<MailTemplate>("GET", path, { query: version === undefined ? {} : { version } }),
          api<{ items: TemplateVersion[] }>("GET", `${path}/versions`),
        ]),
      );
      if (!found) return;
      const [shown, versions] = found.answer;
      setTemplate(shown);
      setDefaults(pairsText(shown.defaults));
      setKept(JSON.stringify(asStored(shown, pairsText(shown.defaults))));
      setHistory(versions.items);
      setOver(versions.items[0]?.version);
    },
    [path, reading],
  );

  useEffect(() => {
    void load().catch((error) => setMessage(describeError(error)));
  }, [load]);

  // The live preview: what the editor holds, rendered by the sender's own renderer for the
  // chosen lead (the sample lead until an address is typed whole) a moment after each change.
  const asked = useLatestRequest();
  useEffect(() => {
    if (template === null) return;
    const draft = asStored(template, defaults);
    const address = lead.trim();
    const forLead = /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(address) ? address : undefined;
    const timer = window.setTimeout(() => {
      const isLatest = asked();
      api<Preview>("POST", `${path}/preview`, { body: { template: draft, lead: forLead } })
        .then((shown) => {
          if (!isLatest()) return; // a later change's answer is on its way
          setPreview(shown);
          setPreviewProblem(null);
        })
        .catch((error) => isLatest() && setPreviewProblem(describeError(error)));
    }, PREVIEW_AFTER_MS);
    return () => window.clearTimeout(timer);
  }, [template, defaults, lead, path, asked]);

  async function save(event: FormEvent) {
    event.preventDefault();
    if (template === null) return;
    setMessage(null);
    const body = { ...asStored(template, defaults), version: over };
    try {
      const stored = await api<MailTemplate>("POST", `${path}/versions`, { body });
      await load();
      setMessage(t("mail.stored", { version: stored.version }));
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && error.revision !== undefined) {
        // A colleague stored a version since: the edits stay as they are (the history is not
        // read again here: it would offer this editor's text as "restore an older version"),
        // and saving again, having been told, stores these over theirs knowingly.
        setOver(error.revision);
        setMessage(t("mail.changed_meanwhile", { version: error.revision }));
        return;
      }
      setMessage(describeError(error));
    }
  }

  async function testSend(event: FormEvent) {
    event.preventDefault();
    setMessage(null);
    try {
      const sent = await api<{ to: string; version: number }>("POST", `${path}/test-sends`, {
        body: { to: to.trim(), lead: lead.trim() || undefined },
      });
      setMessage(t("mail.test_sent", { to: sent.to, version: sent.version }));
    } catch (error) {
      setMessage(describeError(error));
    }
  }

  function open(version: number) {
    setMessage(null);
    void load(version).catch((error) => setMessage(describeError(error)));
  }

  if (template === null) {
    // What stopped it loading (a deleted template, a bad link), not "Loading..." for good
    return message ? (
      <p role="alert" className="problem">
        {message}
      </p>
    ) : (
      <p className="loading">{t("common.loading")}</p>
    );
  }
  const mayEdit = may("templates.save");
  const latest = history.length > 0 ? history[0].version : template.version;
  const older = template.version < latest;
  const set = (name: keyof MailTemplate) => (event: { target: { value: string } }) =>
    setTemplate({ ...template, [name]: event.target.value });
  const text = (name: "name" | "subject" | "from_address" | "from_name" | "reply_to", type = "text") => (
    <label>
      {t(`mail.${name}`)}
      <input
        type={type}
        value={template[name] ?? ""}
        readOnly={!mayEdit}
        required={name === "name" || name === "subject" || name === "from_address"}
        onChange={set(name)}
      />
    </label>
  );

  return (
    <section className="template-editor">
      <p>
        <button type="button" className="link" onClick={() => navigate("/templates")}>
          ← {t("mail.title")}
        </button>
      </p>
      <h1>
        {template.name} <small>v{template.version} {when(template.created_at)}</small>
      </h1>
      {older && (
        <p className="note" role="note">
          {t("mail.older", { version: template.version, latest, next: latest + 1 })}
        </p>
      )}
      <div className="split">
        <form aria-label={t("mail.editor")} onSubmit={(event) => void save(event)}>
          {text("name")}
          {text("subject")}
          {text("from_address", "email")}
          {text("from_name")}
          {text("reply_to", "email")}
          <label className="check">
            <input
              type="checkbox"
              checked={template.sender_is_owner}
              disabled={!mayEdit}
              onChange={(event) => setTemplate({ ...template, sender_is_owner: event.target.checked })}
            />{" "}
            {t("mail.sender_is_owner")}
          </label>
          <KindAndTopic
            kind={template.kind}
            topic={template.topic}
            topics={[template.topic]}
            readOnly={!mayEdit}
            onKind={set("kind")}
            onTopic={set("topic")}
          />
          <label>
            {t("mail.html")}
            <textarea
              rows={16}
              spellCheck={false}
              value={template.html}
              readOnly={!mayEdit}
              onChange={set("html")}
            />
          </label>
          <label>
            {t("mail.text")}
            <textarea
              rows={6}
              value={template.text ?? ""}
              placeholder={t("mail.text_from_html")}
              readOnly={!mayEdit}
              onChange={set("text")}
            />
          </label>
          <label>
            {t("mail.defaults")}
            <textarea
              rows={3}
              spellCheck={false}
              value={defaults}
              placeholder="name=ご担当者"
              readOnly={!mayEdit}
              onChange={(event) => setDefaults(event.target.value)}
            />
          </label>
          <p className="note">{t("mail.defaults_explained")}</p>
          {mayEdit && (
            <button type="submit">
              {older ? t("mail.restore", { version: template.version }) : t("mail.store")}
            </button>
          )}
        </form>
        <div>
          <label>
            {t("mail.preview_for")}
            <input type="email" value={lead} onChange={(event) => setLead(event.target.value)} />
          </label>
          {previewProblem && (
            <p className="problem" role="alert">
              {previewProblem}
            </p>
          )}
          {preview && (
            <figure className="preview">
              <figcaption>
                {t("mail.subject")}: <strong>{preview.subject}</strong>{" "}
                ({preview.version === null ? t("mail.unsaved") : `v${preview.version}`})
              </figcaption>
              {/* The same renderer as sends, links inert; sandboxed: no script, no navigation. */}
              <MailPreview title={t("mail.preview")} html={preview.html} />
            </figure>
          )}
          {may("templates.test_send") && (
            <form onSubmit={(event) => void testSend(event)}>
              <label>
                {t("mail.test_to")}
                <input type="email" required value={to} onChange={(event) => setTo(event.target.value)} />
              </label>
              <button type="submit">{t("mail.test_send")}</button>
              <p className="note">{t("mail.test_explained")}</p>
            </form>
          )}
          <Versions history={history} shown={template.version} onOpen={open} />
        </div>
      </div>
      {message && <p role="status">{message}</p>}
    </section>
  );
}

/** Every stored version, newest first: when, by whom, its subject; any of them can be opened
 * in the editor (and stored again as the newest: a roll-back that keeps the history). */
function Versions(props: { history: TemplateVersion[]; shown: number; onOpen: (version: number) => void }) {
  const { t } = useTranslation();
  return (
    <section className="versions" aria-labelledby="template-versions">
      <h2 id="template-versions">{t("mail.versions")}</h2>
      <table className="list">
        <thead>
          <tr>
            <th scope="col">{t("mail.version")}</th>
            <th scope="col">{t("mail.stored_at")}</th>
            <th scope="col">{t("mail.stored_by")}</th>
            <th scope="col">{t("mail.subject")}</th>
          </tr>
        </thead>
        <tbody>
          {props.history.map((version) => (
            <tr key={version.version} aria-current={version.version === props.shown ? "true" : undefined}>
              <td className="number">
                {version.version === props.shown ? (
                  <strong>v{version.version}</strong>
                ) : (
                  <button type="button" className="link" onClick={() => props.onOpen(version.version)}>
                    {t("mail.open_version", { version: version.version })}
                  </button>
                )}
              </td>
              <td>{when(version.created_at)}</td>
              <td>{version.saved_by ?? t("mail.shipped")}</td>
              <td>{version.subject}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
