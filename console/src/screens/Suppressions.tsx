// The suppression list: every address no mail may reach, why and since when; a suppression is
// lifted with a reason (the API decides who may: marketers a manual one, admins a bounce, no
// one a complaint), and an address is added by suppressing its lead.
import { type FormEvent, useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router";

import { api, describeError, type Page } from "../api";
import { when } from "../i18n";
import { useMay, useMe } from "../me";
import { mayLift, REASONS, type SuppressionView } from "../suppression";
import { useAction } from "../useAction";
import { latestAnswer, useLatestRequest } from "../useLatestRequest";

interface Suppressed extends SuppressionView {
  lead_id: string;
  email: string;
}

export function Suppressions() {
  const { t } = useTranslation();
  const may = useMay();
  const me = useMe();
  const [reason, setReason] = useState<string>("");
  const [rows, setRows] = useState<Suppressed[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [email, setEmail] = useState("");
  const [note, setNote] = useState("");

  // Only the answer to the last request asked is shown: the list first read of every reason
  // can answer after a reason chosen at once, and put every address back under her choice
  // (and a page asked for with "more" before the choice, after the choice's own list)
  const begin = useLatestRequest();
  const load = useCallback(
    async (cursor?: string) => {
      const found = await latestAnswer(
        begin(),
        api<Page<Suppressed>>("GET", "/admin/suppressions", { query: { reason, cursor, limit: 50 } }),
      );
      if (!found) return;
      const page = found.answer;
      setRows((before) => (cursor ? [...(before ?? []), ...page.items] : page.items));
      setNext(page.next_cursor);
    },
    [reason, begin],
  );
  const { message, setMessage, run } = useAction(load);

  useEffect(() => {
    void load().catch((error) => setMessage(describeError(error)));
  }, [load, setMessage]);

  function lift(row: Suppressed) {
    const why = window.prompt(t("suppressions.lift_prompt", { email: row.email }));
    if (!why) return;
    void run(
      () =>
        api("DELETE", `/admin/leads/${encodeURIComponent(row.email)}/suppression`, {
          body: { note: why },
        }),
      t("suppressions.lifted", { email: row.email }),
    );
  }

  function add(event: FormEvent) {
    event.preventDefault();
    void run(
      () =>
        api("POST", `/admin/leads/${encodeURIComponent(email.trim())}/suppression`, {
          body: { note: note || undefined },
        }),
      t("suppressions.added", { email: email.trim() }),
    ).then((done) => {
      if (done) {
        setEmail("");
        setNote("");
      }
    });
  }

  return (
    <section>
      <h2>{t("suppressions.title")}</h2>
      <p className="note">{t("suppressions.explained")}</p>
      <div className="filters">
        <label>
          {t("suppressions.reason")}
          <select value={reason} onChange={(event) => setReason(event.target.value)}>
            <option value="">{t("common.any")}</option>
            {REASONS.map((name) => (
              <option key={name} value={name}>
                {t(`suppressions.reasons.${name}`)}
              </option>
            ))}
          </select>
        </label>
      </div>
      {rows === null ? (
        <p className="loading">{t("common.loading")}</p>
      ) : rows.length === 0 ? (
        <p>{t("suppressions.none")}</p>
      ) : (
        <table className="list" aria-label={t("suppressions.title")}>
          <thead>
            <tr>
              <th scope="col">{t("settings.email")}</th>
              <th scope="col">{t("suppressions.reason")}</th>
              <th scope="col">{t("suppressions.since")}</th>
              <th scope="col">{t("journeys.actions")}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.lead_id}>
                <td>
                  <Link to={`/leads/${encodeURIComponent(row.email)}`}>{row.email}</Link>
                </td>
                <td>
                  {t(`suppressions.reasons.${row.reason}`)}
                  <div className="detail">{t(`suppressions.why.${row.reason}`)}</div>
                </td>
                <td>{when(row.at)}</td>
                <td>
                  {mayLift(row, me.role) && (
                    <button type="button" className="secondary" onClick={() => lift(row)}>
                      {t("suppressions.lift")}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {next && (
        <button type="button" className="secondary" onClick={() => void load(next)}>
          {t("common.more")}
        </button>
      )}
      {may("leads.suppress") && (
        <form className="filters" onSubmit={add}>
          <label>
            {t("suppressions.add_email")}
            <input type="email" required value={email} onChange={(event) => setEmail(event.target.value)} />
          </label>
          <label>
            {t("suppressions.note")}
            <input value={note} maxLength={500} onChange={(event) => setNote(event.target.value)} />
          </label>
          <button type="submit" className="danger">
            {t("suppressions.add")}
          </button>
        </form>
      )}
      {message && <p role="status">{message}</p>}
    </section>
  );
}
