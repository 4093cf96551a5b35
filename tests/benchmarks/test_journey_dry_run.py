"""How long the dry run takes: seminar_follow_up over Golden Week 2027 for 1,000 synthetic leads
(the journeys-as-data issue's goal: under 60 s on this machine), as `tsunagu journeys simulate`
runs it, in a fresh interpreter (imports included, as the marketer waits for them too).

A report, not a timed test: the figure and its ratio to the goal are printed; what the run
computes is asserted in tests/unit/test_journey_simulation.py.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.support.bench_report import BenchReport

ROOT = Path(__file__).resolve().parents[2]
TITLE = "journey dry run: seminar_follow_up, Golden Week 2027, 1,000 synthetic leads"
GOAL_SECONDS = 60.0
COMMAND = [
    sys.executable,
    "-m",
    "tsunagu.cli",
    "journeys",
    "simulate",
    str(ROOT / "journeys" / "seminar_follow_up.json"),
    "--start",
    "2027-04-28",
    "--leads",
    "1000",
    "--assume",
    "click=0.3,open=0.5,attend=0.1",
]


def test_journey_dry_run(bench_report: BenchReport) -> None:
    started = time.perf_counter()
    done = subprocess.run(COMMAND, capture_output=True, text=True, timeout=600, check=False)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    assert "dry run of seminar_follow_up: 1000 synthetic leads" in done.stdout
    summary = [line for line in done.stdout.splitlines() if line.startswith("state transitions")]
    bench_report.add(
        TITLE,
        f"`tsunagu journeys simulate ... --leads 1000`: {seconds:.1f} s in a fresh interpreter"
        f" (goal: under {GOAL_SECONDS:.0f} s; {seconds / GOAL_SECONDS:.2f} of it)",
        *summary,
    )
