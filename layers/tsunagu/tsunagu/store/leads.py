"""Leads, their identities, events and consent in DynamoDB."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from tsunagu.clock import isoformat, parse_instant
from tsunagu.forms.stored import StoredForm
from tsunagu.leads.capture import (
    MAX_TRANSACTION_ITEMS,
    CaptureWrite,
    RememberedSubmission,
    WriteConflict,
)
from tsunagu.leads.history import AnonymousEvent, VisitorLink
from tsunagu.leads.model import ConsentEvidence, Lead, LeadEvent, visitor_identity
from tsunagu.mail.consent import (
    ALL_TOPICS,
    WITHDRAWN,
    ConsentRecords,
    TopicConsent,
    TopicRecord,
)
from tsunagu.store.converters import (
    SUPPRESSION,
    add_unsubscribe_lifted,
    as_read,
    check_planned_on,
    consent_from_item,
    consent_values,
    event_from_item,
    event_to_item,
    event_values,
    lead_from_item,
    lead_to_item,
    lead_values,
    topic_record_from_item,
)
from tsunagu.store.stored_forms import read_stored_form
from tsunagu.store.tables import BATCH_GET, Tables, batch_get, get_or_none, lead_items
from tsunagu.store.transactions import Transaction, item_bytes, put_kwargs

if TYPE_CHECKING:
    from tsunagu.leads.search import LeadPage, LeadQuery
    from tsunagu.store.models import LeadItem


SCAN_PAGE_LEADS = 500
"""Leads a Scan page holds at most (about 1 MB, DynamoDB's own page, at 50,000 leads' 89 MB):
what a background start keeps of a page it was cut short in stays a few kilobytes."""


class LeadRepository:
    """The DynamoDB side of lead capture and lead look-ups."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def get_form(self, form_id: str) -> StoredForm | None:
        return read_stored_form(self._tables, form_id)

    def find_lead(self, identity: str) -> Lead | None:
        pointer = get_or_none(self._tables.identities, identity)
        if pointer is None:
            return None
        return self.get_lead(pointer.lead_id)

    def find_leads(self, identities: Sequence[str]) -> dict[str, Lead]:
        """The leads of many identities (a list's addresses), read 100 at a time: a
        BatchGetItem of the identities, then one of their leads. Identities with no lead are
        left out."""
        t = self._tables
        identities_table = t.settings.lead_identities_table
        wanted = list(dict.fromkeys(identities))
        lead_of: dict[str, str] = {}
        for start in range(0, len(wanted), BATCH_GET):
            keys = [{"identity": {"S": i}} for i in wanted[start : start + BATCH_GET]]
            found = batch_get(t, {identities_table: {"Keys": keys, "ConsistentRead": True}})
            lead_of |= {
                i["identity"]["S"]: i["lead_id"]["S"] for i in found.get(identities_table, [])
            }
        ids = list(dict.fromkeys(lead_of.values()))
        leads = {lead.lead_id: lead for lead in self.leads_by_id(ids)}
        return {i: leads[lead_id] for i, lead_id in lead_of.items() if lead_id in leads}

    def opted_out(self, lead_ids: Sequence[str], topic: str) -> set[str]:
        """The leads of these ids that opted out of ``topic`` or of all mail, or are
        suppressed (topic_consent)."""
        said = self.topic_consent(lead_ids, topic)
        return {lead_id for lead_id, now in said.items() if now.refuses_opt_in}

    def topic_consent(self, lead_ids: Sequence[str], topic: str) -> dict[str, TopicConsent]:
        """What the leads of these ids have said about ``topic``: their topic, ``topic#all``
        and suppression records, read strongly consistent, 33 leads to a BatchGetItem. A lead
        with none of them is left out (it has said nothing)."""
        table = self._tables.settings.consent_table
        records = (f"topic#{topic}", f"topic#{ALL_TOPICS}", SUPPRESSION)
        wanted = list(dict.fromkeys(lead_ids))
        found_of: dict[str, dict[str, str]] = {}
        per_batch = BATCH_GET // len(records)
        for start in range(0, len(wanted), per_batch):
            keys = [
                {"lead_id": {"S": lead_id}, "record": {"S": record}}
                for lead_id in wanted[start : start + per_batch]
                for record in records
            ]
            found = batch_get(self._tables, {table: {"Keys": keys, "ConsistentRead": True}})
            for item in found.get(table, []):
                status = item["status"]["S"] if "status" in item else ""
                found_of.setdefault(item["lead_id"]["S"], {})[item["record"]["S"]] = status
        return {
            lead_id: TopicConsent(
                status=said.get(f"topic#{topic}") or None,
                refuses_opt_in=SUPPRESSION in said
                or "opted_out" in (said.get(f"topic#{topic}"), said.get(f"topic#{ALL_TOPICS}")),
            )
            for lead_id, said in found_of.items()
        }

    def lead_item_bytes(self, lead: Lead) -> int:
        """What the lead's item comes to as a save writes it (search attributes and all),
        against DynamoDB's (tsunagu.leads.capture.ITEM_BYTES)."""
        return item_bytes(put_kwargs(self._tables.leads, lead_values(lead))["Item"])

    def leads_by_id(self, lead_ids: Sequence[str]) -> list[Lead]:
        """The leads of these ids in that order, read strongly consistent, 100 at a time; an
        id with no lead is left out."""
        t = self._tables
        return [lead_from_item(t.leads.from_raw_data(raw)) for raw in lead_items(t, lead_ids)]

    def get_lead(self, lead_id: str) -> Lead | None:
        item = get_or_none(self._tables.leads, lead_id)
        return None if item is None else lead_from_item(item)

    def search(self, query: LeadQuery) -> LeadPage:
        """A page of leads, highest score first, from the search indexes (lead_search)."""
        from tsunagu.store.lead_search import search_page  # off capture_form's cold start

        return search_page(self._tables, query)

    def reindex(self, grading: Callable[[Lead], str] | None = None) -> int:
        """Write every lead's search attributes where they are missing or no longer what the
        lead holds (leads saved before the indexes existed have none, and no search finds
        them; a score written before the scoring kept the rank sorted where the old score put
        it), and with ``grading`` its grade (after the grading rules changed): one scan, then
        one conditional update each, only if the lead did not change meanwhile (then read again
        and tried once more: a score written meanwhile sets the rank, not the rest); the leads
        table's stream then brings their lead terms up to date. Returns how many leads were
        written."""
        from tsunagu.store.search_attributes import search_attributes  # off the cold start

        def mended(item: LeadItem) -> bool | None:
            """Whether it was written; None if it changed since it was read."""
            lead = lead_from_item(item)
            attributes = search_attributes(lead)
            if grading is not None:
                attributes["grade"] = grading(lead)
            if all(getattr(item, name) == value for name, value in attributes.items()):
                return False
            return True if set_if_unchanged(self._tables, item, attributes) else None

        written = 0
        for item in self._tables.leads.scan():
            done = mended(item)
            if done is None:
                again = get_or_none(self._tables.leads, item.lead_id)
                done = mended(again) if again is not None else False  # or deleted meanwhile
            written += bool(done)
        return written

    def visitor_link(self, visitor_id: str) -> VisitorLink | None:
        pointer = get_or_none(self._tables.identities, visitor_identity(visitor_id))
        return None if pointer is None else VisitorLink(pointer.lead_id, pointer.created_at)

    def anonymous_events(self, visitor_id: str, since: str, limit: int) -> list[AnonymousEvent]:
        """The newest ``limit`` events under the visitor at ``since`` or later, oldest first,
        with their claims (one BatchGetItem: ``limit`` is at most a hundred)."""
        t = self._tables
        items = t.events.query(
            f"visitor#{visitor_id}",
            t.events.sk >= since,
            scan_index_forward=False,
            limit=limit,
            consistent_read=True,
        )
        events = [event_from_item(item) for item in items][::-1]
        if not events:
            return []
        table = t.settings.idempotency_table
        keys = [{"key": {"S": history_claim_key(event)}} for event in events]
        found = batch_get(t, {table: {"Keys": keys, "ConsistentRead": True}})
        claimed = {item["key"]["S"]: item["request_hash"]["S"] for item in found.get(table, [])}
        return [AnonymousEvent(e, claimed.get(history_claim_key(e))) for e in events]

    def get_submission(self, key: str) -> RememberedSubmission | None:
        item = get_or_none(self._tables.idempotency, key)
        if item is None:
            return None
        return RememberedSubmission(item.request_hash, dict(item.response))

    def commit_capture(self, write: CaptureWrite) -> None:
        t = self._tables
        # What each item is, in the order of the cancellation reasons DynamoDB reports: PynamoDB
        # sends condition checks, then deletes, then puts, then updates.
        kinds: list[str] = []
        deleted: list[str] = []
        checked: list[str] = []
        counters = t.submission_counters
        with_conditions = Transaction(connection=t.connection)
        try:
            with with_conditions as tx:
                add_capture(t, tx, write, kinds, deleted, checked)
                for window in write.counted:
                    tx.update(
                        counters(window.key),
                        actions=[counters.hits.add(1), counters.expires_at.set(window.expires_at)],
                        condition=counters.hits.does_not_exist() | (counters.hits < window.limit),
                    )
        except TransactWriteError as error:
            reasons = list(error.cancellation_reasons)
            # Updates come last; a replay (submission) wins over a full counter.
            for kind, reason in zip(checked + deleted + kinds, reasons, strict=False):
                failed = reason is not None and reason.code == "ConditionalCheckFailed"
                if failed and kind in ("submission", "identity", "lead", "history"):
                    raise WriteConflict(kind) from error  # type: ignore[arg-type]
                if failed and kind == "consent":
                    # A topic record the consent was planned on changed since it was read (a
                    # "no" given meanwhile: write.planned_on; the unsubscribe from all mail it
                    # ends, or a topic it keeps out: write.lifted): read again, decide again
                    raise WriteConflict("lead") from error
            written = len(checked) + len(deleted) + len(kinds)
            for window, reason in zip(write.counted, reasons[written:], strict=False):
                if reason is not None and reason.code == "ConditionalCheckFailed":
                    raise WriteConflict("rate", window) from error
            codes = {r.code for r in error.cancellation_reasons if r is not None}
            if "TransactionConflict" in codes:
                # Another transaction on the same items was in flight: read again and retry.
                raise WriteConflict("lead") from error
            raise

    def save_changes(self, lead: Lead, events: list[LeadEvent]) -> None:
        """The changed lead (on its version) and the events saying what changed, together."""
        try:
            with TransactWrite(connection=self._tables.connection) as tx:
                tx.save(lead_to_item(self._tables, lead))
                for event in events:
                    tx.save(event_to_item(self._tables, event))
        except TransactWriteError as error:
            if changed_underneath(error):
                raise WriteConflict("lead") from error
            raise

    def remove_lead(
        self, lead: Lead, identities: list[str], untouched: Callable[[list[LeadEvent]], bool]
    ) -> bool:
        """Remove the lead as read (its version: WriteConflict if it changed since), its
        identities, events, consent records and score, all at once - if ``untouched`` says its
        events (read consistently) allow it, and they fit one transaction; False otherwise,
        and nothing is removed (an import undone: a lead nothing else has touched has a
        handful of items)."""
        t = self._tables
        events = list(t.events.query(f"lead#{lead.lead_id}", consistent_read=True))
        if not untouched([event_from_item(item) for item in events]):
            return False
        consent = list(t.consent.query(lead.lead_id, consistent_read=True))
        scored = list(t.qualification.query(f"lead#{lead.lead_id}", consistent_read=True))
        items = [*events, *consent, *scored]
        if 1 + len(identities) + len(items) > MAX_TRANSACTION_ITEMS:
            return False
        try:
            with TransactWrite(connection=t.connection) as tx:
                tx.delete(lead_to_item(t, lead))  # the version makes it conditional
                for identity in identities:
                    tx.delete(t.identities(identity))
                for item in items:
                    tx.delete(item)
        except TransactWriteError as error:
            if changed_underneath(error):
                raise WriteConflict("lead") from error
            raise
        return True

    def all_leads(self) -> Iterator[Lead]:
        """Every lead, streamed from a Scan a page at a time (50,000 leads are about 89 MB as
        objects: never held at once). Not for request paths."""
        for page, _ in self.lead_pages():
            yield from page

    def lead_pages(
        self, after: dict[str, Any] | None = None
    ) -> Iterator[tuple[list[Lead], dict[str, Any] | None]]:
        """Every lead, one Scan page (up to 1 MB) at a time, each page with the Scan's key to
        go on from after it (None after the last page); ``after``: such a key."""
        model = self._tables.leads
        pages = model.scan(last_evaluated_key=after, page_size=SCAN_PAGE_LEADS).page_iter
        for page in pages:
            leads = [lead_from_item(model.from_raw_data(raw)) for raw in page.get("Items", [])]
            yield leads, pages.last_evaluated_key

    def put_event(self, event: LeadEvent) -> None:
        event_to_item(self._tables, event).save()

    def events(self, lead_id: str, limit: int = 100) -> list[LeadEvent]:
        items = self._tables.events.query(f"lead#{lead_id}", scan_index_forward=False, limit=limit)
        return [event_from_item(item) for item in items]

    def events_since(
        self, lead_id: str, since: datetime, types: Collection[str], also: str | None = None
    ) -> list[LeadEvent]:
        """The lead's events of these ``types`` (and the event ``also``, whatever its type)
        that happened at ``since`` or later, oldest first: every page, read consistently (an
        event written a moment ago is there)."""
        events = self._tables.events
        wanted = events.type.is_in(*sorted(types))
        if also is not None:
            wanted = wanted | (events.event_id == also)
        items = events.query(
            f"lead#{lead_id}",
            events.sk >= isoformat(since),
            filter_condition=wanted,
            consistent_read=True,
        )
        return [event_from_item(item) for item in items]

    def events_at(self, lead_id: str, at: str, types: Collection[str]) -> list[LeadEvent]:
        """The lead's events of these ``types`` that happened at the instant ``at`` (an
        ``occurred_at``, as stored), read consistently: only the sort keys that begin with it
        are read, so a lead with years of events costs the few it had at that instant."""
        events = self._tables.events
        items = events.query(
            f"lead#{lead_id}",
            events.sk.startswith(f"{at}#"),
            filter_condition=events.type.is_in(*sorted(types)),
            consistent_read=True,
        )
        return [event_from_item(item) for item in items]

    def timeline(self, lead: Lead, limit: int = 500, before: str | None = None) -> list[LeadEvent]:
        """The lead's newest ``limit`` events in time order (those before ``before``, an event's
        ``storage_key``, when given), what its browser did before the form included: claimed
        for the lead when the form linked it (tsunagu.leads.history), so the timeline shows what
        scoring and segments read. The visitor's own events are not joined: a shared browser's
        earlier history is the first person's, not every later one's."""
        events_table = self._tables.events
        earlier = events_table.sk < before if before is not None else None
        items = events_table.query(
            f"lead#{lead.lead_id}", earlier, scan_index_forward=False, limit=limit
        )
        return [event_from_item(item) for item in items][::-1]

    def consent_evidence(self, lead_id: str) -> list[ConsentEvidence]:
        items = self._tables.consent.query(
            lead_id, self._tables.consent.record.startswith("evidence#")
        )
        return [consent_from_item(item) for item in items]

    def consent_records(self, lead_id: str) -> ConsentRecords:
        """The lead's consent ledger, oldest first, and what each topic's state rests on: its
        whole consent partition in one Query, read strongly consistent."""
        evidence, rests_on = [], {}
        for item in self._tables.consent.query(lead_id, consistent_read=True):
            if item.record.startswith("evidence#"):
                evidence.append(consent_from_item(item))
            elif item.record.startswith("topic#") and item.evidence:
                rests_on[item.topic] = item.evidence
        return ConsentRecords(evidence, rests_on)

    def replace_consent(self, evidence: ConsentEvidence, rests_on: str, event: LeadEvent) -> None:
        """Record ``evidence`` (its method with it) as what its topic's state now is, with the
        event saying so - if that state still rests on the evidence ``rests_on`` (WriteConflict
        when something answered meanwhile: a form, the preference page). Evidence WITHDRAWN
        leaves the topic with no state record, as one that was never answered. Nothing is
        deleted from the ledger."""
        t = self._tables
        proof, state = consent_values(evidence)
        still = t.consent.evidence == rests_on
        try:
            with Transaction(connection=t.connection) as tx:
                tx.put(t.consent, proof, condition=t.consent.record.does_not_exist())
                if evidence.status == WITHDRAWN:
                    tx.delete(t.consent(evidence.lead_id, state["record"]), condition=still)
                else:
                    tx.put(t.consent, state, condition=still)
                tx.put(t.events, event_values(t, event))
        except TransactWriteError as error:
            if changed_underneath(error):
                raise WriteConflict("lead") from error
            raise

    def topic_records(self, lead_id: str) -> dict[str, TopicRecord]:
        """Each topic's state record, read strongly consistent (what an opt-in ending an
        unsubscribe from all mail is planned on: tsunagu.mail.consent.lift_unsubscribe_from_all)."""
        consent = self._tables.consent
        items = consent.query(lead_id, consent.record.startswith("topic#"), consistent_read=True)
        return {item.topic: topic_record_from_item(item) for item in items}

    def consent_state(self, lead_id: str) -> dict[str, str]:
        items = self._tables.consent.query(
            lead_id, self._tables.consent.record.startswith("topic#")
        )
        return {item.topic: item.status for item in items}

    def record_activity(self, lead_id: str, event_type: str, occurred_at: str) -> bool:
        """Move the lead's last-activity mark forward; an older or repeated event changes nothing,
        so a redelivered stream batch is harmless. Returns whether the lead changed."""
        leads = self._tables.leads
        condition = leads.lead_id.exists() & (
            leads.last_activity_at.does_not_exist() | (leads.last_activity_at < occurred_at)
        )
        # The version moves too: a capture that read the lead before this update must re-read
        # it rather than write the old activity mark back. Model.update() would also demand the
        # version we never read, so this goes through the model's table connection (which knows
        # the key schema without a DescribeTable call).
        try:
            leads._get_connection().update_item(
                lead_id,
                actions=[
                    leads.last_activity_at.set(occurred_at),
                    leads.last_activity_type.set(event_type),
                    leads.version.add(1),
                ],
                condition=condition,
            )
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True


