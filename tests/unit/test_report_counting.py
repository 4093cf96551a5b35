"""Counting a batch of the events stream: transactions within DynamoDB's 100 items, a lost race
read again, nothing counted twice."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.support.reports import MemoryCounters
from tsunagu.reports.counters import count_batch
from tsunagu.reports.counting import CountedMail, CounterKey, form_source

JST = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)


def submitted(i: int, source: str) -> dict[str, Any]:
    return {
        "event_id": f"evt_{i}",
        "type": "form_submitted",
        "occurred_at": "2026-12-04T01:00:00.000Z",
        "lead_id": f"lead_{i}",
        # An existing lead's submission: a form row only (a new lead's would start its funnel)
        "properties": {"form_id": "demo", "fields": {"utm_source": source}, "new_lead": False},
    }


def test_a_batch_that_needs_more_than_100_items_is_written_in_several_transactions() -> None:
    # 120 submissions from 120 sources: a mark and a counter row each, 240 items
    store = MemoryCounters()
    done = count_batch(
        [submitted(i, f"source-{i}") for i in range(120)], store=store, time_zone=JST, now=NOW
    )
    assert (done.counted, done.already) == (120, 0)
    assert store.transactions == [100, 100, 40]
    assert all(row == {"submitted": 1} for row in store.rows_by_key.values())
    assert len(store.rows_by_key) == 120


def test_increments_to_one_row_are_added_up_before_they_are_written() -> None:
    store = MemoryCounters()
    done = count_batch(
        [submitted(i, "newsletter") for i in range(90)], store=store, time_zone=JST, now=NOW
    )
    # 90 marks and one counter row: one transaction of 91 items
    assert done.transactions == 1 and store.transactions == [91]
    assert store.rows_by_key == {
        CounterKey("form#demo", "2026-12-04", "newsletter"): {"submitted": 90}
    }


def test_a_lost_race_is_read_again_and_counts_once() -> None:
    store = MemoryCounters(conflicts=2)
    images = [submitted(i, "newsletter") for i in range(3)]
    count_batch(images, store=store, time_zone=JST, now=NOW)
    # And the same batch delivered again counts nothing
    again = count_batch(images, store=store, time_zone=JST, now=NOW)
    assert (again.counted, again.already) == (0, 3)
    assert store.rows_by_key[CounterKey("form#demo", "2026-12-04", "newsletter")]["submitted"] == 3


def test_a_click_still_held_counts_nothing_until_it_settles() -> None:
    store = MemoryCounters()
    store.mails["msg_1"] = CountedMail("msg_1", "lead_1", "welcome", 1, "2026-12-04")
    click = {
        "event_id": "evt_click",
        "type": "link_clicked",
        "occurred_at": "2026-12-04T02:00:00.000Z",
        "lead_id": "lead_1",
        "properties": {"message_id": "msg_1", "automated": False, "reasons": []},
    }
    assert count_batch([click], store=store, time_zone=JST, now=NOW).counted == 0
    settled = {**click, "properties": {**click["properties"], "settled": True}}
    assert count_batch([click, settled], store=store, time_zone=JST, now=NOW).counted == 1
    assert store.rows_by_key[CounterKey("mail#welcome", "2026-12-04", "v1")] == {
        "clicked_people": 1,
        "clicked_people_unique": 1,
        "opened_people_unique": 1,
    }


def test_a_journey_counts_the_mqls_its_leads_became_within_its_window_once_each() -> None:
    from tsunagu.reports.counting import JourneyGoal

    def image(event_id: str, kind: str, at: str, lead: str, **props: Any) -> dict[str, Any]:
        return {"event_id": event_id, "type": kind, "occurred_at": at, "lead_id": lead,
                "properties": props}  # fmt: skip

    sent = {"template_id": "welcome", "template_version": 1, "journey_id": "nurture",
            "journey_version": 2, "node": "welcome_mail"}  # fmt: skip
    history = [
        # a and b get the journey's first mail on 1 December
        image("s_a", "mail_sent", "2026-12-01T00:00:00.000Z", "lead_a", message_id="m_a", **sent),
        image("s_b", "mail_sent", "2026-12-01T00:00:00.000Z", "lead_b", message_id="m_b", **sent),
        # a becomes an MQL on the 3rd (and again, after falling back, on the 5th: once);
        # b only after the journey's 30 days; c was never in the journey
        image("q_a1", "stage_changed", "2026-12-03T00:00:00.000Z", "lead_a", to="mql"),
        image("q_a2", "stage_changed", "2026-12-05T00:00:00.000Z", "lead_a", to="mql"),
        image("q_b", "stage_changed", "2027-01-05T00:00:00.000Z", "lead_b", to="mql"),
        image("q_c", "stage_changed", "2026-12-03T00:00:00.000Z", "lead_c", to="mql"),
    ]
    store = MemoryCounters()
    # A journey with no goal: it converts nobody, and still counts its MQLs
    goals = {"nurture": JourneyGoal("nurture", [], 30)}
    count_batch(history, store=store, time_zone=JST, now=NOW, goals=goals)
    version_rows = {
        key.day: metrics for key, metrics in store.rows_by_key.items()
        if key.subject == "journey#nurture" and key.part == "v2"
    }  # fmt: skip
    assert version_rows == {"2026-12-03": {"mql": 1}}


def test_the_funnel_as_csv_is_one_row_per_group_and_stage_the_total_last() -> None:
    from tsunagu.reports.funnel import FunnelGroup, FunnelReport, Stage, funnel_csv

    stages = [Stage("lead", 10, None, None), Stage("mql", 4, 0.4, 3.0)]
    found = FunnelReport(
        "2026-12-01", "2026-12-31", "channel", FunnelGroup("total", stages),
        [FunnelGroup("=web_form", stages)],
    )  # fmt: skip
    lines = funnel_csv(found).splitlines()
    assert lines[0] == "by,group,stage,reached,conversion,median_days,from,to"
    # a group name a spreadsheet would run as a formula is written as text
    assert lines[1] == "channel,'=web_form,lead,10,,,2026-12-01,2026-12-31"
    assert lines[4] == "channel,total,mql,4,0.4,3.0,2026-12-01,2026-12-31"


def test_a_machines_event_converts_nobody() -> None:
    from tests.unit.journey_fixtures import journey
    from tsunagu.journeys.model import ExitConditions
    from tsunagu.journeys.waits import EventMatch
    from tsunagu.reports.counting import StoredEvent, goals_of

    pricing = journey(
        exit=ExitConditions(goals=[EventMatch(type="page_view", url_contains="/pricing")])
    )
    goal = goals_of([pricing])[pricing.journey_id]

    def view(**props: Any) -> StoredEvent:
        return StoredEvent.from_image({
            "event_id": "e1", "type": "page_view", "occurred_at": "2026-12-01T00:00:00.000Z",
            "lead_id": "lead_1", "properties": {"url": "https://www.example.com/pricing", **props},
        })  # fmt: skip

    assert goal.reached_by(view())
    assert not goal.reached_by(view(automated=True, reasons=["scanner_user_agent"]))


def test_withdrawing_a_lead_takes_back_exactly_what_counting_it_added() -> None:
    # An import's lead counted from its import, then moved on (mql after 3 days, sql skipped
    # to customer 40 days later): the withdrawal (an undo) adds up with all that to nothing
    from collections import Counter

    from tsunagu.reports.counting import StoredEvent, count, withdrawal

    def stored(n: int, kind: str, at: str, **properties: Any) -> StoredEvent:
        return StoredEvent(f"evt_{n}", kind, at, "lead_1", properties)

    history = [
        stored(1, "lead_imported", "2026-12-01T01:00:00Z", source="trade_show", new_lead=True),
        stored(2, "stage_changed", "2026-12-04T01:00:00Z", to="mql"),
        stored(3, "stage_changed", "2027-01-13T01:00:00Z", to="customer"),
    ]
    total: Counter[str] = Counter()
    funnel = None
    for event in history:
        counted = count(event, None, JST, funnel=funnel)
        assert counted is not None and counted.funnel is not None
        [(key, metrics)] = counted.increments.items()
        assert key == CounterKey("funnel", "2026-12-01", "trade_show#-")
        total.update(metrics)
        funnel = counted.funnel
    assert funnel is not None
    assert total["reached:customer"] == 1 and total["days_to:sql:40"] == 1
    total.update(withdrawal(funnel))
    assert {name: n for name, n in total.items() if n} == {}


def test_nothing_counts_for_a_lead_taken_back_out_of_the_funnel() -> None:
    # Its creation reaching the counters only now, or a stage change already on its way when
    # its import was undone (a score rule on lead_imported made it an MQL)
    from tsunagu.reports.counting import FunnelLead, StoredEvent, count, withdrawn

    counted = FunnelLead("lead_1", "2026-12-01", "trade_show", reached={"lead": "2026-12-01"})
    for funnel in (withdrawn("lead_1", None), withdrawn("lead_1", counted)):
        for event in (
            StoredEvent("evt_1", "lead_imported", "2026-12-01T01:00:00Z", "lead_1",
                        {"source": "trade_show", "new_lead": True}),
            StoredEvent("evt_2", "stage_changed", "2026-12-02T01:00:00Z", "lead_1",
                        {"to": "mql"}),
            StoredEvent("evt_3", "stage_changed", "2026-12-02T01:00:00Z", "lead_1",
                        {"to": "lead"}),
        ):  # fmt: skip
            assert count(event, None, JST, funnel=funnel) is None


def test_a_submissions_source_is_its_forms_utm_else_where_the_capture_found_it_came_from() -> None:
    site = "https://www.example.jp/"  # the post's Referer: the page the form sits on
    fields = {"email": "a@example.jp"}
    assert form_source({"fields": {**fields, "utm_source": "mail"}, "came_from": "google"}) == (
        "mail"
    )
    assert form_source({"fields": fields, "referrer": site, "came_from": "google"}) == "google"
    assert form_source({"fields": fields, "referrer": site, "came_from": "direct"}) == "direct"
    # A submission stored before captures said where it came from: its post's Referer is the
    # page the form sits on, the company's own site, which is never a source
    assert form_source({"fields": fields, "referrer": site}) == "direct"
    assert form_source({"fields": fields}) == "direct"
