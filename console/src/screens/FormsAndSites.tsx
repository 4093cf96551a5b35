import { type FormEvent, useCallback, useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";

import { ApiError, allItems, api, describeError, type FieldProblem } from "../api";
import { config } from "../config";
import { CopyButton } from "../copy";
import { when } from "../i18n";
import { useMay } from "../me";
import { latestAnswer, useLatestRequest } from "../useLatestRequest";
import { type FormDefinition, FormEditor, NEW_FORM, formEmbed } from "./FormEditor";

type FormRow = FormDefinition;

interface SiteRow {
  site_id: string;
  name: string;
  allowed_origins: string[];
  truncate_ip: boolean;
  /** How many times it was saved, as read: sent back with a save, which is refused (409) if
   * someone saved it since. Absent on a new one. */
  revision?: number;
  /** When its signing secret was made (null: it has none); read-only: a save ignores it. */
  signing_secret_made_at?: string | null;
  /** Until when the secret its last rotation replaced is still accepted (null: none is);
   * read-only, as above. */
  previous_secret_accepted_until?: string | null;
}

const NEW_SITE: SiteRow = { site_id: "", name: "", allowed_origins: [], truncate_ip: true };

/** The tracking snippet a site's pages carry (tsunagu.tracking: /t.js), on the team's public
 * URL (its own domain when it has one), not the admin API's. */
function snippet(publicUrl: string, siteId: string): string {
  return `<script async src="${publicUrl}/t.js" data-site="${siteId}"></script>`;
}

export default function FormsAndSites() {
  const { t } = useTranslation();
  const may = useMay();
  const [forms, setForms] = useState<FormRow[]>([]);
  const [sites, setSites] = useState<SiteRow[]>([]);
  // Where the website's code (snippet, embed code) sends its visitors: config.json's public_url
  const [publicUrl, setPublicUrl] = useState("");
  const [message, setMessage] = useState<string | null>(null);

  // Only the last reading is shown: two saves made quickly read the lists twice, and the
  // first reading, answering last, took the second save off the screen
  const begin = useLatestRequest();
  const load = useCallback(async () => {
    const found = await latestAnswer(
      begin(),
      Promise.all([allItems<FormRow>("/admin/forms"), allItems<SiteRow>("/admin/sites"), config()]),
    );
    if (!found) return;
    const [formPage, sitePage, settings] = found.answer;
    setForms(formPage);
    setSites(sitePage);
    setPublicUrl(settings.public_url.replace(/\/$/, ""));
  }, [begin]);

  useEffect(() => {
    void load().catch((error) => setMessage(describeError(error)));
  }, [load]);

  async function saved(done: string) {
    setMessage(done);
    await load();
  }

  // The revision each JSON editor's next save goes over, once it has saved (its text keeps the
  // revision it was opened at) or was refused because someone saved meanwhile (409).
  const savesOver = useRef<Record<string, number>>({});

  async function save(kind: "forms" | "sites", id: string, text: string) {
    setMessage(null);
    const which = `${kind}/${id}`;
    try {
      const body = JSON.parse(text);
      if (savesOver.current[which] !== undefined) body.revision = savesOver.current[which];
      const stored = await api<{ revision: number }>("PUT", `/admin/${kind}/${encodeURIComponent(id)}`, {
        query: { replace: "true" },
        body,
      });
      savesOver.current[which] = stored.revision;
      setMessage(t("common.saved"));
      await load();
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && error.revision !== undefined) {
        // Someone saved it since it was opened: the text stays; a second save goes over theirs
        savesOver.current[which] = error.revision;
        setMessage(t("forms.changed_meanwhile"));
        return;
      }
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
          <div className="code">
            <label>
              {t("forms.embed")}
              <textarea readOnly rows={form.fields.length + 7} value={formEmbed(publicUrl, form)} />
            </label>
            <CopyButton text={formEmbed(publicUrl, form)} what={t("forms.embed")} />
          </div>
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
          <div className="code">
            <label>
              {t("forms.snippet")}
              <textarea readOnly rows={2} value={snippet(publicUrl, site.site_id)} />
            </label>
            <CopyButton text={snippet(publicUrl, site.site_id)} what={t("forms.snippet")} />
          </div>
          <p className="note">
            {t("sites.summary", {
              origins: site.allowed_origins.join(", "),
              ip: t(site.truncate_ip ? "sites.ip_cut" : "sites.ip_whole"),
            })}
          </p>
          {may("sites.save") && (
            <details>
              <summary>{t("forms.edit")}</summary>
              <SiteEditor initial={site} isNew={false} onSaved={saved} />
            </details>
          )}
          {may("sites.rotate_secret") && (
            <SigningSecret
              siteId={site.site_id}
              madeAt={site.signing_secret_made_at ?? null}
              previousUntil={site.previous_secret_accepted_until ?? null}
              onMade={() => load()}
            />
          )}
        </article>
      ))}
      {may("sites.save") && (
        <details className="card">
          <summary>{t("forms.new_site")}</summary>
          <SiteEditor initial={NEW_SITE} isNew onSaved={saved} />
        </details>
      )}
    </section>
  );
}

/** A site's signing secret for its server's tracking posts (tsunagu.commands.sites): made
 * (or made anew, the current one still accepted for 24 hours while the site's servers switch)
 * by an admin, and shown here that once. When the site has one, the card says when it was
 * made and until when the one it replaced is accepted, and a new one is made only once the
 * admin has agreed to what it replaces. "It leaked" revokes the current one at once instead. */
