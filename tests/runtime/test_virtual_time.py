"""The runtime's virtual clock (``--virtual-time``) against the fixture stack, and the scaled clock
it replaces for tests.

In virtual time, simulated time stands still while any work is in flight and moves only as far
as a client allows (``POST /_local/clock``): every instant asserted here is exact. The module's
runtime runs the fixture stack plus a clock watcher (tests/runtime/functions/clock_watcher): a
function that, while it runs, watches the clock being asked to move, and the stream of a watched
table that invokes it. A second runtime, scaled, shows what stays of the scaled clock.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.runtime import (
    CLOCK_START,
    FIXTURE_STACK,
    SCALED_CLOCK_KEYS,
    ClockRefused,
    RunningRuntime,
    physical_name,
    stack_variant,
    start_runtime,
    utc,
)
from tests.support.runtime import execution_history, wait_for

HERE = Path(__file__).resolve().parent
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
ECHO = physical_name("EchoFunction")
JOURNEY = physical_name("FixtureJourney")
CLICK_JOURNEY = physical_name("FixtureClickJourney")
LEDGER = physical_name("LedgerTable")
SOURCE = physical_name("SourceTable")
WATCHER = physical_name("ClockWatcherFunction")
WATCHED = physical_name("WatchedTable")
SCALE = 3600.0


def with_clock_watcher(template: dict[str, Any]) -> None:
    """The fixture plus a function that watches the clock, invoked directly or by the stream of
    a table of its own."""
    resources = template["Resources"]
    resources["WatchedTable"] = {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "StreamSpecification": {"StreamViewType": "KEYS_ONLY"},
        },
    }
    resources["ClockWatcherFunction"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "CodeUri": "functions/clock_watcher",
            "Timeout": 60,
            "Policies": [{"DynamoDBWritePolicy": {"TableName": {"Ref": "LedgerTable"}}}],
            "Events": {
                "Watched": {
                    "Type": "DynamoDB",
                    "Properties": {
                        "Stream": {"Fn::GetAtt": ["WatchedTable", "StreamArn"]},
                        "StartingPosition": "TRIM_HORIZON",
                        "BatchSize": 10,
                        # On virtual time the window is over at once (no simulated time passes
                        # while a record waits); the scaled clock waits it in real seconds.
                        "MaximumBatchingWindowInSeconds": 2,
                    },
                }
            },
        },
    }


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    folder = tmp_path_factory.mktemp("virtual-time")
    template = stack_variant(
        folder, with_clock_watcher, {"clock_watcher": HERE / "functions" / "clock_watcher"}
    )
    running = start_runtime(template, folder / "state", virtual_time=True)
    try:
        yield running
        assert running.stop() == 0, running.output()
    finally:
        running.kill()


@pytest.fixture(autouse=True)
def nothing_left_waiting(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test of the virtual runtime starts with nothing waiting and leaves nothing waiting."""
    if "runtime" not in request.fixturenames:
        yield
        return
    runtime: RunningRuntime = request.getfixturevalue("runtime")
    assert runtime.settle()["timers"] == 0
    yield
    runtime.advance(until_idle=True)


# ---------------------------------------------------------------------- helpers


