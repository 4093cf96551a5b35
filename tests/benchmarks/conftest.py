"""The benchmarks: reports, not timed tests (see tests/support/bench_report.py for how their
lines reach the end of the run).

Under pytest-xdist they all run on one worker, one after another: each compares figures taken
inside its own run, and two benchmarks measuring at once would only add noise to each other.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.xdist_group("benchmarks"))
