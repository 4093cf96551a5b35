"""A journey started for a segment in the background (README, "Saved segments").

The admin API's segment start answers at once (a request has 29 s, a segment can hold tens of
thousands of leads) with a start job; the enter_segments function (300 s) selects the leads and
enters them, the same way and under the same names (``manual:<request key>``) as a start in the
request would, and keeps the job's progress on its record as it goes. Where its time runs short
it records where it got to - the cursor of the candidates' read and the leads of that page it
has done - and is invoked again to go on from there; a run repeated (a retry, a second
invocation) enters nobody twice, since every entry is named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from tsunagu.clock import parse_instant

StartStatus = Literal["queued", "running", "done", "failed"]

MAX_ERROR = 600
"""Characters of an error kept on the job."""
MAX_ATTEMPTS = 3
"""Runs of one invocation before the job is given up as failed: Lambda runs an asynchronous
event at most three times (the first, and MaximumRetryAttempts 2 - the template's
EventInvokeConfig of EnterSegmentsFunction)."""
KEPT_FOR = timedelta(days=30)
"""How long a job is kept after its last write - a finished job, after it finished - before
DynamoDB's TTL removes it: a month to read how a start went. A job still running is written
after every page and every tsunagu.commands.journeys.CHECKPOINT_LEADS leads, each write moving
its expiry on, so it never expires mid-run; one that stopped without a word (stale) goes 30
days after its last write."""
STALE_AFTER = timedelta(minutes=15)
"""A job not done whose record was not written for this long has stopped without a word (a
run killed at its 300 s, every retry too): a live run writes at least every page, and Lambda
retries a failed run within three minutes."""


@dataclass(frozen=True)
class StartJob:
    start_id: str
    journey_id: str
    segment: str
    """A saved segment's name, or a filter, as the person gave it."""
    filter: str
    """The filter it read as when the start was asked: every run selects by it (a saved
    segment edited meanwhile does not change what a started job selects)."""
    request_key: str
    """Names the entries (``manual:<key>``): the same key again enters nobody twice."""
    extra: dict[str, Any]
    """What each execution's input adds (checked when the start was asked)."""
    by: str
    at: str
    """When it was asked: the instant the filter is read at, in every run of the job (a lead
    "silent for 90 days" then is selected whenever the job gets to it)."""
    status: StartStatus = "queued"
    selected: int = 0
    entered: int = 0
    already_in: int = 0
    """Leads an earlier start of the same request key had entered: named again, not started."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Leads the journey's own rules did not enter, by reason (``reentry_once``...)."""
    failed: int = 0
    """Leads whose entry failed (StartExecution refused...): the same start again (same
    request key) enters them, and nobody twice."""
    error: str | None = None
    """The last lead's failure, or why the job stopped."""
    cursor: dict[str, Any] | None = None
    """Where the candidates' read goes on from (tsunagu.segments.selection.Cursor); None:
    from the start."""
    page_done: tuple[str, ...] = ()
    """The leads of the page after ``cursor`` already done (a run cut short mid-page)."""
    runs: int = 0
    lease: str | None = None
    """The run going on with the job (Lambda may deliver its invocation twice, and both run
    at once): set by the run's first write, conditional on the revision it read; another run
    finding it held backs off before it enters anyone."""
    leased_until: str | None = None
    """When the run holding the lease is over whatever happened to it (its function's time
    out): a run finding the lease past this takes it."""
    failed_attempts: int = 0
    """Runs of the current invocation that ended in an unexpected error (a new invocation, to
    go on where its time ran short, starts again from 0): at MAX_ATTEMPTS the job is failed."""
    updated_at: str = ""
    finished_at: str | None = None
    revision: int = 0
    """How many times the record was stored: each write is conditional on it, so two runs of
    one job (an invocation retried while the other still runs) never both count a lead."""

    @property
    def done(self) -> bool:
        return self.status in ("done", "failed")

    def leased_to_another(self, now: datetime) -> bool:
        """Another run holds the job now (each run takes the lease afresh)."""
        return self.leased_until is not None and parse_instant(self.leased_until) > now

    def stale(self, now: datetime) -> bool:
        """Not done, and nothing written for STALE_AFTER: whatever ran it has stopped (the
        console stops following it and says so)."""
        written = self.updated_at or self.at
        return not self.done and now - parse_instant(written) > STALE_AFTER

    @property
    def kept_until(self) -> datetime:
        """When the job is gone (the table's TTL, ``expires_at``): KEPT_FOR after it finished,
        or, not finished, after its last write."""
        return parse_instant(self.finished_at or self.updated_at or self.at) + KEPT_FOR

    def expired(self, now: datetime) -> bool:
        """Past ``kept_until``: gone, though DynamoDB may not have deleted it yet (its TTL
        deletes lazily, within days), so reads treat it as gone already."""
        return now >= self.kept_until

    @property
    def not_entered(self) -> int:
        return sum(self.skipped.values())

    def counted(self, reason: str, *, entered: bool, repeated: bool) -> StartJob:
        """With one more lead selected and what its entry did."""
        if entered and repeated:
            return replace(self, selected=self.selected + 1, already_in=self.already_in + 1)
        if entered:
            return replace(self, selected=self.selected + 1, entered=self.entered + 1)
        skipped = {**self.skipped, reason: self.skipped.get(reason, 0) + 1}
        return replace(self, selected=self.selected + 1, skipped=skipped)

    def with_failure(self, error: str) -> StartJob:
        return replace(
            self, selected=self.selected + 1, failed=self.failed + 1, error=error[:MAX_ERROR]
        )

    def as_json(self, now: datetime) -> dict[str, Any]:
        """What the admin API answers, one shape wherever a job is shown (the 202 of a start,
        its progress, the journey's starts): the job, its progress (not its cursor) and
        whether it is ``stale`` at ``now``."""
        return self._shown() | {"stale": self.stale(now)}

    def _shown(self) -> dict[str, Any]:
        """The job and its progress as stored and derived, without what depends on the time."""
        return {
            "start_id": self.start_id,
            "journey": self.journey_id,
            "segment": self.segment,
            "filter": self.filter,
            "request_key": self.request_key,
            "by": self.by,
            "at": self.at,
            "status": self.status,
            "done": self.done,
            "selected": self.selected,
            "entered": self.entered,
            "already_in": self.already_in,
            "not_entered": self.not_entered,
            "not_entered_by_reason": dict(sorted(self.skipped.items())),
            "failed": self.failed,
            "error": self.error,
            "runs": self.runs,
            "failed_attempts": self.failed_attempts,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
        }

    def record(self) -> dict[str, Any]:
        """Everything stored (the revision is the record's own attribute)."""
        shown = self._shown()
        for derived in ("journey", "done", "not_entered", "not_entered_by_reason"):
            shown.pop(derived)
        return shown | {
            "journey_id": self.journey_id,
            "extra": self.extra,
            "skipped": self.skipped,
            "cursor": self.cursor,
            "page_done": list(self.page_done),
            "lease": self.lease,
            "leased_until": self.leased_until,
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any], revision: int) -> StartJob:
        return cls(
            start_id=str(data["start_id"]),
            journey_id=str(data["journey_id"]),
            segment=str(data["segment"]),
            filter=str(data["filter"]),
            request_key=str(data["request_key"]),
            extra=dict(data.get("extra") or {}),
            by=str(data["by"]),
            at=str(data["at"]),
            status=data["status"],
            selected=int(data.get("selected", 0)),
            entered=int(data.get("entered", 0)),
            already_in=int(data.get("already_in", 0)),
            skipped={str(k): int(v) for k, v in (data.get("skipped") or {}).items()},
            failed=int(data.get("failed", 0)),
            error=data.get("error"),
            cursor=data.get("cursor"),
            page_done=tuple(data.get("page_done") or ()),
            runs=int(data.get("runs", 0)),
            lease=data.get("lease"),
            leased_until=data.get("leased_until"),
            failed_attempts=int(data.get("failed_attempts", 0)),
            updated_at=str(data.get("updated_at", "")),
            finished_at=data.get("finished_at"),
            revision=revision,
        )
