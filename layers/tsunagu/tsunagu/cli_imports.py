"""``tsunagu imports plan FILE``: the dry run of importing a lead list, row by row;
``imports run FILE --plan DIGEST`` applies exactly that plan; ``imports undo ID`` takes it back;
``imports list``; ``imports mappings save|list|delete`` keeps a source's options by name."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path
from typing import Any

from tsunagu import services
from tsunagu.cli_options import at_least_zero, counted
from tsunagu.errors import FieldError, ValidationFailed
from tsunagu.imports.jobs import progress_bar
from tsunagu.imports.plan import ConsentColumn, ImportOptions
from tsunagu.imports.reading import ENCODINGS
from tsunagu.imports.reasons import FILE_LANGUAGE, LANGUAGES, reasons_text
from tsunagu.imports.saved import IMPORT_SOURCES, SavedMapping
from tsunagu.leads.merge import Channel
from tsunagu.settings import Settings

SOURCES = IMPORT_SOURCES


class ImportCliError(Exception):
    """Printed without a traceback by the CLI's main."""


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ImportCliError(f"cannot read {path}: {error.strerror}") from None


def _write_rejected(target: str, data: bytes) -> None:
    try:
        Path(target).write_bytes(data)
    except OSError as error:
        raise ImportCliError(f"cannot write {target}: {error.strerror}") from None


def _options(args: argparse.Namespace) -> ImportOptions:
    consent = None
    if args.consent_column:
        consent = ConsentColumn.asked(
            args.consent_column,
            yes=frozenset(args.consent_yes),
            no=frozenset(args.consent_no),
            topic=args.consent_topic,
        )
    if any("=" not in part for part in args.map):
        raise ValidationFailed([FieldError("map", "give each as HEADER=FIELD (列名=company)")])
    mapping = dict(part.split("=", 1) for part in args.map)
    return ImportOptions(Channel(args.source or "import"), mapping, consent)


def _file_options(settings: Settings, args: argparse.Namespace) -> tuple[ImportOptions, str | None]:
    """The options given, over the saved mapping the file names (--mapping)."""
    from tsunagu.commands import imports

    options = imports.options_with_mapping(
        services.import_commands(settings),
        args.mapping,
        _options(args),
        source_given=args.source is not None,
    )
    return options, args.encoding


def imports_plan(settings: Settings, args: argparse.Namespace) -> int:
    """What importing the file would do, row by row; nothing is written."""
    from tsunagu.commands import imports

    path = Path(args.file)
    data = _read(path)
    options, encoding = _file_options(settings, args)
    planned = imports.plan(
        services.import_commands(settings),
        services.operator(settings),
        data,
        path.name,
        options,
        encoding=encoding,
    )
    if args.rejected:
        _write_rejected(args.rejected, planned.rejected_file(args.language))
    if args.json:
        print(json.dumps(planned.as_json(), indent=2, ensure_ascii=False))
        return 0
    plan = planned.plan
    print(
        f"{path.name}: {counted(len(plan.rows), 'row')}, read as {plan.encoding},"
        f" counted as {options.source.value}"
        + (f" (saved mapping {args.mapping})" if args.mapping else "")
    )
    print("columns: " + ", ".join(f"{header} → {field}" for header, field in plan.columns.items()))
    if plan.consent_column and options.consent:
        meaning = options.consent
        print(
            f"consent: {plan.consent_column} (yes: {'/'.join(sorted(meaning.yes))}; no: "
            f"{'/'.join(sorted(meaning.no)) or '-'}; blank: no answer, nothing recorded)"
        )
    if plan.unmapped:
        print("left out: " + ", ".join(plan.unmapped))
    print("  ".join(f"{action} {count}" for action, count in plan.counts.items()))
    for row in plan.rows[: args.rows]:
        # A rejected row may have no address to show: its reason says what the column held
        shown = "  ".join(part for part in (row.email, _detail(row)) if part)
        print(f"  row {row.row:>5}  {row.action:<9}  {shown}")
    if len(plan.rows) > args.rows:
        print(f"  ... {len(plan.rows) - args.rows} more rows (--rows N, or --json)")
    if args.rejected:
        print(f"rejected rows, with the reason: {args.rejected} (fix them and import it again)")
    digest = planned.as_json(rows=0)["plan_digest"]
    if not args.mapping:
        print("to reuse these options for this source's next file: imports mappings save NAME")
    # The path as typed, so that the line can be copied as it is
    run = f"imports run {_shell_word(args.file)} (same options) --plan {digest}"
    print(f"to apply exactly this plan: {run}")
    return 0


