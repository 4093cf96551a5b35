"""The runtime's moto measures an item once when it builds it, and refuses the same items."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.moto_tables import create_keyed_table
from tsunagu_local.item_size import ITEM_SIZE_LIMIT, check_item_size_once

TABLE = "item-size-test"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    from moto import mock_aws

    check_item_size_once()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="ap-northeast-1")
        create_keyed_table(client, TABLE)
        yield client


def wide_item(attributes: int, each: int) -> dict[str, Any]:
    """An item of ``attributes`` string attributes of ``each`` bytes, named a000, a001, ..."""
    item: dict[str, Any] = {"pk": {"S": "lead-1"}}
    item |= {f"a{n:03d}": {"S": "x" * each} for n in range(attributes)}
    return item


def test_an_item_over_the_limit_is_refused_and_one_under_it_is_stored(dynamodb: Any) -> None:
    # 100 attributes of 4,100 bytes each with its name: the limit is crossed by the 99th
    over = wide_item(100, 4_100 - 4)
    assert sum(len(k) + len(v.get("S", "")) for k, v in over.items()) > ITEM_SIZE_LIMIT
    with pytest.raises(ClientError) as refused:
        dynamodb.put_item(TableName=TABLE, Item=over)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "maximum allowed size" in refused.value.response["Error"]["Message"]
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "lead-1"}})

    # 98 of them, under the limit: stored whole, and it can still grow a little by an update
    under = wide_item(98, 4_100 - 4)
    dynamodb.put_item(TableName=TABLE, Item=under)
    stored = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "lead-1"}})["Item"]
    assert stored == under
    dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": "lead-1"}},
        UpdateExpression="SET small = :v",
        ExpressionAttributeValues={":v": {"S": "ok"}},
    )
    # ...but not past the limit (moto's own check, attribute by attribute, for updates)
    with pytest.raises(ClientError) as too_big:
        dynamodb.update_item(
            TableName=TABLE,
            Key={"pk": {"S": "lead-1"}},
            UpdateExpression="SET big = :v",
            ExpressionAttributeValues={":v": {"S": "x" * 8_000}},
        )
    assert too_big.value.response["Error"]["Code"] == "ValidationException"


def test_the_limit_is_moto_s_to_the_byte(dynamodb: Any) -> None:
    # Key "pk" = "lead-1" (2 + 6 bytes) and "a" (1 byte) with a value: 405,000 bytes in all
    exactly = {"pk": {"S": "lead-1"}, "a": {"S": "x" * (ITEM_SIZE_LIMIT - 9)}}
    dynamodb.put_item(TableName=TABLE, Item=exactly)
    one_more = {"pk": {"S": "lead-2"}, "a": {"S": "x" * (ITEM_SIZE_LIMIT - 8)}}
    with pytest.raises(ClientError) as refused:
        dynamodb.put_item(TableName=TABLE, Item=one_more)
    assert "maximum allowed size" in refused.value.response["Error"]["Message"]
    # Multi-byte characters count as their UTF-8 bytes: 135,000 three-byte characters fill it
    japanese = {"pk": {"S": "lead-3"}, "a": {"S": "展" * 134_997}}
    dynamodb.put_item(TableName=TABLE, Item=japanese)
    with pytest.raises(ClientError):
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "lead-4"}, "a": {"S": "展" * 134_998}})


def test_an_item_is_measured_once_not_once_per_attribute(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    measured = 0
    size = DynamoType.size

    def counted(self: DynamoType) -> int:
        nonlocal measured
        measured += 1
        return size(self)

    monkeypatch.setattr(DynamoType, "size", counted)
    dynamodb.put_item(TableName=TABLE, Item=wide_item(60, 10))
    # Each of the 61 attributes once for the item (moto alone: 61 x 62 / 2 = 1,891), and a few
    # more for the request's own checks
    assert 61 <= measured < 200, measured
