import { type FormEvent, useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";

import { allItems, api, describeError } from "../api";
import { when } from "../i18n";
import { useMay, useMe } from "../me";
import { useAction } from "../useAction";
import { latestAnswer, useLatestRequest } from "../useLatestRequest";
import { Exclusions } from "./Exclusions";
import { Rules } from "./Rules";
import { Suppressions } from "./Suppressions";
import { TwoStepSignIn } from "./TwoStepSignIn";

const ROLES = ["admin", "marketer", "sales", "viewer"] as const;

export default function Settings() {
  const { t } = useTranslation();
  const may = useMay();
  return (
    <section>
      <h1>{t("settings.title")}</h1>
      <TwoStepSignIn />
      {may("qualification.show") && <Rules />}
      {may("suppressions.list") && <Suppressions />}
      {may("exclusions.list") && <Exclusions />}
      {may("users.list") && <Users />}
      {!may("users.list") && <p className="note">{t("settings.users_admins_only")}</p>}
    </section>
  );
}

interface User {
  email: string;
  role: string | null;
  enabled: boolean;
  status: string;
  created_at: string | null;
  /** null in the list: Cognito's listing of users does not say (a user read alone does). */
  two_step: boolean | null;
}

function Users() {
  const { t } = useTranslation();
  const me = useMe();
  const [users, setUsers] = useState<User[]>([]);
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<string>("marketer");

  // Only the last reading is shown: two actions made quickly read the list twice, and the
  // first reading, answering last, showed the list as it was before the second action
  const begin = useLatestRequest();
  const load = useCallback(async () => {
    const found = await latestAnswer(begin(), allItems<User>("/admin/users"));
    if (found) setUsers(found.answer);
  }, [begin]);

  const { message, setMessage, run } = useAction(load);

  useEffect(() => {
    void load().catch((error) => setMessage(describeError(error)));
  }, [load, setMessage]);

  return (
    <section>
      <h2>{t("settings.users")}</h2>
      <table className="list">
        <thead>
          <tr>
            <th scope="col">{t("settings.email")}</th>
            <th scope="col">{t("settings.role")}</th>
            <th scope="col">{t("settings.status")}</th>
            <th scope="col">{t("settings.since")}</th>
            <th scope="col">{t("journeys.actions")}</th>
          </tr>
        </thead>
        <tbody>
          {users.map((user) => {
            const self = user.email === me.email;
            return (
              <tr key={user.email}>
                <td>{user.email}</td>
                <td>
                  <label>
                    <span className="visually-hidden">{t("settings.role_of", { email: user.email })}</span>
                    <select
                      value={user.role ?? ""}
                      disabled={self}
                      onChange={(event) =>
                        void run(
                          () =>
                            api("PATCH", `/admin/users/${encodeURIComponent(user.email)}`, {
                              body: { role: event.target.value },
                            }),
                          t("common.saved"),
                        )
                      }
                    >
                      {/* A user with no role may do nothing: said so, not shown as the first role */}
                      {!user.role && (
                        <option value="" disabled>
                          {t("roles.none")}
                        </option>
                      )}
                      {ROLES.map((name) => (
                        <option key={name} value={name}>
                          {t(`roles.${name}`)}
                        </option>
                      ))}
                    </select>
                  </label>
                </td>
                <td>{user.enabled ? t(`settings.user_status.${user.status}`, user.status) : t("settings.disabled")}</td>
                <td>{when(user.created_at)}</td>
                <td>
                  {!self && (
                    <button
                      type="button"
                      className={user.enabled ? "danger" : undefined}
                      onClick={() => {
                        if (!user.enabled || window.confirm(t("settings.disable_confirm", { email: user.email }))) {
                          void run(
                            () =>
                              api("PATCH", `/admin/users/${encodeURIComponent(user.email)}`, {
                                body: { enabled: !user.enabled },
                              }),
                            t("common.saved"),
                          );
                        }
                      }}
                    >
                      {user.enabled ? t("settings.disable") : t("settings.enable")}
                    </button>
                  )}
                  {/* For a user who lost the phone their authenticator app was on (their own is
                      turned off in Settings' two-step sign-in); turning it on is theirs alone */}
                  {!self && (
                    <button
                      type="button"
                      onClick={() => {
                        if (window.confirm(t("settings.two_step_off_confirm", { email: user.email }))) {
                          void run(
                            () =>
                              api("PATCH", `/admin/users/${encodeURIComponent(user.email)}`, {
                                body: { mfa: "off" },
                              }),
                            t("settings.two_step_off_done", { email: user.email }),
                          );
                        }
                      }}
                    >
                      {t("settings.two_step_off")}
                    </button>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <form
        className="filters"
        onSubmit={(event: FormEvent) => {
          event.preventDefault();
          void run(() => api("POST", "/admin/users", { body: { email, role } }), t("settings.invited"));
        }}
      >
        <label>
          {t("settings.email")}
          <input type="email" required value={email} onChange={(event) => setEmail(event.target.value)} />
        </label>
        <label>
          {t("settings.role")}
          <select value={role} onChange={(event) => setRole(event.target.value)}>
            {ROLES.map((name) => (
              <option key={name} value={name}>
                {t(`roles.${name}`)}
              </option>
            ))}
          </select>
        </label>
        <button type="submit">{t("settings.invite")}</button>
      </form>
      {message && <p role="status">{message}</p>}
    </section>
  );
}
