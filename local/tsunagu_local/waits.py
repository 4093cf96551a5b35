"""Step Functions on the runtime's clock: Wait states, task-token deadlines, Retry intervals, the
timestamps in execution histories, and (in virtual time) which executions are doing work.

moto really sleeps in a Wait state, reads Timestamp waits against the naive local time, enforces a
``.waitForTaskToken`` task's TimeoutSeconds and HeartbeatSeconds in real seconds, sleeps a Retry's
IntervalSeconds for real and stamps history events with the wall clock. Here every one of those
goes through the runtime's clock (tsunagu_local.clocks): "did they click within 3 days?" waits 3
simulated days, a history event says when it happened in simulated time, and in virtual time an
execution counts as work from its StartExecution until it waits or ends.
"""

from __future__ import annotations

import datetime
import threading
import types
from datetime import UTC, timedelta
from typing import Any

from tsunagu_local.clocks import RuntimeClock

_PATCHED_FLAG = "_tsunagu_clock"


def install_step_functions_clock(clock: RuntimeClock) -> None:
    """Every patch below, for this clock (the runtime's process has exactly one)."""
    install_wait_clock(clock)
    install_task_timeout_clock(clock)
    install_retry_clock(clock)
    install_execution_clock(clock)
    install_parallel_clock(clock)
    install_definition_clock(clock)


def install_definition_clock(clock: RuntimeClock) -> None:
    """State machines', versions' and aliases' creation and update dates on the runtime's clock
    (``tsunagu journeys versions`` lists when each version was published)."""
    from moto.stepfunctions import models

    def now() -> datetime.datetime:
        # moto keeps these naive, in UTC
        return clock.now().astimezone(UTC).replace(tzinfo=None)

    models.utcnow = now  # type: ignore[attr-defined]


def install_wait_clock(clock: RuntimeClock) -> None:
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
        clock.sleep_until(
            clock.now() + timedelta(seconds=max(0.0, wait_seconds)),
            ready=lambda: not env.is_running(),
        )

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


