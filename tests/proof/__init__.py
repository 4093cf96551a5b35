"""``make proof``: the product tried with tools written by others and under load, faults and
hostile input, on the embedded local runtime, each section printing the figures it measured.

Each section is a module with ``run(quick=..., workdir=...) -> ProofResult``. ``make proof`` runs
them all at full size (``python -m tests.proof``); ``make test`` runs a short form of each
(``tests/proof/test_proof.py``), so a regression shows in the everyday suite too. A section never
passes on a wall-clock time: its figures are counts (requests, 5xx, duplicates, lost steps) and,
where the issue asks, memory and seconds that are printed, not asserted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SECTIONS = ("api", "admin_api", "load", "faults", "consent", "static")
"""Section name -> module ``tests.proof.<name>``, in the order ``make proof`` runs them."""
SHORT_FORM_SECTIONS = SECTIONS
"""What ``make test`` runs in short: every section."""


@dataclass
class ProofResult:
    """What one section measured: the lines of its report, and what did not hold."""

    title: str
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def line(self, text: str) -> None:
        self.lines.append(text)

    def fail(self, text: str) -> None:
        self.failures.append(text)

    def report(self) -> str:
        verdict = "held" if self.ok else "DID NOT HOLD"
        body = [f"== {self.title}: {verdict}", *(f"  {line}" for line in self.lines)]
        body += [f"  FAILED: {failure}" for failure in self.failures]
        return "\n".join(body)
