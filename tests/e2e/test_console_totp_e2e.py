"""Two-step sign-in (TOTP, optional in the user pool) in Debian's Chromium and at the CLI, on the
runtime `make up` starts: a sales rep, whose menu has only what the role may read, turns TOTP on
from Settings with an authenticator app's first code, then signs in with a code (a wrong one
refused, in words) in the console and at the CLI, and turns it off; a user of a pool that
requires TOTP sets it up while signing in for the first time; an admin turns off the two-step
sign-in of a user who lost their phone, from the Users list.

The runtime's Cognito checks codes against the machine's clock, as an authenticator app counts
time (tsunagu_local.totp): a code is made here the moment before it is typed. So that a loaded
machine, slow between the two, cannot fail these tests, this runtime takes a code from the
DRIFT_STEPS steps of 30 s either side of the present one (ten minutes), and a wrong code is one
no step of that window shows."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP
from playwright.sync_api import Page, expect

from tests.e2e.conftest import RunningTsunagu, add_console_user, console_page, start_tsunagu
from tests.support.browser import Chromium, accessibility_problems
from tsunagu_local.totp import DRIFT_STEPS_VARIABLE

PASSWORD = "Totp-console-2026"
DRIFT_STEPS = 20
"""Steps of 30 s either side of the present one this runtime takes a code from."""
SALES = "sales.sato@example.com"
NEWCOMER = "newcomer.mori@example.com"
ADMIN = "admin.kimura@example.com"
LOST_PHONE = "lost.phone@example.com"


@pytest.fixture(scope="module")
def tsunagu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTsunagu]:
    running = start_tsunagu(
        tmp_path_factory.mktemp("totp"),
        "--no-persist",
        environment={DRIFT_STEPS_VARIABLE: str(DRIFT_STEPS)},
    )
    add_console_user(running, SALES, PASSWORD, "sales")
    yield running
    if running.process.poll() is None:
        running.stop()


def cognito(tsunagu: RunningTsunagu) -> tuple[Any, str]:
    """The runtime's Cognito (moto) and its user pool, as an operator reaches them."""
    from tests.support.runtime import local_client

    state = json.loads((tsunagu.workdir / ".tsunagu" / "runtime.json").read_text())
    environment = state["environment"]
    client = local_client(
        "cognito-idp",
        region=environment["AWS_REGION"],
        endpoint_url=environment["AWS_ENDPOINT_URL"],
        max_attempts=2,
    )
    return client, state["sign_in"]["user_pools"]["AdminUserPool"]


def code_now(secret: str, steps: int = 0) -> str:
    """What an authenticator app holding ``secret`` shows now (or ``steps`` of 30 s from now)."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    at = int(time.time()) + 30 * steps
    return TOTP(key, 6, SHA1(), 30, enforce_key_length=False).generate(at).decode()


def not_the_code(secret: str) -> str:
    """A code no step the runtime takes shows (with a step's margin either side)."""
    taken = {code_now(secret, steps) for steps in range(-DRIFT_STEPS - 1, DRIFT_STEPS + 2)}
    wrong = (int(code_now(secret)) + 500_000) % 1_000_000
    while f"{wrong:06d}" in taken:
        wrong = (wrong + 1) % 1_000_000
    return f"{wrong:06d}"


def sign_in_form(page: Page, tsunagu: RunningTsunagu, email: str, password: str) -> None:
    page.goto(f"{tsunagu.api_url}/console/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_a_sales_rep_turns_totp_on_signs_in_with_a_code_and_turns_it_off(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given a sales rep signed in: the menu has the leads and Settings, nothing sales may not read
    page = console_page(chromium, tsunagu, SALES, PASSWORD)
    menu = page.get_by_role("navigation", name="Main")
    expect(menu.get_by_role("link")).to_have_text(["Leads", "Settings"])

    # When they set up an authenticator app from Settings
    menu.get_by_role("link", name="Settings").click()
    two_step = page.get_by_role("region", name="Two-step sign-in (authenticator app)")
    expect(two_step).to_contain_text("Off: signing in asks for your password only.")
    two_step.get_by_role("button", name="Set up an authenticator app").click()
    secret = two_step.get_by_label("secret key").input_value()
    uri = two_step.get_by_label("otpauth:// link").input_value()
    assert uri.startswith("otpauth://totp/Tsunagu%3Asales.sato%40example.com?")
    assert f"secret={secret}" in uri and "issuer=Tsunagu" in uri
    assert accessibility_problems(page) == []

    # Then a wrong code is refused in words, and the app's code turns TOTP on
    code = two_step.get_by_label("6-digit code from your authenticator app")
    code.fill(not_the_code(secret))
    two_step.get_by_role("button", name="Turn on").click()
    expect(two_step.get_by_role("status")).to_contain_text("That code is not the one")
    expect(two_step).to_contain_text("Off: signing in asks for your password only.")
    code.fill(code_now(secret))
    two_step.get_by_role("button", name="Turn on").click()
    expect(two_step).to_contain_text("On: signing in asks for a code.")

    # When they sign out and in again: the password, then a code (a wrong one refused first)
    page.get_by_role("button", name="Sign out").click()
    sign_in_form(page, tsunagu, SALES, PASSWORD)
    expect(page.get_by_role("heading", level=2)).to_have_text(
        "Enter the code from your authenticator app"
    )
    asked = page.get_by_label("6-digit code from your authenticator app")
    asked.fill(not_the_code(secret))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not the one")
    assert accessibility_problems(page) == []
    asked.fill(code_now(secret))
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("header.top")).to_contain_text(SALES)

    # And at the CLI: without the code, or with a wrong one, not signed in; with it, signed in
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD)
    asked_for = ("api", "sign-in", SALES, "--password-file", str(password_file))
    wrong = tsunagu.cli(*asked_for, "--code", not_the_code(secret))
    assert wrong.returncode != 0 and "not the one your authenticator app shows" in wrong.stderr
    signed = tsunagu.cli(*asked_for, "--code", code_now(secret))
    assert signed.returncode == 0, signed.stderr
    me = json.loads(tsunagu.cli("api", "get", "/admin/me").stdout)
    assert (me["email"], me["role"]) == (SALES, "sales")

    # When they turn it off (the confirmation accepted), a sign-in asks for the password alone
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    two_step = page.get_by_role("region", name="Two-step sign-in (authenticator app)")
    two_step.get_by_role("button", name="Turn off").click()
    expect(two_step).to_contain_text("Off: signing in asks for your password only.")
    plain = tsunagu.cli(*asked_for)
    assert plain.returncode == 0, plain.stderr


