"""Changing a lead as a step of a journey, from the CLI, or from the CRM: stage, tags, fields,
CRM status. Every change that others react to is also an event on the stream - a stage reached
can start a journey, a CRM status can end one."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from tsunagu.clock import isoformat
from tsunagu.errors import ConcurrentUpdate, NotFound
from tsunagu.ids import new_id
from tsunagu.leads.capture import WriteConflict
from tsunagu.leads.crm_status import canonical_status
from tsunagu.leads.field_values import checked_field_values
from tsunagu.leads.merge import Channel, merge_fields
from tsunagu.leads.model import Lead, LeadEvent, not_reserved_field
from tsunagu.text import has_control_characters

STAGES = (
    "lead",
    "mql",
    "sql",
    "opportunity",
    "customer",
    "recycled",
    "disqualified",
)
Tag = Annotated[str, Field(pattern=r"^[\w][\w .:/-]{0,49}$")]
FIELD_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
FieldName = Annotated[str, Field(pattern=FIELD_NAME_PATTERN)]
"""A lead field's name as forms and imports write them (a name any tool can carry)."""


def _one_line(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("contains control characters or line breaks")
    return value


def _crm_status(value: str) -> str:
    kept = canonical_status(value)
    if not kept:
        raise ValueError("is blank")
    return kept


FieldText = Annotated[str, Field(max_length=500), AfterValidator(_one_line)]
LeadFieldName = Annotated[FieldName, AfterValidator(not_reserved_field)]
"""A field of a lead: not one of the lead's own attributes (stage, score, email, ...)."""


class LeadUpdate(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    stage: str | None = Field(default=None, pattern="^(" + "|".join(STAGES) + ")$")
    add_tags: list[Tag] = Field(default_factory=list, max_length=20)
    remove_tags: list[Tag] = Field(default_factory=list, max_length=20)
    fields: dict[LeadFieldName, FieldText] = Field(default_factory=dict, max_length=50)
    crm_status: Annotated[str, AfterValidator(_one_line), AfterValidator(_crm_status)] | None = (
        Field(default=None, min_length=1, max_length=60)
    )
    """Kept in the words the CRM's own reports are kept in (商談中: "in negotiation"), so a
    journey's exit and the CRM merge read a rep's status as they read the CRM's."""

    # An owner that is no address is refused here, where it is typed, not by the hand-off that
    # would mail it; a valid one is stored normalised, as the CRM's and the owner rules' are.
    _field_values = field_validator("fields")(checked_field_values)


def apply_update(
    lead: Lead, update: LeadUpdate, *, by: str, source: Channel, now: datetime
) -> tuple[Lead, list[LeadEvent]]:
    """The lead after the update, and the events saying what changed (none if nothing did).
    Fields merge by the channel's rank (tsunagu.leads.merge): one a higher channel set keeps
    its value, and ``lead_updated`` names it (``kept_fields``) with why (``kept_reasons``)."""
    at = isoformat(now)
    events: list[LeadEvent] = []

    def event(kind: str, **properties: object) -> None:
        events.append(
            LeadEvent(
                new_id("evt", now), kind, at, lead.lead_id, properties={**properties, "by": by}
            )
        )

    changed = lead
    if update.stage is not None and update.stage != lead.stage:
        event("stage_changed", **{"from": lead.stage, "to": update.stage})
        history = {"from": lead.stage, "to": update.stage, "by": by, "at": at}
        changed = replace(changed, stage=update.stage, stage_history=[*lead.stage_history, history])
    if update.crm_status is not None and update.crm_status != lead.crm_status:
        event("crm_status_changed", **{"from": lead.crm_status, "to": update.crm_status})
        # With who and when: the CRM merge policy weighs a status set here against the CRM's.
        changed = replace(
            changed, crm_status=update.crm_status, crm_status_source=source, crm_status_at=at
        )
    tags = (set(lead.tags) | set(update.add_tags)) - set(update.remove_tags)
    merged = merge_fields(lead.fields, update.fields, source=source, at=at)
    if tags != lead.tags or merged.changed or merged.kept:
        # A field asked for and not set (the CRM's value outranks it) is said on the timeline,
        # with why: an update that changed nothing is not silent.
        kept = (
            {"kept_fields": sorted(merged.kept), "kept_reasons": merged.kept_reasons(source)}
            if merged.kept
            else {}
        )
        event(
            "lead_updated",
            tags_added=sorted(tags - lead.tags),
            tags_removed=sorted(lead.tags - tags),
            fields=sorted(merged.changed),
            **kept,
        )
    if tags != lead.tags or merged.changed:
        changed = replace(changed, tags=tags, fields=merged.fields)
    if changed is not lead:  # fields only kept change nothing on the lead
        changed = replace(changed, updated_at=at)
    return changed, events


class LeadChanges(Protocol):
    def get_lead(self, lead_id: str) -> Lead | None: ...

    def save_changes(self, lead: Lead, events: list[LeadEvent]) -> None:
        """Lead and events in one transaction; WriteConflict if the lead changed meanwhile."""
        ...


def update_lead(
    lead_id: str,
    update: LeadUpdate,
    *,
    by: str,
    source: Channel,
    store: LeadChanges,
    now: datetime,
    attempts: int = 3,
) -> tuple[Lead, list[LeadEvent]]:
    """Read, change, write with the lead's version; a concurrent writer makes it read again."""
    for _ in range(attempts):
        lead = store.get_lead(lead_id)
        if lead is None:
            raise NotFound(f"no lead {lead_id!r}")
        changed, events = apply_update(lead, update, by=by, source=source, now=now)
        if not events:
            return lead, []
        try:
            store.save_changes(changed, events)
        except WriteConflict:
            continue
        return changed, events
    raise ConcurrentUpdate(f"lead {lead_id} kept changing; try again")
