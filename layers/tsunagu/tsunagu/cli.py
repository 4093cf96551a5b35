"""``tsunagu``: the marketer's and operator's command line.

By default it talks to the local runtime started with ``make up`` (found through
``.tsunagu/runtime.json`` in this folder or a parent). ``--stack NAME`` talks to a deployed stack
instead, reading table names from its CloudFormation outputs with your AWS credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tsunagu import services
from tsunagu.analytics.query import AnalyticsError
from tsunagu.cli_analytics import add_analytics_commands
from tsunagu.cli_api import ApiCliError, add_api_commands
from tsunagu.cli_clock import ClockCliError, add_clock_commands
from tsunagu.cli_console import ConsoleCliError, add_console_commands
from tsunagu.cli_functions import FunctionCliError, invoke_function
from tsunagu.cli_imports import ImportCliError, add_import_commands
from tsunagu.cli_journeys import JourneyCliError, add_journey_commands
from tsunagu.cli_options import at_least_zero, positive
from tsunagu.cli_qualification import QualificationCliError, add_qualification_commands
from tsunagu.cli_reports import add_report_commands
from tsunagu.cli_segments import SegmentCliError, add_export_command, add_segment_commands
from tsunagu.clock import isoformat
from tsunagu.errors import TsunaguError
from tsunagu.settings import Settings

LOCAL_STATE = Path(".tsunagu") / "runtime.json"
OUTPUT_TO_SETTING = {
    "Stage": "TSUNAGU_STAGE",
    "LeadsTableName": "TSUNAGU_LEADS_TABLE",
    "LeadIdentitiesTableName": "TSUNAGU_LEAD_IDENTITIES_TABLE",
    "EventsTableName": "TSUNAGU_EVENTS_TABLE",
    "ConsentTableName": "TSUNAGU_CONSENT_TABLE",
    "FormsTableName": "TSUNAGU_FORMS_TABLE",
    "IdempotencyTableName": "TSUNAGU_IDEMPOTENCY_TABLE",
    "SitesTableName": "TSUNAGU_SITES_TABLE",
    "TrackingSecretArn": "TSUNAGU_TRACKING_SECRET_ARN",
    "TemplatesTableName": "TSUNAGU_TEMPLATES_TABLE",
    "JourneyWaitsTableName": "TSUNAGU_JOURNEY_WAITS_TABLE",
    "JourneysTableName": "TSUNAGU_JOURNEYS_TABLE",
    "QualificationTableName": "TSUNAGU_QUALIFICATION_TABLE",
    "LeadTermsTableName": "TSUNAGU_LEAD_TERMS_TABLE",
    "AuditLogTableName": "TSUNAGU_AUDIT_TABLE",
    "ReportsTableName": "TSUNAGU_REPORTS_TABLE",
    "ImportsTableName": "TSUNAGU_IMPORTS_TABLE",
    "SegmentsTableName": "TSUNAGU_SEGMENTS_TABLE",
    "ImportsBucketName": "TSUNAGU_IMPORTS_BUCKET",
    "ImportStateMachineArn": "TSUNAGU_IMPORT_STATE_MACHINE_ARN",
    "RebuildReportsStateMachineArn": "TSUNAGU_REBUILD_STATE_MACHINE_ARN",
    "CrmWebhookSecretArn": "TSUNAGU_CRM_SECRET_ARN",
    "SiteSigningSecretArn": "TSUNAGU_SITE_SECRET_ARN",
    "StateMachineArnPrefix": "TSUNAGU_STATE_MACHINE_ARN_PREFIX",
    "ApiUrl": "TSUNAGU_API_URL",
}


PIPE_CLOSED = 128 + 13
"""The exit status of a command ended by SIGPIPE, as a shell reports it."""


class CliError(Exception):
    """Something the user can fix; printed without a traceback."""


def _local_settings() -> tuple[Settings, dict[str, str]]:
    for folder in [Path.cwd(), *Path.cwd().parents]:
        state_file = folder / LOCAL_STATE
        if state_file.exists():
            state = json.loads(state_file.read_text())
            os.environ.update(
                {
                    "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing",
                    **state["environment"],
                }
            )
            return Settings.from_environ(state["environment"]), state.get("functions", {})
    raise CliError("the local runtime is not running here: start it with `make up`")


FUNCTION_OUTPUTS = {
    "SendEmailFunction": "SendEmailFunctionName",
    "SesFeedbackFunction": "SesFeedbackFunctionName",
    "PublishJourneyFunction": "PublishJourneyFunctionName",
}


def _stack_settings(stack_name: str, region: str | None) -> tuple[Settings, dict[str, str]]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        cloudformation = boto3.client("cloudformation", region_name=region)
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as error:  # no such stack, no right to read it, throttled
        raise CliError(f"--stack {stack_name}: {error.response['Error']['Message']}") from None
    except BotoCoreError as error:  # no region, no credentials, no network
        raise CliError(f"--stack {stack_name}: {error}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    needed = [*OUTPUT_TO_SETTING, *FUNCTION_OUTPUTS.values()]
    missing = [key for key in needed if key not in outputs]
    if missing:  # another stack's name, or one deployed by an older template
        named = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if missing[3:] else "")
        raise CliError(
            f"stack {stack_name} has no output {named}: is it a Tsunagu stack, deployed from"
            " this version's template?"
        )
    environ = {setting: outputs[key] for key, setting in OUTPUT_TO_SETTING.items()}
    # Mail the CLI renders names the links the stack's own functions name (their
    # TSUNAGU_API_URL): a team's domain when PublicBaseUrl is set, not execute-api. A stack
    # deployed before the PublicUrl output has only ApiUrl.
    environ["TSUNAGU_API_URL"] = outputs.get("PublicUrl", outputs["ApiUrl"])
    environ["AWS_REGION"] = cloudformation.meta.region_name
    functions = {function: outputs[key] for function, key in FUNCTION_OUTPUTS.items()}
    return Settings.from_environ(environ), functions


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


# ---------------------------------------------------------------- leads
# Each lead command is a thin layer over a use case (tsunagu.commands.leads), run as the
# operator (services.operator), which the audit log records for every change.
def leads_get(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import leads

    ports, operator = services.lead_commands(settings), services.operator(settings)
    _print(leads.show(ports, operator, args.email, events=args.events))
    return 0


def _find_lead(settings: Settings, email: str) -> Any:
    from tsunagu.commands import leads

    return leads.find(services.lead_commands(settings), services.operator(settings), email)


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for pair in values:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise CliError(f"{option} takes NAME=VALUE, not {pair!r}")
        pairs[name] = value
    return pairs


def leads_set(settings: Settings, args: argparse.Namespace) -> int:
    """A person's change (marketing or sales at the CLI): ranks as the sales channel."""
    from tsunagu.commands import leads
    from tsunagu.leads.updates import LeadUpdate

    try:
        update = LeadUpdate(
            stage=args.stage,
            crm_status=args.crm_status,
            add_tags=args.tag,
            remove_tags=args.untag,
            fields=_pairs(args.field, "--field"),
        )
    except ValidationError as error:
        raise CliError("; ".join(e["msg"] for e in error.errors())) from None
    changed, events = leads.update(
        services.lead_commands(settings), services.operator(settings), args.email, update
    )
    print(f"{changed.email}: " + (", ".join(e.type for e in events) or "nothing changed"))
    return 0


