"""A journey's shape as data: nodes and edges in the marketer's words, compiled to Step Functions.

The definition is what a marketer (or the console) writes; ``tsunagu.journeys.compiler`` turns
it into ASL with every mail behind the journey gate, so pause and resume policies, exits and the
frequency cap work the same for every journey. The JSON Schema a definition file is checked
against is generated from these models (``docs/journey-definition.schema.json``).

Each node names the states it becomes with a ``label``: a send labelled "mail B" becomes "Send
mail B", "Check the gate before mail B", "Hold mail B while the journey is paused"... The state
names are what the marketer reads in an execution's history, what the gate records as the step,
and part of every wait's id, so they are stable sentences rather than generated ids.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from tsunagu.client_values import stored_size
from tsunagu.journeys.model import JourneyId
from tsunagu.leads.field_values import checked_field_values
from tsunagu.leads.model import not_reserved_field
from tsunagu.leads.updates import STAGES, Tag
from tsunagu.segments.filter import MAX_FILTER

DEFINITION_FORMAT = "tsunagu.journey/1"

MAX_STORED_BYTES = 256 * 1024
"""A definition's size as it is stored (stored_size): its draft and each published version are
items of their own, which DynamoDB caps at 400 KB - this leaves room for the rest of the item,
and keeps the compiled state machine well under Step Functions' 1 MB."""


NODE_ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
OUTCOME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
"""An outcome travels as the wait's event label (tsunagu.journeys.waits.EventMatch: 40)."""
TEMPLATE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
"""As tsunagu.mail.templates.MailTemplate's: the compiler must not accept what send refuses."""

NodeId = Annotated[str, Field(pattern=NODE_ID_PATTERN)]
FieldName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
UNSEEN_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible format character",
    "Cs": "half of a surrogate pair",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
"""What a label may not hold: characters a reader cannot see (or that break a line) in a state
name, an execution's history and the canvas."""


def seen_label(label: str) -> str:
    """The label without spaces around it; refused when it is blank or holds a character of
    ``UNSEEN_CATEGORIES``."""
    for character in label:
        unseen = UNSEEN_CATEGORIES.get(unicodedata.category(character))
        if unseen:
            raise ValueError(
                f"a label holds {unseen} (U+{ord(character):04X}): write it in visible characters"
            )
    trimmed = label.strip()
    if not trimmed:
        raise ValueError("a label must say something: it is blank")
    return trimmed


def blank_is_none(value: object) -> object:
    """A text left blank (the console's emptied input) as none: a draft keeps it, and the
    compiler says what is missing (tsunagu.journeys.compiler.validate)."""
    return None if isinstance(value, str) and not value.strip() else value


Label = Annotated[
    str,
    Field(min_length=1, max_length=60, pattern=r"^[^\n\r\t]+$"),
    AfterValidator(seen_label),
]
"""A noun phrase ("the invitation", "mail B"): part of the state names, which Step Functions
limits to 80 characters."""


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    id: NodeId
    label: Label


class Send(_Node):
    """A mail, behind the journey gate: sent, deferred under the frequency cap, held while the
    journey is paused, or skipped by a resume policy; a lead who may no longer stay leaves."""

    kind: Literal["send"]
    template: str = Field(pattern=TEMPLATE_ID_PATTERN)
    result: NodeId | None = None
    """Where the send's outcome is kept for later nodes (a ``wait_for`` naming this mail): the
    node id unless several sends share one slot (alternative mails at the same point)."""
    deadline_input_field: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,62}$")
    """A date-time in the journey's input (``seminar_at``) after which the mail is not sent
    once the lead was let go under the ``expire`` policy (at this mail or an earlier one)."""
    next: NodeId | None = None
    """None: the journey ends after this mail."""

    @property
    def result_slot(self) -> str:
        return self.result or self.id


