"""The people who sign in to the admin API on the local runtime: one admin, made at start-up
with a password kept in the state folder (so it survives restarts, as the data does), and
sign-in as the console does it (the user pool's USER_PASSWORD_AUTH flow)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

ADMIN_EMAIL = "admin@example.com"
SIGN_IN_FILE = "admin-password"
"""The local admin's password, in the state folder (readable by its owner only)."""


def local_password(state_dir: Path) -> str:
    """The local admin's password: made once per state folder, readable by its owner only."""
    path = state_dir / SIGN_IN_FILE
    if path.exists():
        return path.read_text("utf-8").strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    # Upper, lower and digits, as the pool's password policy asks.
    password = f"Ts-{secrets.token_urlsafe(12)}-9a"
    path.touch(mode=0o600)
    path.write_text(password, "utf-8")
    return password


def add_user(cognito: Any, pool_id: str, email: str, password: str, group: str | None) -> None:
    """A user who can sign in at once (no temporary password, no invitation mail)."""
    cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=email,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": email},
            {"Name": "email_verified", "Value": "true"},
        ],
    )
    cognito.admin_set_user_password(
        UserPoolId=pool_id, Username=email, Password=password, Permanent=True
    )
    if group:
        cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=email, GroupName=group)


def sign_in(cognito: Any, client_id: str, email: str, password: str) -> str:
    """The ID token a signed-in user sends as ``Authorization: Bearer ...``."""
    answer = cognito.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    token: str = answer["AuthenticationResult"]["IdToken"]
    return token
