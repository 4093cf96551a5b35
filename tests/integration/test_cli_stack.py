"""``tsunagu --stack NAME``: the CLI reads a deployed stack's table names and functions from its
CloudFormation outputs (moto, in-process); a stack it cannot use is said in one line."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REGION, AwsStack, moto_client
from tsunagu import cli


def deploy(name: str, outputs: dict[str, str]) -> None:
    """A stack named ``name`` whose outputs are ``outputs`` (one topic, for a resource)."""
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    moto_client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


def tsunagu_outputs(aws: AwsStack) -> dict[str, str]:
    """The outputs template.yaml gives a stack, naming the test stack's tables."""
    outputs = {
        key: aws.environment.get(setting, "unused")
        for key, setting in cli.OUTPUT_TO_SETTING.items()
    }
    return outputs | {key: f"test-{key}" for key in cli.FUNCTION_OUTPUTS.values()}


def run(capsys: pytest.CaptureFixture[str], *command: str) -> tuple[int, str, str]:
    code = cli.main(["--stack", *command[:1], "--region", REGION, *command[1:]])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_stack_s_outputs_name_the_tables_the_cli_reads(
    aws: AwsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a Tsunagu stack deployed, with a form stored
    deploy("tsunagu-dev", tsunagu_outputs(aws))
    aws.seed_demo_form()
    # When its forms are listed with --stack
    code, out, err = run(capsys, "tsunagu-dev", "forms", "list")
    # Then they are the stack's
    assert code == 0, err
    assert out.startswith("demo\tWhite paper\t")


def test_a_stack_that_is_not_there_is_said_in_one_line(
    aws: AwsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the CLI is given a stack name with a typo
    code, _, err = run(capsys, "tsunagu-dve", "forms", "list")
    # Then it says what CloudFormation answered, without a traceback
    assert code == 1
    assert err == "tsunagu: --stack tsunagu-dve: Stack with id tsunagu-dve does not exist\n"


def test_a_stack_without_tsunagu_s_outputs_is_said_in_one_line(
    aws: AwsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given another stack, and a Tsunagu stack deployed by a template without one output
    deploy("website", {"BucketName": "www"})
    deploy("tsunagu-old", {k: v for k, v in tsunagu_outputs(aws).items() if k != "ApiUrl"})
    # When the CLI is given either
    other = run(capsys, "website", "forms", "list")
    older = run(capsys, "tsunagu-old", "forms", "list")
    # Then it names what is missing, without a traceback
    assert other[0] == older[0] == 1
    assert other[2] == (
        "tsunagu: stack website has no output Stage, LeadsTableName, LeadIdentitiesTableName and"
        " 25 more: is it a Tsunagu stack, deployed from this version's template?\n"
    )
    assert older[2].startswith("tsunagu: stack tsunagu-old has no output ApiUrl: ")


@pytest.mark.parametrize(
    ("public_url", "named"),
    [
        ("https://t.example.com", "https://t.example.com"),  # PublicBaseUrl set
        (None, "https://abc123.execute-api.ap-northeast-1.amazonaws.com"),  # an older stack
    ],
)
def test_mail_the_cli_renders_names_the_stack_s_public_address(
    aws: AwsStack, public_url: str | None, named: str
) -> None:
    # Given a stack whose website and mail use the team's own domain (or one deployed before
    # the PublicUrl output)
    outputs = tsunagu_outputs(aws) | {
        "ApiUrl": "https://abc123.execute-api.ap-northeast-1.amazonaws.com"
    }
    if public_url:
        outputs["PublicUrl"] = public_url
    deploy("tsunagu-prod", outputs)
    # When the CLI reads its settings
    settings, _ = cli._stack_settings("tsunagu-prod", REGION)
    # Then the links it renders name what the stack's functions name
    assert settings.api_url == named
