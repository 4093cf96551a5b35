"""The embedded runtime's clock: scaled (for demos) or virtual (for tests and dry runs).

Every part of the runtime that waits for simulated time - Step Functions Wait states, task-token
deadlines and heartbeats, Retry intervals, schedules - waits through ``sleep_until`` of the one
clock, and every part that does work (a Lambda invocation, a Step Functions execution between its
waits, a stream batch in hand) tells the clock with ``begin_work`` / ``end_work``.

**Scaled**: simulated time is wall time x scale from a chosen start. ``sleep_until`` sleeps the
real seconds that correspond; work is not counted. A slow or loaded machine lets simulated time run
ahead of the work - fine for a demo, wrong for a test.

**Virtual** (the model is Temporal's time-skipping test server): simulated time stands still
while any work is in flight, and moves only as far as a client has allowed (``advance_to``,
``run_until_idle``): when nothing is in flight, no stream record is waiting and no waiter is
ready, it jumps straight to the next due instant and wakes what was due then. Nothing sleeps in
real time for a simulated wait, so the same inputs give the same simulated timestamps on a fast
machine and on a loaded one.

The hand-off is what makes it exact: a woken waiter is counted as work *before* it is woken (the
scheduler counts it), and a thread that starts work for another (a StartExecution request) counts
it before the other thread runs, so there is no instant at which work exists and is not counted.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from tsunagu.clock import ScaledClock

log = logging.getLogger("tsunagu.local.clock")

Ready = Callable[[], bool]
"""A waiter's own reason to wake before its instant (its token arrived, its execution stopped)."""

# How long, in real seconds, a scaled sleeper waits before it looks at its ``ready`` again.
SCALED_SLICE_SECONDS = 0.05
# How often the virtual scheduler looks again when nothing told it to (real seconds): ``ready``
# conditions set from outside any counted work (a client's SendTaskSuccess) are seen this late.
VIRTUAL_TICK_SECONDS = 0.02
# "Run until idle" stops this far ahead even if journeys keep finding work (a re-entry loop).
UNTIL_IDLE_HORIZON = timedelta(days=400)


class RuntimeClock(Protocol):
    def now(self) -> datetime: ...

    def sleep_until(
        self, instant: datetime, *, ready: Ready | None = None, working: bool = True
    ) -> None:
        """Block until the clock reaches ``instant`` or ``ready()`` is true. ``working``: the
        caller is counted as work (an execution's thread); it stops counting while it sleeps and
        counts again when it wakes. A caller that is not (a schedule's thread) counts as work
        from its waking on, and says ``end_work`` when done."""
        ...

    def begin_work(self) -> None: ...

    def end_work(self) -> None: ...

    def describe(self) -> dict[str, object]:
        """What ``GET /_local/clock`` answers."""
        ...


_MOTO_ORIGINAL = "_tsunagu_moto_original"


def patch_with_clock(owner: object, name: str, make: Callable[[Any], Any]) -> None:
    """Set ``owner.name`` to ``make(original)``, ``original`` being moto's own attribute, never a
    patch that an earlier runtime of this process put there.

    moto's classes exist once per process, and runtimes are started one after another in one
    process (the in-process tests; the benchmarks, one per module), each with a clock of its own.
    A patch that holds a clock must hold the newest runtime's: made over the previous patch it
    would count work on both clocks, and skipped as "patched already" it kept the first, stopped,
    clock (a second runtime's executions then went uncounted on its own clock, which said "1 in
    flight" for ever, and were dated on the first)."""
    current = getattr(owner, name)
    original = getattr(current, _MOTO_ORIGINAL, current)
    patched = make(original)
    setattr(patched, _MOTO_ORIGINAL, original)
    setattr(owner, name, patched)


@contextmanager
def working(clock: RuntimeClock) -> Iterator[None]:
    clock.begin_work()
    try:
        yield
    finally:
        clock.end_work()


class ScaledRuntimeClock(ScaledClock):
    """Wall time x scale: sleepers sleep the corresponding real seconds."""

    mode = "scaled"

    def sleep_until(
        self, instant: datetime, *, ready: Ready | None = None, working: bool = True
    ) -> None:
        while not (ready is not None and ready()):
            left = self.real_seconds_until(instant)
            if left <= 0:
                return
            time.sleep(min(left, SCALED_SLICE_SECONDS))

    def begin_work(self) -> None:
        return None

    def end_work(self) -> None:
        return None

    def describe(self) -> dict[str, object]:
        return {"mode": self.mode, "now": _iso(self.now()), "scale": self.scale}


@dataclass(eq=False)
class _Timer:
    due: datetime
    order: int
    ready: Ready | None
    background: bool
    """A schedule's: it never keeps "run until idle" going by itself."""
    fired: threading.Event = field(default_factory=threading.Event)


class AdvanceTimedOut(Exception):
    """The work did not settle within the real seconds the client allowed."""


