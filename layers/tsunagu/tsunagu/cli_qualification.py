"""``tsunagu leads score|hot``, ``tsunagu qualification show|set``, ``tsunagu crm sign|pushes``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from tsunagu import services
from tsunagu.cli_options import positive
from tsunagu.errors import ValidationFailed
from tsunagu.settings import Settings


class QualificationCliError(Exception):
    """Printed without a traceback by the CLI's main."""


def leads_score(settings: Settings, args: argparse.Namespace) -> int:
    """Every point behind the lead's score, decay included, and its grade."""
    from tsunagu.commands import qualification

    report = qualification.explain_score(
        services.qualification_commands(settings), services.operator(settings), args.email
    )
    if args.json:
        print(json.dumps(report.as_json(), indent=2, default=str, ensure_ascii=False))
        return 0
    lead = report.lead
    print(
        f"{lead.email}: score {report.score:g} (MQL at {report.threshold}), "
        f"grade {report.grade}, {report.cell}, stage {lead.stage}"
    )
    for line in report.explanation.text():
        print(f"  {line}")
    for reason in report.fit:
        print(
            f"  fit: {reason.attribute} {reason.value!r} matched {reason.matched!r}: "
            f"{reason.points:+d}"
        )
    for change in lead.stage_history:
        print(f"  stage: {change['at']}  {change['from']} -> {change['to']}  by {change['by']}")
    return 0


def leads_hot(settings: Settings, args: argparse.Namespace) -> int:
    """For sales: leads by score, then grade, then how recently they were active."""
    from tsunagu.commands import qualification

    ranked = qualification.hot_list(
        services.qualification_commands(settings), services.operator(settings), args.limit
    )
    for hot in ranked:
        lead = hot.lead
        owner = lead.fields["owner_email"].value if "owner_email" in lead.fields else "-"
        print(
            f"{hot.score:>7.1f}  {lead.grade or '?'}  {lead.stage:<11} "
            f"{lead.last_activity_at or '-':<25} {lead.email}  owner {owner}"
        )
    return 0


def qualification_show(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import qualification

    # The rules only: the file ``set`` takes back names no revision (it saves over whatever
    # is saved, as a script does)
    config = qualification.show(
        services.qualification_commands(settings), services.operator(settings)
    ).definition
    print(json.dumps(config.model_dump(mode="json"), indent=2, ensure_ascii=False))
    return 0


def qualification_set(settings: Settings, args: argparse.Namespace) -> int:
    """Replace the sections the file gives (scoring, grading, minimum_grade, owners,
    crm_merge); the others stay."""
    from tsunagu.commands import qualification

    try:
        given = json.loads(Path(args.file).read_text("utf-8"))
    except OSError as error:
        raise QualificationCliError(f"cannot read {args.file}: {error.strerror}") from None
    except ValueError as error:
        raise QualificationCliError(f"{args.file} is not valid: {error}") from None
    if not isinstance(given, dict):
        raise QualificationCliError(f"{args.file} is not valid: not a JSON object")
    try:
        config = qualification.replace_sections(
            services.qualification_commands(settings), services.operator(settings), given
        ).definition
    except ValidationFailed as error:
        raise QualificationCliError(f"{args.file} is not valid: {error.message}") from None
    print(
        f"saved: {len(config.scoring.rules)} scoring rules, MQL at "
        f"{config.scoring.mql_threshold}, minimum grade {config.minimum_grade.value}"
    )
    return 0


def crm_sign(settings: Settings, args: argparse.Namespace) -> int:
    """The headers a CRM sends with this body (for wiring up and testing a CRM)."""
    from tsunagu.qualification.crm import signature_header

    body = Path(args.file).read_bytes()
    timestamp = str(int(time.time()))  # the CRM signs on real time, whatever the runtime's clock
    signature = signature_header(services.crm_signing_key(settings), timestamp, body)
    print(f"x-tsunagu-timestamp: {timestamp}\nx-tsunagu-signature: {signature}")
    return 0


def crm_pushes(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import qualification

    parked = qualification.failed_pushes(
        services.qualification_commands(settings), services.operator(settings)
    )
    for push in parked:
        print(json.dumps(push, ensure_ascii=False, default=str))
    print(f"-- {len(parked)} pushes to the CRM failed every retry")
    return 0


def add_qualification_commands(groups: Any, leads: Any) -> None:
    score = leads.add_parser("score", help="explain a lead's score: every event and rule")
    score.add_argument("email")
    score.add_argument("--json", action="store_true")
    score.set_defaults(run=leads_score)
    hot = leads.add_parser("hot", help="the hot list for sales: score, grade, recency")
    hot.add_argument("--limit", type=positive, default=30)
    hot.set_defaults(run=leads_hot)

    qualification = groups.add_parser("qualification", help="scoring, grading, owner rules")
    commands = qualification.add_subparsers(dest="command", required=True)
    commands.add_parser("show", help="the rules in force (JSON)").set_defaults(
        run=qualification_show
    )
    change = commands.add_parser("set", help="replace sections from a JSON file")
    change.add_argument("--file", required=True)
    change.set_defaults(run=qualification_set)

    crm = groups.add_parser("crm", help="the CRM webhooks")
    crm_commands = crm.add_subparsers(dest="command", required=True)
    sign = crm_commands.add_parser("sign", help="signature headers for a webhook body")
    sign.add_argument("--file", required=True)
    sign.set_defaults(run=crm_sign)
    crm_commands.add_parser("pushes", help="pushes to the CRM that failed").set_defaults(
        run=crm_pushes
    )
