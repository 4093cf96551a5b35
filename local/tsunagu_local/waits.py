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
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any

from tsunagu_local.clocks import RuntimeClock, patch_with_clock

_PATCHED_FLAG = "_tsunagu_clock"


def install_step_functions_clock(clock: RuntimeClock) -> None:
    """Every patch below, for this clock (a runtime started later in this process installs them
    again for its own)."""
    install_wait_clock(clock)
    install_task_timeout_clock(clock)
    install_retry_clock(clock)
    install_execution_clock(clock)
    install_worker_clock(clock)
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

    setattr(evaluate_with_timeout, _PATCHED_FLAG, True)
    execute_state.ExecutionState._evaluate_with_timeout = evaluate_with_timeout  # type: ignore[method-assign]
    setattr(execute_state, "threading", _ThreadingWith(Event=StateEvent))  # noqa: B010 - module global


def install_retry_clock(clock: RuntimeClock) -> None:
    """A Retry's IntervalSeconds (and backoff) on the runtime's clock: moto sleeps them for real,
    so "retry in 30 s, then 60 s, ..." would take minutes at any time scale."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    class ClockSleep:
        @staticmethod
        def sleep(seconds: float) -> None:
            clock.sleep_until(clock.now() + timedelta(seconds=max(0.0, seconds)))

    setattr(retrier_decl, "time", ClockSleep)  # noqa: B010 - moto imports the module `time`


def _counted_thread(clock: RuntimeClock) -> type[threading.Thread]:
    """The thread class moto's workers start with - an execution, a Parallel state's branch, a
    Map state's iteration worker: each counts as work from just before it starts (the thread
    starting it is counted until then, so no instant exists at which it is started and not yet
    counted) until it ends, however it ends."""

    class CountedThread(threading.Thread):
        def start(self) -> None:
            clock.begin_work()
            try:
                super().start()
            except BaseException:
                clock.end_work()
                raise

        def run(self) -> None:
            try:
                super().run()
            finally:
                clock.end_work()

    return CountedThread


class _ThreadingWith:
    """What one moto module sees as ``threading``: the module itself, but for the names given."""

    def __init__(self, **replacements: Any) -> None:
        self.__dict__.update(replacements)

    def __getattr__(self, name: str) -> Any:  # only asked for the names not replaced
        return getattr(threading, name)


_HAND_OFF = threading.Lock()
_WAITING_ON = "_tsunagu_waiting_on"
"""Set on a pool while the thread that waits for it is not counted: the clock to count it on."""


def _hand_off_while_waiting(
    clock: RuntimeClock, pool: Any, *, wait: str, ended: str, finished: Callable[[Any], bool]
) -> None:
    """A pool of workers a state's thread waits for (a Parallel's branches, a Map's iterations).

    While it waits, the waiting thread stops counting as work: its workers are the work now,
    each counted while its thread runs. It is counted again before it wakes, by the worker whose
    end finished the pool (``ended`` is the pool's method a worker calls as it ends), or by
    itself if it woke before that worker's patch ran, that worker still being counted - the same
    hand-off as a Wait's, so no instant exists at which it runs uncounted or waits counted. A
    pool that is finished before it is waited for (a Map over no items) hands nothing off."""

    def count_again(self: Any) -> None:
        with _HAND_OFF:
            waiting_on: RuntimeClock | None = self.__dict__.pop(_WAITING_ON, None)
            if waiting_on is not None:
                waiting_on.begin_work()

    def handing_off(moto_wait: Any) -> Any:
        def waits(self: Any) -> None:
            with _HAND_OFF:
                if not finished(self):
                    setattr(self, _WAITING_ON, clock)
                    clock.end_work()
            try:
                moto_wait(self)
            finally:
                count_again(self)

        return waits

    def handing_back(moto_ended: Any) -> Any:
        def ends(self: Any, *args: Any, **kwargs: Any) -> None:
            moto_ended(self, *args, **kwargs)
            if finished(self):
                count_again(self)

        return ends

    patch_with_clock(pool, wait, handing_off)
    patch_with_clock(pool, ended, handing_back)


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
    from moto.stepfunctions.parser.backend import execution_worker

    def now() -> Any:
        return clock.now()

    EventManager._get_current_timestamp = staticmethod(now)  # type: ignore[method-assign]
    # A state's $$.State.EnteredTime (journey_decide stamps decisions with it) is read from
    # datetime.datetime.now() in moto's State; that module alone is given the runtime's clock.
    from moto.stepfunctions.parser.asl.component.state import state as state_module

    state_module.datetime = _datetime_on(clock)  # type: ignore[attr-defined]

    setattr(execution_worker, "Thread", _counted_thread(clock))  # noqa: B010 - module global

    def dated_from_start(moto_init: Any) -> Any:
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            kwargs["start_date"] = clock.now()
            moto_init(self, *args, **kwargs)

        return init

    def dated_at_stop(moto_reflect: Any) -> Any:
        def reflect(self: Any) -> None:
            moto_reflect(self)
            self.execution.stop_date = clock.now()

        return reflect

    patch_with_clock(execution_module.Execution, "__init__", dated_from_start)
    patch_with_clock(
        execution_module.BaseExecutionWorkerCommunication,
        "_reflect_execution_status",
        dated_at_stop,
    )


def install_worker_clock(clock: RuntimeClock) -> None:
    """The workers of Parallel and Map states as work of their own: each Parallel branch and
    each Map iteration worker (up to MaxConcurrency, each running items one after another) counts
    from before its thread starts until it ends; the state's own thread stops counting while it
    waits for them, and is counted again before it wakes (see _hand_off_while_waiting). Without
    this, an iteration sleeping in a Wait or a Retry took from the count work it had never added:
    import_list's "Write the chunks" is a Map with a Retry inside."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        inline_iteration_component,
        job,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import (
        branch_worker,
        branches_decl,
    )

    counted = _ThreadingWith(Thread=_counted_thread(clock))
    # Each module starts its workers as threading.Thread (a Distributed Map's iterations too:
    # DistributedIterationComponent launches them through the inline component's method).
    setattr(branch_worker, "threading", counted)  # noqa: B010 - module global
    setattr(inline_iteration_component, "threading", counted)  # noqa: B010 - module global
    _hand_off_while_waiting(
        clock,
        branches_decl.BranchWorkerPool,
        wait="wait",
        ended="on_terminated",
        finished=lambda pool: pool._termination_event.is_set(),
    )
    _hand_off_while_waiting(
        clock,
        job.JobPool,
        wait="await_jobs",
        ended="close_job",
        finished=lambda pool: pool._is_terminated(),
    )
