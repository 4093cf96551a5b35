"""The runtime's fault injection (``--faults``, tsunagu_local.faults): each fault fires where AWS
produces it, does what AWS does, and is counted; with no spec, nothing is injected.

The seams are exercised in-process: moto's Lambda API as Step Functions calls it (throttled before
the handler, the answer lost after it), a stream poller delivering a batch (the function raising
after its work, crashing part-way, reporting a processed record as failed, the batch delivered
again), and moto's SES v2 (throttled before the mail is taken, the answer lost after). What the
product does about them is ``make proof``'s faults section (tests/proof/faults.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from tests.runtime import CLOCK_START
from tsunagu.clock import parse_instant
from tsunagu_local import faults
from tsunagu_local.clocks import VirtualClock
from tsunagu_local.faults import Fault, FaultPlan, FaultSpecError
from tsunagu_local.lambdas import FunctionRegistry, LocalFunction, install_moto_invoke
from tsunagu_local.streams import StreamMapping, StreamPoller

REGION = "ap-northeast-1"
STREAM_ARN = (
    f"arn:aws:dynamodb:{REGION}:123456789012:table/faults-fixture/stream/2026-11-20T00:00:00.000"
)


@pytest.fixture(autouse=True)
def no_faults_after() -> Iterator[None]:
    yield
    faults.install(None)


def only(kind: Fault) -> FaultPlan:
    """Every chance of ``kind`` taken, no other fault."""
    return FaultPlan({kind: 1.0}, seed=1)


def counted(kind: Fault) -> int:
    injector = faults.injector()
    assert injector is not None
    return injector.injected[kind]


# ---------------------------------------------------------------- the spec
def test_a_spec_names_kinds_with_probabilities_all_of_them_and_a_seed() -> None:
    plan = FaultPlan.parse("seed=7, all=0.02, ses_answer_lost=0.5")
    assert plan.seed == 7
    assert plan.probabilities[Fault.TASK_THROTTLED] == 0.02
    assert plan.probabilities[Fault.SES_ANSWER_LOST] == 0.5
    assert set(plan.probabilities) == set(Fault)
    assert FaultPlan.parse(plan.describe()).probabilities == plan.probabilities


def test_with_first_every_kind_fires_at_its_first_chance_then_by_its_probability() -> None:
    plan = FaultPlan.parse("seed=1,first=1,batch_crash_part_way=0.01,ses_throttled=0.01")
    assert plan.first_chance and FaultPlan.parse(plan.describe()) == plan
    faults.install(plan)
    crashes = [faults.fires(Fault.BATCH_CRASH_PART_WAY) for _ in range(100)]
    assert crashes[0] and sum(crashes) < 10  # the first, then about one in a hundred
    assert faults.fires(Fault.SES_THROTTLED)  # each kind's own first chance
    assert not faults.fires(Fault.TASK_THROTTLED)  # a kind without a probability never fires
    faults.install(None)


@pytest.mark.parametrize("spec", ["nonsense=0.1", "all=2", "task_throttled", "seed=x", "first=yes"])
def test_a_spec_that_cannot_be_read_is_refused(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        FaultPlan.parse(spec)


def test_without_a_spec_nothing_fires_and_the_page_says_so() -> None:
    faults.install(None)
    assert not any(faults.fires(kind) for kind in Fault)
    page = faults.faults_page(Request(EnvironBuilder(path="/_local/faults").get_environ()))
    assert json.loads(page.get_data()) == {"spec": None, "injected": {}, "total": 0}


def test_the_same_seed_makes_the_same_choices_and_every_fault_is_counted() -> None:
    def choices() -> list[bool]:
        faults.install(FaultPlan({Fault.TASK_ANSWER_LOST: 0.3}, seed=42))
        return [faults.fires(Fault.TASK_ANSWER_LOST) for _ in range(200)]

    first = choices()
    assert first == choices()
    assert 30 < sum(first) < 90
    page = faults.faults_page(Request(EnvironBuilder(path="/_local/faults").get_environ()))
    body = json.loads(page.get_data())
    assert body["injected"]["task_answer_lost"] == sum(first) == body["total"]
    assert body["spec"] == "seed=42,task_answer_lost=0.3"


# ---------------------------------------------------- the Lambda API (Step Functions tasks)
@pytest.fixture
def lambda_api(tmp_path: Path) -> Iterator[tuple[Any, list[Any]]]:
    """moto's Lambda with one function whose handler this process runs: it appends each event
    it gets to a file (its side effect); yields the client and a reader of the side effects."""
    code = tmp_path / "code"
    code.mkdir()
    effects = tmp_path / "effects.jsonl"
    (code / "app.py").write_text(
        "import json\n"
        "def handler(event, context):\n"
        f"    with open({str(effects)!r}, 'a') as f:\n"
        "        f.write(json.dumps(event) + '\\n')\n"
        "    return {'done': event['n']}\n"
    )
    registry = FunctionRegistry()
    with mock_aws(config={"lambda": {"use_docker": False}}):
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        client = boto3.client(
            "lambda", region_name=REGION, config=Config(retries={"total_max_attempts": 1})
        )
        arn = client.create_function(
            FunctionName="effect",
            Runtime="python3.13",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )["FunctionArn"]
        clock = VirtualClock(parse_instant(CLOCK_START))
        registry.add(LocalFunction("Effect", "effect", arn, code, "app.handler", {}, 3, 128, clock))
        install_moto_invoke(registry)

        def done() -> list[Any]:
            if not effects.exists():
                return []
            return [json.loads(line) for line in effects.read_text().splitlines()]

        yield client, [done]


def test_a_throttled_task_gets_429_before_its_handler_runs(
    lambda_api: tuple[Any, list[Any]],
) -> None:
    client, [done] = lambda_api
    faults.install(only(Fault.TASK_THROTTLED))
    with pytest.raises(ClientError) as refused:
        client.invoke(FunctionName="effect", Payload=json.dumps({"n": 1}).encode())
    # Step Functions names it Lambda.TooManyRequestsException: the journeys' Retry takes it
    assert refused.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert done() == []
    assert counted(Fault.TASK_THROTTLED) == 1


def test_a_lost_answer_comes_after_the_handler_has_done_its_work(
    lambda_api: tuple[Any, list[Any]],
) -> None:
    client, [done] = lambda_api
    faults.install(only(Fault.TASK_ANSWER_LOST))
    with pytest.raises(ClientError) as failed:
        client.invoke(FunctionName="effect", Payload=json.dumps({"n": 2}).encode())
    # Lambda.ServiceException to Step Functions: retried, so the handler runs again
    assert failed.value.response["Error"]["Code"] == "ServiceException"
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert done() == [{"n": 2}]
    assert counted(Fault.TASK_ANSWER_LOST) == 1
    # and with injection off, the same call simply answers
    faults.install(None)
    answer = client.invoke(FunctionName="effect", Payload=json.dumps({"n": 3}).encode())
    assert json.loads(answer["Payload"].read()) == {"done": 3}


# ---------------------------------------------------------------- the stream poller
class RecordingFunction:
    """Stands in for a LocalFunction: records every batch it is given, answers success."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.logical_id = "Consumer"
        self.name = "consumer"
        self.arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:consumer"

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        self.batches.append([r["dynamodb"]["SequenceNumber"] for r in event["Records"]])
        return {"batchItemFailures": []}


