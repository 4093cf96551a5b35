import { useTranslation } from "react-i18next";

import type { TotpSecret } from "../auth";
import { CopyButton } from "../copy";

/** The secret for an authenticator app, as text to type in and as the otpauth:// URI that an
 * app or a password manager takes whole. (No QR code: no library in the console's lock draws
 * one, and the secret typed in does the same.) */
export function TotpSecretShown({ secret }: { secret: TotpSecret }) {
  const { t } = useTranslation();
  return (
    <div className="totp-secret">
      <p>{t("totp.add_to_app")}</p>
      <div className="code">
        <label>
          {t("totp.secret")}
          <textarea readOnly rows={1} value={secret.secret} />
        </label>
        <CopyButton text={secret.secret} what={t("totp.secret")} />
      </div>
      <div className="code">
        <label>
          {t("totp.uri")}
          <textarea readOnly rows={2} value={secret.uri} />
        </label>
        <CopyButton text={secret.uri} what={t("totp.uri")} />
      </div>
    </div>
  );
}

/** The authenticator app's 6-digit code, as signing in and turning TOTP on both ask for it. */
export function TotpCodeField({ code, setCode }: { code: string; setCode: (code: string) => void }) {
  const { t } = useTranslation();
  return (
    <label>
      {t("sign_in.code")}
      <input
        type="text"
        inputMode="numeric"
        autoComplete="one-time-code"
        pattern="[0-9]{6}"
        maxLength={6}
        required
        value={code}
        onChange={(event) => setCode(event.target.value.trim())}
      />
    </label>
  );
}
