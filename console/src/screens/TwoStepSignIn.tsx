import { type FormEvent, useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";

import { describeError } from "../api";
import { SignInError, type TotpSecret, newTotpSecret, totpIsOn, turnTotpOff, turnTotpOn } from "../auth";
import { useAction } from "../useAction";
import { TotpCodeField, TotpSecretShown } from "./TotpSecret";

/** The signed-in user's own two-step sign-in (TOTP, as the user pool offers it): turned on with
 * an authenticator app's first code, turned off. Every role has it: it is the user's, not a
 * permission of the admin API (the calls go to Cognito with the user's own access token). */
export function TwoStepSignIn() {
  const { t } = useTranslation();
  const [on, setOn] = useState<boolean | null>(null);
  const [secret, setSecret] = useState<TotpSecret | null>(null);
  const [code, setCode] = useState("");

  const load = useCallback(async () => setOn(await totpIsOn()), []);
  const { message, setMessage, run } = useAction(load);

  useEffect(() => {
    void load().catch((error) => setMessage(describeError(error)));
  }, [load, setMessage]);

  /** A wrong code said as such (Cognito's words differ between AWS and the local runtime). */
  async function checked<T>(what: () => Promise<T>): Promise<T> {
    try {
      return await what();
    } catch (error) {
      if (error instanceof SignInError && ["CodeMismatchException", "EnableSoftwareTokenMFAException"].includes(error.code)) {
        throw new Error(t("sign_in.wrong_code"));
      }
      throw error;
    }
  }

  async function confirm(event: FormEvent) {
    event.preventDefault();
    if (await run(() => checked(() => turnTotpOn(code)), t("totp.turned_on"))) {
      setSecret(null);
      setCode("");
    }
  }

  return (
    <section aria-labelledby="two-step-title">
      <h2 id="two-step-title">{t("totp.title")}</h2>
      <p className="note">{t("totp.explained")}</p>
      {on !== null && <p>{on ? t("totp.is_on") : t("totp.is_off")}</p>}
      {on === false && secret === null && (
        <button
          type="button"
          onClick={() => void run(async () => setSecret(await newTotpSecret()), t("totp.secret_made"))}
        >
          {t("totp.set_up")}
        </button>
      )}
      {secret !== null && (
        <form onSubmit={(event) => void confirm(event)}>
          <TotpSecretShown secret={secret} />
          <TotpCodeField code={code} setCode={setCode} />
          <button type="submit">{t("totp.turn_on")}</button>{" "}
          <button type="button" className="secondary" onClick={() => (setSecret(null), setCode(""))}>
            {t("totp.cancel")}
          </button>
        </form>
      )}
      {on === true && (
        <button
          type="button"
          className="danger"
          onClick={() => {
            if (window.confirm(t("totp.turn_off_confirm"))) void run(turnTotpOff, t("totp.turned_off"));
          }}
        >
          {t("totp.turn_off")}
        </button>
      )}
      {message && (
        <p role="status" className="note">
          {message}
        </p>
      )}
    </section>
  );
}
