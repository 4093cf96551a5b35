"""How many leads a journey has running, as the Journeys screen asks on every load
(GET /admin/journeys/status): one Step Functions request a journey, whatever its size.

Counting every execution took a ListExecutions request per 100 leads (Step Functions' default
page): 300 for a journey of 30,000, throttled on AWS, past the admin API's 29 s. The local
runtime answers a page from memory, so only the requests counted here show it."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import AwsStack, moto_client
from tsunagu.journeys.lifecycle import RUNNING_COUNTED, RunningCount
from tsunagu.store.journeys import StepFunctionsExecutions

WAITS_A_WEEK = {
    "StartAt": "Wait",
    "States": {"Wait": {"Type": "Wait", "Seconds": 604800, "End": True}},
}


def journey_with(running: int, ended: int = 0) -> str:
    """A state machine with ``running`` executions under way and ``ended`` stopped."""
    stepfunctions = moto_client("stepfunctions")
    arn: str = stepfunctions.create_state_machine(
        name="tsunagu-test-welcome_nurture",
        definition=json.dumps(WAITS_A_WEEK),
        roleArn="arn:aws:iam::123456789012:role/tsunagu-test-journeys",
    )["stateMachineArn"]
    for n in range(running + ended):
        started = stepfunctions.start_execution(stateMachineArn=arn, name=f"lead-{n:05d}")
        if n < ended:
            stepfunctions.stop_execution(executionArn=started["executionArn"])
    return arn


def requests_of(executions: StepFunctionsExecutions) -> list[tuple[str, dict[str, Any]]]:
    """Every request the adapter's client makes from now on: (operation, parameters)."""
    made: list[tuple[str, dict[str, Any]]] = []
    executions._client.meta.events.register(
        "provide-client-params.sfn",
        lambda params, model, **_: made.append((model.name, dict(params))),
    )
    return made


def test_a_journey_with_more_leads_than_a_page_is_counted_with_one_request(aws: AwsStack) -> None:
    # Given a journey with one lead more than a page of ListExecutions holds
    arn = journey_with(running=RUNNING_COUNTED + 1)
    executions = StepFunctionsExecutions(aws.settings())
    made = requests_of(executions)

    # When the status counts its running leads
    counted = executions.running_count(arn)

    # Then one request, of the largest page, says there are at least that many
    assert counted == RunningCount(RUNNING_COUNTED, at_least=True)
    assert [operation for operation, _ in made] == ["ListExecutions"]
    assert made[0][1] == {"stateMachineArn": arn, "statusFilter": "RUNNING", "maxResults": 1000}


def test_a_journey_within_a_page_is_counted_exactly_and_ended_leads_are_not(
    aws: AwsStack,
) -> None:
    arn = journey_with(running=3, ended=2)
    executions = StepFunctionsExecutions(aws.settings())
    made = requests_of(executions)

    assert executions.running_count(arn) == RunningCount(3, at_least=False)
    assert len(made) == 1