def iso(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def now_of(state: dict[str, Any]) -> datetime:
    return utc(state["now"])


def machine_arn(runtime: RunningRuntime, name: str) -> str:
    machines = runtime.client("stepfunctions").list_state_machines()["stateMachines"]
    [arn] = [m["stateMachineArn"] for m in machines if m["name"] == name]
    return str(arn)


def start(runtime: RunningRuntime, machine: str, **inputs: Any) -> str:
    """Start an execution; returns its ARN."""
    arn: str = runtime.client("stepfunctions").start_execution(
        stateMachineArn=machine_arn(runtime, machine),
        name=f"virtual-{uuid.uuid4().hex[:12]}",
        input=json.dumps({"lead": "lead-1", **inputs}),
    )["executionArn"]
    return arn


def describe(runtime: RunningRuntime, execution_arn: str) -> dict[str, Any]:
    description: dict[str, Any] = runtime.client("stepfunctions").describe_execution(
        executionArn=execution_arn
    )
    return description


def history(runtime: RunningRuntime, execution_arn: str) -> list[dict[str, Any]]:
    return execution_history(runtime.client("stepfunctions"), execution_arn)


def state_event(events: list[dict[str, Any]], kind: str, state: str) -> dict[str, Any]:
    """The first ``kind`` (StateEntered / StateExited) event of ``state``."""
    details = "stateEnteredEventDetails" if kind == "StateEntered" else "stateExitedEventDetails"
    return next(e for e in events if e["type"].endswith(kind) and e[details]["name"] == state)


def exited(events: list[dict[str, Any]], state: str) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["type"].endswith("StateExited") and e["stateExitedEventDetails"]["name"] == state
    ]


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def watched(runtime: RunningRuntime, key: str) -> dict[str, Any]:
    """What the clock watcher wrote for ``key``."""
    item = runtime.client("dynamodb").get_item(
        TableName=LEDGER, Key={"pk": {"S": "watch"}, "sk": {"S": key}}
    )
    assert "Item" in item, f"the clock watcher wrote nothing for {key}: time moved before it ran"
    return {name: next(iter(value.values())) for name, value in item["Item"].items()}


# ---------------------------------------------------------------------- time stands still


def test_time_stands_still_while_work_comes_and_goes(runtime: RunningRuntime) -> None:
    before = runtime.settle()
    now = now_of(before)
    # Given a function invoked, a route called and a stream record delivered
    response = runtime.client("lambda").invoke(FunctionName=ECHO, Payload=b"{}")
    assert "FunctionError" not in response
    event = runtime.http("GET", "/echo/still").json()["event"]
    # ... whose request was stamped with the runtime's clock
    assert event["requestContext"]["timeEpoch"] == int(now.timestamp() * 1000)
    assert event["requestContext"]["time"] == now.strftime("%d/%b/%Y:%H:%M:%S +0000")
    key = uuid.uuid4().hex[:12]
    runtime.client("dynamodb").put_item(
        TableName=SOURCE, Item={"pk": {"S": key}, "sk": {"S": "00"}, "behaviour": {"S": "ok"}}
    )

    def delivered() -> bool:
        items = runtime.client("dynamodb").scan(TableName=LEDGER)["Items"]
        return any(
            f"{key}/00" in [k["S"] for k in item.get("keys", {}).get("L", [])] for item in items
        )

    wait_for(delivered, timeout=60, what="the stream record's delivery")
    # When all of it is done, and real time passes
    after = runtime.settle()
    time.sleep(0.5)
    # Then the clock has not moved: not one jump, nothing in flight
    assert after["now"] == before["now"]
    assert after["jumps"] == before["jumps"]
    assert (after["work_in_flight"], after["settled"]) == (0, True)
    assert runtime.clock()["now"] == before["now"]