function SigningSecret(props: {
  siteId: string;
  madeAt: string | null;
  previousUntil: string | null;
  onMade: () => Promise<void>;
}) {
  const { t } = useTranslation();
  const [secret, setSecret] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [revoke, setRevoke] = useState(false);

  function question(madeAt: string): string {
    if (revoke) return t("sites.revoke_confirm", { when: when(madeAt) });
    const asked = t("sites.replace_confirm", { when: when(madeAt) });
    // One previous secret only: the one still accepted now is dropped by this rotation
    return props.previousUntil
      ? `${asked} ${t("sites.replace_ends_overlap", { until: when(props.previousUntil) })}`
      : asked;
  }

  async function make() {
    if (props.madeAt && !window.confirm(question(props.madeAt))) return;
    setProblem(null);
    try {
      const made = await api<{ secret: string }>(
        "POST",
        `/admin/sites/${encodeURIComponent(props.siteId)}/signing-secret`,
        { body: { revoke_previous: revoke } },
      );
      setSecret(made.secret);
      setRevoke(false);
    } catch (error) {
      setProblem(describeError(error));
      return;
    }
    // The card's "made on" and "accepted until" are the new secret's now (the secret itself
    // stays shown here)
    await props.onMade().catch((error) => setProblem(describeError(error)));
  }

  return (
    <>
      <p className="note">
        {props.madeAt ? t("sites.secret_made", { when: when(props.madeAt) }) : t("sites.no_secret")}
        {props.previousUntil && <> {t("sites.previous_until", { when: when(props.previousUntil) })}</>}
      </p>
      <details>
        <summary>{t("sites.server")}</summary>
        <p className="note">{t("sites.server_note")}</p>
        {problem && <p role="alert">{problem}</p>}
        {secret ? (
          <div className="code">
            <label>
              {t("sites.secret", { site: props.siteId })}
              <textarea readOnly rows={2} value={secret} />
            </label>
            <CopyButton text={secret} what={t("sites.secret", { site: props.siteId })} />
            <p role="status">{t("sites.secret_once")}</p>
          </div>
        ) : (
          <>
            {props.madeAt && (
              <label>
                <input type="checkbox" checked={revoke} onChange={(event) => setRevoke(event.target.checked)} />
                {t("sites.revoke_previous")}
              </label>
            )}
            <button type="button" onClick={() => void make()}>
              {t("sites.new_secret")}
            </button>
          </>
        )}
      </details>
    </>
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

/** A site: its name, the origins whose pages may send events (and embed its forms), and
 * whether visitors' IP addresses are kept cut short. Each problem the API finds is shown on
 * its field; nothing is stored unless all of it is valid. */
function SiteEditor(props: { initial: SiteRow; isNew: boolean; onSaved: (message: string) => Promise<void> }) {
  const { t } = useTranslation();
  const [site, setSite] = useState(props.initial);
  const [origins, setOrigins] = useState(props.initial.allowed_origins.join("\n"));
  const [problems, setProblems] = useState<FieldProblem[]>([]);
  const [message, setMessage] = useState<string | null>(null);
  const at = (field: string) =>
    problems
      .filter((p) => p.field === field || p.field.startsWith(`${field}.`))
      .map((p) => (
        <p key={`${p.field}:${p.message}`} className="problem" role="alert">
          {p.message}
        </p>
      ));

  async function submit(event: FormEvent) {
    event.preventDefault();
    setProblems([]);
    setMessage(null);
    // Sent back as read: the API ignores the read-only times (when its secret was made)
    const body = {
      ...site,
      site_id: site.site_id.trim(),
      allowed_origins: origins.split(/[\s,]+/).filter(Boolean),
    };
    try {
      // Over the revision read (in ``site``): refused, nothing stored, if someone saved it since
      const stored = await api<SiteRow>("PUT", `/admin/sites/${encodeURIComponent(body.site_id)}`, {
        query: props.isNew ? {} : { replace: "true" },
        body,
      });
      if (!props.isNew) setSite((before) => ({ ...before, revision: stored.revision }));
      if (props.isNew) {
        // Stored: the form is ready for the next new site
        setSite(props.initial);
        setOrigins("");
      }
      await props.onSaved(t("common.saved"));
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && error.revision !== undefined) {
        // Someone saved it since it was opened: the edits stay; a second save goes over theirs
        setSite((before) => ({ ...before, revision: error.revision }));
        setMessage(t("forms.changed_meanwhile"));
        return;
      }
      setMessage(describeError(error));
      if (error instanceof ApiError) setProblems(error.problems);
    }
  }

  return (
    <form
      className="site-editor"
      aria-label={props.isNew ? t("forms.new_site") : t("sites.editor_of", { site: site.site_id })}
      onSubmit={(event) => void submit(event)}
    >
      {props.isNew && (
        <label>
          {t("forms.id")}
          <input required pattern="[a-z0-9][a-z0-9\-]*" value={site.site_id}
            onChange={(event) => setSite({ ...site, site_id: event.target.value })} />
        </label>
      )}
      {at("site_id")}
      <label>
        {t("forms.name")}
        <input required value={site.name} onChange={(event) => setSite({ ...site, name: event.target.value })} />
      </label>
      {at("name")}
      <label>
        {t("sites.origins")}
        <textarea rows={3} required spellCheck={false} placeholder="https://www.example.com" value={origins}
          onChange={(event) => setOrigins(event.target.value)} />
      </label>
      {at("allowed_origins")}
      <label className="check">
        <input type="checkbox" checked={site.truncate_ip}
          onChange={(event) => setSite({ ...site, truncate_ip: event.target.checked })} />
        {t("sites.truncate_ip")}
      </label>
      {message && problems.length === 0 && <p className="problem" role="alert">{message}</p>}
      <button type="submit">{t("common.save")}</button>
    </form>
  );
}
