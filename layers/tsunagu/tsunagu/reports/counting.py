"""What one stored event adds to the report counters.

The counters are kept per day (in the account's time zone) for three subjects: a mail template
(per version), a journey (per version and node) and a form (per source). Each metric's exact
meaning is in ``tsunagu.reports.definitions``; this module is the code that follows it.

Opens, clicks, bounces and unsubscribes name their mail only by its message id. The counter
keeps its own index of the mails it has counted (``CountedMail``: which template, journey and
node sent it, and which "first of its kind" this mail has had), so that a later event of the
mail is attributed without reading the send record, and "unique" means the first such event
of that one mail.

Counting is pure: ``count`` takes the event and the mail as they stand and returns the
increments and the mail's new state. The stream consumer and the rebuild share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from tsunagu.clock import isoformat, parse_instant
from tsunagu.event_kinds import LEAD_IMPORTED
from tsunagu.journeys.decisions import HOLDOUT
from tsunagu.leads.history import DIRECT
from tsunagu.leads.merge import Channel
from tsunagu.tracking.settling import SETTLE_AFTER_SECONDS

DEPLOYED = 0
"""The version of a journey whose state machine was deployed with the stack rather than
published from its definition (its executions carry no version)."""


@dataclass(frozen=True, order=True)
class CounterKey:
    """One row of counters: a subject (``mail#welcome``), a day and a part of the subject
    (``v3`` for a template version; ``v2#send_invite`` for a journey version's node; the source
    for a form)."""

    subject: str
    day: str
    part: str

    @property
    def sort_key(self) -> str:
        return f"{self.day}#{self.part}"

    @classmethod
    def from_sort_key(cls, subject: str, sort_key: str) -> CounterKey:
        day, part = sort_key.split("#", 1)
        return cls(subject, day, part)


def mail_subject(template_id: str) -> str:
    return f"mail#{template_id}"


def journey_subject(journey_id: str) -> str:
    return f"journey#{journey_id}"


def form_subject(form_id: str) -> str:
    return f"form#{form_id}"


FUNNEL_SUBJECT = "funnel"
"""The funnel's rows: sk ``<day the lead was created>#<channel>#<first form>``."""
FUNNEL_STAGES = ("lead", "mql", "sql", "opportunity", "customer")
"""The stages of the funnel, in order; a lead counts at a stage the first time it reaches it
(or a later one: a lead the CRM makes a customer straight away has passed every stage)."""
NO_FORM = "-"
NO_DAY = "-"
"""The day of a lead withdrawn before the funnel counted it (it is counted on no day)."""
MAX_DAYS_COUNTED = 400
"""Days between two stages beyond this are counted as this many (the histogram's last bin)."""


def stages_reached_by(stage: object) -> tuple[str, ...]:
    """The funnel's stages a lead has reached when it is at ``stage``: that one and every one
    before it (a lead the CRM moves straight to SQL has passed MQL); none for a stage outside
    the funnel (``disqualified``). The one rule the funnel and a journey's ``mql`` count by."""
    if stage not in FUNNEL_STAGES:
        return ()
    return FUNNEL_STAGES[: FUNNEL_STAGES.index(str(stage)) + 1]


@dataclass(frozen=True)
class FunnelLead:
    """A lead as the funnel counts it: its cohort (the day it was created), its first touch
    (the channel it came by and its first form), and the day it first reached each stage."""

    lead_id: str
    created_day: str
    channel: str
    form_id: str = NO_FORM
    reached: Mapping[str, str] = field(default_factory=dict)
    withdrawn: bool = False
    """Taken back out of the funnel (its import undone, the lead removed): nothing that comes
    for it afterwards counts - its creation, if the counters come to it only now, or a stage
    change already on its way."""

    @property
    def key(self) -> CounterKey:
        return CounterKey(FUNNEL_SUBJECT, self.created_day, f"{self.channel}#{self.form_id}")


DEALS_SUBJECT = "deals"
"""The deals' rows: sk ``<close day>#<currency>#<deal id>``, ``won`` / ``lost`` and
``revenue_cents`` (the amount in hundredths of the currency's unit) as the deal now stands."""


@dataclass(frozen=True)
class CountedDeal:
    """A CRM deal as the counters last counted it (what a later change of it takes back)."""

    deal_id: str
    status: str
    currency: str
    amount_cents: int
    close_day: str | None
    lead_ids: tuple[str, ...]
    updated_at: str

    @property
    def key(self) -> CounterKey | None:
        if self.close_day is None:
            return None
        return CounterKey(DEALS_SUBJECT, self.close_day, f"{self.currency}#{self.deal_id}")

    def contribution(self) -> dict[str, int]:
        if self.status == "won":
            return {"won": 1, "revenue_cents": self.amount_cents}
        return {"lost": 1} if self.status == "lost" else {}


def amount_in_cents(text: str) -> int:
    """A deal's amount (exact decimal text, at most 2 places) in hundredths of its unit."""
    return int(Decimal(text) * 100)


def experiment_subject(journey_id: str, node: str) -> str:
    """A split of a journey: its arms' counts (sk ``<day>#v<version>#<arm>``)."""
    return f"experiment#{journey_id}#{node}"


@dataclass(frozen=True)
class Assignment:
    """A lead in a journey as the counters know it: since its first counted step there (a mail
    or a decision), on which version, the arms it was given in the journey's splits and
    holdouts (node -> outcome) and when, so that what follows counts for its arm, and the day it
    first reached each outcome the journey is judged by (``converted``: one of the journey's
    goals; ``mql``) within the journey's window."""

    journey_id: str
    lead_id: str
    arms: Mapping[str, str] = field(default_factory=dict)
    since: str | None = None
    """The instant of the lead's first counted step in the journey (None: counted before the
    counters kept it; such a lead's conversions are not counted)."""
    version: int | None = None
    reached: Mapping[str, str] = field(default_factory=dict)
    """``converted`` / ``mql`` -> the day it was counted: each once per lead and journey."""
    given_at: Mapping[str, str] = field(default_factory=dict)
    """Node -> the instant of the decision that gave the arm. A mail or a conversion counts for
    the arms the lead had by then: a welcome mail sent before a split is no arm's, also when a
    rebuild counts it after the split. An arm without one was counted before the instants were
    kept, and is taken as given before anything counted now."""
    control: frozenset[str] = frozenset()
    """The holdouts whose control group the lead is in (the journey left it alone there)."""

    def arms_at(self, instant: str) -> dict[str, str]:
        """The arms the lead had been given at ``instant``."""
        at = parse_instant(instant)
        return {
            node: arm
            for node, arm in self.arms.items()
            if node not in self.given_at or parse_instant(self.given_at[node]) <= at
        }

    def held_out_at(self, instant: str) -> bool:
        """Whether the lead was in a holdout's control group at ``instant``."""
        return any(node in self.control for node in self.arms_at(instant))


@dataclass(frozen=True)
class JourneyGoal:
    """What a journey counts as converted: any of its goal events (its exit goals), when it
    happens within ``window_days`` of the lead's first step in the journey."""

    journey_id: str
    matches: Sequence[Callable[[str, Mapping[str, Any]], bool]]
    window_days: int

    def reached_by(self, event: StoredEvent) -> bool:
        """A person reaching a goal: a crawler's view of the pricing page converts nobody."""
        if event.properties.get("automated"):
            return False
        return any(match(event.type, event.properties) for match in self.matches)


class _HasGoals(Protocol):
    journey_id: str

    @property
    def exit(self) -> Any: ...


def goals_of(journeys: Iterable[_HasGoals]) -> dict[str, JourneyGoal]:
    """Each journey's goal as counting reads it (tsunagu.journeys.model.Journey's exit goals
    and window). A journey without goals converts nobody, and still counts the MQLs its leads
    became within the window."""
    return {
        j.journey_id: JourneyGoal(
            j.journey_id, [g.matches for g in j.exit.goals], j.exit.goal_window_days
        )
        for j in journeys
    }


@dataclass(frozen=True)
class CountedMail:
    """A mail the counters have seen sent: what it is attributed to, and its firsts - for each of
    opened_people, opened_machines, clicked_people, clicked_machines and unsubscribed, the day
    the mail first had one (what "unique" counts)."""

    message_id: str
    lead_id: str
    template_id: str
    template_version: int
    sent_day: str
    journey_id: str | None = None
    journey_version: int | None = None
    node: str | None = None
    firsts: Mapping[str, str] = field(default_factory=dict)
    arms: Mapping[str, str] = field(default_factory=dict)
    """The arms its lead was in when it was sent (split node -> outcome)."""
    touched_at: str | None = None
    """When a person first opened or clicked it: the mail's touch, as revenue attribution
    counts touches (tsunagu.reports.attribution). None while only machines have."""

    def keys(self, day: str) -> list[CounterKey]:
        """The rows an event of this mail on ``day`` counts in: its template version's, its
        journey node's, and each arm's of the splits its lead went through before it."""
        keys = [CounterKey(mail_subject(self.template_id), day, f"v{self.template_version}")]
        if self.journey_id and self.node:
            version = self.journey_version if self.journey_version is not None else DEPLOYED
            keys.append(
                CounterKey(journey_subject(self.journey_id), day, f"v{version}#{self.node}")
            )
            for split, arm in sorted(self.arms.items()):
                subject = experiment_subject(self.journey_id, split)
                keys.append(CounterKey(subject, day, f"v{version}#{arm}"))
        return keys


@dataclass(frozen=True)
class Counted:
    """What an event adds: ``increments`` per counter row, and the mail as it stands after the
    event (a new mail for ``mail_sent``; None when the event is not a mail's)."""

    increments: dict[CounterKey, dict[str, int]]
    mail: CountedMail | None = None
    assignments: tuple[Assignment, ...] = ()
    """The lead in the journeys the event changed it in: its first step, an arm added, an
    outcome reached."""
    funnel: FunnelLead | None = None
    """A lead created, or reaching a stage of the funnel: the lead as the funnel now has it."""
    deal: CountedDeal | None = None
    """A deal's change: the deal as now counted."""


@dataclass(frozen=True)
class StoredEvent:
    """The parts of a stored event (a stream image, or an item read back) that counting reads."""

    event_id: str
    type: str
    occurred_at: str
    lead_id: str | None
    properties: Mapping[str, Any]

    @classmethod
    def from_image(cls, image: Mapping[str, Any]) -> StoredEvent | None:
        if not image.get("event_id") or not image.get("type") or not image.get("occurred_at"):
            return None
        return cls(
            event_id=str(image["event_id"]),
            type=str(image["type"]),
            occurred_at=str(image["occurred_at"]),
            lead_id=str(image["lead_id"]) if image.get("lead_id") else None,
            properties=image.get("properties") or {},
        )

    @property
    def message_id(self) -> str | None:
        value = self.properties.get("message_id")
        return str(value) if value else None


def day_of(instant: str, time_zone: ZoneInfo) -> str:
    """The calendar day, in the report's time zone, of an ISO instant."""
    return parse_instant(instant).astimezone(time_zone).date().isoformat()


def is_final(event: StoredEvent) -> bool:
    """Whether the event's judgement can no longer change. A click judged a person's waits for
    the burst window (tsunagu.tracking.settling): it is counted when it is settled, as a
    person's or as a machine's if a later click of the burst re-judged it."""
    if event.type != "link_clicked":
        return True
    return bool(event.properties.get("automated")) or bool(event.properties.get("settled"))


def final_at(event: StoredEvent) -> str:
    """When the event became final, as the stream's consumer meets it: a person's click when
    it settled, anything else when it occurred. The rebuild counts in this order, so that the
    first open of a mail is the same one the consumer counted."""
    if event.type == "link_clicked" and not event.properties.get("automated"):
        settled = parse_instant(event.occurred_at) + timedelta(seconds=SETTLE_AFTER_SECONDS)
        return isoformat(settled)
    return event.occurred_at


def needs_mail(event: StoredEvent) -> bool:
    """Whether counting the event needs the mail it belongs to."""
    return event.type in _MAIL_EVENTS and event.message_id is not None


_MAIL_EVENTS = frozenset(
    {
        "mail_delivered",
        "mail_bounced",
        "mail_complained",
        "mail_opened",
        "link_clicked",
        "consent_changed",
    }
)
_UNSUBSCRIBE_METHODS = frozenset({"one_click", "preferences"})


def count(
    event: StoredEvent,
    mail: CountedMail | None,
    time_zone: ZoneInfo,
    memberships: Mapping[tuple[str, str], Assignment] | None = None,
    funnel: FunnelLead | None = None,
    goals: Mapping[str, JourneyGoal] | None = None,
    deal: CountedDeal | None = None,
) -> Counted | None:
    """The increments ``event`` adds, or None when it counts nothing (not a counted kind, not
    final yet, or a mail event whose mail the counters never saw sent). ``memberships``: the
    lead in the journeys of ``membership_keys`` as the counters have it; ``funnel``: the lead as
    the funnel has it, for a ``stage_changed`` (its first touch read from the lead when the
    funnel has not seen it yet); ``goals``: every journey's goal, by journey; ``deal``: the
    deal of a ``deal_changed`` as the counters last counted it."""
    if not is_final(event):
        return None
    day = day_of(event.occurred_at, time_zone)
    known = memberships or {}
    counted: Counted | None
    if event.type == "mail_sent":
        counted = _sent(event, day, known, mail)
    elif event.type == "journey_decision":
        counted = _decided(event, day, known)
    elif event.type == "form_submitted":
        counted = _submitted(event, day, funnel)
    elif event.type == LEAD_IMPORTED:
        counted = _imported(event, day, funnel)
    elif event.type == "stage_changed":
        counted = _stage_reached(event, day, funnel)
    elif event.type == DEAL_CHANGED:
        counted = _deal_changed(event, deal)
    elif event.type not in _MAIL_EVENTS or mail is None:
        counted = None
    else:
        counted = _of_mail(event, mail, day)
    return _with_outcomes(counted, event, day, known, goals or {})


def membership_keys(event: StoredEvent, goals: Mapping[str, JourneyGoal]) -> list[tuple[str, str]]:
    """(journey, lead) pairs whose membership counting ``event`` reads: the journey of a send
    or a decision, the journeys whose goal the event is, and every journey for a lead that
    became an MQL."""
    if event.lead_id is None:
        return []
    journey_id = event.properties.get("journey_id")
    if journey_id and event.type in ("mail_sent", "journey_decision"):
        return [(str(journey_id), event.lead_id)]
    if _became_mql(event):
        return [(j, event.lead_id) for j in sorted(goals)]
    return [(j, event.lead_id) for j, goal in sorted(goals.items()) if goal.reached_by(event)]


def _became_mql(event: StoredEvent) -> bool:
    """The lead moved from before MQL to MQL or past it, as the funnel counts a stage reached
    (a lead the CRM moves straight to SQL became an MQL on the way)."""
    if event.type != "stage_changed":
        return False
    props = event.properties
    return "mql" in stages_reached_by(props.get("to")) and "mql" not in stages_reached_by(
        props.get("from")
    )


def _joined(
    event: StoredEvent, journey_id: str, known: Mapping[tuple[str, str], Assignment]
) -> Assignment:
    """The lead in the journey, from its first counted step there if this is that step."""
    assert event.lead_id is not None
    found = known.get((journey_id, event.lead_id))
    if found is not None and found.since is not None:
        return found
    version = event.properties.get("journey_version")
    if found is not None:  # known by its arms alone (counted before memberships were kept)
        return replace(
            found,
            since=event.occurred_at,
            version=int(version) if version is not None else DEPLOYED,
        )
    return Assignment(
        journey_id,
        event.lead_id,
        since=event.occurred_at,
        version=int(version) if version is not None else DEPLOYED,
    )


def _with_outcomes(
    counted: Counted | None,
    event: StoredEvent,
    day: str,
    known: Mapping[tuple[str, str], Assignment],
    goals: Mapping[str, JourneyGoal],
) -> Counted | None:
    """``counted`` with what the event means for the journeys its lead is in: a goal reached
    (``converted``) or MQL reached, within the journey's window, once per lead and journey,
    counted for each arm the lead had been given by then, and for the journey version unless
    the lead was in a holdout's control group (the journey left it alone: its conversion is
    the baseline's, in the experiment report, not the journey's)."""
    if event.lead_id is None or event.type in ("mail_sent", "journey_decision"):
        return counted
    outcome = "mql" if _became_mql(event) else "converted"
    increments: dict[CounterKey, dict[str, int]] = {}
    changed: list[Assignment] = []
    for key in membership_keys(event, goals):
        member, goal = known.get(key), goals.get(key[0])
        if member is None or member.since is None or goal is None or outcome in member.reached:
            continue
        window_ends = parse_instant(member.since) + timedelta(days=goal.window_days)
        if not parse_instant(member.since) <= parse_instant(event.occurred_at) <= window_ends:
            continue
        version = member.version if member.version is not None else DEPLOYED
        keys = [
            CounterKey(experiment_subject(member.journey_id, node), day, f"v{version}#{arm}")
            for node, arm in sorted(member.arms_at(event.occurred_at).items())
        ]
        if not member.held_out_at(event.occurred_at):
            keys.append(CounterKey(journey_subject(member.journey_id), day, f"v{version}"))
        for counter in keys:
            increments[counter] = {outcome: 1}
        changed.append(replace(member, reached={**member.reached, outcome: day}))
    if not changed:
        return counted
    if counted is None:
        return Counted(increments, assignments=tuple(changed))
    total = {k: dict(v) for k, v in counted.increments.items()}
    add(total, Counted(increments))
    return replace(counted, increments=total, assignments=(*counted.assignments, *changed))


def _sent(
    event: StoredEvent,
    day: str,
    known: Mapping[tuple[str, str], Assignment],
    counted: CountedMail | None,
) -> Counted | None:
    """A mail sent: counted for its template version, its journey node, and the arms its lead
    had been given when it was sent. ``counted``: the mail as the counters already have it (a
    rebuild counts its send again), whose arms are the ones it was counted with at its send."""
    props = event.properties
    message_id, template_id = event.message_id, props.get("template_id")
    if not message_id or not template_id or event.lead_id is None:
        return None
    journey_version = props.get("journey_version")
    journey_id = str(props["journey_id"]) if props.get("journey_id") else None
    member = _joined(event, journey_id, known) if journey_id else None
    mail = CountedMail(
        message_id=message_id,
        lead_id=event.lead_id,
        template_id=str(template_id),
        template_version=int(props.get("template_version") or 1),
        sent_day=day,
        journey_id=str(props["journey_id"]) if props.get("journey_id") else None,
        journey_version=int(journey_version) if journey_version is not None else None,
        node=str(props["node"]) if props.get("node") else None,
        arms=(
            dict(counted.arms)
            if counted is not None
            else member.arms_at(event.occurred_at)
            if member is not None
            else {}
        ),
    )
    joined = () if member is None or member == known.get(_key_of(member)) else (member,)
    return Counted({key: {"sent": 1} for key in mail.keys(day)}, mail, joined)


def _key_of(member: Assignment) -> tuple[str, str]:
    return member.journey_id, member.lead_id


def _decided(
    event: StoredEvent, day: str, known: Mapping[tuple[str, str], Assignment]
) -> Counted | None:
    props = event.properties
    journey_id, node, outcome = props.get("journey_id"), props.get("node"), props.get("outcome")
    if not journey_id or not node or not outcome:
        return None
    version = props.get("journey_version")
    version = int(version) if version is not None else DEPLOYED
    key = CounterKey(journey_subject(str(journey_id)), day, f"v{version}#{node}")
    increments = {key: {"decided": 1, f"outcome:{outcome}": 1}}
    if event.lead_id is None:
        return Counted(increments)
    member = _joined(event, str(journey_id), known)
    node, outcome = str(node), str(outcome)
    # A lead is assigned once per split: entering the journey again, it is drawn to the same
    # arm (tsunagu.journeys.decisions.draw) and is the same lead of that arm. Only a new arm (a
    # later version's shares drew it elsewhere) is a new assignment.
    if props.get("kind") in _EXPERIMENTS and member.arms.get(node) != outcome:
        increments[key]["assigned"] = 1  # marks the node an experiment, for the journey report
        arm = CounterKey(experiment_subject(str(journey_id), node), day, f"v{version}#{outcome}")
        increments[arm] = {"assigned": 1}
        # The decision says so (control_group); one stored before it did, by its kind and arm.
        held_out = bool(
            props.get("control_group", props.get("kind") == "holdout" and outcome == HOLDOUT)
        )
        member = replace(
            member,
            arms={**member.arms, node: outcome},
            given_at={**member.given_at, node: event.occurred_at},
            control=member.control | {node} if held_out else member.control - {node},
        )
    joined = () if member == known.get(_key_of(member)) else (member,)
    return Counted(increments, assignments=joined)


_EXPERIMENTS = frozenset({"split", "holdout"})
"""Decisions whose arms are compared: a split's paths, a holdout's control group and the rest."""


def form_source(properties: Mapping[str, Any]) -> str:
    """Where a submission came from: the campaign's utm_source when the form carried one, else
    where its visitor came from as the capture found it (``came_from``: the landing page's
    campaign or another site referring, never the form's own site; tsunagu.leads.history),
    else ``direct``. A submission stored before 2026-12-06 has no ``came_from``, and its post's
    Referer is no source either: it is the page the form sits on, the company's own site."""
    fields = properties.get("fields") or {}
    utm = fields.get("utm_source") if isinstance(fields, Mapping) else None
    if utm:
        return str(utm)[:100]
    return str(properties.get("came_from") or DIRECT)


def _submitted(event: StoredEvent, day: str, funnel: FunnelLead | None) -> Counted | None:
    form_id = event.properties.get("form_id")
    if not form_id:
        return None
    key = CounterKey(form_subject(str(form_id)), day, form_source(event.properties))
    metrics = {"submitted": 1}
    if not event.properties.get("new_lead") or event.lead_id is None or funnel is not None:
        return Counted({key: metrics})
    metrics["new_leads"] = 1
    # The form's channel (a seminar's sign-up form says "seminar"). Submissions stored before
    # 2026-12-05 do not carry it and count as web_form, also when a rebuild counts them again.
    channel = str(event.properties.get("source") or Channel.WEB_FORM.value)
    created = FunnelLead(event.lead_id, day, channel, str(form_id), {"lead": day})
    return Counted({key: metrics, created.key: {"reached:lead": 1}}, funnel=created)


def _imported(event: StoredEvent, day: str, funnel: FunnelLead | None) -> Counted | None:
    """A lead an import created: in the funnel from that day, by the channel the import
    counted as (a trade show's list: trade_show) and no form. Counted from its creation, not
    from its first stage change, so that a list's leads who never move are in the funnel's
    first stage too, and its conversion rates are not those of the movers alone."""
    if not event.properties.get("new_lead") or event.lead_id is None or funnel is not None:
        return None
    channel = str(event.properties.get("source") or Channel.IMPORT.value)
    created = FunnelLead(event.lead_id, day, channel, NO_FORM, {"lead": day})
    return Counted({created.key: {"reached:lead": 1}}, funnel=created)


def withdrawn(lead_id: str, funnel: FunnelLead | None) -> FunnelLead:
    """The lead as the funnel keeps it once taken back out: what it was, having reached
    nothing (a lead the counters have not come to yet: kept so that they never will)."""
    if funnel is None:
        return FunnelLead(lead_id, NO_DAY, NO_FORM, withdrawn=True)
    return replace(funnel, reached={}, withdrawn=True)


def withdrawal(funnel: FunnelLead) -> dict[str, int]:
    """What takes a counted lead back out of the funnel (an import undone removed it, as if it
    had never been imported): one less at every stage it reached, and in the days it took to
    each, as they were counted (_stage_reached)."""
    metrics: dict[str, int] = {}
    previous_day = funnel.created_day
    for name in FUNNEL_STAGES:
        day = funnel.reached.get(name)
        if day is None:
            break  # the stages reached run from "lead" without a gap: skipped ones are filled
        metrics[f"reached:{name}"] = -1
        if name != "lead":
            waited = (date.fromisoformat(day) - date.fromisoformat(previous_day)).days
            metrics[f"days_to:{name}:{min(max(waited, 0), MAX_DAYS_COUNTED)}"] = -1
        previous_day = day
    return metrics


def needs_funnel(event: StoredEvent) -> bool:
    """Whether counting the event reads the lead as the funnel has it: a stage it moved to, or
    its creation by a form or an import."""
    if event.lead_id is None:
        return False
    if event.type in ("form_submitted", LEAD_IMPORTED):
        return bool(event.properties.get("new_lead"))
    return event.type == "stage_changed" and event.properties.get("to") in FUNNEL_STAGES


def first_touch(
    lead_id: str, created_at: str, channel: str | None, time_zone: ZoneInfo
) -> FunnelLead:
    """A lead the funnel has not seen, from the lead itself: its day of creation and the
    channel it first came by. Leads are created only by forms and imports, whose creation the
    funnel counts; this is for those stored before imports were counted."""
    return FunnelLead(lead_id, day_of(created_at, time_zone), channel or "unknown")


def _stage_reached(event: StoredEvent, day: str, funnel: FunnelLead | None) -> Counted | None:
    """The stages a lead reaches for the first time: the one it moved to, and any it skipped
    on the way (each with the days since the one before it)."""
    stage = event.properties.get("to")
    if funnel is None or funnel.withdrawn or stage not in FUNNEL_STAGES:
        return None
    reached = dict(funnel.reached)
    metrics: dict[str, int] = {}
    previous_day = funnel.created_day
    for name in stages_reached_by(stage):
        if name in reached:
            previous_day = reached[name]
            continue
        if name == "lead":  # a lead not created by a form: it was a lead from its creation
            reached[name] = funnel.created_day
            metrics["reached:lead"] = 1
            continue
        reached[name] = day
        metrics[f"reached:{name}"] = 1
        waited = (date.fromisoformat(day) - date.fromisoformat(previous_day)).days
        metrics[f"days_to:{name}:{min(max(waited, 0), MAX_DAYS_COUNTED)}"] = 1
        previous_day = day
    if not metrics:
        return None  # back and forth: every stage up to this one was reached before
    return Counted({funnel.key: metrics}, funnel=replace(funnel, reached=reached))


DEAL_CHANGED = "deal_changed"


def deal_id_of(event: StoredEvent) -> str | None:
    """The deal a ``deal_changed`` is about."""
    if event.type != DEAL_CHANGED:
        return None
    value = event.properties.get("deal_id")
    return str(value) if value else None


def _deal_changed(event: StoredEvent, before: CountedDeal | None) -> Counted | None:
    """What a deal's change moves: its previous state taken back, its new one counted (a won
    deal lost after all, an amount corrected, a close day moved). A change older than the one
    counted (the stream of another lead delivered it late) counts nothing."""
    props = event.properties
    deal_id, status, currency = deal_id_of(event), props.get("status"), props.get("currency")
    if not deal_id or status not in ("open", "won", "lost") or not currency:
        return None
    updated_at = str(props.get("updated_at") or event.occurred_at)
    if before is not None and updated_at <= before.updated_at:
        return None
    now = CountedDeal(
        deal_id=deal_id,
        status=str(status),
        currency=str(currency),
        amount_cents=amount_in_cents(str(props.get("amount") or "0")),
        close_day=str(props["close_date"]) if props.get("close_date") else None,
        lead_ids=tuple(str(lead) for lead in props.get("lead_ids") or [event.lead_id] if lead),
        updated_at=updated_at,
    )
    increments: dict[CounterKey, dict[str, int]] = {}
    for state, sign in ((before, -1), (now, 1)):
        if state is None or state.key is None:
            continue
        row = increments.setdefault(state.key, {})
        for name, n in state.contribution().items():
            row[name] = row.get(name, 0) + sign * n
    increments = {k: {n: v for n, v in m.items() if v} for k, m in increments.items()}
    return Counted({k: m for k, m in increments.items() if m}, deal=now)


def _of_mail(event: StoredEvent, mail: CountedMail, day: str) -> Counted | None:
    props = event.properties
    metrics: dict[str, int] = {}
    firsts = dict(mail.firsts)
    touched_at = mail.touched_at

    def first(name: str) -> None:
        if name not in firsts:
            firsts[name] = day
            metrics[f"{name}_unique"] = 1

    if event.type == "mail_delivered":
        metrics["delivered"] = 1
    elif event.type == "mail_bounced":
        metrics["bounced_hard" if props.get("bounce_type") == "Permanent" else "bounced_soft"] = 1
    elif event.type == "mail_complained":
        metrics["complained"] = 1
    elif event.type == "consent_changed":
        unsubscribed = (
            props.get("status") == "opted_out" and props.get("method") in _UNSUBSCRIBE_METHODS
        )
        # Once per mail: the preferences page opts out of several topics in one visit.
        if not unsubscribed or "unsubscribed" in firsts:
            return None
        firsts["unsubscribed"] = day
        metrics["unsubscribed"] = 1
    else:
        who = "machines" if props.get("automated") else "people"
        action = "opened" if event.type == "mail_opened" else "clicked"
        # The earliest: a click is counted once settled, after an open that came later.
        if who == "people" and (touched_at is None or event.occurred_at < touched_at):
            touched_at = event.occurred_at
        metrics[f"{action}_{who}"] = 1
        first(f"{action}_{who}")
        if action == "clicked":
            first(f"opened_{who}")  # a click implies an open: the image may have been blocked
        if who == "machines":
            for reason in props.get("reasons") or ["unexplained"]:
                metrics[f"{action}_machines:{reason}"] = 1
    changed = (
        replace(mail, firsts=firsts, touched_at=touched_at)
        if firsts != dict(mail.firsts) or touched_at != mail.touched_at
        else mail
    )
    return Counted({key: dict(metrics) for key in mail.keys(day)}, changed)


def add(total: dict[CounterKey, dict[str, int]], counted: Counted) -> None:
    """Fold ``counted``'s increments into ``total``."""
    for key, metrics in counted.increments.items():
        row = total.setdefault(key, {})
        for name, n in metrics.items():
            row[name] = row.get(name, 0) + n
