"""The dry run: seminar_follow_up over Golden Week 2027 for 1,000 synthetic leads. The counts at
each decision match the assumed rates within sampling error (the expectation computed here from
the assumptions), every mail lands on a business day outside quiet hours, and the dates follow
the journey's rules over the holidays. (Its speed: tests/benchmarks/test_journey_dry_run.py.)"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tsunagu import cli
from tsunagu.journeys import decisions
from tsunagu.journeys.business_time import business_calendar, parse_quiet_hours
from tsunagu.journeys.compiler import read_definition
from tsunagu.journeys.definition import JourneyDefinition
from tsunagu.journeys.gate import FrequencyCap
from tsunagu.journeys.simulation import (
    AssumptionError,
    Forecast,
    Rules,
    Simulation,
    forecast,
    forecast_report,
    parse_assumptions,
    report,
    simulate,
)
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import Lead
from tsunagu.mail.consent import ConsentView
from tsunagu.qualification.scores import Fading, LeadScores
from tsunagu.qualification.scoring import Award, ScoringModel, ScoringRule
from tsunagu.segments.filter import Facts, Segment

ROOT = Path(__file__).resolve().parents[2]
JST = ZoneInfo("Asia/Tokyo")
GOLDEN_WEEK_START = datetime(2027, 4, 28, 10, 0, tzinfo=JST)  # Wednesday; Thursday is Showa Day
RULES = Rules(
    calendar=business_calendar("JP", ""),
    quiet=parse_quiet_hours("20:00-08:00"),
    cap=FrequencyCap.parse("per_day=1,per_week=3,over=defer"),
    time_zone="Asia/Tokyo",
)
LEADS = 1000
CLICK, ATTEND = 0.3, 0.1


@pytest.fixture(scope="module")
def seminar() -> Simulation:
    definition = read_definition((ROOT / "journeys" / "seminar_follow_up.json").read_text("utf-8"))
    return simulate(
        definition,
        start=GOLDEN_WEEK_START,
        leads=LEADS,
        assumptions=parse_assumptions(f"click={CLICK},open=0.5,attend={ATTEND}"),
        rules=RULES,
        seed=1,
    )


def within_sampling_error(count: int, probability: float) -> bool:
    """Within four standard deviations of a binomial expectation (a false alarm about once in
    16,000 runs; the seed is fixed, so in practice never)."""
    expected = LEADS * probability
    return abs(count - expected) <= 4 * math.sqrt(LEADS * probability * (1 - probability))


def test_the_decision_counts_match_the_assumed_rates(seminar: Simulation) -> None:
    outcomes = seminar.outcomes["click_or_attend"]
    # Each event happens independently at a moment spread evenly over the three days; the first
    # to happen decides. Both happen: either comes first, half the time each.
    attended = ATTEND * (1 - CLICK) + ATTEND * CLICK / 2
    clicked = CLICK * (1 - ATTEND) + CLICK * ATTEND / 2
    nothing = (1 - CLICK) * (1 - ATTEND)
    assert sum(outcomes.values()) == LEADS
    assert within_sampling_error(outcomes["attended"], attended), outcomes
    assert within_sampling_error(outcomes["clicked"], clicked), outcomes
    assert within_sampling_error(outcomes["timed_out"], nothing), outcomes
    # ... and every lead reached the node its outcome leads to
    reached = seminar.reached
    assert len(reached["invitation"]) == LEADS
    assert len(reached["next_business_morning"]) == outcomes["clicked"]
    assert len(reached["same_day_as_attending"]) == outcomes["attended"]
    assert len(reached["mail_b"]) == outcomes["timed_out"]


def test_mails_go_on_business_days_by_the_journeys_rules(seminar: Simulation) -> None:
    mails = seminar.mails
    assert mails["seminar-invitation"] == {date(2027, 4, 28): LEADS}
    # No click for three days: the wait ends on Saturday 1 May; the next business day after the
    # weekend and the Golden Week holidays (3-5 May) is Thursday 6 May.
    timed_out = seminar.outcomes["click_or_attend"]["timed_out"]
    assert mails["seminar-no-click-reminder"] == {date(2027, 5, 6): timed_out}
    # A click's mail A goes the next business morning: Friday 30 April (the 29th is Showa Day)
    # for a click on the 28th or 29th, Thursday 6 May for a click on the 30th or the 1st.
    assert set(mails["seminar-clicked-follow-up"]) <= {date(2027, 4, 30), date(2027, 5, 6)}
    for days in mails.values():
        for day in days:
            assert RULES.calendar.is_business_day(day), day
    for instants in seminar.reached.values():
        for instant in instants:
            assert instant.astimezone(JST).date() >= date(2027, 4, 28)


def test_a_thank_you_for_today_that_cannot_go_today_is_skipped_not_sent_late(
    seminar: Simulation,
) -> None:
    # Mail C makes sense on the day of attendance only. Attending on the 28th, after the
    # invitation the same morning, the frequency cap holds it past that day: the gate skips it.
    attended = seminar.outcomes["click_or_attend"]["attended"]
    sent = sum(seminar.mails["seminar-thanks-for-attending"].values())
    skipped = seminar.skipped["mail_c"]
    assert sent + skipped == attended and skipped > 0


def test_the_report_names_every_node_its_mails_and_the_cost(seminar: Simulation) -> None:
    text = "\n".join(report(seminar, time_zone="Asia/Tokyo"))
    for node in ("invitation", "click_or_attend", "mail_a", "mail_b", "mail_c"):
        assert f"\n{node} " in text
    assert "seminar-no-click-reminder: " in text and "05-06 Thu" in text
    assert "per 1,000 entries at Step Functions' list price" in text
    # The invitation path: gate, choice, send (3), the wait (1), whether the invitation was
    # skipped (1), its timeout recorded (1), Schedule and Wait (2), mail B (3)
    path = "invitation > click_or_attend > same_business_day > mail_b"
    assert re.search(rf"\n +\d+ +11\.0  {path}\n", text)


def test_the_same_seed_gives_the_same_run_and_another_seed_another() -> None:
    definition = read_definition((ROOT / "journeys" / "re_engagement.json").read_text("utf-8"))

    def run(seed: int) -> dict[tuple[str, ...], int]:
        simulation = simulate(
            definition,
            start=GOLDEN_WEEK_START,
            leads=200,
            assumptions={"click": 0.5},
            rules=RULES,
            seed=seed,
        )
        return dict(simulation.paths)

    assert run(7) == run(7)
    assert run(7) != run(8)


@pytest.mark.parametrize("text", ["click", "click=1.5", "click=often", "=0.3"])
def test_assumptions_that_cannot_be_read_are_refused(text: str) -> None:
    with pytest.raises(AssumptionError, match="name=probability"):
        parse_assumptions(text)


def test_an_event_nobody_is_assumed_to_do_never_happens() -> None:
    definition = read_definition((ROOT / "journeys" / "seminar_follow_up.json").read_text("utf-8"))
    quiet = simulate(definition, start=GOLDEN_WEEK_START, leads=50, assumptions={}, rules=RULES)
    assert dict(quiet.outcomes["click_or_attend"]) == {"timed_out": 50}
    assert time(10, 0) == quiet.reached["mail_b"][0].astimezone(JST).time()


# ---------------------------------------------------------------- one real lead's next days
def real_lead(**changes: object) -> Lead:
    lead = Lead(
        lead_id="lead_real",
        email="aoki@example.jp",
        fields={},
        sources=["import"],
        visitor_ids=set(),
        stage="lead",
        created_at="2027-04-01T00:00:00Z",
        updated_at="2027-04-01T00:00:00Z",
        tags={"seminar:2027-05"},
    )
    return dataclasses.replace(lead, **changes)  # type: ignore[arg-type]


OPTED_IN = ConsentView(topics={"marketing": "opted_in"})
SEMINAR = (ROOT / "journeys" / "seminar_follow_up.json").read_text("utf-8")


class LeadFacts:
    """What journey_decide reads beyond the lead (services.segment_facts), as a test sets it."""

    def __init__(
        self,
        consent: Mapping[str, str],
        segments: Mapping[str, Segment] | None = None,
        did: Sequence[str] = (),
        scores: Callable[[datetime], LeadScores] = LeadScores.stored,
    ) -> None:
        self._consent, self._segments, self._did = consent, segments or {}, did
        self._scores = scores

    def did(self, lead_id: str, event_type: str, since: datetime) -> bool:
        return event_type in self._did

    def consent(self, lead_id: str) -> Mapping[str, str]:
        return self._consent

    def imported(self, import_id: str) -> frozenset[str]:
        return frozenset({"lead_real"}) if import_id == "imp_fair" else frozenset()

    def segment(self, name: str) -> Segment | None:
        return self._segments.get(name)

    def scores(self, now: datetime) -> LeadScores:
        return self._scores(now)


OPTED_IN_FACTS = LeadFacts(OPTED_IN.topics)


def lines_of(result: Forecast) -> list[tuple[str, str, str]]:
    return [(f"{s.at.astimezone(JST):%m-%d %H:%M}", s.node, s.what) for s in result.steps]


def test_one_real_lead_over_golden_week_step_by_step() -> None:
    lead = real_lead()
    result = forecast(
        read_definition(SEMINAR),
        lead,
        OPTED_IN,
        [],
        facts=OPTED_IN_FACTS,
        start=GOLDEN_WEEK_START,
        days=30,
        assumptions={},
        rules=RULES,
    )
    # Nothing assumed: the three-day wait times out on Saturday 05-01, and "the same business
    # day" is Thursday 05-06, after the weekend and the three holidays of Golden Week
    assert lines_of(result) == [
        ("04-28 10:00", "invitation", "sends seminar-invitation"),
        ("04-28 10:00", "click_or_attend",
         "waits up to 3 d for a click on the invitation or for attendance"),
        ("05-01 10:00", "click_or_attend", "nothing within 3 d: time is up"),
        ("05-01 10:00", "same_business_day", "waits until 05-06 Thu 10:00"),
        ("05-06 10:00", "mail_b", "sends seminar-no-click-reminder"),
    ]  # fmt: skip
    assert result.at_the_end is None
    assert lead.tags == {"seminar:2027-05"} and lead.stage == "lead"  # the lead is untouched
    text = "\n".join(forecast_report(result, time_zone="Asia/Tokyo", assumed=""))
    assert "aoki@example.jp" in text and "nothing is sent" in text
    assert "the journey ends for this lead within that time" in text


def test_the_lead_own_mails_count_against_the_frequency_cap() -> None:
    # A mail this morning: one a day, so the invitation waits for tomorrow; tomorrow is Showa
    # Day, so Friday, at the first moment out of quiet hours
    this_morning = "2027-04-28T00:00:00Z"  # 09:00 in Tokyo
    result = forecast(
        read_definition(SEMINAR), real_lead(), OPTED_IN, [this_morning],
        facts=OPTED_IN_FACTS, start=GOLDEN_WEEK_START, days=30, assumptions={}, rules=RULES,
    )  # fmt: skip
    first, sent = lines_of(result)[:2]
    assert first[1:] == (
        "invitation",
        "seminar-invitation deferred to 04-30 Fri 08:00: frequency_cap",
    )
    assert sent == ("04-30 08:00", "invitation", "sends seminar-invitation")


def test_a_skipped_invitation_is_followed_by_no_reminder() -> None:
    # Given a frequency cap that skips what it holds, and a mail to the lead this morning
    skipping = dataclasses.replace(RULES, cap=FrequencyCap.parse("per_day=1,over=skip"))
    this_morning = "2027-04-28T00:00:00Z"  # 09:00 in Tokyo

    # When the dry run plays the seminar journey for the lead, who neither clicks nor attends
    result = forecast(
        read_definition(SEMINAR), real_lead(), OPTED_IN, [this_morning],
        facts=OPTED_IN_FACTS, start=GOLDEN_WEEK_START, days=30, assumptions={}, rules=skipping,
    )  # fmt: skip

    # Then the invitation is skipped, the lead still waits (attendance would still count), and
    # when the wait times out it leaves, as the state machine does: no "you have not clicked
    # the invitation" reminder for a mail it never got
    assert [line[1:] for line in lines_of(result)] == [
        ("invitation", "skips seminar-invitation: frequency_cap"),
        ("click_or_attend", "waits up to 3 d for a click on the invitation or for attendance"),
        (
            "click_or_attend",
            "nothing within 3 d: time is up; the mail it waited on was skipped,"
            " so the lead leaves the journey",
        ),
    ]
    assert result.at_the_end is None


def test_a_lead_without_consent_leaves_at_the_first_mail() -> None:
    result = forecast(
        read_definition(SEMINAR), real_lead(), ConsentView(topics={}), [],
        facts=LeadFacts({}), start=GOLDEN_WEEK_START, days=30, assumptions={}, rules=RULES,
    )  # fmt: skip
    assert lines_of(result) == [
        ("04-28 10:00", "invitation", "leaves the journey before seminar-invitation: no_consent")
    ]
    assert result.at_the_end is None


def test_a_forecast_ends_where_the_lead_would_be_and_assumed_events_happen() -> None:
    result = forecast(
        read_definition(SEMINAR), real_lead(), OPTED_IN, [],
        facts=OPTED_IN_FACTS, start=GOLDEN_WEEK_START, days=2, assumptions={}, rules=RULES,
    )  # fmt: skip
    assert [s.node for s in result.steps] == ["invitation", "click_or_attend"]
    assert result.at_the_end == "click_or_attend"  # still waiting when the two days end

    clicked = forecast(
        read_definition(SEMINAR), real_lead(), OPTED_IN, [],
        facts=OPTED_IN_FACTS, start=GOLDEN_WEEK_START, days=30, assumptions={"click": 1.0},
        rules=RULES,
    )  # fmt: skip
    decided = [s.what for s in clicked.steps if s.node == "click_or_attend"][-1]
    assert decided.startswith("clicked (assumed), after ")
    assert [s.node for s in clicked.steps][-1] == "mail_a"


# ------------------------------------------- the step gate before what is no mail to the lead
GATED_STEPS: dict[str, dict[str, Any]] = {
    "update_lead": {"id": "tag", "kind": "update_lead", "label": "Tag the lead",
                    "add_tags": ["seen"]},
    "notify_owner": {"id": "owner", "kind": "notify_owner", "label": "Tell the owner",
                     "message": "hi"},
    "webhook": {"id": "crm", "kind": "webhook", "label": "Tell the CRM",
                "event": "lead.seen"},
}  # fmt: skip


def gated_journey(first: str) -> JourneyDefinition:
    """``first`` (a step that is no mail), then the other two of them, then one mail."""
    order = [first, *(kind for kind in GATED_STEPS if kind != first)]
    nodes = [
        {**GATED_STEPS[kind], "next": GATED_STEPS[then]["id"]} for kind, then in pairwise(order)
    ]
    nodes.append({**GATED_STEPS[order[-1]], "next": "mail"})
    nodes.append({"id": "mail", "kind": "send", "label": "the mail", "template": "welcome"})
    return JourneyDefinition.model_validate(
        {"$format": "tsunagu.journey/1", "journey_id": "gated",
         "description": "Steps that are no mail, then a mail.", "start": nodes[0]["id"],
         "nodes": nodes}
    )  # fmt: skip


@pytest.mark.parametrize("first", sorted(GATED_STEPS))
def test_a_lead_sales_has_leaves_at_the_step_gate_before_anything_is_done_to_it(
    first: str,
) -> None:
    # Given a lead sales already has (CRM status "in negotiation", an exit status by default)
    # and a journey that first does something that is no mail to it
    lead = real_lead(crm_status="in negotiation")

    # When the marketer forecasts it (journeys simulate --lead)
    result = forecast(
        gated_journey(first), lead, OPTED_IN, [], facts=OPTED_IN_FACTS,
        start=GOLDEN_WEEK_START, days=7, assumptions={}, rules=RULES,
    )  # fmt: skip

    # Then it says what the state machine does: the step gate before that first step
    # (gate.decide_step) ends the journey there - nothing tagged, no owner mailed, no call
    node, label = GATED_STEPS[first]["id"], GATED_STEPS[first]["label"]
    assert lines_of(result) == [
        ("04-28 10:00", node, f"leaves the journey before {label}: crm_status")
    ]
    assert result.at_the_end is None
    text = forecast_report(result, time_zone="Asia/Tokyo", assumed="")
    assert f"04-28 Wed 10:00  {node}  leaves the journey before {label}: crm_status" in text
    assert text[-1] == "the journey ends for this lead within that time"


def test_a_lead_sales_does_not_have_passes_the_step_gates() -> None:
    # A lost lead may be recycled into nurture: its CRM status is no exit
    result = forecast(
        gated_journey("update_lead"), real_lead(crm_status="lost"), OPTED_IN, [],
        facts=OPTED_IN_FACTS, start=GOLDEN_WEEK_START, days=7, assumptions={}, rules=RULES,
    )  # fmt: skip
    assert [line[1:] for line in lines_of(result)] == [
        ("tag", "sets +tag seen"),
        ("owner", "mails the lead's owner: hi"),
        ("crm", "calls the CRM webhook: lead.seen"),
        ("mail", "sends welcome"),
    ]


def test_each_step_gate_costs_what_it_does_in_the_state_machine() -> None:
    # Each step that is no mail is three states entered (its gate, the gate's Choice, the
    # step), as a mail is (the gate, its Choice, the send, which ends the journey)
    run = simulate(
        gated_journey("notify_owner"), start=GOLDEN_WEEK_START, leads=3, assumptions={},
        rules=RULES,
    )  # fmt: skip
    assert run.per_lead == [3 + 3 + 3 + 3] * 3


# ------------------------------------------------- branches read what journey_decide reads
def branch_journey(when: str, *, set_field: bool = False) -> JourneyDefinition:
    """A branch on ``when`` (after an update_lead setting interest=pricing, with set_field)."""
    nodes: list[dict[str, Any]] = []
    if set_field:
        nodes.append(
            {"id": "mark", "kind": "update_lead", "label": "Mark the interest",
             "fields": {"interest": "pricing"}, "next": "interest"}
        )  # fmt: skip
    nodes += [
        {"id": "interest", "kind": "branch", "label": "the interest",
         "cases": [{"outcome": "yes", "when": when, "next": "offer"}], "default": "guide"},
        {"id": "offer", "kind": "send", "label": "the offer", "template": "offer"},
        {"id": "guide", "kind": "send", "label": "the guide", "template": "guide"},
    ]  # fmt: skip
    return JourneyDefinition.model_validate(
        {"$format": "tsunagu.journey/1", "journey_id": "branching", "description": "x",
         "start": nodes[0]["id"], "nodes": nodes}
    )  # fmt: skip


def forecast_says(definition: JourneyDefinition, lead: Lead, facts: Facts) -> str:
    """The way the one-lead dry run takes at the branch."""
    result = forecast(
        definition, lead, OPTED_IN, [], facts=facts, start=GOLDEN_WEEK_START, days=5,
        assumptions={}, rules=RULES,
    )  # fmt: skip
    [decided] = [s.what for s in result.steps if s.node == "interest"]
    return decided.split()[1]


def journey_decide_says(definition: JourneyDefinition, lead: Lead, facts: Facts) -> str:
    """The way the journey_decide step takes, given the facts services.segment_facts reads."""
    node = next(n for n in definition.nodes if n.id == "interest")
    assert node.kind == "branch"
    spec = decisions.spec_of(node)
    return decisions.decide(
        spec, lead, journey_id="branching", node="interest", now=GOLDEN_WEEK_START, facts=facts
    ).outcome


def fading_scores(now: datetime) -> LeadScores:
    """A seminar 60 days before the lead enters made 60 points, halving every 30 days: 15 now."""
    rule = ScoringRule(rule_id="seminar", type="seminar_attended", points=60, half_life_days=30)
    award = Award(
        "seminar", 60, "evt_seminar", datetime(2027, 2, 27, 10, 0, tzinfo=JST),
        "seminar_attended", half_life_days=30,
    )  # fmt: skip
    return LeadScores(ScoringModel(rules=(rule,)), Fading(positive=True), lambda _: [award], now)


@pytest.mark.parametrize(
    ("when", "facts", "lead_changes", "way"),
    [
        ("consent.marketing=yes", OPTED_IN_FACTS, {}, "yes"),
        ("consent.newsletter=yes", OPTED_IN_FACTS, {}, "yes"),  # marketing covers it
        ("consent.marketing=no", LeadFacts({"all": "opted_out"}), {}, "yes"),
        ("in_segment=hot", LeadFacts({}, {"hot": Segment.parse("tag=seminar:2027-05")}), {}, "yes"),
        ("in_segment!=hot", LeadFacts({}, {"hot": Segment.parse("stage=lead")}), {}, "default"),
        ("did=form_submitted/30d", LeadFacts({}, did=["form_submitted"]), {}, "yes"),
        ("did_not=form_submitted/30d", LeadFacts({}, did=["form_submitted"]), {}, "default"),
        ("import=imp_fair", LeadFacts({}), {}, "yes"),
        # Stored 60 when it attended; 15 now, after two half-lives: not a hot lead any more
        ("score>=50", LeadFacts({}, scores=fading_scores), {"score": 60.0}, "default"),
        ("score<=20", LeadFacts({}, scores=fading_scores), {"score": 60.0}, "yes"),
    ],
)
def test_the_one_lead_dry_run_branches_as_journey_decide_does(
    when: str, facts: LeadFacts, lead_changes: dict[str, Any], way: str
) -> None:
    definition = branch_journey(when)
    lead = real_lead(**lead_changes)
    assert journey_decide_says(definition, lead, facts) == way
    assert forecast_says(definition, lead, facts) == way


def test_a_field_the_journey_set_is_the_one_a_later_branch_reads() -> None:
    definition = branch_journey("field.interest=pricing", set_field=True)
    # On a lead without the field, and on one whose interest came from the web form (the
    # journey's update_lead sets it over the form's, as the real step does)
    for fields in ({}, {"interest": FieldValue("general", Channel.WEB_FORM, "2027-04-01")}):
        result = forecast(
            definition, real_lead(fields=fields), OPTED_IN, [], facts=OPTED_IN_FACTS,
            start=GOLDEN_WEEK_START, days=5, assumptions={}, rules=RULES,
        )  # fmt: skip
        assert [s.what for s in result.steps][:2] == [
            "sets interest=pricing",
            "-> yes (field.interest=pricing)",
        ], fields
    # A value the CRM set stays, as the real step keeps it, and the dry run says why
    from_crm = {"interest": FieldValue("support", Channel.CRM, "2027-04-01")}
    result = forecast(
        definition, real_lead(fields=from_crm), OPTED_IN, [], facts=OPTED_IN_FACTS,
        start=GOLDEN_WEEK_START, days=5, assumptions={}, rules=RULES,
    )  # fmt: skip
    assert [s.what for s in result.steps][:2] == [
        "sets interest=pricing; keeps interest: set by crm, which ranks above journey",
        "-> default (field.interest=support)",
    ]


def test_synthetic_leads_branch_on_the_consent_the_gate_takes_them_to_have() -> None:
    # The gate mails every synthetic lead (opted in to the journey's topic): a branch on that
    # consent sends them all "yes", not none of them
    run = simulate(
        branch_journey("consent.marketing=yes"), start=GOLDEN_WEEK_START, leads=20,
        assumptions={}, rules=RULES,
    )  # fmt: skip
    assert dict(run.outcomes["interest"]) == {"yes": 20}
    assert len(run.sent["offer"]) == 20
    # ... and the report says what synthetic leads are taken to be
    text = "\n".join(report(run, time_zone="Asia/Tokyo"))
    assert "opted in to marketing, in no saved segment or import" in text
    # In no saved segment (the segment need not exist: no synthetic lead is in it), and a
    # field the journey set is theirs too
    run = simulate(
        branch_journey("in_segment=hot"), start=GOLDEN_WEEK_START, leads=5, assumptions={},
        rules=RULES,
    )  # fmt: skip
    assert dict(run.outcomes["interest"]) == {"default": 5}
    run = simulate(
        branch_journey("field.interest=pricing", set_field=True), start=GOLDEN_WEEK_START,
        leads=5, assumptions={}, rules=RULES,
    )  # fmt: skip
    assert dict(run.outcomes["interest"]) == {"yes": 5}


def test_a_click_the_dry_run_assumes_is_one_a_later_did_branch_reads() -> None:
    definition = JourneyDefinition.model_validate(
        {"$format": "tsunagu.journey/1", "journey_id": "clicks", "description": "x",
         "start": "invite",
         "nodes": [
             {"id": "invite", "kind": "send", "label": "the invitation", "template": "invite",
              "next": "clicked"},
             {"id": "clicked", "kind": "wait_for", "label": "a click",
              "events": [{"type": "link_clicked", "of_mail": "invite", "outcome": "clicked"}],
              "within_seconds": 86400, "exits": [{"outcome": "clicked", "next": "interest"}],
              "timed_out": "interest"},
             {"id": "interest", "kind": "branch", "label": "a click this week",
              "cases": [{"outcome": "yes", "when": "did=link_clicked/7d", "next": "done"}],
              "default": "done"},
             {"id": "done", "kind": "end", "label": "The end"},
         ]}
    )  # fmt: skip
    run = simulate(
        definition, start=GOLDEN_WEEK_START, leads=200, assumptions={"click": 0.5}, rules=RULES
    )
    # Each lead that clicked goes "yes", each that did not, the default way
    assert run.outcomes["interest"]["yes"] == run.outcomes["clicked"]["clicked"] > 0
    assert run.outcomes["interest"]["default"] == run.outcomes["clicked"]["timed_out"] > 0


# ---------------------------------------------------------------- the CLI's dry run
@pytest.mark.parametrize(
    ("options", "said"),
    [
        (
            ["--time-zone", "Asia/Tokio"],
            "--time-zone Asia/Tokio: no such time zone (e.g. Asia/Tokyo)",
        ),
        (
            ["--frequency-cap", "bogus"],
            "--frequency-cap bogus: bogus: Extra inputs are not permitted"
            " (e.g. per_day=1,per_week=3,over=defer)",
        ),
        (
            ["--frequency-cap", "per_day=0"],
            "--frequency-cap per_day=0: per_day: Input should be greater than or equal to 1"
            " (e.g. per_day=1,per_week=3,over=defer)",
        ),
        (
            ["--quiet-hours", "8pm-8am"],
            "--quiet-hours 8pm-8am: Invalid isoformat string: '8pm' (e.g. 20:00-08:00, or empty"
            " for none)",
        ),
        (
            ["--closed-days", "2027-08-13-2027-08-16"],
            "--closed-days 2027-08-13-2027-08-16: Invalid isoformat string: '2027-08-13-2027-08-16'"
            " (e.g. 2027-08-13..2027-08-16,2027-12-29)",
        ),
    ],
    ids=["time-zone", "frequency-cap", "frequency-cap-value", "quiet-hours", "closed-days"],
)
def test_an_option_that_cannot_be_read_is_said_in_one_line(
    options: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the dry run is asked for with an option mistyped (no runtime needed)
    path = str(ROOT / "journeys" / "seminar_follow_up.json")
    code = cli.main(["journeys", "simulate", path, "--start", "2027-04-28", *options])
    # Then the CLI says what it could not read in one line, without a traceback
    assert code == 1
    assert capsys.readouterr().err == f"tsunagu: {said}\n"


# ---------------------------------------------------------------- a loop through a wait
REMIND_UNTIL_CLICKED = JourneyDefinition.model_validate(
    {
        "$format": "tsunagu.journey/1",
        "journey_id": "nag",
        "description": "The offer again every three days until they click.",
        "start": "ask",
        "nodes": [
            {"id": "ask", "kind": "send", "label": "the offer", "template": "welcome",
             "next": "clicked"},
            {"id": "clicked", "kind": "wait_for", "label": "a click on the offer",
             "events": [{"type": "link_clicked", "of_mail": "ask", "outcome": "clicked"}],
             "within_seconds": 259200, "exits": [{"outcome": "clicked", "next": "done"}],
             "timed_out": "ask"},
            {"id": "done", "kind": "end", "label": "The lead clicked"},
        ],
    }
)  # fmt: skip


def test_a_loop_through_a_wait_that_nothing_ends_leaves_its_leads_still_in_it() -> None:
    # A loop that publishes (it passes a wait): with nobody assumed to click, the leads are
    # still going round it when their walk stops, which the run says rather than failing
    run = simulate(
        REMIND_UNTIL_CLICKED, start=GOLDEN_WEEK_START, leads=3, assumptions={}, rules=RULES
    )
    assert run.still_in == {"ask": 3}
    assert run.reached["done"] == []
    assert any(
        "3 leads still in the journey at ask" in line
        for line in report(run, time_zone="Asia/Tokyo")
    )


def test_a_forecast_of_a_loop_ends_with_the_lead_still_in_it() -> None:
    # An hourly reminder over a year: more steps than a walk takes
    data = REMIND_UNTIL_CLICKED.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["nodes"][1]["within_seconds"] = 3600
    hourly = JourneyDefinition.model_validate(data)
    result = forecast(
        hourly,
        real_lead(),
        OPTED_IN,
        [],
        facts=OPTED_IN_FACTS,
        start=GOLDEN_WEEK_START,
        days=366,
        assumptions={},
        # Uncapped: the frequency cap would space the reminders out to three a week
        rules=dataclasses.replace(RULES, cap=FrequencyCap(per_day=100, per_week=700)),
    )
    assert result.at_the_end in ("ask", "clicked")
