// Saving what the API sent (a CSV export, a file of rejected rows) in the browser's downloads.
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
