"""The lead as the domain sees it, and the records that travel with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tsunagu.leads.merge import Channel, FieldValue

LEAD_ATTRIBUTES = (
    "stage",
    "score",
    "grade",
    "crm_status",
    "tags",
    "sources",
    "created_at",
    "last_activity_at",
    "lead_id",
)
"""What a lead holds itself, beside its address and its fields, in the order an export writes
them."""
RESERVED_FIELD_NAMES = frozenset({"email", "updated_at", *LEAD_ATTRIBUTES})
"""No field may take one of these names: it would stand beside the lead's own value as a
second one, in an export's columns, a merge tag or a filter."""


def not_reserved_field(name: str) -> str:
    if name in RESERVED_FIELD_NAMES:
        raise ValueError(f"{name!r} is the lead's own, not a field: set it by its own name")
    return name


@dataclass
class Lead:
    lead_id: str
    email: str
    fields: dict[str, FieldValue]
    sources: list[str]
    visitor_ids: set[str]
    stage: str
    created_at: str
    updated_at: str
    last_activity_at: str | None = None
    last_activity_type: str | None = None
    tags: set[str] = field(default_factory=set)
    crm_status: str | None = None
    """In Tsunagu's words (tsunagu.leads.crm_status), whoever set it: the CRM, a person, a
    journey. Its one place: the CRM merge policy reads it with the two below."""
    crm_status_source: Channel | None = None
    """Who set ``crm_status``: :attr:`Channel.CRM` for the CRM's webhook, else the channel of
    the person or journey that set it in Tsunagu."""
    crm_status_at: str | None = None
    """When: the CRM record's ``updated_at`` for the CRM, the moment of the change otherwise."""
    score: float | None = None
    score_at: str | None = None
    grade: str | None = None
    stage_history: list[dict[str, str]] = field(default_factory=list)
    """{from, to, by, at} for every stage change, oldest first."""
    version: int | None = None
    """Optimistic-lock version; None for a lead not yet stored."""

    def crm_status_value(self) -> FieldValue | None:
        """The status with who set it and when, as the CRM merge policy compares it."""
        if self.crm_status is None:
            return None
        source = self.crm_status_source or Channel.SALES
        return FieldValue(self.crm_status, source, self.crm_status_at or self.updated_at)

    def summary(self) -> dict[str, Any]:
        return {
            "lead_id": self.lead_id,
            "email": self.email,
            "stage": self.stage,
            "fields": {name: v.to_item() for name, v in sorted(self.fields.items())},
            "sources": self.sources,
            "visitor_ids": sorted(self.visitor_ids),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "last_activity_at": self.last_activity_at,
            "last_activity_type": self.last_activity_type,
            "tags": sorted(self.tags),
            "crm_status": self.crm_status,
            "crm_status_source": self.crm_status_source,
            "crm_status_at": self.crm_status_at,
            "score": self.score,
            "score_at": self.score_at,
            "grade": self.grade,
            "stage_history": self.stage_history,
        }


@dataclass(frozen=True)
class LeadEvent:
    """Something a lead (or a still-anonymous visitor) did, as stored on the events stream."""

    event_id: str
    type: str
    occurred_at: str
    lead_id: str | None
    visitor_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return f"lead#{self.lead_id}" if self.lead_id else f"visitor#{self.visitor_id}"

    @property
    def storage_key(self) -> str:
        """The sort key within the subject: time order, then the event id."""
        return f"{self.occurred_at}#{self.event_id}"


@dataclass(frozen=True)
class ConsentEvidence:
    """What a person agreed to, in which words, when, from where: kept as proof, never edited."""

    evidence_id: str
    lead_id: str
    email: str
    topic: str
    status: str
    at: str
    text: str | None = None
    text_version: str | None = None
    form_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    method: str | None = None
    """How the change was made, when no form made it: one_click, preferences, double_opt_in,
    complaint, import_undone (an undo withdrawing the opt-in a list recorded), kept_unsubscribed
    (an opt-in to another topic ended an unsubscribe from all mail). A form's consent
    names its form; a list's row its import (``text_version``)."""


def email_identity(identity_key: str) -> str:
    return f"email:{identity_key}"


def visitor_identity(visitor_id: str) -> str:
    return f"visitor:{visitor_id}"
