"""The reports table: counter rows, the counted mails and the marks of counted events.

One table, three kinds of item (all with ``pk`` and ``sk``):

- a counter row: ``pk`` = the subject (``mail#welcome``, ``journey#seminar_follow_up``,
  ``form#demo``), ``sk`` = ``<day>#<part>`` (``2026-12-04#v3``), one number attribute per metric.
  A report is one Query per subject over a range of days.
- a counted mail: ``pk`` = ``message#<id>``, ``sk`` = ``-`` (tsunagu.reports.counting.CountedMail).
- an event's mark: ``pk`` = ``event#<id>``, ``sk`` = ``-``, written in the same transaction as
  the counts it made, so a redelivered record finds it and counts nothing; TTL removes it after
  the stream's retention has long passed.
- a background rebuild: ``pk`` = ``rebuild#<id>``, ``sk`` = ``-``, its progress as JSON
  (tsunagu.reports.rebuild_jobs).
- ``pk`` = ``events-by-day``, ``sk`` = ``-``: ``since``, the first UTC day every stored event
  of is in the events table's events_by_day index (the days a rebuild reads by Query).

Written with the low-level client: a counter row's attributes are the metrics themselves, which
no fixed model describes, and each batch's writes are one TransactWriteItems.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from tsunagu.clock import stored_day
from tsunagu.errors import ConcurrentUpdate
from tsunagu.reports.counters import TRANSACTION_ITEMS, Conflict, Known, Writes
from tsunagu.reports.counting import (
    DEALS_SUBJECT,
    FUNNEL_SUBJECT,
    Assignment,
    CountedDeal,
    CountedMail,
    CounterKey,
    FunnelLead,
    withdrawal,
    withdrawn,
)
from tsunagu.reports.rebuild_jobs import RebuildJob
from tsunagu.store.converters import day_index_keys

MARK_DAYS = 7
"""How long an event's mark is kept: a DynamoDB stream holds records for 24 hours."""
_NONE = "-"
WITHDRAWN_PER_TRANSACTION = 90
"""Leads taken out of the funnel in one transaction: DynamoDB takes 100 items, and the leads'
counter rows (one per cohort day, channel and form: an import's leads share one) come on top."""
WITHDRAW_ATTEMPTS = 6
WITHDRAW_PAUSE_SECONDS = 0.1
"""The first pause before reading again, doubled each time (about 3 s in all)."""

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def _mail_pk(message_id: str) -> str:
    return f"message#{message_id}"


def _rebuild_pk(rebuild_id: str) -> str:
    return f"rebuild#{rebuild_id}"


def _mark_pk(event_id: str) -> str:
    return f"event#{event_id}"


def _assignment_pk(journey_id: str, lead_id: str) -> str:
    return f"assignment#{journey_id}#{lead_id}"


def _funnel_pk(lead_id: str) -> str:
    return f"funnel-lead#{lead_id}"


def _deal_pk(deal_id: str) -> str:
    return f"deal#{deal_id}"


EVENTS_BY_DAY_INDEX = "events_by_day"
"""The events table's index of every event by its UTC day and instant (template.yaml)."""
_EVENTS_INDEXED_PK = "events-by-day"
"""The reports table's record of the day from which every event is in EVENTS_BY_DAY_INDEX."""

TOUCHES_INDEX = "touches_by_lead"
"""The counted mails a person opened or clicked, by lead and the instant of that first touch
(a sparse index: a mail only machines touched is not in it)."""