def leads_record(settings: Settings, args: argparse.Namespace) -> int:
    """An offline event (a seminar's attendee list, a trade-show scan) on the lead's stream."""
    from tsunagu.commands import leads

    event = leads.record_event(
        services.lead_commands(settings),
        services.operator(settings),
        args.email,
        args.kind,
        _pairs(args.prop, "--prop"),
    )
    print(f"{args.email}: {args.kind} recorded at {event.occurred_at}")
    return 0


def leads_search(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import leads
    from tsunagu.leads.search import LeadQuery
    from tsunagu.store.lead_search import WORD_MATCHES

    asked = {
        "q": args.word, "stage": args.stage, "owner": args.owner, "tag": args.tag,
        "grade": args.grade, "score_min": args.score_min, "score_max": args.score_max,
        "limit": args.limit, "cursor": args.cursor,
    }  # fmt: skip
    try:
        query = LeadQuery.model_validate({k: v for k, v in asked.items() if v is not None})
    except ValidationError as error:
        raise CliError("; ".join(f"{e['loc'][0] if e['loc'] else 'search'}: {e['msg']}"
                                 for e in error.errors())) from None  # fmt: skip
    page = leads.search(services.lead_commands(settings), services.operator(settings), query)
    for lead in page.leads:
        name = lead.fields["name"].value if "name" in lead.fields else ""
        company = lead.fields["company"].value if "company" in lead.fields else ""
        score = "-" if lead.score is None else f"{lead.score:.0f}"
        print(f"{lead.email}\t{name}\t{company}\t{lead.stage}\t{score}\t{lead.grade or '-'}")
    more = f"; more: --cursor {page.next_cursor}" if page.next_cursor else ""
    if page.truncated:
        more += f"; the word matched more leads than a search ranks ({WORD_MATCHES:,}): type more"
    found = f"{len(page.leads)} lead" + ("" if len(page.leads) == 1 else "s")
    entries = f"{page.examined:,} index " + ("entry" if page.examined == 1 else "entries")
    print(f"-- {found} ({entries} read){more}")
    return 0


def leads_reindex(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import leads

    written = leads.reindex(services.lead_commands(settings), services.operator(settings))
    print(f"{written} leads given their search attributes and grade")
    return 0


def leads_timeline(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import leads
    from tsunagu.event_kinds import EMAIL_REPLIED
    from tsunagu.leads.history import is_claimed_history

    page = leads.timeline(
        services.lead_commands(settings), services.operator(settings), args.email, limit=args.limit
    )
    events = page.events
    earlier = f"earlier events are not shown: raise --limit (now {args.limit})"
    if args.json:
        _print([{"type": e.type, "at": e.occurred_at, **e.properties} for e in events])
        if page.earlier:  # on stderr: stdout is the JSON
            print(earlier, file=sys.stderr)
        return 0
    human = automated = 0
    for event in events:
        props = event.properties
        # What the browser did before the form linked it to the lead (tsunagu.leads.history)
        who = "anonymous " if event.lead_id is None or is_claimed_history(props) else ""
        flag = ""
        if props.get("automated"):
            automated += 1
            flag = f"  [automated: {', '.join(props.get('reasons', []))}]"
        elif event.type in ("mail_opened", "link_clicked", EMAIL_REPLIED) or "site_id" in props:
            human += 1  # mail activity (a reply too) and the site's page views and events
        detail = props.get("url") or props.get("form_id") or props.get("message_id") or ""
        if event.type in ("mail_skipped", "mail_deferred"):  # which mail, and why not now
            detail = f"{props.get('template_id', '')}: {props.get('reason', '')}"
            if props.get("until"):
                detail += f" until {props['until']}"
        if event.type == "journey_decision":  # why this branch: the values the decision read
            why = ", ".join(f"{k}={v}" for k, v in sorted((props.get("values") or {}).items()))
            control = " (control group)" if props.get("control_group") else ""
            detail = f"{props.get('journey_id')}.{props.get('node')} -> {props.get('outcome')}"
            detail += f"{control}  [{why}]"
        utm = props.get("utm") or {}
        campaign = f"  utm={','.join(f'{k}:{v}' for k, v in utm.items())}" if utm else ""
        print(f"{event.occurred_at}  {who}{event.type:<16} {detail}{campaign}{flag}")
    print(
        f"-- {len(events)} events; mail and site activity: {human} by people, {automated} automated"
    )
    if page.earlier:
        print(f"-- {earlier}")
    return 0


# ---------------------------------------------------------------- sites
def sites_create(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.tracking.sites import SiteDefinition

    site, revision = _read_document("site", SiteDefinition, args.file)
    store = services.site_repository(settings)
    _store(settings, "site", site.site_id, site, store, args, revision)
    return 0


def sites_list(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import definitions

    sites = definitions.listing(
        _definition_ports(settings), services.operator(settings), "site",
        services.site_repository(settings),
    )  # fmt: skip
    for site in (found.definition for found in sites):
        print(f"{site.site_id}\t{site.name}\t{', '.join(site.allowed_origins)}")
    return 0


def sites_rotate_secret(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import sites

    made = sites.rotate_signing_secret(
        services.site_commands(settings),
        services.operator(settings),
        args.site,
        revoke_previous=args.revoke_previous,
    )
    print(f"site {made.site_id!r}: {'new' if made.replaced else 'first'} signing secret")
    print(made.secret)
    notes = [
        "shown this once (Tsunagu keeps only its id); the site's server signs /t/events posts"
        " with it (README, Tracking from your server)"
    ]
    if made.previous_accepted_until is not None:
        notes.append(
            f"the previous secret is still accepted until {made.previous_accepted_until}"
            " (24 hours): switch every server to this one before then"
        )
    elif made.replaced:
        notes.append("the previous secret is revoked: it no longer verifies (within 30 seconds)")
    if made.ended_overlap_until is not None:
        notes.append(
            "the secret replaced before it, which was accepted until"
            f" {made.ended_overlap_until}, no longer verifies (one previous secret only)"
        )
    print("-- " + "; ".join(notes), file=sys.stderr)
    return 0


# ---------------------------------------------------------------- tracking links
def tracking_links(settings: Settings, args: argparse.Namespace) -> int:
    """Signed open, click and honeypot URLs for a lead: what a sent mail would carry."""
    from tsunagu.ids import new_id
    from tsunagu.tracking.tokens import TokenKind, TrackingToken

    lead = _find_lead(settings, args.email)
    signer = services.token_signer(settings)
    now = services.clock(settings).now()
    message_id = args.message or new_id("msg", now)
    sent_at = int(now.timestamp()) - args.sent_seconds_ago

    api = (args.api or settings.api_url or "").rstrip("/")
    if not api:
        raise CliError("no API URL is known here: give --api https://...")

    def url(kind: TokenKind, path: str, link_id: str | None, target: str | None) -> str:
        token = TrackingToken(kind, message_id, lead.lead_id, sent_at, target, link_id)
        return f"{api}{path}{signer.sign(token)}"

    _print(
        {
            "message_id": message_id,
            "sent_at": isoformat(now) if not args.sent_seconds_ago else sent_at,
            "open_pixel": url(TokenKind.OPEN, "/o/", None, None) + ".gif",
            "links": [
                url(TokenKind.CLICK, "/c/", f"link{i}", target)
                for i, target in enumerate(args.url, start=1)
            ],
            "honeypot": url(TokenKind.HONEYPOT, "/c/", "honeypot", args.url[0]),
        }
    )
    return 0


# ---------------------------------------------------------------- mail
def templates_create(settings: Settings, args: argparse.Namespace) -> int:
    """Store the template in ``--file`` (bare, or as ``templates get`` or the admin API's GET
    printed it) as its next version. Over whatever is latest, as it always was: the file may
    come from another stack, whose ``version`` counts that stack's versions. With
    ``--if-unchanged`` only over the file's ``version``, as the console's editor saves, so a
    colleague's version stored since does not silently stop being the latest; a template this
    stack has not is created all the same."""
    from tsunagu.commands import mail
    from tsunagu.errors import ConcurrentUpdate
    from tsunagu.mail.templates import MailTemplate

    path = args.file
    template = _read_definition(MailTemplate, path)
    if args.if_unchanged and not template.version:
        raise CliError(f'--if-unchanged needs the "version" the template was read at in {path}')
    if args.html:
        # Validated whole, as the JSON is: an empty or over-long body must be refused here
        html = _read_text(args.html)
        template = _valid(MailTemplate, {**template.model_dump(), "html": html}, args.html)
    try:
        stored = mail.save_template(
            services.mail_commands(settings), services.operator(settings), template,
            over=template.version if args.if_unchanged else None, over_if_stored=True,
        )  # fmt: skip
    except ConcurrentUpdate as error:
        # (the store's words are for an editor - "someone saved it meanwhile" - not for a file)
        now = getattr(error, "revision", None)
        raise CliError(
            f"template {template.template_id!r} was saved since {path} was exported (its version"
            f" {template.version}, now {now}); nothing was stored: export it again, or load it"
            " without --if-unchanged to store it over whatever is latest"
        ) from None
    print(f"template {stored.template_id!r} stored as version {stored.version}")
    return 0


def templates_get(settings: Settings, args: argparse.Namespace) -> int:
    """A template's latest version, or --version N, as GET /admin/templates/{t} answers it:
    `templates create --file` takes it back (with --if-unchanged, over that version only)."""
    from tsunagu.commands import mail

    found = mail.show(
        services.mail_commands(settings), services.operator(settings), args.template, args.version
    )
    _print(found.model_dump(mode="json"))
    return 0


def templates_list(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import mail

    for template in mail.listing(services.mail_commands(settings), services.operator(settings)):
        print(f"{template.template_id}\tv{template.version}\t{template.topic}\t{template.subject}")
    return 0


def templates_versions(settings: Settings, args: argparse.Namespace) -> int:
    """A template's history, the newest version first."""
    from tsunagu.commands import mail

    for version in mail.versions(
        services.mail_commands(settings), services.operator(settings), args.template
    ):
        by = version.saved_by or "-"
        print(f"v{version.version}\t{version.created_at}\t{by}\t{version.subject}")
    return 0


def templates_preview(settings: Settings, args: argparse.Namespace) -> int:
    """The template as a lead would receive it now (links inert); nothing is sent."""
    from tsunagu.commands import mail

    shown = mail.preview(
        services.mail_commands(settings),
        services.operator(settings),
        args.template,
        args.email,
        args.version,
    )
    if args.html:
        print(shown.mail.html)
        return 0
    print(f"template {shown.template.template_id!r} version {shown.template.version}")
    print(f"Subject: {shown.mail.subject}\n")
    print(shown.mail.text)
    return 0


def templates_test_send(settings: Settings, args: argparse.Namespace) -> int:
    """Mail the template (links inert, "[TEST]" before the subject) to an allowlisted colleague."""
    from tsunagu.commands import mail

    sent = mail.send_proof(
        services.mail_commands(settings),
        services.operator(settings),
        args.template,
        args.to,
        lead_email=args.lead,
        version=args.version,
    )
    print(f"sent version {sent.version} to {sent.to}: {sent.subject}")
    return 0


def mail_send(settings: Settings, args: argparse.Namespace) -> int:
    """Send one mail through send_email, exactly as a journey step does. Without --version it
    sends the latest version stored now: a warm send function keeps the latest it read for
    form_cache_seconds, and someone who has just stored a correction means to send that.

    Each command is a new send unless --key names it: a key made of the clock's instant would
    be the same key again on the runtime's virtual clock, which stands still between commands
    (a correction refused as a conflicting request, the same mail "sent" without being sent)."""
    from tsunagu.ids import new_id

    lead = _find_lead(settings, args.email)
    key = args.key or new_id("cli", services.clock(settings).now())
    payload = {"lead_id": lead.lead_id, "template_id": args.template, "idempotency_key": key}
    version = args.version
    if version is None:
        latest = services.mail_repository(settings).template(args.template, None)
        version = latest.version if latest else None  # none stored: send_email says so
    if version:
        payload["template_version"] = version
    result = invoke_function(args, "SendEmailFunction", payload)
    _print(result)
    if result.get("replayed"):  # on stderr: stdout is the outcome, as the function answered
        print(
            f"tsunagu: key {key!r} was used before: its first outcome, nothing sent now",
            file=sys.stderr,
        )
    return 0


def leads_suppress(settings: Settings, args: argparse.Namespace) -> int:
    """Stop every mail to a lead (a person asked by phone, a role address, a legal hold)."""
    from tsunagu.commands import leads

    lead = leads.suppress(
        services.lead_commands(settings), services.operator(settings), args.email, args.note
    )
    print(f"{lead.email}: suppressed (manual); no mail of any kind will be sent")
    return 0


def leads_unsuppress(settings: Settings, args: argparse.Namespace) -> int:
    """Let mail reach a suppressed lead again (never after a complaint)."""
    from tsunagu.commands import leads

    lifted = leads.unsuppress(
        services.lead_commands(settings), services.operator(settings), args.email, args.note
    )
    print(f"{args.email}: no longer suppressed (was {lifted.reason} since {lifted.at})")
    return 0


def exclusions_list(settings: Settings, args: argparse.Namespace) -> int:
    """The account's exclusions: no marketing mail goes to them."""
    from tsunagu.commands import mail

    found = mail.exclusions(services.mail_commands(settings), services.operator(settings))
    for entry in found.entries:
        print(f"{entry.at}  {entry.list:<12}  {entry.kind:<7}  {entry.value}  {entry.note or ''}")
    if not found.entries:
        print("(no exclusions)")
    return 0


def exclusions_add(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import mail

    ports, actor = services.mail_commands(settings), services.operator(settings)
    entry = mail.exclude(ports, actor, args.value, args.list, args.note)
    print(f"excluded {entry.kind} {entry.value} ({entry.list}): marketing mail to it is skipped")
    return 0


def exclusions_remove(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import mail

    ports, actor = services.mail_commands(settings), services.operator(settings)
    gone = mail.include_again(ports, actor, args.value)
    print(f"{gone.value} is no longer excluded (it was on {gone.list})")
    return 0


def suppressions_list(settings: Settings, args: argparse.Namespace) -> int:
    """The suppression list, newest first."""
    from tsunagu.commands import leads

    ports, actor = services.lead_commands(settings), services.operator(settings)
    cursor: str | None = None
    while True:
        found, cursor = leads.suppressions(ports, actor, args.reason, 500, cursor)
        for entry in found:
            print(f"{entry.at}  {entry.reason:<17}  {entry.email}")
        if cursor is None:
            return 0


def mail_simulate(settings: Settings, args: argparse.Namespace) -> int:
    """What SES would publish for the lead's latest mail: a bounce or a complaint."""
    from tsunagu.commands import leads
    from tsunagu.ids import new_id

    lead, events = leads.recent_events(
        services.lead_commands(settings), services.operator(settings), args.email, limit=200
    )
    sent = [e for e in events if e.type == "mail_sent"]
    message_id = sent[0].properties.get("message_id") if sent else "msg_simulated"
    ses_id = sent[0].properties.get("ses_message_id") if sent else "simulated"
    notification: dict[str, Any] = {
        "mail": {
            "messageId": ses_id,
            "destination": [lead.email],
            "tags": {"lead_id": [lead.lead_id], "message_id": [message_id]},
        }
    }
    # A new notification each time, as SES names each with its own feedback id (the same id
    # again would be a redelivery, applied once)
    feedback_id = new_id("simulated", services.clock(settings).now())
    if args.what == "complaint":
        complaint = {"complaintFeedbackType": "abuse", "feedbackId": feedback_id}
        notification |= {"eventType": "Complaint", "complaint": complaint}
    else:
        kind = "Permanent" if args.what == "bounce" else "Transient"
        notification |= {
            "eventType": "Bounce",
            "bounce": {"bounceType": kind, "bounceSubType": "General", "feedbackId": feedback_id},
        }
    event = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(notification)}}]}
    _print(invoke_function(args, "SesFeedbackFunction", event))
    return 0


# ---------------------------------------------------------------- forms
def forms_create(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.forms.model import FormDefinition

    form, revision = _read_document("form", FormDefinition, args.file)
    store = services.form_repository(settings)
    _store(settings, "form", form.form_id, form, store, args, revision)
    return 0


def _definition_ports(settings: Settings) -> Any:
    from tsunagu.commands.definitions import DefinitionCommands

    return DefinitionCommands(
        audit=services.audit_log(settings),
        clock=services.clock(settings),
        templates=services.mail_repository(settings),
    )


IF_UNCHANGED = (
    "with --replace: only if nobody saved it since the file's revision (as exported here)"
)


def _store(
    settings: Settings,
    kind: Any,
    key: str,
    definition: Any,
    store: Any,
    args: argparse.Namespace,
    revision: int | None,
) -> None:
    """Create a definition, or replace it when asked to (``--replace``): never overwrite one by
    accident. A replace goes over whatever is stored, as it always did: the file may come from
    another stack (staging to production), whose ``revision`` counts that stack's saves and
    means nothing here. With ``--if-unchanged`` it goes over the revision the file was exported
    at (``forms get``, ``api get``) only, as the admin API's save does, so a colleague's save
    since is not silently lost; a record this stack has not is created all the same."""
    from tsunagu.commands import definitions
    from tsunagu.errors import AlreadyExists, ConcurrentUpdate

    path, replace, checked = args.file, args.replace, args.if_unchanged
    if checked and not replace:
        raise CliError("--if-unchanged is for --replace: a creation replaces nothing")
    if checked and revision is None:
        raise CliError(f'--if-unchanged needs the "revision" the {kind} was read at in {path}')
    ports = _definition_ports(settings)
    try:
        replaced, _ = definitions.save(
            ports, services.operator(settings), kind, key, definition, store,
            replace=replace, over=revision if checked else None, over_if_stored=True,
        )  # fmt: skip
    except AlreadyExists as error:
        raise CliError(f"{error.message}; add --replace to update it") from None
    except ConcurrentUpdate as error:
        # (the store's words are for an editor - "reload, or save again" - not for a file)
        now = getattr(error, "revision", None)
        raise CliError(
            f"{kind} {key!r} was saved since {path} was exported (its revision {revision},"
            f" now {now}); nothing was stored: export it again, or load it without"
            " --if-unchanged to replace whatever is stored"
        ) from None
    print(f"{kind} {key!r} {'updated' if replaced else 'created'}")


def _read_document[M: BaseModel](kind: Any, model: type[M], path: str) -> tuple[M, int | None]:
    """The form or site in ``path``, as its bare definition or as the admin API (GET) answers it -
    by the rule the API's save reads such an answer by (definitions.as_saved): its read-only
    fields unread, any other field the definition has not refused; and the revision it names."""
    from tsunagu.commands import definitions
    from tsunagu.errors import ValidationFailed

    text = _read_text(path)
    try:
        given = json.loads(text)
    except json.JSONDecodeError as error:
        raise CliError(f"{path} is not valid: not JSON ({error})") from None
    if not isinstance(given, dict):
        raise CliError(f"{path} is not valid: a {kind} is a JSON object")
    try:
        body, revision = definitions.as_saved(kind, given)
    except ValidationFailed as error:
        problems = "; ".join(f"{p.field}: {p.message}" for p in error.errors)
        raise CliError(f"{path} is not valid: {problems}") from None
    return _read_definition_text(model, json.dumps(body), path), revision


def _read_definition[M: BaseModel](model: type[M], path: str) -> M:
    return _read_definition_text(model, _read_text(path), path)


def _read_definition_text[M: BaseModel](model: type[M], text: str, path: str) -> M:
    try:
        return model.model_validate_json(text)
    except ValidationError as error:
        raise CliError(f"{path} is not valid: {_problems(error)}") from None


def _valid[M: BaseModel](model: type[M], values: dict[str, Any], path: str) -> M:
    """``values`` as a ``model``, or a CliError naming ``path``, what they were read from."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise CliError(f"{path} is not valid: {_problems(error)}") from None


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text("utf-8")
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from None


def _problems(error: ValidationError) -> str:
    """pydantic's problems on one line: ``field: message; ...``."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'definition'}: {e['msg']}" for e in error.errors()
    )


def forms_list(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import definitions

    forms = definitions.listing(
        _definition_ports(settings), services.operator(settings), "form",
        services.form_repository(settings),
    )  # fmt: skip
    for form in (found.definition for found in forms):
        origins = ", ".join(form.allowed_origins) or "(server-side posts only)"
        print(f"{form.form_id}\t{form.name}\t{origins}")
    return 0


def forms_get(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.commands import definitions

    form = definitions.show(
        _definition_ports(settings), services.operator(settings), "form", args.form_id,
        services.form_repository(settings),
    )  # fmt: skip
    # As GET /admin/forms/{form} answers it, revision and all: `forms create --replace --file`
    # takes it back, and refuses it if someone saved the form since it was read
    _print(form.as_json())
    return 0


# ---------------------------------------------------------------- audit
def audit_list(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from tsunagu.commands.audit import (
        MAX_AUDIT_ENTRIES,
        AuditFilter,
        as_csv,
        list_entries,
        page_key,
    )

    def instant(text: str) -> datetime:
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    until = instant(args.until) if args.until else None
    since = instant(args.since) if args.since else None  # none: the week before until
    page = list_entries(
        services.audit_log(settings),
        services.clock(settings),
        services.operator(settings),
        since,
        until,
        # A file holds the range, up to the most a file holds; a listing on screen, 200
        limit=(MAX_AUDIT_ENTRIES if args.csv else 200) if args.limit is None else args.limit,
        matching=AuditFilter(args.who, args.operation, args.outcome),
        before=args.before,
    )
    entries = page.entries
    # What brings the rest: the same command from the last entry on (a CSV's next file), or a
    # higher limit where one can be asked
    rest = ""
    if page.more:
        rest = f"the same with --before {shlex.quote(page_key(entries[-1]))}"
        if len(entries) < MAX_AUDIT_ENTRIES:
            rest += f", or raise --limit (now {len(entries)}; {MAX_AUDIT_ENTRIES:,} at most)"
    if args.csv:
        sys.stdout.write(as_csv(entries))
        if page.more:  # on stderr: stdout is the file
            print(f"older entries in that range are not in the file: {rest}", file=sys.stderr)
        return 0
    for e in entries:
        who = e.actor.email or e.actor.user_id
        change = f" {e.before} -> {e.after}" if e.before or e.after else ""
        note = f" ({e.detail})" if e.detail else ""
        print(f"{e.at}  {who} [{e.actor.role}]  {e.operation} {e.target} {e.outcome}{change}{note}")
    print(f"-- {len(entries)} entries from {isoformat(page.since)} to {isoformat(page.until)}")
    if page.more:
        print(f"-- older entries in that range are not shown: {rest}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tsunagu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", help="a deployed stack's name (default: the local runtime)")
    parser.add_argument("--region", help="the deployed stack's region")
    groups = parser.add_subparsers(dest="group", required=True)

    leads = groups.add_parser("leads", help="look at leads").add_subparsers(
        dest="command", required=True
    )
    get = leads.add_parser("get", help="a lead with its consent evidence and recent events")
    get.add_argument("email")
    get.add_argument("--events", type=positive, default=20, help="how many recent events to show")
    get.set_defaults(run=leads_get)
    suppress = leads.add_parser("suppress", help="stop every mail to a lead (manual suppression)")
    suppress.add_argument("email")
    suppress.add_argument("--note", default="", help="why, for the record")
    suppress.set_defaults(run=leads_suppress)
    unsuppress = leads.add_parser(
        "unsuppress", help="let mail reach a suppressed lead again (not after a complaint)"
    )
    unsuppress.add_argument("email")
    unsuppress.add_argument("--note", required=True, help="why, for the record")
    unsuppress.set_defaults(run=leads_unsuppress)
    add_export_command(leads)
    suppressed = groups.add_parser(
        "suppressions", help="the addresses no mail may reach"
    ).add_subparsers(dest="command", required=True)
    listing = suppressed.add_parser("list", help="newest first, with the reason")
    listing.add_argument(
        "--reason", choices=("hard_bounce", "soft_bounce_limit", "complaint", "manual")
    )
    listing.set_defaults(run=suppressions_list)
    excluded = groups.add_parser(
        "exclusions", help="addresses and domains no marketing mail goes to (除外管理)"
    ).add_subparsers(dest="command", required=True)
    excluded.add_parser("list", help="every exclusion").set_defaults(run=exclusions_list)
    adding = excluded.add_parser("add", help="exclude an address or a domain (and its subdomains)")
    adding.add_argument("value", help="rival@example.com, or example.co.jp")
    adding.add_argument("--list", default="competitors", help="competitors, customers, staff...")
    adding.add_argument("--note", help="why, for the record (at most 500 characters)")
    adding.set_defaults(run=exclusions_add)
    removing = excluded.add_parser("remove", help="take an address or a domain off")
    removing.add_argument("value")
    removing.set_defaults(run=exclusions_remove)
    change = leads.add_parser("set", help="set a lead's stage, tags, fields or CRM status")
    change.add_argument("email")
    change.add_argument("--stage")
    change.add_argument("--crm-status", help='what the CRM says, e.g. "in negotiation"')
    change.add_argument("--tag", action="append", default=[], help="add a tag (repeat)")
    change.add_argument("--untag", action="append", default=[], help="remove a tag (repeat)")
    change.add_argument("--field", action="append", default=[], help="NAME=VALUE (repeat)")
    change.set_defaults(run=leads_set)
    record = leads.add_parser(
        "record", help="record something a lead did offline (seminar_attended, ...)"
    )
    record.add_argument("email")
    record.add_argument("kind", help="the event kind, e.g. seminar_attended")
    record.add_argument("--prop", action="append", default=[], help="NAME=VALUE (repeat)")
    record.set_defaults(run=leads_record)
    search = leads.add_parser("search", help="leads by a word and filters, highest score first")
    search.add_argument("word", nargs="?", help="a word of the e-mail, name or company")
    search.add_argument("--stage")
    search.add_argument("--owner", help="the owner's address")
    search.add_argument("--tag")
    search.add_argument("--grade", choices=["A", "B", "C", "D"])
    search.add_argument("--score-min", type=int)
    search.add_argument("--score-max", type=int)
    search.add_argument("--limit", type=positive, default=50)
    search.add_argument("--cursor", help="the cursor the page before printed")
    search.set_defaults(run=leads_search)
    leads.add_parser(
        "reindex",
        help="give every lead its search attributes and its grade (after an upgrade,"
        " or after the grading rules changed)",
    ).set_defaults(run=leads_reindex)
    timeline = leads.add_parser("timeline", help="a lead's history in time order")
    timeline.add_argument("email")
    timeline.add_argument("--limit", type=positive, default=200)
    timeline.add_argument("--json", action="store_true", help="print JSON instead of lines")
    timeline.set_defaults(run=leads_timeline)

    sites = groups.add_parser("sites", help="sites that carry the tracking snippet")
    site_commands = sites.add_subparsers(dest="command", required=True)
    site_create = site_commands.add_parser("create", help="create (or --replace) from JSON")
    site_create.add_argument("--file", required=True)
    site_create.add_argument("--replace", action="store_true")
    site_create.add_argument("--if-unchanged", action="store_true", help=IF_UNCHANGED)
    site_create.set_defaults(run=sites_create)
    site_commands.add_parser("list", help="list sites").set_defaults(run=sites_list)
    site_rotate = site_commands.add_parser(
        "rotate-secret", help="make the site's signing secret for server-side posts (shown once)"
    )
    site_rotate.add_argument("site")
    site_rotate.add_argument(
        "--revoke-previous",
        action="store_true",
        help="the current secret leaked: stop accepting it at once, not 24 hours from now",
    )
    site_rotate.set_defaults(run=sites_rotate_secret)

    templates = groups.add_parser("templates", help="mail templates (versioned)")
    template_commands = templates.add_subparsers(dest="command", required=True)
    template_create = template_commands.add_parser(
        "create", help="store a template (JSON) as a new version"
    )
    template_create.add_argument("--file", required=True)
    template_create.add_argument("--html", help="read the HTML body from this file")
    template_create.add_argument(
        "--if-unchanged",
        action="store_true",
        help="only if no version was stored since the file's version (as exported here)",
    )
    template_create.set_defaults(run=templates_create)
    template_commands.add_parser("list", help="latest version of each").set_defaults(
        run=templates_list
    )
    template_get = template_commands.add_parser(
        "get", help="a template as JSON (the latest version), as the admin API answers it"
    )
    template_get.add_argument("template")
    template_get.add_argument("--version", type=positive, help="this version, not the latest")
    template_get.set_defaults(run=templates_get)
    versions = template_commands.add_parser(
        "versions", help="a template's history: each version, when and by whom it was stored"
    )
    versions.add_argument("template")
    versions.set_defaults(run=templates_versions)
    preview = template_commands.add_parser(
        "preview", help="a template as a lead would receive it (links inert, nothing sent)"
    )
    preview.add_argument("template")
    preview.add_argument("email")
    preview.add_argument("--version", type=positive, help="this version, not the latest")
    preview.add_argument("--html", action="store_true", help="print the HTML, not the text")
    preview.set_defaults(run=templates_preview)
    test_send = template_commands.add_parser(
        "test-send", help="mail a template to a colleague on the mail allowlist, marked [TEST]"
    )
    test_send.add_argument("template")
    test_send.add_argument("--to", required=True, help="an address on the mail allowlist")
    test_send.add_argument("--lead", help="whose data fills the merge tags (sample data if not)")
    test_send.add_argument("--version", type=positive, help="this version, not the latest")
    test_send.set_defaults(run=templates_test_send)

    mail = groups.add_parser("mail", help="send mail, simulate SES feedback")
    mail_commands = mail.add_subparsers(dest="command", required=True)
    send = mail_commands.add_parser("send", help="send a template to a lead (send_email)")
    send.add_argument("email")
    send.add_argument("--template", required=True)
    send.add_argument("--version", type=positive)
    send.add_argument("--key", help="idempotency key: the same key never sends twice")
    send.set_defaults(run=mail_send)
    simulate = mail_commands.add_parser(
        "simulate", help="simulate an SES bounce or complaint for a lead's latest mail"
    )
    simulate.add_argument("what", choices=["bounce", "soft-bounce", "complaint"])
    simulate.add_argument("email")
    simulate.set_defaults(run=mail_simulate)

    tracking = groups.add_parser("tracking", help="mail tracking tools")
    tracking_commands = tracking.add_subparsers(dest="command", required=True)
    links = tracking_commands.add_parser(
        "links", help="signed open/click/honeypot URLs for a lead, as a sent mail carries them"
    )
    links.add_argument("email")
    links.add_argument("--url", action="append", required=True, help="a link target (repeat)")
    links.add_argument("--message", help="message id (default: a new one)")
    links.add_argument(
        "--api", help="the API's base URL (default: the running runtime's, or the stack's)"
    )
    links.add_argument(
        "--sent-seconds-ago",
        type=at_least_zero,
        default=0,
        help="pretend the mail was sent this long ago",
    )
    links.set_defaults(run=tracking_links)

    forms = groups.add_parser("forms", help="manage web forms").add_subparsers(
        dest="command", required=True
    )
    create = forms.add_parser("create", help="create (or --replace) a form from a JSON file")
    create.add_argument("--file", required=True, help="the form definition, JSON")
    create.add_argument("--replace", action="store_true", help="update an existing form")
    create.add_argument("--if-unchanged", action="store_true", help=IF_UNCHANGED)
    create.set_defaults(run=forms_create)
    add_journey_commands(groups)
    add_console_commands(groups)
    add_clock_commands(groups)
    add_analytics_commands(groups)
    add_qualification_commands(groups, leads)
    add_import_commands(groups)
    add_segment_commands(groups)
    add_report_commands(groups)
    add_api_commands(groups)
    forms.add_parser("list", help="list forms").set_defaults(run=forms_list)
    show = forms.add_parser("get", help="show a form's definition")
    show.add_argument("form_id")
    show.set_defaults(run=forms_get)

    audit = groups.add_parser("audit", help="who changed what").add_subparsers(
        dest="command", required=True
    )
    listing = audit.add_parser("list", help="the audit log, newest first (--csv to export)")
    listing.add_argument("--since", help="from this day or ISO time (default: 7 days ago)")
    listing.add_argument("--until", help="up to this day or ISO time (default: now)")
    listing.add_argument("--who", help="by someone whose e-mail or user id contains this")
    listing.add_argument(
        "--operation", help="this operation (journeys.pause) or a group of them (journeys)"
    )
    listing.add_argument("--outcome", choices=("done", "refused"))
    listing.add_argument(
        "--limit", type=positive, help="entries at most (default 200, or 5,000 with --csv)"
    )
    listing.add_argument(
        "--before", help="go on after this entry (the key the listing before printed at its end)"
    )
    listing.add_argument("--csv", action="store_true", help="CSV for a spreadsheet")
    listing.set_defaults(run=audit_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        # Works on files only, no runtime or stack needed; None: this use of it needs them.
        offline: int | None = args.run_offline(args) if hasattr(args, "run_offline") else None
        if offline is not None:
            return offline
        settings, args.functions = (
            _stack_settings(args.stack, args.region) if args.stack else _local_settings()
        )
        code: int = args.run(settings, args)
    except (
        AnalyticsError,
        ApiCliError,
        CliError,
        ClockCliError,
        FunctionCliError,
        ImportCliError,
        JourneyCliError,
        ConsoleCliError,
        QualificationCliError,
        SegmentCliError,
        TsunaguError,
        ValueError,
    ) as error:
        print(f"tsunagu: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`tsunagu ... | head`): stop quietly, as other commands do. What
        # is still buffered goes nowhere, so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return PIPE_CLOSED
    return code


if __name__ == "__main__":
    raise SystemExit(main())
