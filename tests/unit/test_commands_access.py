"""Who may do what (tsunagu.commands.access): every operation walked with every role against the
issue's description of the roles, and the audit log's record of changes and refusals
(tsunagu.commands.audit), with the lead use cases on fakes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.unit.journey_fixtures import journey
from tests.unit.mail_fakes import MemoryMailStore
from tests.unit.test_journey_steps import MemoryJourneyStore, RecordingExecutions
from tsunagu.commands import journeys, leads, qualification
from tsunagu.commands.access import OPERATIONS, Actor, Role, authorise
from tsunagu.commands.audit import (
    EVERY_ENTRY,
    AuditEntry,
    AuditFilter,
    as_csv,
    list_entries,
    what_changed,
)
from tsunagu.errors import ConcurrentUpdate, Forbidden, ValidationFailed
from tsunagu.journeys.model import PublishedVersion, ResumePolicy
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import ConsentEvidence, Lead, LeadEvent, email_identity
from tsunagu.leads.updates import LeadUpdate
from tsunagu.mail.consent import SUPPRESSION_REASONS, SuppressionEntry
from tsunagu.qualification.config import QualificationConfig

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
OWNER = "sales.sato@example.com"

# What the issue gives each role, operation by operation (False: refused outright; "own": only
# on the leads the caller owns).
EXPECTED: dict[str, dict[Role, bool | str]] = {
    "leads.search": {Role.ADMIN: True, Role.MARKETER: True, Role.SALES: True, Role.VIEWER: True},
    "leads.reindex": {
        Role.ADMIN: True, Role.MARKETER: False, Role.SALES: False, Role.VIEWER: False,
    },
    "leads.show": {Role.ADMIN: True, Role.MARKETER: True, Role.SALES: True, Role.VIEWER: True},
    "imports.mappings": {
        Role.ADMIN: True, Role.MARKETER: True, Role.SALES: False, Role.VIEWER: False,
    },
    "leads.export": {
        Role.ADMIN: True, Role.MARKETER: True, Role.SALES: False, Role.VIEWER: False,
    },
    "segments.save": {
        Role.ADMIN: True, Role.MARKETER: True, Role.SALES: False, Role.VIEWER: False,
    },
    "segments.delete": {
        Role.ADMIN: True, Role.MARKETER: True, Role.SALES: False, Role.VIEWER: False,
    },
    "leads.timeline": {Role.ADMIN: True, Role.MARKETER: True, Role.SALES: True, Role.VIEWER: True},
    "leads.update": {Role.ADMIN: True, Role.MARKETER: True, Role.SALES: "own", Role.VIEWER: False},
    "leads.record_event": {
        Role.ADMIN: True, Role.MARKETER: True, Role.SALES: False, Role.VIEWER: False,
    },
    "leads.suppress": {
        Role.ADMIN: True, Role.MARKETER: True, Role.SALES: False, Role.VIEWER: False,
    },
    **{
        name: {Role.ADMIN: True, Role.MARKETER: False, Role.SALES: False, Role.VIEWER: False}
        for name in (
            "audit.list", "users.list", "users.save", "reports.rebuild", "reports.rebuilds",
            "sites.rotate_secret",
        )
    },
    # A sales rep reads leads - each with its score explained - and the hot list (README's role
    # table)...
    **{
        name: {Role.ADMIN: True, Role.MARKETER: True, Role.SALES: True, Role.VIEWER: True}
        for name in ("leads.score", "leads.hot")
    },
    # ...and nothing marketing keeps: the exclusion list names customers under contract and
    # competitors, the suppression list who complained, the imports who loaded which file, the
    # failed CRM pushes every owner's leads. A viewer reads them all.
    **{
        name: {Role.ADMIN: True, Role.MARKETER: True, Role.SALES: False, Role.VIEWER: True}
        for name in (
            "segments.list", "segments.preview", "journeys.list", "forms.list", "sites.list",
            "qualification.show", "crm.pushes", "templates.list", "suppressions.list",
            "reports.show", "imports.list", "exclusions.list",
        )
    },
    **{
        name: {Role.ADMIN: True, Role.MARKETER: True, Role.SALES: False, Role.VIEWER: False}
        for name in (
            "journeys.start", "journeys.publish", "journeys.rollback", "journeys.set_status",
            "journeys.pause", "journeys.resume", "journeys.stop_all", "journeys.resume_all",
            "qualification.set", "forms.save", "sites.save", "templates.save", "journeys.save",
            "templates.test_send", "leads.unsuppress", "imports.plan", "imports.run",
            "imports.undo", "exclusions.save",
        )
    },
}  # fmt: skip


def test_the_table_has_exactly_the_operations_described() -> None:
    assert set(OPERATIONS) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("role", list(Role))
def test_every_operation_with_every_role(name: str, role: Role) -> None:
    actor = Actor(user_id="u1", role=role, email="someone@example.com", via="api")
    expected = EXPECTED[name][role]
    if expected is False:
        with pytest.raises(Forbidden):
            authorise(actor, name)
    else:
        assert authorise(actor, name).name == name
        assert (role in OPERATIONS[name].own_leads_only) == (expected == "own")


# ---------------------------------------------------------------- fakes
@dataclass
class FakeLeads:
    stored: dict[str, Lead]
    events_put: list[LeadEvent] = field(default_factory=list)

    def find_lead(self, identity: str) -> Lead | None:
        found = (x for x in self.stored.values() if email_identity(x.email.casefold()) == identity)
        return next(found, None)

    def get_lead(self, lead_id: str) -> Lead | None:
        return self.stored.get(lead_id)

    def save_changes(self, lead: Lead, events: list[LeadEvent]) -> None:
        self.stored[lead.lead_id] = lead
        self.events_put += events

    def put_event(self, event: LeadEvent) -> None:
        self.events_put.append(event)

    def events(self, lead_id: str, limit: int = 100) -> list[LeadEvent]:
        return [e for e in self.events_put if e.lead_id == lead_id][:limit]

    def timeline(self, lead: Lead, limit: int = 500, before: str | None = None) -> list[LeadEvent]:
        return self.events(lead.lead_id, limit)

    def consent_evidence(self, lead_id: str) -> list[ConsentEvidence]:
        return []

    def consent_state(self, lead_id: str) -> dict[str, str]:
        return {"marketing": "opted_in"}


@dataclass
class FakeSuppressions:
    suppressed: list[str] = field(default_factory=list)
    standing: SuppressionEntry | None = None
    """The lead's suppression, as a test sets it up."""

    def suppress(
        self, lead_id: str, email: str, reason: str, at: str, event: LeadEvent
    ) -> SuppressionEntry | None:
        self.suppressed.append(lead_id)
        return None

    def suppression(self, lead_id: str) -> SuppressionEntry | None:
        return self.standing

    def lift_suppression(self, entry: SuppressionEntry, event: LeadEvent) -> bool:
        assert entry == self.standing
        self.standing = None
        return True


