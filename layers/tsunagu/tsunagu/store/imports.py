"""The imports table: each import (``imports`` / ``<at>#<id>``: listed newest first, and read
by id through ``import#<id>`` / ``meta``), what each of its rows did (``import#<id>`` /
``row#<n>``, for undo), a background run's progress (``import#<id>`` / ``progress``, and
``chunk#<n>`` for each chunk counted) and the mappings saved per source (``mappings`` /
``<name>``).

Written with the low-level client: an import's rows are JSON documents, written 25 at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

from tsunagu.imports.apply import AppliedRow, ImportProgress, ImportRecord
from tsunagu.imports.saved import SavedMapping

_LIST = "imports"
_META = "meta"
_MAPPINGS = "mappings"
_PROGRESS = "progress"


def _import_pk(import_id: str) -> str:
    return f"import#{import_id}"


def _row_sk(row: int) -> str:
    return f"row#{row:07d}"


class ImportRepository:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def save_import(self, record: ImportRecord) -> None:
        """The import under its id, and in the list (both written: one item each)."""
        document = {"S": json.dumps(asdict(record), ensure_ascii=False, sort_keys=True)}
        listed = {"pk": {"S": _LIST}, "sk": {"S": f"{record.at}#{record.import_id}"}}
        self._client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "pk": {"S": _import_pk(record.import_id)},
                            "sk": {"S": _META},
                            "record": document,
                        },
                    }
                },
                {"Put": {"TableName": self._table, "Item": {**listed, "record": document}}},
            ]
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

    def save_rows(self, import_id: str, rows: Sequence[AppliedRow]) -> None:
        requests = [
            {
                "PutRequest": {
                    "Item": {
                        "pk": {"S": _import_pk(import_id)},
                        "sk": {"S": _row_sk(row.row)},
                        "row": {"S": json.dumps(asdict(row), ensure_ascii=False)},
                    }
                }
            }
            for row in rows
        ]
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self._table: requests[start : start + 25]}
            while pending:
                answer = self._client.batch_write_item(RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}

    def get_row(self, import_id: str, row: int) -> AppliedRow | None:
        answer = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": _import_pk(import_id)}, "sk": {"S": _row_sk(row)}},
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return None if item is None else AppliedRow(**json.loads(item["row"]["S"]))

    def rows_of(self, import_id: str) -> Iterator[AppliedRow]:
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :import AND begins_with(sk, :row)",
            ExpressionAttributeValues={
                ":import": {"S": _import_pk(import_id)},
                ":row": {"S": "row#"},
            },
            ConsistentRead=True,
        )
        for page in pages:
            for item in page["Items"]:
                yield AppliedRow(**json.loads(item["row"]["S"]))

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
        """Count a chunk done (or parked) once: its mark and the counters in one transaction,
        so a retried step counts nothing twice. False when it was counted already."""
        if parked is None:
            update = "ADD rows_done :rows, chunks_done :one"
            values: dict[str, Any] = {":rows": {"N": str(rows)}, ":one": {"N": "1"}}
        else:
            update = "ADD rows_parked :rows SET parked = list_append(parked, :parked)"
            values = {
                ":rows": {"N": str(rows)},
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


def _record(item: dict[str, Any]) -> ImportRecord:
    return ImportRecord(**json.loads(item["record"]["S"]))
