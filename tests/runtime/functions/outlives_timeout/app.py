"""Runs RUN_SECONDS real seconds, well past the one-second Timeout it is given in
test_function_timeout.py, then answers: in AWS, Lambda would end it at its Timeout."""

from __future__ import annotations

import threading
from typing import Any

RUN_SECONDS = 2.0


def handler(event: Any, context: Any) -> dict[str, Any]:
    threading.Event().wait(RUN_SECONDS)  # never returns early: at least RUN_SECONDS
    return {"statusCode": 200, "body": "finished after its timeout"}
