"""``tsunagu reports mail|journey|rebuild``: the figures the counters keep, as a table, CSV or
JSON, and the counters of a range of days counted again."""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import Any

from tsunagu import services
from tsunagu.cli_options import positive
from tsunagu.errors import FieldError, ValidationFailed
from tsunagu.reports.attribution import (
    DEFAULT_LOOKBACK_DAYS,
    Attribution,
    attribution_csv,
    parse_usd_rates,
)
from tsunagu.reports.experiments import ExperimentReport, experiment_csv
from tsunagu.reports.figures import Figures, Part, Report, report_csv
from tsunagu.reports.funnel import funnel_csv
from tsunagu.reports.ranges import report_days
from tsunagu.reports.rebuild_jobs import RebuildJob
from tsunagu.settings import Settings

# (column, what it shows) for the table; CSV and JSON carry every count and rate.
TABLE_COLUMNS = (
    ("sent", "sent"),
    ("bounced", "bounced (hard + soft)"),
    ("opened", "people's opens, unique"),
    ("open%", "open rate"),
    ("clicked", "people's clicks, unique"),
    ("click%", "click rate"),
    ("m.opens", "machines' opens"),
    ("m.clicks", "machines' clicks"),
    ("unsub", "unsubscribed"),
    ("compl", "complaints"),
)


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed([FieldError(name, f"{text!r} is not a day (YYYY-MM-DD)")]) from None


def _range(settings: Settings, args: argparse.Namespace) -> tuple[date, date]:
    """From --from to --to; by default the last 30 days up to today, in the account's time
    zone and on the stack's clock (virtual time on the local runtime)."""
    return report_days(
        services.clock(settings).now(),
        settings.default_time_zone,
        _day(args.since, "from") if args.since else None,
        _day(args.to, "to") if args.to else None,
    )


