"""moto checks an item's size once per attribute; the runtime checks it once per item.

``moto.dynamodb.models.dynamo_type.Item`` builds its attributes one at a time into a
``LimitedSizeDict``, whose ``__setitem__`` sums the size of every attribute already there before
it adds the next one, to refuse an item over DynamoDB's 400 KB. An item of n attributes is
measured n times over, nested maps walked each time: most of what a put costs (two thirds of
moto's work in the import benchmark, 5.6 s of 8.5 s for 6,000 puts), and it grows with the
square of an item's width, so a lead - the widest item Tsunagu stores - pays most.

Building an item checks its size once, after all its attributes are made: sizes are never
negative, so the sum passes the limit part-way exactly when the total does, and the same
``ItemSizeTooLarge`` is raised for the same items. Attributes set later (an update expression)
still go through moto's own check.
"""

from __future__ import annotations

from typing import Any

_INSTALLED_FLAG = "_tsunagu_checks_size_once"
ITEM_SIZE_LIMIT = 405_000
"""moto's own figure (dynamo_type.LimitedSizeDict): DynamoDB refuses between 409 and 410 KB."""


def check_item_size_once() -> None:
    """Make moto's ``Item`` measure itself once when built (see the module's docstring)."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    if getattr(Item.__init__, _INSTALLED_FLAG, False):
        return

    def __init__(
        self: Any, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict[str, Any]
    ) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        values = {key: DynamoType(value) for key, value in attrs.items()}
        if sum(bytesize(key) + value.size() for key, value in values.items()) > ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        self.attrs = LimitedSizeDict()
        dict.update(self.attrs, values)  # dict's own update: no per-attribute check again

    setattr(__init__, _INSTALLED_FLAG, True)
    Item.__init__ = __init__  # type: ignore[method-assign]
