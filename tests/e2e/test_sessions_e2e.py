"""Sessions past the ID token's quarter-hour, on the runtime in virtual time (tokens are dated by
its clock there: tsunagu_local.sessions): the CLI and the console renew an expired token with
the refresh token and go on, until an admin disables the user (or their session is otherwise
revoked), and then the console asks for the password again over the screen she was on, with
her unsaved journey still there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import RunningTsunagu, add_console_user, console_page, start_tsunagu
from tests.support.browser import Chromium
from tests.support.runtime import local_client
from tsunagu_local.people import ADMIN_EMAIL, SIGN_IN_FILE

MARKETER = "marketer.sato@example.com"
CLI_MARKETER = "marketer.kato@example.com"
PASSWORD = "Sessions-test-2026"
PAST_THE_TOKEN = "16m"
"""Beyond the ID token's 15 minutes (template.yaml, AdminConsoleClient)."""


@pytest.fixture(scope="module")
def tsunagu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTsunagu]:
    running = start_tsunagu(
        tmp_path_factory.mktemp("sessions"),
        "--no-persist",
        "--virtual-time",
        "--clock-start",
        "2026-12-08T10:00:00+09:00",
    )
    add_console_user(running, MARKETER, PASSWORD, "marketer")
    add_console_user(running, CLI_MARKETER, PASSWORD, "marketer")
    yield running
    if running.process.poll() is None:
        running.stop()


def pass_the_token_s_life(tsunagu: RunningTsunagu) -> None:
    moved = tsunagu.cli("clock", "advance", "--by", PAST_THE_TOKEN)
    assert moved.returncode == 0, moved.stderr


def gateway_status(tsunagu: RunningTsunagu, token: str) -> int:
    status, _, _ = tsunagu.request("GET", "/admin/me", headers={"authorization": f"Bearer {token}"})
    return status


def test_the_cli_s_session_outlives_its_token_until_an_admin_disables_the_user(
    tsunagu: RunningTsunagu,
) -> None:
    # Given the marketer signed in at the CLI, and the admin too (in a token file of their own)
    state = tsunagu.workdir / ".tsunagu"
    (tsunagu.workdir / "password").write_text(PASSWORD)
    signed = tsunagu.cli("api", "sign-in", CLI_MARKETER, "--password-file", "password")
    assert signed.returncode == 0, signed.stderr
    admin = ("--token-file", str(state / "admin-token"))
    signed = tsunagu.cli(
        "api", "sign-in", ADMIN_EMAIL, "--password-file", str(state / SIGN_IN_FILE), *admin
    )
    assert signed.returncode == 0, signed.stderr
    token = (state / "api-token").read_text()
    assert (state / "api-token.refresh").stat().st_mode & 0o777 == 0o600

    # When the ID token's quarter-hour passes (the gateway refuses it now)
    pass_the_token_s_life(tsunagu)
    assert gateway_status(tsunagu, token) == 401

    # Then her next call renews it and goes through
    me = tsunagu.cli("api", "get", "/admin/me")
    assert me.returncode == 0, me.stderr
    assert json.loads(me.stdout)["email"] == CLI_MARKETER
    renewed = (state / "api-token").read_text()
    assert renewed != token and gateway_status(tsunagu, renewed) == 200

    # When the admin disables her (their own token renewed on the way)
    disabled = tsunagu.cli(
        "api", "patch", f"/admin/users/{CLI_MARKETER}", "--data", '{"enabled": false}', *admin
    )
    assert disabled.returncode == 0, disabled.stderr

    # Then the token she holds ends with its quarter-hour, and no renewal follows
    pass_the_token_s_life(tsunagu)
    ended = tsunagu.cli("api", "get", "/admin/me")
    assert ended.returncode == 1
    assert "the session has ended" in ended.stderr and "Traceback" not in ended.stderr


def sign_in_tokens(page: Page) -> dict[str, Any]:
    stored: dict[str, Any] = page.evaluate(
        "() => JSON.parse(sessionStorage.getItem('tsunagu.session'))"
    )
    return stored


def new_journey(page: Page, journey_id: str) -> None:
    page.get_by_label("Journey id").fill(journey_id)
    page.locator('.react-flow__node[data-id="first_mail"]').click()
    page.get_by_label("Mail template").fill("welcome-getting-started")


def stored_graph(page: Page, journey_id: str) -> dict[str, Any]:
    """The journey's stored draft, read from the API with the tab's own (current) token."""
    graph: dict[str, Any] = page.evaluate(
        """async (id) => {
            const token = JSON.parse(sessionStorage.getItem("tsunagu.session")).idToken;
            const answer = await fetch(`/admin/journeys/${id}/graph`,
                                       {headers: {authorization: `Bearer ${token}`}});
            return await answer.json();
        }""",
        journey_id,
    )
    return graph


def test_a_marketer_works_on_past_her_token_s_quarter_hour_without_signing_in(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given the marketer on a new journey's canvas, its first draft saved
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="journeys/new")
    new_journey(page, "past_the_quarter_hour")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_contain_text("it can be published")
    token = sign_in_tokens(page)["idToken"]

    # When the token's quarter-hour passes (the gateway refuses it now) and she edits and saves
    pass_the_token_s_life(tsunagu)
    assert gateway_status(tsunagu, token) == 401
    page.get_by_label("Mail template").fill("welcome-customer-stories")
    page.get_by_role("button", name="Save draft").click()

    # Then it is saved, with no sign-in on the way: the console renewed its token
    expect(page.get_by_role("status")).to_contain_text("Draft saved")
    expect(page.get_by_role("button", name="Sign in")).to_have_count(0)
    assert sign_in_tokens(page)["idToken"] != token
    stored = stored_graph(page, "past_the_quarter_hour")
    assert "welcome-customer-stories" in json.dumps(stored["definition"]), stored


def test_when_her_session_ends_she_signs_in_again_over_her_unsaved_journey(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given the marketer with a journey on the canvas she has not saved yet
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="journeys/new")
    new_journey(page, "kept_over_a_sign_in")

    # When her session is revoked (a global sign-out, as an admin's demotion does) and her
    # token's quarter-hour passes, and she saves
    state = json.loads((tsunagu.workdir / ".tsunagu" / "runtime.json").read_text())
    cognito = local_client(
        "cognito-idp",
        region=state["environment"]["AWS_REGION"],
        endpoint_url=state["environment"]["AWS_ENDPOINT_URL"],
        max_attempts=2,
    )
    pool = state["sign_in"]["user_pools"]["AdminUserPool"]
    cognito.admin_user_global_sign_out(UserPoolId=pool, Username=MARKETER)
    pass_the_token_s_life(tsunagu)
    page.get_by_role("button", name="Save draft").click()

    # Then the console asks for her password, saying her work is kept
    expect(page.get_by_text("Your session has ended")).to_be_visible()
    expect(page.get_by_label("E-mail")).to_have_value(MARKETER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # And signed in again, she is back on her canvas with the journey as she left it, and saves
    expect(page.get_by_label("Journey id")).to_have_value("kept_over_a_sign_in")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_contain_text("it can be published")
    stored = stored_graph(page, "kept_over_a_sign_in")
    assert "welcome-getting-started" in json.dumps(stored["definition"]), stored
