// Names for the codes the API gives (a lead field, a channel, an event kind, a consent topic),
// in the language shown: the code itself when the console has no words for it (a field or a
// topic a marketer made up is shown as it is named).
import i18n from "./i18n";

function named(keys: string[], code: string): string {
  const key = keys.find((one) => i18n.exists(one));
  return key === undefined ? code : i18n.t(key);
}

/** A lead field (``company``): 会社名. */
export function fieldName(field: string): string {
  return named([`lead.field_names.${field}`], field);
}

/** Where a value or a lead came from (``web_form``, ``import``): Webフォーム. */
export function sourceName(source: string): string {
  return named([`forms.sources.${source}`, `lead.other_sources.${source}`], source);
}

/** An event kind (``mail_opened``): メール開封. */
export function eventName(kind: string): string {
  return named([`events.${kind}`], kind);
}

/** What entered a lead into a journey: an event's kind, a hand, a segment. */
export function triggerName(trigger: string): string {
  return named([`lead.triggers.${trigger}`, `events.${trigger}`], trigger);
}

/** A consent topic (``marketing``): マーケティング（全般）. */
export function topicName(topic: string): string {
  return named([`lead.topics.${topic}`], topic);
}
