"""Runtimes started one after another in one process (the benchmarks start one per module) each
begin with nothing of the one before: moto keeps its state in the process, not in its server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.runtime import FIXTURE_STACK, physical_name
from tsunagu_local.runtime import LocalRuntime, RuntimeOptions

LEDGER = physical_name("LedgerTable")
SOURCE = physical_name("SourceTable")


def started(state: Path, *, virtual_time: bool = True) -> LocalRuntime:
    runtime = LocalRuntime(
        RuntimeOptions(
            template=FIXTURE_STACK / "template.yaml",
            state_dir=state,
            api_port=0,
            persist=False,
            virtual_time=virtual_time,
            clock_start=datetime(2026, 12, 1, tzinfo=UTC) if virtual_time else None,
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


def test_waiting_for_the_streams_in_scaled_time_returns_once_the_record_is_delivered(
    tmp_path: Path,
) -> None:
    # Given a scaled-time runtime whose stream consumer waits up to a second to fill a batch
    runtime = started(tmp_path / "scaled", virtual_time=False)
    try:
        # When a record is written and the streams are waited for
        runtime.client("dynamodb").put_item(
            TableName=SOURCE, Item={"pk": {"S": "waited"}, "sk": {"S": "00"}}
        )
        runtime.wait_for_streams(timeout=60)
        # Then the consumer has had it already (not a guess at how long a delivery takes)
        ledger = runtime.client("dynamodb").scan(TableName=LEDGER)["Items"]
    finally:
        runtime.stop()
    delivered = [k["S"] for i in ledger if i["pk"]["S"] == "delivery" for k in i["keys"]["L"]]
    assert delivered == ["waited/00"]
