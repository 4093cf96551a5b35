// Importing a lead list: the dry run (the file as Excel or Sheets saved it, what each row would
// do before anything is written, and the rejected rows to download, fix and import again), then
// applying exactly that plan, and the imports so far, each of which may be undone. A list too
// large for a request's body is uploaded to the imports bucket first (a pre-signed URL), and
// applied in the background: its progress is shown as it goes.
import { type FormEvent, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useTranslation } from "react-i18next";

import { api, ApiError, describeError, type FieldProblem, problemText, putFile } from "../api";
import { saveAs } from "../download";
import i18n, { when } from "../i18n";
import { useMay } from "../me";
import { latestAnswer, useLatestRequest } from "../useLatestRequest";
import { fieldName, sourceName } from "../names";

const SOURCES = ["import", "trade_show", "seminar", "web_form", "sales", "crm"] as const;
const ACTIONS = ["create", "update", "unchanged", "merged", "rejected"] as const;
/** Files larger than this are uploaded (a pre-signed PUT) and applied in the background: sent
 * as base64 they would near the API's 512 KB body. */
const UPLOAD_OVER_BYTES = 300 * 1024;
/** How often a background run's progress is asked for. */
const POLL_MS = 1500;

interface PlannedRow {
  row: number;
  action: (typeof ACTIONS)[number];
  email: string | null;
  changes: Record<string, { before: string | null; after: string }>;
  kept: Record<string, { kept: string; source: string; file: string }>;
  consent: "yes" | "no" | null;
  /** Why the file's "yes" is not recorded (the lead has said no since, or is suppressed). */
  consent_kept: string | null;
  /** Why the row is rejected, in English (the server's words). */
  reason: string | null;
  /** ... as a code and what a sentence about it needs (the column, the value as written...):
   * what the screen says, in the user's language. Absent from a plan kept before codes. */
  reason_code?: string | null;
  reason_params?: Record<string, unknown>;
  /** The row's other problems, each given as its first is (absent from a plan kept before a
   * row said every problem it has). */
  more_reasons?: Reason[];
  into: number | null;
}
/** One reason a row is rejected for. */
interface Reason {
  reason: string | null;
  reason_code?: string | null;
  reason_params?: Record<string, unknown>;
}
interface Plan {
  plan_digest: string;
  encoding: string;
  /** Every column of the file, in order (absent from a plan kept before it was answered). */
  header?: string[];
  columns: Record<string, string>;
  unmapped: string[];
  consent_column: string | null;
  counts: Record<string, number>;
  rows: PlannedRow[];
  rejected_csv_base64?: string;
  /** A large rejected-rows file is kept in the imports bucket and linked instead (15 minutes). */
  rejected_csv_url?: string;
  rows_shown: number;
}

/** An uploaded list's dry run, planned in the background (202), until it is planned. */
interface DryRun {
  plan_id: string;
  status: "planning" | "planned" | "refused";
  error?: { message: string; fields?: FieldProblem[] };
}

const pause = (ms: number) => new Promise((resolve) => window.setTimeout(resolve, ms));
/** How long a background dry run is waited for: its step's retries end well inside it. */
const DRY_RUN_WAIT_MS = 30 * 60 * 1000;
/** Network or server failures in a row that a wait rides out before it says so. */
const PASSING_FAILURES = 5;

/** A failure that may pass (the network, the server), not the API refusing. */
function mayPass(error: unknown): boolean {
  return error instanceof TypeError || (error instanceof ApiError && (error.status === 0 || error.status >= 500));
}

interface ImportRecord {
  import_id: string;
  file_name: string;
  source: string;
  encoding: string;
  by: string;
  at: string;
  plan_digest: string;
  counts: Record<string, number>;
  status: "queued" | "applying" | "applied" | "applied_with_parked" | "refused" | "failed" | "undone";
  undone_at: string | null;
  /** ``withdrawn``: the opt-ins the undo took back (missing from undos made before it was counted). */
  undo: { removed: number; restored: number; withdrawn?: number; kept: number } | null;
  /** Why a background run was refused, or which of its rows it parked. */
  detail?: string | null;
  /** Run by the import state machine (not within one request). */
  background?: boolean;
}
interface Parked {
  chunk: number;
  first_row: number | null;
  last_row: number | null;
  error: string;
}
interface Progress {
  rows_total: number;
  rows_done: number;
  rows_parked: number;
  chunks_total: number;
  chunks_done: number;
  parked: Parked[];
}
/** An import with how far its background run is (none for one applied in a single request). */
interface ImportState extends ImportRecord {
  progress: Progress | null;
}
interface Upload {
  upload_id: string;
  url: string;
  max_bytes: number;
}
interface KeptRow {
  row: number;
  email: string;
  changed_since: string[];
  /** What of the row's consent the undo left, and why (an opt-out it gave, an answer since). */
  consent?: {
    topic: string;
    reason_code: string;
    reason: string;
    reason_params: { topic: string; at?: string; by?: string };
  };
}
interface Undone extends ImportRecord {
  kept: KeptRow[];
}

/** What a dry run asked: sent again, with the plan's digest, to apply exactly that plan. */
interface PlanRequest {
  file_name: string;
  /** The file itself, or the upload holding it (a large file: applied in the background). */
  content_base64?: string;
  upload_id?: string;
  source: string;
  /** Named over the one found ("Shift_JIS" when the file only looks like UTF-8). */
  encoding?: string;
  /** A mapping saved for the source, what this request gives laid over it. */
  saved_mapping?: string;
  /** Header -> field ("-" leaves a column out), over the saved and the automatic mapping. */
  mapping?: Record<string, string>;
  consent?: { column: string; yes: string[]; no: string[] };
  rows: number;
  /** The language of the reasons in the rejected rows' file: the screen's. */
  language: "ja" | "en";
}

