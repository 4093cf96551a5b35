"""Waiting for behaviour on the runtime's clock: a ``.waitForTaskToken`` task's TimeoutSeconds and
HeartbeatSeconds (and their Path forms) pass at the runtime's time scale, as its Waits do.

The fixture's click journey (tests/fixtures/runtime_stack/statemachines/wait_for_click.asl.json)
waits one day, then for a task token with a three-day timeout caught as the "did not click"
branch. This module starts its own runtime at one simulated day per real second, so that timeout
takes three real seconds instead of the 72 it takes at the other module's hour per second.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.runtime import FIXTURE_STACK, RunningRuntime, physical_name, start_runtime, wait_for

DAY = 86400
TIME_SCALE = float(DAY)  # one simulated day per real second
CLICK_TIMEOUT = 3 * DAY  # the fixture's TimeoutSeconds: 259200
WAIT = 1 * DAY  # the fixture's "Wait one day"
# Real seconds a measured duration may stray from its nominal value (thread start-up, events,
# a loaded machine); at this scale 0.25 real seconds is six simulated hours.
SLACK = 0.25
LEDGER = physical_name("LedgerTable")
CLICK_JOURNEY = physical_name("FixtureClickJourney")
WAIT_FOR_CLICK = "Wait for the click"
WAIT_FOR_CLICK_WITH_HEARTBEATS = "Wait for the click, with heartbeats"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    state_dir = tmp_path_factory.mktemp("task-timeouts")
    running = start_runtime(FIXTURE_STACK / "template.yaml", state_dir, time_scale=TIME_SCALE)
    try:
        yield running
        assert running.stop() == 0, running.output()
    finally:
        running.kill()


@dataclass(frozen=True)
class ClickRun:
    runtime: RunningRuntime
    name: str
    started_at: float
    """time.time() just before StartExecution."""
    ended_at: float
    """time.time() when the test saw the execution end."""
    description: dict[str, Any]
    events: list[dict[str, Any]]

    @property
    def output(self) -> Any:
        return json.loads(self.description["output"])

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def state_event(self, suffix: str, state: str) -> dict[str, Any]:
        key = "stateEnteredEventDetails" if suffix == "StateEntered" else "stateExitedEventDetails"
        return next(
            e for e in self.events if e["type"].endswith(suffix) and e[key]["name"] == state
        )

    def real_seconds(self, first: dict[str, Any], last: dict[str, Any]) -> float:
        return float((last["timestamp"] - first["timestamp"]).total_seconds())

    def simulated_seconds(self, first: dict[str, Any], last: dict[str, Any]) -> float:
        """How long the runtime's clock says passed between two history events."""
        start = self.runtime.simulated_now(at=first["timestamp"].timestamp())
        end = self.runtime.simulated_now(at=last["timestamp"].timestamp())
        return (end - start).total_seconds()


def start_click_journey(runtime: RunningRuntime, **inputs: Any) -> tuple[str, str, float]:
    """Start the click journey; returns its name, execution ARN and the real start time."""
    stepfunctions = runtime.client("stepfunctions")
    machines = stepfunctions.list_state_machines()["stateMachines"]
    [arn] = [m["stateMachineArn"] for m in machines if m["name"] == CLICK_JOURNEY]
    name = f"click-{uuid.uuid4().hex[:12]}"
    started_at = time.time()
    execution_arn = stepfunctions.start_execution(
        stateMachineArn=arn, name=name, input=json.dumps({"lead": "lead-1", **inputs})
    )["executionArn"]
    return name, execution_arn, started_at


def is_running(runtime: RunningRuntime, execution_arn: str) -> bool:
    description = runtime.client("stepfunctions").describe_execution(executionArn=execution_arn)
    return bool(description["status"] == "RUNNING")


def finished(runtime: RunningRuntime, name: str, execution_arn: str, started_at: float) -> ClickRun:
    stepfunctions = runtime.client("stepfunctions")
    wait_for(
        lambda: not is_running(runtime, execution_arn),
        timeout=15,
        what=f"execution {name} to end",
    )
    ended_at = time.time()
    description = stepfunctions.describe_execution(executionArn=execution_arn)
    events = stepfunctions.get_execution_history(executionArn=execution_arn, maxResults=1000)
    return ClickRun(runtime, name, started_at, ended_at, description, events["events"])


