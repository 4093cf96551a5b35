"""Counting a batch of the events stream: transactions within DynamoDB's 100 items, a lost race
read again, nothing counted twice."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.support.reports import MemoryCounters
from tsunagu.reports.counters import count_batch
from tsunagu.reports.counting import CountedMail, CounterKey

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