/** A file's column, as POST /admin/imports/columns answers it. */
interface FileColumn {
  header: string;
  /** What the dry run would read it as (null: left out), before the user's choices. */
  field: string | null;
  /** What says so: a mapping (saved), or the headers' automatic mapping. */
  by: "mapping" | "automatic" | null;
  /** Its first different values, to tell what 「ご芳名」 holds. */
  samples: string[];
  /** The saved mapping's consent column. */
  consent: boolean;
}
interface FileColumns {
  encoding: string;
  columns: FileColumn[];
  consent_column: string | null;
  /** The fields the automatic mapping knows (any other may be named). */
  fields: string[];
  /** Why the dry run would refuse the mapping as it stands. */
  problems: FieldProblem[];
}
interface SavedMapping {
  name: string;
  source: string;
  columns: Record<string, string>;
  consent_column: string | null;
  consent_yes: string[];
  consent_no: string[];
  encoding: string | null;
  description: string;
}

/** The encodings a list may be named in (tsunagu/imports/reading.py's ENCODINGS). */
const ENCODINGS = ["utf-8", "utf-8-sig", "cp932", "utf-16"] as const;
/** How much of a list too large to send whole is sent to read its columns from. */
const COLUMNS_FROM_BYTES = 256 * 1024;

/** What to read a list's columns from: the file, or a large CSV's or TSV's first part cut at
 * the end of a line (of a UTF-16 file, at a whole character); null for a large workbook, whose
 * columns cannot be read from a part (they are shown from its dry run). */
async function firstPart(file: File): Promise<ArrayBuffer | null> {
  if (file.size <= UPLOAD_OVER_BYTES) return file.arrayBuffer();
  if (/\.xlsx$/i.test(file.name)) return null;
  const bytes = new Uint8Array(await file.slice(0, COLUMNS_FROM_BYTES).arrayBuffer());
  if (bytes[0] === 0x50 && bytes[1] === 0x4b) return null; // a workbook by its bytes (a zip)
  const little = bytes[0] === 0xff && bytes[1] === 0xfe;
  const big = bytes[0] === 0xfe && bytes[1] === 0xff;
  for (let at = bytes.length - 2; at > 1; at--) {
    const end =
      (little && at % 2 === 0 && bytes[at] === 0x0a && bytes[at + 1] === 0x00) ||
      (big && at % 2 === 0 && bytes[at] === 0x00 && bytes[at + 1] === 0x0a);
    if (end) return bytes.slice(0, at + 2).buffer;
    if (!little && !big && bytes[at] === 0x0a) return bytes.slice(0, at + 1).buffer;
  }
  return bytes.buffer;
}

/** The rejected rows' file, as the API names it (tsunagu.commands.imports.rejected_file_name):
 * after the list, and a CSV whatever the list was. */
function rejectedFileName(fileName: string): string {
  const dot = fileName.lastIndexOf(".");
  return `rejected-${dot > 0 ? fileName.slice(0, dot) : fileName}.csv`;
}