def imports_run(settings: Settings, args: argparse.Namespace) -> int:
    """Apply the file's plan (refused if it is no longer the dry run's ``--plan``)."""
    from tsunagu.commands import imports

    path = Path(args.file)
    data = _read(path)
    options, encoding = _file_options(settings, args)
    if args.background:
        return _run_in_background(settings, args, path.name, data, options, encoding)
    record, planned = imports.run(
        services.import_commands(settings),
        services.operator(settings),
        data,
        path.name,
        options,
        encoding=encoding,
        plan_digest=args.plan,
    )
    if args.rejected:
        _write_rejected(args.rejected, planned.rejected_file(args.language))
    if args.json:
        print(json.dumps(record.as_json(), indent=2, ensure_ascii=False))
        return 0
    counts = "  ".join(f"{action} {n}" for action, n in record.counts.items())
    print(f"imported {path.name} as {record.import_id}: {counts}")
    print(f"to take it back: tsunagu imports undo {record.import_id}")
    return 0


def _run_in_background(
    settings: Settings,
    args: argparse.Namespace,
    file_name: str,
    data: bytes,
    options: ImportOptions,
    encoding: str | None,
) -> int:
    """Upload the file to the stack's bucket, queue its import, and (unless --no-wait) show
    its progress until it has finished."""
    from tsunagu.commands import import_jobs

    ports = services.import_commands(settings)
    upload_id = import_jobs.upload_file(ports, file_name, data)
    record = import_jobs.start(
        ports,
        services.operator(settings),
        upload_id,
        file_name,
        options,
        encoding=encoding,
        plan_digest=args.plan,
    )
    print(f"queued {file_name} as {record.import_id}: it runs in the background")
    if args.no_wait:
        print(f"its progress: tsunagu imports status {record.import_id}")
        return 0
    return _watch(settings, record.import_id)


def imports_status(settings: Settings, args: argparse.Namespace) -> int:
    """An import, and its background run's progress (--watch: until it has finished)."""
    if args.watch:
        return _watch(settings, args.id)
    return _print_status(settings, args.id, json_output=args.json)[1]


def _print_status(
    settings: Settings, import_id: str, *, json_output: bool = False
) -> tuple[bool, int]:
    """Print where the import is; (finished, exit status)."""
    from tsunagu.commands import import_jobs

    record, progress = import_jobs.status(
        services.import_commands(settings), services.operator(settings), import_id
    )
    finished = record.status not in ("queued", "applying")
    code = 1 if record.status in ("refused", "failed") else 0
    if json_output:
        document = record.as_json() | {"progress": progress.as_json() if progress else None}
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return finished, code
    line = f"{record.import_id}  {record.status:<19} {record.file_name}"
    if progress is not None:
        line += (
            f"  {progress_bar(progress.rows_done, progress.rows_total)}"
            f"  {progress.rows_done:,} / {progress.rows_total:,} rows,"
            f" {progress.chunks_done} of {progress.chunks_total} chunks"
        )
        if progress.parked:
            line += f", {len(progress.parked)} parked"
    print(line, flush=True)
    if finished and record.detail:
        print(f"  {record.detail}")
    return finished, code


def _watch(settings: Settings, import_id: str) -> int:
    import time

    while True:
        finished, code = _print_status(settings, import_id)
        if finished:
            return code
        time.sleep(WATCH_SECONDS)  # a person watching: wall-clock pacing is what they want


WATCH_SECONDS = 2.0