@dataclass
class FakeAudit:
    kept: dict[str, AuditEntry] = field(default_factory=dict)

    def append(self, entry: AuditEntry) -> None:
        assert entry.entry_id not in self.kept, "an entry was overwritten"
        self.kept[entry.entry_id] = entry

    def entries(
        self,
        since: datetime,
        until: datetime,
        *,
        limit: int = 200,
        matching: AuditFilter = EVERY_ENTRY,
        before: str | None = None,
    ) -> list[AuditEntry]:
        kept = [e for e in self.kept.values() if matching.matches(e)]
        return sorted(kept, key=lambda e: e.at, reverse=True)[:limit]


class FixedClock:
    def now(self) -> datetime:
        return NOW


def ports() -> leads.LeadCommands:
    lead = Lead(
        lead_id="lead_1",
        email="aoki@example.jp",
        fields={"owner_email": FieldValue(OWNER, Channel.SALES, "2026-12-01T00:00:00Z")},
        sources=["form"],
        visitor_ids=set(),
        stage="mql",
        created_at="2026-12-01T00:00:00Z",
        updated_at="2026-12-01T00:00:00Z",
    )
    return leads.LeadCommands(
        leads=FakeLeads({lead.lead_id: lead}),
        suppressions=FakeSuppressions(),
        audit=FakeAudit(),
        clock=FixedClock(),
    )


def audit_of(p: leads.LeadCommands) -> list[AuditEntry]:
    assert isinstance(p.audit, FakeAudit)
    return list(p.audit.kept.values())


MARKETER = Actor(user_id="u-m", role=Role.MARKETER, email="mika@example.com", via="api")
SALES_OWNER = Actor(user_id="u-s", role=Role.SALES, email=OWNER, via="api")
OTHER_SALES = Actor(user_id="u-t", role=Role.SALES, email="sales.suzuki@example.com", via="api")
VIEWER = Actor(user_id="u-v", role=Role.VIEWER, email="vera@example.com", via="api")


