"""Journey waits in DynamoDB, and the Step Functions adapter that resumes executions."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DeleteError, PutError

from tsunagu.clock import isoformat, parse_instant
from tsunagu.errors import ConcurrentUpdate, Throttled
from tsunagu.journeys.gate import EntryState, SendLedger
from tsunagu.journeys.lifecycle import (
    RUNNING_COUNTED,
    JourneyEntry,
    ParkedExecution,
    RunningCount,
    StartedExecution,
    WaitingAt,
    execution_arn,
    with_exit,
)
from tsunagu.journeys.model import Journey, StoredGraph
from tsunagu.journeys.start_jobs import StartJob
from tsunagu.journeys.steps import GateView
from tsunagu.journeys.waits import EventMatch, JourneyWait
from tsunagu.leads.model import LeadEvent
from tsunagu.settings import Settings
from tsunagu.store.converters import event_to_item, recipient_from
from tsunagu.store.tables import Tables, batch_get, get_or_none

# A wait item outlives its deadline by this much, then DynamoDB's TTL removes it.
WAIT_GRACE = timedelta(days=1)


class WaitRepository:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def register_wait(self, wait: JourneyWait) -> None:
        expires = parse_instant(wait.deadline) + WAIT_GRACE
        self._tables.waits(
            wait.lead_id,
            wait.wait_id,
            token=wait.token,
            match={
                "any": [m.model_dump(mode="json", exclude_none=True) for m in wait.matches],
                # Kept with the match (no new attribute on the table): whose decision it is.
                **({"journey_id": wait.journey_id} if wait.journey_id else {}),
                **({"node": wait.node} if wait.node else {}),
                **(
                    {"journey_version": wait.journey_version}
                    if wait.journey_version is not None
                    else {}
                ),
                # Which events may end it (JourneyWait.counts): route_events reads them back.
                **({"entered_at": wait.entered_at} if wait.entered_at else {}),
                **({"entered_by": wait.entered_by} if wait.entered_by else {}),
                **({"taken": sorted(wait.taken)} if wait.taken else {}),
            },
            deadline=wait.deadline,
            expires_at=int(expires.timestamp()),
        ).save()
        if wait.journey_id and wait.node:
            execution_name = wait.wait_id.partition(":")[0]  # names cannot hold a colon
            since = wait.registered_at or wait.deadline
            at = WaitingAt(
                wait.journey_id, wait.node, execution_name, wait.lead_id, since, wait.deadline
            )
            mark_waiting(self._tables, at)

    def waits_of(self, lead_id: str) -> list[JourneyWait]:
        waits = []
        for item in self._tables.waits.query(lead_id, consistent_read=True):
            match = _plain(item.match)
            waits.append(
                JourneyWait(
                    item.lead_id,
                    item.wait_id,
                    item.token,
                    _matches(match),
                    item.deadline,
                    match.get("journey_id"),
                    match.get("node"),
                    journey_version=_version(match.get("journey_version")),
                    entered_at=match.get("entered_at"),
                    entered_by=match.get("entered_by"),
                    taken=frozenset(str(t) for t in match.get("taken") or ()),
                )
            )
        return waits

    def end_wait(self, wait: JourneyWait) -> None:
        self._tables.waits(wait.lead_id, wait.wait_id).delete()
        if wait.journey_id and wait.node:
            stop_waiting(self._tables, wait.journey_id, wait.wait_id.partition(":")[0], wait.node)

    def end_waits_of(self, lead_id: str, execution_name: str) -> int:
        """Forget what an execution that left its journey was waiting for."""
        waits = self._tables.waits
        items = list(waits.query(lead_id, waits.wait_id.startswith(f"{execution_name}:")))
        for item in items:
            item.delete()
        return len(items)


def _version(value: Any) -> int | None:
    return int(value) if value is not None else None


def mark_waiting(tables: Tables, waiting: WaitingAt) -> None:
    """Record where the execution waits (replacing where it waited before)."""
    expires = parse_instant(waiting.until) + WAIT_GRACE
    tables.journeys(
        _waiting_pk(waiting.journey_id),
        waiting.execution_name,
        data={"lead_id": waiting.lead_id, "until": waiting.until},
        status="waiting",
        node=waiting.node,
        updated_at=waiting.since,
        expires_at=int(expires.timestamp()),
    ).save()


def stop_waiting(tables: Tables, journey_id: str, execution_name: str, node: str | None) -> None:
    """The execution no longer waits (at ``node``, when given: a later wait's record stays)."""
    model = tables.journeys
    item = model(_waiting_pk(journey_id), execution_name)
    try:
        item.delete(condition=None if node is None else model.node == node)
    except DeleteError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise


def waiting_by_node(tables: Tables, journey_id: str, now: datetime) -> dict[str, int]:
    """How many executions of the journey wait at each node now (one Query of its records;
    a record whose wait is over is not counted - the execution has moved on)."""
    counts: Counter[str] = Counter()
    model = tables.journeys
    for item in model.query(_waiting_pk(journey_id), attributes_to_get=["node", "data"]):
        if item.node and parse_instant(item.data["until"]) > now:
            counts[item.node] += 1
    return dict(counts)


def _matches(stored: dict[str, Any]) -> tuple[EventMatch, ...]:
    return tuple(EventMatch.model_validate(m) for m in stored["any"])


def _plain(attribute: Any) -> dict[str, Any]:
    """A raw MapAttribute as the dict it holds."""
    plain: dict[str, Any] = attribute.as_dict()
    return plain


class StepFunctionsResumer:
    """SendTaskSuccess; a token that is used, timed out or unknown is not an error here."""

    GONE = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})

    def __init__(self, settings: Settings) -> None:
        import boto3  # only the functions that resume executions need the client

        self._client: Any = boto3.client(
            "stepfunctions", region_name=settings.region, endpoint_url=settings.aws_endpoint_url
        )

    def resume(self, token: str, output: Mapping[str, Any]) -> bool:
        try:
            self._client.send_task_success(taskToken=token, output=json.dumps(output))
        except Exception as error:  # botocore's ClientError, without importing botocore here
            code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
            if code in self.GONE:
                return False
            raise
        return True


