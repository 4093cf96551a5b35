// Sign-in with the stack's Cognito user pool (USER_PASSWORD_AUTH over HTTPS, as the app client
// allows): the ID token is what the admin API's JWT authorizer checks; the access token is what
// Cognito asks for when a user turns their own two-step sign-in (TOTP) on or off. Both live a
// quarter of an hour (the app client's validity); the refresh token renews them
// (REFRESH_TOKEN_AUTH) for the 12 hours it lives, unless an admin disables or demotes the user,
// which revokes it. All three are kept for the tab only (sessionStorage), never in a cookie or
// localStorage.
import { config } from "./config";

const KEY = "tsunagu.session";
const ISSUER = "Tsunagu";

export interface Session {
  idToken: string;
  accessToken: string;
  /** Absent in a tab signed in before sessions were renewed: it signs in again at expiry. */
  refreshToken?: string;
  email: string;
  expiresAt: number; // epoch ms: when the ID and access tokens are to be renewed
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

/** ``refreshToken``: the one a renewal was made with (Cognito answers a renewal without one). */
function remember(email: string, result: Record<string, unknown>, refreshToken?: string): Session {
  const tokens = result.AuthenticationResult as {
    IdToken: string;
    AccessToken: string;
    RefreshToken?: string;
    ExpiresIn: number;
  };
  const session: Session = {
    idToken: tokens.IdToken,
    accessToken: tokens.AccessToken,
    refreshToken: tokens.RefreshToken ?? refreshToken,
    email,
    // Renewed half a minute early, so no request leaves with a token about to expire
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

async function signedIn(): Promise<Session> {
  const session = await freshSession();
  // A tab signed in before the access token was kept has none: signing in again gives it
  if (session === null || !session.accessToken) {
    throw new SignInError("signed out: sign in again", "NotAuthorizedException");
  }
  return session;
}

/** Whether the signed-in user signs in with a TOTP code. */
export async function totpIsOn(): Promise<boolean> {
  const user = await cognito("GetUser", { AccessToken: (await signedIn()).accessToken });
  return ((user.UserMFASettingList as string[] | undefined) ?? []).includes("SOFTWARE_TOKEN_MFA");
}

/** A new secret for the signed-in user's authenticator app (not in use until confirmed). */
export async function newTotpSecret(): Promise<TotpSecret> {
  const session = await signedIn();
  const associated = await cognito("AssociateSoftwareToken", { AccessToken: session.accessToken });
  return totpSecret(session.email, String(associated.SecretCode));
}

/** The app's first code proves it holds the secret; from then on sign-in asks for a code. */
export async function turnTotpOn(code: string): Promise<void> {
  const { accessToken } = await signedIn();
  await cognito("VerifySoftwareToken", { AccessToken: accessToken, UserCode: code.trim(), FriendlyDeviceName: ISSUER });
  await cognito("SetUserMFAPreference", {
    AccessToken: accessToken,
    SoftwareTokenMfaSettings: { Enabled: true, PreferredMfa: true },
  });
}

export async function turnTotpOff(): Promise<void> {
  await cognito("SetUserMFAPreference", {
    AccessToken: (await signedIn()).accessToken,
    SoftwareTokenMfaSettings: { Enabled: false, PreferredMfa: false },
  });
}

/** The tab's session, whether or not its tokens are still valid (``freshSession`` renews them);
 * null when signed out, or when expired with nothing to renew it by. */
export function currentSession(): Session | null {
  const text = sessionStorage.getItem(KEY);
  if (!text) return null;
  const session = JSON.parse(text) as Session;
  if (session.expiresAt < Date.now() && !session.refreshToken) {
    sessionStorage.removeItem(KEY);
    return null;
  }
  return session;
}

/** The session with tokens that are not about to expire: renewed first if they are. */
export async function freshSession(): Promise<Session | null> {
  const session = currentSession();
  if (session === null || session.expiresAt >= Date.now()) return session;
  return renewSession();
}

let renewing: Promise<Session | null> | null = null;

/** New ID and access tokens from the refresh token (REFRESH_TOKEN_AUTH), before they expire or
 * after the API refused one; null, and signed out, when Cognito refuses the refresh token
 * (expired, or revoked: the user was disabled or demoted). Requests that need it at the same
 * moment share one renewal. A network failure is thrown, leaving the session as it was. */
export function renewSession(): Promise<Session | null> {
  renewing ??= renew().finally(() => {
    renewing = null;
  });
  return renewing;
}

async function renew(): Promise<Session | null> {
  const session = currentSession();
  if (session === null || !session.refreshToken) {
    signOut();
    return null;
  }
  const { client_id } = await config();
  try {
    const result = await cognito("InitiateAuth", {
      AuthFlow: "REFRESH_TOKEN_AUTH",
      ClientId: client_id,
      AuthParameters: { REFRESH_TOKEN: session.refreshToken },
    });
    return remember(session.email, result, session.refreshToken);
  } catch (error) {
    if (!(error instanceof SignInError)) throw error;
    signOut();
    return null;
  }
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
}
