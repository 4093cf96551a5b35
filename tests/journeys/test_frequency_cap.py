"""The frequency cap across journeys (default: one marketing mail a day and three a week, per
lead, over every journey; one more is deferred).

A demo-form lead got welcome_nurture's welcome mail at once, early on Friday; then the marketer
invited the same lead to the seminar (seminar_follow_up). The invitation's gate found the day's
mail used, and deferred it to the first moment the cap allows that is also business time: 24
hours after the welcome is Saturday, Monday is a holiday, so Tuesday at 08:00, when quiet hours
end. On Tuesday at 10:00 welcome_nurture's next mail came due for the same lead, and was
deferred in turn, 24 hours after the invitation. Each mail a gate lets through is counted from
that moment (it is reserved in the lead's send ledger).

Another demo-form lead, invited on Saturday, has two journeys' mails due at the very same
moment, Tuesday 10:00 (business time puts them all there): one goes, the other is deferred.
See holiday_week.py."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.journeys.harness import JST, SEMINAR, WELCOME, jst, mail_of, sent_mails, wait_for
from tests.journeys.holiday_week import (
    FRIDAY,
    LATE,
    TUESDAY,
    TUESDAY_NOON,
    TUESDAY_TEN,
    TWO_AT_TEN,
    TWO_JOURNEYS,
    HolidayWeek,
)
from tsunagu.clock import parse_instant

TUESDAY_EIGHT_UTC = "2026-11-23T23:00:00Z"


def whole_second_at_or_after(instant: datetime) -> datetime:
    if instant.microsecond:
        return instant.replace(microsecond=0) + timedelta(seconds=1)
    return instant


def test_a_second_journeys_mail_the_same_day_waits_for_the_next_allowed_time(
    holiday_week_world: HolidayWeek,
) -> None:
    world = holiday_week_world
    runtime = world.runtime
    world.step("forms")
    lead_id = world.leads[TWO_JOURNEYS]
    # Given welcome_nurture's welcome mail, sent on Friday
    started = world.step("seminar started after the welcome mail")
    welcome = started["welcome"]
    assert welcome.step == "Send the welcome mail"
    assert welcome.sent_at_jst.date() == FRIDAY
    # When seminar_follow_up's invitation comes up for the same lead, the same morning
    assert f"{TWO_JOURNEYS}: entered" in started["output"]
    # (and, deferred, the lead is shown waiting at the invitation: journeys status)
    assert started["waiting_at_invitation"] == 1
    invitation = mail_of(
        runtime, lead_id, "seminar-invitation", timeout=runtime.once_at(TUESDAY_NOON)
    )

    # Then its gate deferred it under the cap to Tuesday 08:00 (Saturday, Sunday and Monday's
    # holiday are no business days), and sent it when it tried again then
    entry = runtime.entry(lead_id, SEMINAR)
    assert entry is not None
    history = runtime.history(entry.execution_arn)
    deferred, sent = history.gate("the invitation")[:2]
    assert deferred == {"action": "defer", "reason": "frequency_cap", "send_at": TUESDAY_EIGHT_UTC}
    assert sent == {"action": "send", "reason": None, "send_at": None}
    assert history.states()[:5] == [
        "Check the gate before the invitation",
        "What did the gate say about the invitation?",
        "Defer the invitation under the frequency cap",
        "Check the gate before the invitation",
        "What did the gate say about the invitation?",
    ]
    [woke] = history.exited("Defer the invitation under the frequency cap")
    assert history.simulated(woke) >= parse_instant(TUESDAY_EIGHT_UTC) - timedelta(minutes=5)
    # And the viewer shows both mails to the lead, the invitation on Tuesday at 08:00
    due = jst(2026, 11, 24, 8)
    assert invitation.sent_at - welcome.sent_at > timedelta(days=1)
    assert due <= invitation.sent_at_jst < due + LATE, invitation.sent_at_jst
    assert invitation.recipients == welcome.recipients == [TWO_JOURNEYS]


def test_the_first_journeys_next_mail_then_waits_for_the_second_journeys(
    holiday_week_world: HolidayWeek,
) -> None:
    world = holiday_week_world
    runtime = world.runtime
    world.step("forms")
    lead_id = world.leads[TWO_JOURNEYS]
    # Given the seminar invitation, let through by its gate on Tuesday at 08:00
    invitation = mail_of(
        runtime, lead_id, "seminar-invitation", timeout=runtime.once_at(TUESDAY_NOON)
    )
    seminar = runtime.entry(lead_id, SEMINAR)
    assert seminar is not None
    seminar_history = runtime.history(seminar.execution_arn)
    [_, let_through] = seminar_history.entered("Check the gate before the invitation")[:2]
    [_, answered] = seminar_history.exited("Check the gate before the invitation")[:2]
    # When welcome_nurture's getting-started guide comes due at 10:00 (the lead viewed no page)
    runtime.wait_for_clock(TUESDAY_NOON)
    welcome = runtime.entry(lead_id, WELCOME)
    assert welcome is not None
    history = runtime.history(welcome.execution_arn)
    [scheduled] = history.outputs("Schedule the getting-started guide")
    assert scheduled["schedule"]["send_at"] == "2026-11-24T01:00:00Z"
    deferred = history.gate("the getting-started guide")[0]

    # Then its gate deferred it to 24 hours after the invitation was let through (Wednesday,
    # after quiet hours), and it is not sent on Tuesday
    assert (deferred["action"], deferred["reason"]) == ("defer", "frequency_cap")
    send_at = parse_instant(deferred["send_at"])
    day = timedelta(days=1)
    slack = timedelta(seconds=1)  # the deferral is rounded to a whole second
    assert seminar_history.simulated(let_through) + day - slack <= send_at
    assert send_at <= seminar_history.simulated(answered) + day + slack
    assert send_at <= whole_second_at_or_after(invitation.sent_at + day)
    assert send_at.astimezone(JST) >= jst(2026, 11, 25, 8)
    assert [m.template_id for m in sent_mails(runtime, lead_id)] == [
        "welcome",
        "seminar-invitation",
    ]


def test_two_journeys_mails_due_at_the_same_moment_go_one_a_day(
    holiday_week_world: HolidayWeek,
) -> None:
    world = holiday_week_world
    runtime = world.runtime
    world.step("forms")
    lead_id = world.leads[TWO_AT_TEN]
    # Given the welcome on Friday and the seminar invitation on Saturday, When the campaign offer
    # (a pricing-page view on Friday) and mail A (a click on Sunday) both fall due on Tuesday at
    # 10:00
    assert world.step("weekend click") == 302
    seminar = runtime.entry(lead_id, SEMINAR)
    welcome = runtime.entry(lead_id, WELCOME)
    assert seminar is not None and welcome is not None

    def both_decided() -> dict[str, dict[str, Any]] | None:
        a = runtime.history(seminar.execution_arn).gate("mail A")
        offer = runtime.history(welcome.execution_arn).gate("the campaign offer")
        return {"mail A": a[0], "campaign offer": offer[0]} if a and offer else None

    decisions = wait_for(
        both_decided,
        timeout=runtime.once_at(TUESDAY_TEN + LATE),
        what="both gates on Tuesday",
        interval=0.3,
    )
    [scheduled_a] = runtime.history(seminar.execution_arn).outputs(
        "Schedule mail A for the next business morning"
    )
    [scheduled_offer] = runtime.history(welcome.execution_arn).outputs(
        "Schedule the campaign offer"
    )
    assert scheduled_a["schedule"]["send_at"] == scheduled_offer["schedule"]["send_at"]

    # Then one of them goes, and the frequency cap (one a day, three a week) defers the other:
    # both gates ran at the same moment, and the one that lost the reservation decided again
    sent = [step for step, gate in decisions.items() if gate["action"] == "send"]
    deferred = [gate for gate in decisions.values() if gate["action"] == "defer"]
    assert len(sent) == 1, decisions
    [later] = deferred
    assert later["reason"] == "frequency_cap"
    assert parse_instant(later["send_at"]).astimezone(JST) >= jst(2026, 11, 25, 8)
    template = {"mail A": "seminar-clicked-follow-up", "campaign offer": "welcome-campaign-offer"}
    timeout = runtime.once_at(TUESDAY_TEN + LATE)
    mail = mail_of(runtime, lead_id, template[sent[0]], timeout=timeout)
    assert TUESDAY_TEN <= mail.sent_at_jst < TUESDAY_TEN + LATE
    tuesday = [m for m in sent_mails(runtime, lead_id) if m.sent_at_jst.date() == TUESDAY]
    assert [m.template_id for m in tuesday] == [template[sent[0]]]
