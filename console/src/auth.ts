// Sign-in with the stack's Cognito user pool (USER_PASSWORD_AUTH over HTTPS, as the app client
// allows): the ID token is what the admin API's JWT authorizer checks; the access token is what
// Cognito asks for when a user turns their own two-step sign-in (TOTP) on or off. Both are kept
// for the tab only (sessionStorage), never in a cookie or localStorage.
import { config } from "./config";

const KEY = "tsunagu.session";
const ISSUER = "Tsunagu";

export interface Session {
  idToken: string;
  accessToken: string;
  email: string;
  expiresAt: number; // epoch ms
}

export class SignInError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export interface NewPasswordNeeded {
  kind: "new_password";
  session: string;
  email: string;
}

/** The user has TOTP on: the code their authenticator app shows now. */
export interface CodeNeeded {
  kind: "totp_code";
  session: string;
  email: string;
}

/** The pool asks this user to set TOTP up before they may sign in (a pool with MFA required):
 * the secret to put in an authenticator app, then a code it shows. */
export interface SetupNeeded {
  kind: "totp_setup";
  session: string;
  email: string;
  secret: TotpSecret;
}

export type NextStep = NewPasswordNeeded | CodeNeeded | SetupNeeded;

/** What an authenticator app needs: the secret typed in by hand, or the otpauth:// URI. */
export interface TotpSecret {
  secret: string;
  uri: string;
}

async function cognito(target: string, body: unknown): Promise<Record<string, unknown>> {
  const { cognito_url } = await config();
  const response = await fetch(cognito_url, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": `AWSCognitoIdentityProviderService.${target}`,
    },
    body: JSON.stringify(body),
  });
  const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) {
    const code = String(answer.__type ?? answer.code ?? "Error").split("#").pop() ?? "Error";
    throw new SignInError(String(answer.message ?? answer.Message ?? code), code);
  }
  return answer;
}

function remember(email: string, result: Record<string, unknown>): Session {
  const tokens = result.AuthenticationResult as {
    IdToken: string;
    AccessToken: string;
    ExpiresIn: number;
  };
  const session = {
    idToken: tokens.IdToken,
    accessToken: tokens.AccessToken,
    email,
    expiresAt: Date.now() + (tokens.ExpiresIn - 30) * 1000,
  };
  sessionStorage.setItem(KEY, JSON.stringify(session));
  return session;
}

/** Signed in, or the step Cognito asks for next: every answer of InitiateAuth and
 * RespondToAuthChallenge goes through here, so a new password may be followed by TOTP. */
async function signedInOrNext(email: string, result: Record<string, unknown>): Promise<Session | NextStep> {
  const session = String(result.Session ?? "");
  switch (result.ChallengeName) {
    case undefined:
    case null:
      return remember(email, result);
    case "NEW_PASSWORD_REQUIRED":
      return { kind: "new_password", session, email };
    case "SOFTWARE_TOKEN_MFA":
      return { kind: "totp_code", session, email };
    case "MFA_SETUP": {
      // Only a software token can be set up here (the pool offers no SMS)
      const associated = await cognito("AssociateSoftwareToken", { Session: session });
      return {
        kind: "totp_setup",
        session: String(associated.Session ?? session),
        email,
        secret: totpSecret(email, String(associated.SecretCode)),
      };
    }
    default:
      throw new SignInError(`sign-in asks for ${String(result.ChallengeName)}`, "Challenge");
  }
}

export async function signIn(email: string, password: string): Promise<Session | NextStep> {
  const { client_id } = await config();
  const result = await cognito("InitiateAuth", {
    AuthFlow: "USER_PASSWORD_AUTH",
    ClientId: client_id,
    AuthParameters: { USERNAME: email, PASSWORD: password },
  });
  return signedInOrNext(email, result);
}

