"""A large lead list imported in the background (tsunagu.imports.jobs): uploaded to S3 (a
pre-signed URL from the admin API, or the CLI's own upload), started by a person, then run by
the import state machine's steps - prepare (plan the file, refuse it if the plan is no longer
the dry run's, cut it into chunks), a chunk at a time (retried, then parked), and finish - with
its progress readable all along (``tsunagu imports status``, ``GET /admin/imports/{id}``).

The person's part (upload, start, status) is authorised and audited as the synchronous run is;
the steps are the stack's own work and need no actor."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Literal

from tsunagu.clock import isoformat
from tsunagu.commands.access import Actor
from tsunagu.commands.audit import allowed, recorded
from tsunagu.commands.imports import (
    ImportCommands,
    ImportFiles,
    _apply_group,
    _claim,
    _groups,
    _identity,
    _planned,
    _store,
    not_the_plan,
    plan_answer,
    with_rejected_link,
)
from tsunagu.errors import ConcurrentUpdate, NotFound, ValidationFailed
from tsunagu.ids import new_id
from tsunagu.imports import apply, jobs
from tsunagu.imports.apply import ImportProgress, ImportRecord
from tsunagu.imports.jobs import ImportJob
from tsunagu.imports.plan import ImportOptions
from tsunagu.imports.reading import named_list
from tsunagu.imports.reasons import FILE_LANGUAGE, LANGUAGES, Language
from tsunagu.imports.refusals import refusal

BACKGROUND_CLAIM = timedelta(hours=24)
"""How long a background run holds its plan at most: until it finishes, fails or is refused,
which let go of it; this is the backstop for a state machine that never told."""
FILE_NAME = re.compile(r".+\.(csv|tsv|txt|xlsx)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Upload:
    upload_id: str
    file_name: str
    url: str
    """PUT the file's bytes here (no other header needed), before ``expires_at``."""
    expires_at: str

    def as_json(self) -> dict[str, Any]:
        return {
            "upload_id": self.upload_id,
            "file_name": self.file_name,
            "url": self.url,
            "method": "PUT",
            "expires_at": self.expires_at,
            "max_bytes": jobs.MAX_UPLOAD_BYTES,
        }


def _files(ports: ImportCommands) -> ImportFiles:
    if ports.files is None:
        raise RuntimeError("no imports bucket is configured (TSUNAGU_IMPORTS_BUCKET)")
    return ports.files


def _checked_name(file_name: str) -> str:
    """An upload's name: a list's (reading.named_list) that says which kind of list it is."""
    if not FILE_NAME.fullmatch(named_list(file_name)):
        message = f"{file_name!r}: a .csv, .tsv, .txt or .xlsx file's name"
        problem = refusal("file_name", "invalid_file_name", message, name=file_name)
        raise ValidationFailed([problem])
    return file_name


def new_upload(ports: ImportCommands, actor: Actor, file_name: str) -> Upload:
    """Where to upload a list too large for a request's body (the first step of its dry run)."""
    allowed(ports.audit, ports.clock, actor, "imports.plan", f"file:{file_name}")
    now = ports.clock.now()
    upload_id = new_id("upl", now)
    key = jobs.upload_key(upload_id, _checked_name(file_name))
    url = _files(ports).upload_url(key, jobs.UPLOAD_SECONDS)
    expires = isoformat(now + timedelta(seconds=jobs.UPLOAD_SECONDS))
    return Upload(upload_id, file_name, url, expires)


def upload_file(ports: ImportCommands, file_name: str, data: bytes) -> str:
    """The CLI's upload (it holds the stack's credentials): the upload id."""
    upload_id = new_id("upl", ports.clock.now())
    _files(ports).put(jobs.upload_key(upload_id, _checked_name(file_name)), data)
    return upload_id


def _uploaded(ports: ImportCommands, upload_id: str, file_name: str) -> str:
    """The key of the file uploaded as ``file_name`` to ``upload_id``; NotFound when nothing
    was (or it expired)."""
    _check_upload_id(upload_id)
    key = jobs.upload_key(upload_id, _checked_name(file_name))
    if not _files(ports).exists(key):
        raise NotFound(f"nothing was uploaded as {file_name!r} to {upload_id}: upload it first")
    return key


def _check_upload_id(upload_id: str) -> None:
    if not re.fullmatch(r"upl_[0-9A-Za-z]{1,40}", upload_id):
        message = f"{upload_id!r} is no upload id"
        problem = refusal("upload_id", "invalid_upload_id", message, upload_id=upload_id)
        raise ValidationFailed([problem])


