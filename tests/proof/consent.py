"""The consent property at scale: no mail reaches an address that is opted out or suppressed at
that moment, and no marketing mail goes without consent, over 10,000 generated sequences.

The property is ``tests/unit/test_mail_property.py`` (the everyday suite runs 200 sequences).
This section runs the same test in a pytest subprocess with ``TSUNAGU_PROPERTY_EXAMPLES`` raised
and reads Hypothesis's own statistics for the number of sequences it really ran, so the figure
printed is what was tried, not what was asked for.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.proof import ProofResult

PROPERTY = (
    "tests/unit/test_mail_property.py::"
    "test_no_mail_reaches_an_address_opted_out_or_suppressed_at_that_moment"
)
FULL_EXAMPLES = 10_000
QUICK_EXAMPLES = 500
STATISTICS = re.compile(r"(\d+) passing, (\d+) failing, and (\d+) invalid")


def run(*, quick: bool, workdir: Path) -> ProofResult:
    asked = QUICK_EXAMPLES if quick else FULL_EXAMPLES
    result = ProofResult("consent property (generated sequences of consent, bounces and sends)")
    environment = {**os.environ, "TSUNAGU_PROPERTY_EXAMPLES": str(asked)}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            PROPERTY,
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            f"--basetemp={workdir / 'pytest'}",
            "--hypothesis-show-statistics",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    output = completed.stdout + completed.stderr
    counts = STATISTICS.search(output)
    if counts is None:
        result.fail(f"Hypothesis printed no statistics (exit {completed.returncode}):\n{output}")
        return result
    passing, failing, invalid = (int(n) for n in counts.groups())
    result.line(f"sequences asked for: {asked:,}; run: {passing + failing:,}")
    result.line(f"passing {passing:,}, failing {failing}, invalid (filtered out) {invalid}")
    if completed.returncode != 0 or failing:
        result.fail(f"the property failed (exit {completed.returncode}):\n{output[-4000:]}")
    if passing < asked:
        result.fail(f"only {passing:,} sequences passed of the {asked:,} asked for")
    return result
