"""Watches the runtime's virtual clock from inside an invocation, for test_virtual_time.py.

Invoked with ``{"key": K}`` (asynchronously, by the test), or by the stream of the watched table
(one key per record: ``pk``), it waits until a client has asked the clock to move (``GET
TSUNAGU_CLOCK_URL``: ``limit`` later than ``now``), holds on for HOLD_SECONDS more, and writes what
the clock said into the ledger table under ``pk = "watch"``, ``sk = K``: ``now`` when it began,
the ``limit`` it saw, ``now`` when it ended, and whether an advance came at all.

While it runs, the invocation is work in flight: however long it waits, and although the client
allowed time to move, the clock must still say the ``now`` it began with.
"""

from __future__ import annotations

import functools
import json
import os
import time
import urllib.request
from datetime import datetime
from typing import Any

import boto3

HOLD_SECONDS = 0.3
MAX_WAIT_SECONDS = 30.0


@functools.cache
def _dynamodb() -> Any:
    return boto3.client("dynamodb")


def _clock() -> dict[str, Any]:
    with urllib.request.urlopen(os.environ["TSUNAGU_CLOCK_URL"], timeout=10) as response:
        state: dict[str, Any] = json.load(response)
        return state


def _advance_asked(state: dict[str, Any]) -> bool:
    return datetime.fromisoformat(state["limit"]) > datetime.fromisoformat(state["now"])


def _watch(key: str) -> None:
    first = _clock()
    deadline = time.monotonic() + MAX_WAIT_SECONDS
    seen = first
    while not _advance_asked(seen) and time.monotonic() < deadline:
        time.sleep(0.02)
        seen = _clock()
    time.sleep(HOLD_SECONDS)
    last = _clock()
    _dynamodb().put_item(
        TableName=os.environ["FIXTURE_LEDGER_TABLE"],
        Item={
            "pk": {"S": "watch"},
            "sk": {"S": key},
            "now_first": {"S": first["now"]},
            "limit_seen": {"S": seen["limit"]},
            "now_last": {"S": last["now"]},
            "advance_seen": {"BOOL": _advance_asked(seen)},
        },
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "Records" in event:
        keys = [record["dynamodb"]["Keys"]["pk"]["S"] for record in event["Records"]]
    else:
        keys = [event["key"]]
    for key in keys:
        _watch(key)
    return {"watched": keys}
