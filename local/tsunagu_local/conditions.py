"""DynamoDB condition expressions parsed once, not three times a write.

moto parses a write's ConditionExpression from its text every time it looks at it: a
TransactWriteItems parses each item's condition to validate the request, the runtime's
transaction (tsunagu_local.transactions) parses it to check it, and moto's put, update or delete
parses it again to check it once more. The lexer and parser are pure Python, and in the import
benchmark they were an eighth of moto's work, paid by the real run and not by the floor it is
compared with (a BatchWriteItem has no conditions), where DynamoDB charges nothing for a
condition.

Here ``ConditionExpressionParser.parse`` keeps what it built for an expression with its names
and values: the tree and the names and values it found, which moto's validation reads back from
the parser. Evaluating a tree only reads it and the item it is given. A tree does hold its
values' own objects, though, and an update can store the same list in an item and later append
to it in place (``SET tags = :t`` then ``ADD tags :n``): so a tree is built from a private copy
of the values, never from a request's. A text that does not parse raises every time, as before:
nothing is kept for it.
"""

from __future__ import annotations

import json
import threading
from typing import Any

_INSTALLED_FLAG = "_tsunagu_parses_once"
KEPT = 4_096
"""Expressions kept; past this the memory starts again (most writes here use a few dozen
conditions; a version check or an ``IN`` list with values of its own is one entry each)."""

_kept: dict[tuple[str, str, str], tuple[Any, list[str], list[str]]] = {}
_lock = threading.Lock()


def _key(parser: Any) -> tuple[str, str, str] | None:
    # None and {} parse alike (moto's validation passes {}, its checks None): one entry.
    try:
        return (
            parser.condition_expression,
            json.dumps(parser.expression_attribute_names or {}, sort_keys=True),
            json.dumps(parser.expression_attribute_values or {}, sort_keys=True),
        )
    except TypeError:  # a value JSON cannot write: parse it as moto does, keep nothing
        return None


def parse_conditions_once() -> None:
    """Make moto's condition parser remember its answers (see the module's docstring)."""
    from moto.dynamodb.comparisons import ConditionExpressionParser

    original: Any = ConditionExpressionParser.parse
    if getattr(original, _INSTALLED_FLAG, False):
        return

    def parse(self: Any) -> Any:
        if not self.condition_expression:
            return original(self)  # no condition: moto answers at once
        key = _key(self)
        if key is None:
            return original(self)
        kept = _kept.get(key)
        if kept is None:
            if self.expression_attribute_values is not None:
                self.expression_attribute_values = json.loads(key[2])  # the tree's own copy
            tree = original(self)
            with _lock:
                if len(_kept) >= KEPT:
                    _kept.clear()
                _kept[key] = (tree, list(self.expr_attr_names_found),
                              list(self.expr_attr_values_found))  # fmt: skip
            return tree
        tree, names, values = kept
        self.expr_attr_names_found.extend(names)
        self.expr_attr_values_found.extend(values)
        return tree

    parse.__wrapped__ = original  # type: ignore[attr-defined]  # the tests compare the two
    setattr(parse, _INSTALLED_FLAG, True)
    ConditionExpressionParser.parse = parse  # type: ignore[method-assign]
