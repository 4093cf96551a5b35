"""Scoring: rules with conditions, caps per period, decay, and the seed's 5 / 20 / 70."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tsunagu.clock import FixedClock
from tsunagu.commands import qualification
from tsunagu.commands.access import Actor, Role
from tsunagu.leads.model import Lead as LeadRow
from tsunagu.leads.search import LeadPage, LeadQuery
from tsunagu.leads.search_words import rank
from tsunagu.qualification.config import QualificationConfig
from tsunagu.qualification.grading import Grade, qualifies_as_mql
from tsunagu.qualification.scores import Fading, LeadScores
from tsunagu.qualification.scoring import (
    DEFAULT_MODEL,
    Award,
    ScoringModel,
    ScoringRule,
    current_score,
    explain,
    points_for,
    score_band,
)

# 2026-12-01 10:00 in Tokyo.
START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


class Lead:
    """A lead's awards, as the caller would keep them, with events fed one at a time."""

    def __init__(self, model: ScoringModel = DEFAULT_MODEL) -> None:
        self.model = model
        self.awards: list[Award] = []
        self._count = 0

    def did(self, kind: str, at: datetime, **properties: Any) -> list[Award]:
        self._count += 1
        new = points_for(f"evt_{self._count}", kind, properties, at, self.awards, self.model)
        self.awards.extend(new)
        return new

    def score(self, now: datetime) -> float:
        return current_score(self.awards, now, self.model)


def model_of(*rules: ScoringRule, threshold: int = 70) -> ScoringModel:
    return ScoringModel(rules=rules, mql_threshold=threshold)


# --- the seed's numbers ---------------------------------------------------------------------


def test_the_defaults_are_seed_000s_numbers() -> None:
    opened = [r for r in DEFAULT_MODEL.rules if r.type == "mail_opened"]
    seminar = [r for r in DEFAULT_MODEL.rules if r.type == "seminar_attended"]
    assert [(r.points, r.cap, r.half_life_days) for r in opened] == [(5, None, None)]
    assert [(r.points, r.cap, r.half_life_days) for r in seminar] == [(20, None, None)]
    assert DEFAULT_MODEL.mql_threshold == 70


def test_opens_and_seminars_cross_70_at_the_right_event() -> None:
    # Given a lead scored by the default rules
    lead = Lead()
    history = [
        ("mail_opened", {"message_id": "msg_1"}),
        ("mail_opened", {"message_id": "msg_2"}),
        ("mail_opened", {"message_id": "msg_3"}),
        ("mail_opened", {"message_id": "msg_4"}),
        ("seminar_attended", {"seminar_id": "sem_1"}),
        ("mail_opened", {"message_id": "msg_5"}),
        ("mail_opened", {"message_id": "msg_6"}),
        ("mail_opened", {"message_id": "msg_7"}),
        ("seminar_attended", {"seminar_id": "sem_2"}),
        ("mail_opened", {"message_id": "msg_8"}),
    ]
    # When the events arrive a day apart
    scores = []
    for day, (kind, properties) in enumerate(history):
        at = START + timedelta(days=day)
        lead.did(kind, at, **properties)
        scores.append(lead.score(at))
    # Then 5 per open and 20 per seminar, crossing 70 at the second seminar and not before
    assert scores == [5, 10, 15, 20, 40, 45, 50, 55, 75, 80]
    qualified = [qualifies_as_mql(s, Grade.D, DEFAULT_MODEL.mql_threshold) for s in scores]
    assert qualified.index(True) == 8
    assert scores[7] < 70 <= scores[8]


def test_one_mails_opens_score_once_however_often_its_pixel_is_fetched() -> None:
    # Given a lead scored by the default rules, whose first mail is read
    lead = Lead()
    assert [a.points for a in lead.did("mail_opened", START, message_id="msg_1")] == [5]

    # When the same mail is shown again and again, days apart (a cap per day would not do)
    again = [
        lead.did("mail_opened", START + timedelta(days=day, minutes=1), message_id="msg_1")
        for day in range(12)
    ]

    # Then none of those fetches scores, and the next mail's open does
    assert again == [[]] * 12
    assert [a.points for a in lead.did("mail_opened", START, message_id="msg_2")] == [5]
    assert lead.score(START + timedelta(days=12)) == 10


def test_the_once_per_mail_rule_holds_for_a_teams_own_open_rule_and_survives_storage() -> None:
    # Given a team's own open rule, worth more, and the award as the store gives it back
    lead = Lead(model_of(ScoringRule(rule_id="opened", type="mail_opened", points=15)))
    (first,) = lead.did("mail_opened", START, message_id="msg_1")
    lead.awards = [Award.from_item(first.to_item())]

    # When the pixel is fetched again
    # Then it scores nothing more
    assert lead.did("mail_opened", START, message_id="msg_1") == []


