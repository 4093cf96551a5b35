"""Benchmarks are reports, not timed tests: they collect lines and print them at the end.

pytest captures what a test prints, so each benchmark adds its lines to one session-wide
``BenchReport`` (the ``bench_report`` fixture) and ``pytest_terminal_summary`` prints them after the
run, with ``-q`` too. Nothing here passes or fails on a wall-clock time.

``make test`` runs the suite on several pytest-xdist workers. A worker's report would die with
the worker, so each worker hands its sections to the controller in ``workeroutput`` (xdist's
channel for exactly this), and the controller, which prints the summary, merges them. This module
is loaded as a plugin from the top-level conftest, because the controller collects no tests and
so never loads ``tests/benchmarks/conftest.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest

WORKER_OUTPUT_KEY = "tsunagu_bench_report"
QUICK = os.environ.get("TSUNAGU_BENCH_QUICK") == "1"
"""Set by ``make test``: a benchmark that repeats a measurement many times for a stable median
takes fewer samples (and says so in its report), so the suite stays within its time budget.
``make bench`` takes the full count."""


@dataclass
class BenchReport:
    """Report sections in the order the benchmarks ran: title, then lines."""

    sections: dict[str, list[str]] = field(default_factory=dict)

    def section(self, title: str) -> list[str]:
        return self.sections.setdefault(title, [])

    def add(self, title: str, *lines: str) -> None:
        self.section(title).extend(lines)


REPORT_KEY = pytest.StashKey[BenchReport]()


def report_of(config: pytest.Config) -> BenchReport:
    report = config.stash.get(REPORT_KEY, None)
    if report is None:
        report = config.stash[REPORT_KEY] = BenchReport()
    return report


@pytest.fixture(scope="session")
def bench_report(pytestconfig: pytest.Config) -> BenchReport:
    return report_of(pytestconfig)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker: hand the sections to the controller."""
    worker_output: dict[str, Any] | None = getattr(session.config, "workeroutput", None)
    report = session.config.stash.get(REPORT_KEY, None)
    if worker_output is not None and report is not None and report.sections:
        worker_output[WORKER_OUTPUT_KEY] = report.sections


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """On the xdist controller: take in what a worker measured."""
    sections: dict[str, list[str]] = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY, {})
    report = report_of(node.config)
    for title, lines in sections.items():
        report.add(title, *lines)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    report = config.stash.get(REPORT_KEY, None)
    if report is None or not report.sections:
        return
    for title, lines in report.sections.items():
        terminalreporter.write_sep("=", f"benchmark: {title}")
        for line in lines:
            terminalreporter.write_line(line)
