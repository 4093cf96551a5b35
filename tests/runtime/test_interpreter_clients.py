"""The runtime's Step Functions tasks share their boto3 clients and parsed JSONPaths
(tsunagu_local.interpreter)."""

from __future__ import annotations

from typing import Any

from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import (
    StateCredentials,
)

from tsunagu_local.interpreter import _one_client_per_region

MACHINE_ROLE = "arn:aws:iam::123456789012:role/tsunagu-local-journeys"


def test_tasks_running_with_the_same_role_share_one_client() -> None:
    built: list[tuple[Any, ...]] = []

    def build(region: str, service: str, credentials: Any = None) -> object:
        built.append((region, service, credentials))
        return object()

    client_for = _one_client_per_region(build)
    # moto hands every Lambda task the state machine's role when the state names none
    first = client_for("ap-northeast-1", "lambda", StateCredentials(role_arn=MACHINE_ROLE))
    again = client_for("ap-northeast-1", "lambda", StateCredentials(role_arn=MACHINE_ROLE))
    assert again is first
    assert len(built) == 1
    # A task with a role of its own, another service or region: a client of its own
    other_role = StateCredentials(role_arn="arn:aws:iam::123456789012:role/other")
    assert client_for("ap-northeast-1", "lambda", other_role) is not first
    assert client_for("ap-northeast-1", "sqs", StateCredentials(role_arn=MACHINE_ROLE)) is not first
    assert client_for("us-east-1", "lambda", None) is not first
    assert len(built) == 4


def test_each_json_path_is_parsed_once_and_still_applied_as_before() -> None:
    from moto.stepfunctions.parser.asl.utils import json_path

    from tsunagu_local.interpreter import repeat_no_work_per_execution

    repeat_no_work_per_execution()
    parse = json_path.parse  # type: ignore[attr-defined]
    assert parse("$.lead.email") is parse("$.lead.email")
    data = {"lead": {"email": "taro@example.jp", "tags": ["a", "b"]}}
    assert json_path.extract_json("$.lead.email", data) == "taro@example.jp"
    assert json_path.extract_json("$.lead.tags[0]", data) == "a"
    assert json_path.extract_json("$.lead.tags[*]", data) == ["a", "b"]
