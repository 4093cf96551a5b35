"""A journey waiting for a click, on the running local runtime: a scanner's click does not
resume it, a person's does (wait_for_event registers, route_events resumes), and with no click
the task's 3-day timeout ends it down the "did not click" branch. And a journey waiting for a
page view the lead made before the wait was registered: wait_for_event ends it at once.

The runtime runs on virtual time: simulated time stands still while any work is in flight (the
execution until it waits for its token, the click's stream record until route_events has it) and
moves only when the test advances it. So the test never sleeps on the wall clock: it waits for
the work to settle, and it checks the simulated instants the execution's history recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import RunningTsunagu, start_on_virtual_time
from tests.support import runtime as runtime_support
from tests.support.runtime import execution_history
from tsunagu.clock import isoformat, parse_instant
from tsunagu.tracking.settling import SETTLE_AFTER_SECONDS

REGION = "ap-northeast-1"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SCANNER = "python-requests/2.32.3"
CLOCK_START = "2026-12-01T01:00:00Z"
"""Tuesday 10:00 in Tokyo."""
START = parse_instant(CLOCK_START)
WAIT_SECONDS = 259200
"""How long the journey waits for the click: 3 days."""
CLOCK_TIMEOUT = 180.0
"""Real seconds the runtime may take to settle after a move of the clock: a bound for a broken
run, never a measure of the product."""


@pytest.fixture(scope="module")
def tsunagu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTsunagu]:
    """`make up` on virtual time, its clock at CLOCK_START."""
    running = start_on_virtual_time(tmp_path_factory.mktemp("journey-wait"), CLOCK_START)
    yield running
    if running.process.poll() is None:
        running.stop()


def runtime_state(tsunagu: RunningTsunagu) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((tsunagu.workdir / ".tsunagu" / "runtime.json").read_text())
    return state


def move_clock(tsunagu: RunningTsunagu, **body: Any) -> datetime:
    """``POST /_local/clock`` (``by``, ``to`` or ``settle``): returns the simulated instant once
    the clock got there and all work has settled."""
    state = runtime_support.move_clock(tsunagu.api_url, body, timeout=CLOCK_TIMEOUT)
    return parse_instant(state["now"])


def settle(tsunagu: RunningTsunagu) -> datetime:
    """Wait for the work in flight, time standing still; the clock's instant."""
    return move_clock(tsunagu, settle=True)


def stepfunctions(tsunagu: RunningTsunagu) -> Any:
    return boto3.client(
        "stepfunctions",
        region_name=REGION,
        endpoint_url=runtime_state(tsunagu)["environment"]["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def click_journey(tsunagu: RunningTsunagu) -> str:
    """A one-step journey: wait up to 3 days for a click on a given mail."""
    waiting = waiting_task(
        tsunagu,
        {"event": {"type": "link_clicked", "message_id.$": "$.message_id"}},
        then="Clicked",
        otherwise="Did not click",
    )
    definition = {
        "StartAt": "Wait for a click on the invitation",
        "States": {
            "Wait for a click on the invitation": waiting,
            "Clicked": {"Type": "Pass", "End": True},
            "Did not click": {"Type": "Pass", "Result": "no click", "End": True},
        },
    }
    return state_machine(tsunagu, "wait-for-click", definition)


def waiting_task(
    tsunagu: RunningTsunagu, awaited: dict[str, Any], *, then: str, otherwise: str
) -> dict[str, Any]:
    """A ``.waitForTaskToken`` task calling wait_for_event for what is ``awaited``, for 3 days."""
    function = runtime_state(tsunagu)["functions"]["WaitForEventFunction"]
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {
            "FunctionName": f"arn:aws:lambda:{REGION}:123456789012:function:{function}",
            "Payload": {
                "token.$": "$$.Task.Token",
                "lead_id.$": "$.lead_id",
                "wait_id.$": "$$.Execution.Name",
                "timeout_seconds": WAIT_SECONDS,
                **awaited,
            },
        },
        "TimeoutSeconds": WAIT_SECONDS,
        "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": otherwise}],
        "Next": then,
    }


def state_machine(tsunagu: RunningTsunagu, name: str, definition: dict[str, Any]) -> str:
    arn: str = stepfunctions(tsunagu).create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/journeys",
    )["stateMachineArn"]
    return arn


def status(tsunagu: RunningTsunagu, execution: str) -> dict[str, Any]:
    described: dict[str, Any] = stepfunctions(tsunagu).describe_execution(executionArn=execution)
    return described


def history(tsunagu: RunningTsunagu, execution: str) -> list[dict[str, Any]]:
    return execution_history(stepfunctions(tsunagu), execution)


