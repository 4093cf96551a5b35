"""Step Functions Wait states and task-token timeouts on the runtime's clock.

moto really sleeps in a Wait state, and reads Timestamp waits against the naive local time. Here
a Wait of N seconds sleeps N / time_scale real seconds, and a Timestamp wait lasts until the
runtime's simulated clock reaches that instant, so journeys follow the same clock as the domain.
A ``.waitForTaskToken`` task's TimeoutSeconds and HeartbeatSeconds are scaled the same way.
"""

from __future__ import annotations

import time
from datetime import UTC
from typing import Any

from tsunagu.clock import ScaledClock


def install_wait_clock(clock: ScaledClock) -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import (
        Timestamp,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )

    def wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
        deadline = time.monotonic() + max(0.0, wait_seconds) / clock.scale
        while env.is_running():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            env.program_state_event.wait(remaining)

    def timestamp_wait_seconds(self: Any, env: Any) -> float:
        self.string.eval(env=env)
        text: str = env.stack.pop()
        instant = self._from_timestamp_string(timestamp=text)
        if instant is None:
            raise FailureEventException(self._create_failure_event(env, text))
        seconds: float = (instant.replace(tzinfo=UTC) - clock.now()).total_seconds()
        return seconds

    WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]
    Timestamp._get_wait_seconds = timestamp_wait_seconds  # type: ignore[method-assign,assignment]


# How often a task waiting for its token looks whether its execution was stopped.
STOP_CHECK_SECONDS = 0.2


def install_task_timeout_clock(clock: ScaledClock) -> None:
    """Timeouts of ``.waitForTaskToken`` tasks on the runtime's clock.

    moto enforces a Task's TimeoutSeconds and HeartbeatSeconds (and their Path forms) in real
    seconds, so "did they click within 3 days?" would wait 3 real days at any time scale. Every
    waitForTaskToken task waits for its token in one method,
    ``StateTaskServiceCallback._eval_wait_for_task_token``: it is given the evaluated timeout and
    the heartbeat endpoint (built from the evaluated heartbeat), and returns the outcome, or a
    timed-out marker that moto itself turns into States.Timeout and a TaskTimedOut event. Only
    that wait is replaced, so the history still shows the template's seconds (TaskScheduled's
    timeoutInSeconds / heartbeatInSeconds) and Retry/Catch work as before.

    Tasks that do work rather than wait (a Lambda or DynamoDB call) keep real-time timeouts: the
    work itself runs in real time, and TimeoutSeconds: 60 at one hour per second would be 17 ms.
    moto's outer per-state timeout also stays real time; it fires after this one for any scale
    of 1 or more.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (  # noqa: E501
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import (
        CallbackOutcomeSuccess,
        CallbackOutcomeTimedOut,
        HeartbeatTimedOut,
    )

    def wait_for_task_token(
        self: Any, env: Any, timeout_seconds: int, callback_endpoint: Any, heartbeat_endpoint: Any
    ) -> Any:
        timed_out = CallbackOutcomeTimedOut(callback_id=callback_endpoint.callback_id)
        deadline = time.monotonic() + timeout_seconds / clock.scale
        if heartbeat_endpoint is None:
            # In slices, so that StopExecution ends a waiting execution at once, as in AWS (moto
            # would keep it waiting until its timeout).
            while env.is_running():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                outcome = callback_endpoint.wait(timeout=min(remaining, STOP_CHECK_SECONDS))
                if outcome is not None:
                    return outcome
            if not env.is_running():
                # Stopped: end the task quietly; the stopped program then ends ABORTED (a timeout
                # here would fail the execution with States.Timeout instead).
                return CallbackOutcomeSuccess(callback_endpoint.callback_id, "{}")
            return timed_out
        # moto's HeartbeatEndpoint (pinned) offers only a wait of its own full interval; its event
        # is set by SendTaskHeartbeat and by the outcome, so wait on it up to the nearer deadline.
        beat = heartbeat_endpoint._next_heartbeat_event
        interval = heartbeat_endpoint._heartbeat_seconds / clock.scale
        while env.is_running():
            outcome = callback_endpoint.get_outcome()
            if outcome is not None:
                return outcome
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            received = beat.wait(min(interval, remaining))
            beat.clear()
            if not received and interval < remaining and env.is_running():
                return HeartbeatTimedOut()
        return timed_out

    StateTaskServiceCallback._eval_wait_for_task_token = wait_for_task_token  # type: ignore[method-assign]


def install_retry_clock(clock: ScaledClock) -> None:
    """A Retry's IntervalSeconds (and backoff) on the runtime's clock: moto sleeps them for real,
    so "retry in 30 s, then 60 s, ..." would take minutes at any time scale."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    class ScaledSleep:
        @staticmethod
        def sleep(seconds: float) -> None:
            time.sleep(max(0.0, seconds) / clock.scale)

    setattr(retrier_decl, "time", ScaledSleep)  # noqa: B010 - moto imports the module `time`
