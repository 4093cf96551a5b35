// What several screens offer to choose from - the stored templates' and forms' ids, the saved
// segments - read once and shared for a short while (a choice list is a suggestion: a template
// stored a minute ago shows on the next read; a failed read is tried again on the next ask).
import { allItems } from "./api";

/** How long a read list is offered before it is read again. */
const FRESH_MS = 30_000;
const lists = new Map<string, { at: number; read: Promise<unknown[]> }>();

function shared<T>(path: string, pick: (answer: { items: Record<string, unknown>[] }) => T[]): Promise<T[]> {
  const known = lists.get(path);
  if (known && Date.now() - known.at < FRESH_MS) return known.read as Promise<T[]>;
  const read = allItems<Record<string, unknown>>(path)
    .then((items) => pick({ items }))
    .catch(() => {
      lists.delete(path);
      return [];
    });
  lists.set(path, { at: Date.now(), read });
  return read;
}

export function templateIds(): Promise<string[]> {
  return shared("/admin/templates", (page) => page.items.map((item) => String(item.template_id)));
}

export function formIds(): Promise<string[]> {
  return shared("/admin/forms", (page) => page.items.map((item) => String(item.form_id)));
}

export interface SegmentChoice {
  name: string;
  description: string;
}

/** What a branch's case, a segment trigger or a start may name (in_segment=<name>, or the name). */
export function savedSegments(): Promise<SegmentChoice[]> {
  return shared("/admin/segments", (found) => found.items as unknown as SegmentChoice[]);
}
