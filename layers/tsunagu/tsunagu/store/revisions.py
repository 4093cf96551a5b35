"""Saves of a record people edit whole (a form, a site) over the revision they read.

Each save adds one to the item's ``revision`` (an item stored before saves were counted has
none: revision 0). A save that says which revision it read is written only if that is still the
stored one - in the write's own condition, so a save landing between someone's read and their
write is not lost - and refused with ConcurrentUpdate otherwise, carrying the revision stored
now, which the editor's next save (having looked again) goes over knowingly. A save that says
none goes over whatever is stored (the CLI, scripts).
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import UpdateError

from tsunagu.errors import AlreadyExists, ConcurrentUpdate
from tsunagu.store.tables import get_or_none


def revision_of(item: Any) -> int:
    return int(item.revision or 0)


def save_revised(
    model: Any, kind: str, key: str, actions: list[Any], *, new: bool, over: int | None
) -> int:
    """Apply ``actions`` to the item ``key`` of ``model`` (made if missing) and count the save;
    its revision now. ``new``: only if none has the key (AlreadyExists). ``over``: only if the
    item is still at that revision (ConcurrentUpdate)."""
    hash_key = model._hash_key_attribute()
    condition = None
    if new:
        condition = hash_key.does_not_exist()
    elif over is not None:
        unchanged = model.revision.does_not_exist() if over == 0 else model.revision == over
        condition = hash_key.exists() & unchanged
    item = model(key)
    try:
        item.update(actions=[*actions, model.revision.add(1)], condition=condition)
    except UpdateError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise  # throttled, refused, unreachable: not someone else's save
        if new:
            raise AlreadyExists(f"{kind} {key!r} exists") from None
        raise stale(kind, key, over or 0, get_or_none(model, key)) from None
    return revision_of(item)


def stale(kind: str, key: str, opened: int, stored: Any) -> ConcurrentUpdate:
    if stored is None:
        return ConcurrentUpdate(f"{kind} {key!r} was deleted after you opened it")
    now = revision_of(stored)
    error = ConcurrentUpdate(
        f"{kind} {key!r} was saved by someone else after you opened it (revision {opened},"
        f" now {now}): reload it, or save again to replace theirs"
    )
    error.revision = now
    return error
