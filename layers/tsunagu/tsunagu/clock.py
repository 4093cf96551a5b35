"""The one clock the domain reads "now" from.

In AWS it is the system clock. The embedded runtime has two more: scaled (starts at a chosen
instant and runs ``time_scale`` simulated seconds per real second, for demos) and virtual (stands
still while work is in flight and jumps to the next due instant when told how far it may go, for
tests; see tsunagu_local.clocks). The runtime's Step Functions Wait states follow the same clock,
so a "next business day" lands on the simulated day.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ScaledClock:
    """Simulated time: ``start`` at real time ``epoch``, advancing ``scale`` times faster."""

    def __init__(self, start: datetime, epoch: float, scale: float = 1.0) -> None:
        if start.tzinfo is None:
            raise ValueError("clock start must be timezone-aware")
        self.start = start.astimezone(UTC)
        self.epoch = epoch
        self.scale = scale

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.time() - self.epoch) * self.scale)

    def real_seconds_until(self, instant: datetime) -> float:
        """Real seconds to sleep until the simulated ``instant`` (never negative)."""
        return max(0.0, (instant - self.now()).total_seconds() / self.scale)


class FixedClock:
    """A clock that moves only when told to; for tests."""

    def __init__(self, instant: datetime) -> None:
        self.instant = instant.astimezone(UTC)

    def now(self) -> datetime:
        return self.instant

    def advance(self, **delta: float) -> None:
        self.instant += timedelta(**delta)


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant; a value without an offset is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


EARLIEST_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(2100, 1, 1, tzinfo=UTC)
"""Instants a client may name. Nothing a marketing tool records happened before 2000, and
the bounds keep every conversion (to UTC, to a lead's time zone) inside the calendar."""

_RFC_3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})"
)
"""The API document's ``format: date-time``: a date, a time and the offset, nothing else (not a
Unix time, not a space for the T)."""


def client_instant(value: object) -> datetime:
    """A date-time a client sends: RFC 3339 text with its UTC offset, between 2000 and 2099.
    ValueError, saying what it must be, for anything else."""
    if not isinstance(value, str) or not _RFC_3339.fullmatch(value):
        raise ValueError("must be a date-time text with its offset, like 2026-12-03T10:00:00+09:00")
    try:
        # fromisoformat reads at most six digits of a fraction and no lower-case t or z.
        whole, dot, fraction = value.upper().partition(".")
        digits = re.match(r"\d*", fraction)
        cut = digits.group() if digits else ""
        instant = datetime.fromisoformat(whole + dot + cut[:6] + fraction[len(cut) :])
    except ValueError as error:
        raise ValueError(f"is not a date-time on the calendar ({error})") from None
    return within_the_calendar(instant)


def within_the_calendar(instant: datetime) -> datetime:
    """The instant, if a client may name it (see EARLIEST_INSTANT); ValueError if not."""
    # Aware datetimes compare through a timedelta, which never overflows, so year 1 with
    # +09:00 is compared safely here before anything converts it.
    if not EARLIEST_INSTANT <= instant < LATEST_INSTANT:
        raise ValueError("must be between 2000-01-01 and 2099-12-31 (UTC)")
    return instant


def stored_day(instant: str) -> str:
    """The UTC day (YYYY-MM-DD) of an instant as storage holds it: its text's first ten
    characters (storage holds UTC ISO-8601, see isoformat). Kept on each event
    (``occurred_day``, which the events table's ``events_by_day`` index is keyed by) and the
    analytics export's partition: read as text, so that the events of a day's index are the
    ones a comparison of ``occurred_at`` with that day's instants finds."""
    return instant[:10]


def isoformat(instant: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a Z: the one timestamp format in storage."""
    # Not strftime: its %Y gives "1" rather than "0001" for early years on Linux, and a stored
    # timestamp must sort as text.
    at = instant.astimezone(UTC)
    return (
        f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:"
        f"{at.second:02d}.{at.microsecond // 1000:03d}Z"
    )


class RemoteClock:
    """The embedded runtime's virtual clock, read over its local HTTP API (``GET /_local/clock``)
    by processes other than the runtime: the CLI and the tests. Only ever a loopback URL."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
            raise ValueError(f"the runtime's clock is on the loopback address, not {url}")
        self.url = url
        self.timeout = timeout

    def now(self) -> datetime:
        with urllib.request.urlopen(self.url, timeout=self.timeout) as response:  # noqa: S310
            return parse_instant(json.load(response)["now"])


# Inside the embedded runtime's own process, its functions read its clock object directly rather
# than over HTTP: the runtime registers it here under its URL.
_IN_PROCESS: dict[str, Clock] = {}
_IN_PROCESS_LOCK = threading.Lock()


def register_in_process(url: str, clock: Clock | None) -> None:
    with _IN_PROCESS_LOCK:
        if clock is None:
            _IN_PROCESS.pop(url, None)
        else:
            _IN_PROCESS[url] = clock


def clock_from(
    clock_start: str | None,
    clock_epoch: float | None,
    scale: float,
    clock_url: str | None = None,
) -> Clock:
    if clock_url is not None:
        with _IN_PROCESS_LOCK:
            local = _IN_PROCESS.get(clock_url)
        return local if local is not None else RemoteClock(clock_url)
    if clock_start is None:
        return SystemClock()
    return ScaledClock(parse_instant(clock_start), clock_epoch or time.time(), scale)
