"""SQL over the exported events, locally: DuckDB on the Parquet files the local runtime writes
where Firehose would (``<state>/analytics/events/date=YYYY-MM-DD/*.parquet``).

The files are read as one view, ``events``, with hive partitioning, so ``date`` is a column as
the Glue table's partition key is in Athena. The session is in UTC (as Athena's is), and a few
of Athena's functions that DuckDB names differently are defined as macros, so that a query
written for Athena runs here unchanged (the README's query runs in both).

DuckDB is a development dependency (as the local runtime is): it is imported when a query runs,
never by deployed code.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tsunagu.analytics.rows import PARTITION_KEY
from tsunagu.text import spreadsheet_safe

EVENTS_VIEW = "events"
EVENTS_PREFIX = "events"
"""The folder (prefix) under the bucket that holds the rows, one folder per day below it."""
ATHENA_FUNCTIONS = (
    # Athena's ISO day of the week: 1 is Monday, 7 is Sunday.
    "CREATE MACRO day_of_week(t) AS isodow(t)",
)
FORMATS = ("table", "csv", "json")


class AnalyticsError(Exception):
    """Something the user can act on; the CLI prints it without a traceback."""


class QueryFailed(AnalyticsError):
    """DuckDB refused the SQL: its message says why."""


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def _duckdb() -> Any:
    try:
        return importlib.import_module("duckdb")
    except ImportError:
        raise AnalyticsError(
            "DuckDB is not installed here; it comes with the development environment "
            "(`make .venv/.installed`, or `pip install duckdb`)"
        ) from None


def parquet_files(folder: Path) -> list[Path]:
    return sorted((folder / EVENTS_PREFIX).glob(f"{PARTITION_KEY.name}=*/*.parquet"))


def run_query(folder: Path, sql: str) -> Result:
    """Run ``sql`` over the view ``events`` of the Parquet files under ``folder``."""
    if not parquet_files(folder):
        raise AnalyticsError(
            f"no events have been exported to {folder} yet: the local runtime writes them "
            "there as the events stream delivers them (submit a form, then try again)"
        )
    duckdb = _duckdb()
    connection = duckdb.connect(":memory:")
    try:
        connection.execute("SET TimeZone = 'UTC'")
        for macro in ATHENA_FUNCTIONS:
            connection.execute(macro)
        pattern = str(folder / EVENTS_PREFIX / f"{PARTITION_KEY.name}=*" / "*.parquet")
        # A view cannot take parameters: the path is ours, quoted as SQL quotes text.
        quoted = pattern.replace("'", "''")
        connection.execute(
            f"CREATE VIEW {EVENTS_VIEW} AS SELECT * FROM read_parquet('{quoted}', "  # noqa: S608
            f"hive_partitioning = true, hive_types = {{'{PARTITION_KEY.name}': 'VARCHAR'}}, "
            "union_by_name = true)"
        )
        try:
            cursor = connection.execute(sql)
            columns = [d[0] for d in cursor.description or []]
            rows = [tuple(row) for row in cursor.fetchall()] if columns else []
        except duckdb.Error as error:
            raise QueryFailed(str(error)) from None
        return Result(columns, rows)
    finally:
        connection.close()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _cell(value: Any) -> str:
    plain = _plain(value)
    if plain is None:
        return ""
    if isinstance(plain, (list, dict)):
        return json.dumps(plain, ensure_ascii=False)
    if isinstance(plain, bool):
        return "true" if plain else "false"
    return str(plain)


def formatted(result: Result, how: str) -> str:
    """The result as an aligned table, CSV (a header line, then the rows) or a JSON array."""
    if how == "json":
        objects = [dict(zip(result.columns, map(_plain, row), strict=True)) for row in result.rows]
        return json.dumps(objects, ensure_ascii=False, indent=2)
    if how == "csv":
        # A visitor writes the utm_* values, page addresses and referrers (and a PIVOT makes
        # column names of them): a CSV saved from here and opened in a spreadsheet must not run
        # ?utm_campaign==HYPERLINK(...) as a formula, as no CSV Tsunagu writes does.
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([spreadsheet_safe(c) for c in result.columns])
        writer.writerows([spreadsheet_safe(_cell(v)) for v in row] for row in result.rows)
        return out.getvalue().rstrip("\n")
    return _table(result.columns, [[_cell(v) for v in row] for row in result.rows])


def _table(columns: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    count = len(cells)
    lines.append(f"({count} row{'' if count == 1 else 's'})")
    return "\n".join(lines)
