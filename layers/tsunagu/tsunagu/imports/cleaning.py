"""A cell's text as the capture path would keep it: surrounding spaces gone, line breaks kept
where a form's long text keeps them (an address) and folded to a space elsewhere, other control
characters refused, full-width digits and ＠ folded where they mean something (addresses,
telephone and postal codes, numbers), and dates in the forms Japanese sheets hold them read as
ISO dates."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta
from typing import Any

from tsunagu.imports.reasons import ReasonCode
from tsunagu.leads.field_values import InvalidFieldValue, checked_field_value
from tsunagu.leads.search_words import search_key
from tsunagu.text import has_control_characters, normalise_line_breaks, unguarded

FOLDED_FIELDS = frozenset({"phone", "postal_code", "company_size"})
"""Fields whose full-width characters are folded (NFKC): digits and hyphens typed by an IME."""
DATE_SUFFIXES = ("_on", "_date")
"""Fields read as dates (``visited_on``, ``met_on``): stored as ISO dates, whatever the form."""
MULTILINE_FIELDS = frozenset({"address"})
"""Fields whose line breaks are kept (a cell's Alt+Enter: 東京都千代田区1-1 / サンプルビル5F),
as a form keeps a long-text (textarea) field's; any other field's are folded to one space."""
MAX_VALUE = 500
_LINE_BREAKS = re.compile(r"\s*[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]\s*")
"""A line break (every character str.splitlines breaks at) with the spaces around it."""
_ERAS = {"令和": 2018, "平成": 1988, "昭和": 1925, "r": 2018, "h": 1988, "s": 1925}
# The day of the week Excel shows after a date under a format such as yyyy/m/d(aaa): (月),
# (月曜日), (mon); the NFKC folding has made （月） (月).
_WEEKDAY = r"(?:\s*\((?P<weekday>[月火水木金土日](?:曜日?)?|[a-z]{3}|[a-z]{6,9})\))?"
_ERA_DATE = re.compile(
    r"^(令和|平成|昭和|[rhs])\s*(\d{1,2}|元)[年./-](\d{1,2})[月./-](\d{1,2})日?" + _WEEKDAY + "$"
)
# A time after the day (a sheet's "2026/12/5 14:30", a workbook's date cell with a time) is the
# same day.
_YMD = re.compile(
    r"^(\d{4})[年./-](\d{1,2})[月./-](\d{1,2})日?"
    + _WEEKDAY
    + r"(?:[ t]\d{1,2}:\d{2}(?::\d{2})?)?$"
)
_COMPACT = re.compile(r"^(19\d{2}|2[01]\d{2})(\d{2})(\d{2})$")
"""20240401: a date as a system exports it, eight digits."""
_WEEKDAYS = (
    ("月", "mon", "monday"), ("火", "tue", "tuesday"), ("水", "wed", "wednesday"),
    ("木", "thu", "thursday"), ("金", "fri", "friday"), ("土", "sat", "saturday"),
    ("日", "sun", "sunday"),
)  # fmt: skip
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
    multiline = field in MULTILINE_FIELDS
    text = normalise_line_breaks(text) if multiline else _LINE_BREAKS.sub(" ", text)
    if has_control_characters(text, multiline=multiline):
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
    """2026/12/4, 2026-12-04, 2026年12月4日 (a time after it is left out), 令和8年12月4日, R8.12.4,
    20261204 or an Excel serial (46360), the day of the week after it or not (2026/12/4(金),
    2026年12月4日(金曜日)); BadValue otherwise - a day of the week the date does not fall on
    included: which of the two was meant cannot be told."""
    text = unicodedata.normalize("NFKC", raw).strip().casefold()
    day: date | None = None
    weekday: str | None = None
    try:
        if text.isdigit() and 20_000 <= int(text) <= 80_000:  # 1954..2118 as a serial
            return _EXCEL_EPOCH + timedelta(days=int(text))
        if match := _COMPACT.match(text):
            return date(int(match[1]), int(match[2]), int(match[3]))
        if match := _YMD.match(text):
            day, weekday = date(int(match[1]), int(match[2]), int(match[3])), match["weekday"]
        elif match := _ERA_DATE.match(text):
            year = 1 if match[2] == "元" else int(match[2])
            day = date(_ERAS[match[1]] + year, int(match[3]), int(match[4]))
            weekday = match["weekday"]
    except ValueError:
        pass  # 2月30日 and the like
    if day is None:
        raise BadValue(f"{raw!r} is not a date", "invalid_date", value=raw)
    if weekday is not None and not _falls_on(day, weekday):
        names = _WEEKDAYS[day.weekday()]
        raise BadValue(  # a date written right, its day of the week not: said as such
            f"{raw!r} is not a date: {day.isoformat()} is a {names[2].title()} ({names[0]}),"
            f" not {weekday}",
            "wrong_weekday",
            value=raw,
            day=day.isoformat(),
            weekday=names[2],
        )
    return day


def _falls_on(day: date, weekday: str) -> bool:
    """Whether the day is that day of the week (月, 月曜, 月曜日, mon, monday); False for a
    word that is none."""
    short, english, full = _WEEKDAYS[day.weekday()]
    return weekday in (short, short + "曜", short + "曜日", english, full)


def company_key(name: str) -> str:
    """One company however its legal form is written: 株式会社サンプル, (株)サンプル, ㈱サンプル and
    サンプル株式会社 are all 「サンプル」."""
    return search_key(name)
