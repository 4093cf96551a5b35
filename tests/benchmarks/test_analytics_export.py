"""The Parquet export's rows per second on the local path: 20,000 events as DynamoDB stream
records, in batches of 500 (Firehose's most per call), flattened to rows
(tsunagu.analytics.delivery.export_records) and written as Parquet as the local runtime's
Firehose writes them (tsunagu_local.firehose, DuckDB), with the Glue table's columns from
template.yaml; then the README's query over the result.

A report, never an assertion on time: the figures are printed with the machine's load as it is.
What is asserted is that every row landed, once, in its day's folder.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from tests.conftest import ROOT
from tests.support.bench_report import BenchReport
from tsunagu.analytics.delivery import export_records
from tsunagu.analytics.query import run_query
from tsunagu.analytics.rows import COLUMNS, row_from_record
from tsunagu_local.firehose import ParquetDestination

TITLE = "analytics export: the Parquet export's rows per second (local path)"
EVENTS = 20_000
BATCH = 500
DAYS = 10
START = datetime(2026, 12, 1, tzinfo=UTC)
DESTINATION = {
    "Prefix": "events/date=!{partitionKeyFromQuery:date}/",
    "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
    "ProcessingConfiguration": {
        "Enabled": True,
        "Processors": [
            {
                "Type": "MetadataExtraction",
                "Parameters": [
                    {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{date: .date}"}
                ],
            }
        ],
    },
}


def event_properties(n: int, kind: str) -> dict[str, Any]:
    properties: dict[str, Any] = {"message_id": f"msg_{n // 4:06d}"}
    if kind == "mail_sent":
        journey = {"journey_id": "welcome_nurture", "journey_version": 3, "node": "welcome"}
        mail = {"template_id": "welcome", "template_version": 2, "topic": "marketing"}
        return properties | journey | mail | {"subject": "ようこそ"}
    if kind in ("mail_opened", "link_clicked"):
        automated = n % 20 == 2  # every fifth click (and open) a scanner's
        return properties | {
            "automated": automated,
            "reasons": ["scanner_agent"] if automated else [],
            "link_id": "l1",
            "url": "https://www.example.com/pricing",
            "signals": {"user_agent": "Mozilla/5.0", "ip": "198.51.100.7"},
        }
    return {
        "site_id": "demo",
        "path": "/pricing",
        "url": "https://www.example.com/pricing",
        "utm": {"source": "newsletter", "campaign": "winter"},
    }


def stream_records() -> list[dict[str, Any]]:
    """Per lead a journey's mail, an open, a click and a page view, spread over ten days."""
    serialize = TypeSerializer().serialize
    records = []
    for n in range(EVENTS):
        kind = ("mail_sent", "mail_opened", "link_clicked", "page_view")[n % 4]
        at = START + timedelta(seconds=n * (DAYS * 86400 // EVENTS))
        occurred = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        item = {
            "subject": f"lead#lead_{n // 4:06d}",
            "sk": f"{occurred}#evt_{n:08d}",
            "event_id": f"evt_{n:08d}",
            "type": kind,
            "occurred_at": occurred,
            "lead_id": f"lead_{n // 4:06d}",
            "properties": event_properties(n, kind),
        }
        records.append(
            {
                "eventName": "INSERT",
                "dynamodb": {
                    "SequenceNumber": str(10**20 + n),
                    "NewImage": {k: serialize(v) for k, v in item.items()},
                },
            }
        )
    return records


class LocalFirehose:
    """PutRecordBatch as the local runtime answers it (tsunagu_local.firehose), in-process."""

    def __init__(self, destination: ParquetDestination) -> None:
        self.destination = destination
        self.calls = 0

    def put_record_batch(self, *, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> Any:
        self.calls += 1
        self.destination.put([r["Data"] for r in Records])
        return {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "r"} for _ in Records]}


def readme_query() -> str:
    section = (ROOT / "README.md").read_text("utf-8").split("\n## Analytics with SQL\n", 1)[1]
    return re.findall(r"```sql\n(.*?)```", section, re.DOTALL)[0]


def test_parquet_export_rows_per_second(bench_report: BenchReport, tmp_path: Path) -> None:
    records = stream_records()
    columns = [(c.name, c.type) for c in COLUMNS]
    destination = ParquetDestination.from_configuration(tmp_path, DESTINATION, columns)
    firehose = LocalFirehose(destination)

    started = time.perf_counter()
    flattened = [row_from_record(r) for r in records]
    flattening = time.perf_counter() - started

    started = time.perf_counter()
    for start in range(0, EVENTS, BATCH):
        failed = export_records(records[start : start + BATCH], client=firehose, stream="events")
        assert failed == []
    exporting = time.perf_counter() - started

    files = sorted(tmp_path.glob("events/date=*/*.parquet"))
    size = sum(f.stat().st_size for f in files)
    started = time.perf_counter()
    counted = run_query(
        tmp_path, "SELECT count(*), count(DISTINCT event_id), count(DISTINCT date) FROM events"
    )
    counting = time.perf_counter() - started
    assert counted.rows == [(EVENTS, EVENTS, DAYS)]
    assert len(flattened) == EVENTS
    started = time.perf_counter()
    answer = run_query(tmp_path, readme_query())
    querying = time.perf_counter() - started
    assert sum(row[2] for row in answer.rows) == EVENTS // 4 - EVENTS // 20  # people's clicks

    bench_report.add(
        TITLE,
        f"{EVENTS:,} events in stream batches of {BATCH} ({firehose.calls} PutRecordBatch calls),"
        f" {DAYS} days",
        f"flattening alone (record -> row):      {EVENTS / flattening:>10,.0f} rows/s",
        f"flattening + Parquet files (DuckDB):   {EVENTS / exporting:>10,.0f} rows/s"
        f"  ({exporting:.2f} s)",
        f"files: {len(files)} ({len(files) // DAYS} per day), {size / 1024:,.0f} KiB,"
        f" {size / EVENTS:.0f} bytes per row",
        f"count(*) over them: {counting * 1000:.0f} ms;"
        f" the README's query: {querying * 1000:.0f} ms",
        "In AWS Firehose buffers 15 minutes or 128 MB per day: far fewer, larger files.",
    )