@dataclass(frozen=True)
class DryRun:
    """A dry run of an uploaded list, planned in the background: ``planning`` until its answer
    (the plan, as ``imports.plan_answer`` gives it) or why it was refused is kept."""

    plan_id: str
    status: Literal["planning", "planned", "refused"]
    plan: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    """ValidationFailed's message and fields (what a request's 422 would say)."""

    def as_json(self) -> dict[str, Any]:
        return {"plan_id": self.plan_id, "status": self.status, **(self.plan or {})} | (
            {"error": self.error} if self.error else {}
        )


def queue_dry_run(
    ports: ImportCommands,
    actor: Actor,
    upload_id: str,
    file_name: str,
    options: ImportOptions,
    *,
    encoding: str | None = None,
    rows: int = 200,
    language: Language = FILE_LANGUAGE,
) -> DryRun:
    """The dry run of an uploaded list, in the background: a list of any size is planned by the
    import state machine (in AWS a request has 29 s, and a Lambda answering it 512 MB; a
    100,000-row list needs more than both), its answer read by ``dry_run``."""
    allowed(ports.audit, ports.clock, actor, "imports.plan", f"file:{file_name}")
    if ports.start_dry_run is None:
        raise RuntimeError("no import state machine is configured")
    file_key = _uploaded(ports, upload_id, file_name)
    plan_id = new_id("pln", ports.clock.now())
    job = ImportJob.of(plan_id, file_key, file_name, options, encoding=encoding, plan_digest=None)
    asked = {**job.as_json(), "rows": rows, "language": language}
    _files(ports).put_json(jobs.dry_run_key(plan_id, "job"), asked)
    ports.start_dry_run(plan_id)
    return DryRun(plan_id, "planning")


def plan_in_background(ports: ImportCommands, plan_id: str) -> str:
    """The state machine's dry-run step: the plan's answer kept (or why it was refused: a file
    that cannot be read as a list is the marketer's to fix, not a failure to retry)."""
    files = _files(ports)
    job, rows, language = _dry_run_job(files, plan_id)
    data = files.get(job.file_key)
    try:
        if data is None:
            raise NotFound("the uploaded file is gone (uploads are kept a week): upload it again")
        planned = _planned(ports, data, job.file_name, job.options, job.encoding)
    except (ValidationFailed, NotFound) as error:
        problem: dict[str, Any] = {"message": error.message}
        if isinstance(error, ValidationFailed):
            problem["fields"] = [f.as_json() for f in error.errors]
        files.put_json(jobs.dry_run_key(plan_id, "refused"), problem)
        return "refused"
    answer = plan_answer(ports, planned, job.file_name, rows, language)
    answer.pop("rejected_csv_url", None)  # a fresh link each time the answer is read
    files.put_json(jobs.dry_run_key(plan_id, "answer"), answer)
    return "planned"


def _dry_run_job(files: ImportFiles, plan_id: str) -> tuple[ImportJob, int, Language]:
    """What a background dry run plans, how many rows' plans it answers with, and the language
    of its rejected rows' reasons."""
    document = dict(files.get_json(jobs.dry_run_key(plan_id, "job")))
    rows = int(document.pop("rows"))
    # A job queued before the language was asked: the file's own
    asked = document.pop("language", FILE_LANGUAGE)
    language: Language = asked if asked in LANGUAGES else FILE_LANGUAGE
    return ImportJob.from_json(document), rows, language


def dry_run_failed(ports: ImportCommands, plan_id: str, error: str) -> None:
    """The dry-run step ran out of its retries: kept as refused, saying why."""
    problem = {"message": f"the dry run failed: {error[:500]}"}
    _files(ports).put_json(jobs.dry_run_key(plan_id, "refused"), problem)


def dry_run(ports: ImportCommands, actor: Actor, plan_id: str) -> DryRun:
    """A background dry run as it is now."""
    allowed(ports.audit, ports.clock, actor, "imports.plan", f"plan:{plan_id}")
    if not re.fullmatch(r"pln_[0-9A-Za-z]{1,40}", plan_id):
        raise NotFound(f"no dry run {plan_id!r}")
    files = _files(ports)
    if not files.exists(jobs.dry_run_key(plan_id, "job")):
        raise NotFound(f"no dry run {plan_id!r} (dry runs are kept a week)")
    answer = files.get(jobs.dry_run_key(plan_id, "answer"))
    if answer is not None:
        plan = json.loads(answer)
        if "rejected_csv_key" in plan:
            plan = with_rejected_link(ports, plan, _dry_run_job(files, plan_id)[0].file_name)
        return DryRun(plan_id, "planned", plan=plan)
    refused = files.get(jobs.dry_run_key(plan_id, "refused"))
    if refused is not None:
        return DryRun(plan_id, "refused", error=json.loads(refused))
    return DryRun(plan_id, "planning")


