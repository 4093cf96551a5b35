"""EventBridge schedules (a function's ``Schedule`` event) on the runtime's clock.

``rate(1 day)`` invokes the function once per simulated day: at ``--time-scale 86400`` once a
real second; in virtual time whenever the clock passes the next run. ``cron(...)`` expressions
are not run locally (the function can still be invoked by hand); a warning says so at start-up.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from datetime import UTC, timedelta
from typing import Any

from tsunagu_local.clocks import RuntimeClock
from tsunagu_local.lambdas import LocalFunction

log = logging.getLogger(__name__)

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """Seconds between runs of a ``rate(...)`` expression; None for anything else."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    return int(match.group(1)) * _SECONDS[match.group(2).rstrip("s")]


class ScheduledRule:
    def __init__(
        self,
        rule_arn: str,
        function: LocalFunction,
        interval_seconds: float,
        clock: RuntimeClock,
        region: str,
        account: str,
    ) -> None:
        self.rule_arn = rule_arn
        self.function = function
        self.interval_seconds = interval_seconds
        self.clock = clock
        self.region = region
        self.account = account
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"schedule-{function.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        due = self.clock.now()
        while not self._stop.is_set():
            due += timedelta(seconds=self.interval_seconds)
            # Not work while it waits (a schedule never keeps "run until idle" going); work from
            # the moment it is due until the run has been delivered.
            self.clock.sleep_until(due, ready=self._stop.is_set, working=False)
            try:
                if not self._stop.is_set():
                    self.function.invoke(self.event())
            except Exception:  # the next run tries again, as EventBridge would
                log.exception("scheduled run of %s failed", self.function.name)
            finally:
                self.clock.end_work()

    def event(self) -> dict[str, Any]:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account,
            "time": self.clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [self.rule_arn],
            "detail": {},
        }
