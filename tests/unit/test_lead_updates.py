"""Changing a lead (stage, tags, fields, CRM status) and the events each change puts on the stream
(tsunagu.leads.updates)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from tsunagu.clock import isoformat
from tsunagu.errors import ConcurrentUpdate, NotFound
from tsunagu.journeys.model import Journey
from tsunagu.leads.capture import WriteConflict
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import Lead, LeadEvent
from tsunagu.leads.updates import LeadUpdate, apply_update, update_lead
from tsunagu.qualification.crm import CrmUpdate

NOW = datetime(2026, 12, 9, 1, 0, tzinfo=UTC)
AT = "2026-11-20T09:00:00.000Z"
BY = "journey:welcome_nurture"


def lead(**overrides: Any) -> Lead:
    values: dict[str, Any] = {
        "lead_id": "lead_1",
        "email": "hanako@example.jp",
        "fields": {"company": FieldValue("Example 株式会社", Channel.WEB_FORM, AT)},
        "sources": ["web_form"],
        "visitor_ids": set(),
        "stage": "lead",
        "created_at": AT,
        "updated_at": AT,
        "tags": {"seminar-2026-12"},
        "version": 3,
    }
    return Lead(**{**values, **overrides})


def apply(
    update: LeadUpdate, before: Lead | None = None, source: Channel = Channel.JOURNEY
) -> tuple[Lead, list[LeadEvent]]:
    return apply_update(before or lead(), update, by=BY, source=source, now=NOW)


def kinds(events: list[LeadEvent]) -> list[str]:
    return [e.type for e in events]


# ---------------------------------------------------------------- apply_update
def test_a_stage_change_says_from_to_and_by() -> None:
    changed, events = apply(LeadUpdate(stage="mql"))
    assert changed.stage == "mql" and changed.updated_at == isoformat(NOW)
    [event] = events
    assert (event.type, event.lead_id, event.occurred_at) == (
        "stage_changed",
        "lead_1",
        isoformat(NOW),
    )
    assert event.properties == {"from": "lead", "to": "mql", "by": BY}
    assert event.event_id.startswith("evt")


def test_a_crm_status_change_says_from_to_and_by() -> None:
    changed, events = apply(LeadUpdate(crm_status="In Negotiation"))
    assert changed.crm_status == "in negotiation"
    assert [(e.type, e.properties) for e in events] == [
        ("crm_status_changed", {"from": None, "to": "in negotiation", "by": BY})
    ]


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("商談中", "in negotiation"),
        ("ＩＮ＿ＮＥＧＯＴＩＡＴＩＯＮ", "in negotiation"),
        ("受注", "won"),
        ("Closed-Won", "won"),
        ("対応中", "working"),
        ("  Nurture Later ", "Nurture Later"),
    ],
)
def test_a_status_a_rep_types_is_kept_in_the_words_the_crms_status_is_kept_in(
    typed: str, kept: str
) -> None:
    # When a rep sets the status in their own words (``leads set --crm-status 商談中``)
    changed, events = apply(LeadUpdate(crm_status=typed), source=Channel.SALES)

    # Then it is kept as the same status from the CRM's webhook is kept
    assert (
        changed.crm_status
        == kept
        == CrmUpdate.model_validate(
            {"crm_id": "c1", "email": "hanako@example.jp", "status": typed, "updated_at": AT}
        ).canonical_status
    )
    assert events[0].properties["to"] == kept


def test_a_status_a_rep_types_in_japanese_takes_the_lead_out_of_nurture() -> None:
    # When a rep marks the lead 商談中
    changed, _ = apply(LeadUpdate(crm_status="商談中"), source=Channel.SALES)

    # Then a journey with the default exit lets go of it, as it does when the CRM says 商談中
    welcome = Journey(journey_id="welcome", name="Welcome", state_machine="welcome")
    assert welcome.leaves_on_crm_status(changed.crm_status)


def test_tags_added_and_removed_are_one_lead_updated_event() -> None:
    update = LeadUpdate(
        add_tags=["re-engaged", "interest:pricing"], remove_tags=["seminar-2026-12"]
    )
    changed, events = apply(update)
    assert changed.tags == {"re-engaged", "interest:pricing"}
    assert [(e.type, e.properties) for e in events] == [
        (
            "lead_updated",
            {
                "tags_added": ["interest:pricing", "re-engaged"],
                "tags_removed": ["seminar-2026-12"],
                "fields": [],
                "by": BY,
            },
        )
    ]


def test_removing_wins_over_adding_the_same_tag() -> None:
    changed, events = apply(LeadUpdate(add_tags=["dormant"], remove_tags=["dormant"]))
    assert "dormant" not in changed.tags and events == []


def test_a_field_set_by_a_ranking_channel_is_changed_and_named() -> None:
    update = LeadUpdate(fields={"company": "Example Holdings", "title": "部長"})
    changed, events = apply(update, source=Channel.SALES)
    assert changed.fields["company"] == FieldValue(
        "Example Holdings", Channel.SALES, isoformat(NOW)
    )
    assert changed.fields["title"].value == "部長"
    [event] = events
    assert event.properties["fields"] == ["company", "title"]


def test_a_journey_sets_a_field_over_what_a_form_said() -> None:
    # Given a lead whose interest came from the web form
    before = lead(fields={"interest": FieldValue("general", Channel.WEB_FORM, AT)})
    # When a journey's update_lead sets it, "as a sales person would set it"
    changed, events = apply(LeadUpdate(fields={"interest": "pricing"}), before)
    # Then it is set, by the journey, and the event names it
    assert changed.fields["interest"] == FieldValue("pricing", Channel.JOURNEY, isoformat(NOW))
    [event] = events
    assert event.properties["fields"] == ["interest"] and "kept_fields" not in event.properties
    # ... and the next web form does not undo it, as it would not undo a person's edit
    form, _ = apply(LeadUpdate(fields={"interest": "general"}), changed, Channel.WEB_FORM)
    assert form.fields["interest"].value == "pricing"
    # ... while a person's later edit wins over the journey's, as over another person's
    person, _ = apply(LeadUpdate(fields={"interest": "support"}), changed, Channel.SALES)
    assert person.fields["interest"] == FieldValue("support", Channel.SALES, isoformat(NOW))


@pytest.mark.parametrize("source", [Channel.JOURNEY, Channel.SALES])
def test_a_field_the_crm_set_is_kept_and_the_timeline_says_why(source: Channel) -> None:
    # Given a company name the CRM set
    before = lead(fields={"company": FieldValue("Example Holdings", Channel.CRM, AT)})
    # When a journey (or a person in Tsunagu) sets it, with a tag
    changed, events = apply(
        LeadUpdate(fields={"company": "Example", "title": "部長"}, add_tags=["hot"]),
        before,
        source,
    )
    # Then the CRM's value stays, the rest is set, and the event says what was kept and why
    assert changed.fields["company"].value == "Example Holdings"
    assert changed.fields["title"].value == "部長" and "hot" in changed.tags
    [event] = events
    assert event.type == "lead_updated"
    assert (event.properties["fields"], event.properties["kept_fields"]) == (["title"], ["company"])
    assert event.properties["kept_reasons"] == {
        "company": f"set by crm, which ranks above {source.value}"
    }


def test_an_update_whose_every_field_is_kept_still_says_so_and_changes_nothing() -> None:
    before = lead(fields={"company": FieldValue("Example Holdings", Channel.CRM, AT)})
    changed, events = apply(LeadUpdate(fields={"company": "Example"}), before)
    # Nothing on the lead changed (not even when it was updated) ...
    assert changed == before and changed.updated_at == AT
    # ... but the step is not silent: the timeline shows the field it did not set
    [event] = events
    assert (event.type, event.properties["fields"], event.properties["kept_fields"]) == (
        "lead_updated",
        [],
        ["company"],
    )


def test_every_change_at_once_is_one_event_per_kind_in_order() -> None:
    update = LeadUpdate(stage="sql", crm_status="contacted", add_tags=["hot"])
    changed, events = apply(update)
    assert kinds(events) == ["stage_changed", "crm_status_changed", "lead_updated"]
    assert (changed.stage, changed.crm_status, "hot" in changed.tags) == ("sql", "working", True)
    assert len({e.event_id for e in events}) == 3


@pytest.mark.parametrize(
    "update",
    [
        LeadUpdate(),
        LeadUpdate(stage="lead"),
        LeadUpdate(crm_status="new"),
        LeadUpdate(add_tags=["seminar-2026-12"]),
        LeadUpdate(remove_tags=["never-had-it"]),
        LeadUpdate(fields={"company": "Example 株式会社"}),
        LeadUpdate(fields={"company": ""}),  # blank never erases
    ],
)
def test_nothing_changed_means_no_events_and_the_same_lead(update: LeadUpdate) -> None:
    before = lead(crm_status="new")
    changed, events = apply(update, before, source=Channel.WEB_FORM)
    assert events == []
    assert changed == before and changed.updated_at == AT


def test_the_original_lead_is_not_modified() -> None:
    before = lead()
    apply(LeadUpdate(stage="mql", add_tags=["x"]), before)
    assert before.stage == "lead" and before.tags == {"seminar-2026-12"}


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "values",
    [
        {"stage": "won"},
        {"stage": "MQL"},
        {"add_tags": ["-starts-with-a-dash"]},
        {"add_tags": ["has,comma"]},
        {"add_tags": ["x" * 51]},
        {"remove_tags": [""]},
        {"add_tags": [f"t{n}" for n in range(21)]},
        {"crm_status": ""},
        {"crm_status": "   "},
        {"crm_status": "x" * 61},
        {"owner": "sales@example.jp"},
    ],
)
def test_invalid_updates_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        LeadUpdate.model_validate(values)


@pytest.mark.parametrize("owner", ["佐藤 営業部", "sato", "sato@", "sato@@example.com"])
def test_an_owner_that_is_no_address_is_refused_naming_the_field(owner: str) -> None:
    with pytest.raises(ValidationError, match="owner_email must be an e-mail address"):
        LeadUpdate(fields={"owner_email": owner})


def test_an_owner_is_stored_as_an_address_is_and_other_fields_as_typed() -> None:
    # When a rep types the owner with the IME in full-width, the domain in capitals
    update = LeadUpdate(fields={"owner_email": "ｓａｔｏ＠Example.COM", "title": "Ｓａｔｏ"})
    # Then the owner is the address the hand-off mails and the owner filter finds
    assert update.fields == {"owner_email": "sato@example.com", "title": "Ｓａｔｏ"}


@pytest.mark.parametrize(
    "stage", ["lead", "mql", "sql", "opportunity", "customer", "recycled", "disqualified"]
)
def test_every_lifecycle_stage_is_accepted(stage: str) -> None:
    assert LeadUpdate(stage=stage).stage == stage


def test_tags_may_carry_japanese_and_separators() -> None:
    update = LeadUpdate(add_tags=["展示会:2026/12", "interest:case-studies", "re engaged"])
    assert len(update.add_tags) == 3


# ---------------------------------------------------------------- update_lead
class ConflictingStore:
    """Returns the lead; refuses the first ``conflicts`` saves as a concurrent writer would."""

    def __init__(self, stored: Lead | None, conflicts: int = 0) -> None:
        self.stored = stored
        self.conflicts = conflicts
        self.reads = 0
        self.saved: list[tuple[Lead, list[LeadEvent]]] = []

    def get_lead(self, lead_id: str) -> Lead | None:
        self.reads += 1
        return self.stored

    def save_changes(self, lead: Lead, events: list[LeadEvent]) -> None:
        if self.conflicts:
            self.conflicts -= 1
            raise WriteConflict("lead")
        self.saved.append((lead, events))


def update(store: ConflictingStore, change: LeadUpdate) -> tuple[Lead, list[LeadEvent]]:
    return update_lead("lead_1", change, by=BY, source=Channel.JOURNEY, store=store, now=NOW)


def test_update_lead_saves_the_lead_with_its_events() -> None:
    store = ConflictingStore(lead())
    changed, events = update(store, LeadUpdate(add_tags=["dormant"]))
    assert store.saved == [(changed, events)]
    assert kinds(events) == ["lead_updated"] and changed.version == 3


def test_update_lead_reads_again_after_a_write_conflict() -> None:
    store = ConflictingStore(lead(), conflicts=2)
    changed, events = update(store, LeadUpdate(stage="mql"))
    assert store.reads == 3 and len(store.saved) == 1
    assert changed.stage == "mql" and kinds(events) == ["stage_changed"]


def test_update_lead_gives_up_after_three_conflicts() -> None:
    store = ConflictingStore(lead(), conflicts=3)
    with pytest.raises(ConcurrentUpdate, match="kept changing"):
        update(store, LeadUpdate(stage="mql"))
    assert store.reads == 3 and store.saved == []


def test_update_lead_without_a_change_writes_nothing() -> None:
    before = lead()
    store = ConflictingStore(before)
    assert update(store, LeadUpdate(stage="lead")) == (before, [])
    assert store.saved == []


def test_update_lead_on_a_missing_lead_is_not_found() -> None:
    with pytest.raises(NotFound, match="lead_1"):
        update(ConflictingStore(None), LeadUpdate(stage="mql"))


@pytest.mark.parametrize("name", ["email", "stage", "score", "lead_id", "tags", "updated_at"])
def test_a_field_may_not_take_the_name_of_the_lead_s_own_attribute(name: str) -> None:
    with pytest.raises(ValidationError, match="the lead's own"):
        LeadUpdate(fields={name: "x"})