# ---------------------------------------------------------------- the use cases and the log
def test_a_change_is_recorded_with_who_and_only_what_changed() -> None:
    p = ports()
    leads.update(p, MARKETER, "Aoki@example.jp", LeadUpdate(stage="sql", add_tags=["vip"]))
    [entry] = audit_of(p)
    assert (entry.operation, entry.target, entry.outcome) == ("leads.update", "lead:lead_1", "done")
    assert entry.actor == MARKETER and entry.at == "2026-12-03T01:00:00.000Z"
    assert entry.before == {"stage": "mql", "tags": []}
    assert entry.after == {"stage": "sql", "tags": ["vip"]}


def test_a_change_that_changes_nothing_and_an_allowed_read_are_not_recorded() -> None:
    p = ports()
    leads.update(p, MARKETER, "aoki@example.jp", LeadUpdate(stage="mql"))
    leads.show(p, VIEWER, "aoki@example.jp")
    assert audit_of(p) == []


def test_sales_sets_the_stage_of_its_own_lead_only_and_each_refusal_is_recorded() -> None:
    p = ports()
    leads.update(p, SALES_OWNER, "aoki@example.jp", LeadUpdate(stage="sql"))
    with pytest.raises(Forbidden, match="not yours"):
        leads.update(p, OTHER_SALES, "aoki@example.jp", LeadUpdate(stage="opportunity"))
    with pytest.raises(Forbidden, match="stage and CRM status only, not add_tags"):
        leads.update(p, SALES_OWNER, "aoki@example.jp", LeadUpdate(add_tags=["x"]))
    with pytest.raises(Forbidden):
        leads.suppress(p, VIEWER, "aoki@example.jp", "asked by phone")

    entries = sorted(audit_of(p), key=lambda e: e.actor.user_id)
    assert [(e.actor.user_id, e.operation, e.outcome) for e in entries] == [
        ("u-s", "leads.update", "done"),
        ("u-s", "leads.update", "refused"),
        ("u-t", "leads.update", "refused"),
        ("u-v", "leads.suppress", "refused"),
    ]
    assert p.leads.get_lead("lead_1").stage == "sql"  # type: ignore[union-attr]
    assert p.suppressions.suppressed == []  # type: ignore[attr-defined]


def test_recording_an_event_and_suppressing_are_recorded_with_what_was_done() -> None:
    p = ports()
    event = leads.record_event(p, MARKETER, "aoki@example.jp", "seminar_attended", {"id": "s1"})
    leads.suppress(p, MARKETER, "aoki@example.jp", "asked by phone")
    details = {e.operation: e for e in audit_of(p)}
    assert details["leads.record_event"].detail == f"recorded seminar_attended ({event.event_id})"
    assert details["leads.suppress"].after == {"suppressed": "manual"}
    assert details["leads.suppress"].detail == "asked by phone"
    with pytest.raises(ValidationFailed):
        leads.record_event(p, MARKETER, "aoki@example.jp", "Seminar Attended", {})
    # Tsunagu's own records are not recorded by hand: a forged import would count in the funnel
    for kind in ("lead_imported", "form_submitted", "mail_opened"):
        with pytest.raises(ValidationFailed, match="recorded by Tsunagu itself"):
            leads.record_event(p, MARKETER, "aoki@example.jp", kind, {"new_lead": "true"})


def test_only_an_admin_lists_the_log_and_the_csv_is_safe_for_a_spreadsheet() -> None:
    p = ports()
    leads.update(p, MARKETER, "aoki@example.jp", LeadUpdate(fields={"note": "=HYPERLINK(1)"}))
    admin = Actor(user_id="u-a", role=Role.ADMIN)
    with pytest.raises(Forbidden):
        list_entries(p.audit, p.clock, MARKETER, NOW - timedelta(days=1), NOW)
    page = list_entries(
        p.audit, p.clock, admin, NOW - timedelta(days=1), NOW + timedelta(seconds=1)
    )
    entries = page.entries
    assert not page.more
    # ... the marketer's attempt is itself on record, as a refusal
    assert sorted((e.operation, e.outcome) for e in entries) == [
        ("audit.list", "refused"),
        ("leads.update", "done"),
    ]
    text = as_csv(entries)
    assert text.startswith("\ufeffat,user_id,")
    assert "mika@example.com" in text and '"{""fields.note"": ""=HYPERLINK(1)""}"' in text
    assert as_csv([]).count("\r\n") == 1


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ({"a": 1, "b": 2}, {"a": 1, "b": 3}, ({"b": 2}, {"b": 3})),
        ({}, {"x": "new"}, ({"x": None}, {"x": "new"})),
        ({"same": [1]}, {"same": [1]}, ({}, {})),
    ],
)
def test_what_changed_keeps_only_the_names_that_differ(
    before: dict[str, Any], after: dict[str, Any], expected: Any
) -> None:
    assert what_changed(before, after) == expected


