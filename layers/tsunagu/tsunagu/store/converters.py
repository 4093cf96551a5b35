"""Conversions between domain records and their PynamoDB items."""

from __future__ import annotations

import zlib
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from pynamodb.transactions import TransactWrite

from tsunagu.clock import parse_instant, stored_day
from tsunagu.leads.crm_status import status_key
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import ConsentEvidence, Lead, LeadEvent
from tsunagu.mail.consent import (
    ConsentView,
    PlannedOn,
    Recipient,
    Suppression,
    TopicRecord,
    UnsubscribeLifted,
    sets_topic_state,
)
from tsunagu.store.tables import Tables


def lead_to_item(tables: Tables, lead: Lead) -> Any:
    """The item of a full save; it carries the search indexes' attributes too."""
    return tables.leads(**lead_values(lead))


def lead_values(lead: Lead) -> dict[str, Any]:
    """The lead's item as values of its model's attributes (lead_to_item, or a transaction's
    put: tsunagu.store.transactions)."""
    # Imported here, not at the top: track_event loads this module for events and never saves
    # a lead, so it need not compile the search words' patterns (README, Deploying to AWS).
    from tsunagu.store.search_attributes import search_attributes

    return {
        "lead_id": lead.lead_id,
        "email": lead.email,
        "fields": {name: value.to_item() for name, value in lead.fields.items()},
        "sources": lead.sources,
        "visitor_ids": set(lead.visitor_ids),
        "stage": lead.stage,
        "created_at": lead.created_at,
        "updated_at": lead.updated_at,
        "last_activity_at": lead.last_activity_at,
        "last_activity_type": lead.last_activity_type,
        "tags": set(lead.tags) or None,
        "crm_status": lead.crm_status,
        "crm_status_source": (
            None if lead.crm_status_source is None else lead.crm_status_source.value
        ),
        "crm_status_at": lead.crm_status_at,
        "score": lead.score,
        "score_at": lead.score_at,
        "grade": lead.grade,
        "stage_history": lead.stage_history or None,
        **search_attributes(lead),
        # Left out for a new lead: the save's condition is then "no such lead yet".
        **({} if lead.version is None else {"version": lead.version}),
    }


def lead_from_item(item: Any) -> Lead:
    raw_fields = item.fields.as_dict() if hasattr(item.fields, "as_dict") else dict(item.fields)
    fields = {name: FieldValue.from_item(value) for name, value in raw_fields.items()}
    source, at = _crm_status_origin(item, fields.pop(LEGACY_CRM_STATUS_FIELD, None))
    return Lead(
        lead_id=item.lead_id,
        email=item.email,
        fields=fields,
        sources=list(item.sources or []),
        visitor_ids=set(item.visitor_ids or ()),
        stage=item.stage,
        created_at=item.created_at,
        updated_at=item.updated_at,
        last_activity_at=item.last_activity_at,
        last_activity_type=item.last_activity_type,
        tags=set(item.tags or ()),
        crm_status=item.crm_status,
        crm_status_source=source,
        crm_status_at=at,
        score=None if item.score is None else float(item.score),
        score_at=item.score_at,
        grade=item.grade,
        stage_history=[_plain_map(h) for h in item.stage_history or []],
        version=item.version,
    )


LEGACY_CRM_STATUS_FIELD = "crm_status"
"""Before the status kept its source and time beside it, the CRM's webhook also kept its text
in this field (which only the CRM wrote); it is read once to learn who set the status, and no
longer written (the next save of the lead drops it)."""


def _crm_status_origin(item: Any, legacy: FieldValue | None) -> tuple[Channel | None, str | None]:
    """Who set the lead's CRM status, and when. A lead saved before these were kept: the CRM,
    if the CRM's own field still says the same status; else a person or journey in Tsunagu
    (which one was not recorded), no later than the lead's last change."""
    if item.crm_status_source is not None:
        return Channel(item.crm_status_source), item.crm_status_at
    if item.crm_status is None:
        return None, None
    if legacy is not None and status_key(legacy.value) == status_key(item.crm_status):
        return legacy.source, legacy.at
    return Channel.SALES, item.updated_at


