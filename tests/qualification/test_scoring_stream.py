"""Scoring in route_events, fed by the events table as the stream delivers it (moto in-process):
seed 000's numbers crossing 70 start one hand-off, the MQL rule is read at every activity (a
lowered threshold, a risen grade; a recycled lead on what it earned since), redelivered batches
score once, automated and system activity scores nothing, an unsubscribe takes 10 points."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import load_event
from tests.integration.mail_helpers import (
    parse,
    save_template,
    send,
    sent_messages,
    token_of,
    unsubscribe,
    unsubscribe_url,
    with_token,
)
from tests.integration.tracking_helpers import register_site, set_clock
from tests.qualification.conftest import NOW, SITE_ORIGIN, Qualified
from tsunagu import services
from tsunagu.leads.lookup import lead_by_email
from tsunagu.leads.merge import Channel
from tsunagu.leads.search import LeadQuery
from tsunagu.leads.updates import LeadUpdate, update_lead
from tsunagu.qualification.config import QualificationConfig
from tsunagu.qualification.grading import Grade
from tsunagu.qualification.scoring import DEFAULT_MODEL, DEFAULT_RULES, ScoringModel, ScoringRule
from tsunagu.store.qualification import QualificationRepository

LEAD = "hanako.sato@example.jp"


def score_of(q: Qualified, lead_id: str) -> Decimal | None:
    score: Decimal | None = q.lead(lead_id).get("score")
    return score


def award_keys(q: Qualified, lead_id: str) -> list[tuple[str, str, int]]:
    return [(a["event_id"], a["rule_id"], a["points"]) for a in q.awards(lead_id)]


def opens(q: Qualified, lead_id: str, *message_ids: str) -> None:
    for message_id in message_ids:
        q.open_mail(lead_id, message_id)


def opened(q: Qualified, lead_id: str, prefix: str, count: int) -> None:
    opens(q, lead_id, *(f"msg_{prefix}_{i}" for i in range(count)))


def person_sets(q: Qualified, lead_id: str, update: LeadUpdate) -> None:
    """A change as ``tsunagu leads set`` makes it."""
    update_lead(
        lead_id,
        update,
        by="cli:sales.sato@example.com",
        source=Channel.SALES,
        store=services.lead_repository(q.settings()),
        now=services.clock(q.settings()).now(),
    )


# ---------------------------------------------------------------- seed 000's numbers


def test_the_seeds_numbers_cross_70_once_and_start_one_hand_off(qualified: Qualified) -> None:
    q = qualified
    # Given a lead from the demo form (10), who opens five mails (5 each)
    lead_id = q.capture(LEAD)
    opens(q, lead_id, "msg_a", "msg_b", "msg_c", "msg_d", "msg_e")
    q.deliver()
    assert score_of(q, lead_id) == 35
    # And attends the seminar (20) and opens two more
    q.record(lead_id, "seminar_attended")
    opens(q, lead_id, "msg_f", "msg_g")
    q.deliver()
    assert score_of(q, lead_id) == 65
    assert q.lead(lead_id)["stage"] == "lead"
    assert q.hand_offs() == []

    # When one more open takes the score to 70
    opens(q, lead_id, "msg_h")
    q.deliver()

    # Then the lead is an MQL, moved by the rule, with the move in its history
    lead = q.lead(lead_id)
    assert (lead["score"], lead["stage"]) == (70, "mql")
    (moved,) = lead["stage_history"]
    assert (moved["from"], moved["to"]) == ("lead", "mql")
    assert moved["by"].startswith("rule: score 70 >= 70"), moved
    (stage_event,) = q.events(lead_id, "stage_changed")
    assert stage_event["properties"]["to"] == "mql"
    assert stage_event["properties"]["by"] == moved["by"]
    # And exactly one hand-off was started, named by that stage event
    (hand_off,) = q.hand_offs()
    assert hand_off["name"] == f"mql-{stage_event['event_id']}"
    assert q.hand_off_inputs() == [{"lead_id": lead_id, "stage_event_id": stage_event["event_id"]}]

    # When the lead goes on: another open, the pricing page, another seminar
    opens(q, lead_id, "msg_i")
    q.view_pages(lead_id, "/pricing")
    q.record(lead_id, "seminar_attended")
    q.deliver()

    # Then the score goes on up, and nothing is handed to sales again
    assert score_of(q, lead_id) == 70 + 5 + 10 + 1 + 20
    assert len(q.lead(lead_id)["stage_history"]) == 1
    assert len(q.events(lead_id, "stage_changed")) == 1
    assert len(q.hand_offs()) == 1
    # And every scored event has one score_changed, whose steps add up
    changes = [e["properties"] for e in q.events(lead_id, "score_changed")]
    assert len(changes) == 1 + 8 + 1 + 1 + 1 + 1  # form, 8 opens, seminar, open, page, seminar
    assert sum(c["points"] for c in changes) == score_of(q, lead_id)


# ---------------------------------------------------------------- the MQL rule at every activity


def test_a_lowered_threshold_promotes_a_lead_already_over_it_when_it_acts_again(
    qualified: Qualified,
) -> None:
    q = qualified
    # Given a lead at 60 (the form and ten opens) under the default threshold of 70
    lead_id = q.capture(LEAD)
    opened(q, lead_id, "a", 10)
    q.deliver()
    assert (score_of(q, lead_id), q.lead(lead_id)["stage"]) == (60, "lead")

    # When marketing lowers the threshold to 50, and the lead opens another mail (65)
    q.save_config(
        QualificationConfig(scoring=DEFAULT_MODEL.model_copy(update={"mql_threshold": 50}))
    )
    opened(q, lead_id, "b", 1)
    q.deliver()

    # Then the lead, at 65 >= 50, is an MQL, moved by the rule, and handed to sales once
    lead = q.lead(lead_id)
    assert (lead["score"], lead["stage"]) == (65, "mql")
    (moved,) = lead["stage_history"]
    assert moved["by"].startswith("rule: score 65 >= 50"), moved
    assert len(q.hand_offs()) == 1


def test_a_lead_whose_grade_rises_to_the_minimum_becomes_mql_at_its_next_activity(
    qualified: Qualified,
) -> None:
    q = qualified
    q.save_config(QualificationConfig(minimum_grade=Grade.C))
    # Given a lead over the threshold (75) but graded D: nothing is known about who they are
    lead_id = q.capture(LEAD)
    opened(q, lead_id, "a", 13)
    q.deliver()
    assert (score_of(q, lead_id), q.lead(lead_id)["stage"]) == (75, "lead")
    assert q.hand_offs() == []

    # When sales learns they head a department at a 1,000-person company (grade B)
    person_sets(q, lead_id, LeadUpdate(fields={"job_title": "部長", "company_size": "1000"}))
    # And the next day the lead opens another mail (80)
    set_clock(q.aws, NOW + timedelta(days=1))
    opened(q, lead_id, "b", 1)
    q.deliver()

    # Then score 80 >= 70 and grade B >= C: the lead is an MQL, handed to sales once
    lead = q.lead(lead_id)
    assert (lead["score"], lead["stage"], lead["grade"]) == (80, "mql", "B")
    assert lead["stage_history"][-1]["by"] == "rule: score 80 >= 70, grade B >= C"
    assert len(q.hand_offs()) == 1


def recycled_after_mql(q: Qualified) -> str:
    """A lead that became MQL at 70, was worked by sales and recycled (not ready to buy)."""
    lead_id = q.capture(LEAD)
    opened(q, lead_id, "a", 12)
    q.deliver()
    assert q.lead(lead_id)["stage"] == "mql"
    person_sets(q, lead_id, LeadUpdate(stage="sql"))
    person_sets(q, lead_id, LeadUpdate(stage="recycled"))
    q.deliver()
    assert len(q.hand_offs()) == 1
    return lead_id


def test_a_recycled_lead_is_not_handed_back_on_the_score_sales_recycled_it_with(
    qualified: Qualified,
) -> None:
    q = qualified
    # Given a lead recycled by sales at a score of 70, at or over the threshold
    lead_id = recycled_after_mql(q)

    # When, months later, it views a page and attends two seminars (40 points since recycling)
    set_clock(q.aws, NOW + timedelta(days=90))
    q.view_pages(lead_id, "/blog/dx")
    q.record(lead_id, "seminar_attended")
    q.record(lead_id, "seminar_attended")
    q.deliver()

    # Then its score shows all of it (111), but it stays recycled: 41 earned since recycling
    # is under the threshold, and sales is not handed the lead it just sent back
    lead = q.lead(lead_id)
    assert (lead["score"], lead["stage"]) == (111, "recycled")
    assert len(q.hand_offs()) == 1


def test_a_recycled_lead_requalifies_on_the_points_it_earns_after_recycling(
    qualified: Qualified,
) -> None:
    q = qualified
    lead_id = recycled_after_mql(q)

    # When, months later, it attends four seminars: 80 points since it was recycled
    set_clock(q.aws, NOW + timedelta(days=90))
    for _ in range(4):
        q.record(lead_id, "seminar_attended")
    q.deliver()

    # Then it is an MQL again, moved by the rule that counts from the recycling, and handed off
    lead = q.lead(lead_id)
    assert (lead["score"], lead["stage"]) == (150, "mql")
    moved = lead["stage_history"][-1]
    assert (moved["from"], moved["to"]) == ("recycled", "mql")
    assert moved["by"].startswith("rule: score 80 since recycled >= 70"), moved
    assert len(q.hand_offs()) == 2


# ---------------------------------------------------------------- before the form


def browse_anonymously(q: Qualified, visitor: str, *paths: str) -> None:
    """track_event: page views of a browser no form has linked to a lead yet."""
    register_site(q.aws, allowed_origins=[SITE_ORIGIN])
    event = load_event("track_event", "custom_events_json")
    event["body"] = json.dumps(
        {
            "site_id": "example-corp",
            "events": [
                {"type": "page_view", "visitor_id": visitor, "url": f"{SITE_ORIGIN}{path}"}
                for path in paths
            ],
        }
    )
    response = q.aws.function("track_event").invoke(event)
    assert json.loads(response["body"])["accepted"] == len(paths), response


def post_form(q: Qualified, email: str, visitor: str) -> str:
    """capture_form: the demo form from a browser, for a new lead or one already known; the
    lead's id, found by its address (the form's answer names no lead for a known address)."""
    event = load_event("capture_form", "new_lead_json")
    event["body"] = json.dumps({"email": email, "consent": True, "visitor_id": visitor})
    event["headers"].pop("origin", None)
    response = q.aws.function("capture_form").invoke(event)
    assert response["statusCode"] == 201, response
    return lead_by_email(services.lead_repository(q.settings()), email).lead_id


def test_the_pricing_page_read_before_the_form_scores_once_the_visitor_is_the_lead(
    qualified: Qualified,
) -> None:
    q = qualified
    # Given a browser that read the pricing page anonymously (routed: nobody to score yet)
    visitor = "v_" + hashlib.sha256(LEAD.encode()).hexdigest()[:16]  # what q.capture sends
    browse_anonymously(q, visitor, "/pricing")
    q.deliver()

    # When the same browser submits the demo form, linking the visitor to the new lead
    lead_id = q.capture(LEAD)
    q.deliver()

    # Then the view is the lead's history and earns its points: form 10 + pricing 10 + page 1
    (view,) = q.events(lead_id, "page_view")
    assert view["visitor_id"] == visitor
    assert score_of(q, lead_id) == 21, q.awards(lead_id)
    awarded = [rule for event_id, rule, _ in award_keys(q, lead_id) if event_id == view["event_id"]]
    assert sorted(awarded) == ["page-viewed", "pricing-viewed"]

    # When the stream delivers everything again, and the person posts the form a second time
    q.delivered.clear()
    q.deliver()
    again = post_form(q, LEAD, visitor)
    q.deliver()

    # Then the view was claimed once and scored once (a second form the same day adds nothing:
    # form_submitted earns at most 10 a day)
    assert again == lead_id
    assert len(q.events(lead_id, "page_view")) == 1
    assert score_of(q, lead_id) == 21, q.awards(lead_id)


# ---------------------------------------------------------------- exactly once


def crossing(q: Qualified) -> str:
    """A lead with ten events waiting on the stream that take it from 0 to 70: the form (10),
    four opens, the seminar (20), four more opens."""
    lead_id = q.capture(LEAD)
    opens(q, lead_id, "msg_a", "msg_b", "msg_c", "msg_d")
    q.record(lead_id, "seminar_attended")
    opens(q, lead_id, "msg_e", "msg_f", "msg_g", "msg_h")
    return lead_id


def test_a_redelivered_batch_changes_nothing(qualified: Qualified) -> None:
    q = qualified
    lead_id = crossing(q)
    first = q.batch(q.undelivered())
    assert q.route(first) == {"batchItemFailures": []}
    q.delivered.update(
        (r["dynamodb"]["Keys"]["subject"]["S"], r["dynamodb"]["Keys"]["sk"]["S"])
        for r in first["Records"]
    )
    follow_ups = q.deliver()  # score_changed and stage_changed: the hand-off starts here
    assert score_of(q, lead_id) == 70
    assert len(q.hand_offs()) == 1
    before = q.snapshot()

    # When the stream delivers the same batches again (the checkpoint was not saved)
    for batch in [first, *follow_ups]:
        assert q.route(batch) == {"batchItemFailures": []}

    # Then no table changed at all: no award, no score, no event, no version bump
    assert q.snapshot() == before
    assert len(q.hand_offs()) == 1


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("when", ["before its write", "after its write"])
def test_a_batch_retried_after_one_record_failed_scores_each_event_once(
    qualified: Qualified, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    q = qualified
    lead_id = crossing(q)
    items = q.undelivered()
    unlucky = next(i for i in items if i["type"]["S"] == "seminar_attended")["event_id"]["S"]
    record_score = QualificationRepository.record_score
    failures: list[str] = []

    def flaky(self: QualificationRepository, write: Any) -> bool:
        event_ids = {a.event_id for a in write.awards}
        if unlucky in event_ids and not failures:
            failures.append(unlucky)
            if when == "after its write":
                record_score(self, write)  # the write lands; the invocation dies after it
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                "TransactWriteItems",
            )
        return record_score(self, write)

    monkeypatch.setattr(QualificationRepository, "record_score", flaky)
    batch = q.batch(items)

    # When the seminar's record fails in a batch of ten
    result = q.route(batch)
    failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    assert len(failed) == 1
    # And the whole batch is delivered again (as after a crash, or a retry from the checkpoint)
    assert q.route(batch) == {"batchItemFailures": []}
    q.delivered.update((i["subject"]["S"], i["sk"]["S"]) for i in items)
    q.deliver()

    # Then every event earned its points once: 10 + 8 x 5 + 20
    keys = award_keys(q, lead_id)
    assert len(keys) == len({(e, r) for e, r, _ in keys}) == 10
    assert score_of(q, lead_id) == 70
    changes = q.events(lead_id, "score_changed")
    assert len(changes) == 10
    assert sum(c["properties"]["points"] for c in changes) == 70
    # And the lead became MQL once, handed off once
    assert len(q.lead(lead_id)["stage_history"]) == 1
    assert len(q.hand_offs()) == 1


def test_a_redelivery_racing_the_first_is_refused_by_the_award_condition(
    qualified: Qualified, monkeypatch: pytest.MonkeyPatch
) -> None:
    q = qualified
    crossing(q)
    items = q.undelivered()
    batch = q.batch(items)
    assert q.route(batch) == {"batchItemFailures": []}
    q.delivered.update((i["subject"]["S"], i["sk"]["S"]) for i in items)
    q.deliver()
    before = q.snapshot()
    handed_off = len(q.hand_offs())

    # When a second invocation processes the same batch having read the awards before the first
    # wrote them (two pollers, or a retry overlapping a slow first attempt)
    monkeypatch.setattr(QualificationRepository, "awards_of", lambda self, lead_id: [])
    assert q.route(batch) == {"batchItemFailures": []}

    # Then the conditional award writes refuse every one: nothing changes
    assert q.snapshot() == before
    assert len(q.hand_offs()) == handed_off == 1


# ---------------------------------------------------------------- what never scores


def test_automated_opens_and_clicks_score_nothing(qualified: Qualified) -> None:
    q = qualified
    lead_id = q.capture(LEAD)
    q.deliver()
    assert score_of(q, lead_id) == 10

    # When Apple's privacy proxy fetches the pixel, and gateways follow the links
    q.open_mail(lead_id, "msg_a", user_agent="Mozilla/5.0", ip="17.58.100.12")
    q.click(lead_id, "msg_a", user_agent="Mozilla/5.0 (compatible; Mimecast URL Protect)")
    q.click(lead_id, "msg_b", user_agent="python-requests/2.32.3")
    q.deliver()

    # Then they are kept as automated evidence, and score nothing
    activity = q.events(lead_id, "mail_opened") + q.events(lead_id, "link_clicked")
    assert len(activity) == 3
    assert all(e["properties"]["automated"] is True for e in activity)
    assert score_of(q, lead_id) == 10
    assert [k[1] for k in award_keys(q, lead_id)] == ["form-submitted"]
    assert len(q.events(lead_id, "score_changed")) == 1


def test_one_mail_opened_many_times_does_not_make_an_mql(qualified: Qualified) -> None:
    # Given a lead from the form (10 points)
    q = qualified
    lead_id = q.capture("reread@example.jp")
    q.deliver()

    # When one mail's pixel is fetched twelve times (a person re-reading it, a client rendering
    # it again, anyone holding a forwarded copy)
    for _ in range(12):
        q.open_mail(lead_id, "msg_same_mail")
    q.deliver()

    # Then every open is kept as a person's, and the mail scores once: no MQL, no hand-off
    opens = q.events(lead_id, "mail_opened")
    assert len(opens) == 12 and all(e["properties"]["automated"] is False for e in opens)
    assert score_of(q, lead_id) == 15
    assert q.lead(lead_id)["stage"] == "lead"
    assert q.hand_offs() == []


SYSTEM_RECORDS: list[tuple[str, dict[str, Any]]] = [
    ("mail_sent", {"message_id": "msg_a", "template_id": "welcome"}),
    ("mail_delivered", {"message_id": "msg_a"}),
    ("journey_entered", {"journey_id": "welcome_nurture"}),
    ("owner_notified", {"owner": "sales.sato@example.com", "status": "sent"}),
    ("lead_updated", {"fields": ["owner_email"], "source": "crm"}),
    ("crm_status_changed", {"from": None, "to": "in negotiation"}),
    ("score_changed", {"from": 0, "to": 10, "points": 10}),
    ("consent_changed", {"topic": "marketing", "status": "opted_in"}),
]


def test_tsunagus_own_records_score_nothing_under_the_default_rules(
    qualified: Qualified,
) -> None:
    q = qualified
    lead_id = q.capture(LEAD)
    q.deliver()
    for kind, properties in SYSTEM_RECORDS:
        q.record(lead_id, kind, **properties)
    q.deliver()
    assert score_of(q, lead_id) == 10
    assert [k[1] for k in award_keys(q, lead_id)] == ["form-submitted"]


@pytest.mark.parametrize("kind", ["mail_sent", "owner_notified"])
def test_a_rule_naming_one_of_tsunagus_own_records_still_scores_nothing(
    qualified: Qualified, kind: str
) -> None:
    q = qualified
    rule = ScoringRule(rule_id="own-record", type=kind, points=15)
    q.save_config(QualificationConfig(scoring=ScoringModel(rules=(*DEFAULT_RULES, rule))))
    lead_id = q.capture(LEAD)
    q.deliver()

    # When Tsunagu records something it did (sent a mail, told the owner)
    q.record(lead_id, kind, **dict(SYSTEM_RECORDS)[kind])
    q.deliver()

    # Then the lead's score does not move: the lead did nothing
    assert score_of(q, lead_id) == 10


def test_an_unsubscribe_takes_ten_points(qualified: Qualified) -> None:
    q = qualified
    save_template(q.aws)
    lead_id = q.capture(LEAD)
    before = len(sent_messages())
    assert send(q.aws, lead_id, template_id="welcome")["status"] == "sent"
    mail = parse(sent_messages()[before].raw_data)
    q.deliver()
    assert score_of(q, lead_id) == 10

    # When the lead unsubscribes with one click from the mail
    event = with_token(
        load_event("unsubscribe", "one_click_urlencoded"), token_of(unsubscribe_url(mail))
    )
    assert unsubscribe(q.aws, event)["statusCode"] == 200
    q.deliver()

    # Then the unsubscribe rule took 10 points, and said so
    (opted_out,) = [
        e for e in q.events(lead_id, "consent_changed") if e["properties"]["status"] == "opted_out"
    ]
    assert (opted_out["event_id"], "unsubscribed", -10) in award_keys(q, lead_id)
    assert score_of(q, lead_id) == 0
    last = q.events(lead_id, "score_changed")[-1]["properties"]
    assert (last["from"], last["to"], last["rules"]) == (10, 0, ["unsubscribed"])


# ---------------------------------------------------------------- what the score is found by


def test_a_scored_lead_is_found_and_ordered_by_its_new_score(qualified: Qualified) -> None:
    q = qualified
    # Given two leads from the demo form (10 each), one of whom then attends the seminar (20)
    quiet = q.capture("quiet@example.jp")
    keen = q.capture(LEAD)
    q.record(keen, "seminar_attended")
    q.deliver()
    assert (score_of(q, quiet), score_of(q, keen)) == (10, 30)

    # When the lead list is searched by score, highest first, as the console and segments do
    leads = services.lead_repository(q.settings())
    found = leads.search(LeadQuery(score_min=20))
    listed = leads.search(LeadQuery())

    # Then the search indexes read the score the scoring wrote, not the one the form left
    assert [lead.lead_id for lead in found.leads] == [keen]
    assert [lead.lead_id for lead in listed.leads] == [keen, quiet]
