"""The artifact ``sam build`` makes, built here for this machine: shared by the bytecode check in
tests/static and the cold-start benchmark.

Every resource of template.yaml that builds with ``BuildMethod: makefile`` is built as SAM builds
it (aws-lambda-builders' CustomMakeWorkflow): its CodeUri/ContentUri folder is copied to a scratch
folder, and ``make --makefile <ContextPath or that folder>/Makefile build-<LogicalId>`` runs there
with ARTIFACTS_DIR set to ``<root>/<LogicalId>``, as in .aws-sam/build. Two things differ, so the
result loads here and nothing leaves the machine: the layer's pip installs this machine's wheels
(``PIP_PLATFORM=``) from the local wheelhouse (``--no-index --find-links``), and this virtualenv's
Python 3.13 compiles.

The build takes tens of seconds (pip unpacks ~60 MB, compileall compiles ~1,400 modules), so it
runs once per pytest run: under pytest-xdist the first worker to ask builds it, under a file
lock, in the folder all workers' temporary folders share, and the others reuse it.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from tests.conftest import ROOT, TEMPLATE

WHEELHOUSE = ROOT / ".venv" / "wheelhouse"
"""The layer's requirements as this machine's wheels, downloaded by ``make test``'s setup."""
WHEELHOUSE_COMMAND = (
    ".venv/bin/python -m pip download --quiet --only-binary=:all: "
    "--requirement layers/tsunagu/requirements.txt --dest .venv/wheelhouse"
)
LAYER = "DomainLayer"
BUILT_TYPES = ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion")
# What CustomMakeWorkflow leaves out of the scratch copy.
NOT_COPIED = shutil.ignore_patterns(".aws-sam", ".git")
# A hash-based .pyc whose source is never checked (PEP 552 flags: bit 0 hash-based, bit 1
# check_source): what `compileall --invalidation-mode unchecked-hash` writes.
UNCHECKED_HASH_FLAGS = 0b01


@dataclass(frozen=True)
class MakefileBuild:
    """One resource built by a Makefile, as SAM runs it."""

    logical_id: str
    source: Path
    """CodeUri or ContentUri: copied to a scratch folder, where make runs."""
    makefile: Path
    """In ContextPath if the resource names one, else in the source folder."""


def makefile_builds(template: Mapping[str, Any], root: Path = ROOT) -> list[MakefileBuild]:
    """Functions and layers of the template whose Metadata says BuildMethod: makefile."""
    builds = []
    for logical_id, resource in sorted(template.get("Resources", {}).items()):
        metadata = resource.get("Metadata") or {}
        if resource.get("Type") not in BUILT_TYPES or metadata.get("BuildMethod") != "makefile":
            continue
        properties = resource.get("Properties", {})
        source = root / str(properties.get("CodeUri") or properties.get("ContentUri"))
        context = root / metadata["ContextPath"] if "ContextPath" in metadata else source
        builds.append(MakefileBuild(logical_id, source, context / "Makefile"))
    return builds


def template_builds() -> list[MakefileBuild]:
    return makefile_builds(yaml_parse(TEMPLATE.read_text("utf-8")))


def make_environment() -> dict[str, str]:
    """This process's environment without a calling make's: under `make test`, MAKEFLAGS names
    jobserver file descriptors the child make would not have."""
    return {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}


