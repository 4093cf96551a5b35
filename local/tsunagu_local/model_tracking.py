"""moto remembers every model object it ever made; the runtime lets go of the ones nothing uses.

``moto.core.common_models.BaseModel.__new__`` appends each new instance to its class's
``instances_tracked`` list, for moto's dashboard (``/moto-api/data.json``) and for S3's reset,
and nothing ever takes one out. So every DynamoDB ``Item`` moto builds stays in memory for the
life of the process: the item written, each older version it replaced, each copy a
transaction, an update or a stream record made, with every execution and stream record beside
them. The load proof found it: after 40 form posts the runtime held about 4,500 items that were
in no table (110 a lead, against the 40 a lead actually stored), and they were most of its memory
growth per lead; a day of demo traffic grew without bound.

The runtime keeps those registers weakly: the dashboard and S3's reset still see every instance
that is alive, and an object that nothing else holds is freed as it would be without moto's
register.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

_INSTALLED_FLAG = "_tsunagu_tracks_weakly"
_REPLACING = threading.Lock()


class WeakInstances:
    """What moto asks of ``instances_tracked`` (append, iterate, len), keeping nothing alive."""

    def __init__(self, instances: Iterable[Any] = ()) -> None:
        # Keyed by id: a model need not be hashable. An entry leaves as its object is freed,
        # before the id can be reused.
        self._alive: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        for instance in instances:
            self.append(instance)

    def append(self, instance: Any) -> None:
        self._alive[id(instance)] = instance

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._alive.values()))

    def __len__(self) -> int:
        return len(self._alive)


def track_models_weakly() -> None:
    """Make every moto model class keep its register of instances weakly, from now on."""
    from moto.core.common_models import BaseModel

    if getattr(BaseModel.__new__, _INSTALLED_FLAG, False):
        return

    def __new__(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
        instance = super(BaseModel, cls).__new__(cls)
        tracked = cls.__dict__.get("instances_tracked")
        if not isinstance(tracked, WeakInstances):
            # Each class gets its plain list from moto's metaclass (and again from moto's
            # reset): replaced at the class's first new instance, what it held carried over.
            with _REPLACING:
                tracked = cls.__dict__.get("instances_tracked")
                if not isinstance(tracked, WeakInstances):
                    tracked = WeakInstances(tracked or ())
                    cls.instances_tracked = tracked
        tracked.append(instance)
        return instance

    setattr(__new__, _INSTALLED_FLAG, True)
    BaseModel.__new__ = staticmethod(__new__)  # type: ignore[method-assign]