export async function setNewPassword(
  needed: NewPasswordNeeded,
  password: string,
): Promise<Session | NextStep> {
  const { client_id } = await config();
  const result = await cognito("RespondToAuthChallenge", {
    ChallengeName: "NEW_PASSWORD_REQUIRED",
    ClientId: client_id,
    Session: needed.session,
    ChallengeResponses: { USERNAME: needed.email, NEW_PASSWORD: password },
  });
  return signedInOrNext(needed.email, result);
}

/** The code of a user who has TOTP on. */
export async function answerCode(needed: CodeNeeded, code: string): Promise<Session | NextStep> {
  const { client_id } = await config();
  const result = await cognito("RespondToAuthChallenge", {
    ChallengeName: "SOFTWARE_TOKEN_MFA",
    ClientId: client_id,
    Session: needed.session,
    ChallengeResponses: { USERNAME: needed.email, SOFTWARE_TOKEN_MFA_CODE: code.trim() },
  });
  return signedInOrNext(needed.email, result);
}

/** The first code of the authenticator app set up at sign-in; Cognito then signs the user in. */
export async function finishSetup(needed: SetupNeeded, code: string): Promise<Session | NextStep> {
  const { client_id } = await config();
  const verified = await cognito("VerifySoftwareToken", {
    Session: needed.session,
    UserCode: code.trim(),
    FriendlyDeviceName: ISSUER,
  });
  const result = await cognito("RespondToAuthChallenge", {
    ChallengeName: "MFA_SETUP",
    ClientId: client_id,
    Session: String(verified.Session ?? needed.session),
    ChallengeResponses: { USERNAME: needed.email },
  });
  return signedInOrNext(needed.email, result);
}

function totpSecret(email: string, secret: string): TotpSecret {
  // Key URI format (Google Authenticator's, which the other apps read): issuer:account
  const label = encodeURIComponent(`${ISSUER}:${email}`);
  const query = new URLSearchParams({ secret, issuer: ISSUER, algorithm: "SHA1", digits: "6", period: "30" });
  return { secret, uri: `otpauth://totp/${label}?${query.toString()}` };
}

function signedIn(): Session {
  const session = currentSession();
  // A tab signed in before the access token was kept has none: signing in again gives it
  if (session === null || !session.accessToken) {
    throw new SignInError("signed out: sign in again", "NotAuthorizedException");
  }
  return session;
}

/** Whether the signed-in user signs in with a TOTP code. */
export async function totpIsOn(): Promise<boolean> {
  const user = await cognito("GetUser", { AccessToken: signedIn().accessToken });
  return ((user.UserMFASettingList as string[] | undefined) ?? []).includes("SOFTWARE_TOKEN_MFA");
}

/** A new secret for the signed-in user's authenticator app (not in use until confirmed). */
export async function newTotpSecret(): Promise<TotpSecret> {
  const session = signedIn();
  const associated = await cognito("AssociateSoftwareToken", { AccessToken: session.accessToken });
  return totpSecret(session.email, String(associated.SecretCode));
}

/** The app's first code proves it holds the secret; from then on sign-in asks for a code. */
export async function turnTotpOn(code: string): Promise<void> {
  const { accessToken } = signedIn();
  await cognito("VerifySoftwareToken", { AccessToken: accessToken, UserCode: code.trim(), FriendlyDeviceName: ISSUER });
  await cognito("SetUserMFAPreference", {
    AccessToken: accessToken,
    SoftwareTokenMfaSettings: { Enabled: true, PreferredMfa: true },
  });
}

export async function turnTotpOff(): Promise<void> {
  await cognito("SetUserMFAPreference", {
    AccessToken: signedIn().accessToken,
    SoftwareTokenMfaSettings: { Enabled: false, PreferredMfa: false },
  });
}

export function currentSession(): Session | null {
  const text = sessionStorage.getItem(KEY);
  if (!text) return null;
  const session = JSON.parse(text) as Session;
  if (session.expiresAt < Date.now()) {
    sessionStorage.removeItem(KEY);
    return null;
  }
  return session;
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
}