def poller() -> tuple[StreamPoller, RecordingFunction]:
    function = RecordingFunction()
    mapping = StreamMapping(
        function=function,  # type: ignore[arg-type]
        stream_arn=STREAM_ARN,
        batch_size=10,
        max_retries=5,
        report_item_failures=True,
    )
    return StreamPoller(mapping, sqs_client=None), function


def batch(size: int = 6) -> list[dict[str, Any]]:
    return [{"dynamodb": {"SequenceNumber": str(100 + n)}} for n in range(size)]


SEQUENCES = [str(100 + n) for n in range(6)]


def test_a_function_that_raises_after_its_work_gets_the_whole_batch_again() -> None:
    stream, function = poller()
    faults.install(only(Fault.HANDLER_RAISES_AFTER))
    stream._deliver(batch())
    assert function.batches == [SEQUENCES]  # it did its work ...
    assert [r["dynamodb"]["SequenceNumber"] for r in stream._pending] == SEQUENCES  # ... again
    assert counted(Fault.HANDLER_RAISES_AFTER) == 1


def test_a_function_that_crashes_part_way_processed_a_prefix_and_gets_the_batch_again() -> None:
    stream, function = poller()
    faults.install(only(Fault.BATCH_CRASH_PART_WAY))
    stream._deliver(batch())
    [processed] = function.batches
    assert 1 <= len(processed) < len(SEQUENCES)
    assert processed == SEQUENCES[: len(processed)]
    assert [r["dynamodb"]["SequenceNumber"] for r in stream._pending] == SEQUENCES
    assert counted(Fault.BATCH_CRASH_PART_WAY) == 1


