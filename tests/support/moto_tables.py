"""Bare moto DynamoDB tables, for the tests of the local runtime's own changes to moto."""

from __future__ import annotations

from typing import Any


def create_keyed_table(
    client: Any, name: str, *, sort_key: bool = False, stream: bool = False
) -> None:
    """An on-demand table keyed by the string ``pk`` (and ``sk`` with ``sort_key``); with
    ``stream``, a stream of new and old images."""
    keys = ["pk", "sk"] if sort_key else ["pk"]
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": key, "KeyType": kind}
            for key, kind in zip(keys, ("HASH", "RANGE"), strict=False)
        ],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in keys],
        BillingMode="PAY_PER_REQUEST",
        **(
            {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}}
            if stream
            else {}
        ),
    )