class ReportsRepository:
    def __init__(
        self,
        client: Any,
        table: str,
        events_table: str,
        leads_table: str,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self._pause = pause
        """How a retry waits (seconds): a test's clock instead of the wall clock's."""
        self._client = client
        self._table = table
        self._events_table = events_table
        self._leads_table = leads_table

    # ---------------------------------------------------------------- counting
    def counted(
        self,
        event_ids: Iterable[str],
        message_ids: Iterable[str],
        assignments: Iterable[tuple[str, str]] = (),
        funnel_leads: Iterable[str] = (),
        first_touch_leads: Iterable[str] = (),
        deal_ids: Iterable[str] = (),
    ) -> Known:
        """Which of the events are marked counted, the counted mails among the messages, the
        leads' arms in those journeys and the leads as the funnel has them (one BatchGetItem
        per 100 keys); for a lead of ``first_touch_leads`` the funnel has not seen, its
        creation and first channel (one more, on the leads table)."""
        leads = list(dict.fromkeys(funnel_leads))
        keys = [_mark_pk(e) for e in dict.fromkeys(event_ids)]
        keys += [_mail_pk(m) for m in dict.fromkeys(message_ids)]
        keys += [_assignment_pk(j, lead) for j, lead in dict.fromkeys(assignments)]
        keys += [_funnel_pk(lead) for lead in leads]
        keys += [_deal_pk(deal) for deal in dict.fromkeys(deal_ids)]
        known = Known()
        for item in self._get_many(keys):
            pk = str(item["pk"])
            if pk.startswith("event#"):
                known.marked.add(pk.removeprefix("event#"))
            elif pk.startswith("assignment#"):
                given = _assignment_from(item)
                known.assignments[(given.journey_id, given.lead_id)] = given
            elif pk.startswith("funnel-lead#"):
                lead = _funnel_from(item)
                known.funnels[lead.lead_id] = lead
            elif pk.startswith("deal#"):
                deal = _deal_from(item)
                known.deals[deal.deal_id] = deal
            else:
                mail = _mail_from(item)
                known.mails[mail.message_id] = mail
        touched = set(first_touch_leads)
        unseen = [lead for lead in leads if lead not in known.funnels and lead in touched]
        for item in self._get_leads(unseen):
            sources = item.get("sources") or []
            channel = str(sources[0]) if sources else None
            known.first_touches[str(item["lead_id"])] = (str(item["created_at"]), channel)
        return known

    def write(self, writes: Writes, at: datetime) -> None:
        """The marks, mails and increments, all or nothing; Conflict if another writer got to
        an event or a mail first."""
        expires = int((at + timedelta(days=MARK_DAYS)).timestamp())
        items: list[dict[str, Any]] = []
        for event_id in writes.marks:
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _item(
                            {"pk": _mark_pk(event_id), "sk": _NONE, "expires_at": expires}
                        ),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        for before, after in writes.mails:
            read = None if before is None else _mail_item(before)
            items.append(self._conditional_put(_mail_item(after), read))
        for was, given in writes.assignments:
            read = None if was is None else _assignment_item(was)
            items.append(self._conditional_put(_assignment_item(given), read))
        for had, lead in writes.funnels:
            read = None if had is None else _funnel_item(had)
            items.append(self._conditional_put(_funnel_item(lead), read))
        for kept, deal in writes.deals:
            read = None if kept is None else _deal_item(kept)
            items.append(self._conditional_put(_deal_item(deal), read))
        for key, metrics in writes.increments.items():
            items.append(self._increment(key, metrics))
        if not items:
            return
        assert len(items) <= TRANSACTION_ITEMS, len(items)
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if _met_another_writer(error):
                raise Conflict(str(error)) from error
            raise

    def withdraw_from_funnel(self, lead_ids: Iterable[str]) -> int:
        """Take these leads back out of the funnel (an import undone removed them): each one
        counted is uncounted at every stage it reached, and each is kept as withdrawn, so that
        nothing coming for it later counts (the counters' put of a creation is conditional on
        there being no record). Up to WITHDRAWN_PER_TRANSACTION leads a transaction, their
        increments added up per counter row; a transaction that meets the counters writing
        the same records is read again and retried after a pause. Answers how many had been
        counted; ConcurrentUpdate if the counters kept winning (what was done stays done, and
        the same call again finishes it)."""
        leads = list(dict.fromkeys(lead_ids))
        counted = 0
        for start in range(0, len(leads), WITHDRAWN_PER_TRANSACTION):
            counted += self._withdraw(leads[start : start + WITHDRAWN_PER_TRANSACTION])
        return counted

    def _withdraw(self, lead_ids: list[str]) -> int:
        for attempt in range(WITHDRAW_ATTEMPTS):
            read = {
                lead.lead_id: lead
                for lead in map(_funnel_from, self._get_many([_funnel_pk(x) for x in lead_ids]))
            }
            items: list[dict[str, Any]] = []
            increments: dict[CounterKey, dict[str, int]] = {}
            counted = 0
            for lead_id in lead_ids:
                had = read.get(lead_id)
                if had is not None and had.withdrawn:
                    continue
                before = None if had is None else _funnel_item(had)
                items.append(self._conditional_put(_funnel_item(withdrawn(lead_id, had)), before))
                if had is not None and had.reached:
                    counted += 1
                    row = increments.setdefault(had.key, {})
                    for name, n in withdrawal(had).items():
                        row[name] = row.get(name, 0) + n
            items += [self._increment(key, metrics) for key, metrics in increments.items()]
            if not items:
                return 0
            try:
                self._client.transact_write_items(TransactItems=items)
                return counted
            except ClientError as error:
                if not _met_another_writer(error):
                    raise
            if attempt == WITHDRAW_ATTEMPTS - 1:
                break
            # The counters wrote one of these records meanwhile: read again, after a pause
            # that grows (with jitter, so the two writers do not meet again in step).
            jitter = random.uniform(0.5, 1.5)  # noqa: S311 - spreading retries, not a secret
            self._pause(WITHDRAW_PAUSE_SECONDS * (2**attempt) * jitter)
        raise ConcurrentUpdate(
            "the report counters kept writing the funnel's records of these leads: undo the"
            " import again in a minute (what it removed stays removed)"
        )

    def _conditional_put(
        self, item: dict[str, Any], before: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Put ``item`` if the stored one is still ``before`` as read (None: if there is none).
        Only a mail's firsts, a lead's state in a journey and its funnel stages change: those
        are compared (an item of the earlier form, holding only ``arms``, by those)."""
        put: dict[str, Any] = {"TableName": self._table, "Item": item}
        if before is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            changing = next(n for n in ("firsts", "state", "reached") if n in item)
            # A name, not the word itself: STATE is one of DynamoDB's reserved words.
            put["ConditionExpression"] = "#changing = :before"
            if changing == "state" and '"since": null' in before["state"]["S"]:
                # Read from an item of the earlier form, which has no state to compare yet.
                put["ConditionExpression"] += " OR attribute_not_exists(#changing)"
            put["ExpressionAttributeNames"] = {"#changing": changing}
            put["ExpressionAttributeValues"] = {":before": before[changing]}
        return {"Put": put}

    def _increment(self, key: CounterKey, metrics: Mapping[str, int]) -> dict[str, Any]:
        names = {f"#m{i}": name for i, name in enumerate(sorted(metrics))}
        values = {f":m{i}": {"N": str(metrics[name])} for i, name in enumerate(sorted(metrics))}
        adds = ", ".join(f"#m{i} :m{i}" for i in range(len(names)))
        return {
            "Update": {
                "TableName": self._table,
                "Key": _item({"pk": key.subject, "sk": key.sort_key}),
                "UpdateExpression": f"ADD {adds}",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    # ---------------------------------------------------------------- reading
    def rows(
        self, subject: str, first_day: str, last_day: str
    ) -> list[tuple[CounterKey, dict[str, int]]]:
        """The counter rows of a subject from ``first_day`` to ``last_day`` (inclusive)."""
        found: list[tuple[CounterKey, dict[str, int]]] = []
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
            ExpressionAttributeValues={
                ":pk": {"S": subject},
                ":first": {"S": first_day},
                ":last": {"S": f"{last_day}#\uffff"},
            },
        )
        for page in pages:
            for item in page["Items"]:
                plain = _plain(item)
                key = CounterKey.from_sort_key(str(plain.pop("pk")), str(plain.pop("sk")))
                found.append((key, {name: int(n) for name, n in plain.items()}))
        return found

    # ---------------------------------------------------------------- attribution
    def deals_closed(self, first_day: str, last_day: str) -> list[CountedDeal]:
        """The deals as counted whose close day is in the range (with their leads), won or
        lost; one Query of the deals' rows and a BatchGetItem of the deals."""
        ids = {
            key.part.split("#", 1)[1]
            for key, metrics in self.rows(DEALS_SUBJECT, first_day, last_day)
            if any(metrics.values())
        }
        deals = [_deal_from(item) for item in self._get_many([_deal_pk(d) for d in sorted(ids)])]
        return sorted(
            (d for d in deals if d.close_day and first_day <= d.close_day <= last_day),
            key=lambda d: (d.close_day or "", d.deal_id),
        )

    def first_touches(self, lead_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Each lead's first channel and form, as the funnel keeps them (leads it has not seen
        are left out)."""
        keys = [_funnel_pk(lead) for lead in dict.fromkeys(lead_ids)]
        leads = (_funnel_from(item) for item in self._get_many(keys))
        return {lead.lead_id: (lead.channel, lead.form_id) for lead in leads if not lead.withdrawn}

    def touches(self, lead_id: str, since: str, until: str) -> list[CountedMail]:
        """The mails of the lead a person first opened or clicked from ``since`` to ``until``
        (ISO instants), oldest first."""
        found: list[CountedMail] = []
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table,
            IndexName=TOUCHES_INDEX,
            KeyConditionExpression="touch_lead = :lead AND touched_at BETWEEN :since AND :until",
            ExpressionAttributeValues={
                ":lead": {"S": lead_id},
                ":since": {"S": since},
                ":until": {"S": until},
            },
        )
        for page in pages:
            found.extend(_mail_from(_plain(item)) for item in page["Items"])
        return found

    # ---------------------------------------------------------------- rebuilding
    def events_between(self, first: str, last: str) -> Iterator[dict[str, Any]]:
        """Every stored event that occurred from ``first`` to ``last`` (ISO instants, as
        stored), in no particular order. Read from the events_by_day index - a Query per key of
        each UTC day the range touches (EVENT_DAY_SHARDS a day; a day of a time zone other than
        UTC touches two), paginated - when
        every event from ``first`` on is known to be in it (events_indexed_since); otherwise,
        for days that may hold events stored before the index was kept, by a Scan of the whole
        events table, as before it (README, "Reports", for both costs)."""
        since = self.events_indexed_since()
        if since is not None and first >= since:
            yield from self._events_by_day(first, last)
            return
        pages = self._client.get_paginator("scan").paginate(
            TableName=self._events_table,
            FilterExpression="occurred_at BETWEEN :first AND :last",
            ExpressionAttributeValues={":first": {"S": first}, ":last": {"S": last}},
        )
        for page in pages:
            for item in page["Items"]:
                yield _plain(item)

    def _events_by_day(self, first: str, last: str) -> Iterator[dict[str, Any]]:
        # The same text comparison of occurred_at as the Scan's filter, within each day it
        # can fall on: an instant between first and last has a day between theirs
        day, last_day = date.fromisoformat(stored_day(first)), date.fromisoformat(stored_day(last))
        while day <= last_day:
            for key in day_index_keys(day.isoformat()):
                pages = self._client.get_paginator("query").paginate(
                    TableName=self._events_table,
                    IndexName=EVENTS_BY_DAY_INDEX,
                    KeyConditionExpression=(
                        "occurred_day = :key AND occurred_at BETWEEN :first AND :last"
                    ),
                    ExpressionAttributeValues={
                        ":key": {"S": key},
                        ":first": {"S": first},
                        ":last": {"S": last},
                    },
                )
                for page in pages:
                    for item in page["Items"]:
                        yield _plain(item)
            day += timedelta(days=1)

    def events_indexed_since(self) -> str | None:
        """The first UTC day (YYYY-MM-DD) from which every stored event is in the
        events_by_day index (None: not known yet, every range is scanned)."""
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": _EVENTS_INDEXED_PK}, "sk": {"S": _NONE}},
            ConsistentRead=True,
        ).get("Item")
        return item["since"]["S"] if item else None

    def start_events_index(self, since: str) -> str:
        """Record that every event from the UTC day ``since`` on is in the index, unless a
        day is recorded already (the first stands: it was said when fewer events could
        predate the index); the day in force."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={"pk": {"S": _EVENTS_INDEXED_PK}, "sk": {"S": _NONE}, "since": {"S": since}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return self.events_indexed_since() or since
        return since

    def replace_rows(
        self, first_day: str, last_day: str, rows: Mapping[CounterKey, Mapping[str, int]]
    ) -> int:
        """Write ``rows``, then delete every other counter row from ``first_day`` to
        ``last_day``; the number of rows the days had. In that order, a rebuild cut short (a
        timeout, a throttled write) leaves each row as it was or as counted again - never a day
        whose rows were deleted and not yet written again."""
        doomed: list[dict[str, Any]] = []
        pages = self._client.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression=(
                "sk BETWEEN :first AND :last"
                " AND NOT begins_with(pk, :mail) AND NOT begins_with(pk, :mark)"
                " AND pk <> :funnel AND pk <> :deals"
            ),
            ExpressionAttributeValues={
                ":first": {"S": first_day},
                ":last": {"S": f"{last_day}#\uffff"},
                ":mail": {"S": "message#"},
                ":mark": {"S": "event#"},
                # The funnel's rows are by the day a lead was created, the deals' by the day
                # they closed: a rebuild leaves them.
                ":funnel": {"S": FUNNEL_SUBJECT},
                ":deals": {"S": DEALS_SUBJECT},
            },
            ProjectionExpression="pk, sk",
        )
        for page in pages:
            doomed.extend(page["Items"])
        written = {(key.subject, key.sort_key) for key in rows}
        puts = [
            {
                "PutRequest": {
                    "Item": _item(
                        {"pk": key.subject, "sk": key.sort_key, **{n: v for n, v in m.items() if v}}
                    )
                }
            }
            for key, m in rows.items()
        ]
        # The rows being rewritten are overwritten, not deleted (deleted after their put, they
        # would be lost; in one BatchWriteItem with it, refused: one key twice)
        deletes = [
            {"DeleteRequest": {"Key": key}}
            for key in doomed
            if (key["pk"]["S"], key["sk"]["S"]) not in written
        ]
        self._write_many(puts + deletes)
        return len(doomed)

    def replace_mails(
        self, mails: Iterable[CountedMail], assignments: Iterable[Assignment] = ()
    ) -> None:
        items = [_mail_item(m) for m in mails] + [_assignment_item(a) for a in assignments]
        self._write_many([{"PutRequest": {"Item": item}} for item in items])

    # ------------------------------------------------- background rebuilds
    def rebuild_job(self, rebuild_id: str) -> RebuildJob | None:
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": _rebuild_pk(rebuild_id)}, "sk": {"S": _NONE}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        revision = int(item["revision"]["N"]) if "revision" in item else 0
        return RebuildJob.from_record(json.loads(item["job"]["S"]), revision)

    def save_rebuild_job(self, job: RebuildJob) -> RebuildJob:
        """Stored whole, over the revision it was read at (a job never stored: only if none
        has its id), and answered at its new revision; ConcurrentUpdate if it was saved since.
        One execution runs a job's steps one after another, but a step still running when the
        execution is stopped saves after the stop, and a step Step Functions retried while its
        first invocation still ran saves after the retry's: neither may write over them."""
        revision = job.revision
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        if revision == 0:  # stored before saves were counted
            condition["ConditionExpression"] = (
                "attribute_exists(pk) AND attribute_not_exists(revision)"
            )
        elif revision is not None:
            condition["ConditionExpression"] = "revision = :read"
            condition["ExpressionAttributeValues"] = {":read": {"N": str(revision)}}
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": _rebuild_pk(job.rebuild_id)},
                    "sk": {"S": _NONE},
                    "job": {"S": json.dumps(job.record(), sort_keys=True)},
                    "revision": {"N": str((revision or 0) + 1)},
                },
                **condition,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            raise ConcurrentUpdate(
                f"rebuild {job.rebuild_id} was saved since revision {revision} was read"
            ) from None
        return replace(job, revision=(revision or 0) + 1)

    # ---------------------------------------------------------------- batches
    def _get_many(self, pks: list[str]) -> Iterator[dict[str, Any]]:
        for start in range(0, len(pks), 100):
            keys = [{"pk": {"S": pk}, "sk": {"S": _NONE}} for pk in pks[start : start + 100]]
            request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                answer = self._client.batch_get_item(RequestItems=request)
                for item in answer["Responses"].get(self._table, []):
                    yield _plain(item)
                request = answer.get("UnprocessedKeys") or {}

    def _get_leads(self, lead_ids: list[str]) -> Iterator[dict[str, Any]]:
        for start in range(0, len(lead_ids), 100):
            keys = [{"lead_id": {"S": lead}} for lead in lead_ids[start : start + 100]]
            request: dict[str, Any] = {
                self._leads_table: {
                    "Keys": keys,
                    "ProjectionExpression": "lead_id, created_at, sources",
                }
            }
            while request:
                answer = self._client.batch_get_item(RequestItems=request)
                for item in answer["Responses"].get(self._leads_table, []):
                    yield _plain(item)
                request = answer.get("UnprocessedKeys") or {}

    def _write_many(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self._table: requests[start : start + 25]}
            while pending:
                answer = self._client.batch_write_item(RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}


