"""Waiting for behaviour on the runtime's clock: a ``.waitForTaskToken`` task's TimeoutSeconds and
HeartbeatSeconds (and their Path forms) run on the runtime's clock, as its Waits do.

The fixture's click journey (tests/fixtures/runtime_stack/statemachines/wait_for_click.asl.json)
waits one day, then for a task token with a three-day timeout caught as the "did not click"
branch. This module's runtime runs in virtual time: the clock stands still until the test moves
it, so a timeout is asserted to the exact simulated instant, whatever the machine's speed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.runtime import FIXTURE_STACK, RunningRuntime, physical_name, start_runtime, utc
from tests.support.runtime import execution_history

DAY = 86400
CLICK_TIMEOUT = 3 * DAY  # the fixture's TimeoutSeconds: 259200
WAIT = 1 * DAY  # the fixture's "Wait one day"
LEDGER = physical_name("LedgerTable")
CLICK_JOURNEY = physical_name("FixtureClickJourney")
WAIT_FOR_CLICK = "Wait for the click"
WAIT_FOR_CLICK_WITH_HEARTBEATS = "Wait for the click, with heartbeats"


def seconds(count: float) -> timedelta:
    return timedelta(seconds=count)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    state_dir = tmp_path_factory.mktemp("task-timeouts")
    running = start_runtime(FIXTURE_STACK / "template.yaml", state_dir, virtual_time=True)
    try:
        yield running
        assert running.stop() == 0, running.output()
    finally:
        running.kill()


@pytest.fixture(autouse=True)
def nothing_left_waiting(runtime: RunningRuntime) -> Iterator[None]:
    """Every test leaves no execution waiting on the clock for the next one."""
    yield
    runtime.advance(until_idle=True)


@dataclass(frozen=True)
class ClickRun:
    name: str
    execution_arn: str
    started_at: datetime
    """The runtime's clock when the execution was started."""
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

    def click_task(self, kind: str) -> dict[str, Any]:
        """The click task's event of ``kind`` (the echo call's come first)."""
        return self.of_type(kind)[-1]

    def at(self, event: dict[str, Any]) -> timedelta:
        """When an event happened, on the runtime's clock, counted from the start."""
        instant: datetime = event["timestamp"]
        return instant - self.started_at


@dataclass(frozen=True)
class Started:
    name: str
    execution_arn: str
    started_at: datetime


def start_click_journey(runtime: RunningRuntime, **inputs: Any) -> Started:
    stepfunctions = runtime.client("stepfunctions")
    machines = stepfunctions.list_state_machines()["stateMachines"]
    [arn] = [m["stateMachineArn"] for m in machines if m["name"] == CLICK_JOURNEY]
    name = f"click-{uuid.uuid4().hex[:12]}"
    started_at = runtime.simulated_now()
    execution_arn = stepfunctions.start_execution(
        stateMachineArn=arn, name=name, input=json.dumps({"lead": "lead-1", **inputs})
    )["executionArn"]
    return Started(name, execution_arn, started_at)


def status(runtime: RunningRuntime, started: Started) -> str:
    description = runtime.client("stepfunctions").describe_execution(
        executionArn=started.execution_arn
    )
    return str(description["status"])


def run_of(runtime: RunningRuntime, started: Started) -> ClickRun:
    """The execution as it is now (the caller has let time settle)."""
    stepfunctions = runtime.client("stepfunctions")
    description = stepfunctions.describe_execution(executionArn=started.execution_arn)
    events = execution_history(stepfunctions, started.execution_arn)
    return ClickRun(started.name, started.execution_arn, started.started_at, description, events)


def ended(runtime: RunningRuntime, started: Started) -> ClickRun:
    run = run_of(runtime, started)
    assert run.description["status"] != "RUNNING", "the execution had not ended when time settled"
    return run


def recorded_token(runtime: RunningRuntime, started: Started) -> str:
    """The task token the record_token function wrote to the ledger for this execution."""
    item = runtime.client("dynamodb").get_item(
        TableName=LEDGER, Key={"pk": {"S": "token"}, "sk": {"S": started.name}}
    )
    assert "Item" in item, f"no task token recorded for {started.name}"
    return str(item["Item"]["token"]["S"])