def test_a_wait_does_not_end_by_itself_and_ends_exactly_when_time_gets_there(
    runtime: RunningRuntime,
) -> None:
    now = runtime.simulated_now()
    wake_at = now + 4 * HOUR
    # Given a journey in its two-hour Wait (then a Wait until wake_at)
    execution = start(runtime, JOURNEY, wake_at=iso(wake_at))
    state = runtime.settle()
    assert (state["timers"], utc(state["next_due"])) == (1, now + 2 * HOUR)
    # When real time passes and nobody moves the clock
    time.sleep(1.0)
    # Then the journey still waits, and the clock has not moved
    assert describe(runtime, execution)["status"] == "RUNNING"
    assert now_of(runtime.clock()) == now
    last = history(runtime, execution)[-1]
    assert last["type"] == "WaitStateEntered"
    assert last["stateEnteredEventDetails"]["name"] == "Wait two hours"

    # When the clock is moved by two hours
    state = runtime.advance(by="2h")
    # Then the first Wait ended at exactly two hours, and the second waits for wake_at
    assert now_of(state) == now + 2 * HOUR
    assert (state["timers"], utc(state["next_due"])) == (1, wake_at)
    events = history(runtime, execution)
    assert state_event(events, "StateEntered", "Wait two hours")["timestamp"] == now
    assert state_event(events, "StateExited", "Wait two hours")["timestamp"] == now + 2 * HOUR
    assert describe(runtime, execution)["status"] == "RUNNING"

    # When the clock is moved to wake_at
    state = runtime.advance(to=iso(wake_at))
    # Then the journey woke at that instant and ran to its end there, all settled on return
    assert now_of(state) == wake_at
    description = describe(runtime, execution)
    assert description["status"] == "SUCCEEDED"
    assert (description["startDate"], description["stopDate"]) == (now, wake_at)
    events = history(runtime, execution)
    assert of_type(events, "ExecutionStarted")[0]["timestamp"] == now
    assert state_event(events, "StateExited", "Wait until wake_at")["timestamp"] == wake_at
    assert of_type(events, "LambdaFunctionFailed")[0]["timestamp"] == wake_at
    assert of_type(events, "ExecutionSucceeded")[0]["timestamp"] == wake_at


# ---------------------------------------------------------------------- moving time


def test_advance_by_runs_due_waits_in_order_at_their_own_instants(
    runtime: RunningRuntime,
) -> None:
    before = runtime.settle()
    now = now_of(before)
    # Given three journeys that wake 5, 3 and 7 hours from now (each after a two-hour Wait)
    wakes = [now + 5 * HOUR, now + 3 * HOUR, now + 7 * HOUR]
    journeys = [start(runtime, JOURNEY, wake_at=iso(wake)) for wake in wakes]
    # ... and a click journey whose first Wait is one day
    click = start(runtime, CLICK_JOURNEY)
    # When the clock is moved by eight hours in one request
    state = runtime.advance(by="8h")
    # Then it is eight hours later, after one jump per due instant (2h, 3h, 5h, 7h) and one to 8h
    assert now_of(state) == now + 8 * HOUR
    assert state["jumps"] - before["jumps"] == 5
    # ... every journey's waits ended at their own instants, and each ran on from there
    for execution, wake in zip(journeys, wakes, strict=True):
        events = history(runtime, execution)
        assert state_event(events, "StateExited", "Wait two hours")["timestamp"] == now + 2 * HOUR
        assert state_event(events, "StateExited", "Wait until wake_at")["timestamp"] == wake
        assert of_type(events, "LambdaFunctionFailed")[0]["timestamp"] == wake
        description = describe(runtime, execution)
        assert (description["status"], description["stopDate"]) == ("SUCCEEDED", wake)
    stopped = sorted(journeys, key=lambda e: describe(runtime, e)["stopDate"])
    assert stopped == [journeys[1], journeys[0], journeys[2]]
    # ... and the click journey's day is not over: it still waits, due one day after the start
    assert describe(runtime, click)["status"] == "RUNNING"
    assert not exited(history(runtime, click), "Wait one day")
    assert (state["timers"], utc(state["next_due"])) == (1, now + DAY)


def test_until_idle_ends_every_waiting_execution_at_its_own_instant(
    runtime: RunningRuntime,
) -> None:
    now = runtime.simulated_now()
    # Given journeys waking in 30 days and in 2 days, a click journey nobody answers (a day's
    # Wait, then three days for the click) and one whose heartbeat (one day) never comes
    far = start(runtime, JOURNEY, wake_at=iso(now + 30 * DAY))
    near = start(runtime, JOURNEY, wake_at=iso(now + 2 * DAY))
    unanswered = start(runtime, CLICK_JOURNEY)
    silent = start(runtime, CLICK_JOURNEY, timeout_seconds=3 * 86400, heartbeat_seconds=86400)
    assert runtime.settle()["timers"] == 4
    # When time runs until nothing is left to happen by itself
    state = runtime.advance(until_idle=True)
    # Then every execution ended, each at its own instant, and the clock stopped at the last one
    expected = {far: now + 30 * DAY, near: now + 2 * DAY, unanswered: now + 4 * DAY}
    expected[silent] = now + 2 * DAY
    for execution, stop_date in expected.items():
        description = describe(runtime, execution)
        assert (description["status"], description["stopDate"]) == ("SUCCEEDED", stop_date)
    assert now_of(state) == now + 30 * DAY
    assert (state["timers"], state["next_due"], state["work_in_flight"]) == (0, None, 0)
    # Nothing is left: asking again does not move time
    assert runtime.advance(until_idle=True)["now"] == state["now"]