def _met_another_writer(error: ClientError) -> bool:
    """Whether a transaction was refused because another writer changed (or was changing)
    one of its records since it was read."""
    codes = {r.get("Code") for r in error.response.get("CancellationReasons") or []}
    return bool(codes & {"ConditionalCheckFailed", "TransactionConflict"})


def _item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def _mail_item(mail: CountedMail) -> dict[str, Any]:
    values: dict[str, Any] = {
        "pk": _mail_pk(mail.message_id),
        "sk": _NONE,
        "lead_id": mail.lead_id,
        "template_id": mail.template_id,
        "template_version": mail.template_version,
        "sent_day": mail.sent_day,
        # JSON with sorted keys, so that the transaction's condition compares it as read.
        "firsts": json.dumps(dict(mail.firsts), sort_keys=True),
    }
    if mail.journey_id:
        values["journey_id"] = mail.journey_id
    if mail.journey_version is not None:
        values["journey_version"] = mail.journey_version
    if mail.node:
        values["node"] = mail.node
    if mail.arms:
        values["arms"] = json.dumps(dict(mail.arms), sort_keys=True)
    if mail.touched_at:
        # The keys of TOUCHES_INDEX: only a mail a person touched is in it.
        values["touch_lead"] = mail.lead_id
        values["touched_at"] = mail.touched_at
    return _item(values)