# ---------------------------------------------------------------- journeys and their leads
def _definition_key(journey_id: str) -> tuple[str, str]:
    return f"journey#{journey_id}", "definition"


ACCOUNT_CONTROL = ("account", "control")
_PUBLISHING = "publishing"


def _entry_key(lead_id: str, journey_id: str) -> tuple[str, str]:
    return f"lead#{lead_id}", f"entry#{journey_id}"


def _ledger_key(lead_id: str) -> tuple[str, str]:
    return f"lead#{lead_id}", "sends"


def _waiting_pk(journey_id: str) -> str:
    return f"waiting#{journey_id}"


def _start_pk(journey_id: str) -> str:
    return f"start#{journey_id}"


def _parked_pk(journey_id: str) -> str:
    return f"parked#{journey_id}"


def _graph(journey_id: str, item: Any) -> StoredGraph:
    return StoredGraph(
        journey_id=journey_id,
        which=item.sk.removeprefix("graph#"),
        definition=item.data["definition"],
        by=item.data.get("by"),
        updated_at=item.updated_at,
        revision=int(item.revision or 0),
        draft_revision=item.data.get("draft_revision"),
    )


class JourneyRepository:
    """Journey definitions, the emergency stop, entries and parked executions (one table)."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    # -- definitions
    def put_journey(self, journey: Journey, at: str) -> Journey:
        """Store the record over the one it was read from: only if the stored revision is still
        ``journey.revision`` (a record of revision 0 - new, or stored before records counted -
        only over none or such a one); else ConcurrentUpdate, and nothing written."""
        stored = journey.model_copy(update={"updated_at": at, "revision": journey.revision + 1})
        pk, sk = _definition_key(journey.journey_id)
        model = self._tables.journeys
        item = model(
            pk,
            sk,
            data=stored.model_dump(mode="json"),
            status=stored.status,
            updated_at=at,
            revision=stored.revision,
        )
        read = _as_read(model, journey.revision)
        try:
            item.save(condition=read)
        except PutError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            raise ConcurrentUpdate(
                f"journey {journey.journey_id!r} changed meanwhile (paused, resumed, published or "
                "saved by someone else): read it again and repeat the change"
            ) from None
        return stored

    def get_journey(self, journey_id: str) -> Journey | None:
        item = get_or_none(self._tables.journeys, *_definition_key(journey_id))
        return Journey.model_validate(item.data) if item else None

    def journeys(self) -> list[Journey]:
        model = self._tables.journeys
        # Consistent: lifting the emergency stop must see a journey a resume made active a
        # moment before (steps.resume_journey and resume_all: each writes, then reads).
        items = model.scan(model.sk == "definition", consistent_read=True)
        return sorted(
            (Journey.model_validate(item.data) for item in items), key=lambda j: j.journey_id
        )

    # -- journey graphs (tsunagu.journeys.definition): the draft people edit, each version
    # published from one, and the shipped one
    def save_graph(self, graph: StoredGraph) -> None:
        data: dict[str, Any] = {"definition": graph.definition, "by": graph.by}
        if graph.draft_revision is not None:
            data["draft_revision"] = graph.draft_revision
        self._tables.journeys(
            f"journey#{graph.journey_id}",
            f"graph#{graph.which}",
            data=data,
            status=graph.which,
            updated_at=graph.updated_at,
        ).save()

    def save_draft(self, graph: StoredGraph, read: int | None) -> StoredGraph:
        """Store the draft over revision ``read`` of it (0: over none; None: over whichever is
        there); ConcurrentUpdate, and nothing written, if someone saved it since."""
        if read is None:
            now = self.graph(graph.journey_id, "draft")
            read = now.revision if now is not None else 0
        stored = replace(graph, which="draft", revision=read + 1)
        model = self._tables.journeys
        item = model(
            f"journey#{graph.journey_id}",
            "graph#draft",
            data={"definition": graph.definition, "by": graph.by},
            status="draft",
            updated_at=graph.updated_at,
            revision=stored.revision,
        )
        try:
            item.save(condition=_as_read(model, read))
        except PutError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            raise ConcurrentUpdate(
                f"the draft of journey {graph.journey_id!r} was changed by someone else after it"
                " was opened: reload it (your save was not kept)"
            ) from None
        return stored

    # -- the publishing lease (tsunagu.journeys.publishing): one publication or rollback of a
    # journey at a time
    def claim_publishing(
        self, journey_id: str, holder: str, at: datetime, stale_before: datetime
    ) -> bool:
        """Take the journey's publishing lease for ``holder``: False when another holder took
        it at or after ``stale_before`` and has not let it go."""
        model = self._tables.journeys
        lease = model(
            f"journey#{journey_id}",
            _PUBLISHING,
            data={"holder": holder},
            status=_PUBLISHING,
            updated_at=isoformat(at),
            token=holder,
            # A lease its holder never let go (it died) is gone by itself a day later
            expires_at=int((at + timedelta(days=1)).timestamp()),
        )
        free = model.pk.does_not_exist() | (model.updated_at < isoformat(stale_before))
        try:
            lease.save(condition=free)
        except PutError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def release_publishing(self, journey_id: str, holder: str) -> None:
        """Let go of the lease (nothing if another holder has taken it since: it had expired)."""
        model = self._tables.journeys
        lease = model(f"journey#{journey_id}", _PUBLISHING)
        try:
            lease.delete(condition=model.token == holder)
        except DeleteError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise

    def graph(self, journey_id: str, which: str) -> StoredGraph | None:
        item = get_or_none(self._tables.journeys, f"journey#{journey_id}", f"graph#{which}")
        return None if item is None else _graph(journey_id, item)

    def draft_graphs(self) -> list[StoredGraph]:
        """Every journey's draft, a journey saved only as a draft too (a Scan: tens of them)."""
        model = self._tables.journeys
        items = model.scan(model.sk == "graph#draft")
        return [_graph(item.pk.removeprefix("journey#"), item) for item in items]

    def published_graph(self, journey_id: str) -> StoredGraph | None:
        """The graph of the latest version published from one (``graph#v<version>``)."""
        model = self._tables.journeys
        items = model.query(
            f"journey#{journey_id}",
            model.sk.startswith("graph#v"),
            scan_index_forward=False,
            limit=1,
            consistent_read=True,
        )
        return next((_graph(journey_id, item) for item in items), None)

    # -- the account-wide emergency stop
    def account_paused(self) -> bool:
        return self.account_stopped_at() is not None

    def account_stopped_at(self) -> str | None:
        item = get_or_none(self._tables.journeys, *ACCOUNT_CONTROL)
        return _stop_of(item) if item is not None and item.status == "paused" else None

    def last_stop(self) -> str | None:
        item = get_or_none(self._tables.journeys, *ACCOUNT_CONTROL)
        return None if item is None else _stop_of(item)

    def set_account_paused(self, paused: bool, at: str, by: str) -> None:
        """Stop (a stop in force is left as it is: when it began names it, and the choices
        made under it) or lift (the lifted stop's start is kept: a lift cut short and asked
        again releases by the same choices)."""
        model = self._tables.journeys
        if paused:
            item = model(
                *ACCOUNT_CONTROL, data={"by": by, "stop": at}, status="paused", updated_at=at
            )
            try:
                item.save(condition=model.pk.does_not_exist() | (model.status != "paused"))
            except PutError as error:
                if error.cause_response_code != "ConditionalCheckFailedException":
                    raise
            return
        lifted = self.last_stop()
        data = {"by": by} | ({"stop": lifted} if lifted else {})
        model(*ACCOUNT_CONTROL, data=data, status="active", updated_at=at).save()

    # -- what the gate reads: one BatchGetItem over three tables
    def gate_view(self, journey_id: str, lead_id: str) -> GateView:
        """The consent read is the journey's own topic's (its record says which), with
        marketing's and all's: a journey on another topic costs one more read."""
        settings = self._tables.settings
        journey_keys = [
            _definition_key(journey_id),
            ACCOUNT_CONTROL,
            _entry_key(lead_id, journey_id),
            _ledger_key(lead_id),
        ]
        records = ["suppression", "topic#all", "topic#marketing"]
        request: dict[str, Any] = {
            settings.journeys_table: {
                "Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in journey_keys],
                "ConsistentRead": True,
            },
            settings.leads_table: {"Keys": [{"lead_id": {"S": lead_id}}], "ConsistentRead": True},
            settings.consent_table: {
                "Keys": [{"lead_id": {"S": lead_id}, "record": {"S": r}} for r in records],
                "ConsistentRead": True,
            },
        }
        responses = batch_get(self._tables, request)
        journey = None
        paused = False
        entry = None
        ledger = SendLedger()
        for raw in responses.get(settings.journeys_table, []):
            item = self._tables.journeys.from_raw_data(raw)
            if item.sk == "definition":
                journey = Journey.model_validate(item.data)
            elif item.pk == "account":
                paused = item.status == "paused"
            elif item.sk == "sends":
                # "" in passes: a booking that names no pass (as in a ledger written before)
                passes = tuple(by or None for by in item.data.get("passes", []))
                ledger = SendLedger(tuple(item.data.get("times", [])), item.updated_at, passes)
            else:
                exited = item.status == "exited"
                entry = EntryState("exited" if exited else "active", item.data.get("exit_reason"))
        consent = responses.get(settings.consent_table, [])
        if journey is not None and f"topic#{journey.topic}" not in records:
            own = get_or_none(self._tables.consent, lead_id, f"topic#{journey.topic}")
            consent = [*consent, *([own.serialize()] if own is not None else [])]
        recipient = recipient_from(self._tables, responses.get(settings.leads_table, []), consent)
        return GateView(journey, paused, entry, recipient, ledger)

    def reserve_send(self, lead_id: str, ledger: SendLedger, booked: SendLedger) -> bool:
        model = self._tables.journeys
        condition = (
            model.pk.does_not_exist()
            if ledger.version is None
            else (model.updated_at == ledger.version)
        )
        times = list(booked.times)
        # The ledger's version: when it was written, made unique (two gates in one millisecond).
        version = f"{max(times, default='')}#{secrets.token_hex(4)}"
        # Each time's pass beside it ("": none), so a reader that knows only times reads it
        passes = [by or "" for _, by in booked.bookings()]
        data = {"times": times, "passes": passes}
        try:
            model(*_ledger_key(lead_id), data=data, updated_at=version).save(condition=condition)
        except PutError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # -- starts for a segment in the background (tsunagu.journeys.start_jobs)
    def start_job(self, journey_id: str, start_id: str) -> StartJob | None:
        item = get_or_none(self._tables.journeys, _start_pk(journey_id), start_id)
        return StartJob.from_record(item.data, int(item.revision or 0)) if item else None

    def start_jobs(
        self, journey_id: str, before: str | None, limit: int
    ) -> tuple[list[StartJob], bool]:
        """The journey's starts, newest first (their ids sort by when they were asked), those
        before ``before`` when given; and whether there are more."""
        model = self._tables.journeys
        condition = None if before is None else model.sk < before
        items = model.query(
            _start_pk(journey_id),
            condition,
            scan_index_forward=False,
            limit=limit + 1,
        )
        found = [StartJob.from_record(item.data, int(item.revision or 0)) for item in items]
        return found[:limit], len(found) > limit

    def save_start_job(self, job: StartJob) -> StartJob:
        """Store the job over revision ``job.revision`` of it (0: a new one); ConcurrentUpdate,
        and nothing written, if another run of it stored it since. It expires (the table's TTL)
        at ``kept_until``; reads get it back until DynamoDB deletes it, and the commands
        (tsunagu.commands.journeys) treat it as gone from then."""
        stored = replace(job, revision=job.revision + 1)
        model = self._tables.journeys
        item = model(
            _start_pk(job.journey_id),
            job.start_id,
            data=stored.record(),
            status=job.status,
            updated_at=job.updated_at,
            revision=stored.revision,
            # Moved on by every write: a running job never expires mid-run (StartJob.kept_until)
            expires_at=int(stored.kept_until.timestamp()),
        )
        try:
            item.save(condition=_as_read(model, job.revision))
        except PutError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            raise ConcurrentUpdate(
                f"start {job.start_id!r} of journey {job.journey_id!r} was stored by another run"
            ) from None
        return stored

    # -- entries
    def entry(self, lead_id: str, journey_id: str) -> JourneyEntry | None:
        item = get_or_none(self._tables.journeys, *_entry_key(lead_id, journey_id))
        return _entry_from(item) if item else None

    def entries_of(self, lead_id: str) -> list[JourneyEntry]:
        model = self._tables.journeys
        items = model.query(f"lead#{lead_id}", model.sk.startswith("entry#"), consistent_read=True)
        return [_entry_from(item) for item in items]

    def claim_entry(self, entry: JourneyEntry, previous: JourneyEntry | None) -> bool:
        """Write the entry if nobody changed it since ``previous`` was read; False if somebody did
        (a concurrent trigger for the same lead: that one enters, this one does not)."""
        model = self._tables.journeys
        pk, sk = _entry_key(entry.lead_id, entry.journey_id)
        condition = (
            model.pk.does_not_exist()
            if previous is None
            else (model.updated_at == previous.updated_at)
        )
        try:
            model(
                pk, sk, data=_entry_data(entry), status=entry.status, updated_at=entry.updated_at
            ).save(condition=condition)
        except PutError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_entry(self, entry: JourneyEntry, previous: JourneyEntry | None) -> None:
        """Put back what claiming ``entry`` replaced (``previous``; None: no entry), while the
        claim is still there: its execution never started, and a claim left behind would keep
        the lead out of the journey for good (re-entry ``never``)."""
        model = self._tables.journeys
        pk, sk = _entry_key(entry.lead_id, entry.journey_id)
        # Claims are conditional on updated_at too: another claim since has written its own
        still_claimed = model.updated_at == entry.updated_at
        try:
            if previous is None:
                model(pk, sk).delete(condition=still_claimed)
            else:
                model(
                    pk,
                    sk,
                    data=_entry_data(previous),
                    status=previous.status,
                    updated_at=previous.updated_at,
                ).save(condition=still_claimed)
        except (PutError, DeleteError) as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise

    def exit_entry(self, entry: JourneyEntry, reason: str, at: str) -> None:
        model = self._tables.journeys
        pk, sk = _entry_key(entry.lead_id, entry.journey_id)
        left = with_exit(entry, reason, at)
        model(pk, sk, data=_entry_data(left), status="exited", updated_at=at).save()
        stop_waiting(self._tables, entry.journey_id, entry.execution_name, None)

    # -- where executions wait
    def mark_waiting(self, waiting: WaitingAt) -> None:
        mark_waiting(self._tables, waiting)

    def waiting_by_node(self, journey_id: str, now: datetime) -> dict[str, int]:
        return waiting_by_node(self._tables, journey_id, now)

    # -- parked executions
    def park(self, parked: ParkedExecution) -> None:
        self._tables.journeys(
            _parked_pk(parked.journey_id),
            parked.execution_name,
            data={"lead_id": parked.lead_id, "step": parked.step, "deadline": parked.deadline},
            status="parked",
            updated_at=parked.parked_at,
            token=parked.token,
        ).save()

    def parked(self, journey_id: str) -> list[ParkedExecution]:
        items = self._tables.journeys.query(_parked_pk(journey_id), consistent_read=True)
        parked = [
            ParkedExecution(
                journey_id,
                item.sk,
                item.data["lead_id"],
                item.data["step"],
                item.token or item.data["token"],
                item.updated_at,
                item.data.get("deadline"),
            )
            for item in items
        ]
        return sorted(parked, key=lambda p: (p.parked_at, p.execution_name))

    def unpark(self, parked: ParkedExecution) -> None:
        """Remove this park, and only this one: the execution, once released, may have parked
        again at a later gate under the same name (a journey paused again) - a releaser working
        from an older list must not take that record away, or resume would never release it."""
        model = self._tables.journeys
        # A record parked before the token had its own attribute can only be this park: any
        # later one is written with it.
        this_park = (model.token == parked.token) | model.token.does_not_exist()
        try:
            model(_parked_pk(parked.journey_id), parked.execution_name).delete(condition=this_park)
        except DeleteError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise

    def put_event(self, event: LeadEvent) -> None:
        event_to_item(self._tables, event).save()


