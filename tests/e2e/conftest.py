"""The local runtime started the way `make up` starts it, in a subprocess, on free ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tsunagu_local.runtime import free_port

START_TIMEOUT = 60


@dataclass
class RunningTsunagu:
    process: subprocess.Popen[str]
    workdir: Path
    api_url: str
    output: list[str] = field(default_factory=list)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Message, bytes]:
        """Status, headers (names case-insensitive, as in HTTP) and body; never follows
        redirects."""
        request = urllib.request.Request(
            self.api_url + path, data=body, headers=headers or {}, method=method
        )
        opener = urllib.request.build_opener(_NoRedirect())
        try:
            with opener.open(request, timeout=15) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def post_json(self, path: str, payload: Any, **headers: str) -> tuple[int, dict[str, Any]]:
        status, _, body = self.request(
            "POST",
            path,
            json.dumps(payload).encode(),
            {"content-type": "application/json", **headers},
        )
        return status, json.loads(body)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The `tsunagu` command, run from the folder `make up` was started in."""
        return subprocess.run(
            [sys.executable, "-m", "tsunagu.cli", *args],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def start_tsunagu(workdir: Path, *extra: str) -> RunningTsunagu:
    """Start `tsunagu-local` as `make up` does, from `workdir`, and wait until it serves."""
    port = free_port()
    env = {**os.environ, "TZ": "Asia/Tokyo", "PYTHONUNBUFFERED": "1"}
    env.pop("AWS_ENDPOINT_URL", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tsunagu_local",
            "--template",
            str(ROOT / "template.yaml"),
            "--state-dir",
            str(workdir / ".tsunagu"),
            "--port",
            str(port),
            *extra,
        ],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = RunningTsunagu(process, workdir, f"http://127.0.0.1:{port}")
    ready = threading.Event()

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            running.output.append(line)
            if "Press Ctrl-C" in line:
                ready.set()

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while not ready.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("tsunagu-local did not start:\n" + "".join(running.output))
    return running


@pytest.fixture(scope="module")
def tsunagu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTsunagu]:
    running = start_tsunagu(tmp_path_factory.mktemp("make-up"), "--no-persist")
    yield running
    if running.process.poll() is None:
        running.stop()