def test_stop_execution_during_a_wait_ends_it_aborted_without_moving_time(
    runtime: RunningRuntime,
) -> None:
    now = runtime.simulated_now()
    # Given a journey one hour into its two-hour Wait
    execution = start(runtime, JOURNEY, wake_at=iso(now + 4 * HOUR))
    assert now_of(runtime.advance(by="1h")) == now + HOUR
    # When it is stopped
    runtime.client("stepfunctions").stop_execution(executionArn=execution)
    state = runtime.settle()
    # Then it ended ABORTED at once, the clock still an hour on, the Wait gone from the clock
    assert now_of(state) == now + HOUR
    assert (state["timers"], state["next_due"]) == (0, None)
    description = describe(runtime, execution)
    assert (description["status"], description["stopDate"]) == ("ABORTED", now + HOUR)
    events = history(runtime, execution)
    assert of_type(events, "ExecutionAborted")[0]["timestamp"] == now + HOUR
    assert not of_type(events, "WaitStateExited")


def test_advance_by_business_days_skips_weekends_and_holidays(runtime: RunningRuntime) -> None:
    # Given Friday 26 April 2030, 10:00 in Tokyo (the fixture's calendar: Japan's)
    friday = utc("2030-04-26T01:00:00Z")
    assert runtime.simulated_now() < friday
    assert now_of(runtime.advance(to="2030-04-26T10:00:00+09:00")) == friday
    # When the clock moves four business days: Mon 29 is Showa Day, then Tue 30, Wed 1, Thu 2,
    # and 3-6 May are holidays and a weekend
    state = runtime.advance(business_days=4)
    # Then it is Tuesday 7 May, at the same local time
    assert now_of(state) == utc("2030-05-07T01:00:00Z")


# ---------------------------------------------------------------------- work holds the clock


def test_a_running_function_holds_the_clock_although_time_may_move(
    runtime: RunningRuntime,
) -> None:
    now = runtime.simulated_now()
    key = f"invoke-{uuid.uuid4().hex[:12]}"
    # Given the clock watcher invoked asynchronously: it runs until it sees an advance asked for
    response = runtime.client("lambda").invoke(
        FunctionName=WATCHER, InvocationType="Event", Payload=json.dumps({"key": key}).encode()
    )
    assert response["StatusCode"] == 202
    assert runtime.clock()["work_in_flight"] >= 1
    # When the clock is allowed an hour
    state = runtime.advance(by="1h")
    # Then the function saw the hour allowed, yet the clock stood still as long as it ran
    seen = watched(runtime, key)
    assert seen["advance_seen"] is True
    assert utc(seen["limit_seen"]) == now + HOUR
    assert utc(seen["now_first"]) == utc(seen["now_last"]) == now
    # ... and moved once it had ended
    assert now_of(state) == now + HOUR


def test_an_undelivered_stream_record_holds_the_clock(runtime: RunningRuntime) -> None:
    now = runtime.simulated_now()
    key = f"stream-{uuid.uuid4().hex[:12]}"
    # Given a record written to the watched table, not yet read by its poller
    runtime.client("dynamodb").put_item(TableName=WATCHED, Item={"pk": {"S": key}})
    # When the clock is allowed an hour meanwhile
    state = runtime.advance(by="1h")
    # Then the record was delivered before time moved, and time moved after
    seen = watched(runtime, key)
    assert seen["advance_seen"] is True
    assert utc(seen["now_first"]) == utc(seen["now_last"]) == now
    assert now_of(state) == now + HOUR