def test_at_exactly_the_threshold_the_lead_qualifies() -> None:
    lead = Lead()
    for n in range(10):
        lead.did("mail_opened", START + timedelta(hours=n), message_id=f"msg_{n}")
    lead.did("seminar_attended", START + timedelta(hours=11))
    assert lead.score(START + timedelta(hours=12)) == 70
    assert score_band(70, 70) == 1


# --- conditions -----------------------------------------------------------------------------


def test_a_pricing_view_earns_the_pricing_rule_and_the_page_rule() -> None:
    lead = Lead()
    awards = lead.did("page_view", START, url="https://www.example.com/pricing?plan=pro")
    assert sorted((a.rule_id, a.points) for a in awards) == [
        ("page-viewed", 1),
        ("pricing-viewed", 10),
    ]
    other = lead.did("page_view", START, url="https://www.example.com/blog/")
    assert [(a.rule_id, a.points) for a in other] == [("page-viewed", 1)]


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"form_id": "frm_seminar", "message_id": "msg_1"}, True),
        ({"form_id": "frm_contact", "message_id": "msg_1"}, False),
        ({"form_id": "frm_seminar"}, False),  # the message is missing
        ({"form_id": "frm_seminar", "message_id": "msg_2"}, False),
    ],
)
def test_every_given_condition_must_match(properties: dict[str, Any], expected: bool) -> None:
    rule = ScoringRule(
        rule_id="seminar-form-from-mail",
        type="form_submitted",
        form_id="frm_seminar",
        message_id="msg_1",
        points=15,
    )
    assert rule.matches("form_submitted", properties) is expected
    assert rule.matches("page_view", properties) is False


def test_link_and_template_conditions() -> None:
    rule = ScoringRule(
        rule_id="case-study-click",
        type="link_clicked",
        link_id="l_case",
        template_id="tpl_newsletter",
        points=8,
    )
    assert rule.matches("link_clicked", {"link_id": "l_case", "template_id": "tpl_newsletter"})
    assert not rule.matches("link_clicked", {"link_id": "l_other", "template_id": "tpl_newsletter"})
    assert not rule.matches("link_clicked", {"link_id": "l_case", "template_id": "tpl_other"})


def test_properties_are_compared_as_text_and_a_missing_one_never_matches() -> None:
    rule = ScoringRule(
        rule_id="big-download", type="file_downloaded", properties={"pages": "40"}, points=5
    )
    assert rule.matches("file_downloaded", {"pages": 40})
    assert rule.matches("file_downloaded", {"pages": "40"})
    assert not rule.matches("file_downloaded", {"pages": 41})
    none_rule = ScoringRule(rule_id="odd", type="x", properties={"flag": "None"}, points=1)
    assert not none_rule.matches("x", {})
    assert none_rule.matches("x", {"flag": None})


def test_a_url_condition_does_not_match_an_event_without_a_url() -> None:
    rule = ScoringRule(rule_id="pricing", type="page_view", url_contains="/pricing", points=10)
    assert not rule.matches("page_view", {})
    assert not rule.matches("page_view", {"url": None})


# --- caps -----------------------------------------------------------------------------------


def test_a_daily_cap_resets_at_midnight_in_the_models_time_zone() -> None:
    # Given pricing views capped at 10 a day (Tokyo)
    lead = Lead()
    url = "https://www.example.com/pricing"
    late_evening = datetime(2026, 12, 1, 14, 58, tzinfo=UTC)  # 23:58 JST
    # When the lead views pricing twice before midnight and once just after it
    first = lead.did("page_view", late_evening, url=url)
    second = lead.did("page_view", late_evening + timedelta(minutes=1), url=url)
    after_midnight = lead.did("page_view", late_evening + timedelta(minutes=2), url=url)
    # Then the second view is over the cap, and 00:00 JST (15:00 UTC) is a new day
    assert "pricing-viewed" in {a.rule_id for a in first}
    assert "pricing-viewed" not in {a.rule_id for a in second}
    assert "pricing-viewed" in {a.rule_id for a in after_midnight}