def test_a_processed_record_reported_as_failed_is_retried_from_there() -> None:
    stream, function = poller()
    faults.install(only(Fault.BATCH_PARTIAL_FAILURE))
    stream._deliver(batch())
    assert function.batches == [SEQUENCES]
    pending = [r["dynamodb"]["SequenceNumber"] for r in stream._pending]
    assert pending and pending == SEQUENCES[len(SEQUENCES) - len(pending) :]
    assert counted(Fault.BATCH_PARTIAL_FAILURE) == 1


def test_a_batch_that_succeeded_is_delivered_again_when_its_checkpoint_is_lost() -> None:
    stream, function = poller()
    stream._next_sequence = 100
    faults.install(only(Fault.BATCH_REDELIVERED))
    stream._deliver(batch())
    assert function.batches == [SEQUENCES]
    assert [r["dynamodb"]["SequenceNumber"] for r in stream._pending] == SEQUENCES
    assert stream.delivered_mark == 100  # the mark did not move: the batch is still to deliver
    assert counted(Fault.BATCH_REDELIVERED) == 1


def test_without_faults_a_delivered_batch_moves_the_mark_past_it() -> None:
    stream, function = poller()
    stream._next_sequence = 100
    stream._deliver(batch())
    assert function.batches == [SEQUENCES]
    assert stream._pending == []
    assert stream.delivered_mark == 106


# ---------------------------------------------------------------- SES v2
@pytest.fixture
def sesv2() -> Iterator[tuple[Any, Any]]:
    """moto's SES v2 with a verified sender: the client (no retries, as the product's) and
    moto's list of the mail SES took."""
    from moto.ses.models import ses_backends

    with mock_aws():
        boto3.client("ses", region_name=REGION).verify_domain_identity(Domain="example.com")
        client = boto3.client(
            "sesv2", region_name=REGION, config=Config(retries={"total_max_attempts": 1})
        )
        yield client, ses_backends["123456789012"][REGION].sent_messages


def send(client: Any) -> str:
    mail = EmailMessage()
    mail["From"] = "news@example.com"
    mail["To"] = "taro@example.jp"
    mail["Subject"] = "fault injection"
    mail.set_content("hello")
    answer = client.send_email(
        FromEmailAddress="news@example.com",
        Destination={"ToAddresses": ["taro@example.jp"]},
        Content={"Raw": {"Data": mail.as_bytes()}},
    )
    message_id: str = answer["MessageId"]
    return message_id


def test_ses_throttles_before_it_takes_the_mail(sesv2: tuple[Any, Any]) -> None:
    client, sent = sesv2
    faults.install(only(Fault.SES_THROTTLED))
    with pytest.raises(ClientError) as throttled:
        send(client)
    assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert len(sent) == 0
    assert counted(Fault.SES_THROTTLED) == 1


def test_ses_takes_the_mail_and_loses_the_answer(sesv2: tuple[Any, Any]) -> None:
    client, sent = sesv2
    faults.install(only(Fault.SES_ANSWER_LOST))
    with pytest.raises(ClientError) as lost:
        send(client)
    assert lost.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert len(sent) == 1  # in the mailbox, though the caller was told it failed
    assert counted(Fault.SES_ANSWER_LOST) == 1
    faults.install(None)
    assert send(client)
    assert len(sent) == 2
