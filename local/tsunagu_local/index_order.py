"""DynamoDB index queries in moto, ordered at a cost that does not grow with comparisons.

moto answers a Query on an index by sorting every item of the table that has the index's keys,
comparing their keys as DynamoType objects, each comparison converting both values again: at
50,000 leads one page of the lead search took seconds, where DynamoDB reads only the page.
Here each item's sort key is converted once (the same order: key values compared as their
Python values, strings by code point, which is DynamoDB's UTF-8 byte order, numbers as
numbers), so the local runtime's lead search is a fair picture of the design, not of moto's
sorting.
"""

from __future__ import annotations

from typing import Any

_PATCHED_FLAG = "_tsunagu_plain_sort_keys"
MOTO_ORDER = "_tsunagu_moto_sorted_items"
"""Where moto's own ordering is kept (the runtime's tests compare the two)."""


def order_index_queries_cheaply() -> None:
    """Install the faster ordering on moto's DynamoDB tables (idempotent)."""
    from moto.dynamodb.models.table import Table

    if getattr(Table, _PATCHED_FLAG, False):
        return

    def sorted_items(
        self: Any, hash_key_attrs: list[str], range_key_attrs: list[str | None], items: list[Any]
    ) -> list[Any]:
        names = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
        items.sort(key=lambda item: tuple(item.attrs[name].cast_value for name in names))
        return items

    setattr(Table, MOTO_ORDER, Table.sorted_items)
    Table.sorted_items = sorted_items  # type: ignore[method-assign]
    setattr(Table, _PATCHED_FLAG, True)
