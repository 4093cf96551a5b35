"""Benchmarks are reports, not timed tests: they collect lines and print them at the end.

pytest captures what a test prints, so each benchmark adds its lines to one session-wide
``BenchReport`` (the ``bench_report`` fixture) and ``pytest_terminal_summary`` prints them after the
run, with ``-q`` too. Nothing here passes or fails on a wall-clock time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest


@dataclass
class BenchReport:
    """Report sections in the order the benchmarks ran: title, then lines."""

    sections: dict[str, list[str]] = field(default_factory=dict)

    def section(self, title: str) -> list[str]:
        return self.sections.setdefault(title, [])

    def add(self, title: str, *lines: str) -> None:
        self.section(title).extend(lines)


REPORT_KEY = pytest.StashKey[BenchReport]()


@pytest.fixture(scope="session")
def bench_report(pytestconfig: pytest.Config) -> BenchReport:
    report = pytestconfig.stash.get(REPORT_KEY, None)
    if report is None:
        report = pytestconfig.stash[REPORT_KEY] = BenchReport()
    return report


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