def _assignment_item(given: Assignment) -> dict[str, Any]:
    state: dict[str, Any] = {
        "arms": dict(given.arms),
        "since": given.since,
        "version": given.version,
        "reached": dict(given.reached),
    }
    # Only when there are any: a state stored before they were kept, read and written back
    # unchanged, must compare equal to the stored text (the transaction's condition).
    if given.given_at:
        state["given_at"] = dict(given.given_at)
    if given.control:
        state["control"] = sorted(given.control)
    return _item(
        {
            "pk": _assignment_pk(given.journey_id, given.lead_id),
            "sk": _NONE,
            "journey_id": given.journey_id,
            "lead_id": given.lead_id,
            # JSON with sorted keys: the transaction's condition compares it as read.
            "state": json.dumps(state, sort_keys=True),
        }
    )


def _assignment_from(item: Mapping[str, Any]) -> Assignment:
    # An item written before memberships were kept holds its arms alone.
    state = json.loads(str(item["state"])) if item.get("state") else {}
    arms = state.get("arms", json.loads(str(item.get("arms") or "{}")))
    version = state.get("version")
    return Assignment(
        journey_id=str(item["journey_id"]),
        lead_id=str(item["lead_id"]),
        arms=arms,
        since=state.get("since"),
        version=int(version) if version is not None else None,
        reached=state.get("reached") or {},
        # Kept since 2026-12-06: an arm given before has no instant (taken as given before all).
        given_at=state.get("given_at") or {},
        control=frozenset(state.get("control") or ()),
    )


