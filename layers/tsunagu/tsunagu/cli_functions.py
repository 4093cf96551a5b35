"""Invoking one of the stack's functions from the CLI, for the commands that must run with the
function's rights rather than the operator's (sending mail, publishing a journey)."""

from __future__ import annotations

import argparse
import json
from typing import Any


class FunctionCliError(Exception):
    """Printed without a traceback by the CLI's main."""


def invoke_function(args: argparse.Namespace, logical_id: str, payload: dict[str, Any]) -> Any:
    """The function's answer; a function that raised is a FunctionCliError with its message."""
    import boto3

    name = args.functions.get(logical_id)
    if not name:
        raise FunctionCliError(f"{logical_id} is not deployed here")
    client: Any = boto3.client("lambda", region_name=args.region)
    response = client.invoke(FunctionName=name, Payload=json.dumps(payload).encode())
    body = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        raise FunctionCliError(
            f"{logical_id} failed: {body.get('errorType')}: {body.get('errorMessage')}"
        )
    return body
