// Saving what the API sent (a CSV export, a file of rejected rows) in the browser's downloads.
import { api } from "./api";

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

/** Leads as the API's CSV (every lead, or those a saved segment selects), saved unchanged: read
 * as bytes, not as text, so a BOM stays and Shift_JIS is not decoded as UTF-8 on the way. The
 * API records every export in the audit log. */
export async function exportLeads(segment: string | null, encoding: ExportEncoding): Promise<void> {
  const bytes = await api<ArrayBuffer>("GET", "/admin/leads/export", {
    query: { segment, encoding },
    bytes: true,
  });
  const type = encoding === "cp932" ? "text/csv;charset=shift_jis" : "text/csv;charset=utf-8";
  // The API's own file name (its content-disposition is not readable across origins).
  saveAs(new Uint8Array(bytes), `leads-${segment ?? "export"}.csv`, type);
}
