// The admin API, the console's only back end. Errors come as the API's one error map writes
// them: {"code", "message"}, and on a 422 also "errors": [{"field", "message"}] (the message
// then is those problems joined), a problem with a "code" and its "params" as well when the
// console may say it in the user's language (an import's refusals: tsunagu/imports/refusals.py).
import { useSyncExternalStore } from "react";

import { freshSession, renewSession, signOut } from "./auth";
import { config } from "./config";
import i18n from "./i18n";

// Requests under way, for `aria-busy` on the page's main region: a screen reader knows the
// screen is still filling in, and so do the browser tests (instead of guessing from network
// silence, which a slow machine or a polling canvas never gives them).
let inFlight = 0;
const busyListeners = new Set<() => void>();

function setInFlight(change: number): void {
  inFlight += change;
  for (const listener of busyListeners) listener();
}

/** True while any admin API request is under way. */
export function useBusy(): boolean {
  return useSyncExternalStore(
    (listener) => {
      busyListeners.add(listener);
      return () => busyListeners.delete(listener);
    },
    () => inFlight > 0,
  );
}

export interface FieldProblem {
  field: string;
  /** The server's words, in English: what is shown for a problem without a known code. */
  message: string;
  /** What kind of problem it is (``not_in_encoding``): said from ``errors.field_codes``. */
  code?: string;
  /** What the sentence about ``code`` names (``{"encoding": "cp932"}``). */
  params?: Record<string, unknown>;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problems: FieldProblem[] = [],
    /** The refusal's kind (``not_found``, ``concurrent_update``...): what is said in the
     * user's language; ``message`` is the server's detail, in English. */
    readonly code?: string,
    /** What the refused request had already stored is at this revision now (a publish keeps
     * the canvas as the draft first): the next save goes over it. Absent: nothing was kept. */
    readonly revision?: number,
  ) {
    super(message);
  }
}

type Query = Record<string, string | number | undefined | null>;

/** ``raw``: the answer as text; ``bytes``: as an ArrayBuffer, byte for byte (a file in an
 * encoding other than UTF-8, which text would garble). */
interface RequestOptions {
  query?: Query;
  body?: unknown;
  raw?: boolean;
  bytes?: boolean;
}

export async function api<T>(
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<T> {
  setInFlight(+1);
  try {
    return await request<T>(method, path, options);
  } finally {
    setInFlight(-1);
  }
}

/** The largest page the admin API gives (its MAX_PAGE_SIZE). */
const LARGEST_PAGE = 200;

/** Every item of a paged list, page after page (``next_cursor``): for the lists a screen shows
 * or offers whole - journeys, templates, forms, sites, users - which are tens or hundreds long
 * (a first page alone hid the rest with no way to reach them). */
export async function allItems<T>(path: string, query: Query = {}): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: T[]; next_cursor?: string | null } = await api("GET", path, {
      query: { ...query, limit: LARGEST_PAGE, cursor },
    });
    items.push(...page.items);
    cursor = page.next_cursor ?? null;
  } while (cursor);
  return items;
}

/** A file the API sends (a CSV export) with the answer's headers: a cut audit log says in
 * one where the next file starts. */
export interface FileAnswer {
  bytes: ArrayBuffer;
  headers: Headers;
}

export async function apiFile(path: string, query: Query = {}): Promise<FileAnswer> {
  setInFlight(+1);
  try {
    const response = await send("GET", path, { query });
    return { bytes: await response.arrayBuffer(), headers: response.headers };
  } finally {
    setInFlight(-1);
  }
}

async function request<T>(
  method: string,
  path: string,
  options: RequestOptions,
): Promise<T> {
  const response = await send(method, path, options);
  if (options.bytes) return (await response.arrayBuffer()) as T;
  if (options.raw) return (await response.text()) as T;
  return (await response.json()) as T;
}

/** The request, signed with the session's token; an answer that is not 2xx is thrown as the
 * API's error. */