def _expiry(at: str, hours: int) -> int:
    return int((parse_instant(at) + timedelta(hours=hours)).timestamp())


def set_if_unchanged(tables: Tables, item: LeadItem, values: Mapping[str, Any]) -> bool:
    """Set attributes the lead derives from itself (search attributes, grade) on the lead as
    ``item`` read it: nothing if the lead was deleted or changed since (its own stream record
    comes next). Returns whether it was written. Not a save: the version stays, so a save
    from the same read is not refused for it."""
    leads = tables.leads
    version = leads.version
    unchanged = version.does_not_exist() if item.version is None else version == item.version
    try:
        leads._get_connection().update_item(
            item.lead_id,
            actions=[getattr(leads, name).set(v) for name, v in values.items() if v is not None],
            condition=leads.lead_id.exists() & unchanged,
        )
    except UpdateError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
        return False
    return True


def history_claim_key(event: LeadEvent) -> str:
    """The claim on an event stored under a visitor (the idempotency table): one lead's."""
    return f"history:{event.visitor_id}:{event.storage_key}"


def capture_size(write: CaptureWrite) -> int:
    """The items a capture writes (what counts against MAX_TRANSACTION_ITEMS)."""
    return write.items


def changed_underneath(error: TransactWriteError) -> bool:
    """Whether a transaction was refused because its items changed since they were read (or
    another transaction was writing them), or - with a ClientRequestToken - because an earlier
    attempt under the same token wrote other items (a group retried with new event ids): in
    each case the caller reads again."""
    codes = {r.code for r in error.cancellation_reasons if r is not None}
    retried = error.cause_response_code == "IdempotentParameterMismatchException"
    return retried or bool(codes & {"ConditionalCheckFailed", "TransactionConflict"})