def imports_undo(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import imports

    done = imports.undo(services.import_commands(settings), services.operator(settings), args.id)
    if args.json:
        print(json.dumps(done.as_json(), indent=2, ensure_ascii=False))
        return 0
    undo = done.record.undo
    print(
        f"undone {args.id}: {counted(undo['removed'], 'lead')} removed,"
        f" {undo['restored']} restored, {undo['kept']} left as they were (below, and why);"
        f" {counted(undo.get('withdrawn', 0), 'opt-in')} it recorded withdrawn"
    )
    for row in done.kept:
        said = []
        if row["changed_since"]:
            said.append("changed since: " + ", ".join(row["changed_since"]))
        if "consent" in row:
            said.append("consent: " + row["consent"]["reason"])
        print(f"  row {row['row']:>5}  {row['email']}  {'; '.join(said)}")
    return 0


def imports_list(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import imports

    found = imports.list_imports(services.import_commands(settings), services.operator(settings))
    if args.json:
        print(json.dumps([r.as_json() for r in found], indent=2, ensure_ascii=False))
        return 0
    for record in found:
        counts = " ".join(f"{a} {n}" for a, n in record.counts.items() if n)
        print(f"{record.at}  {record.import_id}  {record.status:<8}  {record.file_name}  {counts}")
    if not found:
        print("(no imports yet)")
    return 0


def mappings_save(settings: Settings, args: argparse.Namespace) -> int:
    """Save the options of a source's files under a name (replacing one of that name)."""
    from tsunagu.commands import imports

    saved = imports.save_mapping(
        services.import_commands(settings),
        services.operator(settings),
        SavedMapping.of(
            args.name, _options(args), encoding=args.encoding, description=args.description
        ),
    )
    print(f"saved mapping {saved.name}: counted as {saved.source}, " + _columns(saved))
    print(f"use it: tsunagu imports plan FILE --mapping {saved.name}")
    return 0


def mappings_list(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import imports

    found = imports.mappings(services.import_commands(settings), services.operator(settings))
    if args.json:
        print(json.dumps([m.as_json() for m in found], indent=2, ensure_ascii=False))
        return 0
    for m in found:
        print(f"{m.name:<24} {m.source:<11} {_columns(m)}")
    if not found:
        print("(no mappings saved yet: imports mappings save NAME --source ... --map ...)")
    return 0


def mappings_delete(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import imports

    imports.delete_mapping(
        services.import_commands(settings), services.operator(settings), args.name
    )
    print(f"deleted mapping {args.name}")
    return 0


SHELL_SPECIAL = re.compile(r"""[\s'"\\$`!*?#&;|<>(){}\[\]~]""")


def _shell_word(text: str) -> str:
    """``text`` as a shell reads it back: quoted only when it holds what the shell would read
    otherwise (a Japanese file name is left as it is, as shlex.quote would not)."""
    return shlex.quote(text) if SHELL_SPECIAL.search(text) or not text else text


def _columns(mapping: SavedMapping) -> str:
    columns = ", ".join(f"{h} → {f}" for h, f in mapping.columns.items()) or "automatic columns"
    if mapping.consent_column:
        yes, no = "/".join(mapping.consent_yes), "/".join(mapping.consent_no) or "-"
        columns += f"; consent: {mapping.consent_column} (yes: {yes}; no: {no})"
    return columns


def _detail(row: Any) -> str:
    if row.action == "rejected":
        return reasons_text(row.reasons, "en")
    if row.action == "merged":
        return f"joins row {row.into}"
    parts = [
        f"{name}: {before or '(none)'} → {after}" for name, (before, after) in row.changes.items()
    ]
    parts += [f"{name} kept ({source}: {value})" for name, (value, source, _) in row.kept.items()]
    if row.consent:
        parts.append(f"consent: {row.consent}")
    if row.consent_disagreed:
        rows = ", ".join(map(str, row.consent_disagreed))
        parts.append(f"consent: rows {rows} disagree, and the no counts")
    if row.consent_kept:
        parts.append(f"consent not recorded: {row.consent_kept}")
    return "; ".join(parts)


def add_import_commands(groups: Any) -> None:
    imports = groups.add_parser("imports", help="lead lists (CSV / TSV, any encoding Excel saves)")
    commands = imports.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="the dry run: what each row would do (writes nothing)")
    _file_arguments(plan)
    plan.add_argument("--rows", type=at_least_zero, default=50, help="rows to print (default 50)")
    plan.set_defaults(run=imports_plan)
    run = commands.add_parser("run", help="apply the file: exactly its dry run's plan")
    _file_arguments(run)
    run.add_argument("--plan", metavar="DIGEST", help="the dry run's plan (refused if it changed)")
    run.add_argument(
        "--background", action="store_true",
        help="upload the file to the stack and import it in chunks on Step Functions (large"
        " files: no time limit, progress, a failed chunk retried then parked)",
    )  # fmt: skip
    run.add_argument(
        "--no-wait", action="store_true", help="with --background: queue it and return"
    )
    run.set_defaults(run=imports_run)
    status = commands.add_parser("status", help="an import's progress (a background run's too)")
    status.add_argument("id")
    status.add_argument("--watch", action="store_true", help="until it has finished")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=imports_status)
    undo = commands.add_parser(
        "undo",
        help="take an import back, its opt-ins withdrawn (what changed since, and opt-outs, kept)",
    )
    undo.add_argument("id", help="the import's id (imports list)")
    undo.add_argument("--json", action="store_true")
    undo.set_defaults(run=imports_undo)
    listing = commands.add_parser("list", help="the imports, newest first")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=imports_list)
    saved = commands.add_parser("mappings", help="options saved per source, reused by name")
    mappings = saved.add_subparsers(dest="mappings_command", required=True)
    save = mappings.add_parser("save", help="save a source's options (--source, --map, consent)")
    save.add_argument("name", help="e.g. trade-show-cards (lower-case letters, digits, _ and -)")
    _option_arguments(save)
    save.add_argument("--description", default="")
    save.set_defaults(run=mappings_save)
    listed = mappings.add_parser("list", help="the saved mappings")
    listed.add_argument("--json", action="store_true")
    listed.set_defaults(run=mappings_list)
    delete = mappings.add_parser("delete", help="delete a saved mapping")
    delete.add_argument("name")
    delete.set_defaults(run=mappings_delete)


def _file_arguments(plan: Any) -> None:
    plan.add_argument("file")
    plan.add_argument(
        "--mapping", metavar="NAME", help="a saved mapping (imports mappings list); options given"
        " here override its",
    )  # fmt: skip
    _option_arguments(plan)
    plan.add_argument("--rejected", metavar="PATH", help="write the rejected rows here (CSV)")
    plan.add_argument(
        "--language", choices=LANGUAGES, default=FILE_LANGUAGE,
        help=f"the language of the reasons in --rejected (default {FILE_LANGUAGE})",
    )  # fmt: skip
    plan.add_argument("--json", action="store_true")


def _option_arguments(plan: Any) -> None:
    plan.add_argument("--source", choices=SOURCES, help="what the list counts as (default: import)")
    plan.add_argument(
        "--encoding", choices=(*ENCODINGS, "shift_jis"), help="(found when not given)"
    )
    plan.add_argument(
        "--map", action="append", default=[], metavar="HEADER=FIELD",
        help="a column's field over the automatic mapping (FIELD - leaves it out; repeat)",
    )  # fmt: skip
    plan.add_argument("--consent-column", help="the column that says whether to mail them")
    plan.add_argument(
        "--consent-yes", action="append", default=[], metavar="ANSWER",
        help="an answer meaning yes (repeat for each: --consent-yes 希望する --consent-yes 可)",
    )  # fmt: skip
    plan.add_argument(
        "--consent-no", action="append", default=[], metavar="ANSWER",
        help="an answer meaning no (repeat for each); a blank cell says nothing",
    )  # fmt: skip
    plan.add_argument(
        "--consent-topic", default="marketing",
        help="the topic the answers are consent to (default: marketing)",
    )  # fmt: skip
