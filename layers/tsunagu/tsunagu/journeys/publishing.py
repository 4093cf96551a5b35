"""Publishing a journey without a deploy: its definition validated and compiled, a new version of
its own state machine published, and the journey's ``live`` alias pointed at it.

Entries start on the alias (``services.entry_arn``): Step Functions binds an execution to the
version it started on, so leads already in the journey finish the path they began while new
entries take the new one. Rolling back points the alias at an earlier version; nothing else
changes. A journey's first publication creates its state machine (named after the journey,
with the stack's prefix) under the one role every published journey runs with, and its journey
record if it had none; the record's policy (triggers, exits, status) stays the marketer's.

Stack-deployed state machines (template.yaml) are left alone: publishing a shipped journey gives
it its own published state machine, and its record points there from then on.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from tsunagu.clock import Clock, isoformat
from tsunagu.errors import ConcurrentUpdate, FieldError, NotFound, ValidationFailed
from tsunagu.journeys.compiler import compile_journey
from tsunagu.journeys.definition import JourneyDefinition
from tsunagu.journeys.model import Journey, PublishedVersion, StoredGraph, published_graph_key
from tsunagu.journeys.records import JourneyRecords, rewrite

LIVE_ALIAS = "live"
MAX_STATE_MACHINE_NAME = 80  # Step Functions' limit
MAX_ASL_BYTES = 900 * 1024
"""A compiled state machine this large is refused before anything is published: Step
Functions takes definitions up to 1 MB (1,048,576 bytes)."""
_SUBSTITUTION_PREFIX = "${"
PUBLISHING_LEASE = timedelta(minutes=2)
"""How long a publication or rollback holds its journey against another: longer than
publish_journey's 60-second timeout, so a lease outlives the publisher that took it - one that
died holds the journey two minutes at most, and one still running is never overtaken."""


@dataclass(frozen=True)
class MachineVersion:
    number: int
    arn: str
    created_at: str
    note: str | None


@dataclass(frozen=True)
class Machine:
    """A published journey's state machine as Step Functions has it."""

    arn: str
    alias_arn: str | None
    live_version_arn: str | None
    """The version the alias routes every new execution to (None: no alias yet)."""


class StateMachines(Protocol):
    """The Step Functions calls publishing makes (tsunagu.store.state_machines)."""

    def find(self, arn: str) -> Machine | None: ...

    def create(self, name: str, definition: str, role_arn: str, note: str | None) -> str:
        """Create and publish version 1: its version ARN."""
        ...

    def publish(self, arn: str, definition: str, note: str | None) -> str:
        """Update the definition and publish it: the new version's ARN (an unchanged definition
        gives the version that has it)."""
        ...

    def definition(self, version_arn: str) -> str: ...

    def point_alias(self, machine: Machine, version_arn: str) -> str:
        """Route every new execution to this version (the alias is created the first time)."""
        ...

    def versions(self, arn: str) -> list[MachineVersion]:
        """Newest first."""
        ...


class PublishedJourneys(JourneyRecords, Protocol):
    """The journey records, the graph each published version was made from, and the lease
    that lets one publication or rollback of a journey run at a time."""

    def save_graph(self, graph: StoredGraph) -> None: ...

    def claim_publishing(
        self, journey_id: str, holder: str, at: datetime, stale_before: datetime
    ) -> bool:
        """Take the lease: False when another holder took it at or after ``stale_before``."""
        ...

    def release_publishing(self, journey_id: str, holder: str) -> None: ...


@contextmanager
def _publishing(journeys: PublishedJourneys, journey_id: str, clock: Clock) -> Iterator[None]:
    """The journey held against every other publication and rollback while the block runs.

    Without it two publications made at once could each move the alias, and the one that
    recorded its version first was not always the one that moved the alias last: the record
    (what the editor and the start form show) then named one version while new entries ran
    the other. ConcurrentUpdate when another holds the journey."""
    holder = secrets.token_hex(8)
    now = clock.now()
    if not journeys.claim_publishing(journey_id, holder, now, now - PUBLISHING_LEASE):
        raise ConcurrentUpdate(
            f"journey {journey_id!r} is being published or rolled back by someone else right"
            " now: look at its versions in a minute, and publish or roll back again if it is"
            " still needed"
        )
    try:
        yield
    finally:
        journeys.release_publishing(journey_id, holder)


@dataclass(frozen=True)
class PublishingTarget:
    """Where published journeys live: from the settings of the function that publishes."""

    arn_prefix: str
    """``arn:aws:states:<region>:<account>:stateMachine:<stack>-``"""
    role_arn: str
    """The one role every published journey runs with."""
    activities: Mapping[str, str]
    """The compiled ASL's substitutions (``JourneyGateFunctionArn``) and their ARNs."""

    def state_machine_name(self, journey_id: str) -> str:
        """Without the stack prefix, as the journey record names it."""
        return f"journey-{journey_id.replace('_', '-')}"

    def state_machine_arn(self, journey_id: str) -> str:
        return self.arn_prefix + self.state_machine_name(journey_id)