def add_capture(
    t: Tables,
    tx: Transaction,
    write: CaptureWrite,
    kinds: list[str],
    deleted: list[str],
    checked: list[str] | None = None,
) -> None:
    """A capture's items put into the transaction; ``checked``, ``deleted`` and ``kinds`` say
    what each is, in the order DynamoDB reports cancellation reasons (PynamoDB sends condition
    checks, then deletes, then puts)."""
    consent = t.consent
    # Made only for a write that checks: most rows of an import do not.
    not_opted_out = (
        consent.record.does_not_exist() | (consent.status != "opted_out")
        if write.checks_no_opt_out
        else None
    )
    if write.checks_no_opt_out:
        # The topic's own state is checked by the condition on its put, below (one
        # transaction may not name an item twice)
        assert write.consent is not None
        assert checked is not None, "only an import's write checks (apply_rows)"
        lead_id = write.lead.lead_id
        if write.consent.topic != ALL_TOPICS:
            tx.condition_check(consent, lead_id, f"topic#{ALL_TOPICS}", condition=not_opted_out)
            checked.append("consent")
        tx.condition_check(consent, lead_id, SUPPRESSION, condition=consent.record.does_not_exist())
        checked.append("consent")
    state_condition = not_opted_out
    if write.planned_on is not None and write.consent is not None:
        # A form's opt-in, decided on the records it read: its state's put holds only while
        # its own is as read, a condition check each the others (CaptureWrite.planned_on)
        assert checked is not None, "a write planned on records read checks them"
        topic = write.consent.topic
        if topic in write.planned_on:
            as_planned = as_read(consent, write.planned_on[topic])
            state_condition = (
                as_planned if state_condition is None else state_condition & as_planned
            )
        checks = write.planned_on_checks
        lead_id = write.lead.lead_id
        checked += ["consent"] * len(check_planned_on(t, tx, lead_id, checks, ()))
    if write.idempotency_key:
        remembered = {
            "key": write.idempotency_key,
            "request_hash": write.request_hash,
            "response": write.response,
            "created_at": write.lead.updated_at,
            "expires_at": _expiry(write.lead.updated_at, t.settings.idempotency_ttl_hours),
        }
        tx.put(t.idempotency, remembered, condition=t.idempotency.key.does_not_exist())
        kinds.append("submission")
    lead_id, at = write.lead.lead_id, write.lead.updated_at
    for identity in write.claim_identities:
        claim = {"identity": identity, "lead_id": lead_id, "created_at": at}
        tx.put(t.identities, claim, condition=t.identities.identity.does_not_exist())
        kinds.append("identity")
    for identity in write.point_identities:
        tx.put(t.identities, {"identity": identity, "lead_id": lead_id, "created_at": at})
        kinds.append("pointer")
    # The version adds the optimistic-lock condition on the put, as on a model's save.
    tx.put(t.leads, lead_values(write.lead))
    kinds.append("lead")
    tx.put(t.events, event_values(t, write.event))
    kinds.append("event")
    if write.consent is not None:
        proof, state = consent_values(write.consent)
        tx.put(t.consent, proof)
        tx.put(t.consent, state, condition=state_condition)
        kinds += ["consent", "consent"]
        if write.lifted is not None:
            add_unsubscribe_lifted(t, tx, write.lead.lead_id, write.lifted)
            deleted.append("consent")
            kinds += ["consent", "consent"] * len(write.lifted.kept_out)
    for copy in write.history:
        # The claim, refused if any capture claimed the event first (WriteConflict "history":
        # read again), and the lead's copy, which the events stream takes to route_events. The
        # claim lives as long as the event it claims.
        item = event_values(t, copy)
        taken = {
            "key": history_claim_key(copy),
            "request_hash": lead_id,
            "response": {"lead_id": lead_id, "sk": copy.storage_key},
            "status": "claimed",
            "created_at": at,
            "expires_at": item["expires_at"],
        }
        tx.put(t.idempotency, taken, condition=t.idempotency.key.does_not_exist())
        tx.put(t.events, item)
        kinds += ["history", "event"]
