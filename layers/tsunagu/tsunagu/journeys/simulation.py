"""The dry run: a journey definition played for a population of synthetic leads before it goes
live — who reaches each node and when, which mails would go on which dates, and what the
state machine would cost — with nothing sent to anyone.

Each lead walks the definition with the rules its state machine's steps apply, called here
directly: ``next_send_time`` for waits (the business calendar, company closed days and quiet
hours of the settings), the gate's ``decide`` for every mail (the frequency cap; a mail that
makes sense on one day only is skipped past it) and its ``decide_step`` before update_lead,
notify_owner and webhook (a lead sales has leaves there), the decisions' ``decide`` for branch,
split and holdout, reading what journey_decide reads (``Facts``), and ``apply_update`` for
update_lead, as the step merges it (a field the journey sets is there for a later ``field.``
branch). Simulated
time is the leads' own: the run takes a second of real time for a thousand
leads and a month of journey, where running each one through the local runtime's Step
Functions would take an hour.

A synthetic lead is a new one (stage ``lead``, no tags, fields or score), opted in to the
journey's topic - the gate mails it, and a ``consent.`` branch reads it so - in no saved segment
and no import, and it did nothing before it entered (``SYNTHETIC_LEADS`` says it in the report).

The second form, ``forecast``, walks one real lead the same way: its own consent, stage, tags,
score and the mails it had lately (the frequency cap counts them), and the facts its branches
read as journey_decide reads them (its consent per topic, saved segments, its events, imports,
its score now, decay included), step by step over the next days, with the instant and the
reason for each — what a marketer checks before she puts a particular customer into a journey.
Nothing is sent or stored in either form.

In both, an event the dry run assumes the lead does on its way (a click a ``wait_for`` waited
for) is one ``did=`` reads afterwards, as the real lead's timeline would hold it.

Behaviour follows the assumptions: ``click=0.3`` means each lead clicks a mail it is waited on
for with probability 0.3, at a moment spread evenly over the wait's window. Each awaited event
happens or not independently; the first to happen decides. A lead's choices come from a
generator seeded with the run's seed and the lead's number, so a run can be repeated exactly.
"""

from __future__ import annotations

import copy
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tsunagu.clock import isoformat, parse_instant
from tsunagu.journeys import decisions, gate
from tsunagu.journeys.business_time import (
    BusinessCalendar,
    QuietHours,
    SendTimeRule,
    first_allowed_moment,
    next_send_time,
    send_by,
)
from tsunagu.journeys.compiler import validate
from tsunagu.journeys.definition import (
    Branch,
    End,
    Holdout,
    JourneyDefinition,
    Node,
    NotifyOwner,
    Send,
    Split,
    UpdateLead,
    Wait,
    WaitFor,
    Webhook,
)
from tsunagu.journeys.model import Journey
from tsunagu.leads.merge import Channel
from tsunagu.leads.model import Lead
from tsunagu.leads.updates import LeadUpdate, apply_update
from tsunagu.mail.consent import ConsentView
from tsunagu.qualification.scores import LeadScores
from tsunagu.segments.filter import Facts, NoFacts, Segment

EVENT_ASSUMPTIONS = {
    "link_clicked": "click",
    "mail_opened": "open",
    "seminar_attended": "attend",
    "page_view": "view",
    "form_submitted": "form",
}
"""The assumption that drives each awaited event type; any other type by its own name."""
TRANSITION_PRICE_USD = 0.000025
"""Step Functions Standard workflows' list price per state transition (USD 0.025 per 1,000,
us-east-1; the free tier and the Lambda invocations are not counted)."""
MAIL_SKIPPED = "left: mail skipped"
"""A wait's outcome when it timed out and a mail it watched had been skipped: the lead leaves
(compiler.LEFT_WITHOUT_THE_MAIL), with no "did not click" follow-up."""
MAX_LEADS = 100_000
MAX_STEPS = 500
"""A lead that takes more steps than this is in a loop that never ends (validate() refuses a
loop without a wait, but a wait can still go round forever)."""


