"""Types of the values clients send, shared by every model of a request body.

pydantic's defaults are lenient in ways the API document is not: it reads ``0`` as 1970-01-01
and accepts any year from 1 to 9999. A lenient read here is a defect twice over:
a client's mistake is stored as if it were meant, and an instant near the ends of the calendar
overflows when it is converted to UTC (a 500 instead of a 422).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, ValidationError
from pydantic_core import ErrorDetails

from tsunagu.clock import client_instant, within_the_calendar
from tsunagu.errors import FieldError, ValidationFailed

STORED = "stored"
"""Validation context: a definition read back from the store, not one a client sends. A rule
added since it was stored refuses it only when it is saved again (a stored form or template
version still loads, and still works)."""


def stored_size(value: object) -> int:
    """The bytes ``value`` takes as a definition is stored: one JSON text (pynamodb's
    JSONAttribute; journeys and mail templates), where every character beyond ASCII is
    escaped - six bytes a Japanese character, not the three UTF-8 would take."""
    return len(json.dumps(value).encode("ascii"))


def _date_time_text(value: Any) -> Any:
    # A datetime is one built in code (a test, the CLI); what a client sends is text, checked
    # and read here as RFC 3339. Given back read, so a strict model (the admin API's bodies,
    # where pydantic would take no text for a datetime after a validator) takes it too.
    if not isinstance(value, datetime):
        return client_instant(value)
    return value


ClientInstant = Annotated[
    AwareDatetime, BeforeValidator(_date_time_text), AfterValidator(within_the_calendar)
]
"""A date-time a client sends: text with its UTC offset, between 2000 and 2099."""


class CodedValueError(ValueError):
    """A validator's refusal that has a code (a FieldError's, such as an import mapping's
    ``too_many_mapped_columns``): pydantic keeps the exception in its error, and
    validation_failed gives the code and its params to the field pydantic names."""

    def __init__(self, problem: FieldError) -> None:
        super().__init__(problem.message)
        self.problem = problem


UNCODED_KINDS = frozenset({"value_error", "assertion_error"})
"""pydantic's error types that are our validators' own sentences (a ValueError's words): no
name says them, so they keep only ``message``."""


def validation_failed(error: ValidationError, whole: str) -> ValidationFailed:
    """pydantic's errors as the domain's: each field by its dotted path (``nodes.0.kind``), or
    ``whole`` for the body itself; with its code when a validator raised a CodedValueError,
    else pydantic's own (``pydantic_problem``)."""
    problems = []
    for e in error.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in e["loc"]) or whole
        raised = e.get("ctx", {}).get("error")
        if isinstance(raised, CodedValueError):
            coded = raised.problem
            problems.append(FieldError(field, e["msg"], coded.code, coded.params))
        else:
            problems.append(pydantic_problem(field, e))
    return ValidationFailed(problems)


def pydantic_problem(field: str, e: ErrorDetails) -> FieldError:
    """One of pydantic's errors as a field's problem, coded ``value.<its type>``
    (``value.string_too_long`` with ``{"max_length": 200}``): pydantic's types are documented
    and stay when its words change, so a client (the console) says them in the user's language.
    Not coded: our validators' own sentences, and an error whose context is not plain JSON
    values (a sentence about it could not be filled in)."""
    context = {name: value for name, value in e.get("ctx", {}).items() if name != "error"}
    plain = all(isinstance(value, str | int | float | bool) for value in context.values())
    if e["type"] in UNCODED_KINDS or not plain:
        return FieldError(field, e["msg"])
    return FieldError(field, e["msg"], f"value.{e['type']}", context)
