"""What `sam build` ships holds the bytecode of every module it ships.

Lambda's /opt (the layer) and /var/task (the function) are read-only: Python cannot cache
bytecode there, so every module shipped without it is compiled from source at every cold start
(about 1.3 s per cold start of capture_form, see tests/benchmarks/test_cold_start.py). The
Makefiles that template.yaml builds with compile it; these tests run those recipes as SAM runs
them, for this machine and from the local wheelhouse (tests/support/artifact.py), and check the
output.
"""

from __future__ import annotations

import py_compile
import sys
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name
from samtranslator.yaml_helper import yaml_parse

from tests.conftest import ROOT, TEMPLATE
from tests.support.artifact import (
    BUILT_TYPES,
    LAYER,
    BuiltArtifact,
    built_for_this_run,
    bytecode_problems,
    makefile_builds,
)
from tsunagu_local.layer_pins import read_pins

FUNCTIONS_MAKEFILE = ROOT / "functions" / "Makefile"
LAYER_SOURCE = ROOT / "layers" / "tsunagu"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse(TEMPLATE.read_text("utf-8"))
    return parsed


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> BuiltArtifact:
    return built_for_this_run(tmp_path_factory, pytestconfig)


def sources(folder: Path) -> set[Path]:
    return {path.relative_to(folder) for path in folder.rglob("*.py")}


def test_every_function_and_the_layer_build_with_their_makefile(template: dict[str, Any]) -> None:
    # Given every function and layer of the template
    resources = template["Resources"]
    built_ones = {logical_id for logical_id, r in resources.items() if r.get("Type") in BUILT_TYPES}

    # When we list those that build with a Makefile, and which Makefile
    makefiles = {build.logical_id: build.makefile for build in makefile_builds(template)}

    # Then all of them do: functions with functions/Makefile, the layer with its own
    assert set(makefiles) == built_ones
    assert makefiles.pop(LAYER) == LAYER_SOURCE / "Makefile"
    assert set(makefiles.values()) == {FUNCTIONS_MAKEFILE}


def test_the_build_ships_bytecode_for_every_module(built: BuiltArtifact) -> None:
    # Given a fresh build of every resource (the built fixture)
    # When we look for each .py's bytecode
    problems = {folder.name: bytecode_problems(folder) for folder in sorted(built.root.iterdir())}

    # Then every .py of every function and of the layer has unchecked-hash Python 3.13 bytecode
    assert len(problems) == len(makefile_builds(yaml_parse(TEMPLATE.read_text("utf-8"))))
    assert {folder: found for folder, found in problems.items() if found} == {}
    assert len(sources(built.layer_site)) > 1000, "the layer holds no dependencies"


def test_the_build_ships_the_code_and_nothing_of_the_build(built: BuiltArtifact) -> None:
    # Given a fresh build
    for build in makefile_builds(yaml_parse(TEMPLATE.read_text("utf-8"))):
        output = built.root / build.logical_id
        if build.logical_id == LAYER:
            # Then the layer holds the whole tsunagu package, and not the files that build it
            package = LAYER_SOURCE / "tsunagu"
            assert sources(output / "python" / "tsunagu") == sources(package)
            build_files = {"Makefile", "requirements.txt", "installed_as_pinned.py"}
            assert not build_files & {p.name for p in output.rglob("*")}
        else:
            # Then each function holds its folder's code (app.py), and no Makefile
            shipped = {p.relative_to(output) for p in output.rglob("*") if p.is_file()}
            code = {p for p in shipped if "__pycache__" not in p.parts}
            assert code == {p.relative_to(build.source) for p in build.source.glob("*.py")}


def test_the_layer_installs_the_pinned_versions(built: BuiltArtifact) -> None:
    # Given the layer's pins: every distribution, at requirements/dev.lock's versions
    # (tests/static/test_layer_pins.py)
    pinned = read_pins((LAYER_SOURCE / "requirements.txt").read_text("utf-8"))

    # When we read what the build installed
    installed = {
        canonicalize_name(distribution.name): distribution.version
        for distribution in distributions(path=[str(built.layer_site)])
    }

    # Then it installed exactly those, each in its pinned version: nothing else came along
    assert installed == pinned


def test_the_check_sees_missing_and_checked_bytecode(tmp_path: Path) -> None:
    # Given three modules: one compiled as the Makefiles compile, one with the timestamp-checked
    # bytecode pip or an import would write, one without bytecode
    for name in ("shipped", "timestamped", "bare"):
        (tmp_path / f"{name}.py").write_text("VALUE = 1\n", "utf-8")
    for name, mode in (
        ("shipped", py_compile.PycInvalidationMode.UNCHECKED_HASH),
        ("timestamped", py_compile.PycInvalidationMode.TIMESTAMP),
    ):
        source = tmp_path / f"{name}.py"
        py_compile.compile(str(source), doraise=True, invalidation_mode=mode)

    # When the check looks at them
    problems = bytecode_problems(tmp_path)

    # Then it names the two that would be compiled or checked at a cold start, and only those
    assert len(problems) == 2
    assert problems[0] == f"bare.py: no bare.{sys.implementation.cache_tag}.pyc"
    assert problems[1].startswith("timestamped.py: ") and "not unchecked-hash" in problems[1]
