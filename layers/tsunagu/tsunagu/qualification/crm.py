"""What the CRM tells Tsunagu (seed 001): a lead's sales status, owner, deal amount and record id.

The CRM calls ``POST /crm/leads`` with a body signed like Stripe's webhooks
(tsunagu.signed_requests, shared with sites' servers posting tracking events); within the
tolerance the webhook remembers each request's replay key, so a captured request cannot be
played again.

Which side wins for each field is a configured policy, and a value the policy does not let the
CRM change is reported back as a conflict, never dropped in silence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tsunagu.api.requests import load_json_object
from tsunagu.client_values import ClientInstant, validation_failed
from tsunagu.clock import isoformat, parse_instant
from tsunagu.errors import AlreadyExists, MalformedRequest

# The status words live with the lead (every path that sets a status reads them); named here
# too, as the webhook's vocabulary.
from tsunagu.leads.crm_status import SALES_ENGAGED as SALES_ENGAGED
from tsunagu.leads.crm_status import CrmStatus as CrmStatus
from tsunagu.leads.crm_status import canonical_status, status_key
from tsunagu.leads.crm_status import normalise_status as normalise_status
from tsunagu.leads.email import normalised_or_none
from tsunagu.leads.merge import Channel, FieldValue

# The signed-request rules are shared with the tracking function (tsunagu.signed_requests);
# named here too, as the webhook's vocabulary.
from tsunagu.signed_requests import DEFAULT_TOLERANCE_SECONDS as DEFAULT_TOLERANCE_SECONDS
from tsunagu.signed_requests import MIN_SECRET_BYTES as MIN_SECRET_BYTES
from tsunagu.signed_requests import SIGNATURE_SCHEME as SIGNATURE_SCHEME
from tsunagu.signed_requests import ReplayedRequest as ReplayedRequest
from tsunagu.signed_requests import SignatureRejected as SignatureRejected
from tsunagu.signed_requests import StaleRequest as StaleRequest
from tsunagu.signed_requests import VerifiedRequest as VerifiedRequest
from tsunagu.signed_requests import replay_key as replay_key
from tsunagu.signed_requests import signature_header as signature_header
from tsunagu.signed_requests import verify_signature as verify_signature
from tsunagu.text import has_control_characters


class LinkedToAnotherRecord(AlreadyExists):
    """The lead the update names is linked to another CRM record (a duplicate contact in the
    CRM with the same address, most often). Refused whole - HTTP 409 through its base - since
    which record speaks for the person is for someone to decide in the CRM, not for the order
    the two records' webhooks happen to arrive in."""


_AMOUNT_TEXT = re.compile(r"[0-9]{1,20}(\.[0-9]{1,4})?")


def plain_amount(value: Any) -> Any:
    """An amount as a JSON number or plain decimal text. Text is read only in the plain form the
    API document gives: "1e3", "NaN" or "1,000" would be one CRM's bug stored as another amount
    (the field's own limits then bound its digits)."""
    if isinstance(value, bool) or (isinstance(value, str) and not _AMOUNT_TEXT.fullmatch(value)):
        raise ValueError("must be a number, or decimal text like 1350000.50")
    return value


def refuse_control_characters(value: str | None) -> str | None:
    # None: the field was sent as null, which says nothing about it (the model's default).
    if value is not None and has_control_characters(value):
        raise ValueError("contains control characters")
    return value


class CrmUpdate(BaseModel):
    """One inbound webhook body. A field left out (or null) says nothing about that field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    crm_id: str = Field(min_length=1, max_length=128, pattern=r"^[^\s]+$")
    """The CRM's own record id; the lead keeps it among its channel ids."""
    email: str = Field(max_length=254)
    status: str | None = Field(default=None, min_length=1, max_length=100)
    owner: str | None = Field(default=None, max_length=254)
    deal_amount: Decimal | None = Field(default=None, ge=0, max_digits=20, decimal_places=4)
    """A JSON number or decimal text: CRMs such as HubSpot send amounts as text, exact."""
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    updated_at: ClientInstant
    """When the CRM record changed: newest_wins compares it, and an older update is stale."""

    _text = field_validator("crm_id", "status")(refuse_control_characters)

    _amount = field_validator("deal_amount", mode="before")(plain_amount)

    _address = field_validator("email", "owner")(normalised_or_none)

    @property
    def status_code(self) -> CrmStatus | None:
        return None if self.status is None else normalise_status(self.status)

    @property
    def canonical_status(self) -> str | None:
        """What to keep as the lead's CRM status: the label of a status Tsunagu knows ("商談中"
        is kept as "in negotiation", so a journey's exit on "in negotiation" sees it), else the
        CRM's own text."""
        return None if self.status is None else canonical_status(self.status)

    @property
    def sales_engaged(self) -> bool:
        return self.status_code in SALES_ENGAGED


