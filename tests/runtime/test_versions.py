"""Step Functions versions and aliases on the runtime (local/tsunagu_local/versions.py), answered
as AWS answers them: a published journey starts every entry on its alias, and the state machine
itself can still be started (a manual start, an entry while the journey's publication record lags
its alias)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.runtime import FIXTURE_STACK, RunningRuntime, start_runtime

ROLE = "arn:aws:iam::123456789012:role/fixture"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    folder = tmp_path_factory.mktemp("versions")
    running = start_runtime(FIXTURE_STACK / "template.yaml", folder / "state", virtual_time=True)
    try:
        yield running
        assert running.stop() == 0, running.output()
    finally:
        running.kill()


def names(executions: list[dict[str, Any]]) -> set[str]:
    return {execution["name"] for execution in executions}


def test_the_state_machine_starts_after_entries_on_its_alias_and_its_version(
    runtime: RunningRuntime,
) -> None:
    stepfunctions = runtime.client("stepfunctions")
    # Given a journey-like state machine with a published version behind an alias
    definition = {
        "StartAt": "Wait",
        "States": {"Wait": {"Type": "Wait", "Seconds": 60, "End": True}},
    }
    created = stepfunctions.create_state_machine(
        name="journey-with-an-alias", definition=json.dumps(definition), roleArn=ROLE, publish=True
    )
    machine, version = created["stateMachineArn"], created["stateMachineVersionArn"]
    alias = stepfunctions.create_state_machine_alias(
        name="live", routingConfiguration=[{"stateMachineVersionArn": version, "weight": 100}]
    )["stateMachineAliasArn"]
    # ... which one lead entered through the alias and another on the version
    on_alias = stepfunctions.start_execution(stateMachineArn=alias, name="lead-1", input="{}")
    on_version = stepfunctions.start_execution(stateMachineArn=version, name="lead-2", input="{}")
    # When a third is started on the state machine itself
    on_machine = stepfunctions.start_execution(stateMachineArn=machine, name="lead-3", input="{}")
    # Then it starts, as in AWS (not a 500 from the runtime)
    assert on_machine["executionArn"].endswith(":lead-3")
    described = stepfunctions.describe_execution(executionArn=on_machine["executionArn"])
    assert described["status"] == "RUNNING"
    assert "stateMachineVersionArn" not in described
    # ... and the executions on the alias and the version are answered as before
    first = stepfunctions.describe_execution(executionArn=on_alias["executionArn"])
    assert (first["stateMachineVersionArn"], first["stateMachineAliasArn"]) == (version, alias)
    second = stepfunctions.describe_execution(executionArn=on_version["executionArn"])
    assert second["stateMachineVersionArn"] == version
    assert "stateMachineAliasArn" not in second
    listed = stepfunctions.list_executions(stateMachineArn=machine)["executions"]
    assert names(listed) == {"lead-1", "lead-2", "lead-3"}
    listed_on_version = stepfunctions.list_executions(stateMachineArn=version)["executions"]
    assert names(listed_on_version) == {"lead-1", "lead-2"}
    # ... and all three end when their minute is over
    runtime.advance(until_idle=True)
    for started in (on_alias, on_version, on_machine):
        ended = stepfunctions.describe_execution(executionArn=started["executionArn"])
        assert ended["status"] == "SUCCEEDED"
