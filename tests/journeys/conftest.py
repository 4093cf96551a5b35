"""The journey suite's worlds: each a local runtime on its own virtual clock, with a script of
what people and marketers do (see holiday_week.py and pause_day.py).

The worlds run side by side, so the suite takes about as long as the longer one, not their sum;
on virtual time neither's outcome depends on the other's load. A world starts only if a selected
test asks for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from tests.journeys import holiday_week, pause_day
from tests.journeys.harness import STALL_TIMEOUT, START_TIMEOUT, Runtime
from tests.journeys.holiday_week import HolidayWeek
from tests.journeys.pause_day import PauseDay

World = HolidayWeek | PauseDay
WORLD_TIMEOUT = START_TIMEOUT + STALL_TIMEOUT
"""Real seconds a test waits for its world to be up (the pause day waits for the holiday week's
Friday first): its runtime's start and a step's worth of its script, as bounds for a broken run,
not a measure (a loaded machine takes longer, never too long)."""


class Worlds:
    """Starts each wanted world on a thread of its own; tests wait for theirs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.futures: dict[str, Future[World]] = {}
        self.runtimes: list[Runtime] = []
        self._lock = threading.Lock()

    def launch(
        self,
        name: str,
        clock_start: str,
        build: Callable[[Runtime], World],
    ) -> None:
        future: Future[World] = Future()
        self.futures[name] = future

        def run() -> None:
            try:
                runtime = Runtime.launch(name, self.root / name, clock_start=clock_start)
                with self._lock:
                    self.runtimes.append(runtime)
                runtime.wait_ready()
                world = build(runtime)
                world.start()
                future.set_result(world)
            except BaseException as error:  # handed to the tests that wait for this world
                future.set_exception(error)

        threading.Thread(target=run, name=f"world-{name}", daemon=True).start()

    def get(self, name: str) -> World:
        return self.futures[name].result(timeout=WORLD_TIMEOUT)

    def stop(self) -> None:
        with self._lock:
            runtimes = list(self.runtimes)
        for runtime in runtimes:
            runtime.stop()


@pytest.fixture(scope="session")
def _journey_worlds(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worlds]:
    wanted = {
        fixture
        for item in request.session.items
        for fixture in ("holiday_week_world", "pause_day_world")
        if fixture in getattr(item, "fixturenames", ())
    }
    worlds = Worlds(tmp_path_factory.mktemp("journeys"))

    if "holiday_week_world" in wanted:
        worlds.launch("holiday_week", holiday_week.CLOCK_START, HolidayWeek)
    if "pause_day_world" in wanted:
        worlds.launch("pause_day", pause_day.CLOCK_START, PauseDay)
    try:
        yield worlds
    finally:
        worlds.stop()


@pytest.fixture
def holiday_week_world(_journey_worlds: Worlds) -> HolidayWeek:
    world = _journey_worlds.get("holiday_week")
    assert isinstance(world, HolidayWeek)
    return world


@pytest.fixture
def pause_day_world(_journey_worlds: Worlds) -> PauseDay:
    world = _journey_worlds.get("pause_day")
    assert isinstance(world, PauseDay)
    return world