def _as_read(model: Any, revision: int) -> Any:
    """The condition that the record is still at ``revision`` (0: none, or one stored before
    records counted their revisions)."""
    return model.revision.does_not_exist() if revision == 0 else model.revision == revision


def _stop_of(control: Any) -> str | None:
    """When the last stop began (a record written before it was kept: its time, if paused)."""
    stop = dict(control.data or {}).get("stop")
    if stop:
        return str(stop)
    return str(control.updated_at) if control.status == "paused" else None


def _entry_data(entry: JourneyEntry) -> dict[str, Any]:
    return {k: v for k, v in entry.__dict__.items() if k not in ("lead_id", "journey_id")}


def _entry_from(item: Any) -> JourneyEntry:
    data = dict(item.data)
    return JourneyEntry(
        lead_id=item.pk.removeprefix("lead#"),
        journey_id=item.sk.removeprefix("entry#"),
        execution_name=data["execution_name"],
        execution_arn=data["execution_arn"],
        entered_at=data["entered_at"],
        trigger=data.get("trigger", "manual"),
        trigger_event_id=data.get("trigger_event_id"),
        entries=int(data.get("entries", 1)),
        status=item.status or "active",
        exit_reason=data.get("exit_reason"),
        updated_at=item.updated_at,
    )


THROTTLED = frozenset({"ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"})
"""Error codes by which an AWS API says: slow down."""


