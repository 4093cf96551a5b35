// Sign-in with the stack's Cognito user pool (USER_PASSWORD_AUTH over HTTPS, as the app client
// allows): the ID token is what the admin API's JWT authorizer checks. It is kept for the tab
// only (sessionStorage), never in a cookie or localStorage.
import { config } from "./config";

const KEY = "tsunagu.session";

export interface Session {
  idToken: string;
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
  const tokens = result.AuthenticationResult as { IdToken: string; ExpiresIn: number };
  const session = {
    idToken: tokens.IdToken,
    email,
    expiresAt: Date.now() + (tokens.ExpiresIn - 30) * 1000,
  };
  sessionStorage.setItem(KEY, JSON.stringify(session));
  return session;
}

export async function signIn(
  email: string,
  password: string,
): Promise<Session | NewPasswordNeeded> {
  const { client_id } = await config();
  const result = await cognito("InitiateAuth", {
    AuthFlow: "USER_PASSWORD_AUTH",
    ClientId: client_id,
    AuthParameters: { USERNAME: email, PASSWORD: password },
  });
  if (result.ChallengeName === "NEW_PASSWORD_REQUIRED") {
    return { kind: "new_password", session: String(result.Session), email };
  }
  if (result.ChallengeName) {
    throw new SignInError(`sign-in asks for ${String(result.ChallengeName)}`, "Challenge");
  }
  return remember(email, result);
}

export async function setNewPassword(
  needed: NewPasswordNeeded,
  password: string,
): Promise<Session> {
  const { client_id } = await config();
  const result = await cognito("RespondToAuthChallenge", {
    ChallengeName: "NEW_PASSWORD_REQUIRED",
    ClientId: client_id,
    Session: needed.session,
    ChallengeResponses: { USERNAME: needed.email, NEW_PASSWORD: password },
  });
  return remember(needed.email, result);
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
