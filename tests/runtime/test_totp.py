"""The runtime's Cognito checks two-step sign-in (TOTP) codes, as Cognito does: a user sets an
authenticator app up with its first code and then signs in with a code; a wrong code, or one
from well outside the present 30-second step, is refused. moto alone takes any code.

Time here is the machine's clock as moto reads it, held still for each test, so a step never
ends between making a code and checking it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from tsunagu_local.totp import check_totp_codes

EMAIL = "totp.user@example.com"
PASSWORD = "Totp-test-2026-x"
NOW = 1_796_000_015.0
"""2026-11-29T00:40:15Z, 15 s into a step."""


def code_at(secret: str, at: float) -> str:
    """What an authenticator app holding ``secret`` shows at ``at``."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    totp = TOTP(key, 6, SHA1(), 30, enforce_key_length=False)
    return totp.generate(int(at)).decode()


class HeldClock:
    """moto's ``time`` module in its TOTP check, held at one instant."""

    def __init__(self, at: float) -> None:
        self.at = at

    def time(self) -> float:
        return self.at


@pytest.fixture
def cognito(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """A pool with optional TOTP and one confirmed user; the runtime's check installed for this
    test only (monkeypatch puts moto's own functions back after it)."""
    import moto.cognitoidp.models as models
    import moto.cognitoidp.utils as utils
    from moto import mock_aws

    monkeypatch.setattr(models, "verify_totp", models.verify_totp)
    monkeypatch.setattr(
        models,
        "get_cognito_idp_user_pool_enable_totp",
        models.get_cognito_idp_user_pool_enable_totp,
    )
    monkeypatch.setattr(utils, "time", HeldClock(NOW))
    check_totp_codes()
    with mock_aws():
        client = boto3.client("cognito-idp", region_name="ap-northeast-1")
        pool = client.create_user_pool(
            PoolName="totp-test", UsernameAttributes=["email"], MfaConfiguration="OPTIONAL"
        )["UserPool"]["Id"]
        app = client.create_user_pool_client(
            UserPoolId=pool, ClientName="console", ExplicitAuthFlows=["USER_PASSWORD_AUTH"]
        )["UserPoolClient"]["ClientId"]
        client.admin_create_user(UserPoolId=pool, Username=EMAIL, MessageAction="SUPPRESS")
        client.admin_set_user_password(
            UserPoolId=pool, Username=EMAIL, Password=PASSWORD, Permanent=True
        )
        yield client, app


def sign_in(client: Any, app: str) -> dict[str, Any]:
    answer: dict[str, Any] = client.initiate_auth(
        ClientId=app,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": EMAIL, "PASSWORD": PASSWORD},
    )
    return answer


def refused_code(call: Any) -> str:
    with pytest.raises(ClientError) as refused:
        call()
    return str(refused.value.response["Error"]["Code"])


def test_a_user_turns_totp_on_with_the_apps_first_code_and_then_signs_in_with_a_code(
    cognito: tuple[Any, str],
) -> None:
    client, app = cognito
    # Given a signed-in user, who asks for a secret for an authenticator app
    access = sign_in(client, app)["AuthenticationResult"]["AccessToken"]
    secret = client.associate_software_token(AccessToken=access)["SecretCode"]

    # When they confirm it with a wrong code, then with the code the app shows, and turn it on
    shown = code_at(secret, NOW)
    not_shown = f"{(int(shown) + 1) % 1_000_000:06d}"
    wrong = refused_code(
        lambda: client.verify_software_token(AccessToken=access, UserCode=not_shown)
    )
    verified = client.verify_software_token(AccessToken=access, UserCode=shown)
    client.set_user_mfa_preference(
        AccessToken=access, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
    )

    # Then the wrong code was refused, and a sign-in now asks for a code
    assert wrong == "CodeMismatchException"
    assert verified["Status"] == "SUCCESS"
    user = client.get_user(AccessToken=access)
    assert user["UserMFASettingList"] == ["SOFTWARE_TOKEN_MFA"]
    challenge = sign_in(client, app)
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA"

    # And the code is checked: from two steps ahead refused, from the step before taken
    def answer(code: str, session: str) -> dict[str, Any]:
        answered: dict[str, Any] = client.respond_to_auth_challenge(
            ClientId=app,
            ChallengeName="SOFTWARE_TOKEN_MFA",
            Session=session,
            ChallengeResponses={"USERNAME": EMAIL, "SOFTWARE_TOKEN_MFA_CODE": code},
        )
        return answered

    too_far = refused_code(lambda: answer(code_at(secret, NOW + 60), challenge["Session"]))
    assert too_far == "CodeMismatchException"
    tokens = answer(code_at(secret, NOW - 30), challenge["Session"])["AuthenticationResult"]
    assert tokens["IdToken"]


def test_totp_turned_off_signs_in_with_the_password_alone(cognito: tuple[Any, str]) -> None:
    client, app = cognito
    access = sign_in(client, app)["AuthenticationResult"]["AccessToken"]
    secret = client.associate_software_token(AccessToken=access)["SecretCode"]
    client.verify_software_token(AccessToken=access, UserCode=code_at(secret, NOW))
    on = {"Enabled": True, "PreferredMfa": True}
    client.set_user_mfa_preference(AccessToken=access, SoftwareTokenMfaSettings=on)
    assert sign_in(client, app)["ChallengeName"] == "SOFTWARE_TOKEN_MFA"

    off = {"Enabled": False, "PreferredMfa": False}
    client.set_user_mfa_preference(AccessToken=access, SoftwareTokenMfaSettings=off)

    assert "IdToken" in sign_in(client, app)["AuthenticationResult"]