def test_utc_midnight_is_not_a_new_day_in_tokyo() -> None:
    lead = Lead()
    url = "https://www.example.com/pricing"
    before = datetime(2026, 12, 1, 23, 59, tzinfo=UTC)  # 08:59 JST on 12-02
    after = datetime(2026, 12, 2, 0, 1, tzinfo=UTC)  # 09:01 JST on 12-02
    lead.did("page_view", before, url=url)
    assert "pricing-viewed" not in {a.rule_id for a in lead.did("page_view", after, url=url)}


def test_the_event_that_reaches_the_cap_gets_what_is_left() -> None:
    rule = ScoringRule(rule_id="webinar-view", type="video_watched", points=4, cap=10)
    lead = Lead(model_of(rule))
    got = [lead.did("video_watched", START + timedelta(minutes=m)) for m in range(4)]
    assert [[a.points for a in awards] for awards in got] == [[4], [4], [2], []]
    assert got[2][0].capped_from == 4
    assert lead.score(START + timedelta(hours=1)) == 10


@pytest.mark.parametrize(
    ("period", "same_period", "next_period"),
    [
        # 2026-11-30 is a Monday: the ISO week runs Monday to Sunday.
        (
            "week",
            datetime(2026, 12, 6, 14, 0, tzinfo=UTC),
            datetime(2026, 12, 6, 15, 0, tzinfo=UTC),
        ),
        (
            "month",
            datetime(2026, 12, 31, 14, 0, tzinfo=UTC),
            datetime(2026, 12, 31, 15, 0, tzinfo=UTC),
        ),
    ],
)
def test_weekly_and_monthly_caps_reset_at_their_calendar_boundary(
    period: Any, same_period: datetime, next_period: datetime
) -> None:
    rule = ScoringRule(rule_id="demo", type="demo_requested", points=30, cap=30, cap_period=period)
    lead = Lead(model_of(rule))
    assert [a.points for a in lead.did("demo_requested", START)] == [30]
    assert lead.did("demo_requested", same_period) == []
    assert [a.points for a in lead.did("demo_requested", next_period)] == [30]


def test_an_ever_cap_never_resets() -> None:
    rule = ScoringRule(rule_id="trial", type="trial_started", points=25, cap=25, cap_period="ever")
    lead = Lead(model_of(rule))
    lead.did("trial_started", START)
    assert lead.did("trial_started", START + timedelta(days=400)) == []


def test_caps_count_only_the_same_rule() -> None:
    lead = Lead()
    url = "https://www.example.com/pricing"
    for minute in range(7):
        lead.did("page_view", START + timedelta(minutes=minute), url=url)
    by_rule: dict[str, int] = {}
    for award in lead.awards:
        by_rule[award.rule_id] = by_rule.get(award.rule_id, 0) + award.points
    assert by_rule == {"pricing-viewed": 10, "page-viewed": 5}


# --- negative points ------------------------------------------------------------------------


def test_an_unsubscribe_takes_points_away() -> None:
    lead = Lead()
    lead.did("mail_opened", START, message_id="msg_1")
    lead.did("seminar_attended", START + timedelta(hours=1))
    awards = lead.did(
        "consent_changed", START + timedelta(hours=2), topic="all", status="opted_out"
    )
    assert [(a.rule_id, a.points) for a in awards] == [("unsubscribed", -10)]
    assert lead.score(START + timedelta(hours=3)) == 15
    # Opting back in is not a reason to take points
    assert lead.did("consent_changed", START, topic="all", status="opted_in") == []


def test_a_persons_reply_scores_by_default_and_an_automatic_one_does_not() -> None:
    lead = Lead()
    # A person's answer to a mail, then more of the same conversation the same day
    first = lead.did("email_replied", START, message_id="msg_1", classification="reply")
    again = lead.did("email_replied", START + timedelta(hours=1), message_id="msg_1")
    # And an out-of-office answer to another mail (its own kind: tsunagu.mail.replies)
    automatic = lead.did("email_auto_replied", START + timedelta(hours=2), message_id="msg_2")
    assert [(a.rule_id, a.points) for a in first] == [("mail-replied", 20)]
    assert again == [] and automatic == []
    assert lead.score(START + timedelta(hours=3)) == 20


def test_a_negative_cap_bounds_how_far_down_a_rule_goes() -> None:
    rule = ScoringRule(
        rule_id="careers",
        type="page_view",
        url_contains="/careers",
        points=-15,
        cap=20,
        cap_period="week",
    )
    lead = Lead(model_of(rule))
    got = [
        [a.points for a in lead.did("page_view", START + timedelta(hours=h), url="/careers/")]
        for h in range(3)
    ]
    assert got == [[-15], [-5], []]
    assert lead.score(START + timedelta(days=1)) == -20
    assert score_band(-20, 70) == 4


