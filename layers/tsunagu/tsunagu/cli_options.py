"""The CLI's option types shared by its commands: a count or a limit is a whole number of at
least 1, checked where argparse reads it. A negative ``--limit`` must be refused, not read as
"nothing" or clamped to one entry, or sliced into "all but the last five"."""

from __future__ import annotations

import argparse


def _whole(text: str, least: int) -> int:
    try:
        value: int | None = int(text)
    except ValueError:
        value = None
    if value is None or value < least:
        raise argparse.ArgumentTypeError(f"give a whole number of {least} or more, not {text}")
    return value


def positive(text: str) -> int:
    """A count, a limit or a version: 1, 2, 3, ..."""
    return _whole(text, 1)


def at_least_zero(text: str) -> int:
    """How many, where none is meaningful (rows to print, days or seconds back)."""
    return _whole(text, 0)


def counted(count: int, thing: str, things: str | None = None) -> str:
    """``count`` of ``thing``, its thousands marked: "1 row", "2 rows", "1,000 leads"."""
    return f"{count:,} {thing if count == 1 else (things or thing + 's')}"
