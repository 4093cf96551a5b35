"""The Reply-To of a marketing mail when replies are received: ``reply+<token>@<reply domain>``.

The token is opaque and **stored**, not signed: 128 random bits in lowercase base32 (26
characters), the key of a record written with the send (store.mail) that says which lead,
send, template and journey the address belongs to. Why stored rather than signed:

- it fits: an address's local part may have 64 characters (RFC 5321); a signed token naming the
  lead and the message (two ULIDs and a MAC) takes more than that;
- nothing in the incoming mail is trusted: a reply can only ever land on the lead the record
  names, and guessing another live token means guessing 128 random bits;
- it says nothing about the lead to whoever sees the address (a colleague the mail was
  forwarded to), and it outlives a rotation of the tracking keys;
- lowercase only: some mail systems change the case of a local part on the way.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from email.utils import getaddresses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tsunagu.leads.model import LeadEvent
    from tsunagu.mail.preferences import Change

REPLY_PREFIX = "reply+"
TOKEN_PATTERN = re.compile(r"^[a-z2-7]{26}$")
REPLY_ADDRESS_DAYS = 400
"""How long a mail's reply address is known: people answer old mail; a reply after this finds
no record and is logged, not recorded."""


def new_reply_token() -> str:
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()


def reply_address(token: str, domain: str) -> str:
    return f"{REPLY_PREFIX}{token}@{domain}"


def tokens_in(addresses: Iterable[str], domain: str) -> list[str]:
    """The well-formed tokens of the reply addresses at ``domain`` among ``addresses`` (a
    receipt's recipients, a To header), in order, each once."""
    found: list[str] = []
    wanted = domain.casefold()
    for _name, address in getaddresses([str(a) for a in addresses]):
        local, at, host = address.rpartition("@")
        if not at or host.casefold() != wanted or not local.lower().startswith(REPLY_PREFIX):
            continue
        token = local[len(REPLY_PREFIX) :].lower()
        if TOKEN_PATTERN.match(token) and token not in found:
            found.append(token)
    return found


@dataclass(frozen=True)
class ReplyAddress:
    """What a reply address stands for: stored with the send, read when a reply arrives."""

    token: str
    lead_id: str
    message_id: str
    """The send's own id (mail_sent's ``message_id``)."""
    template_id: str
    template_version: int
    template_name: str
    topic: str
    mail_kind: str
    sent_at: str
    sender: str
    """The mail's From address: who hears of a reply when nobody else is named."""
    reply_to: str | None = None
    """The template's own Reply-To: the person who hears of a reply first."""
    journey: Mapping[str, Any] | None = None
    """journey_id, journey_version, node of a journey's send."""

    def as_item(self) -> dict[str, Any]:
        item = asdict(self)
        item["journey"] = dict(self.journey or {})
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ReplyAddress:
        known = cls.__dataclass_fields__
        values = {name: item[name] for name in known if name in item}
        values["template_version"] = int(values.get("template_version") or 0)
        values["journey"] = dict(values.get("journey") or {})
        return cls(**values)


@dataclass(frozen=True)
class RecordedReply:
    """Everything one received reply stores, together and once (store.mail.record_reply)."""

    key: str
    lead_id: str
    outcome: str
    events: tuple[LeadEvent, ...]
    consent_changes: tuple[Change, ...] = ()
