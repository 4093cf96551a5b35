"""The report counters, kept by report_events from the events stream, against a known history.

The history is made by the product's own code where a lead's activity enters it (record_open
and follow_link judge opens and clicks, the one-click unsubscribe, SES feedback) on a clock the
test moves; the sends are written as send_email writes them. Every expected figure below was
worked out by hand from that history, and is written as a number, not computed.

Days are Japan's (the account's time zone): D1 = 2026-12-01, D2 = 2026-12-02.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import AwsStack, moto_client
from tests.integration.mail_helpers import save_template
from tests.support.leads import new_stream_records, store_lead
from tests.support.shipped import install_shipped_journeys
from tsunagu import services
from tsunagu.clock import FixedClock, isoformat
from tsunagu.commands.access import Actor, Role
from tsunagu.commands.reports import ReportCommands
from tsunagu.leads.model import LeadEvent
from tsunagu.mail.feedback import handle_ses_event
from tsunagu.mail.preferences import PreferenceContext, unsubscribe_one_click
from tsunagu.mail.send import journey_details
from tsunagu.qualification.crm import VerifiedRequest
from tsunagu.qualification.deals import CrmDeal, apply_crm_deal
from tsunagu.reports.rebuild_jobs import RebuildJob
from tsunagu.store.converters import EVENT_DAY_SHARDS
from tsunagu.tracking.mail_activity import LinkRequest, follow_link, record_open
from tsunagu.tracking.tokens import TokenKind, TrackingToken

JST = ZoneInfo("Asia/Tokyo")
D1, D2 = "2026-12-01", "2026-12-02"
SENT_D1 = datetime(2026, 12, 1, 9, 0, tzinfo=JST)
SENT_D2 = datetime(2026, 12, 2, 10, 0, tzinfo=JST)
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
APPLE_PROXY = "Mozilla/5.0"
PERSON_IP, APPLE_IP = "203.0.113.5", "17.58.0.1"
WELCOME_NURTURE = {"journey_id": "welcome_nurture", "journey_version": 2, "node": "welcome_mail"}
ADMIN = Actor(user_id="admin@example.com", role=Role.ADMIN, email="admin@example.com", via="api")


class History:
    """The leads, their mails and what they did, written through the product's functions."""

    def __init__(self, aws: AwsStack) -> None:
        self.aws = aws
        self.settings = aws.settings()
        self.clock = FixedClock(SENT_D1)
        self.signer = services.token_signer(self.settings)
        self.tracking = services.tracking_repository(self.settings)
        self.leads = {
            name: store_lead(aws, f"{name}@example.com").lead_id
            for name in ("a", "b", "c", "d", "e", "f")
        }
        # welcome_nurture's goal: a demo request (form demo-request)
        install_shipped_journeys(self.settings)
        self.sent_at: dict[str, datetime] = {}

    def at(self, instant: datetime) -> None:
        self.clock.instant = instant

    def send(
        self,
        lead: str,
        version: int,
        journey: dict[str, Any] | None = None,
        template: str = "welcome",
    ) -> str:
        """mail_sent as send_email stores it."""
        now = self.clock.now()
        message_id = f"msg_{lead}_v{version}" + ("" if template == "welcome" else f"_{template}")
        self.sent_at[message_id] = now
        details = {
            "message_id": message_id,
            "template_id": template,
            "template_version": version,
            "topic": "marketing",
            "mail_kind": "marketing",
            "idempotency_key": f"key-{message_id}",
            **journey_details(journey or {}),
        }
        event = LeadEvent(
            f"evt_sent_{message_id}", "mail_sent", isoformat(now), self.leads[lead], None, details
        )
        services.lead_repository(self.settings).put_event(event)
        return message_id

    def _token(self, kind: TokenKind, message_id: str, link: str | None = None) -> str:
        lead = message_id.split("_")[1]
        return self.signer.sign(
            TrackingToken(
                kind=kind,
                message_id=message_id,
                lead_id=self.leads[lead],
                sent_at=int(self.sent_at[message_id].timestamp()),
                url=f"https://www.example.com/{link}" if link else None,
                link_id=link,
                topic="marketing",
            )
        )

    def open(self, message_id: str, agent: str, ip: str) -> None:
        request = LinkRequest(
            self._token(TokenKind.OPEN, message_id), "GET", {"user-agent": agent}, ip
        )
        assert record_open(request, signer=self.signer, store=self.tracking, clock=self.clock)

    def click(self, message_id: str, link: str, agent: str = CHROME) -> None:
        request = LinkRequest(
            self._token(TokenKind.CLICK, message_id, link), "GET", {"user-agent": agent}, PERSON_IP
        )
        follow_link(request, signer=self.signer, store=self.tracking, clock=self.clock)

    def settle_clicks(self) -> None:
        """What settle_clicks' state machine does once the burst window has passed: mark every
        click still unsettled."""
        dynamodb = moto_client("dynamodb")
        table = self.settings.events_table
        for item in dynamodb.scan(TableName=table)["Items"]:
            if item["type"]["S"] == "link_clicked" and "settled" not in item["properties"]["M"]:
                dynamodb.update_item(
                    TableName=table,
                    Key={"subject": item["subject"], "sk": item["sk"]},
                    UpdateExpression="SET #p.#s = :t",
                    ExpressionAttributeNames={"#p": "properties", "#s": "settled"},
                    ExpressionAttributeValues={":t": {"BOOL": True}},
                )

    def unsubscribe(self, message_id: str) -> None:
        unsubscribe_one_click(
            self._token(TokenKind.UNSUBSCRIBE, message_id),
            PreferenceContext(PERSON_IP, CHROME),
            signer=self.signer,
            store=services.mail_repository(self.settings),
            clock=self.clock,
        )

    def ses(self, message_id: str, kind: str, **more: Any) -> None:
        lead = message_id.split("_")[1]
        notification = {
            "eventType": kind,
            "mail": {
                "messageId": f"ses-{message_id}",
                "destination": [f"{lead}@example.com"],
                "tags": {"lead_id": [self.leads[lead]], "message_id": [message_id]},
            },
            **more,
        }
        handle_ses_event(
            notification,
            store=services.mail_repository(self.settings),
            clock=self.clock,
            soft_bounce_limit=3,
        )

    def decide(self, lead: str, outcome: str) -> None:
        event = LeadEvent(
            f"dec_{lead}",
            "journey_decision",
            isoformat(self.clock.now()),
            self.leads[lead],
            None,
            {
                "journey_id": "welcome_nurture",
                "journey_version": 2,
                "node": "clicked",
                "kind": "branch",
                "outcome": outcome,
            },
        )
        services.lead_repository(self.settings).put_event(event)

    def deal(self, deal_id: str, leads: str, amount: str, status: str, at: datetime) -> None:
        """What the CRM's POST /crm/deals stores (the signature checked: crm_webhook's part)."""
        body = {
            "deal_id": deal_id,
            "amount": amount,
            "currency": "JPY",
            "status": status,
            "close_date": D2,
            "leads": [{"email": f"{lead}@example.com"} for lead in leads],
            "updated_at": isoformat(at),
        }
        request = VerifiedRequest(at, f"replay-{deal_id}-{status}", at + timedelta(minutes=5))
        apply_crm_deal(
            CrmDeal.model_validate(body),
            request,
            store=services.crm_repository(self.settings),
            now=self.clock.now(),
        )

    def form(
        self, lead: str, event_id: str, *, new: bool, form_id: str = "demo", **how: Any
    ) -> None:
        properties = {"form_id": form_id, "fields": how.get("fields", {}), "new_lead": new}
        properties["referrer"] = how.get("referrer")
        if "came_from" in how:  # as captures store it since 2026-12-06 (tsunagu.leads.history)
            properties["came_from"] = how["came_from"]
        event = LeadEvent(
            event_id, "form_submitted", isoformat(self.clock.now()), self.leads[lead], None,
            properties,
        )  # fmt: skip
        services.lead_repository(self.settings).put_event(event)


def deliver(aws: AwsStack, records: list[dict[str, Any]], batch: int = 100) -> None:
    for start in range(0, len(records), batch):
        answer = aws.function("report_events").invoke({"Records": records[start : start + batch]})
        assert answer == {"batchItemFailures": []}, answer


