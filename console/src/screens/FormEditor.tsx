// A capture form built in a form: its fields (name, label, type, required, options) in order,
// the consent it asks for (the exact words and their version, the topic, double opt-in), where
// it may be embedded and where the person goes after. The API checks it whole and names each
// problem's field; the embed code (formEmbed) is made from what was stored.
import { type FormEvent, useState } from "react";
import { useTranslation } from "react-i18next";

import { ApiError, api, describeError, problemText, type FieldProblem } from "../api";
import i18n from "../i18n";
import { WordsInput } from "../inputs";
import { useUnsavedWarning } from "../unsaved";

export interface FormField {
  name: string;
  type: string;
  label?: string;
  required?: boolean;
  options?: string[];
  [other: string]: unknown;
}
export interface ConsentSpec {
  field: string;
  topic: string;
  text: string;
  version: string;
  double_opt_in?: boolean;
  [other: string]: unknown;
}
export interface FormDefinition {
  form_id: string;
  name: string;
  fields: FormField[];
  allowed_origins: string[];
  consent?: ConsentSpec | null;
  thank_you_url?: string | null;
  honeypot_field?: string;
  source?: string;
  /** How many times it was saved, as read: sent back with a save (absent on a new form). */
  revision?: number;
  [other: string]: unknown;
}

const TYPES = ["email", "text", "textarea", "tel", "url", "number", "checkbox", "select"];
const SOURCES = ["web_form", "seminar", "trade_show", "sales", "crm", "import"];
export const NEW_FORM: FormDefinition = {
  form_id: "",
  name: "",
  fields: [{ name: "email", type: "email", label: "メールアドレス", required: true }],
  allowed_origins: [],
};

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** The language a form speaks to the people who fill it in (it has no setting of its own):
 * Japanese when its labels, choices or consent are written in Japanese, else English. */
function formLanguage(form: FormDefinition): "ja" | "en" {
  const words = [
    ...form.fields.flatMap((field) => [field.label ?? "", ...(field.options ?? [])]),
    form.consent?.text ?? "",
  ].join(" ");
  return /[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]/.test(words) ? "ja" : "en";
}

/** The HTML to paste into the site: every field labelled, the consent in its exact words, the
 * honeypot hidden from people, a submit button in the form's language, and one submission id
 * per page view (a double click is one). It posts to the team's public URL (config.json's
 * public_url: its own domain when it has one). */
export function formEmbed(publicUrl: string, form: FormDefinition): string {
  const consentField = form.consent?.field;
  const lines = [`<form method="post" action="${publicUrl}/forms/${form.form_id}/submissions" accept-charset="UTF-8">`];
  for (const field of form.fields) {
    const label = escape(field.label || field.name);
    const required = field.required ? " required" : "";
    if (field.type === "checkbox") {
      const words = field.name === consentField && form.consent ? escape(form.consent.text) : label;
      lines.push(`  <label><input type="checkbox" name="${field.name}" value="on"${required}> ${words}</label>`);
    } else if (field.type === "select") {
      lines.push(`  <label>${label} <select name="${field.name}"${required}>`);
      for (const option of field.options ?? []) lines.push(`    <option>${escape(option)}</option>`);
      lines.push("  </select></label>");
    } else if (field.type === "textarea") {
      lines.push(`  <label>${label} <textarea name="${field.name}"${required}></textarea></label>`);
    } else {
      lines.push(`  <label>${label} <input type="${field.type}" name="${field.name}"${required}></label>`);
    }
  }
  const honeypot = form.honeypot_field ?? "website";
  lines.push(
    `  <div style="position:absolute;left:-10000px" aria-hidden="true"><input name="${honeypot}" tabindex="-1" autocomplete="off"></div>`,
    `  <input type="hidden" name="submission_id">`,
    `  <button type="submit">${escape(i18n.t("forms.submit_button", { lng: formLanguage(form) }))}</button>`,
    `</form>`,
    "<script>document.currentScript.previousElementSibling.submission_id.value = crypto.randomUUID ? " +
      'crypto.randomUUID() : Date.now() + "-" + Math.random().toString(16).slice(2);</script>',
  );
  return lines.join("\n");
}