def install_task_timeout_clock(clock: RuntimeClock) -> None:
    """Timeouts of ``.waitForTaskToken`` tasks on the runtime's clock.

    Every waitForTaskToken task waits for its token in one method,
    ``StateTaskServiceCallback._eval_wait_for_task_token``: it is given the evaluated timeout and
    the heartbeat endpoint (built from the evaluated heartbeat), and returns the outcome, or a
    timed-out marker that moto itself turns into States.Timeout and a TaskTimedOut event. Only
    that wait is replaced, so the history still shows the template's seconds (TaskScheduled's
    timeoutInSeconds / heartbeatInSeconds) and Retry/Catch work as before. StopExecution ends a
    waiting task at once, as in AWS (moto would keep it waiting until its timeout).

    moto also runs every state with a timeout under an outer, real-time limit of the same number
    of seconds. For a token wait that limit is switched off: the wait above enforces it on the
    runtime's clock (in virtual time a real-time limit would fire while the clock stands still).
    Tasks that do work rather than wait (a Lambda call) keep the real-time limit: the work itself
    runs in real time.
    """
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
        ResourceCondition,
    )
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
        deadline = clock.now() + timedelta(seconds=timeout_seconds)

        def answered_or_stopped() -> bool:
            return callback_endpoint.get_outcome() is not None or not env.is_running()

        if heartbeat_endpoint is None:
            clock.sleep_until(deadline, ready=answered_or_stopped)
        else:
            # moto's HeartbeatEndpoint (pinned) sets this event on SendTaskHeartbeat and on the
            # outcome; each beat starts a new heartbeat interval.
            beat = heartbeat_endpoint._next_heartbeat_event
            interval = timedelta(seconds=heartbeat_endpoint._heartbeat_seconds)
            while not answered_or_stopped() and clock.now() < deadline:
                beat.clear()
                clock.sleep_until(
                    min(clock.now() + interval, deadline),
                    ready=lambda: answered_or_stopped() or beat.is_set(),
                )
                if answered_or_stopped() or beat.is_set():
                    continue
                if clock.now() < deadline:
                    return HeartbeatTimedOut()
        outcome = callback_endpoint.get_outcome()
        if outcome is not None:
            return outcome
        if not env.is_running():
            # Stopped: end the task quietly; the stopped program then ends ABORTED (a timeout
            # here would fail the execution with States.Timeout instead).
            return CallbackOutcomeSuccess(callback_endpoint.callback_id, "{}")
        return CallbackOutcomeTimedOut(callback_id=callback_endpoint.callback_id)

    StateTaskServiceCallback._eval_wait_for_task_token = wait_for_task_token  # type: ignore[method-assign]

    if getattr(execute_state.ExecutionState._evaluate_with_timeout, _PATCHED_FLAG, False):
        return
    original_evaluate = execute_state.ExecutionState._evaluate_with_timeout
    outer_limit_off = threading.local()

    def evaluate_with_timeout(self: Any, env: Any) -> None:
        token_wait = isinstance(self, StateTaskServiceCallback) and (
            self.resource.condition == ResourceCondition.WaitForTaskToken
        )
        outer_limit_off.value = token_wait
        try:
            original_evaluate(self, env)
        finally:
            outer_limit_off.value = False

    class StateEvent(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            if getattr(outer_limit_off, "value", False):
                timeout = None
            return super().wait(timeout)

    class ThreadingForStates:
        """What execute_state sees as ``threading``: the same, but its Event is ours."""

        Event = StateEvent

        def __getattr__(self, name: str) -> Any:
            return getattr(threading, name)

    setattr(evaluate_with_timeout, _PATCHED_FLAG, True)
    execute_state.ExecutionState._evaluate_with_timeout = evaluate_with_timeout  # type: ignore[method-assign]
    setattr(execute_state, "threading", ThreadingForStates())  # noqa: B010 - module global


def install_retry_clock(clock: RuntimeClock) -> None:
    """A Retry's IntervalSeconds (and backoff) on the runtime's clock: moto sleeps them for real,
    so "retry in 30 s, then 60 s, ..." would take minutes at any time scale."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    class ClockSleep:
        @staticmethod
        def sleep(seconds: float) -> None:
            clock.sleep_until(clock.now() + timedelta(seconds=max(0.0, seconds)))

    setattr(retrier_decl, "time", ClockSleep)  # noqa: B010 - moto imports the module `time`


def _counted_from_start(clock: RuntimeClock, start_thread: Any) -> Any:
    """A worker's ``start``: its thread counts as work from before it starts, so no instant
    exists at which it is started and not yet counted."""

    def start(self: Any) -> None:
        clock.begin_work()
        try:
            start_thread(self)
        except BaseException:
            clock.end_work()
            raise

    return start


def _ends_counted_work(clock: RuntimeClock, run: Any) -> Any:
    """A worker thread's body: it stops counting as work when it ends, however it ends."""

    def body(self: Any) -> None:
        try:
            run(self)
        finally:
            clock.end_work()

    return body


def _datetime_on(clock: RuntimeClock) -> types.ModuleType:
    """The ``datetime`` module, but for ``datetime.datetime.now()``, which is ``clock``'s."""

    class ClockDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> Any:
            instant = clock.now()
            return instant.astimezone(tz) if tz is not None else instant.replace(tzinfo=None)

    module = types.ModuleType("datetime")
    module.__dict__.update(vars(datetime))
    module.datetime = ClockDatetime  # type: ignore[attr-defined]
    return module


def install_execution_clock(clock: RuntimeClock) -> None:
    """Executions on the runtime's clock: their start and stop dates and every history event are
    stamped with it, and each execution counts as work while its thread runs (it stops counting
    while it sleeps in a wait, see above). StartExecution counts the new execution before it
    answers, so no instant exists at which it is started and not yet counted."""
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
    from moto.stepfunctions.parser.backend import execution as execution_module
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    def now() -> Any:
        return clock.now()

    EventManager._get_current_timestamp = staticmethod(now)  # type: ignore[method-assign]
    # A state's $$.State.EnteredTime (journey_decide stamps decisions with it) is read from
    # datetime.datetime.now() in moto's State; that module alone is given the runtime's clock.
    from moto.stepfunctions.parser.asl.component.state import state as state_module

    state_module.datetime = _datetime_on(clock)  # type: ignore[attr-defined]

    if getattr(ExecutionWorker.start, _PATCHED_FLAG, False):
        return
    # moto's own methods are untyped: held as Any.
    original_start: Any = ExecutionWorker.start
    original_logic: Any = ExecutionWorker._execution_logic
    original_init: Any = execution_module.Execution.__init__
    original_reflect: Any = (
        execution_module.BaseExecutionWorkerCommunication._reflect_execution_status
    )

    start = _counted_from_start(clock, original_start)
    execution_logic = _ends_counted_work(clock, original_logic)

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["start_date"] = clock.now()
        original_init(self, *args, **kwargs)

    def reflect(self: Any) -> None:
        original_reflect(self)
        self.execution.stop_date = clock.now()

    setattr(start, _PATCHED_FLAG, True)
    ExecutionWorker.start = start  # type: ignore[method-assign]
    ExecutionWorker._execution_logic = execution_logic  # type: ignore[method-assign]
    execution_module.Execution.__init__ = init  # type: ignore[method-assign]
    execution_module.BaseExecutionWorkerCommunication._reflect_execution_status = reflect  # type: ignore[method-assign]


def install_parallel_clock(clock: RuntimeClock) -> None:
    """A Parallel state's branches as work of their own: each branch thread counts from before
    it starts until it ends; the execution's thread stops counting while it waits for them, and
    the last branch to end counts it again before waking it (the same hand-off as a Wait's).
    (Map states' iteration workers are not counted: no Tsunagu journey uses Map.)"""
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import (
        branch_worker,
        branches_decl,
    )

    worker: Any = branch_worker.BranchWorker
    pool: Any = branches_decl.BranchWorkerPool
    if getattr(worker.start, _PATCHED_FLAG, False):
        return
    original_start: Any = worker.start
    original_routine: Any = worker._thread_routine
    original_wait: Any = pool.wait
    original_terminated: Any = pool.on_terminated
    handed_back = threading.Lock()

    start = _counted_from_start(clock, original_start)
    thread_routine = _ends_counted_work(clock, original_routine)

    def wait(self: Any) -> None:
        clock.end_work()  # the execution's thread waits: its branches are the work now
        original_wait(self)

    def on_terminated(self: Any, env: Any) -> None:
        original_terminated(self, env)
        with handed_back:
            if self._termination_event.is_set() and not getattr(self, "_tsunagu_woken", False):
                self._tsunagu_woken = True
                clock.begin_work()  # for the execution's thread, before it wakes

    setattr(start, _PATCHED_FLAG, True)
    worker.start = start
    worker._thread_routine = thread_routine
    pool.wait = wait
    pool.on_terminated = on_terminated
