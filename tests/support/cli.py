"""The ``tsunagu`` CLI run in the test's own process against the moto stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import AwsStack


def runtime_here(aws: AwsStack, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``folder`` made the working directory, with a ``.tsunagu/runtime.json`` naming the test
    stack as ``make up`` leaves one: ``tsunagu.cli.main`` run from it talks to moto in-process."""
    (folder / ".tsunagu").mkdir(exist_ok=True)
    (folder / ".tsunagu" / "runtime.json").write_text(
        json.dumps({"environment": aws.environment, "functions": {}})
    )
    monkeypatch.chdir(folder)
    return folder
