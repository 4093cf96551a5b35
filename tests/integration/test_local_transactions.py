"""The local runtime's DynamoDB honours a transaction's ClientRequestToken, as DynamoDB does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tsunagu_local.transactions import honour_client_request_tokens

TABLE = "tokens-test"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name="ap-northeast-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
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
