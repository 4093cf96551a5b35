"""PynamoDB's TransactWrite, which also puts an item given as values, without a model instance.

``TransactWrite.save(Model(**values))`` builds the model - every attribute set through its
descriptor, defaults first - then reads each attribute back through the descriptor to serialise
it: of a lead import's CPU beyond DynamoDB's own work, that was a fifth (five items a lead, a
tenth of a millisecond each). ``Transaction.put(Model, values)`` serialises the values with the
model's own attributes (the same ``Attribute.serialize``, defaults, null checks and version
handling) into the same request PynamoDB sends for the save: the model class stays the one
statement of an item's shape, and tests.unit.test_store_transactions holds the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from pynamodb.attributes import Attribute, ListAttribute, MapAttribute, VersionAttribute
from pynamodb.constants import ITEM
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
    attributes: tuple[tuple[str, Attribute[Any], bool], ...]
    """Python name, attribute, whether it is a list or map (serialised with a null check)."""
    hash_key: Attribute[Any]
    range_key: Attribute[Any] | None
    version: tuple[str, VersionAttribute] | None


@cache
def _shape(model: type[Model]) -> _Shape:
    attributes = model.get_attributes()
    version = next(
        ((name, a) for name, a in attributes.items() if isinstance(a, VersionAttribute)), None
    )
    return _Shape(
        attributes=tuple(
            (name, a, isinstance(a, (ListAttribute, MapAttribute)))
            for name, a in attributes.items()
            if version is None or name != version[0]
        ),
        hash_key=next(a for a in attributes.values() if a.is_hash_key),
        range_key=next((a for a in attributes.values() if a.is_range_key), None),
        version=version,
    )


def put_kwargs(
    model: type[Model], values: Mapping[str, Any], condition: Condition | None = None
) -> dict[str, Any]:
    """The Put that ``model(**values).get_save_kwargs_from_instance(condition)`` makes, made
    from the values (as Model.__init__ and AttributeContainer._container_serialize read
    them)."""
    shape = _shape(model)
    unknown = set(values) - set(model.get_attributes())
    if unknown:
        raise ValueError(f"Attribute {sorted(unknown)[0]} specified does not exist")
    serialized: dict[str, Any] = {}
    for name, attribute, container in shape.attributes:
        if name in values:
            value = values[name]
        else:
            default = (
                attribute.default_for_new
                if attribute.default_for_new is not None
                else attribute.default
            )
            value = default() if callable(default) else default
        if value is None:
            stored = None
        elif container:
            stored = attribute.serialize(value, null_check=True)  # type: ignore[call-arg]
        else:
            stored = attribute.serialize(value)
        if stored is None:
            if not attribute.null:
                raise AttributeNullError(name)
            continue
        serialized[attribute.attr_name] = {attribute.attr_type: stored}
    hash_key = serialized.pop(shape.hash_key.attr_name)[shape.hash_key.attr_type]
    range_key = None
    if shape.range_key is not None:
        range_key = serialized.pop(shape.range_key.attr_name)[shape.range_key.attr_type]
    if shape.version is not None:
        name, attribute = shape.version
        read = values.get(name)
        unchanged = attribute.does_not_exist() if read is None else attribute == read
        version = attribute.serialize(1 if read is None else read + 1)  # type: ignore[no-untyped-call]
        serialized[attribute.attr_name] = {attribute.attr_type: version}
        condition = unchanged if condition is None else condition & unchanged
    return model._get_connection().get_operation_kwargs(
        hash_key, range_key=range_key, key=ITEM, attributes=serialized, condition=condition
    )