# ---------------------------------------------------------------- journeys
SEMINAR_MAILS = {
    node["template"]
    for node in json.loads((ROOT / "journeys" / "seminar_follow_up.json").read_text("utf-8"))[
        "nodes"
    ]
    if node.get("template")
}


def journey_ports() -> tuple[journeys.JourneyCommands, MemoryJourneyStore]:
    store = MemoryJourneyStore(journey())
    ports = journeys.JourneyCommands(
        journeys=store,  # type: ignore[arg-type]  # entry's half is not needed here
        executions=RecordingExecutions(),
        audit=FakeAudit(),
        clock=FixedClock(),
        leads=FakeLeads({}),
        entry_arn=lambda journey: f"arn:aws:states:::stateMachine:{journey.journey_id}",
        running=lambda journey: None,
        templates=lambda: SEMINAR_MAILS,
        time_zone=ZoneInfo("Asia/Tokyo"),
    )
    return ports, store


def test_who_paused_and_how_it_was_resumed_is_in_the_log() -> None:
    ports, store = journey_ports()
    journeys.pause(ports, MARKETER, "seminar_follow_up")
    with pytest.raises(Forbidden):
        journeys.stop_all(ports, VIEWER)
    journeys.resume(
        ports, MARKETER, "seminar_follow_up", ResumePolicy(kind="skip_missed", rate_per_minute=60)
    )
    journeys.stop_all(ports, MARKETER)

    assert isinstance(ports.audit, FakeAudit)
    log = list(ports.audit.kept.values())  # in the order they were appended
    assert [(e.operation, e.outcome, e.before, e.after) for e in log] == [
        ("journeys.pause", "done", {"status": "active"}, {"status": "paused"}),
        ("journeys.stop_all", "refused", {}, {}),
        ("journeys.resume", "done", {"status": "paused"}, {"status": "active"}),
        ("journeys.stop_all", "done", {"emergency_stop": False}, {"emergency_stop": True}),
    ]
    assert log[2].detail == "policy skip_missed: 0 released (none parked)"
    assert store.stop_log[-1][2] == "api:mika@example.com"  # the account's stop says who


def test_a_publication_and_a_rollback_are_recorded_with_the_versions() -> None:
    ports, store = journey_ports()
    store.definitions["seminar_follow_up"] = journey(
        published=PublishedVersion(
            version=3, version_arn="arn:v3", alias_arn="arn:alias", published_at="2026-12-01"
        )
    )
    asked: list[dict[str, Any]] = []

    def publisher(payload: dict[str, Any]) -> dict[str, Any]:
        asked.append(payload)
        if payload["action"] == "publish":
            return {"ok": True, "journey_id": "seminar_follow_up", "version": 4, "changed": True}
        return {"ok": True, "journey_id": "seminar_follow_up", "version": 2}

    definition = json.loads((ROOT / "journeys" / "seminar_follow_up.json").read_text("utf-8"))
    journeys.publish(ports, MARKETER, definition, "customer stories instead", publisher)
    journeys.rollback(ports, MARKETER, "seminar_follow_up", 2, publisher)
    with pytest.raises(Forbidden):
        journeys.publish(ports, VIEWER, definition, None, publisher)

    assert [p["action"] for p in asked] == ["publish", "rollback"]  # the viewer asked nothing
    assert isinstance(ports.audit, FakeAudit)
    log = list(ports.audit.kept.values())
    assert [(e.operation, e.before, e.after, e.outcome) for e in log] == [
        ("journeys.publish", {"version": 3}, {"version": 4}, "done"),
        ("journeys.rollback", {"version": 3}, {"version": 2}, "done"),
        ("journeys.publish", {}, {}, "refused"),
    ]
    assert log[0].detail == "customer stories instead"


