// "Copy" beside code a person pastes elsewhere (a form's embed code, the tracking snippet): the
// clipboard API where the browser allows it, else the text selected for Ctrl+C, and either way
// said in words (a status a screen reader reads too).
import { useState } from "react";
import { useTranslation } from "react-i18next";

export function CopyButton({ text, what }: { text: string; what: string }) {
  const { t } = useTranslation();
  const [said, setSaid] = useState<string | null>(null);

  async function copy(button: HTMLButtonElement) {
    try {
      await navigator.clipboard.writeText(text);
      setSaid(t("copy.copied", { what }));
    } catch {
      // No clipboard permission (an insecure origin, a browser policy): select the text
      const field = button.closest(".code")?.querySelector("textarea");
      field?.select();
      setSaid(t("copy.selected", { what }));
    }
  }

  return (
    <span className="copy">
      <button type="button" className="secondary" onClick={(event) => void copy(event.currentTarget)}>
        {t("copy.button", { what })}
      </button>
      <span aria-live="polite" className="note">{said}</span>
    </span>
  );
}
