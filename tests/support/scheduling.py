"""How ``make test`` shares the suite between pytest-xdist workers (``--dist loadfile``).

Like xdist's loadfile (a test file's tests stay on one worker, so its module-scoped runtime
starts once), with two groups of files kept together:

- ``tests/journeys``: its tests share two session-scoped worlds, each a runtime playing days of
  a script. Split across workers, each worker would build both, doubling the suite's longest
  part.
- ``tests/benchmarks``: each compares figures taken inside its own run; two measuring at once on
  two workers would only add noise to each other, so they run one after another.

These two are also the longest units of work, so they are handed out first (xdist would order
units by their number of tests, and the six benchmarks would start last and finish last).

xdist's own ``xdist_group`` mark cannot do this with pytest 9.2: xdist 3.8 tags a grouped test by
rewriting ``item._nodeid``, which pytest 9.2 no longer reads, so the groups are silently ignored.
"""

from __future__ import annotations

from typing import Any

import pytest

SHARED_SCOPES = (
    ("tests/benchmarks/", "tests/benchmarks"),
    ("tests/journeys/", "tests/journeys"),
)
"""(prefix of a test file's path, the unit of work it belongs to), longest unit first."""


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
        prioritised = False

        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if not self.prioritised:  # the queue is complete by the first assignment
                self.prioritised = True
                for _, scope in reversed(SHARED_SCOPES):
                    if scope in self.workqueue:
                        self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return FilesAndSharedWorlds(config, log)
