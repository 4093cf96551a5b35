"""``tsunagu journeys ...``: list, start, pause, resume and watch journeys."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from tsunagu import services
from tsunagu.cli_options import positive
from tsunagu.commands import journeys
from tsunagu.errors import AlreadyExists, ConcurrentUpdate, TsunaguError, ValidationFailed
from tsunagu.journeys.compiler import asl_text, compile_journey, definition_schema, read_definition
from tsunagu.journeys.install import shipped_graphs
from tsunagu.journeys.lifecycle import lead_payload
from tsunagu.journeys.model import Journey
from tsunagu.settings import Settings


class JourneyCliError(Exception):
    """Printed without a traceback by the CLI's main."""


def _journey(settings: Settings, journey_id: str) -> Any:
    return journeys.find(services.journey_commands(settings), journey_id)


def journeys_list(settings: Settings, args: argparse.Namespace) -> int:
    stopped, found = journeys.listing(
        services.journey_commands(settings), services.operator(settings)
    )
    if stopped:
        print("EMERGENCY STOP: every journey holds its mails (tsunagu journeys resume-all)")
    for journey in found:
        triggers = ", ".join(t.kind for t in journey.triggers) or "none"
        print(f"{journey.journey_id}\t{journey.status}\ttriggers: {triggers}\t{journey.name}")
    return 0


def journeys_show(settings: Settings, args: argparse.Namespace) -> int:
    ports = services.journey_commands(settings)
    journey = journeys.show(ports, services.operator(settings), args.journey)
    print(json.dumps(journeys.answer(ports, journey), indent=2, ensure_ascii=False))
    return 0


