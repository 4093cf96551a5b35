"""seminar_follow_up, seed 000's journey: clicked -> mail A the next business day; no click in
three days -> mail B; attended -> mail C the same day; a scanner's click is not a click.

The leads were invited early on Friday 20 November 2026 (the late attendee on Saturday; see
holiday_week.py). Monday 23 November is a national holiday, so "the next business day" from
Friday and "three days later" from Friday both land on Tuesday 24 November, 10:00 in Tokyo.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.journeys.harness import JST, SEMINAR, History, SentMail, jst, sent_mails
from tests.journeys.holiday_week import (
    ATTENDS,
    CLICKS_ON_FRIDAY,
    DOES_NOT_CLICK,
    FRIDAY,
    LATE,
    SCANNED,
    TUESDAY,
    TUESDAY_NOON,
    TUESDAY_TEN,
    HolidayWeek,
)
from tsunagu.clock import parse_instant

WAIT_FOR_BEHAVIOUR = "Wait for a click on the invitation or for attendance"
TUESDAY_TEN_UTC = "2026-11-24T01:00:00Z"


def finished(world: HolidayWeek, email: str) -> History:
    """The lead's seminar execution once it has ended (waiting at most until Tuesday noon)."""
    world.step("attendee list")
    runtime = world.runtime
    entry = runtime.entry(world.leads[email], SEMINAR)
    assert entry is not None, f"{email} never entered {SEMINAR}"
    return runtime.wait_ended(
        entry.execution_arn,
        timeout=runtime.once_at(TUESDAY_NOON),
        what=f"{email}'s seminar_follow_up execution to end",
    )


def mails(world: HolidayWeek, email: str) -> list[SentMail]:
    return sent_mails(world.runtime, world.leads[email])


def waited_for_behaviour(history: History) -> tuple[dict[str, Any], dict[str, Any]]:
    """The wait task's submission (registered, waiting) and how it ended."""
    [entered] = history.entered(WAIT_FOR_BEHAVIOUR)
    submitted = next(e for e in history.of_type("TaskSubmitted") if e["id"] > entered["id"])
    ended = next(
        e
        for e in history.events
        if e["id"] > submitted["id"] and e["type"] in ("TaskSucceeded", "TaskTimedOut")
    )
    return submitted, ended


def test_a_click_on_friday_before_the_holiday_sends_mail_a_on_tuesday_at_ten(
    holiday_week_world: HolidayWeek,
) -> None:
    world = holiday_week_world
    # Given the invitation sent early on Friday, When the person clicks its link that morning
    click = world.step("click")
    assert click["status"] == 302
    assert click["location"].endswith("/_local/demo/seminar")
    history = finished(world, CLICKS_ON_FRIDAY)
    lead_id = world.leads[CLICKS_ON_FRIDAY]
    [clicked] = [e for e in world.runtime.events(lead_id) if e.type == "link_clicked"]
    assert clicked.properties["automated"] is False
    assert parse_instant(clicked.occurred_at).astimezone(JST).date() == FRIDAY

    # Then that click resumed the wait, down the "clicked" branch
    assert history.status == "SUCCEEDED", history.describe()
    _, ended = waited_for_behaviour(history)
    assert ended["type"] == "TaskSucceeded"
    [waited] = history.outputs(WAIT_FOR_BEHAVIOUR)
    assert waited["response"]["matched"] == "clicked"
    assert waited["response"]["event_id"] == clicked.event_id
    assert "Send mail B" not in history.states()
    assert "Send mail C" not in history.states()
    # ... mail A was scheduled for Tuesday 10:00 (Monday is a holiday), and waited for
    [scheduled] = history.outputs("Schedule mail A for the next business morning")
    assert scheduled["schedule"]["send_at"] == TUESDAY_TEN_UTC
    [woke] = history.exited("Wait for the next business morning")
    assert history.simulated(woke) >= TUESDAY_TEN - timedelta(minutes=5)
    assert history.gate("mail A") == [{"action": "send", "reason": None, "send_at": None}]
    assert history.states()[-1] == "Send mail A"

    # And the viewer has the invitation and mail A, sent on Tuesday at 10:00 Tokyo time
    invitation, mail_a = mails(world, CLICKS_ON_FRIDAY)
    assert invitation.template_id == "seminar-invitation"
    assert invitation.sent_at_jst.date() == FRIDAY
    assert mail_a.template_id == "seminar-clicked-follow-up"
    assert mail_a.recipients == [CLICKS_ON_FRIDAY]
    assert mail_a.subject == "セミナーのご案内をご覧いただきありがとうございます"
    assert mail_a.step == "Send mail A"
    assert TUESDAY_TEN <= mail_a.sent_at_jst < TUESDAY_TEN + LATE, mail_a.sent_at_jst


