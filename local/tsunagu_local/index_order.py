"""DynamoDB queries in moto, at a cost that grows with the partition read, not the table.

moto answers every Query by listing every item of the table, sorted (``Table.all_items``), then
keeping the partition's, then sorting those again; an index query sorts comparing keys as
DynamoType objects, each comparison converting both values again. At 50,000 leads one page of
the lead search took seconds, and a query on a table of 250,000 lead terms six seconds, where
DynamoDB reads only the page. Here:

- a query on a table's own key reads only its partition (moto keeps items by hash key), cut to
  the range condition with moto's own comparison functions on plain values;
- an index query lists only the items with the asked key values, unsorted (moto sorts them for
  the index anyway);
- an index query's sort converts each item's key once, with the same order (strings by code
  point, which is DynamoDB's UTF-8 byte order; numbers as numbers).

So the local runtime's lead search is a fair picture of the design, not of moto's sorting; the
runtime's tests check the answers are moto's own (tests/runtime/test_index_order.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from moto.dynamodb.comparisons import get_comparison_func

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


@dataclass
class _Query:
    """The query a thread is answering, and the items it could possibly return: moto checks
    each again with its own comparisons, so these only leave out what it would leave out."""

    table: Any
    hash_key: Any
    """The table's own hash key; None for an index query."""
    range_comparison: str | None
    range_objs: list[Any]
    hash_conditions: list[tuple[str, Any]]
    range_conditions: list[tuple[str, str, list[Any]]]

    def partition_candidates(self, table: Any) -> list[Any]:
        """A query on the table's key: its partition (moto keeps items by hash key), cut to the
        range condition and sorted by range key as moto sorts it."""
        group = table.items.get(self.hash_key)
        if group is None:
            return []
        if not table.range_key_attr:
            return [group]
        items = list(group.values())
        if self.range_comparison:
            test = get_comparison_func(self.range_comparison)
            bounds = [obj.cast_value for obj in self.range_objs]
            items = [item for item in items if test(_plain(item.range_key), *bounds)]
        items.sort(key=lambda item: _plain(item.range_key))
        return items

    def index_candidates(self, table: Any) -> list[Any]:
        """An index query: the items with the asked hash key values (and range condition),
        unsorted (moto sorts them for the index itself)."""
        groups = table.items.values()
        items = [i for g in groups for i in g.values()] if table.range_key_attr else list(groups)
        wanted = [(name, value.type, _plain(value)) for name, value in self.hash_conditions]

        def same(item: Any, name: str, kind: str, plain: Any) -> bool:
            found = item.attrs.get(name)
            return found is not None and found.type == kind and _plain(found) == plain

        items = [i for i in items if all(same(i, *condition) for condition in wanted)]
        if self.range_conditions:
            name, comparison, values = self.range_conditions[-1]
            test = get_comparison_func(comparison)
            bounds = [value.cast_value for value in values]
            items = [
                item
                for item in items
                if item.attrs.get(name) is not None and test(_plain(item.attrs[name]), *bounds)
            ]
        return items


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
        # moto's backend passes range_comparison, range_objs, ... index_name positionally.
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        _querying.current = _Query(
            table=self,
            hash_key=None if index_name else hash_key,
            range_comparison=args[0] if args else None,
            range_objs=list(args[1]) if len(args) > 1 and args[1] else [],
            hash_conditions=list(kwargs.get("hash_key_conditions") or []),
            range_conditions=list(kwargs.get("range_key_conditions") or []),
        )
        try:
            return moto_query(self, hash_key, *args, **kwargs)
        finally:
            _querying.current = None

    def all_items(self: Any) -> list[Any]:
        current: _Query | None = getattr(_querying, "current", None)
        if current is None or current.table is not self:
            return moto_all_items(self)  # a scan, an export...: moto's own, sorted
        if current.hash_key is None:
            return current.index_candidates(self)
        return current.partition_candidates(self)

    setattr(Table, MOTO_ORDER, Table.sorted_items)
    setattr(Table, MOTO_QUERY, moto_query)
    setattr(Table, MOTO_ALL_ITEMS, moto_all_items)
    Table.sorted_items = sorted_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    setattr(Table, _PATCHED_FLAG, True)
