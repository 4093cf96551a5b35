"""The days a report covers when a person does not say: one rule for the API and the CLI."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from tsunagu.reports.ranges import report_days

# 2026-12-01 20:00 UTC is already 2 December in Tokyo
NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)


def test_by_default_a_report_covers_the_30_days_up_to_today_where_the_account_is() -> None:
    assert report_days(NOW, "Asia/Tokyo", None, None) == (date(2026, 11, 3), date(2026, 12, 2))
    assert report_days(NOW, "UTC", None, None) == (date(2026, 11, 2), date(2026, 12, 1))


def test_the_days_a_person_gives_are_the_report_s() -> None:
    given = (date(2026, 4, 1), date(2026, 4, 30))
    assert report_days(NOW, "Asia/Tokyo", *given) == given
    assert report_days(NOW, "Asia/Tokyo", None, date(2026, 4, 30))[0] == date(2026, 4, 1)


def test_a_last_day_with_no_30_days_before_it_starts_the_range_on_itself() -> None:
    # (--to 0001-01-05 was a traceback in the CLI)
    last = date(1, 1, 5)
    assert report_days(NOW, "Asia/Tokyo", None, last) == (last, last)


def test_the_cli_takes_the_same_range(monkeypatch: pytest.MonkeyPatch) -> None:
    from tsunagu import cli_reports, services

    class Clock:
        def now(self) -> datetime:
            return NOW

    monkeypatch.setattr(services, "clock", lambda settings: Clock())
    settings = argparse.Namespace(default_time_zone="Asia/Tokyo")
    asked = argparse.Namespace(since=None, to="0001-01-05")
    assert cli_reports._range(settings, asked) == (date(1, 1, 5), date(1, 1, 5))  # type: ignore[arg-type]
    asked = argparse.Namespace(since=None, to=None)
    assert cli_reports._range(settings, asked) == report_days(NOW, "Asia/Tokyo", None, None)  # type: ignore[arg-type]


def test_the_day_index_is_trusted_from_the_utc_day_that_starts_a_day_or_more_after_now() -> None:
    from tsunagu.reports.counters import day_bounds, events_indexed_from

    # At 20:00 UTC (05:00 on 2 December in Tokyo): old functions and skewed instants have
    # a day to pass, so from 3 December UTC; just after midnight UTC, from the day after next
    assert events_indexed_from(NOW) == "2026-12-03"
    assert events_indexed_from(datetime(2026, 12, 1, 0, 0, tzinfo=UTC)) == "2026-12-03"
    # A Japanese day is read from the index once its first instant is on or after that day
    first, _ = day_bounds(date(2026, 12, 3), date(2026, 12, 3), ZoneInfo("Asia/Tokyo"))
    assert first == "2026-12-02T15:00:00.000Z" and not first >= "2026-12-03"
    first, _ = day_bounds(date(2026, 12, 4), date(2026, 12, 4), ZoneInfo("Asia/Tokyo"))
    assert first >= "2026-12-03"
