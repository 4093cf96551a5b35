"""Business time: holidays, closed days, quiet hours, the lead's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from tsunagu.journeys.business_time import (
    QuietHours,
    SendTimeRule,
    business_calendar,
    closed_days_from,
    next_send_time,
    parse_quiet_hours,
    send_by,
    step_functions_timestamp,
    time_zone_or,
)

JAPAN = business_calendar("JP", "2026-12-29..2027-01-03")
QUIET = QuietHours(time(20, 0), time(8, 0))
# Friday 20 November 2026, 15:00 in Tokyo; Monday the 23rd is Labour Thanksgiving Day.
FRIDAY_AFTERNOON = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def when(rule: SendTimeRule, now: datetime, zone: str = "Asia/Tokyo") -> str:
    instant = next_send_time(rule, now=now, time_zone=zone, calendar=JAPAN, quiet=QUIET)
    return step_functions_timestamp(instant)


def test_next_business_day_skips_a_monday_holiday() -> None:
    rule = SendTimeRule(kind="next_business_day", at=time(10, 0))
    assert when(rule, FRIDAY_AFTERNOON) == "2026-11-24T01:00:00Z"  # Tuesday 10:00 JST


def test_three_business_days_later() -> None:
    rule = SendTimeRule(kind="business_days_later", days=3)
    assert when(rule, FRIDAY_AFTERNOON) == "2026-11-26T01:00:00Z"  # Tue, Wed, Thu


def test_same_day_before_the_cutoff_else_next_business_morning() -> None:
    rule = SendTimeRule(kind="same_day_or_next", cutoff=time(17, 0), at=time(10, 0))
    assert when(rule, FRIDAY_AFTERNOON) == "2026-11-20T06:00:00Z"  # now
    friday_evening = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)  # 18:30 JST
    assert when(rule, friday_evening) == "2026-11-24T01:00:00Z"


def test_a_mail_for_that_day_only_may_go_until_quiet_hours_begin() -> None:
    # Friday 15:00 JST: today, until 20:00 JST
    assert send_by(FRIDAY_AFTERNOON, "Asia/Tokyo", QUIET) == datetime(
        2026, 11, 20, 11, 0, tzinfo=UTC
    )
    # Without quiet hours: until the end of the lead's local day
    no_quiet = QuietHours(time(0, 0), time(0, 0))
    assert send_by(FRIDAY_AFTERNOON, "Asia/Tokyo", no_quiet) == datetime(
        2026, 11, 20, 14, 59, 59, tzinfo=UTC
    )
    # In New York it is Friday 01:00: quiet until 08:00, then until 20:00 that Friday
    assert send_by(FRIDAY_AFTERNOON, "America/New_York", QUIET) == datetime(
        2026, 11, 21, 1, 0, tzinfo=UTC
    )


def test_a_delay_that_lands_in_quiet_hours_or_a_weekend_moves_on() -> None:
    friday_night = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # 21:00 JST
    # Twelve hours later is Saturday 09:00: the next business morning is Tuesday 08:00
    assert when(SendTimeRule(kind="after", hours=12), friday_night) == "2026-11-23T23:00:00Z"
    tuesday_night = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # 22:00 JST
    assert when(SendTimeRule(kind="after", hours=1), tuesday_night) == "2026-11-24T23:00:00Z"


def test_the_company_new_year_break_is_not_business_time() -> None:
    monday_before = datetime(2026, 12, 28, 3, 0, tzinfo=UTC)
    assert when(SendTimeRule(kind="next_business_day"), monday_before) == "2027-01-04T01:00:00Z"


def test_the_leads_time_zone_decides_the_local_hour() -> None:
    rule = SendTimeRule(kind="next_business_day", at=time(10, 0))
    # Friday 15:00 in Tokyo is Friday 07:00 in London: Monday is a business day there, but
    # the calendar (the company's) still knows Japan's holiday
    assert when(rule, FRIDAY_AFTERNOON, "Europe/London") == "2026-11-24T10:00:00Z"


def test_never_before_now() -> None:
    rule = SendTimeRule(kind="same_day_or_next")
    assert when(rule, FRIDAY_AFTERNOON) >= step_functions_timestamp(FRIDAY_AFTERNOON)


def test_closed_day_ranges_and_quiet_hours_parse() -> None:
    days = closed_days_from("2026-08-13..2026-08-16, 2027-05-06")
    assert date(2026, 8, 14) in days and date(2027, 5, 6) in days and len(days) == 5
    with pytest.raises(ValueError):
        closed_days_from("2026-08-16..2026-08-13")
    quiet = parse_quiet_hours("21:30-07:00")
    assert quiet.contains(time(23, 0)) and quiet.contains(time(6, 59))
    assert not quiet.contains(time(12, 0))
    assert not parse_quiet_hours("").contains(time(3, 0))


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("America/New_York", "America/New_York"),
        (None, "Asia/Tokyo"),
        ("Tokyo", "Asia/Tokyo"),
        ("+09:00", "Asia/Tokyo"),
        ("America", "Asia/Tokyo"),  # a folder of zones, not one
        ("../../etc/passwd", "Asia/Tokyo"),
        ("", "Asia/Tokyo"),
        (9, "Asia/Tokyo"),
    ],
)
def test_a_time_zone_that_is_not_one_falls_back_to_the_default(given: object, used: str) -> None:
    assert time_zone_or(given, "Asia/Tokyo") == used
