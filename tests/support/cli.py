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
    # tsunagu.cli's _local_settings puts runtime.json's environment into os.environ for good (a
    # CLI is a process of its own); here it outlived the test: a stack on set_clock's virtual
    # time left TSUNAGU_CLOCK_START behind, and every later handler on the xdist worker ran two
    # weeks in the past (test_journey_waiting failed after test_tracking_server_posts). Set
    # through monkeypatch first, each key is put back as it was when the test ends.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for key, value in aws.environment.items():
        monkeypatch.setenv(key, value)
    return folder
