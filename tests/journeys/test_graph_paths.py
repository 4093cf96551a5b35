"""Journey shapes the validator accepts, run as published: a loop back to a mail, a mail of one
day reached two ways, and a pause over steps that are no mail (tag the lead, tell its owner).

Each journey is published on one local runtime on virtual time, a lead entered with the CLI,
and the clock moved; the tests read the executions, the mails and the lead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.journeys.harness import CHROME, JST, Runtime, import_lead, jst, sent_mails
from tsunagu import services
from tsunagu_local.seed import seed_qualification

MONDAY_MORNING = jst(2026, 12, 7, 9)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    started = Runtime.launch(
        "graph_paths",
        tmp_path_factory.mktemp("graph_paths"),
        clock_start=MONDAY_MORNING.isoformat(),
        options=("--no-demo",),
    )
    try:
        started.wait_ready()
        started.cli_ok("journeys", "install", "--site-url", "https://www.example.com")
        # The demo's sales team takes leads in turn (--no-demo left the owner rules out)
        seed_qualification(services.qualification_repository(started.settings))
        yield started
    finally:
        started.stop()


def publish(runtime: Runtime, definition: dict[str, Any]) -> None:
    path = runtime.workdir / f"{definition['journey_id']}.json"
    path.write_text(json.dumps(definition, ensure_ascii=False), encoding="utf-8")
    runtime.cli_ok("journeys", "publish", str(path))


def enter(runtime: Runtime, email: str, journey_id: str) -> str:
    output = runtime.cli_ok("journeys", "start", journey_id, "--lead", email)
    [arn] = [word.strip("()") for word in output.split() if word.startswith("(arn:")]
    return arn


# ---------------------------------------------------------------- a loop back to a mail
LOOP = {
    "$format": "tsunagu.journey/1",
    "journey_id": "reminder_loop",
    "description": "A reminder every other business day until the lead clicks it.",
    "start": "reminder",
    "nodes": [
        {"id": "reminder", "kind": "send", "label": "the reminder",
         "template": "welcome-getting-started", "next": "clicked"},
        {"id": "clicked", "kind": "wait_for", "label": "a click on the reminder",
         "events": [{"type": "link_clicked", "of_mail": "reminder", "outcome": "clicked"}],
         "within_seconds": 86400,
         "exits": [{"outcome": "clicked", "next": "done"}], "timed_out": "again"},
        {"id": "again", "kind": "wait", "label": "the next reminder",
         "rule": {"kind": "next_business_day", "at": "10:00"}, "next": "reminder"},
        {"id": "done", "kind": "end", "label": "The lead clicked"},
    ],
}  # fmt: skip


def test_a_loop_back_to_a_mail_sends_it_on_every_pass(runtime: Runtime) -> None:
    # Given a journey that sends the reminder again until the lead clicks it
    publish(runtime, LOOP)
    lead_id = import_lead(runtime, "loop@example.jp", "テスト 輪")
    run = enter(runtime, "loop@example.jp", "reminder_loop")

    # When three days pass without a click (Monday's reminder, then Wednesday's)
    runtime.advance_to(jst(2026, 12, 10, 8))
    history = runtime.history(run)
    passes = history.entered("Send the reminder")
    mails = sent_mails(runtime, lead_id)

    # Then each pass sent a reminder of its own
    assert len(passes) == 2, history.describe()
    assert [m.sent_at_jst.day for m in mails] == [7, 9], history.outputs("Send the reminder")
    assert len({m.message_id for m in mails}) == 2

    # ... and the wait on the second pass watches the second mail: a click on it ends the loop
    status, _, _ = runtime.http("GET", mails[-1].tracked_links()[0], headers={"user-agent": CHROME})
    assert status in (302, 303), status
    runtime.advance_by(timedelta(minutes=5))
    finished = runtime.history(run)
    assert finished.status == "SUCCEEDED", finished.describe()
    assert finished.entered("The lead clicked"), finished.describe()


# ---------------------------------------------------------------- a mail of one day, two ways
ONE_DAY = {
    "$format": "tsunagu.journey/1",
    "journey_id": "one_day_thanks",
    "description": "A same-day reminder; attendance brings the thanks at once, else the"
    " thanks on the day it goes.",
    "start": "today",
    "nodes": [
        {"id": "today", "kind": "wait", "label": "the reminder",
         "rule": {"kind": "same_day_or_next", "cutoff": "17:00", "at": "10:00",
                  "only_that_day": True}, "next": "reminder"},
        {"id": "reminder", "kind": "send", "label": "the reminder",
         "template": "welcome-getting-started", "next": "attended"},
        {"id": "attended", "kind": "wait_for", "label": "attendance",
         "events": [{"type": "seminar_attended", "outcome": "attended"}],
         "within_seconds": 3 * 86400,
         "exits": [{"outcome": "attended", "next": "thanks"}], "timed_out": "later"},
        {"id": "later", "kind": "wait", "label": "the thanks",
         "rule": {"kind": "same_day_or_next", "cutoff": "17:00", "at": "10:00",
                  "only_that_day": True}, "next": "thanks"},
        {"id": "thanks", "kind": "send", "label": "the thanks",
         "template": "welcome-customer-stories"},
    ],
}  # fmt: skip


def test_a_mail_reached_without_its_one_day_wait_is_not_held_to_an_earlier_day(
    runtime: Runtime,
) -> None:
    # Given a same-day reminder (it goes today), and the thanks at once for attending
    publish(runtime, ONE_DAY)
    lead_id = import_lead(runtime, "oneday@example.jp", "テスト 一日")
    run = enter(runtime, "oneday@example.jp", "one_day_thanks")
    runtime.settle()

    # When the lead attends the next morning (the tests share one clock: whatever day it is)
    today = runtime.now().astimezone(JST)
    tomorrow = today + timedelta(days=1)
    runtime.advance_to(jst(tomorrow.year, tomorrow.month, tomorrow.day, 11))
    runtime.cli_ok("leads", "record", "oneday@example.jp", "seminar_attended")
    runtime.advance_by(timedelta(hours=1))

    # Then the thanks goes: the reminder's day (yesterday) is not the thanks's
    history = runtime.history(run)
    mails = [m.template_id for m in sent_mails(runtime, lead_id)]
    assert mails == ["welcome-getting-started", "welcome-customer-stories"], (
        history.gate("the thanks"),
        history.describe(),
    )


# ---------------------------------------------------------------- a pause over every step
HAND_RAISE = {
    "$format": "tsunagu.journey/1",
    "journey_id": "paused_hand_raise",
    "description": "The next business morning, the lead is tagged and its owner told.",
    "start": "tomorrow",
    "nodes": [
        {"id": "tomorrow", "kind": "wait", "label": "the follow-up",
         "rule": {"kind": "next_business_day", "at": "10:00"}, "next": "mark"},
        {"id": "mark", "kind": "update_lead", "label": "Tag the lead as followed up",
         "add_tags": ["followed-up"], "next": "tell"},
        {"id": "tell", "kind": "notify_owner", "label": "Tell the owner to call the lead",
         "message": "Please call this lead today.", "next": "mail"},
        {"id": "mail", "kind": "send", "label": "the follow-up mail",
         "template": "welcome-getting-started"},
    ],
}  # fmt: skip


def owner_mails(runtime: Runtime) -> list[dict[str, Any]]:
    return [m for m in runtime.mail_viewer() if "[paused_hand_raise]" in (m["subject"] or "")]


def test_a_paused_journey_neither_tags_its_leads_nor_tells_their_owners(
    runtime: Runtime,
) -> None:
    # Given a lead waiting for tomorrow morning's follow-up
    publish(runtime, HAND_RAISE)
    lead_id = import_lead(runtime, "paused@example.jp", "テスト 停止")
    run = enter(runtime, "paused@example.jp", "paused_hand_raise")
    runtime.settle()

    # When the marketer pauses the journey, and the next business morning passes
    runtime.cli_ok("journeys", "pause", "paused_hand_raise")
    runtime.advance_by(timedelta(days=4))

    # Then nothing the journey does reached the lead or its owner: it is held at the tag
    history = runtime.history(run)
    assert "followed-up" not in runtime.lead(lead_id).tags, history.describe()
    assert owner_mails(runtime) == []
    assert [p.step for p in runtime.parked("paused_hand_raise")] == ["Tag the lead as followed up"]

    # ... and the resume lets it go on: tagged, the owner told, the mail sent
    runtime.cli_ok("journeys", "resume", "paused_hand_raise", "--policy", "send_missed")
    runtime.advance_by(timedelta(hours=1))
    finished = runtime.history(run)
    assert "followed-up" in runtime.lead(lead_id).tags, finished.describe()
    assert len(owner_mails(runtime)) == 1
    assert [m.template_id for m in sent_mails(runtime, lead_id)] == ["welcome-getting-started"]
    assert finished.status == "SUCCEEDED", finished.describe()