def recorded_token(runtime: RunningRuntime, name: str) -> str:
    """The task token the record_token function wrote to the ledger for this execution."""

    def probe() -> str | None:
        item = runtime.client("dynamodb").get_item(
            TableName=LEDGER, Key={"pk": {"S": "token"}, "sk": {"S": name}}
        )
        return item.get("Item", {}).get("token", {}).get("S")

    return wait_for(probe, timeout=10, interval=0.05, what=f"the task token of {name}")


@pytest.fixture(scope="module")
def unanswered(runtime: RunningRuntime) -> ClickRun:
    """One click journey nobody answers, waited for until it ends."""
    name, execution_arn, started_at = start_click_journey(runtime)
    recorded_token(runtime, name)  # the task did call the function, and then nobody answered
    return finished(runtime, name, execution_arn, started_at)


# ---------------------------------------------------------------------- TimeoutSeconds


def test_unanswered_task_times_out_in_three_simulated_days_into_the_did_not_branch(
    unanswered: ClickRun,
) -> None:
    # Given nobody answers the task token, When the three-day timeout passes
    # Then the execution took the "did not click" branch through a caught States.Timeout
    assert unanswered.description["status"] == "SUCCEEDED", unanswered.description
    assert unanswered.output["branch"] == "did not click"
    assert unanswered.output["timeout"]["Error"] == "States.Timeout"
    assert "click" not in unanswered.output
    # ... the history shows the task timing out, not failing
    [timed_out] = unanswered.of_type("TaskTimedOut")
    assert timed_out["taskTimedOutEventDetails"]["error"] == "States.Timeout"
    assert timed_out["taskTimedOutEventDetails"]["resource"] == "invoke.waitForTaskToken"
    click_entered = unanswered.state_event("StateEntered", WAIT_FOR_CLICK)
    after_entered = [e["type"] for e in unanswered.events if e["id"] > click_entered["id"]]
    assert "TaskSucceeded" not in after_entered
    assert "TaskFailed" not in after_entered
    entered = unanswered.state_event("StateEntered", "Did not click")
    assert entered["id"] > timed_out["id"]
    # ... and it did so in a few real seconds: a day's Wait and three days' timeout, at a day
    # per second
    assert unanswered.ended_at - unanswered.started_at < (WAIT + CLICK_TIMEOUT) / TIME_SCALE + 3


def test_history_keeps_the_templates_timeout_seconds(unanswered: ClickRun) -> None:
    # Only the wait is on the clock: what the task was scheduled with is the template's value.
    # The echo call, then the click task.
    echo, click = [e["taskScheduledEventDetails"] for e in unanswered.of_type("TaskScheduled")]
    assert echo["timeoutInSeconds"] == 60
    assert click["timeoutInSeconds"] == CLICK_TIMEOUT
    assert click["resource"] == "invoke.waitForTaskToken"
    assert "heartbeatInSeconds" not in click


def test_work_tasks_keep_real_time_timeouts(unanswered: ClickRun) -> None:
    # The echo call's TimeoutSeconds: 60 would be 0.7 ms on this clock: it did not time out,
    # because a task that does work (rather than wait for a token) runs in real time.
    entered = unanswered.state_event("StateEntered", "Call the echo function within a minute")
    exited = unanswered.state_event("StateExited", "Call the echo function within a minute")
    assert [e["type"] for e in unanswered.events if entered["id"] < e["id"] < exited["id"]] == [
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
    ]


def test_answered_task_takes_the_success_branch_with_the_answer(runtime: RunningRuntime) -> None:
    # Given a click journey waiting for its task token
    name, execution_arn, started_at = start_click_journey(runtime)
    token = recorded_token(runtime, name)
    # When the click arrives (well within the three simulated days) and is answered
    answer = {"clicked": "https://example.com/white-paper", "lead": "lead-1"}
    runtime.client("stepfunctions").send_task_success(taskToken=token, output=json.dumps(answer))
    run = finished(runtime, name, execution_arn, started_at)
    # Then the execution took the "clicked" branch, with the answer as the task's result
    assert run.description["status"] == "SUCCEEDED", run.description
    assert run.output["branch"] == "clicked"
    assert run.output["click"] == answer
    assert "timeout" not in run.output
    assert not run.of_type("TaskTimedOut")
    [succeeded] = run.of_type("TaskSucceeded")[-1:]
    assert json.loads(succeeded["taskSucceededEventDetails"]["output"]) == answer
    [submitted] = run.of_type("TaskSubmitted")[-1:]
    assert run.simulated_seconds(submitted, succeeded) < CLICK_TIMEOUT
    # ... and the token, once answered, is not accepted again
    with pytest.raises(ClientError):
        runtime.client("stepfunctions").send_task_success(taskToken=token, output="{}")