SYNTHETIC_LEADS = (
    "each synthetic lead is new (stage lead, no tags, fields or score), opted in to {topic},"
    " in no saved segment or import, and did nothing before it entered"
)
"""What the dry run assumes of its synthetic leads (branches on anything else go by it)."""


class AssumptionError(ValueError):
    """The assumptions cannot be read."""


class _SyntheticFacts(NoFacts):
    """A synthetic lead's facts: opted in as the gate takes it to be (one consent for both),
    nothing else known (NoFacts)."""

    def __init__(self, consent: Mapping[str, str]) -> None:
        self._consent = consent

    def consent(self, lead_id: str) -> Mapping[str, str]:
        return self._consent


class _OnTheWay:
    """The facts a decision on the walk reads: the lead's (stored, or a synthetic lead's), and
    the events the dry run assumed it did since it entered (a ``did=`` after a click sees it)."""

    def __init__(self, facts: Facts) -> None:
        self._facts = facts
        self.happened: list[tuple[str, datetime]] = []

    def did(self, lead_id: str, event_type: str, since: datetime) -> bool:
        assumed = any(kind == event_type and at >= since for kind, at in self.happened)
        return assumed or self._facts.did(lead_id, event_type, since)

    def consent(self, lead_id: str) -> Mapping[str, str]:
        return self._facts.consent(lead_id)

    def imported(self, import_id: str) -> frozenset[str]:
        return self._facts.imported(import_id)

    def segment(self, name: str) -> Segment | None:
        return self._facts.segment(name)

    def scores(self, now: datetime) -> LeadScores:
        return self._facts.scores(now)


def parse_assumptions(text: str) -> dict[str, float]:
    """``click=0.3,open=0.5,attend=0.1`` -> {name: probability}."""
    rates: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, equals, value = part.partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = -1.0
        if not equals or not name.strip() or not 0.0 <= rate <= 1.0:
            raise AssumptionError(f"{part!r}: say name=probability, a number from 0 to 1")
        rates[name.strip()] = rate
    return rates


@dataclass(frozen=True)
class Rules:
    """The business time and frequency cap the journey's steps would apply (from settings)."""

    calendar: BusinessCalendar
    quiet: QuietHours
    cap: gate.FrequencyCap
    time_zone: str

    def allowed_at(self, instant: datetime) -> datetime:
        """The first moment out of quiet hours and closed days (where a deferral lands)."""
        return first_allowed_moment(
            instant, time_zone=self.time_zone, calendar=self.calendar, quiet=self.quiet
        )


@dataclass(frozen=True)
class ForecastStep:
    """What one node does to the lead, and when (the one-lead dry run)."""

    at: datetime
    node: str
    what: str


@dataclass
class _Walker:
    """One lead on its way through the journey: synthetic, or a real one (``forecast``)."""

    lead: Lead
    now: datetime
    chance: random.Random
    consent: ConsentView
    """What the gate reads: a real lead's own, a synthetic lead opted in to the journey's topic."""
    facts: _OnTheWay
    """What the decisions read beyond the lead, as journey_decide reads it."""
    sent: dict[str, bool] = field(default_factory=dict)
    """Result slot -> whether its mail went (a skipped mail cannot be clicked)."""
    recent_sends: list[str] = field(default_factory=list)
    send_by: datetime | None = None
    transitions: int = 0
    path: list[str] = field(default_factory=list)
    log: list[ForecastStep] | None = None
    """Kept for a real lead only: a thousand synthetic leads' steps are only counted."""

    def say(self, node: str, what: str, at: datetime | None = None) -> None:
        if self.log is not None:
            self.log.append(ForecastStep(at or self.now, node, what))


