"""next_send_time's handler, as a journey's Task calls it, with the sample events."""

from __future__ import annotations

import time

import pytest

from tests.conftest import AwsStack, load_event
from tsunagu_local.lambdas import FunctionError


def at_friday_afternoon(aws: AwsStack) -> AwsStack:
    # The runtime's clock, held (almost) still at Friday 20 November 2026, 15:00 in Tokyo.
    aws.environment.update(
        {
            "TSUNAGU_CLOCK_START": "2026-11-20T06:00:00Z",
            "TSUNAGU_CLOCK_EPOCH": repr(time.time()),
            "TSUNAGU_TIME_SCALE": "0.001",
            "TSUNAGU_COMPANY_CLOSED_DAYS": "2026-12-29..2027-01-03",
        }
    )
    return aws


def test_next_business_day_for_a_wait_state(aws: AwsStack) -> None:
    result = (
        at_friday_afternoon(aws)
        .function("next_send_time")
        .invoke(load_event("next_send_time", "next_business_day"))
    )
    assert result == {"send_at": "2026-11-24T01:00:00Z"}  # Monday is a holiday


def test_defaults_to_the_stage_time_zone(aws: AwsStack) -> None:
    result = (
        at_friday_afternoon(aws)
        .function("next_send_time")
        .invoke(load_event("next_send_time", "three_business_days"))
    )
    assert result == {"send_at": "2026-11-26T01:00:00Z"}


def test_a_lead_time_zone_that_is_not_a_zone_waits_in_the_stacks(aws: AwsStack) -> None:
    # Given a lead whose time_zone field came from a form as "Tokyo" (not a zone name)
    state = {"lead_id": "lead_x", "journey_id": "j", "time_zone": "Tokyo"}

    # When its journey schedules the next business day's mail
    result = (
        at_friday_afternoon(aws)
        .function("next_send_time")
        .invoke({"rule": {"kind": "next_business_day", "at": "10:00"}, "state": state})
    )

    # Then the wait is in the stack's time zone (Tokyo), not a failed execution
    assert result == {"send_at": "2026-11-24T01:00:00Z"}


def test_a_bad_rule_fails_the_task(aws: AwsStack) -> None:
    with pytest.raises(FunctionError):
        aws.function("next_send_time").invoke({"rule": {"kind": "whenever"}})


def test_a_mail_for_that_day_only_gets_its_send_by(aws: AwsStack) -> None:
    # Mail C of seminar_follow_up: "thank you for attending today", before the 19:00 cutoff
    result = (
        at_friday_afternoon(aws)
        .function("next_send_time")
        .invoke(load_event("next_send_time", "same_day_only"))
    )
    # Then: now (Friday 15:00 JST), and by 20:00 JST when quiet hours begin
    assert result == {"send_at": "2026-11-20T06:00:00Z", "send_by": "2026-11-20T11:00:00.000Z"}
