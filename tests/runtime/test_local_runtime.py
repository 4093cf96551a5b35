"""The local runtime brings up any SAM template: tables, functions, routes, streams, state machines,
SES and one clock. One runtime is started for the module, on the fixture template, in Asia/Tokyo,
in virtual time: its clock stands still until a test moves it, so the instants asserted here are
exact (tests/runtime/test_virtual_time.py tests the clock itself, and the scaled clock).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.runtime import (
    ACCOUNT_ID,
    CLOCK_START,
    FIXTURE_STACK,
    REGION,
    ROOT,
    SCALED_CLOCK_KEYS,
    RunningRuntime,
    physical_name,
    start_runtime,
    utc,
)
from tests.support.runtime import wait_for

ECHO = physical_name("EchoFunction")
FAILING = physical_name("FailingFunction")
LEDGER = physical_name("LedgerTable")
SOURCE = physical_name("SourceTable")
BINARY_BODY = b"\x00\x01\xfe\xffbinary body\n"  # what the echo function returns for ?binary


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    state_dir = tmp_path_factory.mktemp("runtime")
    running = start_runtime(FIXTURE_STACK / "template.yaml", state_dir, virtual_time=True)
    try:
        yield running
        # Then: Ctrl-C stops it cleanly, and it takes its runtime.json with it.
        exit_code = running.stop()
        assert exit_code == 0, running.output()
        assert not (state_dir / "runtime.json").exists()
        assert "stopped." in running.output()
    finally:
        running.kill()


def invoke(runtime: RunningRuntime, function: str, payload: Any) -> tuple[dict[str, Any], Any]:
    response = runtime.client("lambda").invoke(
        FunctionName=function, Payload=json.dumps(payload).encode()
    )
    return response, json.loads(response["Payload"].read())


# ---------------------------------------------------------------------- the runtime itself


def test_runtime_json_names_the_loopback_api_and_the_moto_endpoint(
    runtime: RunningRuntime,
) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", runtime.api_url)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", runtime.endpoint_url)
    assert runtime.endpoint_url != runtime.api_url
    assert runtime.state["pid"] == runtime.process.pid


def test_runs_in_utc_although_started_in_tokyo(runtime: RunningRuntime) -> None:
    # Given the runtime was started with TZ=Asia/Tokyo (see start_runtime)
    # When a handler looks at its process's time zone
    _, result = invoke(runtime, ECHO, {})
    # Then it is UTC
    assert result["tz"] == "UTC"
    assert result["utc_offset"] == "+0000"
    assert result["local_offset_seconds"] == 0


def test_virtual_clock_starts_at_the_chosen_instant_and_every_function_is_told_its_url(
    runtime: RunningRuntime,
) -> None:
    environment = runtime.environment
    # runtime.json names the clock's URL on the API, and none of the scaled clock's keys
    assert environment["TSUNAGU_CLOCK_URL"] == f"{runtime.api_url}/_local/clock"
    assert not set(SCALED_CLOCK_KEYS) & set(environment)
    # The clock is where it was started: nothing before this test moves it, and nothing that
    # happened while the runtime started did either.
    state = runtime.clock()
    assert state["mode"] == "virtual"
    assert utc(state["now"]) == utc(CLOCK_START)
    assert state["jumps"] == 0
    # Every function is given that same one clock.
    _, result = invoke(runtime, ECHO, {})
    assert result["environment"]["TSUNAGU_CLOCK_URL"] == environment["TSUNAGU_CLOCK_URL"]
    assert not set(SCALED_CLOCK_KEYS) & set(result["environment"])


# ---------------------------------------------------------------------- tables


def test_every_table_is_created_with_its_keys_indexes_ttl_and_stream(
    runtime: RunningRuntime,
) -> None:
    dynamodb = runtime.client("dynamodb")
    assert sorted(dynamodb.list_tables()["TableNames"]) == [LEDGER, SOURCE]

    source = dynamodb.describe_table(TableName=SOURCE)["Table"]
    assert source["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {a["AttributeName"]: a["AttributeType"] for a in source["AttributeDefinitions"]} == {
        "pk": "S",
        "sk": "S",
        "kind": "S",
        "rank": "N",
    }
    [gsi] = source["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "by_kind"
    assert gsi["KeySchema"] == [
        {"AttributeName": "kind", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert gsi["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]}
    [lsi] = source["LocalSecondaryIndexes"]
    assert lsi["IndexName"] == "by_rank"
    assert lsi["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "rank", "KeyType": "RANGE"},
    ]
    assert lsi["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert source["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert source["LatestStreamArn"].startswith(source["TableArn"] + "/stream/")
    ttl = dynamodb.describe_time_to_live(TableName=SOURCE)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}

    ledger = dynamodb.describe_table(TableName=LEDGER)["Table"]
    assert [k["AttributeName"] for k in ledger["KeySchema"]] == ["pk", "sk"]
    assert not ledger.get("GlobalSecondaryIndexes")
    assert not ledger.get("StreamSpecification", {}).get("StreamEnabled", False)
    assert "LatestStreamArn" not in ledger


# ---------------------------------------------------------------------- functions


def test_every_function_exists_and_runs_its_handler_in_the_runtime_process(
    runtime: RunningRuntime,
) -> None:
    listed = runtime.client("lambda").list_functions()["Functions"]
    assert sorted(f["FunctionName"] for f in listed) == sorted(
        physical_name(f)
        for f in (
            "EchoFunction",
            "FailingFunction",
            "PingFunction",
            "RecordTokenFunction",
            "StreamConsumerFunction",
        )
    )

    response, first = invoke(runtime, ECHO, {"hello": "world"})
    assert "FunctionError" not in response
    assert first["event"] == {"hello": "world"}
    assert first["pid"] == runtime.process.pid
    assert first["context"]["function_name"] == ECHO
    assert first["context"]["invoked_function_arn"] == (
        f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{ECHO}"
    )
    assert first["context"]["memory_limit_in_mb"] == 192  # its own, over Globals' 256
    assert 0 < first["context"]["remaining_ms"] <= 5000  # Globals' Timeout: 5
    # The module stays loaded between invocations (a warm function).
    _, second = invoke(runtime, ECHO, {})
    assert second["invocation"] == first["invocation"] + 1


def test_function_environment_is_the_templates_resolved_to_local_values(
    runtime: RunningRuntime,
) -> None:
    _, result = invoke(runtime, ECHO, {})
    environment = result["environment"]
    source_arn = runtime.client("dynamodb").describe_table(TableName=SOURCE)["Table"]["TableArn"]
    queue_url = runtime.client("sqs").get_queue_url(QueueName=physical_name("ParkedQueue"))[
        "QueueUrl"
    ]
    assert {k: v for k, v in environment.items() if k.startswith("FIXTURE_")} == {
        "FIXTURE_GLOBAL": "from-globals",  # Globals
        "FIXTURE_STAGE": "local",  # Ref to a parameter
        "FIXTURE_LEDGER_TABLE": LEDGER,  # Ref to a table, from Globals
        "FIXTURE_SOURCE_TABLE_ARN": source_arn,  # GetAtt
        "FIXTURE_PARKED_QUEUE_URL": queue_url,  # Ref to a queue
        "FIXTURE_WHERE": f"{REGION}:{ACCOUNT_ID}:local",  # Sub with pseudo parameters
    }
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == ECHO
    assert environment["AWS_ENDPOINT_URL"] == runtime.endpoint_url


def test_a_function_never_sees_another_functions_environment(runtime: RunningRuntime) -> None:
    invoke(runtime, FAILING, {})  # FailingFunction's environment has FIXTURE_FAILING_ONLY
    _, result = invoke(runtime, ECHO, {})
    assert "FIXTURE_FAILING_ONLY" not in result["environment"]


def test_a_handler_exception_is_a_lambda_function_error(runtime: RunningRuntime) -> None:
    response, payload = invoke(runtime, FAILING, {"marker": "direct"})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "FixtureFailure"
    assert payload["errorMessage"] == "fixture failure (marker direct)"


# ---------------------------------------------------------------------- HTTP API


def test_route_gets_a_payload_v2_event_with_path_query_headers_and_cookies(
    runtime: RunningRuntime,
) -> None:
    reply = runtime.http(
        "GET",
        "/echo/item-42?a=1&a=2&b=x%20y",
        headers={"X-Custom-Header": "Value", "Cookie": "c1=v1; c2=v2"},
    )
    assert reply.status == 200
    event = reply.json()["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /echo/{item_id}"
    assert event["requestContext"]["routeKey"] == "GET /echo/{item_id}"
    assert event["rawPath"] == "/echo/item-42"
    assert event["pathParameters"] == {"item_id": "item-42"}
    assert event["rawQueryString"] == "a=1&a=2&b=x%20y"
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y"}
    assert event["headers"]["x-custom-header"] == "Value"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["requestContext"]["http"] == {
        "method": "GET",
        "path": "/echo/item-42",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": event["headers"]["user-agent"],
    }
    assert event["isBase64Encoded"] is False
    assert "body" not in event


def test_request_time_is_the_runtimes_clock(runtime: RunningRuntime) -> None:
    now = runtime.simulated_now()
    context = runtime.http("GET", "/echo/when").json()["event"]["requestContext"]
    assert context["timeEpoch"] == int(now.timestamp() * 1000)
    assert context["time"] == now.strftime("%d/%b/%Y:%H:%M:%S +0000")


def test_binary_request_body_arrives_base64_and_text_body_as_text(
    runtime: RunningRuntime,
) -> None:
    binary = bytes(range(256))
    event = runtime.http(
        "POST",
        "/echo/upload",
        body=binary,
        headers={"Content-Type": "application/octet-stream"},
    ).json()["event"]
    assert event["routeKey"] == "POST /echo/{item_id}"
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == binary

    text = json.dumps({"name": "日本語"})
    event = runtime.http(
        "POST",
        "/echo/form",
        body=text.encode(),
        headers={"Content-Type": "application/json"},
    ).json()["event"]
    assert event["isBase64Encoded"] is False
    assert event["body"] == text


def test_response_status_headers_and_cookies_are_mapped_back(runtime: RunningRuntime) -> None:
    reply = runtime.http("GET", "/echo/x?status=201")
    assert reply.status == 201
    assert reply.headers["x-echo"] == "yes"
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers.get_all("set-cookie") == [
        "session=abc123; Path=/; HttpOnly",
        "theme=dark; Path=/",
    ]


def test_base64_response_body_is_sent_as_bytes(runtime: RunningRuntime) -> None:
    reply = runtime.http("GET", "/echo/x?binary")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/octet-stream"
    assert reply.body == BINARY_BODY


def test_result_without_status_code_becomes_a_200_json_response(
    runtime: RunningRuntime,
) -> None:
    reply = runtime.http("GET", "/echo/x?bare")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"bare": True, "path": "/echo/x"}


def test_greedy_path_and_any_method(runtime: RunningRuntime) -> None:
    event = runtime.http("DELETE", "/files/reports/2026/q4.csv").json()["event"]
    assert event["routeKey"] == "ANY /files/{proxy+}"
    assert event["pathParameters"] == {"proxy": "reports/2026/q4.csv"}
    assert event["requestContext"]["http"]["method"] == "DELETE"


def test_unknown_route_and_method_are_404(runtime: RunningRuntime) -> None:
    for method, path in (("GET", "/nowhere"), ("DELETE", "/echo/x"), ("GET", "/echo")):
        reply = runtime.http(method, path)
        assert (reply.status, reply.json()) == (404, {"message": "Not Found"}), (method, path)


def test_handler_exception_behind_a_route_is_a_500(runtime: RunningRuntime) -> None:
    reply = runtime.http("GET", "/fail")
    assert reply.status == 500
    assert reply.json() == {"message": "Internal Server Error"}


def test_a_route_only_the_fixture_has_is_served_with_no_change_in_local(
    runtime: RunningRuntime,
) -> None:
    from tsunagu_local.gateway import routes_from
    from tsunagu_local.jwt_authorizer import JwtAuthorizer
    from tsunagu_local.template import load_stack

    # Given a route and function that the product's template does not have
    product = load_stack(ROOT / "template.yaml", {"Stage": "test"}, REGION)
    sign_in = JwtAuthorizer("AdminSignIn", "https://issuer", frozenset(), "authorization", "")
    routes = routes_from(product, {"AdminSignIn": sign_in})
    assert "GET /ping/{word}" not in {r.route_key for r in routes}
    assert "PingFunction" not in product.resources
    # ... and that nothing in local/ knows about
    for source in (ROOT / "local" / "tsunagu_local").rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert "/ping" not in text and "PingFunction" not in text, source
    # Then the runtime serves it from the fixture template alone
    reply = runtime.http("GET", "/ping/hello")
    assert (reply.status, reply.body) == (200, b"pong hello")


# ---------------------------------------------------------------------- DynamoDB streams


@dataclass(frozen=True)
class Delivery:
    keys: list[str]
    sequence_numbers: list[str]
    first_record: dict[str, Any]


def deliveries(runtime: RunningRuntime, keys: list[str]) -> list[Delivery]:
    """The batches the stream consumer was given that hold any of these records, in order."""
    pages = runtime.client("dynamodb").get_paginator("scan").paginate(TableName=LEDGER)
    items = sorted(
        (i for page in pages for i in page["Items"] if i["pk"]["S"] == "delivery"),
        key=lambda i: i["sk"]["S"],
    )
    found = [
        Delivery(
            keys=[k["S"] for k in item["keys"]["L"]],
            sequence_numbers=[s["S"] for s in item["sequence_numbers"]["L"]],
            first_record=json.loads(item["first_record"]["S"]),
        )
        for item in items
    ]
    return [d for d in found if set(d.keys) & set(keys)]


def put_items(runtime: RunningRuntime, behaviours: list[str]) -> list[str]:
    """Write one item per behaviour in one request; returns their keys as the consumer sees them."""
    prefix = uuid.uuid4().hex[:12]
    requests = [
        {
            "PutRequest": {
                "Item": {
                    "pk": {"S": prefix},
                    "sk": {"S": f"{index:02d}"},
                    "behaviour": {"S": behaviour},
                }
            }
        }
        for index, behaviour in enumerate(behaviours)
    ]
    runtime.client("dynamodb").batch_write_item(RequestItems={SOURCE: requests})
    return [f"{prefix}/{index:02d}" for index in range(len(behaviours))]


def count(found: list[Delivery], key: str) -> int:
    return sum(d.keys.count(key) for d in found)


def delivered(
    runtime: RunningRuntime,
    keys: list[str],
    until: Callable[[list[Delivery]], bool] = lambda _: True,
    what: str = "",
) -> list[Delivery]:
    """Wait until every record was delivered and ``until`` holds; then let the stream settle.

    Settling: one more record is written and waited for. The stream is delivered in order, so
    once it arrives, nothing of ``keys`` is still pending: the deliveries returned are final.
    """

    def probe() -> list[Delivery]:
        found = deliveries(runtime, keys)
        everything = {k for d in found for k in d.keys} >= set(keys)
        return found if everything and until(found) else []

    wait_for(probe, timeout=60, what=what or f"delivery of {keys}")
    marker = put_items(runtime, ["ok"])
    wait_for(lambda: deliveries(runtime, marker), timeout=30, what="the stream to settle")
    return deliveries(runtime, keys)


def test_stream_records_arrive_in_batches_of_the_templates_size(runtime: RunningRuntime) -> None:
    keys = put_items(runtime, ["ok"] * 7)
    found = delivered(runtime, keys)
    assert [k for d in found for k in d.keys if k in keys] == keys  # each once, in order
    assert max(len(d.keys) for d in found) == 3  # BatchSize: 3, and batches are filled
    # The records are Lambda's DynamoDB stream records.
    record = found[0].first_record
    stream_arn = runtime.client("dynamodb").describe_table(TableName=SOURCE)["Table"][
        "LatestStreamArn"
    ]
    pk, sk = keys[0].split("/")
    assert record["eventSource"] == "aws:dynamodb"
    assert record["eventName"] == "INSERT"
    assert record["eventSourceARN"] == stream_arn
    assert record["awsRegion"] == REGION
    assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert record["dynamodb"]["Keys"] == {"pk": {"S": pk}, "sk": {"S": sk}}
    assert record["dynamodb"]["NewImage"]["behaviour"] == {"S": "ok"}
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int | float)
    assert record["dynamodb"]["SequenceNumber"] == found[0].sequence_numbers[0]


def test_partial_batch_failure_retries_from_the_failed_record_only(
    runtime: RunningRuntime,
) -> None:
    # Given seven records, the fifth of which the consumer fails the first time it sees it
    keys = put_items(runtime, ["ok"] * 4 + ["fail-once"] + ["ok"] * 2)
    failing = keys[4]
    # When they are all delivered
    found = delivered(runtime, keys, lambda f: count(f, failing) >= 2, "the failed record's retry")
    # Then the batch that failed is retried from the failed record, not from its start
    first = next(i for i, d in enumerate(found) if failing in d.keys)
    failed_batch, retry = found[first], found[first + 1]
    position = failed_batch.keys.index(failing)
    assert position > 0, "the fixture means the failed record to be inside its batch"
    assert retry.keys[: len(failed_batch.keys) - position] == failed_batch.keys[position:]
    assert count(found, failing) == 2
    # ... and every record not in the failed batch's tail was delivered exactly once
    for key in keys:
        if key not in failed_batch.keys[position:]:
            assert count(found, key) == 1, key


def test_function_error_retries_the_whole_batch(runtime: RunningRuntime) -> None:
    # Given three records, the second of which makes the consumer raise the first time
    keys = put_items(runtime, ["ok", "raise-once", "ok"])
    # When they are delivered
    found = delivered(runtime, keys, lambda f: len(f) >= 2, "the retried batch")
    # Then the whole batch came again, from its first record, once
    assert [d.keys for d in found] == [keys, keys]


def test_record_failing_every_retry_is_parked_in_the_on_failure_queue(
    runtime: RunningRuntime,
) -> None:
    sqs = runtime.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=physical_name("ParkedQueue"))["QueueUrl"]
    # Given a record that always fails, between two that do not
    keys = put_items(runtime, ["ok", "always-fail", "ok"])

    # When the retries run out
    def parked() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]

    [message] = wait_for(parked, timeout=60, what="a message in the OnFailure queue")
    found = delivered(runtime, keys, lambda f: f[-1].keys == keys[2:], "the record after it")
    # Then it was tried 1 + MaximumRetryAttempts (2) times, parked, and the stream moved on
    assert count(found, keys[0]) == 1
    assert count(found, keys[1]) == 3
    failed_at = found[0].sequence_numbers[found[0].keys.index(keys[1])]
    stream_arn = runtime.client("dynamodb").describe_table(TableName=SOURCE)["Table"][
        "LatestStreamArn"
    ]
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["functionArn"].endswith(
        ":function:" + physical_name("StreamConsumerFunction")
    )
    assert message["DDBStreamBatchInfo"]["streamArn"] == stream_arn
    assert message["DDBStreamBatchInfo"]["startSequenceNumber"] == failed_at


# ---------------------------------------------------------------------- state machines


@dataclass(frozen=True)
class JourneyRun:
    name: str
    machine_arn: str
    definition: dict[str, Any]
    description: dict[str, Any]
    events: list[dict[str, Any]]
    started_at: datetime
    """The runtime's clock when the execution was started."""
    wake_at: str

    def state_events(self, state: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The entered and exited events of a state."""
        entered = next(
            e
            for e in self.events
            if e["type"].endswith("StateEntered") and e["stateEnteredEventDetails"]["name"] == state
        )
        exited = next(
            e
            for e in self.events
            if e["type"].endswith("StateExited") and e["stateExitedEventDetails"]["name"] == state
        )
        return entered, exited


@pytest.fixture(scope="module")
def journey(runtime: RunningRuntime) -> JourneyRun:
    """One execution of the fixture journey, waited for until it ends."""
    stepfunctions = runtime.client("stepfunctions")
    machines = {m["name"]: m for m in stepfunctions.list_state_machines()["stateMachines"]}
    assert sorted(machines) == [
        physical_name("FixtureClickJourney"),
        physical_name("FixtureJourney"),
    ]
    arn = machines[physical_name("FixtureJourney")]["stateMachineArn"]
    # Wait two hours, then until four hours after now.
    started_at = runtime.simulated_now()
    wake_at = (started_at + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    name = f"runtime-test-{uuid.uuid4().hex[:12]}"
    execution_arn = stepfunctions.start_execution(
        stateMachineArn=arn, name=name, input=json.dumps({"wake_at": wake_at})
    )["executionArn"]
    assert execution_arn.endswith(f":{name}")
    # Time stands still until moved: the execution waits in its first Wait.
    assert runtime.settle()["next_due"] is not None
    assert stepfunctions.describe_execution(executionArn=execution_arn)["status"] == "RUNNING"
    # Move it to wake_at: it returns once everything due on the way has happened.
    assert utc(runtime.advance(to=wake_at)["now"]) == utc(wake_at)
    description = stepfunctions.describe_execution(executionArn=execution_arn)
    assert description["status"] != "RUNNING", "the execution had not ended when time settled"
    events = stepfunctions.get_execution_history(executionArn=execution_arn, maxResults=1000)
    definition = stepfunctions.describe_state_machine(stateMachineArn=arn)["definition"]
    return JourneyRun(
        name, arn, json.loads(definition), description, events["events"], started_at, wake_at
    )


def test_definition_substitutions_are_the_local_arns_and_names(
    runtime: RunningRuntime, journey: JourneyRun
) -> None:
    states = journey.definition["States"]
    function_arn = runtime.client("lambda").get_function(FunctionName=ECHO)["Configuration"][
        "FunctionArn"
    ]
    assert states["Call the echo function"]["Parameters"]["FunctionName"] == function_arn
    assert states["Call the failing function"]["Resource"] == (
        f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{FAILING}"
    )
    assert states["Record the run in the ledger"]["Parameters"]["TableName"] == LEDGER
    assert "${" not in json.dumps(journey.definition)


def test_execution_runs_for_real_and_catches_a_function_error(journey: JourneyRun) -> None:
    assert journey.description["status"] == "SUCCEEDED", journey.description
    output = json.loads(journey.description["output"])
    assert output["caught"]["Error"] == "FixtureFailure"
    cause = json.loads(output["caught"]["Cause"])
    assert cause["errorType"] == "FixtureFailure"
    assert cause["errorMessage"] == f"fixture failure (marker {journey.name})"
    [failed] = [e for e in journey.events if e["type"] == "LambdaFunctionFailed"]
    assert failed["lambdaFunctionFailedEventDetails"]["error"] == "FixtureFailure"


def test_lambda_task_calls_the_handler_in_process(
    runtime: RunningRuntime, journey: JourneyRun
) -> None:
    echo = json.loads(journey.description["output"])["echo"]
    assert echo["pid"] == runtime.process.pid
    assert echo["received"] == {"from": "journey", "input": {"wake_at": journey.wake_at}}
    assert echo["environment"]["FIXTURE_LEDGER_TABLE"] == LEDGER


def test_dynamodb_task_writes_to_the_substituted_table(
    runtime: RunningRuntime, journey: JourneyRun
) -> None:
    item = runtime.client("dynamodb").get_item(
        TableName=LEDGER, Key={"pk": {"S": "journey"}, "sk": {"S": journey.name}}
    )
    assert "Item" in item


def test_state_machines_are_created_on_the_runtimes_clock(
    runtime: RunningRuntime, journey: JourneyRun
) -> None:
    # Created as the runtime started, its clock standing at CLOCK_START (not the machine's
    # date): `tsunagu journeys versions` lists versions by these dates.
    described = runtime.client("stepfunctions").describe_state_machine(
        stateMachineArn=journey.machine_arn
    )
    assert described["creationDate"] == utc(CLOCK_START)


def test_execution_dates_and_history_are_on_the_runtimes_clock(journey: JourneyRun) -> None:
    # Everything up to the first Wait happened while time stood still: at the start instant.
    assert journey.description["startDate"] == journey.started_at
    [started] = [e for e in journey.events if e["type"] == "ExecutionStarted"]
    assert started["timestamp"] == journey.started_at
    entered, _ = journey.state_events("Wait two hours")
    before_the_wait = [e for e in journey.events if e["id"] <= entered["id"]]
    assert {e["timestamp"] for e in before_the_wait} == {journey.started_at}
    # ... and it ended when it woke
    assert journey.description["stopDate"] == utc(journey.wake_at)
    assert journey.events[-1]["type"] == "ExecutionSucceeded"
    assert journey.events[-1]["timestamp"] == utc(journey.wake_at)


def test_wait_seconds_follows_the_clock(journey: JourneyRun) -> None:
    # 7200 seconds on the runtime's clock, to the instant.
    entered, exited = journey.state_events("Wait two hours")
    assert entered["timestamp"] == journey.started_at
    assert exited["timestamp"] - entered["timestamp"] == timedelta(hours=2)


def test_timestamp_wait_ends_at_that_instant_on_the_clock(journey: JourneyRun) -> None:
    entered, exited = journey.state_events("Wait until wake_at")
    assert entered["timestamp"] == journey.started_at + timedelta(hours=2)
    assert exited["timestamp"] == utc(journey.wake_at)


# ---------------------------------------------------------------------- SES and the mail viewer


class MailPage(HTMLParser):
    """The sent-mail viewer's page: title and, per article (mail), header rows and iframes."""

    def __init__(self, document: str) -> None:
        super().__init__()
        self.title = ""
        self.articles: dict[str, dict[str, Any]] = {}
        self._article: dict[str, Any] | None = None
        self._element: str | None = None
        self._text = ""
        self.feed(document)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "article":
            self._article = {"subject": "", "headers": [], "iframes": []}
            self.articles[attributes["id"] or ""] = self._article
        elif tag == "iframe" and self._article is not None:
            self._article["iframes"].append(attributes)
        elif tag in ("title", "h2", "th", "td"):
            self._element, self._text = tag, ""

    def handle_data(self, data: str) -> None:
        if self._element is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag != self._element:
            return
        self._element = None
        if tag == "title":
            self.title = self._text
        elif self._article is not None and tag == "h2":
            self._article["subject"] = self._text
        elif self._article is not None and tag == "th":
            self._article["headers"].append([self._text, ""])
        elif self._article is not None and tag == "td":
            self._article["headers"][-1][1] = self._text


def test_ses_identities_are_verified_and_the_configuration_set_exists(
    runtime: RunningRuntime,
) -> None:
    ses = runtime.client("ses")
    identities = ses.list_identities()["Identities"]
    assert sorted(identities) == ["news.example.com", "sender@example.com"]
    attributes = ses.get_identity_verification_attributes(Identities=identities)
    assert {
        identity: a["VerificationStatus"]
        for identity, a in attributes["VerificationAttributes"].items()
    } == {"news.example.com": "Success", "sender@example.com": "Success"}
    configuration_set = runtime.client("sesv2").get_configuration_set(
        ConfigurationSetName="fixture-local"
    )
    assert configuration_set["ConfigurationSetName"] == "fixture-local"


def test_sent_mail_viewer_lists_every_mail_with_headers_and_rendered_html(
    runtime: RunningRuntime,
) -> None:
    sesv2 = runtime.client("sesv2")
    # Given a simple mail from the verified domain
    simple_html = "<h1>Welcome</h1><p>Thanks for <a href='https://example.com/x'>reading</a></p>"
    simple_id = sesv2.send_email(
        FromEmailAddress="Journeys <team@news.example.com>",
        Destination={"ToAddresses": ["lead@example.com"]},
        Content={
            "Simple": {
                "Subject": {"Data": "Welcome aboard"},
                "Body": {"Html": {"Data": simple_html}, "Text": {"Data": "Welcome"}},
            }
        },
        ConfigurationSetName="fixture-local",
    )["MessageId"]
    # ... a raw MIME mail with its own headers, from the verified address
    raw = EmailMessage()
    raw["From"] = "sender@example.com"
    raw["To"] = "other.lead@example.com"
    raw["Subject"] = "Your white paper"
    raw["List-Unsubscribe"] = "<https://example.com/unsubscribe/abc>"
    raw["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    raw.set_content("Here is your white paper.")
    raw_html = "<p>Here is your <b>white paper</b>.</p>"
    raw.add_alternative(raw_html, subtype="html")
    raw_id = sesv2.send_email(
        FromEmailAddress="sender@example.com",
        Destination={"ToAddresses": ["other.lead@example.com"]},
        Content={"Raw": {"Data": raw.as_bytes()}},
    )["MessageId"]
    # ... and a mail from an address nobody verified, which SES refuses
    with pytest.raises(ClientError) as refused:
        sesv2.send_email(
            FromEmailAddress="stranger@example.com",
            Destination={"ToAddresses": ["lead@example.com"]},
            Content={"Simple": {"Subject": {"Data": "no"}, "Body": {"Text": {"Data": "no"}}}},
        )
    assert refused.value.response["Error"]["Code"] == "MessageRejected"

    # When the viewer is asked for JSON
    now = runtime.simulated_now()
    mails = runtime.http("GET", "/_local/mail?format=json").json()
    # Then it lists both sent mails, newest first, and not the refused one
    assert [m["message_id"] for m in mails] == [raw_id, simple_id]
    raw_mail, simple_mail = mails
    assert simple_mail["sender"] == "Journeys <team@news.example.com>"
    assert simple_mail["recipients"] == ["lead@example.com"]
    assert simple_mail["subject"] == "Welcome aboard"
    assert simple_mail["html"] == simple_html
    assert raw_mail["recipients"] == ["other.lead@example.com"]
    assert raw_mail["subject"] == "Your white paper"
    assert ["List-Unsubscribe", "<https://example.com/unsubscribe/abc>"] in raw_mail["headers"]
    assert ["List-Unsubscribe-Post", "List-Unsubscribe=One-Click"] in raw_mail["headers"]
    assert raw_mail["text"].strip() == "Here is your white paper."
    assert raw_mail["html"].strip() == raw_html
    # ... each stamped with the instant SES accepted it on the runtime's clock (time stood still)
    assert [utc(m["sent_at"]) for m in mails] == [now, now]

    # When the viewer is opened as a page
    reply = runtime.http("GET", "/_local/mail")
    assert reply.status == 200
    assert reply.headers.get_content_type() == "text/html"
    page = MailPage(reply.body.decode("utf-8"))
    # Then every mail is there with its headers, and its HTML rendered in a sandboxed frame
    assert page.title == "Sent mail (2)"
    assert list(page.articles) == [raw_id, simple_id]
    raw_article, simple_article = page.articles[raw_id], page.articles[simple_id]
    assert raw_article["subject"] == "Your white paper"
    assert ["List-Unsubscribe", "<https://example.com/unsubscribe/abc>"] in raw_article["headers"]
    assert ["From", "sender@example.com"] in raw_article["headers"]
    [frame] = simple_article["iframes"]
    assert frame["srcdoc"] == simple_html
    assert "allow-scripts" not in (frame["sandbox"] or "")
    [frame] = raw_article["iframes"]
    assert frame["srcdoc"].strip() == raw_html
