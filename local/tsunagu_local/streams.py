"""DynamoDB stream event sources, polled and delivered in batches like Lambda's pollers.

Per mapping: batches of up to BatchSize records (waiting up to MaximumBatchingWindowInSeconds to
fill one); with ReportBatchItemFailures, a batch is retried from its first failed record; a batch
that keeps failing is retried MaximumRetryAttempts times, then its first failing record is parked
in the OnFailure destination (an SQS queue) and the poller moves on.

For the virtual clock, a poller has work pending while its stream holds records it has not read
or it holds records it has not delivered (``has_pending_work``): time does not move meanwhile.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tsunagu_local import faults
from tsunagu_local.faults import Fault
from tsunagu_local.lambdas import FunctionError, LocalFunction

log = logging.getLogger("tsunagu.local.streams")

POLL_INTERVAL_SECONDS = 0.05
# Lambda retries "until the record expires" when MaximumRetryAttempts is -1; locally, stop here.
LOCAL_RETRY_CEILING = 10
_INJECTED_CRASH = {
    "errorMessage": "injected: the function failed after it had done its work",
    "errorType": "Runtime.ExitError",
}


@dataclass
class StreamMapping:
    function: LocalFunction
    stream_arn: str
    batch_size: int = 100
    batching_window: float = 0.0
    starting_position: str = "TRIM_HORIZON"
    max_retries: int = -1
    report_item_failures: bool = False
    on_failure_queue_url: str | None = None
    delivered_batches: int = 0
    parked: list[dict[str, Any]] = field(default_factory=list)


def as_lambda_json(value: Any) -> Any:
    """What Lambda puts in the event where moto keeps a Python value: epoch seconds (moto's
    times are naive UTC), base64."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot put {type(value).__name__} into a stream event")


