"""Tsunagu's domain package: what Tsunagu does, independent of how a request reached it.

Imports point downward only: ``api`` (HTTP mapping used by handlers) -> domain modules
(``leads``, ``forms``, ``tracking``, ``mail``, ``routing``) -> ``store`` (PynamoDB models,
repositories and the SES adapter). ``services`` wires them for a function. Nothing here imports
from ``functions/``.
"""

import gc as _gc


class HandlerImports:
    """``with HandlerImports(__name__):`` around a handler module's imports, to shorten its cold
    start (README, Deploying to AWS).

    Importing capture_form or track_event makes about 63,000 objects the garbage collector
    tracks (77,000 before pydantic left their paths), nearly all of them living as long as the
    process (modules, classes, functions), and the collector scans them again and again as they
    pile up: about 20 ms of a cold start when this was measured, at 77,000. So
    the collector is off while the imports run. At the end, when the module is the one Lambda's
    runtime imports (``app``), what the imports made is frozen (moved where no later collection
    scans it; the few hundred objects of cyclic garbage among them, about 150 kB, are kept for
    the life of the process), then the collector is on again. Anywhere else (the local runtime
    and the tests load handlers under other names, in processes that do more than serve one
    function) nothing is frozen. Either way the collector is left as it was found, whether the
    imports succeed or raise.
    """

    def __init__(self, module_name: str) -> None:
        self._freeze = module_name == "app"
        self._was_enabled = False

    def __enter__(self) -> None:
        self._was_enabled = _gc.isenabled()
        _gc.disable()

    def __exit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        if self._freeze and error_type is None:
            _gc.freeze()
        if self._was_enabled:
            _gc.enable()
