"""Every package of the domain is installed: pyproject.toml lists packages by name, and one
left out would be missing from a non-editable install (the CLI on an operator's machine)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_in_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    listed = set(project["tool"]["setuptools"]["packages"])
    folders = {
        "tsunagu": ROOT / "layers" / "tsunagu" / "tsunagu",
        "tsunagu_local": ROOT / "local" / "tsunagu_local",
    }
    found = {
        ".".join((top, *init.parent.relative_to(folder).parts))
        for top, folder in folders.items()
        for init in folder.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found - listed == set()
