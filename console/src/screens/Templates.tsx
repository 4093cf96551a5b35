import { type FormEvent, useCallback, useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate, useParams } from "react-router";

import { api, describeError } from "../api";
import { when } from "../i18n";
import { useMay } from "../me";

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
  created_at?: string | null;
}

interface Preview {
  version: number | null;
  subject: string;
  html: string;
  text: string;
}

/** How long the editor rests before its preview is rendered again. */
const PREVIEW_AFTER_MS = 400;

export default function Templates() {
  const { templateId } = useParams();
  return templateId ? <TemplateEditor templateId={templateId} /> : <TemplateList />;
}

function TemplateList() {
  const { t } = useTranslation();
  const [templates, setTemplates] = useState<MailTemplate[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    api<{ items: MailTemplate[] }>("GET", "/admin/templates", { query: { limit: 200 } })
      .then((page) => setTemplates(page.items))
      .catch((error) => setProblem(describeError(error)));
  }, []);
  return (
    <section>
      <h1>{t("mail.title")}</h1>
      {problem && <p role="alert" className="problem">{problem}</p>}
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

function TemplateEditor({ templateId }: { templateId: string }) {
  const { t } = useTranslation();
  const may = useMay();
  const navigate = useNavigate();
  const [template, setTemplate] = useState<MailTemplate | null>(null);
  const [lead, setLead] = useState("");
  const [preview, setPreview] = useState<Preview | null>(null);
  const [previewProblem, setPreviewProblem] = useState<string | null>(null);
  const [to, setTo] = useState("");
  const [message, setMessage] = useState<string | null>(null);
  const path = `/admin/templates/${encodeURIComponent(templateId)}`;

  const load = useCallback(async () => {
    setTemplate(await api<MailTemplate>("GET", path));
  }, [path]);

  useEffect(() => {
    void load().catch((error) => setMessage(describeError(error)));
  }, [load]);

  // The live preview: what the editor holds, rendered by the sender's own renderer for the
  // chosen lead (the sample lead until an address is typed whole) a moment after each change.
  const asked = useRef(0);
  useEffect(() => {
    if (template === null) return;
    const { version: _version, created_at: _created, ...draft } = template;
    const address = lead.trim();
    const forLead = /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(address) ? address : undefined;
    const timer = window.setTimeout(() => {
      const mine = ++asked.current;
      api<Preview>("POST", `${path}/preview`, { body: { template: draft, lead: forLead } })
        .then((shown) => {
          if (mine !== asked.current) return; // a later change's answer is on its way
          setPreview(shown);
          setPreviewProblem(null);
        })
        .catch((error) => mine === asked.current && setPreviewProblem(describeError(error)));
    }, PREVIEW_AFTER_MS);
    return () => window.clearTimeout(timer);
  }, [template, lead, path]);

  async function save(event: FormEvent) {
    event.preventDefault();
    if (template === null) return;
    setMessage(null);
    const { version: _version, created_at: _created, ...body } = template;
    try {
      const stored = await api<MailTemplate>("POST", `${path}/versions`, { body });
      setTemplate(stored);
      setMessage(t("mail.stored", { version: stored.version }));
    } catch (error) {
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

  if (template === null) return <p className="loading">{t("common.loading")}</p>;
  const editable = may("templates.save");
  const set = (name: keyof MailTemplate) => (event: { target: { value: string } }) =>
    setTemplate({ ...template, [name]: event.target.value });

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
      <div className="split">
        <form onSubmit={(event) => void save(event)}>
          <label>
            {t("mail.name")}
            <input value={template.name} readOnly={!editable} onChange={set("name")} />
          </label>
          <label>
            {t("mail.subject")}
            <input value={template.subject} readOnly={!editable} onChange={set("subject")} />
          </label>
          <label>
            {t("mail.from")}
            <input value={template.from_address} readOnly={!editable} onChange={set("from_address")} />
          </label>
          <label>
            {t("mail.html")}
            <textarea
              rows={16}
              spellCheck={false}
              value={template.html}
              readOnly={!editable}
              onChange={set("html")}
            />
          </label>
          {editable && <button type="submit">{t("mail.store")}</button>}
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
              <iframe title={t("mail.preview")} sandbox="" srcDoc={preview.html} />
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
        </div>
      </div>
      {message && <p role="status">{message}</p>}
    </section>
  );
}
