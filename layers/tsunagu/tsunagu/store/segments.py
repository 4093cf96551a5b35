"""The saved segments (one item per segment, keyed by its name, the definition a JSON document)
and the facts a filter reads beyond the lead: its events, its consent, the imports that wrote it,
other segments and its score now (tsunagu.segments.filter.Facts).

Written with the low-level client: a segment is a small document, saved only over the version
it was read at."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from tsunagu.clock import isoformat
from tsunagu.errors import ConcurrentUpdate
from tsunagu.imports.apply import ImportStatus, leads_of
from tsunagu.leads.model import Lead
from tsunagu.qualification.scores import LeadScores
from tsunagu.segments.filter import Facts, Segment
from tsunagu.segments.saved import SavedSegment
from tsunagu.store.converters import event_from_item
from tsunagu.store.imports import ImportRepository
from tsunagu.store.tables import Tables

CACHE_SECONDS = 30.0
"""How long a warm function keeps the segments that exclude from marketing (as the exclusions:
a change reaches every send within half a minute)."""
_excluding: dict[str, tuple[float, list[SavedSegment]]] = {}


IMPORTED_CACHE_SECONDS = 60.0
"""How long a warm function keeps an import's leads: an exclusion segment naming an import
(``import=imp_...``) is checked on every marketing send, and the import's rows are many."""
_imported: dict[str, tuple[float, ImportStatus, frozenset[str]]] = {}
UNFINISHED = ("queued", "applying")
"""An import in these may still write rows: its leads are read afresh each time."""


def forget_cached_segments() -> None:
    _excluding.clear()
    _imported.clear()


def _imported_leads(imports: ImportRepository | None, import_id: str) -> frozenset[str]:
    if imports is None:
        return frozenset()
    # The import's record is read every time (one small item), its rows only when the status
    # changed: an undo, in whichever function it ran, is seen by the next evaluation here,
    # not a minute later (apply.leads_of).
    record = imports.get_import(import_id)
    cached = _imported.get(import_id)
    if (
        record is not None
        and cached is not None
        and cached[1] == record.status
        and time.monotonic() - cached[0] <= IMPORTED_CACHE_SECONDS
    ):
        return cached[2]
    leads = leads_of(record, imports.rows_of(import_id))
    # Kept only once the import has finished: one still applying has more rows to come, and a
    # journey started by import= must find them all.
    if record is not None and record.status not in UNFINISHED:
        _imported[import_id] = (time.monotonic(), record.status, leads)
    return leads


class SegmentRepository:
    def __init__(self, client: Any, table: str, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self._client = client
        self._table = table
        self._cache_seconds = cache_seconds

    def get_segment(self, name: str) -> SavedSegment | None:
        answer = self._client.get_item(
            TableName=self._table, Key={"name": {"S": name}}, ConsistentRead=True
        )
        item = answer.get("Item")
        return None if item is None else _segment(item)

    def segments(self) -> list[SavedSegment]:
        """Every saved segment by name (a Scan: an account keeps tens of them, not thousands)."""
        found: list[SavedSegment] = []
        for page in self._client.get_paginator("scan").paginate(
            TableName=self._table, ConsistentRead=True
        ):
            found += [_segment(item) for item in page["Items"]]
        return sorted(found, key=lambda s: s.name)

    def save_segment(self, segment: SavedSegment) -> None:
        """Create it (version 1) or replace the version before it; ConcurrentUpdate when someone
        saved it in between (or created it first)."""
        if segment.version == 1:
            condition: dict[str, Any] = {
                "ConditionExpression": "attribute_not_exists(#name)",
                "ExpressionAttributeNames": {"#name": "name"},
            }
        else:
            condition = {
                "ConditionExpression": "version = :read",
                "ExpressionAttributeValues": {":read": {"N": str(segment.version - 1)}},
            }
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "name": {"S": segment.name},
                    "version": {"N": str(segment.version)},
                    "segment": {"S": json.dumps(segment.as_json(), ensure_ascii=False)},
                },
                **condition,
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise ConcurrentUpdate(f"segment {segment.name!r} was changed meanwhile") from None
        _excluding.pop(self._table, None)

    def delete_segment(self, name: str, version: int) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"name": {"S": name}},
                ConditionExpression="version = :read",
                ExpressionAttributeValues={":read": {"N": str(version)}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise ConcurrentUpdate(f"segment {name!r} was changed meanwhile") from None
        _excluding.pop(self._table, None)

    def excluding_segments(self) -> list[SavedSegment]:
        """The segments marked "exclude from marketing"; a warm function keeps them a while."""
        cached = _excluding.get(self._table)
        if cached is None or time.monotonic() - cached[0] > self._cache_seconds:
            cached = (time.monotonic(), [s for s in self.segments() if s.exclude_from_marketing])
            _excluding[self._table] = cached
        return cached[1]


def _segment(item: dict[str, Any]) -> SavedSegment:
    return SavedSegment.from_json(json.loads(item["segment"]["S"]))


class StoredFacts:
    """The facts of the stored leads, each read once per evaluation (an instance serves one
    evaluation: a preview, a day's segment entries, one send)."""

    def __init__(
        self,
        tables: Tables,
        segments: SegmentRepository | None,
        imports: ImportRepository | None,
        scores: Callable[[datetime], LeadScores] | None = None,
    ) -> None:
        self._tables = tables
        self._segments = segments
        self._imports = imports
        self._lead_scores = scores
        self._scores: dict[datetime, LeadScores] = {}
        self._consent: dict[str, Mapping[str, str]] = {}
        self._imported: dict[str, frozenset[str]] = {}
        self._parsed: dict[str, Segment | None] = {}
        self._did: dict[tuple[str, str, datetime], bool] = {}

    def did(self, lead_id: str, event_type: str, since: datetime) -> bool:
        key = (lead_id, event_type, since)
        if key not in self._did:
            events = self._tables.events
            found = events.query(
                f"lead#{lead_id}",
                range_key_condition=events.sk >= isoformat(since),
                filter_condition=events.type == event_type,
            )
            self._did[key] = any(
                not event_from_item(item).properties.get("automated") for item in found
            )
        return self._did[key]

    def consent(self, lead_id: str) -> Mapping[str, str]:
        if lead_id not in self._consent:
            consent = self._tables.consent
            self._consent[lead_id] = {
                item.topic: item.status
                for item in consent.query(
                    lead_id, range_key_condition=consent.record.startswith("topic#")
                )
            }
        return self._consent[lead_id]

    def imported(self, import_id: str) -> frozenset[str]:
        if import_id not in self._imported:
            self._imported[import_id] = _imported_leads(self._imports, import_id)
        return self._imported[import_id]

    def segment(self, name: str) -> Segment | None:
        if name not in self._parsed:
            saved = self._segments.get_segment(name) if self._segments else None
            self._parsed[name] = saved.segment if saved else None
        return self._parsed[name]

    def scores(self, now: datetime) -> LeadScores:
        if now not in self._scores:
            self._scores[now] = (
                self._lead_scores(now) if self._lead_scores else LeadScores.stored(now)
            )
        return self._scores[now]


class SegmentExclusions:
    """The saved segments marked "exclude from marketing", as a send checks them: each asked
    with facts read for this send only."""

    def __init__(self, segments: SegmentRepository, facts: Callable[[], Facts]) -> None:
        self._segments = segments
        self._facts = facts

    def excluding(self, lead: Lead, now: datetime) -> str | None:
        excluding = self._segments.excluding_segments()
        if not excluding:
            return None
        facts = self._facts()
        for saved in excluding:
            if saved.segment.selects(lead, now, facts):
                return saved.name
        return None
