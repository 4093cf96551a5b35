"""Finding a lead by the address a person types: the one rule the CLI's lead commands, journey
entry and the one-lead dry run share (and the admin API will)."""

from __future__ import annotations

from typing import Protocol

from tsunagu.errors import MalformedRequest, NotFound
from tsunagu.leads.email import InvalidEmail, normalise_email
from tsunagu.leads.model import Lead, email_identity


class LeadFinder(Protocol):
    def find_lead(self, identity: str) -> Lead | None: ...


def lead_by_email(leads: LeadFinder, email: str) -> Lead:
    """The lead with this address, matched as capture matches it (full-width characters and
    spaces cleaned, case ignored). MalformedRequest for something that is not an address;
    NotFound when no lead has it."""
    try:
        address = normalise_email(email)
    except InvalidEmail as error:
        raise MalformedRequest(f"{email!r} is not an e-mail address: {error}") from None
    lead = leads.find_lead(email_identity(address.identity_key))
    if lead is None:
        raise NotFound(f"no lead with the address {address.address}")
    return lead
