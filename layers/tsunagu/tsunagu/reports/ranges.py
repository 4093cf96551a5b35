"""The days a report covers when a person does not say: one rule for the API, the console and
the CLI."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

REPORT_DAYS = 30
"""A report without a first day covers the 30 days up to its last."""


def report_days(
    now: datetime, time_zone: str, first: date | None, last: date | None
) -> tuple[date, date]:
    """From ``first`` to ``last``; by default the last 30 days up to today in the account's
    time zone (``now``: the stack's clock). A last day too near the year 1 to have 30 days
    before it starts the range on itself."""
    last = last or now.astimezone(ZoneInfo(time_zone)).date()
    if first is None:
        try:
            first = last - timedelta(days=REPORT_DAYS - 1)
        except OverflowError:  # --to 0001-01-05
            first = last
    return first, last
