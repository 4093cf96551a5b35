"""The local runtime's cheaper ordering of moto's index queries gives moto's own order."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from tsunagu_local.index_order import MOTO_ORDER, order_index_queries_cheaply

REGION = "ap-northeast-1"
KEYS = ["0000150#b", "0000150#a", "0000009#z", "1000000#c", "0000150#あ", "0000150#ｱ", "0000010#"]


def query_order() -> list[list[str]]:
    with mock_aws():
        client: Any = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": kind}
                for name, kind in (("id", "S"), ("p", "S"), ("r", "S"), ("n", "N"))
            ],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": index,
                    "KeySchema": [
                        {"AttributeName": "p", "KeyType": "HASH"},
                        {"AttributeName": sort, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index, sort in (("by_r", "r"), ("by_n", "n"))
            ],
        )
        for number, key in enumerate(KEYS):
            client.put_item(
                TableName="t",
                Item={
                    "id": {"S": f"id{number}"},
                    "p": {"S": "lead"},
                    "r": {"S": key},
                    "n": {"N": str((number * 7) % 5 - 2.5)},
                },
            )
        orders = []
        for index, forward in (("by_r", True), ("by_r", False), ("by_n", True)):
            items = client.query(
                TableName="t",
                IndexName=index,
                KeyConditionExpression="p = :p",
                ExpressionAttributeValues={":p": {"S": "lead"}},
                ScanIndexForward=forward,
            )["Items"]
            orders.append([item["id"]["S"] for item in items])
        return orders


def test_the_cheaper_order_is_moto_s_order(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models.table import Table

    order_index_queries_cheaply()  # (a runtime in this process may have installed it already)
    cheaper = query_order()
    monkeypatch.setattr(Table, "sorted_items", getattr(Table, MOTO_ORDER))
    assert query_order() == cheaper
    assert len(set(cheaper[0])) == len(KEYS)  # every item, each once
