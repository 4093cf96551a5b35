"""Entering a journey once: a repeated trigger (the same start command, a second form, a stream
record delivered again, a replayed form submission) never starts a second execution, and the
re-entry policy decides about a genuinely new one (welcome_nurture: never; seminar_follow_up:
after 30 days, or after whatever interval the marketer sets). See holiday_week.py."""

from __future__ import annotations

import json
import re
from datetime import datetime

from tests.journeys.harness import JST, SEMINAR, WELCOME, Runtime, SentMail, mail_of, sent_mails
from tests.journeys.holiday_week import (
    AFTER_THE_REPLAY,
    FRIDAY,
    STARTED_TWICE,
    SUBMITS_TWICE,
    TUESDAY,
    TUESDAY_NOON,
    HolidayWeek,
)
from tsunagu import services
from tsunagu.clock import parse_instant
from tsunagu.journeys.model import ReentryPolicy
from tsunagu.leads.lookup import lead_by_email


def started(output: str, email: str) -> list[tuple[str, str]]:
    """(result, execution ARN) for the lead, from `tsunagu journeys start`'s output."""
    found = re.findall(rf"^{re.escape(email)}: (\w+) \((arn:[^)]+)\)$", output, re.MULTILINE)
    return [(str(result), str(arn)) for result, arn in found]


def executions_of(
    runtime: Runtime, journey_id: str, lead_id: str, *, before: datetime | None = None
) -> list[str]:
    """Names of the journey's executions for this lead (its id is in the input; a name carries
    only the id's first characters, which leads made in the same millisecond share), started
    before ``before`` on the runtime's clock when given."""
    stepfunctions = runtime.client("stepfunctions")
    prefix = f"{journey_id}-{lead_id[:12]}-"
    return sorted(
        str(e["name"])
        for e in runtime.executions(journey_id)
        if str(e["name"]).startswith(prefix)
        and (before is None or e["startDate"] < before)
        and json.loads(stepfunctions.describe_execution(executionArn=e["executionArn"])["input"])[
            "lead_id"
        ]
        == lead_id
    )


def of_template(runtime: Runtime, lead_id: str, template_id: str) -> list[SentMail]:
    return [m for m in sent_mails(runtime, lead_id) if m.template_id == template_id]


def form_events(runtime: Runtime, lead_id: str) -> list[str]:
    return [e.event_id for e in runtime.events(lead_id) if e.type == "form_submitted"]


def test_the_same_start_command_twice_enters_the_lead_once(
    holiday_week_world: HolidayWeek,
) -> None:
    world = holiday_week_world
    runtime = world.runtime
    # Given the lead entered with the whole attendee list (key seminar-2026-12)
    [(first_result, first_arn)] = started(world.step("seminar started"), STARTED_TWICE)
    assert first_result == "entered"
    # When the marketer runs the start command again with the same key
    again = world.step("start again")

    # Then it names the same execution and starts nothing new
    assert started(again["same key"], STARTED_TWICE) == [("repeated", first_arn)]
    assert (
        "-- 0 entered, 1 already in (entered by this request before), 0 not entered,"
        in (again["same key"])
    )
    # ... and a new key is refused by the 30-day re-entry interval
    assert f"{STARTED_TWICE}: not entered (reentry_after_interval)" in again["new key"]
    assert "-- 0 entered, 1 not entered, of 1 selected" in again["new key"]

    # And until its journey ended on Tuesday, the lead had one execution and one invitation
    lead_id = world.leads[STARTED_TWICE]
    world.step("attendance")  # Tuesday morning
    first_name = first_arn.rsplit(":", 1)[1]
    assert executions_of(runtime, SEMINAR, lead_id, before=TUESDAY_NOON) == [first_name]
    invitations = of_template(runtime, lead_id, "seminar-invitation")
    [invitation] = [m for m in invitations if m.sent_at < TUESDAY_NOON]
    assert invitation.sent_at_jst.date() == FRIDAY
    assert invitation.idempotency_key.startswith(first_arn)