EVENT_DAY_SHARDS = 8
"""The events_by_day index keys a day's events are spread over. One partition key takes at
most 1,000 write units a second, and a throttled index holds back the table's own writes
(tracking, capture, imports): one key a day would cap every event the stack stores near 500
a second (an event of 1-2 KB is two units). Eight keys raise that eightfold, for eight
Queries a day when a rebuild reads it."""


def day_index_key(event_id: str, occurred_at: str) -> str:
    """The event's key in the events_by_day index: its UTC day (tsunagu.clock.stored_day) and
    one of EVENT_DAY_SHARDS, from its id (crc32: the same in every process)."""
    shard = zlib.crc32(event_id.encode()) % EVENT_DAY_SHARDS
    return f"{stored_day(occurred_at)}#{shard}"


def day_index_keys(day: str) -> list[str]:
    """Every events_by_day key of a UTC day (YYYY-MM-DD): a day is read by a Query of each."""
    return [f"{day}#{shard}" for shard in range(EVENT_DAY_SHARDS)]


def event_to_item(tables: Tables, event: LeadEvent) -> Any:
    return tables.events(**event_values(tables, event))


def event_values(tables: Tables, event: LeadEvent) -> dict[str, Any]:
    """The event's item as values of its model's attributes (see lead_values)."""
    occurred = parse_instant(event.occurred_at)
    expires = occurred + timedelta(days=tables.settings.event_retention_days)
    return {
        "subject": event.subject,
        "sk": event.storage_key,
        "event_id": event.event_id,
        "type": event.type,
        "occurred_at": event.occurred_at,
        # The key of the events_by_day index: a rebuild of the reports reads a day's events
        # with Queries, not a Scan of the table (tsunagu.store.reports)
        "occurred_day": day_index_key(event.event_id, event.occurred_at),
        "lead_id": event.lead_id,
        "visitor_id": event.visitor_id,
        "properties": _without_none(event.properties),
        "expires_at": int(expires.timestamp()),
    }


def event_from_item(item: Any) -> LeadEvent:
    props = item.properties.as_dict() if hasattr(item.properties, "as_dict") else item.properties
    return LeadEvent(
        event_id=item.event_id,
        type=item.type,
        occurred_at=item.occurred_at,
        lead_id=item.lead_id,
        visitor_id=item.visitor_id,
        properties=dict(props or {}),
    )


def consent_items(tables: Tables, evidence: ConsentEvidence) -> tuple[Any, Any]:
    """The immutable evidence record and the topic's current-state record (consent_values)."""
    proof, state = consent_values(evidence)
    return tables.consent(**proof), tables.consent(**state)


def consent_values(evidence: ConsentEvidence) -> tuple[dict[str, Any], dict[str, Any]]:
    """The immutable evidence record and the topic's current-state record, as values of their
    model's attributes (see lead_values). Consent waiting for a double opt-in confirmation
    goes to ``pending#<topic>`` and leaves the topic's state as it was: a second sign-up never
    downgrades a confirmed subscription."""
    proof = {
        "lead_id": evidence.lead_id,
        "record": f"evidence#{evidence.at}#{evidence.evidence_id}",
        "topic": evidence.topic,
        "status": evidence.status,
        "at": evidence.at,
        "email": evidence.email,
        "text": evidence.text,
        "text_version": evidence.text_version,
        "form_id": evidence.form_id,
        "ip": evidence.ip,
        "user_agent": evidence.user_agent,
        "method": evidence.method,
    }
    record = "topic" if sets_topic_state(evidence.status) else "pending"
    state = {
        "lead_id": evidence.lead_id,
        "record": f"{record}#{evidence.topic}",
        "topic": evidence.topic,
        "status": evidence.status,
        "at": evidence.at,
        "email": evidence.email,
        "evidence": evidence.evidence_id,
        "method": evidence.method,
    }
    return proof, state


SUPPRESSION = "suppression"
"""The consent record that stops all mail to a lead, and its key in the index of them."""


