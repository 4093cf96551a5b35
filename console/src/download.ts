// Saving what the API sent (a CSV export, a file of rejected rows) in the browser's downloads.
import { apiFile } from "./api";
import i18n from "./i18n";

export function saveAs(
  content: string | Uint8Array<ArrayBuffer>,
  fileName: string,
  type = "text/csv;charset=utf-8",
): void {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([content], { type }));
  link.download = fileName;
  link.click();
  URL.revokeObjectURL(link.href);
}

/** UTF-8 with a BOM, for Excel 2016 and later; cp932 (Shift_JIS) for the older Excel. */
export const EXPORT_ENCODINGS = ["utf-8", "cp932"] as const;
export type ExportEncoding = (typeof EXPORT_ENCODINGS)[number];

/** How many characters a Shift_JIS export holds as "?" (cp932 has no code for them). */
const REPLACED_CHARACTERS_HEADER = "x-tsunagu-replaced-characters";

/** Leads as the API's CSV (every lead, or those a saved segment selects), saved unchanged: read
 * as bytes, not as text, so a BOM stays and Shift_JIS is not decoded as UTF-8 on the way. The
 * API records every export in the audit log. Returns what to tell the user: where the file
 * went, and for Shift_JIS how many characters it holds as "?" - the file does not show that a
 * name lost its 𠮷, only the API's count does. */
export async function exportLeads(segment: string | null, encoding: ExportEncoding): Promise<string> {
  const file = await apiFile("/admin/leads/export", { segment, encoding });
  const type = encoding === "cp932" ? "text/csv;charset=shift_jis" : "text/csv;charset=utf-8";
  // The API's own file name (its content-disposition is not readable across origins).
  const name = `leads-${segment ?? "export"}.csv`;
  saveAs(new Uint8Array(file.bytes), name, type);
  const done = i18n.t("export.done", { file: name });
  const replaced = Number(file.headers.get(REPLACED_CHARACTERS_HEADER) ?? 0);
  return replaced > 0 ? `${done} ${i18n.t("export.replaced", { count: replaced })}` : done;
}
