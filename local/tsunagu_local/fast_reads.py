"""DynamoDB's reads answered as fast as the items can be written out as JSON.

moto 5.2.5 serialises every answer by walking botocore's output shape, value by value: a Query
of 384 counter rows of twenty numbers each took about a second here, nine tenths of it in the
serialiser, where DynamoDB answers in milliseconds. For the read operations, whose answers are
items already in DynamoDB's wire form (``{"S": ...}``, ``{"N": ...}``) plus counts, keys and
consumed capacity, the serialiser's walk changes nothing but binary values, which it writes as
base64: a plain ``json.dumps`` that does the same gives the same bytes' meaning
(tests/integration/test_local_fast_reads.py compares the two on every attribute type).
"""

from __future__ import annotations

import base64
import json
from typing import Any

READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
CONTENT_TYPE = "application/x-amz-json-1.0"


def _binary(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} in a DynamoDB read's answer")


def serialize_reads_quickly() -> None:
    from moto.dynamodb.responses import DynamoResult

    original: Any = DynamoResult.execute_result
    if getattr(original, "quick", False):
        return

    def execute_result(self: Any, context: Any) -> Any:
        if context.operation_model.name not in READS:
            return original(self, context)
        body = json.dumps(self.result, default=_binary, ensure_ascii=False)
        return 200, {"Content-Type": CONTENT_TYPE}, body

    execute_result.quick = True  # type: ignore[attr-defined]
    execute_result.original = original  # type: ignore[attr-defined]
    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]
