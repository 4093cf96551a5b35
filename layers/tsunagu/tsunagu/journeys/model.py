"""A journey as a marketer manages it: which state machine runs it, who enters, who leaves, and
what happens to the leads it holds when it is paused and resumed.

The state machine is the journey's shape (compiled from its definition in ``journeys/``, see
``tsunagu.journeys.definition``); this record is its policy, kept in DynamoDB so a marketer can
pause a journey or change who enters without a deploy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from tsunagu.journeys.waits import EventMatch
from tsunagu.leads.crm_status import status_key
from tsunagu.leads.updates import STAGES
from tsunagu.mail.consent import named_topic
from tsunagu.segments.filter import MAX_FILTER, Segment

JOURNEY_ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
RESERVED_JOURNEY_IDS = frozenset({"status"})
"""Ids the admin API's journey paths take for themselves: ``GET /admin/journeys/status`` is
every journey's status, so a journey named ``status`` could never be opened there."""


def unreserved_journey_id(journey_id: str) -> str:
    """A journey id a journey may be created with: not one of RESERVED_JOURNEY_IDS.
    ValueError (a validation message) for one. Every definition is held to it (a draft or a
    publication, from the console, the admin API, the CLI or publish_journey), and so is a
    journey record created from a file (``tsunagu journeys save``); a record stored before
    is read as it is."""
    if journey_id in RESERVED_JOURNEY_IDS:
        raise ValueError(
            f"{journey_id!r} is reserved: the admin API's /admin/journeys/{journey_id} is every"
            " journey's status (name the journey otherwise, such as"
            f" {journey_id}_follow_up)"
        )
    return journey_id


JourneyId = Annotated[
    str,
    Field(
        pattern=JOURNEY_ID_PATTERN,
        # The JSON Schema says so too, for an editor checking a definition file
        json_schema_extra={"not": {"enum": sorted(RESERVED_JOURNEY_IDS)}},
    ),
    AfterValidator(unreserved_journey_id),
]
"""The id of a journey made now (a definition's)."""

JourneyStatus = Literal["draft", "active", "paused", "archived"]

# Sales has the lead: nurture mail would talk over the sales conversation (the same statuses
# as leads.crm_status.SALES_ENGAGED; a lost lead may be recycled into nurture).
DEFAULT_EXIT_CRM_STATUSES = ("working", "in negotiation", "won")
DEFAULT_EXIT_STAGES = ("sql", "opportunity", "customer", "disqualified")
STAGE = "^(" + "|".join(STAGES) + ")$"
"""A lead's lifecycle stage, as a trigger or an exit names it (a typo would never fire)."""


class Trigger(BaseModel):
    """When a lead enters. ``manual`` entries come from the CLI or the Step Functions console."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["form_submitted", "event", "score_crossed", "stage_reached", "segment", "manual"]
    form_id: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    """form_submitted: only this form (any form when absent)."""
    event: EventMatch | None = None
    """event: the event that enters the lead."""
    threshold: int | None = Field(default=None, ge=1, le=100_000)
    """score_crossed: enters when the score reaches this from below."""
    stage: str | None = Field(default=None, pattern=STAGE)
    """stage_reached: enters when the lead's stage becomes this."""
    segment: str | None = Field(default=None, max_length=MAX_FILTER)
    """segment: every lead this filter selects (``silent_days>=90``), checked once a day."""

    @model_validator(mode="after")
    def _complete(self) -> Trigger:
        needed = {
            "event": self.event,
            "score_crossed": self.threshold,
            "stage_reached": self.stage,
            "segment": self.segment,
        }
        if self.kind in needed and needed[self.kind] is None:
            raise ValueError(f"a {self.kind} trigger needs its {_needs[self.kind]}")
        if self.segment is not None:
            # A bad filter is refused when saved, not at 3 a.m. Read as stored: a journey
            # saved before a rule got stricter still loads; what a person writes now is also
            # checked as a new filter (tsunagu.commands.journeys._check_triggers).
            Segment.parse(self.segment)
        return self


_needs = {"event": "event", "score_crossed": "threshold", "stage_reached": "stage"}
_needs["segment"] = "segment"


class ReentryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["never", "after_interval", "always"] = "never"
    interval_days: int = Field(default=0, ge=0, le=3650)
    """after_interval: days since the last entry before a lead may enter again."""


class ExitConditions(BaseModel):
    """Besides these, a lead always leaves when it unsubscribes, bounces or is removed."""

    model_config = ConfigDict(extra="forbid")

    crm_statuses: list[Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        default_factory=lambda: list(DEFAULT_EXIT_CRM_STATUSES), max_length=20
    )
    """CRM statuses that mean sales has the lead, in any words the CRM or a rep uses: each is
    compared through leads.crm_status (商談中 is "in negotiation"; other text case-blind). Kept
    as the marketer typed them."""
    stages: list[Annotated[str, Field(pattern=STAGE)]] = Field(
        default_factory=lambda: list(DEFAULT_EXIT_STAGES), max_length=len(STAGES)
    )
    """Lifecycle stages that end the nurture (converted, handed to sales, disqualified)."""
    goals: list[EventMatch] = Field(default_factory=list, max_length=10)
    """Events that mean the journey reached its goal (a demo request, a purchase)."""
    goal_window_days: int = Field(default=30, ge=1, le=365)
    """How long after a lead's first step in the journey a goal counts as its conversion in
    the reports (a control group's lead converts by the same rule, having got nothing)."""