@dataclass(frozen=True)
class Publication:
    journey_id: str
    version: int
    version_arn: str
    alias_arn: str
    changed: bool
    """False when the definition was the live version's already (nothing was published)."""
    created: bool
    """True when this was the journey's first publication."""


def substitute(asl: Mapping[str, Any], activities: Mapping[str, str]) -> str:
    """The compiled ASL with every ``${Name}`` replaced by its ARN, as CloudFormation's
    DefinitionSubstitutions do for the stack's journeys; a name with no ARN is refused."""
    missing: set[str] = set()

    def replace(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: replace(item) for key, item in value.items()}
        if isinstance(value, list):
            return [replace(item) for item in value]
        if isinstance(value, str) and value.startswith(_SUBSTITUTION_PREFIX):
            name = value[len(_SUBSTITUTION_PREFIX) : -1]
            if name not in activities:
                missing.add(name)
                return value
            return activities[name]
        return value

    substituted = replace(asl)
    if missing:
        raise RuntimeError(f"no ARN for the journey activities {sorted(missing)}")
    return json.dumps(substituted, ensure_ascii=False, sort_keys=True)


def publish(
    definition: JourneyDefinition,
    *,
    note: str | None,
    target: PublishingTarget,
    machines: StateMachines,
    journeys: PublishedJourneys,
    clock: Clock,
    templates: set[str] | None = None,
    by: str | None = None,
    draft_revision: int | None = None,
) -> Publication:
    """Validate, compile and publish; ValidationFailed names each node that is wrong, and
    nothing is published then.

    In this order, so that what is live is always recorded: the version is made, its graph
    stored (the editor and a rollback show what it was), and only then the alias moved; a
    failure before the alias moves leaves nothing live (publishing again finishes it). The
    record then names the new version. One publication or rollback of a journey runs at a
    time (``_publishing``); if another recorded its version meanwhile all the same (this one
    outlived its lease), ConcurrentUpdate says so, and the person publishing looks at the
    versions and decides."""
    journey_id = definition.journey_id
    name = target.state_machine_name(journey_id)
    full_name = target.arn_prefix.rsplit(":", 1)[1] + name
    if len(full_name) > MAX_STATE_MACHINE_NAME:
        raise ValidationFailed(
            [
                FieldError(
                    "journey_id",
                    f"the state machine would be named {full_name!r}, longer than Step"
                    f" Functions' {MAX_STATE_MACHINE_NAME} characters: choose a shorter id",
                )
            ]
        )
    asl = substitute(compile_journey(definition, templates), target.activities)
    if len(asl.encode("utf-8")) > MAX_ASL_BYTES:
        size = len(asl.encode("utf-8")) // 1024
        raise ValidationFailed(
            [
                FieldError(
                    "(journey)",
                    f"the compiled state machine would take {size} KB, more than the"
                    f" {MAX_ASL_BYTES // 1024} KB Tsunagu publishes (Step Functions' limit is"
                    " 1 MB): split the journey",
                )
            ]
        )
    with _publishing(journeys, journey_id, clock):
        # The record as it was before this publication: it is recorded over that one only
        record = journeys.get_journey(journey_id)
        created = record is None
        seen = record.published.version_arn if record and record.published else None
        arn = target.state_machine_arn(journey_id)
        machine = machines.find(arn)
        if machine is None:
            version_arn = machines.create(full_name, asl, target.role_arn, note)
            machine = Machine(arn=arn, alias_arn=None, live_version_arn=None)
            changed = True
        elif (
            machine.live_version_arn is not None
            and machines.definition(machine.live_version_arn) == asl
        ):
            version_arn, changed = machine.live_version_arn, False
        else:
            version_arn, changed = machines.publish(arn, asl, note), True
        number = _version_number(version_arn)
        journeys.save_graph(
            StoredGraph(
                journey_id=journey_id,
                which=published_graph_key(number),
                definition=definition.model_dump(mode="json", by_alias=True, exclude_none=True),
                by=by,
                updated_at=isoformat(clock.now()),
                draft_revision=draft_revision,
            )
        )
        alias_arn = machine.alias_arn
        if changed or alias_arn is None:
            alias_arn = machines.point_alias(machine, version_arn)
        # Also when the record lags the alias (a publication that stopped after moving the alias).
        if changed or seen != version_arn:
            _record_publication(
                journey_id,
                PublishedVersion(
                    version=number,
                    version_arn=version_arn,
                    alias_arn=alias_arn,
                    published_at=isoformat(clock.now()),
                    note=note,
                ),
                name,
                journeys,
                clock,
                new=_new_record(definition, name),
                over=seen,
            )
        return Publication(
            journey_id=journey_id,
            version=number,
            version_arn=version_arn,
            alias_arn=alias_arn,
            changed=changed,
            created=created,
        )


