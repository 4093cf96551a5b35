"""Runtimes started one after another in one process (the benchmarks start one per module) each
begin with nothing of the one before: moto keeps its state in the process, not in its server,
and its classes are patched once per process, each runtime bringing its own clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.runtime import FIXTURE_STACK, physical_name
from tsunagu_local.runtime import LocalRuntime, RuntimeOptions

LEDGER = physical_name("LedgerTable")
SOURCE = physical_name("SourceTable")
CLOCK_START = datetime(2026, 12, 1, tzinfo=UTC)


def started(
    state: Path, *, virtual_time: bool = True, clock_start: datetime = CLOCK_START
) -> LocalRuntime:
    runtime = LocalRuntime(
        RuntimeOptions(
            template=FIXTURE_STACK / "template.yaml",
            state_dir=state,
            api_port=0,
            persist=False,
            virtual_time=virtual_time,
            clock_start=clock_start if virtual_time else None,
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


def test_a_second_runtime_in_the_same_process_runs_on_its_own_clock(tmp_path: Path) -> None:
    # Given a runtime started and stopped in this process, then a second one whose clock starts
    # a day later
    started(tmp_path / "first").stop()
    later = CLOCK_START + timedelta(days=1)
    second = started(tmp_path / "second", clock_start=later)
    try:
        # When a state machine that waits a minute runs on the second until idle, and a mail is
        # sent there
        stepfunctions = second.client("stepfunctions")
        definition = {
            "StartAt": "Wait",
            "States": {"Wait": {"Type": "Wait", "Seconds": 60, "End": True}},
        }
        machine = stepfunctions.create_state_machine(
            name="waits-a-minute",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/fixture",
        )["stateMachineArn"]
        execution = stepfunctions.start_execution(
            stateMachineArn=machine, name="on-the-second", input="{}"
        )["executionArn"]
        assert second.clock is not None
        second.clock.run_until_idle(60)  # type: ignore[attr-defined]
        described = stepfunctions.describe_execution(executionArn=execution)
        clock = second.clock.describe()
        second.client("ses").send_email(
            Source="sender@example.com",
            Destination={"ToAddresses": ["lead@example.jp"]},
            Message={"Subject": {"Data": "Hello"}, "Body": {"Text": {"Data": "Hi"}}},
        )
        [mail] = second.mailbox.sent_mail()
    finally:
        second.stop()
    # Then the execution ran on the second runtime's clock, a minute long, and that clock
    # settled with no work left counted (not on the first, stopped, clock)
    assert described["status"] == "SUCCEEDED"
    assert (described["startDate"], described["stopDate"]) == (later, later + timedelta(minutes=1))
    assert (clock["now"], clock["work_in_flight"]) == ("2026-12-02T00:01:00Z", 0)
    # ... and the mail is stamped with it too
    assert mail.sent_at == "2026-12-02T00:01:00.000Z"


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
