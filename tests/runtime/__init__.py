"""The embedded local runtime (local/tsunagu_local), tested against a fixture template.

The fixture (tests/fixtures/runtime_stack) is not the product's template: it has functions,
routes, tables and a state machine of its own, so these tests prove the runtime's generic
behaviour. The runtime is started the way a user starts it (``python -m tsunagu_local``) as a
subprocess, and spoken to over HTTP on 127.0.0.1 and through boto3 pointed at its moto endpoint.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

from tests.support.runtime import (
    RuntimeState,
    http_request,
    local_client,
    runtime_command,
    runtime_environment,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_STACK = ROOT / "tests" / "fixtures" / "runtime_stack"
REGION = "ap-northeast-1"
ACCOUNT_ID = "123456789012"
STAGE = "local"  # the runtime deploys every template as stage "local"
CLOCK_START = "2026-12-04T09:00:00Z"
TIME_SCALE = 3600.0
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


class RuntimeDidNotStart(Exception):
    """The runtime exited, or wrote no runtime.json in time; carries its output."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def physical_name(logical_id: str) -> str:
    """The name the runtime gives a resource the template does not name."""
    return f"tsunagu-{STAGE}-{logical_id}"


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RunningRuntime(RuntimeState):
    process: subprocess.Popen[bytes]
    state_dir: Path
    output_path: Path
    state: dict[str, Any]
    launched_at: float
    """time.time() just before the process was started."""
    ready_at: float
    """time.time() when runtime.json appeared."""
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoint_url(self) -> str:
        return self.environment["AWS_ENDPOINT_URL"]

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def client(self, service: str, **config: Any) -> Any:
        key = f"{service}{sorted(config.items())}"
        if key not in self._clients:
            self._clients[key] = local_client(
                service, region=REGION, endpoint_url=self.endpoint_url, max_attempts=1, **config
            )
        return self._clients[key]

    def simulated_now(self, at: float | None = None) -> datetime:
        """The runtime's clock (as it tells its functions) at real time ``at`` (default: now)."""
        start = datetime.fromisoformat(self.environment["TSUNAGU_CLOCK_START"])
        epoch = float(self.environment["TSUNAGU_CLOCK_EPOCH"])
        scale = float(self.environment["TSUNAGU_TIME_SCALE"])
        real = time.time() if at is None else at
        return start + timedelta(seconds=(real - epoch) * scale)

    def http(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> HttpReply:
        status, reply_headers, reply = http_request(
            method, self.api_url + path, body, headers, timeout=10, follow_redirects=True
        )
        return HttpReply(status, reply_headers, reply)

    def stop(self) -> int:
        """Ctrl-C, as a user stops it; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
            raise

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)


def start_runtime(
    template: Path, state_dir: Path, *, time_scale: float = TIME_SCALE
) -> RunningRuntime:
    """Start ``python -m tsunagu_local`` on ``template`` and wait until it is up.

    It runs in Asia/Tokyo on purpose: the runtime must force UTC itself.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    output_path = state_dir / "output.log"
    environment = runtime_environment()
    command = runtime_command(
        template,
        state_dir,
        free_port(),
        "--no-persist",
        "--no-demo",
        "--time-scale",
        f"{time_scale:g}",
        "--clock-start",
        CLOCK_START,
    )
    launched_at = time.time()
    with output_path.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=state_dir, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    state_file = state_dir / "runtime.json"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not state_file.exists():
        exit_code = process.poll()
        if exit_code is not None or time.monotonic() > deadline:
            if exit_code is None:
                process.kill()
                process.wait(timeout=5)
                why = f"wrote no runtime.json within {START_TIMEOUT_SECONDS:g}s"
            else:
                why = f"exited with code {exit_code}"
            raise RuntimeDidNotStart(
                f"the runtime {why}; its output:\n{output_path.read_text(errors='replace')}"
            )
        time.sleep(0.05)
    state = wait_for(lambda: _read_state(state_file), timeout=5, what="a complete runtime.json")
    return RunningRuntime(process, state_dir, output_path, state, launched_at, time.time())


def _read_state(state_file: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(state_file.read_text())
    except ValueError:
        return None  # still being written
    return state


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
