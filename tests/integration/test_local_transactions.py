"""The local runtime's DynamoDB runs transactions as DynamoDB does: a repeated
ClientRequestToken is not applied twice, a cancelled transaction leaves no trace - in the
table or its stream - without the runtime copying whole tables to get there, and no read sees a
transaction half done."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.moto_tables import create_keyed_table
from tsunagu_local import transactions
from tsunagu_local.streams import (
    StreamReaders,
    as_lambda_json,
    lambda_record,
    read_records,
    stream_shard,
)
from tsunagu_local.transactions import (
    honour_client_request_tokens,
    isolate_reads,
    roll_back_transactions_in_place,
)

TABLE = "tokens-test"
LEDGER = "ledger-test"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name="ap-northeast-1")
        create_keyed_table(client, TABLE)
        create_keyed_table(client, LEDGER, sort_key=True, stream=True)
        yield client


def token(name: str) -> str:
    """A token of this test's own: the runtime remembers tokens for ten minutes, as DynamoDB
    does, across the tests of this process."""
    return f"{name}-{uuid.uuid4().hex[:20]}"


def put_new(client: Any, key: str, token: str, value: str = "1") -> Any:
    return client.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {"pk": {"S": key}, "value": {"S": value}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ],
        ClientRequestToken=token,
    )


def test_a_retried_transaction_is_answered_and_not_applied_again(dynamodb: Any) -> None:
    honour_client_request_tokens()
    # Given a transaction that was applied (its answer lost on the way back)
    first = token("a")
    put_new(dynamodb, "lead-1", first)
    # When the SDK sends it again with the same token, Then it succeeds and changes nothing
    put_new(dynamodb, "lead-1", first)
    assert dynamodb.scan(TableName=TABLE)["Count"] == 1


def test_a_new_token_is_a_new_transaction(dynamodb: Any) -> None:
    honour_client_request_tokens()
    put_new(dynamodb, "lead-1", token("a"))
    with pytest.raises(ClientError) as refused:
        put_new(dynamodb, "lead-1", token("b"))
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"


def test_a_token_used_for_other_items_is_refused(dynamodb: Any) -> None:
    honour_client_request_tokens()
    used = token("a")
    put_new(dynamodb, "lead-1", used)
    with pytest.raises(ClientError) as refused:
        put_new(dynamodb, "lead-2", used)
    assert refused.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert dynamodb.scan(TableName=TABLE)["Count"] == 1


def test_a_failed_transaction_can_be_tried_again_with_its_token(dynamodb: Any) -> None:
    honour_client_request_tokens()
    put_new(dynamodb, "lead-1", token("a"))
    retried = token("c")
    with pytest.raises(ClientError):
        put_new(dynamodb, "lead-1", retried, value="2")
    dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": "lead-1"}})
    put_new(dynamodb, "lead-1", retried, value="2")
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "lead-1"}})["Item"]
    assert item["value"] == {"S": "2"}


def test_a_token_is_forgotten_after_ten_minutes_and_the_newer_ones_are_not(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a token used now and another five minutes later (the runtime's monotonic clock)
    honour_client_request_tokens()
    seconds = [time.monotonic()]
    monkeypatch.setattr(transactions.time, "monotonic", lambda: seconds[0])
    older, newer = token("a"), token("b")
    put_new(dynamodb, "lead-1", older)
    seconds[0] += 300
    put_new(dynamodb, "lead-2", newer)
    # When eleven minutes have passed since the first
    seconds[0] += 360
    # Then the first token is a new transaction's (for other items, no mismatch), as DynamoDB
    # remembers a token ten minutes; the second is still remembered
    put_new(dynamodb, "lead-3", older)
    with pytest.raises(ClientError) as refused:
        put_new(dynamodb, "lead-4", newer)
    assert refused.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert dynamodb.scan(TableName=TABLE)["Count"] == 3


def ledger_rows(client: Any) -> dict[tuple[str, str], dict[str, Any]]:
    items = client.scan(TableName=LEDGER, ConsistentRead=True)["Items"]
    return {(item["pk"]["S"], item["sk"]["S"]): item for item in items}


def stream_records(client: Any) -> list[dict[str, Any]]:
    """The records in the table's stream from its trim horizon, read as the pollers read them."""
    arn = client.describe_table(TableName=LEDGER)["Table"]["LatestStreamArn"]
    shard = stream_shard(arn)
    records: list[dict[str, Any]] = shard.get(shard.starting_sequence_number, 1000)
    return records


