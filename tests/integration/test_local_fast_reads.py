"""The local runtime's quick answers to DynamoDB reads say exactly what moto's serialiser says,
for every attribute type (tsunagu_local.fast_reads)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tsunagu_local import fast_reads

ITEM = {
    "pk": {"S": "lead#1"},
    "sk": {"S": "2026-12-04#v3"},
    "text": {"S": '株式会社サンプル "quoted" \\ back\u2028slash'},
    "number": {"N": "1.50"},
    "big": {"N": "123456789012345678901234567890"},
    "binary": {"B": b"\x00\xffbin"},
    "strings": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2.5"]},
    "binaries": {"BS": [b"a", b"\x01"]},
    "list": {"L": [{"S": "q"}, {"N": "3"}, {"M": {"z": {"BOOL": True}}}, {"NULL": True}]},
    "map": {"M": {"k": {"NULL": True}, "j": {"S": "日本"}, "empty": {"M": {}}}},
    "flag": {"BOOL": False},
}


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name="ap-northeast-1")
        client.create_table(
            TableName="reads",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName="reads", Item=ITEM)
        client.put_item(TableName="reads", Item={**ITEM, "sk": {"S": "2026-12-05#v3"}})
        yield client


def reads(client: Any) -> list[Any]:
    key = {"pk": ITEM["pk"], "sk": ITEM["sk"]}
    return [
        client.get_item(TableName="reads", Key=key),
        client.get_item(TableName="reads", Key={"pk": {"S": "none"}, "sk": {"S": "-"}}),
        client.query(
            TableName="reads",
            KeyConditionExpression="pk = :pk AND sk BETWEEN :a AND :b",
            ExpressionAttributeValues={":pk": ITEM["pk"], ":a": {"S": "2026"}, ":b": {"S": "2027"}},
            ReturnConsumedCapacity="TOTAL",
        ),
        client.query(
            TableName="reads",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": ITEM["pk"]},
            Limit=1,
        ),
        client.scan(TableName="reads", Select="COUNT"),
        client.scan(
            TableName="reads",
            ProjectionExpression="pk, #m.j",
            ExpressionAttributeNames={"#m": "map"},
        ),
        client.batch_get_item(
            RequestItems={"reads": {"Keys": [key, {"pk": {"S": "none"}, "sk": {"S": "-"}}]}},
            ReturnConsumedCapacity="INDEXES",
        ),
        client.transact_get_items(TransactItems=[{"Get": {"TableName": "reads", "Key": key}}]),
    ]


def without_metadata(answers: list[Any]) -> list[dict[str, Any]]:
    """What the client read (a capacity of 2 and of 2.0 are the same double to it)."""
    return [{k: v for k, v in a.items() if k != "ResponseMetadata"} for a in answers]


def test_the_quick_answers_are_moto_s_answers(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.responses import DynamoResult

    # moto's own serialiser, even where another test installed the quick one in this process
    current = DynamoResult.execute_result
    monkeypatch.setattr(DynamoResult, "execute_result", getattr(current, "original", current))
    slow = reads(dynamodb)
    fast_reads.serialize_reads_quickly()
    assert getattr(DynamoResult.execute_result, "quick", False)
    quick = reads(dynamodb)
    assert without_metadata(quick) == without_metadata(slow)
    assert quick[0]["Item"]["binary"] == {"B": b"\x00\xffbin"}