def past_the_days_wait(runtime: RunningRuntime, started: Started) -> str:
    """Move the clock past the journey's one-day Wait: the click task then waits for its
    token, which it has given to the record_token function."""
    state = runtime.advance(by="1d")
    assert utc(state["now"]) == started.started_at + seconds(WAIT)
    assert status(runtime, started) == "RUNNING"
    return recorded_token(runtime, started)


@pytest.fixture(scope="module")
def unanswered(runtime: RunningRuntime) -> ClickRun:
    """One click journey nobody answers, run until nothing is left to happen."""
    started = start_click_journey(runtime)
    past_the_days_wait(runtime, started)  # the task did call the function; nobody answers
    state = runtime.advance(until_idle=True)
    assert utc(state["now"]) == started.started_at + seconds(WAIT + CLICK_TIMEOUT)
    return ended(runtime, started)


# ---------------------------------------------------------------------- TimeoutSeconds


def test_unanswered_task_times_out_three_simulated_days_after_it_was_scheduled(
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
    # ... exactly three days after the task was scheduled (once the day's Wait was over)
    scheduled = unanswered.click_task("TaskScheduled")
    assert unanswered.at(scheduled) == seconds(WAIT)
    assert timed_out["timestamp"] - scheduled["timestamp"] == seconds(CLICK_TIMEOUT)
    assert unanswered.description["stopDate"] == timed_out["timestamp"]


def test_history_keeps_the_templates_timeout_seconds(unanswered: ClickRun) -> None:
    # Only the wait is on the clock: what the task was scheduled with is the template's value.
    # The echo call, then the click task.
    echo, click = [e["taskScheduledEventDetails"] for e in unanswered.of_type("TaskScheduled")]
    assert echo["timeoutInSeconds"] == 60
    assert click["timeoutInSeconds"] == CLICK_TIMEOUT
    assert click["resource"] == "invoke.waitForTaskToken"
    assert "heartbeatInSeconds" not in click


def test_work_tasks_keep_real_time_timeouts(unanswered: ClickRun) -> None:
    # The echo call's TimeoutSeconds: 60 is not a timeout on the runtime's clock: a task that
    # does work (rather than wait for a token) runs in real time, and it did not time out.
    entered = unanswered.state_event("StateEntered", "Call the echo function within a minute")
    exited = unanswered.state_event("StateExited", "Call the echo function within a minute")
    assert [e["type"] for e in unanswered.events if entered["id"] < e["id"] < exited["id"]] == [
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
    ]


def test_answered_task_takes_the_success_branch_with_the_answer(runtime: RunningRuntime) -> None:
    # Given a click journey waiting for its task token, and two of its three days gone by
    started = start_click_journey(runtime)
    token = past_the_days_wait(runtime, started)
    runtime.advance(by="2d")
    assert status(runtime, started) == "RUNNING"
    # When the click arrives and is answered
    answer = {"clicked": "https://example.com/white-paper", "lead": "lead-1"}
    runtime.client("stepfunctions").send_task_success(taskToken=token, output=json.dumps(answer))
    state = runtime.settle()
    # Then the execution took the "clicked" branch, with the answer as the task's result,
    # at the instant the answer came: the answer did not move time
    run = ended(runtime, started)
    assert utc(state["now"]) == started.started_at + seconds(WAIT + 2 * DAY)
    assert run.description["status"] == "SUCCEEDED", run.description
    assert run.output["branch"] == "clicked"
    assert run.output["click"] == answer
    assert "timeout" not in run.output
    assert not run.of_type("TaskTimedOut")
    succeeded = run.click_task("TaskSucceeded")
    assert json.loads(succeeded["taskSucceededEventDetails"]["output"]) == answer
    assert run.at(succeeded) == seconds(WAIT + 2 * DAY)
    assert run.description["stopDate"] == utc(state["now"])
    # ... and the token, once answered, is not accepted again
    with pytest.raises(ClientError):
        runtime.client("stepfunctions").send_task_success(taskToken=token, output="{}")


def test_a_wait_and_a_task_timeout_follow_the_same_clock(unanswered: ClickRun) -> None:
    # The Wait of one day and the three-day timeout are one and three days on one clock
    wait_entered = unanswered.state_event("StateEntered", "Wait one day")
    wait_exited = unanswered.state_event("StateExited", "Wait one day")
    assert unanswered.at(wait_entered) == timedelta(0)  # the echo call took no simulated time
    assert wait_exited["timestamp"] - wait_entered["timestamp"] == seconds(WAIT)
    # The task was scheduled, started and submitted the instant the Wait ended
    for kind in ("TaskScheduled", "TaskStarted", "TaskSubmitted"):
        assert unanswered.click_task(kind)["timestamp"] == wait_exited["timestamp"], kind
    # One clock: the whole execution, a day's wait then three days unanswered, took four days.
    [execution_started] = unanswered.of_type("ExecutionStarted")
    [timed_out] = unanswered.of_type("TaskTimedOut")
    assert execution_started["timestamp"] == unanswered.started_at
    assert unanswered.description["startDate"] == unanswered.started_at
    assert unanswered.at(timed_out) == seconds(WAIT + CLICK_TIMEOUT)


def test_stopping_a_task_that_waits_for_its_token_ends_it_at_once(
    runtime: RunningRuntime,
) -> None:
    # Given a click task six hours into its three days
    started = start_click_journey(runtime)
    past_the_days_wait(runtime, started)
    runtime.advance(by="6h")
    # When the execution is stopped
    runtime.client("stepfunctions").stop_execution(executionArn=started.execution_arn)
    state = runtime.settle()
    # Then it ended ABORTED then and there: time did not run on to the task's deadline
    stopped_at = started.started_at + seconds(WAIT + 6 * 3600)
    assert utc(state["now"]) == stopped_at
    assert (state["timers"], state["next_due"]) == (0, None)
    run = ended(runtime, started)
    assert run.description["status"] == "ABORTED"
    assert run.description["stopDate"] == stopped_at
    [aborted] = run.of_type("ExecutionAborted")
    assert aborted["timestamp"] == stopped_at
    assert not run.of_type("TaskTimedOut")


# ---------------------------------------------------------------------- HeartbeatSeconds


def test_silent_worker_times_out_after_heartbeat_seconds_path(runtime: RunningRuntime) -> None:
    # Given a click task whose timeout (three days) and heartbeat (one day) come from the input
    started = start_click_journey(runtime, timeout_seconds=CLICK_TIMEOUT, heartbeat_seconds=DAY)
    past_the_days_wait(runtime, started)
    # When no heartbeat comes
    runtime.advance(until_idle=True)
    run = ended(runtime, started)
    # Then it times out one day after it was scheduled, not three, into the "did not click" branch
    assert run.description["status"] == "SUCCEEDED", run.description
    assert run.output["branch"] == "did not click"
    assert run.state_event("StateEntered", WAIT_FOR_CLICK_WITH_HEARTBEATS)
    scheduled = run.click_task("TaskScheduled")
    details = scheduled["taskScheduledEventDetails"]
    assert (details["timeoutInSeconds"], details["heartbeatInSeconds"]) == (CLICK_TIMEOUT, DAY)
    [timed_out] = run.of_type("TaskTimedOut")
    assert timed_out["timestamp"] - scheduled["timestamp"] == seconds(DAY)
    assert run.at(timed_out) == seconds(WAIT + DAY)


def test_heartbeats_keep_the_task_alive_until_timeout_seconds_path(
    runtime: RunningRuntime,
) -> None:
    # Given the same task, and a worker that sends a heartbeat every twelve simulated hours
    started = start_click_journey(runtime, timeout_seconds=CLICK_TIMEOUT, heartbeat_seconds=DAY)
    token = past_the_days_wait(runtime, started)
    stepfunctions = runtime.client("stepfunctions")
    for beat in range(1, 6):
        state = runtime.advance(by="12h")
        assert utc(state["now"]) == started.started_at + seconds(WAIT + beat * 12 * 3600)
        # Still waiting: at 36, 48 and 60 hours the one-day heartbeat would have run out
        assert status(runtime, started) == "RUNNING", f"ended before heartbeat {beat}"
        stepfunctions.send_task_heartbeat(taskToken=token)
    # When the three days run out (twelve hours after the fifth heartbeat)
    runtime.advance(by="12h")
    # Then the three-day timeout ended it, to the instant
    run = ended(runtime, started)
    assert run.output["branch"] == "did not click"
    scheduled = run.click_task("TaskScheduled")
    [timed_out] = run.of_type("TaskTimedOut")
    assert timed_out["timestamp"] - scheduled["timestamp"] == seconds(CLICK_TIMEOUT)
