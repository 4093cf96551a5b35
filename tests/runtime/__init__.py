"""The embedded local runtime (local/tsunagu_local), tested against a fixture template.

The fixture (tests/fixtures/runtime_stack) is not the product's template: it has functions,
routes, tables and a state machine of its own, so these tests prove the runtime's generic
behaviour. The runtime is started the way a user starts it (``python -m tsunagu_local``) as a
subprocess, and spoken to over HTTP on 127.0.0.1 and through boto3 pointed at its moto endpoint.

Tests that measure simulated time start it in virtual time (``virtual_time=True``): the clock
stands still until the test moves it (``RunningRuntime.advance``), so every instant they assert
is exact, however fast or loaded the machine is.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

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
# Generous upper bounds only: a loaded machine starts and stops the runtime slowly.
START_TIMEOUT_SECONDS = 600.0
STOP_TIMEOUT_SECONDS = 60.0
SIGINT_AGAIN_SECONDS = 5.0
# Real seconds the runtime may take to settle the work of one advance of its virtual clock.
ADVANCE_TIMEOUT_SECONDS = 60.0
SCALED_CLOCK_KEYS = ("TSUNAGU_CLOCK_START", "TSUNAGU_CLOCK_EPOCH", "TSUNAGU_TIME_SCALE")


class RuntimeDidNotStart(Exception):
    """The runtime exited, or wrote no runtime.json in time; carries its output."""


class ClockRefused(Exception):
    """``POST /_local/clock`` did not answer 200: carries the status and the runtime's answer."""

    def __init__(self, status: int, answer: Any) -> None:
        message = answer.get("message") if isinstance(answer, dict) else answer
        super().__init__(f"{status}: {message}")
        self.status = status
        self.answer = answer


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

    @property
    def virtual(self) -> bool:
        """Started with --virtual-time: functions are told the clock's URL, not a scale."""
        return "TSUNAGU_CLOCK_URL" in self.environment

    def clock(self) -> dict[str, Any]:
        """``GET /_local/clock``: the clock's state (mode, now, and in virtual time limit,
        work_in_flight, settled, timers, next_due, jumps)."""
        reply = self.http("GET", "/_local/clock")
        assert reply.status == 200, (reply.status, reply.body)
        state: dict[str, Any] = reply.json()
        return state

    def clock_request(self, body: bytes, *, method: str = "POST", timeout: float = 30) -> HttpReply:
        """A raw request to ``/_local/clock``, whatever it answers (for testing its answers)."""
        return self.http(
            method,
            "/_local/clock",
            body=body,
            headers={"Content-Type": "application/json"},
            timeout=timeout,
        )

    def advance(self, **body: Any) -> dict[str, Any]:
        """``POST /_local/clock`` with ``body`` (one of to=ISO, by="3d", business_days=N,
        until_idle=True, settle=True); returns the clock's state once time got there and all
        work settled. Raises ClockRefused on any answer but 200."""
        body.setdefault("timeout", ADVANCE_TIMEOUT_SECONDS)
        reply = self.clock_request(json.dumps(body).encode(), timeout=float(body["timeout"]) + 15)
        answer = reply.json()
        if reply.status != 200:
            raise ClockRefused(reply.status, answer)
        state: dict[str, Any] = answer
        return state

    def settle(self) -> dict[str, Any]:
        """Wait for the work in flight to finish, time standing still."""
        return self.advance(settle=True)

    def simulated_now(self, at: float | None = None) -> datetime:
        """The runtime's clock (as it tells its functions) at real time ``at`` (default: now).

        In virtual time it is what ``GET /_local/clock`` says now: real time says nothing of it,
        so ``at`` is refused."""
        if self.virtual:
            if at is not None:
                raise ValueError("virtual time is not a function of real time: no `at`")
            return utc(self.clock()["now"])
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
        timeout: float = 30,
    ) -> HttpReply:
        status, reply_headers, reply = http_request(
            method, self.api_url + path, body, headers, timeout=timeout, follow_redirects=True
        )
        return HttpReply(status, reply_headers, reply)

    def stop(self) -> int:
        """Ctrl-C, as a user stops it; returns the exit code.

        Ctrl-C is pressed again while the runtime has not begun to stop ("stopping..."): its
        main thread waits for the signal in ``Event.wait()`` without a timeout, so a SIGINT the
        OS hands to another of its threads is only acted on when another one comes (seen on a
        loaded machine; local/tsunagu_local/__main__.py, ``stopping.wait()``)."""
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while self.process.poll() is None:
            if "\nstopping..." not in self.output():
                self.process.send_signal(signal.SIGINT)
            try:
                return self.process.wait(timeout=min(SIGINT_AGAIN_SECONDS, STOP_TIMEOUT_SECONDS))
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    self.process.kill()
                    self.process.wait(timeout=5)
                    raise
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)


def start_runtime(
    template: Path,
    state_dir: Path,
    *,
    time_scale: float = TIME_SCALE,
    virtual_time: bool = False,
    clock_start: str = CLOCK_START,
) -> RunningRuntime:
    """Start ``python -m tsunagu_local`` on ``template`` and wait until it is up.

    Its clock starts at ``clock_start``: scaled by ``time_scale``, or with ``virtual_time``
    standing still until the test moves it (``time_scale`` is then unused).
    It runs in Asia/Tokyo on purpose: the runtime must force UTC itself.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    output_path = state_dir / "output.log"
    environment = runtime_environment()
    clock = ("--virtual-time",) if virtual_time else ("--time-scale", f"{time_scale:g}")
    command = runtime_command(
        template,
        state_dir,
        free_port(),
        "--no-persist",
        "--no-demo",
        *clock,
        "--clock-start",
        clock_start,
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


def stack_variant(
    folder: Path,
    change: Callable[[dict[str, Any]], None],
    functions: dict[str, Path] | None = None,
) -> Path:
    """The fixture stack copied into ``folder``/stack, its template changed by ``change``, with
    ``functions`` (folder name -> code folder) added beside the fixture's functions."""
    template = yaml_parse((FIXTURE_STACK / "template.yaml").read_text(encoding="utf-8"))
    change(template)
    stack = folder / "stack"
    for name in ("functions", "statemachines"):
        shutil.copytree(FIXTURE_STACK / name, stack / name)
    for name, code in (functions or {}).items():
        shutil.copytree(code, stack / "functions" / name)
    path = stack / "template.json"  # JSON is YAML: the intrinsics stay in their long form
    path.write_text(json.dumps(template, indent=2), encoding="utf-8")
    return path
