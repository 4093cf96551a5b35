"""Publishing's decisions, against an in-memory Step Functions (the runtime test is
tests/journeys/test_publishing.py): what is created, published, pointed at and recorded."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tsunagu.clock import FixedClock
from tsunagu.errors import ConcurrentUpdate, NotFound, ValidationFailed
from tsunagu.journeys import publishing
from tsunagu.journeys.compiler import read_definition
from tsunagu.journeys.definition import JourneyDefinition, Place
from tsunagu.journeys.model import Journey, StoredGraph, Trigger
from tsunagu.journeys.publishing import (
    Machine,
    MachineVersion,
    PublishingTarget,
    keep_publication,
    publish,
    rollback,
    substitute,
)

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "arn:aws:states:ap-northeast-1:123456789012:stateMachine:tsunagu-dev-"
ACTIVITIES = {
    name: f"arn:aws:lambda:ap-northeast-1:123456789012:function:{name}"
    for name in (
        "JourneyGateFunctionArn",
        "SendEmailFunctionArn",
        "WaitForEventFunctionArn",
        "NextSendTimeFunctionArn",
        "UpdateLeadFunctionArn",
        "JourneyDecideFunctionArn",
        "HandOffFunctionArn",
    )
}
TARGET = PublishingTarget(PREFIX, "arn:aws:iam::123456789012:role/journeys", ACTIVITIES)
CLOCK = FixedClock(datetime(2026, 12, 7, 1, tzinfo=UTC))


@dataclass
class FakeStateMachines:
    definitions: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, list[str | None]] = field(default_factory=dict)
    live: dict[str, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def find(self, arn: str) -> Machine | None:
        if arn not in self.definitions:
            return None
        alias = f"{arn}:live" if arn in self.live else None
        return Machine(arn, alias, self.live.get(arn))

    def create(self, name: str, definition: str, role_arn: str, note: str | None) -> str:
        self.calls.append(f"create {name} as {role_arn}")
        arn = PREFIX.rsplit(":", 1)[0] + ":" + name
        self.definitions[arn], self.notes[arn] = [definition], [note]
        return f"{arn}:1"

    def publish(self, arn: str, definition: str, note: str | None) -> str:
        self.calls.append(f"publish {arn}")
        if definition in self.definitions[arn]:  # as Step Functions: the version that has it
            return f"{arn}:{self.definitions[arn].index(definition) + 1}"
        self.definitions[arn].append(definition)
        self.notes[arn].append(note)
        return f"{arn}:{len(self.definitions[arn])}"

    def definition(self, version_arn: str) -> str:
        arn, number = version_arn.rsplit(":", 1)
        return self.definitions[arn][int(number) - 1]

    def point_alias(self, machine: Machine, version_arn: str) -> str:
        self.calls.append(f"alias -> {version_arn.rsplit(':', 1)[1]}")
        self.live[machine.arn] = version_arn
        return f"{machine.arn}:live"

    def versions(self, arn: str) -> list[MachineVersion]:
        return [
            MachineVersion(n, f"{arn}:{n}", "2026-12-07T01:00:00Z", self.notes[arn][n - 1])
            for n in range(len(self.definitions[arn]), 0, -1)
        ]


@dataclass
class FakeJourneys:
    records: dict[str, Journey] = field(default_factory=dict)
    graphs: dict[tuple[str, str], StoredGraph] = field(default_factory=dict)
    leases: dict[str, tuple[str, datetime]] = field(default_factory=dict)

    def claim_publishing(
        self, journey_id: str, holder: str, at: datetime, stale_before: datetime
    ) -> bool:
        held = self.leases.get(journey_id)
        if held is not None and held[1] >= stale_before:  # as the store's condition
            return False
        self.leases[journey_id] = (holder, at)
        return True

    def release_publishing(self, journey_id: str, holder: str) -> None:
        if self.leases.get(journey_id, ("",))[0] == holder:
            del self.leases[journey_id]

    def save_graph(self, graph: StoredGraph) -> None:
        self.graphs[(graph.journey_id, graph.which)] = graph

    def get_journey(self, journey_id: str) -> Journey | None:
        return self.records.get(journey_id)

    def put_journey(self, journey: Journey, at: str) -> Journey:
        now = self.records.get(journey.journey_id)
        if (now.revision if now else 0) != journey.revision:  # as the store
            raise ConcurrentUpdate(f"journey {journey.journey_id!r} changed meanwhile")
        stored = journey.model_copy(update={"updated_at": at, "revision": journey.revision + 1})
        self.records[journey.journey_id] = stored
        return stored


def welcome(description: str | None = None) -> JourneyDefinition:
    definition = read_definition((ROOT / "journeys" / "welcome_nurture.json").read_text("utf-8"))
    if description is None:
        return definition
    return definition.model_copy(update={"description": description})


def test_the_first_publication_creates_the_machine_its_alias_and_a_live_record() -> None:
    machines, journeys = FakeStateMachines(), FakeJourneys()
    published = publish(
        welcome(), note="first", target=TARGET, machines=machines, journeys=journeys, clock=CLOCK
    )
    assert (published.version, published.changed, published.created) == (1, True, True)
    assert machines.calls == [
        "create tsunagu-dev-journey-welcome-nurture as arn:aws:iam::123456789012:role/journeys",
        "alias -> 1",
    ]
    record = journeys.records["welcome_nurture"]
    assert record.status == "active" and record.state_machine == "journey-welcome-nurture"
    assert record.published is not None and record.published.alias_arn == published.alias_arn
    # Every substitution is an ARN: nothing of the template's ${...} is left
    asl = machines.definition(published.version_arn)
    assert "${" not in asl and ACTIVITIES["JourneyGateFunctionArn"] in asl


def test_a_versions_graph_keeps_the_draft_revision_it_was_published_from() -> None:
    # The editor tells a draft saved since (a colleague's, while this published) by it
    machines, journeys = FakeStateMachines(), FakeJourneys()
    publish(welcome(), note=None, target=TARGET, machines=machines, journeys=journeys,
            clock=CLOCK, draft_revision=4)  # fmt: skip
    publish(welcome("From a file."), note=None, target=TARGET, machines=machines,
            journeys=journeys, clock=CLOCK)  # fmt: skip
    first, second = (journeys.graphs[("welcome_nurture", f"v00000{n}")] for n in (1, 2))
    # ... and a caller that names none (one made before it was sent) leaves it unknown
    assert (first.draft_revision, second.draft_revision) == (4, None)


def test_a_journey_never_published_has_no_versions_yet_not_an_error() -> None:
    # Given a journey as shipped (its machine deployed with the stack, none published)
    machines = FakeStateMachines()
    # When its versions are asked for (the canvas does on every open)
    found, live = publishing.versions("welcome_nurture", target=TARGET, machines=machines)
    # Then there are none yet, and none is live
    assert (found, live) == ([], None)


def test_an_existing_record_keeps_its_policy_and_points_at_the_new_version() -> None:
    machines = FakeStateMachines()
    paused = Journey(
        journey_id="welcome_nurture",
        name="Welcome",
        state_machine="welcome-nurture",
        status="paused",
        paused_at="2026-12-06T00:00:00Z",
    )
    journeys = FakeJourneys({"welcome_nurture": paused})
    publish(welcome(), note=None, target=TARGET, machines=machines, journeys=journeys, clock=CLOCK)
    second = publish(
        welcome("Changed."), note="v2", target=TARGET, machines=machines, journeys=journeys,
        clock=CLOCK,
    )  # fmt: skip
    assert (second.version, second.changed, second.created) == (2, True, False)
    record = journeys.records["welcome_nurture"]
    assert (record.status, record.paused_at, record.name) == ("paused", paused.paused_at, "Welcome")
    assert record.published is not None and record.published.version == 2
    assert record.published.note == "v2"


def test_the_same_definition_again_publishes_nothing() -> None:
    machines, journeys = FakeStateMachines(), FakeJourneys()
    publish(welcome(), note=None, target=TARGET, machines=machines, journeys=journeys, clock=CLOCK)
    calls = list(machines.calls)
    again = publish(
        welcome(), note=None, target=TARGET, machines=machines, journeys=journeys, clock=CLOCK
    )
    assert (again.version, again.changed) == (1, False)
    assert machines.calls == calls


def test_a_definition_that_does_not_validate_publishes_nothing() -> None:
    machines, journeys = FakeStateMachines(), FakeJourneys()
    with pytest.raises(ValidationFailed) as refused:
        publish(
            welcome(), note=None, target=TARGET, machines=machines, journeys=journeys,
            clock=CLOCK, templates={"welcome"},
        )  # fmt: skip
    assert any(e.field == "campaign_offer" for e in refused.value.errors), refused.value.errors
    assert machines.calls == [] and journeys.records == {}


def test_a_journey_id_too_long_for_a_state_machine_name_is_refused() -> None:
    data = json.loads((ROOT / "journeys" / "re_engagement.json").read_text("utf-8"))
    data["journey_id"] = "a" * 63
    with pytest.raises(ValidationFailed) as refused:
        publish(
            JourneyDefinition.model_validate(data), note=None, target=TARGET,
            machines=FakeStateMachines(), journeys=FakeJourneys(), clock=CLOCK,
        )  # fmt: skip
    assert refused.value.errors[0].field == "journey_id"
    assert "80 characters" in refused.value.errors[0].message


def test_a_rollback_points_the_alias_back_and_says_so_on_the_record() -> None:
    machines, journeys = FakeStateMachines(), FakeJourneys()
    for description in ("One.", "Two.", "Three."):
        publish(
            welcome(description), note=description, target=TARGET, machines=machines,
            journeys=journeys, clock=CLOCK,
        )  # fmt: skip
    back = rollback(
        "welcome_nurture", to_version=None, target=TARGET, machines=machines, journeys=journeys,
        clock=CLOCK,
    )  # fmt: skip
    assert back.version == 2  # the one before the live one
    record = journeys.records["welcome_nurture"].published
    assert record is not None and (record.version, record.note) == (2, "rolled back to version 2")
    with pytest.raises(NotFound, match="has no version 7"):
        rollback(
            "welcome_nurture", to_version=7, target=TARGET, machines=machines,
            journeys=journeys, clock=CLOCK,
        )  # fmt: skip
    with pytest.raises(NotFound, match="never been published"):
        rollback(
            "re_engagement", to_version=None, target=TARGET, machines=machines,
            journeys=journeys, clock=CLOCK,
        )  # fmt: skip


@pytest.mark.parametrize("change", ["publish", "rollback"])
def test_a_pause_landing_while_a_publication_is_recorded_stays(change: str) -> None:
    # Given a published journey, and a marketer pausing it while a publication (or a
    # rollback) is between reading the record and writing it
    class PausedAfterTheRead(FakeJourneys):
        pause_next_read = False

        def get_journey(self, journey_id: str) -> Journey | None:
            read = super().get_journey(journey_id)
            if read is not None and self.pause_next_read:
                self.pause_next_read = False
                self.put_journey(read.model_copy(update={"status": "paused"}), "2026-12-07")
            return read

    machines, journeys = FakeStateMachines(), PausedAfterTheRead()
    for description in ("One.", "Two."):
        publish(
            welcome(description), note=None, target=TARGET, machines=machines,
            journeys=journeys, clock=CLOCK,
        )  # fmt: skip

    # When the publication is recorded
    journeys.pause_next_read = True
    if change == "publish":
        publish(
            welcome("Three."), note=None, target=TARGET, machines=machines,
            journeys=journeys, clock=CLOCK,
        )  # fmt: skip
    else:
        rollback(
            "welcome_nurture", to_version=1, target=TARGET, machines=machines,
            journeys=journeys, clock=CLOCK,
        )  # fmt: skip

    # Then the record says both: paused, and the version the alias routes to
    record = journeys.records["welcome_nurture"]
    assert record.status == "paused"
    assert record.published is not None
    assert record.published.version == (3 if change == "publish" else 1)


def test_a_compiled_journey_too_large_for_step_functions_publishes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a bound the shipped welcome journey's state machine is over (as 900 KB would be
    # for a very large journey: Step Functions takes 1 MB)
    monkeypatch.setattr(publishing, "MAX_ASL_BYTES", 2048)
    machines, journeys = FakeStateMachines(), FakeJourneys()
    # When it is published, it is refused, saying so; nothing is created or recorded
    with pytest.raises(ValidationFailed, match="compiled state machine would take"):
        publish(
            welcome(), note=None, target=TARGET, machines=machines, journeys=journeys,
            clock=CLOCK,
        )  # fmt: skip
    assert machines.calls == [] and journeys.records == {}


def test_a_substitution_without_an_arn_is_refused() -> None:
    with pytest.raises(RuntimeError, match="SendEmailFunctionArn"):
        substitute({"FunctionName": "${SendEmailFunctionArn}"}, {})


def test_a_publication_that_stopped_after_creating_the_machine_is_finished_next_time() -> None:
    # The machine and version 1 exist, but the alias and the record were never written
    machines, journeys = FakeStateMachines(), FakeJourneys()
    arn = TARGET.state_machine_arn("welcome_nurture")
    publish(welcome(), note=None, target=TARGET, machines=machines, journeys=journeys, clock=CLOCK)
    machines.live.pop(arn)
    journeys.records.clear()
    again = publish(
        welcome(), note=None, target=TARGET, machines=machines, journeys=journeys, clock=CLOCK
    )
    assert again.version == 1 and machines.live[arn] == f"{arn}:1"
    record = journeys.records["welcome_nurture"].published
    assert record is not None and record.version == 1


def test_a_record_behind_the_alias_is_brought_up_to_it() -> None:
    machines, journeys = FakeStateMachines(), FakeJourneys()
    publish(welcome(), note=None, target=TARGET, machines=machines, journeys=journeys, clock=CLOCK)
    behind = journeys.records["welcome_nurture"]
    publish(
        welcome("Two."), note=None, target=TARGET, machines=machines, journeys=journeys,
        clock=CLOCK,
    )  # fmt: skip
    journeys.records["welcome_nurture"] = behind  # the record write of version 2 was lost
    again = publish(
        welcome("Two."), note=None, target=TARGET, machines=machines, journeys=journeys,
        clock=CLOCK,
    )  # fmt: skip
    assert again.changed is False
    record = journeys.records["welcome_nurture"].published
    assert record is not None and record.version == 2


def test_saving_a_published_journeys_policy_keeps_its_publication() -> None:
    machines, journeys = FakeStateMachines(), FakeJourneys()
    publish(welcome(), note=None, target=TARGET, machines=machines, journeys=journeys, clock=CLOCK)
    published = journeys.records["welcome_nurture"]
    policy = Journey(
        journey_id="welcome_nurture",
        name="Welcome, with a trigger",
        state_machine="welcome-nurture",  # the file names the stack's machine
        status="active",
        triggers=[Trigger(kind="form_submitted")],
    )
    saved = keep_publication(policy, published)
    assert saved.published == published.published
    assert saved.state_machine == "journey-welcome-nurture"
    assert saved.triggers == policy.triggers and saved.name == policy.name
    assert keep_publication(policy, None) == policy


@pytest.mark.parametrize("status", ["paused", "archived", "draft"])
def test_saving_a_journeys_policy_keeps_its_status_and_when_it_was_paused(status: str) -> None:
    # Given a journey paused (archived, a draft) since 1 December
    paused_at = "2026-12-01T00:00:00.000Z" if status == "paused" else None
    existing = Journey(
        journey_id="welcome_nurture", name="Welcome", state_machine="welcome-nurture",
        status=status, paused_at=paused_at, revision=4,
    )  # fmt: skip
    # When its policy is saved again from a file that says active (or says nothing: draft)
    for said in ("active", "draft"):
        policy = existing.model_copy(
            update={"status": said, "paused_at": None, "revision": 0,
                    "triggers": [Trigger(kind="form_submitted")]}
        )  # fmt: skip
        saved = keep_publication(policy, existing)
        # Then the new triggers are taken, its status and pause are not
        assert (saved.status, saved.paused_at) == (status, paused_at)
        assert saved.triggers == policy.triggers and saved.revision == 4


def test_nodes_moved_on_the_canvas_publish_no_new_version_and_are_kept_with_the_live_one() -> None:
    # Given version 1 published
    machines, journeys = FakeStateMachines(), FakeJourneys()
    publish(welcome(), note=None, target=TARGET, machines=machines, journeys=journeys, clock=CLOCK)
    calls = list(machines.calls)

    # When the same graph is published with its nodes where the marketer put them
    placed = welcome().model_copy(update={"layout": {"welcome": Place(x=40, y=300.5)}})
    again = publish(
        placed, note=None, target=TARGET, machines=machines, journeys=journeys, clock=CLOCK
    )

    # Then the state machine is the same (the layout is not compiled): no new version...
    assert (again.version, again.changed) == (1, False) and machines.calls == calls
    # ... and the editor shows the version with its nodes where they were put
    graph = journeys.graphs[("welcome_nurture", "v000001")]
    assert graph.definition["layout"] == {"welcome": {"x": 40, "y": 300.5}}


def test_a_versions_graph_is_stored_before_the_alias_moves() -> None:
    # Given a store that fails to keep the graph of the version being published
    class GraphsDown(FakeJourneys):
        def save_graph(self, graph: StoredGraph) -> None:
            raise OSError("DynamoDB is unavailable")

    machines, journeys = FakeStateMachines(), GraphsDown()
    arn = TARGET.state_machine_arn("welcome_nurture")

    # When the journey is published, the publication fails
    with pytest.raises(OSError):
        publish(
            welcome(), note=None, target=TARGET, machines=machines, journeys=journeys,
            clock=CLOCK, by="api:mika@example.com",
        )  # fmt: skip

    # Then the version exists but nothing is live: no alias, no record
    assert arn not in machines.live and journeys.records == {}

    # And publishing again with the store back finishes it, graph first
    machines.calls.clear()
    journeys = FakeJourneys()
    again = publish(
        welcome(), note=None, target=TARGET, machines=machines, journeys=journeys, clock=CLOCK,
        by="api:mika@example.com",
    )  # fmt: skip
    assert again.version == 1 and machines.live[arn] == f"{arn}:1"
    graph = journeys.graphs[("welcome_nurture", "v000001")]
    assert graph.by == "api:mika@example.com"
    assert (
        graph.definition["nodes"]
        == welcome().model_dump(mode="json", by_alias=True, exclude_none=True)["nodes"]
    )


def test_a_publication_or_rollback_while_another_is_under_way_is_refused() -> None:
    # Given a published journey, and a second publication and a rollback asked for while a
    # first publication is being made
    machines, journeys = FakeStateMachines(), FakeJourneys()
    publish(welcome(), note=None, target=TARGET, machines=machines, journeys=journeys, clock=CLOCK)
    refused: list[str] = []

    class Meanwhile(FakeStateMachines):
        def publish(self, arn: str, definition: str, note: str | None) -> str:
            made = super().publish(arn, definition, note)
            for other in (
                lambda: publish(
                    welcome("The other one."), note=None, target=TARGET, machines=machines,
                    journeys=journeys, clock=CLOCK,
                ),
                lambda: rollback(
                    "welcome_nurture", to_version=None, target=TARGET, machines=machines,
                    journeys=journeys, clock=CLOCK,
                ),
            ):  # fmt: skip
                with pytest.raises(ConcurrentUpdate, match="being published or rolled back") as e:
                    other()
                refused.append(str(e.value))
            return made

    meanwhile = Meanwhile(machines.definitions, machines.notes, machines.live, machines.calls)

    # When the first one finishes
    mine = publish(
        welcome("Mine."), note=None, target=TARGET, machines=meanwhile, journeys=journeys,
        clock=CLOCK,
    )  # fmt: skip

    # Then the others were refused, and what new entries run is what the record says is live
    assert len(refused) == 2 and mine.version == 2
    record = journeys.records["welcome_nurture"].published
    arn = TARGET.state_machine_arn("welcome_nurture")
    assert record is not None and record.version_arn == machines.live[arn] == f"{arn}:2"
    # And the journey is free again for the next one
    assert journeys.leases == {}
    again = rollback(
        "welcome_nurture", to_version=None, target=TARGET, machines=machines, journeys=journeys,
        clock=CLOCK,
    )  # fmt: skip
    assert again.version == 1


def test_a_lease_its_publisher_never_let_go_holds_the_journey_two_minutes_at_most() -> None:
    # Given a publisher that died holding the journey at 01:00
    machines, journeys = FakeStateMachines(), FakeJourneys()
    assert journeys.claim_publishing("welcome_nurture", "died", CLOCK.now(), CLOCK.now())

    # Then a publication a minute later is refused, and two minutes later it goes on
    minute = FixedClock(CLOCK.now() + timedelta(minutes=1))
    with pytest.raises(ConcurrentUpdate):
        publish(welcome(), note=None, target=TARGET, machines=machines, journeys=journeys,
                clock=minute)  # fmt: skip
    assert machines.definitions == {}
    later = FixedClock(CLOCK.now() + publishing.PUBLISHING_LEASE + timedelta(seconds=1))
    published = publish(
        welcome(), note=None, target=TARGET, machines=machines, journeys=journeys, clock=later
    )
    assert published.version == 1 and journeys.leases == {}


def test_a_publication_that_outlived_its_lease_is_reported_not_recorded() -> None:
    # Given a published journey, and a first publication so slow that its lease ran out and a
    # second one was published meanwhile (publish_journey's timeout is shorter than the lease)
    machines, journeys = FakeStateMachines(), FakeJourneys()
    publish(welcome(), note=None, target=TARGET, machines=machines, journeys=journeys, clock=CLOCK)
    later = FixedClock(CLOCK.now() + publishing.PUBLISHING_LEASE + timedelta(seconds=1))

    class Overtaken(FakeStateMachines):
        def publish(self, arn: str, definition: str, note: str | None) -> str:
            made = super().publish(arn, definition, note)
            publish(
                welcome("The other one."), note=None, target=TARGET, machines=machines,
                journeys=journeys, clock=later,
            )  # fmt: skip
            return made

    overtaken = Overtaken(machines.definitions, machines.notes, machines.live, machines.calls)

    # When the first one records its version
    with pytest.raises(ConcurrentUpdate, match="version 3 was published while version 2"):
        publish(
            welcome("Mine."), note=None, target=TARGET, machines=overtaken, journeys=journeys,
            clock=CLOCK,
        )  # fmt: skip

    # Then the record keeps the other's version: the loser is reported, never written over it
    record = journeys.records["welcome_nurture"].published
    assert record is not None and record.version == 3
