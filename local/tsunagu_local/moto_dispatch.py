"""moto's server finds the handler of each request without re-reading what never changes.

For every request, moto's server lists its own package folder on disk to see whether the host
names a service (``moto.backends.list_of_moto_modules``: ``os.listdir`` and an ``isdir`` per
folder), and lists every function of the handler's class with ``inspect.getmembers`` to see
whether the action has a method (``moto.core.utils.method_names_from_class``). Neither changes
while the runtime runs; together they were about a twentieth of the runtime's CPU under load
(py-spy, tests/proof/load.py). Both are read once here: the folders once per process, a class's
method names once per class (the runtime's own patches replace methods, never add names).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

_PATCHED_FLAG = "_tsunagu_read_once"


def dispatch_without_rereading() -> None:
    """Install both (once per process)."""
    from moto import backends
    from moto.core import responses

    if getattr(backends.list_of_moto_modules, _PATCHED_FLAG, False):
        return
    folders = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> Iterable[str]:
        return folders

    setattr(list_of_moto_modules, _PATCHED_FLAG, True)
    backends.list_of_moto_modules = list_of_moto_modules
    read = getattr(responses, "method_names_from_class")  # noqa: B009 - not re-exported
    setattr(responses, "method_names_from_class", _method_names(read))  # noqa: B010


def _method_names(read: Any) -> Any:
    @cache
    def method_names_from_class(clazz: type) -> frozenset[str]:
        return frozenset(read(clazz))

    return method_names_from_class
