"""A large list imported in the background: the file is uploaded to S3, and a state machine
(statemachines/import_list.asl.json) plans it, cuts the plan into chunks, applies the chunks a
few at a time (each retried, then parked without stopping the rest) and finishes the import.

What the steps hand each other is kept in S3 beside the file, not in the state machine's input
(256 KB at most): the job (the options the person chose, the plan's digest they approved) and
each chunk's planned rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from tsunagu.imports.plan import ConsentColumn, ImportOptions, RowPlan
from tsunagu.imports.reasons import Rejection
from tsunagu.leads.merge import Channel

CHUNK_ROWS = 500
"""Planned rows per chunk: a chunk is applied well inside a Lambda's time (a few seconds in AWS)
and a failed one, retried or parked, is a small part of the file."""
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
"""What a pre-signed upload accepts (a 100,000-row list is about 15 MB as CSV)."""
UPLOAD_SECONDS = 15 * 60
"""How long a pre-signed upload URL works."""


def upload_key(upload_id: str, file_name: str) -> str:
    return f"uploads/{upload_id}/{file_name}"


def job_key(import_id: str) -> str:
    return f"imports/{import_id}/job.json"


def rejected_key(content_hash: str) -> str:
    """A dry run's rejected rows too large to answer inline, named by their SHA-256."""
    return f"rejected/{content_hash}.csv"


def rejected_name(file_name: str) -> str:
    """What a list's rejected rows are saved as: a CSV whatever the list was (``来場者.xlsx``:
    ``rejected-来場者.csv``), so that it opens as one and, fixed, imports again as one."""
    stem = PurePosixPath(file_name.replace("\\", "/")).stem or "list"
    return f"rejected-{stem}.csv"


def dry_run_key(plan_id: str, part: Literal["job", "answer", "refused"]) -> str:
    """A dry run in the background: what to plan, and then its answer or why it was refused."""
    return f"dry_runs/{plan_id}/{part}.json"


def chunk_key(import_id: str, index: int) -> str:
    return f"imports/{import_id}/chunks/{index:05d}.json"


@dataclass(frozen=True)
class ImportJob:
    import_id: str
    file_key: str
    file_name: str
    encoding: str | None
    plan_digest: str | None
    """The dry run the person approved; the run refuses a plan that changed since."""
    source: str
    mapping: dict[str, str]
    consent: dict[str, Any] | None
    """ConsentColumn as JSON (header, yes, no, topic)."""
    saved_encoding: str | None = None

    @classmethod
    def of(
        cls,
        import_id: str,
        file_key: str,
        file_name: str,
        options: ImportOptions,
        *,
        encoding: str | None,
        plan_digest: str | None,
    ) -> ImportJob:
        consent = options.consent
        return cls(
            import_id=import_id,
            file_key=file_key,
            file_name=file_name,
            encoding=encoding,
            plan_digest=plan_digest,
            source=options.source.value,
            mapping=dict(options.mapping),
            saved_encoding=options.saved_encoding,
            consent=None
            if consent is None
            else {
                "header": consent.header,
                "yes": sorted(consent.yes),
                "no": sorted(consent.no),
                "topic": consent.topic,
            },
        )

    @property
    def options(self) -> ImportOptions:
        consent = None
        if self.consent is not None:
            consent = ConsentColumn(
                self.consent["header"],
                frozenset(self.consent["yes"]),
                frozenset(self.consent["no"]),
                self.consent["topic"],
            )
        return ImportOptions(Channel(self.source), dict(self.mapping), consent, self.saved_encoding)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> ImportJob:
        return cls(**document)


def row_json(row: RowPlan) -> dict[str, Any]:
    return asdict(row)


def row_from_json(document: dict[str, Any]) -> RowPlan:
    return RowPlan(
        row=document["row"],
        action=document["action"],
        email=document["email"],
        values=document["values"],
        changes={k: (v[0], v[1]) for k, v in document["changes"].items()},
        kept={k: (v[0], v[1], v[2]) for k, v in document["kept"].items()},
        consent=document["consent"],
        reason=document["reason"],
        into=document["into"],
        consent_kept=document.get("consent_kept"),  # chunks kept before it was planned
        consent_said=_said(document.get("consent_said")),  # kept before it was planned
        # Chunks kept before rejections had codes: their English reason is all there is
        reason_code=document.get("reason_code"),
        reason_params=document.get("reason_params") or {},
        consent_disagreed=tuple(document.get("consent_disagreed") or ()),
        more_reasons=tuple(  # chunks kept before a row said all its problems have none
            Rejection(more["code"], more["params"], more["text"])
            for more in document.get("more_reasons") or ()
        ),
    )


def _said(said: list[Any] | None) -> tuple[int, str] | None:
    return None if said is None else (int(said[0]), str(said[1]))


def chunks(rows: list[RowPlan], size: int | None = None) -> list[list[RowPlan]]:
    """The rows that write (create, update), cut into chunks of ``size`` (CHUNK_ROWS)."""
    size = size or CHUNK_ROWS
    writing = [row for row in rows if row.action in ("create", "update")]
    return [writing[start : start + size] for start in range(0, len(writing), size)]


def progress_bar(done: int, total: int, width: int = 30) -> str:
    """``[##########....................]  33%`` (a terminal's progress bar)."""
    share = 1.0 if total == 0 else min(done / total, 1.0)
    filled = round(share * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {share:4.0%}"
