"""The runtime's moto parses a condition expression once and answers as moto does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.dynamodb.models.dynamo_type import DynamoType, Item

from tests.support.moto_tables import create_keyed_table
from tsunagu_local.conditions import parse_conditions_once

TABLE = "conditions-test"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    from moto import mock_aws

    parse_conditions_once()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="ap-northeast-1")
        create_keyed_table(client, TABLE)
        yield client


@pytest.fixture
def lexed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The expressions moto's lexer reads, in order (what parsing costs)."""
    seen: list[str] = []
    lex = ConditionExpressionParser._lex_condition_expression

    def counted(self: Any) -> Any:
        seen.append(self.condition_expression)
        return lex(self)

    monkeypatch.setattr(ConditionExpressionParser, "_lex_condition_expression", counted)
    return seen


def item(**attributes: Any) -> Item:
    return Item(DynamoType({"S": "k"}), None, {"pk": {"S": "k"}, **attributes})


CASES: list[tuple[str, dict[str, str] | None, dict[str, Any] | None]] = [
    ("attribute_not_exists(pk)", None, None),
    ("#v = :v", {"#v": "version"}, {":v": {"N": "3"}}),
    ("#v = :v", {"#v": "version"}, {":v": {"N": "4"}}),
    ("attribute_exists(pk) AND (#s IN (:a, :b) OR contains(#t, :c))",
     {"#s": "status", "#t": "tags"},
     {":a": {"S": "lead"}, ":b": {"S": "mql"}, ":c": {"S": "b"}}),
    ("NOT begins_with(email, :p) AND score BETWEEN :lo AND :hi",
     None, {":p": {"S": "test"}, ":lo": {"N": "10"}, ":hi": {"N": "50"}}),
]  # fmt: skip
ITEMS: list[Item | None] = [
    None,  # no item yet
    item(),
    item(version={"N": "3"}),
    item(version={"N": "4"}, status={"S": "sql"}, tags={"SS": ["a"]}),
    item(status={"S": "sql"}, tags={"SS": ["a"]}, email={"S": "a@example.jp"}, score={"N": "20"}),
    item(email={"S": "test@example.jp"}, score={"N": "20"}, tags={"SS": ["a", "b"]}),
]


@pytest.mark.parametrize(("expression", "names", "values"), CASES)
def test_a_kept_parse_answers_as_moto_parsing_afresh_does(
    expression: str, names: dict[str, str] | None, values: dict[str, Any] | None
) -> None:
    parse_conditions_once()
    moto_parse = ConditionExpressionParser.parse.__wrapped__  # type: ignore[attr-defined]
    afresh = ConditionExpressionParser(expression, names, values)
    expected = moto_parse(afresh)
    for _ in range(2):  # the first parse keeps it, the second is the kept one
        parser = ConditionExpressionParser(expression, names, values)
        tree = parser.parse()
        assert [tree.expr(i) for i in ITEMS] == [expected.expr(i) for i in ITEMS]
        assert parser.expr_attr_names_found == afresh.expr_attr_names_found
        assert parser.expr_attr_values_found == afresh.expr_attr_values_found
    # The cases tell the items apart: an answer kept for other values would be caught.
    assert len({tuple(ConditionExpressionParser(*c).parse().expr(i) for i in ITEMS)
                for c in CASES}) == len(CASES)  # fmt: skip


def test_conditional_puts_parse_once_and_still_check_the_item_as_it_is_now(
    dynamodb: Any, lexed: list[str]
) -> None:
    condition = "attribute_not_exists(pk) OR #v < :v"
    for version in ("1", "2"):
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": TABLE,
                        "Item": {"pk": {"S": f"lead-{version}"}, "v": {"N": version}},
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": {"#v": "v"},
                        "ExpressionAttributeValues": {":v": {"N": "5"}},
                    }
                }
            ]
        )
    # Validation, the runtime's check and moto's put each parsed it; two writes, one parse.
    assert lexed == [condition]

    dynamodb.put_item(
        TableName=TABLE,
        Item={"pk": {"S": "lead-1"}, "v": {"N": "9"}},
        ConditionExpression=condition,
        ExpressionAttributeNames={"#v": "v"},
        ExpressionAttributeValues={":v": {"N": "5"}},
    )  # 1 < 5: written
    with pytest.raises(ClientError) as refused:  # 9 < 5 fails: the kept tree reads the item now
        dynamodb.put_item(
            TableName=TABLE,
            Item={"pk": {"S": "lead-1"}, "v": {"N": "10"}},
            ConditionExpression=condition,
            ExpressionAttributeNames={"#v": "v"},
            ExpressionAttributeValues={":v": {"N": "5"}},
        )
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert lexed == [condition]
    stored = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "lead-1"}})["Item"]
    assert stored["v"] == {"N": "9"}


def test_a_bad_condition_is_refused_every_time_and_an_unused_name_too(dynamodb: Any) -> None:
    parse_conditions_once()
    for _ in range(2):  # nothing is kept for a text that does not parse
        with pytest.raises(ValueError, match="Bad comparison"):
            ConditionExpressionParser("pk = = :x", None, {":x": {"S": "a"}}).parse()
    for _ in range(2):  # the names found are kept with the tree: validation still sees them
        with pytest.raises(ClientError) as unused:
            dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": TABLE,
                            "Item": {"pk": {"S": "b"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                            "ExpressionAttributeNames": {"#unused": "x"},
                        }
                    }
                ]
            )
        assert "unused" in unused.value.response["Error"]["Message"]
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "b"}})


def test_a_kept_tree_owns_its_values_so_an_item_changed_in_place_cannot_change_it(
    dynamodb: Any,
) -> None:
    # moto stores a SET's value in the item as the request's own list, and ADD appends to
    # that list in place: a tree built from the request's values would see the append
    condition = {
        "ConditionExpression": "attribute_not_exists(tags) OR tags <> :t",
        "ExpressionAttributeValues": {":t": {"SS": ["x"]}},
    }
    key_a, key_b = {"pk": {"S": "a"}}, {"pk": {"S": "b"}}
    dynamodb.update_item(TableName=TABLE, Key=key_a, UpdateExpression="SET tags = :t", **condition)
    dynamodb.update_item(
        TableName=TABLE, Key=key_a, UpdateExpression="ADD tags :n",
        ExpressionAttributeValues={":n": {"SS": ["y"]}},
    )  # fmt: skip
    dynamodb.put_item(TableName=TABLE, Item={**key_b, "tags": {"SS": ["x"]}})
    with pytest.raises(ClientError) as refused:  # b's tags are {x}: the condition is false
        dynamodb.update_item(
            TableName=TABLE, Key=key_b, UpdateExpression="SET tags = :t", **condition
        )
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
