"""Debian's Chromium driven by Playwright for the browser tests (never a browser Playwright
downloads): ``make test`` installs it, and without it these tests fail with what to install.
They never skip."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, expect, sync_playwright

INSTALL_HINT = "install Debian's chromium: sudo apt-get install chromium"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
# How long an action or an assertion waits for the page. Only an upper bound: a page that is
# ready goes on at once, so a generous one costs nothing on an idle machine and keeps a loaded
# one (make test runs two workers beside benchmarks that start interpreters) from failing.
# 30 s was not: beside two busy loops, a 3,000-row list planned in the background took longer.
BROWSER_WAIT_MS = 120_000
PERSONS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Safari/537.36"
)
"""The user agent the tests' browser gives: a person's desktop Chrome. Headless Chromium names
itself HeadlessChrome, as crawlers do, and the snippet's page views from it are judged a
machine's; the tests are about people browsing (one test sets a crawler's on purpose). The
switch reaches every request, sendBeacon's on pagehide too, which Playwright's user_agent
option does not."""
# As the machine's own probe starts it: no GPU, no sandbox (root), and no background connections
# (this machine's network is closed; Chromium would otherwise try Google's hosts at every start).
CHROMIUM_ARGS = [
    f"--user-agent={PERSONS_CHROME}",
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's Chromium: $TSUNAGU_CHROMIUM (set by the Makefile), else /usr/bin/chromium or
    `chromium` on PATH. Missing, the calling test fails with what to install."""
    configured = os.environ.get("TSUNAGU_CHROMIUM")
    candidates = [configured] if configured else [DEFAULT_CHROMIUM, shutil.which("chromium")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        f"no Chromium at {configured or DEFAULT_CHROMIUM} for the browser tests: {INSTALL_HINT}"
        " (or set TSUNAGU_CHROMIUM to its path; `make test` installs it when run as root)",
        pytrace=False,
    )


class Chromium:
    """One headless Chromium for the module, started when a test first asks for a browser
    profile: a missing browser then fails that test, in its body, rather than erroring a
    fixture."""

    def __init__(self) -> None:
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._contexts: list[BrowserContext] = []

    def new_context(self, **options: Any) -> BrowserContext:
        """A fresh browser profile: no cookies from any test before (``options``: Playwright's
        context options, a locale for one)."""
        if self._browser is None:
            executable = chromium_path()
            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                executable_path=executable, args=CHROMIUM_ARGS
            )
        context = self._browser.new_context(**options)
        context.set_default_timeout(BROWSER_WAIT_MS)
        self._contexts.append(context)
        return context

    def close_contexts(self) -> None:
        while self._contexts:
            self._contexts.pop().close()

    def close(self) -> None:
        self.close_contexts()
        if self._browser is not None:
            self._browser.close()
        if self._playwright is not None:
            self._playwright.stop()


@pytest.fixture(scope="module")
def module_chromium() -> Iterator[Chromium]:
    browser = Chromium()
    yield browser
    browser.close()


@pytest.fixture
def chromium(module_chromium: Chromium) -> Iterator[Chromium]:
    """The module's Chromium; the profiles a test opened are closed after it."""
    yield module_chromium
    module_chromium.close_contexts()


SCREENSHOTS_VARIABLE = "TSUNAGU_CONSOLE_SCREENSHOTS"
"""A folder where the console's browser tests also save their screenshots (the README's come
from `TSUNAGU_CONSOLE_SCREENSHOTS=docs/img .venv/bin/python -m pytest tests/e2e -k console`)."""


def screenshot(page: Any, folder: Any, name: str) -> None:
    """The page as it is, in the test's folder (and in $TSUNAGU_CONSOLE_SCREENSHOTS if set)."""
    targets = [Path(folder)]
    if os.environ.get(SCREENSHOTS_VARIABLE):
        targets.append(Path(os.environ[SCREENSHOTS_VARIABLE]))
    for target in targets:
        target.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target / f"{name}.png"), full_page=True)


AXE = Path(__file__).resolve().parents[2] / "console" / "node_modules" / "axe-core" / "axe.min.js"
"""axe-core, from the console's own npm dependencies (make console installs it)."""


def accessibility_problems(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of the page as it is now."""
    page.add_script_tag(path=str(AXE))
    found: dict[str, Any] = page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in found["violations"]
        if v["impact"] in ("serious", "critical")
    ]


# A page's own work (a request to the runtime, React rendering) can take seconds on a loaded
# machine: assertions wait as long as actions do (the contexts' default timeout).
expect.set_options(timeout=BROWSER_WAIT_MS)