def run_build(build: MakefileBuild, artifacts: Path, scratch: Path) -> Path:
    """Build one resource into artifacts/<LogicalId> for this machine; return that folder."""
    work = scratch / build.logical_id
    shutil.copytree(build.source, work, ignore=NOT_COPIED)
    output = artifacts / build.logical_id
    output.mkdir(parents=True)
    completed = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "--makefile",
            str(build.makefile),
            f"build-{build.logical_id}",
            f"PYTHON={sys.executable}",
            "PIP_PLATFORM=",
            f"PIP_INDEX=--no-index --find-links {WHEELHOUSE}",
        ],
        cwd=work,
        env={**make_environment(), "ARTIFACTS_DIR": str(output)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if completed.returncode != 0:
        stale = "No matching distribution" in completed.stderr
        hint = f"\n(the wheelhouse is older than the pins? refresh it: {WHEELHOUSE_COMMAND})"
        raise RuntimeError(
            f"make build-{build.logical_id} failed:\n{completed.stdout}\n{completed.stderr}"
            + (hint if stale else "")
        )
    return output


@dataclass(frozen=True)
class BuiltArtifact:
    """The build output: one folder per resource, as .aws-sam/build lays it out."""

    root: Path

    @property
    def layer_site(self) -> Path:
        """What Lambda puts on sys.path from the layer (/opt/python)."""
        return self.root / LAYER / "python"

    def function_dir(self, logical_id: str) -> Path:
        """What Lambda puts on sys.path for a function (/var/task)."""
        return self.root / logical_id

    def without_bytecode(self, destination: Path) -> BuiltArtifact:
        """The same tree without any __pycache__ (as `sam build` made it before the Makefiles),
        hard-linked, so it costs no copy of the layer."""
        shutil.copytree(
            self.root,
            destination,
            ignore=shutil.ignore_patterns("__pycache__"),
            copy_function=os.link,
        )
        return BuiltArtifact(destination)


def build_artifact(destination: Path, builds: list[MakefileBuild]) -> BuiltArtifact:
    """Every build, two at a time as `sam build --parallel` would: the functions' small builds
    (mostly interpreter start-ups) fit beside the layer's, which starts first as the longest."""
    if not WHEELHOUSE.is_dir():
        raise RuntimeError(
            f"no wheelhouse at {WHEELHOUSE}: make test's setup downloads it; by hand: "
            f"{WHEELHOUSE_COMMAND}"
        )
    scratch = destination.with_name(destination.name + "-scratch")
    # What a build that failed halfway left.
    shutil.rmtree(destination, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)
    longest_first = sorted(builds, key=lambda build: build.logical_id != LAYER)
    with ThreadPoolExecutor(max_workers=2) as pool:
        running = [pool.submit(run_build, build, destination, scratch) for build in longest_first]
        for future in running:
            future.result()  # raises a failed build's error
    shutil.rmtree(scratch)
    return BuiltArtifact(destination)


BUILT = pytest.StashKey[BuiltArtifact]()


@contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    with lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def built_for_this_run(
    tmp_path_factory: pytest.TempPathFactory, config: pytest.Config
) -> BuiltArtifact:
    """The artifact, built once per pytest run however many workers ask (see the docstring)."""
    built = config.stash.get(BUILT, None)
    if built is not None:
        return built
    shared = tmp_path_factory.getbasetemp()
    if hasattr(config, "workerinput"):
        # An xdist worker's basetemp is <the run's basetemp>/<worker id>: the parent is this
        # run's, and only this run's.
        shared = shared.parent
    destination = shared / "built-artifact"
    complete = shared / "built-artifact.complete"
    with locked(shared / "built-artifact.lock"):
        if not complete.exists():  # else built by another worker
            build_artifact(destination, template_builds())
            complete.touch()
    built = config.stash[BUILT] = BuiltArtifact(destination)
    return built


def bytecode_problems(tree: Path) -> list[str]:
    """Every .py under tree without the bytecode Lambda's Python would load instead: this
    interpreter's version (cpython-313), unchecked-hash (never compared with the source)."""
    problems = []
    for source in sorted(tree.rglob("*.py")):
        # Not importlib.util.cache_from_source: it would follow a PYTHONPYCACHEPREFIX.
        cached = source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"
        where = source.relative_to(tree)
        if not cached.is_file():
            problems.append(f"{where}: no {cached.name}")
            continue
        header = cached.read_bytes()[:8]
        if header[:4] != importlib.util.MAGIC_NUMBER:
            problems.append(f"{where}: {cached.name} is not this Python's bytecode")
        elif int.from_bytes(header[4:8], "little") != UNCHECKED_HASH_FLAGS:
            problems.append(f"{where}: {cached.name} is not unchecked-hash bytecode")
    return problems
