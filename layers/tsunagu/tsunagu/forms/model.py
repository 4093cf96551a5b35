"""A form's definition, as a marketer writes it (JSON through the CLI or the admin API), checked
before Tsunagu stores it. The capture function reads it back as a StoredForm
(tsunagu.forms.stored), without pydantic."""

from __future__ import annotations

from typing import Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tsunagu.client_values import STORED
from tsunagu.forms.stored import FORM_ID_PATTERN, RESERVED_FIELDS, FieldType
from tsunagu.leads.merge import Channel
from tsunagu.leads.model import RESERVED_FIELD_NAMES
from tsunagu.mail.consent import named_topic
from tsunagu.origins import check_origin


class FormField(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    type: FieldType = "text"
    label: str = Field(default="", max_length=200)
    required: bool = False
    max_length: int = Field(default=255, ge=1, le=5000)
    options: list[str] = Field(default_factory=list, max_length=200)
    lead_field: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,39}$")
    """The lead attribute this field fills; defaults to the field's own name."""

    @property
    def target(self) -> str:
        return self.lead_field or self.name

    @model_validator(mode="after")
    def _select_has_options(self) -> Self:
        if self.type == "select" and not self.options:
            raise ValueError(f"select field {self.name!r} needs options")
        return self


class ConsentSpec(BaseModel):
    """The consent checkbox: what the person agrees to, in which words, in which version."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    field: str = "consent"
    topic: str = Field(default="marketing", pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    text: str = Field(min_length=1, max_length=2000)
    version: str = Field(min_length=1, max_length=40)
    double_opt_in: bool = False
    """Consent counts only once the person confirms it from a mail (the confirmation template,
    a transactional one, links to ``{{ confirm_url }}``)."""
    confirmation_template: str = Field(
        default="double-opt-in", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$"
    )
    """The transactional mail that confirms a pending opt-in: every double opt-in sign-up, and
    any box ticked by a lead who had opted out. Needed by every form with a consent box, checked
    when it is saved (tsunagu.commands.definitions.check_confirmation)."""


class FormDefinition(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    form_id: str = Field(pattern=FORM_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    fields: list[FormField] = Field(min_length=1, max_length=50)
    allowed_origins: list[str] = Field(default_factory=list, max_length=50)
    consent: ConsentSpec | None = None
    thank_you_url: str | None = None
    honeypot_field: str = Field(default="website", pattern=r"^[a-z][a-z0-9_]{0,39}$")
    source: Channel = Channel.WEB_FORM
    """Which channel submissions count as when fields are merged (a seminar sign-up form ranks
    above a newsletter form)."""

    @field_validator("allowed_origins")
    @classmethod
    def _normalise_origins(cls, origins: list[str]) -> list[str]:
        return [check_origin(o) for o in origins]

    @field_validator("thank_you_url")
    @classmethod
    def _absolute_url(cls, url: str | None) -> str | None:
        if url is not None and urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("thank_you_url must be an absolute http(s) URL")
        return url

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Self:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError("field names must be unique")
        email = next((f for f in self.fields if f.name == "email"), None)
        if email is None or email.type != "email" or not email.required:
            raise ValueError("a form needs a required field named 'email' of type 'email'")
        clashes = RESERVED_FIELDS.intersection(names) | ({self.honeypot_field} & set(names))
        if clashes:
            raise ValueError(f"field names reserved by Tsunagu: {sorted(clashes)}")
        own = {f.target for f in self.fields if f is not email} & RESERVED_FIELD_NAMES
        # A form stored before this rule still loads (and takes submissions); it is refused
        # only when saved again.
        if own and not (info.context or {}).get(STORED):
            raise ValueError(
                f"{sorted(own)}: the lead's own, not fields a form fills (name it otherwise, or"
                " set lead_field)"
            )
        if self.consent is not None:
            box = next((f for f in self.fields if f.name == self.consent.field), None)
            if box is None or box.type != "checkbox":
                raise ValueError(f"consent field {self.consent.field!r} must be a checkbox field")
            # As above: a form stored before this rule still loads (the store keeps a returning
            # lead's opt-in to it from failing); it is refused only when saved again.
            if not (info.context or {}).get(STORED):
                named_topic(self.consent.topic)
        return self
