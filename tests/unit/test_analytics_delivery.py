"""The analytics export's delivery to Firehose: PutRecordBatch's limits, and only failed records
sent again."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.conftest import load_event
from tsunagu.analytics.delivery import (
    MAX_BYTES_PER_CALL,
    MAX_RECORDS_PER_CALL,
    Outgoing,
    deliver,
    export_records,
)


class FakeFirehose:
    """Records every call; ``refuse`` says which records (by data) fail in which call."""

    def __init__(self, refuse: Callable[[int, bytes], str | None] = lambda call, data: None):
        self.calls: list[list[bytes]] = []
        self.refuse = refuse
        self.raise_on: set[int] = set()

    def put_record_batch(self, *, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> Any:
        assert DeliveryStreamName == "events"
        number = len(self.calls)
        self.calls.append([r["Data"] for r in Records])
        assert len(Records) <= MAX_RECORDS_PER_CALL
        assert sum(len(r["Data"]) for r in Records) <= MAX_BYTES_PER_CALL
        if number in self.raise_on:
            raise ConnectionError("the endpoint did not answer")
        responses = []
        for record in Records:
            error = self.refuse(number, record["Data"])
            responses.append(
                {"ErrorCode": error, "ErrorMessage": "slow down"}
                if error
                else {"RecordId": f"r{number}"}
            )
        return {
            "FailedPutCount": sum(1 for r in responses if "ErrorCode" in r),
            "RequestResponses": responses,
        }


def rows(count: int, size: int = 10) -> list[Outgoing]:
    return [Outgoing(str(n), f"{n:>{size}}".encode()) for n in range(count)]


def no_sleep(pauses: list[float]) -> Callable[[float], None]:
    return pauses.append


def test_a_thousand_and_one_rows_take_three_calls_of_at_most_500() -> None:
    firehose = FakeFirehose()
    failed = deliver(rows(1001), client=firehose, stream="events", sleep=no_sleep([]))
    assert failed == set()
    assert [len(c) for c in firehose.calls] == [500, 500, 1]
    # in order, each row once
    assert [d for call in firehose.calls for d in call] == [r.data for r in rows(1001)]


def test_large_rows_are_cut_into_calls_of_at_most_4_mib() -> None:
    # Given 20 rows of 900 KiB each (18 MiB): no more than 4 fit in 4 MiB
    firehose = FakeFirehose()
    big = rows(20, size=900 * 1024)
    assert deliver(big, client=firehose, stream="events", sleep=no_sleep([])) == set()
    assert [len(c) for c in firehose.calls] == [4, 4, 4, 4, 4]


def test_only_the_records_that_failed_are_sent_again() -> None:
    # Given Firehose throttles rows 3 and 7 in the first call only
    def refuse(call: int, data: bytes) -> str | None:
        return "ServiceUnavailableException" if call == 0 and data.strip() in (b"3", b"7") else None

    firehose = FakeFirehose(refuse)
    pauses: list[float] = []
    failed = deliver(rows(10), client=firehose, stream="events", sleep=no_sleep(pauses))
    # Then the second call carries just those two, after one pause, and nothing failed
    assert failed == set()
    assert [[d.strip() for d in call] for call in firehose.calls[1:]] == [[b"3", b"7"]]
    assert len(pauses) == 1


def test_records_that_keep_failing_are_reported_after_the_last_attempt() -> None:
    firehose = FakeFirehose(lambda call, data: "InternalFailure" if data.strip() == b"2" else None)
    pauses: list[float] = []
    failed = deliver(rows(5), client=firehose, stream="events", sleep=no_sleep(pauses), attempts=4)
    assert failed == {"2"}
    assert [len(c) for c in firehose.calls] == [5, 1, 1, 1]
    assert pauses == [0.2, 0.4, 0.8]  # growing pauses between attempts


def test_a_call_that_raises_is_tried_again_whole() -> None:
    firehose = FakeFirehose()
    firehose.raise_on = {0}
    failed = deliver(rows(3), client=firehose, stream="events", sleep=no_sleep([]))
    assert failed == set()
    assert firehose.calls[0] == firehose.calls[1]


def test_a_record_over_firehoses_limit_is_reported_without_a_call() -> None:
    firehose = FakeFirehose()
    oversized = [Outgoing("big", b"x" * (1000 * 1024 + 1)), *rows(2)]
    assert deliver(oversized, client=firehose, stream="events", sleep=no_sleep([])) == {"big"}
    assert [len(c) for c in firehose.calls] == [2]


def test_a_stream_batch_reports_what_was_not_delivered_by_sequence_number() -> None:
    # Given the sample batch (a page view, a click, its re-judgement, an expiry), and Firehose
    # refusing the re-judged click every time
    batch = load_event("report_events", "stream_batch")["Records"]

    def refuse(call: int, data: bytes) -> str | None:
        return "InternalFailure" if json.loads(data)["change"] == "modify" else None

    firehose = FakeFirehose(refuse)
    failed = export_records(batch, client=firehose, stream="events", sleep=no_sleep([]))
    # Then three rows were sent (the expiry is no row), and the MODIFY is reported
    assert len(firehose.calls[0]) == 3
    assert failed == ["100000000000000000013"]


def test_an_unreadable_record_is_reported_and_the_rest_delivered() -> None:
    batch = load_event("report_events", "stream_batch")["Records"]
    del batch[0]["dynamodb"]["NewImage"]
    firehose = FakeFirehose()
    failed = export_records(batch, client=firehose, stream="events", sleep=no_sleep([]))
    assert failed == ["100000000000000000011"]
    assert len(firehose.calls) == 1 and len(firehose.calls[0]) == 2