def test_work_that_does_not_end_in_time_is_a_504_and_time_stands_still(
    runtime: RunningRuntime,
) -> None:
    now = runtime.simulated_now()
    key = f"settle-{uuid.uuid4().hex[:12]}"
    # Given the clock watcher running until an advance is asked for
    runtime.client("lambda").invoke(
        FunctionName=WATCHER, InvocationType="Event", Payload=json.dumps({"key": key}).encode()
    )
    # When a client waits half a real second for the work to settle, time standing still
    with pytest.raises(ClockRefused) as refused:
        runtime.advance(settle=True, timeout=0.5)
    # Then the runtime answers 504 with the clock's state: still now, the work still in flight
    assert refused.value.status == 504
    assert "did not settle" in refused.value.answer["message"]
    assert now_of(refused.value.answer) == now
    assert refused.value.answer["work_in_flight"] >= 1
    # ... and once time may move, the function ends and the clock moves
    assert now_of(runtime.advance(by="1m")) == now + timedelta(minutes=1)
    assert watched(runtime, key)["advance_seen"] is True


# ---------------------------------------------------------------------- the clock's answers


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"not json", 400, "the body is not JSON"),
        (b"[1, 2]", 400, "the body is a JSON object"),
        (b"{}", 400, "say one of"),
        (b'{"by": "1h", "to": "2030-01-01T00:00:00Z"}', 400, "say one of"),
        (b'{"by": "1h", "speed": 2}', 400, "unknown field(s): speed"),
        (b'{"to": "2000-01-01T00:00:00Z"}', 409, "time does not go back"),
        (b'{"to": "tomorrow"}', 400, "not an ISO-8601 instant"),
        (b'{"to": 1700000000}', 400, "to is an ISO-8601 instant"),
        (b'{"by": "-3d"}', 400, "not a duration"),
        (b'{"by": "3 fortnights"}', 400, "not a duration"),
        (b'{"by": 0}', 400, "more than 0"),
        (b'{"by": true}', 400, "a duration is a number of seconds"),
        (b'{"business_days": 0}', 400, "business_days is a whole number"),
        (b'{"until_idle": false}', 400, "until_idle takes true"),
        (b'{"by": "1h", "timeout": "soon"}', 400, "timeout is a number"),
        (json.dumps({"by": "1h", "pad": "x" * 5000}).encode(), 413, "too large"),
    ],
    ids=lambda value: value.decode()[:40] if isinstance(value, bytes) else str(value),
)
def test_the_clock_refuses_a_request_it_cannot_follow(
    runtime: RunningRuntime, body: bytes, status: int, message: str
) -> None:
    before = runtime.clock()
    reply = runtime.clock_request(body)
    assert reply.status == status, reply.body
    assert message in reply.json()["message"]
    after = runtime.clock()
    assert (after["now"], after["limit"], after["jumps"]) == (
        before["now"],
        before["limit"],
        before["jumps"],
    )


def test_the_clock_answers_get_and_post_only(runtime: RunningRuntime) -> None:
    reply = runtime.clock_request(b"{}", method="PUT")
    assert (reply.status, reply.json()) == (405, {"message": "GET or POST"})
    state = runtime.clock()
    assert set(state) == {
        "mode",
        "now",
        "limit",
        "work_in_flight",
        "settled",
        "timers",
        "next_due",
        "jumps",
    }
    assert state["mode"] == "virtual"


def test_advancing_to_now_is_allowed_and_moves_nothing(runtime: RunningRuntime) -> None:
    before = runtime.settle()
    state = runtime.advance(to=before["now"])
    assert (state["now"], state["jumps"]) == (before["now"], before["jumps"])


# ---------------------------------------------------------------------- the scaled clock


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    state_dir = tmp_path_factory.mktemp("scaled-time")
    running = start_runtime(FIXTURE_STACK / "template.yaml", state_dir, time_scale=SCALE)
    try:
        yield running
        assert running.stop() == 0, running.output()
    finally:
        running.kill()


