"""``python -m tests.proof [--quick] [section ...]``: run the proof sections and print each
report; exit 1 if any did not hold. ``make proof`` calls it with every section at full size."""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

from tests.proof import SECTIONS, ProofResult


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make proof", description=__doc__)
    parser.add_argument("sections", nargs="*", help=f"some of: {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="the short form make test runs")
    options = parser.parse_args(argv)
    unknown = sorted(set(options.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"no such section: {', '.join(unknown)} (sections: {', '.join(SECTIONS)})")
    results: list[tuple[ProofResult, float]] = []
    with tempfile.TemporaryDirectory(prefix="tsunagu-proof-") as scratch:
        for name in options.sections or SECTIONS:
            module = importlib.import_module(f"tests.proof.{name}")
            started = time.monotonic()
            workdir = Path(scratch) / name
            workdir.mkdir()
            result: ProofResult = module.run(quick=options.quick, workdir=workdir)
            elapsed = time.monotonic() - started
            results.append((result, elapsed))
            print(result.report(), f"\n  ({elapsed:.0f} s)\n", flush=True)
    print("make proof:")
    for result, elapsed in results:
        verdict = "held" if result.ok else "DID NOT HOLD"
        print(f"  {result.title:<60} {verdict:<13} {elapsed:>6.0f} s")
    return 0 if all(result.ok for result, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
