"""Applying a CRM's report (``POST /crm/leads``) to the lead: merge by policy, never silently.

The CRM's fields live on the lead as ``crm_id``, ``owner_email``, ``deal_amount`` and
``deal_currency`` (each remembering that the CRM set it, and when). The status is the lead's own
``crm_status``, in the words journeys' exits use, kept with who set it and when - the one place
a person, a journey and the CRM all set it, so the merge policy weighs the CRM's report against
a status set in Tsunagu - and moves the lifecycle stage where the status says so (won:
customer). The replay guard, the lead, the CRM identity and the events are written in one
transaction: a request is applied once or not at all. An update from a CRM record other than the
one the lead is linked to is refused whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from tsunagu.clock import isoformat
from tsunagu.errors import NotFound
from tsunagu.ids import new_id
from tsunagu.leads.crm_status import CrmStatus
from tsunagu.leads.merge import FieldValue
from tsunagu.leads.model import Lead, LeadEvent
from tsunagu.qualification.crm import (
    CrmUpdate,
    FieldConflict,
    LinkedToAnotherRecord,
    MergePolicy,
    VerifiedRequest,
    merge_crm_update,
)

# Merge name -> the lead's field (the status is not a field: see Lead.crm_status_value).
LEAD_FIELDS = {
    "crm_id": "crm_id",
    "owner": "owner_email",
    "deal_amount": "deal_amount",
    "currency": "deal_currency",
}

# Where a CRM status moves the lifecycle stage, and from which stages (never backwards). A won
# deal is a fact, not a judgement: the lead is a customer whatever marketing thought of it
# before, disqualified included (else it stays out of the funnel's customers and of the journeys
# a customer starts).
STAGE_FOR_STATUS = {
    CrmStatus.WORKING: ("sql", {"lead", "mql", "recycled"}),
    CrmStatus.IN_NEGOTIATION: ("opportunity", {"lead", "mql", "sql", "recycled"}),
    CrmStatus.WON: (
        "customer",
        {"lead", "mql", "sql", "opportunity", "recycled", "disqualified"},
    ),
    CrmStatus.LOST: ("recycled", {"sql", "opportunity"}),
    CrmStatus.DISQUALIFIED: ("disqualified", {"lead", "mql", "sql", "recycled"}),
}


class CrmStore(Protocol):
    def find_lead_for_crm(self, crm_id: str, email: str) -> Lead | None: ...

    def save_crm_sync(
        self, lead: Lead, events: Sequence[LeadEvent], request: VerifiedRequest, crm_id: str
    ) -> None:
        """All or nothing. ReplayedRequest if the request was applied before; WriteConflict
        if the lead changed meanwhile."""
        ...


@dataclass(frozen=True)
class CrmSyncResult:
    lead_id: str
    changed: list[str]
    conflicts: list[FieldConflict]
    stage: str

    def as_body(self) -> dict[str, Any]:
        return {
            "lead_id": self.lead_id,
            "changed": self.changed,
            "stage": self.stage,
            "conflicts": [
                {
                    "field": c.field,
                    "kept": c.kept.value,
                    "kept_from": c.kept.source.value,
                    "offered": c.offered,
                    "reason": c.reason,
                }
                for c in self.conflicts
            ],
        }


def apply_crm_update(
    update: CrmUpdate,
    request: VerifiedRequest,
    *,
    policy: MergePolicy,
    store: CrmStore,
    now: datetime,
) -> CrmSyncResult:
    request.refuse_a_change_dated_later(update.updated_at)
    lead = store.find_lead_for_crm(update.crm_id, update.email)
    if lead is None:
        raise NotFound(f"no lead with CRM id {update.crm_id!r} or the address {update.email}")
    linked = lead.fields.get("crm_id")
    if linked is not None and linked.value and linked.value != update.crm_id:
        # Found by the address, but the lead speaks for another record: applying this one's
        # status (or linking its id too) would let two records overwrite each other's word.
        raise LinkedToAnotherRecord(
            f"the lead with the address {update.email} is linked to CRM record "
            f"{linked.value!r}, not {update.crm_id!r}: nothing was changed. Merge the duplicate "
            "records in the CRM, or send the update from the linked one"
        )
    current = {
        name: lead.fields[field] for name, field in LEAD_FIELDS.items() if field in lead.fields
    }
    status = lead.crm_status_value()
    if status is not None:
        current["status"] = status
    merge = merge_crm_update(current, update, policy)
    at = isoformat(now)
    fields = dict(lead.fields)
    changed_names = []
    new_status: FieldValue | None = None
    for change in merge.changes:
        if change.field == "status":
            new_status = change.new
            changed_names.append("crm_status")
            continue
        field = LEAD_FIELDS[change.field]
        fields[field] = FieldValue(change.new.value, change.new.source, change.new.at)
        changed_names.append(field)
    events: list[LeadEvent] = []

    def event(kind: str, **properties: Any) -> None:
        properties["by"] = "crm"
        events.append(LeadEvent(new_id("evt", now), kind, at, lead.lead_id, properties=properties))

    changed = replace(lead, fields=fields, updated_at=at)
    if new_status is not None and update.canonical_status is not None:
        if update.canonical_status != lead.crm_status:
            event("crm_status_changed", **{"from": lead.crm_status, "to": update.canonical_status})
        changed = replace(
            changed,
            crm_status=update.canonical_status,
            crm_status_source=new_status.source,
            crm_status_at=new_status.at,
        )
        move = STAGE_FOR_STATUS.get(update.status_code) if update.status_code else None
        if move is not None and lead.stage in move[1] and move[0] != lead.stage:
            event("stage_changed", **{"from": lead.stage, "to": move[0]})
            history = {"from": lead.stage, "to": move[0], "by": "crm", "at": at}
            changed = replace(changed, stage=move[0], stage_history=[*lead.stage_history, history])
    if changed_names:
        event("lead_updated", fields=sorted(changed_names), source="crm")
    if merge.conflicts:
        event(
            "crm_conflict",
            fields=[c.field for c in merge.conflicts],
            reasons=[c.reason for c in merge.conflicts],
        )
    store.save_crm_sync(changed, events, request, update.crm_id)
    return CrmSyncResult(lead.lead_id, sorted(changed_names), merge.conflicts, changed.stage)
