"""Pausing seminar_follow_up while its leads wait, and resuming it under each policy; the
account-wide emergency stop; ``tsunagu journeys status``. One business day, one cycle per
policy (see pause_day.py): the lead attends while the journey is paused, so mail C ("thanks for
attending", due at once) parks at its gate until the marketer resumes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.journeys.harness import RE_ENGAGEMENT, SEMINAR, History, SentMail, sent_mails
from tests.journeys.pause_day import (
    AFTER_THE_SEMINAR,
    DORMANT,
    HELD_BY_STOP_ALL,
    HOLD_INVITATION,
    HOLD_MAIL_C,
    HOLD_WE_MISS_YOU,
    NO_DEADLINE,
    PACED_FIRST,
    PACED_SECOND,
    SENT_ON_RESUME,
    SKIPPED_ON_RESUME,
    WEBINAR_LEADS,
    PauseDay,
)
from tsunagu.clock import parse_instant
from tsunagu.leads.model import LeadEvent

WAIT_FOR_BEHAVIOUR = "Wait for a click on the invitation or for attendance"
LATE = timedelta(seconds=1)
"""On virtual time a CLI call and the Lambda calls it causes take no simulated time; the second
covers only whole-second rounding."""
PARKED_FOR_PAUSE = {"action": "park", "reason": "journey_paused", "send_at": None}
SEND = {"action": "send", "reason": None, "send_at": None}


def history_of(world: PauseDay, email: str, journey_id: str = SEMINAR) -> History:
    entry = world.runtime.entry(world.leads[email], journey_id)
    assert entry is not None
    return world.runtime.history(entry.execution_arn)


def releases(history: History, hold_state: str) -> list[dict[str, Any]]:
    """What resume handed each release of the parked execution (``$.release``)."""
    return [o["release"] for o in history.outputs(hold_state)]


def mails(world: PauseDay, email: str) -> list[SentMail]:
    return sent_mails(world.runtime, world.leads[email])


def timeline_lines(world: PauseDay, email: str, kind: str) -> list[LeadEvent]:
    return [e for e in world.runtime.events(world.leads[email]) if e.type == kind]


def journey_report(status: dict[str, Any], journey_id: str) -> dict[str, Any]:
    reports: list[dict[str, Any]] = status["journeys"]
    [report] = [j for j in reports if j["journey"] == journey_id]
    return report


def held_then_released(history: History) -> None:
    """The shape every cycle shares: waiting, attended, mail C due at once, parked."""
    states = history.states()
    attended = states.index("Did the lead click or attend?")
    assert states[attended - 1] == WAIT_FOR_BEHAVIOUR
    assert states[attended + 1 : attended + 5] == [
        "Schedule mail C for the same day",
        "Wait until mail C may go",
        "Check the gate before mail C",
        "What did the gate say about mail C?",
    ]
    assert states[attended + 5] == "Hold mail C while the journey is paused"
    [waited] = history.outputs(WAIT_FOR_BEHAVIOUR)
    assert waited["response"]["matched"] == "attended"


def test_entered_while_paused_holds_the_invitations_and_skip_missed_skips_them(
    pause_day_world: PauseDay,
) -> None:
    world = pause_day_world
    # Given the journey paused, When the marketer enters the attendee list
    entered = world.step("entered while paused")
    assert "-- 6 entered, 0 not entered, of 6 selected" in entered["started"]
    # Then every lead is held at the invitation's gate, and status says so
    report = journey_report(entered["status"], SEMINAR)
    assert report["status"] == "paused"
    assert report["parked"] == 6
    assert report["parked_at_step"] == {HOLD_INVITATION: 6}
    assert report["running"] == 6

    # When the marketer resumes with skip_missed
    resumed = world.step("skip_missed before the wait")
    assert f"{SEMINAR} resumed: 6 released (6 skip)" in resumed
    # Then no invitation went, and each lead went on to wait for a click or attendance
    world.step("stop-all")  # the end of the day
    for email in WEBINAR_LEADS:
        history = history_of(world, email)
        gates = history.gate("the invitation")
        assert gates == [
            PARKED_FOR_PAUSE,
            {"action": "skip", "reason": "skipped_on_resume", "send_at": None},
        ], email
        assert releases(history, "Hold the invitation while the journey is paused") == [
            {"step": HOLD_INVITATION, "action": "skip", "not_before": None, "policy": "skip_missed"}
        ]
        states = history.states()
        assert "Send the invitation" not in states
        assert states[states.index("Note that the invitation was skipped") + 1] == (
            WAIT_FOR_BEHAVIOUR
        )
        assert "seminar-invitation" not in [m.template_id for m in mails(world, email)]


def test_status_shows_how_many_leads_are_parked_and_where(pause_day_world: PauseDay) -> None:
    world = pause_day_world
    cycle = world.step("send_missed")
    assert f"{SEMINAR} paused: each lead stops at its next step" in cycle["paused"]
    status = cycle["status"]
    assert status["emergency_stop"] is False
    report = journey_report(status, SEMINAR)
    assert report["status"] == "paused"
    assert report["paused_at"] is not None
    assert report["resume_policy"] == "send_missed"
    assert report["parked"] == 1
    assert report["parked_at_step"] == {HOLD_MAIL_C: 1}
    assert journey_report(status, RE_ENGAGEMENT)["parked"] == 0


def test_resume_send_missed_sends_the_held_mail(pause_day_world: PauseDay) -> None:
    world = pause_day_world
    # Given mail C held while paused, When the marketer resumes with send_missed
    cycle = world.step("send_missed")
    assert f"{SEMINAR} resumed: 1 released (1 send)" in cycle["resumed"]
    # Then the execution went back to its gate, which sent it at once
    history = history_of(world, SENT_ON_RESUME)
    assert history.status == "SUCCEEDED", history.describe()
    held_then_released(history)
    assert history.gate("mail C") == [PARKED_FOR_PAUSE, SEND]
    assert releases(history, "Hold mail C while the journey is paused") == [
        {"step": HOLD_MAIL_C, "action": "send", "not_before": None, "policy": "send_missed"}
    ]
    assert history.states()[-1] == "Send mail C"
    [mail_c] = mails(world, SENT_ON_RESUME)
    assert mail_c.template_id == "seminar-thanks-for-attending"
    assert cycle["resumed_at"] <= mail_c.sent_at < cycle["resumed_at"] + LATE


def test_resume_skip_missed_skips_the_held_mail(pause_day_world: PauseDay) -> None:
    world = pause_day_world
    cycle = world.step("skip_missed")
    assert f"{SEMINAR} resumed: 1 released (1 skip)" in cycle["resumed"]
    history = history_of(world, SKIPPED_ON_RESUME)
    assert history.status == "SUCCEEDED", history.describe()
    held_then_released(history)
    assert history.gate("mail C") == [
        PARKED_FOR_PAUSE,
        {"action": "skip", "reason": "skipped_on_resume", "send_at": None},
    ]
    assert history.states()[-1] == "Note that mail C was skipped"
    assert "Send mail C" not in history.states()
    assert mails(world, SKIPPED_ON_RESUME) == []


def test_resume_pace_releases_the_held_leads_at_the_set_rate(pause_day_world: PauseDay) -> None:
    world = pause_day_world
    # Given two leads held at mail C, When the marketer resumes at one lead per minute
    cycle = world.step("pace")
    assert f"{SEMINAR} resumed: 2 released (2 send)" in cycle["resumed"]
    resumed_at = cycle["resumed_at"]
    histories = {email: history_of(world, email) for email in (PACED_FIRST, PACED_SECOND)}
    released = {
        email: releases(history, "Hold mail C while the journey is paused")[0]
        for email, history in histories.items()
    }
    # Then the first in line went at once, and the second was given the next minute
    [first, second] = sorted(released, key=lambda email: released[email]["not_before"] or "")
    assert released[first] == {
        "step": HOLD_MAIL_C,
        "action": "send",
        "not_before": None,
        "policy": "pace",
    }
    turn = parse_instant(released[second]["not_before"])
    assert (released[second]["action"], released[second]["policy"]) == ("send", "pace")
    assert timedelta(minutes=1) <= turn - resumed_at < timedelta(minutes=1) + LATE
    for history in histories.values():
        assert history.status == "SUCCEEDED", history.describe()
        held_then_released(history)
    assert histories[first].gate("mail C") == [PARKED_FOR_PAUSE, SEND]
    [first_mail] = mails(world, first)
    assert resumed_at <= first_mail.sent_at < resumed_at + LATE

    # And the second lead's mail did not go before its turn: its gate, back from the release at
    # the moment of the resume (time stands still while the runtime works), deferred it to the
    # turn, and it went then
    second_gates = histories[second].gate("mail C")[1:]
    assert second_gates[0]["action"] == "defer", second_gates
    assert second_gates[0]["reason"] == "paced"
    assert timedelta(0) <= parse_instant(second_gates[0]["send_at"]) - turn < timedelta(seconds=1)
    assert second_gates[1:] == [SEND]
    assert "Defer mail C under the frequency cap" in histories[second].states()
    # The lead's timeline says so: mail C deferred for its turn, until then (one line)
    [deferred] = timeline_lines(world, second, "mail_deferred")
    assert deferred.properties["reason"] == "paced"
    assert deferred.properties["until"] == second_gates[0]["send_at"]
    assert deferred.properties["template_id"] == "seminar-thanks-for-attending"
    assert timeline_lines(world, first, "mail_deferred") == []
    [second_mail] = mails(world, second)
    assert turn <= second_mail.sent_at < turn + LATE


def test_resume_expire_sends_a_held_mail_that_has_no_deadline(pause_day_world: PauseDay) -> None:
    world = pause_day_world
    cycle = world.step("expire")
    history = history_of(world, NO_DEADLINE)
    assert history.status == "SUCCEEDED", history.describe()
    held_then_released(history)
    assert releases(history, "Hold mail C while the journey is paused") == [
        {"step": HOLD_MAIL_C, "action": "expire", "not_before": None, "policy": "expire"}
    ]
    assert history.gate("mail C") == [PARKED_FOR_PAUSE, SEND]
    [mail_c] = mails(world, NO_DEADLINE)
    assert mail_c.sent_at >= cycle["resumed_at"]


def test_resume_expire_skips_an_invitation_held_past_the_seminar(
    pause_day_world: PauseDay,
) -> None:
    world = pause_day_world
    # Given a lead entered while paused with the seminar's start in its input (seminar_at: the
    # invitation's own deadline), When the journey resumes with expire after the seminar began
    cycle = world.step("expire")
    assert cycle["resumed_at"] > cycle["seminar_at"]
    history = history_of(world, AFTER_THE_SEMINAR)
    [started] = history.of_type("ExecutionStarted")
    assert "seminar_at" in started["executionStartedEventDetails"]["input"]
    # Then the invitation is skipped: it is too late for it
    assert history.gate("the invitation")[-1] == {
        "action": "skip",
        "reason": "deadline_passed",
        "send_at": None,
    }
    assert "seminar-invitation" not in [m.template_id for m in mails(world, AFTER_THE_SEMINAR)]
    # And the lead's timeline says why the invitation did not go
    [skipped] = timeline_lines(world, AFTER_THE_SEMINAR, "mail_skipped")
    assert skipped.properties["reason"] == "deadline_passed"
    assert skipped.properties["template_id"] == "seminar-invitation"
    assert skipped.properties["node"] == "invitation"


def test_stop_all_holds_every_journey_and_resume_all_releases_them(
    pause_day_world: PauseDay,
) -> None:
    world = pause_day_world
    # Given the emergency stop, When a seminar lead attends and a dormant lead is entered into
    # re_engagement
    cycle = world.step("stop-all")
    assert "emergency stop" in cycle["stopped"]
    assert f"{DORMANT}: entered" in cycle["entered"]
    # Then both are held at their next mail, and status and list say so
    status = cycle["status"]
    assert status["emergency_stop"] is True
    seminar = journey_report(status, SEMINAR)
    assert (seminar["status"], seminar["parked_at_step"]) == ("active", {HOLD_MAIL_C: 1})
    re_engagement = journey_report(status, RE_ENGAGEMENT)
    assert re_engagement["parked_at_step"] == {HOLD_WE_MISS_YOU: 1}
    assert cycle["listed"].startswith("EMERGENCY STOP")
    account_paused = {"action": "park", "reason": "account_paused", "send_at": None}
    seminar_history = history_of(world, HELD_BY_STOP_ALL)
    dormant_history = history_of(world, DORMANT, RE_ENGAGEMENT)
    assert seminar_history.gate("mail C")[0] == account_paused
    assert dormant_history.gate("the we-miss-you mail")[0] == account_paused

    # When the marketer lifts it, Then each journey releases its leads by its own policy
    # (send_missed for both shipped journeys): both mails go
    assert f"{SEMINAR}: 1 released" in cycle["resumed"]
    assert f"{RE_ENGAGEMENT}: 1 released" in cycle["resumed"]
    assert seminar_history.gate("mail C")[1:] == [SEND]
    assert dormant_history.gate("the we-miss-you mail")[1:] == [SEND]
    assert [m.template_id for m in mails(world, HELD_BY_STOP_ALL)] == [
        "seminar-thanks-for-attending"
    ]
    assert [m.template_id for m in mails(world, DORMANT)] == ["reengage-we-miss-you"]
    for mail in (*mails(world, HELD_BY_STOP_ALL), *mails(world, DORMANT)):
        assert cycle["resumed_at"] <= mail.sent_at < cycle["resumed_at"] + LATE
