"""``tsunagu segments try|save|list|show|delete``: saved segments, tried before they are saved;
``tsunagu leads export``: leads (all, a filter's or a segment's) as CSV for Excel."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tsunagu import services
from tsunagu.cli_options import counted
from tsunagu.leads.export import ENCODINGS
from tsunagu.leads.model import Lead
from tsunagu.segments.selection import Preview
from tsunagu.settings import Settings

if TYPE_CHECKING:
    from tsunagu.commands.segments import SegmentDocument

FILTER_HELP = (
    "conditions joined by commas, e.g. stage=lead,tag=seminar-2026-12,score>=50,score<=80,"
    "field.company=株式会社Example,consent.newsletter=yes,did=form_submitted/30d,"
    "did_not=mail_opened/90d,import=imp_...,in_segment=hot_accounts (!= for not)"
)


IF_UNCHANGED = "with --replace: only if nobody saved it since the file's version (as exported here)"


class SegmentCliError(Exception):
    """A ``tsunagu segments`` command that cannot do what it was given: said in one line,
    nothing stored."""


def _leads(count: int) -> str:
    return counted(count, "lead")


def _preview_lines(found: Preview) -> list[str]:
    lines = [f"{_leads(found.count)} selected now" + (", the first:" if found.sample else "")]
    lines += [f"  {_lead_line(lead)}" for lead in found.sample]
    return lines


def _lead_line(lead: Lead) -> str:
    company = lead.fields["company"].value if "company" in lead.fields else ""
    score = "" if lead.score is None else f"score {lead.score:g}"
    return "  ".join(part for part in (lead.email, company, lead.stage, score) if part)


def _preview_json(found: Preview) -> dict[str, Any]:
    from tsunagu.commands import leads

    return {
        "count": found.count,
        "sample": [leads.list_row(lead) for lead in found.sample],
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
    """Save a segment from NAME FILTER, or from a file (``--file``) as ``segments show --json``
    or the admin API's GET printed it. ``--replace`` goes over whatever is stored, as it always
    did: a file may come from another stack, whose ``version`` counts that stack's saves and
    means nothing here. With ``--if-unchanged`` it goes over the version the file was exported
    at only, as the admin API's save does, so a colleague's save since is not silently lost; a
    segment this stack has not is created all the same (as ``forms create --file`` does)."""
    from tsunagu.commands import segments
    from tsunagu.errors import AlreadyExists, ConcurrentUpdate

    asked = _read_segment(args) if args.file is not None else _given_segment(args)
    if args.if_unchanged and args.file is None:
        raise SegmentCliError("--if-unchanged is for --file: NAME FILTER name no version read")
    if args.if_unchanged and not args.replace:
        raise SegmentCliError("--if-unchanged is for --replace: a creation replaces nothing")
    if args.if_unchanged and asked.version is None:
        raise SegmentCliError(
            f'--if-unchanged needs the "version" the segment was read at in {args.file}'
        )
    ports = services.segment_commands(settings)
    actor = services.operator(settings)
    version = None
    if args.replace and (existing := ports.segments.get_segment(asked.name)) is not None:
        version = asked.version if args.if_unchanged else existing.version
    try:
        saved = segments.save(
            ports,
            actor,
            asked.name,
            asked.filter,
            description=asked.description,
            exclude_from_marketing=asked.exclude_from_marketing,
            version=version,
        )
    except AlreadyExists:
        # (the use case's words are for the API - "give its version" - not for this command)
        raise SegmentCliError(
            f"segment {asked.name!r} exists: add --replace to change it"
        ) from None
    except ConcurrentUpdate:
        if not args.if_unchanged:
            raise
        now = ports.segments.get_segment(asked.name)
        raise SegmentCliError(
            f"segment {asked.name!r} was saved since {args.file} was exported (its version"
            f" {asked.version}, now {now.version if now else 'deleted'}); nothing was stored:"
            " export it again, or load it without --if-unchanged to replace whatever is stored"
        ) from None
    found = segments.try_filter(ports, actor, saved.name)
    excluded = " (excluded from marketing mail)" if saved.exclude_from_marketing else ""
    print(f"saved segment {saved.name} (version {saved.version}): {saved.filter}{excluded}")
    print("\n".join(_preview_lines(found)))
    return 0


def _given_segment(args: argparse.Namespace) -> SegmentDocument:
    """The segment NAME FILTER and the options give (checked where it is saved, as typed)."""
    from tsunagu.commands.segments import SegmentDocument

    if args.name is None or args.filter is None:
        raise SegmentCliError("give NAME and FILTER, or --file")
    return SegmentDocument.model_construct(
        name=args.name,
        filter=args.filter,
        description=args.description,
        exclude_from_marketing=args.exclude_from_marketing,
    )


def _read_segment(args: argparse.Namespace) -> SegmentDocument:
    """The segment in ``--file``, whole or as GET answered it, by the rule the admin API's save
    reads it by (segments.as_saved): its read-only fields (count, sample, used_by, by, at)
    unread, any other field a segment has not refused."""
    from tsunagu.commands.segments import SegmentDocument, as_saved

    path = args.file
    beside = [
        given
        for given, value in (
            ("NAME", args.name),
            ("FILTER", args.filter),
            ("--description", args.description),
            ("--exclude-from-marketing", args.exclude_from_marketing),
        )
        if value is not None
    ]
    if beside:
        raise SegmentCliError(f"--file gives the segment whole: say {beside[0]} in {path}")
    try:
        given = json.loads(Path(path).read_text("utf-8"))
    except OSError as error:
        raise SegmentCliError(f"cannot read {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise SegmentCliError(f"{path} is not valid: not JSON ({error})") from None
    if not isinstance(given, dict):
        raise SegmentCliError(f"{path} is not valid: a segment is a JSON object")
    try:
        # Strictly, as the API reads the same body: a version "3" is not a number
        return SegmentDocument.model_validate_json(json.dumps(as_saved(given)), strict=True)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'segment'}: {e['msg']}" for e in error.errors()
        )
        raise SegmentCliError(f"{path} is not valid: {problems}") from None


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
    if args.output and args.output != "-":  # "-": standard output, as other tools read it
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
    export.add_argument("--output", "-o", metavar="PATH", help="(default, or -: standard output)")
    export.set_defaults(run=leads_export)


def add_segment_commands(groups: Any) -> None:
    segments = groups.add_parser("segments", help="saved segments: named lead filters")
    commands = segments.add_subparsers(dest="command", required=True)
    trying = commands.add_parser("try", help="how many leads a filter selects now (saves nothing)")
    trying.add_argument("filter", help=FILTER_HELP)
    trying.add_argument("--json", action="store_true")
    trying.set_defaults(run=segments_try)
    save = commands.add_parser(
        "save", help="save a filter under a name, or a segment from a file (--file)"
    )
    save.add_argument("name", nargs="?", help="lower-case letters, digits, _ and -")
    save.add_argument("filter", nargs="?", help=FILTER_HELP)
    save.add_argument(
        "--file",
        help="the segment as JSON, as `segments show --json` or GET /admin/segments/NAME print"
        " it (who saved it when, count, sample and used_by are not read)",
    )
    save.add_argument(
        "--description", help='a note on it (with --replace, kept unless given; "" clears it)'
    )
    save.add_argument(
        "--exclude-from-marketing", action=argparse.BooleanOptionalAction,
        help="no marketing mail goes to the leads it selects (a global exclusion); with"
        " --replace, kept as saved unless given (--no-exclude-from-marketing lifts it)",
    )  # fmt: skip
    save.add_argument("--replace", action="store_true", help="change the saved segment")
    save.add_argument("--if-unchanged", action="store_true", help=IF_UNCHANGED)
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
