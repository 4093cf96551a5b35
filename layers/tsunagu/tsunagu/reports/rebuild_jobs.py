"""A rebuild of the counters run in the background (README, "Reports").

The admin API has 29 s: days holding more events than it can count again in that time are
rebuilt by the rebuild_reports state machine instead, one day a step, and the job keeps how far
it got. Each day's step is a rebuild of that day alone (its new rows written before its stale
ones are deleted), counted as the first day of what is left of the range - the firsts and
arms of the days after it, up to the job's last day, are counted again as a rebuild of the
whole range would count them - and the job is stored only after the day's rows are: a step
retried after it failed part-way counts its day again from the events, replacing what the
failed attempt wrote, and the totals add each day once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, Literal

from tsunagu.reports.counters import Rebuilt

RebuildStatus = Literal["queued", "running", "done", "failed", "stopped"]
"""stopped: its state machine execution was stopped by hand (StopExecution), or timed out,
before every day was counted (failed: a day ran out of retries, or the execution failed):
the days before ``days_done`` are counted again, the rest as they were (the day it stopped
on, if its step was cut short, old or new)."""

STOPPED_EXECUTIONS = frozenset({"ABORTED", "TIMED_OUT", "FAILED"})
"""The Step Functions statuses of an execution that can end without a step of its own saying
so (FAILED too: its step recording the failure can itself run out of retries)."""

MAX_ERROR = 600
"""Characters of an error kept on the job."""


@dataclass(frozen=True)
class RebuildJob:
    rebuild_id: str
    first_day: date
    last_day: date
    by: str
    """Who asked, as people read it (an address, or the CLI operator's identity)."""
    asked_by: Mapping[str, Any]
    """Who asked, as the audit log records a person (tsunagu.commands.access.Actor's fields):
    the job's end is logged under them, as its start was."""
    at: str
    status: RebuildStatus = "queued"
    days_done: int = 0
    """The days from ``first_day`` counted again and stored: the next step counts the day
    after them."""
    events: int = 0
    counted: int = 0
    rows: int = 0
    rows_removed: int = 0
    error: str | None = None
    updated_at: str = ""
    finished_at: str | None = None
    revision: int | None = None
    """The stored job's count of saves, as read (0: stored before saves were counted; None:
    never stored). A save is written only over the revision it was read at, so that a step
    still running when its execution was stopped (or a step run twice) does not write over
    the stop, or over the newer step's day (tsunagu.store.reports). Not part of the record."""

    @property
    def days_total(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def done(self) -> bool:
        return self.status in ("done", "failed", "stopped")

    @property
    def next_day(self) -> date | None:
        """The day the next step counts again (None: every day is done)."""
        if self.days_done >= self.days_total:
            return None
        return self.first_day + timedelta(days=self.days_done)

    def with_day(self, done: Rebuilt, at: str) -> RebuildJob:
        """One more day counted again and stored; ``done`` once it was the last."""
        days_done = self.days_done + 1
        last = days_done >= self.days_total
        return replace(
            self,
            status="done" if last else "running",
            days_done=days_done,
            events=self.events + done.events,
            counted=self.counted + done.counted,
            rows=self.rows + done.rows,
            rows_removed=self.rows_removed + done.rows_removed,
            updated_at=at,
            finished_at=at if last else None,
        )

    def with_failure(self, error: str, at: str) -> RebuildJob:
        return replace(
            self, status="failed", error=error[:MAX_ERROR], updated_at=at, finished_at=at
        )

    def with_stop(self, execution_status: str, at: str) -> RebuildJob:
        """Its execution ended (ABORTED: stopped by hand; TIMED_OUT; FAILED without its step
        recording the failure) with days left."""
        how = {"ABORTED": "was stopped by hand", "TIMED_OUT": "timed out"}.get(
            execution_status, "failed"
        )
        error = (
            f"its execution {how} ({execution_status}) after {self.days_done} of"
            f" {self.days_total} days: rebuild the days from {self.next_day} again"
        )
        status: RebuildStatus = "failed" if execution_status == "FAILED" else "stopped"
        return replace(self, status=status, error=error, updated_at=at, finished_at=at)

    @property
    def summary(self) -> str:
        return (
            f"{self.events} events read, {self.counted} counted, {self.rows} counter rows"
            f" written, {self.rows_removed} replaced"
        )

    def as_json(self) -> dict[str, Any]:
        """What the admin API answers (the 202 of a rebuild queued, and its progress)."""
        return {
            "rebuild_id": self.rebuild_id,
            "from": self.first_day.isoformat(),
            "to": self.last_day.isoformat(),
            "by": self.by,
            "at": self.at,
            "status": self.status,
            "done": self.done,
            "days_done": self.days_done,
            "days_total": self.days_total,
            "events": self.events,
            "counted": self.counted,
            "rows": self.rows,
            "rows_replaced": self.rows_removed,
            "error": self.error,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
        }

    def record(self) -> dict[str, Any]:
        """Everything stored."""
        shown = self.as_json()
        for derived in ("done", "days_total", "rows_replaced"):
            shown.pop(derived)
        return shown | {"rows_removed": self.rows_removed, "asked_by": dict(self.asked_by)}

    @classmethod
    def from_record(cls, data: Mapping[str, Any], revision: int | None = None) -> RebuildJob:
        return cls(
            rebuild_id=str(data["rebuild_id"]),
            first_day=date.fromisoformat(str(data["from"])),
            last_day=date.fromisoformat(str(data["to"])),
            by=str(data["by"]),
            asked_by=dict(data.get("asked_by") or {}),
            at=str(data["at"]),
            status=data["status"],
            days_done=int(data.get("days_done", 0)),
            events=int(data.get("events", 0)),
            counted=int(data.get("counted", 0)),
            rows=int(data.get("rows", 0)),
            rows_removed=int(data.get("rows_removed", 0)),
            error=data.get("error"),
            updated_at=str(data.get("updated_at", "")),
            finished_at=data.get("finished_at"),
            revision=revision,
        )
