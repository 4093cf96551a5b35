"""The real run of an import: exactly the plan the dry run showed, and its undo.

Each row is one capture (tsunagu.leads.capture's ``CaptureWrite``): the lead, its address
claimed for a new one, a ``lead_imported`` / ``lead_updated`` event naming the import and the
row, and the consent the file gave. Rows are written a group to a transaction, together with
the group's receipt: what each row did (the lead, the fields it wrote and what they were
before). The receipt is refused if it exists already, so a run retried after a failure never
applies a row twice, and what undo reads is never missing for a row that was written.

Undo: a lead the import created is removed if nothing but imports undone since changed it and
no journey has entered it (its events and consent records with it: the imports were the only
things it had - a lead list A created and list B corrected goes once both are undone, in either
order), a
field it changed is restored if it still holds what the import wrote, and the channel it added
to the lead's sources is taken off unless something since came from it too. An opt-in the file
gave a lead that stays is withdrawn while the topic's state still rests on it (undone_consent):
a consent column read backwards, or the wrong file, must not go on mailing people who never said
yes. An opt-out it gave is kept: undo errs toward less mail.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from tsunagu.clock import isoformat
from tsunagu.event_kinds import CONSENT_CHANGED, LEAD_IMPORTED
from tsunagu.ids import new_id
from tsunagu.imports import reasons
from tsunagu.imports.plan import ImportOptions, ImportPlan, RowPlan
from tsunagu.imports.reasons import Rejection
from tsunagu.leads.capture import FORM_SUBMITTED, CaptureWrite
from tsunagu.leads.email import stored_address_identity
from tsunagu.leads.merge import FieldValue
from tsunagu.leads.model import ConsentEvidence, Lead, LeadEvent
from tsunagu.mail.consent import WITHDRAWN, ConsentRecords

LEAD_UPDATED = "lead_updated"
Outcome = Literal["created", "updated", "unchanged"]
ImportStatus = Literal[
    "queued", "applying", "applied", "applied_with_parked", "refused", "failed", "undone"
]
"""queued: a background run waiting for its state machine; applied_with_parked: every chunk
done but some parked after their retries (what they had not written yet is not written);
refused: nothing was written (see ``detail``); failed: a background run stopped part-way (see
``detail``): what it wrote may be undone."""


@dataclass(frozen=True)
class ImportProgress:
    """How far a background run is: rows and chunks written, and the chunks parked."""

    rows_total: int
    chunks_total: int
    rows_done: int = 0
    chunks_done: int = 0
    rows_parked: int = 0
    parked: list[dict[str, Any]] = field(default_factory=list)
    """Each chunk parked: its index, its first and last row, the error."""

    @property
    def finished(self) -> bool:
        return self.chunks_done + len(self.parked) >= self.chunks_total

    def as_json(self) -> dict[str, Any]:
        return {
            "rows_total": self.rows_total,
            "rows_done": self.rows_done,
            "rows_parked": self.rows_parked,
            "chunks_total": self.chunks_total,
            "chunks_done": self.chunks_done,
            "parked": self.parked,
        }


def plan_digest(plan: ImportPlan) -> str:
    """What the dry run promised, as a short hash: the real run refuses to write a plan that
    has changed since (another import, a form, sales editing a lead)."""
    shown = [
        [r.row, r.action, r.email, r.values, {k: list(v) for k, v in r.changes.items()}, r.consent]
        for r in plan.rows
    ]
    text = json.dumps([plan.source.value, plan.columns, shown], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AppliedRow:
    """What one row of the file did."""

    row: int
    outcome: Outcome
    lead_id: str
    email: str
    at: str
    """When the row was written (the lead's ``updated_at`` then)."""
    written: dict[str, dict[str, str]] = field(default_factory=dict)
    """Field -> the value the import wrote (value, source, at)."""
    before: dict[str, dict[str, str] | None] = field(default_factory=dict)
    """Field -> what it held before (None: nothing)."""
    consent: str | None = None
    source_added: str | None = None
    """The channel the row added to the lead's sources (``trade_show``); None when the lead
    had it already - or in a receipt written before this was kept: undo leaves those sources
    as they are, not knowing whether the import brought it."""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @cached_property
    def stored_json(self) -> str:
        """As a receipt keeps it (receipt_json): made once, for its size and then the receipt;
        from its fields as they are (as_json's copy of them would be written the same)."""
        return json.dumps({f.name: getattr(self, f.name) for f in _ROW_FIELDS}, ensure_ascii=False)

    def stored_bytes(self) -> int:
        """Its size in a receipt (JSON, as UTF-8)."""
        return len(self.stored_json.encode())


_ROW_FIELDS = fields(AppliedRow)


def receipt_json(rows: Sequence[AppliedRow]) -> str:
    """What a receipt keeps of its rows: their records as a JSON list (each row's text as
    ``json.dumps`` writes a list of them, without making it again)."""
    return "[" + ", ".join(row.stored_json for row in rows) + "]"


@dataclass(frozen=True)
class ImportRecord:
    import_id: str
    file_name: str
    source: str
    encoding: str
    by: str
    at: str
    digest: str
    counts: dict[str, int]
    """Per plan action (create, update, unchanged, merged, rejected)."""
    status: ImportStatus = "applying"
    undone_at: str | None = None
    undo: dict[str, int] = field(default_factory=dict)
    """What undo did: removed, restored, withdrawn (opt-ins it took back), kept (rows it left
    something of, listed with why)."""
    detail: str | None = None
    """Why a background run was refused (the plan changed since the dry run, the file could not
    be read), or what it parked."""
    background: bool = False
    """Run by the import state machine (its progress is kept), not within one request."""
    lease_until: str | None = None
    """A synchronous run still applying says it is alive until then (renewed as it goes):
    undo waits for it; once past, the run is taken to have died part-way."""

    def as_json(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "file_name": self.file_name,
            "source": self.source,
            "encoding": self.encoding,
            "by": self.by,
            "at": self.at,
            "plan_digest": self.digest,
            "counts": self.counts,
            "status": self.status,
            "undone_at": self.undone_at,
            "undo": self.undo,
            "detail": self.detail,
            "background": self.background,
        }


def leads_of(record: ImportRecord | None, rows: Iterable[AppliedRow]) -> frozenset[str]:
    """The leads a filter's ``import=imp_...`` selects: those the import created or changed.
    Once it is undone, only the leads it created that undo kept (they had a life of their own
    since; the others it removed no longer exist to be selected). A lead it changed is left
    out then: undo put back what the import wrote, or kept a field someone has changed since -
    either way the lead holds nothing of the list, as if never on it. Kept, the leads it
    created still are the list's - so a marketer can find what the undo left, and a segment
    excluding the list from marketing still excludes them rather than start mailing them."""
    undone = record is not None and record.status == "undone"
    return frozenset(
        row.lead_id for row in rows if row.lead_id and (not undone or row.outcome == "created")
    )


def consent_evidence_text(file_name: str, row: RowPlan, header: str) -> str:
    """What the consent evidence says the file said: the row that answered (a merged
    duplicate's own) and its words as written - proof quotes the person's answer, not our
    reading of it. How they were read is the evidence's status, which the console shows in the
    reader's language (an English "(read as no)" in the quote was shown as is to everyone)."""
    if row.consent_said is None:  # planned before the plan kept the words
        return f"{file_name}, row {row.row}: {header} = {row.consent}"
    number, words = row.consent_said
    return f"{file_name}, row {number}: {header} = {words!r}"


def row_write(
    row: RowPlan,
    lead: Lead | None,
    *,
    import_id: str,
    file_name: str,
    options: ImportOptions,
    now: datetime,
) -> tuple[CaptureWrite, AppliedRow]:
    """The transaction of one create or update row of the plan (``lead``: the lead as it is
    now, None for a new one), and what it does."""
    assert row.email is not None
    assert row.action in ("create", "update")
    at = isoformat(now)
    source = options.source
    if lead is None:
        lead = Lead(
            lead_id=new_id("lead", now),
            email=row.email,
            fields={},
            sources=[],
            visitor_ids=set(),
            stage="lead",
            created_at=at,
            updated_at=at,
        )
        wanted = dict(row.values)
    else:
        lead = replace(lead, fields=dict(lead.fields))
        wanted = {name: after for name, (_, after) in row.changes.items()}
    before = {
        name: (lead.fields[name].to_item() if name in lead.fields else None) for name in wanted
    }
    for name, value in wanted.items():
        lead.fields[name] = FieldValue(value, source, at)
    lead.updated_at = at
    source_added = None
    if source.value not in lead.sources:
        lead.sources = [*lead.sources, source.value]
        source_added = source.value
    new = lead.version is None
    event = LeadEvent(
        event_id=new_id("evt", now),
        type=LEAD_IMPORTED if new else LEAD_UPDATED,
        occurred_at=at,
        lead_id=lead.lead_id,
        properties={
            "import_id": import_id,
            "file": file_name,
            "row": row.row,
            "source": source.value,
            "fields": sorted(wanted),
            "kept_fields": sorted(row.kept),
            "consent": row.consent,
            "new_lead": new,
        },
    )
    consent = None
    if row.consent is not None and options.consent is not None:
        meaning = options.consent
        consent = ConsentEvidence(
            evidence_id=new_id("cns", now),
            lead_id=lead.lead_id,
            email=lead.email,
            topic=meaning.topic,
            status="opted_in" if row.consent == "yes" else "opted_out",
            at=at,
            text=consent_evidence_text(file_name, row, meaning.header),
            text_version=import_id,
        )
    identity = stored_address_identity(row.email)
    write = CaptureWrite(
        lead=lead,
        is_new=new,
        claim_identities=[identity] if new else [],
        point_identities=[],
        event=event,
        consent=consent,
        idempotency_key=None,  # the group's receipt makes the rows' writes happen once
        request_hash="",
        response={},
        opt_in_lifts_unsubscribe=False,
    )
    applied = AppliedRow(
        row=row.row,
        outcome="created" if new else "updated",
        lead_id=lead.lead_id,
        email=lead.email,
        at=at,
        written={name: lead.fields[name].to_item() for name in wanted},
        before=before,
        consent=row.consent,
        source_added=source_added,
    )
    return write, applied


RECEIPT_KEY_BYTES = 200
"""A receipt's own attributes besides its rows' records (its key, their names)."""
SIZED_IMPORT_ID = "imp_" + "0" * 26
"""An import id as long as a real one (a ULID's), for measuring a row's writes before the run."""
SEARCHED = ("name", "company", "owner_email")
"""The fields a lead's search attributes are made from, with its address (search_attributes)."""


def too_large(
    row: RowPlan,
    lead: Lead | None,
    options: ImportOptions,
    now: datetime,
    lead_bytes: Callable[[Lead], int],
    limit: int,
) -> Rejection | None:
    """Why a create or update row cannot be written: the lead it leaves (``lead``: as it is
    now, None for a new one; measured by ``lead_bytes`` as the store writes it), or its record
    in a receipt of its own, would come to more than ``limit`` (one DynamoDB item). The run
    would fail on it - and a background run park its whole chunk - so the plan rejects it.
    A row whose writes come to ``limit`` at most by most_bytes is not measured."""
    if most_bytes(row, lead) <= limit:
        return None
    write, applied = row_write(
        row, lead, import_id=SIZED_IMPORT_ID, file_name="", options=options, now=now
    )
    size = max(lead_bytes(write.lead), applied.stored_bytes() + RECEIPT_KEY_BYTES)
    return reasons.row_too_large(size, limit) if size > limit else None


def most_bytes(row: RowPlan, lead: Lead | None) -> int:
    """The most the row's writes can come to (its lead's item, its record in a receipt), told
    from what they are made of without making them (measuring costs some 90 µs a row; this, a
    tenth): every character of the lead and the row (units: one each, and one each string,
    element and attribute) takes at most 72 bytes in the lead's item or the row's record (four
    as UTF-8 or six escaped as JSON, and each map or list element's overhead, its key and the
    receipt's ``before`` beside); the search words made from the address, name, company and
    owner at most 270 a character of those, twice (a word whole and in pieces; NFKC expands a
    character to 18 at most, case folding triples that, four bytes each and one a word); and
    the attributes' names and constants 1 KB. A list of ordinary rows comes to tens of KB, far
    under the 400: only a row of many long values is measured."""
    email = row.email or ""
    searched = len(email) + sum(len(v) for n, v in row.values.items() if n in SEARCHED)
    units = _units(email) + _units(row.values)
    if lead is not None:
        units += _units(lead)
        searched += len(lead.email)
        searched += sum(len(lead.fields[n].value) for n in SEARCHED if n in lead.fields)
    return 1_024 + 72 * units + 2 * 270 * searched


def _units(value: object) -> int:
    """The characters in ``value``, and one for each string, element and attribute (of a
    dataclass: a lead, its fields' values) besides. Anything else counts as its text."""
    if value is None:
        return 1
    if isinstance(value, str):
        return len(value) + 1
    if type(value) is FieldValue:  # most of a lead: said at once
        return 4 + len(value.value) + len(value.source) + len(value.at)
    if isinstance(value, dict):
        return 1 + sum(_units(k) + _units(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return 1 + sum(_units(v) for v in value)
    if is_dataclass(value):
        return 1 + sum(_units(v) for v in vars(value).values())
    return len(str(value)) + 1  # a number, a bool


StoredValue = dict[str, str]
"""A field's value as a receipt keeps it (FieldValue.to_item: value, source, at)."""


def undone_fields(
    lead: Lead,
    applied: AppliedRow,
    earlier: Callable[[str, StoredValue | None], StoredValue | None] = lambda _, was: was,
) -> tuple[Lead, list[str], list[str]]:
    """The lead with each field the import changed put back, where it still holds what the
    import wrote; the fields restored, and those changed since (left as they are).
    ``earlier`` answers what to put back for a field given what it held before the import:
    that, unless an import since undone wrote it (see commands.imports)."""
    fields = dict(lead.fields)
    restored, kept = [], []
    for name, written in applied.written.items():
        current = fields.get(name)
        if current is None or current.to_item() != written:
            kept.append(name)
            continue
        was = earlier(name, applied.before.get(name))
        if was is None:
            del fields[name]
        else:
            fields[name] = FieldValue.from_item(was)
        restored.append(name)
    return replace(lead, fields=fields), restored, kept


SOURCE_EVENTS = frozenset({LEAD_IMPORTED, LEAD_UPDATED, FORM_SUBMITTED})
"""The events of what adds a channel to a lead's sources (an import's row, a form), each
naming it as ``source``."""


def without_its_source(
    lead: Lead, applied: AppliedRow, relied_on: Callable[[str], bool]
) -> tuple[Lead, str | None]:
    """The lead without the channel the row added to its sources (a trade-show list's
    ``trade_show``, which ``source=trade_show`` would still select it by), and that channel;
    the lead as it is, and None, when the row added none, the lead no longer has it, or
    ``relied_on`` says something since came from that channel too (source_relied_on). Only a
    lead the import changed: one it created and undo keeps came from that list alone."""
    channel = applied.source_added
    if applied.outcome != "updated" or channel is None or channel not in lead.sources:
        return lead, None
    if relied_on(channel):
        return lead, None
    return replace(lead, sources=[s for s in lead.sources if s != channel]), channel


def source_relied_on(
    events: Sequence[LeadEvent], channel: str, import_id: str, undone: Callable[[str], bool]
) -> bool:
    """Whether the lead's events since an import's row (SOURCE_EVENTS) hold something else that
    came from ``channel``: another list's row or a form - not the import's own row, not an
    undo's event, not a row of an import undone since (``undone``: whether that import is)."""
    for event in events:
        said = event.properties
        if said.get("source") != channel or said.get("undone"):
            continue
        other = said.get("import_id")
        if other == import_id or (other and undone(str(other))):
            continue
        return True
    return False


SCORE_CHANGED = "score_changed"


def by_undone_imports(
    events: Sequence[LeadEvent], import_id: str, undone: Callable[[str], bool]
) -> bool:
    """Whether a lead's timeline holds nothing but what imports taken back did: the rows
    (``lead_imported``, ``lead_updated``) and undo events of ``import_id`` (being undone now) or
    of an import undone already (``undone``: whether that one is), and a score a scoring rule
    gave those rows. Anything else - a mail sent or opened, a form, a stage moved, a person's
    or the CRM's edit, an unsubscribe or a complaint (each writes its event), or a row of an
    import that still stands - is the lead's life since, and undo keeps the lead: removing it
    would take its opt-out or suppression with it, and a re-import would mail a person who
    asked not to be mailed."""
    theirs = {
        e.event_id
        for e in events
        if (e.type in (LEAD_IMPORTED, LEAD_UPDATED) or _undoing_consent(e))
        and (other := e.properties.get("import_id"))
        and (other == import_id or undone(str(other)))
    }
    return all(
        e.event_id in theirs or (e.type == SCORE_CHANGED and e.properties.get("event_id") in theirs)
        for e in events
    )


def _undoing_consent(event: LeadEvent) -> bool:
    """An undo's withdrawal of a list's opt-in (consent_withdrawal): the undo's doing."""
    said = event.properties
    return event.type == CONSENT_CHANGED and said.get("method") == IMPORT_UNDONE


def creating_import(events: Sequence[LeadEvent]) -> tuple[str, int] | None:
    """The import and row that created the lead (its ``lead_imported`` event), if one did."""
    for event in events:
        said = event.properties
        row = said.get("row")
        if event.type == LEAD_IMPORTED and said.get("import_id") and isinstance(row, int):
            return str(said["import_id"]), row
    return None


def entered_journeys(journey_ids: Iterable[str]) -> list[str]:
    """Why undo keeps a lead it created that has been entered into these journeys since (its
    entries, running or through: a lead the import created had none before it), one reason
    each: ``(entered journey nurture since)``. Removed, the lead would leave its entry pointing
    at no lead - an execution may still run on it - and a re-import would make a new lead that
    the journey's re-entry policy has never seen, and would enter again."""
    return [f"(entered journey {journey_id} since)" for journey_id in sorted(set(journey_ids))]


def holds_only(lead: Lead, written: dict[str, StoredValue]) -> bool:
    """Whether every field the lead holds is as its creating import wrote it (``written``): no
    form, person or list that still stands has set one since (a list undone since has put back
    what it changed; one whose value went back to nothing has taken the field away)."""
    return not set_since(lead, written)


def set_since(lead: Lead, written: dict[str, StoredValue]) -> list[str]:
    """The fields the lead holds otherwise than its creating import wrote them (holds_only)."""
    return sorted(n for n, value in lead.fields.items() if written.get(n) != value.to_item())


def removable(
    lead: Lead,
    created: AppliedRow,
    events: Sequence[LeadEvent],
    import_id: str,
    undone: Callable[[str], bool],
) -> bool:
    """Whether undo may remove a lead an import created (``created``: that import's row): its
    fields are still that import's (holds_only), its events are all of imports taken back
    (by_undone_imports: this one, ``import_id``, and those undone already), and its last write
    was one of theirs - a write without an event of its own (none is known, but the lead's
    ``updated_at`` would say) is not taken for nothing. So a lead that list A created and list B
    updated goes once both are undone, in either order; a form since, a journey's mail, a
    person's edit keeps it."""
    rows = (LEAD_IMPORTED, LEAD_UPDATED)
    theirs = {created.at} | {e.occurred_at for e in events if e.type in rows}
    return (
        lead.updated_at in theirs
        and holds_only(lead, created.written)
        and by_undone_imports(events, import_id, undone)
    )


def kept_because(
    events: Sequence[LeadEvent],
    fields: Sequence[str],
    import_id: str,
    undone: Callable[[str], bool],
) -> str:
    """Why undo kept a lead the import created, as its report says it (``events``: the lead's
    timeline as removable read it, none when it was not read; ``fields``: those set since,
    set_since): the imports since that still stand, by id, else the kinds of what the lead has
    done or been through since (a mail, a form, an unsubscribe...), else the fields set."""
    rows = (LEAD_IMPORTED, LEAD_UPDATED)
    standing = sorted(
        {
            str(other)
            for e in events
            if e.type in rows
            and (other := e.properties.get("import_id"))
            and other != import_id
            and not undone(str(other))
        }
    )
    if standing:
        return f"(changed since by import {', '.join(standing)}, which still stands)"
    since = sorted({e.type for e in events if e.type not in rows and e.type != SCORE_CHANGED})
    if since:
        return f"(the lead has had activity since: {', '.join(since)})"
    if fields:
        return f"(set since: {', '.join(fields)})"
    return "(the lead has had activity since)"


IMPORT_UNDONE = "import_undone"
"""The method of the evidence an undo records when it withdraws the opt-in a list gave."""
OPTED_IN = "opted_in"
ConsentKeptCode = Literal["opt_out_kept", "answered_since", "opted_in_before", "changed_meanwhile"]


@dataclass(frozen=True)
class ConsentKept:
    """Why undo left a topic's consent as a row of the import made it, or as it is since: the
    undo's report lists it beside the fields it kept. ``reason_code`` is stable, for a screen
    to say it in its language from ``reason_params``; ``reason`` says it in English."""

    topic: str
    reason_code: ConsentKeptCode
    at: str | None = None
    """When the evidence the state rests on now was recorded (answered_since, opted_in_before)."""
    by: str | None = None
    """What recorded it (answered_by): ``form:demo``, ``preferences``, ``import:imp_...``."""

    @property
    def reason(self) -> str:
        topic, at, by = self.topic, self.at, self.by
        match self.reason_code:
            case "opt_out_kept":
                return f"its opt-out of {topic} is kept: an undo never makes more mail go"
            case "answered_since":
                return f"{topic} was answered again since ({by}, {at}): kept as it is"
            case "opted_in_before":
                return f"opted in to {topic} before the list too ({by}, {at}): stays opted in"
            case "changed_meanwhile":
                return f"{topic} was answered while the undo ran: kept as it is"

    def as_json(self) -> dict[str, Any]:
        params = {"topic": self.topic, "at": self.at, "by": self.by}
        return {
            "topic": self.topic,
            "reason_code": self.reason_code,
            "reason": self.reason,
            "reason_params": {k: v for k, v in params.items() if v is not None},
        }


@dataclass(frozen=True)
class ConsentUndo:
    """What undo does with the consent one row of the import recorded."""

    recorded: ConsentEvidence
    """The row's evidence (its topic, its answer)."""
    back_to: ConsentEvidence | None = None
    """With ``write``: the evidence the topic's state rested on before the row (None: no
    answer at all), which the state goes back to."""
    write: bool = False
    """The state still rests on the row's opt-in: record its withdrawal (consent_withdrawal)."""
    withdrawn: bool = False
    """The row's opt-in no longer makes mail go (withdrawn now, or by an earlier attempt of
    this undo): counted as withdrawn."""
    kept: ConsentKept | None = None


def undone_consent(
    records: ConsentRecords,
    applied: AppliedRow,
    import_id: str,
    undone: Callable[[str], bool],
) -> ConsentUndo | None:
    """What undo does with the consent a row recorded for a lead that stays (``records``: the
    lead's consent as stored; ``undone``: whether another import is undone). None when the row
    recorded none, or nothing of it is left to undo or to say.

    An opt-in is withdrawn while the topic's state still rests on its evidence: the state goes
    back to what it rested on before the row - no answer, or an earlier answer, passing over
    the opt-ins of imports undone since (ConsentRecords.state_before). Once anything answered
    for the topic since (a form, the preference page, a double opt-in confirmed, another list's
    answer), that answer is the lead's state and is kept. An opt-out is kept, and said."""
    if applied.consent is None:
        return None
    own = [e for e in records.evidence if _recorded_by(e) == import_id and e.at == applied.at]
    if not own:
        return None  # nothing was recorded (the lead had said no since the plan)
    recorded = own[-1]
    topic = recorded.topic
    rests_on = records.rests_on.get(topic)
    if recorded.status != OPTED_IN:
        if rests_on != recorded.evidence_id:
            return None  # answered since: nothing of the file's "no" is left to keep
        return ConsentUndo(recorded, kept=ConsentKept(topic, "opt_out_kept"))
    earlier_undo = [
        e
        for e in records.evidence
        if e.method == IMPORT_UNDONE and e.text_version == import_id and e.topic == topic
    ]
    if earlier_undo:  # an undo cut short withdrew it before this attempt
        return _withdrawn(recorded, earlier_undo[-1], write=False)
    if rests_on != recorded.evidence_id:
        now = next((e for e in records.evidence if e.evidence_id == rests_on), None)
        if now is None:
            return None  # no state at all now: nothing to withdraw
        said = ConsentKept(topic, "answered_since", now.at, answered_by(now))
        return ConsentUndo(recorded, kept=said)

    def undone_opt_in(before: ConsentEvidence) -> bool:
        other = _recorded_by(before)
        return before.status == OPTED_IN and other is not None and undone(other)

    return _withdrawn(recorded, records.state_before(recorded, undone_opt_in), write=True)


def _withdrawn(
    recorded: ConsentEvidence, back_to: ConsentEvidence | None, *, write: bool
) -> ConsentUndo:
    """The row's opt-in withdrawn (or to be, with ``write``) back to ``back_to``: counted
    unless the topic was opted in before the row too, and stays so."""
    if back_to is not None and back_to.status == OPTED_IN:
        said = ConsentKept(recorded.topic, "opted_in_before", back_to.at, answered_by(back_to))
        return ConsentUndo(recorded, back_to, write=write, kept=said)
    return ConsentUndo(recorded, back_to, write=write, withdrawn=True)


def _recorded_by(evidence: ConsentEvidence) -> str | None:
    """The import whose row recorded this evidence, if a list's row did: it names no form and
    no method, and its ``text_version`` is the import's id (row_write)."""
    if evidence.form_id is not None or evidence.method is not None:
        return None
    return evidence.text_version


def answered_by(evidence: ConsentEvidence) -> str:
    """What recorded a piece of evidence, as an undo's report names it: ``form:<id>``,
    ``import:<id>``, or its method (preferences, one_click, double_opt_in, complaint)."""
    if evidence.form_id is not None:
        return f"form:{evidence.form_id}"
    if evidence.method is not None:
        return evidence.method
    return f"import:{evidence.text_version}"


def consent_withdrawal(
    undo: ConsentUndo, *, import_id: str, file_name: str, row: int, by: str, now: datetime
) -> tuple[ConsentEvidence, LeadEvent]:
    """The evidence of an undo withdrawing a row's opt-in - naming the undo, who asked for it
    and the import - with the state it puts the topic back to (WITHDRAWN: no answer), and the
    event saying so. The row's own evidence stays in the ledger beside it."""
    recorded, before = undo.recorded, undo.back_to
    at = isoformat(now)
    if before is None:
        back = "no answer, as before the list"
    else:
        back = f"{before.status}, as evidence {before.evidence_id} ({before.at}) recorded"
    evidence = ConsentEvidence(
        evidence_id=new_id("cns", now),
        lead_id=recorded.lead_id,
        email=recorded.email,
        topic=recorded.topic,
        status=WITHDRAWN if before is None else before.status,
        at=at,
        text=(
            f"Undo of import {import_id} by {by}: the opt-in its row recorded ({file_name},"
            f" row {row}; evidence {recorded.evidence_id}) is withdrawn; {recorded.topic} is"
            f" back to {back}"
        ),
        text_version=import_id,
        method=IMPORT_UNDONE,
    )
    event = LeadEvent(
        event_id=new_id("evt", now),
        type=CONSENT_CHANGED,
        occurred_at=at,
        lead_id=recorded.lead_id,
        properties={
            "topic": recorded.topic,
            "status": evidence.status,
            "method": IMPORT_UNDONE,
            "import_id": import_id,
            "row": row,
            "undone": True,
            "withdrawn": recorded.evidence_id,
        },
    )
    return evidence, event