def test_a_scaled_runtime_tells_its_functions_start_epoch_and_scale(
    scaled: RunningRuntime,
) -> None:
    environment = scaled.environment
    assert not scaled.virtual
    assert "TSUNAGU_CLOCK_URL" not in environment
    assert utc(environment["TSUNAGU_CLOCK_START"]) == utc(CLOCK_START)
    assert float(environment["TSUNAGU_TIME_SCALE"]) == SCALE
    # The clock started while the runtime started, not at some other time.
    assert scaled.launched_at <= float(environment["TSUNAGU_CLOCK_EPOCH"]) <= scaled.ready_at
    # Every function is given that same one clock.
    response = scaled.client("lambda").invoke(FunctionName=ECHO, Payload=b"{}")
    seen = json.loads(response["Payload"].read())["environment"]
    assert {k: seen[k] for k in SCALED_CLOCK_KEYS} == {k: environment[k] for k in SCALED_CLOCK_KEYS}
    assert "TSUNAGU_CLOCK_URL" not in seen


def test_a_scaled_clock_is_shown_but_cannot_be_moved(scaled: RunningRuntime) -> None:
    before = scaled.simulated_now()
    state = scaled.clock()
    after = scaled.simulated_now()
    assert (state["mode"], state["scale"]) == ("scaled", SCALE)
    assert before <= utc(state["now"]) <= after
    for body in ({"by": "1h"}, {"until_idle": True}, {"settle": True}):
        with pytest.raises(ClockRefused) as refused:
            scaled.advance(**body)
        assert refused.value.status == 409
        assert "--virtual-time" in refused.value.answer["message"]


def test_time_scale_still_compresses_a_wait(scaled: RunningRuntime) -> None:
    # Given a journey that waits two simulated hours, then until four hours from its start
    began = time.monotonic()
    before = scaled.simulated_now()
    wake_at = before + 4 * HOUR
    execution = start(scaled, JOURNEY, wake_at=iso(wake_at))
    # When it runs at an hour per real second
    description = wait_for(
        lambda: (d := describe(scaled, execution))["status"] != "RUNNING" and d,
        timeout=60,
        what="the journey to end",
    )
    seen_end = scaled.simulated_now()
    # Then it took a few real seconds, not four hours (only an upper bound: a loaded machine is
    # slower, never faster)
    assert time.monotonic() - began < 60
    assert description["status"] == "SUCCEEDED", description
    # ... and its history is on the simulated clock: each Wait lasted at least its simulated time
    # (history keeps milliseconds)
    tick = timedelta(milliseconds=1)
    events = history(scaled, execution)
    started = of_type(events, "ExecutionStarted")[0]["timestamp"]
    assert before - tick <= started <= seen_end
    entered = state_event(events, "StateEntered", "Wait two hours")["timestamp"]
    left = state_event(events, "StateExited", "Wait two hours")["timestamp"]
    assert left - entered >= 2 * HOUR - tick
    woke = state_event(events, "StateExited", "Wait until wake_at")["timestamp"]
    assert utc(iso(wake_at)) - tick <= woke <= description["stopDate"] <= seen_end + tick


# ---------------------------------------------------------------------- Map states

ROLE = "arn:aws:iam::123456789012:role/fixture"
FAILING = physical_name("FailingFunction")