# --- decay ----------------------------------------------------------------------------------


def test_points_halve_every_half_life() -> None:
    rule = ScoringRule(rule_id="webinar", type="webinar_attended", points=20, half_life_days=30)
    lead = Lead(model_of(rule))
    lead.did("webinar_attended", START)
    assert lead.score(START) == 20
    assert lead.score(START + timedelta(days=30)) == pytest.approx(10)
    assert lead.score(START + timedelta(days=60)) == pytest.approx(5)
    assert lead.score(START + timedelta(days=15)) == pytest.approx(20 / math.sqrt(2))


def test_an_award_dated_after_now_counts_whole_not_more() -> None:
    rule = ScoringRule(rule_id="webinar", type="webinar_attended", points=20, half_life_days=30)
    lead = Lead(model_of(rule))
    lead.did("webinar_attended", START + timedelta(minutes=2))  # the client's clock runs ahead
    assert lead.score(START) == 20


def test_decay_follows_the_current_model_and_rules_without_decay_stay_whole() -> None:
    # Given awards earned under a model without decay
    lead = Lead()
    lead.did("mail_opened", START, message_id="msg_1")
    lead.did("seminar_attended", START)
    a_year_later = START + timedelta(days=365)
    assert lead.score(a_year_later) == 25
    # When the marketer adds a 90-day half-life to opens
    rules = tuple(
        r.model_copy(update={"half_life_days": 90}) if r.type == "mail_opened" else r
        for r in DEFAULT_MODEL.rules
    )
    decaying = DEFAULT_MODEL.model_copy(update={"rules": rules})
    # Then old opens fade too; the seminar does not
    assert current_score(lead.awards, a_year_later, decaying) == pytest.approx(
        20 + 5 * 0.5 ** (365 / 90)
    )


# --- explanation ----------------------------------------------------------------------------


def test_the_explanation_lists_every_award_and_adds_up_to_the_score() -> None:
    rule = ScoringRule(
        rule_id="webinar",
        type="webinar_attended",
        description="Webinar",
        points=20,
        half_life_days=10,
    )
    model = model_of(*DEFAULT_MODEL.rules, rule)
    lead = Lead(model)
    lead.did("mail_opened", START, message_id="msg_1")
    lead.did("webinar_attended", START + timedelta(days=1))
    now = START + timedelta(days=11)

    explanation = explain(lead.awards, now, model)

    assert [(line.rule_id, line.points) for line in explanation.lines] == [
        ("mail-opened", 5),
        ("webinar", 20),
    ]
    assert explanation.lines[1].decayed == pytest.approx(10)
    assert explanation.awarded == 25
    assert explanation.score == sum(line.decayed for line in explanation.lines)
    assert explanation.score == current_score(lead.awards, now, model)
    assert explanation.band == 4
    text = explanation.text()
    assert len(text) == 3
    assert "evt_1" in text[0] and "+5" in text[0]
    assert "half-life 10 d" in text[1] and "-> 10.0" in text[1]
    assert text[2].startswith("total 15.0 (awarded +25 before decay)")


def test_the_explanation_says_when_a_cap_cut_an_award_or_a_rule_was_removed() -> None:
    rule = ScoringRule(rule_id="webinar-view", type="video_watched", points=4, cap=6)
    lead = Lead(model_of(rule))
    lead.did("video_watched", START)
    lead.did("video_watched", START + timedelta(minutes=1))
    gone = Award("retired-rule", 7, "evt_old", START - timedelta(days=3), "whitepaper")

    explanation = explain([*lead.awards, gone], START + timedelta(days=1), lead.model)

    notes = [line.note for line in explanation.lines]
    assert notes == ["rule no longer in the model; counted without decay", "", "capped from +4"]
    assert explanation.score == 7 + 4 + 2


def test_a_removed_rules_award_fades_by_the_half_life_it_was_given_with() -> None:
    # Given a webinar worth 20 that halves every 10 days, attended 20 days ago
    webinar = ScoringRule(rule_id="webinar", type="webinar_attended", points=20, half_life_days=10)
    lead = Lead(model_of(webinar))
    (award,) = lead.did("webinar_attended", START - timedelta(days=20))
    assert award.half_life_days == 10

    # When the rule is removed from the sheet
    explanation = explain(lead.awards, START, model_of())

    # Then the award is still worth what it would be had the rule stayed (5), not 20 again
    (line,) = explanation.lines
    assert line.decayed == pytest.approx(5)
    assert line.half_life_days == 10
    assert line.note == "rule no longer in the model; decays by the half-life it was given with"
    # And a rule that stayed changes the award's decay: its half-life of today applies
    slower = webinar.model_copy(update={"half_life_days": 20.0})
    assert current_score(lead.awards, START, model_of(slower)) == pytest.approx(10)


