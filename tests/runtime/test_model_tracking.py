"""The runtime's moto frees what no table holds (moto's own register of instances kept it all)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.support.moto_tables import create_keyed_table
from tsunagu_local.model_tracking import WeakInstances, track_models_weakly

TABLE = "tracking-test"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    from moto import mock_aws

    track_models_weakly()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="ap-northeast-1")
        create_keyed_table(client, TABLE, stream=True)
        yield client


def stored_item(key: str) -> Any:
    """The very object moto holds in the table."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType

    table = dynamodb_backends["123456789012"]["ap-northeast-1"].tables[TABLE]
    return table.get_item(DynamoType({"S": key}))


def test_an_item_replaced_by_later_writes_is_freed(dynamodb: Any) -> None:
    from moto.dynamodb.models.dynamo_type import Item

    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "lead-1"}, "n": {"N": "0"}})
    first = weakref.ref(stored_item("lead-1"))
    for n in range(1, 50):
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "lead-1"}, "n": {"N": str(n)}})
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": f"other-{n}"}})
    gc.collect()

    # The first version of the item, replaced 49 times since, is gone (moto kept it for ever)
    assert first() is None
    # And moto's register still lists every item that is alive: the 50 in the table
    register = Item.instances_tracked  # type: ignore[attr-defined]
    current = stored_item("lead-1")
    assert any(item is current for item in register)
    keys = {str(item.hash_key.value) for item in register}
    assert {"lead-1", *(f"other-{n}" for n in range(1, 50))} <= keys
    assert [item for item in register if item.hash_key.value == "lead-1"] == [current]


def test_the_weak_register_lists_only_what_is_alive() -> None:
    class Model:
        pass

    kept, dropped = Model(), Model()
    register = WeakInstances([kept])
    register.append(dropped)
    assert list(register) == [kept, dropped]
    del dropped
    gc.collect()
    assert list(register) == [kept]
    assert len(register) == 1