def _mail_from(item: Mapping[str, Any]) -> CountedMail:
    version = item.get("journey_version")
    return CountedMail(
        message_id=str(item["pk"]).removeprefix("message#"),
        lead_id=str(item["lead_id"]),
        template_id=str(item["template_id"]),
        template_version=int(item["template_version"]),
        sent_day=str(item["sent_day"]),
        journey_id=str(item["journey_id"]) if item.get("journey_id") else None,
        journey_version=int(version) if version is not None else None,
        node=str(item["node"]) if item.get("node") else None,
        firsts=json.loads(str(item.get("firsts") or "{}")),
        arms=json.loads(str(item.get("arms") or "{}")),
        touched_at=str(item["touched_at"]) if item.get("touched_at") else None,
    )


def _deal_item(deal: CountedDeal) -> dict[str, Any]:
    state = {
        "status": deal.status,
        "currency": deal.currency,
        "amount_cents": deal.amount_cents,
        "close_day": deal.close_day,
        "lead_ids": list(deal.lead_ids),
        "updated_at": deal.updated_at,
    }
    # JSON with sorted keys: the transaction's condition compares it as read.
    return _item(
        {"pk": _deal_pk(deal.deal_id), "sk": _NONE, "state": json.dumps(state, sort_keys=True)}
    )