def test_a_wait_and_a_task_timeout_follow_the_same_clock(unanswered: ClickRun) -> None:
    # The Wait of one day and the three-day timeout, measured on the runtime's clock from the
    # history's (real) timestamps, are one and three simulated days: real time times the scale.
    wait_entered = unanswered.state_event("StateEntered", "Wait one day")
    wait_exited = unanswered.state_event("StateExited", "Wait one day")
    [submitted] = unanswered.of_type("TaskSubmitted")[-1:]  # the click task's, after the echo
    [timed_out] = unanswered.of_type("TaskTimedOut")
    waited = unanswered.simulated_seconds(wait_entered, wait_exited)
    timed = unanswered.simulated_seconds(submitted, timed_out)
    assert abs(waited - WAIT) <= SLACK * TIME_SCALE, waited / DAY
    assert abs(timed - CLICK_TIMEOUT) <= SLACK * TIME_SCALE, timed / DAY
    for nominal, (first, last) in (
        (WAIT, (wait_entered, wait_exited)),
        (CLICK_TIMEOUT, (submitted, timed_out)),
    ):
        assert abs(unanswered.real_seconds(first, last) - nominal / TIME_SCALE) <= SLACK
    # One clock: the whole execution, a day's wait then three days unanswered, took four days.
    [execution_started] = unanswered.of_type("ExecutionStarted")
    total = unanswered.simulated_seconds(execution_started, timed_out)
    assert abs(total - (WAIT + CLICK_TIMEOUT)) <= 2 * SLACK * TIME_SCALE, total / DAY


# ---------------------------------------------------------------------- HeartbeatSeconds


def test_silent_worker_times_out_after_heartbeat_seconds_path(runtime: RunningRuntime) -> None:
    # Given a click task whose timeout (three days) and heartbeat (one day) come from the input
    name, execution_arn, started_at = start_click_journey(
        runtime, timeout_seconds=CLICK_TIMEOUT, heartbeat_seconds=DAY
    )
    recorded_token(runtime, name)
    # When no heartbeat comes
    run = finished(runtime, name, execution_arn, started_at)
    # Then it times out after one simulated day, not three, into the "did not click" branch
    assert run.description["status"] == "SUCCEEDED", run.description
    assert run.output["branch"] == "did not click"
    schedule = run.of_type("TaskScheduled")[-1]["taskScheduledEventDetails"]
    assert (schedule["timeoutInSeconds"], schedule["heartbeatInSeconds"]) == (CLICK_TIMEOUT, DAY)
    [submitted] = run.of_type("TaskSubmitted")[-1:]
    [timed_out] = run.of_type("TaskTimedOut")
    assert abs(run.simulated_seconds(submitted, timed_out) - DAY) <= SLACK * TIME_SCALE
    assert run.state_event("StateEntered", WAIT_FOR_CLICK_WITH_HEARTBEATS)


def test_heartbeats_keep_the_task_alive_until_timeout_seconds_path(
    runtime: RunningRuntime,
) -> None:
    # Given the same task, and a worker that sends a heartbeat every few simulated hours
    name, execution_arn, started_at = start_click_journey(
        runtime, timeout_seconds=CLICK_TIMEOUT, heartbeat_seconds=DAY
    )
    token = recorded_token(runtime, name)
    stepfunctions = runtime.client("stepfunctions")
    beats = 0
    while is_running(runtime, execution_arn):
        try:
            stepfunctions.send_task_heartbeat(taskToken=token)
        except ClientError:
            break  # the task has ended
        beats += 1
        time.sleep(0.2)  # 4.8 simulated hours
    run = finished(runtime, name, execution_arn, started_at)
    # Then the heartbeats kept it past many heartbeat intervals, and the three-day timeout ended it
    assert beats >= 10
    assert run.output["branch"] == "did not click"
    [submitted] = run.of_type("TaskSubmitted")[-1:]
    [timed_out] = run.of_type("TaskTimedOut")
    timed = run.simulated_seconds(submitted, timed_out)
    assert abs(timed - CLICK_TIMEOUT) <= SLACK * TIME_SCALE, timed / DAY
