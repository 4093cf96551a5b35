"""The local runtime started the way `make up` starts it, in a subprocess, on free ports."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.support.browser import Chromium, chromium, module_chromium  # noqa: F401 (fixtures)
from tests.support.runtime import http_request, runtime_command, runtime_environment, tsunagu_cli
from tsunagu_local.runtime import free_port

START_TIMEOUT = 600
"""A bound for a runtime that never comes up (one that exits is seen at once), not a measure:
under two busy loops and other runs beside, starting took over 60 s (tests/journeys/harness.py)."""


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
        return http_request(method, self.api_url + path, body, headers)

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
        return tsunagu_cli(self.workdir, *args)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)


def start_tsunagu(
    workdir: Path, *extra: str, environment: Mapping[str, str] | None = None
) -> RunningTsunagu:
    """Start `tsunagu-local` as `make up` does, from `workdir`, and wait until it serves
    (``environment``: variables the runtime gets beyond `make up`'s)."""
    port = free_port()
    process = subprocess.Popen(
        runtime_command(ROOT / "template.yaml", workdir / ".tsunagu", port, *extra),
        cwd=workdir,
        env={**runtime_environment(), **(environment or {})},
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


def start_on_virtual_time(workdir: Path, clock_start: str) -> RunningTsunagu:
    """`make up` on virtual time, its clock standing at ``clock_start`` until a test moves it,
    keeping nothing."""
    return start_tsunagu(workdir, "--no-persist", "--virtual-time", "--clock-start", clock_start)


@pytest.fixture(scope="module")
def tsunagu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTsunagu]:
    running = start_tsunagu(tmp_path_factory.mktemp("make-up"), "--no-persist")
    yield running
    if running.process.poll() is None:
        running.stop()


def tracked_links(tsunagu: RunningTsunagu, email: str, *extra: str) -> dict[str, Any]:
    made = tsunagu.cli(
        "tracking",
        "links",
        email,
        "--url",
        "https://www.example.com/pricing",
        "--url",
        "https://www.example.com/case-study",
        *extra,
    )
    assert made.returncode == 0, made.stderr
    links: dict[str, Any] = json.loads(made.stdout)
    # The runtime's own URL, whatever port it has (no --api given: it printed port 3000 once)
    urls = [u for value in links.values() for u in (value if isinstance(value, list) else [value])]
    signed = [u for u in urls if isinstance(u, str) and "://" in u]
    assert signed and all(u.startswith(tsunagu.api_url + "/") for u in signed), signed
    return links


def console_page(
    browser: Chromium,
    tsunagu: RunningTsunagu,
    email: str,
    password: str,
    *,
    locale: str = "en-GB",
    at: str = "",
    prompt_answer: str = "",
    bypass_csp: bool = True,
) -> Any:
    """A browser signed in to the console as ``email``, on ``#/<at>`` (the lead list when
    empty), with "are you sure?" confirmations accepted and a question ("why?") answered with
    ``prompt_answer``. In Tokyo's time zone, as a Japanese
    marketer's; the console's CSP is bypassed so that axe-core can be put into the page, unless
    ``bypass_csp`` is false (the CSP enforced, as a real browser does: what it blocks fails)."""
    import re

    from playwright.sync_api import expect

    context = browser.new_context(
        locale=locale,
        timezone_id="Asia/Tokyo",
        viewport={"width": 1500, "height": 1000},
        bypass_csp=bypass_csp,
    )
    page = context.new_page()
    page.on(
        "dialog",
        lambda dialog: dialog.accept(prompt_answer) if dialog.type == "prompt" else dialog.accept(),
    )
    page.goto(f"{tsunagu.api_url}/console/#/{at}" if at else f"{tsunagu.api_url}/console/")
    words = {"ja-JP": ("メールアドレス", "パスワード", "ログイン")}
    email_label, password_label, button = words.get(locale, ("E-mail", "Password", "Sign in"))
    page.get_by_label(email_label).fill(email)
    page.get_by_label(password_label).fill(password)
    page.get_by_role("button", name=button).click()
    expect(page.locator("header.top")).to_contain_text(email)
    # The app goes on to the lead list by itself: a screen opened before it has would be undone
    page.wait_for_url(re.compile(f"#/{re.escape(at) if at else 'leads'}$"))
    return page


def add_console_user(tsunagu: RunningTsunagu, email: str, password: str, role: str) -> None:
    """Someone who signs in to the console with ``role``, in the runtime's own user pool."""
    from tests.support.runtime import local_client
    from tsunagu_local.people import add_user

    state = json.loads((tsunagu.workdir / ".tsunagu" / "runtime.json").read_text())
    environment = state["environment"]
    cognito = local_client(
        "cognito-idp",
        region=environment["AWS_REGION"],
        endpoint_url=environment["AWS_ENDPOINT_URL"],
        max_attempts=2,
    )
    add_user(cognito, state["sign_in"]["user_pools"]["AdminUserPool"], email, password, role)


def admin_password(tsunagu: RunningTsunagu) -> str:
    from tsunagu_local.people import SIGN_IN_FILE

    return (tsunagu.workdir / ".tsunagu" / SIGN_IN_FILE).read_text().strip()
