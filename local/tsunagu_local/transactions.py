"""DynamoDB transactions as DynamoDB runs them: a repeated ClientRequestToken is not applied
twice.

The SDK fills every TransactWriteItems with a ClientRequestToken and sends the same token again
when it retries a call whose answer it did not get. DynamoDB answers such a repeat (same token,
same items, within ten minutes) with success and changes nothing; moto applies it again. Under
load the runtime's loopback answers do time out, and the repeat then failed its conditions; the
caller took that for a concurrent change and wrote again: one form post stored its event and
consent twice. This patch gives moto DynamoDB's behaviour.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from moto.core.responses import ActionResult
from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException

TOKEN_LIFETIME_SECONDS = 600.0
"""How long DynamoDB remembers a token."""


class IdempotentParameterMismatch(DynamodbException):
    error_type = ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException"

    def __init__(self) -> None:
        super().__init__(
            IdempotentParameterMismatch.error_type,
            message="The ClientRequestToken was already used for a different transaction",
        )


@dataclass
class _Use:
    digest: str
    at: float
    done: threading.Event = field(default_factory=threading.Event)
    applied: bool = False


def _applied_already() -> ActionResult:
    return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})


def honour_client_request_tokens() -> None:
    from moto.dynamodb.responses import DynamoHandler

    original: Any = DynamoHandler.transact_write_items
    if getattr(original, "honours_tokens", False):
        return
    uses: dict[str, _Use] = {}
    lock = threading.Lock()

    def transact_write_items(self: Any) -> Any:
        token = self.body.get("ClientRequestToken")
        if not token:
            return original(self)
        digest = hashlib.sha256(
            json.dumps(self.body["TransactItems"], sort_keys=True).encode()
        ).hexdigest()
        while True:
            with lock:
                now = time.monotonic()
                for old in [t for t, u in uses.items() if now - u.at > TOKEN_LIFETIME_SECONDS]:
                    del uses[old]
                use = uses.get(token)
                if use is None:
                    use = uses[token] = _Use(digest, now)
                    break
                if use.digest != digest:
                    raise IdempotentParameterMismatch()
            # The same transaction again: once the first attempt has an outcome, a success
            # answers for both; a failure lets this one try for itself.
            use.done.wait()
            if use.applied:
                return _applied_already()
            with lock:
                if uses.get(token) is use:
                    del uses[token]
        try:
            result = original(self)
            use.applied = True
            return result
        finally:
            if not use.applied:
                with lock:
                    uses.pop(token, None)
            use.done.set()

    transact_write_items.honours_tokens = True  # type: ignore[attr-defined]
    DynamoHandler.transact_write_items = transact_write_items  # type: ignore[method-assign]
