"""``tsunagu clock show|advance``: the local runtime's clock, and moving it in virtual time.

A runtime started with ``--virtual-time`` stands still until told how far it may go; each
``advance`` returns once everything due on the way has happened at its own simulated instant
(a journey's next-business-morning mail, a click deadline running out).
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import Any

from tsunagu import services
from tsunagu.clock import isoformat
from tsunagu.settings import Settings


class ClockCliError(Exception):
    """Printed without a traceback by the CLI's main."""


def _call(url: str, body: dict[str, Any] | None, timeout: float) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - the runtime's loopback URL (RemoteClock checks)
        url,
        data=data,
        headers={"content-type": "application/json"},
        method="POST" if data else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer: dict[str, Any] = json.load(response)
            return answer
    except urllib.error.HTTPError as error:
        with error:
            message = json.load(error).get("message", error.reason)
        raise ClockCliError(message) from None
    except urllib.error.URLError as error:
        raise ClockCliError(f"the local runtime does not answer at {url}: {error.reason}") from None


def _print_state(state: dict[str, Any]) -> None:
    print(f"now\t{state['now']}\t({state['mode']})")
    for key in ("next_due", "timers", "work_in_flight", "jumps", "scale"):
        if state.get(key) is not None:
            print(f"{key}\t{state[key]}")


def clock_show(settings: Settings, args: argparse.Namespace) -> int:
    if settings.clock_url:
        _print_state(_call(settings.clock_url, None, timeout=10))
        return 0
    now = isoformat(services.clock(settings).now())
    mode = "scaled" if settings.clock_start else "system"
    _print_state(
        {"now": now, "mode": mode, "scale": settings.time_scale if mode == "scaled" else None}
    )
    return 0


def clock_advance(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.clock_url:
        raise ClockCliError(
            "only a local runtime in virtual time can be moved: make up ARGS=--virtual-time"
        )
    body: dict[str, Any] = {"timeout": args.timeout}
    if args.to:
        body["to"] = args.to
    elif args.by:
        body["by"] = args.by
    elif args.business_days is not None:
        body["business_days"] = args.business_days
    else:
        body["until_idle"] = True
    _print_state(_call(settings.clock_url, body, timeout=args.timeout + 10))
    return 0


def add_clock_commands(groups: Any) -> None:
    clock = groups.add_parser("clock", help="the local runtime's clock (virtual time: move it)")
    commands = clock.add_subparsers(dest="command", required=True)
    commands.add_parser("show", help="what time it is, and what is due next").set_defaults(
        run=clock_show
    )
    advance = commands.add_parser(
        "advance", help="let virtual time run; everything due on the way happens in order"
    )
    how_far = advance.add_mutually_exclusive_group(required=True)
    how_far.add_argument("--to", help="to this instant (ISO-8601, e.g. 2026-12-08T10:00+09:00)")
    how_far.add_argument("--by", help="by a duration: 90s, 15m, 6h, 3d, 2w")
    how_far.add_argument(
        "--business-days", type=int, help="to the same local time N business days from today"
    )
    how_far.add_argument(
        "--until-idle", action="store_true", help="until nothing is left to happen by itself"
    )
    advance.add_argument(
        "--timeout", type=float, default=300.0, help="real seconds to wait (default 300)"
    )
    advance.set_defaults(run=clock_advance)
