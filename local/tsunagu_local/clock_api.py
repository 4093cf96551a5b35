"""``/_local/clock``: read the runtime's clock, and in virtual time say how far it may go.

``GET`` answers the clock's state. ``POST`` with one of

- ``{"to": "2026-12-08T10:00:00+09:00"}`` - advance to that instant;
- ``{"by": "3d"}`` - advance by a duration (``90s``, ``15m``, ``6h``, ``3d``, ``2w`` or seconds);
- ``{"business_days": 3}`` - to the same local time on the third business day from today (the
  runtime's calendar: ``BusinessCountry``'s holidays, ``CompanyClosedDays``, weekends, in
  ``DefaultTimeZone``);
- ``{"until_idle": true}`` - until nothing is left to happen by itself;
- ``{"settle": true}`` - only wait for the work in flight, time standing still;

and an optional ``"timeout"`` (real seconds to wait for the work to settle, default 120). It
answers once everything due on the way has happened, each at its own simulated instant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.wrappers import Request, Response

from tsunagu.clock import parse_instant
from tsunagu.journeys.business_time import BusinessCalendar
from tsunagu_local.clocks import AdvanceTimedOut, RuntimeClock, VirtualClock

DEFAULT_TIMEOUT_SECONDS = 120.0
MAX_TIMEOUT_SECONDS = 3600.0
MAX_BODY_BYTES = 4096
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ClockRequestError(ValueError):
    """A request the clock cannot follow; answered 400 (or 409) with its message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_duration(value: Any) -> timedelta:
    """``90`` or ``"90s"``, ``"15m"``, ``"6h"``, ``"3d"``, ``"2w"``."""
    if isinstance(value, bool):
        raise ClockRequestError("a duration is a number of seconds or a text like 3d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value.lower())):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ClockRequestError(f"not a duration: {value!r} (use 90s, 15m, 6h, 3d or 2w)")
    if seconds <= 0 or seconds > 5 * 365 * 86400:
        raise ClockRequestError("a duration must be more than 0 and at most five years")
    return timedelta(seconds=seconds)


def business_days_ahead(
    now: datetime, count: Any, calendar: BusinessCalendar, time_zone: str
) -> datetime:
    """The same local time on the ``count``-th business day after today."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 260:
        raise ClockRequestError("business_days is a whole number from 1 to 260")
    local = now.astimezone(ZoneInfo(time_zone))
    day = calendar.add_business_days(local.date(), count)
    return datetime.combine(day, local.timetz())


def target_of(
    request: dict[str, Any], now: datetime, calendar: BusinessCalendar, time_zone: str
) -> datetime | str:
    """The instant a request asks for, or "until_idle" / "settle"."""
    asked = [key for key in ("to", "by", "business_days", "until_idle", "settle") if key in request]
    unknown = sorted(
        set(request) - {"to", "by", "business_days", "until_idle", "settle", "timeout"}
    )
    if unknown:
        raise ClockRequestError(f"unknown field(s): {', '.join(unknown)}")
    if len(asked) != 1:
        raise ClockRequestError("say one of: to, by, business_days, until_idle, settle")
    key = asked[0]
    value = request[key]
    if key == "to":
        if not isinstance(value, str):
            raise ClockRequestError("to is an ISO-8601 instant")
        try:
            instant = parse_instant(value)
        except ValueError:
            raise ClockRequestError(f"not an ISO-8601 instant: {value!r}") from None
        if instant < now:
            raise ClockRequestError(
                f"time does not go back: the clock is at {now.isoformat()}", status=409
            )
        return instant
    if key == "by":
        return now + parse_duration(value)
    if key == "business_days":
        return business_days_ahead(now, value, calendar, time_zone)
    if value is not True:
        raise ClockRequestError(f"{key} takes true")
    return str(key)


def clock_page(
    clock: RuntimeClock, calendar: BusinessCalendar, time_zone: str
) -> Callable[[Request], Response]:
    def describe() -> dict[str, Any]:
        return dict(clock.describe())

    def handle(request: Request) -> Response:
        if request.method == "GET":
            return _json(200, describe())
        if request.method != "POST":
            return _json(405, {"message": "GET or POST"})
        try:
            if not isinstance(clock, VirtualClock):
                raise ClockRequestError(
                    "the clock is scaled (wall time x scale): only a runtime started with"
                    " --virtual-time can be moved",
                    status=409,
                )
            if (request.content_length or 0) > MAX_BODY_BYTES:
                raise ClockRequestError("the request is too large", status=413)
            try:
                body = json.loads(request.get_data(cache=False) or b"{}")
            except ValueError:
                raise ClockRequestError("the body is not JSON") from None
            if not isinstance(body, dict):
                raise ClockRequestError("the body is a JSON object")
            timeout = body.get("timeout", DEFAULT_TIMEOUT_SECONDS)
            if isinstance(timeout, bool) or not isinstance(timeout, int | float):
                raise ClockRequestError("timeout is a number of real seconds")
            timeout = min(max(float(timeout), 0.1), MAX_TIMEOUT_SECONDS)
            target = target_of(body, clock.now(), calendar, time_zone)
        except ClockRequestError as error:
            return _json(error.status, {"message": str(error)})
        try:
            if target == "until_idle":
                clock.run_until_idle(timeout)
            elif target == "settle":
                clock.settle(timeout)
            else:
                assert isinstance(target, datetime)
                clock.advance_to(target, timeout)
        except AdvanceTimedOut as error:
            return _json(504, {"message": str(error), **describe()})
        return _json(200, describe())

    return handle


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")
