"""Sign-in sessions on the local Cognito: tokens live as long as the template's app client says,
on the clock the local gateway judges them by.

moto's Cognito dates every token by the machine's clock and gives each an hour, whatever the
app client's ``IdTokenValidity`` and ``AccessTokenValidity``: a console or CLI that must renew
its token (REFRESH_TOKEN_AUTH) before it expires could not be tried here, nor a disabled user's
session ending when their last token does. The runtime makes each token live as the client says
(in its ``TokenValidityUnits``; Cognito's defaults when it says nothing), dated by the *session
clock*:

- on **virtual** time, the runtime's clock: a token stands still with the rest of the system,
  and moving the clock past its expiry (``tsunagu clock advance --by 16m``) expires it, so a test
  of what happens then depends on no machine's speed;
- on **scaled** time, the machine's: a demo runs an hour of simulated time a second, which would
  expire a quarter-hour token before a person could click anything.

Refresh tokens are moto's: they never expire here, and a global sign-out (AdminUserGlobalSignOut)
revokes them, so that a refresh after it is refused, as in AWS.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from tsunagu_local.clocks import patch_with_clock

SessionClock = Callable[[], float]
"""Seconds since the epoch, as ``time.time`` counts them."""

UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86_400}
# Cognito's own defaults when the app client names no validity: an hour, counted in hours.
DEFAULT_VALIDITY = 1
DEFAULT_UNIT = "hours"
CLAIM_NAMES = {"id": "IdToken", "access": "AccessToken"}
"""moto's ``token_use`` to the client's setting's name."""


def install_session_clock(now: SessionClock) -> None:
    """Date the local pool's tokens by ``now`` and give each the validity its app client has."""
    cognito: Any = importlib.import_module("moto.cognitoidp.models")
    # create_jwt is the one reader of ``time`` in that module: what it reads as ``time.time()``
    # becomes the session clock.
    cognito.time = SimpleNamespace(time=now)

    def make(original: Any) -> Any:
        def create_jwt(
            pool: Any,
            client_id: str,
            username: str,
            token_use: str,
            expires_in: int = 3600,
            extra_data: dict[str, Any] | None = None,
        ) -> tuple[str, int]:
            client = pool.clients.get(client_id)
            if client is not None and token_use in CLAIM_NAMES:
                expires_in = validity_seconds(client.extended_config, CLAIM_NAMES[token_use])
            result: tuple[str, int] = original(
                pool, client_id, username, token_use, expires_in, extra_data
            )
            return result

        return create_jwt

    patch_with_clock(cognito.CognitoIdpUserPool, "create_jwt", make)


def validity_seconds(config: dict[str, Any], token: str) -> int:
    """How long an app client's ``token`` (``IdToken``, ``AccessToken``) lives, in seconds."""
    value = int(config.get(f"{token}Validity") or DEFAULT_VALIDITY)
    unit = str((config.get("TokenValidityUnits") or {}).get(token) or DEFAULT_UNIT)
    return value * UNIT_SECONDS[unit]
