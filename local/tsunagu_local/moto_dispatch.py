"""moto's server finds the service of each request without listing its own folder on disk.

For every request, moto's server lists its package folder to see whether the host names a
service (``moto.backends.list_of_moto_modules``: ``os.listdir`` and an ``isdir`` per folder).
The folders do not change while the runtime runs, so they are listed once. (The handler
classes' method names, which moto reads with ``inspect.getmembers`` per request, are not cached:
a method added to a class after its first request would then be answered "not implemented",
and nothing promises that no patch adds one.)
"""

from __future__ import annotations

from collections.abc import Iterable

_PATCHED_FLAG = "_tsunagu_read_once"


def dispatch_without_rereading() -> None:
    """Install it (once per process)."""
    from moto import backends

    if getattr(backends.list_of_moto_modules, _PATCHED_FLAG, False):
        return
    folders = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> Iterable[str]:
        return folders

    setattr(list_of_moto_modules, _PATCHED_FLAG, True)
    backends.list_of_moto_modules = list_of_moto_modules