def versions(
    journey_id: str, *, target: PublishingTarget, machines: StateMachines
) -> tuple[list[MachineVersion], int | None]:
    """The journey's published versions, newest first, and the live one's number. A journey
    never published (one shipped with the stack, a draft) has none yet: that is its state,
    not an error (the console asks on every open of the journey)."""
    machine = machines.find(target.state_machine_arn(journey_id))
    if machine is None:
        return [], None
    live = _version_number(machine.live_version_arn) if machine.live_version_arn else None
    return machines.versions(machine.arn), live


def rollback(
    journey_id: str,
    *,
    to_version: int | None,
    target: PublishingTarget,
    machines: StateMachines,
    journeys: PublishedJourneys,
    clock: Clock,
) -> Publication:
    """Point the alias back at ``to_version`` (by default the version before the live one).
    Executions running on the newer version finish on it; new entries take the old one."""
    with _publishing(journeys, journey_id, clock):  # the live version read under it
        published, live = versions(journey_id, target=target, machines=machines)
        if not published:
            raise NotFound(f"journey {journey_id!r} has never been published")
        if to_version is None:
            older = [v for v in published if live is None or v.number < live]
            if not older:
                raise NotFound(f"journey {journey_id!r} has no version before {live}")
            chosen = older[0]
        else:
            found = [v for v in published if v.number == to_version]
            if not found:
                numbers = ", ".join(str(v.number) for v in published)
                raise NotFound(
                    f"journey {journey_id!r} has no version {to_version} (has {numbers})"
                )
            chosen = found[0]
        record = journeys.get_journey(journey_id)
        if record is None:  # checked before the alias moves: nothing changes then
            raise NotFound(f"journey {journey_id!r} has no record")
        machine = machines.find(target.state_machine_arn(journey_id))
        assert machine is not None  # versions() found it, with versions
        alias_arn = machines.point_alias(machine, chosen.arn)
        _record_publication(
            journey_id,
            PublishedVersion(
                version=chosen.number,
                version_arn=chosen.arn,
                alias_arn=alias_arn,
                published_at=isoformat(clock.now()),
                note=f"rolled back to version {chosen.number}",
            ),
            target.state_machine_name(journey_id),
            journeys,
            clock,
        )
        return Publication(
            journey_id=journey_id,
            version=chosen.number,
            version_arn=chosen.arn,
            alias_arn=alias_arn,
            changed=live != chosen.number,
            created=False,
        )


def keep_publication(policy: Journey, existing: Journey | None) -> Journey:
    """A journey record saved over a published one (new triggers, exits, resume policy) keeps
    the publication: entries go on starting on the live alias, and a rollback stays in force.
    Only publish and rollback change which version is live. It keeps its status and when it
    was paused, too (a paused journey saved active would strand the leads parked at its gates:
    only set_status, pause and resume change those), and the policy it was resumed with during
    the emergency stop: only resume chooses that."""
    if existing is None:
        return policy.model_copy(update={"resume_after_stop": None, "revision": 0})
    kept: dict[str, object] = {
        "status": existing.status,
        "paused_at": existing.paused_at,
        "resume_after_stop": existing.resume_after_stop,
        "revision": existing.revision,  # stored over the record read, or not at all
    }
    if existing.published is not None:
        kept |= {"published": existing.published, "state_machine": existing.state_machine}
    return policy.model_copy(update=kept)


def _new_record(definition: JourneyDefinition, state_machine: str) -> Journey:
    """A journey published for the first time: live, entered by hand until the marketer gives
    it triggers (tsunagu journeys save), with the default exits and resume policy."""
    return Journey(
        journey_id=definition.journey_id,
        name=definition.name or definition.journey_id,
        state_machine=state_machine,
        status="active",
    )


def _record_publication(
    journey_id: str,
    published: PublishedVersion,
    state_machine: str,
    journeys: JourneyRecords,
    clock: Clock,
    *,
    new: Journey | None = None,
    over: str | Literal[False] | None = False,
) -> None:
    """The version the alias now routes to, on the record as it is stored now (a pause or a
    status set meanwhile stays: only the publication is this change's). ``over``: the version
    the record named when this publication began (False: whichever it names); if another
    publication recorded its own since, ConcurrentUpdate, and this one is not recorded."""

    def recorded(record: Journey) -> Journey:
        now = record.published.version_arn if record.published else None
        if over is not False and now not in (over, published.version_arn):
            assert record.published is not None
            raise ConcurrentUpdate(
                f"journey {journey_id!r}: version {record.published.version} was published"
                f" while version {published.version} was; which one new entries take depends"
                " on which moved the live alias last - look at its versions, and publish or"
                " roll back to the one you mean"
            )
        return record.model_copy(update={"published": published, "state_machine": state_machine})

    rewrite(journeys, journey_id, recorded, lambda: isoformat(clock.now()), new=new)


def _version_number(version_arn: str) -> int:
    return int(version_arn.rsplit(":", 1)[1])
