"""A function's Timeout on the local runtime: an invocation that outlives it is not ended (that
would make a test's outcome depend on the machine's speed), but the runtime says, once per
invocation, that AWS would have ended it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runtime import RunningRuntime, stack_variant, start_runtime

HERE = Path(__file__).resolve().parent
RUN_SECONDS = 2.0  # tests/runtime/functions/outlives_timeout: a second past its Timeout of 1
WARNING = re.compile(
    r"OutlivesTimeoutFunction ran (?P<seconds>[0-9.]+) real seconds, past its Timeout of 1 s:"
    r" in AWS it would be killed with \"Task timed out after 1\.00 seconds\""
)


def with_a_function_that_outlives_its_timeout(template: dict[str, Any]) -> None:
    template["Resources"]["OutlivesTimeoutFunction"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "CodeUri": "functions/outlives_timeout",
            "Timeout": 1,
            "Events": {
                "Get": {
                    "Type": "HttpApi",
                    "Properties": {
                        "ApiId": {"Ref": "FixtureApi"},
                        "Method": "GET",
                        "Path": "/slow",
                    },
                }
            },
        },
    }


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    folder = tmp_path_factory.mktemp("function-timeout")
    template = stack_variant(
        folder,
        with_a_function_that_outlives_its_timeout,
        {"outlives_timeout": HERE / "functions" / "outlives_timeout"},
    )
    running = start_runtime(template, folder / "state", virtual_time=True)
    try:
        yield running
        assert running.stop() == 0, running.output()
    finally:
        running.kill()


def test_a_function_that_outlives_its_timeout_answers_and_is_warned_about(
    runtime: RunningRuntime,
) -> None:
    # Given a route whose function has Timeout: 1 and runs at least two real seconds
    # When it is called
    reply = runtime.http("GET", "/slow", timeout=60)
    # Then it answers, as the local runtime ends no invocation on real time
    assert (reply.status, reply.body) == (200, b"finished after its timeout")
    # ... and the runtime warned once that AWS would have ended it, naming the function, its
    # Timeout and the real seconds it ran (at least its two: a slower machine only adds)
    warnings = list(WARNING.finditer(runtime.output()))
    assert len(warnings) == 1, runtime.output()
    assert float(warnings[0]["seconds"]) >= RUN_SECONDS