def start(
    ports: ImportCommands,
    actor: Actor,
    upload_id: str,
    file_name: str,
    options: ImportOptions,
    *,
    encoding: str | None = None,
    plan_digest: str | None = None,
) -> ImportRecord:
    """Queue the uploaded file's import: its state machine plans it again (refusing a plan that
    is no longer ``plan_digest``) and applies it in chunks. Answers the queued import."""
    store = _store(ports)
    if ports.start_job is None:
        raise RuntimeError("no import state machine is configured")
    with recorded(ports.audit, ports.clock, actor, "imports.run", f"file:{file_name}") as log:
        file_key = _uploaded(ports, upload_id, file_name)
        now = ports.clock.now()
        import_id = new_id("imp", now)
        if plan_digest:
            _claim(ports, plan_digest, import_id, now + BACKGROUND_CLAIM)
        job = ImportJob.of(
            import_id,
            file_key,
            file_name,
            options,
            encoding=encoding,
            plan_digest=plan_digest,
        )
        record = ImportRecord(
            import_id=import_id,
            file_name=file_name,
            source=options.source.value,
            encoding=encoding or "",
            by=actor.email or actor.user_id,
            at=isoformat(now),
            digest=plan_digest or "",
            counts={},
            status="queued",
            background=True,
        )
        try:
            _files(ports).put_json(jobs.job_key(import_id), job.as_json())
            store.save_import(record)
            ports.start_job(import_id)
        except Exception as error:
            # Not started: said on the record (when there is one), and the plan let go of
            with contextlib.suppress(Exception):
                failed = replace(record, status="failed", detail=f"not started: {error}"[:600])
                store.save_import(failed)
            _let_go(ports, record)
            raise
        log.after = {"import_id": import_id, "status": "queued"}
        log.detail = f"import {import_id} of {file_name} queued (in the background)"
    return record


def status(
    ports: ImportCommands, actor: Actor, import_id: str
) -> tuple[ImportRecord, ImportProgress | None]:
    allowed(ports.audit, ports.clock, actor, "imports.list", f"import:{import_id}")
    store = _store(ports)
    record = store.get_import(import_id)
    if record is None:
        raise NotFound(f"no import {import_id!r}")
    return record, store.progress(import_id)


# ---------------------------------------------------------------- the state machine's steps


def _job(ports: ImportCommands, import_id: str) -> tuple[ImportJob, ImportRecord]:
    record = _store(ports).get_import(import_id)
    if record is None:
        raise NotFound(f"no import {import_id!r}")
    return ImportJob.from_json(_files(ports).get_json(jobs.job_key(import_id))), record


def prepare(ports: ImportCommands, import_id: str) -> list[int]:
    """Plan the file and keep its chunks; the chunks' indexes (none when it was refused: its
    record says why). A retried step finds its chunks kept and plans nothing again."""
    store, files = _store(ports), _files(ports)
    job, record = _job(ports, import_id)
    if record.status != "queued":
        progress = store.progress(import_id)
        return list(range(progress.chunks_total if progress else 0))
    data = files.get(job.file_key)
    if data is None:
        _refuse(ports, record, "the uploaded file is gone (uploads are kept a week)")
        return []
    try:
        planned = _planned(ports, data, job.file_name, job.options, job.encoding)
    except ValidationFailed as error:
        _refuse(ports, record, error.message)
        return []
    digest = apply.plan_digest(planned.plan)
    if not job.plan_digest:
        try:  # queued without a dry run's digest: the plan it makes now is what it holds
            _claim(ports, digest, import_id, ports.clock.now() + BACKGROUND_CLAIM)
        except ConcurrentUpdate as error:
            _refuse(ports, record, error.message)
            return []
        # Kept on the record at once: a step failing from here on lets go of what it names
        record = replace(record, digest=digest)
        store.save_import(record, expected="queued")
    if job.plan_digest and job.plan_digest != digest:
        _refuse(ports, record, not_the_plan(ports, job.plan_digest, run=import_id))
        return []
    parts = jobs.chunks(planned.plan.rows)
    for index, part in enumerate(parts):
        files.put_json(jobs.chunk_key(import_id, index), [jobs.row_json(r) for r in part])
    store.start_progress(import_id, sum(len(p) for p in parts), len(parts))
    store.save_import(
        replace(
            record,
            status="applying",
            encoding=planned.plan.encoding,
            digest=digest,
            counts=planned.plan.counts,
        ),
        expected="queued",
    )
    return list(range(len(parts)))


