"""Sites, browser events and mail activity in DynamoDB."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from tsunagu.clock import isoformat
from tsunagu.leads.model import LeadEvent, visitor_identity
from tsunagu.signed_requests import VerifiedRequest
from tsunagu.store.converters import event_from_item, event_to_item
from tsunagu.store.tables import Tables
from tsunagu.tracking.judgement import rejudge
from tsunagu.tracking.stored_sites import SigningKeys, StoredSite

_site_cache: dict[tuple[str, str], tuple[float, StoredSite]] = {}
"""Sites a warm tracking function has read: (sites table, site id) -> (when, site)."""


def forget_cached_sites() -> None:
    _site_cache.clear()


def forget_cached_site(sites_table: str, site_id: str) -> None:
    """Called when a site is saved, so that this process reads it again."""
    _site_cache.pop((sites_table, site_id), None)


class TrackingRepository:
    """Browser events (the snippet) and mail opens and clicks."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def _cached_site(self, site_id: str) -> StoredSite | None:
        settings = self._tables.settings
        hit = _site_cache.get((settings.sites_table, site_id))
        if hit is not None and time.monotonic() - hit[0] < settings.form_cache_seconds:
            return hit[1]
        return None

    def site(self, site_id: str) -> StoredSite | None:
        """The site (from this process's cache while it is fresh)."""
        site, _ = self.site_and_visitors(site_id, ())
        return site

    def site_and_visitors(
        self, site_id: str, visitor_ids: Sequence[str]
    ) -> tuple[StoredSite | None, dict[str, str]]:
        # One BatchGetItem across both tables: the site (unless cached) and every visitor's link
        # to a lead, so a batch of events costs one read however many visitors it names.
        settings = self._tables.settings
        site = self._cached_site(site_id)
        request: dict[str, Any] = {}
        if site is None:
            request[settings.sites_table] = {"Keys": [{"site_id": {"S": site_id}}]}
        if visitor_ids:
            request[settings.lead_identities_table] = {
                "Keys": [{"identity": {"S": visitor_identity(v)}} for v in visitor_ids],
                "ConsistentRead": True,
            }
        leads: dict[str, str] = {}
        client: Any = self._tables.connection.client
        while request:
            response = client.batch_get_item(RequestItems=request)
            for item in response["Responses"].get(settings.sites_table, []):
                site = StoredSite.from_definition(
                    json.loads(item["definition"]["S"]), _signing_keys(item)
                )
                _site_cache[(settings.sites_table, site.site_id)] = (time.monotonic(), site)
            for item in response["Responses"].get(settings.lead_identities_table, []):
                leads[item["identity"]["S"].split(":", 1)[1]] = item["lead_id"]["S"]
            request = response.get("UnprocessedKeys") or {}
        return site, leads

    def put_events(self, events: Sequence[LeadEvent]) -> None:
        with self._tables.events.batch_write() as batch:
            for event in events:
                batch.save(event_to_item(self._tables, event))

    def put_event(self, event: LeadEvent) -> None:
        event_to_item(self._tables, event).save()

    def put_event_once(self, event: LeadEvent, claim: str) -> bool:
        """The event and a record of ``claim``, in one transaction that fails if the claim is
        there already (tsunagu.tracking.browser): a repeat stores nothing, and a claim is never
        kept without its event. The claim lives as long as the event."""
        t = self._tables
        item = event_to_item(t, event)
        key = "beacon:" + hashlib.sha256(claim.encode()).hexdigest()
        claimed = t.idempotency(
            key,
            request_hash=key,
            response={"subject": event.subject, "sk": event.storage_key},
            status="applied",
            created_at=event.occurred_at,
            expires_at=item.expires_at,
        )
        try:
            with TransactWrite(connection=t.connection) as transaction:
                transaction.save(claimed, condition=t.idempotency.key.does_not_exist())
                transaction.save(item)
        except TransactWriteError as error:
            reasons = error.cancellation_reasons
            if any(r is not None and r.code == "ConditionalCheckFailed" for r in reasons):
                return False
            raise
        return True

    def stored_for_visitors(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        table = self._tables.settings.events_table
        request: dict[str, Any] = {
            table: {
                "Keys": [
                    {"subject": {"S": f"visitor#{visitor_id}"}, "sk": {"S": storage_key}}
                    for visitor_id, storage_key in sorted(set(keys))
                ],
                "ProjectionExpression": "subject, sk",
                "ConsistentRead": True,
            }
        }
        found: set[tuple[str, str]] = set()
        client: Any = self._tables.connection.client
        while request:
            response = client.batch_get_item(RequestItems=request)
            for item in response["Responses"].get(table, []):
                found.add((item["subject"]["S"].removeprefix("visitor#"), item["sk"]["S"]))
            request = response.get("UnprocessedKeys") or {}
        return found

    def claim_signed_post(self, site_id: str, request: VerifiedRequest) -> bool:
        """The replay guard of a site's signed post, kept until its timestamp is refused
        anyway. Not in the events' write: a post whose events then fail to store is signed
        again (a new timestamp) by the server that retries it."""
        t = self._tables
        key = f"signed-post:{site_id}:{request.replay_key}"
        claimed = t.idempotency(
            key,
            request_hash=key,
            response={},
            status="applied",
            created_at=isoformat(request.timestamp),
            expires_at=int(request.keep_until.timestamp()) + 3600,
        )
        try:
            claimed.save(condition=t.idempotency.key.does_not_exist())
        except PutError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def recent_clicks(self, lead_id: str, message_id: str, since: str) -> list[LeadEvent]:
        events = self._tables.events
        items = events.query(
            f"lead#{lead_id}",
            events.sk > since,
            filter_condition=events.type == "link_clicked",
            consistent_read=True,
        )
        found = [event_from_item(i) for i in items]
        return [e for e in found if e.properties.get("message_id") == message_id]

    def record_burst(
        self, events: Sequence[LeadEvent], *, later_links: int = 0, later_repeats: int = 0
    ) -> None:
        model = self._tables.events
        for event in events:
            signals = dict(event.properties.get("signals") or {})
            for name, later in (
                ("other_links_clicked_just_after", later_links),
                ("same_link_clicked_just_after", later_repeats),
            ):
                if later:
                    signals[name] = int(signals.get(name, 0)) + later
            judgement = rejudge(signals)
            model(event.subject, event.storage_key).update(
                actions=[
                    model.properties["signals"].set(signals),
                    model.properties["automated"].set(judgement.automated),
                    model.properties["reasons"].set(judgement.reasons),
                ]
            )


def _signing_keys(item: dict[str, Any]) -> SigningKeys | None:
    """A site item's signing keys (tsunagu.store.sites writes them), read from DynamoDB's own
    JSON."""

    def text(name: str) -> str | None:
        value = item.get(name, {}).get("S")
        return str(value) if value is not None else None

    key_id = text("signing_key_id")
    if key_id is None:
        return None
    return SigningKeys(
        key_id,
        text("signing_key_created_at") or "",
        text("previous_signing_key_id"),
        text("previous_signing_key_until"),
    )
