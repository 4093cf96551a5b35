// Japanese and English: chosen from the browser, switchable, remembered on this device.
import i18n from "i18next";
import LanguageDetector from "i18next-browser-languagedetector";
import { initReactI18next } from "react-i18next";

import en from "./locales/en.json";
import ja from "./locales/ja.json";

void i18n
  .use(LanguageDetector)
  .use(initReactI18next)
  .init({
    resources: { en: { translation: en }, ja: { translation: ja } },
    supportedLngs: ["ja", "en"],
    nonExplicitSupportedLngs: true,
    fallbackLng: "en",
    interpolation: { escapeValue: false }, // React escapes
    showSupportNotice: false,
    detection: {
      order: ["localStorage", "navigator"],
      lookupLocalStorage: "tsunagu.language",
      caches: ["localStorage"],
    },
  });

i18n.on("languageChanged", (language) => {
  document.documentElement.lang = language.startsWith("ja") ? "ja" : "en";
});
document.documentElement.lang = i18n.language?.startsWith("ja") ? "ja" : "en";

export default i18n;

/** A date and time in the user's time zone, in the language shown. */
export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(i18n.language?.startsWith("ja") ? "ja-JP" : "en-GB", {
    dateStyle: "medium",
    timeStyle: "short",
  }).format(new Date(iso));
}

/** Why something happened, in words, for a reason code the API gives (a machine's activity, a
 * lead leaving a journey or not entering it): the code itself when it has no words yet, so a
 * new reason is still shown rather than hidden. */
export function reasonText(code: string): string {
  return i18n.t(`reasons.${code}`, { defaultValue: code });
}
