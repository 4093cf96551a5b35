"""The admin API: ``/admin/...`` on the HttpApi, for the console and for the CLI with a token.

Each route is one line of ``ROUTES``: method, path, the operation it performs (whose roles are
declared once, in ``tsunagu.commands.access.OPERATIONS``) and the function that calls the use
case. API Gateway's JWT authorizer has checked the token before the function runs (the local
runtime's gateway checks it the same way); this module reads who it is from the verified
claims, refuses addresses outside the allowlist before any use case runs, and maps domain errors
to statuses in the one error map (``tsunagu.api.responses``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from ipaddress import ip_address
from typing import Annotated, Any, Literal, Self
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    model_validator,
)

from tsunagu import services
from tsunagu.api.requests import HttpRequest, load_json_object
from tsunagu.api.responses import Response, error_response, json_response
from tsunagu.client_values import ClientInstant, CodedValueError, validation_failed
from tsunagu.commands import (
    definitions,
    import_jobs,
    imports,
    journeys,
    leads,
    mail,
    qualification,
    reports,
    segments,
    sites,
    users,
)
from tsunagu.commands.access import OPERATIONS, Actor, Role, authorise
from tsunagu.commands.audit import (
    MAX_AUDIT_ENTRIES,
    AuditEntry,
    AuditFilter,
    Outcome,
    as_csv,
    list_entries,
    page_key,
    refused,
)
from tsunagu.commands.definitions import (
    FormDocument,
    SiteDocument,
    revision_read,
)
from tsunagu.commands.segments import SegmentDocument
from tsunagu.cursors import checked_page_key, decode_cursor, encode_cursor, not_a_cursor
from tsunagu.errors import (
    FieldError,
    Forbidden,
    MalformedRequest,
    NotFound,
    PayloadTooLarge,
    TsunaguError,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)
from tsunagu.forms.model import FormDefinition
from tsunagu.imports.mapping import MAX_FIELD_CHARS, MAX_SAVED_HEADER_CHARS, oversized_mapping
from tsunagu.imports.plan import ConsentColumn, ImportOptions
from tsunagu.imports.reading import MAX_COLUMNS
from tsunagu.imports.refusals import refusal
from tsunagu.imports.saved import SavedMapping
from tsunagu.journeys.business_time import BusinessCalendar
from tsunagu.journeys.model import JourneySettings, ResumePolicy
from tsunagu.journeys.simulation import MAX_STEPS, Simulation
from tsunagu.leads.export import ENCODINGS
from tsunagu.leads.merge import Channel
from tsunagu.leads.search import MAX_PAGE_SIZE, PAGE_SIZE, LeadQuery
from tsunagu.leads.updates import FieldName, FieldText, LeadUpdate
from tsunagu.mail.exclusions import MAX_NOTE
from tsunagu.mail.templates import MailTemplate
from tsunagu.qualification.config import QualificationConfig
from tsunagu.reports.attribution import (
    DEFAULT_LOOKBACK_DAYS,
    MAX_LOOKBACK_DAYS,
    attribution_csv,
    parse_usd_rates,
)
from tsunagu.reports.definitions import METRICS, RATES
from tsunagu.reports.experiments import experiment_csv
from tsunagu.reports.figures import Report, report_csv
from tsunagu.reports.funnel import funnel_csv
from tsunagu.reports.ranges import report_days
from tsunagu.reports.rebuild_jobs import RebuildJob
from tsunagu.segments.filter import MAX_FILTER, SEGMENT_NAME
from tsunagu.segments.selection import Preview
from tsunagu.settings import Settings
from tsunagu.tracking.sites import SiteDefinition
from tsunagu.tracking.stored_sites import SigningKeys

MAX_BODY_BYTES = 512 * 1024
WHOLE_NUMBER = re.compile(r"-?[0-9]{1,9}")
"""A journey definition is the largest body the API takes; anything bigger is refused unread."""
ROLE_PRECEDENCE = (Role.ADMIN, Role.MARKETER, Role.SALES, Role.VIEWER)
"""A user in several groups acts with the widest role among them."""


# ---------------------------------------------------------------- the request


@dataclass(frozen=True)
class AdminCall:
    """One request, read: who asks, from where, and what they sent."""

    settings: Settings
    actor: Actor
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        media_type = self.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise UnsupportedMediaType(f"send application/json, not {media_type or 'nothing'}")
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedRequest("the body is not UTF-8") from None
        # The public endpoints' reading: no NaN, no 5,000-digit number, no nesting 20,000 deep
        # (each a 500 from json.loads), no lone surrogate
        return load_json_object(text)

    def model[M: BaseModel](self, model: type[M]) -> M:
        """The body as ``model``, strictly: ``"5"`` is not a number, ``0`` not ``false`` -
        what the API document says a field is, the body must send (dates as ISO text)."""
        try:
            return strictly(model, self.json())
        except ValidationError as error:
            raise validation_failed(error, "(body)") from None

    def text(self, name: str) -> str | None:
        value = self.query.get(name)
        return value if value else None

    def number(self, name: str, default: int, *, low: int = 1, high: int = 10_000) -> int:
        text = self.query.get(name)
        if text is None:
            return default
        if not WHOLE_NUMBER.fullmatch(text):  # int() would take " 5", "1_000" and "٣"
            raise ValidationFailed([FieldError(name, f"{text!r} is not a whole number")])
        value = int(text)
        if not low <= value <= high:
            raise ValidationFailed([FieldError(name, f"must be between {low} and {high}")])
        return value

    def optional_number(self, name: str, *, low: int = 1, high: int = 10_000) -> int | None:
        """``number`` when the query names it (given empty, refused), else None."""
        return self.number(name, 0, low=low, high=high) if name in self.query else None

    def page_key(self, name: str = "before") -> str | None:
        """A ``next_before`` this API gave, when the query names one (given empty, or not one,
        refused: an empty cursor is not "from the start"), else None."""
        if name not in self.query:
            return None
        return checked_page_key(self.query[name], name)

    def flag(self, name: str) -> bool:
        """``?name=true`` or ``false`` (absent: false); anything else is refused, not taken
        for false."""
        text = self.query.get(name, "false")
        if text not in ("true", "false"):
            raise ValidationFailed([FieldError(name, f"{text!r}: say true or false")])
        return text == "true"

    def day(self, name: str, default: date) -> date:
        given = self.optional_day(name)
        return default if given is None else given

    def optional_day(self, name: str) -> date | None:
        text = self.query.get(name)
        if text is None:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            problem = FieldError(name, f"{text!r} is not a day (YYYY-MM-DD)")
            raise ValidationFailed([problem]) from None

    def instant(self, name: str, default: datetime | None = None) -> datetime | None:
        text = self.query.get(name)
        if text is None:
            return default
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValidationFailed(
                [FieldError(name, f"{text!r} is not a date or an ISO 8601 instant")]
            ) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ---------------------------------------------------------------- who asks


def actor_from(claims: Mapping[str, Any], source_ip: str | None) -> Actor:
    """The signed-in user, from the claims the JWT authorizer verified. API Gateway passes a
    list claim as one string (``[admin marketer]``); the local gateway as a list."""
    groups = claims.get("cognito:groups") or []
    if isinstance(groups, str):
        groups = groups.strip("[]").replace(",", " ").split()
    role = next((r for r in ROLE_PRECEDENCE if r.value in groups), None)
    # The e-mail decides which leads a sales user owns and whom the audit log names, so only a
    # verified one counts: an address a user typed and never confirmed is nobody's.
    verified = str(claims.get("email_verified", "")).lower() == "true"
    email = claims.get("email") if verified else None
    return Actor(
        user_id=str(claims.get("sub") or claims.get("username") or "unknown"),
        role=role,
        email=str(email) if email else None,
        source_ip=source_ip,
        via="api",
    )


def from_allowed_network(settings: Settings, source_ip: str | None) -> bool:
    networks = settings.admin_networks
    if not networks:
        return True
    try:
        address = ip_address(source_ip or "")
    except ValueError:
        return False
    return any(address in network for network in networks)


def strictly[M: BaseModel](model: type[M], value: dict[str, Any]) -> M:
    """``value`` (a JSON body, read) as ``model``, as strictly as JSON types go: ``"5"`` is not
    a number and ``0`` not ``false`` - what the API document says a field is, the body must
    send (dates and instants as ISO text, as JSON has no other way). ValidationError if not."""
    return model.model_validate_json(json.dumps(value), strict=True)


# ---------------------------------------------------------------- paging


def page(items: Sequence[Any], call: AdminCall) -> dict[str, Any]:
    """A page of an ordered list: ``limit`` items from the opaque ``cursor`` on, and the cursor
    of the next page (None on the last)."""
    limit = call.number("limit", PAGE_SIZE, high=MAX_PAGE_SIZE)
    start = _offset(call.text("cursor"))
    chunk = list(items[start : start + limit])
    more = start + limit < len(items)
    return {"items": chunk, "next_cursor": _cursor(start + limit) if more else None}


def _cursor(offset: int) -> str:
    return encode_cursor({"o": offset})


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    offset = decode_cursor(cursor).get("o")
    if not isinstance(offset, int) or offset < 0:
        raise not_a_cursor()
    return offset


# ---------------------------------------------------------------- leads


def _lead_ports(call: AdminCall) -> leads.LeadCommands:
    return services.lead_commands(call.settings)


def _mail_ports(call: AdminCall) -> mail.MailCommands:
    return services.mail_commands(call.settings)


def lead_search(call: AdminCall) -> Any:
    """Leads by a word of their e-mail, name or company, and by stage, owner, tag, grade and
    score band; highest score first, in pages."""
    try:
        query = LeadQuery.model_validate(call.query)
    except ValidationError as error:
        raise validation_failed(error, "(query)") from None
    found = leads.search(_lead_ports(call), call.actor, query)
    return {
        "items": [leads.list_row(lead) for lead in found.leads],
        "next_cursor": found.next_cursor,
        "examined": found.examined,
        "truncated": found.truncated,
    }


def lead_show(call: AdminCall) -> Any:
    """A lead: its fields, consent and suppression (reason, since when and the roles that may
    lift it, ``liftable_by``; or null) as sends see them, the evidence, its latest events."""
    return leads.show(_lead_ports(call), call.actor, call.params["lead"])


def lead_timeline(call: AdminCall) -> Any:
    """The lead's newest events, oldest first, what its browser did before the form included;
    ``before`` (the ``next_before`` of a page) gives the events before that page."""
    limit = call.number("limit", TIMELINE_PAGE_SIZE, high=LIMIT_MAX["/admin/leads/{lead}/timeline"])
    before = call.page_key()
    page = leads.timeline(
        _lead_ports(call), call.actor, call.params["lead"], limit=limit, before=before
    )
    events = page.events
    return {
        "lead_id": page.lead.lead_id,
        "next_before": events[0].storage_key if page.earlier else None,
        "events": [
            {
                "event_id": e.event_id,
                "type": e.type,
                "at": e.occurred_at,
                "properties": e.properties,
                "automated": bool(e.properties.get("automated")),
            }
            for e in events
        ],
    }


def lead_update(call: AdminCall) -> Any:
    """Set a lead's stage, CRM status, tags or fields (sales: stage and CRM status of its own
    leads)."""
    change = call.model(LeadUpdate)
    lead, events = leads.update(_lead_ports(call), call.actor, call.params["lead"], change)
    return {"lead": lead.summary(), "events": [e.type for e in events]}


class RecordedEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(max_length=40)
    properties: dict[FieldName, FieldText] = Field(default_factory=dict, max_length=20)


def lead_record_event(call: AdminCall) -> Any:
    """Record an offline event (a seminar attended, a trade-show scan) on the lead."""
    asked = call.model(RecordedEvent)
    event = leads.record_event(
        _lead_ports(call), call.actor, call.params["lead"], asked.kind, asked.properties
    )
    return 201, {"event_id": event.event_id, "type": event.type, "at": event.occurred_at}


class Suppression(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=500)


def lead_suppress(call: AdminCall) -> Any:
    """Stop every mail to the lead."""
    asked = call.model(Suppression)
    lead = leads.suppress(_lead_ports(call), call.actor, call.params["lead"], asked.note)
    return {"lead_id": lead.lead_id, "suppressed": True}


class Unsuppression(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=500)
    """Why mail may reach the lead again (the address was corrected, ...): kept in the log."""


def lead_unsuppress(call: AdminCall) -> Any:
    """Let mail reach a suppressed lead again (a manual suppression: marketers; after bounces:
    admins; a complaint: no one)."""
    asked = call.model(Unsuppression)
    lifted = leads.unsuppress(_lead_ports(call), call.actor, call.params["lead"], asked.note)
    return {"lead_id": lifted.lead_id, "suppressed": False, "lifted": lifted.reason}


class ExclusionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=3, max_length=254)
    """An address (``rival@example.com``) or a domain (``example.co.jp``: its subdomains too)."""
    list: str = Field(default="competitors", min_length=1, max_length=40)
    """Which list: competitors, customers, staff, or another name."""
    note: str | None = Field(default=None, max_length=MAX_NOTE)


def exclusion_list(call: AdminCall) -> Any:
    """The account's exclusions: addresses and domains no marketing mail goes to, whatever
    they consented to (skipped at send time as ``excluded``)."""
    found = mail.exclusions(_mail_ports(call), call.actor)
    return {"items": [e.as_json() for e in found.entries], "version": found.version}


def exclusion_add(call: AdminCall) -> Any:
    """Exclude an address or a domain from marketing mail from the next send on."""
    asked = call.model(ExclusionRequest)
    return 201, mail.exclude(
        _mail_ports(call), call.actor, asked.value, asked.list, asked.note
    ).as_json()


def exclusion_remove(call: AdminCall) -> Any:
    """Take an address or a domain off the exclusions."""
    return mail.include_again(_mail_ports(call), call.actor, call.params["value"]).as_json()


def suppression_list(call: AdminCall) -> Any:
    """The suppression list, newest first: who no mail may reach and why (hard_bounce,
    soft_bounce_limit, complaint, manual), and the roles that may lift each (``liftable_by``)."""
    limit = call.number("limit", PAGE_SIZE, high=MAX_PAGE_SIZE)
    found, next_cursor = leads.suppressions(
        _lead_ports(call), call.actor, call.query.get("reason"), limit, call.text("cursor")
    )
    items = [
        {"lead_id": entry.lead_id, "email": entry.email, **leads.suppression_json(entry)}
        for entry in found
    ]
    return {"items": items, "next_cursor": next_cursor}


# ---------------------------------------------------------------- lead lists


class ConsentMeaning(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str = Field(min_length=1, max_length=200)
    yes: list[Annotated[str, Field(max_length=100)]] = Field(min_length=1, max_length=20)
    """The answers that mean "yes, mail me"; nothing else opts a row in."""
    no: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=20)
    topic: str = Field(default="marketing", pattern=r"^[a-z][a-z0-9_-]{0,39}$")

    def meaning(self) -> ConsentColumn:
        return ConsentColumn.asked(self.column, frozenset(self.yes), frozenset(self.no), self.topic)


def _mapping_within(most_chars: int | None) -> Callable[[Any], Any]:
    """A check of a mapping before pydantic reads it: at most MAX_COLUMNS columns, each header
    at most MAX_HEADER_CHARS (which OpenAPI 3.0, the admin API document's, cannot say: it has
    no limit for a property's name), and ``most_chars`` together. pydantic's own error for a
    header too long would name it as the path of the field it is in, and so send a 400 KB
    header back; this one clips it."""

    def in_bounds(columns: Any) -> Any:
        if isinstance(columns, dict):
            texts = {str(h): t if isinstance(t, str) else "" for h, t in columns.items()}
            if problem := oversized_mapping(texts, most=MAX_COLUMNS, most_chars=most_chars):
                raise CodedValueError(problem)
        return columns

    return in_bounds


PlannedColumns = Annotated[
    dict[str, Annotated[str, Field(max_length=MAX_FIELD_CHARS)]],
    Field(max_length=MAX_COLUMNS),
    BeforeValidator(_mapping_within(None)),
]
"""Header -> field for one dry run or run."""
SavedColumns = Annotated[
    dict[str, Annotated[str, Field(max_length=MAX_FIELD_CHARS)]],
    Field(max_length=MAX_COLUMNS),
    BeforeValidator(_mapping_within(MAX_SAVED_HEADER_CHARS)),
]
"""Header -> field of a saved mapping: its headers held together so that saving it can be
audited in one item."""


class ImportPlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_name: str = Field(min_length=1, max_length=200, pattern=r"^[^/\\]+$")
    """As the user's file is named (``.tsv`` says tab-separated)."""
    content_base64: str | None = Field(default=None, min_length=1, max_length=MAX_BODY_BYTES - 4096)
    """The file's bytes, base64 (as far as the body's 512 KB allows: a few thousand rows)."""
    upload_id: str | None = Field(default=None, max_length=64)
    """Or the file uploaded through ``POST /admin/imports/uploads`` (any size up to 100 MB):
    its run goes on in the background (202; ``GET /admin/imports/{import_id}`` for progress)."""

    @model_validator(mode="after")
    def _one_file(self) -> Self:
        if (self.content_base64 is None) == (self.upload_id is None):
            raise ValueError("give the file as content_base64 or as an upload_id, one of them")
        return self

    encoding: Literal["utf-8", "utf-8-sig", "cp932", "shift_jis", "utf-16"] | None = None
    """Found when not given."""
    source: Literal["import", "trade_show", "seminar", "web_form", "sales", "crm"] | None = None
    """What the list counts as (``import`` unless given or saved in ``saved_mapping``)."""
    mapping: PlannedColumns = Field(default_factory=dict)
    """Header -> field, over the automatic mapping (``-`` leaves a column out)."""
    consent: ConsentMeaning | None = None
    saved_mapping: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    """A mapping saved for this source (``/admin/imports/mappings``): its options, with what
    this request gives on top."""
    rows: int = Field(default=200, ge=1, le=5000)
    """How many rows' plans to answer with (the counts are of every row)."""
    language: Literal["ja", "en"] = "ja"
    """The language of the reasons in the rejected rows' file (Japanese unless given, as its
    header is); each row's plan has its ``reason`` in English and, beside it, ``reason_code``
    and ``reason_params`` to say it in any language."""


class ImportRunRequest(ImportPlanRequest):
    plan_digest: str = Field(pattern=r"^[0-9a-f]{16}$")
    """The dry run's ``plan_digest``: the run applies that plan or nothing (409 if the leads
    changed since and the plan is no longer that one)."""


def _import_file(
    call: AdminCall, asked: ImportPlanRequest
) -> tuple[bytes, ImportOptions, str | None]:
    """The file's bytes (a request's: an upload is planned and run in the background), its
    options (over the saved mapping it names) and its encoding."""
    ports = services.import_commands(call.settings)
    assert asked.content_base64 is not None
    try:
        data = base64.b64decode(asked.content_base64, validate=True)
    except (binascii.Error, ValueError):  # ValueError: not ASCII at all
        raise ValidationFailed([_not_base64()]) from None
    options, encoding = _import_options(ports, asked)
    return data, options, encoding


def _not_base64() -> FieldError:
    return refusal("content_base64", "not_base64", "is not base64")


def _import_options(
    ports: imports.ImportCommands, asked: ImportPlanRequest
) -> tuple[ImportOptions, str | None]:
    """The options the request gives, over the saved mapping it names, and its encoding."""
    consent = asked.consent.meaning() if asked.consent else None
    given = ImportOptions(Channel(asked.source or "import"), asked.mapping, consent)
    options = imports.options_with_mapping(
        ports, asked.saved_mapping, given, source_given=asked.source is not None
    )
    return options, asked.encoding


class MappingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Literal["import", "trade_show", "seminar", "web_form", "sales", "crm"] = "import"
    columns: SavedColumns = Field(default_factory=dict)
    """Header -> field over the automatic mapping (``-`` leaves a column out)."""
    consent: ConsentMeaning | None = None
    encoding: Literal["utf-8", "utf-8-sig", "cp932", "shift_jis", "utf-16"] | None = None
    description: str = Field(default="", max_length=500)


def mapping_list(call: AdminCall) -> Any:
    """The mappings saved per source, by name."""
    found = imports.mappings(services.import_commands(call.settings), call.actor)
    return {"items": [m.as_json() for m in found]}


def mapping_save(call: AdminCall) -> Any:
    """Save a source's import options under a name (replacing one of that name): what its files
    count as, their columns' fields, what their consent column means, their encoding."""
    asked = call.model(MappingRequest)
    consent = asked.consent.meaning() if asked.consent else None
    options = ImportOptions(Channel(asked.source), asked.columns, consent)
    saved = imports.save_mapping(
        services.import_commands(call.settings),
        call.actor,
        SavedMapping.of(
            call.params["mapping"],
            options,
            encoding=asked.encoding,
            description=asked.description,
        ),
    )
    return saved.as_json()


def mapping_delete(call: AdminCall) -> Any:
    """Delete a saved mapping (the imports made with it are not touched)."""
    imports.delete_mapping(
        services.import_commands(call.settings), call.actor, call.params["mapping"]
    )
    return {"deleted": call.params["mapping"]}


def import_plan(call: AdminCall) -> Any:
    """The dry run of importing a lead list (CSV or TSV in any encoding Excel saves): what each
    row would do - create, update (which fields change, which a higher-ranked source keeps),
    unchanged, merged with an earlier row, rejected with the reason (``reason`` in English,
    ``reason_code`` and ``reason_params`` to say it in any language; every further problem of
    the row in ``more_reasons``, each given the same way) - and the rejected rows as
    a CSV to fix and import again, the reasons in ``language`` (in the answer, or behind
    ``rejected_csv_url`` when it is large). Nothing is written; ``plan_digest`` names this
    plan for the real run. A file given as an ``upload_id`` is planned in the background,
    whatever its size: 202 with its ``plan_id``; ``GET /admin/imports/plans/{plan_id}``
    answers the plan once it is made."""
    asked = call.model(ImportPlanRequest)
    if asked.upload_id is not None:
        ports = services.import_commands(call.settings)
        options, encoding = _import_options(ports, asked)
        queued = import_jobs.queue_dry_run(
            ports,
            call.actor,
            asked.upload_id,
            asked.file_name,
            options,
            encoding=encoding,
            rows=asked.rows,
            language=asked.language,
        )
        return 202, queued.as_json()
    data, options, encoding = _import_file(call, asked)
    ports = services.import_commands(call.settings)
    planned = imports.plan(ports, call.actor, data, asked.file_name, options, encoding=encoding)
    return imports.plan_answer(ports, planned, asked.file_name, asked.rows, asked.language)


class ColumnsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_name: str = Field(min_length=1, max_length=200, pattern=r"^[^/\\]+$")
    content_base64: str = Field(min_length=1, max_length=MAX_BODY_BYTES - 4096)
    """The file's bytes, base64; of a CSV or TSV too large for a request, its first part (the
    header and the first rows, cut at a line's end)."""
    encoding: Literal["utf-8", "utf-8-sig", "cp932", "shift_jis", "utf-16"] | None = None
    """Found when not given (or given by ``saved_mapping``)."""
    mapping: PlannedColumns = Field(default_factory=dict)
    """Header -> field, over the saved and the automatic mapping (``-`` leaves a column out)."""
    saved_mapping: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    """A mapping saved for the list's source (``/admin/imports/mappings``)."""
    consent_column: str | None = Field(default=None, min_length=1, max_length=200)
    """The column to be read as consent (over the saved mapping's): never mapped to a field,
    whatever its header also names (「メール」 = 可 / 不可)."""


def import_columns(call: AdminCall) -> Any:
    """A lead list's columns before its dry run, to map them: the encoding found, each column
    in order with the field the dry run would read it as (``by``: the mapping given or saved,
    or the headers' automatic mapping; ``field`` null: left out) and its first few values, the
    fields the automatic mapping knows, and ``problems``: why the dry run would refuse the
    mapping as it stands (no column is the e-mail address...) - said, not refused, so that a
    list whose headers name nothing can be mapped. Nothing is written."""
    asked = call.model(ColumnsRequest)
    try:
        data = base64.b64decode(asked.content_base64, validate=True)
    except (binascii.Error, ValueError):  # ValueError: not ASCII at all
        raise ValidationFailed([_not_base64()]) from None
    ports = services.import_commands(call.settings)
    options = imports.options_with_mapping(
        ports, asked.saved_mapping, ImportOptions(Channel.IMPORT, asked.mapping), source_given=False
    )
    if asked.consent_column is not None:  # which answers mean yes does not change the columns
        consent = ConsentColumn(asked.consent_column, frozenset(), frozenset())
        options = replace(options, consent=consent)
    found = imports.columns(
        ports, call.actor, data, asked.file_name, options, encoding=asked.encoding
    )
    return found.as_json()


def import_dry_run(call: AdminCall) -> Any:
    """An uploaded list's dry run, planned in the background: ``status`` planning, then
    planned (with the plan, as ``POST /admin/imports/plans`` answers one) or refused (with the
    ``error`` a request's 422 would give: a file that cannot be read as a list)."""
    found = import_jobs.dry_run(
        services.import_commands(call.settings), call.actor, call.params["plan_id"]
    )
    return found.as_json()


def import_run(call: AdminCall) -> Any:
    """Apply a lead list: exactly the plan of its dry run (``plan_digest``), rows written 19 to
    a transaction with the import's id on every lead and event; 409 and nothing written if the
    plan changed since. Answers the import (its id, for undo). A file given as an ``upload_id``
    is applied in the background (202: the import queued; its progress at
    ``GET /admin/imports/{import_id}``; a plan changed since makes it ``refused``)."""
    asked = call.model(ImportRunRequest)
    if asked.upload_id is not None:
        return _import_in_background(call, asked)
    data, options, encoding = _import_file(call, asked)
    record, _ = imports.run(
        services.import_commands(call.settings),
        call.actor,
        data,
        asked.file_name,
        options,
        encoding=encoding,
        plan_digest=asked.plan_digest,
    )
    return 201, record.as_json()


def _import_in_background(call: AdminCall, asked: ImportRunRequest) -> Any:
    assert asked.upload_id is not None
    ports = services.import_commands(call.settings)
    options, encoding = _import_options(ports, asked)
    record = import_jobs.start(
        ports,
        call.actor,
        asked.upload_id,
        asked.file_name,
        options,
        encoding=encoding,
        plan_digest=asked.plan_digest,
    )
    return 202, record.as_json() | {"progress": None}


class UploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_name: str = Field(min_length=1, max_length=200)
    """The list's name as the user has it: a .csv, .tsv, .txt or .xlsx file."""


def import_upload(call: AdminCall) -> Any:
    """Where to upload a lead list too large for a request's body: PUT its bytes to ``url``
    before ``expires_at`` (15 minutes), then plan it and run it naming the ``upload_id``."""
    asked = call.model(UploadRequest)
    upload = import_jobs.new_upload(
        services.import_commands(call.settings), call.actor, asked.file_name
    )
    return 201, upload.as_json()


def import_status(call: AdminCall) -> Any:
    """An import, and how far its background run is: rows written of the total, chunks done,
    chunks parked after their retries (with the rows they held)."""
    record, progress = import_jobs.status(
        services.import_commands(call.settings), call.actor, call.params["import_id"]
    )
    return record.as_json() | {"progress": progress.as_json() if progress else None}


def import_undo(call: AdminCall) -> Any:
    """Take an import back: the leads it created are removed unless changed since, the fields
    it changed restored unless changed since, the opt-ins it recorded withdrawn unless answered
    since (its opt-outs are kept); ``undo`` counts them, and what was kept is listed, why
    included."""
    found = imports.undo(
        services.import_commands(call.settings), call.actor, call.params["import_id"]
    )
    return found.as_json()


def import_list(call: AdminCall) -> Any:
    """The imports, newest first: who ran which file when, its counts, undone or not."""
    found = imports.list_imports(services.import_commands(call.settings), call.actor)
    return {"items": [record.as_json() for record in found]}


# ---------------------------------------------------------------- segments and export


class SegmentTryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: str = Field(min_length=1, max_length=MAX_FILTER)
    """A filter, or a saved segment's name."""


def _segment_answer(found: Preview) -> dict[str, Any]:
    return {
        "count": found.count,
        "sample": [leads.list_row(lead) for lead in found.sample],
    }


def segment_list(call: AdminCall) -> Any:
    """The saved segments by name."""
    found = segments.list_segments(services.segment_commands(call.settings), call.actor)
    return {"items": [s.as_json() for s in found]}


def segment_try(call: AdminCall) -> Any:
    """How many leads a filter (or a saved segment) selects now, and the first ten by score:
    what to look at before saving it. Nothing is written."""
    asked = call.model(SegmentTryRequest)
    ports = services.segment_commands(call.settings)
    return _segment_answer(segments.try_filter(ports, call.actor, asked.filter))


def segment_show(call: AdminCall) -> Any:
    """A saved segment, who it selects now (count and sample) and what reads it (journeys'
    triggers and branches, other segments)."""
    ports = services.segment_commands(call.settings)
    shown = segments.show(ports, call.actor, call.params["name"])
    return shown.segment.as_json() | _segment_answer(shown.preview) | {"used_by": shown.used_by}


def segment_save(call: AdminCall) -> Any:
    """Save a segment under a name (201), or change one (give the version read; 409 if someone
    saved it since). The body may be the segment as GET answers it: its read-only fields (who
    saved it when, count, sample, used_by) are ignored. A filter naming a segment that does not
    exist, or leading back to this one, is refused."""
    try:
        asked = strictly(SegmentDocument, segments.as_saved(call.json()))
    except ValidationError as error:
        raise validation_failed(error, "(body)") from None
    if asked.name != call.params.get("name", asked.name):
        raise ValidationFailed([FieldError("name", "differs from the segment in the path")])
    saved = segments.save(
        services.segment_commands(call.settings),
        call.actor,
        asked.name,
        asked.filter,
        description=asked.description,
        exclude_from_marketing=asked.exclude_from_marketing,
        version=asked.version,
    )
    return (201 if saved.version == 1 else 200), saved.as_json()


def segment_delete(call: AdminCall) -> Any:
    """Delete a segment; refused (422, naming them) while a journey or segment reads it."""
    segments.delete(services.segment_commands(call.settings), call.actor, call.params["name"])
    return {"deleted": call.params["name"]}


def lead_export(call: AdminCall) -> Any:
    """Leads as CSV for Excel: every lead, or those a saved segment (or a filter) selects
    (``?segment=``); ``?encoding=utf-8`` (with a BOM, default) or ``cp932``, whose answer says
    in ``x-tsunagu-replaced-characters`` how many characters cp932 has no code for were written
    as ``?``. A cell a spreadsheet would run as a formula is prefixed with ``'``. Marketers and
    admins; every export is in the audit log."""
    encoding = call.query.get("encoding", "utf-8")  # given empty: refused below
    if encoding not in ENCODINGS:
        raise ValidationFailed([FieldError("encoding", f"{encoding!r}: utf-8 or cp932")])
    segment = call.text("segment")
    if segment is None and "segment" in call.query:
        raise ValidationFailed([FieldError("segment", "empty: leave it out to export every lead")])
    exported = segments.export(
        services.segment_commands(call.settings),
        call.actor,
        segment=segment,
        encoding="cp932" if encoding == "cp932" else "utf-8",
    )
    name = f"leads-{segment if segment and SEGMENT_NAME.match(segment) else 'export'}.csv"
    if exported.encoding == "utf-8":
        return CsvBody(exported.data.decode("utf-8"), name)
    return CsvBody(
        "", name, data=exported.data, charset="shift_jis", replaced_characters=exported.replaced
    )


# ---------------------------------------------------------------- journeys


def _journey_ports(call: AdminCall) -> journeys.JourneyCommands:
    return services.journey_commands(call.settings)


def journey_list(call: AdminCall) -> Any:
    """The journeys, and whether the emergency stop holds them all."""
    paused, found = journeys.listing(_journey_ports(call), call.actor)
    listed = [j.model_dump(mode="json", exclude={"definition"}) for j in found]
    return {"emergency_stop": paused, **page(listed, call)}


def journey_status(call: AdminCall) -> Any:
    """Each journey's status and its parked leads by step (one journey with ?journey=);
    ``resume_after_stop``: the policy its held mails go by when the emergency stop is lifted,
    if one was chosen during it; ``running``: its leads in a running execution, counted up to
    1,000 (``running_at_least``: there are more than that)."""
    ports = _journey_ports(call)
    return journeys.status(ports, call.actor, call.text("journey"))


def journey_show(call: AdminCall) -> Any:
    """One journey: its status, triggers, exits, resume policy and published version;
    ``start_input``: the fields a start's ``input`` must give as date-times (the live version's
    mail deadlines, such as ``seminar_at``)."""
    ports = _journey_ports(call)
    journey = journeys.show(ports, call.actor, call.params["journey"])
    return journeys.answer(ports, journey)


class SettingsChange(JourneySettings):
    """The journey's settings, saved whole."""

    revision: int | None = Field(default=None, ge=0)
    """The ``revision`` read with the journey (GET /admin/journeys/{journey}): 409 if its
    record was stored since (its settings saved, or it was paused or published). Without it
    the settings are saved over the record as it is."""


def journey_configure(call: AdminCall) -> Any:
    """Set a journey's triggers, re-entry, exits, consent topic and resume policy (its graph
    and published version stay); given the revision read, only over that record (409 if it
    changed since)."""
    asked = call.model(SettingsChange)
    stored = journeys.configure(
        _journey_ports(call), call.actor, call.params["journey"], asked, revision=asked.revision
    )
    return stored.model_dump(mode="json")


class Publication(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: dict[str, Any]
    note: str | None = Field(default=None, max_length=256)
    revision: int | None = Field(default=None, ge=0)
    """The draft's ``revision`` read with the graph, when publishing what the editor shows: it
    is kept as the draft over that revision first, and 409 (nothing published) if someone
    saved the draft since; the answer gives the draft's new revision, and so does a refusal
    made after the draft was kept (the error's ``revision``). Without it (a definition from a
    file) the draft is left as it is."""


def journey_publish(call: AdminCall) -> Any:
    """Publish a journey definition as a new version, without a deploy; given the draft's
    revision read, only if nobody saved the draft since (409)."""
    asked = call.model(Publication)
    publisher = services.journey_publisher(call.settings)
    answer = journeys.publish(
        _journey_ports(call),
        call.actor,
        asked.definition,
        asked.note,
        publisher,
        revision=asked.revision,
    )
    return 201 if answer.get("changed") else 200, answer


def _graph_view(view: journeys.GraphView) -> dict[str, Any]:
    return {
        "journey_id": view.graph.journey_id,
        "which": view.graph.which,
        "version": view.graph.version,
        "by": view.graph.by,
        "updated_at": view.graph.updated_at,
        "revision": view.revision,
        "name": view.name,
        "definition": view.graph.definition,
        "problems": [{"field": p.field, "message": p.message} for p in view.problems],
    }


def journey_graph(call: AdminCall) -> Any:
    """The journey's graph for the editor: its draft, else its latest published version, else
    the shipped one; with what would stop it from publishing, node by node."""
    return _graph_view(journeys.graph(_journey_ports(call), call.actor, call.params["journey"]))


class GraphDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: dict[str, Any]
    revision: int | None = Field(default=None, ge=0)
    """The ``revision`` read with the graph (0: the journey had no draft): 409 if someone saved
    the draft since. Without it the draft is saved over whichever is there."""


def journey_graph_save(call: AdminCall) -> Any:
    """Keep the graph as the journey's draft (it may still have problems; they come back);
    given the revision read, only over that draft (409 if someone saved it since)."""
    asked = call.model(GraphDraft)
    if asked.definition.get("journey_id", call.params["journey"]) != call.params["journey"]:
        raise ValidationFailed(
            [FieldError("journey_id", f"must be {call.params['journey']!r}, as in the path")]
        )
    definition = {**asked.definition, "journey_id": call.params["journey"]}
    return _graph_view(
        journeys.save_draft(_journey_ports(call), call.actor, definition, revision=asked.revision)
    )


class DryRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: dict[str, Any] | None = None
    """The graph to play (the journey's stored one when not given)."""
    leads: int = Field(default=200, ge=1, le=2000)
    start: ClientInstant | None = None
    """When the synthetic leads enter (now when not given): with its UTC offset, as every
    instant a client sends (a time without one names no instant)."""
    assume: str = Field(default="", max_length=500)
    """Probabilities of what leads do: ``clicked=0.3,opened=0.5``."""
    language: Literal["ja", "en"] | None = None
    """The language the days off are named in (the business calendar's own when not given)."""


def journey_dry_run(call: AdminCall) -> Any:
    """The dry run: synthetic leads through the graph, how many reach each node and when its
    mails would go. Nothing is sent or stored."""
    from tsunagu.journeys.simulation import AssumptionError, parse_assumptions

    asked = call.model(DryRun)
    ports = _journey_ports(call)
    definition = asked.definition
    if definition is None:
        definition = journeys.graph(ports, call.actor, call.params["journey"]).graph.definition
    try:
        assumptions = parse_assumptions(asked.assume)
    except AssumptionError as error:
        raise ValidationFailed([FieldError("assume", str(error))]) from None
    rules = services.simulation_rules(call.settings)
    result = journeys.dry_run(
        ports,
        call.actor,
        {**definition, "journey_id": call.params["journey"]},
        leads=asked.leads,
        start=asked.start,
        assumptions=assumptions,
        rules=rules,
    )
    return _dry_run_view(result, ZoneInfo(rules.time_zone), rules.calendar, asked.language)


def _dry_run_view(
    result: Simulation, zone: ZoneInfo, calendar: BusinessCalendar, language: str | None
) -> dict[str, Any]:
    """Per node: how many leads reach it, the first and last instant (in the journey's time
    zone), the outcomes of a decision, the mails the gate would skip; per template, the mails
    by day; the holidays and closed days of the period (the schedule keeps off them); and what
    the journey costs in Step Functions transitions."""

    def local(instants: list[datetime], pick: Callable[..., datetime]) -> str | None:
        return pick(instants).astimezone(zone).isoformat() if instants else None

    return {
        "leads": result.leads,
        # What the synthetic leads are taken to be: branches on anything else go by it
        "synthetic_leads": result.synthetic,
        "start": result.start.astimezone(zone).isoformat(),
        "time_zone": str(zone),
        "nodes": {
            node: {
                "reached": len(result.reached.get(node, [])),
                "first_at": local(result.reached.get(node, []), min),
                "last_at": local(result.reached.get(node, []), max),
                # A send node's mails: later than reaching it when the frequency cap defers them
                "first_sent_at": local(result.sent.get(node, []), min),
                "outcomes": dict(result.outcomes.get(node, {})),
                "skipped": result.skipped.get(node, 0),
            }
            for node in result.node_order
        },
        "mails": {
            template: {day.isoformat(): count for day, count in sorted(days.items())}
            for template, days in result.mails.items()
        },
        "days_off": {
            day.isoformat(): name
            for day, name in calendar.days_off(
                result.start.astimezone(zone).date(),
                max(
                    (
                        max(times)
                        for times in (*result.reached.values(), *result.sent.values())
                        if times
                    ),
                    default=result.start,
                )
                .astimezone(zone)
                .date(),
                language,
            ).items()
        },
        # Leads still going round a loop through a wait when their walk was stopped (the node
        # they were at): nothing they were assumed to do ended it
        "still_in": dict(sorted(result.still_in.items())),
        "steps_per_lead_at_most": MAX_STEPS,
        "transitions_per_entry": round(result.transitions_per_entry, 2),
        "cost_per_thousand_entries_usd": round(result.cost_per_thousand_entries, 4),
    }


class Rollback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = None


def journey_rollback(call: AdminCall) -> Any:
    """New entries take an earlier version (the one before the live one by default)."""
    asked = call.model(Rollback)
    publisher = services.journey_publisher(call.settings)
    return journeys.rollback(
        _journey_ports(call), call.actor, call.params["journey"], asked.version, publisher
    )


def journey_versions(call: AdminCall) -> Any:
    """The journey's published versions, and which is live."""
    publisher = services.journey_publisher(call.settings)
    return journeys.versions(_journey_ports(call), call.actor, call.params["journey"], publisher)


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: journeys.SettableStatus


def status_change(call: AdminCall) -> Any:
    """Set a journey's status: draft, active or archived."""
    asked = call.model(StatusChange)
    changed = journeys.set_status(
        _journey_ports(call), call.actor, call.params["journey"], asked.status
    )
    return {"journey_id": changed.journey_id, "status": changed.status}


def journey_pause(call: AdminCall) -> Any:
    """Pause the journey: each lead is held at its next step that mails, tags or tells someone."""
    paused = journeys.pause(_journey_ports(call), call.actor, call.params["journey"])
    return {"journey_id": paused.journey_id, "status": paused.status, "paused_at": paused.paused_at}


class Resume(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: ResumePolicy | None = None


def journey_resume(call: AdminCall) -> Any:
    """Resume the journey: its held leads go on by a policy (its own by default). While the
    emergency stop holds the account, nothing is released yet: ``held_by_emergency_stop``
    names the policy lifting the stop will release them by."""
    asked = call.model(Resume)
    report = journeys.resume(_journey_ports(call), call.actor, call.params["journey"], asked.policy)
    held = report.held_by_stop
    return {
        "released": report.released,
        "by_action": report.by_action,
        "held_by_emergency_stop": None if held is None else held.model_dump(),
    }


class Entry(BaseModel):
    """``lead`` (an address) or ``segment`` (a saved segment's name, or a filter), not both."""

    model_config = ConfigDict(extra="forbid")

    lead: str | None = Field(default=None, max_length=254)
    segment: str | None = Field(default=None, max_length=MAX_FILTER)
    request_key: str | None = Field(default=None, min_length=1, max_length=100)
    input: dict[str, JsonValue] | None = None
    """Added to each execution's input (``{"seminar_at": "2026-12-10T14:00:00+09:00"}``, the
    date a mail's deadline reads): names in lower case, none the journey writes itself, 4 KB
    at most; a field the journey declares as a deadline is a date-time with its offset."""


def journey_start(call: AdminCall) -> Any:
    """Enter one lead (``lead``), or every lead a segment selects (``segment``), into the
    journey; not both.

    A lead is entered in this request: ``entered`` 1, or ``already_in`` 1 when an earlier run of
    the same request (``request_key``) had entered it (``reason`` ``repeated``, nothing new
    started). A segment - tens of thousands of leads, more than a request's 29 s - is started in
    the background: 202 with the start (``start_id``, ``status`` queued); ``GET
    /admin/journeys/{journey}/starts/{start_id}`` answers its progress (selected, entered,
    already in, not entered, failed) until it is ``done``. Its leads are named by the request
    key as a lead's are: the same start again enters nobody twice.

    ``input``: what the executions add to the lead's (the date its mails' deadlines read),
    checked as the CLI's ``--input`` is."""
    asked = call.model(Entry)
    ports = _journey_ports(call)
    started = journeys.start_or_queue(
        ports,
        call.actor,
        call.params["journey"],
        lead_email=asked.lead,
        segment=asked.segment,
        request_key=asked.request_key,
        extra=asked.input,
    )
    if not isinstance(started, journeys.Started):  # a segment's start, queued
        return 202, started.as_json(now=ports.clock.now())
    return {
        "selected": started.selected,
        "entered": started.entered,
        "already_in": started.already_in,
        "results": [
            {"lead_id": lead.lead_id, "entered": result.entered, "reason": result.reason}
            for lead, result in started.results
        ],
    }


def journey_start_progress(call: AdminCall) -> Any:
    """A start for a segment run in the background: ``status`` queued, running, then done (or
    failed, with ``error``); the leads ``selected`` so far, and of them ``entered``,
    ``already_in`` (entered by an earlier start of the same request key), ``not_entered`` (the
    journey's re-entry rules; by reason in ``not_entered_by_reason``) and ``failed`` (the same
    start again enters them). ``stale``: not done, and nothing written for 15 minutes - what ran
    it has stopped without a word (the same start again enters the leads it had not).
    ``failed_attempts``: runs that ended in an error; the third fails the job. A start is kept
    30 days after it finished (one that stopped without a word, 30 days after its last write),
    then 404."""
    ports = _journey_ports(call)
    job = journeys.start_progress(
        ports, call.actor, call.params["journey"], call.params["start_id"]
    )
    return job.as_json(now=ports.clock.now())


STARTS_PAGE = 20
"""A journey's starts listed at a time unless ``limit`` says otherwise (at most 100)."""


def journey_starts(call: AdminCall) -> Any:
    """The journey's starts for a segment, newest first, each with its progress as ``GET
    .../starts/{start_id}`` answers it; ``next_before`` (a start id) gives the page after
    (``?before=``), null after the last. Starts past their 30 days are not listed."""
    ports = _journey_ports(call)
    found, more = journeys.recent_starts(
        ports,
        call.actor,
        call.params["journey"],
        before=call.query.get("before"),
        limit=call.number("limit", STARTS_PAGE, high=100),
    )
    now = ports.clock.now()
    return {
        "items": [job.as_json(now=now) for job in found],
        "next_before": found[-1].start_id if more and found else None,
    }


def emergency_stop(call: AdminCall) -> Any:
    """The emergency stop: every journey holds each lead at its next step that mails, tags or
    tells someone."""
    journeys.stop_all(_journey_ports(call), call.actor)
    return {"emergency_stop": True}


def emergency_stop_lift(call: AdminCall) -> Any:
    """Lift the emergency stop: each journey resumes by the policy it was resumed with during
    the stop, or else by its own."""
    reports = journeys.resume_all(_journey_ports(call), call.actor)
    return {
        "emergency_stop": False,
        "released": {journey: report.released for journey, report in reports.items()},
    }


# ---------------------------------------------------------------- forms and sites


def _definition_ports(call: AdminCall) -> definitions.DefinitionCommands:
    return definitions.DefinitionCommands(
        audit=services.audit_log(call.settings),
        clock=services.clock(call.settings),
        templates=services.mail_repository(call.settings),
    )


def _definition_routes(
    kind: definitions.Kind,
    store: Callable[[Settings], Any],
    model: type[BaseModel],
) -> tuple[Callable[[AdminCall], Any], ...]:
    key_param = kind

    def listed(call: AdminCall) -> Any:
        """The {kind}s, in pages."""
        found = definitions.listing(_definition_ports(call), call.actor, kind, store(call.settings))
        return page([d.as_json() for d in found], call)

    def shown(call: AdminCall) -> Any:
        """One {kind}."""
        found = definitions.show(
            _definition_ports(call), call.actor, kind, call.params[key_param], store(call.settings)
        )
        return found.as_json()

    def saved(call: AdminCall) -> Any:
        """Create the {kind}, or replace it with ?replace=true (never by accident). The body
        is the {kind} as GET answers it: its read-only fields are ignored. ``revision`` (as
        read): replace that revision only - a 409 (the revision now in ``revision``), nothing
        stored, if someone saved it since; absent: over whatever is stored."""
        key = call.params[key_param]
        replace = call.flag("replace")
        body, over = definitions.as_saved(kind, call.json())
        id_field = f"{kind}_id"
        if body.get(id_field, key) != key:
            raise ValidationFailed([FieldError(id_field, f"must be {key!r}, as in the path")])
        try:
            definition = strictly(model, {**body, id_field: key})
        except ValidationError as error:
            raise validation_failed(error, "(body)") from None
        replaced, stored = definitions.save(
            _definition_ports(call),
            call.actor,
            kind,
            key,
            definition,
            store(call.settings),
            replace=replace,
            over=over,
        )
        return 200 if replaced else 201, stored.as_json()

    return listed, shown, saved


forms_list, forms_show, forms_save = _definition_routes(
    "form", services.form_repository, FormDefinition
)
sites_list, sites_show, sites_save = _definition_routes(
    "site", services.site_repository, SiteDefinition
)


def _site_answer(site: dict[str, Any], keys: SigningKeys | None, now: datetime) -> dict[str, Any]:
    """A site as the admin API answers it (SiteDocument): its definition, when its signing
    secret was made (None: it has none), so that whoever makes a new one knows whether a
    server's secret is replaced by it, and until when the one it replaced is still accepted.
    Never a key id, from which with the stack's key a secret is made."""
    return {
        **site,
        "signing_secret_made_at": keys.created_at if keys is not None else None,
        "previous_secret_accepted_until": (
            keys.previous_accepted_at(now) if keys is not None else None
        ),
    }


def sites_listed(call: AdminCall) -> Any:
    """The sites, in pages, each with when its signing secret was made
    (`signing_secret_made_at`, null when it has none) and until when the one it replaced is
    accepted (`previous_secret_accepted_until`)."""
    answer = sites_list(call)
    keys = services.site_repository(call.settings).all_signing_keys()
    now = services.clock(call.settings).now()
    return {
        **answer,
        "items": [_site_answer(site, keys.get(site["site_id"]), now) for site in answer["items"]],
    }


def sites_shown(call: AdminCall) -> Any:
    """One site, with when its signing secret was made (`signing_secret_made_at`, null when it
    has none) and until when the one its last rotation replaced is still accepted
    (`previous_secret_accepted_until`, null when none is)."""
    return _site_answer_of(call, sites_show(call))


def sites_saved(call: AdminCall) -> Any:
    """Create the site, or replace it with ?replace=true (never by accident). The body is the
    site as GET answers it, and so is the answer: its read-only fields (when its signing secret
    was made, until when the one it replaced is accepted) are ignored. ``revision`` (as read):
    replace that revision only - a 409 (the revision now in ``revision``), nothing stored, if
    someone saved it since; absent: over whatever is stored."""
    status, answer = sites_save(call)
    return status, _site_answer_of(call, answer)


def _site_answer_of(call: AdminCall, site: dict[str, Any]) -> dict[str, Any]:
    keys = services.site_repository(call.settings).signing_keys(site["site_id"])
    return _site_answer(site, keys, services.clock(call.settings).now())


class SecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    revoke_previous: bool = Field(
        default=False,
        description="true: the current secret (say it leaked), and any earlier one still"
        " accepted, stop being accepted at once (within 30 seconds), not 24 hours from now.",
    )


def site_signing_secret(call: AdminCall) -> Any:
    """Make the site's signing secret, which its server signs tracking posts with: its first,
    or a new one in place of the current, which is still accepted for 24 hours
    (`previous_secret_accepted_until`) while the site's servers switch. One previous secret
    only: a rotation inside those 24 hours ends the earlier secret's at once
    (`ended_overlap_until` says until when it would have been accepted). `revoke_previous`:
    true (a leaked secret) ends the current one too, within 30 seconds (the time a warm
    tracking function keeps a site). The secret is in this answer only: Tsunagu keeps its key
    id, never the secret."""
    asked = call.model(SecretRotation)
    made = sites.rotate_signing_secret(
        services.site_commands(call.settings),
        call.actor,
        call.params["site"],
        revoke_previous=asked.revoke_previous,
    )
    return 201, made.as_body()


# ---------------------------------------------------------------- users


class Invitation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=254)
    role: Role


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    enabled: bool | None = None
    mfa: Literal["off"] | None = None
    """Turn off the user's two-step sign-in (a lost phone); turning it on is the user's own
    (their authenticator app's first code), so "off" is the one value."""


def users_list(call: AdminCall) -> Any:
    """The people who sign in: their role, whether they may, and their status."""
    found = users.listing(services.user_commands(call.settings), call.actor)
    return page([user.as_json() for user in found], call)


def user_invite(call: AdminCall) -> Any:
    """Invite someone with a role: the pool mails them a temporary password."""
    asked = call.model(Invitation)
    user = users.invite(services.user_commands(call.settings), call.actor, asked.email, asked.role)
    return 201, user.as_json()


def user_change(call: AdminCall) -> Any:
    """Change a user's role, disable (signed out everywhere) or enable them, or turn off their
    two-step sign-in (``"mfa": "off"``, for a user who lost their phone)."""
    asked = call.model(UserChange)
    if asked.role is None and asked.enabled is None and asked.mfa is None:
        raise ValidationFailed([FieldError("(body)", "give role, enabled, mfa or more of them")])
    ports, email = services.user_commands(call.settings), call.params["user"]
    user = None
    if asked.role is not None:
        user = users.set_role(ports, call.actor, email, asked.role)
    if asked.enabled is not None:
        user = users.set_enabled(ports, call.actor, email, asked.enabled)
    if asked.mfa == "off":
        user = users.turn_off_two_step(ports, call.actor, email)
    assert user is not None
    return user.as_json()


# ---------------------------------------------------------------- mail templates


def templates_list(call: AdminCall) -> Any:
    """The latest version of every mail template."""
    found = mail.listing(services.mail_commands(call.settings), call.actor)
    return page([t.model_dump(mode="json") for t in found], call)


def template_show(call: AdminCall) -> Any:
    """A mail template: its latest version, or ?version=."""
    version = call.optional_number("version")
    found = mail.show(
        services.mail_commands(call.settings), call.actor, call.params["template"], version
    )
    return found.model_dump(mode="json")


def template_save(call: AdminCall) -> Any:
    """Store the template as its next version (stored versions never change); ``?new=true``
    creates it, and a template with its id is a 409 rather than replaced. ``version``: the
    latest version the editor read - a 409 (the latest's number in ``revision``), nothing
    stored, if one was stored since; absent or null: over whatever is latest."""
    key = call.params["template"]
    new = call.flag("new")
    body = call.json()
    if body.get("template_id", key) != key:
        raise ValidationFailed([FieldError("template_id", f"must be {key!r}, as in the path")])
    over = body.get("version")
    if over is not None and (type(over) is not int or over < 0):
        raise ValidationFailed(
            [FieldError("version", "must be the number of the version you opened (1, 2, ...)")]
        )
    over = over or None  # 0: the model's "not stored yet", as a new template's body has it
    try:
        template = strictly(MailTemplate, {**body, "template_id": key, "version": 0})
    except ValidationError as error:
        raise validation_failed(error, "(body)") from None
    stored = mail.save_template(
        services.mail_commands(call.settings), call.actor, template, new=new, over=over
    )
    return 201, stored.model_dump(mode="json")


def template_versions(call: AdminCall) -> Any:
    """The template's history: every stored version, the newest first, with when and by whom
    it was stored."""
    key = call.params["template"]
    found = mail.versions(services.mail_commands(call.settings), call.actor, key)
    return {"template_id": key, "items": [asdict(version) for version in found]}


def template_preview(call: AdminCall) -> Any:
    """The template as the lead (?lead=) would receive it now: subject, HTML and text, links
    inert. Nothing is sent or stored."""
    lead = call.text("lead")
    if lead is None:
        raise ValidationFailed([FieldError("lead", "is required: the lead whose data to use")])
    version = call.optional_number("version")
    shown = mail.preview(
        services.mail_commands(call.settings), call.actor, call.params["template"], lead, version
    )
    return {
        "template_id": shown.template.template_id,
        "version": shown.template.version,
        "subject": shown.mail.subject,
        "html": shown.mail.html,
        "text": shown.mail.text,
    }


class DraftPreview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: dict[str, Any]
    """The template as the editor holds it (name, subject, html, from_address, ...)."""
    lead: str | None = Field(default=None, min_length=3, max_length=254)
    """The lead whose data fills the merge tags (the sample lead's when not given)."""


def template_preview_draft(call: AdminCall) -> Any:
    """The template being edited, before it is stored, as the lead (or the sample lead) would
    receive it now: subject, HTML and text, links inert. Nothing is sent or stored."""
    asked = call.model(DraftPreview)
    key = call.params["template"]
    try:
        draft = strictly(MailTemplate, {**asked.template, "template_id": key, "version": 0})
    except ValidationError as error:
        raise validation_failed(error, "template") from None
    shown = mail.preview_draft(services.mail_commands(call.settings), call.actor, draft, asked.lead)
    return {
        "template_id": key,
        "version": None,
        "subject": shown.mail.subject,
        "html": shown.mail.html,
        "text": shown.mail.text,
    }


def template_test_send(call: AdminCall) -> Any:
    """Mail the template, rendered for a lead (or sample data) with inert links and "[TEST]"
    before its subject, to an address on the mail allowlist (only there, in every stage)."""
    asked = call.model(mail.ProofRequest)
    sent = mail.send_proof(
        services.mail_commands(call.settings),
        call.actor,
        call.params["template"],
        asked.to,
        lead_email=asked.lead,
        version=asked.version,
    )
    return {
        "to": sent.to,
        "version": sent.version,
        "subject": sent.subject,
        "ses_message_id": sent.ses_message_id,
    }


# ---------------------------------------------------------------- qualification and audit


def qualification_show(call: AdminCall) -> Any:
    """The qualification rules as saved now: scoring, grading, MQL threshold, owners, CRM merge,
    and their ``revision`` (how many times they were saved), which a save sends back."""
    ports = services.qualification_commands(call.settings)
    return qualification.show(ports, call.actor).as_json()


class QualificationChange(QualificationConfig):
    """The sections of the rules to replace (the others stay as saved), and the revision read."""

    revision: int | None = Field(default=None, ge=0)
    """The ``revision`` read with the rules (GET /admin/qualification): saved only if they are
    still at it - a 409 (the revision now in the error's ``revision``), nothing stored, if
    someone saved them since. Absent: over whatever is saved (the CLI, scripts)."""


def qualification_set(call: AdminCall) -> Any:
    """Replace the sections of the rules the body has; the others stay. ``revision`` (as read):
    over that revision only - a 409 (the revision now in ``revision``), nothing stored, if
    someone saved the rules since; absent: over whatever is saved. The answer has the rules
    and their new revision."""
    ports = services.qualification_commands(call.settings)
    body = dict(call.json())
    over = revision_read(body, "the rules")
    return qualification.replace_sections(ports, call.actor, body, over=over).as_json()


def lead_score(call: AdminCall) -> Any:
    """The lead's score explained: every event and rule behind it, decay included, the grade
    with its reasons, the matrix cell and the stage history."""
    ports = services.qualification_commands(call.settings)
    return qualification.explain_score(ports, call.actor, call.params["lead"]).as_json()


def hot_list(call: AdminCall) -> Any:
    """For sales: leads by score for now, then grade, then recent activity (customers and
    disqualified leads left out)."""
    ports = services.qualification_commands(call.settings)
    limit = call.number("limit", PAGE_SIZE, high=MAX_PAGE_SIZE)
    return {"items": [hot.as_json() for hot in qualification.hot_list(ports, call.actor, limit)]}


def crm_pushes(call: AdminCall) -> Any:
    """Pushes to the CRM that failed every retry, newest first."""
    ports = services.qualification_commands(call.settings)
    return page(qualification.failed_pushes(ports, call.actor), call)


MAX_WHO = 254
AUDITED_OPERATIONS = frozenset(OPERATIONS) | {name.split(".")[0] for name in OPERATIONS}
"""What ``?operation=`` may name: an operation, or a group of them (``journeys``)."""


def audit_entries(call: AdminCall) -> Any:
    """The audit log, newest first, by date range, who, operation and outcome (CSV with
    ?format=csv: the same entries)."""
    as_csv_file = _csv_asked(call)
    until, since = call.instant("until"), call.instant("since")  # none: the last week
    # A CSV holds the range (up to the most a file holds) unless asked for fewer; a page, a page
    limit = call.number(
        "limit", MAX_AUDIT_ENTRIES if as_csv_file else PAGE_SIZE, high=LIMIT_MAX["/admin/audit"]
    )
    asked = call.text("outcome")
    outcomes: dict[str | None, Outcome | None] = {None: None, "done": "done", "refused": "refused"}
    if asked not in outcomes:
        raise ValidationFailed([FieldError("outcome", f"{asked!r}: say done or refused")])
    outcome = outcomes[asked]
    who, operation = call.text("who"), call.text("operation")
    for name in ("who", "operation"):
        if name in call.query and not call.query[name]:
            raise ValidationFailed([FieldError(name, "empty: leave it out to list every entry")])
    if who is not None and len(who) > MAX_WHO:
        raise ValidationFailed([FieldError("who", f"at most {MAX_WHO} characters")])
    if operation is not None and operation not in AUDITED_OPERATIONS:
        raise ValidationFailed(
            [FieldError("operation", f"{operation[:60]!r} is no operation, nor a group of them")]
        )
    before = call.page_key()
    page = list_entries(
        services.audit_log(call.settings),
        services.clock(call.settings),
        call.actor,
        since,
        until,
        limit=limit,
        matching=AuditFilter(who, operation, outcome),
        before=before,
    )
    entries, more = page.entries, page.more
    if as_csv_file:
        # A file holds one page too: when the range holds more, the header says where the next
        # file starts (?before=), as next_before does in JSON.
        return CsvBody(as_csv(entries), next_before=page_key(entries[-1]) if more else None)
    # The next page: the entries after the last on this one (newest first), by its page key,
    # which tells apart entries of the same millisecond; next_until (by instant alone) is kept
    # for the callers that page by it.
    addresses = _lead_addresses(call, entries)
    return {
        "items": [_audit_view(e, addresses) for e in entries],
        "next_before": page_key(entries[-1]) if more else None,
        "next_until": entries[-1].at if more else None,
    }


@dataclass(frozen=True)
class CsvBody:
    text: str
    filename: str = "audit.csv"
    data: bytes | None = None
    """The file's bytes in another encoding than UTF-8 (``charset``): sent as base64."""
    charset: str = "utf-8"
    next_before: str | None = None
    """When the file is one page of more (the audit log's): the ``?before=`` of the next file,
    sent as NEXT_BEFORE_HEADER."""
    replaced_characters: int | None = None
    """A cp932 export's characters written as ``?`` (no code for them in cp932), sent as
    REPLACED_CHARACTERS_HEADER: the file alone does not say a name lost its 𠮷."""


NEXT_BEFORE_HEADER = "x-tsunagu-next-before"
REPLACED_CHARACTERS_HEADER = "x-tsunagu-replaced-characters"


# ---------------------------------------------------------------- reports
class RebuildRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    first_day: date = Field(alias="from")
    last_day: date = Field(alias="to")


def _report_range(call: AdminCall) -> tuple[date, date]:
    """``?from`` and ``?to`` (days, in the account's time zone); the last 30 days by default."""
    now = services.clock(call.settings).now()
    return report_days(
        now, call.settings.default_time_zone, call.optional_day("from"), call.optional_day("to")
    )


def _report_answer(report: Report, call: AdminCall) -> Any:
    if _csv_asked(call):
        name = f"{report.kind}-{report.subject_id}-{report.first_day}-{report.last_day}.csv"
        return CsvBody("\ufeff" + report_csv(report), name)
    return {**report.as_dict(), "definitions": METRICS, "rates_are": RATES}


def report_mail(call: AdminCall) -> Any:
    """A mail template's figures per version over a range of days: people's and machines'
    opens and clicks side by side, bounces, unsubscribes and the rates (CSV with
    ?format=csv)."""
    first, last = _report_range(call)
    ports = services.report_commands(call.settings)
    found = reports.mail_report(ports, call.actor, call.params["template"], first, last)
    return _report_answer(found, call)


def report_journey(call: AdminCall) -> Any:
    """A journey's figures per version and node over a range of days: each mail node's counts
    and rates, each decision node's outcomes (CSV with ?format=csv)."""
    first, last = _report_range(call)
    ports = services.report_commands(call.settings)
    found = reports.journey_report(ports, call.actor, call.params["journey"], first, last)
    return _report_answer(found, call)


def report_experiment(call: AdminCall) -> Any:
    """A journey's split (A/B test): each arm's leads, mails and people's clicks, and each arm
    against the first - the difference with its 95 % interval, a two-proportion test and the
    mails per arm still needed; never judged on opens."""
    first, last = _report_range(call)
    version = call.optional_number("version")
    ports = services.report_commands(call.settings)
    found = reports.experiment_report(
        ports, call.actor, call.params["journey"], call.params["node"], first, last, version
    )
    if _csv_asked(call):
        name = f"experiment-{found.journey_id}-{found.node}-{first}-{last}.csv"
        return CsvBody("\ufeff" + experiment_csv(found), name)
    return found.as_dict()


def _csv_asked(call: AdminCall) -> bool:
    """``?format=csv`` (JSON unless asked; anything else is 422)."""
    shape = call.query.get("format", "json")  # given empty: refused below
    if shape not in ("json", "csv"):
        raise ValidationFailed([FieldError("format", f"{shape!r}: json or csv")])
    return shape == "csv"


def report_funnel(call: AdminCall) -> Any:
    """The funnel of the leads created in a range of days: how many reached MQL, SQL,
    opportunity and customer, each stage's conversion from the one before and the median days
    it took, by first channel (or ?by=form: first form)."""
    first, last = _report_range(call)
    by = call.query.get("by", "channel")  # given empty: refused below
    if by not in ("channel", "form"):
        raise ValidationFailed([FieldError("by", f"{by!r}: channel or form")])
    ports = services.report_commands(call.settings)
    grouping: Literal["channel", "form"] = "form" if by == "form" else "channel"
    found = reports.funnel_report(ports, call.actor, first, last, grouping)
    if _csv_asked(call):
        return CsvBody("\ufeff" + funnel_csv(found), f"funnel-{by}-{first}-{last}.csv")
    return found.as_dict()


def report_attribution(call: AdminCall) -> Any:
    """The won deals that closed in a range of days, their revenue credited to the journeys and
    mails people opened or clicked in the look-back window before each close (first-touch,
    last-touch, linear), and each journey's AWS cost and ROI (?usd_rates=JPY:150 turns revenue
    into dollars; CSV with ?format=csv)."""
    first, last = _report_range(call)
    lookback = call.number("lookback_days", DEFAULT_LOOKBACK_DAYS, low=1, high=MAX_LOOKBACK_DAYS)
    rates_text = call.query.get("usd_rates") or ""
    rates = parse_usd_rates([t for t in rates_text.split(",") if t.strip()], "usd_rates")
    ports = services.report_commands(call.settings)
    found = reports.attribution_report(ports, call.actor, first, last, lookback, rates)
    if _csv_asked(call):
        return CsvBody("\ufeff" + attribution_csv(found), f"attribution-{first}-{last}.csv")
    return found.as_dict()


API_REBUILD_EVENTS = 15_000
"""The most events a rebuild through the admin API counts again in the request: about 18 s at
the rate measured here (about 830 events a second: 3,000 stored mails rebuilt in-process on
moto, a 2-core machine), inside API Gateway's 29 s with room for the Scan's pages and the
writes. Days holding more are counted in the background (202: the rebuild_reports state
machine, a day at a time)."""


def report_rebuild(call: AdminCall) -> Any:
    """Count a range of days again from the stored events (after automated activity was
    re-judged), replacing their counters. Days the request can count in its time are counted
    in it (200 with the counts); days holding more are counted in the background, a day at a
    time: 202 with the rebuild (``rebuild_id``, ``status`` queued, ``days_done`` of
    ``days_total``); ``GET /admin/reports/rebuilds/{rebuild_id}`` answers its progress until it
    is ``done``."""
    asked = call.model(RebuildRequest)
    ports = services.report_commands(call.settings)
    done = reports.rebuild(
        ports, call.actor, asked.first_day, asked.last_day, max_events=API_REBUILD_EVENTS
    )
    if isinstance(done, RebuildJob):
        return 202, done.as_json()
    return {
        "from": asked.first_day.isoformat(),
        "to": asked.last_day.isoformat(),
        "events": done.events,
        "counted": done.counted,
        "rows": done.rows,
        "rows_replaced": done.rows_removed,
    }


def report_rebuild_progress(call: AdminCall) -> Any:
    """A rebuild run in the background: ``status`` queued, running, then done (or failed, with
    ``error``, or stopped: its execution stopped by hand or timed out, ``error`` saying after
    how many days); ``days_done`` of ``days_total`` counted again and stored (a rebuild cut short
    leaves each day's rows old or new), and the ``events`` read, ``counted``, ``rows``
    written and ``rows_replaced`` so far."""
    ports = services.report_commands(call.settings)
    return reports.rebuild_progress(ports, call.actor, call.params["rebuild_id"]).as_json()


LEAD_TARGET = "lead:"


def _lead_addresses(call: AdminCall, entries: Sequence[AuditEntry]) -> dict[str, str]:
    """The addresses of the leads a page of entries names (``lead:<id>``), read in one batch:
    the log keeps the id, which tells the reader nothing. A lead since erased is left out."""
    ids = sorted(
        {e.target[len(LEAD_TARGET) :] for e in entries if e.target.startswith(LEAD_TARGET)}
    )
    if not ids:
        return {}
    return {
        lead.lead_id: lead.email
        for lead in services.lead_repository(call.settings).leads_by_id(ids)
    }


def _audit_view(entry: AuditEntry, addresses: Mapping[str, str]) -> dict[str, Any]:
    named = entry.target.startswith(LEAD_TARGET)
    return {
        "entry_id": entry.entry_id,
        "at": entry.at,
        "user_id": entry.actor.user_id,
        "email": entry.actor.email,
        "role": entry.actor.role,
        "via": entry.actor.via,
        "source_ip": entry.actor.source_ip,
        "operation": entry.operation,
        "target": entry.target,
        # The lead's address for a lead's entry (null for any other, or an erased lead)
        "target_email": addresses.get(entry.target[len(LEAD_TARGET) :]) if named else None,
        "outcome": entry.outcome,
        "before": entry.before,
        "after": entry.after,
        "detail": entry.detail,
    }


def me(call: AdminCall) -> Any:
    """Who the token says you are, and what your role may do (the console shows only that)."""
    allowed = sorted(op.name for op in OPERATIONS.values() if call.actor.role in op.roles)
    return {
        "user_id": call.actor.user_id,
        "email": call.actor.email,
        "role": call.actor.role,
        "operations": allowed,
    }


# ---------------------------------------------------------------- the routes


@dataclass(frozen=True)
class AdminRoute:
    method: str
    path: str
    """As the API document writes it: ``/admin/leads/{lead}``."""
    operation: str | None
    """The operation in ``OPERATIONS`` (its roles); None for ``/admin/me``, open to anyone
    signed in."""
    run: Callable[[AdminCall], Any]
    body: type[BaseModel] | None = None
    """What the body is (for the API document; ``run`` reads it)."""
    query: tuple[str, ...] = ()
    """The query parameters it reads (``QUERY_PARAMETERS``)."""
    answer: type[BaseModel] | None = None
    """What it answers (for the API document), where that is a model: each item of a paged
    list's ``items``; None: a JSON object the summary describes."""

    @property
    def summary(self) -> str:
        doc = self.run.__doc__ or ""
        kind = self.path.split("/")[2].rstrip("s")
        return " ".join(doc.split()).replace("{kind}", kind)


PAGED = ("limit", "cursor")
LIMIT_MAX = {"/admin/leads/{lead}/timeline": 2000, "/admin/audit": MAX_AUDIT_ENTRIES}
"""Routes whose ``limit`` goes above MAX_PAGE_SIZE (a timeline, the log's CSV export)."""
TIMELINE_PAGE_SIZE = 500
"""A timeline's events a page when ``limit`` is not given (other lists: PAGE_SIZE)."""
ROUTES: tuple[AdminRoute, ...] = (
    AdminRoute("GET", "/admin/me", None, me),
    AdminRoute(
        "GET",
        "/admin/leads",
        "leads.search",
        lead_search,
        query=("q", "stage", "owner", "tag", "grade", "score_min", "score_max", *PAGED),
    ),
    AdminRoute("GET", "/admin/leads/{lead}", "leads.show", lead_show),
    AdminRoute("PATCH", "/admin/leads/{lead}", "leads.update", lead_update, LeadUpdate),
    AdminRoute(
        "GET",
        "/admin/leads/{lead}/timeline",
        "leads.timeline",
        lead_timeline,
        query=("limit", "before"),
    ),
    AdminRoute(
        "POST",
        "/admin/leads/{lead}/events",
        "leads.record_event",
        lead_record_event,
        RecordedEvent,
    ),
    AdminRoute(
        "POST", "/admin/leads/{lead}/suppression", "leads.suppress", lead_suppress, Suppression
    ),
    AdminRoute(
        "DELETE",
        "/admin/leads/{lead}/suppression",
        "leads.unsuppress",
        lead_unsuppress,
        Unsuppression,
    ),
    AdminRoute("GET", "/admin/exclusions", "exclusions.list", exclusion_list),
    AdminRoute("POST", "/admin/exclusions", "exclusions.save", exclusion_add, ExclusionRequest),
    AdminRoute("DELETE", "/admin/exclusions/{value}", "exclusions.save", exclusion_remove),
    AdminRoute(
        "GET",
        "/admin/suppressions",
        "suppressions.list",
        suppression_list,
        query=("reason", *PAGED),
    ),
    AdminRoute("POST", "/admin/imports/plans", "imports.plan", import_plan, ImportPlanRequest),
    AdminRoute("POST", "/admin/imports/columns", "imports.plan", import_columns, ColumnsRequest),
    AdminRoute("GET", "/admin/imports/plans/{plan_id}", "imports.plan", import_dry_run),
    AdminRoute("GET", "/admin/imports", "imports.list", import_list),
    AdminRoute(
        "GET", "/admin/leads/export", "leads.export", lead_export, query=("segment", "encoding")
    ),
    AdminRoute("GET", "/admin/segments", "segments.list", segment_list),
    AdminRoute("POST", "/admin/segments", "segments.save", segment_save, SegmentDocument),
    AdminRoute("POST", "/admin/segments/try", "segments.preview", segment_try, SegmentTryRequest),
    AdminRoute(
        "GET", "/admin/segments/{name}", "segments.list", segment_show, answer=SegmentDocument
    ),
    AdminRoute("PUT", "/admin/segments/{name}", "segments.save", segment_save, SegmentDocument),
    AdminRoute("DELETE", "/admin/segments/{name}", "segments.delete", segment_delete),
    AdminRoute("POST", "/admin/imports", "imports.run", import_run, ImportRunRequest),
    AdminRoute("POST", "/admin/imports/{import_id}/undo", "imports.undo", import_undo),
    AdminRoute("POST", "/admin/imports/uploads", "imports.plan", import_upload, UploadRequest),
    AdminRoute("GET", "/admin/imports/{import_id}", "imports.list", import_status),
    AdminRoute("GET", "/admin/imports/mappings", "imports.list", mapping_list),
    AdminRoute(
        "PUT", "/admin/imports/mappings/{mapping}", "imports.mappings", mapping_save, MappingRequest
    ),
    AdminRoute("DELETE", "/admin/imports/mappings/{mapping}", "imports.mappings", mapping_delete),
    AdminRoute("GET", "/admin/journeys", "journeys.list", journey_list, query=PAGED),
    AdminRoute("POST", "/admin/journeys", "journeys.publish", journey_publish, Publication),
    AdminRoute(
        "GET", "/admin/journeys/status", "journeys.list", journey_status, query=("journey",)
    ),
    AdminRoute("GET", "/admin/journeys/{journey}", "journeys.list", journey_show),
    AdminRoute(
        "PUT",
        "/admin/journeys/{journey}/settings",
        "journeys.save",
        journey_configure,
        SettingsChange,
    ),
    AdminRoute("GET", "/admin/journeys/{journey}/versions", "journeys.list", journey_versions),
    AdminRoute(
        "POST",
        "/admin/journeys/{journey}/rollback",
        "journeys.rollback",
        journey_rollback,
        Rollback,
    ),
    AdminRoute(
        "PUT",
        "/admin/journeys/{journey}/status",
        "journeys.set_status",
        status_change,
        StatusChange,
    ),
    AdminRoute("GET", "/admin/journeys/{journey}/graph", "journeys.list", journey_graph),
    AdminRoute(
        "PUT", "/admin/journeys/{journey}/graph", "journeys.save", journey_graph_save, GraphDraft
    ),
    AdminRoute(
        "POST", "/admin/journeys/{journey}/dry-run", "journeys.list", journey_dry_run, DryRun
    ),
    AdminRoute("POST", "/admin/journeys/{journey}/pause", "journeys.pause", journey_pause),
    AdminRoute(
        "POST", "/admin/journeys/{journey}/resume", "journeys.resume", journey_resume, Resume
    ),
    AdminRoute("POST", "/admin/journeys/{journey}/entries", "journeys.start", journey_start, Entry),
    AdminRoute(
        "GET",
        "/admin/journeys/{journey}/starts",
        "journeys.list",
        journey_starts,
        query=("limit", "before"),
    ),
    AdminRoute(
        "GET",
        "/admin/journeys/{journey}/starts/{start_id}",
        "journeys.list",
        journey_start_progress,
    ),
    AdminRoute("PUT", "/admin/emergency-stop", "journeys.stop_all", emergency_stop),
    AdminRoute("DELETE", "/admin/emergency-stop", "journeys.resume_all", emergency_stop_lift),
    AdminRoute("GET", "/admin/forms", "forms.list", forms_list, query=PAGED, answer=FormDocument),
    AdminRoute("GET", "/admin/forms/{form}", "forms.list", forms_show, answer=FormDocument),
    AdminRoute(
        "PUT",
        "/admin/forms/{form}",
        "forms.save",
        forms_save,
        FormDocument,
        query=("replace",),
        answer=FormDocument,
    ),
    AdminRoute("GET", "/admin/sites", "sites.list", sites_listed, query=PAGED, answer=SiteDocument),
    AdminRoute("GET", "/admin/sites/{site}", "sites.list", sites_shown, answer=SiteDocument),
    AdminRoute(
        "PUT",
        "/admin/sites/{site}",
        "sites.save",
        sites_saved,
        SiteDocument,
        query=("replace",),
        answer=SiteDocument,
    ),
    AdminRoute(
        "POST",
        "/admin/sites/{site}/signing-secret",
        "sites.rotate_secret",
        site_signing_secret,
        SecretRotation,
    ),
    AdminRoute("GET", "/admin/users", "users.list", users_list, query=PAGED),
    AdminRoute("POST", "/admin/users", "users.save", user_invite, Invitation),
    AdminRoute("PATCH", "/admin/users/{user}", "users.save", user_change, UserChange),
    AdminRoute("GET", "/admin/leads/{lead}/score", "leads.score", lead_score),
    AdminRoute("GET", "/admin/hot-list", "leads.hot", hot_list, query=("limit",)),
    AdminRoute("GET", "/admin/crm/pushes", "crm.pushes", crm_pushes, query=PAGED),
    AdminRoute(
        "GET",
        "/admin/templates",
        "templates.list",
        templates_list,
        query=PAGED,
        answer=MailTemplate,
    ),
    AdminRoute(
        "GET",
        "/admin/templates/{template}",
        "templates.list",
        template_show,
        query=("version",),
        answer=MailTemplate,
    ),
    AdminRoute(
        "GET",
        "/admin/templates/{template}/versions",
        "templates.list",
        template_versions,
    ),
    AdminRoute(
        "POST",
        "/admin/templates/{template}/versions",
        "templates.save",
        template_save,
        MailTemplate,
        query=("new",),
        answer=MailTemplate,
    ),
    AdminRoute(
        "GET",
        "/admin/templates/{template}/preview",
        "templates.list",
        template_preview,
        query=("lead", "version"),
    ),
    AdminRoute(
        "POST",
        "/admin/templates/{template}/preview",
        "templates.list",
        template_preview_draft,
        DraftPreview,
    ),
    AdminRoute(
        "POST",
        "/admin/templates/{template}/test-sends",
        "templates.test_send",
        template_test_send,
        mail.ProofRequest,
    ),
    AdminRoute("GET", "/admin/qualification", "qualification.show", qualification_show),
    AdminRoute(
        "PUT", "/admin/qualification", "qualification.set", qualification_set, QualificationChange
    ),
    AdminRoute(
        "GET",
        "/admin/audit",
        "audit.list",
        audit_entries,
        query=("since", "until", "before", "who", "operation", "outcome", "limit", "format"),
    ),
    AdminRoute(
        "GET",
        "/admin/reports/mail/{template}",
        "reports.show",
        report_mail,
        query=("from", "to", "format"),
    ),
    AdminRoute(
        "GET",
        "/admin/reports/journeys/{journey}",
        "reports.show",
        report_journey,
        query=("from", "to", "format"),
    ),
    AdminRoute(
        "GET",
        "/admin/reports/journeys/{journey}/experiments/{node}",
        "reports.show",
        report_experiment,
        query=("from", "to", "version", "format"),
    ),
    AdminRoute(
        "GET",
        "/admin/reports/funnel",
        "reports.show",
        report_funnel,
        query=("from", "to", "by", "format"),
    ),
    AdminRoute(
        "GET",
        "/admin/reports/attribution",
        "reports.show",
        report_attribution,
        query=("from", "to", "lookback_days", "usd_rates", "format"),
    ),
    AdminRoute("POST", "/admin/reports/rebuild", "reports.rebuild", report_rebuild, RebuildRequest),
    AdminRoute(
        "GET", "/admin/reports/rebuilds/{rebuild_id}", "reports.rebuilds", report_rebuild_progress
    ),
)
"""Every admin route: the API document lists exactly these (a static test), and the role-matrix
test walks each with every role."""


def _matcher(path: str) -> Callable[[str], dict[str, str] | None]:
    want = path.strip("/").split("/")

    def match(asked: str) -> dict[str, str] | None:
        got = asked.strip("/").split("/")
        if len(got) != len(want):
            return None
        params: dict[str, str] = {}
        for pattern, value in zip(want, got, strict=True):
            if pattern.startswith("{"):
                if not value:
                    return None
                params[pattern[1:-1]] = value
            elif pattern != value:
                return None
        return params

    return match


_MATCHERS = [(route, _matcher(route.path)) for route in ROUTES]


def route_for(method: str, path: str) -> tuple[AdminRoute, dict[str, str]]:
    """The route a request asks for; literal segments win (``/journeys/status`` is not a
    journey named ``status``). NotFound names what exists at the path, if anything."""
    candidates = [(r, p) for r, m in _MATCHERS if (p := m(path)) is not None]
    candidates.sort(key=lambda found: len(found[1]))
    for route, params in candidates:
        if route.method == method:
            return route, params
    if candidates:
        methods = ", ".join(sorted({r.method for r, _ in candidates}))
        raise MethodNotAllowed(f"{path} takes {methods}, not {method}", methods)
    raise NotFound(f"no admin route {method} {path}")


class MethodNotAllowed(NotFound):
    def __init__(self, message: str, allowed: str) -> None:
        super().__init__(message)
        self.allowed = allowed


# ---------------------------------------------------------------- the handler


def handle(event: Mapping[str, Any], settings: Settings) -> Response:
    """One admin request, start to end: who, from where, which route, the use case, the
    answer. Nothing is read or changed before the address and the role have been checked."""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    origin = headers.get("origin", "")
    allowed_origin = bool(settings.console_origin) and origin == settings.console_origin
    method = str(((event.get("requestContext") or {}).get("http") or {}).get("method", ""))
    if method.upper() == "OPTIONS":
        return _preflight(allowed_origin, origin)
    response = _answer(event, settings)
    if allowed_origin:
        response["headers"] = {
            **response.get("headers", {}),
            "access-control-allow-origin": origin,
            # The console names a downloaded CSV as the API does, goes on with a cut audit
            # CSV, and says what a cp932 export lost.
            "access-control-expose-headers": ", ".join(
                ("content-disposition", NEXT_BEFORE_HEADER, REPLACED_CHARACTERS_HEADER)
            ),
            "vary": "Origin",
        }
    return response


CORS_METHODS = "GET, POST, PUT, PATCH, DELETE"


def _preflight(allowed: bool, origin: str) -> Response:
    """The console's browser asks before a cross-origin call (no token comes with the question,
    so the route has no authorizer): yes for the console's origin, no for any other."""
    if not allowed:
        return json_response(
            403, {"message": f"the admin API is not open to {origin or 'that page'}"}
        )
    return {
        "statusCode": 204,
        "headers": {
            "access-control-allow-origin": origin,
            "access-control-allow-methods": CORS_METHODS,
            "access-control-allow-headers": "authorization, content-type",
            "access-control-max-age": "600",
            "vary": "Origin",
        },
        "body": "",
    }


def _answer(event: Mapping[str, Any], settings: Settings) -> Response:
    context = event.get("requestContext") or {}
    claims = ((context.get("authorizer") or {}).get("jwt") or {}).get("claims") or {}
    try:
        request = HttpRequest.from_http_api_event(dict(event))
        actor = actor_from(claims, request.source_ip)
        try:
            route, params = route_for(request.method, request.path)
        except NotFound:
            # From outside the allowlist, not even which routes exist is said.
            _check_caller(settings, actor, None, request.path, signed_in=bool(claims))
            raise
        _check_caller(settings, actor, route.operation, request.path, signed_in=bool(claims))
        if len(request.body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
        call = AdminCall(
            settings=settings,
            actor=actor,
            method=request.method,
            path=request.path,
            params=params,
            query=request.query,
            body=request.body,
            headers=request.headers,
        )
        result = route.run(call)
    except MethodNotAllowed as error:
        return error_response(error, headers={"allow": error.allowed}) | {"statusCode": 405}
    except TsunaguError as error:
        return error_response(error)
    if isinstance(result, CsvBody):
        file: dict[str, Any] = (
            {"body": result.text}
            if result.data is None
            else {"body": base64.b64encode(result.data).decode(), "isBase64Encoded": True}
        )
        file_headers = {
            "content-type": f"text/csv; charset={result.charset}",
            "content-disposition": _attachment(result.filename),
            "cache-control": "no-store",
        }
        if result.next_before is not None:
            file_headers[NEXT_BEFORE_HEADER] = result.next_before
        if result.replaced_characters is not None:
            file_headers[REPLACED_CHARACTERS_HEADER] = str(result.replaced_characters)
        return {"statusCode": 200, "headers": file_headers, **file}
    status, body = result if isinstance(result, tuple) else (200, result)
    return json_response(status, body, {"cache-control": "no-store"})


def _attachment(file_name: str) -> str:
    """A download's Content-Disposition: an ASCII name for every client, and the name as it is
    (RFC 6266's ``filename*``); a header holds no other character (found by make proof: a
    journey's node in a CSV's name took the HTTP server down mid-answer)."""
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", file_name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(file_name, safe='')}"


def _check_caller(
    settings: Settings, actor: Actor, operation: str | None, path: str, *, signed_in: bool
) -> None:
    """The address first (403 from outside the allowlist, whoever it is), then the sign-in,
    then the role: a refusal is in the audit log, and no use case has run."""
    why: str | None = None
    if not from_allowed_network(settings, actor.source_ip):
        why = f"the admin API is not served to {actor.source_ip} (outside the allowlist)"
    elif not signed_in:
        # API Gateway never calls us unsigned: the route has lost its authorizer.
        raise Unauthenticated("sign in first: no verified token came with the request")
    elif operation is not None:
        try:
            authorise(actor, operation)
        except Forbidden as refusal:
            why = refusal.message
    if why is not None:
        log, clock = services.audit_log(settings), services.clock(settings)
        refused(log, clock, actor, operation or "admin.me", path, why)
        raise Forbidden(why)
