"""The audit log (seed 002: 操作ログ): every change a person makes through a use case, and every
refusal, with who, when, from where, which operation, on what, and a compact before and after.

Entries are only ever appended (``AuditLog.append`` refuses to overwrite one); nothing in
Tsunagu updates or deletes them, and the table's TTL removes them after the retention period.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from tsunagu.clock import Clock, isoformat, parse_instant
from tsunagu.commands.access import Actor, Operation, authorise
from tsunagu.cursors import checked_page_key
from tsunagu.errors import FieldError, Forbidden, ValidationFailed
from tsunagu.ids import new_id
from tsunagu.text import spreadsheet_safe

Outcome = Literal["done", "refused"]


@dataclass(frozen=True)
class AuditEntry:
    entry_id: str
    at: str
    actor: Actor
    operation: str
    target: str
    """What it was done to: ``lead:<id>``, ``journey:<id>``..."""
    outcome: Outcome
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    """Only what changed: the values before and after, by name."""
    detail: str | None = None
    """Why it was refused, or what was done when no value changed (an event recorded)."""


def page_key(entry: AuditEntry) -> str:
    """The entry's sort key in the log: its instant in one form (so keys sort by time), then
    its id (so entries of the same millisecond keep an order a page can resume from)."""
    return f"{isoformat(parse_instant(entry.at))}#{entry.entry_id}"


@dataclass(frozen=True)
class AuditFilter:
    """Which entries a reader asks for: by whom (a part of the e-mail or user id, in any case),
    which operation (its name, or a group of them: ``journeys`` is every ``journeys.*``), and
    the outcome. Empty: every entry."""

    who: str | None = None
    operation: str | None = None
    outcome: Outcome | None = None

    def matches(self, entry: AuditEntry) -> bool:
        if self.who:
            said = f"{entry.actor.email or ''} {entry.actor.user_id}".casefold()
            if self.who.casefold() not in said:
                return False
        if self.operation and not (
            entry.operation == self.operation or entry.operation.startswith(self.operation + ".")
        ):
            return False
        return self.outcome is None or entry.outcome == self.outcome


EVERY_ENTRY = AuditFilter()


class AuditLog(Protocol):
    def append(self, entry: AuditEntry) -> None:
        """Store the entry; never replaces one (the same id twice is an error)."""
        ...

    def entries(
        self,
        since: datetime,
        until: datetime,
        *,
        limit: int = 200,
        matching: AuditFilter = EVERY_ENTRY,
        before: str | None = None,
    ) -> list[AuditEntry]:
        """Newest first; ``limit`` counts only the entries ``matching`` keeps, so a page of a
        filtered log is as full as the log allows; ``before``: only entries older than the one
        with this page key (the next page)."""
        ...


def what_changed(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two sides, cut to the values that differ (compact, as the log keeps them). Nested
    settings are followed down to the value that changed, named by its path: one rule's points
    changed is ``scoring.rules[form_submitted].points``, not the whole scoring sheet twice."""
    old, new = _paths(before), _paths(after)
    names = sorted({*old, *new})
    changed = [n for n in names if old.get(n) != new.get(n)]
    return {n: old.get(n) for n in changed}, {n: new.get(n) for n in changed}


IDENTITY_KEYS = ("id", "rule_id", "name")
"""What names an item of a list of settings (a rule, a node, a form field) in a path."""


