"""``tsunagu analytics query "SQL"``: SQL over the events, with DuckDB, on the local runtime.

The local runtime writes every stored event as a row in Parquet files where Firehose writes
them in AWS (tsunagu_local.firehose); this runs a query over them as the view ``events``
(tsunagu.analytics.query). It needs no running runtime, only the files: by default those of
the runtime in this folder or a parent (``.tsunagu/``), or any folder holding ``events/`` (for
instance a copy of the analytics bucket: ``aws s3 sync s3://BUCKET/events ./copy/events``).

In AWS the same rows are a Glue table for Athena: with ``--stack`` this says which workgroup and
table to use there.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tsunagu.analytics.query import FORMATS, AnalyticsError, QueryFailed, formatted, run_query

STATE_FOLDER = ".tsunagu"
RUNTIME_FILE = "runtime.json"
LOCAL_ANALYTICS = "analytics"
EXAMPLE_SQL = "SELECT type, count(*) FROM events GROUP BY type"
SQL_ERROR = 2
"""The exit status when DuckDB refuses the SQL (1 is for everything else)."""


def athena_names(stack: str) -> tuple[str, str]:
    """The stack's Athena workgroup and Glue database (template.yaml names them from the
    stack's name; its outputs AnalyticsWorkGroup and AnalyticsTable say the same)."""
    return f"{stack}-analytics", stack.replace("-", "_").lower()


def in_aws(stack: str) -> str:
    workgroup, database = athena_names(stack)
    return (
        "`analytics query` runs on the local runtime's files. In AWS, run the SQL in Athena: "
        f"workgroup {workgroup}, table {database}.events (the stack's outputs "
        "AnalyticsWorkGroup and AnalyticsTable), e.g. aws athena start-query-execution "
        f"--work-group {workgroup} --query-execution-context Database={database} "
        f"--query-string '{EXAMPLE_SQL}'"
    )


def local_folder(start: Path) -> Path:
    """The running (or last) local runtime's analytics folder, found from ``start`` upwards."""
    for folder in [start, *start.parents]:
        state = folder / STATE_FOLDER
        runtime_file = state / RUNTIME_FILE
        if runtime_file.exists():
            written: Any = json.loads(runtime_file.read_text()).get("analytics")
            if written:
                return Path(written)
        if (state / LOCAL_ANALYTICS).is_dir() or runtime_file.exists():
            return state / LOCAL_ANALYTICS
    raise AnalyticsError(
        "no local runtime here (no .tsunagu/ in this folder or a parent): start it with "
        "`make up`, or give --dir; for a deployed stack, give --stack NAME"
    )


def analytics_query(args: argparse.Namespace) -> int:
    if args.stack:
        raise AnalyticsError(in_aws(args.stack))
    folder = Path(args.dir) if args.dir else local_folder(Path.cwd())
    try:
        result = run_query(folder, args.sql)
    except QueryFailed as error:
        print(f"tsunagu: the query failed: {error}", file=sys.stderr)
        return SQL_ERROR
    print(formatted(result, args.format))
    return 0


def add_analytics_commands(groups: Any) -> None:
    analytics = groups.add_parser("analytics", help="SQL over the events (DuckDB, locally)")
    commands = analytics.add_subparsers(dest="command", required=True)
    query = commands.add_parser(
        "query",
        help="run SQL over the view `events` (one row per event; README: Analytics with SQL)",
    )
    query.add_argument("sql", help='e.g. "SELECT type, count(*) FROM events GROUP BY type"')
    query.add_argument("--format", choices=FORMATS, default="table")
    query.add_argument("--dir", help="a folder holding events/ (default: the local runtime's)")
    query.set_defaults(run_offline=analytics_query)