def journeys_save(settings: Settings, args: argparse.Namespace) -> int:
    """Create or replace a journey record (triggers, re-entry, exits, resume policy) from JSON;
    its state machine is deployed with the stack (an ASL file in statemachines/) or published
    (`journeys publish`), and a published journey's record keeps its publication."""
    from pathlib import Path

    from pydantic import ValidationError

    try:
        given = json.loads(Path(args.file).read_text("utf-8"))
        # What `journeys show` printed loads back: its answered-only fields unread
        record = journeys.record_of(given) if isinstance(given, dict) else given
        journey = Journey.model_validate_json(json.dumps(record))
    except OSError as error:
        raise JourneyCliError(f"cannot read {args.file}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise JourneyCliError(f"{args.file} is not a valid journey: not JSON ({error})") from None
    except ValidationError as error:
        raise JourneyCliError(f"{args.file} is not a valid journey: {error}") from None
    ports = services.journey_commands(settings)
    try:
        journeys.save(ports, services.operator(settings), journey, replace=args.replace)
    except AlreadyExists:
        raise JourneyCliError(
            f"journey {journey.journey_id} exists: add --replace to change it"
        ) from None
    # A record replaced keeps its status (set-status, pause and resume change it)
    print(f"journey {journey.journey_id} saved ({journeys.find(ports, journey.journey_id).status})")
    return 0


def journeys_set_status(settings: Settings, args: argparse.Namespace) -> int:
    """draft / active / archived (pause and resume have their own commands)."""
    ports = services.journey_commands(settings)
    before = journeys.find(ports, args.journey).status
    changed = journeys.set_status(ports, services.operator(settings), args.journey, args.status)
    print(f"{changed.journey_id}: {before} -> {changed.status}")
    return 0


def journeys_install(settings: Settings, args: argparse.Namespace) -> int:
    domains = sorted(settings.sender_domains)
    if not args.sender and not domains:
        raise JourneyCliError("give --sender (no verified sender domain is configured)")
    added = journeys.install(
        services.journey_commands(settings),
        services.mail_repository(settings),
        services.operator(settings),
        site_url=args.site_url,
        sender=args.sender or f"news@{domains[0]}",
        # From the project's folder: the shipped graphs, for the console's editor.
        graphs=shipped_graphs(Path("journeys")) if Path("journeys").is_dir() else None,
    )
    print("\n".join(added) if added else "everything is installed already")
    return 0


def journeys_start(settings: Settings, args: argparse.Namespace) -> int:
    """Manual entry: one lead (--lead) or every lead a segment or filter selects (--segment)."""
    started = journeys.start(
        services.journey_commands(settings),
        services.operator(settings),
        args.journey,
        lead_email=args.lead,
        segment=args.segment,
        request_key=args.key,
        extra=_input_pairs(args.input),
    )
    for lead, result in started.results:
        if result.entered:
            print(f"{lead.email}: {result.reason} ({result.execution_arn})")
        else:
            print(f"{lead.email}: not entered ({result.reason})")
    already = (
        f"{started.already_in} already in (entered by this request before), "
        if started.already_in
        else ""
    )
    print(
        f"-- {started.entered} entered, {already}{started.not_entered} not entered,"
        f" of {started.selected} selected"
    )
    return 0


def _input_pairs(extra: list[str] | None) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for pair in extra or []:
        name, separator, value = pair.partition("=")
        if not separator:
            raise JourneyCliError(f"--input takes NAME=VALUE, not {pair!r}")
        payload[name] = value
    return payload


def journeys_pause(settings: Settings, args: argparse.Namespace) -> int:
    journey = journeys.pause(
        services.journey_commands(settings), services.operator(settings), args.journey
    )
    print(f"{journey.journey_id} paused: each lead stops at its next step until resumed")
    return 0


def journeys_resume(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.journeys.model import ResumePolicy

    policy = None
    if args.policy:
        policy = ResumePolicy(kind=args.policy, rate_per_minute=args.rate or 60)
    report = journeys.resume(
        services.journey_commands(settings), services.operator(settings), args.journey, policy
    )
    if report.held_by_stop is not None:
        print(
            f"{args.journey} resumed, but the emergency stop still holds its mails: lifting it"
            f" (journeys resume-all) releases them by {report.held_by_stop.kind}"
        )
        return 0
    actions = ", ".join(f"{n} {action}" for action, n in sorted(report.by_action.items()))
    print(
        f"{args.journey} resumed: {report.released} released ({actions or 'none parked'})"
        + (f"; {report.not_waiting} no longer waiting" if report.not_waiting else "")
    )
    return 0


def journeys_status(settings: Settings, args: argparse.Namespace) -> int:
    report = journeys.status(
        services.journey_commands(settings),
        services.operator(settings),
        args.journey,
    )
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


def journeys_stop_all(settings: Settings, args: argparse.Namespace) -> int:
    journeys.stop_all(services.journey_commands(settings), services.operator(settings))
    print("emergency stop: every journey holds its leads until `tsunagu journeys resume-all`")
    return 0


def journeys_resume_all(settings: Settings, args: argparse.Namespace) -> int:
    reports = journeys.resume_all(services.journey_commands(settings), services.operator(settings))
    for journey_id, report in reports.items():
        print(f"{journey_id}: {report.released} released")
    return 0


def journeys_compile(args: argparse.Namespace) -> int:
    """Offline: definition files to ASL (stdout, or ``--write DIR/<journey_id>.asl.json``).
    Every file is checked and every problem printed, each with its file and node."""
    if args.write is not None and not Path(args.write).is_dir():
        raise JourneyCliError(f"--write {args.write}: no such folder")
    failed = False
    for name in args.files:
        try:
            definition = read_definition(Path(name).read_text(encoding="utf-8"))
            text = asl_text(compile_journey(definition))
        except OSError as error:
            print(f"{name}: {error.strerror or error}", file=sys.stderr)
            failed = True
            continue
        except ValidationFailed as error:
            for problem in error.errors:
                print(f"{name}: {problem.field}: {problem.message}", file=sys.stderr)
            failed = True
            continue
        except TsunaguError as error:
            print(f"{name}: {error.message}", file=sys.stderr)
            failed = True
            continue
        if args.write is None:
            sys.stdout.write(text)
            continue
        target = Path(args.write) / f"{definition.journey_id}.asl.json"
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target}")
    return 1 if failed else 0


_REFUSED = {
    "publish": "nothing was published",
    "versions": "no versions to list",
    "rollback": "nothing was rolled back",
}


def _publisher(args: argparse.Namespace) -> journeys.Publisher:
    """The publish_journey function, invoked; what the user can fix is a JourneyCliError, one
    line per problem."""
    from tsunagu.cli_functions import invoke_function

    def publisher(payload: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = invoke_function(args, "PublishJourneyFunction", payload)
        if answer.get("conflict"):  # published, but another publication was recorded
            raise ConcurrentUpdate(str(answer.get("error")))
        if not answer.get("ok"):
            problems = answer.get("problems") or []
            lines = [f"{p['field']}: {p['message']}" for p in problems]
            lines = lines or [answer.get("error", "")]
            raise JourneyCliError(f"{_REFUSED[payload['action']]}:\n  " + "\n  ".join(lines))
        return answer

    return publisher


def journeys_publish(settings: Settings, args: argparse.Namespace) -> int:
    """Validate, compile and publish a definition as a new version; new entries take it."""
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except OSError as error:
        raise JourneyCliError(f"cannot read {args.file}: {error.strerror}") from None
    try:
        read_definition(text)  # the format first, here: the function checks it all again
        answer = journeys.publish(
            services.journey_commands(settings),
            services.operator(settings),
            json.loads(text),
            args.note,
            _publisher(args),
        )
    except ValidationFailed as error:  # the format, or what the editor would show
        lines = [f"{p.field}: {p.message}" for p in error.errors]
        message = f"{args.file}: nothing was published:\n  " + "\n  ".join(lines)
        raise JourneyCliError(message) from None
    journey, version = answer["journey_id"], answer["version"]
    if not answer["changed"]:
        print(f"{journey}: unchanged, version {version} is live")
    else:
        first = " (first publication: entered by `tsunagu journeys start` until it has triggers)"
        print(f"{journey}: version {version} is live{first if answer['created'] else ''}")
    return 0


def journeys_versions(settings: Settings, args: argparse.Namespace) -> int:
    answer = journeys.versions(
        services.journey_commands(settings),
        services.operator(settings),
        args.journey,
        _publisher(args),
    )
    for version in answer["versions"]:
        live = "live" if version["version"] == answer["live"] else ""
        note = version.get("note") or ""
        print(f"{version['version']}\t{version['created_at']}\t{live}\t{note}".rstrip())
    return 0


def journeys_rollback(settings: Settings, args: argparse.Namespace) -> int:
    answer = journeys.rollback(
        services.journey_commands(settings),
        services.operator(settings),
        args.journey,
        args.to,
        _publisher(args),
    )
    print(
        f"{answer['journey_id']}: version {answer['version']} is live; running executions"
        " finish on the version they started on"
    )
    return 0


def journeys_simulate(args: argparse.Namespace) -> int | None:
    """Offline: the dry run of a definition for synthetic leads (tsunagu.journeys.simulation).
    With --lead it needs the runtime (the lead, its consent and mails): None says so, and
    ``journeys_forecast`` runs instead."""
    from tsunagu.journeys.simulation import parse_assumptions, report, simulate

    if args.lead:
        return None
    if not args.start:
        raise JourneyCliError("say when the synthetic leads enter: --start 2027-04-28")
    defaults: dict[str, Any] = {setting.name: setting.default for setting in fields(Settings)}
    zone = _time_zone(args.time_zone) or defaults["default_time_zone"]
    with _definition_problems(args.file):
        definition = read_definition(_read(args.file))
        rules = _rules(args, defaults, zone)
        simulation = simulate(
            definition,
            start=_start(args.start, zone),
            leads=args.leads,
            assumptions=parse_assumptions(args.assume or ""),
            rules=rules,
            seed=args.seed,
        )
    print("\n".join(report(simulation, time_zone=zone)))
    return 0


def journeys_forecast(settings: Settings, args: argparse.Namespace) -> int:
    """The dry run's second form: one real lead's next --days days in the definition, read
    from the runtime (or stack) with its consent and recent mails; nothing sent or stored."""
    from tsunagu.commands import leads
    from tsunagu.journeys.simulation import forecast_report, parse_assumptions

    given = _time_zone(args.time_zone)
    operator = services.operator(settings)
    lead = leads.find(services.lead_commands(settings), operator, args.lead)
    zone = given or lead_payload(lead).get("time_zone") or settings.default_time_zone
    defaults = {setting.name: getattr(settings, setting.name) for setting in fields(Settings)}
    with _definition_problems(args.file):
        definition = read_definition(_read(args.file))
        result = journeys.forecast_for_lead(
            services.journey_commands(settings),
            operator,
            definition,
            lead,
            start=_start(args.start, zone) if args.start else None,
            days=args.days,
            assumptions=parse_assumptions(args.assume or ""),
            rules=_rules(args, defaults, zone),
            seed=args.seed,
        )
    print("\n".join(forecast_report(result, time_zone=zone, assumed=args.assume or "")))
    return 0


@contextmanager
def _definition_problems(file: str) -> Iterator[None]:
    """A file that cannot be read, or a definition that does not validate, said per node."""
    try:
        yield
    except OSError as error:
        raise JourneyCliError(f"cannot read {file}: {error.strerror}") from None
    except ValidationFailed as error:
        lines = [f"{p.field}: {p.message}" for p in error.errors]
        raise JourneyCliError(f"{file}:\n  " + "\n  ".join(lines)) from None


def _time_zone(given: str | None) -> str | None:
    """--time-zone, when ZoneInfo knows it: every date of the run is read and shown in it."""
    from tsunagu.journeys.business_time import is_time_zone

    if given is not None and not is_time_zone(given):
        raise JourneyCliError(f"--time-zone {given}: no such time zone (e.g. Asia/Tokyo)")
    return given


def _read(file: str) -> str:
    return Path(file).read_text(encoding="utf-8")


def _start(text: str, zone: str) -> datetime:
    """``2027-04-28`` (10:00 in ``zone``), or an ISO time, with or without its offset."""
    with _option("--start", text, "2027-04-28, or 2027-04-28T10:00+09:00"):
        start = datetime.fromisoformat(text)
    if start.tzinfo is None:
        entered = start.time() if "T" in text else time(10, 0)
        start = datetime.combine(start.date(), entered, ZoneInfo(zone))
    return start


def _rules(args: argparse.Namespace, settings: dict[str, Any], zone: str) -> Any:
    """The business time and cap of ``settings`` (the defaults offline), or the options'."""
    from tsunagu.journeys.business_time import business_calendar, parse_quiet_hours
    from tsunagu.journeys.gate import FrequencyCap
    from tsunagu.journeys.simulation import Rules

    closed = settings["company_closed_days"] if args.closed_days is None else args.closed_days
    quiet = settings["quiet_hours"] if args.quiet_hours is None else args.quiet_hours
    with _option("--closed-days", args.closed_days, "2027-08-13..2027-08-16,2027-12-29"):
        calendar = business_calendar(settings["business_country"], closed or "")
    with _option("--quiet-hours", args.quiet_hours, "20:00-08:00, or empty for none"):
        quiet_hours = parse_quiet_hours(quiet)
    with _option("--frequency-cap", args.frequency_cap, "per_day=1,per_week=3,over=defer"):
        cap = FrequencyCap.parse(args.frequency_cap or settings["frequency_cap"])
    return Rules(calendar=calendar, quiet=quiet_hours, cap=cap, time_zone=zone)


@contextmanager
def _option(option: str, given: str | None, example: str) -> Iterator[None]:
    """An option's value that cannot be read, said in one line with what one looks like (not
    pydantic's report of several lines). A value from the settings (``given`` None) is not the
    option's: its error is left as it is."""
    try:
        yield
    except ValidationError as error:
        if given is None:
            raise
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or option}: {e['msg']}" for e in error.errors()
        )
        raise JourneyCliError(f"{option} {given}: {problems} (e.g. {example})") from None
    except ValueError as error:
        if given is None:
            raise
        raise JourneyCliError(f"{option} {given}: {error} (e.g. {example})") from None


