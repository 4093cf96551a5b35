"""Step Functions Wait states on the runtime's clock.

moto really sleeps in a Wait state, and reads Timestamp waits against the naive local time. Here
a Wait of N seconds sleeps N / time_scale real seconds, and a Timestamp wait lasts until the
runtime's simulated clock reaches that instant, so journeys follow the same clock as the domain.
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
