"""The console's build (console/dist, made by `make console`): what the first screen loads,
gzipped, against the issue's budget of 250 KB, and every other screen's own chunk. A size, not
a time: the same on every machine, so the budget is also asserted."""

from __future__ import annotations

import gzip
import re

from tests.conftest import ROOT
from tests.support.bench_report import BenchReport

DIST = ROOT / "console" / "dist"
BUDGET_KB = 250.0


def gzipped_kb(data: bytes) -> float:
    return len(gzip.compress(data, compresslevel=9)) / 1024


def test_the_first_screen_loads_at_most_250_kb_of_gzipped_javascript(
    bench_report: BenchReport,
) -> None:
    page = (DIST / "index.html").read_text("utf-8")
    entry = re.findall(r'<script type="module" crossorigin src="/console/(assets/[^"]+\.js)"', page)
    preloaded = re.findall(r'<link rel="modulepreload" crossorigin href="/console/([^"]+)"', page)
    first = [DIST / name for name in entry + preloaded]
    assert entry, "index.html names no entry script: build with `make console`"
    first_kb = sum(gzipped_kb(path.read_bytes()) for path in first)
    chunks = sorted(
        (path for path in (DIST / "assets").glob("*.js") if path not in first),
        key=lambda path: path.name,
    )
    lines = [
        f"first screen (sign-in, lead list): {first_kb:.1f} KB gzipped JavaScript"
        f" ({first_kb / BUDGET_KB:.2f} of the {BUDGET_KB:.0f} KB budget)",
        "  later screens, each loaded when opened:",
        *(
            f"    {path.name.split('-')[0]:<16} {gzipped_kb(path.read_bytes()):6.1f} KB"
            for path in chunks
        ),
    ]
    bench_report.add("console build: gzipped JavaScript per screen", *lines)
    assert first_kb <= BUDGET_KB
    assert len(chunks) >= 7  # every screen but the first is its own chunk
