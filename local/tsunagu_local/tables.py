"""Creating a template's DynamoDB table, shared by the runtime and the integration tests."""

from __future__ import annotations

from typing import Any


def create_table(dynamodb: Any, name: str, props: dict[str, Any]) -> dict[str, Any]:
    """Create a table from resolved AWS::DynamoDB::Table properties; returns its description.

    Point-in-time recovery and encryption settings have no local effect and are left out.
    """
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput"):
        if key in props:
            request[key] = props[key]
    if "StreamSpecification" in props:
        request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    description: dict[str, Any] = dynamodb.create_table(**request)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    return description
