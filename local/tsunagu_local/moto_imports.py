"""Keeping moto's Batch service out of the runtime's start.

moto's Step Functions interpreter imports ``moto.batch.utils`` (for its Batch task states) and so
runs ``moto/batch/__init__.py``, which imports Batch's models and, through them, all of moto's EC2:
about 1.2 s of CPU at every runtime start, for a service no Tsunagu state machine calls. The
suite starts runtimes by the dozen, so this is a large share of its time on a 2-core machine.

``moto.batch`` is registered as a package whose own ``__init__`` runs on first use: its
submodules (``moto.batch.utils``) import as usual, and the first attribute asked of the package
itself (moto's backend lookup, ``from moto.batch import ...``) runs the real ``__init__`` then.
Nothing changes for code that does use Batch; it only pays when it does.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from importlib.machinery import ModuleSpec

DEFERRED_PACKAGES = ("moto.batch",)


class _PackageInitialisedOnUse(types.ModuleType):
    """A package whose ``__init__`` has not run yet: the first missing attribute runs it."""

    _deferred_spec: ModuleSpec

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):  # the import system's own probes must not initialise it
            raise AttributeError(name)
        spec = self._deferred_spec
        self.__class__ = types.ModuleType  # type: ignore[assignment]  # a plain module now
        assert spec.loader is not None
        spec.loader.exec_module(self)
        return getattr(self, name)


def defer_unused_moto_packages() -> None:
    """Register the packages in ``DEFERRED_PACKAGES`` to initialise on first use. Idempotent;
    a package already imported is left as it is."""
    for name in DEFERRED_PACKAGES:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            continue
        package = _PackageInitialisedOnUse(name)
        package._deferred_spec = spec
        package.__spec__ = spec
        package.__loader__ = spec.loader
        package.__file__ = spec.origin
        package.__path__ = list(spec.submodule_search_locations)
        package.__package__ = name
        sys.modules[name] = package
        parent, _, child = name.rpartition(".")
        setattr(importlib.import_module(parent), child, package)  # as the import system would
