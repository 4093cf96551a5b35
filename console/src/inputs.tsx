// Inputs for small lists typed as text, kept as typed until the field is left (then read, and
// shown again as read): words separated by commas or spaces (tags, CRM statuses, goal events),
// and name=value a line (an update's fields, a scoring rule's other properties).
import { useEffect, useState } from "react";

import { pairsOf, pairsText } from "./pairs";

/** Words typed with commas (also 、) or spaces. */
export function wordsOf(text: string): string[] {
  return text
    .split(/[,、\s]+/)
    .map((word) => word.trim())
    .filter(Boolean);
}

export function WordsInput(props: {
  value: string[];
  onChange: (words: string[]) => void;
  label?: string;
}) {
  const joined = props.value.join(", ");
  const [text, setText] = useState(joined);
  useEffect(() => setText(joined), [joined]);
  return (
    <input aria-label={props.label} value={text} onChange={(event) => setText(event.target.value)}
      onBlur={() => props.onChange(wordsOf(text))} />
  );
}

export function PairsInput(props: {
  value: Record<string, string>;
  onChange: (pairs: Record<string, string>) => void;
  label?: string;
  placeholder: string;
  rows?: number;
  readOnly?: boolean;
}) {
  const joined = pairsText(props.value);
  const [text, setText] = useState(joined);
  useEffect(() => setText(joined), [joined]);
  return (
    <textarea aria-label={props.label} rows={props.rows ?? 3} spellCheck={false} placeholder={props.placeholder}
      value={text} readOnly={props.readOnly} onChange={(event) => setText(event.target.value)}
      onBlur={() => props.onChange(pairsOf(text))} />
  );
}
