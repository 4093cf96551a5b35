"""Checking a submission against its form, field by field, before anything is written."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from tsunagu.errors import FieldError, ValidationFailed
from tsunagu.forms import RawValue
from tsunagu.forms.stored import SUBMISSION_ID_FIELD, VISITOR_ID_FIELD, StoredField, StoredForm
from tsunagu.leads.email import EmailAddress, InvalidEmail, normalise_email
from tsunagu.leads.field_values import InvalidFieldValue, checked_field_value
from tsunagu.text import has_control_characters, normalise_line_breaks

_TRUE = frozenset({"true", "on", "1", "yes"})
_FALSE = frozenset({"false", "off", "0", "no", ""})
# Client-made ids: a UUID or similar; nothing that could smuggle markup or key separators.
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_TEL = re.compile(r"^[0-9+()\- ]{3,30}$")
MAX_SUBMITTED_NAMES = 100
_NUMBER = re.compile(r"^-?\d{1,15}(\.\d{1,6})?$")


@dataclass(frozen=True)
class Submission:
    """A submission that passed every check: safe to store as it is."""

    email: EmailAddress
    fields: dict[str, str]
    """Lead attributes by name, excluding the address."""
    consent_given: bool
    submission_id: str | None
    visitor_id: str | None
    ignored_fields: list[str] = field(default_factory=list)


def is_honeypot_filled(form: StoredForm, raw: Mapping[str, RawValue]) -> bool:
    value = raw.get(form.honeypot_field)
    return value not in (None, "", False)


def _text(value: RawValue) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    return str(value)


def _check_value(spec: StoredField, raw: RawValue, errors: list[FieldError]) -> str | None:
    """The cleaned value of one field, or None (with an error recorded when it is wrong)."""
    if spec.type == "checkbox":
        if isinstance(raw, bool) or raw is None:
            return "true" if raw else None
        lowered = str(raw).strip().lower()
        if lowered in _TRUE:
            return "true"
        if lowered in _FALSE:
            return None
        errors.append(FieldError(spec.name, "must be a checkbox value (true/false or on)"))
        return None
    if isinstance(raw, bool):
        errors.append(FieldError(spec.name, "must be text, not true/false"))
        return None
    text = _text(raw)
    text = text.strip() if text is not None else None
    if not text:
        return None
    if len(text) > spec.max_length:
        errors.append(FieldError(spec.name, f"must be at most {spec.max_length} characters"))
        return None
    multiline = spec.type == "textarea"
    if has_control_characters(text, multiline=multiline):
        errors.append(FieldError(spec.name, "contains control characters or line breaks"))
        return None
    if multiline:
        text = normalise_line_breaks(text)
    if spec.type == "select" and text not in spec.options:
        errors.append(FieldError(spec.name, f"must be one of {spec.options}"))
        return None
    if spec.type == "tel" and not _TEL.match(unicodedata.normalize("NFKC", text)):
        errors.append(FieldError(spec.name, "is not a telephone number"))
        return None
    if spec.type == "number" and not _NUMBER.match(unicodedata.normalize("NFKC", text)):
        errors.append(FieldError(spec.name, "is not a number"))
        return None
    if spec.type == "url" and not re.match(r"^https?://[^\s]+$", text):
        errors.append(FieldError(spec.name, "must be an http(s) URL"))
        return None
    if spec.type in ("tel", "number"):
        # Full-width digits from a Japanese IME become ASCII digits.
        text = unicodedata.normalize("NFKC", text)
    return text


def _client_id(raw: Mapping[str, RawValue], name: str, errors: list[FieldError]) -> str | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        # 12345678 or true is a page's bug, not an id: read as text it would pass, or vanish.
        errors.append(FieldError(name, "must be text (8-64 letters, digits, '-' or '_')"))
        return None
    if not _CLIENT_ID.fullmatch(value):  # match's $ would let "...\n" through
        errors.append(FieldError(name, "must be 8-64 letters, digits, '-' or '_'"))
        return None
    return value


def validate_submission(form: StoredForm, raw: Mapping[str, RawValue]) -> Submission:
    """Every problem is reported at once, so a person fixes their form in one go."""
    errors: list[FieldError] = []
    if len(raw) > MAX_SUBMITTED_NAMES:
        raise ValidationFailed(
            [FieldError("(form)", f"a submission has at most {MAX_SUBMITTED_NAMES} fields")]
        )
    for name, value in raw.items():
        if not isinstance(value, str | bool | int | float) and value is not None:
            errors.append(FieldError(name, "must be a single value, not a list or object"))
    if errors:
        raise ValidationFailed(errors)

    cleaned: dict[str, str] = {}
    consent_given = False
    email: EmailAddress | None = None
    for spec in form.fields:
        value = _check_value(spec, raw.get(spec.name), errors)
        if value is None:
            if spec.required and not any(e.field == spec.name for e in errors):
                errors.append(FieldError(spec.name, "is required"))
            continue
        if spec.name == "email":
            try:
                email = normalise_email(value)
            except InvalidEmail as error:
                errors.append(FieldError("email", str(error)))
        elif form.consent is not None and spec.name == form.consent.field:
            consent_given = True
        else:
            try:
                cleaned[spec.target] = checked_field_value(spec.target, value)
            except InvalidFieldValue as error:
                errors.append(FieldError(spec.name, str(error)))

    submission_id = _client_id(raw, SUBMISSION_ID_FIELD, errors)
    visitor_id = _client_id(raw, VISITOR_ID_FIELD, errors)
    if errors:
        raise ValidationFailed(errors)
    assert email is not None  # required and checked above
    known = {f.name for f in form.fields} | {SUBMISSION_ID_FIELD, VISITOR_ID_FIELD}
    known.add(form.honeypot_field)
    # Names the form does not know are reported back, never stored: a marketer who added a field
    # to the page but not to the form sees it in the response instead of losing the whole lead.
    ignored = sorted(name[:64] for name in raw if name not in known)
    return Submission(email, cleaned, consent_given, submission_id, visitor_id, ignored)