@pytest.fixture
def tables_never_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2.5 deep-copies each table a transaction touches; the runtime must not."""
    from moto.dynamodb.models.table import Table

    def refuse(self: Any, memo: Any) -> Any:
        raise AssertionError(f"table {self.name} copied")

    monkeypatch.setattr(Table, "__deepcopy__", refuse, raising=False)


def test_a_cancelled_transaction_leaves_table_and_stream_as_they_were(
    dynamodb: Any, tables_never_copied: None
) -> None:
    roll_back_transactions_in_place()
    # Given a ledger with two rows and their stream records
    for sk in ("a", "b"):
        dynamodb.put_item(
            TableName=LEDGER, Item={"pk": {"S": "lead-1"}, "sk": {"S": sk}, "n": {"N": "1"}}
        )
    before_rows, before_stream = ledger_rows(dynamodb), stream_records(dynamodb)
    # When a transaction updates one row, deletes the other and adds a third, and its last
    # condition fails
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": LEDGER,
                        "Key": {"pk": {"S": "lead-1"}, "sk": {"S": "a"}},
                        "UpdateExpression": "SET n = n + :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {"Delete": {"TableName": LEDGER, "Key": {"pk": {"S": "lead-1"}, "sk": {"S": "b"}}}},
                {"Put": {"TableName": LEDGER, "Item": {"pk": {"S": "lead-2"}, "sk": {"S": "a"}}}},
                {
                    "Put": {
                        "TableName": TABLE,
                        "Item": {"pk": {"S": "taken"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    # Then nothing of it stays: not the rows, not a stream record
    reasons = cancelled.value.response["CancellationReasons"]
    codes = [reason["Code"] for reason in reasons]
    assert codes == ["None", "None", "None", "ConditionalCheckFailed"]
    assert ledger_rows(dynamodb) == before_rows
    assert stream_records(dynamodb) == before_stream
    assert dynamodb.scan(TableName=TABLE)["Count"] == 0


def test_a_transaction_that_succeeds_writes_every_item_and_its_stream_records(
    dynamodb: Any, tables_never_copied: None
) -> None:
    roll_back_transactions_in_place()
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": LEDGER, "Item": {"pk": {"S": "lead-1"}, "sk": {"S": sk}}}}
            for sk in ("a", "b", "c")
        ]
    )
    assert sorted(ledger_rows(dynamodb)) == [("lead-1", "a"), ("lead-1", "b"), ("lead-1", "c")]
    assert [r["eventName"] for r in stream_records(dynamodb)] == ["INSERT"] * 3


def test_an_item_named_twice_is_refused_before_anything_is_written(
    dynamodb: Any, tables_never_copied: None
) -> None:
    roll_back_transactions_in_place()
    twice = {"Put": {"TableName": LEDGER, "Item": {"pk": {"S": "lead-1"}, "sk": {"S": "a"}}}}
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=[twice, twice])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert ledger_rows(dynamodb) == {}
    assert stream_records(dynamodb) == []


def test_stream_records_every_reader_has_delivered_are_dropped(dynamodb: Any) -> None:
    from types import SimpleNamespace

    for sk in "abcde":
        dynamodb.put_item(TableName=LEDGER, Item={"pk": {"S": "lead-1"}, "sk": {"S": sk}})
    records = stream_records(dynamodb)
    first = int(records[0]["dynamodb"]["SequenceNumber"])
    arn = dynamodb.describe_table(TableName=LEDGER)["Table"]["LatestStreamArn"]
    # Given two pollers of the stream, one past three records and one past all five
    readers = StreamReaders()
    slow = SimpleNamespace(mapping=SimpleNamespace(stream_arn=arn), delivered_mark=first + 3)
    fast = SimpleNamespace(mapping=SimpleNamespace(stream_arn=arn), delivered_mark=first + 5)
    readers.add(slow)  # type: ignore[arg-type]
    readers.add(fast)  # type: ignore[arg-type]
    # When the delivered records are dropped, Then only the slow poller's backlog stays, under
    # the sequence numbers it had
    assert readers.drop_delivered(arn) == 3
    assert stream_records(dynamodb) == records[3:]
    # And a poller that has not started holds everything back
    readers.add(SimpleNamespace(mapping=SimpleNamespace(stream_arn=arn), delivered_mark=None))  # type: ignore[arg-type]
    fast.delivered_mark = slow.delivered_mark = first + 5
    assert readers.drop_delivered(arn) == 0


def test_the_pollers_read_in_process_what_get_records_answers(dynamodb: Any) -> None:
    """The pollers take records from moto's shard, not through GetRecords (streams.read_records):
    what a function receives must be what the API would have given, every attribute type."""
    item = {
        "pk": {"S": "lead-1"},
        "sk": {"S": "名前"},
        "number": {"N": "12.50"},
        "binary": {"B": b"\x00\xffbytes"},
        "flag": {"BOOL": True},
        "nothing": {"NULL": True},
        "map": {"M": {"nested": {"L": [{"S": "a"}, {"N": "1"}, {"B": b"\x01"}]}}},
        "strings": {"SS": ["x", "y"]},
        "numbers": {"NS": ["1", "2.5"]},
        "binaries": {"BS": [b"\x02", b"\x03"]},
    }
    dynamodb.put_item(TableName=LEDGER, Item=item)
    dynamodb.put_item(TableName=LEDGER, Item={**item, "number": {"N": "13"}})
    dynamodb.delete_item(TableName=LEDGER, Key={"pk": item["pk"], "sk": item["sk"]})
    arn = dynamodb.describe_table(TableName=LEDGER)["Table"]["LatestStreamArn"]
    streams = boto3.client(
        "dynamodbstreams",
        region_name="ap-northeast-1",
        endpoint_url="https://streams.dynamodb.ap-northeast-1.amazonaws.com",
    )
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=stream_shard(arn).id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    answered = streams.get_records(ShardIterator=iterator)["Records"]
    first = int(answered[0]["dynamodb"]["SequenceNumber"])

    read = [lambda_record(record, arn) for record in read_records(arn, first, 10)]

    assert [r["eventName"] for r in read] == ["INSERT", "MODIFY", "REMOVE"]
    for ours, api in zip(read, answered, strict=True):
        expected = json.loads(json.dumps(api, default=as_lambda_json))
        expected["eventSourceARN"] = arn
        expected["awsRegion"] = "ap-northeast-1"
        when = ours["dynamodb"].pop("ApproximateCreationDateTime")
        assert abs(when - expected["dynamodb"].pop("ApproximateCreationDateTime")) < 1
        assert ours == expected
    # A limit and a start are honoured, as an iterator's position would be
    assert [r["eventName"] for r in read_records(arn, first + 1, 1)] == ["MODIFY"]
    assert read_records(arn, first + 3, 10) == []


def test_a_read_waits_for_the_transaction_under_way_and_never_sees_a_cancelled_one(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    roll_back_transactions_in_place()
    isolate_reads()
    from moto.dynamodb.models import DynamoDBBackend

    # Given a transaction that has written its first item and is held there (its second
    # item's condition will fail, so it will be cancelled)
    written, release = threading.Event(), threading.Event()
    put_item = DynamoDBBackend.put_item

    def put_then_hold(self: Any, table_name: str, item: Any, *args: Any, **kwargs: Any) -> Any:
        result = put_item(self, table_name, item, *args, **kwargs)
        if table_name == LEDGER:
            written.set()
            release.wait(timeout=60)
        return result

    monkeypatch.setattr(DynamoDBBackend, "put_item", put_then_hold)
    cancelled: list[str] = []

    def transaction() -> None:
        try:
            dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": LEDGER,
                            "Item": {"pk": {"S": "lead-9"}, "sk": {"S": "x"}},
                        }
                    },
                    {
                        "Put": {
                            "TableName": TABLE,
                            "Item": {"pk": {"S": "taken"}},
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as error:
            cancelled.append(error.response["Error"]["Code"])

    # (botocore's own endpoint for the streams API is not one moto's in-process mock knows)
    streams = boto3.client(
        "dynamodbstreams",
        region_name="ap-northeast-1",
        endpoint_url="https://streams.dynamodb.ap-northeast-1.amazonaws.com",
    )
    arn = dynamodb.describe_table(TableName=LEDGER)["Table"]["LatestStreamArn"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=stream_shard(arn).id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    seen: dict[str, Any] = {}
    read_done = threading.Event()

    def read() -> None:
        seen["rows"] = dynamodb.query(
            TableName=LEDGER,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "lead-9"}},
        )["Items"]
        seen["records"] = streams.get_records(ShardIterator=iterator)["Records"]
        read_done.set()

    writer = threading.Thread(target=transaction)
    writer.start()
    assert written.wait(timeout=60)
    # When a query and a stream read arrive meanwhile
    reader = threading.Thread(target=read)
    reader.start()
    # Then they wait for the transaction (however long this machine lets them run, they cannot
    # finish while it holds them) ...
    finished_while_held = read_done.wait(timeout=1.0)
    release.set()
    writer.join(timeout=60)
    reader.join(timeout=60)
    assert not finished_while_held
    # ... and, once it is cancelled, see nothing of it
    assert cancelled == ["TransactionCanceledException"]
    assert seen == {"rows": [], "records": []}