def unsubscribed_from_all(tables: Tables, lead_id: str) -> Any:
    """The "unsubscribe from all" record. A fresh, explicit opt-in (a ticked form box, a
    confirmed double opt-in) deletes it: the person's latest word counts, and the evidence of
    both stays (add_unsubscribe_lifted)."""
    return tables.consent(lead_id, "topic#all")


def topic_record_from_item(item: Any) -> TopicRecord:
    return TopicRecord(item.status, item.at, item.evidence)


def add_unsubscribe_lifted(
    tables: Tables, transaction: TransactWrite, lead_id: str, lifted: UnsubscribeLifted
) -> None:
    """An opt-in's end of an unsubscribe from all mail, put into its transaction: the
    unsubscribe deleted and each topic opted in before it opted out
    (tsunagu.mail.consent.lift_unsubscribe_from_all) - each only if its record is still the one
    read, or the transaction is refused and the caller reads again. One delete, then the puts
    (PynamoDB's order, by which callers read cancellation reasons)."""
    model = tables.consent
    transaction.delete(unsubscribed_from_all(tables, lead_id), condition=_still(model, lifted.was))
    for kept in lifted.kept_out:
        proof, state = consent_values(kept.evidence)
        transaction.save(model(**proof), condition=model.record.does_not_exist())
        transaction.save(model(**state), condition=_still(model, kept.was))


def as_read(model: Any, record: TopicRecord | None) -> Any:
    """The topic's record is the one read (``record``), or still absent (None). The evidence
    it rests on is compared too: each write names new evidence, so a change with the same
    status at the same instant (a second one-click in the same millisecond) is told apart.
    A record stored before records named their evidence has none."""
    if record is None:
        return model.record.does_not_exist()
    evidence = (
        model.evidence.does_not_exist()
        if record.evidence is None
        else model.evidence == record.evidence
    )
    return _still(model, record) & evidence


def check_planned_on(
    tables: Tables,
    transaction: TransactWrite,
    lead_id: str,
    planned_on: PlannedOn,
    written: Collection[str],
) -> list[str]:
    """A consent change planned on ``planned_on`` (each topic's record as read), put into its
    transaction: a condition check that each record it does not write is still as read (one
    transaction names an item once: a topic in ``written`` is conditioned on its own write,
    as_read). The topics checked, in the order of their cancellation reasons."""
    consent = tables.consent
    checked = [topic for topic in planned_on if topic not in written]
    for topic in checked:
        condition = as_read(consent, planned_on[topic])
        transaction.condition_check(consent, lead_id, f"topic#{topic}", condition=condition)
    return checked


def _still(model: Any, record: TopicRecord) -> Any:
    """The topic's record is still the one read: the same status, set at the same instant."""
    return (model.status == record.status) & (model.at == record.at)


def consent_from_item(item: Any) -> ConsentEvidence:
    return ConsentEvidence(
        evidence_id=item.record.rsplit("#", 1)[-1],
        lead_id=item.lead_id,
        email=item.email,
        topic=item.topic,
        status=item.status,
        at=item.at,
        text=item.text,
        text_version=item.text_version,
        form_id=item.form_id,
        ip=item.ip,
        user_agent=item.user_agent,
        method=item.method,
    )


def _without_none(value: Any) -> Any:
    """DynamoDB maps cannot hold empty strings as keys; None values are simply left out."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def recipient_from(
    tables: Tables, lead_items: list[dict[str, Any]], consent_items: list[dict[str, Any]]
) -> Recipient:
    """The lead and its consent from raw BatchGetItem items (topics and suppression)."""
    lead = lead_from_item(tables.leads.from_raw_data(lead_items[0])) if lead_items else None
    topics: dict[str, str] = {}
    suppression = None
    for raw in consent_items:
        item = tables.consent.from_raw_data(raw)
        if item.record == "suppression":
            suppression = Suppression(item.status, item.at)
        else:
            topics[item.topic] = item.status
    return Recipient(lead, ConsentView(topics, suppression))


def _plain_map(value: Any) -> dict[str, str]:
    raw = value.as_dict() if hasattr(value, "as_dict") else dict(value)
    return {str(k): str(v) for k, v in raw.items()}