def make_history(aws: AwsStack) -> History:
    h = History(aws)
    # D1, 09:00: the welcome mail (v1) from welcome_nurture v2 to a, b, c and d
    h.at(SENT_D1)
    ma, mb, mc, md = (h.send(lead, 1, WELCOME_NURTURE) for lead in "abcd")
    h.form("a", "evt_form_1", new=True, fields={"utm_source": "newsletter"})
    # 09:30: Apple's privacy proxy fetches b's images (a machine: apple_privacy_proxy)
    h.at(SENT_D1 + timedelta(minutes=30))
    h.open(mb, APPLE_PROXY, APPLE_IP)
    # 10:00: a security gateway follows c's two links two seconds apart: the first click
    # looks like a person's until the second comes (then both are link_burst)
    h.at(SENT_D1 + timedelta(hours=1))
    h.click(mc, "pricing")
    h.at(SENT_D1 + timedelta(hours=1, seconds=2))
    h.click(mc, "case-study")
    # 11:00 and 12:00: a opens the mail twice; 12:05 a clicks (a person)
    h.at(SENT_D1 + timedelta(hours=2))
    h.open(ma, CHROME, PERSON_IP)
    h.at(SENT_D1 + timedelta(hours=3))
    h.open(ma, CHROME, PERSON_IP)
    h.at(SENT_D1 + timedelta(hours=3, minutes=5))
    h.click(ma, "pricing")
    # 13:00: d unsubscribes with one click; 20:00: b opens it in person
    h.at(SENT_D1 + timedelta(hours=4))
    h.unsubscribe(md)
    h.at(SENT_D1 + timedelta(hours=11))
    h.open(mb, CHROME, PERSON_IP)
    # The branch after the mail: a clicked, the others did not
    h.decide("a", "clicked")
    for lead in "bcd":
        h.decide(lead, "not_clicked")
    # D2, 09:30: a clicks again (a person: clicked, not again unique)
    h.at(datetime(2026, 12, 2, 9, 30, tzinfo=JST))
    h.click(ma, "pricing")
    # 10:00: v2 of the mail, outside any journey, to e and f; e's is delivered, f's bounces
    h.at(SENT_D2)
    me, mf = h.send("e", 2), h.send("f", 2)
    h.at(SENT_D2 + timedelta(minutes=1))
    h.ses(me, "Delivery")
    h.ses(mf, "Bounce", bounce={"bounceType": "Permanent", "bounceSubType": "General"})
    # e's form on the site's blog (the post's Referer: the site itself): e's browser had come
    # from a search engine, as the capture found in its history
    h.form(
        "e",
        "evt_form_2",
        new=False,
        referrer="https://www.example.jp/blog/ma",
        came_from="search.example.com",
    )
    # 10:30: b asks for a demo - welcome_nurture's goal, within 30 days of its welcome mail
    h.at(SENT_D2 + timedelta(minutes=30))
    h.form("b", "evt_form_3", new=False, form_id="demo-request")
    # 11:00: the seminar invitation (no journey) to a, who opens it at 11:10 (a person)
    h.at(SENT_D2 + timedelta(hours=1))
    invitation = h.send("a", 1, template="seminar-invitation")
    h.at(SENT_D2 + timedelta(hours=1, minutes=10))
    h.open(invitation, CHROME, PERSON_IP)
    # 18:00: the CRM reports four deals closed on D2: a's (won), the account of c and b (won;
    # c's mail was touched by machines only), d's (won, then lost after all) and e's (won; e
    # never opened a mail)
    h.at(SENT_D2 + timedelta(hours=8))
    h.deal("D-1", "a", "1000000", "won", h.clock.now())
    h.deal("D-2", "cb", "300001", "won", h.clock.now())
    h.deal("D-3", "d", "50000", "won", h.clock.now())
    h.deal("D-3", "d", "50000", "lost", h.clock.now() + timedelta(minutes=5))
    h.deal("D-4", "e", "70000", "won", h.clock.now())
    h.settle_clicks()
    return h


def counters(aws: AwsStack) -> dict[tuple[str, str, str], dict[str, int]]:
    """Every counter row: (subject, day, part) -> the metrics that are not 0."""
    repository = services.reports(aws.settings())
    found = {}
    subjects = ("mail#welcome", "mail#seminar-invitation", "journey#welcome_nurture", "form#demo")
    for subject in (*subjects, "form#demo-request", "deals"):
        for key, metrics in repository.rows(subject, D1, D2):
            found[(key.subject, key.day, key.part)] = {k: v for k, v in metrics.items() if v}
    return found


# Worked out by hand from make_history.
D1_WELCOME_V1 = {
    "sent": 4,
    # a twice, b once in person
    "opened_people": 3,
    "opened_people_unique": 2,
    # b's privacy proxy
    "opened_machines": 1,
    "opened_machines:apple_privacy_proxy": 1,
    # b (proxy) and c (the gateway's clicks imply an open)
    "opened_machines_unique": 2,
    "clicked_people": 1,
    "clicked_people_unique": 1,
    # c's two clicks: the first re-judged when the second came
    "clicked_machines": 2,
    "clicked_machines_unique": 1,
    "clicked_machines:link_burst": 2,
    "unsubscribed": 1,
}
EXPECTED = {
    ("mail#welcome", D1, "v1"): D1_WELCOME_V1,
    ("mail#welcome", D2, "v1"): {"clicked_people": 1},
    ("mail#welcome", D2, "v2"): {"sent": 2, "delivered": 1, "bounced_hard": 1},
    ("journey#welcome_nurture", D1, "v2#welcome_mail"): D1_WELCOME_V1,
    ("journey#welcome_nurture", D2, "v2#welcome_mail"): {"clicked_people": 1},
    ("journey#welcome_nurture", D1, "v2#clicked"): {
        "decided": 4,
        "outcome:clicked": 1,
        "outcome:not_clicked": 3,
    },
    ("form#demo", D1, "newsletter"): {"submitted": 1, "new_leads": 1},
    ("form#demo", D2, "search.example.com"): {"submitted": 1},
    # b's demo request: welcome_nurture's goal, a day after its first mail of the journey
    ("form#demo-request", D2, "direct"): {"submitted": 1},
    ("journey#welcome_nurture", D2, "v2"): {"converted": 1},
    ("mail#seminar-invitation", D2, "v1"): {
        "sent": 1,
        "opened_people": 1,
        "opened_people_unique": 1,
    },
}
DEALS = {
    # By the day they closed; D-3 won, then lost: its win taken back
    ("deals", D2, "JPY#D-1"): {"won": 1, "revenue_cents": 100_000_000},
    ("deals", D2, "JPY#D-2"): {"won": 1, "revenue_cents": 30_000_100},
    ("deals", D2, "JPY#D-3"): {"lost": 1},
    ("deals", D2, "JPY#D-4"): {"won": 1, "revenue_cents": 7_000_000},
}


def test_every_counter_matches_the_history_counted_by_hand_and_a_redelivery_changes_none(
    aws: AwsStack,
) -> None:
    make_history(aws)
    records = new_stream_records(aws, "EventsTable")
    # The first click of c's burst: stored as a person's, re-judged, then settled - three
    # records of one event, counted once (as a machine's) when its judgement became final
    burst_first = [r for r in records if "msg_c_v1" in str(r) and "pricing" in str(r)]
    assert [r["eventName"] for r in burst_first] == ["INSERT", "MODIFY", "MODIFY"]

    # When the stream delivers it in batches of 7, and then the first 30 records again
    deliver(aws, records, batch=7)
    deliver(aws, records[:30], batch=30)

    # Then every counter is the hand-counted figure, once
    assert counters(aws) == {**EXPECTED, **DEALS}


def test_the_reports_give_the_figures_and_rates_of_the_definitions(aws: AwsStack) -> None:
    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"))
    ports = services.report_commands(aws.settings())
    from tsunagu.commands import reports

    mail = reports.mail_report(ports, ADMIN, "welcome", date(2026, 12, 1), date(2026, 12, 2))
    shown = mail.as_dict()
    v2, v1 = shown["parts"]
    assert (v2["version"], v1["version"]) == (2, 1)
    # v1: 4 sent, none bounced; 2 mails opened and 1 clicked by people; 1 unsubscribed;
    # clicks: 2 people's (D1 and D2) and 2 machines'
    assert v1["rates"] == {
        "delivery_rate": 1.0,
        "bounce_rate": 0.0,
        "open_rate": 0.5,
        "click_rate": 0.25,
        "click_to_open_rate": 0.5,
        "unsubscribe_rate": 0.25,
        "complaint_rate": 0.0,
        "machine_click_share": 0.5,
    }
    assert v1["machines_by_reason"] == {
        "opened": {"apple_privacy_proxy": 1},
        "clicked": {"link_burst": 2},
    }
    # v2: 2 sent, 1 hard bounce: 1 not bounced, opened by no one
    assert v2["rates"]["delivery_rate"] == 0.5
    assert v2["rates"]["open_rate"] == 0.0
    assert v2["rates"]["click_to_open_rate"] is None  # nothing opened: no rate, not 0
    # The total: 6 sent, 5 not bounced, 2 opened by people
    assert shown["total"]["counts"]["sent"] == 6
    assert shown["total"]["rates"]["open_rate"] == 0.4

    journey = reports.journey_report(
        ports, ADMIN, "welcome_nurture", date(2026, 12, 1), date(2026, 12, 2)
    ).as_dict()
    nodes = {p.get("node"): p for p in journey["parts"]}
    assert nodes["clicked"]["outcomes"] == {"clicked": 1, "not_clicked": 3}
    # The version as a whole (no node): the leads that reached the journey's goal
    assert nodes[None]["counts"] == {"converted": 1}
    assert nodes["welcome_mail"]["counts"]["sent"] == 4
    assert nodes["welcome_mail"]["by_day"][D2] == {"clicked_people": 1}


def test_a_rebuild_gives_the_same_counters_and_counts_a_rejudged_click_as_it_now_stands(
    aws: AwsStack,
) -> None:
    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"))
    counted = counters(aws)
    ports = services.report_commands(aws.settings())
    from tsunagu.commands import reports

    # A rebuild of both days changes nothing (the deals' rows, by close day, are not its own)
    done = reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 2))
    assert counters(aws) == counted == {**EXPECTED, **DEALS}
    assert (done.rows, done.rows_removed) == (len(EXPECTED), len(EXPECTED))

    # When a's click of D2 is re-judged a machine's (a scanner's agent, found later), the
    # consumer leaves it (already counted) and a rebuild of D2 counts it as it now stands
    dynamodb = moto_client("dynamodb")
    table = aws.settings().events_table
    [click] = [
        i
        for i in dynamodb.scan(TableName=table)["Items"]
        if i["type"]["S"] == "link_clicked" and i["occurred_at"]["S"].startswith("2026-12-02")
    ]
    dynamodb.update_item(
        TableName=table,
        Key={"subject": click["subject"], "sk": click["sk"]},
        UpdateExpression="SET #p.#a = :t, #p.#r = :r",
        ExpressionAttributeNames={"#p": "properties", "#a": "automated", "#r": "reasons"},
        ExpressionAttributeValues={
            ":t": {"BOOL": True},
            ":r": {"L": [{"S": "scanner_user_agent"}]},
        },
    )
    deliver(aws, new_stream_records(aws, "EventsTable"))
    assert counters(aws) == {**EXPECTED, **DEALS}
    reports.rebuild(ports, ADMIN, date(2026, 12, 2), date(2026, 12, 2))
    machine_click = {
        "clicked_machines": 1,
        "clicked_machines_unique": 1,
        "clicked_machines:scanner_user_agent": 1,
        # a's mail had no machine activity before: the click implies one
        "opened_machines_unique": 1,
    }
    assert counters(aws) == {
        **EXPECTED,
        **DEALS,
        ("mail#welcome", D2, "v1"): machine_click,
        ("journey#welcome_nurture", D2, "v2#welcome_mail"): machine_click,
    }


