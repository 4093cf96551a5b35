"""PynamoDB's TransactWrite, which also puts an item given as values, without a model instance.

``TransactWrite.save(Model(**values))`` builds the model - every attribute set through its
descriptor, defaults first - then reads each attribute back through the descriptor to serialise
it, each value of a map or list through an attribute object of its own: of a lead import's CPU
beyond DynamoDB's own work, that was a fifth (five items a lead, about 0.1 ms each).
``Transaction.put(Model, values)`` makes the same request from the values: the model's own
attributes, defaults, null checks and version, strings as they are, and the plain values of a
map or list (str, dict, list, None, bool, int, float) as PynamoDB maps them by their exact type;
anything else goes through the attribute's own ``serialize``. The model class stays the one
statement of an item's shape, and tests/integration/test_store_transactions.py holds the put
equal to the save for every item a capture or an import writes and for odd values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from pynamodb.attributes import (
    Attribute,
    ListAttribute,
    MapAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.exceptions import AttributeNullError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite


class Transaction(TransactWrite):
    """A TransactWrite whose puts may be given as values (``put``) as well as models
    (``save``): both go in PynamoDB's order (condition checks, deletes, puts, updates), which
    the callers read cancellation reasons by."""

    def put(
        self, model: type[Model], values: Mapping[str, Any], condition: Condition | None = None
    ) -> None:
        """As ``save(model(**values), condition)``; the model's version, when it has one, is
        ``values["version"]`` as read (None: a new item), and is not updated locally."""
        # PynamoDB keeps its puts in this list (pinned 6.1.0); save() appends to it the same way.
        self._put_items.append(put_kwargs(model, values, condition))


@dataclass(frozen=True)
class _Shape:
    table_name: str
    names: frozenset[str]
    attributes: tuple[tuple[str, Attribute[Any], str], ...]
    """Python name, attribute, how its value is serialised (see _how)."""
    hash_key: Attribute[Any]
    range_key: Attribute[Any] | None
    version: tuple[str, VersionAttribute] | None


_ITSELF = "itself"
"""A UnicodeAttribute: its value as it is (Attribute.serialize)."""
_MAP = "map"
"""A raw MapAttribute: each value by its own type (_plain)."""
_LIST = "list"
"""An untyped ListAttribute: each element by its own type (_plain)."""
_STRINGS = "strings"
"""A ListAttribute of UnicodeAttribute: each element a string."""
_OWN = "own"
"""Any other attribute: its own ``serialize``."""


def _how(attribute: Attribute[Any]) -> str:
    kind = type(attribute)
    if kind is UnicodeAttribute:
        return _ITSELF
    if kind is MapAttribute:
        return _MAP
    if kind is ListAttribute:
        element = attribute.element_type  # type: ignore[attr-defined]
        return _LIST if element is None else _STRINGS if element is UnicodeAttribute else _OWN
    return _OWN


@cache
def _shape(model: type[Model]) -> _Shape:
    attributes = model.get_attributes()
    version = next(
        ((name, a) for name, a in attributes.items() if isinstance(a, VersionAttribute)), None
    )
    return _Shape(
        table_name=model.Meta.table_name,
        names=frozenset(attributes),
        attributes=tuple(
            (name, a, _how(a))
            for name, a in attributes.items()
            if version is None or name != version[0]
        ),
        hash_key=next(a for a in attributes.values() if a.is_hash_key),
        range_key=next((a for a in attributes.values() if a.is_range_key), None),
        version=version,
    )


class _NotPlain(Exception):
    """A value PynamoDB maps by more than its exact type (a set, bytes, a str subclass...)."""


def _plain(value: Any) -> dict[str, Any]:
    """A value in a raw map or an untyped list as PynamoDB serialises it
    (MapAttribute._serialize_undeclared_attributes, _get_class_for_serialize): by its exact
    type, for the types it maps so. _NotPlain for any other: the attribute's own ``serialize``
    then serialises (or refuses) the whole value."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is dict:
        return {"M": {name: _plain(v) for name, v in value.items()}}
    if kind is list:
        return {"L": [_plain(v) for v in value]}
    if value is None:
        return {"NULL": True}
    if kind is bool:
        return {"BOOL": value}
    if kind is int or kind is float:
        return {"N": json.dumps(value)}
    raise _NotPlain


