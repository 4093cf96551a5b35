"""Issue 6's "done when", on the embedded runtime as ``make up`` starts it (one runtime for the
module, its clock at a Tuesday 10:00 in Tokyo): a lead who opens mails, views pages and attends
the seminar crosses 70, becomes MQL, and its owner's notification shows in the mail viewer once;
``tsunagu leads score`` explains the number; the demo team takes new MQLs in turn; a signed CRM
"in negotiation" takes a lead out of its welcome journey.

The runtime runs on virtual time and nothing here advances it: the hand-off and the welcome
journey run, the stream is routed, and simulated time stands still meanwhile. So each test waits
for the work to settle (never for the wall clock) and checks that what the product recorded - the
mails' ``sent_at``, the executions' start and stop dates, the stage change - happened at the one
simulated instant the lead acted at."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import start_tsunagu
from tests.qualification.embedded import VIRTUAL_TIME, Embedded
from tsunagu.clock import isoformat, parse_instant
from tsunagu_local.seed import DEMO_SALES_TEAM

pytestmark = pytest.mark.e2e

HAND_OFF = "hand-off-to-sales"
WELCOME = "welcome-nurture"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    running = start_tsunagu(tmp_path_factory.mktemp("qualification"), "--no-persist", *VIRTUAL_TIME)
    try:
        yield Embedded(running)
    finally:
        if running.process.poll() is None:
            running.stop()


def notifications(e: Embedded, owner: str, name: str) -> list[dict[str, Any]]:
    return [
        m for m in e.mails_to(owner) if m["subject"].startswith("[MQL ") and name in m["subject"]
    ]


def owner_of(e: Embedded, lead_id: str) -> str:
    owner: str = e.lead(lead_id)["fields"]["owner_email"]["value"]
    return owner


def test_done_when_a_lead_crosses_70_its_owner_is_told_once_and_the_score_is_explained(
    embedded: Embedded,
) -> None:
    e = embedded
    email, name = "aoi.mori@example.jp", "森 葵"
    # Given a lead from the demo form (10) who views the pricing page, a case study and the
    # home page (10 + 1 + 1 + 1), is marked as a seminar attendee (20) and opens four mails,
    # two of them twice (one mail's opens score once)
    at = e.now()
    lead_id = e.sign_up(email, name)
    e.view_pages(email, "/_local/demo/pricing", "/_local/demo/case-study", "/_local/demo")
    e.record(email, "seminar_attended")
    e.open_mail(email, "msg_newsletter_1", times=2)
    e.open_mail(email, "msg_newsletter_2", times=2)
    e.open_mail(email, "msg_newsletter_3")
    e.open_mail(email, "msg_newsletter_4")
    assert e.settled_score(lead_id) == 63
    assert e.lead(lead_id)["stage"] == "lead"
    assert e.executions(HAND_OFF, lead_id) == []

    # When the lead opens two more mails (68, then 73)
    e.open_mail(email, "msg_newsletter_5", times=2)
    e.open_mail(email, "msg_newsletter_6")
    assert e.settled_score(lead_id) == 73

    # Then it is an MQL, moved by the rule at the instant it crossed 70
    lead = e.lead(lead_id)
    assert lead["stage"] == "mql"
    (moved,) = lead["stage_history"]
    assert (moved["from"], moved["to"]) == ("lead", "mql")
    assert moved["by"].startswith("rule: score 7"), moved
    assert parse_instant(moved["at"]) == at, moved
    # And the hand-off ran at that instant: an owner from the demo team, told by mail, once
    handed = e.finished(HAND_OFF, lead_id)
    assert handed["status"] == "SUCCEEDED"
    assert handed["startDate"] == handed["stopDate"] == at
    owner = owner_of(e, lead_id)
    assert owner in DEMO_SALES_TEAM
    (told,) = notifications(e, owner, name)
    assert parse_instant(told["sent_at"]) == at, told["sent_at"]
    assert told["subject"].startswith(f"[MQL D1] {name} (Example KK) - score 7")
    assert "became a marketing-qualified lead" in told["text"]
    assert "seminar-attended (Attended a seminar)  +20" in told["text"]
    status, _, page = e.tsunagu.request("GET", "/_local/mail")
    assert status == 200
    assert page.decode().count(f"<h2>{html.escape(told['subject'])}</h2>") == 1

    # When the lead goes on (another open: 78), and everything it did has been routed
    e.open_mail(email, "msg_newsletter_7")
    assert e.settled_score(lead_id) == 78
    e.record(email, "seminar_attended")  # a second seminar: 98
    assert e.settled_score(lead_id) == 98

    # Then nobody is told again
    assert len(e.executions(HAND_OFF, lead_id)) == 1
    assert len(notifications(e, owner, name)) == 1
    assert len(e.lead(lead_id)["stage_history"]) == 1

    # And `tsunagu leads score` explains every point
    text = e.cli("leads", "score", email)
    assert text.startswith(f"{email}: score 98 (MQL at 70), grade D, D1, stage mql")
    assert text.count("mail-opened (Opened a mail)  +5") == 7
    assert text.count("seminar-attended (Attended a seminar)  +20") == 2
    assert "form-submitted (Submitted a form)  +10" in text
    assert "pricing-viewed (Viewed the pricing page)  +10" in text
    assert text.count("page-viewed (Viewed a page of the site)  +1") == 3
    assert "total 98.0 (awarded +98 before decay); MQL threshold 70; band 1" in text
    assert f"lead -> mql  by {moved['by']}" in text
    explained = json.loads(e.cli("leads", "score", email, "--json"))
    assert explained["score"] == 98 == sum(line["decayed"] for line in explained["lines"])
    assert len(explained["lines"]) == 1 + 1 + 3 + 2 + 7
    # And all of it happened at the one instant the lead acted at: simulated time stood still
    assert e.now() == at


def test_the_demo_team_takes_new_mqls_in_turn(embedded: Embedded) -> None:
    e = embedded
    leads = {
        "ren.kato@example.jp": "加藤 蓮",
        "yui.ito@example.jp": "伊藤 結衣",
    }
    # Given two leads who each sign up (10) and attend three seminars (60)
    at = e.now()
    ids = {email: e.sign_up(email, name) for email, name in leads.items()}
    for email in leads:
        for _ in range(3):
            e.record(email, "seminar_attended")

    # When both have been handed to sales
    for lead_id in ids.values():
        assert e.settled_score(lead_id) == 70
        handed = e.finished(HAND_OFF, lead_id)
        assert handed["status"] == "SUCCEEDED"
        assert handed["startDate"] == handed["stopDate"] == at

    # Then each went to a different member of the team, who was told once, then and there
    owners = {email: owner_of(e, lead_id) for email, lead_id in ids.items()}
    assert sorted(owners.values()) == sorted(DEMO_SALES_TEAM)
    for email, owner in owners.items():
        (told,) = notifications(e, owner, leads[email])
        assert parse_instant(told["sent_at"]) == at, told["sent_at"]


def test_a_signed_in_negotiation_takes_the_lead_out_of_its_welcome_journey(
    embedded: Embedded,
) -> None:
    e = embedded
    email = "sho.yamamoto@example.jp"
    # Given a new lead in the welcome journey: the welcome mail went, the journey waits for a
    # visit to the pricing or case-study page
    at = e.now()
    lead_id = e.sign_up(email, "山本 翔")
    assert e.settle() == at
    (welcome,) = e.mails_to(email)
    assert parse_instant(welcome["sent_at"]) == at, welcome["sent_at"]
    (running,) = e.executions(WELCOME, lead_id)
    assert running["status"] == "RUNNING"
    assert running["startDate"] == at

    # When the CRM reports, signed, that sales is negotiating with the lead
    status, answer = e.crm_post(
        {
            "crm_id": "0065g00000Yam001",
            "email": email,
            "status": "In Negotiation",
            "updated_at": isoformat(e.now()),
        }
    )

    # Then the lead is an opportunity of sales', and its journey was stopped
    assert status == 200, answer
    assert answer["stage"] == "opportunity"
    assert e.lead(lead_id)["crm_status"] == "in negotiation"
    stopped = e.finished(WELCOME, lead_id)
    assert stopped["status"] == "ABORTED"
    assert stopped["stopDate"] == at
    entry = e.client("dynamodb").get_item(
        TableName=e.environment["TSUNAGU_JOURNEYS_TABLE"],
        Key={"pk": {"S": f"lead#{lead_id}"}, "sk": {"S": "entry#welcome_nurture"}},
        ConsistentRead=True,
    )["Item"]
    assert entry["status"]["S"] == "exited"
    assert json.loads(entry["data"]["S"])["exit_reason"] == "crm_status"

    # When the lead then visits the pricing page the journey was waiting for
    e.view_pages(email, "/_local/demo/pricing")
    assert e.settle() == at

    # Then no later mail goes to the lead, and the journey is not started again
    assert len(e.mails_to(email)) == 1
    assert [x["status"] for x in e.executions(WELCOME, lead_id)] == ["ABORTED"]