@dataclass
class FakeRules:
    """The rules' store, its revision checked as the real one checks it (in the write)."""

    kept: QualificationConfig = field(default_factory=QualificationConfig)
    revision: int = 0

    def config_revision(self) -> tuple[QualificationConfig, int]:
        return self.kept, self.revision

    def replace_config(self, config: QualificationConfig, *, over: int) -> int:
        if over != self.revision:
            refused = ConcurrentUpdate("saved meanwhile")
            refused.revision = self.revision
            raise refused
        self.kept, self.revision = config, over + 1
        return self.revision


def test_a_rules_change_is_recorded_value_by_value_and_a_bad_one_changes_nothing() -> None:
    rules = FakeRules()
    ports = qualification.QualificationCommands(
        rules=rules,  # type: ignore[arg-type]  # the score's half is not needed here
        leads=FakeLeads({}),  # type: ignore[arg-type]
        audit=FakeAudit(),
        clock=FixedClock(),
    )
    before = rules.kept.scoring.mql_threshold
    scoring = {**rules.kept.model_dump(mode="json")["scoring"], "mql_threshold": 60}
    qualification.replace_sections(ports, MARKETER, {"scoring": scoring})
    with pytest.raises(ValidationFailed):
        qualification.replace_sections(ports, MARKETER, {"minimum_grade": "Z"})

    assert rules.kept.scoring.mql_threshold == 60
    [entry] = list(ports.audit.kept.values())  # type: ignore[attr-defined]
    # Only the threshold, by its path: not the scoring sheet's rules twice
    assert (entry.before, entry.after) == (
        {"scoring.mql_threshold": before},
        {"scoring.mql_threshold": 60},
    )


def test_a_rules_change_over_a_revision_saved_since_is_refused_and_changes_nothing() -> None:
    rules = FakeRules(revision=3)
    ports = qualification.QualificationCommands(
        rules=rules,  # type: ignore[arg-type]  # the score's half is not needed here
        leads=FakeLeads({}),  # type: ignore[arg-type]
        audit=FakeAudit(),
        clock=FixedClock(),
    )
    # An editor that read revision 2 (someone saved the 3rd since) is refused, once, untried
    # again: nothing stored, nothing logged, the revision now in the refusal
    with pytest.raises(ConcurrentUpdate) as refused:
        qualification.replace_sections(ports, MARKETER, {"minimum_grade": "B"}, over=2)
    assert refused.value.revision == 3
    assert (rules.kept, rules.revision) == (QualificationConfig(), 3)
    assert ports.audit.kept == {}  # type: ignore[attr-defined]
    # Over the revision now, or over none (the CLI), it is saved, and says its revision
    saved = qualification.replace_sections(ports, MARKETER, {"minimum_grade": "B"}, over=3)
    assert (saved.definition.minimum_grade, saved.revision) == ("B", 4)
    saved = qualification.replace_sections(ports, MARKETER, {"minimum_grade": "C"})
    assert (saved.definition.minimum_grade, saved.revision, rules.revision) == ("C", 5, 5)


def test_a_form_is_never_overwritten_by_accident_and_a_change_says_what_changed() -> None:
    from tsunagu.commands import definitions
    from tsunagu.errors import AlreadyExists
    from tsunagu.forms.model import FormDefinition, FormField

    @dataclass
    class Forms:
        kept: dict[str, FormDefinition] = field(default_factory=dict)

        def revised(self, key: str, /) -> tuple[FormDefinition, int] | None:
            return (self.kept[key], 1) if key in self.kept else None

        def put(
            self, definition: FormDefinition, clock: Any, /, *, new: bool = False, over: Any = None
        ) -> int:
            if new and definition.form_id in self.kept:
                raise AlreadyExists(definition.form_id)
            self.kept[definition.form_id] = definition
            return 1

        def list_revised(self) -> list[tuple[FormDefinition, int]]:
            return [(form, 1) for form in self.kept.values()]

    forms, audit = Forms(), FakeAudit()
    ports = definitions.DefinitionCommands(
        audit=audit, clock=FixedClock(), templates=MemoryMailStore()
    )
    form = FormDefinition(
        form_id="seminar",
        name="Seminar",
        fields=[FormField(name="email", type="email", required=True)],
        allowed_origins=["https://www.example.com"],
    )
    wider = form.model_copy(
        update={"allowed_origins": ["https://www.example.com", "https://x.example.jp"]}
    )

    assert (
        definitions.save(ports, MARKETER, "form", "seminar", form, forms, replace=False)[0] is False
    )
    with pytest.raises(AlreadyExists):
        definitions.save(ports, MARKETER, "form", "seminar", wider, forms, replace=False)
    assert forms.kept["seminar"] == form
    assert (
        definitions.save(ports, MARKETER, "form", "seminar", wider, forms, replace=True)[0] is True
    )
    with pytest.raises(Forbidden):
        definitions.save(ports, VIEWER, "form", "seminar", form, forms, replace=True)

    created, replaced, refused = audit.kept.values()
    assert created.detail == "created" and created.after["form_id"] == "seminar"
    assert replaced.before == {"allowed_origins": ["https://www.example.com"]}
    assert replaced.after == {
        "allowed_origins": ["https://www.example.com", "https://x.example.jp"]
    }
    assert (refused.operation, refused.outcome) == ("forms.save", "refused")