awards_strategy = st.lists(
    st.builds(
        Award,
        rule_id=st.sampled_from(["mail-opened", "seminar-attended", "fading", "gone"]),
        points=st.integers(-50, 50).filter(bool),
        event_id=st.text("abcdef0123456789", min_size=1, max_size=8),
        occurred_at=st.datetimes(
            min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
        ),
    ),
    max_size=40,
)


@given(awards_strategy)
def test_the_explanation_always_sums_to_the_score(awards: list[Award]) -> None:
    fading = ScoringRule(rule_id="fading", type="page_view", points=3, half_life_days=7.5)
    model = model_of(*DEFAULT_MODEL.rules, fading)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    explanation = explain(awards, now, model)
    assert explanation.score == current_score(awards, now, model)
    assert explanation.score == sum(line.decayed for line in explanation.lines)
    assert explanation.awarded == sum(a.points for a in awards)
    assert len(explanation.lines) == len(awards)
    assert explanation.band == score_band(explanation.score, 70)


# --- once only, and what is not this module's concern ---------------------------------------


def test_the_same_event_never_scores_twice() -> None:
    lead = Lead()
    first = points_for("evt_a", "mail_opened", {}, START, lead.awards, DEFAULT_MODEL)
    lead.awards.extend(first)
    again = points_for("evt_a", "mail_opened", {}, START, lead.awards, DEFAULT_MODEL)
    assert len(first) == 1 and again == []


def test_automated_activity_is_filtered_by_the_caller_not_here() -> None:
    # The scoring rules know nothing of automated-activity judgements: route_events must not ask
    # for points for an open or click judged automated. Asked anyway, the rule applies as written.
    awards = points_for("evt_scan", "link_clicked", {"automated": True}, START, [], DEFAULT_MODEL)
    assert [a.points for a in awards] == [10]


def test_awards_survive_storage() -> None:
    award = Award("pricing-viewed", 4, "evt_9", START, "page_view", capped_from=10)
    item = award.to_item()
    assert item["occurred_at"] == "2026-12-01T01:00:00.000Z"
    assert Award.from_item(item) == award
    plain = Award("mail-opened", 5, "evt_1", START, "mail_opened")
    assert "capped_from" not in plain.to_item()
    assert "half_life_days" not in plain.to_item()
    assert Award.from_item(plain.to_item()) == plain
    fading = Award("seminar-attended", 20, "evt_2", START, "seminar_attended", None, 14.5)
    assert Award.from_item(json.loads(json.dumps(fading.to_item()))) == fading


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        points_for("e", "mail_opened", {}, datetime(2026, 12, 1), [], DEFAULT_MODEL)
    with pytest.raises(ValueError, match="timezone-aware"):
        current_score([], datetime(2026, 12, 1), DEFAULT_MODEL)


# --- bands and model validation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "band"),
    [(100, 1), (70, 1), (69.99, 2), (42, 2), (41.99, 3), (21, 3), (20.99, 4), (0, 4), (-30, 4)],
)
def test_score_bands_for_the_default_threshold(score: float, band: int) -> None:
    assert score_band(score, 70) == band


@pytest.mark.parametrize(
    "data",
    [
        {"rule_id": "x", "type": "mail_opened", "points": 0},  # worth nothing
        {"rule_id": "x", "type": "mail_opened", "points": 5, "cap": 0},
        {"rule_id": "x", "type": "mail_opened", "points": 5, "half_life_days": 0},
        {"rule_id": "x", "type": "mail_opened", "points": 5, "cap_period": "year"},
        {"rule_id": "X Y", "type": "mail_opened", "points": 5},
        {"rule_id": "x", "type": "Mail Opened", "points": 5},
        {"rule_id": "x", "type": "mail_opened", "points": 5, "weight": 2},  # unknown field
    ],
)
def test_bad_rules_are_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ScoringRule.model_validate(data)


def test_a_model_refuses_duplicate_rule_ids_and_unknown_time_zones() -> None:
    rule = ScoringRule(rule_id="same", type="mail_opened", points=5)
    with pytest.raises(ValidationError, match="two rules have the id"):
        model_of(rule, rule)
    with pytest.raises(ValidationError, match="unknown time zone"):
        ScoringModel(rules=(rule,), time_zone="Asia/Nowhere")