@dataclass
class Simulation:
    journey_id: str
    leads: int
    start: datetime
    node_order: list[str]
    """The definition's order, which the report follows."""
    reached: dict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    """Node id -> the instants leads reached it."""
    outcomes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    """Decision node id (wait_for, branch, split, holdout) -> outcome -> leads."""
    mails: dict[str, Counter[date]] = field(default_factory=lambda: defaultdict(Counter))
    """Template -> local date -> mails that would go."""
    sent: dict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    """Send node id -> the instants its mails would go (later than reaching it when the gate
    defers a mail under the frequency cap)."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Send node id -> mails the gate would skip (past their day, the cap)."""
    synthetic: str = ""
    """What the run assumed of its synthetic leads (SYNTHETIC_LEADS)."""
    paths: Counter[tuple[str, ...]] = field(default_factory=Counter)
    transitions: Counter[tuple[str, ...]] = field(default_factory=Counter)
    """Path -> state transitions of all the leads on it (leads on one path may differ: each
    deferral under the frequency cap adds three)."""
    per_lead: list[int] = field(default_factory=list)
    """Each lead's state transitions."""
    still_in: Counter[str] = field(default_factory=Counter)
    """Node id -> leads still in the journey there after MAX_STEPS steps: going round a loop
    through a wait (a reminder until they click) that nothing they were assumed to do ended.
    Their walk stops there; the counts above are of the steps up to it."""

    def mean_transitions(self, path: tuple[str, ...]) -> float:
        return self.transitions[path] / self.paths[path]

    @property
    def transitions_per_entry(self) -> float:
        return sum(self.per_lead) / self.leads if self.leads else 0.0

    @property
    def cost_per_thousand_entries(self) -> float:
        return self.transitions_per_entry * 1000 * TRANSITION_PRICE_USD


def simulate(
    definition: JourneyDefinition,
    *,
    start: datetime,
    leads: int,
    assumptions: Mapping[str, float],
    rules: Rules,
    seed: int = 0,
    journey: Journey | None = None,
) -> Simulation:
    """``leads`` synthetic leads entering at ``start``; ValidationFailed for a definition that
    would not publish."""
    if not 1 <= leads <= MAX_LEADS:
        raise ValueError(f"simulate 1 to {MAX_LEADS:,} leads, not {leads}")
    validate(definition)
    nodes = {n.id: n for n in definition.nodes}
    policy = _policy(definition, journey)
    result = Simulation(definition.journey_id, leads, start, [n.id for n in definition.nodes])
    result.synthetic = SYNTHETIC_LEADS.format(topic=policy.topic)
    allowed_at = rules.allowed_at
    # One consent for the gate and the branches: a lead the gate mails is one consent.X=yes
    # selects (consent.<another topic> too, as opting in to marketing covers it).
    opted_in = {policy.topic: "opted_in"}
    for number in range(leads):
        walker = _Walker(
            lead=_synthetic_lead(number, start),
            now=start,
            # Not a secret: the same seed replays the same run.
            chance=random.Random(f"{seed}:{number}"),  # noqa: S311
            consent=ConsentView(topics=opted_in),
            facts=_OnTheWay(_SyntheticFacts(opted_in)),
        )
        current: str | None = definition.start
        while current is not None:
            if len(walker.path) >= MAX_STEPS:
                # A loop the definition allows (it passes a wait): the lead would still be in
                # it, which is the dry run's answer, not a failure of it
                result.still_in[current] += 1
                break
            node = nodes[current]
            walker.path.append(node.id)
            result.reached[node.id].append(walker.now)
            current = _step(node, walker, result, policy, rules, allowed_at, assumptions)
        path = tuple(walker.path)
        result.paths[path] += 1
        result.transitions[path] += walker.transitions
        result.per_lead.append(walker.transitions)
    return result


def _local(instant: datetime, rules: Rules) -> str:
    return instant.astimezone(ZoneInfo(rules.time_zone)).strftime("%m-%d %a %H:%M")


