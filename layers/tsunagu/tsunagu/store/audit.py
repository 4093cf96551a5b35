"""The audit log's table: one item per entry, partitioned by day (``day#2026-12-03``) and sorted
by instant, so a date range is a query per day and nothing scans the table. Items are written
only with the condition that none has the key yet (append, never overwrite), and carry
``expires_at`` for the table's TTL (the retention setting, default 400 days)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from tsunagu.clock import Clock, isoformat, parse_instant
from tsunagu.commands.access import Actor, Role
from tsunagu.commands.audit import EVERY_ENTRY, AuditEntry, AuditFilter, page_key
from tsunagu.errors import IdempotencyConflict
from tsunagu.settings import Settings


class AuditItem(Model):
    class Meta:
        table_name = "unbound"  # bound per stage below

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute()
    expires_at = NumberAttribute()


@lru_cache(maxsize=8)
def _bound(settings: Settings) -> type[AuditItem]:
    if not settings.audit_table:
        raise RuntimeError("no audit table is configured (TSUNAGU_AUDIT_TABLE)")
    meta: dict[str, Any] = {"table_name": settings.audit_table, "region": settings.region}
    if settings.aws_endpoint_url:
        meta["host"] = settings.aws_endpoint_url
    return type("AuditItem", (AuditItem,), {"Meta": type("Meta", (), meta)})


def _day(at: datetime) -> str:
    return f"day#{at:%Y-%m-%d}"


class AuditRepository:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._retention = timedelta(days=settings.audit_retention_days)

    @property
    def _model(self) -> type[AuditItem]:
        """Bound on first use: a use case that only reads never needs the table."""
        return _bound(self._settings)

    def append(self, entry: AuditEntry) -> None:
        at = parse_instant(entry.at)
        item = self._model(
            _day(at),
            page_key(entry),
            data=asdict(entry),
            expires_at=int((at + self._retention).timestamp()),
        )
        try:
            item.save(condition=self._model.pk.does_not_exist())
        except PutError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                raise IdempotencyConflict(f"audit entry {entry.entry_id} exists already") from None
            raise

    def entries(
        self,
        since: datetime,
        until: datetime,
        *,
        limit: int = 200,
        matching: AuditFilter = EVERY_ENTRY,
        before: str | None = None,
    ) -> list[AuditEntry]:
        """Newest first, from ``since`` up to (not including) ``until`` and the entry whose
        ``page_key`` is ``before``, those ``matching`` keeps (read and left out here: the log is
        small, and a day's Query reads it all)."""
        # Only the days that can hold entries are read, one Query each: nothing is older than
        # the retention or newer than now, so since=0001-01-01 or until=9999-12-31 cost no
        # more than the retention's days (not millions of Queries).
        now = self._clock.now()
        # In UTC, as the days the log is kept by are (a range given in +09:00 would walk
        # Japan's days and miss each one's first nine hours).
        since = max(since, now - self._retention - timedelta(days=1)).astimezone(UTC)
        until = min(until, now + timedelta(days=1)).astimezone(UTC)
        found: list[AuditEntry] = []
        day = until
        while day.date() >= since.date() and len(found) < limit:
            for item in self._model.query(
                _day(day),
                self._model.sk.between(isoformat(since), isoformat(until)),
                scan_index_forward=False,
            ):
                if before is not None and item.sk >= before:
                    continue  # on the page before, or that page's last entry itself
                entry = _entry(item.data)
                if since <= parse_instant(entry.at) < until and matching.matches(entry):
                    found.append(entry)
                if len(found) >= limit:
                    break
            day -= timedelta(days=1)
        return found


def _entry(data: dict[str, Any]) -> AuditEntry:
    actor = data["actor"]
    return AuditEntry(
        **{
            **data,
            "actor": Actor(**{**actor, "role": Role(actor["role"]) if actor["role"] else None}),
        }
    )
