"""The runtime's virtual clock (tsunagu_local.clocks.VirtualClock) on its own, in this process: no
runtime, only threads that work and sleep on it the way executions, functions and schedules do.

An execution's thread is counted as work before it runs (``begin_work`` by whoever starts it),
sleeps through ``sleep_until`` (not counted while it sleeps, counted again from its waking), and
says ``end_work`` when it ends. A client moves time with ``advance_to`` / ``run_until_idle``,
which return once everything due on the way has happened and all work has settled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.runtime import wait_for
from tsunagu_local.clocks import UNTIL_IDLE_HORIZON, AdvanceTimedOut, VirtualClock

START = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
TIMEOUT = 10.0
"""Real seconds any advance here may take: each step is a few milliseconds."""
SHORT = 0.3
"""Real seconds for an advance that must time out."""


@pytest.fixture
def clock() -> Iterator[VirtualClock]:
    running = VirtualClock(START)
    running.start()
    yield running
    running.stop()


class Sleeper:
    """A thread working on the clock like an execution: counted as work by its starter, then it
    sleeps until each of its instants in turn, noting when it woke (on the clock), and ends."""

    def __init__(
        self,
        clock: VirtualClock,
        name: str,
        *instants: datetime,
        woke: list[tuple[datetime, str]] | None = None,
        ready: Callable[[], bool] | None = None,
        then: Callable[[], None] | None = None,
    ) -> None:
        self.clock = clock
        self.name = name
        self.instants = instants
        self.woke = woke if woke is not None else []
        self.ready = ready
        self.then = then
        self.done = threading.Event()
        clock.begin_work()  # the hand-off: counted before the thread exists
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for instant in self.instants:
                self.clock.sleep_until(instant, ready=self.ready)
                self.woke.append((self.clock.now(), self.name))
                if self.then is not None:
                    self.then()
        finally:
            self.clock.end_work()
            self.done.set()


def asleep(clock: VirtualClock, timers: int) -> None:
    """Wait (in real time) until ``timers`` sleepers sleep and nothing else is in flight."""
    wait_for(
        lambda: clock.describe()["timers"] == timers and clock.describe()["work_in_flight"] == 0,
        timeout=TIMEOUT,
        interval=0.005,
        what=f"{timers} sleepers",
    )


def test_the_start_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        VirtualClock(datetime(2026, 12, 4, 9, 0))  # a naive instant


def test_describe_says_where_the_clock_is_and_what_waits(clock: VirtualClock) -> None:
    state = clock.describe()
    assert isinstance(state.pop("settled"), bool)  # the scheduler's first pass may be done
    assert state == {
        "mode": "virtual",
        "now": "2026-12-04T09:00:00Z",
        "limit": "2026-12-04T09:00:00Z",
        "work_in_flight": 0,
        "timers": 0,
        "next_due": None,
        "jumps": 0,
    }
    Sleeper(clock, "a", START + 2 * HOUR)
    Sleeper(clock, "b", START + HOUR)
    asleep(clock, 2)
    assert clock.settle(TIMEOUT) == START
    state = clock.describe()
    assert (state["timers"], state["next_due"], state["settled"]) == (
        2,
        "2026-12-04T10:00:00Z",
        True,
    )


def test_time_stands_still_until_a_client_moves_it(clock: VirtualClock) -> None:
    sleeper = Sleeper(clock, "a", START + HOUR)
    asleep(clock, 1)
    time.sleep(0.2)  # many scheduler passes
    assert clock.now() == START
    assert not sleeper.done.is_set()
    assert clock.describe()["jumps"] == 0


def test_advance_to_wakes_sleepers_in_due_order_each_at_its_instant(clock: VirtualClock) -> None:
    woke: list[tuple[datetime, str]] = []
    for name, hours in (("three", 3), ("one", 1), ("two", 2), ("five", 5)):
        Sleeper(clock, name, START + hours * HOUR, woke=woke)
    asleep(clock, 4)
    assert clock.advance_to(START + 4 * HOUR, TIMEOUT) == START + 4 * HOUR
    assert woke == [(START + HOUR, "one"), (START + 2 * HOUR, "two"), (START + 3 * HOUR, "three")]
    state = clock.describe()
    assert (state["timers"], state["next_due"]) == (1, "2026-12-04T14:00:00Z")
    assert state["jumps"] == 4  # one per due instant, and one to the limit


def test_sleepers_due_at_one_instant_wake_in_one_jump(
    clock: VirtualClock,
) -> None:
    woke: list[tuple[datetime, str]] = []
    first = Sleeper(clock, "first", START + HOUR, woke=woke)
    asleep(clock, 1)
    second = Sleeper(clock, "second", START + HOUR, woke=woke)
    asleep(clock, 2)
    clock.advance_to(START + HOUR, TIMEOUT)
    assert first.done.is_set() and second.done.is_set()
    assert sorted(woke) == [(START + HOUR, "first"), (START + HOUR, "second")]
    assert clock.describe()["jumps"] == 1


def test_time_does_not_move_while_a_woken_sleeper_works(clock: VirtualClock) -> None:
    # Given a sleeper that, once woken, works for a while in real time, then sleeps again
    seen_after_work: list[datetime] = []

    def work() -> None:
        time.sleep(0.2)
        seen_after_work.append(clock.now())

    woke: list[tuple[datetime, str]] = []
    Sleeper(clock, "a", START + HOUR, START + 2 * HOUR, woke=woke, then=work)
    asleep(clock, 1)
    # When time may run three hours
    clock.advance_to(START + 3 * HOUR, TIMEOUT)
    # Then each wake and the end of each piece of work happened at the due instant
    assert woke == [(START + HOUR, "a"), (START + 2 * HOUR, "a")]
    assert seen_after_work == [START + HOUR, START + 2 * HOUR]


def test_advance_to_returns_only_once_the_work_it_woke_has_ended(clock: VirtualClock) -> None:
    sleeper = Sleeper(clock, "a", START + HOUR, then=lambda: time.sleep(0.2))
    asleep(clock, 1)
    clock.advance_to(START + HOUR, TIMEOUT)
    assert sleeper.done.is_set()
    assert clock.describe()["work_in_flight"] == 0


def test_work_in_flight_holds_time_until_it_ends(clock: VirtualClock) -> None:
    Sleeper(clock, "a", START + HOUR)
    asleep(clock, 1)
    clock.begin_work()  # e.g. a Lambda invocation
    with pytest.raises(AdvanceTimedOut, match="1 in flight"):
        clock.advance_to(START + 2 * HOUR, SHORT)
    assert clock.now() == START
    clock.end_work()
    assert clock.advance_to(START + 2 * HOUR, TIMEOUT) == START + 2 * HOUR


def test_a_pending_probe_holds_time_until_it_has_nothing_pending(clock: VirtualClock) -> None:
    pending = threading.Event()
    pending.set()
    clock.add_probe(pending.is_set)  # e.g. a stream record not yet delivered
    with pytest.raises(AdvanceTimedOut):
        clock.advance_to(START + HOUR, SHORT)
    assert clock.now() == START
    pending.clear()
    assert clock.advance_to(START + HOUR, TIMEOUT) == START + HOUR


def test_a_ready_sleeper_wakes_at_once_without_moving_time(clock: VirtualClock) -> None:
    # Given a sleeper whose reason to wake early (its token, its stop) is not there yet
    answered = threading.Event()
    woke: list[tuple[datetime, str]] = []
    sleeper = Sleeper(clock, "a", START + DAY, woke=woke, ready=answered.is_set)
    asleep(clock, 1)
    # When the reason comes, from outside any counted work (a client's SendTaskSuccess)
    answered.set()
    # Then it wakes now, before any jump: even a client allowing a week at once sees it wake
    # at the instant the answer came
    clock.advance_to(START + 7 * DAY, TIMEOUT)
    assert woke == [(START, "a")]
    assert sleeper.done.is_set()
    assert clock.describe()["timers"] == 0


def test_settle_waits_for_the_work_without_moving_time(clock: VirtualClock) -> None:
    answered = threading.Event()
    sleeper = Sleeper(clock, "a", START + DAY, ready=answered.is_set)
    asleep(clock, 1)
    answered.set()
    assert clock.settle(TIMEOUT) == START
    assert sleeper.done.is_set()


def test_a_sleep_already_due_or_ready_returns_at_once_and_keeps_counting(
    clock: VirtualClock,
) -> None:
    clock.begin_work()
    clock.sleep_until(START)  # due now
    clock.sleep_until(START + DAY, ready=lambda: True)  # ready already
    state = clock.describe()
    assert (state["work_in_flight"], state["timers"], state["now"]) == (
        1,
        0,
        "2026-12-04T09:00:00Z",
    )
    clock.end_work()


def test_run_until_idle_runs_to_the_last_waiter_and_no_further_for_background_timers(
    clock: VirtualClock,
) -> None:
    # Given a schedule (not work while it waits: working=False) running every day
    ran: list[datetime] = []
    stop = threading.Event()

    def schedule() -> None:
        due = clock.now()
        while not stop.is_set():
            due += DAY
            clock.sleep_until(due, ready=stop.is_set, working=False)
            try:
                if not stop.is_set():
                    ran.append(clock.now())
            finally:
                clock.end_work()

    threading.Thread(target=schedule, daemon=True).start()
    # ... and an execution waiting three days
    woke: list[tuple[datetime, str]] = []
    Sleeper(clock, "execution", START + 3 * DAY, woke=woke)
    asleep(clock, 2)
    # When time runs until idle
    assert clock.run_until_idle(TIMEOUT) == START + 3 * DAY
    # Then the schedule ran on the way, and time stopped at the execution's instant: the
    # schedule alone does not keep it going
    assert woke == [(START + 3 * DAY, "execution")]
    assert ran == [START + DAY, START + 2 * DAY, START + 3 * DAY]
    time.sleep(0.1)
    assert clock.now() == START + 3 * DAY
    assert clock.describe()["timers"] == 1  # the schedule's next run
    stop.set()


def test_run_until_idle_with_nothing_waiting_does_not_move_time(clock: VirtualClock) -> None:
    assert clock.run_until_idle(TIMEOUT) == START
    assert clock.describe()["jumps"] == 0


def test_run_until_idle_stops_at_its_horizon_when_waits_keep_coming(clock: VirtualClock) -> None:
    # Given an execution that waits ten days, again and again (a re-entry loop)
    stop = threading.Event()
    step = 10 * DAY

    def loop() -> None:
        try:
            while not stop.is_set():
                clock.sleep_until(clock.now() + step)
        finally:
            clock.end_work()

    clock.begin_work()
    threading.Thread(target=loop, daemon=True).start()
    try:
        # When time runs until idle, Then it stops at the horizon ahead of where it started
        reached = clock.run_until_idle(5.0)
        assert START + UNTIL_IDLE_HORIZON <= reached <= START + UNTIL_IDLE_HORIZON + step
        time.sleep(0.1)
        assert clock.now() == reached
    finally:
        stop.set()


def test_a_scheduler_pass_that_saw_work_begin_does_not_jump(clock: VirtualClock) -> None:
    """The generation guard: the probes run outside the clock's lock; work that began (and maybe
    ended) meanwhile means what the pass saw is stale, so it must not jump on it."""
    Sleeper(clock, "a", START + HOUR)
    asleep(clock, 1)
    # A probe that holds time until armed; armed, it starts and ends some work while it is being
    # asked (as a stream batch that began and ended between two looks), once; after that it
    # notes where the clock was each time it was asked.
    mode = ["hold"]
    seen: list[datetime] = []

    def probe() -> bool:
        if mode[0] == "hold":
            return True
        if mode[0] == "armed":
            mode[0] = "record"
            clock.begin_work()
            clock.end_work()
            return False
        seen.append(clock.now())
        return False

    clock.add_probe(probe)
    advancing = threading.Thread(target=clock.advance_to, args=(START + 2 * HOUR, TIMEOUT))
    advancing.start()
    wait_for(
        lambda: clock.describe()["limit"] == "2026-12-04T11:00:00Z",
        timeout=TIMEOUT,
        interval=0.005,
        what="the limit",
    )
    mode[0] = "armed"
    advancing.join(TIMEOUT)
    # The pass in which the work began and ended did not jump: the next pass still saw START
    assert seen[0] == START
    assert clock.now() == START + 2 * HOUR


def test_more_work_ended_than_began_is_logged_and_never_negative(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="tsunagu.local.clock"):
        clock.end_work()
    assert "more work ended than began" in caplog.text
    assert clock.describe()["work_in_flight"] == 0
    clock.begin_work()
    assert clock.describe()["work_in_flight"] == 1
    clock.end_work()


def test_stop_wakes_every_sleeper_and_forgets_them(clock: VirtualClock) -> None:
    sleepers = [Sleeper(clock, name, START + DAY) for name in ("a", "b")]
    asleep(clock, 2)
    clock.stop()
    for sleeper in sleepers:
        assert sleeper.done.wait(TIMEOUT)
    assert clock.describe()["timers"] == 0
    assert clock.now() == START
