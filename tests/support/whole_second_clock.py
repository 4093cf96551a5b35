"""A pytest plugin that runs tests on a clock of whole seconds:
``.venv/bin/python -m pytest -p tests.support.whole_second_clock tests/integration``.

The system clock has microseconds, so two records written one after another almost never share
a time, and code or a test that orders them by time alone passes by luck. On a clock that
moves in whole seconds (a coarse host clock, or virtual time that jumps) records of one second
share their time, and the order must come from what is made to hold it: ids made in one process
rise (tsunagu.ids), a draft's revision. Run so on 2026-12-06 and 12-07, it found a list read
newest first that could put an audit entry after the refusal it led to, a colleague's draft
buried under a publication, and tests that seeded their leads by another clock.

Only ``SystemClock`` (the clock when no virtual or scaled time is configured) is coarsened, in
the pytest process: a runtime started as a subprocess (tests/e2e) keeps its own clock.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tsunagu import clock


def _now_in_whole_seconds(self: clock.SystemClock) -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def pytest_configure(config: pytest.Config) -> None:
    clock.SystemClock.now = _now_in_whole_seconds  # type: ignore[method-assign]


def pytest_report_header() -> str:
    return "SystemClock in whole seconds (tests.support.whole_second_clock)"
