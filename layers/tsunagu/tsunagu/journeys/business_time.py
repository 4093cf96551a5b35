"""When may the next mail go out? Business days, the company's closed days, quiet hours, and
the lead's own time zone.

A journey's Wait state sleeps until the instant this returns (``TimestampPath``), so "mail A the
next business day at 10:00" lands on Tuesday when Monday is a national holiday, in the lead's
time zone, and never at 3 a.m.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import BaseModel, ConfigDict, Field

# Far enough for any journey; a calendar with no business day in a year is a configuration error.
MAX_DAYS_AHEAD = 366


HOLIDAY_LANGUAGES = {"en": "en_US", "ja": "ja"}
"""The languages people read the console in, as the holidays package names them."""


@lru_cache(maxsize=16)
def _national_holidays(country: str, language: str | None = None) -> holidays.HolidayBase:
    """The country's holidays, named in ``language`` when the package has the country in it,
    else in the country's own."""
    named = HOLIDAY_LANGUAGES.get(language or "")
    supported = holidays.country_holidays(country).supported_languages
    return holidays.country_holidays(country, language=named if named in supported else None)


@dataclass(frozen=True)
class BusinessCalendar:
    country: str = "JP"
    """National holidays of this country (ISO 3166 code; Japan by default)."""
    closed_days: frozenset[date] = field(default_factory=frozenset)
    """The company's own closed days: summer holidays, the new-year break."""
    workdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    """Monday = 0."""

    def is_business_day(self, day: date) -> bool:
        return (
            day.weekday() in self.workdays
            and day not in self.closed_days
            and day not in _national_holidays(self.country)
        )

    def days_off(self, first: date, last: date, language: str | None = None) -> dict[date, str]:
        """The national holidays (by their names in ``language``, ``en`` or ``ja``, else in the
        calendar's own: 元日, 成人の日...) and the company's closed days (``closed``) from
        ``first`` to ``last``, weekends aside."""
        national = _national_holidays(self.country, language)
        off: dict[date, str] = {}
        day = first
        while day <= last:
            if day in national:
                off[day] = str(national.get(day))
            elif day in self.closed_days:
                off[day] = "closed"
            day += timedelta(days=1)
        return off

    def first_business_day_from(self, day: date) -> date:
        for offset in range(MAX_DAYS_AHEAD):
            candidate = day + timedelta(days=offset)
            if self.is_business_day(candidate):
                return candidate
        raise ValueError(f"no business day within {MAX_DAYS_AHEAD} days of {day}")

    def add_business_days(self, day: date, count: int) -> date:
        current = day
        for _ in range(count):
            current = self.first_business_day_from(current + timedelta(days=1))
        return current


def closed_days_from(text: str) -> frozenset[date]:
    """``2026-08-13..2026-08-16, 2026-12-29..2027-01-03, 2027-05-06`` as a set of days."""
    days: set[date] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        first, _, last = part.partition("..")
        start, end = date.fromisoformat(first), date.fromisoformat(last or first)
        if end < start:
            raise ValueError(f"{part!r}: the range ends before it starts")
        days.update(start + timedelta(days=n) for n in range((end - start).days + 1))
    return frozenset(days)


@dataclass(frozen=True)
class QuietHours:
    """No mail from ``start`` to ``end`` local time (across midnight when start > end)."""

    start: time = time(20, 0)
    end: time = time(8, 0)

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