def test_ses_notifications_sns_delivers_twice_are_counted_once(aws: AwsStack) -> None:
    from tsunagu.commands import reports

    # Given D2's mails to e and f; e's delivery and f's hard bounce each delivered twice by
    # SNS (at least once), the second time a few minutes later
    h = History(aws)
    h.at(SENT_D2)
    me, mf = h.send("e", 1), h.send("f", 1)
    bounce = {"bounceType": "Permanent", "bounceSubType": "General", "feedbackId": "fb-f-1"}
    for minutes in (1, 5):
        h.at(SENT_D2 + timedelta(minutes=minutes))
        h.ses(me, "Delivery", delivery={"timestamp": "2026-12-02T01:01:00.000Z"})
        h.ses(mf, "Bounce", bounce=bounce)

    # When the stream's records are counted
    deliver(aws, new_stream_records(aws, "EventsTable"))

    # Then one delivery and one hard bounce: half the mails delivered, not none or less
    assert counters(aws) == {
        ("mail#welcome", D2, "v1"): {"sent": 2, "delivered": 1, "bounced_hard": 1}
    }
    ports = services.report_commands(aws.settings())
    shown = reports.mail_report(ports, ADMIN, "welcome", date(2026, 12, 2), date(2026, 12, 2))
    assert shown.as_dict()["total"]["rates"]["delivery_rate"] == 0.5


def test_a_rate_whose_counts_come_from_different_days_stays_between_none_and_all(
    aws: AwsStack,
) -> None:
    from tsunagu.commands import reports

    # Given e's mail sent on D1 and f's on D2, both hard-bounced on D2, and e's opened by a
    # person on D2 (a mail client that fetched the images before the bounce came back)
    h = History(aws)
    h.at(SENT_D1)
    me = h.send("e", 1)
    h.at(SENT_D2)
    mf = h.send("f", 1)
    h.at(SENT_D2 + timedelta(minutes=1))
    h.open(me, CHROME, PERSON_IP)
    for message_id in (me, mf):
        h.ses(message_id, "Bounce", bounce={"bounceType": "Permanent", "feedbackId": message_id})
    deliver(aws, new_stream_records(aws, "EventsTable"))

    # When D2 alone is reported: 1 sent, 2 bounced, 1 opened
    ports = services.report_commands(aws.settings())
    shown = reports.mail_report(ports, ADMIN, "welcome", date(2026, 12, 2), date(2026, 12, 2))
    rates = shown.as_dict()["total"]["rates"]

    # Then no rate is below 0 or above 1, and one of mails not bounced (-1 of them) is none
    assert rates["delivery_rate"] == 0.0
    assert rates["bounce_rate"] == 1.0
    assert rates["open_rate"] is None
    assert rates["click_rate"] is None
    assert rates["click_to_open_rate"] == 0.0
    # And the CSV leaves it empty, and the CLI's table shows "-", as for a rate of nothing
    header, row = reports_csv_rows(shown)
    assert row[header.index("open_rate")] == "" and row[header.index("delivery_rate")] == "0.0"
    from tsunagu.cli_reports import report_table

    lines = report_table(shown).splitlines()
    [total] = [line.split() for line in lines if line.startswith("total")]
    assert total == ["total", "1", "2", "1", "-", "0", "-", "0", "0", "0", "0"]


def test_the_cli_table_of_a_journey_says_its_conversions_and_complaints(aws: AwsStack) -> None:
    from tsunagu.cli_reports import report_table
    from tsunagu.commands import reports

    # Given welcome_nurture's welcome mail to a and b on D1: a complains of it, b asks for a
    # demo on D2 (the journey's goal)
    h = History(aws)
    h.at(SENT_D1)
    ma, _ = h.send("a", 1, WELCOME_NURTURE), h.send("b", 1, WELCOME_NURTURE)
    h.ses(ma, "Complaint", complaint={"complaintFeedbackType": "abuse", "feedbackId": "fb-a"})
    h.at(SENT_D2)
    h.form("b", "evt_goal", new=False, form_id="demo-request")
    deliver(aws, new_stream_records(aws, "EventsTable"))

    # When the journey's report is printed as a table
    ports = services.report_commands(aws.settings())
    shown = reports.journey_report(
        ports, ADMIN, "welcome_nurture", date(2026, 12, 1), date(2026, 12, 2)
    )
    lines = report_table(shown).splitlines()

    # Then the node's row has its complaint, the version as a whole says its conversions in
    # words rather than as a row of mail figures all 0
    header = lines[1].split()
    [node] = [line.split() for line in lines if line.startswith("v2 welcome_mail")]
    assert node[2 + header.index("compl")] == "1" and node[2 + header.index("sent")] == "2"
    assert not [row for row in map(str.split, lines) if row[0] == "v2" and row[1].isdigit()]
    assert "v2 as a whole: 1 leads converted, 0 became MQLs" in lines
    assert "compl = complaints" in lines[-1]


def reports_csv_rows(report: Any) -> tuple[list[str], list[str]]:
    import csv
    import io

    from tsunagu.reports.figures import report_csv

    header, row = list(csv.reader(io.StringIO(report_csv(report))))
    return header, row


def totals(aws: AwsStack, subject: str, first: str, last: str) -> dict[str, int]:
    """The subject's counters summed over the days (parts and days together), those not 0."""
    summed: dict[str, int] = {}
    for _, metrics in services.reports(aws.settings()).rows(subject, first, last):
        for name, n in metrics.items():
            summed[name] = summed.get(name, 0) + n
    return {name: n for name, n in summed.items() if n}


def test_a_rebuild_of_earlier_days_keeps_the_firsts_a_mail_had_after_them(aws: AwsStack) -> None:
    from tsunagu.commands import reports

    # Given b's welcome mail from welcome_nurture on D1, first opened by b in person on D3,
    # and b's demo request (the journey's goal) on D3 too
    h = History(aws)
    h.at(SENT_D1)
    mb = h.send("b", 1, WELCOME_NURTURE)
    h.at(datetime(2026, 12, 3, 9, 0, tzinfo=JST))
    h.open(mb, CHROME, PERSON_IP)
    h.form("b", "evt_demo_1", new=False, form_id="demo-request")
    deliver(aws, new_stream_records(aws, "EventsTable"))

    # When an operator rebuilds D1..D2 (say, after re-judging a click of D2)
    ports = services.report_commands(aws.settings())
    reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 2))
    # (the mail keeps its person's touch of D3, as revenue attribution reads it)
    [kept] = services.reports(aws.settings()).counted([], [mb]).mails.values()
    assert kept.touched_at == "2026-12-03T00:00:00.000Z"
    # And on D4 b opens the mail again and asks for a demo again
    h.at(datetime(2026, 12, 4, 9, 0, tzinfo=JST))
    h.open(mb, CHROME, PERSON_IP)
    h.form("b", "evt_demo_2", new=False, form_id="demo-request")
    deliver(aws, new_stream_records(aws, "EventsTable"))

    # Then the mail is still opened by one person, and b converted once
    mail = totals(aws, "mail#welcome", D1, "2026-12-04")
    assert (mail["opened_people"], mail["opened_people_unique"]) == (2, 1)
    assert totals(aws, "journey#welcome_nurture", D1, "2026-12-04")["converted"] == 1


def test_a_report_of_a_range_that_ends_before_it_starts_is_refused(aws: AwsStack) -> None:
    from tsunagu.commands import reports
    from tsunagu.errors import ValidationFailed

    ports = services.report_commands(aws.settings())
    with pytest.raises(ValidationFailed, match="ends before it starts"):
        reports.mail_report(ports, ADMIN, "welcome", date(2026, 12, 2), date(2026, 12, 1))


def test_a_rebuild_at_the_end_of_the_calendar_is_refused_not_a_crash(aws: AwsStack) -> None:
    from tsunagu.commands import reports
    from tsunagu.errors import ValidationFailed

    ports = services.report_commands(aws.settings())
    with pytest.raises(ValidationFailed, match="from 2000-01-01 to 2999-12-31"):
        reports.rebuild(ports, ADMIN, date(9999, 12, 1), date(9999, 12, 31))