def _serialized(attribute: Attribute[Any], how: str, value: Any) -> Any:
    """As ``AttributeContainer._container_serialize`` serialises a value that is not None."""
    if how == _ITSELF:
        return value
    try:
        if how == _MAP and type(value) is dict:
            return {name: _plain(v) for name, v in value.items()}
        if how == _LIST and type(value) is list:
            return [_plain(v) for v in value]
        if how == _STRINGS and type(value) is list and all(type(v) is str for v in value):
            return [{"S": v} for v in value]
    except _NotPlain:
        pass
    if isinstance(attribute, (ListAttribute, MapAttribute)):
        return attribute.serialize(value, null_check=True)
    return attribute.serialize(value)


def put_kwargs(
    model: type[Model], values: Mapping[str, Any], condition: Condition | None = None
) -> dict[str, Any]:
    """The Put that ``model(**values).get_save_kwargs_from_instance(condition)`` makes, made
    from the values (as Model.__init__, AttributeContainer._container_serialize and
    Connection.get_operation_kwargs read them)."""
    shape = _shape(model)
    if not shape.names.issuperset(values):
        unknown = sorted(set(values) - shape.names)[0]
        raise ValueError(f"Attribute {unknown} specified does not exist")
    serialized: dict[str, Any] = {}
    for name, attribute, how in shape.attributes:
        if name in values:
            value = values[name]
        else:
            default = (
                attribute.default_for_new
                if attribute.default_for_new is not None
                else attribute.default
            )
            value = default() if callable(default) else default
        stored = None if value is None else _serialized(attribute, how, value)
        if stored is None:
            if not attribute.null:
                raise AttributeNullError(name)
            continue
        serialized[attribute.attr_name] = {attribute.attr_type: stored}
    key = {shape.hash_key.attr_name: serialized.pop(shape.hash_key.attr_name)}
    if shape.range_key is not None:
        key[shape.range_key.attr_name] = serialized.pop(shape.range_key.attr_name)
    if shape.version is not None:
        name, attribute = shape.version
        read = values.get(name)
        unchanged = attribute.does_not_exist() if read is None else attribute == read
        next_version = 1 if read is None else read + 1
        version = attribute.serialize(next_version)  # type: ignore[no-untyped-call]
        serialized[attribute.attr_name] = {attribute.attr_type: version}
        condition = unchanged if condition is None else condition & unchanged
    kwargs: dict[str, Any] = {"TableName": shape.table_name, "Item": key | serialized}
    if condition is not None:
        if not isinstance(condition, Condition):
            raise ValueError("'condition' must be an instance of Condition")
        names: dict[str, str] = {}
        placeholders: dict[str, Any] = {}
        kwargs["ConditionExpression"] = condition.serialize(names, placeholders)
        if names:
            kwargs["ExpressionAttributeNames"] = {v: k for k, v in names.items()}
        if placeholders:
            kwargs["ExpressionAttributeValues"] = placeholders
    return kwargs


def item_bytes(item: Mapping[str, Any]) -> int:
    """What DynamoDB counts an item as (``item``: attribute name -> typed value, as a put sends
    it: put_kwargs' ``Item``) against its 400 KB: each attribute's name and value as UTF-8, a
    number by its digits, a map or list three bytes and one an element besides (the developer
    guide's "item sizes"; a number is counted at its most)."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(typed: Mapping[str, Any]) -> int:
    ((kind, value),) = typed.items()
    if kind == "S":
        return len(value.encode())
    if kind == "N":
        return (len(value) + 1) // 2 + 1
    if kind in ("SS", "BS"):
        return sum(len(v.encode() if isinstance(v, str) else v) for v in value)
    if kind == "NS":
        return sum((len(v) + 1) // 2 + 1 for v in value)
    if kind == "L":
        return 3 + sum(1 + _value_bytes(v) for v in value)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_bytes(v) for k, v in value.items())
    if kind == "B":
        return len(value.encode() if isinstance(value, str) else value)
    return 1  # BOOL, NULL
