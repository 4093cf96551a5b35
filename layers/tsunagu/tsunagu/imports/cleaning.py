"""A cell's text as the capture path would keep it: surrounding spaces gone, control characters
refused, full-width digits and ＠ folded where they mean something (addresses, telephone and
postal codes, numbers), and dates in the forms Japanese sheets hold them read as ISO dates."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta
from typing import Any

from tsunagu.imports.reasons import ReasonCode
from tsunagu.leads.field_values import InvalidFieldValue, checked_field_value
from tsunagu.leads.search_words import search_key
from tsunagu.text import has_control_characters, unguarded

FOLDED_FIELDS = frozenset({"phone", "postal_code", "company_size"})
"""Fields whose full-width characters are folded (NFKC): digits and hyphens typed by an IME."""
DATE_SUFFIXES = ("_on", "_date")
"""Fields read as dates (``visited_on``, ``met_on``): stored as ISO dates, whatever the form."""
MAX_VALUE = 500
_ERAS = {"令和": 2018, "平成": 1988, "昭和": 1925, "r": 2018, "h": 1988, "s": 1925}
_ERA_DATE = re.compile(
    r"^(令和|平成|昭和|[rhs])\s*(\d{1,2}|元)[年./-](\d{1,2})[月./-](\d{1,2})日?$"
)
# A time after the day (a sheet's "2026/12/5 14:30", a workbook's date cell with a time) is the
# same day.
_YMD = re.compile(r"^(\d{4})[年./-](\d{1,2})[月./-](\d{1,2})日?(?:[ t]\d{1,2}:\d{2}(?::\d{2})?)?$")
_EXCEL_EPOCH = date(1899, 12, 30)
"""Excel's day 0 (its serials count from here, its 1900 leap-year bug included)."""


class BadValue(ValueError):
    """The cell cannot be stored as it is; the message says why, in English, and ``code`` and
    ``params`` say it for the reader's language (tsunagu.imports.reasons; the column and the
    field are added by the plan, which knows the header)."""

    def __init__(self, message: str, code: ReasonCode, **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


def clean_value(field: str, raw: str) -> str:
    # Tsunagu's own exports guard formula-like cells with a quote: a file brought back holds
    # the values, not the guards.
    text = unguarded(raw.strip())
    if not text:
        return ""
    if len(text) > MAX_VALUE:
        raise BadValue(
            f"{field}: more than {MAX_VALUE} characters", "value_too_long", limit=MAX_VALUE
        )
    if has_control_characters(text):
        raise BadValue(f"{field}: control characters or line breaks", "control_characters")
    if field.endswith(DATE_SUFFIXES):
        return read_date(text).isoformat()
    if field in FOLDED_FIELDS:
        text = unicodedata.normalize("NFKC", text)
    try:
        return checked_field_value(field, text)
    except InvalidFieldValue as error:
        raise BadValue(
            str(error), "invalid_value", value=text, expected=error.expected, detail=error.detail
        ) from None


def read_date(raw: str) -> date:
    """2026/12/4, 2026-12-04, 2026年12月4日 (a time after it is left out), 令和8年12月4日, R8.12.4
    or an Excel serial (46360); BadValue otherwise."""
    text = unicodedata.normalize("NFKC", raw).strip().casefold()
    try:
        if text.isdigit() and 20_000 <= int(text) <= 80_000:  # 1954..2118 as a serial
            return _EXCEL_EPOCH + timedelta(days=int(text))
        if match := _YMD.match(text):
            return date(int(match[1]), int(match[2]), int(match[3]))
        if match := _ERA_DATE.match(text):
            year = 1 if match[2] == "元" else int(match[2])
            return date(_ERAS[match[1]] + year, int(match[3]), int(match[4]))
    except ValueError:
        pass  # 2月30日 and the like
    raise BadValue(f"{raw!r} is not a date", "invalid_date", value=raw)


def company_key(name: str) -> str:
    """One company however its legal form is written: 株式会社サンプル, (株)サンプル, ㈱サンプル and
    サンプル株式会社 are all 「サンプル」."""
    return search_key(name)
