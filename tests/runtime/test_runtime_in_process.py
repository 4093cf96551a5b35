"""Runtimes started one after another in one process (the benchmarks start one per module) each
begin with nothing of the one before: moto keeps its state in the process, not in its server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.runtime import FIXTURE_STACK, physical_name
from tsunagu_local.runtime import LocalRuntime, RuntimeOptions

LEDGER = physical_name("LedgerTable")


def started(state: Path) -> LocalRuntime:
    runtime = LocalRuntime(
        RuntimeOptions(
            template=FIXTURE_STACK / "template.yaml",
            state_dir=state,
            api_port=0,
            persist=False,
            virtual_time=True,
            clock_start=datetime(2026, 12, 1, tzinfo=UTC),
        )
    )
    runtime.start()
    return runtime


def test_a_second_runtime_in_the_same_process_starts_afresh(tmp_path: Path) -> None:
    first = started(tmp_path / "first")
    try:
        first.client("dynamodb").put_item(
            TableName=LEDGER, Item={"pk": {"S": "from-the-first"}, "sk": {"S": "1"}}
        )
    finally:
        first.stop()
    second = started(tmp_path / "second")
    try:
        items = second.client("dynamodb").scan(TableName=LEDGER)["Items"]
    finally:
        second.stop()
    assert items == []
