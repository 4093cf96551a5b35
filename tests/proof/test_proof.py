"""The short form of ``make proof`` inside ``make test``: every section at a small size, so that
what the full run proves cannot break unnoticed between two proof runs."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.proof import SHORT_FORM_SECTIONS, ProofResult
from tests.support.bench_report import BenchReport


@pytest.mark.parametrize("section", SHORT_FORM_SECTIONS)
def test_proof_section_holds_in_its_short_form(
    section: str, tmp_path: Path, bench_report: BenchReport
) -> None:
    module = importlib.import_module(f"tests.proof.{section}")
    result: ProofResult = module.run(quick=True, workdir=tmp_path)
    bench_report.add(f"make proof, short form: {result.title}", *result.lines)
    assert result.ok, result.report()