def read_crm_body[Body: BaseModel](body: bytes, model: type[Body]) -> Body:
    """Read a verified body as ``model``. Unreadable JSON is MalformedRequest (400); readable
    JSON with bad fields is ValidationFailed (422), naming each field. Numbers are read as
    decimals, so an amount is kept exactly."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("the body is not UTF-8 JSON") from None
    data = load_json_object(text, parse_float=Decimal)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise validation_failed(error, "(body)") from None


def parse_crm_update(body: bytes) -> CrmUpdate:
    """A lead's update from the CRM (``POST /crm/leads``)."""
    return read_crm_body(body, CrmUpdate)


FieldPolicy = Literal["crm_wins", "tsunagu_wins", "newest_wins"]


class MergePolicy(BaseModel):
    """Which side wins when the CRM and Tsunagu disagree about a field.

    - ``crm_wins``: the CRM's value replaces one set in Tsunagu.
    - ``tsunagu_wins``: a value set in Tsunagu stays; the CRM only fills a blank.
    - ``newest_wins``: the later change wins (the CRM's ``updated_at`` against the time the
      Tsunagu value was set).

    A value the CRM itself set earlier is always replaced by a newer CRM update, whatever the
    policy: the policy is about the two sides, not about the CRM contradicting itself. The CRM
    id is not a policy: a lead linked to one record is never silently re-linked to another.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: FieldPolicy = "crm_wins"
    """Sales reports the status; seed 001 is about Tsunagu hearing it."""
    owner: FieldPolicy = "newest_wins"
    """Tsunagu assigns an owner on MQL; a later reassignment in either system should stick."""
    deal_amount: FieldPolicy = "crm_wins"
    currency: FieldPolicy = "crm_wins"


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: str | None
    new: FieldValue
    reason: str


@dataclass(frozen=True)
class FieldConflict:
    field: str
    kept: FieldValue
    offered: str
    reason: str


class CrmMerge(NamedTuple):
    changes: list[FieldChange]
    conflicts: list[FieldConflict]


def _offered_values(update: CrmUpdate) -> dict[str, str]:
    values = {
        "crm_id": update.crm_id,
        "status": update.status,
        "owner": update.owner,
        "deal_amount": None if update.deal_amount is None else str(update.deal_amount),
        "currency": update.currency,
    }
    return {name: value for name, value in values.items() if value is not None}


def _same(name: str, current: str, offered: str) -> bool:
    if name == "deal_amount":
        try:
            return Decimal(current) == Decimal(offered)
        except ArithmeticError:
            return False
    if name == "owner":
        return current.casefold() == offered.casefold()
    if name == "status":
        # The lead keeps the status in Tsunagu's words: the CRM's 商談中 is its "in negotiation".
        return status_key(current) == status_key(offered)
    return current == offered


def merge_crm_update(
    current: Mapping[str, FieldValue], update: CrmUpdate, policy: MergePolicy
) -> CrmMerge:
    """What the update changes on the lead, and what it would have changed but may not.

    ``current`` holds the lead's CRM-related values (``crm_id``, ``status``, ``owner``,
    ``deal_amount``, ``currency``) as stored, each with the channel that set it and when; a value
    set by :attr:`Channel.CRM` came from an earlier webhook, anything else was set in Tsunagu (the
    status by a person or a journey: ``Lead.crm_status_value``).
    Each change carries the value to store (source CRM, at the CRM's ``updated_at``).
    """
    at = isoformat(update.updated_at)
    changes: list[FieldChange] = []
    conflicts: list[FieldConflict] = []
    for name, offered in _offered_values(update).items():
        existing = current.get(name)
        incoming = FieldValue(offered, Channel.CRM, at)
        if existing is None or not existing.value:
            changes.append(FieldChange(name, None, incoming, "no value yet"))
            continue
        if _same(name, existing.value, offered):
            continue
        existing_at = parse_instant(existing.at)
        newer = update.updated_at > existing_at
        if name == "crm_id":
            conflicts.append(
                FieldConflict(name, existing, offered, "the lead is linked to another CRM record")
            )
        elif existing.source is Channel.CRM:
            if update.updated_at >= existing_at:
                changes.append(FieldChange(name, existing.value, incoming, "a newer CRM update"))
            else:
                conflicts.append(
                    FieldConflict(
                        name, existing, offered, "older than the CRM update already applied"
                    )
                )
        else:
            rule: FieldPolicy = getattr(policy, name)
            if rule == "crm_wins":
                changes.append(FieldChange(name, existing.value, incoming, "policy crm_wins"))
            elif rule == "newest_wins" and newer:
                changes.append(
                    FieldChange(name, existing.value, incoming, "policy newest_wins: CRM newer")
                )
            elif rule == "newest_wins":
                conflicts.append(
                    FieldConflict(
                        name, existing, offered, "policy newest_wins: Tsunagu's value is newer"
                    )
                )
            else:
                conflicts.append(FieldConflict(name, existing, offered, "policy tsunagu_wins"))
    return CrmMerge(changes, conflicts)


def crm_update_summary(update: CrmUpdate) -> dict[str, Any]:
    """The update as plain JSON-ready data, for the stage history and the event on the stream."""
    return {
        **_offered_values(update),
        "email": update.email,
        "status_code": None if update.status_code is None else update.status_code.value,
        "canonical_status": update.canonical_status,
        "sales_engaged": update.sales_engaged,
        "updated_at": isoformat(update.updated_at),
    }
