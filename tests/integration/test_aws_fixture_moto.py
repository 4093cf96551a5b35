"""The ``aws`` fixture's moto costs what the local runtime's does (tests/conftest.py): a query
reads its partition, not the table, and an item nothing holds is freed. The benchmarks run on
this fixture; with moto's own query (the whole table sorted at every Query) and its register of
every item it ever made, a 100,000-row import's cost per row grew with the list - moto's, not
the import's (tests/benchmarks/test_import_run.py)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.conftest import AwsStack, moto_client, moto_table


@contextmanager
def counted_key_comparisons() -> Iterator[list[int]]:
    """How many times moto compares two DynamoDB values for order (as it sorts items)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    seen = [0]
    moto_lt = DynamoType.__lt__

    def __lt__(self: Any, other: Any) -> bool:
        seen[0] += 1
        return bool(moto_lt(self, other))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DynamoType, "__lt__", __lt__)
        yield seen


def test_a_query_reads_its_partition_not_the_whole_table(aws: AwsStack) -> None:
    table = aws.settings().imports_table
    dynamodb = moto_client("dynamodb")
    for n in range(300):  # other imports' receipts
        dynamodb.put_item(
            TableName=table, Item={"pk": {"S": f"import#other{n % 3}"}, "sk": {"S": f"row#{n:07d}"}}
        )
    for n in (5, 6, 7):
        dynamodb.put_item(
            TableName=table, Item={"pk": {"S": "import#mine"}, "sk": {"S": f"row#{n:07d}"}}
        )

    with counted_key_comparisons() as compared:
        answer = dynamodb.query(
            TableName=table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
            ExpressionAttributeValues={
                ":pk": {"S": "import#mine"},
                ":first": {"S": "row#0000006"},
                ":last": {"S": "row#0000009"},
            },
        )

    assert [item["sk"]["S"] for item in answer["Items"]] == ["row#0000006", "row#0000007"]
    # Two items in range: one comparison orders them (moto sorted all 303 items, twice)
    assert compared[0] <= 2


def test_an_item_replaced_is_freed(aws: AwsStack) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    table = aws.settings().imports_table
    dynamodb = moto_client("dynamodb")
    key = {"pk": {"S": "import#mine"}, "sk": {"S": "progress"}}
    dynamodb.put_item(TableName=table, Item={**key, "rows_done": {"N": "0"}})
    first = weakref.ref(moto_table(table).get_item(DynamoType(key["pk"]), DynamoType(key["sk"])))
    for n in range(1, 20):
        dynamodb.put_item(TableName=table, Item={**key, "rows_done": {"N": str(n)}})
    gc.collect()

    # moto's register of instances kept every version for the life of the process
    assert first() is None
