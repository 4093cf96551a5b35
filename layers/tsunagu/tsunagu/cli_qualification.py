"""``tsunagu leads score|hot``, ``tsunagu qualification show|set``, ``tsunagu crm sign|pushes``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from tsunagu import services
from tsunagu.errors import ValidationFailed
from tsunagu.settings import Settings


class QualificationCliError(Exception):
    """Printed without a traceback by the CLI's main."""


def leads_score(settings: Settings, args: argparse.Namespace, lead: Any) -> int:
    """Every point behind the lead's score, decay included, and its grade."""
    from tsunagu.qualification.grading import grade, matrix_cell
    from tsunagu.qualification.pipeline import lead_attributes
    from tsunagu.qualification.scoring import explain, score_band

    store = services.qualification_repository(settings)
    config = store.config()
    now = services.clock(settings).now()
    explanation = explain(store.awards_of(lead.lead_id), now, config.scoring)
    fit = grade(lead_attributes(lead), config.grading)
    band = score_band(explanation.score, config.scoring.mql_threshold)
    if args.json:
        print(
            json.dumps(
                {
                    "email": lead.email,
                    "score": explanation.score,
                    "threshold": config.scoring.mql_threshold,
                    "grade": fit.grade.value,
                    "cell": matrix_cell(fit.grade, band),
                    "stage": lead.stage,
                    "lines": [
                        {
                            "event_id": line.event_id,
                            "event_type": line.event_type,
                            "rule_id": line.rule_id,
                            "points": line.points,
                            "decayed": line.decayed,
                        }
                        for line in explanation.lines
                    ],
                },
                indent=2,
                default=str,
            )
        )
        return 0
    print(
        f"{lead.email}: score {explanation.score:g} (MQL at {config.scoring.mql_threshold}), "
        f"grade {fit.grade.value}, {matrix_cell(fit.grade, band)}, stage {lead.stage}"
    )
    for line in explanation.text():
        print(f"  {line}")
    for reason in fit.reasons:
        print(
            f"  fit: {reason.attribute} {reason.value!r} matched {reason.matched!r}: "
            f"{reason.points:+d}"
        )
    for change in lead.stage_history:
        print(f"  stage: {change['at']}  {change['from']} -> {change['to']}  by {change['by']}")
    return 0


def leads_hot(settings: Settings, args: argparse.Namespace) -> int:
    """For sales: leads by score, then grade, then how recently they were active. With decay in
    the rules, the score is recomputed for now: the stored one is as of the lead's last event."""
    from tsunagu.qualification.scoring import current_score

    store = services.qualification_repository(settings)
    model = store.config().scoring
    now = services.clock(settings).now()
    fades = any(rule.half_life_days for rule in model.rules)
    ranked = [
        (current_score(store.awards_of(lead.lead_id), now, model) if fades else lead.score, lead)
        for lead in services.lead_repository(settings).all_leads()
        if lead.score is not None and lead.stage not in ("customer", "disqualified")
    ]
    ranked.sort(key=lambda pair: pair[1].last_activity_at or "", reverse=True)
    ranked.sort(key=lambda pair: pair[1].grade or "Z")
    ranked.sort(key=lambda pair: pair[0] or 0, reverse=True)
    for score, lead in ranked[: args.limit]:
        owner = lead.fields["owner_email"].value if "owner_email" in lead.fields else "-"
        print(
            f"{score or 0:>7.1f}  {lead.grade or '?'}  {lead.stage:<11} "
            f"{lead.last_activity_at or '-':<25} {lead.email}  owner {owner}"
        )
    return 0


def qualification_show(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import qualification

    config = qualification.show(
        services.qualification_commands(settings), services.operator(settings)
    )
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
        )
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
    parked = services.qualification_repository(settings).failed_pushes()
    for push in parked:
        print(json.dumps(push, ensure_ascii=False, default=str))
    print(f"-- {len(parked)} pushes to the CRM failed every retry")
    return 0


def add_qualification_commands(groups: Any, leads: Any, lead_command: Any) -> None:
    score = leads.add_parser("score", help="explain a lead's score: every event and rule")
    score.add_argument("email")
    score.add_argument("--json", action="store_true")
    score.set_defaults(run=lead_command(leads_score))
    hot = leads.add_parser("hot", help="the hot list for sales: score, grade, recency")
    hot.add_argument("--limit", type=int, default=30)
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