class StepFunctionsExecutions(StepFunctionsResumer):
    """Starting, stopping and releasing journey executions."""

    def start(
        self, state_machine_arn: str, name: str, payload: Mapping[str, Any]
    ) -> StartedExecution:
        """Start once: the same name again (a redelivered event) is not a second execution,
        and says so (``existed``)."""
        arn = execution_arn(state_machine_arn, name)
        try:
            response = self._client.start_execution(
                stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload)
            )
        except Exception as error:  # botocore's ClientError, without importing botocore here
            code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
            if code == "ExecutionAlreadyExists":
                return StartedExecution(arn, existed=True)
            if code in THROTTLED:
                raise Throttled(f"Step Functions: {error}") from error
            raise
        return StartedExecution(str(response["executionArn"]), existed=False)

    def stop(self, execution_arn: str, cause: str) -> None:
        try:
            self._client.stop_execution(
                executionArn=execution_arn, error="Tsunagu.LeftJourney", cause=cause
            )
        except Exception as error:
            code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
            if code not in ("ExecutionDoesNotExist", "InvalidArn"):
                raise

    def release(self, token: str, output: Mapping[str, Any]) -> bool:
        return self.resume(token, output)

    def running_count(self, state_machine_arn: str) -> RunningCount:
        """One ListExecutions request: exact up to RUNNING_COUNTED, "at least" past it."""
        page = self._client.list_executions(
            stateMachineArn=state_machine_arn, statusFilter="RUNNING", maxResults=RUNNING_COUNTED
        )
        return RunningCount(len(page["executions"]), at_least=bool(page.get("nextToken")))

    def exists(self, execution_arn: str) -> bool:
        try:
            self._client.describe_execution(executionArn=execution_arn)
        except Exception as error:
            code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
            if code == "ExecutionDoesNotExist":
                return False
            raise
        return True

    def is_running(self, execution_arn: str) -> bool:
        try:
            described = self._client.describe_execution(executionArn=execution_arn)
        except Exception as error:
            code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
            if code == "ExecutionDoesNotExist":
                return False
            raise
        return bool(described["status"] == "RUNNING")
