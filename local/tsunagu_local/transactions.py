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

import copy
import hashlib
import json
import threading
import time
from collections import OrderedDict
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
    # In the order the tokens were first used (a token tried again after a failure is used
    # anew, at the end): the expired ones are at the front, and are let go from there - a walk
    # over every token of the last ten minutes at each transaction made a long import quadratic
    uses: OrderedDict[str, _Use] = OrderedDict()
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
                while uses and now - next(iter(uses.values())).at > TOKEN_LIFETIME_SECONDS:
                    uses.popitem(last=False)
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


# ---------------------------------------------------------------------------------------------
# Rolling back a cancelled transaction without copying tables

TABLE_LOCK = threading.RLock()
"""Held by every DynamoDB write, for the whole of a transaction, and by every read of a table or
a stream (see isolate_reads). moto serves requests on threads and has no lock of its own:
without this, a write landing between a transaction's steps would be undone with it, and two
writes could take the same stream sequence number."""


@dataclass
class _Journal:
    """What a transaction changed, so that a cancelled one can be put back exactly."""

    backend: Any
    items: list[tuple[Any, dict[str, Any], Any]] = field(default_factory=list)
    stream_lengths: dict[str, int] = field(default_factory=dict)

    def remember(self, table_name: str, key: dict[str, Any]) -> None:
        """Called before the transaction writes ``key``: keep the item as it is now."""
        table = self.backend.get_table(table_name)
        shard = getattr(table, "stream_shard", None)
        if shard is not None:
            self.stream_lengths.setdefault(table_name, len(shard.items))
        # update_item changes moto's Item in place: keep a copy of the one item, not the table.
        previous = copy.deepcopy(self.backend.get_item(table_name, key))
        self.items.append((table, key, previous))

    def undo(self) -> None:
        for table, key, previous in reversed(self.items):
            _put_back(table, key, previous)
        for table_name, length in self.stream_lengths.items():
            # DynamoDB streams carry nothing of a cancelled transaction.
            del self.backend.get_table(table_name).stream_shard.items[length:]


def _put_back(table: Any, key: dict[str, Any], previous: Any) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    hash_value = DynamoType(key[table.hash_key_attr])
    if table.range_key_attr is None:
        if previous is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = previous
        return
    range_value = DynamoType(key[table.range_key_attr])
    rows = table.items[hash_value]
    if previous is None:
        rows.pop(range_value, None)
        if not rows:
            del table.items[hash_value]
    else:
        rows[range_value] = previous


def roll_back_transactions_in_place() -> None:
    """A cancelled TransactWriteItems is undone item by item, not by restoring copied tables.

    moto 5.2.5 deep-copies every table a transaction touches before it starts (stream records
    included) and swaps the copies back in on failure. That costs time and memory in proportion
    to everything ever written: under a load run the runtime passed 23 GB at about 1,000 form
    posts. Here a transaction keeps only the items it is about to write and the length of each
    touched stream; a cancellation puts those items back and cuts the stream where it was. The
    tables stay the same objects, so the stream pollers' shards stay valid too.
    """
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend.transact_write_items, "rolls_back_in_place", False):
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        with TABLE_LOCK:
            journal = _Journal(self)
            try:
                errors = [_apply(self, journal, item) for item in _unique(self, transact_items)]
            except (MultipleTransactionsException, MockValidationException):
                journal.undo()
                raise
            if any(code is not None for code, _, _ in errors):
                journal.undo()
                raise TransactionCanceledException(errors)

    def _unique(self: Any, transact_items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The items, refused up front (as DynamoDB does) when one item is named twice or an
        entry holds more than one operation."""
        seen: set[tuple[str, str]] = set()
        for item in transact_items:
            if len(item) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise MockValidationException("Unsupported transaction operation")
            try:
                key = _key(self, op_type, op)
            except KeyError:
                continue  # no key: _apply reports it as this item's error
            identity = (op["TableName"], str(dict(sorted(key.items()))))
            if identity in seen:
                raise MultipleTransactionsException()
            seen.add(identity)
        return transact_items

    def _key(self: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
        if op_type != "Put":
            key: dict[str, Any] = op["Key"]
            return key
        table = self.get_table(op["TableName"])
        attrs = op["Item"]
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs[table.range_key_attr]
        return key

    def _apply(
        self: Any, journal: _Journal, item: dict[str, Any]
    ) -> tuple[str | None, str | None, dict[str, Any] | None]:
        """One operation, as moto applies it; the error entry DynamoDB reports for it."""
        op_type, op = next(iter(item.items()))
        table_name = op["TableName"]
        names = op.get("ExpressionAttributeNames")
        values = op.get("ExpressionAttributeValues")
        condition = op.get("ConditionExpression")
        old: dict[str, Any] | None = None
        try:
            key = _key(self, op_type, op)
            current = self.get_item(table_name, key)
            if condition is not None and not (
                get_filter_expression(condition, names, values).expr(current)
            ):
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    old = current.to_json()["Attributes"]
                raise ConditionalCheckFailed(item=old)
            if op_type != "ConditionCheck":
                journal.remember(table_name, key)
            conditions = {
                "condition_expression": condition,
                "expression_attribute_names": names,
                "expression_attribute_values": values,
            }
            if op_type == "Put":
                self.put_item(table_name, op["Item"], **conditions)
            elif op_type == "Delete":
                self.delete_item(table_name, key, **conditions)
            elif op_type == "Update":
                self.update_item(
                    table_name, key, update_expression=op["UpdateExpression"], **conditions
                )
            return (None, None, None)
        except (MultipleTransactionsException, MockValidationException):
            raise
        except ConditionalCheckFailed as failed:
            return ("ConditionalCheckFailed", str(failed.message), old)
        except Exception as error:  # DynamoDB reports each item's failure in its entry
            return (type(error).__name__, str(error), old)

    def _locked(write: Any) -> Any:
        def locked_write(self: Any, *args: Any, **kwargs: Any) -> Any:
            with TABLE_LOCK:
                return write(self, *args, **kwargs)

        return locked_write

    for name in ("put_item", "update_item", "delete_item"):
        setattr(DynamoDBBackend, name, _locked(getattr(DynamoDBBackend, name)))
    transact_write_items.rolls_back_in_place = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------------
# Reads never see a transaction half done

_READS = {
    "moto.dynamodb.responses.DynamoHandler": (
        "get_item",
        "batch_get_item",
        "query",
        "scan",
        "transact_get_items",
    ),
    "moto.dynamodbstreams.responses.DynamoDBStreamsHandler": ("get_records",),
}


def isolate_reads() -> None:
    """Every read of a table or a stream waits for the transaction under way, as DynamoDB
    isolates transactions from GetItem, Query, Scan and the stream.

    A transaction writes its items one by one and undoes them if one fails (see above). A read
    served meanwhile saw the writes of a transaction that never happened: under load a test read
    a third form_submitted event from a replayed submission whose transaction was being
    cancelled, and a stream poller can hand such a record to route_events. Each read request,
    its answer's serialisation included (moto updates items in place), holds TABLE_LOCK.
    """
    import importlib

    for dotted, names in _READS.items():
        module_name, class_name = dotted.rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), class_name)
        for name in names:
            read = getattr(handler, name)
            if getattr(read, "isolated", False):
                continue
            setattr(handler, name, _isolated(read))


def _isolated(read: Any) -> Any:
    def isolated_read(self: Any) -> Any:
        with TABLE_LOCK:
            return read(self)

    isolated_read.isolated = True  # type: ignore[attr-defined]
    return isolated_read
