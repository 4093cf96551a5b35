"""Templates, send records, consent and suppression in DynamoDB."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from tsunagu.client_values import STORED
from tsunagu.clock import Clock, isoformat, parse_instant
from tsunagu.cursors import decode_cursor, encode_cursor, not_a_cursor
from tsunagu.errors import AlreadyExists, ConcurrentUpdate
from tsunagu.leads.model import ConsentEvidence, LeadEvent
from tsunagu.mail.consent import (
    PlannedOn,
    Recipient,
    SuppressionEntry,
    UnsubscribeLifted,
    replaced_by,
)
from tsunagu.mail.exclusions import Exclusion, ExclusionList
from tsunagu.mail.feedback import Feedback
from tsunagu.mail.reply_addresses import REPLY_ADDRESS_DAYS, RecordedReply, ReplyAddress
from tsunagu.mail.templates import MailTemplate, TemplateVersion, saved_meanwhile
from tsunagu.store.converters import (
    SUPPRESSION,
    add_unsubscribe_lifted,
    as_read,
    check_planned_on,
    consent_items,
    event_to_item,
    recipient_from,
)
from tsunagu.store.leads import LeadRepository
from tsunagu.store.tables import Tables, batch_get, get_or_none

SEND_RECORD_DAYS = 90
FEEDBACK_RECORD_DAYS = 30
"""How long an applied SES notification is remembered: longer than SNS and Lambda retry, and
than the 14 days a parked one waits in the failure queue to be sent again."""
SUPPRESSION_INDEX = "suppressions"
_latest: dict[tuple[str, str], tuple[float, MailTemplate]] = {}
_versions: dict[tuple[str, str, int], MailTemplate] = {}


_exclusions: dict[str, tuple[float, ExclusionList]] = {}
EXCLUSIONS_KEY = {"lead_id": {"S": "exclusions"}, "record": {"S": "list"}}
"""The account's exclusions: one item of the consent table, in a partition no lead id takes."""
EXCLUSIONS_CACHE_SECONDS = 30.0


def forget_cached_templates() -> None:
    _latest.clear()
    _versions.clear()
    _exclusions.clear()