def test_the_log_keeps_only_the_setting_that_changed_named_by_its_path() -> None:
    # One rule's points changed in a sheet of several, and the minimum grade
    rules = [{"rule_id": "mail_opened", "points": 5}, {"rule_id": "form_submitted", "points": 10}]
    before = {"scoring": {"mql_threshold": 70, "rules": rules}, "minimum_grade": "D"}
    changed = [{**rules[0], "points": 8}, rules[1]]
    after = {"scoring": {"mql_threshold": 70, "rules": changed}, "minimum_grade": "C"}

    assert what_changed(before, after) == (
        {"minimum_grade": "D", "scoring.rules[mail_opened].points": 5},
        {"minimum_grade": "C", "scoring.rules[mail_opened].points": 8},
    )
    # A rule added is its own values, each named; a flat change stays as it was
    added = {"scoring": {"mql_threshold": 70, "rules": [*rules, {"rule_id": "x", "points": 1}]}}
    assert what_changed({"scoring": before["scoring"]}, added)[1] == {
        "scoring.rules.order": ["mail_opened", "form_submitted", "x"],
        "scoring.rules[x].points": 1,
        "scoring.rules[x].rule_id": "x",
    }
    # Two form fields swapped: the order is what changed
    fields = [{"name": "email"}, {"name": "company"}]
    assert what_changed({"fields": fields}, {"fields": fields[::-1]}) == (
        {"fields.order": ["email", "company"]},
        {"fields.order": ["company", "email"]},
    )
    assert what_changed({"tags": ["a"]}, {"tags": ["a", "b"]}) == (
        {"tags": ["a"]},
        {"tags": ["a", "b"]},
    )


# ---------------------------------------------------------------- who lifts a suppression
LIFTED_BY = {
    "manual": {Role.ADMIN, Role.MARKETER},
    "hard_bounce": {Role.ADMIN},
    "soft_bounce_limit": {Role.ADMIN},
    "complaint": set(),
}
"""The issue's rule: a marketer lifts a manual suppression, an admin a bounce too, no one a
complaint (the person marked our mail as spam)."""


def test_the_lift_rule_names_every_reason() -> None:
    assert set(LIFTED_BY) == set(SUPPRESSION_REASONS)


@pytest.mark.parametrize("reason", SUPPRESSION_REASONS)
@pytest.mark.parametrize("role", list(Role))
def test_who_lifts_which_suppression_and_the_lead_page_says_so(reason: str, role: Role) -> None:
    # Given the lead suppressed for this reason
    p = ports()
    standing = SuppressionEntry("lead_1", "aoki@example.jp", reason, "2026-12-02T00:00:00Z")
    p.suppressions.standing = standing  # type: ignore[attr-defined]
    actor = Actor(user_id="u-1", role=role, email="someone@example.com", via="api")
    may = role in LIFTED_BY[reason]

    # Then the lead page says who may lift it (what the console offers the lift on) ...
    shown = leads.show(p, actor, "aoki@example.jp")["suppression"]
    assert shown == {
        "reason": reason,
        "at": "2026-12-02T00:00:00Z",
        "liftable_by": [r for r in Role if r in LIFTED_BY[reason]],
    }
    assert (role in shown["liftable_by"]) is may

    # ... and the lift by this role does what it says
    if may:
        assert leads.unsuppress(p, actor, "aoki@example.jp", "asked again") == standing
        assert p.suppressions.suppression("lead_1") is None
    else:
        with pytest.raises(Forbidden):
            leads.unsuppress(p, actor, "aoki@example.jp", "asked again")
        assert p.suppressions.suppression("lead_1") == standing
