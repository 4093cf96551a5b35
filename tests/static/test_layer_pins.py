"""The deployed layer is the tested one: layers/tsunagu/requirements.txt, what `sam build`
installs, pins every distribution of the layer, dependencies of dependencies included, at the
version of requirements/dev.lock (the virtualenv's, the tests', the local wheelhouse's).

Pinning only the top-level packages let a deploy's pip take that day's newest botocore, idna and
jmespath. ``make layer-pins`` writes the file (tsunagu_local.layer_pins); the layer's build
checks that pip installed nothing else (layers/tsunagu/installed_as_pinned.py), and
test_build_bytecode that the build from the wheelhouse installs exactly these.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT
from tsunagu_local.layer_pins import (
    DEV_LOCK,
    LAYER_REQUIREMENTS,
    not_as_tested,
    read_pins,
    rendered,
)

CHECK_INSTALLED = ROOT / "layers" / "tsunagu" / "installed_as_pinned.py"


def test_every_distribution_the_layer_installs_is_pinned_at_the_locks_version() -> None:
    # Given the layer's pins and the lock every test runs against
    pins = read_pins(LAYER_REQUIREMENTS.read_text("utf-8"))
    lock = read_pins(DEV_LOCK.read_text("utf-8"))

    # Then nothing the pinned distributions require is left to pip's choice, and each pin is
    # the lock's version
    assert not_as_tested(pins, lock) == {}
    assert "botocore" in pins and "pydantic-core" in pins, "only the top-level packages pinned"


def test_the_layer_pins_are_the_project_dependencies_and_what_they_need() -> None:
    # Given pyproject.toml's dependencies (what the domain layer's code imports)
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    project = [Requirement(text) for text in dependencies["dependencies"]]
    pins = read_pins(LAYER_REQUIREMENTS.read_text("utf-8"))

    # Then each is pinned to one version, and the layer pins it at that version
    unpinned = [str(r) for r in project if not {s.operator for s in r.specifier} <= {"=="}]
    assert project and unpinned == []
    assert {canonicalize_name(r.name): pins.get(canonicalize_name(r.name)) for r in project} == {
        canonicalize_name(r.name): next(iter(r.specifier)).version for r in project
    }


def test_the_layer_pins_are_what_make_layer_pins_writes() -> None:
    assert LAYER_REQUIREMENTS.read_text("utf-8") == rendered(), (
        "layers/tsunagu/requirements.txt is stale: run `make layer-pins`"
    )


def test_the_check_sees_a_floating_dependency_and_a_version_not_tested() -> None:
    # Given the lock, and pins that leave out botocore and take jmespath at another version
    lock = read_pins(DEV_LOCK.read_text("utf-8"))
    pins = {name: lock[name] for name in ("boto3", "s3transfer", "jmespath")}
    pins[canonicalize_name("jmespath")] = "1.1.0"

    # When the check looks at them
    problems = not_as_tested(pins, lock)

    # Then it names both
    assert problems == {
        "botocore": "required by boto3, not pinned; required by s3transfer, not pinned",
        "jmespath": f"pinned 1.1.0, dev.lock has {lock['jmespath']}",
    }


def write_distribution(site: Path, name: str, version: str) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", "utf-8"
    )


def run_check(requirements: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK_INSTALLED), str(requirements), str(site)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_build_stops_when_pip_installed_what_is_not_pinned(tmp_path: Path) -> None:
    # Given pins, and a layer where pip installed one of them at another version and one more
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pins\nbotocore==1.44.5  # via boto3\nJMESPath==1.0.1\n", "utf-8")
    site = tmp_path / "python"
    write_distribution(site, "botocore", "1.44.18")
    write_distribution(site, "jmespath", "1.0.1")
    write_distribution(site, "urllib3", "2.8.0")

    # When the layer's build checks it
    refused = run_check(requirements, site)

    # Then it fails, naming both; and passes once the layer holds exactly the pins
    assert refused.returncode == 1
    assert "botocore pinned 1.44.5, installed 1.44.18" in refused.stderr
    assert "urllib3 2.8.0 installed, not pinned" in refused.stderr
    assert "jmespath" not in refused.stderr
    shutil.rmtree(site / "urllib3-2.8.0.dist-info")
    shutil.rmtree(site / "botocore-1.44.18.dist-info")
    write_distribution(site, "botocore", "1.44.5")
    accepted = run_check(requirements, site)
    assert (accepted.returncode, accepted.stderr) == (0, "")