def one_event(tsunagu: RunningTsunagu, execution: str, kind: str) -> dict[str, Any]:
    (event,) = [e for e in history(tsunagu, execution) if e["type"] == kind]
    return event


def states_entered(tsunagu: RunningTsunagu, execution: str) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"]
        for e in history(tsunagu, execution)
        if e["type"].endswith("StateEntered")
    ]


def click(tsunagu: RunningTsunagu, url: str, user_agent: str) -> None:
    answer, _, _ = tsunagu.request(
        "GET", url.removeprefix(tsunagu.api_url), headers={"user-agent": user_agent}
    )
    assert answer == 302


def new_lead(tsunagu: RunningTsunagu, email: str, visitor_id: str | None = None) -> str:
    """A lead from the demo form; ``visitor_id``: the browser's, which the form links to it."""
    submission = {"email": email, **({"visitor_id": visitor_id} if visitor_id else {})}
    assert tsunagu.post_json("/forms/demo/submissions", submission)[0] == 201
    lead_id: str = json.loads(tsunagu.cli("leads", "get", email).stdout)["lead_id"]
    return lead_id


def entered(tsunagu: RunningTsunagu, journey: str, name: str, lead_id: str) -> tuple[str, datetime]:
    """An execution of the journey for the lead, once the work it starts has settled: its ARN
    and its start."""
    execution: str = stepfunctions(tsunagu).start_execution(
        stateMachineArn=journey, name=name, input=json.dumps({"lead_id": lead_id})
    )["executionArn"]
    return execution, settle(tsunagu)


def waiting_for_a_click(
    tsunagu: RunningTsunagu, journey: str, lead_id: str, message_id: str
) -> tuple[str, datetime]:
    """An execution of the journey for the lead, once its task has registered the wait (the
    execution then waits for its token, and the work has settled): its ARN and its start."""
    execution: str = stepfunctions(tsunagu).start_execution(
        stateMachineArn=journey,
        name=f"seminar-{lead_id}",
        input=json.dumps({"lead_id": lead_id, "message_id": message_id}),
    )["executionArn"]
    started = settle(tsunagu)
    described = status(tsunagu, execution)
    assert described["status"] == "RUNNING", described
    assert described["startDate"] == started
    # The task registered its wait (wait_for_event answered) with a deadline 3 days on
    submitted = one_event(tsunagu, execution, "TaskSubmitted")
    registered = json.loads(submitted["taskSubmittedEventDetails"]["output"])["Payload"]
    assert registered["registered"] == f"seminar-{lead_id}"
    assert parse_instant(registered["deadline"]) == started + timedelta(seconds=WAIT_SECONDS)
    assert submitted["timestamp"] == started
    return execution, started


def test_a_person_click_resumes_the_journey_and_a_scanner_click_does_not(
    tsunagu: RunningTsunagu, click_journey: str
) -> None:
    email = "journey@example.com"
    lead_id = new_lead(tsunagu, email)
    message_id = "msg_invitation_0001"

    # Given a journey waiting for a click on the invitation
    execution, started = waiting_for_a_click(tsunagu, click_journey, lead_id, message_id)
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

    # When a link scanner follows the link as the mail arrives, and the stream has delivered
    # the click to route_events, Then the journey keeps waiting
    click(tsunagu, links["links"][0], SCANNER)
    assert settle(tsunagu) == started
    assert status(tsunagu, execution)["status"] == "RUNNING"

    # When the person clicks two hours later, Then nothing acts on the click while a burst
    # could still show it to be a machine's, and once that window has passed the journey goes
    # on down the "clicked" branch
    clicked_at = move_clock(tsunagu, by="2h")
    assert clicked_at == started + timedelta(hours=2)
    assert status(tsunagu, execution)["status"] == "RUNNING"
    click(tsunagu, links["links"][0], CHROME)
    assert settle(tsunagu) == clicked_at
    assert status(tsunagu, execution)["status"] == "RUNNING"
    settled_at = clicked_at + timedelta(seconds=SETTLE_AFTER_SECONDS)
    assert move_clock(tsunagu, by=f"{SETTLE_AFTER_SECONDS:g}s") == settled_at
    finished = status(tsunagu, execution)
    assert finished["status"] == "SUCCEEDED", "".join(tsunagu.output)[-3000:]
    output = json.loads(finished["output"])
    assert output["event"] == "link_clicked"
    assert output["properties"]["message_id"] == message_id
    assert output["properties"]["automated"] is False
    assert parse_instant(output["occurred_at"]) == clicked_at
    assert states_entered(tsunagu, execution) == ["Wait for a click on the invitation", "Clicked"]
    assert one_event(tsunagu, execution, "TaskSucceeded")["timestamp"] == settled_at
    assert finished["stopDate"] == settled_at


