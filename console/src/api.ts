// The admin API, the console's only back end. Errors come as the API's one error map writes
// them: {"message"}, and on a 422 {"message", "errors": [{"field", "message"}]}.
import { useSyncExternalStore } from "react";

import { currentSession, signOut } from "./auth";
import { config } from "./config";

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
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problems: FieldProblem[] = [],
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
  const session = currentSession();
  if (session === null) {
    window.dispatchEvent(new Event("tsunagu:signed-out"));
    throw new ApiError(401, "not signed in");
  }
  const { api_url } = await config();
  const url = new URL(api_url.replace(/\/$/, "") + path);
  for (const [name, value] of Object.entries(options.query ?? {})) {
    if (value !== undefined && value !== null && value !== "") {
      url.searchParams.set(name, String(value));
    }
  }
  const response = await fetch(url, {
    method,
    headers: {
      authorization: `Bearer ${session.idToken}`,
      ...(options.body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (response.status === 401) {
    signOut();
    window.dispatchEvent(new Event("tsunagu:signed-out"));
  }
  if (!response.ok) {
    const answer = (await response.json().catch(() => ({}))) as {
      message?: string;
      errors?: FieldProblem[];
    };
    throw new ApiError(response.status, answer.message ?? response.statusText, answer.errors);
  }
  return response;
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

/** What went wrong, in words for the page: the API's message and each field's problem. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    return [error.message, ...error.problems.map((p) => `${p.field}: ${p.message}`)].join("; ");
  }
  return error instanceof SyntaxError ? `JSON: ${error.message}` : String(error);
}
