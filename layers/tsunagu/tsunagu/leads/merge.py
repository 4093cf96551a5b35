"""Merging what a channel says about a lead into what Tsunagu already knows.

Every field remembers which channel set it and when. A new value replaces an old one only when
its channel ranks at least as high as the channel that set the old one: a sales rep's correction
in the CRM is not undone by the next web form, but a later form does update an earlier form.
Blank values never erase anything.

A journey's ``update_lead`` step ranks as a person's edit in Tsunagu (``SALES``): it is the
marketer's explicit instruction ("mark the interest as pricing"), so it overrides what a form,
an import, a seminar or a trade show said, and the next form does not undo it, as it does not
undo a rep's edit. Between a person and a journey the later wins. What the CRM set outranks
both: Tsunagu does not overwrite the CRM's word; the CRM merge policy (tsunagu.qualification.crm)
decides the other way round, when the CRM sends a value over one set here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Channel(StrEnum):
    CRM = "crm"
    SALES = "sales"
    SEMINAR = "seminar"
    TRADE_SHOW = "trade_show"
    WEB_FORM = "web_form"
    IMPORT = "import"
    JOURNEY = "journey"
    TRACKING = "tracking"


# Higher wins. Channels where a person checked the data rank above self-reported web forms,
# which rank above bulk imports of unknown age. A journey's update_lead is a marketer's edit,
# made ahead of time: it ranks as a person's.
DEFAULT_PRIORITY: Mapping[Channel, int] = {
    Channel.CRM: 100,
    Channel.SALES: 90,
    Channel.JOURNEY: 90,
    Channel.SEMINAR: 70,
    Channel.TRADE_SHOW: 60,
    Channel.WEB_FORM: 50,
    Channel.IMPORT: 30,
    Channel.TRACKING: 10,
}


@dataclass(frozen=True)
class FieldValue:
    value: str
    source: Channel
    at: str

    def to_item(self) -> dict[str, str]:
        return {"value": self.value, "source": self.source.value, "at": self.at}

    @classmethod
    def from_item(cls, item: Mapping[str, str]) -> FieldValue:
        return cls(value=item["value"], source=Channel(item["source"]), at=item["at"])


@dataclass(frozen=True)
class MergeOutcome:
    fields: dict[str, FieldValue]
    changed: list[str]
    kept: list[str]
    """Fields where the incoming value lost to a higher-priority channel (kept for audit)."""

    def kept_reasons(self, source: Channel) -> dict[str, str]:
        """Why each kept field kept its value, in words for the lead's timeline."""
        return {
            name: f"set by {self.fields[name].source.value}, which ranks above {source.value}"
            for name in self.kept
        }


def merge_fields(
    existing: Mapping[str, FieldValue],
    incoming: Mapping[str, str],
    *,
    source: Channel,
    at: str,
    priority: Mapping[Channel, int] = DEFAULT_PRIORITY,
) -> MergeOutcome:
    merged = dict(existing)
    changed: list[str] = []
    kept: list[str] = []
    for name, value in incoming.items():
        if not value:
            continue
        current = existing.get(name)
        if current is None or priority[source] >= priority[current.source]:
            if current is None or current.value != value or current.source != source:
                merged[name] = FieldValue(value, source, at)
                changed.append(name)
        elif current.value != value:
            kept.append(name)
    return MergeOutcome(merged, changed, kept)