def test_no_click_within_three_days_sends_mail_b(holiday_week_world: HolidayWeek) -> None:
    world = holiday_week_world
    # Given the invitation on Friday, When the lead does nothing
    history = finished(world, DOES_NOT_CLICK)

    # Then the wait timed out three simulated days later, into the "did not click" branch
    assert history.status == "SUCCEEDED", history.describe()
    submitted, ended = waited_for_behaviour(history)
    assert ended["type"] == "TaskTimedOut"
    assert ended["taskTimedOutEventDetails"]["error"] == "States.Timeout"
    waited = history.simulated(ended) - history.simulated(submitted)
    assert abs(waited - timedelta(days=3)) <= LATE, waited
    assert "Schedule mail A for the next business morning" not in history.states()
    # ... on Monday, a holiday: "the same business day" is Tuesday, at 10:00
    assert history.simulated(ended).astimezone(JST).date() == jst(2026, 11, 23).date()
    [scheduled] = history.outputs("Schedule mail B for the same business day")
    assert scheduled["schedule"]["send_at"] == TUESDAY_TEN_UTC
    assert history.states()[-1] == "Send mail B"

    # And mail B went three days or more after the invitation, on Tuesday at 10:00
    invitation, mail_b = mails(world, DOES_NOT_CLICK)
    assert (invitation.template_id, mail_b.template_id) == (
        "seminar-invitation",
        "seminar-no-click-reminder",
    )
    assert mail_b.subject == "【残席わずか】導入事例セミナーのご案内"
    assert mail_b.sent_at - invitation.sent_at >= timedelta(days=3)
    assert TUESDAY_TEN <= mail_b.sent_at_jst < TUESDAY_TEN + LATE, mail_b.sent_at_jst


def test_attendance_sends_mail_c_the_same_day(holiday_week_world: HolidayWeek) -> None:
    world = holiday_week_world
    # Given the invitation (on Saturday), When the attendance list is recorded on Tuesday
    assert "entered" in world.step("late invitation")
    recorded = world.step("attendance")
    assert "seminar_attended recorded" in recorded
    history = finished(world, ATTENDS)
    [attended] = [
        e for e in world.runtime.events(world.leads[ATTENDS]) if e.type == "seminar_attended"
    ]
    attended_at = parse_instant(attended.occurred_at).astimezone(JST)
    assert attended_at.date() == TUESDAY

    # Then the attendance resumed the wait, down the "attended" branch
    assert history.status == "SUCCEEDED", history.describe()
    [waited] = history.outputs(WAIT_FOR_BEHAVIOUR)
    assert waited["response"]["matched"] == "attended"
    assert waited["response"]["event_id"] == attended.event_id
    assert history.states()[-1] == "Send mail C"
    assert "Send mail A" not in history.states()
    assert "Send mail B" not in history.states()

    # And mail C went the same day, after the attendance and before the 19:00 cutoff
    invitation, mail_c = mails(world, ATTENDS)
    assert invitation.template_id == "seminar-invitation"
    assert mail_c.template_id == "seminar-thanks-for-attending"
    assert mail_c.subject == "本日はセミナーにご参加いただきありがとうございました"
    assert attended_at <= mail_c.sent_at_jst < jst(2026, 11, 24, 19)


def test_a_scanners_click_does_not_take_the_clicked_branch(
    holiday_week_world: HolidayWeek,
) -> None:
    world = holiday_week_world
    # Given the invitation, When a mail gateway follows its link on Friday (a HEAD, then a GET
    # as an HTTP library)
    assert world.step("scanner") == [302, 302]
    history = finished(world, SCANNED)
    clicks = [e for e in world.runtime.events(world.leads[SCANNED]) if e.type == "link_clicked"]

    # Then both clicks are stored, as automated, with the reasons: evidence
    assert len(clicks) == 2
    assert all(c.properties["automated"] is True for c in clicks)
    assert {r for c in clicks for r in c.properties["reasons"]} >= {
        "head_request",
        "scanner_user_agent",
    }
    # ... neither resumed the wait: it timed out, and the lead got mail B, not mail A
    assert history.status == "SUCCEEDED", history.describe()
    _, ended = waited_for_behaviour(history)
    assert ended["type"] == "TaskTimedOut"
    assert "Schedule mail A for the next business morning" not in history.states()
    assert [m.template_id for m in mails(world, SCANNED)] == [
        "seminar-invitation",
        "seminar-no-click-reminder",
    ]