class MailRepository(LeadRepository):
    """Templates, sends, consent changes and suppression - on top of the lead look-ups."""

    # ------------------------------------------------------------ templates
    def save_template(
        self,
        template: MailTemplate,
        clock: Clock,
        saved_by: str | None = None,
        *,
        first: bool = False,
        over: int | None = None,
    ) -> MailTemplate:
        """Store as a new version (versions never change once stored). ``first``: as version 1
        only - AlreadyExists if any template has its id, even one stored a moment ago.
        ``over``: the latest version the writer read - stored as the one after it only, and
        ConcurrentUpdate (carrying the latest version) if another version took that place."""
        model = self._tables.templates
        for _attempt in range(3):
            latest = None
            if not first and over is None:
                found = model.query(template.template_id, scan_index_forward=False, limit=1)
                latest = next(iter(found), None)
            after = over if over is not None else (latest.version if latest else 0)
            stored = template.model_copy(update={"version": after + 1})
            try:
                model(
                    stored.template_id,
                    stored.version,
                    definition=stored.model_dump(mode="json"),
                    created_at=isoformat(clock.now()),
                    saved_by=saved_by,
                ).save(condition=model.version.does_not_exist())
            except PutError as error:
                if error.cause_response_code != "ConditionalCheckFailedException":
                    raise  # throttled, refused, unreachable: not a version someone else took
                if first:
                    raise AlreadyExists(f"a template {template.template_id!r} exists") from None
                if over is not None:
                    raise self._stale(template.template_id, over) from None
                continue  # someone stored the same version meanwhile: take the next one
            _latest.pop((self._tables.settings.templates_table, template.template_id), None)
            return stored
        raise RuntimeError("could not store a new template version")

    def _stale(self, template_id: str, over: int) -> ConcurrentUpdate:
        """Another version was stored after ``over``: the error says which is the latest now, so
        the editor's next save can go over it knowingly."""
        found = self._tables.templates.query(template_id, scan_index_forward=False, limit=1)
        latest = next(iter(found), None)
        _latest.pop((self._tables.settings.templates_table, template_id), None)
        return saved_meanwhile(template_id, over, int(latest.version) if latest else over + 1)

    def template(self, template_id: str, version: int | None) -> MailTemplate | None:
        table = self._tables.settings.templates_table
        if version is not None:
            cached = _versions.get((table, template_id, version))
            if cached is not None:
                return cached
            item = get_or_none(self._tables.templates, template_id, version)
        else:
            hit = _latest.get((table, template_id))
            if hit is not None and time.monotonic() - hit[0] < table_cache_seconds(self._tables):
                return hit[1]
            latest = self._tables.templates.query(template_id, scan_index_forward=False, limit=1)
            item = next(iter(latest), None)
        if item is None:
            return None
        template = MailTemplate.model_validate(item.definition, context={STORED: True})
        _versions[(table, template_id, template.version)] = template
        if version is None:
            _latest[(table, template_id)] = (time.monotonic(), template)
        return template

    def template_versions(self, template_id: str) -> list[TemplateVersion]:
        """Every stored version of the template, the newest first."""
        return [
            TemplateVersion(
                version=int(item.version),
                created_at=item.created_at,
                saved_by=item.saved_by,
                name=item.definition.get("name", ""),
                subject=item.definition.get("subject", ""),
            )
            for item in self._tables.templates.query(template_id, scan_index_forward=False)
        ]

    def templates(self) -> list[MailTemplate]:
        """The latest version of every template."""
        latest: dict[str, MailTemplate] = {}
        for item in self._tables.templates.scan():
            template = MailTemplate.model_validate(item.definition, context={STORED: True})
            current = latest.get(template.template_id)
            if current is None or template.version > current.version:
                latest[template.template_id] = template
        return sorted(latest.values(), key=lambda t: t.template_id)

    # ------------------------------------------------------------ sends
    def claim_send(
        self, key: str, message_id: str, at: str, request_hash: str
    ) -> dict[str, Any] | None:
        model = self._tables.idempotency
        expires = int((parse_instant(at) + timedelta(days=SEND_RECORD_DAYS)).timestamp())
        claim = model(
            f"send:{key}",
            request_hash=request_hash,
            response={"status": "sending", "message_id": message_id, "request_hash": request_hash},
            status="sending",
            created_at=at,
            expires_at=expires,
        )
        try:
            # A failed send may be tried again; anything else under this key may not.
            claim.save(condition=model.key.does_not_exist() | (model.status == "failed"))
        except PutError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            existing = model.get(f"send:{key}", consistent_read=True)
            return {**existing.response, "request_hash": existing.request_hash}
        return None

    def finish_send(
        self,
        key: str,
        status: str,
        record: dict[str, Any],
        event: LeadEvent,
        reply: ReplyAddress | None = None,
    ) -> None:
        model = self._tables.idempotency
        with TransactWrite(connection=self._tables.connection) as transaction:
            transaction.update(
                model(f"send:{key}"),
                actions=[model.status.set(status), model.response.set(record)],
            )
            transaction.save(event_to_item(self._tables, event))
            if reply is not None:
                # With the record of the send: a mail whose reply address is not known is a
                # mail whose send is not recorded either
                expires = parse_instant(reply.sent_at) + timedelta(days=REPLY_ADDRESS_DAYS)
                transaction.save(
                    model(
                        _reply_address_key(reply.token),
                        request_hash=reply.lead_id,
                        response=reply.as_item(),
                        status="reply_address",
                        created_at=reply.sent_at,
                        expires_at=int(expires.timestamp()),
                    )
                )

    # ------------------------------------------------------------ replies
    def reply_address(self, token: str) -> ReplyAddress | None:
        item = get_or_none(self._tables.idempotency, _reply_address_key(token))
        if item is None or item.status != "reply_address":
            return None
        return ReplyAddress.from_item(item.response)

    def recorded_reply(self, key: str) -> str | None:
        item = get_or_none(self._tables.idempotency, _reply_key(key))
        return None if item is None else str(item.response.get("outcome"))

    def record_reply(self, reply: RecordedReply, at: str) -> bool:
        """The reply's events (and the opt-out it asks for) with a record of its key that must
        not be there yet; False when it is (SES delivered the same message twice)."""
        t = self._tables
        key = _reply_key(reply.key)
        expires = int((parse_instant(at) + timedelta(days=FEEDBACK_RECORD_DAYS)).timestamp())
        marker = t.idempotency(
            key,
            request_hash=reply.lead_id,
            response={"outcome": reply.outcome},
            status="applied",
            created_at=at,
            expires_at=expires,
        )
        try:
            with TransactWrite(connection=t.connection) as transaction:
                transaction.save(marker, condition=t.idempotency.key.does_not_exist())
                for event in reply.events:
                    transaction.save(event_to_item(t, event))
                self._write_consent_changes(transaction, reply.consent_changes)
        except TransactWriteError as error:
            if _conditions_failed(error):
                return False
            raise
        return True

    def recipient(self, lead_id: str, topic: str) -> Recipient:
        """The lead, its consent for the topic and any suppression: one BatchGetItem."""
        settings = self._tables.settings
        records = sorted({f"topic#{topic}", "topic#marketing", "topic#all", "suppression"})
        request: dict[str, Any] = {
            settings.leads_table: {"Keys": [{"lead_id": {"S": lead_id}}], "ConsistentRead": True},
            settings.consent_table: {
                "Keys": [{"lead_id": {"S": lead_id}, "record": {"S": r}} for r in records],
                "ConsistentRead": True,
            },
        }
        found = batch_get(self._tables, request)
        return recipient_from(
            self._tables,
            found.get(settings.leads_table, []),
            found.get(settings.consent_table, []),
        )

    # ------------------------------------------------------------ exclusions
    def exclusions(self, *, fresh: bool = False) -> ExclusionList:
        """The account's exclusions; a warm function keeps them half a minute (``fresh``: read
        now, as a change does before it writes)."""
        table = self._tables.settings.consent_table
        cached = _exclusions.get(table)
        if fresh or cached is None or time.monotonic() - cached[0] > EXCLUSIONS_CACHE_SECONDS:
            client: Any = self._tables.connection.client  # botocore's, untyped by PynamoDB
            item = client.get_item(TableName=table, Key=EXCLUSIONS_KEY, ConsistentRead=True)
            found = item.get("Item")
            kept = (
                ExclusionList(
                    tuple(Exclusion(**e) for e in json.loads(found["entries"]["S"])),
                    int(found["version"]["N"]),
                )
                if found
                else ExclusionList()
            )
            cached = (time.monotonic(), kept)
            _exclusions[table] = cached
        return cached[1]

    def save_exclusions(self, changed: ExclusionList) -> None:
        """Store the list if nobody changed it since it was read (ConcurrentUpdate if so)."""
        table = self._tables.settings.consent_table
        entries = changed.stored()
        item = {**EXCLUSIONS_KEY, "entries": {"S": entries}, "version": {"N": str(changed.version)}}
        client: Any = self._tables.connection.client
        try:
            client.put_item(
                TableName=table,
                Item=item,
                ConditionExpression="attribute_not_exists(version) OR version = :read",
                ExpressionAttributeValues={":read": {"N": str(changed.version - 1)}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConcurrentUpdate(
                    "the exclusions changed meanwhile: read them again"
                ) from error
            raise
        _exclusions.pop(table, None)

    # ------------------------------------------------------------ consent changes
    def pending_topics(self, lead_id: str) -> list[str]:
        consent = self._tables.consent
        return [
            item.topic for item in consent.query(lead_id, consent.record.startswith("pending#"))
        ]

    def change_consent(self, evidence: ConsentEvidence, method: str, event: LeadEvent) -> None:
        """Store the evidence, the topic's new state and the event, together."""
        self.change_consents([(evidence, method, event)])

    def change_consents(
        self,
        changes: Sequence[tuple[ConsentEvidence, str, LeadEvent]],
        lifted: UnsubscribeLifted | None = None,
        planned_on: PlannedOn | None = None,
    ) -> None:
        """Several consent changes (one preference-page submission, one double opt-in
        confirmation) stored whole or not at all; with ``lifted``, the end of the unsubscribe
        from all mail they plan; with ``planned_on``, only while each of those topic records is
        still the one read (a condition on the put of each topic changed, a condition check on
        each other: one transaction names an item once). ConcurrentUpdate when either changed
        since it was read."""
        planned_on = planned_on or {}
        try:
            with TransactWrite(connection=self._tables.connection) as transaction:
                self._write_consent_changes(transaction, changes, planned_on)
                conditioned = {evidence.topic for evidence, _, _ in changes}
                lead_id = changes[0][0].lead_id
                if lifted is not None:
                    add_unsubscribe_lifted(self._tables, transaction, lead_id, lifted)
                    # (which conditions each record it writes on what it read)
                    conditioned |= lifted.topics
                check_planned_on(self._tables, transaction, lead_id, planned_on, conditioned)
        except TransactWriteError as error:
            if (lifted is not None or planned_on) and _changed_meanwhile(error):
                raise ConcurrentUpdate(
                    "the consent changed meanwhile; nothing was changed, please try again"
                ) from error
            raise

    def _write_consent_changes(
        self,
        transaction: TransactWrite,
        changes: Sequence[tuple[ConsentEvidence, str, LeadEvent]],
        planned_on: PlannedOn | None = None,
    ) -> None:
        """Each change's evidence, state and event; the state's put conditional on the record
        read (``planned_on``) when its topic is there."""
        consent = self._tables.consent
        planned_on = planned_on or {}
        for evidence, method, event in changes:
            proof, state = consent_items(self._tables, evidence)
            proof.method = method
            state.method = method
            transaction.save(proof)
            if evidence.topic in planned_on:
                condition = as_read(consent, planned_on[evidence.topic])
                transaction.save(state, condition=condition)
            else:
                transaction.save(state)
            transaction.save(event_to_item(self._tables, event))
            # (Its end of an unsubscribe from all mail is change_consents' ``lifted``.)
            if method == "double_opt_in":
                transaction.delete(
                    self._tables.consent(evidence.lead_id, f"pending#{evidence.topic}")
                )

    def suppress(
        self, lead_id: str, email: str, reason: str, at: str, event: LeadEvent
    ) -> SuppressionEntry | None:
        """Suppress the lead for ``reason``, with its event - unless a suppression as strong or
        stronger stands: then nothing is written and that one is returned (None: stored). The
        write's condition decides, not a read before it, so a bounce or a complaint stored
        meanwhile is never replaced."""
        try:
            with TransactWrite(connection=self._tables.connection) as transaction:
                transaction.save(
                    self._suppression(lead_id, email, reason, at),
                    condition=self._replacing(reason),
                )
                transaction.save(event_to_item(self._tables, event))
        except TransactWriteError as error:
            if not _conditions_failed(error):
                raise
            standing = self.suppression(lead_id)
            if standing is None:  # lifted between the write and this read
                message = f"{email}'s suppression changed meanwhile: try again"
                raise ConcurrentUpdate(message) from error
            return standing
        return None

    def _suppression(self, lead_id: str, email: str, reason: str, at: str) -> Any:
        return self._tables.consent(
            lead_id, SUPPRESSION, topic="*", status=reason, at=at, email=email, listed=SUPPRESSION
        )

    def _replacing(self, reason: str) -> Any:
        """The condition a suppression for ``reason`` is written on: no suppression yet, or one
        for a weaker reason (``consent.replaced_by``, the one ranking)."""
        model = self._tables.consent
        none_yet = model.lead_id.does_not_exist()
        weaker = replaced_by(reason)
        return none_yet | model.status.is_in(*weaker) if weaker else none_yet

    # ------------------------------------------------------------ SES feedback
    def applied_feedback(self, key: str) -> str | None:
        item = get_or_none(self._tables.idempotency, _feedback_key(key))
        return None if item is None else str(item.response.get("outcome"))

    def apply_feedback(self, feedback: Feedback, at: str) -> str | None:
        """Everything one SES notification changes, with a record of its key that must not be
        there yet: a notification delivered again changes nothing (None); else the outcome
        stored (tsunagu.mail.feedback.FeedbackStore)."""
        t = self._tables
        key = _feedback_key(feedback.key)
        expires = int((parse_instant(at) + timedelta(days=FEEDBACK_RECORD_DAYS)).timestamp())
        applied = t.idempotency(
            key,
            request_hash=key,
            response={"outcome": feedback.outcome, "notification": feedback.key[:500]},
            status="applied",
            created_at=at,
            expires_at=expires,
        )
        try:
            self._apply_feedback(feedback, at, applied)
        except TransactWriteError as error:
            if not _conditions_failed(error):
                raise
            if feedback.suppression is None or _condition_failed(error, _key_at(feedback)):
                return None  # the notification's key: applied already
            # Only the suppression's: a stronger one stands (a complaint, and this is a late
            # bounce of an earlier mail). Record the bounce; the complaint stays.
            return self.apply_feedback(feedback.under_stronger_suppression(), at)
        return feedback.outcome

    def _apply_feedback(self, feedback: Feedback, at: str, applied: Any) -> None:
        """One write: the notification's key (at ``_key_at(feedback)``), the suppression, never
        replacing a stronger one, and the rest."""
        t = self._tables
        with TransactWrite(connection=t.connection) as transaction:
            transaction.save(applied, condition=t.idempotency.key.does_not_exist())
            if feedback.suppression is not None:
                reason = feedback.suppression
                transaction.save(
                    self._suppression(feedback.lead_id, feedback.email, reason, at),
                    condition=self._replacing(reason),
                )
            if feedback.opt_out is not None:
                proof, state = consent_items(t, feedback.opt_out)
                proof.method = state.method = "complaint"
                transaction.save(proof)
                transaction.save(state)
            if feedback.reset_soft_bounces:
                transaction.delete(t.consent(feedback.lead_id, "soft_bounces"))
            for event in feedback.events:
                transaction.save(event_to_item(t, event))

    def suppression(self, lead_id: str) -> SuppressionEntry | None:
        item = get_or_none(self._tables.consent, lead_id, SUPPRESSION)
        return None if item is None else SuppressionEntry(lead_id, item.email, item.status, item.at)

    def lift_suppression(self, entry: SuppressionEntry, event: LeadEvent) -> bool:
        """Remove the suppression read as ``entry`` (False when it changed meanwhile: a bounce
        or complaint that arrived since is not lifted by a decision about the older one)."""
        model = self._tables.consent
        try:
            with TransactWrite(connection=self._tables.connection) as transaction:
                transaction.delete(
                    model(entry.lead_id, SUPPRESSION),
                    condition=(model.status == entry.reason) & (model.at == entry.at),
                )
                transaction.save(event_to_item(self._tables, event))
                if entry.reason == "soft_bounce_limit":
                    # Counting starts again: the next soft bounce is the first, not the limit.
                    transaction.delete(model(entry.lead_id, "soft_bounces"))
        except TransactWriteError as error:
            if _conditions_failed(error):
                return False
            raise
        return True

    def suppressions(
        self, reason: str | None, limit: int, cursor: str | None
    ) -> tuple[list[SuppressionEntry], str | None]:
        """The suppression list, newest first, a page at a time (the sparse ``suppressions``
        index holds suppression records only; a reason filters within it)."""
        client: Any = self._tables.connection.client
        request: dict[str, Any] = {
            "TableName": self._tables.settings.consent_table,
            "IndexName": SUPPRESSION_INDEX,
            "KeyConditionExpression": "listed = :l",
            "ExpressionAttributeValues": {":l": {"S": SUPPRESSION}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if reason is not None:
            request["FilterExpression"] = "#s = :r"
            request["ExpressionAttributeNames"] = {"#s": "status"}
            request["ExpressionAttributeValues"][":r"] = {"S": reason}
        start = _suppression_cursor(cursor)
        found: list[SuppressionEntry] = []
        while True:
            if start is not None:
                request["ExclusiveStartKey"] = start
            answer = client.query(**request)
            for raw in answer.get("Items", []):
                item = self._tables.consent.from_raw_data(raw)
                found.append(SuppressionEntry(item.lead_id, item.email, item.status, item.at))
                if len(found) == limit:
                    key = {n: raw[n] for n in ("lead_id", "record", "listed", "at")}
                    return found, encode_cursor({"i": SUPPRESSION_INDEX, "k": key})
            start = answer.get("LastEvaluatedKey")
            if start is None:
                return found, None

    def reset_soft_bounces(self, lead_id: str) -> None:
        self._tables.consent(lead_id, "soft_bounces").delete()

    def count_soft_bounce(self, lead_id: str, email: str, at: str, feedback_id: str) -> int:
        model = self._tables.consent
        item = model(lead_id, "soft_bounces")
        item.update(
            actions=[
                model.feedback_ids.add({feedback_id}),
                model.topic.set("*"),
                model.status.set("counting"),
                model.at.set(at),
                model.email.set(email),
            ]
        )
        return len(item.feedback_ids or ())


def _suppression_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    value = decode_cursor(cursor)
    key = value.get("k")
    if value.get("i") != SUPPRESSION_INDEX or not isinstance(key, dict):
        raise not_a_cursor()
    if set(key) != {"lead_id", "record", "listed", "at"} or not all(
        isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values()
    ):
        raise not_a_cursor()
    return key


def _reply_address_key(token: str) -> str:
    return f"reply-address:{token}"


def _reply_key(key: str) -> str:
    return "reply-received:" + hashlib.sha256(key.encode()).hexdigest()


def _feedback_key(key: str) -> str:
    return "ses-feedback:" + hashlib.sha256(key.encode()).hexdigest()


def _conditions_failed(error: TransactWriteError) -> bool:
    reasons = error.cancellation_reasons
    return any(r is not None and r.code == "ConditionalCheckFailed" for r in reasons)


def _changed_meanwhile(error: TransactWriteError) -> bool:
    """A condition on what was read failed, or another transaction was writing one of the same
    records at that moment (DynamoDB's TransactionConflict): either way the read is stale."""
    codes = {r.code for r in error.cancellation_reasons if r is not None}
    return bool(codes & {"ConditionalCheckFailed", "TransactionConflict"})


def _key_at(feedback: Feedback) -> int:
    """Where a feedback's key is among its transaction's items, as its cancellation reasons
    number them: PynamoDB sends a transaction's deletes before its puts, and the key is the
    first put - after the delete of the soft-bounce count a delivery resets."""
    return 1 if feedback.reset_soft_bounces else 0


def _condition_failed(error: TransactWriteError, index: int) -> bool:
    """Whether the condition of the transaction's ``index``-th item failed."""
    reasons = error.cancellation_reasons
    reason = reasons[index] if index < len(reasons) else None
    return reason is not None and reason.code == "ConditionalCheckFailed"


def table_cache_seconds(tables: Tables) -> float:
    return tables.settings.form_cache_seconds