class ResumePolicy(BaseModel):
    """What the mails held back while the journey was paused do when it resumes."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["send_missed", "skip_missed", "pace", "expire"] = "send_missed"
    rate_per_minute: int = Field(default=60, ge=1, le=10_000)
    """pace: how many parked leads are released per minute."""


class HeldResume(BaseModel):
    """A resume policy chosen while the emergency stop held the journey's mails, for that stop:
    lifting it releases them by this policy. Tied to the stop (when it began), so a choice
    never outlives the stop it was made under."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: ResumePolicy
    stop: str
    """When the stop it was chosen under began (the account control record's time)."""


class JourneySettings(BaseModel):
    """What a marketer sets on a journey besides its graph: the consent topic its mails need,
    what enters a lead and when, who may enter again, what ends a lead's time in it, and what
    held mails do when it resumes. Changing them needs no new version: the journey's record
    carries them, and the routers and gates read it."""

    model_config = ConfigDict(extra="forbid")

    topic: Annotated[str, AfterValidator(named_topic)] = Field(
        default="marketing", pattern=r"^[a-z][a-z0-9_-]{0,39}$"
    )
    triggers: list[Trigger] = Field(default_factory=list, max_length=20)
    reentry: ReentryPolicy = Field(default_factory=ReentryPolicy)
    exit: ExitConditions = Field(default_factory=ExitConditions)
    resume: ResumePolicy = Field(default_factory=ResumePolicy)


class PublishedVersion(BaseModel):
    """The version of the journey's state machine new entries take (tsunagu.journeys.publishing).
    Entries start on the alias, so an execution finishes on the version it started on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    version_arn: str
    alias_arn: str
    published_at: str
    note: str | None = Field(default=None, max_length=256)
    """What changed, as the publisher said it (Step Functions' version description)."""


class Journey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    journey_id: str = Field(pattern=JOURNEY_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    state_machine: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")
    """The state machine's name without the stack prefix (``seminar-follow-up``)."""
    status: JourneyStatus = "draft"
    topic: str = "marketing"
    """The consent topic its mails need: a lead opted out of it leaves."""
    triggers: list[Trigger] = Field(default_factory=list, max_length=20)
    reentry: ReentryPolicy = Field(default_factory=ReentryPolicy)
    exit: ExitConditions = Field(default_factory=ExitConditions)
    resume: ResumePolicy = Field(default_factory=ResumePolicy)
    resume_after_stop: HeldResume | None = None
    """The policy the journey was resumed with while the emergency stop still held its mails:
    lifting that stop releases them by it, not by ``resume``."""
    paused_at: str | None = None
    updated_at: str | None = None
    revision: int = Field(default=0, ge=0)
    """How many times the record was stored (0: never, or before records counted): every
    write is conditional on the revision it read (tsunagu.journeys.records)."""
    published: PublishedVersion | None = None
    """Set once the journey is published from its definition; None for a state machine
    deployed with the stack (template.yaml), which entries start on directly."""

    def leaves_on_crm_status(self, status: str | None) -> bool:
        # Both sides through the one normalisation: an exit typed as the team's CRM says it
        # (商談中) matches the status Tsunagu keeps ("in negotiation"), and the other way round.
        wanted = {status_key(s) for s in self.exit.crm_statuses}
        return status is not None and status_key(status) in wanted

    def leaves_on_stage(self, stage: str) -> bool:
        return stage in self.exit.stages


@dataclass(frozen=True)
class StoredGraph:
    """A journey's graph as stored (tsunagu.journeys.definition, as JSON): ``which`` is
    ``draft`` (what people are editing), ``v000003`` (published as version 3) or ``shipped``
    (installed with Tsunagu)."""

    journey_id: str
    which: str
    definition: dict[str, Any]
    by: str | None
    updated_at: str
    revision: int = 0
    """A draft's: how many times it was saved (each save is over the revision read)."""
    draft_revision: int | None = None
    """A published version's: the draft's revision it was published from (0: there was none).
    A draft saved after that revision is work not published yet, whatever the clocks say; None
    for a version published before versions kept it (its time is compared then)."""

    @property
    def version(self) -> int | None:
        return int(self.which[1:]) if self.which.startswith("v") else None


def published_graph_key(version: int) -> str:
    return f"v{version:06d}"


def branch_cases(definition: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Each branch case of a graph as stored, however incomplete (a draft may be): its node's
    id, its outcome and its condition (``in_segment=hot-accounts``), as written."""
    nodes = definition.get("nodes")
    found = []
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, Mapping) or node.get("kind") != "branch":
            continue
        cases = node.get("cases")
        found += [
            (str(node.get("id")), str(case.get("outcome")), str(case.get("when", "")))
            for case in (cases if isinstance(cases, list) else [])
            if isinstance(case, Mapping)
        ]
    return found