def score(tsunagu: RunningTsunagu, email: str) -> float:
    lead = json.loads(tsunagu.cli("leads", "get", email).stdout)
    return float(lead.get("score") or 0)


GATEWAY_CLICKS = {
    # (link index, seconds after the previous click): how a security gateway that does not
    # name itself follows a mail's visible links, an hour after the mail arrived
    "links in document order, seconds apart": [(0, 0), (1, 3), (2, 3)],
    "links in reverse order, seconds apart": [(2, 0), (1, 4), (0, 4)],
    "one link fetched twice within a second": [(0, 0), (0, 0.4)],
}


@pytest.mark.parametrize("pattern", list(GATEWAY_CLICKS))
def test_a_gateways_clicks_never_resume_the_journey_nor_score(
    tsunagu: RunningTsunagu, click_journey: str, pattern: str
) -> None:
    email = f"gateway.{list(GATEWAY_CLICKS).index(pattern)}@example.com"
    lead_id = new_lead(tsunagu, email)
    message_id = f"msg_gateway_{list(GATEWAY_CLICKS).index(pattern)}"
    execution, _ = waiting_for_a_click(tsunagu, click_journey, lead_id, message_id)
    links = json.loads(
        tsunagu.cli(
            "tracking",
            "links",
            email,
            *[
                option
                for page in ("seminar", "pricing", "case-study")
                for option in ("--url", f"https://www.example.com/{page}")
            ],
            "--message",
            message_id,
            "--api",
            tsunagu.api_url,
            "--sent-seconds-ago",
            "3600",
        ).stdout
    )["links"]
    before = score(tsunagu, email)

    # When the gateway clicks, with a browser's user agent, the first click alone looking
    # like a person's
    for index, (link, pause) in enumerate(GATEWAY_CLICKS[pattern]):
        if pause:
            move_clock(tsunagu, by=f"{pause:g}s")
        click(tsunagu, links[link], CHROME)
        if index == 0:
            # Then nothing has acted on the first click yet, though it is stored as a person's
            settle(tsunagu)
            assert status(tsunagu, execution)["status"] == "RUNNING"
            assert score(tsunagu, email) == before

    # When every click has settled
    move_clock(tsunagu, by="1m")

    # Then every click is a machine's (the first re-judged by the burst), the journey still
    # waits for a person's click, and the lead earned no points
    clicks = [
        e
        for e in json.loads(tsunagu.cli("leads", "timeline", email, "--json").stdout)
        if e["type"] == "link_clicked"
    ]
    assert len(clicks) == len(GATEWAY_CLICKS[pattern])
    assert all(c["automated"] and "link_burst" in c["reasons"] for c in clicks), clicks
    assert status(tsunagu, execution)["status"] == "RUNNING"
    assert score(tsunagu, email) == before


def test_with_no_click_the_journey_goes_on_when_its_three_days_are_up(
    tsunagu: RunningTsunagu, click_journey: str
) -> None:
    lead_id = new_lead(tsunagu, "no.click@example.com")

    # Given a journey waiting for a click on the invitation
    execution, started = waiting_for_a_click(tsunagu, click_journey, lead_id, "msg_invitation_0002")
    deadline = started + timedelta(seconds=WAIT_SECONDS)

    # When a second less than 3 days passes, Then it still waits
    move_clock(tsunagu, to=isoformat(deadline - timedelta(seconds=1)))
    assert status(tsunagu, execution)["status"] == "RUNNING"

    # When the 3 days are up, Then it goes down the "did not click" branch at exactly then
    assert move_clock(tsunagu, by="1s") == deadline
    finished = status(tsunagu, execution)
    assert finished["status"] == "SUCCEEDED", "".join(tsunagu.output)[-3000:]
    assert states_entered(tsunagu, execution) == [
        "Wait for a click on the invitation",
        "Did not click",
    ]
    assert one_event(tsunagu, execution, "TaskTimedOut")["timestamp"] == deadline
    assert finished["stopDate"] == deadline


@pytest.fixture(scope="module")
def visit_journey(tsunagu: RunningTsunagu) -> str:
    """An hour's pause, then up to 3 days' wait for a visit to the pricing page, as compiled
    journeys call wait_for_event (with ``$$.Execution``: when the lead entered)."""
    waiting = waiting_task(
        tsunagu,
        {
            "events": [{"type": "page_view", "url_contains": "/pricing", "label": "pricing"}],
            "execution.$": "$$.Execution",
        },
        then="Visited",
        otherwise="Did not visit",
    )
    definition = {
        "StartAt": "An hour after entering",
        "States": {
            "An hour after entering": {
                "Type": "Wait",
                "Seconds": 3600,
                "Next": "Wait for a visit to the pricing page",
            },
            "Wait for a visit to the pricing page": {**waiting, "ResultPath": "$.visit"},
            "Visited": {"Type": "Pass", "End": True},
            "Did not visit": {"Type": "Pass", "Result": "no visit", "End": True},
        },
    }
    return state_machine(tsunagu, "wait-for-a-visit", definition)


