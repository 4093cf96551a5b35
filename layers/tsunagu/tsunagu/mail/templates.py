"""Mail templates: what a marketer writes, stored with versions (a journey pins one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from tsunagu.client_values import STORED, stored_size
from tsunagu.errors import ConcurrentUpdate
from tsunagu.leads.email import normalised_or_none
from tsunagu.mail.consent import named_topic

TOPIC_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"
MAX_STORED_BYTES = 350 * 1024
"""A version is one DynamoDB item, which holds 400 KB, as JSON with every character beyond
ASCII escaped (client_values.stored_size): six bytes a Japanese character, so 60,000 of them
fill it - far within the fields' own limits, and refused by DynamoDB with a 500 after the
editor had accepted them."""


def saved_meanwhile(template_id: str, opened: int, latest: int) -> ConcurrentUpdate:
    """A save over version ``opened`` when ``latest`` is stored since: refused, not made the
    newest over a colleague's fix. The error carries ``latest``, which the editor's next save
    (kept edits, looked at again) goes over knowingly."""
    error = ConcurrentUpdate(
        f"template {template_id!r} is at version {latest} now (you opened version {opened}):"
        " someone saved it meanwhile"
    )
    error.revision = latest
    return error


class MailTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    version: int = Field(default=0, ge=0)
    """Assigned when stored: 1, 2, 3, ... Stored versions never change. In a save, the latest
    version the editor read: refused (409) if a newer one was stored since; 0 or absent: the
    save goes over whatever is latest."""
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["marketing", "transactional"] = "marketing"
    """Transactional mail (a double opt-in confirmation) needs no marketing consent, but still
    never goes to a suppressed address."""
    topic: str = Field(default="marketing", pattern=TOPIC_PATTERN)
    subject: str = Field(min_length=1, max_length=998)
    html: str = Field(min_length=1, max_length=200_000)
    text: str | None = Field(default=None, max_length=200_000)
    """Produced from the HTML when absent."""
    from_address: str
    from_name: str | None = Field(default=None, max_length=200)
    reply_to: str | None = None
    sender_is_owner: bool = False
    """Send as the lead's owner (a sales rep) when the owner's domain is a verified identity;
    otherwise from ``from_address``."""
    defaults: dict[str, str] = Field(default_factory=dict, max_length=100)
    """Values for fields a lead lacks, by name: ``{"name": "ご担当者"}``."""

    _address = field_validator("from_address", "reply_to")(normalised_or_none)

    @field_validator("topic")
    @classmethod
    def _named_topic(cls, topic: str, info: ValidationInfo) -> str:
        # A version stored before "all" was refused still loads (versions never change, and a
        # journey may pin it); it is refused only in a new version
        return topic if (info.context or {}).get(STORED) else named_topic(topic)

    @model_validator(mode="after")
    def _fits_one_item(self, info: ValidationInfo) -> MailTemplate:
        # A version stored already fitted (DynamoDB took it): it still loads whatever this says
        if (info.context or {}).get(STORED):
            return self
        size = stored_size(self.model_dump(mode="json"))
        if size > MAX_STORED_BYTES:
            raise ValueError(
                f"the mail takes {size // 1024} KB as it is stored, more than the"
                f" {MAX_STORED_BYTES // 1024} KB a template may hold (a Japanese character takes"
                " six bytes there): shorten it"
            )
        return self


@dataclass(frozen=True)
class TemplateVersion:
    """One stored version of a template, as its history lists it: when, by whom, and enough of
    it to tell the versions apart."""

    version: int
    created_at: str
    saved_by: str | None
    """Who stored it (an e-mail, or the operator's identity); None for versions stored before
    this was kept, and for the templates Tsunagu ships."""
    name: str
    subject: str