class VirtualClock:
    """Simulated time that stands still while work is in flight and skips when all is idle."""

    mode = "virtual"

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("clock start must be timezone-aware")
        self._now = start.astimezone(UTC)
        self._limit = self._now
        self._until_idle = False
        self._idle_horizon = self._now
        """How far "run until idle" may go: fixed when asked, so a journey that keeps finding
        work (a re-entry loop) cannot carry it on for ever."""
        self._busy = 0
        self._generation = 0
        """Counts every begin of work: a scheduler pass that saw it change does not jump."""
        self._settled = False
        self._timers: list[_Timer] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._probes: list[Callable[[], bool]] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="virtual-clock", daemon=True)
        self.jumps = 0

    # -------------------------------------------------------------- reading
    def now(self) -> datetime:
        with self._condition:
            return self._now

    def describe(self) -> dict[str, object]:
        with self._condition:
            waiting = sorted(t.due for t in self._timers)
            return {
                "mode": self.mode,
                "now": _iso(self._now),
                "limit": _iso(self._limit),
                "work_in_flight": self._busy,
                "settled": self._settled,
                "timers": len(waiting),
                "next_due": _iso(waiting[0]) if waiting else None,
                "jumps": self.jumps,
            }

    # -------------------------------------------------------------- the runtime's parts
    def add_probe(self, has_pending_work: Callable[[], bool]) -> None:
        """A part whose work is not a thread the clock can count (records waiting in a stream)."""
        self._probes.append(has_pending_work)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            for timer in self._timers:
                timer.fired.set()
            self._timers.clear()
            self._condition.notify_all()

    def begin_work(self) -> None:
        with self._condition:
            self._busy += 1
            self._generation += 1
            self._settled = False

    def end_work(self) -> None:
        with self._condition:
            self._busy -= 1
            if self._busy < 0:  # a bug in the runtime's accounting: say so, never go negative
                if not self._stopping:
                    log.error("virtual clock: more work ended than began")
                self._busy = 0
            self._condition.notify_all()

    def sleep_until(
        self, instant: datetime, *, ready: Ready | None = None, working: bool = True
    ) -> None:
        with self._condition:
            if self._stopping or instant <= self._now or (ready is not None and ready()):
                if not working:
                    self._busy += 1  # the caller counts as work from now on, as if woken
                    self._generation += 1
                return
            timer = _Timer(instant.astimezone(UTC), next(self._order), ready, not working)
            self._timers.append(timer)
            if working:
                self._busy -= 1
                if self._busy < 0:  # a sleeper that was never counted: say so, never go negative
                    log.error("virtual clock: a thread slept as work without being counted")
                    self._busy = 0
            self._settled = False
            self._condition.notify_all()
        timer.fired.wait()

    # -------------------------------------------------------------- clients
    def advance_to(self, instant: datetime, timeout: float) -> datetime:
        """Let time run to ``instant``, everything due on the way happening at its own instant;
        returns once the clock is there and all work has settled."""
        with self._condition:
            self._limit = max(self._limit, instant.astimezone(UTC))
            self._settled = False
            self._condition.notify_all()
        return self._wait_settled(lambda: self._now >= instant, timeout)

    def run_until_idle(self, timeout: float) -> datetime:
        """Let time run until nothing is left to happen by itself (only schedules remain)."""
        with self._condition:
            self._until_idle = True
            self._idle_horizon = max(self._limit, self._now) + UNTIL_IDLE_HORIZON
            self._settled = False
            self._condition.notify_all()
        try:
            return self._wait_settled(lambda: not self._until_idle, timeout)
        except AdvanceTimedOut:
            with self._condition:
                self._until_idle = False  # time must not race on after the client gave up
            raise

    def settle(self, timeout: float) -> datetime:
        """Wait for the work in flight to finish, without moving time."""
        with self._condition:
            self._settled = False
            self._condition.notify_all()
        return self._wait_settled(lambda: True, timeout)

    def _wait_settled(self, reached: Callable[[], bool], timeout: float) -> datetime:
        deadline = time.monotonic() + timeout
        with self._condition:
            while not (self._settled and reached()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AdvanceTimedOut(
                        f"work did not settle within {timeout:g} real seconds"
                        f" (simulated time {_iso(self._now)}, {self._busy} in flight)"
                    )
                self._condition.wait(min(left, 0.5))
            return self._now

    # -------------------------------------------------------------- the scheduler
    def _run(self) -> None:
        while True:
            with self._condition:
                if self._stopping:
                    return
                self._condition.wait(VIRTUAL_TICK_SECONDS)
            try:
                self._step()
            except Exception:  # a probe failed: log it and look again at the next tick
                log.exception("virtual clock: a scheduler pass failed")

    def _fire(self, timer: _Timer) -> None:
        """Wake a waiter, counting it as work before it runs."""
        self._timers.remove(timer)
        self._busy += 1
        self._generation += 1
        self._settled = False
        timer.fired.set()

    def _fire_ready(self) -> bool:
        fired = False
        for timer in list(self._timers):
            if timer.ready is not None and timer.ready():
                self._fire(timer)
                fired = True
        return fired

    def _step(self) -> None:
        with self._condition:
            if self._fire_ready() or self._busy:
                return
            generation = self._generation
        # Outside the lock: a probe may take locks of its own (a stream poller's).
        if any(probe() for probe in self._probes):
            return
        with self._condition:
            if self._busy or self._generation != generation or self._fire_ready():
                return
            self._jump_or_settle()

    def _jump_or_settle(self) -> None:
        """Everything is idle: move time as far as allowed, or say that all has settled."""
        earliest = min(self._timers, key=lambda t: (t.due, t.order), default=None)
        if self._until_idle:
            foreground = [t for t in self._timers if not t.background]
            horizon = self._idle_horizon
            if not foreground or min(t.due for t in foreground) > horizon:
                self._until_idle = False
                self._limit = max(self._limit, self._now)
            else:
                self._limit = max(self._limit, min(t.due for t in foreground))
        if earliest is not None and earliest.due <= self._limit:
            self._now = max(self._now, earliest.due)
            self.jumps += 1
            for timer in sorted(self._timers, key=lambda t: (t.due, t.order)):
                if timer.due <= self._now:
                    self._fire(timer)
            return
        if self._now < self._limit:
            self._now = self._limit
            self.jumps += 1
            self._condition.notify_all()
            return
        if not self._settled:
            self._settled = True
            self._condition.notify_all()


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")