def _paths(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for name, inner in value.items():
        path = f"{prefix}{name}"
        if isinstance(inner, Mapping) and inner:
            paths |= _paths(inner, f"{path}.")
            continue
        key = _identity_key(inner)
        if key is None:
            paths[path] = inner
            continue
        paths[f"{path}.order"] = [item[key] for item in inner]  # a form's fields moved
        for item in inner:
            paths |= _paths(item, f"{path}[{item[key]}].")
    return paths


def _identity_key(value: Any) -> str | None:
    """The key every item of a list of mappings has, once each, if there is one."""
    if not isinstance(value, list) or not value or not all(isinstance(i, Mapping) for i in value):
        return None
    for key in IDENTITY_KEYS:
        names = [i.get(key) for i in value]
        if all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
            return key
    return None


@dataclass
class Recording:
    """What a use case tells the log about the change it made."""

    operation: Operation
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    detail: str | None = None

    def changed(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        self.before, self.after = what_changed(before, after)


@contextmanager
def recorded(
    log: AuditLog, clock: Clock, actor: Actor, name: str, target: str
) -> Iterator[Recording]:
    """Authorise ``actor`` for operation ``name`` and run the use case's work inside: a refusal
    (here or raised by the work, e.g. sales on a lead it does not own) is logged and raised, for
    reads and changes alike; a change is logged with its before and after. A read that is
    allowed is not logged, unless its operation is ``audited`` (an export)."""
    try:
        recording = Recording(authorise(actor, name))
        yield recording
    except Forbidden as refusal:
        log.append(_entry(clock.now(), actor, name, target, "refused", detail=refusal.message))
        raise
    operation = recording.operation
    if (operation.changes or operation.audited) and (
        recording.before or recording.after or recording.detail
    ):
        log.append(
            _entry(
                clock.now(),
                actor,
                name,
                target,
                "done",
                before=recording.before,
                after=recording.after,
                detail=recording.detail,
            )
        )


def allowed(log: AuditLog, clock: Clock, actor: Actor, name: str, target: str) -> None:
    """A read's check: Forbidden (and its refusal logged) unless the role may do ``name``."""
    with recorded(log, clock, actor, name, target):
        pass


def noted(
    log: AuditLog,
    clock: Clock,
    actor: Actor,
    name: str,
    target: str,
    detail: str,
    after: Mapping[str, Any] | None = None,
) -> None:
    """The end of work a person's change queued (a background job), logged under them: their
    change was authorised and logged when they asked for it."""
    log.append(
        _entry(clock.now(), actor, name, target, "done", detail=detail, after=dict(after or {}))
    )


def refused(log: AuditLog, clock: Clock, actor: Actor, name: str, target: str, why: str) -> None:
    """A refusal made before any use case ran (an address outside the allowlist): logged as
    the use case would have logged it."""
    log.append(_entry(clock.now(), actor, name, target, "refused", detail=why))


def _entry(
    now: datetime, actor: Actor, name: str, target: str, outcome: Outcome, **more: Any
) -> AuditEntry:
    return AuditEntry(new_id("aud", now), isoformat(now), actor, name, target, outcome, **more)


MAX_AUDIT_ENTRIES = 5000
"""The most entries one listing (or CSV) holds."""


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    """Newest first."""
    more: bool
    """Whether older entries in the range (and the filter) follow: read one ahead, so a page that
    ends exactly at the range's last entry does not offer an empty next page."""
    since: datetime
    until: datetime
    """The range listed, in UTC (``listed_range``)."""


DEFAULT_DAYS = 7
"""A listing without ``since`` covers the week before its end."""
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def listed_range(
    now: datetime, since: datetime | None, until: datetime | None
) -> tuple[datetime, datetime]:
    """The range a listing covers, in UTC (the log is kept by UTC day, whatever offset the
    range was given in): until just past ``now`` and from ``DEFAULT_DAYS`` before its end,
    unless given - the same for the API and the CLI. An instant too near the year 1 or 9999
    to be moved is the earliest or latest there is."""
    end = _in_utc(until) if until is not None else now + timedelta(seconds=1)
    if since is not None:
        start = _in_utc(since)
    else:
        try:
            start = end - timedelta(days=DEFAULT_DAYS)
        except OverflowError:  # until=0001-01-03
            start = EARLIEST
    return start, end


def _in_utc(instant: datetime) -> datetime:
    try:
        return instant.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+09:00 is in the year 0 in UTC
        return EARLIEST if instant.year == 1 else LATEST


def list_entries(
    log: AuditLog,
    clock: Clock,
    actor: Actor,
    since: datetime | None,
    until: datetime | None,
    *,
    limit: int = 200,
    matching: AuditFilter = EVERY_ENTRY,
    before: str | None = None,
) -> AuditPage:
    """Newest first; admins only (the log says who did what to whom): anyone else's attempt is
    itself recorded. ``before``: the page key of the last entry of the page before (a cut CSV
    file's next file starts there)."""
    allowed(log, clock, actor, "audit.list", "audit")
    since, until = listed_range(clock.now(), since, until)
    if until <= since:
        raise ValidationFailed([FieldError("until", "must be after since")])
    if before is not None:
        checked_page_key(before)
    limit = min(max(limit, 1), MAX_AUDIT_ENTRIES)
    found = log.entries(since, until, limit=limit + 1, matching=matching, before=before)
    return AuditPage(found[:limit], more=len(found) > limit, since=since, until=until)


CSV_COLUMNS = (
    "at",
    "user_id",
    "email",
    "role",
    "via",
    "source_ip",
    "operation",
    "target",
    "outcome",
    "before",
    "after",
    "detail",
)


def as_csv(entries: Iterable[AuditEntry]) -> str:
    """The entries as CSV (UTF-8 with a BOM, so Excel opens Japanese text as it should);
    ``before`` and ``after`` as JSON. A cell that a spreadsheet would run as a formula is
    prefixed with ``'``."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        row = [
            e.at,
            e.actor.user_id,
            e.actor.email or "",
            e.actor.role or "",
            e.actor.via,
            e.actor.source_ip or "",
            e.operation,
            e.target,
            e.outcome,
            json.dumps(e.before, ensure_ascii=False, sort_keys=True) if e.before else "",
            json.dumps(e.after, ensure_ascii=False, sort_keys=True) if e.after else "",
            e.detail or "",
        ]
        writer.writerow([spreadsheet_safe(str(cell)) for cell in row])
    return out.getvalue()
