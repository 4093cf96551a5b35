"""The one clock the domain reads "now" from.

In AWS it is the system clock. The embedded runtime and the tests can start it at a chosen instant
and run it faster (``time_scale`` simulated seconds per real second); the runtime's Step Functions
Wait states follow the same clock, so a "next business day" lands on the simulated day.
"""

from __future__ import annotations

import time
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


def isoformat(instant: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a Z: the one timestamp format in storage."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{instant.microsecond // 1000:03d}Z"
    )


def clock_from(clock_start: str | None, clock_epoch: float | None, scale: float) -> Clock:
    if clock_start is None:
        return SystemClock()
    return ScaledClock(parse_instant(clock_start), clock_epoch or time.time(), scale)
