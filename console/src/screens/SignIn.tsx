import { type FormEvent, useState } from "react";
import { useTranslation } from "react-i18next";

import {
  type NextStep,
  type Session,
  SignInError,
  answerCode,
  finishSetup,
  setNewPassword,
  signIn,
} from "../auth";
import { TotpCodeField, TotpSecretShown } from "./TotpSecret";

/** ``refused``: why the admin API sent a signed-in user back here (shown until she signs in
 * again). ``ended``: the address of a user whose session ended while she worked (her screen is
 * kept behind this form). */
export function SignIn({
  onSignedIn,
  refused,
  ended,
}: {
  onSignedIn: () => void;
  refused?: string | null;
  ended?: string;
}) {
  const { t } = useTranslation();
  const [email, setEmail] = useState(ended ?? "");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  // The step Cognito asks for after the password: a new password, a TOTP code, or TOTP set up
  const [needed, setNeeded] = useState<NextStep | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function next(): Promise<Session | NextStep> {
    if (needed === null) return signIn(email.trim(), password);
    switch (needed.kind) {
      case "new_password":
        return setNewPassword(needed, password);
      case "totp_code":
        return answerCode(needed, code);
      case "totp_setup":
        return finishSetup(needed, code);
    }
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setProblem(null);
    try {
      const result = await next();
      if ("kind" in result) {
        setNeeded(result);
        setPassword("");
        setCode("");
      } else {
        onSignedIn();
      }
    } catch (error) {
      const code = error instanceof SignInError ? error.code : "Error";
      setProblem(
        code === "CodeMismatchException" || code === "EnableSoftwareTokenMFAException"
          ? t("sign_in.wrong_code")
          : needed === null && (code === "NotAuthorizedException" || code === "UserNotFoundException")
            ? t("sign_in.wrong")
            : error instanceof Error
              ? error.message
              : String(error),
      );
    } finally {
      setBusy(false);
    }
  }

  const asksCode = needed?.kind === "totp_code" || needed?.kind === "totp_setup";
  const title =
    needed === null
      ? t("sign_in.title")
      : needed.kind === "new_password"
        ? t("sign_in.new_password_title")
        : needed.kind === "totp_code"
          ? t("sign_in.code_title")
          : t("sign_in.setup_title");

  return (
    <main className="sign-in" id="main">
      <h1>Tsunagu</h1>
      <form onSubmit={(event) => void submit(event)}>
        <h2>{title}</h2>
        {ended !== undefined && needed === null && <p role="status">{t("sign_in.ended")}</p>}
        {needed === null && (
          <label>
            {t("sign_in.email")}
            <input
              type="email"
              autoComplete="username"
              required
              value={email}
              onChange={(event) => setEmail(event.target.value)}
            />
          </label>
        )}
        {needed?.kind === "totp_setup" && <TotpSecretShown secret={needed.secret} />}
        {asksCode ? (
          <TotpCodeField code={code} setCode={setCode} />
        ) : (
          <label>
            {needed ? t("sign_in.new_password") : t("sign_in.password")}
            <input
              type="password"
              autoComplete={needed ? "new-password" : "current-password"}
              required
              minLength={needed ? 12 : undefined}
              value={password}
              onChange={(event) => setPassword(event.target.value)}
            />
          </label>
        )}
        {(problem ?? refused) && (
          <p role="alert" className="problem">
            {problem ?? t("sign_in.refused", { reason: refused })}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {t("sign_in.submit")}
        </button>
      </form>
    </main>
  );
}
