"""How long the local Cognito's tokens live: as the app client says, in its units, else as
Cognito's defaults (an hour)."""

from __future__ import annotations

from typing import Any

import pytest

from tsunagu_local.sessions import validity_seconds


@pytest.mark.parametrize(
    ("config", "token", "seconds"),
    [
        ({"IdTokenValidity": 15, "TokenValidityUnits": {"IdToken": "minutes"}}, "IdToken", 900),
        ({"AccessTokenValidity": 2, "TokenValidityUnits": {"AccessToken": "hours"}},
         "AccessToken", 7200),
        ({"IdTokenValidity": 2}, "IdToken", 7200),  # no units: hours, as Cognito counts
        ({}, "AccessToken", 3600),  # nothing said: Cognito's hour
        ({"IdTokenValidity": 15, "TokenValidityUnits": {"AccessToken": "minutes"}},
         "IdToken", 54_000),  # another token's unit is not this one's
    ],
)  # fmt: skip
def test_a_token_lives_as_its_app_client_says(
    config: dict[str, Any], token: str, seconds: int
) -> None:
    assert validity_seconds(config, token) == seconds