def test_a_rebuild_writes_the_days_new_rows_before_it_deletes_their_stale_ones(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.commands import reports

    # Given the days counted, and a row of D2 no event gives any more (counted under a part
    # the rebuild counts elsewhere: a rebuild cut short between its delete and the new row's
    # write would leave the day too few)
    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"))
    dynamodb = moto_client("dynamodb")
    table = aws.settings().reports_table
    dynamodb.put_item(
        TableName=table, Item={"pk": {"S": "mail#welcome"}, "sk": {"S": f"{D2}#v0"},
                               "sent": {"N": "2"}},
    )  # fmt: skip
    ports = services.report_commands(aws.settings())
    written: list[str] = []
    write = ports.counters._client.batch_write_item  # type: ignore[attr-defined]

    def recording(**asked: Any) -> Any:
        for request in asked["RequestItems"].get(table, ()):
            [(kind, what)] = request.items()
            if what.get("Item", what.get("Key"))["sk"]["S"].startswith(D2):  # a day's row
                written.append(kind)
        return write(**asked)

    monkeypatch.setattr(ports.counters._client, "batch_write_item", recording)  # type: ignore[attr-defined]

    # When D2 is rebuilt
    reports.rebuild(ports, ADMIN, date(2026, 12, 2), date(2026, 12, 2))

    # Then every new row was written before the stale one was deleted, and it is gone
    assert "DeleteRequest" in written and "PutRequest" in written
    assert written.index("DeleteRequest") > max(
        i for i, kind in enumerate(written) if kind == "PutRequest"
    ), written
    assert counters(aws) == {**EXPECTED, **DEALS}


def test_a_rebuild_through_the_admin_api_of_more_events_than_fit_its_time_is_refused(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from tests.support.admin import event
    from tsunagu.api import admin

    # Given the days counted, and an admin API that counts again at most 5 events (the days
    # hold more)
    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"))
    monkeypatch.setattr(admin, "API_REBUILD_EVENTS", 5)
    dynamodb = moto_client("dynamodb")
    table = aws.settings().reports_table
    dynamodb.delete_item(
        TableName=table, Key={"pk": {"S": "mail#welcome"}, "sk": {"S": f"{D2}#v2"}}
    )
    body = {"from": D1, "to": D2}

    # When a rebuild of the days is asked through the admin API
    asked = event("POST", "/admin/reports/rebuild", role=Role.ADMIN, body=body)
    response = admin.handle(asked, aws.settings())

    # Then it is refused, pointing to the CLI, and nothing is written (the row stays missing)
    assert response["statusCode"] == 422, response
    [problem] = json.loads(response["body"])["errors"]
    assert "tsunagu reports rebuild --from 2026-12-01 --to 2026-12-02" in problem["message"]
    assert ("mail#welcome", D2, "v2") not in counters(aws)
    # And with room for them, the days are counted again
    monkeypatch.setattr(admin, "API_REBUILD_EVENTS", 1_000)
    response = admin.handle(asked, aws.settings())
    assert response["statusCode"] == 200, response
    assert counters(aws) == {**EXPECTED, **DEALS}


def test_the_funnel_follows_the_leads_created_in_the_days_stage_by_stage(aws: AwsStack) -> None:
    from tsunagu.commands import reports

    settings = aws.settings()
    leads = services.lead_repository(settings)

    def event(event_id: str, kind: str, at: datetime, lead: str, **properties: Any) -> None:
        leads.put_event(LeadEvent(event_id, kind, isoformat(at), lead, None, properties))

    def stage(n: int, lead: str, to: str, at: datetime) -> None:
        event(f"evt_stage_{n}", "stage_changed", at, lead, **{"from": "?", "to": to})

    d1 = datetime(2026, 12, 1, 10, 0, tzinfo=JST)
    # Given two leads created by the demo form on D1 and one imported on D1 from a trade show
    for name in ("p", "q"):
        store_lead(aws, f"{name}@example.com", created_at=isoformat(d1), sources=["web_form"])
        event(f"evt_new_{name}", "form_submitted", d1, f"lead_{name}", form_id="demo",
              fields={}, new_lead=True)  # fmt: skip
    # (r has no record of its creation - imported before imports were counted: the funnel
    # reads it from the lead when it first moves; t and u were imported with the record)
    store_lead(aws, "r@example.com", created_at=isoformat(d1), sources=["trade_show"])
    for name in ("t", "u"):
        store_lead(aws, f"{name}@example.com", created_at=isoformat(d1), sources=["trade_show"])
        event(f"evt_new_{name}", "lead_imported", d1, f"lead_{name}", import_id="imp_1",
              file="展示会.csv", row=2, source="trade_show", new_lead=True)  # fmt: skip
    # (an import's update of a lead that existed is no new lead)
    event("evt_update_p", "lead_updated", d1, "lead_p", import_id="imp_1", file="展示会.csv",
          row=3, source="trade_show", new_lead=False)  # fmt: skip
    # And one who signed up for a seminar on D1 through the seminar's form (its channel)
    store_lead(aws, "s@example.com", created_at=isoformat(d1), sources=["seminar"])
    event("evt_new_s", "form_submitted", d1, "lead_s", form_id="seminar-2026-12",
          source="seminar", fields={}, new_lead=True)  # fmt: skip
    # When p becomes an MQL 2 days later and an SQL 3 days after that, q an MQL after 4 days
    # and back to lead and MQL again, the CRM makes r a customer on D1 + 10, u becomes an MQL
    # after 3 days and t never moves
    stage(1, "lead_p", "mql", d1 + timedelta(days=2))
    stage(2, "lead_p", "sql", d1 + timedelta(days=5))
    stage(3, "lead_q", "mql", d1 + timedelta(days=4))
    stage(4, "lead_q", "lead", d1 + timedelta(days=6))
    stage(5, "lead_q", "mql", d1 + timedelta(days=7))
    stage(6, "lead_r", "customer", d1 + timedelta(days=10))
    stage(7, "lead_u", "mql", d1 + timedelta(days=3))
    records = new_stream_records(aws, "EventsTable")
    deliver(aws, records, batch=4)
    deliver(aws, records, batch=100)  # redelivered: counts nothing more

    ports = services.report_commands(settings)
    shown = reports.funnel_report(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 1))
    by_channel = {g.name: [(s.reached, s.conversion, s.median_days) for s in g.stages]
                  for g in shown.groups}  # fmt: skip
    # Then (reached, conversion from the stage before, median days from it), stage by stage
    assert by_channel == {
        # p: mql after 2 days, sql after 3 more; q: mql after 4 days (once)
        "web_form": [(2, None, None), (2, 1.0, 3.0), (1, 0.5, 3.0), (0, 0.0, None),
                     (0, None, None)],
        # r: every stage passed at once on day 10 (mql after 10 days, the rest after 0); u:
        # mql after 3 days; t: a lead still, counted from its import
        "trade_show": [(3, None, None), (2, 0.6667, 6.5), (1, 0.5, 0.0), (1, 1.0, 0.0),
                       (1, 1.0, 0.0)],
        # s: a lead still
        "seminar": [(1, None, None), (0, 0.0, None), (0, None, None), (0, None, None),
                    (0, None, None)],
    }  # fmt: skip
    total = [(s.reached, s.conversion) for s in shown.total.stages]
    assert total == [(6, None), (4, 0.6667), (2, 0.5), (1, 0.5), (1, 1.0)]
    by_form = reports.funnel_report(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 1), "form")
    assert {g.name: g.stages[0].reached for g in by_form.groups} == {
        "demo": 2, "seminar-2026-12": 1, "-": 3,
    }  # fmt: skip


PRICED_V2 = {
    "$format": "tsunagu.journey/1",
    "journey_id": "welcome_nurture",
    "description": "The welcome mail, then a branch on its click (as make_history records it).",
    "start": "welcome_mail",
    "nodes": [
        {"id": "welcome_mail", "kind": "send", "label": "the welcome mail",
         "template": "welcome", "next": "clicked"},
        {"id": "clicked", "kind": "branch", "label": "the click",
         "cases": [{"outcome": "clicked", "when": "score>=10", "next": "done"}],
         "default": "done"},
        {"id": "done", "kind": "end", "label": "the end"},
    ],
}  # fmt: skip


def published_as_version_2(aws: AwsStack) -> Any:
    """The settings, with PRICED_V2 kept as welcome_nurture's version 2 (as publishing keeps
    each version's definition)."""
    from tsunagu.journeys.model import StoredGraph

    settings = aws.settings()
    graph = StoredGraph(
        "welcome_nurture", "v000002", PRICED_V2, "admin@example.com", isoformat(SENT_D1)
    )
    services.journey_repository(settings).save_graph(graph)
    return settings


def test_the_journey_report_prices_each_version_from_the_definition_it_was_published_with(
    aws: AwsStack,
) -> None:
    from tsunagu.commands import reports

    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"))
    ports = services.report_commands(published_as_version_2(aws))
    shown = reports.journey_report(
        ports, ADMIN, "welcome_nurture", date(2026, 12, 1), date(2026, 12, 2)
    ).as_dict()
    [v2] = shown["cost"]["versions"]
    # 4 leads: the send is gate, choice, send (3 transitions, 2 Lambda calls, 1 mail) each; the
    # branch is decide, choice (2, 1); the end 1 transition: 4 x 6 = 24 transitions, 4 x 3 = 12
    # invocations, 4 mails
    assert (v2["version"], v2["executions"], v2["transitions"]) == (2, 4, 24)
    assert (v2["invocations"], v2["mails"]) == (12, 4)
    # At list price: 24 x $0.000025 = $0.0006; 12 x ($0.0000002 + 0.5 GB x 0.1 s x
    # $0.0000133334) = 12 x $0.00000086667 = $0.0000104 -> $0.000010; 4 x $0.0001 = $0.0004
    assert v2["usd"] == {
        "step_functions": "0.000600",
        "lambda": "0.000010",
        "ses": "0.000400",
        "total": "0.001010",
    }
    assert shown["cost"]["total_usd"] == "0.001010"


def test_a_version_whose_definition_is_not_kept_is_said_to_be_unpriced(aws: AwsStack) -> None:
    from tsunagu.commands import reports

    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"))
    ports = services.report_commands(aws.settings())
    shown = reports.journey_report(
        ports, ADMIN, "welcome_nurture", date(2026, 12, 1), date(2026, 12, 2)
    ).as_dict()
    assert shown["cost"] == {"total_usd": None, "versions": [{"version": 2, "priced": False}]}