def test_a_model_round_trips_as_data() -> None:
    data = DEFAULT_MODEL.model_dump(mode="json")
    assert ScoringModel.model_validate(data) == DEFAULT_MODEL


def test_repeated_form_submissions_are_not_worth_repeated_points() -> None:
    # Seven anonymous posts of one form in a quarter of a second made an invented address an MQL
    # (7 x 10 = 70) and mailed its sales owner
    lead = Lead()
    for number in range(7):
        lead.did("form_submitted", START + timedelta(milliseconds=40 * number), form_id="demo")
    assert lead.score(START + timedelta(minutes=1)) == 10
    # A submission the next day counts again
    lead.did("form_submitted", START + timedelta(days=1), form_id="demo")
    assert lead.score(START + timedelta(days=1, minutes=1)) == 20


# --- the score now, and what the stored score tells of it -----------------------------------


def scored_lead(lead_id: str, awards: list[Award], at: datetime, model: ScoringModel) -> LeadRow:
    """A lead as the pipeline leaves it: its score as of its last scored event, rounded."""
    return LeadRow(
        lead_id=lead_id,
        email=f"{lead_id}@example.jp",
        fields={},
        sources=["web_form"],
        visitor_ids=set(),
        stage="lead",
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
        score=round(current_score(awards, at, model), 4),
        score_at="2026-01-01T00:00:00.000Z",
    )


FADING_SEMINAR = ScoringRule(
    rule_id="seminar-attended", type="seminar_attended", points=20, half_life_days=14
)
FADING_UNSUBSCRIBE = ScoringRule(
    rule_id="unsubscribed", type="consent_changed", points=-10, half_life_days=30
)


class Awards:
    """The lead's awards as the store keeps them, counting the reads."""

    def __init__(self, kept: dict[str, list[Award]]) -> None:
        self.kept = kept
        self.read: list[str] = []

    def __call__(self, lead_id: str) -> list[Award]:
        self.read.append(lead_id)
        return self.kept[lead_id]


def test_the_score_now_is_read_only_for_leads_the_stored_score_cannot_decide() -> None:
    # Given seminars fade (14 days): a lead stored at 30 sixty days ago, about 11 now
    model = model_of(DEFAULT_MODEL.rules[0], FADING_SEMINAR, DEFAULT_MODEL.rules[3])
    long_ago = START - timedelta(days=60)
    old = [
        Award("form-submitted", 10, "evt_f", long_ago, "form_submitted"),
        Award("seminar-attended", 20, "evt_s", long_ago, "seminar_attended", None, 14),
    ]
    awards = Awards({"lead_old": old})
    lead = scored_lead("lead_old", old, long_ago, model)
    scores = LeadScores(model, Fading.of(model), awards, START)
    assert lead.score == 30

    # Then a score of at least 40 (above what is stored) needs no read, nor one of at most 31
    assert not scores.at_least(lead, 40) and scores.at_most(lead, 31)
    assert awards.read == []
    # And at least 20, or at most 20, is the score now: about 11
    assert not scores.at_least(lead, 20) and scores.at_most(lead, 20)
    assert scores.of(lead) == pytest.approx(current_score(old, START, model))
    assert awards.read == ["lead_old"]  # once, whatever is asked of it after
    # And a copy shows it, as of now
    shown = scores.as_of_now(lead)
    assert shown.score == scores.of(lead) and shown.score_at == "2026-12-01T01:00:00.000Z"


def test_with_nothing_fading_the_stored_score_is_the_score_now_and_nothing_is_read() -> None:
    awards = Awards({})
    scores = LeadScores(DEFAULT_MODEL, Fading.of(DEFAULT_MODEL), awards, START)
    lead = scored_lead("lead_1", [Award("mail-opened", 5, "e", START, "")], START, DEFAULT_MODEL)
    assert scores.of(lead) == 5 and scores.at_least(lead, 5) and scores.at_most(lead, 5)
    assert scores.index_band(5, 9) == (5, 9)
    assert awards.read == []


def test_a_fading_penalty_raises_the_score_so_the_stored_one_is_no_upper_bound() -> None:
    # Given an unsubscribe of 90 days ago (-10, halving every 30 days) beside a form (10)
    model = model_of(DEFAULT_MODEL.rules[3], FADING_UNSUBSCRIBE)
    long_ago = START - timedelta(days=90)
    kept = [
        Award("form-submitted", 10, "evt_f", long_ago, "form_submitted"),
        Award("unsubscribed", -10, "evt_u", long_ago, "consent_changed", None, 30),
    ]
    lead = scored_lead("lead_1", kept, long_ago, model)
    scores = LeadScores(model, Fading.of(model), Awards({"lead_1": kept}), START)
    assert lead.score == 0

    # Then the lead is at 8.75 now: above its stored 0, and a band's lower end cannot narrow
    assert scores.at_least(lead, 8)
    assert scores.of(lead) == pytest.approx(8.75)
    assert scores.index_band(5, 9) == (None, 9)
    assert LeadScores(model_of(FADING_SEMINAR), Fading.of(model_of(FADING_SEMINAR)), Awards({}),
                      START).index_band(5, 9) == (5, None)  # fmt: skip


