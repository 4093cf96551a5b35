"""The imports table: each import (``imports`` / ``<at>#<id>``: listed newest first, and read
by id through ``import#<id>`` / ``meta``), the plan a run is applying (``plan#<digest>`` /
``claim``: held while it runs), what its rows did (``import#<id>`` / ``row#<n>``: a
receipt per transaction of rows, keyed by its first row, for undo), a background run's progress
(``import#<id>`` / ``progress``, and ``chunk#<n>`` for each chunk counted) and the mappings
saved per source (``mappings`` / ``<name>``).

The receipts are written with the rows' captures, in their transaction (as values of a PynamoDB
model, as the captures are: tsunagu.store.transactions); the rest with the low-level client.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

from pynamodb.exceptions import TransactWriteError

from tsunagu.errors import ConcurrentUpdate
from tsunagu.imports.apply import (
    AppliedRow,
    ImportProgress,
    ImportRecord,
    ImportStatus,
    receipt_json,
)
from tsunagu.imports.saved import SavedMapping
from tsunagu.leads.capture import MAX_TRANSACTION_ITEMS, CaptureWrite, WriteConflict
from tsunagu.store.leads import add_capture, capture_size, changed_underneath
from tsunagu.store.tables import Tables
from tsunagu.store.transactions import Transaction

_LIST = "imports"
_META = "meta"
_MAPPINGS = "mappings"
_PROGRESS = "progress"
_PLAN = "plan"
_CLAIM = "claim"


def _import_pk(import_id: str) -> str:
    return f"import#{import_id}"


def _row_sk(row: int) -> str:
    return f"row#{row:07d}"


_RECEIPTS_LOOKED_AT = 20
"""How many receipts at or before a row ``get_row`` reads, newest first, to find the one holding
it. The nearest is that one whenever the row was applied (a group's receipt, keyed by its first
row, is refused once any of its rows has a receipt of its own, and rows go in order); the rest
are a margin, cheap in one Query."""


class ImportRepository:
    def __init__(self, tables: Tables) -> None:
        assert tables.settings.imports_table, "no imports table is configured"
        assert tables.import_receipts is not None
        self._tables = tables
        self._receipts = tables.import_receipts
        self._client: Any = tables.connection.client  # the low-level botocore client
        self._table = tables.settings.imports_table

    def save_import(self, record: ImportRecord, expected: ImportStatus | None = None) -> None:
        """The import under its id, and in the list (both written: one item each); with
        ``expected``, only if the import is still in that status (ConcurrentUpdate if not: an
        undo and the run it undoes, two undos, never both win)."""
        document = {"S": json.dumps(asdict(record), ensure_ascii=False, sort_keys=True)}
        listed = {"pk": {"S": _LIST}, "sk": {"S": f"{record.at}#{record.import_id}"}}
        meta: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                "pk": {"S": _import_pk(record.import_id)},
                "sk": {"S": _META},
                "record": document,
                "status": {"S": record.status},
            },
        }
        if expected is not None:
            # Records written before the status had its own attribute are all finished.
            meta["ConditionExpression"] = "#status = :expected OR attribute_not_exists(#status)"
            meta["ExpressionAttributeNames"] = {"#status": "status"}
            meta["ExpressionAttributeValues"] = {":expected": {"S": expected}}
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {"Put": meta},
                    {"Put": {"TableName": self._table, "Item": {**listed, "record": document}}},
                ]
            )
        except self._client.exceptions.TransactionCanceledException as error:
            reasons = error.response.get("CancellationReasons", [])
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                now = self.get_import(record.import_id)
                raise ConcurrentUpdate(
                    f"import {record.import_id} is {now.status if now else 'gone'} now,"
                    f" not {expected}"
                ) from error
            raise

    def claim_plan(self, digest: str, import_id: str, until: str, now: str) -> str | None:
        """Hold the plan of this digest for this import until ``until`` (or its release): None
        when it is held now, else the import that holds it - the same plan is never applied
        twice at once (a double click, two marketers)."""
        key = {"pk": {"S": f"{_PLAN}#{digest}"}, "sk": {"S": _CLAIM}}
        try:
            self._client.put_item(
                TableName=self._table,
                Item={**key, "import_id": {"S": import_id}, "until": {"S": until}},
                ConditionExpression="attribute_not_exists(pk) OR #until < :now OR #by = :me",
                ExpressionAttributeNames={"#until": "until", "#by": "import_id"},
                ExpressionAttributeValues={":now": {"S": now}, ":me": {"S": import_id}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            held = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
            return str(held.get("Item", {}).get("import_id", {}).get("S", "another import"))
        return None

    def release_plan(self, digest: str, import_id: str) -> None:
        """Let go of the plan this import held (nothing if another holds it now)."""
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": f"{_PLAN}#{digest}"}, "sk": {"S": _CLAIM}},
                ConditionExpression="#by = :me",
                ExpressionAttributeNames={"#by": "import_id"},
                ExpressionAttributeValues={":me": {"S": import_id}},
            )

    def get_import(self, import_id: str) -> ImportRecord | None:
        answer = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": _import_pk(import_id)}, "sk": {"S": _META}},
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return None if item is None else _record(item)

    def imports(self, limit: int = 100) -> list[ImportRecord]:
        answer = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :list",
            ExpressionAttributeValues={":list": {"S": _LIST}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [_record(item) for item in answer["Items"]]

    def apply_rows(
        self,
        import_id: str,
        writes: Sequence[CaptureWrite],
        applied: Sequence[AppliedRow],
        token: str | None = None,
    ) -> None:
        """The rows' captures and their receipt, in one transaction: all of it or none.

        The receipt (keyed by the first row) is refused if one exists under its key, so rows an
        earlier attempt wrote are never written twice: WriteConflict ``submission`` then. Any
        other conflict - a lead changed or created since it was read - is ``lead``: the caller
        reads again. ``token`` (the ClientRequestToken) makes a retry after a lost answer
        succeed without writing again."""
        t, receipts = self._tables, self._receipts
        if sum(capture_size(write) for write in writes) + 1 > MAX_TRANSACTION_ITEMS:
            raise ValueError(f"more than {MAX_TRANSACTION_ITEMS} items in one transaction")
        kinds: list[str] = []
        deleted: list[str] = []
        checked: list[str] = []
        receipt = {
            "pk": _import_pk(import_id),
            "sk": _row_sk(applied[0].row),
            "rows": receipt_json(applied),
        }
        try:
            with Transaction(connection=t.connection, client_request_token=token) as tx:
                for write in writes:
                    assert not write.counted, "an import's rows count against no rate limit"
                    add_capture(t, tx, write, kinds, deleted, checked)
                tx.put(receipts, receipt, condition=receipts.sk.does_not_exist())
        except TransactWriteError as error:
            # Cancellation reasons come as PynamoDB sends the items: condition checks (a lead's
            # opt-out, which a list's opt-in must not pass), deletes, then puts; the receipt is
            # the last put.
            reasons = list(error.cancellation_reasons)
            index = len(checked) + len(deleted) + len(kinds)
            mine = reasons[index] if index < len(reasons) else None
            if mine is not None and mine.code == "ConditionalCheckFailed":
                raise WriteConflict("submission") from error
            if changed_underneath(error):
                raise WriteConflict("lead") from error
            raise

    def get_row(self, import_id: str, row: int) -> AppliedRow | None:
        """What the row did, from the receipt that holds it (None: not applied)."""
        answer = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :import AND sk BETWEEN :first AND :row",
            ExpressionAttributeValues={
                ":import": {"S": _import_pk(import_id)},
                ":first": {"S": "row#"},
                ":row": {"S": _row_sk(row)},
            },
            ScanIndexForward=False,
            Limit=_RECEIPTS_LOOKED_AT,
            ConsistentRead=True,
        )
        for item in answer["Items"]:
            for applied in _receipt_rows(item):
                if applied.row == row:
                    return applied
        return None

    def rows_of(
        self, import_id: str, first: int | None = None, last: int | None = None
    ) -> Iterator[AppliedRow]:
        """What the rows did, from their receipts; with ``first`` and ``last``, the receipts
        keyed by a row between them (a chunk's: its groups begin within it)."""
        if first is None or last is None:
            condition = "pk = :import AND begins_with(sk, :row)"
            bounds = {":row": {"S": "row#"}}
        else:
            condition = "pk = :import AND sk BETWEEN :first AND :last"
            bounds = {":first": {"S": _row_sk(first)}, ":last": {"S": _row_sk(last)}}
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues={":import": {"S": _import_pk(import_id)}, **bounds},
            ConsistentRead=True,
        )
        for page in pages:
            for item in page["Items"]:
                yield from _receipt_rows(item)

    # ------------------------------------------------------------ a background run's progress
    def start_progress(self, import_id: str, rows_total: int, chunks_total: int) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": _import_pk(import_id)},
                "sk": {"S": _PROGRESS},
                "rows_total": {"N": str(rows_total)},
                "chunks_total": {"N": str(chunks_total)},
                "rows_done": {"N": "0"},
                "chunks_done": {"N": "0"},
                "rows_parked": {"N": "0"},
                "parked": {"L": []},
            },
        )

    def chunk_finished(
        self, import_id: str, index: int, rows: int, parked: dict[str, Any] | None = None
    ) -> bool:
        """Count a chunk done (``rows`` written), or parked (``rows`` of it written before its
        last attempt failed, ``parked["rows"]`` not), once: its mark and the counters in one
        transaction, so a retried step counts nothing twice. False when it was counted
        already."""
        if parked is None:
            update = "ADD rows_done :rows, chunks_done :one"
            values: dict[str, Any] = {":rows": {"N": str(rows)}, ":one": {"N": "1"}}
        else:
            update = (
                "ADD rows_done :rows, rows_parked :not_written"
                " SET parked = list_append(parked, :parked)"
            )
            values = {
                ":rows": {"N": str(rows)},
                ":not_written": {"N": str(parked["rows"])},
                ":parked": {"L": [{"S": json.dumps(parked, ensure_ascii=False)}]},
            }
        pk = {"S": _import_pk(import_id)}
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {"pk": pk, "sk": {"S": f"chunk#{index:05d}"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": {"pk": pk, "sk": {"S": _PROGRESS}},
                            "UpdateExpression": update,
                            "ExpressionAttributeValues": values,
                        }
                    },
                ]
            )
        except self._client.exceptions.TransactionCanceledException as error:
            reasons = error.response.get("CancellationReasons", [])
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return False
            raise
        return True

    def progress(self, import_id: str) -> ImportProgress | None:
        answer = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": _import_pk(import_id)}, "sk": {"S": _PROGRESS}},
            ConsistentRead=True,
        )
        item = answer.get("Item")
        if item is None:
            return None
        return ImportProgress(
            rows_total=int(item["rows_total"]["N"]),
            chunks_total=int(item["chunks_total"]["N"]),
            rows_done=int(item["rows_done"]["N"]),
            chunks_done=int(item["chunks_done"]["N"]),
            rows_parked=int(item["rows_parked"]["N"]),
            parked=[json.loads(p["S"]) for p in item["parked"]["L"]],
        )

    # ------------------------------------------------------------ saved mappings
    def save_mapping(self, mapping: SavedMapping) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": _MAPPINGS},
                "sk": {"S": mapping.name},
                "mapping": {"S": json.dumps(mapping.as_json(), ensure_ascii=False)},
            },
        )

    def get_mapping(self, name: str) -> SavedMapping | None:
        answer = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": _MAPPINGS}, "sk": {"S": name}},
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return None if item is None else SavedMapping.from_json(json.loads(item["mapping"]["S"]))

    def mappings(self) -> list[SavedMapping]:
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :mappings",
            ExpressionAttributeValues={":mappings": {"S": _MAPPINGS}},
            ConsistentRead=True,
        )
        return [
            SavedMapping.from_json(json.loads(item["mapping"]["S"]))
            for page in pages
            for item in page["Items"]
        ]

    def delete_mapping(self, name: str) -> bool:
        answer = self._client.delete_item(
            TableName=self._table,
            Key={"pk": {"S": _MAPPINGS}, "sk": {"S": name}},
            ReturnValues="ALL_OLD",
        )
        return "Attributes" in answer


def _receipt_rows(item: dict[str, Any]) -> list[AppliedRow]:
    """The rows a receipt holds (``row``: one row's record, as imports before receipts kept
    them)."""
    if "rows" in item:
        return [AppliedRow(**row) for row in json.loads(item["rows"]["S"])]
    return [AppliedRow(**json.loads(item["row"]["S"]))]


def _record(item: dict[str, Any]) -> ImportRecord:
    return ImportRecord(**json.loads(item["record"]["S"]))
