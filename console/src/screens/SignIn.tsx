import { type FormEvent, useState } from "react";
import { useTranslation } from "react-i18next";

import { type NewPasswordNeeded, SignInError, setNewPassword, signIn } from "../auth";

/** ``refused``: why the admin API sent a signed-in user back here (shown until she signs in
 * again). */
export function SignIn({ onSignedIn, refused }: { onSignedIn: () => void; refused?: string | null }) {
  const { t } = useTranslation();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [needed, setNeeded] = useState<NewPasswordNeeded | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setProblem(null);
    try {
      if (needed !== null) {
        await setNewPassword(needed, password);
        onSignedIn();
        return;
      }
      const result = await signIn(email.trim(), password);
      if ("kind" in result) {
        setNeeded(result);
        setPassword("");
      } else {
        onSignedIn();
      }
    } catch (error) {
      const code = error instanceof SignInError ? error.code : "Error";
      setProblem(
        code === "NotAuthorizedException" || code === "UserNotFoundException"
          ? t("sign_in.wrong")
          : error instanceof Error
            ? error.message
            : String(error),
      );
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="sign-in" id="main">
      <h1>Tsunagu</h1>
      <form onSubmit={(event) => void submit(event)}>
        <h2>{needed ? t("sign_in.new_password_title") : t("sign_in.title")}</h2>
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