def test_won_deals_are_credited_to_the_mails_and_journeys_people_touched_by_each_model(
    aws: AwsStack,
) -> None:
    from tsunagu.commands import reports

    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"), batch=9)
    ports = services.report_commands(published_as_version_2(aws))
    found = reports.attribution_report(
        ports, ADMIN, date(2026, 12, 1), date(2026, 12, 2), 90, {"JPY": Decimal(150)}
    ).as_dict()

    # Three deals won on D2 (D-3 was lost after all): 1,000,000 + 300,001 + 70,000 yen
    assert (found["deals_won"], found["won"]) == (3, {"JPY": "1370001"})
    # e never opened a mail: its deal is unattributed, not spread over everything
    assert found["unattributed"] == {"deals": 1, "revenue": {"JPY": "70000"}}
    # D-1 (a): touched by the welcome mail (a opened it D1 11:00) and the seminar invitation
    # (opened D2 11:10): first touch to welcome, last to the invitation, linear half each.
    # D-2 (c and b): c's mail only machines touched; b opened its welcome mail in person at
    # D1 20:00 (the privacy proxy's open before it is not a touch): all of it to welcome.
    welcome = {
        "deals": 2,
        "touches": 2,
        "revenue": {
            "first_touch": {"JPY": "1300001"},
            "last_touch": {"JPY": "300001"},
            "linear": {"JPY": "800001"},
        },
    }
    assert found["mails"] == [
        {
            "template_id": "seminar-invitation",
            "deals": 1,
            "touches": 1,
            "revenue": {
                "first_touch": {},
                "last_touch": {"JPY": "1000000"},
                "linear": {"JPY": "500000"},
            },
        },
        {"template_id": "welcome", **welcome},
    ]
    [journey] = found["journeys"]
    assert {k: journey[k] for k in welcome} == welcome
    # By where each deal's primary lead first came from: a by the demo form (the newsletter's
    # link); c and e were never seen coming by a form
    assert found["sources"] == [
        {"channel": "unknown", "form": "-", "deals": 2, "revenue": {"JPY": "370001"}},
        {"channel": "web_form", "form": "demo", "deals": 1, "revenue": {"JPY": "1000000"}},
    ]
    # ROI: revenue in dollars (150 yen each) over the journey's cost, $0.001010 (see the
    # pricing test above): 800,001 / 150 / 0.001010 = 5,280,534.65 by the linear model
    assert journey["cost_usd"] == "0.001010"
    assert journey["roi"] == {
        "first_touch": "8580864.69",
        "last_touch": "1980204.62",
        "linear": "5280534.65",
    }


def test_a_report_of_something_that_does_not_exist_says_so_not_zeros(aws: AwsStack) -> None:
    from tsunagu.commands import reports
    from tsunagu.errors import NotFound

    install_shipped_journeys(aws.settings(), with_graphs=True)
    ports = services.report_commands(aws.settings())
    days = date(2026, 12, 1), date(2026, 12, 31)
    # A journey and a template that exist but counted nothing in the days: empty reports
    assert reports.journey_report(ports, ADMIN, "welcome_nurture", *days).parts == []
    save_template(aws)
    assert reports.mail_report(ports, ADMIN, "welcome", *days).parts == []
    # Typos: named as such, with where to look
    with pytest.raises(NotFound, match="no template 'welcom'"):
        reports.mail_report(ports, ADMIN, "welcom", *days)
    with pytest.raises(NotFound, match="no journey 'welcome_nuture'"):
        reports.journey_report(ports, ADMIN, "welcome_nuture", *days)
    with pytest.raises(NotFound, match="no journey 'welcome_nuture'"):
        reports.experiment_report(ports, ADMIN, "welcome_nuture", "subject_test", *days)
    unknown_split = "welcome_nurture has no split or holdout 'subject_test' (its experiments: none)"
    with pytest.raises(NotFound, match=re.escape(unknown_split)):
        reports.experiment_report(ports, ADMIN, "welcome_nurture", "subject_test", *days)


def test_taking_leads_out_of_the_funnel_reads_again_when_the_counters_write_meanwhile(
    aws: AwsStack,
) -> None:
    from tsunagu.commands import reports
    from tsunagu.store.reports import ReportsRepository

    settings = aws.settings()
    leads = services.lead_repository(settings)
    d1 = datetime(2026, 12, 1, 10, 0, tzinfo=JST)

    def imported(name: str) -> None:
        store_lead(aws, f"{name}@example.com", created_at=isoformat(d1), sources=["trade_show"])
        leads.put_event(
            LeadEvent(f"evt_new_{name}", "lead_imported", isoformat(d1), f"lead_{name}", None,
                      {"import_id": "imp_1", "source": "trade_show", "new_lead": True})
        )  # fmt: skip

    # Given p imported and counted, and q imported, its creation on the stream still
    imported("p")
    deliver(aws, new_stream_records(aws, "EventsTable"))
    imported("q")
    on_the_stream = new_stream_records(aws, "EventsTable")

    class CountersFirst:
        """The counters count q's creation between the withdrawal's read and its write."""

        def __init__(self, client: Any) -> None:
            self.client, self.met = client, 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self.client, name)

        def transact_write_items(self, **request: Any) -> Any:
            if not self.met:
                self.met += 1
                deliver(aws, on_the_stream)
            return self.client.transact_write_items(**request)

    pauses: list[float] = []
    funnel = ReportsRepository(
        CountersFirst(moto_client("dynamodb")),
        settings.reports_table or "",
        settings.events_table,
        settings.leads_table,
        pause=pauses.append,
    )
    # When both are taken out: the first write is refused (q's record appeared), read again
    assert funnel.withdraw_from_funnel(["lead_p", "lead_q"]) == 2
    assert len(pauses) == 1 and 0.05 <= pauses[0] <= 0.15
    # Then neither is in the funnel, and the counters' q counted once and taken back once
    shown = reports.funnel_report(services.report_commands(settings), ADMIN, d1.date(), d1.date())
    assert shown.groups == [] and shown.total.stages[0].reached == 0
    assert funnel.withdraw_from_funnel(["lead_p", "lead_q"]) == 0  # done already


def test_leads_of_two_days_go_out_in_transactions_of_the_set_size_and_a_losing_one_says_so(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    from tsunagu.commands import reports
    from tsunagu.errors import ConcurrentUpdate
    from tsunagu.store import reports as stored_reports
    from tsunagu.store.reports import ReportsRepository

    settings = aws.settings()
    leads = services.lead_repository(settings)
    d1 = datetime(2026, 12, 1, 10, 0, tzinfo=JST)
    d2 = d1 + timedelta(days=1)
    for name, day in (("v", d1), ("w", d1), ("x", d2)):
        store_lead(aws, f"{name}@example.com", created_at=isoformat(day), sources=["trade_show"])
        leads.put_event(
            LeadEvent(f"evt_new_{name}", "lead_imported", isoformat(day), f"lead_{name}", None,
                      {"import_id": "imp_1", "source": "trade_show", "new_lead": True})
        )  # fmt: skip
    deliver(aws, new_stream_records(aws, "EventsTable"))

    class Refusing:
        """Every transaction meets the counters (as if they were counting all along)."""

        def __init__(self, client: Any) -> None:
            self.client, self.asked = client, 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self.client, name)

        def transact_write_items(self, **request: Any) -> Any:
            self.asked += 1
            raise ClientError(
                {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                 "CancellationReasons": [{"Code": "TransactionConflict"}]},
                "TransactWriteItems",
            )  # fmt: skip

    def repository(client: Any, pauses: list[float]) -> ReportsRepository:
        return ReportsRepository(
            client, settings.reports_table or "", settings.events_table, settings.leads_table,
            pause=pauses.append,
        )  # fmt: skip

    # A transaction the counters keep beating is tried WITHDRAW_ATTEMPTS times, pausing between
    refusing, pauses = Refusing(moto_client("dynamodb")), []
    with pytest.raises(ConcurrentUpdate, match="undo the import again"):
        repository(refusing, pauses).withdraw_from_funnel(["lead_v", "lead_w", "lead_x"])
    assert refusing.asked == stored_reports.WITHDRAW_ATTEMPTS
    assert len(pauses) == stored_reports.WITHDRAW_ATTEMPTS - 1

    # Two leads a transaction: v and w (D1's row) in one, x (D2's) in the next
    monkeypatch.setattr(stored_reports, "WITHDRAWN_PER_TRANSACTION", 2)
    calls: list[int] = []
    dynamodb = moto_client("dynamodb")

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def transact_write_items(self, **request: Any) -> Any:
            calls.append(len(request["TransactItems"]))
            return dynamodb.transact_write_items(**request)

    assert repository(Counting(), []).withdraw_from_funnel(["lead_v", "lead_w", "lead_x"]) == 3
    assert calls == [3, 2]  # two puts and D1's row; one put and D2's row
    ports = services.report_commands(settings)
    shown = reports.funnel_report(ports, ADMIN, d1.date(), d2.date())
    assert shown.groups == []


# ----------------------------------------------------------------- rebuilds in the background
REBUILD_MACHINE = "arn:aws:states:ap-northeast-1:123456789012:stateMachine:tsunagu-test-rebuild"


