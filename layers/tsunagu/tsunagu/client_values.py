"""Types of the values clients send, shared by every model of a request body.

pydantic's defaults are lenient in ways the API document is not: it reads ``0`` as 1970-01-01
and accepts any year from 1 to 9999. A lenient read here is a defect twice over:
a client's mistake is stored as if it were meant, and an instant near the ends of the calendar
overflows when it is converted to UTC (a 500 instead of a 422).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, ValidationError

from tsunagu.errors import FieldError, ValidationFailed

EARLIEST_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(2100, 1, 1, tzinfo=UTC)
"""Instants a client may name. Nothing a marketing tool records happened before 2000, and
the bounds keep every conversion (to UTC, to a lead's time zone) inside the calendar."""


_RFC_3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})"
)
"""The API document's ``format: date-time``. pydantic would also read "1795338040" as a Unix
time and a space for the T."""


def _date_time_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC_3339.fullmatch(value):
        raise ValueError("must be a date-time text with its offset, like 2026-12-03T10:00:00+09:00")
    return value


def _within_the_calendar(instant: datetime) -> datetime:
    # Aware datetimes compare through a timedelta, which never overflows, so year 1 with
    # +09:00 is compared safely here before anything converts it.
    if not EARLIEST_INSTANT <= instant < LATEST_INSTANT:
        raise ValueError("must be between 2000-01-01 and 2099-12-31 (UTC)")
    return instant


ClientInstant = Annotated[
    AwareDatetime, BeforeValidator(_date_time_text), AfterValidator(_within_the_calendar)
]
"""A date-time a client sends: text with its UTC offset, between 2000 and 2099."""


def validation_failed(error: ValidationError, whole: str) -> ValidationFailed:
    """pydantic's errors as the domain's: each field by its dotted path (``nodes.0.kind``), or
    ``whole`` for the body itself."""
    return ValidationFailed(
        [
            FieldError(".".join(str(p) for p in e["loc"]) or whole, e["msg"])
            for e in error.errors(include_url=False, include_input=False)
        ]
    )
