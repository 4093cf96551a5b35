"""``tsunagu imports plan FILE``: the dry run of importing a lead list, row by row."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tsunagu import services
from tsunagu.errors import FieldError, ValidationFailed
from tsunagu.imports.plan import ConsentColumn, ImportOptions
from tsunagu.imports.reading import ENCODINGS
from tsunagu.leads.merge import Channel
from tsunagu.settings import Settings

SOURCES = ("import", "trade_show", "seminar", "web_form", "sales", "crm")


def imports_plan(settings: Settings, args: argparse.Namespace) -> int:
    """What importing the file would do, row by row; nothing is written."""
    from tsunagu.commands import imports

    consent = None
    if args.consent_column:
        consent = ConsentColumn(
            args.consent_column,
            yes=frozenset(args.consent_yes),
            no=frozenset(args.consent_no),
            topic=args.consent_topic,
        )
    if any("=" not in part for part in args.map):
        raise ValidationFailed([FieldError("map", "give each as HEADER=FIELD (列名=company)")])
    mapping = dict(part.split("=", 1) for part in args.map)
    options = ImportOptions(Channel(args.source), mapping, consent)
    path = Path(args.file)
    planned = imports.plan(
        services.import_commands(settings),
        services.operator(settings),
        path.read_bytes(),
        path.name,
        options,
        encoding=args.encoding,
    )
    if args.rejected:
        Path(args.rejected).write_bytes(planned.rejected_file)
    if args.json:
        print(json.dumps(planned.as_json(), indent=2, ensure_ascii=False))
        return 0
    plan = planned.plan
    print(f"{path.name}: {len(plan.rows)} rows, read as {plan.encoding}, counted as {args.source}")
    print("columns: " + ", ".join(f"{header} → {field}" for header, field in plan.columns.items()))
    if plan.unmapped:
        print("left out: " + ", ".join(plan.unmapped))
    print("  ".join(f"{action} {count}" for action, count in plan.counts.items()))
    for row in plan.rows[: args.rows]:
        print(f"  row {row.row:>5}  {row.action:<9}  {row.email or ''}  {_detail(row)}")
    if len(plan.rows) > args.rows:
        print(f"  ... {len(plan.rows) - args.rows} more rows (--rows N, or --json)")
    if args.rejected:
        print(f"rejected rows, with the reason: {args.rejected} (fix them and import it again)")
    return 0


def _detail(row: Any) -> str:
    if row.action == "rejected":
        return str(row.reason)
    if row.action == "merged":
        return f"joins row {row.into}"
    parts = [
        f"{name}: {before or '(none)'} → {after}" for name, (before, after) in row.changes.items()
    ]
    parts += [f"{name} kept ({source}: {value})" for name, (value, source, _) in row.kept.items()]
    if row.consent:
        parts.append(f"consent: {row.consent}")
    return "; ".join(parts)


def add_import_commands(groups: Any) -> None:
    imports = groups.add_parser("imports", help="lead lists (CSV / TSV, any encoding Excel saves)")
    commands = imports.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="the dry run: what each row would do (writes nothing)")
    plan.add_argument("file")
    plan.add_argument("--source", choices=SOURCES, default="import", help="what the list counts as")
    plan.add_argument(
        "--encoding", choices=(*ENCODINGS, "shift_jis"), help="(found when not given)"
    )
    plan.add_argument(
        "--map", action="append", default=[], metavar="HEADER=FIELD",
        help="a column's field over the automatic mapping (FIELD - leaves it out; repeat)",
    )  # fmt: skip
    plan.add_argument("--consent-column", help="the column that says whether to mail them")
    plan.add_argument("--consent-yes", action="append", default=[], help="an answer meaning yes")
    plan.add_argument("--consent-no", action="append", default=[], help="an answer meaning no")
    plan.add_argument("--consent-topic", default="marketing")
    plan.add_argument("--rejected", metavar="PATH", help="write the rejected rows here (CSV)")
    plan.add_argument("--rows", type=int, default=50, help="rows to print (default 50)")
    plan.add_argument("--json", action="store_true")
    plan.set_defaults(run=imports_plan)