def queue_rebuilds(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A stack with the rebuild state machine, whose executions are queued here (the test
    runs their steps as rebuild_reports.asl.json does, in the test's order)."""
    queued: list[str] = []
    aws.environment["TSUNAGU_REBUILD_STATE_MACHINE_ARN"] = REBUILD_MACHINE
    monkeypatch.setattr(
        services, "start_rebuild", lambda _settings, rebuild_id: queued.append(rebuild_id)
    )
    return queued


def queued_rebuild(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> tuple[ReportCommands, RebuildJob]:
    """The stack's ports and a rebuild of D1..D2 asked in the background over the history the
    stream has counted; its execution queued, no step run (queue_rebuilds)."""
    from tsunagu.commands import reports

    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"))
    queue_rebuilds(aws, monkeypatch)
    ports = services.report_commands(aws.settings())
    job = reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 2), background=True)
    assert isinstance(job, reports.RebuildJob)
    return ports, job


def run_rebuild(aws: AwsStack, rebuild_id: str, at_most: int = 10) -> list[dict[str, Any]]:
    """The state machine's loop: the day step until it answers done."""
    function = aws.function("rebuild_reports")
    answers: list[dict[str, Any]] = []
    while not answers or not answers[-1]["done"]:
        assert len(answers) < at_most, "a rebuild that never finishes"
        answers.append(function.invoke({"step": "day", "rebuild_id": rebuild_id}))
    return answers


def rebuild_asked(aws: AwsStack, role: Role = Role.ADMIN) -> dict[str, Any]:
    import json

    from tests.support.admin import event
    from tsunagu.api import admin

    body = {"from": D1, "to": D2}
    asked = event("POST", "/admin/reports/rebuild", role=role, body=body)
    response = admin.handle(asked, aws.settings())
    return {"status": response["statusCode"], "body": json.loads(response["body"])}


def rebuild_status(aws: AwsStack, rebuild_id: str, role: Role = Role.ADMIN) -> dict[str, Any]:
    import json

    from tests.support.admin import event
    from tsunagu.api import admin

    asked = event("GET", f"/admin/reports/rebuilds/{rebuild_id}", role=role)
    response = admin.handle(asked, aws.settings())
    return {"status": response["statusCode"], "body": json.loads(response["body"])}


def audit_details(aws: AwsStack, operation: str) -> list[str]:
    entries = services.audit_log(aws.settings()).entries(
        datetime(2000, 1, 1, tzinfo=JST), datetime(2100, 1, 1, tzinfo=JST), limit=50
    )
    return [e.detail or "" for e in reversed(entries) if e.operation == operation]


def test_a_rebuild_of_more_events_than_fit_the_api_s_time_is_a_job_counting_as_one_in_the_call(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.api import admin
    from tsunagu.commands import reports

    # Given the days counted, a row of D2 lost, and an admin API that counts at most 5 events
    # in its request (the days hold more), on a stack that rebuilds in the background
    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"))
    queued = queue_rebuilds(aws, monkeypatch)
    monkeypatch.setattr(admin, "API_REBUILD_EVENTS", 5)
    dynamodb = moto_client("dynamodb")
    table = aws.settings().reports_table
    dynamodb.delete_item(
        TableName=table, Key={"pk": {"S": "mail#welcome"}, "sk": {"S": f"{D2}#v2"}}
    )

    # When an admin asks for a rebuild of D1..D2 through the admin API
    answer = rebuild_asked(aws)

    # Then it is queued as a job at once (202), started once, and nothing is written yet
    assert answer["status"] == 202, answer
    job = answer["body"]
    assert (job["status"], job["days_done"], job["days_total"]) == ("queued", 0, 2), job
    assert queued == [job["rebuild_id"]]
    assert ("mail#welcome", D2, "v2") not in counters(aws)
    assert rebuild_status(aws, job["rebuild_id"])["body"]["status"] == "queued"

    # And when the state machine runs its steps, the job says how far it got, day by day
    answers = run_rebuild(aws, job["rebuild_id"])
    assert [(a["days_done"], a["done"]) for a in answers] == [(1, False), (2, True)]
    shown = rebuild_status(aws, job["rebuild_id"])
    assert shown["status"] == 200, shown
    progress = shown["body"]
    assert (progress["status"], progress["days_done"], progress["days_total"]) == ("done", 2, 2)

    # Then the days count as the hand-worked history (the lost row is back)...
    assert counters(aws) == {**EXPECTED, **DEALS}
    # ...and as a rebuild of the same days in the call counts them, event for event
    monkeypatch.setattr(admin, "API_REBUILD_EVENTS", 1_000)
    in_call = rebuild_asked(aws)
    assert in_call["status"] == 200, in_call
    assert counters(aws) == {**EXPECTED, **DEALS}
    for name in ("events", "counted", "rows"):
        assert progress[name] == in_call["body"][name], name
    assert progress["rows_replaced"] == in_call["body"]["rows_replaced"] - 1  # the lost row

    # And the audit log has who asked for it, queued, and its end under them
    details = audit_details(aws, "reports.rebuild")
    assert f"queued as {job['rebuild_id']}" in details[0]
    assert details[1].startswith(f"{job['rebuild_id']} done: {progress['events']} events read")
    entries = services.audit_log(aws.settings()).entries(
        datetime(2000, 1, 1, tzinfo=JST), datetime(2100, 1, 1, tzinfo=JST), limit=50
    )
    assert {e.actor.email for e in entries if e.operation == "reports.rebuild"} == {
        "marketer@example.com"
    }
    # (the command the CLI runs shows the same job)
    assert reports.rebuild_progress(
        services.report_commands(aws.settings()), ADMIN, job["rebuild_id"]
    ).as_json() == {**progress}


def test_a_rebuild_step_retried_after_failing_part_way_leaves_every_count_whole(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.store.reports import ReportsRepository
    from tsunagu_local.lambdas import FunctionError

    # Given the days counted, and a rebuild of D1..D2 queued in the background
    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"))
    queue_rebuilds(aws, monkeypatch)
    ports = services.report_commands(aws.settings())
    from tsunagu.commands import reports

    job = reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 2), background=True)
    assert not isinstance(job, reports.Rebuilt)
    function = aws.function("rebuild_reports")
    assert function.invoke({"step": "day", "rebuild_id": job.rebuild_id})["days_done"] == 1

    # When D2's step fails part-way - its rows written, its mails not, the job not stored -
    # (a throttled write, the function's time out)
    replace_mails = ReportsRepository.replace_mails

    def failing(self: ReportsRepository, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("throttled")

    with monkeypatch.context() as patch:
        patch.setattr(ReportsRepository, "replace_mails", failing)
        with pytest.raises(FunctionError):
            function.invoke({"step": "day", "rebuild_id": job.rebuild_id})
    assert ReportsRepository.replace_mails is replace_mails
    # (the job still has D2 to do)
    halfway = reports.rebuild_progress(ports, ADMIN, job.rebuild_id)
    assert (halfway.status, halfway.days_done) == ("running", 1)

    # And the state machine retries it
    assert function.invoke({"step": "day", "rebuild_id": job.rebuild_id})["done"] is True

    # Then the days count as the hand-worked history, and the job's totals add D2 once: as a
    # rebuild of the same days in one call counts them
    assert counters(aws) == {**EXPECTED, **DEALS}
    finished = reports.rebuild_progress(ports, ADMIN, job.rebuild_id)
    in_call = reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 2))
    assert isinstance(in_call, reports.Rebuilt)
    assert (finished.events, finished.counted, finished.rows, finished.rows_removed) == (
        in_call.events, in_call.counted, in_call.rows, in_call.rows_removed,
    )  # fmt: skip
    # And a step run again once the job is done changes nothing
    assert function.invoke({"step": "day", "rebuild_id": job.rebuild_id})["days_done"] == 2
    assert counters(aws) == {**EXPECTED, **DEALS}


def test_a_rebuild_whose_day_runs_out_of_retries_is_failed_saying_how_far_it_got(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:

    # Given a rebuild of D1..D2 in the background whose D1 was counted again
    _, job = queued_rebuild(aws, monkeypatch)
    function = aws.function("rebuild_reports")
    function.invoke({"step": "day", "rebuild_id": job.rebuild_id})

    # When D2's step runs out of retries (the state machine's Catch)
    error = {"Error": "RuntimeError", "Cause": "throttled"}
    function.invoke({"step": "failed", "rebuild_id": job.rebuild_id, "error": error})

    # Then the job is failed, saying why and how far it got, and the audit log says so
    shown = rebuild_status(aws, job.rebuild_id)["body"]
    assert (shown["status"], shown["done"], shown["days_done"]) == ("failed", True, 1), shown
    assert shown["error"] == "RuntimeError: throttled"
    assert "failed after 1 of 2 days" in audit_details(aws, "reports.rebuild")[-1]
    # And the counters are whole: D1 counted again, D2 as it was
    assert counters(aws) == {**EXPECTED, **DEALS}


def test_a_rebuild_unknown_or_asked_for_by_a_marketer_is_refused_and_nothing_queued(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.api import admin

    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"))
    queued = queue_rebuilds(aws, monkeypatch)
    monkeypatch.setattr(admin, "API_REBUILD_EVENTS", 5)

    # A rebuild no one queued, or no rebuild's id at all: 404
    for unknown in ("rebuild_01KBZZZZZZZZZZZZZZZZZZZZZZ", "nothing", "rebuild_" + "0" * 300):
        answer = rebuild_status(aws, unknown)
        assert answer["status"] == 404, answer
        assert "no rebuild" in answer["body"]["message"]
    # A marketer may neither rebuild nor follow a rebuild: 403, nothing queued or written
    refused = rebuild_asked(aws, Role.MARKETER)
    assert refused["status"] == 403, refused
    assert queued == []
    assert counters(aws) == {**EXPECTED, **DEALS}
    admin_job = rebuild_asked(aws)["body"]
    assert rebuild_status(aws, admin_job["rebuild_id"], Role.MARKETER)["status"] == 403
    assert rebuild_status(aws, admin_job["rebuild_id"], Role.VIEWER)["status"] == 403


def test_a_background_rebuild_gives_an_earlier_day_a_first_a_later_day_had_as_one_call_does(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.commands import reports

    # Given a's click of D1 once judged a machine's, the days rebuilt so (a's click of D2 is
    # then the first of a person's, unique on D2), and then judged a person's again
    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"))
    queue_rebuilds(aws, monkeypatch)
    ports = services.report_commands(aws.settings())
    dynamodb = moto_client("dynamodb")
    table = aws.settings().events_table
    [click] = [
        i
        for i in dynamodb.scan(TableName=table)["Items"]
        if i["type"]["S"] == "link_clicked"
        and i["occurred_at"]["S"].startswith("2026-12-01T03:05")  # 12:05 in Japan
    ]

    def judged(automated: bool) -> None:
        reasons = [{"S": "scanner_user_agent"}] if automated else []
        dynamodb.update_item(
            TableName=table,
            Key={"subject": click["subject"], "sk": click["sk"]},
            UpdateExpression="SET #p.#a = :a, #p.#r = :r",
            ExpressionAttributeNames={"#p": "properties", "#a": "automated", "#r": "reasons"},
            ExpressionAttributeValues={":a": {"BOOL": automated}, ":r": {"L": reasons}},
        )

    judged(automated=True)
    reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 2))
    assert counters(aws)[("mail#welcome", D2, "v1")]["clicked_people_unique"] == 1
    judged(automated=False)

    # When the days are rebuilt in the background, a day at a time
    job = reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 2), background=True)
    assert isinstance(job, reports.RebuildJob)
    run_rebuild(aws, job.rebuild_id)

    # Then a's click of D1 is the first again (D1 counts it unique, D2 does not), as a rebuild
    # of both days in one call counts it - not D1 counted with D2's first still standing
    assert counters(aws) == {**EXPECTED, **DEALS}
    reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 2))
    assert counters(aws) == {**EXPECTED, **DEALS}