export function FormEditor({
  initial,
  isNew,
  onSaved: whenSaved,
}: {
  initial: FormDefinition;
  isNew: boolean;
  onSaved: (message: string) => Promise<void> | void;
}) {
  const { t } = useTranslation();
  const [form, setForm] = useState<FormDefinition>(initial);
  // The form as opened or last saved: while the editor differs, leaving it asks first (its
  // revision is the store's count, taken in after each save, never an edit of the user's)
  const [kept, setKept] = useState<FormDefinition>(initial);
  const edits = (f: FormDefinition) => JSON.stringify({ ...f, revision: undefined });
  useUnsavedWarning(edits(form) !== edits(kept));
  const onSaved = async (message: string) => {
    setKept(form);
    await whenSaved(message);
  };
  const [problems, setProblems] = useState<FieldProblem[]>([]);
  const [message, setMessage] = useState<string | null>(null);
  const change = (update: (draft: FormDefinition) => void) =>
    setForm((before) => {
      const draft = structuredClone(before);
      update(draft);
      return draft;
    });
  const setField = (index: number, update: (field: FormField) => void) => change((d) => update(d.fields[index]));
  const problemsAt = (prefix: string) => problems.filter((p) => p.field === prefix || p.field.startsWith(`${prefix}.`));
  const prefix = isNew ? t("forms.new_form") : form.form_id;

  async function save(event: FormEvent) {
    event.preventDefault();
    setMessage(null);
    setProblems([]);
    // ``body`` has the revision read (absent on a new form): refused, nothing stored, if
    // someone saved the form since - their change is not silently lost
    const { form_id: formId, ...body } = form;
    try {
      const stored = await api<FormDefinition>("PUT", `/admin/forms/${encodeURIComponent(formId.trim())}`, {
        query: { replace: isNew ? undefined : "true" },
        body: { ...body, form_id: formId.trim() },
      });
      if (!isNew) change((d) => void (d.revision = stored.revision));
      await onSaved(t("common.saved"));
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && error.revision !== undefined) {
        // The edits stay as they are; a second save goes over the revision saved meanwhile
        change((d) => void (d.revision = error.revision));
        setMessage(t("forms.changed_meanwhile"));
        return;
      }
      // Each problem is shown at its field; the status line says it in the user's language
      setMessage(describeError(error, { problemsShownApart: true }));
      if (error instanceof ApiError) setProblems(error.problems);
    }
  }

  return (
    <form className="form-editor" onSubmit={(event) => void save(event)} aria-label={t("forms.editor_of", { form: prefix })}>
      <div className="journey-fields">
        {isNew && (
          <label>
            {t("forms.id")}
            <input required pattern="[a-z0-9][a-z0-9-]*" value={form.form_id}
              onChange={(event) => change((d) => void (d.form_id = event.target.value))} />
          </label>
        )}
        <label>
          {t("forms.name")}
          <input required value={form.name} onChange={(event) => change((d) => void (d.name = event.target.value))} />
        </label>
        <label>
          {t("forms.source")}
          <select value={form.source ?? "web_form"} onChange={(event) => change((d) => void (d.source = event.target.value))}>
            {SOURCES.map((source) => (
              <option key={source} value={source}>
                {t(`forms.sources.${source}`)}
              </option>
            ))}
          </select>
        </label>
        <label className="wide">
          {t("forms.origins")}
          {/* Kept as typed: a comma just typed must stay for the next origin to follow it */}
          <WordsInput value={form.allowed_origins}
            onChange={(origins) => change((d) => void (d.allowed_origins = origins))} />
        </label>
        <label className="wide">
          {t("forms.thank_you_url")}
          <input type="url" value={form.thank_you_url ?? ""}
            onChange={(event) => change((d) => void (d.thank_you_url = event.target.value || null))} />
        </label>
      </div>
      <table className="list" aria-label={t("forms.fields_of", { form: prefix })}>
        <thead>
          <tr>
            <th scope="col">{t("forms.field_name")}</th>
            <th scope="col">{t("forms.field_label")}</th>
            <th scope="col">{t("forms.field_type")}</th>
            <th scope="col">{t("forms.required")}</th>
            <th scope="col">{t("forms.options")}</th>
            <th scope="col">
              <span className="visually-hidden">{t("journeys.actions")}</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {form.fields.map((field, index) => {
            const found = problemsAt(`fields.${index}`);
            const of = (what: string) => t("forms.of_field", { what: t(`forms.${what}`), n: index + 1 });
            return (
              <tr key={index} className={found.length ? "refused" : undefined}>
                <td>
                  <input aria-label={of("field_name")} value={field.name} pattern="[a-z][a-z0-9_]*" size={12}
                    onChange={(event) => setField(index, (f) => void (f.name = event.target.value))} />
                  {found.map((p) => (
                    <div key={p.message} className="problem" role="alert">
                      {problemText(p)}
                    </div>
                  ))}
                </td>
                <td>
                  <input aria-label={of("field_label")} value={field.label ?? ""}
                    onChange={(event) => setField(index, (f) => void (f.label = event.target.value))} />
                </td>
                <td>
                  <select aria-label={of("field_type")} value={field.type}
                    onChange={(event) => setField(index, (f) => void (f.type = event.target.value))}>
                    {TYPES.map((type) => (
                      <option key={type} value={type}>
                        {t(`forms.types.${type}`)}
                      </option>
                    ))}
                  </select>
                </td>
                <td>
                  <input aria-label={of("required")} type="checkbox" checked={Boolean(field.required)}
                    onChange={(event) => setField(index, (f) => void (f.required = event.target.checked))} />
                </td>
                <td>
                  {field.type === "select" && (
                    <WordsInput label={of("options")} value={field.options ?? []} commasOnly
                      onChange={(options) => setField(index, (f) => void (f.options = options))} />
                  )}
                </td>
                <td>
                  <button type="button" className="link" disabled={index === 0}
                    onClick={() => change((d) => void d.fields.splice(index - 1, 0, ...d.fields.splice(index, 1)))}>
                    {t("rules.up")}
                  </button>{" "}
                  <button type="button" className="link" aria-label={t("rules.remove_named", { name: field.name })}
                    onClick={() => change((d) => void d.fields.splice(index, 1))}>
                    {t("rules.remove")}
                  </button>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <button type="button" className="secondary"
        onClick={() => change((d) => void d.fields.push({ name: `field_${d.fields.length + 1}`, type: "text", label: "" }))}>
        {t("forms.add_field")}
      </button>
      <fieldset className="node-fields">
        <legend>{t("forms.consent")}</legend>
        <label className="check">
          <input type="checkbox" checked={Boolean(form.consent)}
            onChange={(event) =>
              change((d) => {
                if (!event.target.checked) {
                  d.consent = null;
                  return;
                }
                d.consent = { field: "consent", topic: "marketing", text: "", version: "1" };
                if (!d.fields.some((f) => f.name === "consent")) {
                  d.fields.push({ name: "consent", type: "checkbox", label: "" });
                }
              })
            } />
          {t("forms.asks_consent")}
        </label>
        {form.consent && (
          <>
            <label>
              {t("forms.consent_text")}
              <textarea rows={3} required value={form.consent.text}
                onChange={(event) => change((d) => void (d.consent!.text = event.target.value))} />
            </label>
            <div className="journey-fields">
              <label>
                {t("forms.consent_version")}
                <input required value={form.consent.version}
                  onChange={(event) => change((d) => void (d.consent!.version = event.target.value))} />
              </label>
              <label>
                {t("forms.topic")}
                <input value={form.consent.topic}
                  onChange={(event) => change((d) => void (d.consent!.topic = event.target.value))} />
              </label>
              <label className="check">
                <input type="checkbox" checked={Boolean(form.consent.double_opt_in)}
                  onChange={(event) => change((d) => void (d.consent!.double_opt_in = event.target.checked))} />
                {t("forms.double_opt_in")}
              </label>
            </div>
            <p className="note">{t("forms.consent_explained")}</p>
          </>
        )}
      </fieldset>
      {problemsAt("(body)").concat(problemsAt("consent")).map((p) => (
        <p key={`${p.field}:${p.message}`} className="problem" role="alert">
          {problemText(p)}
        </p>
      ))}
      <button type="submit">{t("common.save")}</button>
      {message && <p role="status">{message}</p>}
    </form>
  );
}
