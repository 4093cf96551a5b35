"""Two-step sign-in (TOTP) on the local Cognito: codes are checked, as Cognito checks them.

moto's Cognito knows the software-token calls (AssociateSoftwareToken, VerifySoftwareToken,
SetUserMFAPreference, the SOFTWARE_TOKEN_MFA and MFA_SETUP challenges) but by default takes any
code at all (``MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP``), so a sign-in that sends the wrong code
would pass here and fail in AWS. The runtime turns the check on, and lets a code through from the
30-second step before or after the present one as well as from the present one (RFC 6238 5.2's
allowance for a phone's clock and the time a person takes to type; moto checks the present step
alone, so a code typed as its step ends would be refused).

Codes are read against the machine's clock, never the runtime's simulated one: an authenticator
app on a phone counts real time. What stays unlike AWS: moto gives every user the same secret
(``SecretCode``), where Cognito makes one per user and per setup.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

_INSTALLED_FLAG = "_tsunagu_checks_totp"
DRIFT_STEPS = 1
"""Steps of 30 s either side of the present one a code may come from."""
DRIFT_STEPS_VARIABLE = "TSUNAGU_LOCAL_TOTP_DRIFT_STEPS"
"""A wider allowance than ``DRIFT_STEPS``, for the browser tests only: their code is made the
moment before it is typed, but a loaded machine may take longer than a step between the two, and
a test must not depend on the machine's speed. Never set by `make up`."""


def check_totp_codes() -> None:
    """Make moto's Cognito refuse a wrong TOTP code (see the module's docstring)."""
    from moto.cognitoidp.utils import verify_totp

    # The names moto's Cognito calls them by, imported into its models module
    cognito: Any = importlib.import_module("moto.cognitoidp.models")

    if getattr(cognito.verify_totp, _INSTALLED_FLAG, False):
        return

    drift = int(os.environ.get(DRIFT_STEPS_VARIABLE) or DRIFT_STEPS)

    def verify_with_drift(totp: Any, code: bytes, valid_window: int = 0) -> None:
        verify_totp(totp, code, valid_window=max(valid_window, drift))

    setattr(verify_with_drift, _INSTALLED_FLAG, True)
    cognito.verify_totp = verify_with_drift
    cognito.get_cognito_idp_user_pool_enable_totp = lambda: True