function base64Of(buffer: ArrayBuffer): string {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function values(text: string): string[] {
  return text
    .split(/[,、]/)
    .map((part) => part.trim())
    .filter(Boolean);
}

/** The encoding a list was read in, as people call it ("Shift_JIS (cp932)", not "cp932"); a
 * workbook's sheet as the API says it. */
function encodingName(t: (key: string, options: { defaultValue: string }) => string, encoding: string): string {
  return t(`imports.encodings.${encoding}`, { defaultValue: encoding });
}

/** "create 1 · update 0 · …", in the screen's words. */
function countsText(t: (key: string) => string, counts: Record<string, number>): string {
  return ACTIONS.map((action) => `${t(`imports.actions.${action}`)} ${counts[action] ?? 0}`).join(" · ");
}

/** The parameters that name a thing, and the group of words (imports.reason_words) that says
 * each in the reader's language. */
const NAMED_BY: Record<string, string> = { delimiter: "delimiters", expected: "expected", weekday: "weekdays" };

/** A reason's parameters as its sentence takes them (as tsunagu/imports/reasons.py makes them
 * for the rejected rows' file): lists joined, numbers with their thousands marked, the cells
 * past the header named one by one, a delimiter, an expected kind and a weekday in the user's words. */
function spokenParams(params: Record<string, unknown>): Record<string, string> {
  const words = (key: string, options: Record<string, unknown> = {}) => i18n.t(`imports.reason_words.${key}`, options);
  const separator = words("list_separator");
  const spoken: Record<string, string> = {};
  for (const [name, value] of Object.entries(params)) {
    if (name === "cells" && Array.isArray(value)) {
      const named = (value as { column: number; value: string }[]).map((cell) => words("cell", { ...cell }));
      if (typeof params.more === "number" && params.more > 0) named.push(words("more", { count: params.more }));
      spoken[name] = named.join(separator);
    } else if (name in NAMED_BY) {
      spoken[name] = words(`${NAMED_BY[name]}.${String(value)}`, { defaultValue: String(value) });
    } else if (Array.isArray(value)) {
      spoken[name] = value.length > 0 ? value.map(String).join(separator) : words("none");
    } else if (typeof value === "number") {
      spoken[name] = value.toLocaleString("en-US");
    } else {
      spoken[name] = String(value ?? "");
    }
  }
  return spoken;
}

/** One reason, in the user's language from its code; the server's English words when the
 * console has none for its code, or the plan has no code (kept before codes existed). */
function reasonSaid(said: Reason): string {
  const key = `imports.reasons.${said.reason_code ?? ""}`;
  if (!said.reason_code || !i18n.exists(key)) return said.reason ?? "";
  return i18n.t(key, { ...spokenParams(said.reason_params ?? {}), defaultValue: said.reason ?? "" });
}

/** Why a row is rejected: every problem it has, one after the other (as the rejected rows'
 * file says them). */
function rejectionReason(row: PlannedRow): string | null {
  if (row.reason === null && !row.reason_code) return null;
  const separator = i18n.t("imports.reason_words.reason_separator");
  return [row, ...(row.more_reasons ?? [])].map(reasonSaid).join(separator);
}

/** Still going: queued, or applying with a background run's progress (an "applying" import
 * without progress is a single-request run that stopped part-way: it will not move). */
function running(state: ImportState): boolean {
  return state.status === "queued" || (state.status === "applying" && state.progress !== null);
}

/** The console's own value for "read this column as consent" and "another field" in a column's
 * select (never a field's name: those are lower-case letters, digits and _). */
const AS_CONSENT = "(consent)";
const OTHER_FIELD = "(other)";
const LEFT_OUT = "-";
const FIELD_NAME = /^[a-z][a-z0-9_]{0,39}$/;
const MAPPING_NAME = /^[a-z][a-z0-9_-]{0,62}$/;

/** What the screen maps, as one string: a plan shown is the one to apply only while this is
 * what it was asked with. */
function optionsKey(options: Pick<PlanRequest, "source" | "encoding" | "saved_mapping" | "mapping" | "consent">): string {
  const mapping = Object.entries(options.mapping ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([options.source, options.encoding ?? "", options.saved_mapping ?? "", mapping, options.consent ?? null]);
}

export default function Imports() {
  const { t } = useTranslation();
  // A dry run waited for stops being waited for when the screen is left
  const onScreen = useRef(true);
  useEffect(() => {
    onScreen.current = true;
    return () => {
      onScreen.current = false;
    };
  }, []);
  const may = useMay();
  const mayRun = may("imports.run");
  const maySave = may("imports.mappings");
  const [file, setFile] = useState<File | null>(null);
  const [source, setSource] = useState<string>("import");
  /** The encoding named over the one found ("": as found). */
  const [encoding, setEncoding] = useState("");
  /** The saved mapping started from ("": none). */
  const [savedName, setSavedName] = useState("");
  const [saved, setSaved] = useState<SavedMapping[]>([]);
  const [fileColumns, setFileColumns] = useState<FileColumns | null>(null);
  const [columnsProblem, setColumnsProblem] = useState<string | null>(null);
  /** The columns the user mapped otherwise than the file's columns say: header -> field, or "-". */
  const [choices, setChoices] = useState<Record<string, string>>({});
  const [consentColumn, setConsentColumn] = useState("");
  const [yes, setYes] = useState("");
  const [no, setNo] = useState("");
  const [saving, setSaving] = useState(false);
  const [saveName, setSaveName] = useState("");
  const [plan, setPlan] = useState<Plan | null>(null);
  const [asked, setAsked] = useState<PlanRequest | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [savedMessage, setSavedMessage] = useState<string | null>(null);
  const [history, setHistory] = useState(0);
  /** The import whose run is shown (and a count, to show it afresh when opened again). */
  const [shown, setShown] = useState<{ id: string; opened: number } | null>(null);

  // Only the last reading is shown: two mappings saved quickly read the list twice, and the
  // first reading, answering last, took the second mapping out of the picker
  const beginMappings = useLatestRequest();
  const loadMappings = useCallback(async () => {
    const found = await latestAnswer(beginMappings(), api<{ items: SavedMapping[] }>("GET", "/admin/imports/mappings"));
    if (found) setSaved(found.answer.items);
  }, [beginMappings]);
  useEffect(() => {
    void loadMappings().catch((error) => setColumnsProblem(describeError(error)));
  }, [loadMappings]);
  const picked = saved.find((mapping) => mapping.name === savedName) ?? null;
  const ofSource = saved.filter((mapping) => mapping.source === source);

  // The file's columns, as the dry run would read them under the saved mapping and encoding
  // chosen: asked again when either changes (the user's own choices are laid over them here)
  const asking = useRef(0);
  useEffect(() => {
    const ask = ++asking.current;
    setFileColumns(null);
    setColumnsProblem(null);
    if (file === null) return;
    void (async () => {
      try {
        const part = await firstPart(file);
        if (part === null) {
          if (ask === asking.current) setColumnsProblem(t("imports.columns_after_dry_run"));
          return;
        }
        const found = await api<FileColumns>("POST", "/admin/imports/columns", {
          body: {
            file_name: file.name,
            content_base64: base64Of(part),
            encoding: encoding || undefined,
            saved_mapping: savedName || undefined,
          },
        });
        if (ask !== asking.current) return;
        setFileColumns(found);
        // The consent column as the file spells it (a saved mapping's may differ in width or case)
        const consent = found.columns.find((column) => column.consent);
        if (consent) setConsentColumn(consent.header);
      } catch (error) {
        if (ask === asking.current) setColumnsProblem(describeError(error));
      }
    })();
  }, [file, encoding, savedName, t]);

  /** Each column of the file in order, with the field it is read as before the user's choices:
   * from the columns asked for, or (a workbook too large to send twice) from the plan. */
  const columns: FileColumn[] = useMemo(() => {
    if (fileColumns) return fileColumns.columns;
    if (!plan) return [];
    const header = plan.header ?? [...Object.keys(plan.columns), ...plan.unmapped];
    return header.map((title) => ({
      header: title,
      field: plan.columns[title] ?? null,
      by: null,
      samples: [],
      consent: title === plan.consent_column,
    }));
  }, [fileColumns, plan]);
  const fields = fileColumns?.fields ?? [...new Set(["email", ...Object.values(plan?.columns ?? {})])];

  /** The field a column is read as now: the user's choice over the file's columns. */
  function fieldOf(column: FileColumn): string {
    return choices[column.header] ?? column.field ?? LEFT_OUT;
  }

  function choose(column: FileColumn, value: string) {
    if (value === AS_CONSENT) {
      setConsentColumn(column.header);
      setChoices(({ [column.header]: _, ...rest }) => rest);
      return;
    }
    if (consentColumn === column.header) setConsentColumn("");
    const chosen = value === OTHER_FIELD ? "" : value;
    setChoices(({ [column.header]: _, ...rest }) =>
      chosen === (column.field ?? LEFT_OUT) ? rest : { ...rest, [column.header]: chosen },
    );
  }

  /** The mapping sent: the user's choices, and the consent column kept out of the fields. */
  function mappingAsked(): Record<string, string> {
    const mapping = { ...choices };
    const consent = columns.find((column) => column.header === consentColumn);
    if (consent && consent.field !== null) mapping[consent.header] = LEFT_OUT;
    return mapping;
  }

  function consentAsked(): PlanRequest["consent"] {
    return consentColumn.trim() ? { column: consentColumn.trim(), yes: values(yes), no: values(no) } : undefined;
  }

  const current: Pick<PlanRequest, "source" | "encoding" | "saved_mapping" | "mapping" | "consent"> = {
    source,
    encoding: encoding || undefined,
    saved_mapping: savedName || undefined,
    mapping: mappingAsked(),
    consent: consentAsked(),
  };
  const planIsCurrent = asked !== null && optionsKey(asked) === optionsKey(current);
  const hasEmail = columns.some((column) => consentColumn !== column.header && fieldOf(column) === "email");

  // Only the last dry run's plan is shown, and none of a file no longer chosen: a plan that
  // answered late was offered to apply, the file it read imported whatever the screen showed
  const beginDryRun = useLatestRequest();

  function chooseFile(chosen: File | null) {
    beginDryRun(); // a dry run of the file chosen before is dropped
    setFile(chosen);
    setChoices({});
    setPlan(null);
    setAsked(null);
    setMessage(null);
    setSavedMessage(null);
    if (!picked) setConsentColumn("");
  }

  function pickMapping(name: string) {
    setSavedName(name);
    setChoices({});
    const mapping = saved.find((one) => one.name === name);
    if (mapping) {
      setConsentColumn(mapping.consent_column ?? "");
      setYes(mapping.consent_yes.join(", "));
      setNo(mapping.consent_no.join(", "));
      setEncoding(mapping.encoding === "shift_jis" ? "cp932" : (mapping.encoding ?? ""));
      setSaveName(mapping.name);
    }
  }

  function chooseSource(chosen: string) {
    setSource(chosen);
    if (picked && picked.source !== chosen) setSavedName("");
  }

  /** The file where the API reads it: in the request (base64), or, when large, uploaded. */
  async function fileOf(file: File): Promise<Pick<PlanRequest, "content_base64" | "upload_id">> {
    if (file.size <= UPLOAD_OVER_BYTES) {
      return { content_base64: base64Of(await file.arrayBuffer()) };
    }
    const upload = await api<Upload>("POST", "/admin/imports/uploads", {
      body: { file_name: file.name },
    });
    if (file.size > upload.max_bytes) {
      throw new ApiError(413, t("imports.too_large", { mb: Math.floor(upload.max_bytes / 1024 / 1024) }));
    }
    setMessage(t("imports.uploading", { kb: Math.ceil(file.size / 1024) }));
    try {
      await putFile(upload.url, file);
    } catch (error) {
      // The network, or the browser refusing the request (its CSP, CORS), says only "Failed to fetch"
      if (error instanceof TypeError) {
        throw new ApiError(0, t("imports.upload_failed", { detail: error.message }));
      }
      throw error;
    }
    return { upload_id: upload.upload_id };
  }

  /** This mapping kept for the source under ``saveName``: what was started from, with what
   * the user changed on top. */
  async function saveMapping() {
    const body = {
      source,
      columns: { ...(picked?.columns ?? {}), ...mappingAsked() },
      consent: consentAsked(),
      encoding: encoding || undefined,
      description: picked?.description ?? "",
    };
    try {
      await api("PUT", `/admin/imports/mappings/${encodeURIComponent(saveName)}`, { body });
      setSavedMessage(t("imports.mapping_saved", { name: saveName, source: sourceName(source) }));
      setSaving(false);
      await loadMappings();
    } catch (error) {
      setSavedMessage(t("imports.mapping_not_saved", { name: saveName, detail: describeError(error) }));
    }
  }

  async function dryRun(event: FormEvent) {
    event.preventDefault();
    if (file === null) return;
    setMessage(null);
    setSavedMessage(null);
    const unnamed = Object.entries(choices).find(([, chosen]) => !FIELD_NAME.test(chosen) && chosen !== LEFT_OUT);
    if (unnamed) {
      setMessage(t("imports.other_field_needed", { column: unnamed[0] }));
      return;
    }
    setPlan(null);
    setAsked(null);
    const isLatest = beginDryRun();
    try {
      const body: PlanRequest = {
        file_name: file.name,
        ...(await fileOf(file)),
        ...current,
        rows: 1000,
        language: i18n.language?.startsWith("ja") ? "ja" : "en",
      };
      let answer = await api<Plan | (DryRun & Partial<Plan>)>("POST", "/admin/imports/plans", { body });
      // An uploaded list is planned in the background: asked again until it is planned
      const deadline = Date.now() + DRY_RUN_WAIT_MS;
      let failures = 0;
      while ("plan_id" in answer && answer.status === "planning") {
        if (!onScreen.current || !isLatest()) return;
        if (Date.now() > deadline) throw new ApiError(0, t("imports.planning_too_long", { id: answer.plan_id }));
        setMessage(t("imports.planning"));
        await pause(POLL_MS * (failures + 1));
        try {
          answer = await api<DryRun & Partial<Plan>>("GET", `/admin/imports/plans/${answer.plan_id}`);
          failures = 0;
        } catch (error) {
          if (!mayPass(error) || ++failures >= PASSING_FAILURES) throw error;
        }
      }
      if (!onScreen.current || !isLatest()) return;
      if ("plan_id" in answer && answer.status === "refused") {
        throw new ApiError(422, answer.error?.message ?? "", answer.error?.fields ?? []);
      }
      setPlan(answer as Plan);
      setAsked(body);
      setMessage(null);
      // Kept once the dry run has shown the mapping reads the file
      if (saving && maySave) await saveMapping();
    } catch (error) {
      if (isLatest()) setMessage(describeError(error)); // else a later dry run answers for the screen
    }
  }

  async function apply(plan: Plan, asked: PlanRequest) {
    const counts = { create: plan.counts.create ?? 0, update: plan.counts.update ?? 0 };
    if (!window.confirm(t("imports.apply_confirm", counts))) return;
    setMessage(null);
    setSavedMessage(null);
    try {
      const record = await api<ImportRecord>("POST", "/admin/imports", {
        body: { ...asked, plan_digest: plan.plan_digest },
      });
      setPlan(null);
      setAsked(null);
      if (record.status === "queued") {
        // 202: applied in the background; its progress is shown below the form
        setShown((before) => ({ id: record.import_id, opened: (before?.opened ?? 0) + 1 }));
      } else {
        setMessage(t("imports.applied", { id: record.import_id, counts: countsText(t, record.counts) }));
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        // The leads changed since the dry run: this plan is not what would happen any more.
        setPlan(null);
        setAsked(null);
      }
      setMessage(describeError(error));
    }
    setHistory((count) => count + 1);
  }

  /** Every row of the file, whatever the answer shows (the counts are of all of them). */
  const rowsIn = (plan: Plan) => Object.values(plan.counts).reduce((sum, n) => sum + n, 0);

  function download(plan: Plan) {
    const bytes = Uint8Array.from(atob(plan.rejected_csv_base64 ?? ""), (c) => c.charCodeAt(0));
    // A CSV whatever the list was (UTF-8 with a BOM, as Excel opens it), named so
    saveAs(bytes, rejectedFileName(file?.name ?? "rows"), "text/csv;charset=utf-8");
  }

  const workbook = fileColumns?.encoding.startsWith("xlsx") || /\.xlsx$/i.test(file?.name ?? "");
  const foundEncoding = encoding === "" ? fileColumns?.encoding : undefined;

  return (
    <section>
      <h1>{t("imports.title")}</h1>
      <p className="note">{t("imports.explained")}</p>
      <form onSubmit={(event) => void dryRun(event)}>
        <div className="filters">
          <label>
            {t("imports.file")}
            <input type="file" accept=".csv,.tsv,.txt,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" required
              onChange={(event) => chooseFile(event.target.files?.[0] ?? null)} />
          </label>
          <label>
            {t("forms.source")}
            <select value={source} onChange={(event) => chooseSource(event.target.value)}>
              {SOURCES.map((name) => (
                <option key={name} value={name}>
                  {t(`forms.sources.${name}`)}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t("imports.saved_mapping")}
            <select value={savedName} onChange={(event) => pickMapping(event.target.value)}>
              <option value="">{t(ofSource.length ? "imports.no_saved_mapping" : "imports.none_saved", { source: sourceName(source) })}</option>
              {ofSource.map((mapping) => (
                <option key={mapping.name} value={mapping.name}>
                  {mapping.description ? `${mapping.name} (${mapping.description})` : mapping.name}
                </option>
              ))}
            </select>
          </label>
          {!workbook && (
            <label>
              {t("imports.encoding")}
              <select value={encoding} onChange={(event) => setEncoding(event.target.value)}>
                <option value="">
                  {foundEncoding
                    ? t("imports.encoding_found", { encoding: encodingName(t, foundEncoding) })
                    : t("imports.encoding_detect")}
                </option>
                {ENCODINGS.map((name) => (
                  <option key={name} value={name}>
                    {encodingName(t, name)}
                  </option>
                ))}
              </select>
            </label>
          )}
        </div>
        {fileColumns && workbook && (
          <p className="note">{t("imports.read_as", { encoding: fileColumns.encoding })}</p>
        )}
        {columnsProblem && <p className="note">{columnsProblem}</p>}
        {columns.length > 0 && (
          <table className="list import-columns" aria-label={t("imports.columns")}>
            <thead>
              <tr>
                <th scope="col">{t("imports.column")}</th>
                <th scope="col">{t("imports.samples")}</th>
                <th scope="col">{t("imports.maps_to")}</th>
              </tr>
            </thead>
            <tbody>
              {columns.map((column) => {
                const chosen = consentColumn === column.header ? AS_CONSENT : fieldOf(column);
                const other = chosen !== AS_CONSENT && chosen !== LEFT_OUT && !fields.includes(chosen);
                const changed = column.header in choices || (consentColumn === column.header && !column.consent);
                return (
                  <tr key={column.header}>
                    <th scope="row">{column.header}</th>
                    <td className="detail">{column.samples.join(" / ")}</td>
                    <td>
                      <select
                        aria-label={t("imports.field_of", { column: column.header })}
                        value={other ? OTHER_FIELD : chosen}
                        onChange={(event) => choose(column, event.target.value)}
                      >
                        <option value={LEFT_OUT}>{t("imports.leave_out")}</option>
                        {fields.map((name) => (
                          <option key={name} value={name}>
                            {fieldName(name)}
                          </option>
                        ))}
                        <option value={AS_CONSENT}>{t("imports.as_consent")}</option>
                        <option value={OTHER_FIELD}>{t("imports.other_field")}</option>
                      </select>
                      {other && (
                        <input
                          aria-label={t("imports.other_field_of", { column: column.header })}
                          value={chosen}
                          pattern="[a-z][a-z0-9_]{0,39}"
                          title={t("imports.other_field_rule")}
                          placeholder="seminar_booth"
                          onChange={(event) =>
                            setChoices((before) => ({ ...before, [column.header]: event.target.value.trim() }))
                          }
                        />
                      )}
                      {!changed && column.by && (
                        <span className="detail"> {t(column.by === "mapping" ? "imports.by_saved" : "imports.by_automatic")}</span>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
        {columns.length > 0 && !hasEmail && <p className="note">{t("imports.no_email_column")}</p>}
        {fileColumns && Object.keys(choices).length === 0 && hasEmail && fileColumns.problems.length > 0 && (
          <p className="note">{fileColumns.problems.map(problemText).join(" ")}</p>
        )}
        <div className="filters">
          {columns.length === 0 && (
            <label>
              {t("imports.consent_column")}
              <input value={consentColumn} onChange={(event) => setConsentColumn(event.target.value)} />
            </label>
          )}
          {consentColumn && (
            <>
              {columns.length > 0 && <p className="note">{t("imports.consent_answers", { column: consentColumn })}</p>}
              <label>
                {t("imports.yes")}
                <input value={yes} required onChange={(event) => setYes(event.target.value)} />
              </label>
              <label>
                {t("imports.no")}
                <input value={no} onChange={(event) => setNo(event.target.value)} />
              </label>
            </>
          )}
        </div>
        {maySave && file && (
          <div className="filters">
            <label className="check">
              <input type="checkbox" checked={saving} onChange={(event) => setSaving(event.target.checked)} />
              {t("imports.save_mapping", { source: sourceName(source) })}
            </label>
            {saving && (
              <label>
                {t("imports.mapping_name")}
                <input value={saveName} required pattern={MAPPING_NAME.source.slice(1, -1)} title={t("imports.mapping_name_rule")}
                  placeholder={source.replace("_", "-")} onChange={(event) => setSaveName(event.target.value.trim())} />
              </label>
            )}
          </div>
        )}
        <button type="submit">{t(plan ? "imports.dry_run_again" : "imports.dry_run")}</button>
      </form>
      {message && <p role="status">{message}</p>}
      {savedMessage && <p role="status">{savedMessage}</p>}
      {plan && (
        <>
          <p role="status">
            {t("imports.read_as", { encoding: encodingName(t, plan.encoding) })} {countsText(t, plan.counts)}
          </p>
          {!planIsCurrent && <p className="note">{t("imports.changed_since_dry_run")}</p>}
          {mayRun && asked && planIsCurrent && (
            <p>
              <button type="button" onClick={() => void apply(plan, asked)}>
                {t("imports.apply")}
              </button>{" "}
              <span className="note">
                {t(asked.upload_id ? "imports.apply_background_explained" : "imports.apply_explained")}
              </span>
            </p>
          )}
          <p>
            {Object.entries(plan.columns)
              .map(([header, field]) => `${header} → ${fieldName(field)}`)
              .join(", ")}
            {plan.consent_column && `, ${plan.consent_column} → ${t("imports.read_as_consent")}`}
            {plan.unmapped.length > 0 && <span className="note"> ({t("imports.left_out")}: {plan.unmapped.join(", ")})</span>}
          </p>
          {plan.rejected_csv_base64 && (
            <button type="button" className="secondary" onClick={() => download(plan)}>
              {t("imports.download_rejected")}
            </button>
          )}
          {plan.rejected_csv_url && (
            <a className="button secondary" href={plan.rejected_csv_url} download>
              {t("imports.download_rejected")}
            </a>
          )}
          {plan.rows_shown < rowsIn(plan) && (
            <p className="note">{t("imports.rows_shown", { shown: plan.rows_shown.toLocaleString(), total: rowsIn(plan).toLocaleString() })}</p>
          )}
          <table className="list" aria-label={t("imports.rows")}>
            <thead>
              <tr>
                <th scope="col">{t("imports.row")}</th>
                <th scope="col">{t("imports.action")}</th>
                <th scope="col">{t("settings.email")}</th>
                <th scope="col">{t("imports.what")}</th>
              </tr>
            </thead>
            <tbody>
              {plan.rows.map((row) => (
                <tr key={row.row} className={row.action === "rejected" ? "refused" : undefined}>
                  <td className="number">{row.row}</td>
                  <td>{t(`imports.actions.${row.action}`)}</td>
                  <td>{row.email}</td>
                  <td>
                    {rejectionReason(row)}
                    {row.into !== null && t("imports.joins", { row: row.into })}
                    {Object.entries(row.changes).map(([name, change]) => (
                      <div key={name}>
                        {fieldName(name)}: {change.before ?? "—"} → {change.after}
                      </div>
                    ))}
                    {Object.entries(row.kept).map(([name, kept]) => (
                      <div key={name} className="detail">
                        {t("imports.kept", {
                          field: fieldName(name),
                          value: kept.kept,
                          source: sourceName(kept.source),
                          file: kept.file,
                        })}
                      </div>
                    ))}
                    {row.consent && <div>{t(`imports.consent_${row.consent}`)}</div>}
                    {row.consent_kept && <div className="detail">{t("imports.consent_kept")}</div>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      {shown && (
        <ImportRun
          key={`${shown.id}-${shown.opened}`}
          importId={shown.id}
          onFinished={() => setHistory((count) => count + 1)}
          onClose={() => setShown(null)}
        />
      )}
      <History
        changed={history}
        onUndone={() => setMessage(null)}
        onOpen={(id) => {
          setMessage(null);
          setShown((before) => ({ id, opened: (before?.opened ?? 0) + 1 }));
        }}
      />
    </section>
  );
}

/** One import as it is now: a background run's progress (asked again every POLL_MS until it
 * has finished), its parked chunks, and how it ended, in words. */
function ImportRun({
  importId,
  onFinished,
  onClose,
}: {
  importId: string;
  onFinished: () => void;
  onClose: () => void;
}) {
  const { t, i18n } = useTranslation();
  const count = useMemo(() => new Intl.NumberFormat(i18n.language || undefined), [i18n.language]);
  const [state, setState] = useState<ImportState | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const finished = useRef(onFinished);
  finished.current = onFinished;

  useEffect(() => heading.current?.focus(), []);

  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    async function ask() {
      try {
        const found = await api<ImportState>("GET", `/admin/imports/${encodeURIComponent(importId)}`);
        if (stopped) return;
        setState(found);
        setProblem(null);
        if (running(found)) {
          timer = window.setTimeout(() => void ask(), POLL_MS);
        } else {
          // The list of imports shows how it ended. Also when the first answer is already the
          // end: a run refused at its start can end before this screen first asks, and the
          // list, read when the run was queued, would say "queued" for good.
          finished.current();
        }
      } catch (error) {
        if (stopped) return;
        setProblem(describeError(error));
        // The API refusing (gone, not allowed) is final; a network or server failure may pass
        const refused = error instanceof ApiError && error.status >= 400 && error.status < 500;
        if (!refused) timer = window.setTimeout(() => void ask(), POLL_MS * 2);
      }
    }
    void ask();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [importId]);

  const progress = state?.progress ?? null;
  const parked = progress?.parked ?? [];
  return (
    <section className="import-run" aria-labelledby="import-run-title">
      <h2 id="import-run-title" ref={heading} tabIndex={-1}>
        {t("imports.run_title", { file: state?.file_name ?? importId })}
      </h2>
      {state === null ? (
        problem === null && <p className="loading">{t("common.loading")}</p>
      ) : (
        <>
          <p className="detail">
            {state.import_id} · {t(`imports.statuses.${state.status}`)}
          </p>
          {progress ? (
            <p>
              <progress
                aria-label={t("imports.rows_written")}
                value={progress.rows_done}
                max={Math.max(progress.rows_total, 1)}
              />{" "}
              {t("imports.progress", {
                done: count.format(progress.rows_done),
                total: count.format(progress.rows_total),
                chunks_done: count.format(progress.chunks_done),
                chunks_total: count.format(progress.chunks_total),
              })}
              {progress.rows_parked > 0 &&
                ` ${t("imports.rows_parked", { count: progress.rows_parked, rows: count.format(progress.rows_parked) })}`}
            </p>
          ) : (
            state.status === "queued" && (
              <p>
                <progress aria-label={t("imports.rows_written")} /> {t("imports.queued_explained")}
              </p>
            )
          )}
          {parked.length > 0 && (
            <table className="list" aria-label={t("imports.parked")}>
              <thead>
                <tr>
                  <th scope="col">{t("imports.chunk")}</th>
                  <th scope="col">{t("imports.rows")}</th>
                  <th scope="col">{t("imports.error")}</th>
                </tr>
              </thead>
              <tbody>
                {parked.map((chunk) => (
                  <tr key={chunk.chunk} className="refused">
                    <td className="number">{chunk.chunk + 1}</td>
                    <td>
                      {chunk.first_row ?? "—"}–{chunk.last_row ?? "—"}
                    </td>
                    <td>{chunk.error}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {!running(state) && <p role="status">{ending(t, state)}</p>}
          {!running(state) && (
            <button type="button" className="secondary" onClick={onClose}>
              {t("imports.close_run")}
            </button>
          )}
        </>
      )}
      {problem && <p role="alert">{problem}</p>}
    </section>
  );
}

/** How an import ended (or stands, when it will not move), in words. */
function ending(t: (key: string, values?: Record<string, unknown>) => string, state: ImportState): string {
  const id = state.import_id;
  switch (state.status) {
    case "applied":
      return t("imports.applied", { id, counts: countsText(t, state.counts) });
    case "applied_with_parked": {
      const parked = state.progress?.parked ?? [];
      return t("imports.applied_with_parked", {
        id,
        count: parked.length,
        rows: parked.map((p) => `${p.first_row ?? "—"}–${p.last_row ?? "—"}`).join(", "),
      });
    }
    case "refused":
      return t("imports.refused", { id, detail: state.detail ?? "" });
    case "failed":
      return t("imports.failed", { id, detail: state.detail ?? "" });
    case "applying":
      return t("imports.stopped", { id });
    default:
      return `${id}: ${t(`imports.statuses.${state.status}`)}`;
  }
}

/** Why an undo left a row's consent as it is, said in the reader's language from its code. */
function consentKept(
  t: (key: string, values?: Record<string, unknown>) => string,
  kept: NonNullable<KeptRow["consent"]>,
): string {
  const { topic, at, by } = kept.reason_params;
  return t(`imports.undo_consent.${kept.reason_code}`, {
    topic,
    at: when(at),
    by: by ?? "",
    defaultValue: kept.reason,
  });
}

/** The imports so far, newest first; each applied one may be undone. */
function History({
  changed,
  onUndone,
  onOpen,
}: {
  changed: number;
  onUndone: () => void;
  onOpen: (importId: string) => void;
}) {
  const { t } = useTranslation();
  const may = useMay();
  const mayUndo = may("imports.undo");
  const [records, setRecords] = useState<ImportRecord[] | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [undone, setUndone] = useState<Undone | null>(null);

  // Only the last reading is shown: two imports undone quickly read the list twice, and the
  // first reading, answering last, showed the second as still applied (its "Undo" back)
  const begin = useLatestRequest();
  const load = useCallback(async () => {
    const found = await latestAnswer(begin(), api<{ items: ImportRecord[] }>("GET", "/admin/imports"));
    if (found) setRecords(found.answer.items);
  }, [begin]);

  useEffect(() => {
    void load().catch((error) => {
      setRecords([]);
      setMessage(describeError(error));
    });
  }, [load, changed]);

  async function undo(record: ImportRecord) {
    if (!window.confirm(t("imports.undo_confirm", { file: record.file_name, when: when(record.at) }))) return;
    onUndone();
    setMessage(null);
    setUndone(null);
    try {
      const result = await api<Undone>("POST", `/admin/imports/${encodeURIComponent(record.import_id)}/undo`);
      setUndone(result);
      setMessage(
        t("imports.undone", {
          id: result.import_id,
          removed: result.undo?.removed ?? 0,
          restored: result.undo?.restored ?? 0,
          withdrawn: result.undo?.withdrawn ?? 0,
          kept: result.undo?.kept ?? 0,
        }),
      );
    } catch (error) {
      setMessage(describeError(error));
    }
    try {
      await load();
    } catch (error) {
      setMessage(describeError(error));
    }
  }

  return (
    <section className="import-history">
      <h2>{t("imports.history")}</h2>
      {records === null ? (
        <p className="loading">{t("common.loading")}</p>
      ) : records.length === 0 ? (
        <p>{t("imports.none")}</p>
      ) : (
        <table className="list" aria-label={t("imports.history")}>
          <thead>
            <tr>
              <th scope="col">{t("imports.when")}</th>
              <th scope="col">{t("imports.by")}</th>
              <th scope="col">{t("imports.file")}</th>
              <th scope="col">{t("forms.source")}</th>
              <th scope="col">{t("imports.counts")}</th>
              <th scope="col">{t("imports.status")}</th>
              {mayUndo && <th scope="col">{t("journeys.actions")}</th>}
            </tr>
          </thead>
          <tbody>
            {records.map((record) => (
              <tr key={record.import_id}>
                <td>{when(record.at)}</td>
                <td>{record.by}</td>
                <td>
                  {record.file_name}
                  <div className="detail">
                    {record.import_id} · {encodingName(t, record.encoding)}
                  </div>
                </td>
                <td>{sourceName(record.source)}</td>
                <td>{countsText(t, record.counts)}</td>
                <td>
                  {t(`imports.statuses.${record.status}`)}
                  {record.detail && record.status !== "undone" && <div className="detail">{record.detail}</div>}
                  {record.status !== "undone" && (
                    <div>
                      <button type="button" className="secondary" onClick={() => onOpen(record.import_id)}>
                        {t("imports.open_run")}
                        <span className="visually-hidden"> {record.file_name} ({when(record.at)})</span>
                      </button>
                    </div>
                  )}
                  {record.status === "undone" && (
                    <div className="detail">
                      {when(record.undone_at)}
                      {record.undo &&
                        ` · ${t("imports.undo_counts", { ...record.undo, withdrawn: record.undo.withdrawn ?? 0 })}`}
                    </div>
                  )}
                </td>
                {mayUndo && (
                  <td>
                    {!["undone", "queued", "refused"].includes(record.status) &&
                      !(record.background && record.status === "applying") && (
                      <button type="button" className="danger" onClick={() => void undo(record)}>
                        {t("imports.undo")}
                        <span className="visually-hidden"> {record.file_name} ({when(record.at)})</span>
                      </button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {message && <p role="status">{message}</p>}
      {undone && undone.kept.length > 0 && (
        <table className="list" aria-label={t("imports.kept_rows")}>
          <thead>
            <tr>
              <th scope="col">{t("imports.row")}</th>
              <th scope="col">{t("settings.email")}</th>
              <th scope="col">{t("imports.changed_since")}</th>
              <th scope="col">{t("imports.undo_consent.column")}</th>
            </tr>
          </thead>
          <tbody>
            {undone.kept.map((row) => (
              <tr key={row.row}>
                <td className="number">{row.row}</td>
                <td>{row.email}</td>
                <td>{row.changed_since.join(", ")}</td>
                <td>{row.consent && consentKept(t, row.consent)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
