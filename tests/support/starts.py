"""Starts for a segment run in the background, on the ``aws`` fixture: the asynchronous
invocations of enter_segments the admin API (and a run cut short) asks for are queued here, as
Lambda queues them, and run when the test says - the order of events is the test's, never a
race with a thread."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import AwsStack
from tsunagu import services
from tsunagu_local.lambdas import LambdaContext

ENTER_SEGMENTS = "tsunagu-test-enter-segments"


@dataclass
class QueuedStarts:
    aws: AwsStack
    queued: list[dict[str, Any]] = field(default_factory=list)

    def run_next(self) -> Any:
        """Run the oldest invocation asked for, as Lambda would (the function's 300 s)."""
        return self.run(self.queued.pop(0))

    def run(self, event: dict[str, Any]) -> Any:
        """Run this invocation now (one Lambda delivers again, say)."""
        function = dataclasses.replace(self.aws.function("enter_segments"), timeout=300)
        return function.invoke(event)

    def run_all(self, at_most: int = 20) -> list[Any]:
        """Run the invocations asked for, and those they ask for, until none is left."""
        answers = []
        while self.queued:
            assert len(answers) < at_most, "a start that never finishes"
            answers.append(self.run_next())
        return answers


def queue_starts(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> QueuedStarts:
    """The stack's functions told where starts run, and each asynchronous invocation queued."""
    starts = QueuedStarts(aws)
    aws.environment["TSUNAGU_SEGMENT_ENTRIES_FUNCTION"] = ENTER_SEGMENTS
    monkeypatch.setenv("TSUNAGU_SEGMENT_ENTRIES_FUNCTION", ENTER_SEGMENTS)

    def later(_settings: Any, journey_id: str, start_id: str) -> None:
        starts.queued.append({"start": {"journey_id": journey_id, "start_id": start_id}})

    monkeypatch.setattr(services, "run_start_later", later)
    return starts


@contextmanager
def time_runs_short(monkeypatch: pytest.MonkeyPatch, after: int) -> Iterator[None]:
    """A run's time left (the Lambda context's) is plenty for ``after`` questions, then ten
    seconds: counted in questions asked, never in the machine's seconds."""
    asked = [0]

    def remaining(_context: Any) -> int:
        asked[0] += 1
        return 300_000 if asked[0] <= after else 10_000

    with monkeypatch.context() as patch:
        patch.setattr(LambdaContext, "get_remaining_time_in_millis", remaining)
        yield