def _deal_from(item: Mapping[str, Any]) -> CountedDeal:
    state = json.loads(str(item["state"]))
    return CountedDeal(
        deal_id=str(item["pk"]).removeprefix("deal#"),
        status=str(state["status"]),
        currency=str(state["currency"]),
        amount_cents=int(state["amount_cents"]),
        close_day=state.get("close_day"),
        lead_ids=tuple(state.get("lead_ids") or ()),
        updated_at=str(state["updated_at"]),
    )


def _funnel_item(lead: FunnelLead) -> dict[str, Any]:
    return _item(
        {
            "pk": _funnel_pk(lead.lead_id),
            "sk": _NONE,
            "lead_id": lead.lead_id,
            "created_day": lead.created_day,
            "channel": lead.channel,
            "form_id": lead.form_id,
            "reached": json.dumps(dict(lead.reached), sort_keys=True),
            **({"withdrawn": True} if lead.withdrawn else {}),
        }
    )


def _funnel_from(item: Mapping[str, Any]) -> FunnelLead:
    return FunnelLead(
        lead_id=str(item["lead_id"]),
        created_day=str(item["created_day"]),
        channel=str(item["channel"]),
        form_id=str(item["form_id"]),
        reached=json.loads(str(item.get("reached") or "{}")),
        withdrawn=bool(item.get("withdrawn")),
    )
