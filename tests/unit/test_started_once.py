"""Background work started on Step Functions under a name of its own (an import, a dry run, a
report rebuild), so that a call repeated after its answer was lost starts nothing twice: the
repeat answers the execution the first call started. Step Functions refuses a repeated name with
ExecutionAlreadyExists once the first execution is over (while it runs, the same name and input
answer it again)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from tests.unit.test_ses_messenger import settings
from tsunagu import services

REGION = "ap-northeast-1"
ROLE = "arn:aws:iam::123456789012:role/tsunagu-steps"
PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


@pytest.mark.parametrize("start", ["import", "rebuild"])
def test_a_repeated_start_answers_the_execution_the_first_one_started(
    start: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        steps = boto3.client("stepfunctions", region_name=REGION)
        machine = steps.create_state_machine(name=f"{start}s", definition=PASS, roleArn=ROLE)
        arn = machine["stateMachineArn"]
        if start == "import":
            given = settings(import_state_machine_arn=arn)
            first = services.start_import(given, "imp_01")
            steps.stop_execution(executionArn=first)  # over before the repeat: refused then
            again = services.start_import(given, "imp_01")
        else:
            given = settings(rebuild_state_machine_arn=arn)
            first = services.start_rebuild(given, "rbd_01")
            steps.stop_execution(executionArn=first)
            again = services.start_rebuild(given, "rbd_01")

        assert again == first
        assert steps.describe_execution(executionArn=again)["stateMachineArn"] == arn
        assert len(steps.list_executions(stateMachineArn=arn)["executions"]) == 1