def test_the_cli_queues_a_rebuild_in_the_background_and_shows_how_far_it_is(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from tsunagu.cli_reports import reports_rebuild
    from tsunagu.errors import ValidationFailed

    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"))
    queued = queue_rebuilds(aws, monkeypatch)

    def cli(**given: Any) -> int:
        asked = {"since": None, "to": None, "background": False, "status": None, "json": False}
        return reports_rebuild(aws.settings(), argparse.Namespace(**asked | given))

    # `tsunagu reports rebuild --from D1 --to D2 --background` queues it, saying how to follow
    assert cli(since=D1, to=D2, background=True) == 0
    [rebuild_id] = queued
    printed = capsys.readouterr().out
    assert f"{rebuild_id}  queued" in printed and "0 of 2 days" in printed, printed
    assert f"tsunagu reports rebuild --status {rebuild_id}" in printed
    # `--status` shows how far it is as the state machine goes
    run_rebuild(aws, rebuild_id)
    assert cli(status=rebuild_id) == 0
    printed = capsys.readouterr().out
    assert f"{rebuild_id}  done" in printed and "2 of 2 days" in printed, printed
    assert counters(aws) == {**EXPECTED, **DEALS}
    # Days and a rebuild to follow together, or neither, are refused saying what to give
    with pytest.raises(ValidationFailed, match="--status takes no --from"):
        cli(status=rebuild_id, since=D1)
    with pytest.raises(ValidationFailed, match="give the days"):
        cli(to=D2)


# ------------------------------------------------------------------- reading the days' events
def events_table_reads(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every Query and Scan of the events table from here on, as (operation, index or "")."""
    import botocore.client

    table = aws.settings().events_table
    reads: list[tuple[str, str]] = []
    make_api_call = botocore.client.BaseClient._make_api_call

    def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation in ("Query", "Scan") and params.get("TableName") == table:
            reads.append((operation, params.get("IndexName", "")))
        return make_api_call(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return reads


BY_DAY = ("Query", "events_by_day")
"""A Query of one key (one shard of a UTC day, EVENT_DAY_SHARDS a day) of the day index."""


def test_a_rebuild_reads_each_day_s_events_by_a_query_of_the_day_index_and_never_scans_them(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from tsunagu.commands import reports

    # Given the days counted, on a stack that has kept every event in the day index since
    # before them (upgraded in October)
    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"))
    queue_rebuilds(aws, monkeypatch)
    services.reports(aws.settings()).start_events_index("2026-11-01")
    ports = services.report_commands(aws.settings())
    reads = events_table_reads(aws, monkeypatch)

    # When D1..D2 are rebuilt in the call, a Query per shard of each UTC day their Japanese
    # days span (2026-11-30T15:00Z to 2026-12-02T14:59Z: three) and no Scan, counting as before
    reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 2))
    assert reads == [BY_DAY] * 3 * EVENT_DAY_SHARDS
    assert counters(aws) == {**EXPECTED, **DEALS}

    # And in the background, a day a step: two Queries a Japanese day, no Scan
    reads.clear()
    job = reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 2), background=True)
    assert isinstance(job, reports.RebuildJob)
    run_rebuild(aws, job.rebuild_id)
    assert reads == [BY_DAY] * 4 * EVENT_DAY_SHARDS
    assert counters(aws) == {**EXPECTED, **DEALS}

    # And where the account's days are UTC's, N days are N Queries
    reads.clear()
    reports.rebuild(replace(ports, time_zone="UTC"), ADMIN, date(2026, 12, 1), date(2026, 12, 2))
    assert reads == [BY_DAY] * 2 * EVENT_DAY_SHARDS


def test_events_stored_before_the_day_index_are_still_counted_their_days_read_by_a_scan(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.commands import reports

    # Given the days counted from events stored without their day (by the deploy before the
    # day index: not in it)
    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"))
    dynamodb = moto_client("dynamodb")
    table = aws.settings().events_table
    for item in dynamodb.scan(TableName=table)["Items"]:
        dynamodb.update_item(
            TableName=table,
            Key={"subject": item["subject"], "sk": item["sk"]},
            UpdateExpression="REMOVE occurred_day",
        )
    ports = services.report_commands(aws.settings())
    reads = events_table_reads(aws, monkeypatch)

    # When the days are rebuilt, the first rebuild since the upgrade
    reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 2))

    # Then their events are read by a Scan and counted as before
    assert reads == [("Scan", "")]
    assert counters(aws) == {**EXPECTED, **DEALS}
    # And the index is trusted only from a day after it (the day after tomorrow, UTC), so
    # these days are scanned on every rebuild, and their events never missed
    since = ports.counters.events_indexed_since()
    assert since is not None and since > isoformat(ports.clock.now())[:10], since
    reads.clear()
    reports.rebuild(ports, ADMIN, date(2026, 12, 2), date(2026, 12, 2))
    assert reads == [("Scan", "")]
    assert counters(aws) == {**EXPECTED, **DEALS}


def rebuild_machine(aws: AwsStack) -> Any:
    """A stack with the rebuild state machine, moto's (which runs no step of its executions:
    the test runs them); its Step Functions client."""
    import json

    aws.environment["TSUNAGU_REBUILD_STATE_MACHINE_ARN"] = REBUILD_MACHINE
    stepfunctions = moto_client("stepfunctions")
    stepfunctions.create_state_machine(
        name=REBUILD_MACHINE.rsplit(":", 1)[1],
        definition=json.dumps({"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/tsunagu-test-rebuild-reports",
    )
    return stepfunctions


def steps_not_stored(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the function logs of each rebuild step that stored nothing, from here on."""
    from tsunagu.observability import logger

    logged: list[dict[str, Any]] = []
    info = logger.info

    def recording(message: object, *args: Any, **kwargs: Any) -> None:
        if str(message).startswith("rebuild step not stored"):
            logged.append(dict(kwargs.get("extra") or {}))
        info(message, *args, **kwargs)

    monkeypatch.setattr(logger, "info", recording)
    return logged


def test_a_rebuild_whose_execution_is_stopped_by_hand_says_it_was_stopped_not_running(
    aws: AwsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from tsunagu.cli_reports import reports_rebuild
    from tsunagu.commands import reports
    from tsunagu.journeys.lifecycle import execution_arn

    # Given a rebuild of D1..D2 in the background, its execution started for real (moto's,
    # which runs no step: the test runs them), and D1 counted
    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"))
    stepfunctions = rebuild_machine(aws)
    ports = services.report_commands(aws.settings())
    job = reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 2), background=True)
    assert isinstance(job, reports.RebuildJob)
    function = aws.function("rebuild_reports")
    function.invoke({"step": "day", "rebuild_id": job.rebuild_id})
    assert rebuild_status(aws, job.rebuild_id)["body"]["status"] == "running"

    # When an operator stops its execution by hand (no step of its own runs after that)
    stepfunctions.stop_execution(executionArn=execution_arn(REBUILD_MACHINE, job.rebuild_id))

    # Then its progress says it was stopped, after how many days and what to do, for good
    shown = rebuild_status(aws, job.rebuild_id)["body"]
    assert (shown["status"], shown["done"], shown["days_done"]) == ("stopped", True, 1), shown
    assert shown["error"] == (
        "its execution was stopped by hand (ABORTED) after 1 of 2 days:"
        " rebuild the days from 2026-12-02 again"
    )
    assert shown["finished_at"] is not None
    assert rebuild_status(aws, job.rebuild_id)["body"] == shown
    # And the audit log says so under whoever asked, once
    ended = [d for d in audit_details(aws, "reports.rebuild") if "stopped" in d]
    assert len(ended) == 1 and ended[0].startswith(f"{job.rebuild_id} stopped"), ended
    # And the CLI shows it stopped, exiting 1
    asked = {"since": None, "to": None, "background": False, "status": job.rebuild_id}
    assert reports_rebuild(aws.settings(), argparse.Namespace(**asked, json=False)) == 1
    assert f"{job.rebuild_id}  stopped" in capsys.readouterr().out
    # And D1 stands counted again, D2 as it was
    assert counters(aws) == {**EXPECTED, **DEALS}