async function send(method: string, path: string, options: RequestOptions): Promise<Response> {
  const session = await freshSession();
  if (session === null) return signedOut();
  const { api_url } = await config();
  const url = new URL(api_url.replace(/\/$/, "") + path);
  for (const [name, value] of Object.entries(options.query ?? {})) {
    if (value !== undefined && value !== null && value !== "") {
      url.searchParams.set(name, String(value));
    }
  }
  const sent = (idToken: string) =>
    fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${idToken}`,
        ...(options.body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  let response = await sent(session.idToken);
  if (response.status === 401) {
    // The gateway refuses an expired token before anything runs (the tab's clock may be off,
    // or it slept): renewed, the request goes once more; refused again, the user signs in.
    const renewed = await renewSession();
    if (renewed === null) return signedOut();
    response = await sent(renewed.idToken);
    if (response.status === 401) {
      signOut();
      return signedOut();
    }
  }
  if (!response.ok) {
    const answer = (await response.json().catch(() => ({}))) as {
      code?: string;
      message?: string;
      errors?: FieldProblem[];
      revision?: number;
    };
    throw new ApiError(
      response.status,
      answer.message ?? response.statusText,
      answer.errors,
      answer.code,
      answer.revision,
    );
  }
  return response;
}

/** The session has ended: the app asks the user to sign in again (keeping the screen they were
 * on, with what they had not saved), and the request fails as a 401. */
function signedOut(): never {
  window.dispatchEvent(new Event("tsunagu:signed-out"));
  throw new ApiError(401, "not signed in");
}

/** A file's bytes PUT to a pre-signed URL (the imports bucket's, not the admin API: no token,
 * the file's own type as its content type), counted as a request under way. S3 says what went
 * wrong in XML; its <Message> is the error's. */
export async function putFile(url: string, file: Blob): Promise<void> {
  setInFlight(+1);
  try {
    const response = await fetch(url, { method: "PUT", body: file });
    if (!response.ok) {
      const text = await response.text().catch(() => "");
      const said = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
      throw new ApiError(response.status, said ?? response.statusText);
    }
  } finally {
    setInFlight(-1);
  }
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** What is wrong, in the user's language when the console knows the problem's code (its
 * params put into the sentence, numbers and lists of names as the language writes them), else
 * the server's English words. */
export function problemText(problem: FieldProblem): string {
  const key = `errors.field_codes.${problem.code ?? ""}`;
  if (!problem.code || !i18n.exists(key)) return problem.message;
  const locale = i18n.language?.startsWith("ja") ? "ja-JP" : "en-GB";
  const numbers = new Intl.NumberFormat(locale);
  // Several names (the forms naming a confirmation mail) as the language lists them
  const names = new Intl.ListFormat(locale, { style: "long", type: "conjunction" });
  const params = Object.fromEntries(
    Object.entries(problem.params ?? {}).map(([name, value]) => [
      name,
      typeof value === "number"
        ? numbers.format(value)
        : Array.isArray(value)
          ? names.format(value.map(String))
          : String(value),
    ]),
  );
  return i18n.t(key, { ...params, defaultValue: problem.message });
}

/** One field's problem in words: the field by its name on the screen (the API's name when
 * the console has none for it), then what is wrong. A coded problem with a field inside
 * another (``mapping.電話番号``) is named by the outer one: its sentence names the inner one
 * (the column) already. */
export function describeProblem(problem: FieldProblem): string {
  const outer = problem.code ? problem.field.split(".")[0] : problem.field;
  const field = i18n.t(`errors.fields.${problem.field}`, {
    defaultValue: i18n.t(`errors.fields.${outer}`, { defaultValue: problem.field }),
  });
  return i18n.t("errors.problem", { field, message: problemText(problem) });
}

/** What went wrong, in words for the page, each thing once: a 422's field problems (its
 * message is only them joined), else the refusal said by its kind in the user's language
 * with the server's words as the detail (the server's words alone for a kind the console has
 * no words for). ``problemsShownApart``: the screen shows each problem at its own field, so
 * only a line pointing at them is said here. */
export function describeError(error: unknown, options: { problemsShownApart?: boolean } = {}): string {
  if (error instanceof ApiError) {
    if (error.problems.length > 0) {
      if (options.problemsShownApart) return i18n.t("errors.see_fields", { count: error.problems.length });
      return error.problems.map(describeProblem).join(" ");
    }
    if (error.code) {
      return i18n.t(`errors.codes.${error.code}`, { message: error.message, defaultValue: error.message });
    }
    return error.message;
  }
  return error instanceof SyntaxError ? `JSON: ${error.message}` : String(error);
}