def map_machine(runtime: RunningRuntime, states: dict[str, Any], start_at: str) -> str:
    """A state machine made of one Map (up to 4 iterations at once, as import_list's "Write the
    chunks") over ``$.items``; returns its ARN."""
    definition = {
        "StartAt": "Each item",
        "States": {
            "Each item": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 4,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": start_at,
                    "States": states,
                },
                "End": True,
            }
        },
    }
    arn: str = runtime.client("stepfunctions").create_state_machine(
        name=f"map-{uuid.uuid4().hex[:10]}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    return arn


def run_until_idle(
    runtime: RunningRuntime, machine_arn: str, items: list[Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start an execution of ``machine_arn`` on ``items`` and let time run until idle; returns
    the execution's description and the clock's state."""
    execution = runtime.client("stepfunctions").start_execution(
        stateMachineArn=machine_arn,
        name=f"map-{uuid.uuid4().hex[:12]}",
        input=json.dumps({"items": items}),
    )["executionArn"]
    clock = runtime.advance(until_idle=True)
    return describe(runtime, execution), clock


def test_map_iterations_wait_side_by_side_and_the_clock_settles_after_them(
    runtime: RunningRuntime,
) -> None:
    # Given a Map whose iterations each wait one minute
    machine = map_machine(
        runtime, {"Wait a minute": {"Type": "Wait", "Seconds": 60, "End": True}}, "Wait a minute"
    )
    for _ in range(3):
        now = runtime.simulated_now()
        # When three items go through it and time runs until idle
        execution, clock = run_until_idle(runtime, machine, [{"n": 1}, {"n": 2}, {"n": 3}])
        # Then the three minutes were waited together: the execution took one simulated minute,
        # as in AWS, and the clock stopped there with no work left counted
        assert execution["status"] == "SUCCEEDED"
        assert (execution["startDate"], execution["stopDate"]) == (now, now + timedelta(minutes=1))
        assert now_of(clock) == now + timedelta(minutes=1)
        assert (clock["work_in_flight"], clock["timers"]) == (0, 0)


def test_map_iterations_retry_side_by_side_and_the_clock_settles_after_them(
    runtime: RunningRuntime,
) -> None:
    # Given import_list's shape: a Map whose iterations call a failing function, retry it once
    # after 2 s, then park the item
    machine = map_machine(
        runtime,
        {
            "Write a chunk": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": FAILING, "Payload": {}},
                "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 1}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Park"}],
                "End": True,
            },
            "Park": {"Type": "Pass", "Result": "parked", "End": True},
        },
        "Write a chunk",
    )
    for _ in range(3):
        now = runtime.simulated_now()
        # When four chunks fail at once
        execution, clock = run_until_idle(runtime, machine, [{"index": i} for i in range(4)])
        # Then their retries waited their 2 s together (AWS: 2 s), every item was parked, and the
        # clock stopped there with no work left counted
        assert execution["status"] == "SUCCEEDED"
        assert json.loads(execution["output"]) == ["parked"] * 4
        assert (execution["startDate"], execution["stopDate"]) == (now, now + timedelta(seconds=2))
        assert now_of(clock) == now + timedelta(seconds=2)
        assert (clock["work_in_flight"], clock["timers"]) == (0, 0)


# ---------------------------------------------------------------------- known gaps


def with_a_parallel_state(template: dict[str, Any]) -> None:
    """A journey whose Parallel state waits one hour in one branch and two in the other."""
    branches = [
        {"StartAt": name, "States": {name: {"Type": "Wait", "Seconds": seconds, "End": True}}}
        for name, seconds in (("Wait one hour", 3600), ("Wait two hours", 7200))
    ]
    template["Resources"]["ParallelJourney"] = {
        "Type": "AWS::Serverless::StateMachine",
        "Properties": {
            "Type": "STANDARD",
            "Definition": {
                "StartAt": "Both waits",
                "States": {"Both waits": {"Type": "Parallel", "Branches": branches, "End": True}},
            },
        },
    }


def test_waits_in_parallel_branches_end_at_their_own_instants(tmp_path: Path) -> None:
    running = start_runtime(
        stack_variant(tmp_path, with_a_parallel_state), tmp_path / "state", virtual_time=True
    )
    try:
        now = running.simulated_now()
        execution = start(running, physical_name("ParallelJourney"))
        state = running.advance(by="3h", timeout=5)
        assert now_of(state) == now + 3 * HOUR
        description = describe(running, execution)
        assert (description["status"], description["stopDate"]) == ("SUCCEEDED", now + 2 * HOUR)
        events = history(running, execution)
        assert [e["timestamp"] for e in of_type(events, "WaitStateExited")] == [
            now + HOUR,
            now + 2 * HOUR,
        ]
    finally:
        running.stop()
        running.kill()
