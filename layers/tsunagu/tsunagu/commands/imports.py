"""Importing a lead list, as people do it: the dry run first (what each row would do), then the
real run of exactly that plan, and its undo; shared by the CLI (``tsunagu imports plan|run|undo|
list``) and the admin API (``/admin/imports/...``)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from tsunagu.clock import Clock, isoformat, parse_instant
from tsunagu.commands.access import Actor
from tsunagu.commands.audit import AuditLog, allowed, recorded
from tsunagu.errors import (
    AlreadyExists,
    ConcurrentUpdate,
    FieldError,
    NotFound,
    ValidationFailed,
)
from tsunagu.event_kinds import LEAD_IMPORTED
from tsunagu.ids import new_id
from tsunagu.imports import apply, jobs
from tsunagu.imports.apply import (
    LEAD_UPDATED,
    AppliedRow,
    ImportProgress,
    ImportRecord,
    ImportStatus,
)
from tsunagu.imports.mapping import ALIASES, fields_named, fold_header
from tsunagu.imports.plan import (
    ImportOptions,
    ImportPlan,
    RowPlan,
    mapped_columns,
    never_mapped,
    plan_import,
    rebased,
    refusing_opt_in,
    rejected_file,
)
from tsunagu.imports.reading import Table, named_list, read_table
from tsunagu.imports.reasons import FILE_LANGUAGE, Language, Rejection
from tsunagu.imports.refusals import refusal
from tsunagu.imports.saved import MAPPING_NAME, SavedMapping, checked_mapping, with_overrides
from tsunagu.leads.capture import ITEM_BYTES, MAX_TRANSACTION_ITEMS, CaptureWrite, WriteConflict
from tsunagu.leads.email import stored_address_identity
from tsunagu.leads.model import ConsentEvidence, Lead, LeadEvent
from tsunagu.mail.consent import ConsentRecords, TopicConsent


class LeadFinder(Protocol):
    def find_lead(self, identity: str) -> Lead | None: ...

    def find_leads(self, identities: Sequence[str]) -> dict[str, Lead]: ...


class ImportedLeads(LeadFinder, Protocol):
    def get_lead(self, lead_id: str) -> Lead | None: ...

    def opted_out(self, lead_ids: Sequence[str], topic: str) -> Collection[str]: ...

    def topic_consent(self, lead_ids: Sequence[str], topic: str) -> Mapping[str, TopicConsent]: ...

    def consent_records(self, lead_id: str) -> ConsentRecords: ...

    def replace_consent(
        self, evidence: ConsentEvidence, rests_on: str, event: LeadEvent
    ) -> None: ...

    def lead_item_bytes(self, lead: Lead) -> int: ...

    def save_changes(self, lead: Lead, events: list[LeadEvent]) -> None: ...

    def remove_lead(
        self, lead: Lead, identities: list[str], untouched: Callable[[list[LeadEvent]], bool]
    ) -> bool: ...

    def events_since(
        self, lead_id: str, since: datetime, types: Collection[str], also: str | None = None
    ) -> list[LeadEvent]: ...

    def events_at(self, lead_id: str, at: str, types: Collection[str]) -> list[LeadEvent]: ...


class JourneyEntry(Protocol):
    @property
    def journey_id(self) -> str: ...


class JourneyEntries(Protocol):
    """The journey store's entries (tsunagu.store.journeys)."""

    def entries_of(self, lead_id: str) -> Sequence[JourneyEntry]: ...


