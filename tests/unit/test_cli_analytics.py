"""`tsunagu analytics query` without a runtime: where it finds the files, how it answers, and
what it says when it cannot."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from tests.conftest import TEMPLATE, load_event
from tsunagu.analytics.rows import COLUMNS, encode_row, row_from_record
from tsunagu.cli import main
from tsunagu.cli_analytics import athena_names
from tsunagu_local.firehose import ParquetDestination
from tsunagu_local.intrinsics import Resolver

DESTINATION = {
    "Prefix": "events/date=!{partitionKeyFromQuery:date}/",
    "ProcessingConfiguration": {
        "Processors": [
            {
                "Type": "MetadataExtraction",
                "Parameters": [
                    {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{date: .date}"}
                ],
            }
        ]
    },
}


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    """A runtime's state folder after the sample stream batch was exported."""
    analytics = tmp_path / ".tsunagu" / "analytics"
    columns = [(c.name, c.type) for c in COLUMNS]
    destination = ParquetDestination.from_configuration(analytics, DESTINATION, columns)
    rows = [row_from_record(r) for r in load_event("report_events", "stream_batch")["Records"]]
    destination.put([encode_row(row) for row in rows if row])
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["analytics", "query", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_it_finds_the_runtimes_files_from_a_subfolder_and_prints_a_table(
    exported: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (exported / "src").mkdir()
    monkeypatch.chdir(exported / "src")
    code, out, _ = run(capsys, "SELECT type, change, date FROM events ORDER BY sequence_number")
    assert code == 0
    assert out.splitlines() == [
        "type          change  date",
        "------------  ------  ----------",
        "page_view     insert  2026-11-24",
        "link_clicked  insert  2026-11-24",
        "link_clicked  modify  2026-11-24",
        "(3 rows)",
    ]


def test_csv_and_json_keep_types_readable(
    exported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = str(exported / ".tsunagu" / "analytics")
    sql = (
        "SELECT occurred_at, automated, reasons FROM events WHERE type = 'link_clicked' "
        "ORDER BY sequence_number"
    )
    code, out, _ = run(capsys, sql, "--dir", folder, "--format", "csv")
    assert code == 0
    assert out.splitlines() == [
        "occurred_at,automated,reasons",
        "2026-11-24T01:00:05.120000+00:00,false,[]",
        '2026-11-24T01:00:05.120000+00:00,true,"[""link_burst""]"',
    ]
    code, out, _ = run(capsys, sql, "--dir", folder, "--format", "json")
    answer: list[dict[str, Any]] = json.loads(out)
    assert answer[1] == {
        "occurred_at": "2026-11-24T01:00:05.120000+00:00",
        "automated": True,
        "reasons": ["link_burst"],
    }


def test_csv_writes_a_visitors_formula_as_text_and_numbers_as_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a page view whose campaign a visitor wrote (?utm_campaign==HYPERLINK(...))
    analytics = tmp_path / "analytics"
    columns = [(c.name, c.type) for c in COLUMNS]
    destination = ParquetDestination.from_configuration(analytics, DESTINATION, columns)
    rows = [row_from_record(r) for r in load_event("report_events", "stream_batch")["Records"]]
    [page_view] = [row for row in rows if row and row["type"] == "page_view"]
    page_view["utm_campaign"] = '=HYPERLINK("https://evil.example.com","x")'
    destination.put([encode_row(page_view)])
    # When the query's answer is saved as CSV (a PIVOT makes a column of a visitor's value too)
    sql = "SELECT utm_campaign, -1 * count(*) AS change FROM events GROUP BY utm_campaign"
    code, out, _ = run(capsys, sql, "--dir", str(analytics), "--format", "csv")
    pivoted = "PIVOT events ON utm_campaign USING count(*) GROUP BY type"
    _, columns_out, _ = run(capsys, pivoted, "--dir", str(analytics), "--format", "csv")
    # Then the spreadsheet shows the formula as text, and a negative count is still a number
    assert code == 0
    assert list(csv.reader(io.StringIO(out))) == [
        ["utm_campaign", "change"],
        ["'" + page_view["utm_campaign"], "-1"],
    ]
    header = next(csv.reader(io.StringIO(columns_out)))
    assert header == ["type", "'" + page_view["utm_campaign"]]


def test_athenas_day_of_week_runs_here(exported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 2026-11-24 is a Tuesday: 2 in Athena (ISO, Monday 1)
    folder = str(exported / ".tsunagu" / "analytics")
    sql = (
        "SELECT DISTINCT day_of_week(occurred_at AT TIME ZONE 'Asia/Tokyo') AS d, "
        "hour(occurred_at AT TIME ZONE 'Asia/Tokyo') AS h FROM events WHERE type = 'page_view'"
    )
    code, out, _ = run(capsys, sql, "--dir", folder, "--format", "csv")
    assert (code, out.splitlines()) == (0, ["d,h", "2,9"])


def test_bad_sql_prints_duckdbs_message_and_exits_2(
    exported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "SELEC 1", "--dir", str(exported / ".tsunagu" / "analytics"))
    assert (code, out) == (2, "")
    assert err.startswith("tsunagu: the query failed: Parser Error") and "Traceback" not in err


def test_no_events_yet_and_no_runtime_are_said_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".tsunagu" / "analytics").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "SELECT 1")
    assert code == 1 and "no events have been exported to" in err
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, _, err = run(capsys, "SELECT 1", "--dir", str(elsewhere))
    assert code == 1 and "no events have been exported" in err


def test_with_a_stack_it_names_the_athena_workgroup_and_table_the_template_makes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["--stack", "tsunagu-dev", "analytics", "query", "SELECT 1"])
    _, err = capsys.readouterr()
    assert code == 1
    assert "workgroup tsunagu-dev-analytics" in err and "tsunagu_dev.events" in err
    # the names the template gives them for that stack
    resources = yaml_parse(TEMPLATE.read_text("utf-8"))["Resources"]
    resolver = Resolver(parameters={"AWS::StackName": "tsunagu-dev"}, conditions={})
    database = resolver.resolve(resources["AnalyticsDatabase"]["Properties"]["DatabaseInput"])
    workgroup = resolver.resolve(resources["AnalyticsWorkGroup"]["Properties"]["Name"])
    table = resources["AnalyticsEventsTable"]["Properties"]["TableInput"]["Name"]
    assert athena_names("tsunagu-dev") == (workgroup, database["Name"])
    assert table == "events"