def _refuse(ports: ImportCommands, record: ImportRecord, why: str) -> None:
    store = _store(ports)
    store.save_import(replace(record, status="refused", detail=why), expected=record.status)
    _let_go(ports, record)


def _let_go(ports: ImportCommands, record: ImportRecord) -> None:
    """The plan the run held, released (the record's digest: the dry run's it was queued with,
    or the one its prepare step made and claimed)."""
    if record.digest:
        _store(ports).release_plan(record.digest, record.import_id)


def apply_chunk(ports: ImportCommands, import_id: str, index: int) -> int:
    """Write one chunk's rows (ROWS_PER_TRANSACTION to a transaction with their receipt, as the
    synchronous run does) and count it done; a retry applies no row twice and counts nothing
    twice. The rows written."""
    store = _store(ports)
    job, record = _job(ports, import_id)
    rows = [jobs.row_from_json(d) for d in _files(ports).get_json(jobs.chunk_key(import_id, index))]
    # A retry writes only what the attempt before it did not: each row is planned again against
    # its lead, and a row already written would otherwise be planned as an update of itself
    written = _written(ports, import_id, [row.row for row in rows])
    rows_left = [row for row in rows if row.row not in written]
    found = ports.leads.find_leads([_identity(r.email) for r in rows_left if r.email])
    against = {r.email: found.get(_identity(r.email)) for r in rows_left if r.email}
    for group in _groups(rows_left):
        _apply_group(ports, group, record, job.options, job.file_name, against)
    store.chunk_finished(import_id, index, len(rows))
    return len(rows)


def _written(ports: ImportCommands, import_id: str, rows: list[int]) -> set[int]:
    """Which of a chunk's rows (in order) have been written: in the receipts keyed within it."""
    if not rows:
        return set()
    return {applied.row for applied in _store(ports).rows_of(import_id, rows[0], rows[-1])}


def park_chunk(ports: ImportCommands, import_id: str, index: int, error: str) -> None:
    """A chunk that failed every retry: counted as parked, the rest go on. Its groups written
    before the attempt that failed stay written (and are counted done); the rows that were
    not are named - those to import again."""
    store = _store(ports)
    rows = [row["row"] for row in _files(ports).get_json(jobs.chunk_key(import_id, index))]
    written = _written(ports, import_id, rows)
    not_written = [row for row in rows if row not in written]
    parked = {
        "chunk": index,
        "rows": len(not_written),
        "first_row": not_written[0] if not_written else None,
        "last_row": not_written[-1] if not_written else None,
        "error": error[:500],
    }
    store.chunk_finished(import_id, index, len(rows) - len(not_written), parked=parked)


def fail(ports: ImportCommands, import_id: str, error: str) -> ImportRecord:
    """The state machine stopped part-way (a step out of retries): said, so that the import is
    no longer shown running and what it wrote can be undone."""
    store = _store(ports)
    record = store.get_import(import_id)
    if record is None:
        raise NotFound(f"no import {import_id!r}")
    if record.status not in ("queued", "applying"):
        return record
    failed = replace(record, status="failed", detail=f"stopped part-way: {error[:500]}")
    store.save_import(failed, expected=record.status)
    _let_go(ports, failed)
    return failed


def _row_range(parked: dict[str, Any]) -> str:
    rows = parked.get("rows")  # chunks parked before it was counted name their whole range
    span = f"{parked['first_row']}-{parked['last_row']}"
    return span if rows is None else f"{span} ({rows} rows)"


def finish(ports: ImportCommands, import_id: str) -> ImportRecord:
    """The import applied, or applied with parked chunks (their rows say which)."""
    store = _store(ports)
    record = store.get_import(import_id)
    if record is None:
        raise NotFound(f"no import {import_id!r}")
    if record.status != "applying":
        return record  # refused when prepared, or finished by an earlier attempt
    progress = store.progress(import_id)
    parked = progress.parked if progress else []
    unwritten = [p for p in parked if p.get("rows", 1) and p["first_row"] is not None]
    finished = replace(
        record,
        status="applied_with_parked" if parked else "applied",
        detail=(
            f"{len(parked)} chunks parked after their retries; not written: rows "
            + ", ".join(_row_range(p) for p in unwritten)
            + ": fix what failed and import those rows again"
        )
        if parked
        else None,
    )
    store.save_import(finished, expected="applying")
    _let_go(ports, finished)
    return finished
