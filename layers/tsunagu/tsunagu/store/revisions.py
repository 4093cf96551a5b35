"""Saves of a record people edit whole (a form, a site, the qualification rules) over the
revision they read.

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
    model: Any,
    key: str | tuple[str, str],
    what: str,
    actions: list[Any],
    *,
    new: bool = False,
    over: int | None,
    unsaved_is_revision_0: bool = False,
) -> int:
    """Apply ``actions`` to the item ``key`` (its hash key, or its hash and range keys) of
    ``model``, made if missing, and count the save; its revision now. ``what`` names it in a
    refusal ("form 'demo'"). ``new``: only if none has the key (AlreadyExists). ``over``: only
    if the item is still at that revision (ConcurrentUpdate). ``unsaved_is_revision_0``: the
    record has a value before its first save (the rules' defaults), so a save over revision 0
    may make the item; otherwise a missing item was deleted since it was read."""
    keys = key if isinstance(key, tuple) else (key,)
    hash_key = model._hash_key_attribute()
    condition = None
    if new:
        condition = hash_key.does_not_exist()
    elif over is not None:
        unchanged = model.revision.does_not_exist() if over == 0 else model.revision == over
        condition = unchanged if unsaved_is_revision_0 else hash_key.exists() & unchanged
    item = model(*keys)
    try:
        item.update(actions=[*actions, model.revision.add(1)], condition=condition)
    except UpdateError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise  # throttled, refused, unreachable: not someone else's save
        if new:
            raise AlreadyExists(f"{what} exists") from None
        stored = get_or_none(model, *keys)
        if stored is None and not unsaved_is_revision_0:
            raise ConcurrentUpdate(f"{what} was deleted after you opened it") from None
        raise stale(what, over or 0, revision_of(stored) if stored else 0) from None
    return revision_of(item)


def stale(what: str, opened: int, now: int) -> ConcurrentUpdate:
    error = ConcurrentUpdate(
        f"someone else saved {what} meanwhile (you opened revision {opened}, the latest is"
        f" {now}): reload, or save again to replace theirs"
    )
    error.revision = now
    return error
