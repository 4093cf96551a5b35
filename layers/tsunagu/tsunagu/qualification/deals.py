"""What the CRM tells Tsunagu of its deals (``POST /crm/deals``): the revenue the reports
attribute to journeys and mails (tsunagu.reports.attribution).

A deal belongs to one lead, or to an account through the leads the CRM associates with it (its
contacts): ``leads`` names them, by CRM id or address, the first being the deal's primary
contact. The body is signed as ``POST /crm/leads`` is (tsunagu.qualification.crm). Each deal is
kept as the CRM last described it: an update older than the one kept is refused as stale, so a
CRM that retries out of order never turns a won deal back into an open one.

The deal is stored as a ``deal_changed`` event on its primary lead's timeline (the events
stream carries it to the report counters), with every associated lead named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tsunagu.client_values import ClientInstant
from tsunagu.clock import isoformat
from tsunagu.errors import ConcurrentUpdate, NotFound
from tsunagu.ids import new_id
from tsunagu.leads.email import normalised_or_none
from tsunagu.leads.model import Lead, LeadEvent
from tsunagu.qualification.crm import (
    VerifiedRequest,
    plain_amount,
    read_crm_body,
    refuse_control_characters,
)

MAX_LEADS_PER_DEAL = 50
"""An account's contacts on one deal: enough for a buying committee, bounded for one
transaction's worth of lookups."""
DEAL_CHANGED = "deal_changed"


class StaleDeal(ConcurrentUpdate):
    """The CRM sent an update older than the one kept for the deal (HTTP 409): out of order,
    and kept as it was."""


class LeadReference(BaseModel):
    """A lead as the CRM knows it: its CRM id, its address, or both (the id is tried first)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    crm_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[^\s]+$")
    email: str | None = Field(default=None, max_length=254)

    _text = field_validator("crm_id")(refuse_control_characters)
    _address = field_validator("email")(normalised_or_none)

    @model_validator(mode="after")
    def _named(self) -> LeadReference:
        if self.crm_id is None and self.email is None:
            raise ValueError("name the lead by crm_id or email")
        return self


class CrmDeal(BaseModel):
    """One inbound deal, as the CRM describes it now."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    deal_id: str = Field(min_length=1, max_length=128, pattern=r"^[^\s]+$")
    name: str | None = Field(default=None, max_length=200)
    amount: Decimal = Field(ge=0, max_digits=20, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    stage: str | None = Field(default=None, min_length=1, max_length=100)
    """The CRM's own words for the deal's stage ("提案中", "Closed Won"), kept as written."""
    status: Literal["open", "won", "lost"]
    close_date: date | None = None
    """The day it closed (or is expected to); required once it is won or lost."""
    leads: list[LeadReference] = Field(min_length=1, max_length=MAX_LEADS_PER_DEAL)
    """The deal's lead, or its account's contacts (the first is the primary contact)."""
    account: str | None = Field(default=None, max_length=200)
    """The account's name in the CRM, for people reading the deal."""
    updated_at: ClientInstant

    _text = field_validator("deal_id", "name", "stage", "account")(refuse_control_characters)

    _amount = field_validator("amount", mode="before")(plain_amount)

    @model_validator(mode="after")
    def _closed_on_a_day(self) -> CrmDeal:
        if self.status != "open" and self.close_date is None:
            raise ValueError(f"a {self.status} deal needs its close_date")
        return self


def parse_crm_deal(body: bytes) -> CrmDeal:
    """A deal from the CRM (``POST /crm/deals``), read as a lead's update is."""
    return read_crm_body(body, CrmDeal)


class DealStore(Protocol):
    def find_lead_for_reference(self, crm_id: str | None, email: str | None) -> Lead | None: ...

    def save_crm_deal(self, deal: CrmDeal, event: LeadEvent, request: VerifiedRequest) -> None:
        """All or nothing: the replay guard, the deal as kept (only over an older one) and the
        event. ReplayedRequest if the request was applied before, StaleDeal if a newer update
        of the deal is kept."""
        ...


@dataclass(frozen=True)
class DealResult:
    deal_id: str
    status: str
    lead_ids: Sequence[str]
    unknown: Sequence[dict[str, str | None]]
    """The references no lead answered to (the deal is kept for the others)."""

    def as_body(self) -> dict[str, Any]:
        return {
            "deal_id": self.deal_id,
            "status": self.status,
            "lead_ids": list(self.lead_ids),
            "unknown_leads": list(self.unknown),
        }


def apply_crm_deal(
    deal: CrmDeal, request: VerifiedRequest, *, store: DealStore, now: datetime
) -> DealResult:
    """Keep the deal and put it on its primary lead's timeline. A reference no lead answers to
    is reported back, never guessed; a deal none of whose leads is known is NotFound (404)."""
    request.refuse_a_change_dated_later(deal.updated_at)
    lead_ids: list[str] = []
    unknown: list[dict[str, str | None]] = []
    for reference in deal.leads:
        lead = store.find_lead_for_reference(reference.crm_id, reference.email)
        if lead is None:
            unknown.append({"crm_id": reference.crm_id, "email": reference.email})
        elif lead.lead_id not in lead_ids:
            lead_ids.append(lead.lead_id)
    if not lead_ids:
        raise NotFound(f"none of the deal's leads is known to Tsunagu ({deal.deal_id})")
    event = LeadEvent(
        new_id("evt", now),
        DEAL_CHANGED,
        isoformat(now),
        lead_ids[0],
        properties=deal_properties(deal, lead_ids),
    )
    store.save_crm_deal(deal, event, request)
    return DealResult(deal.deal_id, deal.status, lead_ids, unknown)


def deal_properties(deal: CrmDeal, lead_ids: Sequence[str]) -> dict[str, Any]:
    """The deal as its event carries it (amounts as exact decimal text)."""
    return {
        "deal_id": deal.deal_id,
        "name": deal.name,
        "amount": str(deal.amount),
        "currency": deal.currency,
        "stage": deal.stage,
        "status": deal.status,
        "close_date": deal.close_date.isoformat() if deal.close_date else None,
        "lead_ids": list(lead_ids),
        "account": deal.account,
        "updated_at": isoformat(deal.updated_at),
        "by": "crm",
    }
