// Exclusions (除外管理): addresses and domains (a domain with its subdomains) that no marketing
// mail goes to whatever they consented to - competitors, customers sales talks to, the company's
// own staff. Transactional mail still goes. Everyone sees the list; marketers and admins change it.
import { type FormEvent, useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";

import { api, describeError } from "../api";
import { when } from "../i18n";
import { useMay } from "../me";
import { useAction } from "../useAction";
import { latestAnswer, useLatestRequest } from "../useLatestRequest";

const LISTS = ["competitors", "customers", "staff"] as const;

interface Exclusion {
  value: string;
  kind: "address" | "domain";
  list: string;
  note: string | null;
  by: string;
  at: string;
}

export function Exclusions() {
  const { t } = useTranslation();
  const may = useMay();
  const maySave = may("exclusions.save");
  const [entries, setEntries] = useState<Exclusion[] | null>(null);
  const [value, setValue] = useState("");
  const [list, setList] = useState<string>("competitors");
  const [note, setNote] = useState("");

  // Only the last reading is shown: two changes made quickly read the list twice, and the
  // first reading, answering last, took the second change off the screen
  const begin = useLatestRequest();
  const load = useCallback(async () => {
    const found = await latestAnswer(begin(), api<{ items: Exclusion[]; version: number }>("GET", "/admin/exclusions"));
    if (found) setEntries(found.answer.items);
  }, [begin]);
  const { message, setMessage, run } = useAction(load);

  useEffect(() => {
    void load().catch((error) => {
      setEntries([]);
      setMessage(describeError(error));
    });
  }, [load, setMessage]);

  function listName(name: string): string {
    return (LISTS as readonly string[]).includes(name) ? t(`exclusions.lists.${name}`) : name;
  }

  function add(event: FormEvent) {
    event.preventDefault();
    const typed = value.trim();
    void run(
      () =>
        api("POST", "/admin/exclusions", {
          body: { value: typed, list: list.trim() || "competitors", note: note.trim() || undefined },
        }),
      t("exclusions.added", { value: typed }),
    ).then((done) => {
      if (done) {
        setValue("");
        setNote("");
      }
    });
  }

  function remove(entry: Exclusion) {
    if (!window.confirm(t("exclusions.remove_confirm", { value: entry.value }))) return;
    void run(
      () => api("DELETE", `/admin/exclusions/${encodeURIComponent(entry.value)}`),
      t("exclusions.removed", { value: entry.value }),
    );
  }

  return (
    <section className="exclusions">
      <h2>{t("exclusions.title")}</h2>
      <p className="note">{t("exclusions.explained")}</p>
      {entries === null ? (
        <p className="loading">{t("common.loading")}</p>
      ) : entries.length === 0 ? (
        <p>{t("exclusions.none")}</p>
      ) : (
        <table className="list" aria-label={t("exclusions.title")}>
          <thead>
            <tr>
              <th scope="col">{t("exclusions.value")}</th>
              <th scope="col">{t("exclusions.kind")}</th>
              <th scope="col">{t("exclusions.list")}</th>
              <th scope="col">{t("exclusions.note")}</th>
              <th scope="col">{t("exclusions.by")}</th>
              <th scope="col">{t("exclusions.at")}</th>
              {maySave && <th scope="col">{t("journeys.actions")}</th>}
            </tr>
          </thead>
          <tbody>
            {entries.map((entry) => (
              <tr key={entry.value}>
                <th scope="row">{entry.value}</th>
                <td>{t(`exclusions.kinds.${entry.kind}`)}</td>
                <td>{listName(entry.list)}</td>
                <td>{entry.note ?? "—"}</td>
                <td>{entry.by}</td>
                <td>{when(entry.at)}</td>
                {maySave && (
                  <td>
                    <button type="button" className="secondary" onClick={() => remove(entry)}>
                      {t("exclusions.remove")}
                      <span className="visually-hidden"> {entry.value}</span>
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {maySave && (
        <form className="filters" onSubmit={add}>
          <label>
            {t("exclusions.add_value")}
            <input
              required
              minLength={3}
              maxLength={254}
              placeholder="example.co.jp"
              value={value}
              onChange={(event) => setValue(event.target.value)}
            />
          </label>
          <label>
            {t("exclusions.list")}
            <input
              list="exclusion-lists"
              required
              maxLength={40}
              value={list}
              onChange={(event) => setList(event.target.value)}
            />
          </label>
          <label>
            {t("exclusions.add_note")}
            <input value={note} maxLength={500} onChange={(event) => setNote(event.target.value)} />
          </label>
          <button type="submit">{t("exclusions.add")}</button>
          <datalist id="exclusion-lists">
            {LISTS.map((name) => (
              <option key={name} value={name}>
                {t(`exclusions.lists.${name}`)}
              </option>
            ))}
          </datalist>
        </form>
      )}
      {message && <p role="status">{message}</p>}
    </section>
  );
}
