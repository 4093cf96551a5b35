"""A journey waiting for a click, on the running local runtime: a scanner's click does not
resume it, a person's does (wait_for_event registers, route_events resumes)."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3

from tests.e2e.conftest import RunningTsunagu

REGION = "ap-northeast-1"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def runtime_state(tsunagu: RunningTsunagu) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((tsunagu.workdir / ".tsunagu" / "runtime.json").read_text())
    return state


def stepfunctions(tsunagu: RunningTsunagu) -> Any:
    return boto3.client(
        "stepfunctions",
        region_name=REGION,
        endpoint_url=runtime_state(tsunagu)["environment"]["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def wait_for_click_journey(tsunagu: RunningTsunagu) -> str:
    """A one-step journey: wait up to 3 days for a click on a given mail."""
    function = runtime_state(tsunagu)["functions"]["WaitForEventFunction"]
    definition = {
        "StartAt": "Wait for a click on the invitation",
        "States": {
            "Wait for a click on the invitation": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": f"arn:aws:lambda:{REGION}:123456789012:function:{function}",
                    "Payload": {
                        "token.$": "$$.Task.Token",
                        "lead_id.$": "$.lead_id",
                        "wait_id.$": "$$.Execution.Name",
                        "event": {"type": "link_clicked", "message_id.$": "$.message_id"},
                        "timeout_seconds": 259200,
                    },
                },
                "TimeoutSeconds": 259200,
                "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Did not click"}],
                "Next": "Clicked",
            },
            "Clicked": {"Type": "Pass", "End": True},
            "Did not click": {"Type": "Pass", "Result": "no click", "End": True},
        },
    }
    arn: str = stepfunctions(tsunagu).create_state_machine(
        name="wait-for-click",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/journeys",
    )["stateMachineArn"]
    return arn


def status(tsunagu: RunningTsunagu, execution: str) -> dict[str, Any]:
    described: dict[str, Any] = stepfunctions(tsunagu).describe_execution(executionArn=execution)
    return described


def click(tsunagu: RunningTsunagu, url: str, user_agent: str) -> None:
    answer, _, _ = tsunagu.request(
        "GET", url.removeprefix(tsunagu.api_url), headers={"user-agent": user_agent}
    )
    assert answer == 302


def test_a_person_click_resumes_the_journey_and_a_scanner_click_does_not(
    tsunagu: RunningTsunagu,
) -> None:
    email = "journey@example.com"
    assert tsunagu.post_json("/forms/demo/submissions", {"email": email})[0] == 201
    lead_id = json.loads(tsunagu.cli("leads", "get", email).stdout)["lead_id"]
    message_id = "msg_invitation_0001"

    # Given a journey waiting for a click on the invitation
    execution = stepfunctions(tsunagu).start_execution(
        stateMachineArn=wait_for_click_journey(tsunagu),
        name=f"seminar-{lead_id}",
        input=json.dumps({"lead_id": lead_id, "message_id": message_id}),
    )["executionArn"]
    links = json.loads(
        tsunagu.cli(
            "tracking",
            "links",
            email,
            "--url",
            "https://www.example.com/seminar",
            "--message",
            message_id,
            "--api",
            tsunagu.api_url,
            "--sent-seconds-ago",
            "3600",
        ).stdout
    )
    time.sleep(1.5)  # the task registers its wait

    # When a link scanner follows the link, Then the journey keeps waiting
    click(tsunagu, links["links"][0], "python-requests/2.32.3")
    time.sleep(2.0)  # the stream delivers the click to route_events
    assert status(tsunagu, execution)["status"] == "RUNNING"

    # When the person clicks, Then the journey goes on down the "clicked" branch
    click(tsunagu, links["links"][0], CHROME)
    deadline = time.monotonic() + 15
    while status(tsunagu, execution)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.3)
    finished = status(tsunagu, execution)
    assert finished["status"] == "SUCCEEDED", "".join(tsunagu.output)[-3000:]
    output = json.loads(finished["output"])
    assert output["event"] == "link_clicked"
    assert output["properties"]["message_id"] == message_id
    assert output["properties"]["automated"] is False
