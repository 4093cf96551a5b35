"""The composition root: builds the stores and the clock for a given settings, once.

Each factory imports what it builds, so a function loads only the part of the domain it uses:
the tracking endpoints never import form validation, and capture never imports tracking.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from tsunagu.clock import Clock, clock_from
from tsunagu.settings import Settings
from tsunagu.store.tables import bind_tables

if TYPE_CHECKING:
    from tsunagu.commands.access import Actor
    from tsunagu.commands.imports import ImportCommands
    from tsunagu.commands.journeys import JourneyCommands, Publisher
    from tsunagu.commands.leads import LeadCommands
    from tsunagu.commands.mail import MailCommands
    from tsunagu.commands.qualification import QualificationCommands
    from tsunagu.commands.reports import ReportCommands
    from tsunagu.commands.segments import SegmentCommands
    from tsunagu.commands.sites import SiteCommands
    from tsunagu.commands.users import UserCommands
    from tsunagu.journeys.business_time import BusinessCalendar, QuietHours
    from tsunagu.journeys.gate import FrequencyCap
    from tsunagu.journeys.lifecycle import RunningCount
    from tsunagu.journeys.model import Journey
    from tsunagu.journeys.publishing import PublishingTarget
    from tsunagu.journeys.simulation import Rules as SimulationRules
    from tsunagu.journeys.stream import JourneyRouting
    from tsunagu.journeys.waits import JourneyWait, Resumed
    from tsunagu.mail.replies import ReceivedMail
    from tsunagu.mail.send import MailPolicy, SendRequest, SendResult
    from tsunagu.qualification.stream import QualificationRouting
    from tsunagu.reports.counting import JourneyGoal
    from tsunagu.store.audit import AuditRepository
    from tsunagu.store.forms import FormRepository
    from tsunagu.store.imports import ImportRepository
    from tsunagu.store.journeys import (
        JourneyRepository,
        StepFunctionsExecutions,
        WaitRepository,
    )
    from tsunagu.store.lead_search import LeadTerms
    from tsunagu.store.leads import LeadRepository
    from tsunagu.store.mail import MailRepository
    from tsunagu.store.qualification import CrmRepository, QualificationRepository
    from tsunagu.store.reports import ReportsRepository
    from tsunagu.store.segments import SegmentExclusions, SegmentRepository, StoredFacts
    from tsunagu.store.ses import SesMessenger
    from tsunagu.store.sites import SiteRepository
    from tsunagu.store.state_machines import StepFunctionsStateMachines
    from tsunagu.store.tracking import TrackingRepository
    from tsunagu.tracking.settling import ClickSettling
    from tsunagu.tracking.tokens import TokenSigner


@lru_cache(maxsize=8)
def lead_repository(settings: Settings) -> LeadRepository:
    from tsunagu.store.leads import LeadRepository

    return LeadRepository(bind_tables(settings))


@lru_cache(maxsize=8)
def lead_terms(settings: Settings) -> LeadTerms:
    from tsunagu.store.lead_search import LeadTerms

    return LeadTerms(bind_tables(settings))


@lru_cache(maxsize=8)
def form_repository(settings: Settings) -> FormRepository:
    from tsunagu.store.forms import FormRepository

    return FormRepository(bind_tables(settings))


@lru_cache(maxsize=8)
def tracking_repository(settings: Settings) -> TrackingRepository:
    from tsunagu.store.tracking import TrackingRepository

    return TrackingRepository(bind_tables(settings))


@lru_cache(maxsize=8)
def site_repository(settings: Settings) -> SiteRepository:
    from tsunagu.store.sites import SiteRepository

    return SiteRepository(bind_tables(settings))


@lru_cache(maxsize=8)
def mail_repository(settings: Settings) -> MailRepository:
    from tsunagu.store.mail import MailRepository

    return MailRepository(bind_tables(settings))


@lru_cache(maxsize=8)
def messenger(settings: Settings) -> SesMessenger:
    from tsunagu.store.ses import SesMessenger

    return SesMessenger(settings)


def mail_policy(settings: Settings) -> MailPolicy:
    from tsunagu.mail.send import MailPolicy

    if not settings.api_url:
        raise RuntimeError("TSUNAGU_API_URL is not set: mail links would point nowhere")
    return MailPolicy(
        production=settings.stage == "prod",
        allowlist=settings.allowlist,
        api_url=settings.api_url,
        verified_domains=settings.sender_domains,
        unsubscribe_mailto=settings.unsubscribe_mailto or None,
        reply_domain=settings.reply_domain or None,
    )


def send(settings: Settings, request: SendRequest) -> SendResult:
    """One mail to one lead, wired for this stage: the send_email task and double opt-in
    confirmations go through here alike."""
    from tsunagu.journeys.steps import mail_held
    from tsunagu.mail.send import send_mail

    journeys = journey_repository(settings)
    return send_mail(
        request,
        store=mail_repository(settings),
        messenger=messenger(settings),
        signer=token_signer(settings),
        clock=clock(settings),
        policy=mail_policy(settings),
        segments=segment_exclusions(settings),
        held=lambda journey_id: mail_held(journey_id, journeys),
    )


def receive_reply(settings: Settings, received: ReceivedMail) -> str:
    """One received reply, wired for this stage (receive_reply's one call)."""
    from tsunagu.mail.replies import ReplyPolicy, receive_reply
    from tsunagu.store.replies import S3RawMessages

    if not settings.reply_domain or not settings.replies_bucket:
        return "ignored: replies are not received here (no reply domain or bucket set)"
    domains = sorted(settings.sender_domains)
    return receive_reply(
        received,
        store=mail_repository(settings),
        messages=S3RawMessages(
            aws_client(settings, "s3"), settings.replies_bucket, settings.replies_prefix
        ),
        messenger=messenger(settings),
        clock=clock(settings),
        policy=ReplyPolicy(
            reply_domain=settings.reply_domain,
            notice_sender=f"tsunagu@{domains[0] if domains else 'example.com'}",
            production=settings.stage == "prod",
            allowlist=settings.allowlist,
            max_bytes=settings.max_reply_bytes,
            console_url=settings.console_url or None,
        ),
    )


def segment_exclusions(settings: Settings) -> SegmentExclusions | None:
    repository = segment_repository(settings)
    if repository is None:
        return None
    from tsunagu.store.segments import SegmentExclusions

    return SegmentExclusions(repository, lambda: segment_facts(settings))


class MailConfirmations:
    """Double opt-in mails, sent through the same send path as every other mail."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def send_confirmation(self, lead_id: str, template_id: str, key: str) -> None:
        from tsunagu.mail.send import SendRequest

        request = SendRequest(lead_id=lead_id, template_id=template_id, idempotency_key=key)
        send(self._settings, request)


@lru_cache(maxsize=8)
def wait_repository(settings: Settings) -> WaitRepository:
    from tsunagu.store.journeys import (
        WaitRepository,
    )

    return WaitRepository(bind_tables(settings))


class JourneyWaits:
    """Resumes journeys waiting for what a lead does: route_events with each event, and
    wait_for_event with what the lead did before the wait was registered."""

    def __init__(self, settings: Settings) -> None:
        from tsunagu.store.journeys import StepFunctionsResumer, WaitRepository
        from tsunagu.stream_batch import BatchWaits

        self._store = BatchWaits(WaitRepository(bind_tables(settings)))
        self._resumer = StepFunctionsResumer(settings)
        self._leads = lead_repository(settings)

    def begin_batch(self) -> None:
        self._store.begin_batch()

    def resume_matching(
        self,
        lead_id: str,
        event_type: str,
        event_id: str,
        occurred_at: str,
        properties: Any,
    ) -> int:
        from tsunagu.journeys.waits import resume_waits

        resumed = resume_waits(
            lead_id,
            event_type,
            event_id,
            occurred_at,
            properties,
            store=self._store,
            resumer=self._resumer,
            on_decided=self._record_decision,
        )
        return len(resumed)

    def catch_up(self, wait: JourneyWait) -> bool:
        """End a wait just registered with what the lead did since it entered the journey
        (tsunagu.journeys.waits.catch_up); whether it ended."""
        from tsunagu.clock import parse_instant
        from tsunagu.journeys.decisions import DECISION_EVENT
        from tsunagu.journeys.waits import catch_up
        from tsunagu.tracking.browser import CLIENT_CLOCK_BEHIND

        if wait.entered_at is None:
            return False  # not known when the lead entered: nothing before the wait counts
        history = self._leads.events_since(
            wait.lead_id,
            parse_instant(wait.entered_at) - CLIENT_CLOCK_BEHIND,
            {match.type for match in wait.matches} | {DECISION_EVENT},
            also=wait.entered_by,
        )
        ended = catch_up(
            wait,
            history,
            store=self._store,
            resumer=self._resumer,
            on_decided=self._record_decision,
        )
        return ended is not None

    def _record_decision(self, resumed: Resumed) -> None:
        from tsunagu.journeys.waits import wait_decision

        decision = wait_decision(resumed)
        if decision is not None:
            self._leads.put_event(decision)


@lru_cache(maxsize=8)
def journey_waits(settings: Settings) -> JourneyWaits:
    return JourneyWaits(settings)


@lru_cache(maxsize=8)
def confirmations(settings: Settings) -> MailConfirmations:
    return MailConfirmations(settings)


_signers: dict[Settings, tuple[float, TokenSigner]] = {}
SIGNER_MAX_AGE_SECONDS = 300


def token_signer(settings: Settings) -> TokenSigner:
    """The signing keys, fetched once per cold start and again every few minutes (so a rotated
    key reaches warm functions)."""
    from tsunagu.store.secrets import load_token_signer

    cached = _signers.get(settings)
    if cached is None or time.monotonic() - cached[0] > SIGNER_MAX_AGE_SECONDS:
        cached = (time.monotonic(), load_token_signer(settings))
        _signers[settings] = cached
    return cached[1]


@lru_cache(maxsize=8)
def business_calendar(settings: Settings) -> BusinessCalendar:
    from tsunagu.journeys.business_time import business_calendar as calendar

    return calendar(settings.business_country, settings.company_closed_days)


@lru_cache(maxsize=8)
def quiet_hours(settings: Settings) -> QuietHours:
    from tsunagu.journeys.business_time import parse_quiet_hours

    return parse_quiet_hours(settings.quiet_hours)


@lru_cache(maxsize=8)
def clock(settings: Settings) -> Clock:
    return clock_from(
        settings.clock_start, settings.clock_epoch, settings.time_scale, settings.clock_url
    )


# ---------------------------------------------------------------- journeys
def simulation_rules(settings: Settings) -> SimulationRules:
    """The business time and frequency cap the dry run plays a journey by (the stage's)."""
    from tsunagu.journeys.simulation import Rules

    return Rules(
        calendar=business_calendar(settings),
        quiet=quiet_hours(settings),
        cap=frequency_cap(settings),
        time_zone=settings.default_time_zone,
    )


@lru_cache(maxsize=8)
def journey_repository(settings: Settings) -> JourneyRepository:
    from tsunagu.store.journeys import JourneyRepository

    return JourneyRepository(bind_tables(settings))


@lru_cache(maxsize=8)
def executions(settings: Settings) -> StepFunctionsExecutions:
    from tsunagu.store.journeys import StepFunctionsExecutions

    return StepFunctionsExecutions(settings)


@lru_cache(maxsize=8)
def frequency_cap(settings: Settings) -> FrequencyCap:
    from tsunagu.journeys.gate import FrequencyCap

    return FrequencyCap.parse(settings.frequency_cap)


def allowed_send_time(settings: Settings, time_zone: str | None) -> Callable[[datetime], datetime]:
    """Moves a moment out of quiet hours and closed days, in the lead's time zone."""
    from tsunagu.journeys.business_time import first_allowed_moment, time_zone_or

    zone = time_zone_or(time_zone, settings.default_time_zone)
    calendar, quiet = business_calendar(settings), quiet_hours(settings)
    return lambda instant: first_allowed_moment(
        instant, time_zone=zone, calendar=calendar, quiet=quiet
    )


def state_machine_arn(settings: Settings, journey: Journey) -> str:
    """The journey's state machine, unqualified: its executions, of every version."""
    if not settings.state_machine_arn_prefix:
        raise RuntimeError("TSUNAGU_STATE_MACHINE_ARN_PREFIX is not set for this function")
    return settings.state_machine_arn_prefix + journey.state_machine


def entry_arn(settings: Settings, journey: Journey) -> str:
    """Where a lead's execution starts: a published journey's alias (the live version), or
    the state machine deployed with the stack."""
    if journey.published is not None:
        return journey.published.alias_arn
    return state_machine_arn(settings, journey)


def publishing_target(settings: Settings) -> PublishingTarget:
    """Where published journeys go: only the publishing function has the role and ARNs."""
    from tsunagu.journeys.publishing import PublishingTarget

    if not (settings.state_machine_arn_prefix and settings.journey_role_arn):
        raise RuntimeError(
            "TSUNAGU_STATE_MACHINE_ARN_PREFIX and TSUNAGU_JOURNEY_ROLE_ARN are not set for this"
            " function: journeys are published by the publish_journey function"
        )
    return PublishingTarget(
        arn_prefix=settings.state_machine_arn_prefix,
        role_arn=settings.journey_role_arn,
        activities=settings.journey_activities,
    )


@lru_cache(maxsize=8)
def state_machines(settings: Settings) -> StepFunctionsStateMachines:
    from tsunagu.store.state_machines import StepFunctionsStateMachines

    return StepFunctionsStateMachines(settings)


@lru_cache(maxsize=8)
def journey_routing(settings: Settings) -> JourneyRouting:
    """route_events' side of journeys (see tsunagu.journeys.stream)."""
    from tsunagu.journeys.stream import JourneyRouting

    return JourneyRouting(
        journey_repository(settings),
        executions(settings),
        wait_repository(settings),
        clock(settings),
        lambda journey: entry_arn(settings, journey),
        lead_repository(settings),
    )


@lru_cache(maxsize=8)
def click_settling(settings: Settings) -> ClickSettling | None:
    """route_events holds a person's click until its judgement is final (tracking.settling).
    None where no state machine is known (a test's bare stack): clicks then act at once."""
    from tsunagu.tracking.settling import SETTLE_CLICKS_STATE_MACHINE, ClickSettling

    prefix = settings.state_machine_arn_prefix
    if not prefix:
        return None
    return ClickSettling(executions(settings), prefix + SETTLE_CLICKS_STATE_MACHINE)


# ---------------------------------------------------------------- qualification
@lru_cache(maxsize=8)
def audit_log(settings: Settings) -> AuditRepository:
    """Where the use cases record who changed what (tsunagu.commands.audit)."""
    from tsunagu.store.audit import AuditRepository

    return AuditRepository(settings, clock(settings))


# ---------------------------------------------------------------- reports
@lru_cache(maxsize=8)
def reports(settings: Settings) -> ReportsRepository:
    """The report counters' table (tsunagu.reports), on the tables' one client."""
    from tsunagu.store.reports import ReportsRepository

    if not settings.reports_table:
        raise RuntimeError("no reports table is configured (TSUNAGU_REPORTS_TABLE)")
    client = bind_tables(settings).connection.client
    return ReportsRepository(
        client, settings.reports_table, settings.events_table, settings.leads_table
    )


def report_commands(settings: Settings) -> ReportCommands:
    """The ports of the report use cases (tsunagu.commands.reports)."""
    from tsunagu.commands.reports import ReportCommands

    return ReportCommands(
        counters=reports(settings),
        audit=audit_log(settings),
        clock=clock(settings),
        time_zone=settings.default_time_zone,
        goals=lambda: journey_goals(settings),
        graphs=journey_repository(settings),
        templates=mail_repository(settings),
        start_rebuild=(
            (lambda rebuild_id: start_rebuild(settings, rebuild_id))
            if settings.rebuild_state_machine_arn
            else None
        ),
        rebuild_execution=(
            (lambda rebuild_id: rebuild_execution(settings, rebuild_id))
            if settings.rebuild_state_machine_arn
            else None
        ),
    )


def start_rebuild(settings: Settings, rebuild_id: str) -> str:
    """Start the rebuild state machine for this job: named by it, so started once."""
    assert settings.rebuild_state_machine_arn
    return start_once(
        settings, settings.rebuild_state_machine_arn, rebuild_id, {"rebuild_id": rebuild_id}
    )


def journey_goals(settings: Settings) -> dict[str, JourneyGoal]:
    """Every journey's goal, as the report counters count conversions (one Scan of the
    journeys' definitions)."""
    from tsunagu.reports.counting import goals_of

    return goals_of(journey_repository(settings).journeys())


def import_commands(settings: Settings) -> ImportCommands:
    """The ports of the list-import use cases (tsunagu.commands.imports)."""
    from tsunagu.commands.imports import ImportCommands

    files = None
    if settings.imports_bucket:
        from tsunagu.store.import_files import ImportFiles

        files = ImportFiles(s3_client(settings), settings.imports_bucket)
    return ImportCommands(
        leads=lead_repository(settings),
        audit=audit_log(settings),
        clock=clock(settings),
        journeys=journey_repository(settings),
        imports=import_repository(settings),
        files=files,
        start_job=(lambda import_id: start_import(settings, import_id))
        if settings.import_state_machine_arn
        else None,
        start_dry_run=(lambda plan_id: start_import(settings, plan_id, {"dry_run": plan_id}))
        if settings.import_state_machine_arn
        else None,
        funnel=reports(settings) if settings.reports_table else None,
    )


def start_import(settings: Settings, name: str, run: dict[str, str] | None = None) -> str:
    """Start the import state machine for this import, or (``run``: ``{"dry_run": plan id}``)
    this dry run: named by it, so started once."""
    assert settings.import_state_machine_arn
    return start_once(settings, settings.import_state_machine_arn, name, run or {"import_id": name})


def rebuild_execution(settings: Settings, rebuild_id: str) -> str | None:
    """How the rebuild state machine's execution for this job stands (RUNNING, SUCCEEDED,
    FAILED, TIMED_OUT, ABORTED); None if it has none (not started, or gone after the 90 days
    Step Functions keeps an ended one)."""
    from tsunagu.journeys.lifecycle import execution_arn

    assert settings.rebuild_state_machine_arn
    client = aws_client(settings, "stepfunctions")
    arn = execution_arn(settings.rebuild_state_machine_arn, rebuild_id)
    try:
        status: str = client.describe_execution(executionArn=arn)["status"]
    except client.exceptions.ExecutionDoesNotExist:
        return None
    return status


def start_once(settings: Settings, machine: str, name: str, given: dict[str, str]) -> str:
    """Start ``machine`` under ``name`` with ``given`` as its input, and answer the execution's
    ARN. Execution names are unique per state machine, so a call repeated after its answer was
    lost starts nothing twice: it answers the ARN of the execution the first call started (the
    execution's ARN, not the state machine's with the name appended, which names nothing)."""
    import json

    from tsunagu.journeys.lifecycle import execution_arn

    client = aws_client(settings, "stepfunctions")
    try:
        answer = client.start_execution(stateMachineArn=machine, name=name, input=json.dumps(given))
    except client.exceptions.ExecutionAlreadyExists:
        return execution_arn(machine, name)
    arn: str = answer["executionArn"]
    return arn


@lru_cache(maxsize=8)
def import_repository(settings: Settings) -> ImportRepository | None:
    if not settings.imports_table:
        return None
    from tsunagu.store.imports import ImportRepository

    return ImportRepository(bind_tables(settings))


@lru_cache(maxsize=8)
def segment_repository(settings: Settings) -> SegmentRepository | None:
    """The saved segments (None: a stack without them, where a filter may not name one)."""
    if not settings.segments_table:
        return None
    from tsunagu.store.segments import SegmentRepository

    return SegmentRepository(
        bind_tables(settings).connection.client,
        settings.segments_table,
        cache_seconds=settings.form_cache_seconds,
    )


def segment_facts(settings: Settings) -> StoredFacts:
    """What filters read beyond the lead, for one evaluation (each fact read once)."""
    from tsunagu.store.segments import StoredFacts

    return StoredFacts(
        bind_tables(settings),
        segment_repository(settings),
        import_repository(settings),
        qualification_repository(settings).lead_scores,
    )


def segment_commands(settings: Settings) -> SegmentCommands:
    """The ports of the segment and export use cases (tsunagu.commands.segments)."""
    from tsunagu.commands.segments import SegmentCommands

    segments = segment_repository(settings)
    if segments is None:
        raise RuntimeError("no segments table is configured (TSUNAGU_SEGMENTS_TABLE)")
    return SegmentCommands(
        segments=segments,
        leads=lead_repository(settings),
        facts=lambda: segment_facts(settings),
        journeys=journey_repository(settings),
        audit=audit_log(settings),
        clock=clock(settings),
        import_exists=_import_exists(settings),
    )


def _import_exists(settings: Settings) -> Callable[[str], bool]:
    """Whether an import of that id was ever started: its record is never deleted."""
    imports = import_repository(settings)
    return lambda import_id: imports is not None and imports.get_import(import_id) is not None


def site_commands(settings: Settings) -> SiteCommands:
    """The ports of a site's signing secret (tsunagu.commands.sites)."""
    from tsunagu.commands.sites import SiteCommands

    return SiteCommands(
        audit=audit_log(settings),
        clock=clock(settings),
        sites=site_repository(settings),
        master_key=lambda: site_signing_key(settings),
    )


def lead_commands(settings: Settings) -> LeadCommands:
    """The ports of the lead use cases (tsunagu.commands.leads)."""
    from tsunagu.commands.leads import LeadCommands

    return LeadCommands(
        leads=lead_repository(settings),
        suppressions=mail_repository(settings),
        audit=audit_log(settings),
        clock=clock(settings),
        journeys=journey_repository(settings),
        # Only a reindex grades: the admin routes need not load the qualification store
        grading=lambda lead: qualification_repository(settings).grade_of(lead),
        scores=lambda now: qualification_repository(settings).lead_scores(now),
    )


def journey_commands(settings: Settings) -> JourneyCommands:
    """The ports of the journey use cases (tsunagu.commands.journeys)."""
    from tsunagu.commands.journeys import JourneyCommands

    segments = segment_repository(settings)
    return JourneyCommands(
        journeys=journey_repository(settings),
        executions=executions(settings),
        audit=audit_log(settings),
        clock=clock(settings),
        leads=lead_repository(settings),
        entry_arn=lambda journey: entry_arn(settings, journey),
        running=lambda journey: running_executions(settings, journey),
        templates=lambda: template_ids(settings),
        time_zone=ZoneInfo(settings.default_time_zone),
        saved_segment=lambda name: segments.get_segment(name) if segments else None,
        facts=lambda: segment_facts(settings),
        import_exists=_import_exists(settings),
        allowed_at=lambda instant: _account_allowed_time(settings)(instant),
        start_in_background=(
            lambda journey_id, start_id: run_start_later(settings, journey_id, start_id)
        )
        if settings.segment_entries_function
        else None,
    )


def run_start_later(settings: Settings, journey_id: str, start_id: str) -> None:
    """Hand a background start to enter_segments, invoked asynchronously (Lambda queues the
    event and retries a failed run twice; a run repeated enters nobody twice)."""
    import json

    assert settings.segment_entries_function
    event = {"start": {"journey_id": journey_id, "start_id": start_id}}
    aws_client(settings, "lambda").invoke(
        FunctionName=settings.segment_entries_function,
        InvocationType="Event",
        Payload=json.dumps(event).encode(),
    )


@lru_cache(maxsize=8)
def _account_allowed_time(settings: Settings) -> Callable[[datetime], datetime]:
    """Built on first use: most journey commands never need the calendar."""
    return allowed_send_time(settings, None)


def template_ids(settings: Settings) -> set[str]:
    """The mail templates a journey's sends may name (publish checks each send against them)."""
    return {template.template_id for template in mail_repository(settings).templates()}


def running_executions(settings: Settings, journey: Journey) -> RunningCount | None:
    """The journey's running executions, counted up to RUNNING_COUNTED; None where no state
    machine prefix is configured."""
    try:
        arn = state_machine_arn(settings, journey)
    except RuntimeError:
        return None
    return executions(settings).running_count(arn)


@lru_cache(maxsize=8)
def journey_publisher(settings: Settings) -> Publisher:
    """The publish_journey function, invoked (it holds the right to create state machines;
    the admin API does not): a refusal becomes ValidationFailed, one problem per field. The
    Lambda client is built on the first publish, not for every request that might."""
    import json

    from tsunagu.errors import ConcurrentUpdate, FieldError, NotFound, ValidationFailed

    name = settings.publish_journey_function

    @lru_cache(maxsize=1)
    def lambda_client() -> Any:
        import boto3

        return boto3.client("lambda", region_name=settings.region)

    def publisher(payload: dict[str, Any]) -> dict[str, Any]:
        if not name:
            raise RuntimeError("TSUNAGU_PUBLISH_JOURNEY_FUNCTION is not set: no publishing here")
        response = lambda_client().invoke(FunctionName=name, Payload=json.dumps(payload).encode())
        answer: dict[str, Any] = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise RuntimeError(f"{name} failed: {answer.get('errorMessage')}")
        if answer.get("ok"):
            return answer
        if answer.get("conflict"):
            raise ConcurrentUpdate(str(answer.get("error")))
        problems = [FieldError(p["field"], p["message"]) for p in answer.get("problems") or []]
        if problems:
            raise ValidationFailed(problems)
        raise NotFound(str(answer.get("error") or "not found"))

    return publisher


@lru_cache(maxsize=4)
def cognito_client(region: str) -> Any:
    import boto3

    return boto3.client("cognito-idp", region_name=region)


@lru_cache(maxsize=16)
def aws_client(settings: Settings, service: str) -> Any:
    """A client of this stage's region (and the local runtime's endpoint, where there is one)."""
    import boto3

    make: Any = boto3.client  # the service named at run time, so no stub's overload applies
    return make(service, region_name=settings.region, endpoint_url=settings.aws_endpoint_url)


@lru_cache(maxsize=8)
def s3_client(settings: Settings) -> Any:
    """S3 signing its pre-signed URLs with Signature Version 4 (S3 refuses version 2 for new
    buckets, and 4 signs no content type, so a browser may PUT a file with its own) on the
    bucket's regional host, the one the console's CSP allows; path-style on a local endpoint."""
    import boto3
    from botocore.config import Config

    addressing: Literal["path", "virtual"] = "path" if settings.aws_endpoint_url else "virtual"
    return boto3.client(
        "s3",
        region_name=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        config=Config(
            signature_version="s3v4",
            # us-east-1 too on its regional host (bucket.s3.us-east-1...), the one the CSP names
            s3={"addressing_style": addressing, "us_east_1_regional_endpoint": "regional"},
        ),
    )


@lru_cache(maxsize=8)
def firehose_client(settings: Settings) -> Any:
    """The analytics export's delivery stream client (tsunagu.analytics.delivery)."""
    import boto3

    return boto3.client(
        "firehose", region_name=settings.region, endpoint_url=settings.aws_endpoint_url
    )


def user_commands(settings: Settings) -> UserCommands:
    """The ports of the user-management use cases (tsunagu.commands.users)."""
    from tsunagu.commands.users import UserCommands
    from tsunagu.store.users import CognitoDirectory

    if not settings.admin_user_pool_id:
        raise RuntimeError("TSUNAGU_ADMIN_USER_POOL_ID is not set for this function")
    return UserCommands(
        directory=CognitoDirectory(cognito_client(settings.region), settings.admin_user_pool_id),
        audit=audit_log(settings),
        clock=clock(settings),
    )


def mail_commands(settings: Settings) -> MailCommands:
    """The ports of the mail-template use cases (tsunagu.commands.mail)."""
    from tsunagu.commands.mail import MailCommands, ProofRules

    return MailCommands(
        templates=mail_repository(settings),
        leads=lead_repository(settings),
        audit=audit_log(settings),
        clock=clock(settings),
        forms=form_repository(settings),
        messenger=messenger(settings),
        proofs=ProofRules(settings.allowlist, settings.sender_domains),
        api_url=settings.api_url,
    )


def qualification_commands(settings: Settings) -> QualificationCommands:
    """The ports of the qualification-rules use cases (tsunagu.commands.qualification)."""
    from tsunagu.commands.qualification import QualificationCommands

    return QualificationCommands(
        rules=qualification_repository(settings),
        leads=lead_repository(settings),
        audit=audit_log(settings),
        clock=clock(settings),
    )


def operator(settings: Settings) -> Actor:
    """Whoever runs the CLI with the stack's credentials: an admin, recorded in the audit log by
    IAM identity (on the local runtime, whose AWS identity is moto's, by the machine's user)."""
    import getpass

    from tsunagu.commands.access import Actor, Role

    if settings.aws_endpoint_url:
        return Actor(user_id=f"local:{getpass.getuser()}", role=Role.ADMIN, via="cli")
    import boto3

    arn = boto3.client("sts", region_name=settings.region).get_caller_identity()["Arn"]
    return Actor(user_id=str(arn), role=Role.ADMIN, via="cli")


def qualification_repository(settings: Settings) -> QualificationRepository:
    from tsunagu.store.qualification import QualificationRepository

    return QualificationRepository(bind_tables(settings))


@lru_cache(maxsize=8)
def crm_repository(settings: Settings) -> CrmRepository:
    from tsunagu.store.qualification import CrmRepository

    return CrmRepository(bind_tables(settings))


_crm_keys: dict[Settings, tuple[float, bytes]] = {}


def crm_signing_key(settings: Settings) -> bytes:
    """The CRM webhooks' shared key, fetched once per cold start and every few minutes."""
    cached = _crm_keys.get(settings)
    if cached is None or time.monotonic() - cached[0] > SIGNER_MAX_AGE_SECONDS:
        from tsunagu.store.secrets import load_crm_signing_key

        cached = (time.monotonic(), load_crm_signing_key(settings))
        _crm_keys[settings] = cached
    return cached[1]


_site_keys: dict[Settings, tuple[float, bytes]] = {}


def site_signing_key(settings: Settings) -> bytes:
    """The key sites' signing secrets are derived from, fetched when first needed (a signed
    post, a new secret) and again every few minutes."""
    cached = _site_keys.get(settings)
    if cached is None or time.monotonic() - cached[0] > SIGNER_MAX_AGE_SECONDS:
        from tsunagu.store.secrets import load_site_signing_key

        cached = (time.monotonic(), load_site_signing_key(settings))
        _site_keys[settings] = cached
    return cached[1]


HAND_OFF_STATE_MACHINE = "hand-off-to-sales"


@lru_cache(maxsize=8)
def qualification_routing(settings: Settings) -> QualificationRouting:
    """route_events' side of qualification (see tsunagu.qualification.stream)."""
    from tsunagu.qualification.stream import QualificationRouting

    prefix = settings.state_machine_arn_prefix
    store = qualification_repository(settings)
    return QualificationRouting(
        store.config,
        store,
        executions(settings),
        clock(settings),
        prefix + HAND_OFF_STATE_MACHINE if prefix else None,
    )