class ImportFiles(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def exists(self, key: str) -> bool: ...

    def put_json(self, key: str, document: Any) -> None: ...

    def get_json(self, key: str) -> Any: ...

    def upload_url(self, key: str, seconds: int) -> str: ...

    def download_url(self, key: str, seconds: int, file_name: str) -> str: ...


class ImportStore(Protocol):
    def save_import(self, record: ImportRecord, expected: ImportStatus | None = None) -> None: ...

    def claim_plan(self, digest: str, import_id: str, until: str, now: str) -> str | None: ...

    def release_plan(self, digest: str, import_id: str) -> None: ...

    def get_import(self, import_id: str) -> ImportRecord | None: ...

    def imports(self, limit: int = 100) -> list[ImportRecord]: ...

    def apply_rows(
        self,
        import_id: str,
        writes: Sequence[CaptureWrite],
        applied: Sequence[AppliedRow],
        token: str | None = None,
    ) -> None: ...

    def rows_of(
        self, import_id: str, first: int | None = None, last: int | None = None
    ) -> Iterable[AppliedRow]: ...

    def get_row(self, import_id: str, row: int) -> AppliedRow | None: ...

    def save_mapping(self, mapping: SavedMapping) -> None: ...

    def get_mapping(self, name: str) -> SavedMapping | None: ...

    def mappings(self) -> list[SavedMapping]: ...

    def delete_mapping(self, name: str) -> bool: ...

    def start_progress(self, import_id: str, rows_total: int, chunks_total: int) -> None: ...

    def chunk_finished(
        self, import_id: str, index: int, rows: int, parked: dict[str, Any] | None = None
    ) -> bool: ...

    def progress(self, import_id: str) -> ImportProgress | None: ...


class Funnel(Protocol):
    """The report counters' funnel (tsunagu.store.reports)."""

    def withdraw_from_funnel(self, lead_ids: Iterable[str]) -> int: ...


@dataclass(frozen=True)
class ImportCommands:
    leads: ImportedLeads
    audit: AuditLog
    clock: Clock
    journeys: JourneyEntries
    """Where undo sees whether a lead it created has been entered into a journey since."""
    imports: ImportStore | None = None
    """Where imports are kept (None: a stack that only plans)."""
    files: ImportFiles | None = None
    """Uploaded lists and background runs' chunks (None: a stack without the bucket)."""
    start_job: Callable[[str], str] | None = None
    """Start the background import of this id (its state machine); the execution's ARN."""
    start_dry_run: Callable[[str], str] | None = None
    """Start the background dry run of this plan id (the same state machine)."""
    funnel: Funnel | None = None
    """Where undo takes the leads it removes back out of the funnel (None: no reports)."""


ROWS_PER_TRANSACTION = 19
"""Rows applied in one transaction: DynamoDB takes 100 items in one; a new lead's row is 5 items
(the lead, its event, consent evidence and state, the address it claims), and the group's
receipt is one more. A row opting in a lead that exists holds two checks of its opt-outs
besides: such a group is cut in two (_within_one_receipt)."""
RECEIPT_BYTES = 300_000
"""What one receipt holds at most (its rows' records as JSON): DynamoDB refuses an item over
400 KB, and a row that changes many long fields can take tens of KB (a cell holds up to 500
characters, three bytes each in Japanese, and the record keeps what it wrote and what was there
before). A group whose rows would pass it is written as several, each with its own receipt."""
ATTEMPTS = 3
RUN_LEASE = timedelta(minutes=15)
"""How long a synchronous run says it is alive (a Lambda's longest run), renewed once a third of
it has passed: undo waits for a run inside its lease, and takes one past it to have died."""
WITHDRAWN_AT_ONCE = 90
"""Leads an undo removes before it takes them out of the funnel (one transaction's worth)."""


@dataclass(frozen=True)
class PlannedImport:
    table: Table
    plan: ImportPlan
    leads: Mapping[str, Lead | None] = field(default_factory=dict)
    """The leads the plan was made against, by address (what the run writes over first)."""

    def rejected_file(self, language: Language = FILE_LANGUAGE) -> bytes:
        """The rejected rows to fix and import again, each reason in ``language``."""
        return rejected_file(self.table, self.plan, language)

    def as_json(self, *, rows: int | None = None, max_bytes: int | None = None) -> dict[str, Any]:
        """The plan as the API answers it: every count, and the first ``rows`` rows' plans (as
        many of them as ``max_bytes`` hold when given, measured as a Lambda's answer carries
        them - JSON in a JSON string, every non-ASCII character escaped: ``rows_shown`` says
        how many)."""
        shown: list[dict[str, Any]] = []
        size = 0
        for row in self.plan.rows[:rows]:
            entry = _row_json(row)
            size += len(json.dumps(json.dumps(entry)))
            if max_bytes is not None and size > max_bytes:
                break
            shown.append(entry)
        return {
            "plan_digest": apply.plan_digest(self.plan),
            "encoding": self.plan.encoding,
            "sheet": self.table.sheet,
            "other_sheets": list(self.table.other_sheets),
            "source": self.plan.source.value,
            "header": self.table.header,
            "columns": self.plan.columns,
            "unmapped": self.plan.unmapped,
            "consent_column": self.plan.consent_column,
            "counts": self.plan.counts,
            "rows": shown,
            "rows_shown": len(shown),
        }


def _row_json(row: RowPlan) -> dict[str, Any]:
    return {
        "row": row.row,
        "action": row.action,
        "email": row.email,
        "values": row.values,
        "changes": {k: {"before": b, "after": a} for k, (b, a) in row.changes.items()},
        "kept": {
            k: {"kept": value, "source": source, "file": incoming}
            for k, (value, source, incoming) in row.kept.items()
        },
        "consent": row.consent,
        "consent_kept": row.consent_kept,
        "consent_disagreed": list(row.consent_disagreed),
        "reason": row.reason,
        "reason_code": row.reason_code,
        "reason_params": row.reason_params,
        # The row's other problems, each as its first is given (a row is rejected for all)
        "more_reasons": [
            {"reason": more.text, "reason_code": more.code, "reason_params": more.params}
            for more in row.more_reasons
        ],
        "into": row.into,
    }


ANSWER_ROWS_BYTES = 4 * 1024 * 1024
"""The rows' plans a dry run answers with at most, as the Lambda's answer carries them: with
the rejected rows inline (REJECTED_INLINE_BYTES, a third more as base64) and the rest, within
the 6 MB a Lambda may answer."""
REJECTED_INLINE_BYTES = 512 * 1024
"""A rejected-rows file up to this size comes in the answer (base64); a larger one is kept in
the imports bucket and answered as a link (15 minutes)."""


def plan_answer(
    ports: ImportCommands,
    planned: PlannedImport,
    file_name: str,
    rows: int,
    language: Language = FILE_LANGUAGE,
) -> dict[str, Any]:
    """The dry run as the admin API and the console have it: bounded whatever the list's size
    (a 100,000-row list rejected whole makes a rejected-rows file of megabytes), the rejected
    rows' reasons in ``language``."""
    answer = planned.as_json(rows=rows, max_bytes=ANSWER_ROWS_BYTES)
    if not planned.plan.count("rejected"):
        return answer
    rejected = planned.rejected_file(language)
    if len(rejected) <= REJECTED_INLINE_BYTES or ports.files is None:
        answer["rejected_csv_base64"] = base64.b64encode(rejected).decode()
        return answer
    # Named by what it holds: two lists whose plans are alike (every row rejected) never share
    # a file, and so never each other's people
    key = jobs.rejected_key(hashlib.sha256(rejected).hexdigest())
    ports.files.put(key, rejected)
    return with_rejected_link(ports, answer | {"rejected_csv_key": key}, file_name)


def with_rejected_link(
    ports: ImportCommands, answer: dict[str, Any], file_name: str
) -> dict[str, Any]:
    """The answer with a fresh link (15 minutes) to its rejected rows kept in the bucket under
    ``rejected_csv_key``."""
    assert ports.files is not None
    key = answer["rejected_csv_key"]
    url = ports.files.download_url(key, jobs.UPLOAD_SECONDS, jobs.rejected_name(file_name))
    return answer | {"rejected_csv_url": url}


SAMPLES = 3
"""The values a column is shown with (the first different ones), so that a person can tell
what 「ご芳名」 holds before saying which field it is."""
SAMPLE_ROWS = 50
SAMPLE_CHARS = 60


@dataclass(frozen=True)
class FileColumn:
    header: str
    field: str | None
    """The lead field the dry run would read it as (None: left out)."""
    by: Literal["mapping", "automatic"] | None
    """What says so: the mapping given (a saved one, or this request's), or the headers'
    automatic mapping; None for a column nothing names."""
    samples: list[str]
    consent: bool = False
    """The column the options read as consent (its header compared as the dry run compares it)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "header": self.header,
            "field": self.field,
            "by": self.by,
            "samples": self.samples,
            "consent": self.consent,
        }


@dataclass(frozen=True)
class FileColumns:
    """A list's columns before its dry run: what each would be read as, and why the dry run
    would refuse the mapping as it stands (no e-mail column, a field two columns claim)."""

    encoding: str
    sheet: str | None
    other_sheets: tuple[str, ...]
    columns: list[FileColumn]
    consent_column: str | None
    problems: list[FieldError]

    def as_json(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding,
            "sheet": self.sheet,
            "other_sheets": list(self.other_sheets),
            "columns": [column.as_json() for column in self.columns],
            "consent_column": self.consent_column,
            "fields": list(ALIASES),
            "problems": [problem.as_json() for problem in self.problems],
        }


def _read(data: bytes, file_name: str, options: ImportOptions, encoding: str | None) -> Table:
    """The file as the dry run reads it: in the encoding named for it, else as its bytes say
    (the saved mapping's where they leave it open), the header found with the mapping."""
    return read_table(
        data, file_name, encoding, saved_encoding=options.saved_encoding, mapping=options.mapping
    )


def columns(
    ports: ImportCommands,
    actor: Actor,
    data: bytes,
    file_name: str,
    options: ImportOptions,
    *,
    encoding: str | None = None,
) -> FileColumns:
    """The file's columns in order, each with the field the dry run would read it as under
    ``options`` (a saved mapping's, with the request's on top) and a few of its values: what a
    person maps a list from. A mapping the dry run would refuse is not refused here but said
    (``problems``), each column still shown as the mapping and the headers name it - the list
    whose e-mail column is headed 「E-Mail(会社)」 is exactly the one to be mapped. The first
    part of a large CSV is enough (its header and first rows). ValidationFailed only when the
    file cannot be read as a list."""
    named_list(file_name)
    allowed(ports.audit, ports.clock, actor, "imports.plan", f"file:{file_name}")
    table = _read(data, file_name, options, encoding)
    try:
        read: dict[int, str] | None = mapped_columns(table.header, options).fields
        problems: list[FieldError] = []
    except ValidationFailed as refused:
        read, problems = None, refused.errors
    # Column by column, by map_columns' own rule (it answers for the whole header, or refuses)
    field_of = fields_named(options.mapping, never_mapped(options))
    automatic_of = fields_named(None, never_mapped(options))
    given = {fold_header(header) for header in options.mapping}
    consent_key = fold_header(options.consent.header) if options.consent else None
    found: list[FileColumn] = []
    for index, title in enumerate(table.header):
        key = fold_header(title)
        automatic = automatic_of(title)
        # A mapping refused: each column as map_columns reads it, as if the rest were right
        field_read = read.get(index) if read is not None else field_of(title)
        by: Literal["mapping", "automatic"] | None = (
            "mapping" if key in given else "automatic" if automatic else None
        )
        found.append(
            FileColumn(
                title,
                None if field_read in (None, "-") else field_read,
                by,
                _samples(table, index),
                consent=key == consent_key,
            )
        )
    consent = options.consent.header if options.consent else None
    return FileColumns(table.encoding, table.sheet, table.other_sheets, found, consent, problems)


def _samples(table: Table, index: int) -> list[str]:
    seen: list[str] = []
    for cells in table.rows[:SAMPLE_ROWS]:
        value = cells[index].strip() if index < len(cells) else ""
        if value and value not in seen:
            seen.append(value if len(value) <= SAMPLE_CHARS else value[:SAMPLE_CHARS] + "…")
            if len(seen) == SAMPLES:
                break
    return seen


def plan(
    ports: ImportCommands,
    actor: Actor,
    data: bytes,
    file_name: str,
    options: ImportOptions,
    *,
    encoding: str | None = None,
) -> PlannedImport:
    """The dry run of importing the file: nothing is written. ValidationFailed (with the
    field: encoding, file, mapping, consent_column) when the file cannot be read as a list."""
    named_list(file_name)
    allowed(ports.audit, ports.clock, actor, "imports.plan", f"file:{file_name}")
    return _planned(ports, data, file_name, options, encoding)


def _find(ports: ImportCommands, address: str) -> Lead | None:
    return ports.leads.find_lead(_identity(address))


def _planned(
    ports: ImportCommands,
    data: bytes,
    file_name: str,
    options: ImportOptions,
    encoding: str | None,
) -> PlannedImport:
    table = _read(data, file_name, options, encoding)
    found: dict[str, Lead | None] = {}
    read: dict[str, Lead] = {}

    def prefetch(addresses: Sequence[str]) -> None:
        read.update(ports.leads.find_leads([_identity(a) for a in addresses]))

    def find(address: str) -> Lead | None:
        found[address] = read.get(_identity(address))
        return found[address]

    now = ports.clock.now()

    def too_large(row: RowPlan, lead: Lead | None) -> Rejection | None:
        return apply.too_large(row, lead, options, now, ports.leads.lead_item_bytes, ITEM_BYTES)

    planned = plan_import(
        table,
        options,
        find,
        prefetch=prefetch,
        consent_now=ports.leads.topic_consent,
        too_large=too_large,
    )
    return PlannedImport(table, planned, found)


def _identity(address: str) -> str:
    """A plan's row holds its address normalised (tsunagu.imports.plan)."""
    return stored_address_identity(address)


def _store(ports: ImportCommands) -> ImportStore:
    if ports.imports is None:
        raise RuntimeError("no imports table is configured (TSUNAGU_IMPORTS_TABLE)")
    return ports.imports


def run(
    ports: ImportCommands,
    actor: Actor,
    data: bytes,
    file_name: str,
    options: ImportOptions,
    *,
    encoding: str | None = None,
    plan_digest: str | None = None,
) -> tuple[ImportRecord, PlannedImport]:
    """Apply the file: exactly the plan its dry run showed (``plan_digest``, from the dry run:
    ConcurrentUpdate if the plan is no longer that one - the leads changed meanwhile - and
    nothing is written). Rejected and merged rows write nothing; the others are written
    ROWS_PER_TRANSACTION to a transaction, with the receipt undo reads."""
    named_list(file_name)
    store = _store(ports)
    with recorded(ports.audit, ports.clock, actor, "imports.run", f"file:{file_name}") as log:
        planned = _planned(ports, data, file_name, options, encoding)
        digest = apply.plan_digest(planned.plan)
        if plan_digest is not None and plan_digest != digest:
            raise ConcurrentUpdate(not_the_plan(ports, plan_digest))
        now = ports.clock.now()
        record = ImportRecord(
            import_id=new_id("imp", now),
            file_name=file_name,
            source=options.source.value,
            encoding=planned.plan.encoding,
            by=actor.email or actor.user_id,
            at=isoformat(now),
            digest=digest,
            counts=planned.plan.counts,
            lease_until=isoformat(now + RUN_LEASE),
        )
        _claim(ports, digest, record.import_id, now + RUN_LEASE)
        try:
            store.save_import(record)
            writing = [row for row in planned.plan.rows if row.action in ("create", "update")]
            for group in _groups(writing):
                record = _lease_renewed(ports, record)
                _apply_group(ports, group, record, options, file_name, planned.leads)
            record = replace(record, status="applied", lease_until=None)
            store.save_import(record, expected="applying")
        except Exception as error:
            # Stopped part-way: said at once, so that what it wrote can be undone now rather
            # than once its lease has passed (unless an undo has taken it already)
            with contextlib.suppress(ConcurrentUpdate):
                stopped = f"stopped part-way: {error}"[:600]
                store.save_import(
                    replace(record, status="failed", lease_until=None, detail=stopped),
                    expected="applying",
                )
            raise
        finally:
            store.release_plan(digest, record.import_id)
        log.after = {"import_id": record.import_id, "counts": record.counts}
        log.detail = f"import {record.import_id}: " + ", ".join(
            f"{k} {v}" for k, v in record.counts.items()
        )
    return record, planned


_HOLDING_ITS_ROWS = ("queued", "applying", "applied", "applied_with_parked")
"""An import that wrote (or is writing) its plan's rows: that plan is not there to run again."""


def not_the_plan(ports: ImportCommands, named: str, *, run: str | None = None) -> str:
    """Why a run naming the dry run's plan ``named`` is refused when the plan made now is
    another: that plan applied already by an earlier run (a second click, a command run twice:
    its rows show as unchanged now), else the leads changed since or the file or its options
    are not the dry run's (which of those cannot be told from a digest). ``run``: the refused
    run's own import, not an earlier one."""
    earlier = next(
        (r for r in _store(ports).imports() if r.digest == named and r.import_id != run), None
    )
    if earlier is not None and earlier.status in _HOLDING_ITS_ROWS:
        return (
            f"this plan was applied already by import {earlier.import_id} ({earlier.status},"
            f" {earlier.at}, by {earlier.by}): nothing was written again; a dry run now shows"
            " its rows as unchanged"
        )
    return (
        "the plan changed since the dry run: leads were created or changed meanwhile, or the"
        " file or its options are not the dry run's - run the dry run again and check it"
    )


def _claim(ports: ImportCommands, digest: str, import_id: str, until: datetime) -> None:
    """Hold the plan for this run: ConcurrentUpdate if another run is applying it now."""
    now = isoformat(ports.clock.now())
    holder = _store(ports).claim_plan(digest, import_id, isoformat(until), now)
    if holder is not None:
        raise ConcurrentUpdate(
            f"this plan is being applied already (import {holder}): once it has finished, run"
            " the dry run again - the rows it wrote will show as unchanged"
        )


def _lease_renewed(ports: ImportCommands, record: ImportRecord) -> ImportRecord:
    """The run's record with its lease pushed on when a third of it has passed (a write every
    five minutes of a long run; none in a short one); ConcurrentUpdate if it was undone
    meanwhile (the lease had passed: the run was taken to have died)."""
    now = ports.clock.now()
    if record.lease_until is None or now + RUN_LEASE * 2 / 3 < parse_instant(record.lease_until):
        return record
    until = isoformat(now + RUN_LEASE)
    renewed = replace(record, lease_until=until)
    _store(ports).save_import(renewed, expected="applying")
    holder = _store(ports).claim_plan(record.digest, record.import_id, until, isoformat(now))
    if holder is not None:  # it stalled past its lease, and another run has the plan now
        raise ConcurrentUpdate(f"import {holder} is applying this plan now: this run stops")
    return renewed


def _groups(rows: Sequence[RowPlan]) -> Iterator[Sequence[RowPlan]]:
    for start in range(0, len(rows), ROWS_PER_TRANSACTION):
        yield rows[start : start + ROWS_PER_TRANSACTION]


def _group_token(import_id: str, first_row: int) -> str:
    """The group's ClientRequestToken: the same for every attempt, and within DynamoDB's 36
    characters whatever the row (an import id and a row number alone pass 36 from row
    100,000)."""
    return hashlib.sha256(f"{import_id}:{first_row}".encode()).hexdigest()[:32]


def _apply_group(
    ports: ImportCommands,
    rows: Sequence[RowPlan],
    record: ImportRecord,
    options: ImportOptions,
    file_name: str,
    planned_against: Mapping[str, Lead | None],
) -> None:
    """A group of rows in one transaction with its receipt (or several, when their records would
    not fit one receipt), on the leads given (those the plan read, or a chunk read since: each
    row is planned again against its lead - plan.rebased). When any of them met a change
    underneath it (a form created or changed the lead meanwhile) or an earlier attempt applied
    some of them, nothing of that transaction was written: its rows go one at a time, each read
    again and retried as it needs."""
    now = ports.clock.now()
    leads = {row.row: planned_against.get(row.email or "") for row in rows}
    said_no = refusing_opt_in(rows, leads, options, ports.leads.opted_out)
    built = []
    for planned_row in rows:
        lead = leads[planned_row.row]
        row = rebased(planned_row, lead, options.source, said_no)
        if row.action == "unchanged":
            continue  # what the file says, the lead holds now (or a higher source keeps)
        write, done = apply.row_write(
            row,
            lead,
            import_id=record.import_id,
            file_name=file_name,
            options=options,
            now=now,
        )
        built.append(_BuiltRow(planned_row, write, done))
    for part in _within_one_receipt(built):
        token = _group_token(record.import_id, part[0].plan.row)
        writes, applied = [b.write for b in part], [b.applied for b in part]
        try:
            _store(ports).apply_rows(record.import_id, writes, applied, token)
        except WriteConflict:
            for built_row in part:
                _apply_row(ports, built_row.plan, record, options, file_name, planned_against)


@dataclass(frozen=True)
class _BuiltRow:
    """A row of the plan, the capture that writes it and the record its receipt keeps."""

    plan: RowPlan
    write: CaptureWrite
    applied: AppliedRow


def _within_one_receipt(built: Sequence[_BuiltRow]) -> Iterator[list[_BuiltRow]]:
    """The rows cut where their records would pass RECEIPT_BYTES, or their items one
    transaction's (the receipt is one more): most groups not at all; one of existing leads a
    list opts in, each checked for a "no" (CaptureWrite.checks_no_opt_out), in two."""
    part: list[_BuiltRow] = []
    size = items = 0
    for entry in built:
        grows = entry.applied.stored_bytes()
        if part and (
            size + grows > RECEIPT_BYTES or items + entry.write.items + 1 > MAX_TRANSACTION_ITEMS
        ):
            yield part
            part, size, items = [], 0, 0
        part.append(entry)
        size += grows
        items += entry.write.items
    if part:
        yield part


def _apply_row(
    ports: ImportCommands,
    row: RowPlan,
    record: ImportRecord,
    options: ImportOptions,
    file_name: str,
    planned_against: Mapping[str, Lead | None],
) -> AppliedRow | None:
    """One row's transaction with its receipt, on the lead the plan read, read again and retried
    when it changed underneath - planned again against the lead as it is then (plan.rebased:
    a lead created meanwhile by a form is updated by the sources' ranks, one that opted out
    meanwhile is not opted in). A row already applied by an earlier attempt of this run is
    found in its receipt and not applied twice; a row with nothing left to write writes
    nothing (None)."""
    assert row.email is not None
    store = _store(ports)
    earlier = store.get_row(record.import_id, row.row)
    if earlier is not None:
        return earlier
    for attempt in range(ATTEMPTS):
        known = attempt == 0 and row.email in planned_against
        lead = planned_against[row.email] if known else _find(ports, row.email)
        said_no = refusing_opt_in([row], {row.row: lead}, options, ports.leads.opted_out)
        now_row = rebased(row, lead, options.source, said_no)
        if now_row.action == "unchanged":
            return None
        write, applied = apply.row_write(
            now_row,
            lead,
            import_id=record.import_id,
            file_name=file_name,
            options=options,
            now=ports.clock.now(),
        )
        try:
            store.apply_rows(record.import_id, [write], [applied])
        except WriteConflict as conflict:
            if conflict.kind == "submission":  # another attempt applied it meanwhile
                earlier = store.get_row(record.import_id, row.row)
                if earlier is not None:
                    return earlier
            continue
        return applied
    raise ConcurrentUpdate(f"row {row.row} ({row.email}) kept changing while it was imported")


@dataclass(frozen=True)
class UndoResult:
    record: ImportRecord
    kept: list[dict[str, Any]]
    """What undo left, and why (each row: lead, fields changed since, and - under ``consent``,
    when it left that - why its consent stays as it is: apply.ConsentKept)."""

    def as_json(self) -> dict[str, Any]:
        return {**self.record.as_json(), "kept": self.kept}


def undo(ports: ImportCommands, actor: Actor, import_id: str) -> UndoResult:
    """Take the import back: a lead it created is removed if nothing but imports undone since
    has happened to it (apply.removable, apply.entered_journeys); a field it changed is restored
    if it still holds what the import wrote, and the channel it added to a lead's sources is
    taken off unless something since came from it too (apply.without_its_source); a lead it
    changed that an import undone already created goes, when it is left with nothing else
    (_left_by_undone_imports). An opt-in it recorded for a lead that stays is withdrawn while
    the lead's consent for that topic still rests on it (apply.undone_consent); an opt-out it
    recorded is kept. What changed since is kept, and said."""
    store = _store(ports)
    with recorded(ports.audit, ports.clock, actor, "imports.undo", f"import:{import_id}") as log:
        record = store.get_import(import_id)
        if record is None:
            raise NotFound(f"no import {import_id!r}")
        if record.status == "undone":
            raise AlreadyExists(f"import {import_id} was undone at {record.undone_at}")
        if record.status in ("queued", "applying"):
            # A run still going: a background one until its chunks are all counted, a
            # synchronous one while inside its lease (one past it died part-way, and is undone
            # as far as it got).
            progress = store.progress(import_id)
            running = record.status == "queued" or (progress is not None and not progress.finished)
            alive = record.lease_until is not None and (
                parse_instant(record.lease_until) > ports.clock.now()
            )
            if running or alive:
                raise ConcurrentUpdate(
                    f"import {import_id} is still running: undo it once it has finished"
                )
        counts = {"removed": 0, "restored": 0, "withdrawn": 0, "kept": 0}
        kept: list[dict[str, Any]] = []
        gone: list[str] = []
        now = ports.clock.now()
        undone_import = _undone_imports(ports)

        def out_of_the_funnel() -> None:
            # The funnel counted them from their import (reports.counting): out again, as if
            # never imported - as the undo goes, so an undo cut short by its time limit has
            # taken out what it removed, and before the record says undone, so the same undo
            # asked again does what it had not.
            if gone and ports.funnel is not None:
                ports.funnel.withdraw_from_funnel(gone)
            gone.clear()

        try:
            for applied in store.rows_of(import_id):
                if len(gone) >= WITHDRAWN_AT_ONCE:
                    out_of_the_funnel()
                done, changed = _undo_row(ports, import_id, applied, now, undone_import)
                if done in ("removed", "restored"):
                    counts[done] += 1
                if done in ("removed", "gone"):
                    gone.append(applied.lead_id)
                    continue  # its consent went with it
                withdrawn, consent_kept = _undo_consent(
                    ports, record, applied, now, undone_import, by=actor.email or actor.user_id
                )
                counts["withdrawn"] += withdrawn
                if changed or consent_kept:
                    counts["kept"] += 1
                    said: dict[str, Any] = {
                        "row": applied.row,
                        "email": applied.email,
                        "changed_since": changed,
                    }
                    if consent_kept:
                        said["consent"] = consent_kept.as_json()
                    kept.append(said)
        finally:
            out_of_the_funnel()
        undone = replace(
            record, status="undone", undone_at=isoformat(now), undo=counts, lease_until=None
        )
        store.save_import(undone, expected=record.status)
        if record.digest:  # a run undone before it let go of its plan: the plan is free again
            store.release_plan(record.digest, record.import_id)
        record = undone
        log.detail = ", ".join(f"{k} {v}" for k, v in counts.items())
    return UndoResult(record, kept)


def _undo_row(
    ports: ImportCommands,
    import_id: str,
    applied: AppliedRow,
    now: datetime,
    undone: Callable[[str], bool],
) -> tuple[Literal["removed", "restored", "gone"] | None, list[str]]:
    """Take one row back: what was done (``gone``: a lead removed by an undo that stopped
    part-way), and what changed since and was left. ``undone``: whether an import is undone
    (this one, being undone, is not yet)."""
    lead = ports.leads.get_lead(applied.lead_id)
    if lead is None:
        return ("gone" if applied.outcome == "created" else None), []
    put_back, restored, changed = apply.undone_fields(
        lead, applied, lambda name, was: _before_undone_imports(ports, lead.lead_id, name, was)
    )
    try:
        if applied.outcome == "created":
            # A journey entry writes nothing on the lead (no event, no updated_at): asked on
            # its own, before the lead is removed.
            entered = _entered(ports, lead)
            seen: list[LeadEvent] = []  # the timeline removable read: what kept the lead

            def only_imports_taken_back(events: list[LeadEvent]) -> bool:
                seen.extend(events)
                return apply.removable(lead, applied, events, import_id, undone)

            fields = apply.set_since(lead, applied.written)
            untouched = (
                not entered
                and not fields
                and ports.leads.remove_lead(
                    lead, [stored_address_identity(lead.email)], only_imports_taken_back
                )
            )
            if untouched:
                return "removed", []
            if changed or entered:
                return None, changed + entered
            if fields and not seen:  # kept for fields set since: by a list that stands?
                since = parse_instant(applied.at)
                seen = ports.leads.events_since(lead.lead_id, since, (LEAD_IMPORTED, LEAD_UPDATED))
            return None, [apply.kept_because(seen, fields, import_id, undone)]
        if _left_by_undone_imports(ports, import_id, lead, put_back, undone):
            return "removed", []
        put_back, source_removed = apply.without_its_source(
            put_back, applied, lambda channel: _source_relied_on(ports, import_id, applied, channel)
        )
        if restored or source_removed:
            said: dict[str, Any] = {"import_id": import_id, "undone": True, "fields": restored}
            if source_removed:
                said["source_removed"] = source_removed
            event = LeadEvent(new_id("evt", now), LEAD_UPDATED, isoformat(now), lead.lead_id,
                              properties=said)  # fmt: skip
            ports.leads.save_changes(replace(put_back, updated_at=isoformat(now)), [event])
            return "restored", changed
    except WriteConflict:
        # Something wrote to the lead between our read and the undo: it changed since.
        return None, ["(changed while the undo ran)"]
    return None, changed


def _undo_consent(
    ports: ImportCommands,
    record: ImportRecord,
    applied: AppliedRow,
    now: datetime,
    undone: Callable[[str], bool],
    *,
    by: str,
) -> tuple[bool, apply.ConsentKept | None]:
    """Take back the opt-in a row recorded for a lead that stays (apply.undone_consent):
    whether it was withdrawn, and why what is left of its consent was kept."""
    if applied.consent is None:
        return False, None
    records = ports.leads.consent_records(applied.lead_id)
    decided = apply.undone_consent(records, applied, record.import_id, undone)
    if decided is None:
        return False, None
    if decided.write:
        evidence, event = apply.consent_withdrawal(
            decided,
            import_id=record.import_id,
            file_name=record.file_name,
            row=applied.row,
            by=by,
            now=now,
        )
        try:
            ports.leads.replace_consent(evidence, decided.recorded.evidence_id, event)
        except WriteConflict:
            # Someone answered between our read and the write: theirs is the lead's state now
            return False, apply.ConsentKept(decided.recorded.topic, "changed_meanwhile")
    return decided.withdrawn, decided.kept


def _entered(ports: ImportCommands, lead: Lead) -> list[str]:
    """Why undo keeps a lead for the journeys it has entered (apply.entered_journeys)."""
    return apply.entered_journeys(e.journey_id for e in ports.journeys.entries_of(lead.lead_id))


def _left_by_undone_imports(
    ports: ImportCommands,
    import_id: str,
    lead: Lead,
    put_back: Lead,
    undone: Callable[[str], bool],
) -> bool:
    """Remove a lead this import changed that an import undone already created, when with this
    row taken back nothing is left but what undone imports did (apply.removable): list A
    created it, list B corrected it, A was undone first - and kept the lead, as B's row was
    activity then - and now B is undone too. Whether it was removed.

    Only a lead whose every field, once put back, dates from the lead's creation (as its
    creating row wrote them), and whose creating event (read alone, at that instant) is a row
    of an undone import, has its events read; any other - a form's lead with years of
    activity - is left at once."""
    if any(value.at != lead.created_at for value in put_back.fields.values()):
        return False
    created_by = apply.creating_import(
        ports.leads.events_at(lead.lead_id, lead.created_at, {LEAD_IMPORTED})
    )
    if created_by is None or created_by[0] == import_id or not undone(created_by[0]):
        return False

    def only_undone(events: list[LeadEvent]) -> bool:
        creator = _store(ports).get_row(*created_by)
        if creator is None or creator.lead_id != lead.lead_id or _entered(ports, lead):
            return False
        return apply.removable(put_back, creator, events, import_id, undone)

    identities = [stored_address_identity(lead.email)]
    return ports.leads.remove_lead(lead, identities, only_undone)


def _source_relied_on(
    ports: ImportCommands, import_id: str, applied: AppliedRow, channel: str
) -> bool:
    """Whether something since the row came to the lead from ``channel`` too (another list, a
    form; apply.source_relied_on): then undo leaves the channel in its sources."""
    store = _store(ports)
    events = ports.leads.events_since(
        applied.lead_id, parse_instant(applied.at), apply.SOURCE_EVENTS
    )

    def undone(other: str) -> bool:
        record = store.get_import(other)
        return record is not None and record.status == "undone"

    return apply.source_relied_on(events, channel, import_id, undone)


def _undone_imports(ports: ImportCommands) -> Callable[[str], bool]:
    """Whether an import is undone, each asked once (an undo meets the same few imports on
    lead after lead)."""
    store = _store(ports)
    known: dict[str, bool] = {}

    def undone(import_id: str) -> bool:
        if import_id not in known:
            record = store.get_import(import_id)
            known[import_id] = record is not None and record.status == "undone"
        return known[import_id]

    return undone


UNDONE_CHAIN = 20
"""How many undone imports a restored value is traced back through at most."""


def _before_undone_imports(
    ports: ImportCommands, lead_id: str, name: str, was: apply.StoredValue | None
) -> apply.StoredValue | None:
    """What a field goes back to when an undo restores ``was``: that value, unless it is one an
    import wrote that has been undone since (a list imported after it changed the same field, so
    that undo left it) - then what that import found there, and so on. Undoing A, then B, puts
    back what the lead held before A, not A's value."""
    store = _store(ports)
    for _ in range(UNDONE_CHAIN):
        if was is None:
            return None
        wrote = _written_by_an_import(ports, lead_id, name, was)
        if wrote is None:
            return was
        record = store.get_import(wrote[0])
        applied = store.get_row(*wrote) if record and record.status == "undone" else None
        if applied is None or applied.written.get(name) != was:
            return was
        was = applied.before.get(name)
    return was


def _written_by_an_import(
    ports: ImportCommands, lead_id: str, name: str, value: apply.StoredValue
) -> tuple[str, int] | None:
    """The import and row that wrote this value of the field, from the lead's events (its
    ``lead_imported`` or ``lead_updated`` at the value's time naming the field): those at that
    instant alone, not every event since (a form's value dates from a lead's creation)."""
    kinds = {LEAD_IMPORTED, LEAD_UPDATED}
    for event in ports.leads.events_at(lead_id, value["at"], kinds):
        said = event.properties
        if said.get("undone") or not said.get("import_id"):
            continue
        if name in said.get("fields", []) and isinstance(said.get("row"), int):
            return str(said["import_id"]), int(said["row"])
    return None


def list_imports(ports: ImportCommands, actor: Actor) -> list[ImportRecord]:
    allowed(ports.audit, ports.clock, actor, "imports.list", "imports")
    return _store(ports).imports()


# ---------------------------------------------------------------- saved mappings


def save_mapping(ports: ImportCommands, actor: Actor, mapping: SavedMapping) -> SavedMapping:
    """Save (or replace) a source's mapping under its name."""
    target = f"mapping:{mapping.name}"
    with recorded(ports.audit, ports.clock, actor, "imports.mappings", target) as log:
        store = _store(ports)
        saved = replace(
            checked_mapping(mapping),
            by=actor.email or actor.user_id,
            at=isoformat(ports.clock.now()),
        )
        before = store.get_mapping(mapping.name)
        store.save_mapping(saved)
        log.changed(_mapping_audited(before), _mapping_audited(saved))
    return saved


def mappings(ports: ImportCommands, actor: Actor) -> list[SavedMapping]:
    allowed(ports.audit, ports.clock, actor, "imports.list", "mappings")
    return sorted(_store(ports).mappings(), key=lambda m: m.name)


def delete_mapping(ports: ImportCommands, actor: Actor, name: str) -> None:
    with recorded(ports.audit, ports.clock, actor, "imports.mappings", f"mapping:{name}") as log:
        store = _store(ports)
        before = store.get_mapping(name)
        if before is None or not store.delete_mapping(name):
            raise NotFound(f"no saved mapping {name!r}")
        log.changed(_mapping_audited(before), {})


def options_with_mapping(
    ports: ImportCommands,
    name: str | None,
    given: ImportOptions,
    *,
    source_given: bool,
) -> ImportOptions:
    """The options of a plan that names a saved mapping (what the person gave for this file on
    top; the mapping's encoding read where the file's bytes leave it open), or the given ones
    when it names none."""
    if name is None:
        return given
    if not MAPPING_NAME.match(name):
        message = f"{name!r} is no mapping's name"
        problem = refusal("saved_mapping", "invalid_mapping_name", message, name=name)
        raise ValidationFailed([problem])
    saved = _store(ports).get_mapping(name)
    if saved is None:
        known = ", ".join(m.name for m in _store(ports).mappings()) or "none saved"
        raise NotFound(f"no saved mapping {name!r} (saved: {known})")
    return with_overrides(saved.options(), given, source_given=source_given)


def _mapping_audited(mapping: SavedMapping | None) -> dict[str, Any]:
    if mapping is None:
        return {}
    return {k: v for k, v in mapping.as_json().items() if k not in ("by", "at")}
