"""The local runtime's Firehose for a delivery stream that converts to Parquet
(tsunagu_local.firehose): what report_events puts on it lands as Firehose would land it - one
Parquet file per day's prefix, with the Glue table's columns and types - and what Firehose
could not convert goes to the error prefix."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
from moto import mock_aws
from samtranslator.yaml_helper import yaml_parse

from tests.conftest import TEMPLATE, load_event
from tsunagu.analytics.delivery import export_records
from tsunagu.analytics.rows import COLUMNS
from tsunagu_local import firehose
from tsunagu_local.firehose import ParquetDestination, partition_query
from tsunagu_local.template import TemplateError

REGION = "ap-northeast-1"
COLUMN_TYPES = [(c.name, c.type) for c in COLUMNS]


def template_destination() -> dict[str, Any]:
    """The ExtendedS3 configuration of template.yaml's delivery stream, as written there."""
    resources = yaml_parse(TEMPLATE.read_text("utf-8"))["Resources"]
    destination: dict[str, Any] = resources["EventsDeliveryStream"]["Properties"][
        "ExtendedS3DestinationConfiguration"
    ]
    return destination


def read(folder: Path, sql: str) -> list[tuple[Any, ...]]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    files = str(folder / "events" / "*" / "*.parquet")
    rows: list[tuple[Any, ...]] = connection.execute(
        sql.replace("FILES", f"read_parquet('{files}', hive_partitioning = true)")
    ).fetchall()
    return rows


def test_the_stream_batch_lands_as_parquet_with_the_glue_tables_types(tmp_path: Path) -> None:
    # Given the template's delivery stream, emulated in moto with the local patch
    firehose.install()
    with mock_aws():
        client: Any = boto3.client("firehose", region_name=REGION)
        destination = {
            **template_destination(),
            "BucketARN": "arn:aws:s3:::analytics",
            "RoleARN": "arn:aws:iam::123456789012:role/delivery",
        }
        destination.pop("CloudWatchLoggingOptions")
        destination["DataFormatConversionConfiguration"].pop("SchemaConfiguration")
        client.create_delivery_stream(
            DeliveryStreamName="events", ExtendedS3DestinationConfiguration=destination
        )
        firehose.register(
            "events", ParquetDestination.from_configuration(tmp_path, destination, COLUMN_TYPES)
        )
        try:
            # When report_events' delivery puts the sample batch on it, through boto3
            batch = load_event("report_events", "stream_batch")["Records"]
            assert export_records(batch, client=client, stream="events") == []
        finally:
            firehose.forget("events")
    # Then the rows are Parquet in their day's folder (the expiry is no row)
    (day,) = (tmp_path / "events").iterdir()
    assert day.name == "date=2026-11-24"
    assert [p.name for p in day.iterdir()] == ["part-00001.parquet"]
    rows = read(
        tmp_path,
        "SELECT type, change, automated, reasons, occurred_at, utm_campaign, date FROM FILES "
        "ORDER BY sequence_number",
    )
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("page_view", "insert", None, None),
        ("link_clicked", "insert", False, []),
        ("link_clicked", "modify", True, ["link_burst"]),
    ]
    assert rows[0][4].isoformat() == "2026-11-24T00:58:00+00:00"
    assert rows[0][5] == "winter"
    # with the columns in the table's order and types (a Glue timestamp is an instant)
    described = read(tmp_path, "DESCRIBE SELECT * EXCLUDE (date) FROM FILES")
    canonical = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}
    assert [(r[0], r[1]) for r in described] == [
        (name, canonical.get(t, t))
        for name, t in ((n, firehose.duckdb_type(k)) for n, k in COLUMN_TYPES)
    ]
    assert dict(described_types := [(r[0], r[1]) for r in described])["occurred_at"] == (
        "TIMESTAMP WITH TIME ZONE"
    )
    assert dict(described_types)["reasons"] == "VARCHAR[]"


def test_files_are_numbered_on_and_unreadable_records_go_to_the_error_prefix(
    tmp_path: Path,
) -> None:
    destination = ParquetDestination.from_configuration(
        tmp_path, template_destination(), COLUMN_TYPES
    )
    row = {"event_id": "e1", "type": "x", "occurred_at": "2026-12-04T00:00:00.000Z"}
    good = json.dumps({**row, "date": "2026-12-04"}).encode()
    destination.put([good])
    destination.put([good, b"not json", json.dumps(row).encode()])  # no date: no partition
    folder = tmp_path / "events" / "date=2026-12-04"
    assert sorted(p.name for p in folder.iterdir()) == ["part-00001.parquet", "part-00002.parquet"]
    # and a value the column's type cannot take fails conversion, as in Firehose
    wrong = json.dumps({**row, "date": "2026-12-05", "template_version": "not a number"})
    destination.put([wrong.encode()])
    assert not list(tmp_path.glob("events/date=2026-12-05/*.parquet"))
    errors = sorted((tmp_path / "errors" / "format-conversion-failed").rglob("*.json"))
    kept = [json.loads(line) for f in errors for line in f.read_text().splitlines()]
    assert [base64.b64decode(k["rawData"]) for k in kept] == [
        b"not json",
        json.dumps(row).encode(),
        (wrong + "\n").encode(),
    ]
    # A restarted runtime goes on numbering where the folder left off
    again = ParquetDestination.from_configuration(tmp_path, template_destination(), COLUMN_TYPES)
    again.put([good])
    assert (folder / "part-00003.parquet").exists()


def test_a_partition_value_cannot_leave_the_bucket(tmp_path: Path) -> None:
    destination = ParquetDestination.from_configuration(
        tmp_path / "bucket", template_destination(), COLUMN_TYPES
    )
    destination.put([json.dumps({"event_id": "e", "date": "../../escape"}).encode()])
    assert not (tmp_path / "escape").exists()
    assert list((tmp_path / "bucket" / "errors").rglob("*.json"))


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("{date: .date}", {"date": "date"}),
        ("{ day:.date , kind: .type }", {"day": "date", "kind": "type"}),
    ],
)
def test_the_jq_queries_the_runtime_evaluates(query: str, keys: dict[str, str]) -> None:
    assert partition_query(query) == keys


@pytest.mark.parametrize("query", ["{date: .occurred_at[0:10]}", ".date", "{date: .a.b}"])
def test_other_jq_is_refused_at_start_with_a_clear_message(query: str) -> None:
    with pytest.raises(TemplateError, match="only"):
        partition_query(query)
