"""Binds the models to the tables named in the settings.

Each binding is a subclass with its own ``Meta``, made once per settings and cached, so nothing
reads the environment at import time and two stages never share a model class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from pynamodb.connection import Connection
from pynamodb.models import Model

from tsunagu.settings import Settings
from tsunagu.store.models import (
    ConsentItem,
    EventItem,
    FormItem,
    IdempotencyItem,
    ImportReceiptItem,
    JourneyRecordItem,
    JourneyWaitItem,
    LeadIdentityItem,
    LeadItem,
    MailTemplateItem,
    QualificationItem,
    SiteItem,
    SubmissionCounterItem,
)


@dataclass(frozen=True)
class Tables:
    leads: type[LeadItem]
    identities: type[LeadIdentityItem]
    events: type[EventItem]
    consent: type[ConsentItem]
    forms: type[FormItem]
    idempotency: type[IdempotencyItem]
    submission_counters: type[SubmissionCounterItem]
    sites: type[SiteItem]
    templates: type[MailTemplateItem]
    waits: type[JourneyWaitItem]
    journeys: type[JourneyRecordItem]
    qualification: type[QualificationItem]
    settings: Settings
    import_receipts: type[ImportReceiptItem] | None = None
    """Bound when the stack keeps imports (TSUNAGU_IMPORTS_TABLE)."""

    @cached_property
    def connection(self) -> Connection:
        """The one connection every table of this binding uses, and transactions across them.

        PynamoDB gives each model its own Connection, and each Connection builds its own
        botocore client on first use (about 45 ms each): a first request touching three tables
        would pay three times. Sharing one pays once.
        """
        shared = Connection(region=self.settings.region, host=self.settings.aws_endpoint_url)
        for model in (
            self.leads,
            self.identities,
            self.events,
            self.consent,
            self.forms,
            self.idempotency,
            self.submission_counters,
            self.sites,
            self.templates,
            self.waits,
            self.journeys,
            self.qualification,
            *([self.import_receipts] if self.import_receipts is not None else []),
        ):
            table = model._get_connection()
            meta = table.get_meta_table()
            if meta.table_name not in shared._tables:  # two models may share a table
                shared.add_meta_table(meta)
            table.connection = shared
        return shared


def _bind[M: Model](model: type[M], table_name: str, settings: Settings) -> type[M]:
    meta: dict[str, Any] = {"table_name": table_name, "region": settings.region}
    if settings.aws_endpoint_url:
        meta["host"] = settings.aws_endpoint_url
    return type(model.__name__, (model,), {"Meta": type("Meta", (), meta)})


@lru_cache(maxsize=8)
def bind_tables(settings: Settings) -> Tables:
    tables = Tables(
        leads=_bind(LeadItem, settings.leads_table, settings),
        identities=_bind(LeadIdentityItem, settings.lead_identities_table, settings),
        events=_bind(EventItem, settings.events_table, settings),
        consent=_bind(ConsentItem, settings.consent_table, settings),
        forms=_bind(FormItem, settings.forms_table, settings),
        idempotency=_bind(IdempotencyItem, settings.idempotency_table, settings),
        submission_counters=_bind(SubmissionCounterItem, settings.idempotency_table, settings),
        sites=_bind(SiteItem, settings.sites_table, settings),
        templates=_bind(MailTemplateItem, settings.templates_table, settings),
        waits=_bind(JourneyWaitItem, settings.journey_waits_table, settings),
        journeys=_bind(JourneyRecordItem, settings.journeys_table, settings),
        qualification=_bind(QualificationItem, settings.qualification_table, settings),
        settings=settings,
        import_receipts=_bind(ImportReceiptItem, settings.imports_table, settings)
        if settings.imports_table
        else None,
    )
    _ = tables.connection  # share it now: no client is built until the first request
    return tables


def get_or_none[M: Model](
    model: type[M], hash_key: str, range_key: str | int | None = None
) -> M | None:
    """A strongly consistent read that answers None for a missing item."""
    try:
        return model.get(hash_key, range_key, consistent_read=True)
    except model.DoesNotExist:
        return None


BATCH_GET = 100
"""DynamoDB's limit on the keys of one BatchGetItem."""


def batch_get(tables: Tables, request: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """BatchGetItem until nothing is left unprocessed; the raw items per table."""
    client: Any = tables.connection.client
    found: dict[str, list[dict[str, Any]]] = {}
    while request:
        response = client.batch_get_item(RequestItems=request)
        for table, items in response["Responses"].items():
            found.setdefault(table, []).extend(items)
        request = response.get("UnprocessedKeys") or {}
    return found


def lead_items(tables: Tables, lead_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The leads' raw items in the order given, read strongly consistent (one BatchGetItem a
    hundred); one deleted meanwhile is left out."""
    table = tables.leads.Meta.table_name
    items: dict[str, dict[str, Any]] = {}
    for start in range(0, len(lead_ids), BATCH_GET):
        keys = [{"lead_id": {"S": lead_id}} for lead_id in lead_ids[start : start + BATCH_GET]]
        found = batch_get(tables, {table: {"Keys": keys, "ConsistentRead": True}})
        items |= {item["lead_id"]["S"]: item for item in found.get(table, [])}
    return [items[lead_id] for lead_id in lead_ids if lead_id in items]