def test_an_admin_turns_off_the_two_step_sign_in_of_a_user_who_lost_their_phone(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given a marketer whose sign-in asks for an authenticator app's code (set up with her own
    # access token and the app's first code, as Settings does)
    add_console_user(tsunagu, ADMIN, PASSWORD, "admin")
    add_console_user(tsunagu, LOST_PHONE, PASSWORD, "marketer")
    client, pool = cognito(tsunagu)
    state = json.loads((tsunagu.workdir / ".tsunagu" / "runtime.json").read_text())
    app = state["sign_in"]["clients"]["AdminConsoleClient"]

    def password_sign_in() -> dict[str, Any]:
        answer: dict[str, Any] = client.initiate_auth(
            ClientId=app,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": LOST_PHONE, "PASSWORD": PASSWORD},
        )
        return answer

    token = password_sign_in()["AuthenticationResult"]["AccessToken"]
    secret = client.associate_software_token(AccessToken=token)["SecretCode"]
    client.verify_software_token(AccessToken=token, UserCode=code_now(secret))
    client.set_user_mfa_preference(
        AccessToken=token, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    assert password_sign_in()["ChallengeName"] == "SOFTWARE_TOKEN_MFA"

    # When she has lost her phone and an admin turns it off from the Users list (confirmed)
    page = console_page(chromium, tsunagu, ADMIN, PASSWORD, at="settings")
    row = page.get_by_role("row").filter(has_text=LOST_PHONE)
    row.get_by_role("button", name="Turn off two-step sign-in").click()

    # Then the console says so, and her password alone signs her in
    expect(page.get_by_text(f"Two-step sign-in is off for {LOST_PHONE}")).to_be_visible()
    assert "AuthenticationResult" in password_sign_in()
    found = client.admin_get_user(UserPoolId=pool, Username=LOST_PHONE)
    assert "SOFTWARE_TOKEN_MFA" not in (found.get("UserMFASettingList") or [])
    assert accessibility_problems(page) == []


def test_in_a_pool_that_requires_totp_a_new_user_sets_it_up_while_signing_in(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given the pool made to require TOTP (as an operator could: the template makes it
    # optional) and a user invited with a temporary password
    client, pool = cognito(tsunagu)
    client.set_user_pool_mfa_config(
        UserPoolId=pool,
        SoftwareTokenMfaConfiguration={"Enabled": True},
        MfaConfiguration="ON",
    )
    try:
        client.admin_create_user(
            UserPoolId=pool,
            Username=NEWCOMER,
            TemporaryPassword="Temporary-2026-pw",
            MessageAction="SUPPRESS",
            UserAttributes=[
                {"Name": "email", "Value": NEWCOMER},
                {"Name": "email_verified", "Value": "true"},
            ],
        )
        client.admin_add_user_to_group(UserPoolId=pool, Username=NEWCOMER, GroupName="viewer")
        page = chromium.new_context(locale="en-GB").new_page()

        # When they sign in, choose a password, and are asked to set an authenticator app up
        sign_in_form(page, tsunagu, NEWCOMER, "Temporary-2026-pw")
        page.get_by_label("New password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", level=2)).to_have_text("Set up two-step sign-in")
        secret = page.get_by_label("secret key").input_value()
        assert page.get_by_label("otpauth:// link").input_value().startswith("otpauth://totp/")

        # Then the app's first code signs them in
        page.get_by_label("6-digit code from your authenticator app").fill(code_now(secret))
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("header.top")).to_contain_text(NEWCOMER)
    finally:
        client.set_user_pool_mfa_config(
            UserPoolId=pool,
            SoftwareTokenMfaConfiguration={"Enabled": True},
            MfaConfiguration="OPTIONAL",
        )
