"""Starting the embedded local runtime (``python -m tsunagu_local``) as a subprocess, and talking
to it: shared by tests/runtime, tests/e2e, tests/journeys, tests/qualification and the
benchmarks. Everything here is on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from email.message import Message
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from tsunagu_local.runtime import LocalRuntime


def wait_for[T](
    probe: Callable[[], T | None], *, timeout: float, what: str = "", interval: float = 0.1
) -> T:
    """Call ``probe`` until it returns something truthy; fail after ``timeout`` real seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what or probe}")
        time.sleep(interval)


def runtime_environment() -> dict[str, str]:
    """This process's environment for a runtime subprocess: no AWS endpoint (the runtime points
    its functions at its own moto), and Asia/Tokyo on purpose, as a developer's machine here
    would have it: the runtime must keep its own clock in UTC."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    environment.update({"TZ": "Asia/Tokyo", "PYTHONUNBUFFERED": "1"})
    return environment


def runtime_command(template: Path, state_dir: Path, port: int, *options: str) -> list[str]:
    """``python -m tsunagu_local`` on ``template``, keeping its state in ``state_dir``."""
    return [
        sys.executable,
        "-m",
        "tsunagu_local",
        "--template",
        str(template),
        "--state-dir",
        str(state_dir),
        "--port",
        str(port),
        *options,
    ]


def tsunagu_cli(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``tsunagu`` command, run from the folder ``make up`` was started in."""
    return subprocess.run(
        [sys.executable, "-m", "tsunagu.cli", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer to look at, not to follow."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def http_request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    timeout: float = 15,
    follow_redirects: bool = False,
) -> tuple[int, Message, bytes]:
    """Status, headers (names case-insensitive, as in HTTP) and body, whatever the status."""
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    handlers = () if follow_redirects else (_NoRedirect(),)
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def move_clock(api_url: str, body: dict[str, Any], *, timeout: float) -> dict[str, Any]:
    """``POST /_local/clock`` on a runtime in virtual time (``to``, ``by``, ``business_days``,
    ``until_idle`` or ``settle``): the clock's state once time got there and the work has
    settled, everything due on the way having happened at its own simulated instant.
    ``timeout`` bounds the real seconds the runtime may take (a broken run, not the product)."""
    status, _, answer = http_request(
        "POST",
        f"{api_url}/_local/clock",
        json.dumps({**body, "timeout": timeout}).encode(),
        {"content-type": "application/json"},
        timeout=timeout + 15,
    )
    assert status == 200, f"clock {body}: {status} {answer[:500]!r}"
    state: dict[str, Any] = json.loads(answer)
    assert state["settled"], state
    return state


class RuntimeState:
    """What the runtime's runtime.json says, once it serves (``state``)."""

    state: dict[str, Any]

    @property
    def api_url(self) -> str:
        url: str = self.state["api_url"]
        return url

    @property
    def environment(self) -> dict[str, str]:
        environment: dict[str, str] = self.state["environment"]
        return environment


def local_client(
    service: str, *, region: str, endpoint_url: str, max_attempts: int, **config: Any
) -> Any:
    """A boto3 client of the runtime's moto."""
    make_client: Any = boto3.client
    return make_client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": max_attempts}, **config),
    )


def execution_history(stepfunctions: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of a Step Functions execution's history, oldest first."""
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = stepfunctions.get_execution_history(
            executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


@contextmanager
def runtime_in_process(
    prefix: str, clock_start: datetime, parameters: dict[str, str] | None = None
) -> Iterator[LocalRuntime]:
    """The product's template on a local runtime in this process (a benchmark's: it reads the
    runtime's tables directly), in virtual time from ``clock_start``, with nothing kept;
    ``parameters`` as `make up --parameter` gives them."""
    from tsunagu_local.runtime import LocalRuntime, RuntimeOptions

    options = RuntimeOptions(
        template=Path(__file__).resolve().parents[2] / "template.yaml",
        state_dir=Path(tempfile.mkdtemp(prefix=prefix)),
        api_port=0,
        persist=False,
        virtual_time=True,
        clock_start=clock_start,
        parameters=dict(parameters or {}),
    )
    running = LocalRuntime(options)
    running.start()
    try:
        yield running
    finally:
        running.stop()
