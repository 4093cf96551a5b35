"""``tsunagu segments try|save|list|show|delete``: saved segments, tried before they are saved;
``tsunagu leads export``: leads (all, a filter's or a segment's) as CSV for Excel."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tsunagu import services
from tsunagu.leads.export import ENCODINGS
from tsunagu.leads.model import Lead
from tsunagu.segments.selection import Preview
from tsunagu.settings import Settings

FILTER_HELP = (
    "conditions joined by commas, e.g. stage=lead,tag=seminar-2026-12,score>=50,score<=80,"
    "field.company=株式会社Example,consent.newsletter=yes,did=form_submitted/30d,"
    "did_not=mail_opened/90d,import=imp_...,in_segment=hot_accounts (!= for not)"
)


def _leads(count: int) -> str:
    return f"{count:,} lead" if count == 1 else f"{count:,} leads"


def _preview_lines(found: Preview) -> list[str]:
    lines = [f"{_leads(found.count)} selected now" + (", the first:" if found.sample else "")]
    lines += [f"  {_lead_line(lead)}" for lead in found.sample]
    return lines


def _lead_line(lead: Lead) -> str:
    company = lead.fields["company"].value if "company" in lead.fields else ""
    score = "" if lead.score is None else f"score {lead.score:g}"
    return "  ".join(part for part in (lead.email, company, lead.stage, score) if part)


def _preview_json(found: Preview) -> dict[str, Any]:
    return {
        "count": found.count,
        "sample": [
            {"lead_id": lead.lead_id, "email": lead.email, "stage": lead.stage, "score": lead.score}
            for lead in found.sample
        ],
    }


def segments_try(settings: Settings, args: argparse.Namespace) -> int:
    """How many leads a filter selects now, and the first of them (nothing is saved)."""
    from tsunagu.commands import segments

    found = segments.try_filter(
        services.segment_commands(settings), services.operator(settings), args.filter
    )
    if args.json:
        print(json.dumps(_preview_json(found), indent=2, ensure_ascii=False))
    else:
        print("\n".join(_preview_lines(found)))
    return 0


def segments_save(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import segments

    ports = services.segment_commands(settings)
    actor = services.operator(settings)
    version = None
    if args.replace:
        existing = ports.segments.get_segment(args.name)
        version = existing.version if existing else None
    saved = segments.save(
        ports,
        actor,
        args.name,
        args.filter,
        description=args.description,
        exclude_from_marketing=args.exclude_from_marketing,
        version=version,
    )
    found = segments.try_filter(ports, actor, saved.name)
    excluded = " (excluded from marketing mail)" if saved.exclude_from_marketing else ""
    print(f"saved segment {saved.name} (version {saved.version}): {saved.filter}{excluded}")
    print("\n".join(_preview_lines(found)))
    return 0


def segments_list(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import segments

    found = segments.list_segments(services.segment_commands(settings), services.operator(settings))
    if args.json:
        print(json.dumps([s.as_json() for s in found], indent=2, ensure_ascii=False))
        return 0
    for s in found:
        excluded = "  [excluded from marketing]" if s.exclude_from_marketing else ""
        print(f"{s.name:<24} {s.filter}{excluded}")
    if not found:
        print("(no segments saved yet: tsunagu segments try FILTER, then segments save)")
    return 0


def segments_show(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import segments

    shown = segments.show(
        services.segment_commands(settings), services.operator(settings), args.name
    )
    if args.json:
        document = {**shown.segment.as_json(), **_preview_json(shown.preview)}
        print(json.dumps(document | {"used_by": shown.used_by}, indent=2, ensure_ascii=False))
        return 0
    s = shown.segment
    print(f"{s.name} (version {s.version}, saved by {s.by} at {s.at})")
    print(f"  filter: {s.filter}")
    if s.description:
        print(f"  {s.description}")
    if s.exclude_from_marketing:
        print("  excluded from marketing: no marketing mail goes to the leads it selects")
    print("  read by: " + (", ".join(shown.used_by) or "nothing"))
    print("\n".join(_preview_lines(shown.preview)))
    return 0


def segments_delete(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import segments

    segments.delete(services.segment_commands(settings), services.operator(settings), args.name)
    print(f"deleted segment {args.name}")
    return 0


def leads_export(settings: Settings, args: argparse.Namespace) -> int:
    """Leads as CSV: to a file (--output) or standard output."""
    from tsunagu.commands import segments

    exported = segments.export(
        services.segment_commands(settings),
        services.operator(settings),
        segment=args.segment,
        encoding=args.encoding,
    )
    replaced = f"{exported.replaced} characters cp932 cannot hold written as ?"
    if args.output:
        Path(args.output).write_bytes(exported.data)
        kept = f"; {replaced}" if exported.replaced else ""
        print(f"{_leads(exported.rows)} written to {args.output} ({exported.encoding}{kept})")
    else:
        sys.stdout.buffer.write(exported.data)
        sys.stdout.flush()
        if exported.replaced:
            # Said beside the file, not in it: `> leads.csv` keeps only the CSV
            print(f"{_leads(exported.rows)} exported; {replaced}", file=sys.stderr)
    return 0


def add_export_command(leads: Any) -> None:
    export = leads.add_parser("export", help="leads as CSV for Excel (recorded in the audit log)")
    export.add_argument("--segment", help="a saved segment's name, or a filter: " + FILTER_HELP)
    export.add_argument(
        "--encoding", choices=ENCODINGS, default="utf-8",
        help="utf-8 (with a BOM, default) or cp932 for older Excel",
    )  # fmt: skip
    export.add_argument("--output", "-o", metavar="PATH", help="(default: standard output)")
    export.set_defaults(run=leads_export)


def add_segment_commands(groups: Any) -> None:
    segments = groups.add_parser("segments", help="saved segments: named lead filters")
    commands = segments.add_subparsers(dest="command", required=True)
    trying = commands.add_parser("try", help="how many leads a filter selects now (saves nothing)")
    trying.add_argument("filter", help=FILTER_HELP)
    trying.add_argument("--json", action="store_true")
    trying.set_defaults(run=segments_try)
    save = commands.add_parser("save", help="save a filter under a name")
    save.add_argument("name", help="lower-case letters, digits, _ and -")
    save.add_argument("filter", help=FILTER_HELP)
    save.add_argument(
        "--description", help='a note on it (with --replace, kept unless given; "" clears it)'
    )
    save.add_argument(
        "--exclude-from-marketing", action=argparse.BooleanOptionalAction,
        help="no marketing mail goes to the leads it selects (a global exclusion); with"
        " --replace, kept as saved unless given (--no-exclude-from-marketing lifts it)",
    )  # fmt: skip
    save.add_argument("--replace", action="store_true", help="change the saved segment")
    save.set_defaults(run=segments_save)
    listing = commands.add_parser("list", help="the saved segments")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=segments_list)
    show = commands.add_parser("show", help="a segment, what reads it and who it selects now")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=segments_show)
    delete = commands.add_parser("delete", help="delete a segment nothing reads any more")
    delete.add_argument("name")
    delete.set_defaults(run=segments_delete)
