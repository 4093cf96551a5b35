"""How ``make test`` shares the suite between pytest-xdist workers (``--dist loadfile``).

Like xdist's loadfile (a test file's tests stay on one worker, so its module-scoped runtime
starts once), with two groups of files kept together:

- ``tests/journeys``: its tests share two session-scoped worlds, each a runtime playing days of
  a script. Split across workers, each worker would build both, doubling the suite's longest
  part.
- ``tests/benchmarks``: each compares figures taken inside its own run; two measuring at once on
  two workers would only add noise to each other, so they run one after another.

xdist's own ``xdist_group`` mark cannot do this with pytest 9.2: xdist 3.8 tags a grouped test by
rewriting ``item._nodeid``, which pytest 9.2 no longer reads, so the groups are silently ignored.
"""

from __future__ import annotations

from typing import Any

import pytest

SHARED_SCOPES = (
    ("tests/journeys/", "tests/journeys"),
    ("tests/benchmarks/", "tests/benchmarks"),
)


def scope_of(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    for prefix, scope in SHARED_SCOPES:
        if path.startswith(prefix):
            return scope
    return path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None  # any other --dist asked for on the command line is xdist's own
    from xdist.scheduler import LoadFileScheduling

    class FilesAndSharedWorlds(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return FilesAndSharedWorlds(config, log)