class SendTimeRule(BaseModel):
    """What a journey asks for, as the state machine passes it to next_send_time."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["next_business_day", "business_days_later", "same_day_or_next", "after"]
    at: time = time(10, 0)
    """Local time of day to send at (all kinds but ``after``)."""
    days: int = Field(default=1, ge=0, le=60)
    """For business_days_later."""
    cutoff: time = time(17, 0)
    """For same_day_or_next: before this, today; from it on, the next business day."""
    hours: float = Field(default=0, ge=0, le=24 * 90)
    """For after: this long from now, then moved into business time if it lands outside."""
    only_that_day: bool = False
    """The mail makes sense only on the day it is scheduled for ("thank you for attending
    today"): next_send_time also answers ``send_by``, which the gate honours under every resume
    policy and every deferral."""


def _allowed(moment: datetime, calendar: BusinessCalendar, quiet: QuietHours) -> datetime:
    """The first moment at or after ``moment`` (local) on a business day, outside quiet hours."""
    for _ in range(MAX_DAYS_AHEAD):
        if not calendar.is_business_day(moment.date()):
            day = calendar.first_business_day_from(moment.date())
            moment = datetime.combine(day, quiet.end, moment.tzinfo)
            continue
        if quiet.contains(moment.timetz().replace(tzinfo=None)):
            day = moment.date() if moment.time() < quiet.end else moment.date() + timedelta(days=1)
            moment = datetime.combine(day, quiet.end, moment.tzinfo)
            continue
        return moment
    raise ValueError("no allowed send time within a year")


def next_send_time(
    rule: SendTimeRule,
    *,
    now: datetime,
    time_zone: str,
    calendar: BusinessCalendar,
    quiet: QuietHours,
) -> datetime:
    """The instant (UTC) the journey should send at; never before ``now``."""
    zone = ZoneInfo(time_zone)
    local_now = now.astimezone(zone)
    today = local_now.date()
    if rule.kind == "next_business_day":
        target = datetime.combine(calendar.add_business_days(today, 1), rule.at, zone)
    elif rule.kind == "business_days_later":
        target = datetime.combine(calendar.add_business_days(today, rule.days), rule.at, zone)
    elif rule.kind == "same_day_or_next":
        if calendar.is_business_day(today) and local_now.time() < rule.cutoff:
            target = local_now
        else:
            day = calendar.add_business_days(today, 1)
            target = datetime.combine(day, rule.at, zone)
    else:
        target = local_now + timedelta(hours=rule.hours)
    allowed = _allowed(max(target, local_now), calendar, quiet)
    return allowed.astimezone(UTC).replace(microsecond=0)


def send_by(send_at: datetime, time_zone: str, quiet: QuietHours) -> datetime:
    """The last moment a mail scheduled for ``send_at`` still goes on its own local day: when
    quiet hours begin that evening, or at the end of the day without quiet hours (UTC)."""
    zone = ZoneInfo(time_zone)
    local = send_at.astimezone(zone)
    end_of_day = datetime.combine(local.date(), time(23, 59, 59), zone)
    evening_quiet = quiet.start != quiet.end and quiet.start > local.timetz().replace(tzinfo=None)
    last = datetime.combine(local.date(), quiet.start, zone) if evening_quiet else end_of_day
    return last.astimezone(UTC)


def first_allowed_moment(
    instant: datetime, *, time_zone: str, calendar: BusinessCalendar, quiet: QuietHours
) -> datetime:
    """``instant`` if mail may go then, else the first business-time moment after it (UTC)."""
    allowed = _allowed(instant.astimezone(ZoneInfo(time_zone)), calendar, quiet)
    return whole_second_at_or_after(allowed.astimezone(UTC))


def whole_second_at_or_after(instant: datetime) -> datetime:
    """Rounded up, never down: a Wait until a truncated time would wake before the moment it
    waits for, and the gate would defer again."""
    if instant.microsecond:
        instant = instant.replace(microsecond=0) + timedelta(seconds=1)
    return instant


def step_functions_timestamp(instant: datetime) -> str:
    """The form a Wait state's TimestampPath accepts: ``2026-11-24T01:00:00Z``."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_quiet_hours(text: str) -> QuietHours:
    """``20:00-08:00``; an empty text means no quiet hours."""
    if not text.strip():
        return QuietHours(time(0, 0), time(0, 0))
    start, _, end = text.partition("-")
    return QuietHours(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()))


def is_time_zone(name: object) -> bool:
    """Whether ``name`` is a time zone ZoneInfo knows (``Asia/Tokyo``; not ``Tokyo``, not
    ``+09:00``): a lead's ``time_zone`` is free text from a form, an import or a journey."""
    if not isinstance(name, str) or not name or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def time_zone_or(name: object, default: str) -> str:
    """``name`` when it is a time zone, else ``default``, logged: a lead whose time zone cannot
    be read waits in the stack's time, rather than failing its execution at the first wait."""
    if name is None or is_time_zone(name):
        return str(name) if name is not None else default
    from tsunagu.observability import logger

    logger.warning("unknown time zone, the default used", extra={"time_zone": str(name)[:64]})
    return default


def business_calendar(
    country: str, closed: str, workdays: Iterable[int] = range(5)
) -> BusinessCalendar:
    return BusinessCalendar(country, closed_days_from(closed), frozenset(workdays))