class ScheduleRule(BaseModel):
    """When the next mail may go, in the lead's business calendar (journeys.business_time)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    kind: Literal["next_business_day", "same_day_or_next", "business_days_later"]
    days: int | None = Field(default=None, ge=1, le=60)
    """business_days_later: how many."""
    cutoff: str | None = Field(default=None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    """same_day_or_next: after this local time, the next business day."""
    at: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    """The local time the mail goes (HH:MM)."""
    only_that_day: bool = False
    """same_day_or_next: the mail makes sense on that day only; resumed later, it is skipped."""


class Wait(_Node):
    """A wait in business time before the next node (a send, usually). ``label`` names what
    is waited for ("the campaign offer" gives "Schedule the campaign offer" and "Wait until the
    campaign offer may go"); ``schedule_label`` and ``wait_label`` replace either sentence."""

    kind: Literal["wait"]
    rule: ScheduleRule
    schedule_label: Label | None = None
    wait_label: Label | None = None
    next: NodeId | None = None
    """Left out, the definition is refused (a draft keeps it): a wait leads somewhere."""


class Awaited(BaseModel):
    """One event a ``wait_for`` listens for, and the outcome it stands for."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    type: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    outcome: str = Field(pattern=OUTCOME_PATTERN)
    of_mail: NodeId | None = None
    """Only this mail's activity (the ``result`` of a send before this node)."""
    url_contains: str | None = Field(default=None, min_length=1, max_length=500)


class Exit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    outcome: str = Field(pattern=OUTCOME_PATTERN)
    next: NodeId


class WaitFor(_Node):
    """Wait for one of a person's events, within a time; two kinds of exit, what happened
    (``exits``, by outcome) and ``timed_out``. ``label`` finishes "Wait for ..."."""

    kind: Literal["wait_for"]
    events: list[Awaited] = Field(min_length=1, max_length=10)
    within_seconds: int = Field(ge=60, le=365 * 86400)
    exits: list[Exit] = Field(default_factory=list, max_length=10)
    """Where each outcome goes; the last listed is taken for any other outcome. One for each
    outcome of ``events`` (a draft may have none yet; the definition is refused then)."""
    question: Label | None = None
    """The name of the decision when outcomes go different ways ("Did the lead click or
    attend?")."""
    timed_out: NodeId | None = None
    """Where a lead goes when nothing happened in time (an ``end`` node to end there). Left
    out, the definition is refused: a forgotten timeout edge strands leads."""


class UpdateLead(_Node):
    """The lead's stage set, tags added and removed, fields set; each change is an event on the
    lead (``stage_changed``, ``lead_updated``), so other journeys can start or end on it.
    ``label`` is the whole sentence ("Tag the lead as dormant")."""

    kind: Literal["update_lead"]
    stage: str | None = Field(default=None, pattern="^(" + "|".join(STAGES) + ")$")
    add_tags: list[Tag] = Field(default_factory=list, max_length=20)
    remove_tags: list[Tag] = Field(default_factory=list, max_length=20)
    fields: dict[
        Annotated[FieldName, AfterValidator(not_reserved_field)],
        Annotated[str, Field(max_length=500)],
    ] = Field(default_factory=dict, max_length=20)
    """Fields set on the lead, as a sales person would set them (``interest: pricing``): over
    what a form, an import or a seminar said, and kept by the next form; a value the CRM set
    stays, and the ``lead_updated`` event names it with why (tsunagu.leads.merge)."""
    next: NodeId | None = None

    # Refused when the journey is saved, not when a lead reaches the step (see LeadUpdate).
    _field_values = field_validator("fields")(checked_field_values)


class NotifyOwner(_Node):
    """A mail to the lead's sales owner (given one by the owner rules if it has none) with the
    ``message``, the lead, its score explained and its recent activity; sent once per lead and
    node, never to the lead. ``label`` is the whole sentence ("Tell the owner the lead asked
    for pricing")."""

    kind: Literal["notify_owner"]
    message: Annotated[str | None, BeforeValidator(blank_is_none)] = Field(
        default=None, max_length=1000
    )
    """What the owner should know or do, in the marketer's words (the mail's first line);
    left blank, the definition is refused (a draft keeps it)."""
    next: NodeId | None = None


class Webhook(_Node):
    """The lead, signed, POSTed to the CRM webhook (the one the hand-off pushes MQLs to) with
    ``event`` as its type: retried with backoff, parked (``tsunagu crm pushes``) when it keeps
    failing, and the lead goes on either way. Only the address configured at deploy time is
    called: a journey cannot point Tsunagu at another one. ``label`` is the whole sentence
    ("Tell the CRM the lead asked for pricing")."""

    kind: Literal["webhook"]
    event: Annotated[str | None, BeforeValidator(blank_is_none)] = Field(
        default=None, pattern=r"^[a-z][a-z0-9_.]{0,62}$"
    )
    """The payload's ``type`` (``lead.asked_for_pricing``), for the CRM to tell calls apart;
    left blank, the definition is refused (a draft keeps it)."""
    next: NodeId | None = None


class Case(BaseModel):
    """One way a ``branch`` can go: the first case whose filter holds for the lead decides."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    outcome: str = Field(pattern=OUTCOME_PATTERN)
    when: str = Field(min_length=1, max_length=MAX_FILTER)
    """A lead filter (``tag=interest:pricing,score>=50``): stage, tag, source, domain, grade,
    crm_status with ``=``; score, silent_days with ``>=``; every condition must hold."""
    next: NodeId


class Branch(_Node):
    """Ordered cases on the lead as it is when it gets here; none holding, ``default``.
    ``label`` names the decision ("the pricing interest" gives "Decide the pricing
    interest")."""

    kind: Literal["branch"]
    cases: list[Case] = Field(default_factory=list, max_length=10)
    """At least one (a draft may have none yet; the definition is refused then)."""
    default: NodeId | None = None
    """Where a lead no case selects goes. Left out, the definition is refused: a lead no case
    selects would be stranded."""


class Path(BaseModel):
    """One path of a ``split``, and its share of the leads."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    outcome: str = Field(pattern=OUTCOME_PATTERN)
    percent: int = Field(ge=0, le=100)
    """From 1 to 99 (an emptied share reads 0: a draft keeps it, the definition is refused)."""
    next: NodeId


class Split(_Node):
    """Leads shared out between paths at random, the same lead always the same way (an A/B
    test); the shares add up to 100. ``label`` names the test ("the subject-line test")."""

    kind: Literal["split"]
    paths: list[Path] = Field(default_factory=list, max_length=10)
    """Two at least (a draft may have fewer; the definition is refused then)."""


class Holdout(_Node):
    """A share of leads leaves the journey here and is kept as a control group (recorded as
    such, for the reports); the rest go on. ``label`` names the group ("the control
    group")."""

    kind: Literal["holdout"]
    percent: int = Field(ge=1, le=50)
    next: NodeId


class End(_Node):
    """The journey ends here for the lead. ``label`` is the whole sentence ("The lead has had
    every mail")."""

    kind: Literal["end"]


Node = Annotated[
    Send | Wait | WaitFor | Branch | Split | Holdout | UpdateLead | NotifyOwner | Webhook | End,
    Field(discriminator="kind"),
]


MAX_COORDINATE = 1_000_000
"""A canvas is never this wide: a number past it is no place the editor put a node."""


class Place(BaseModel):
    """Where the editor's canvas shows a node: its top-left corner, in canvas pixels."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    x: float = Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE, allow_inf_nan=False)
    y: float = Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE, allow_inf_nan=False)


class JourneyDefinition(BaseModel):
    """One journey's shape. Its policy (triggers, re-entry, exits, status) is the journey
    record (tsunagu.journeys.model.Journey), which names the state machine this compiles to."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    format: Literal["tsunagu.journey/1"] = Field(alias="$format")
    journey_id: JourneyId
    name: Annotated[str | None, BeforeValidator(blank_is_none)] = Field(
        default=None, max_length=200
    )
    """The journey's name where people see it; a journey published for the first time takes
    it (its id when there is none, or it is blank)."""
    description: str = Field(min_length=1, max_length=2000)
    """What the journey does, in a sentence or three: the state machine's Comment."""
    start: NodeId
    nodes: list[Node] = Field(min_length=1, max_length=200)
    layout: dict[NodeId, Place] | None = Field(default=None, max_length=200)
    """Where the marketer put each node on the editor's canvas (node id -> place; a node it
    does not name is laid out automatically). The canvas's alone: nothing compiles it, so a
    version differing only in it publishes the same state machine (no new version)."""

    @model_validator(mode="after")
    def _fits_where_it_is_kept(self) -> JourneyDefinition:
        size = stored_size(self.model_dump(mode="json", by_alias=True, exclude_none=True))
        if size > MAX_STORED_BYTES:
            raise ValueError(
                f"the definition takes {size // 1024} KB as stored, more than the"
                f" {MAX_STORED_BYTES // 1024} KB a journey may take: shorten its fields or split"
                " it into journeys"
            )
        return self