def test_what_fades_is_kept_across_sheets_a_rule_changing_sign_included() -> None:
    seminar_only = model_of(FADING_SEMINAR)
    assert Fading.of(seminar_only) == Fading(positive=True)
    assert Fading.of(DEFAULT_MODEL).none
    # A fading rule whose points became negative: its old awards were worth points
    penalty = FADING_SEMINAR.model_copy(update={"points": -5})
    assert Fading.of(model_of(penalty), before=seminar_only) == Fading(True, True)
    assert Fading.from_item(Fading(True, False).as_item()) == Fading(True, False)
    assert Fading.from_item(None).none


lead_histories = st.lists(
    st.tuples(
        # each award: which rule, how many days before the lead last scored, the days since
        st.lists(
            st.tuples(st.sampled_from(["opened", "seminar", "penalty"]), st.floats(0, 400)),
            max_size=6,
        ),
        st.floats(0, 400),
    ),
    max_size=25,
)


@given(lead_histories, st.integers(1, 5), st.booleans(), st.booleans())
def test_the_leads_read_for_the_highest_scores_now_hold_every_one_of_them(
    histories: list[tuple[list[tuple[str, float]], float]],
    count: int,
    penalties_fade: bool,
    rounded_index: bool,
) -> None:
    opened = ScoringRule(rule_id="opened", type="mail_opened", points=5)
    seminar = ScoringRule(rule_id="seminar", type="seminar_attended", points=20, half_life_days=7)
    penalty = ScoringRule(
        rule_id="penalty",
        type="consent_changed",
        points=-10,
        half_life_days=10 if penalties_fade else None,
    )
    model = model_of(opened, seminar, penalty)
    points = {"opened": 5, "seminar": 20, "penalty": -10}
    kept: dict[str, list[Award]] = {}
    leads = []
    for n, (history, days_since) in enumerate(histories):
        scored_at = START - timedelta(days=days_since)
        kept[f"lead_{n:02d}"] = [
            Award(rule, points[rule], f"evt_{n}_{i}", scored_at - timedelta(days=before), rule)
            for i, (rule, before) in enumerate(history)
        ]
        leads.append(scored_lead(f"lead_{n:02d}", kept[f"lead_{n:02d}"], scored_at, model))
    scores = LeadScores(model, Fading.of(model), Awards(kept), START)
    # As a search index reads them (by the stored score rounded, then by id), or sorted in memory
    if rounded_index:
        leads.sort(key=lambda lead: (round(lead.score or 0), lead.lead_id), reverse=True)
        read = scores.contenders(leads, count, most_from=lambda lead: round(lead.score or 0) + 0.5)
    else:
        leads.sort(key=lambda lead: lead.score or 0, reverse=True)
        read = scores.contenders(leads, count)

    def top(entries: list[tuple[LeadRow, float]]) -> list[tuple[float, str]]:
        return sorted((-score, lead.lead_id) for lead, score in entries)[:count]

    every = [(lead, current_score(kept[lead.lead_id], START, model)) for lead in leads]
    assert top(read) == top(every)


# --- the hot list: the highest scores now, read from the index of stored ones ----------------


class ScoreIndex:
    """The leads as the leads' score index reads them: highest rank first, a page at a time."""

    def __init__(self, leads: list[LeadRow]) -> None:
        self.leads = sorted(leads, key=lambda lead: rank(lead.score, lead.lead_id), reverse=True)
        self.pages = 0

    def search(self, query: LeadQuery) -> LeadPage:
        self.pages += 1
        start = int(query.cursor or 0)
        end = start + query.limit
        more = str(end) if end < len(self.leads) else None
        return LeadPage(self.leads[start:end], more, end - start)


class ScoredRules:
    """The rules and the awards, as the qualification store keeps them (awards reads counted)."""

    def __init__(self, model: ScoringModel, kept: dict[str, list[Award]]) -> None:
        self.model = model
        self.awards = Awards(kept)

    def config(self) -> QualificationConfig:
        return QualificationConfig(scoring=self.model)

    def awards_of(self, lead_id: str) -> list[Award]:
        return self.awards(lead_id)

    def lead_scores(self, now: datetime) -> LeadScores:
        return LeadScores(self.model, Fading.of(self.model), self.awards_of, now)


