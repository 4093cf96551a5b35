"""A form as the capture function reads it from the store: plain records, without pydantic.

A definition is validated once, when it is saved (tsunagu.forms.model.FormDefinition, a pydantic
model: the admin API's body, the CLI's file). The capture function reads it on every cold start,
and importing pydantic there would cost about 50 ms of the first submission's wait (README,
Deploying to AWS), so it reads the stored document into these records instead. A test keeps the
two alike: a field added to the model must be added here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tsunagu.leads.merge import Channel
from tsunagu.origins import origin_allowed

FORM_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


def is_form_id(text: str) -> bool:
    """Checked before a look-up: DynamoDB refuses an empty or over-long key with a 500."""
    return re.match(FORM_ID_PATTERN, text) is not None


FieldType = Literal["email", "text", "textarea", "tel", "url", "number", "checkbox", "select"]

# Names a submission may carry besides the form's own fields. They are never lead data.
SUBMISSION_ID_FIELD = "submission_id"
VISITOR_ID_FIELD = "visitor_id"
RESERVED_FIELDS = frozenset({SUBMISSION_ID_FIELD, VISITOR_ID_FIELD})


@dataclass(frozen=True)
class StoredField:
    name: str
    type: FieldType = "text"
    label: str = ""
    required: bool = False
    max_length: int = 255
    options: tuple[str, ...] = ()
    lead_field: str | None = None

    @property
    def target(self) -> str:
        """The lead attribute this field fills: lead_field, or the field's own name."""
        return self.lead_field or self.name


@dataclass(frozen=True)
class StoredConsent:
    text: str
    version: str
    field: str = "consent"
    topic: str = "marketing"
    double_opt_in: bool = False
    confirmation_template: str = "double-opt-in"


@dataclass(frozen=True)
class StoredForm:
    form_id: str
    name: str
    fields: tuple[StoredField, ...]
    allowed_origins: tuple[str, ...] = ()
    """As FormDefinition normalised them when the form was saved."""
    consent: StoredConsent | None = None
    thank_you_url: str | None = None
    honeypot_field: str = "website"
    source: Channel = Channel.WEB_FORM

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> StoredForm:
        """The form in a definition as FormDefinition stored it (``model_dump(mode="json")``)."""
        consent = definition.get("consent")
        return cls(
            form_id=definition["form_id"],
            name=definition["name"],
            fields=tuple(
                StoredField(**{**spec, "options": tuple(spec.get("options", ()))})
                for spec in definition["fields"]
            ),
            allowed_origins=tuple(definition.get("allowed_origins", ())),
            consent=StoredConsent(**consent) if consent is not None else None,
            thank_you_url=definition.get("thank_you_url"),
            honeypot_field=definition.get("honeypot_field", "website"),
            source=Channel(definition.get("source", Channel.WEB_FORM.value)),
        )

    def allows_origin(self, origin: str) -> bool:
        return origin_allowed(origin, self.allowed_origins)
