"""Variants of the fixture template that any SAM template may contain, each started on its own:
policy templates naming functions, environments naming state machines and the API, templates
without Tsunagu's settings or a Stage parameter."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runtime import RunningRuntime, RuntimeDidNotStart, stack_variant, start_runtime


def variant(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """The fixture stack copied into tmp_path, its template changed by ``change``."""
    return stack_variant(tmp_path, change)


Starter = Callable[[Path, str], RunningRuntime]


@pytest.fixture
def started() -> Iterator[Starter]:
    """Starts a variant; ``gap`` names what used to stop such a template, for the failure
    message should it come back."""
    running: list[RunningRuntime] = []

    def start(template: Path, gap: str) -> RunningRuntime:
        try:
            runtime = start_runtime(template, template.parent.parent / "state")
        except RuntimeDidNotStart as error:
            pytest.fail(f"the runtime did not start ({gap!r} is back?): {error}")
        running.append(runtime)
        return runtime

    yield start
    for runtime in running:
        try:
            assert runtime.stop() == 0, runtime.output()
        finally:
            runtime.kill()


def invoke(runtime: RunningRuntime, function: str) -> Any:
    response = runtime.client("lambda").invoke(FunctionName=function, Payload=b"{}")
    assert "FunctionError" not in response
    return json.loads(response["Payload"].read())


def _replace(value: Any, old: Any, new: Any) -> Any:
    if value == old:
        return new
    if isinstance(value, dict):
        return {k: _replace(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, old, new) for v in value]
    return value


def test_state_machine_with_policy_templates_naming_its_functions(
    tmp_path: Path, started: Starter
) -> None:
    # Given the usual SAM journey: policy templates naming the functions it calls
    def change(template: dict[str, Any]) -> None:
        template["Resources"]["FixtureJourney"]["Properties"]["Policies"] = [
            {"LambdaInvokePolicy": {"FunctionName": {"Ref": "EchoFunction"}}},
            {"LambdaInvokePolicy": {"FunctionName": {"Ref": "FailingFunction"}}},
            {"DynamoDBWritePolicy": {"TableName": {"Ref": "LedgerTable"}}},
        ]

    # When the runtime starts on it, Then the state machine is there
    runtime = started(variant(tmp_path, change), "Ref to 'EchoFunction', which the local runtime")
    machines = runtime.client("stepfunctions").list_state_machines()["stateMachines"]
    assert "tsunagu-local-FixtureJourney" in [m["name"] for m in machines]


def test_function_environment_naming_a_state_machine_and_the_api(
    tmp_path: Path, started: Starter
) -> None:
    # Given a function that starts journeys and builds links: it is told the ARN and the API URL
    def change(template: dict[str, Any]) -> None:
        template["Resources"]["StarterFunction"] = {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "CodeUri": "functions/echo",
                "Environment": {
                    "Variables": {
                        "FIXTURE_JOURNEY_ARN": {"Ref": "FixtureJourney"},
                        "FIXTURE_API_URL": {"Fn::GetAtt": ["FixtureApi", "ApiEndpoint"]},
                    }
                },
            },
        }

    runtime = started(variant(tmp_path, change), "Ref to 'FixtureJourney', which the local runtime")
    environment = invoke(runtime, "tsunagu-local-StarterFunction")["environment"]
    machines = runtime.client("stepfunctions").list_state_machines()["stateMachines"]
    [machine] = [m for m in machines if m["name"] == "tsunagu-local-FixtureJourney"]
    assert environment["FIXTURE_JOURNEY_ARN"] == machine["stateMachineArn"]
    assert environment["FIXTURE_API_URL"] == runtime.api_url


def test_template_whose_functions_have_none_of_tsunagus_settings(
    tmp_path: Path, started: Starter
) -> None:
    def change(template: dict[str, Any]) -> None:
        variables = template["Globals"]["Function"]["Environment"]["Variables"]
        for name in [n for n in variables if n.startswith("TSUNAGU_")]:
            del variables[name]

    runtime = started(variant(tmp_path, change), "validation errors for Settings")
    assert runtime.endpoint_url.startswith("http://127.0.0.1:")
    assert invoke(runtime, "tsunagu-local-EchoFunction")["environment"]["FIXTURE_STAGE"]


def test_template_without_a_stage_parameter(tmp_path: Path, started: Starter) -> None:
    def change(template: dict[str, Any]) -> None:
        del template["Parameters"]["Stage"]
        resources = _replace(template["Resources"], {"Ref": "Stage"}, "fixture")
        resources = _replace(
            resources,
            {"Fn::Sub": "${AWS::Region}:${AWS::AccountId}:${Stage}"},
            {"Fn::Sub": "${AWS::Region}:${AWS::AccountId}:fixture"},
        )
        template["Resources"] = _replace(
            resources, {"Fn::Sub": "fixture-${Stage}"}, "fixture-fixture"
        )
        template["Globals"] = _replace(template["Globals"], {"Ref": "Stage"}, "fixture")
        assert "Stage" not in json.dumps(template).replace("StageName", "")

    runtime = started(variant(tmp_path, change), "parameters not declared in the template")
    assert invoke(runtime, "tsunagu-local-EchoFunction")["environment"]["FIXTURE_STAGE"] == (
        "fixture"
    )