def test_reentry_after_the_interval_enters_a_lead_whose_journey_ended(
    holiday_week_world: HolidayWeek,
) -> None:
    world = holiday_week_world
    runtime = world.runtime
    [(_, first_arn)] = started(world.step("seminar started"), STARTED_TWICE)
    # Given the lead's first journey (Friday's invitation, Tuesday's mail B) has ended, When the
    # marketer sets a one-day re-entry interval and starts the lead with a new key
    second = world.step("second entry")
    assert second["shipped"] == ReentryPolicy(kind="after_interval", interval_days=30)
    assert runtime.history(first_arn).states()[-1] == "Send mail B"

    # Then the lead enters again: a second execution, and the entry counts two
    [(result, second_arn)] = started(second["output"], STARTED_TWICE)
    assert result == "entered"
    assert second_arn != first_arn
    lead_id = world.leads[STARTED_TWICE]
    assert executions_of(runtime, SEMINAR, lead_id) == sorted(
        arn.rsplit(":", 1)[1] for arn in (first_arn, second_arn)
    )
    entry = runtime.entry(lead_id, SEMINAR)
    assert entry is not None
    assert (entry.entries, entry.execution_arn, entry.status) == (2, second_arn, "active")
    assert parse_instant(entry.entered_at).astimezone(JST).date() == TUESDAY
    # ... and the shipped interval is in force again
    journey = services.journey_repository(runtime.settings).get_journey(SEMINAR)
    assert journey is not None
    assert journey.reentry == second["shipped"]


def test_a_second_form_and_a_redelivered_record_do_not_enter_welcome_nurture_again(
    holiday_week_world: HolidayWeek,
) -> None:
    world = holiday_week_world
    runtime = world.runtime
    world.step("forms")
    lead_id = world.leads[SUBMITS_TWICE]
    # When the person submits the demo form a second time on Friday, and the stream delivers
    # the first form_submitted record to route_events twice more
    status, again = world.step("form again")
    redelivered = world.step("stream record again")
    # (answered as a new address is, with an id that names no lead: the lead is found by its
    # address, as an integrator finds it, and is the one the first form made)
    assert status == 201
    leads = services.lead_repository(runtime.settings)
    assert again["lead_id"] != lead_id and leads.get_lead(again["lead_id"]) is None
    assert lead_by_email(leads, SUBMITS_TWICE).lead_id == lead_id
    assert all(r.get("batchItemFailures") == [] for r in redelivered), redelivered

    # Then, days later (Tuesday morning), the lead still has the one welcome_nurture execution
    # the first form entered it into (re-entry: never), and one welcome mail
    world.step("attendance")
    first_form, second_form = form_events(runtime, lead_id)
    entry = runtime.entry(lead_id, WELCOME)
    assert entry is not None
    assert (entry.trigger_event_id, entry.entries) == (first_form, 1)
    assert second_form != first_form
    assert executions_of(runtime, WELCOME, lead_id) == [entry.execution_name]
    assert len(of_template(runtime, lead_id, "welcome")) == 1


def test_a_replayed_form_submission_is_answered_from_the_first(
    holiday_week_world: HolidayWeek,
) -> None:
    world = holiday_week_world
    runtime = world.runtime
    first = world.step("forms")[SUBMITS_TWICE]["body"]
    lead_id = world.leads[SUBMITS_TWICE]
    # When the browser retries the first submission (the same submission id) on Tuesday
    status, replayed = world.step("form replayed")
    # Then it gets the first answer (201 and the new lead's id), and nothing new is stored
    assert status == 201
    assert replayed == first == {"lead_id": lead_id}
    assert len(form_events(runtime, lead_id)) == 2  # the first and Friday's second form
    entry = runtime.entry(lead_id, WELCOME)
    assert entry is not None
    assert executions_of(runtime, WELCOME, lead_id) == [entry.execution_name]


def test_after_a_replayed_form_the_next_demo_form_lead_still_gets_its_welcome_mail(
    holiday_week_world: HolidayWeek,
) -> None:
    # A replay is a cancelled transaction on the events table. moto rolls one back by putting
    # back a copy of the table, stream shard and all: the local runtime must keep its stream
    # pollers reading, or no journey would start or resume for the rest of the run.
    world = holiday_week_world
    # Given a replayed submission (answered from the first), When a new person submits the form
    world.step("form replayed")
    lead_id = world.step("form after the replay")
    # Then welcome_nurture enters them and sends the welcome mail, as for everyone before (once
    # the work the submission started has settled, however long the machine takes for it)
    world.runtime.settle()
    welcome = mail_of(world.runtime, lead_id, "welcome")
    assert welcome.recipients == [AFTER_THE_REPLAY]