def read_records(stream_arn: str, start: int, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` records of the stream from sequence number ``start``, as moto keeps them.

    Read in-process, not with GetRecords: moto answered each GetRecords by walking botocore's
    output shape value by value (about 80 ms for a batch of form posts' records), and it did so
    holding TABLE_LOCK, like every read, so each poll stopped every write; a fifth of the
    runtime's CPU under the load proof. It also registered a new shard iterator at every call,
    for ever. The lock is held only to take the records: moto never changes a record once made,
    and a transaction that is cancelled removes its records under the same lock, so a record
    read here is one that was committed (as GetRecords isolated it).
    """
    from tsunagu_local.transactions import TABLE_LOCK

    with TABLE_LOCK:
        shard = stream_shard(stream_arn)
        if shard is None:
            return []
        offset = max(0, start - int(shard.starting_sequence_number))
        return [record.to_json() for record in shard.items[offset : offset + limit]]


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A stream record as Lambda hands it to a function: a copy of its own (a handler may change
    it), the stream named, and the table's region (moto writes "us-east-1" into every record)."""
    event: dict[str, Any] = json.loads(json.dumps(record, default=as_lambda_json))
    event["eventSourceARN"] = stream_arn
    event["awsRegion"] = stream_arn.split(":")[3]
    return event


class StreamPoller:
    def __init__(self, mapping: StreamMapping, sqs_client: Any) -> None:
        self.mapping = mapping
        self._sqs = sqs_client
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"stream-{mapping.function.logical_id}", daemon=True
        )
        self._pending: list[dict[str, Any]] = []
        self._attempts = 0
        self._next_sequence: int | None = None
        """The first sequence number this poller has not delivered (None: not started)."""
        self._read_from = 0
        """The first sequence number this poller has not read."""
        self.readers: StreamReaders | None = None
        self.idle = threading.Event()
        self.batches_handled = 0
        """Counts every batch taken to the function (before idle can be set again): a waiter
        that saw it change while it looked saw a delivery it may have missed."""

    def start(self, starting_position: str | None = None) -> None:
        shard = stream_shard(self.mapping.stream_arn)
        if shard is None:
            raise LookupError(
                f"{self.mapping.function.logical_id}: no stream at {self.mapping.stream_arn}"
            )
        at_start = (starting_position or self.mapping.starting_position) == "TRIM_HORIZON"
        self._next_sequence = shard.starting_sequence_number if at_start else _shard_end(shard)
        self._read_from = self._next_sequence
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def delivered_mark(self) -> int | None:
        """The first sequence number this poller has not delivered (None: not started)."""
        return self._next_sequence

    def has_pending_work(self) -> bool:
        """Records written and not yet delivered (read from the stream, or not yet read)."""
        shard = stream_shard(self.mapping.stream_arn)
        if shard is None or self._next_sequence is None:
            return False
        return _shard_end(shard) > self._next_sequence

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._next_batch()
                if not batch:
                    self.idle.set()
                    self._stop.wait(POLL_INTERVAL_SECONDS)
                    continue
                self.idle.clear()
                try:
                    self._deliver(batch)
                finally:
                    self.batches_handled += 1
            except Exception:
                log.exception("stream poller for %s failed; retrying", self.mapping.function.name)
                self._stop.wait(1)

    def _read(self, limit: int) -> list[dict[str, Any]]:
        """The next records of the stream, read in-process (see ``read_records``)."""
        raw = read_records(self.mapping.stream_arn, self._read_from, limit)
        if not raw:
            return []
        self._read_from = _sequence(raw[-1]) + 1
        return [lambda_record(record, self.mapping.stream_arn) for record in raw]

    def _next_batch(self) -> list[dict[str, Any]]:
        if not self._pending and self._next_sequence is not None and not self.has_pending_work():
            # Nothing written since the last delivery: asked in-process, not by a GetRecords
            # call every 50 ms (which kept an idle runtime at a sixth of a core).
            return []
        size = self.mapping.batch_size
        batch = self._pending[:size]
        batch += self._read(size - len(batch))
        deadline = time.monotonic() + self.mapping.batching_window
        while batch and len(batch) < size and time.monotonic() < deadline:
            self._stop.wait(POLL_INTERVAL_SECONDS)
            batch += self._read(size - len(batch))
        return batch

    def _invoke(self, batch: list[dict[str, Any]]) -> Any:
        """The function's answer to the batch, with the faults injected (tsunagu_local.faults):
        all off unless the runtime was started with --faults."""
        function = self.mapping.function
        if len(batch) > 1 and faults.fires(Fault.BATCH_CRASH_PART_WAY):
            function.invoke({"Records": batch[: 1 + faults.index(len(batch) - 1)]})
            raise FunctionError(_INJECTED_CRASH)
        result = function.invoke({"Records": batch})
        if faults.fires(Fault.HANDLER_RAISES_AFTER):
            raise FunctionError(_INJECTED_CRASH)
        if self.mapping.report_item_failures and faults.fires(Fault.BATCH_PARTIAL_FAILURE):
            record = batch[faults.index(len(batch))]
            answer: dict[str, Any] = result if isinstance(result, dict) else {}
            reported = [*(answer.get("batchItemFailures") or [])]
            reported.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
            result = {**answer, "batchItemFailures": reported}
        return result

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        failed_from: int | None
        try:
            result = self._invoke(batch)
            failed_from = self._first_failure(batch, result)
        except FunctionError:
            failed_from = 0
        if failed_from is None:
            self._pending, self._attempts = [], 0
            self.mapping.delivered_batches += 1
            if faults.fires(Fault.BATCH_REDELIVERED):
                # The checkpoint was lost: the same batch comes again, from the same mark.
                self._pending = batch
                return
            self._delivered_up_to(batch, [])
            return
        # Lambda checkpoints before the first failed record and retries from there.
        self._attempts += 1
        limit = self.mapping.max_retries if self.mapping.max_retries >= 0 else LOCAL_RETRY_CEILING
        remaining = batch[failed_from:]
        if self._attempts > limit:
            self._park(remaining[0])
            remaining = remaining[1:]
            self._attempts = 0
        self._pending = remaining
        self._delivered_up_to(batch, remaining)
        self._stop.wait(min(0.1 * 2**self._attempts, 2.0))

    def _delivered_up_to(
        self, batch: list[dict[str, Any]], remaining: list[dict[str, Any]]
    ) -> None:
        """Move the delivered mark: to the first record still to deliver, else past the batch."""
        if remaining:
            self._next_sequence = _sequence(remaining[0])
        else:
            self._next_sequence = max(_sequence(r) for r in batch) + 1
        if self.readers is not None:
            self.readers.drop_delivered(self.mapping.stream_arn)

    def _first_failure(self, batch: list[dict[str, Any]], result: Any) -> int | None:
        if not self.mapping.report_item_failures or not isinstance(result, dict):
            return None
        failures = {f.get("itemIdentifier") for f in result.get("batchItemFailures") or []}
        if not failures:
            return None
        for index, record in enumerate(batch):
            if record["dynamodb"].get("SequenceNumber") in failures:
                return index
        return 0  # an identifier we did not send: Lambda treats the whole batch as failed

    def _park(self, record: dict[str, Any]) -> None:
        log.error(
            "%s: record %s failed every retry; parked",
            self.mapping.function.name,
            record["dynamodb"].get("SequenceNumber"),
        )
        self.mapping.parked.append(record)
        if self.mapping.on_failure_queue_url:
            self._sqs.send_message(
                QueueUrl=self.mapping.on_failure_queue_url,
                MessageBody=json.dumps(
                    {
                        "requestContext": {
                            "functionArn": self.mapping.function.arn,
                            "condition": "RetryAttemptsExhausted",
                        },
                        "DDBStreamBatchInfo": {
                            "streamArn": self.mapping.stream_arn,
                            "startSequenceNumber": record["dynamodb"].get("SequenceNumber"),
                            "endSequenceNumber": record["dynamodb"].get("SequenceNumber"),
                            "batchSize": 1,
                        },
                        "record": record,
                    },
                    default=str,
                ),
            )


def stream_shard(stream_arn: str) -> Any:
    """moto's shard behind a stream ARN (``arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/..``),
    read in-process: the runtime and its moto share one process."""
    from moto.dynamodb.models import dynamodb_backends

    parts = stream_arn.split(":")
    table_name = parts[5].split("/")[1]
    table = dynamodb_backends[parts[4]][parts[3]].tables.get(table_name)
    return getattr(table, "stream_shard", None)


def _sequence(record: dict[str, Any]) -> int:
    return int(record["dynamodb"]["SequenceNumber"])


def _shard_end(shard: Any) -> int:
    """The sequence number the shard's next record will get."""
    return int(shard.starting_sequence_number) + len(shard.items)


class StreamReaders:
    """The pollers reading each stream, so that records every one of them has delivered can be
    dropped from the stream.

    DynamoDB keeps a stream's records for 24 hours; moto keeps every record for as long as the
    process lives, old and new images included, so a day of demo traffic would hold every write
    of the day in memory twice. Locally nothing else reads the streams, so a record is of no
    further use once each poller of its stream has delivered it.
    """

    def __init__(self) -> None:
        self._by_stream: dict[str, list[StreamPoller]] = {}

    def add(self, poller: StreamPoller) -> None:
        self._by_stream.setdefault(poller.mapping.stream_arn, []).append(poller)
        poller.readers = self

    def drop_delivered(self, stream_arn: str) -> int:
        """Drop the records before the earliest one a poller of the stream still has to
        deliver; return how many were dropped."""
        marks = [poller.delivered_mark for poller in self._by_stream.get(stream_arn, [])]
        if not marks or any(mark is None for mark in marks):
            return 0
        from tsunagu_local.transactions import TABLE_LOCK

        shard = stream_shard(stream_arn)
        if shard is None:
            return 0
        with TABLE_LOCK:  # a transaction being cancelled cuts the stream by length
            dropped = min(int(mark) for mark in marks if mark is not None)
            dropped -= int(shard.starting_sequence_number)
            if dropped <= 0:
                return 0
            del shard.items[:dropped]
            # Sequence numbers stay as they were: the shard now starts later (its trim horizon).
            shard.starting_sequence_number += dropped
        return dropped
