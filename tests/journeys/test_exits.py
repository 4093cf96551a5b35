"""Leaving seminar_follow_up mid-journey: sales has the lead ("in negotiation"), or the lead
unsubscribed with the mail's one-click link. Either way the execution stops at once, its wait
is forgotten, and no further mail goes: checked after Tuesday 10:00, when a lead in the same
place who stayed got mail B (see holiday_week.py)."""

from __future__ import annotations

from tests.journeys.harness import SEMINAR, History, Runtime, templates_sent
from tests.journeys.holiday_week import (
    DOES_NOT_CLICK,
    FRIDAY_MORNING,
    GOES_TO_SALES,
    TUESDAY_TEN,
    UNSUBSCRIBES,
    HolidayWeek,
)
from tests.journeys.test_seminar_follow_up import finished
from tests.support.runtime import wait_for
from tsunagu import services
from tsunagu.clock import parse_instant


def stopped(world: HolidayWeek, email: str) -> History:
    runtime = world.runtime
    entry = runtime.entry(world.leads[email], SEMINAR)
    assert entry is not None
    return runtime.wait_ended(entry.execution_arn, timeout=30, what=f"{email}'s execution to stop")


def no_waits_left(runtime: Runtime, lead_id: str) -> None:
    """route_events stops the execution, then ends the lead's waits: the second may come just
    after the execution is seen stopped."""
    wait_for(lambda: not runtime.waits_of(lead_id), timeout=30, what=f"{lead_id}'s waits to end")


def test_crm_status_in_negotiation_ends_the_journey(holiday_week_world: HolidayWeek) -> None:
    world = holiday_week_world
    runtime = world.runtime
    world.step("attendee list")
    lead_id = world.leads[GOES_TO_SALES]
    # Given a lead waiting for a click on the invitation, When sales reports "in negotiation"
    # from the CLI on Friday
    output = world.step("crm status")
    assert "crm_status_changed" in output
    assert runtime.lead(lead_id).crm_status == "in negotiation"

    # Then the execution stops where it waited, and the entry says why it left
    history = stopped(world, GOES_TO_SALES)
    assert history.status == "ABORTED", history.describe()
    assert history.states()[-1] == "Wait for a click on the invitation or for attendance"
    entry = runtime.entry(lead_id, SEMINAR)
    assert entry is not None
    assert (entry.status, entry.exit_reason) == ("exited", "crm_status")
    assert parse_instant(entry.updated_at) >= FRIDAY_MORNING
    no_waits_left(runtime, lead_id)

    # And by the time a lead who stayed got mail B, this one got nothing after the invitation
    control = finished(world, DOES_NOT_CLICK)
    assert control.states()[-1] == "Send mail B"
    assert runtime.now() >= TUESDAY_TEN
    assert templates_sent(runtime, lead_id) == ["seminar-invitation"]


def test_unsubscribing_with_the_one_click_link_ends_the_journey(
    holiday_week_world: HolidayWeek,
) -> None:
    world = holiday_week_world
    runtime = world.runtime
    world.step("attendee list")
    lead_id = world.leads[UNSUBSCRIBES]
    # Given a lead waiting for a click on the invitation, When its mail client posts the
    # invitation's List-Unsubscribe one-click request
    assert world.step("unsubscribe")["status"] == 200

    # Then the lead is unsubscribed from everything, with the evidence kept
    leads = services.lead_repository(runtime.settings)
    assert leads.consent_state(lead_id)["all"] == "opted_out"
    assert "opted_out" in [e.status for e in leads.consent_evidence(lead_id)]
    # ... the execution stops, and the entry says why it left
    history = stopped(world, UNSUBSCRIBES)
    assert history.status == "ABORTED", history.describe()
    entry = runtime.entry(lead_id, SEMINAR)
    assert entry is not None
    assert (entry.status, entry.exit_reason) == ("exited", "unsubscribed")
    no_waits_left(runtime, lead_id)

    # And no further mail, by the time a lead who stayed got mail B
    finished(world, DOES_NOT_CLICK)
    assert templates_sent(runtime, lead_id) == ["seminar-invitation"]
