"""The runtime's Step Functions tasks share their boto3 clients (tsunagu_local.interpreter)."""

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
