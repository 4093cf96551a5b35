"""A lead's CRM status in the words Tsunagu keeps it in, whoever reports it.

The CRM's webhook, a sales rep's ``--crm-status``, a journey's ``update_lead`` step and a
journey's exit list all name statuses in their own words ("商談中", "In Negotiation",
"in_negotiation"). Every one of them goes through :func:`canonical_status` before it is kept or
compared, so the rep's 商談中 and the CRM's 商談中 are one status, and an exit list that says
商談中 lets go of a lead the CRM put "in negotiation".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from enum import StrEnum


class CrmStatus(StrEnum):
    """What a free-text status means to Tsunagu."""

    NEW = "new"
    WORKING = "working"
    IN_NEGOTIATION = "in_negotiation"
    WON = "won"
    LOST = "lost"
    DISQUALIFIED = "disqualified"
    OTHER = "other"

    @property
    def label(self) -> str:
        """In words, as journeys' exit settings name statuses ("in negotiation")."""
        return self.value.replace("_", " ")


_STATUS_WORDS: Mapping[str, CrmStatus] = {
    "new": CrmStatus.NEW,
    "open": CrmStatus.NEW,
    "未対応": CrmStatus.NEW,
    "新規": CrmStatus.NEW,
    "working": CrmStatus.WORKING,
    "contacted": CrmStatus.WORKING,
    "in progress": CrmStatus.WORKING,
    "対応中": CrmStatus.WORKING,
    "アプローチ中": CrmStatus.WORKING,
    "in negotiation": CrmStatus.IN_NEGOTIATION,
    "negotiation": CrmStatus.IN_NEGOTIATION,
    "negotiating": CrmStatus.IN_NEGOTIATION,
    "proposal": CrmStatus.IN_NEGOTIATION,
    "商談中": CrmStatus.IN_NEGOTIATION,
    "交渉中": CrmStatus.IN_NEGOTIATION,
    "提案中": CrmStatus.IN_NEGOTIATION,
    "won": CrmStatus.WON,
    "closed won": CrmStatus.WON,
    "受注": CrmStatus.WON,
    "成約": CrmStatus.WON,
    "lost": CrmStatus.LOST,
    "closed lost": CrmStatus.LOST,
    "失注": CrmStatus.LOST,
    "disqualified": CrmStatus.DISQUALIFIED,
    "unqualified": CrmStatus.DISQUALIFIED,
    "対象外": CrmStatus.DISQUALIFIED,
}

SALES_ENGAGED = frozenset({CrmStatus.WORKING, CrmStatus.IN_NEGOTIATION, CrmStatus.WON})
"""Statuses that mean sales has the lead: nurture journeys let go of it. A lost lead is not
among them; it may be recycled into nurture."""


def _folded(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[_\-]+", " ", folded).split())


def normalise_status(text: str) -> CrmStatus:
    """``"In Negotiation"``, ``"in_negotiation"``, ``"Closed-Won"``, ``"商談中"``, full-width or
    not. Text Tsunagu does not know is OTHER (kept as it was written)."""
    return _STATUS_WORDS.get(_folded(text), CrmStatus.OTHER)


def canonical_status(text: str) -> str:
    """What to keep as the lead's CRM status: the label of a status Tsunagu knows ("商談中" is
    kept as "in negotiation", so a journey's exit on "in negotiation" sees it), else the text
    as it was written (without surrounding blanks)."""
    code = normalise_status(text)
    return text.strip() if code is CrmStatus.OTHER else code.label


def status_key(text: str) -> str:
    """What two statuses are compared by: the same key, the same status. A known status by its
    label, any other text full-width/half-width and case-blind ("Nurture Later" is "nurture
    later")."""
    code = normalise_status(text)
    return _folded(text) if code is CrmStatus.OTHER else code.label