def test_a_step_still_counting_when_its_rebuild_was_stopped_leaves_it_stopped_logged_once(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.commands import reports
    from tsunagu.journeys.lifecycle import execution_arn
    from tsunagu.reports import counters as counting

    # Given a rebuild of D1..D3 in the background, its execution started (moto's), D1 counted
    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"))
    stepfunctions = rebuild_machine(aws)
    ports = services.report_commands(aws.settings())
    job = reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 3), background=True)
    assert isinstance(job, reports.RebuildJob)
    function = aws.function("rebuild_reports")
    function.invoke({"step": "day", "rebuild_id": job.rebuild_id})
    not_stored = steps_not_stored(monkeypatch)

    # When the operator stops its execution while the step of D2 is counting it, and someone
    # follows the rebuild then (its progress reads the stop from Step Functions and stores it)
    followed: list[dict[str, Any]] = []
    count_again = counting.rebuild

    def stopped_meanwhile(*args: Any, **kwargs: Any) -> Any:
        counted = count_again(*args, **kwargs)
        stepfunctions.stop_execution(executionArn=execution_arn(REBUILD_MACHINE, job.rebuild_id))
        followed.append(rebuild_status(aws, job.rebuild_id)["body"])
        return counted

    monkeypatch.setattr(counting, "rebuild", stopped_meanwhile)
    answer = function.invoke({"step": "day", "rebuild_id": job.rebuild_id})

    # Then the step ends without an error (which the state machine would retry), answering
    # the job as the stop left it, and says once in its log that it stored nothing
    assert answer == {"done": True, "days_done": 1, "days_total": 3}
    assert [(n["day"], n["status"]) for n in not_stored] == [("2026-12-02", "stopped")]
    # And the job stays stopped after 1 of 3 days, as it read while the step ran
    [stopped] = followed
    assert (stopped["status"], stopped["days_done"]) == ("stopped", 1), stopped
    assert rebuild_status(aws, job.rebuild_id)["body"] == stopped
    assert rebuild_status(aws, job.rebuild_id)["body"] == stopped
    # And the stop is in the audit log once, the rebuild's end nowhere else
    ended = [d for d in audit_details(aws, "reports.rebuild") if d.startswith(job.rebuild_id)]
    assert len(ended) == 1 and ended[0].startswith(f"{job.rebuild_id} stopped"), ended
    # And D2's counter rows are as the step counted them again (what a stop leaves of the day
    # it was on: old or new), every day before it counted again
    assert counters(aws) == {**EXPECTED, **DEALS}


def test_a_step_run_twice_leaves_the_newer_step_s_days_and_the_end_logged_once(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.commands import reports
    from tsunagu.reports import counters as counting

    # Given a rebuild of D1..D2 in the background, queued
    make_history(aws)
    deliver(aws, new_stream_records(aws, "EventsTable"))
    queue_rebuilds(aws, monkeypatch)
    ports = services.report_commands(aws.settings())
    in_call = reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 2))
    assert isinstance(in_call, reports.Rebuilt)
    job = reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 2), background=True)
    assert isinstance(job, reports.RebuildJob)
    not_stored = steps_not_stored(monkeypatch)

    # When its first step is still counting D1 as Step Functions runs the step again (a
    # Lambda error retried while the first invocation went on), and the run goes on to the end
    function = aws.function("rebuild_reports")
    count_again = counting.rebuild
    retried: list[list[dict[str, Any]]] = []

    def outrun(*args: Any, **kwargs: Any) -> Any:
        counted = count_again(*args, **kwargs)
        if not retried:
            retried.append([])  # before the run: its steps count as the first step did
            retried[0].extend(run_rebuild(aws, job.rebuild_id))
        return counted

    monkeypatch.setattr(counting, "rebuild", outrun)
    late = function.invoke({"step": "day", "rebuild_id": job.rebuild_id})

    # Then the run finished: both days counted, done
    assert retried == [
        [
            {"done": False, "days_done": 1, "days_total": 2},
            {"done": True, "days_done": 2, "days_total": 2},
        ]
    ]
    # And the late step stores nothing over it, answering it done, said once in its log
    assert late == {"done": True, "days_done": 2, "days_total": 2}
    assert [(n["day"], n["status"]) for n in not_stored] == [("2026-12-01", "done")]
    shown = rebuild_status(aws, job.rebuild_id)["body"]
    assert (shown["status"], shown["days_done"], shown["error"]) == ("done", 2, None), shown
    # And each day is in its totals once, as a rebuild of both days in one call counts them
    assert (shown["events"], shown["counted"]) == (in_call.events, in_call.counted)
    assert counters(aws) == {**EXPECTED, **DEALS}
    # And its end is in the audit log once
    ended = [d for d in audit_details(aws, "reports.rebuild") if d.startswith(job.rebuild_id)]
    done = f"{job.rebuild_id} done: {in_call.events} events"
    assert len(ended) == 1 and ended[0].startswith(done), ended


def test_two_people_following_a_stopped_rebuild_at_once_record_its_stop_once(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from tsunagu.commands import reports

    # Given a rebuild of D1..D2 in the background, D1 counted, whose execution was stopped
    ports, job = queued_rebuild(aws, monkeypatch)
    aws.function("rebuild_reports").invoke({"step": "day", "rebuild_id": job.rebuild_id})
    other: list[reports.RebuildJob] = []
    theirs = replace(ports, rebuild_execution=lambda _rebuild_id: "ABORTED")

    def aborted(rebuild_id: str) -> str:
        # The other person's read stores the stop while this one asks Step Functions
        other.append(reports.rebuild_progress(theirs, ADMIN, rebuild_id))
        return "ABORTED"

    # When both read how far it is
    shown = reports.rebuild_progress(
        replace(ports, rebuild_execution=aborted), ADMIN, job.rebuild_id
    )

    # Then both read it stopped after D1, as the first to store it did, and the stop is logged
    # once
    assert (shown.status, shown.days_done) == ("stopped", 1), shown
    assert other == [shown]
    ended = [d for d in audit_details(aws, "reports.rebuild") if d.startswith(job.rebuild_id)]
    assert len(ended) == 1 and ended[0].startswith(f"{job.rebuild_id} stopped"), ended


def test_a_rebuild_job_is_saved_only_over_the_revision_it_was_read_at(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from tsunagu.commands import reports
    from tsunagu.errors import ConcurrentUpdate

    queue_rebuilds(aws, monkeypatch)
    ports = services.report_commands(aws.settings())
    store = ports.counters
    job = reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 2), background=True)
    assert isinstance(job, reports.RebuildJob) and job.revision == 1

    # A save over the revision read is stored, and answers the next revision
    read = store.rebuild_job(job.rebuild_id)
    assert read == job
    saved = store.save_rebuild_job(replace_status(read, "running"))
    assert saved.revision == 2 and store.rebuild_job(job.rebuild_id) == saved
    # One over an older revision is refused, leaving the job as it was
    with pytest.raises(ConcurrentUpdate, match="saved since revision 1"):
        store.save_rebuild_job(replace_status(read, "failed"))
    assert store.rebuild_job(job.rebuild_id) == saved
    # A job never stored is stored only if none has its id
    with pytest.raises(ConcurrentUpdate):
        store.save_rebuild_job(replace_status(read, "queued", revision=None))

    # A job stored before saves were counted (no revision) reads as revision 0, saved over once
    dynamodb = moto_client("dynamodb")
    key = {"pk": {"S": f"rebuild#{job.rebuild_id}"}, "sk": {"S": "-"}}
    dynamodb.put_item(
        TableName=aws.settings().reports_table,
        Item=key | {"job": {"S": json.dumps(job.record())}},
    )
    old = store.rebuild_job(job.rebuild_id)
    assert old is not None and old.revision == 0
    assert store.save_rebuild_job(replace_status(old, "running")).revision == 1
    with pytest.raises(ConcurrentUpdate):
        store.save_rebuild_job(replace_status(old, "stopped"))


def replace_status(job: Any, status: str, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(job, status=status, **changes)


def test_a_rebuild_whose_execution_failed_without_recording_it_says_it_failed(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from tsunagu.commands import reports

    # Given a rebuild of D1..D2 in the background, D1 counted, whose execution then failed with
    # its step recording the failure out of retries (Step Functions says FAILED, the job
    # still says running)
    ports, job = queued_rebuild(aws, monkeypatch)
    aws.function("rebuild_reports").invoke({"step": "day", "rebuild_id": job.rebuild_id})
    asked: list[str] = []

    def failed(rebuild_id: str) -> str:
        asked.append(rebuild_id)
        return "FAILED"

    ports = replace(ports, rebuild_execution=failed)

    # When someone follows it
    shown = reports.rebuild_progress(ports, ADMIN, job.rebuild_id)

    # Then it reads as failed, after how many days and from which day to rebuild, for good
    assert asked == [job.rebuild_id]
    assert (shown.status, shown.done, shown.days_done) == ("failed", True, 1), shown
    assert shown.error == (
        "its execution failed (FAILED) after 1 of 2 days: rebuild the days from 2026-12-02 again"
    )
    assert reports.rebuild_progress(ports, ADMIN, job.rebuild_id) == shown
    assert asked == [job.rebuild_id]
    ended = [d for d in audit_details(aws, "reports.rebuild") if "failed" in d]
    assert len(ended) == 1 and ended[0].startswith(f"{job.rebuild_id} failed"), ended
