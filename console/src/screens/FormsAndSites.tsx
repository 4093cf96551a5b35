import { type FormEvent, useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";

import { api, describeError } from "../api";
import { config } from "../config";
import { useMay } from "../me";
import { type FormDefinition, FormEditor, NEW_FORM, formEmbed } from "./FormEditor";

type FormRow = FormDefinition;

interface SiteRow {
  site_id: string;
  name: string;
  allowed_origins: string[];
}

export default function FormsAndSites() {
  const { t } = useTranslation();
  const may = useMay();
  const [forms, setForms] = useState<FormRow[]>([]);
  const [sites, setSites] = useState<SiteRow[]>([]);
  const [apiUrl, setApiUrl] = useState("");
  const [message, setMessage] = useState<string | null>(null);

  const load = useCallback(async () => {
    const [formPage, sitePage, settings] = await Promise.all([
      api<{ items: FormRow[] }>("GET", "/admin/forms", { query: { limit: 200 } }),
      api<{ items: SiteRow[] }>("GET", "/admin/sites", { query: { limit: 200 } }),
      config(),
    ]);
    setForms(formPage.items);
    setSites(sitePage.items);
    setApiUrl(settings.api_url.replace(/\/$/, ""));
  }, []);

  useEffect(() => {
    void load().catch((error) => setMessage(describeError(error)));
  }, [load]);

  async function saved(done: string) {
    setMessage(done);
    await load();
  }

  async function save(kind: "forms" | "sites", id: string, text: string) {
    setMessage(null);
    try {
      await api("PUT", `/admin/${kind}/${encodeURIComponent(id)}`, {
        query: { replace: "true" },
        body: JSON.parse(text),
      });
      setMessage(t("common.saved"));
      await load();
    } catch (error) {
      setMessage(describeError(error));
    }
  }

  return (
    <section>
      <h1>{t("forms.title")}</h1>
      {message && <p role="status">{message}</p>}
      <h2>{t("forms.forms")}</h2>
      {forms.map((form) => (
        <article key={form.form_id} className="card">
          <h3>
            {form.name} <small>{form.form_id}</small>
          </h3>
          <label>
            {t("forms.embed")}
            <textarea readOnly rows={form.fields.length + 7} value={formEmbed(apiUrl, form)} />
          </label>
          {may("forms.save") && (
            <details>
              <summary>{t("forms.edit")}</summary>
              <FormEditor initial={form} isNew={false} onSaved={saved} />
              <JsonEditor
                label={t("forms.definition")}
                value={form}
                onSave={(text) => save("forms", form.form_id, text)}
              />
            </details>
          )}
        </article>
      ))}
      {may("forms.save") && (
        <details className="card">
          <summary>{t("forms.new_form")}</summary>
          <FormEditor initial={NEW_FORM} isNew onSaved={saved} />
        </details>
      )}
      <h2>{t("forms.sites")}</h2>
      {sites.map((site) => (
        <article key={site.site_id} className="card">
          <h3>
            {site.name} <small>{site.site_id}</small>
          </h3>
          <label>
            {t("forms.snippet")}
            <textarea
              readOnly
              rows={2}
              value={`<script async src="${apiUrl}/t.js" data-site="${site.site_id}"></script>`}
            />
          </label>
          {may("sites.save") && (
            <JsonEditor
              label={t("forms.definition")}
              value={site}
              onSave={(text) => save("sites", site.site_id, text)}
            />
          )}
        </article>
      ))}
      {may("sites.save") && (
        <NewDefinition
          label={t("forms.new_site")}
          template={{ name: "", allowed_origins: ["https://www.example.com"] }}
          onSave={(id, text) => save("sites", id, text)}
        />
      )}
    </section>
  );
}

function JsonEditor(props: { label: string; value: unknown; onSave: (text: string) => Promise<void> }) {
  const { t } = useTranslation();
  const [text, setText] = useState(() => JSON.stringify(props.value, null, 2));
  return (
    <details>
      <summary>{t("forms.edit_json")}</summary>
      <form
        onSubmit={(event: FormEvent) => {
          event.preventDefault();
          void props.onSave(text);
        }}
      >
        <label>
          {props.label}
          <textarea rows={12} spellCheck={false} value={text} onChange={(event) => setText(event.target.value)} />
        </label>
        <button type="submit">{t("common.save")}</button>
      </form>
    </details>
  );
}

function NewDefinition(props: {
  label: string;
  template: unknown;
  onSave: (id: string, text: string) => Promise<void>;
}) {
  const { t } = useTranslation();
  const [id, setId] = useState("");
  const [text, setText] = useState(() => JSON.stringify(props.template, null, 2));
  return (
    <details className="card">
      <summary>{props.label}</summary>
      <form
        onSubmit={(event: FormEvent) => {
          event.preventDefault();
          void props.onSave(id.trim(), text);
        }}
      >
        <label>
          {t("forms.id")}
          <input required pattern="[a-z0-9][a-z0-9-]*" value={id} onChange={(event) => setId(event.target.value)} />
        </label>
        <label>
          {t("forms.definition")}
          <textarea rows={10} spellCheck={false} value={text} onChange={(event) => setText(event.target.value)} />
        </label>
        <button type="submit">{t("common.save")}</button>
      </form>
    </details>
  );
}