def journeys_schema(args: argparse.Namespace) -> int:
    """Offline: the JSON Schema of journey definitions."""
    sys.stdout.write(json.dumps(definition_schema(), ensure_ascii=False, indent=2) + "\n")
    return 0


def add_journey_commands(groups: Any) -> None:
    journeys = groups.add_parser("journeys", help="journeys: start, pause, resume, status")
    commands = journeys.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="journeys and their status").set_defaults(run=journeys_list)
    compile_ = commands.add_parser(
        "compile", help="check journey definitions and compile them to ASL (no runtime needed)"
    )
    compile_.add_argument("files", nargs="+", metavar="FILE")
    compile_.add_argument("--write", metavar="DIR", help="write DIR/<journey_id>.asl.json")
    compile_.set_defaults(run_offline=journeys_compile)
    commands.add_parser(
        "schema", help="the JSON Schema of journey definitions (no runtime needed)"
    ).set_defaults(run_offline=journeys_schema)
    simulate = commands.add_parser(
        "simulate",
        help="dry run: synthetic leads through a definition, nothing sent (no runtime needed);"
        " or one real lead's next days (--lead)",
    )
    simulate.add_argument("file", metavar="FILE")
    simulate.add_argument(
        "--start",
        help="when they enter: 2027-04-28 (10:00 local) or ISO time (with --lead: default now)",
    )
    simulate.add_argument("--leads", type=positive, default=1000, help="how many (default 1000)")
    simulate.add_argument(
        "--lead", metavar="EMAIL", help="one real lead instead, with its consent and mails"
    )
    simulate.add_argument("--days", type=positive, default=30, help="with --lead: how far (30)")
    simulate.add_argument(
        "--assume",
        help="how leads behave: click=0.3,open=0.5,attend=0.1,view=0.2 (any other event by its"
        " type); an awaited event not named never happens",
    )
    simulate.add_argument("--seed", type=int, default=0, help="the same seed, the same run")
    simulate.add_argument("--time-zone", help="the leads' (default Asia/Tokyo)")
    simulate.add_argument("--closed-days", help="company closed days: 2027-08-13..2027-08-16,...")
    simulate.add_argument("--quiet-hours", help="default 20:00-08:00; empty for none")
    simulate.add_argument("--frequency-cap", help="default per_day=1,per_week=3,over=defer")
    simulate.set_defaults(run_offline=journeys_simulate, run=journeys_forecast)
    publish = commands.add_parser(
        "publish", help="publish a definition as a new version (no deploy); new entries take it"
    )
    publish.add_argument("file", metavar="FILE")
    publish.add_argument("--note", help="what changed, kept with the version")
    publish.set_defaults(run=journeys_publish)
    versions = commands.add_parser("versions", help="a published journey's versions")
    versions.add_argument("journey")
    versions.set_defaults(run=journeys_versions)
    rollback = commands.add_parser(
        "rollback", help="new entries take an earlier version (by default the one before)"
    )
    rollback.add_argument("journey")
    rollback.add_argument("--to", type=positive, metavar="VERSION")
    rollback.set_defaults(run=journeys_rollback)
    show = commands.add_parser(
        "show", help="a journey's record: triggers, re-entry, exits, status, publication (JSON)"
    )
    show.add_argument("journey")
    show.set_defaults(run=journeys_show)
    save = commands.add_parser("save", help="create (or --replace) a journey record from JSON")
    save.add_argument("--file", required=True)
    save.add_argument("--replace", action="store_true")
    save.set_defaults(run=journeys_save)
    set_status = commands.add_parser("set-status", help="draft, active or archived")
    set_status.add_argument("journey")
    set_status.add_argument("status", choices=["draft", "active", "archived"])
    set_status.set_defaults(run=journeys_set_status)
    install = commands.add_parser("install", help="add the shipped journeys and templates")
    install.add_argument("--site-url", required=True, help="your site, for the mails' links")
    install.add_argument("--sender", help="From address (default news@ the sender domain)")
    install.set_defaults(run=journeys_install)
    start = commands.add_parser("start", help="enter a lead, or a segment, into a journey")
    start.add_argument("journey")
    who = start.add_mutually_exclusive_group(required=True)
    who.add_argument("--lead", help="the lead's e-mail address")
    who.add_argument(
        "--segment",
        help="a saved segment's name (segments list), or a filter: stage=lead, "
        "tag=seminar-2026-12, source=web_form, domain=example.jp, silent_days>=90, score<=80, "
        "did=form_submitted/30d, in_segment=hot_accounts (comma-separated, all must hold; "
        "tsunagu segments try shows the filters; the gate still checks consent)",
    )
    start.add_argument(
        "--input", action="append", help="NAME=VALUE added to the execution's input (repeat)"
    )
    start.add_argument(
        "--key",
        help="names this request (default: today in the team's time zone):"
        " the same key never enters a lead twice",
    )
    start.set_defaults(run=journeys_start)
    pause = commands.add_parser("pause", help="hold every lead at its next mail or step")
    pause.add_argument("journey")
    pause.set_defaults(run=journeys_pause)
    resume = commands.add_parser("resume", help="release the held leads by a policy")
    resume.add_argument("journey")
    resume.add_argument("--policy", choices=["send_missed", "skip_missed", "pace", "expire"])
    resume.add_argument("--rate", type=positive, help="pace: leads released per minute")
    resume.set_defaults(run=journeys_resume)
    status = commands.add_parser("status", help="how many leads are parked and where")
    status.add_argument("journey", nargs="?")
    status.set_defaults(run=journeys_status)
    commands.add_parser("stop-all", help="emergency stop for every journey").set_defaults(
        run=journeys_stop_all
    )
    commands.add_parser("resume-all", help="lift the emergency stop").set_defaults(
        run=journeys_resume_all
    )
