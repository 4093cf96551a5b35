"""DynamoDB queries in moto, at a cost that grows with the partition read, not the table.

moto answers every Query by listing every item of the table, sorted (``Table.all_items``), then
keeping the partition's, then sorting those again; an index query sorts comparing keys as
DynamoType objects, each comparison converting both values again. At 50,000 leads one page of
the lead search took seconds, and a query on a table of 250,000 lead terms six seconds, where
DynamoDB reads only the page. Here:

- a query on a table's own key reads only its partition (moto keeps items by hash key);
- an index query lists the items unsorted (moto sorts them for the index anyway);
- an index query's sort converts each item's key once, with the same order (strings by code
  point, which is DynamoDB's UTF-8 byte order; numbers as numbers).

So the local runtime's lead search is a fair picture of the design, not of moto's sorting; the
runtime's tests check the answers are moto's own (tests/runtime/test_index_order.py).
"""

from __future__ import annotations

import threading
from typing import Any

_PATCHED_FLAG = "_tsunagu_plain_sort_keys"
MOTO_ORDER = "_tsunagu_moto_sorted_items"
"""Where moto's own ordering is kept (the runtime's tests compare the two)."""
MOTO_QUERY = "_tsunagu_moto_query"
MOTO_ALL_ITEMS = "_tsunagu_moto_all_items"
_querying = threading.local()
"""The query this thread is answering: (table, hash key or None for an index query)."""


def _plain(value: Any) -> Any:
    # A string is already its own sort key (and the usual one: index keys here are strings);
    # only numbers and binaries need converting.
    return value.value if value.type == "S" else value.cast_value


def order_index_queries_cheaply() -> None:
    """Install the faster ordering on moto's DynamoDB tables (idempotent)."""
    from moto.dynamodb.models.table import Table

    if getattr(Table, _PATCHED_FLAG, False):
        return

    def sorted_items(
        self: Any, hash_key_attrs: list[str], range_key_attrs: list[str | None], items: list[Any]
    ) -> list[Any]:
        names = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
        items.sort(key=lambda item: tuple(_plain(item.attrs[name]) for name in names))
        return items

    moto_query, moto_all_items = Table.query, Table.all_items

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # index_name is the 8th positional parameter (moto's backend passes it so).
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        _querying.current = (self, None if index_name else hash_key)
        try:
            return moto_query(self, hash_key, *args, **kwargs)
        finally:
            _querying.current = None

    def all_items(self: Any) -> list[Any]:
        current = getattr(_querying, "current", None)
        if current is None or current[0] is not self:
            return moto_all_items(self)  # a scan, an export...: moto's own, sorted
        hash_key = current[1]
        if hash_key is None:  # an index query: moto sorts the index's items itself
            groups = self.items.values()
            if not self.range_key_attr:
                return list(groups)
            return [item for group in groups for item in group.values()]
        # A query on the table's key: the partition only (moto keeps it keyed by hash key;
        # its query then sorts it by range key itself).
        group = self.items.get(hash_key)
        if group is None:
            return []
        return list(group.values()) if self.range_key_attr else [group]

    setattr(Table, MOTO_ORDER, Table.sorted_items)
    setattr(Table, MOTO_QUERY, moto_query)
    setattr(Table, MOTO_ALL_ITEMS, moto_all_items)
    Table.sorted_items = sorted_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    setattr(Table, _PATCHED_FLAG, True)