class NoAudit:
    def append(self, entry: Any) -> None:
        pass


def hot_list(rules: ScoredRules, leads: list[LeadRow], limit: int) -> list[tuple[str, float]]:
    ports = qualification.QualificationCommands(
        rules=rules,  # type: ignore[arg-type]  # the score's half is what the hot list reads
        leads=ScoreIndex(leads),  # type: ignore[arg-type]
        audit=NoAudit(),  # type: ignore[arg-type]
        clock=FixedClock(START),
    )
    sales = Actor(user_id="u-s", role=Role.SALES, email="sales@example.com", via="cli")
    return [(hot.lead.email, hot.score) for hot in qualification.hot_list(ports, sales, limit)]


def with_awards(
    kept: dict[str, list[Award]], lead_id: str, model: ScoringModel, *awards: Award
) -> LeadRow:
    kept[lead_id] = list(awards)
    return scored_lead(lead_id, kept[lead_id], max(a.occurred_at for a in awards), model)


def test_a_lead_hot_now_heads_the_hot_list_whatever_long_cold_leads_stored() -> None:
    # Given seminars halve every 14 days, and 1,000 leads that attended four a year ago (stored
    # at 80, worth about 0 now)
    model = model_of(FADING_SEMINAR)
    kept: dict[str, list[Award]] = {}
    year_ago = START - timedelta(days=365)
    leads = [
        with_awards(kept, f"lead_cold{n:04d}", model, *(
            Award("seminar-attended", 20, f"evt_{n}_{k}", year_ago, "", None, 14)
            for k in range(4)
        ))
        for n in range(1_000)
    ]  # fmt: skip
    # And one lead that attended three today (60)
    today = [Award("seminar-attended", 20, f"evt_hot_{k}", START, "", None, 14) for k in range(3)]
    leads.append(with_awards(kept, "lead_hot", model, *today))

    # When sales asks for the five hottest leads
    listed = hot_list(ScoredRules(model, kept), leads, limit=5)

    # Then the lead hot now heads the list
    assert listed[0] == ("lead_hot@example.jp", 60)


def test_the_hot_list_reads_the_index_only_as_far_as_the_list_needs() -> None:
    # Given 300 leads active today, lead n at n seminars (so 20 n, fading from now on)
    model = model_of(FADING_SEMINAR)
    kept: dict[str, list[Award]] = {}
    leads = [
        with_awards(kept, f"lead_{n:03d}", model, *(
            Award("seminar-attended", 20, f"evt_{n}_{k}", START, "", None, 14) for k in range(n)
        ))
        for n in range(1, 301)
    ]  # fmt: skip
    rules = ScoredRules(model, kept)

    listed = hot_list(rules, leads, limit=5)

    # Then the five come from the first leads of the index, and only theirs were scored again
    assert [score for _, score in listed] == [6000, 5980, 5960, 5940, 5920]
    assert len(rules.awards.read) == 5


def test_a_fading_penalty_is_no_reason_to_miss_a_lead_on_the_hot_list() -> None:
    # Given an unsubscribe (-10) halves every 30 days: a lead that opened four mails and
    # unsubscribed a year ago was stored at 10 then, and is at about 20 now
    opened = ScoringRule(rule_id="mail-opened", type="mail_opened", points=5)
    model = model_of(opened, FADING_UNSUBSCRIBE)
    kept: dict[str, list[Award]] = {}
    year_ago = START - timedelta(days=365)
    returning = with_awards(kept, "lead_back", model, *(
        Award("mail-opened", 5, f"evt_o{k}", year_ago, "") for k in range(4)
    ), Award("unsubscribed", -10, "evt_u", year_ago, "", None, 30))  # fmt: skip
    assert returning.score == 10
    # And 12 leads that opened three mails today (15, stored and now)
    leads = [
        with_awards(kept, f"lead_{n:02d}", model, *(
            Award("mail-opened", 5, f"evt_{n}_{k}", START, "") for k in range(3)
        ))
        for n in range(12)
    ]  # fmt: skip

    listed = hot_list(ScoredRules(model, kept), [*leads, returning], limit=5)

    # Then the lead whose penalty faded heads the list, stored below the others as it is
    assert listed[0][0] == "lead_back@example.jp"
    assert listed[0][1] == pytest.approx(20 - 10 * 0.5 ** (365 / 30))