def view_page(tsunagu: RunningTsunagu, visitor_id: str, path: str) -> None:
    beacon = {
        "site_id": "demo",
        "events": [
            {"type": "page_view", "visitor_id": visitor_id, "url": f"{tsunagu.api_url}{path}"}
        ],
    }
    # As the demo page's snippet posts it: a browser sends its page's Origin (a post without one
    # is judged a machine's, no_origin, and ends no wait)
    headers = {"user-agent": CHROME, "origin": tsunagu.api_url}
    answer, body = tsunagu.post_json("/t/events", beacon, **headers)
    assert answer == 200 and body["accepted"] == 1, body


def test_a_visit_made_before_the_wait_is_registered_ends_it_when_it_is(
    tsunagu: RunningTsunagu, visit_journey: str
) -> None:
    # Given a lead (whose browser's visitor id the form linked to it) in the journey's pause
    visitor = "v_visits_before_the_wait_01"
    lead_id = new_lead(tsunagu, "early.visit@example.jp", visitor)
    execution, started = entered(tsunagu, visit_journey, f"visit-{lead_id}", lead_id)
    # When the lead views the home page, then the pricing page, during the pause
    move_clock(tsunagu, by="10m")
    view_page(tsunagu, visitor, "/_local/demo/")
    move_clock(tsunagu, by="10m")
    view_page(tsunagu, visitor, "/_local/demo/pricing")
    visited_at = settle(tsunagu)

    # Then, when the wait is registered an hour after entering, the visit ends it at once
    assert move_clock(tsunagu, by="40m") == started + timedelta(hours=1)
    finished = status(tsunagu, execution)
    assert finished["status"] == "SUCCEEDED", "".join(tsunagu.output)[-3000:]
    assert states_entered(tsunagu, execution) == [
        "An hour after entering",
        "Wait for a visit to the pricing page",
        "Visited",
    ]
    visit = json.loads(finished["output"])["visit"]
    assert visit["matched"] == "pricing" and visit["event"] == "page_view"
    assert parse_instant(visit["occurred_at"]) == visited_at
    assert visit["properties"]["path"] == "/_local/demo/pricing"
    assert finished["stopDate"] == started + timedelta(hours=1)


def test_one_visit_ends_one_of_two_waits_in_a_row_for_it(tsunagu: RunningTsunagu) -> None:
    # Given a journey that waits twice in a row for a visit to the pricing page, after a pause
    awaited = {
        "events": [{"type": "page_view", "url_contains": "/pricing", "label": "pricing"}],
        "execution.$": "$$.Execution",
        "state.$": "$",
    }
    first = waiting_task(tsunagu, awaited, then="Wait for another visit", otherwise="No visit")
    second = waiting_task(tsunagu, awaited, then="Visited twice", otherwise="Visited once")
    journey = state_machine(
        tsunagu,
        "two-waits-for-a-visit",
        {
            "StartAt": "An hour after entering",
            "States": {
                "An hour after entering": {
                    "Type": "Wait",
                    "Seconds": 3600,
                    "Next": "Wait for a visit",
                },
                # As compiled journeys keep what ended a wait: the state's response
                "Wait for a visit": {**first, "ResultPath": "$.response"},
                "Wait for another visit": {**second, "ResultPath": "$.response"},
                "Visited twice": {"Type": "Pass", "End": True},
                "Visited once": {"Type": "Pass", "End": True},
                "No visit": {"Type": "Pass", "End": True},
            },
        },
    )
    visitor = "v_visits_once_before_0001"
    lead_id = new_lead(tsunagu, "visits.once@example.jp", visitor)
    execution, started = entered(tsunagu, journey, f"twice-{lead_id}", lead_id)

    # When the lead views the pricing page once, during the pause
    move_clock(tsunagu, by="10m")
    view_page(tsunagu, visitor, "/_local/demo/pricing")
    settle(tsunagu)

    # Then the first wait ends with it when it is registered, and the second does not: it
    # waits its 3 days out
    move_clock(tsunagu, by="50m")
    assert status(tsunagu, execution)["status"] == "RUNNING"
    move_clock(tsunagu, to=isoformat(started + timedelta(hours=1, seconds=WAIT_SECONDS)))
    finished = status(tsunagu, execution)
    assert finished["status"] == "SUCCEEDED", "".join(tsunagu.output)[-3000:]
    assert states_entered(tsunagu, execution) == [
        "An hour after entering",
        "Wait for a visit",
        "Wait for another visit",
        "Visited once",
    ]
