// Inputs for small lists typed as text: words separated by commas or spaces (tags, CRM
// statuses), and name=value a line (an update's fields, a scoring rule's other properties).
import { useEffect, useState } from "react";

import { pairsOf, pairsText } from "./pairs";

/** Words typed with commas (also 、) or spaces; ``commasOnly``: a word may hold spaces ("in
 * negotiation"), and only commas and new lines part them. */
export function wordsOf(text: string, commasOnly = false): string[] {
  return text
    .split(commasOnly ? /[,、\n]+/ : /[,、\s]+/)
    .map((word) => word.trim())
    .filter(Boolean);
}

/** The text typed is kept as typed; what it means is handed on at every change (so a form sent
 * with Enter sends what is shown), and the text is rewritten only when the value changes from
 * elsewhere. */
function useTyped<T>(value: T, show: (value: T) => string, read: (text: string) => T) {
  const shown = show(value);
  const [text, setText] = useState(shown);
  useEffect(() => {
    setText((typed) => (show(read(typed)) === shown ? typed : shown));
    // show and read are pure functions: the value alone decides
  }, [shown]);
  return [text, setText] as const;
}

export function WordsInput(props: {
  value: string[];
  onChange: (words: string[]) => void;
  label?: string;
  commasOnly?: boolean;
}) {
  const read = (text: string) => wordsOf(text, props.commasOnly);
  const [text, setText] = useTyped(props.value, (words) => words.join(", "), read);
  return (
    <input aria-label={props.label} value={text}
      onChange={(event) => {
        setText(event.target.value);
        props.onChange(read(event.target.value));
      }} />
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
  const [text, setText] = useTyped(props.value, pairsText, pairsOf);
  return (
    <textarea aria-label={props.label} rows={props.rows ?? 3} spellCheck={false} placeholder={props.placeholder}
      value={text} readOnly={props.readOnly}
      onChange={(event) => {
        setText(event.target.value);
        props.onChange(pairsOf(event.target.value));
      }} />
  );
}