def reports_mail(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import reports

    first, last = _range(settings, args)
    ports = services.report_commands(settings)
    report = reports.mail_report(ports, services.operator(settings), args.template, first, last)
    return _show(report, args.format)


def reports_journey(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import reports

    first, last = _range(settings, args)
    ports = services.report_commands(settings)
    report = reports.journey_report(ports, services.operator(settings), args.journey, first, last)
    return _show(report, args.format)


def reports_experiment(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import reports

    first, last = _range(settings, args)
    ports = services.report_commands(settings)
    found = reports.experiment_report(
        ports, services.operator(settings), args.journey, args.node, first, last, args.version
    )
    if args.format == "json":
        print(json.dumps(found.as_dict(), indent=2, ensure_ascii=False))
    elif args.format == "csv":
        print(experiment_csv(found), end="")
    else:
        print(experiment_table(found))
    return 0


def experiment_table(found: ExperimentReport) -> str:
    """Each arm's mails, people's clicks and conversions, then each arm against the baseline
    (a holdout's control group, else the first arm) in words."""
    shown = found.as_dict()
    out = [
        f"experiment {found.node} of {found.journey_id}: {found.first_day} to {found.last_day}"
        " (people's clicks per mail sent after the split, never judged on opens; conversions"
        " per lead assigned)",
        f"  {'arm':<14} {'assigned':>9} {'sent':>7} {'clicked':>8} {'rate':>7}"
        f" {'converted':>10} {'rate':>7}",
    ]
    for arm in shown["arms"]:
        rate = "-" if arm["click_rate"] is None else f"{arm['click_rate'] * 100:.2f}%"
        converted = arm["conversion_rate"]
        conversion = "-" if converted is None else f"{converted * 100:.2f}%"
        out.append(
            f"  {arm['arm']:<14} {arm['assigned']:>9} {arm['sent']:>7}"
            f" {arm['clicked_people_unique']:>8} {rate:>7} {arm['converted']:>10} {conversion:>7}"
        )
    out += _verdicts(shown["versus"], "clicks", "mails")
    out += _verdicts(shown["conversions_versus"], "conversions", "leads")
    if not shown["arms"]:
        out.append("  (nothing counted for this split in these days)")
    return "\n".join(out)


def _verdicts(comparisons: list[dict[str, Any]], what: str, per: str) -> list[str]:
    out = []
    for versus in comparisons:
        head = f"  {what}: {versus['arm']} vs {versus['baseline']}"
        if versus["interval"] is None:
            out.append(f"{head}: not enough {per} yet")
            continue
        low, high = (x * 100 for x in versus["interval"])
        needed = versus[f"more_{per}_needed_per_arm"]
        verdict = (
            "a real difference (p < 0.05)"
            if versus["significant"]
            else f"no significant difference yet; about {needed} more {per} per arm would tell,"
            " if the observed difference is real"
            if needed is not None
            else "no difference observed yet, so none can be estimated"
        )
        out.append(
            f"{head}: {versus['difference'] * 100:+.2f} points"
            f" (95% interval {low:+.2f} to {high:+.2f}), p = {versus['p_value']:.4f}: {verdict}"
        )
    return out


def reports_attribution(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import reports

    first, last = _range(settings, args)
    ports = services.report_commands(settings)
    found = reports.attribution_report(
        ports,
        services.operator(settings),
        first,
        last,
        args.lookback_days,
        parse_usd_rates(args.usd_rate, "usd_rate"),
    )
    if args.format == "json":
        print(json.dumps(found.as_dict(), indent=2, ensure_ascii=False))
    elif args.format == "csv":
        print(attribution_csv(found), end="")
    else:
        print(attribution_table(found))
    return 0


def attribution_table(found: Attribution) -> str:
    """Per journey, then per mail: deals and touches, revenue by each model, cost and ROI."""
    shown = found.as_dict()

    def money(amounts: dict[str, str]) -> str:
        return ", ".join(f"{amount} {currency}" for currency, amount in amounts.items()) or "-"

    out = [
        f"won deals closed {found.first_day} to {found.last_day}: {found.deals_won},"
        f" {money(shown['won'])}; touches: people's opens and clicks in the"
        f" {found.lookback_days} days before each close",
        f"  unattributed (no touch): {found.deals_unattributed} deals,"
        f" {money(shown['unattributed']['revenue'])}",
    ]
    for kind, rows, key in (("journey", shown["journeys"], "journey_id"),
                            ("mail", shown["mails"], "template_id")):  # fmt: skip
        for row in rows:
            revenue = row["revenue"]
            line = (
                f"  {kind} {row[key]}: {row['deals']} deals, {row['touches']} touches;"
                f" first touch {money(revenue['first_touch'])};"
                f" last touch {money(revenue['last_touch'])}; linear {money(revenue['linear'])}"
            )
            if kind == "journey":
                cost = "not priced" if row["cost_usd"] is None else f"${row['cost_usd']}"
                roi = row["roi"]["linear"]
                line += f"; AWS cost {cost}; ROI (linear) {'-' if roi is None else roi + 'x'}"
            out.append(line)
    if not found.journeys and not found.mails:
        out.append("  (no touch credited in these days)")
    for source in shown["sources"]:
        out.append(
            f"  leads first from {source['channel']} (form {source['form']}):"
            f" {source['deals']} won deals, {money(source['revenue'])}"
        )
    return "\n".join(out)


def reports_funnel(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import reports

    first, last = _range(settings, args)
    ports = services.report_commands(settings)
    found = reports.funnel_report(ports, services.operator(settings), first, last, args.by)
    if args.format == "json":
        print(json.dumps(found.as_dict(), indent=2, ensure_ascii=False))
        return 0
    if args.format == "csv":
        print(funnel_csv(found), end="")
        return 0
    print(
        f"funnel of the leads created {found.first_day} to {found.last_day}, by {found.by}"
        " (reached; conversion from the stage before; median days from it)"
    )
    for group in (*found.groups, found.total):
        cells = [
            f"{s.name} {s.reached}"
            + ("" if s.conversion is None else f" ({s.conversion * 100:.0f}%")
            + ("" if s.median_days is None else f", {s.median_days:g} d")
            + ("" if s.conversion is None else ")")
            for s in group.stages
        ]
        print(f"  {group.name:<16} " + "  ->  ".join(cells))
    return 0


def reports_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    """Count the days again in this call (the CLI has no deadline), or with --background as
    the admin API does with days it cannot count in its time; --status: a background
    rebuild's progress."""
    from tsunagu.commands import reports

    ports = services.report_commands(settings)
    if args.status is not None:
        if args.since or args.to or args.background:
            problem = FieldError("status", "--status takes no --from, --to or --background")
            raise ValidationFailed([problem])
        job = reports.rebuild_progress(ports, services.operator(settings), args.status)
        return _print_rebuild(job, json_output=args.json)
    if not (args.since and args.to):
        message = "give the days (--from and --to), or a rebuild to follow (--status)"
        raise ValidationFailed([FieldError("from" if not args.since else "to", message)])
    first, last = _day(args.since, "from"), _day(args.to, "to")
    done = reports.rebuild(
        ports, services.operator(settings), first, last, background=args.background
    )
    if isinstance(done, RebuildJob):
        _print_rebuild(done, json_output=args.json)
        if not args.json:
            print(f"  follow it: tsunagu reports rebuild --status {done.rebuild_id}")
        return 0
    print(
        f"{first} to {last}: {done.events} events read, {done.counted} counted;"
        f" {done.rows} counter rows written, {done.rows_removed} replaced"
    )
    return 0


def _print_rebuild(job: RebuildJob, *, json_output: bool) -> int:
    """Where a background rebuild is; 1 once it has failed or was stopped."""
    from tsunagu.imports.jobs import progress_bar

    if json_output:
        print(json.dumps(job.as_json(), indent=2, ensure_ascii=False))
    else:
        print(
            f"{job.rebuild_id}  {job.status:<8} {job.first_day} to {job.last_day}"
            f"  {progress_bar(job.days_done, job.days_total)}"
            f"  {job.days_done} of {job.days_total} days"
        )
        print(f"  {job.summary}")
        if job.error:
            print(f"  {job.error}")
    return 1 if job.status in ("failed", "stopped") else 0


def _show(report: Report, form: str) -> int:
    if form == "json":
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    elif form == "csv":
        print(report_csv(report), end="")
    else:
        print(report_table(report))
    return 0


def _label(part: Part) -> str:
    version = "deployed" if part.version == 0 else f"v{part.version}"
    return f"{version} {part.node}" if part.node else version


def _cells(figures: Figures) -> list[str]:
    rates = figures.rates()

    def percent(name: str) -> str:
        value = rates[name]
        return "-" if value is None else f"{value * 100:.1f}%"

    return [
        str(figures.get("sent")),
        str(figures.get("bounced_hard") + figures.get("bounced_soft")),
        str(figures.get("opened_people_unique")),
        percent("open_rate"),
        str(figures.get("clicked_people_unique")),
        percent("click_rate"),
        str(figures.get("opened_machines")),
        str(figures.get("clicked_machines")),
        str(figures.get("unsubscribed")),
        str(figures.get("complained")),
    ]


def _whole_version(report: Report, part: Part) -> bool:
    """A journey version as a whole (no node): its leads' conversions and MQLs, no mail."""
    return report.kind == "journey" and part.node is None


def report_table(report: Report) -> str:
    """The report for a terminal: one line per version (or node), the total last, then the
    machines' activity by reason, each decision node's outcomes and each journey version's
    conversions and MQLs (as the console shows them: not a row of mail figures, all 0)."""
    header = ["", *(name for name, _ in TABLE_COLUMNS)]
    lines = [[_label(p), *_cells(p.figures)] for p in report.parts if not _whole_version(report, p)]
    lines.append(["total", *_cells(report.total)])
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )

    out = [
        f"{report.kind} {report.subject_id}: {report.first_day} to {report.last_day}"
        f" ({report.time_zone} days)",
        line(header),
        *(line(row) for row in lines),
    ]
    for action in ("opened", "clicked"):
        reasons = report.total.machine_reasons(action)
        if reasons:
            shown = ", ".join(f"{reason} {n}" for reason, n in reasons.items())
            out.append(f"machines' {action.replace('ed', 's')} by reason: {shown}")
    for part in report.parts:
        outcomes = part.figures.outcomes()
        if outcomes:
            shown = ", ".join(f"{name} {n}" for name, n in outcomes.items())
            out.append(f"{_label(part)}: {part.figures.get('decided')} decided - {shown}")
    for part in report.parts:
        if _whole_version(report, part):
            out.append(
                f"{_label(part)} as a whole: {part.figures.get('converted')} leads converted,"
                f" {part.figures.get('mql')} became MQLs"
            )
    out += _cost_lines(report)
    if not report.parts:
        out.append("(nothing counted in these days)")
    out.append("columns: " + "; ".join(f"{name} = {meaning}" for name, meaning in TABLE_COLUMNS))
    return "\n".join(out)


def _cost_lines(report: Report) -> list[str]:
    """A journey's AWS cost at list price, per version, in words."""
    out = []
    for version, cost in sorted(report.costs.items(), reverse=True):
        label = "deployed" if version == 0 else f"v{version}"
        if cost is None:
            out.append(f"AWS cost of {label}: not priced (its definition is not kept)")
            continue
        out.append(
            f"AWS cost of {label} at list price: ${cost.total_usd} ({cost.executions} executions,"
            f" {cost.transitions} state transitions ${cost.step_functions_usd},"
            f" {cost.invocations} Lambda invocations ${cost.lambda_usd},"
            f" {cost.mails} mails ${cost.ses_usd})"
        )
    return out


def add_report_commands(groups: Any) -> None:
    reports = groups.add_parser("reports", help="figures per mail and journey, from the counters")
    commands = reports.add_subparsers(dest="command", required=True)
    for name, target, run, what in (
        ("mail", "template", reports_mail, "a mail template, per version"),
        ("journey", "journey", reports_journey, "a journey, per version and node"),
    ):
        parser = commands.add_parser(name, help=what)
        parser.add_argument(target)
        parser.add_argument("--from", dest="since", metavar="YYYY-MM-DD", help="first day")
        parser.add_argument("--to", metavar="YYYY-MM-DD", help="last day (default: today)")
        parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
        parser.set_defaults(run=run)
    funnel = commands.add_parser(
        "funnel", help="the leads created in the days: MQL, SQL, opportunity, customer"
    )
    funnel.add_argument("--by", choices=("channel", "form"), default="channel")
    funnel.add_argument("--from", dest="since", metavar="YYYY-MM-DD", help="first day")
    funnel.add_argument("--to", metavar="YYYY-MM-DD", help="last day (default: today)")
    funnel.add_argument("--format", choices=("table", "csv", "json"), default="table")
    funnel.set_defaults(run=reports_funnel)
    experiment = commands.add_parser(
        "experiment",
        aliases=["experiments"],
        help="a journey's split or holdout: arms, people's clicks, conversions, the test",
    )
    experiment.add_argument("journey")
    experiment.add_argument("node", help="the split node's id")
    experiment.add_argument("--version", type=positive, help="the journey version (the latest)")
    experiment.add_argument("--from", dest="since", metavar="YYYY-MM-DD", help="first day")
    experiment.add_argument("--to", metavar="YYYY-MM-DD", help="last day (default: today)")
    experiment.add_argument("--format", choices=("table", "csv", "json"), default="table")
    experiment.set_defaults(run=reports_experiment)
    credited = commands.add_parser(
        "attribution", help="won deals' revenue credited to journeys and mails, with ROI"
    )
    credited.add_argument("--from", dest="since", metavar="YYYY-MM-DD", help="first close day")
    credited.add_argument("--to", metavar="YYYY-MM-DD", help="last close day (default: today)")
    credited.add_argument(
        "--lookback-days",
        type=int,
        default=DEFAULT_LOOKBACK_DAYS,
        help=f"touches up to this many days before a deal closed count ({DEFAULT_LOOKBACK_DAYS})",
    )
    credited.add_argument(
        "--usd-rate",
        action="append",
        default=[],
        metavar="CUR=RATE",
        help="units of a currency per US dollar, for ROI (e.g. JPY=150; 0.000001 to 1000000000);"
        " repeatable",
    )
    credited.add_argument("--format", choices=("table", "csv", "json"), default="table")
    credited.set_defaults(run=reports_attribution)
    rebuild = commands.add_parser(
        "rebuild", help="count the days again from the stored events (after a re-judgement)"
    )
    rebuild.add_argument("--from", dest="since", metavar="YYYY-MM-DD")
    rebuild.add_argument("--to", metavar="YYYY-MM-DD")
    rebuild.add_argument(
        "--background",
        action="store_true",
        help="count the days a day at a time on the stack's state machine, as the admin API does"
        " with more days than fit its request; prints the rebuild's id",
    )
    rebuild.add_argument(
        "--status", metavar="REBUILD_ID", help="a background rebuild's progress (days done)"
    )
    rebuild.add_argument("--json", action="store_true", help="a background rebuild as JSON")
    rebuild.set_defaults(run=reports_rebuild)
