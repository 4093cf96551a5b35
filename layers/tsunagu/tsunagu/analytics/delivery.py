"""Rows to a Firehose delivery stream, within PutRecordBatch's limits, retrying only what failed.

PutRecordBatch takes at most 500 records and 4 MiB per call, and answers per record: a call can
succeed while some of its records failed (throttled, an internal error). Only those are sent
again, a few times with a growing pause; what still fails is reported back, per stream record,
so that the stream consumer reports it as a batch item failure and Lambda delivers it again
(then parks it in the dead-letter queue). Firehose delivers at least once, and so does a retried
stream batch: a row may arrive twice, identical, which queries take as one (see rows.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tsunagu.analytics.rows import UnreadableRecord, encode_row, row_from_record

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1000 * 1024
"""Firehose's limit for one record (before base64)."""
ATTEMPTS = 4
FIRST_PAUSE_SECONDS = 0.2


class FirehoseClient(Protocol):
    """What this needs of boto3's firehose client."""

    def put_record_batch(
        self, *, DeliveryStreamName: str, Records: list[dict[str, bytes]]
    ) -> Any: ...


@dataclass(frozen=True)
class Outgoing:
    """One row on its way, and the stream record it came from."""

    key: str
    """The stream record's sequence number (the item identifier Lambda retries from)."""
    data: bytes


def calls(rows: Sequence[Outgoing]) -> Iterator[list[Outgoing]]:
    """The rows in order, in calls of at most 500 records and 4 MiB."""
    call: list[Outgoing] = []
    size = 0
    for row in rows:
        full = len(call) == MAX_RECORDS_PER_CALL or size + len(row.data) > MAX_BYTES_PER_CALL
        if call and full:
            yield call
            call, size = [], 0
        call.append(row)
        size += len(row.data)
    if call:
        yield call


def deliver(
    rows: Sequence[Outgoing],
    *,
    client: FirehoseClient,
    stream: str,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = ATTEMPTS,
) -> set[str]:
    """Put every row; returns the keys of the rows that could not be delivered."""
    failed: set[str] = {row.key for row in rows if len(row.data) > MAX_RECORD_BYTES}
    pending = [row for row in rows if row.key not in failed]
    pause = FIRST_PAUSE_SECONDS
    for attempt in range(attempts):
        if not pending:
            break
        if attempt:
            sleep(pause)
            pause *= 2
        retry: list[Outgoing] = []
        for call in calls(pending):
            try:
                answer = client.put_record_batch(
                    DeliveryStreamName=stream, Records=[{"Data": row.data} for row in call]
                )
            except Exception:
                # The whole call failed after botocore's own retries (throttled, unavailable):
                # each of its rows is tried again.
                retry.extend(call)
                continue
            if not answer.get("FailedPutCount"):
                continue
            responses = answer.get("RequestResponses") or []
            retry.extend(
                row
                for row, response in zip(call, responses, strict=True)
                if response.get("ErrorCode")
            )
        pending = retry
    return failed | {row.key for row in pending}


def export_records(
    records: Sequence[dict[str, Any]],
    *,
    client: FirehoseClient,
    stream: str,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """A DynamoDB stream batch to the delivery stream, one row per INSERT or MODIFY; returns
    the sequence numbers of the records not delivered, in the batch's order. A record that is
    no stored event is one of them: retrying will not help, but Lambda then parks it in the
    dead-letter queue, where it can be seen, rather than dropping it here."""
    outgoing: list[Outgoing] = []
    failed: set[str] = set()
    order: list[str] = []
    for record in records:
        key = str((record.get("dynamodb") or {}).get("SequenceNumber", ""))
        order.append(key)
        try:
            row = row_from_record(record)
        except UnreadableRecord:
            failed.add(key)
            continue
        if row is not None:
            outgoing.append(Outgoing(key, encode_row(row)))
    failed |= deliver(outgoing, client=client, stream=stream, sleep=sleep)
    return [key for key in order if key in failed]
