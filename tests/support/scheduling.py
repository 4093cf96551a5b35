"""How ``make test`` shares the suite between pytest-xdist workers (``--dist loadfile``).

Like xdist's loadfile (a test file's tests stay on one worker, so its module-scoped runtime
starts once), with two groups of files kept together:

- ``tests/journeys``: its tests share two session-scoped worlds, each a runtime playing days of
  a script. Split across workers, each worker would build both, doubling the suite's longest
  part. The files that start their own runtime instead (``OWN_UNITS``) are units of their own:
  kept in the group, they only lengthened the suite's longest unit of work.
- ``tests/benchmarks``: each compares figures taken inside its own run; two measuring at once on
  two workers would only add noise to each other, so they run one after another.

These two are also the longest units of work, so they are handed out first, and after them the
longest single files (``LONGEST_FILES``): xdist would hand units out in collection order, and a
long file drawn last (the proof's short forms, two minutes on one worker) would finish alone
while the other worker idles.

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
OWN_UNITS = frozenset(
    {
        "tests/journeys/test_publishing.py",  # its own runtime (journeys published on it)
        "tests/journeys/test_time_independence.py",  # two runtimes of its own, one loaded
    }
)


LONGEST_FILES = (
    "tests/proof/test_proof.py",  # the make proof short forms: about two minutes
    "tests/journeys/test_time_independence.py",  # the same scenario twice, once loaded
    "tests/journeys/test_publishing.py",
    "tests/e2e/test_lead_capture_e2e.py",
    "tests/e2e/test_mail_e2e.py",
)
"""Handed out right after the shared scopes, longest first (from ``--durations``)."""


def scope_of(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    if path in OWN_UNITS:
        return path
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
                first = [scope for _, scope in SHARED_SCOPES] + list(LONGEST_FILES)
                for scope in reversed(first):
                    if scope in self.workqueue:
                        self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return FilesAndSharedWorlds(config, log)
