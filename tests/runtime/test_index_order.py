"""The local runtime's cheaper moto queries (tsunagu_local.index_order) answer as moto does."""

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
    from tsunagu_local.index_order import MOTO_ALL_ITEMS, MOTO_QUERY

    monkeypatch.setattr(Table, "sorted_items", getattr(Table, MOTO_ORDER))
    monkeypatch.setattr(Table, "query", getattr(Table, MOTO_QUERY))
    monkeypatch.setattr(Table, "all_items", getattr(Table, MOTO_ALL_ITEMS))
    assert query_order() == cheaper
    assert len(set(cheaper[0])) == len(KEYS)  # every item, each once


def table_queries() -> list[list[str]]:
    """Queries on a table's own key (hash and range): each partition's items, in order both
    ways, a range condition, and pages that follow one another."""
    with mock_aws():
        client: Any = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="terms",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "term", "AttributeType": "S"},
                {"AttributeName": "position", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "term", "KeyType": "HASH"},
                {"AttributeName": "position", "KeyType": "RANGE"},
            ],
        )
        for number, key in enumerate(KEYS * 3):
            client.put_item(
                TableName="terms",
                Item={
                    "term": {"S": ("word#a", "word#b", "tag#x")[number % 3]},
                    "position": {"S": f"{key} {number}"},
                },
            )
        answers = []
        for term, forward, condition in (
            ("word#a", True, None),
            ("word#b", False, None),
            ("tag#x", True, "begins_with(#s, :s)"),
            ("word#none", True, None),
        ):
            request: dict[str, Any] = {
                "TableName": "terms",
                "KeyConditionExpression": "#t = :t" + (f" AND {condition}" if condition else ""),
                "ExpressionAttributeNames": {
                    "#t": "term",
                    **({"#s": "position"} if condition else {}),
                },
                "ExpressionAttributeValues": {
                    ":t": {"S": term},
                    **({":s": {"S": "0000150#"}} if condition else {}),
                },
                "ScanIndexForward": forward,
                "Limit": 2,
            }
            found: list[str] = []
            while True:
                page = client.query(**request)
                found += [item["position"]["S"] for item in page["Items"]]
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            answers.append(found)
        return answers


def test_a_query_on_the_table_key_reads_the_partition_as_moto_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.dynamodb.models.table import Table

    from tsunagu_local.index_order import MOTO_ALL_ITEMS, MOTO_QUERY

    order_index_queries_cheaply()
    cheaper = table_queries()
    monkeypatch.setattr(Table, "query", getattr(Table, MOTO_QUERY))
    monkeypatch.setattr(Table, "all_items", getattr(Table, MOTO_ALL_ITEMS))
    assert table_queries() == cheaper
    assert [len(found) for found in cheaper[:2] + cheaper[3:]] == [len(KEYS), len(KEYS), 0]
    assert cheaper[2] and all(position.startswith("0000150#") for position in cheaper[2])
    assert cheaper[1] == sorted(cheaper[1], reverse=True)