def _duration(span: timedelta) -> str:
    days, seconds = span.days, span.seconds
    hours, minutes = seconds // 3600, seconds % 3600 // 60
    parts = [f"{days} d"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes or not parts else []
    return " ".join(parts)


@dataclass
class Forecast:
    """One real lead's next days in a journey, as the dry run's second form shows them."""

    journey_id: str
    email: str
    start: datetime
    until: datetime
    steps: list[ForecastStep]
    at_the_end: str | None
    """The node the lead would be in when the forecast ends; None: its journey ended before."""


def forecast(
    definition: JourneyDefinition,
    lead: Lead,
    consent: ConsentView,
    recent_sends: Sequence[str],
    *,
    facts: Facts,
    start: datetime,
    days: int,
    assumptions: Mapping[str, float],
    rules: Rules,
    seed: int = 0,
    journey: Journey | None = None,
) -> Forecast:
    """``lead`` entering at ``start``, step by step for ``days`` days, with its own consent,
    stage, tags, score and recent mails (the frequency cap counts them): what each node would
    do and when. ``facts``: what its branches read beyond it, the same journey_decide reads
    (services.segment_facts): its consent per topic, its events, imports, saved segments and
    its score now. Nothing is sent and nothing is stored; an awaited event happens with its
    assumed probability (none given: nothing happens, so every wait times out)."""
    if not 1 <= days <= 366:
        raise ValueError(f"forecast 1 to 366 days, not {days}")
    validate(definition)
    nodes = {n.id: n for n in definition.nodes}
    policy = _policy(definition, journey)
    allowed_at = rules.allowed_at
    walker = _Walker(
        lead=copy.deepcopy(lead),  # its tags and stage change on the way; the lead's do not
        now=start,
        chance=random.Random(f"{seed}:{lead.lead_id}"),  # noqa: S311 - not a secret
        recent_sends=list(recent_sends),
        consent=consent,
        facts=_OnTheWay(facts),
        log=[],
    )
    scratch = Simulation(definition.journey_id, 1, start, list(nodes))
    until = start + timedelta(days=days)
    current: str | None = definition.start
    while current is not None:
        if len(walker.path) >= MAX_STEPS:
            break  # still going round a loop through a wait: it is still in the journey there
        walker.path.append(current)
        following = _step(nodes[current], walker, scratch, policy, rules, allowed_at, assumptions)
        if walker.now > until:  # the step runs past the forecast's end: the lead is still in it
            break
        current = following
    assert walker.log is not None
    steps = [step for step in walker.log if step.at <= until]
    return Forecast(definition.journey_id, lead.email, start, until, steps, current)


def forecast_report(result: Forecast, *, time_zone: str, assumed: str) -> list[str]:
    """The one-lead dry run as the CLI prints it."""
    zone = ZoneInfo(time_zone)

    def local(instant: datetime) -> str:
        return instant.astimezone(zone).strftime("%m-%d %a %H:%M")

    width = max((len(step.node) for step in result.steps), default=4)
    lines = [
        f"dry run of {result.journey_id} for {result.email}: entering {local(result.start)}, "
        f"the next {(result.until - result.start).days} days ({time_zone}); nothing is sent",
        f"assumed: {assumed or 'nothing the journey waits for happens'}",
        "",
        *(f"{local(step.at)}  {step.node:<{width}}  {step.what}" for step in result.steps),
        "",
    ]
    if result.at_the_end is None:
        lines.append("the journey ends for this lead within that time")
    else:
        lines.append(f"{local(result.until)}: still in the journey, at {result.at_the_end}")
    return lines


def _policy(definition: JourneyDefinition, journey: Journey | None) -> Journey:
    """The journey's record (its topic and exit stages), as if it were active."""
    if journey is not None:
        return journey.model_copy(update={"status": "active"})
    return Journey(
        journey_id=definition.journey_id,
        name=definition.name or definition.journey_id,
        state_machine="simulation",
        status="active",
    )


def _synthetic_lead(number: int, start: datetime) -> Lead:
    at = isoformat(start)
    return Lead(
        lead_id=f"lead_simulated_{number:06d}",
        email=f"simulated-{number}@example.com",
        fields={},
        sources=["simulation"],
        visitor_ids=set(),
        stage="lead",
        created_at=at,
        updated_at=at,
    )


def _step(
    node: Node,
    walker: _Walker,
    result: Simulation,
    policy: Journey,
    rules: Rules,
    allowed_at: Callable[[datetime], datetime],
    assumptions: Mapping[str, float],
) -> str | None:
    """What the node does to the lead; the next node's id (None: the journey ends)."""
    if isinstance(node, Send):
        return _send(node, walker, result, policy, rules, allowed_at)
    if isinstance(node, Wait):
        walker.transitions += 2  # Schedule, Wait
        rule = SendTimeRule.model_validate(node.rule.model_dump(exclude_none=True))
        waited_from = walker.now
        walker.now = next_send_time(
            rule,
            now=walker.now,
            time_zone=rules.time_zone,
            calendar=rules.calendar,
            quiet=rules.quiet,
        )
        walker.say(node.id, f"waits until {_local(walker.now, rules)}", waited_from)
        walker.send_by = (
            send_by(walker.now, rules.time_zone, rules.quiet) if rule.only_that_day else None
        )
        return node.next
    if isinstance(node, WaitFor):
        return _wait_for(node, walker, result, assumptions)
    if isinstance(node, Branch | Split | Holdout):
        return _decide(node, walker, result)
    if isinstance(node, UpdateLead | NotifyOwner | Webhook) and not _passes_step_gate(
        node, walker, policy
    ):
        return None
    if isinstance(node, UpdateLead):
        return _update_lead(node, walker, result)
    if isinstance(node, NotifyOwner | Webhook):
        walker.transitions += 1  # the mail to the owner, or the call (sent by nobody here)
        if isinstance(node, NotifyOwner):
            walker.say(node.id, f"mails the lead's owner: {node.message}")
        else:
            walker.say(node.id, f"calls the CRM webhook: {node.event}")
        return node.next
    assert isinstance(node, End)
    walker.transitions += 1
    walker.say(node.id, f"ends: {node.label}")
    return None


def _passes_step_gate(
    node: UpdateLead | NotifyOwner | Webhook, walker: _Walker, policy: Journey
) -> bool:
    """The lighter gate the state machine puts before a step that is no mail to the lead
    (compiler ``_step_gate``, gate.decide_step): False when the lead leaves the journey there
    (its CRM status says sales has it, ...), said as a send's exit is. The journey is taken to
    be active (``_policy``), so the gate never parks here."""
    walker.transitions += 2  # the step gate and its Choice; then the step, or the exit
    decided = gate.decide_step(
        gate.GateInput(
            journey=policy,
            account_paused=False,
            lead=walker.lead,
            consent=walker.consent,
            entry=gate.EntryState("active"),
            recent_sends=walker.recent_sends,
            step=node.label,
        )
    )
    if decided.action != "exit":
        return True
    walker.transitions += 1  # the exit (LEFT_THE_JOURNEY)
    walker.say(node.id, f"leaves the journey before {node.label}: {decided.reason}")
    return False


def _update_lead(node: UpdateLead, walker: _Walker, result: Simulation) -> str | None:
    """The change as the update_lead step merges it (a field a ``field.`` branch reads later
    is the one the journey set, unless a higher channel's value stays)."""
    walker.transitions += 1
    # Built, not validated: the definition's own validation already took these values.
    update = LeadUpdate.model_construct(
        stage=node.stage,
        add_tags=list(node.add_tags),
        remove_tags=list(node.remove_tags),
        fields=dict(node.fields),
        crm_status=None,
    )
    walker.lead, events = apply_update(
        walker.lead,
        update,
        by=f"journey:{result.journey_id}",
        source=Channel.JOURNEY,
        now=walker.now,
    )
    changes = [f"stage {node.stage}"] if node.stage else []
    changes += [f"+tag {t}" for t in node.add_tags] + [f"-tag {t}" for t in node.remove_tags]
    changes += [f"{name}={value}" for name, value in sorted(node.fields.items())]
    said = "sets " + ", ".join(changes)
    for event in events:
        reasons = event.properties.get("kept_reasons") or {}
        said += "".join(f"; keeps {name}: {why}" for name, why in sorted(reasons.items()))
    walker.say(node.id, said)
    return node.next


def _send(
    node: Send,
    walker: _Walker,
    result: Simulation,
    policy: Journey,
    rules: Rules,
    allowed_at: Callable[[datetime], datetime],
) -> str | None:
    consent = walker.consent
    while True:
        walker.transitions += 3  # the gate, its Choice, and the send, deferral or skip
        decided = gate.decide(
            gate.GateInput(
                journey=policy,
                account_paused=False,
                lead=walker.lead,
                consent=consent,
                entry=gate.EntryState("active"),
                recent_sends=walker.recent_sends,
                step=f"Send {node.label}",
                send_by=isoformat(walker.send_by) if walker.send_by else None,
            ),
            now=walker.now,
            cap=rules.cap,
            allowed_at=allowed_at,
        )
        if decided.action == "defer" and decided.send_at:
            later = parse_instant(decided.send_at)
            walker.say(node.id, f"{node.template} deferred to {_local(later, rules)}: "
                       f"{decided.reason}")  # fmt: skip
            walker.now = later
            continue
        break
    walker.send_by = None
    if decided.action == "exit":  # a real lead the gate would not mail (consent, stage, ...)
        walker.say(node.id, f"leaves the journey before {node.template}: {decided.reason}")
        return None
    sent = decided.action == "send"
    walker.sent[node.result_slot] = sent
    if sent:
        walker.recent_sends.append(isoformat(walker.now))
        local_day = walker.now.astimezone(ZoneInfo(rules.time_zone)).date()
        result.mails[node.template][local_day] += 1
        result.sent[node.id].append(walker.now)
        walker.say(node.id, f"sends {node.template}")
    else:
        result.skipped[node.id] += 1
        walker.say(node.id, f"skips {node.template}: {decided.reason}")
    return node.next  # None: the send, or the skip's Succeed, ends the journey


def _wait_for(
    node: WaitFor,
    walker: _Walker,
    result: Simulation,
    assumptions: Mapping[str, float],
) -> str | None:
    walker.transitions += 1  # the waiting task
    window = timedelta(seconds=node.within_seconds)
    walker.say(node.id, f"waits up to {_duration(window)} for {node.label}")
    happened: list[tuple[timedelta, str, str]] = []
    for awaited in node.events:
        rate = assumptions.get(EVENT_ASSUMPTIONS.get(awaited.type, awaited.type), 0.0)
        if awaited.of_mail is not None and not walker.sent.get(awaited.of_mail, False):
            rate = 0.0  # a mail that did not go cannot be clicked or opened
        # Both numbers are drawn whatever the rate, so one assumption's change does not shift
        # every other draw of the lead.
        does, when = walker.chance.random(), walker.chance.random()
        if does < rate:
            happened.append((window * when, awaited.outcome, awaited.type))
    if not happened:
        walker.now += window
        awaited_mails = {e.of_mail for e in node.events if e.of_mail}
        if awaited_mails:
            walker.transitions += 1  # "Mail skipped for ...?": did the mail it watched go?
        if any(not walker.sent.get(slot, False) for slot in awaited_mails):
            # As the state machine does: no "did not click" way for a mail that never went
            result.outcomes[node.id][MAIL_SKIPPED] += 1
            walker.transitions += 1  # the exit
            walker.say(node.id, f"nothing within {_duration(window)}: time is up; the mail it"
                       " waited on was skipped, so the lead leaves the journey")  # fmt: skip
            return None
        result.outcomes[node.id]["timed_out"] += 1
        walker.transitions += 1  # "Time is up for ...": the timeout recorded on the lead
        walker.say(node.id, f"nothing within {_duration(window)}: time is up")
        return node.timed_out
    after, outcome, kind = min(happened)
    walker.now += after
    walker.facts.happened.append((kind, walker.now))
    result.outcomes[node.id][outcome] += 1
    walker.say(node.id, f"{outcome} (assumed), after {_duration(after)}")
    exits = {e.outcome: e.next for e in node.exits}
    target = exits.get(outcome, node.exits[-1].next)
    if node.question and len({e.next for e in node.exits}) > 1:
        walker.transitions += 1  # the question's Choice
    return target


def _decide(
    node: Branch | Split | Holdout,
    walker: _Walker,
    result: Simulation,
) -> str | None:
    walker.transitions += 2  # journey_decide, its Choice
    decided = decisions.decide(
        decisions.spec_of(node),
        walker.lead,
        journey_id=result.journey_id,
        node=node.id,
        now=walker.now,
        facts=walker.facts,
    )
    result.outcomes[node.id][decided.outcome] += 1
    why = ", ".join(f"{k}={v}" for k, v in decided.values.items() if v is not None)
    walker.say(node.id, f"-> {decided.outcome}" + (f" ({why})" if why else ""))
    if isinstance(node, Branch):
        ways = {c.outcome: c.next for c in node.cases}
        return ways.get(decided.outcome, node.default)
    if isinstance(node, Split):
        return {p.outcome: p.next for p in node.paths}[decided.outcome]
    if decided.outcome == decisions.HOLDOUT:
        walker.transitions += 1  # kept as a control group
        return None
    return node.next


def report(simulation: Simulation, *, time_zone: str) -> list[str]:
    """The dry run as the CLI prints it."""
    zone = ZoneInfo(time_zone)

    def local(instant: datetime) -> str:
        return instant.astimezone(zone).strftime("%m-%d %a %H:%M")

    lines = [
        f"dry run of {simulation.journey_id}: {simulation.leads} synthetic leads entering at "
        f"{local(simulation.start)} ({time_zone}); nothing is sent",
        *([simulation.synthetic] if simulation.synthetic else []),
        "",
        "node                            leads   first         median        last",
    ]
    for node_id in simulation.node_order:
        ordered = sorted(simulation.reached.get(node_id, []))
        if not ordered:
            lines.append(f"{node_id:<30} {0:>6}   (no lead gets here)")
            continue
        median = ordered[len(ordered) // 2]
        lines.append(
            f"{node_id:<30} {len(ordered):>6}   {local(ordered[0])}  {local(median)}"
            f"  {local(ordered[-1])}"
        )
        for outcome, count in sorted(simulation.outcomes.get(node_id, Counter()).items()):
            lines.append(f"  -> {outcome:<26} {count:>6}")
        if simulation.skipped.get(node_id):
            lines.append(f"  -> not sent (the gate skips)  {simulation.skipped[node_id]:>5}")
    for node_id, count in sorted(simulation.still_in.items()):
        lines.append(
            f"{count} leads still in the journey at {node_id} after {MAX_STEPS} steps: a loop"
            " through a wait that nothing they were assumed to do ends"
        )
    lines += ["", "mails that would go, by day:"]
    for template, days in simulation.mails.items():
        spread = ", ".join(f"{d:%m-%d %a} {n}" for d, n in sorted(days.items()))
        lines.append(f"  {template}: {sum(days.values())} ({spread})")
    lines += ["", "paths (leads, state transitions per lead on average):"]
    for path, count in simulation.paths.most_common():
        mean = simulation.mean_transitions(path)
        lines.append(f"  {count:>6}  {mean:>5.1f}  {' > '.join(path)}")
    per_entry = simulation.transitions_per_entry
    median_transitions = statistics.median(simulation.per_lead)
    lines.append(
        f"state transitions: {per_entry:.1f} per entry on average (median {median_transitions:g});"
        f" USD {simulation.cost_per_thousand_entries:.3f} per 1,000 entries at Step Functions'"
        " list price (USD 0.025 per 1,000 transitions; Lambda not counted)"
    )
    return lines
