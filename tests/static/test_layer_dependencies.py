"""What the deployed code imports must be in the layer: the dev venv has much more (moto, Flask,
the SAM CLI), so a missing pin passes every local test and fails only in AWS."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement

from tests.conftest import ROOT
from tsunagu_local.layer_pins import LAYER_REQUIREMENTS, read_pins

DEPLOYED = [ROOT / "layers" / "tsunagu" / "tsunagu", *sorted((ROOT / "functions").glob("*"))]
FIRST_PARTY = {"tsunagu"}


def imported_top_level_modules(folders: list[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in folders:
        for source in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text("utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], source)
    return found


def layer_distributions() -> set[str]:
    """The layer's pins and everything they require (without extras), by normalised name."""
    todo: list[str] = list(read_pins(LAYER_REQUIREMENTS.read_text("utf-8")))
    seen: set[str] = set()
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        for need in needs:
            requirement = Requirement(need)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def test_every_third_party_import_of_deployed_code_is_in_the_layer() -> None:
    provided = layer_distributions()
    owners = packages_distributions()
    missing = {}
    for module, source in imported_top_level_modules(DEPLOYED).items():
        if module in sys.stdlib_module_names or module in FIRST_PARTY or module == "__future__":
            continue
        distributions = {re.sub(r"[-_.]+", "-", d).lower() for d in owners.get(module, [])}
        if not distributions & provided:
            missing[module] = str(source.relative_to(ROOT))
    assert missing == {}, f"imported by deployed code but not installed by the layer: {missing}"


def test_the_check_sees_a_missing_dependency(tmp_path: Path) -> None:
    # Given code importing something only the dev venv has
    (tmp_path / "app.py").write_text("import moto\nfrom flask import Flask\n")
    modules = imported_top_level_modules([tmp_path])
    # Then the scan finds both, and neither is provided by the layer
    assert {"moto", "flask"} <= modules.keys()
    owners = packages_distributions()
    assert not {d.lower() for d in owners["moto"]} & layer_distributions()
