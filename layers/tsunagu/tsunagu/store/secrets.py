"""The keys that sign mail-tracking tokens, from Secrets Manager.

The secret is JSON: ``{"current": "<key id>", "<key id>": "<key>", ...}``. CloudFormation
generates the first key; rotating means adding a key, pointing ``current`` at it, and removing
the old one once mail signed with it no longer matters.
"""

from __future__ import annotations

import json
from typing import Any

from tsunagu.settings import Settings
from tsunagu.tracking.tokens import TokenSigner


def load_token_signer(settings: Settings) -> TokenSigner:
    # Imported here: only the functions that sign or verify tokens need boto3 at all.
    import boto3

    client: Any = boto3.client(
        "secretsmanager", region_name=settings.region, endpoint_url=settings.aws_endpoint_url
    )
    secret = json.loads(
        client.get_secret_value(SecretId=settings.tracking_secret_arn)["SecretString"]
    )
    current = secret.pop("current")
    return TokenSigner({key_id: key.encode() for key_id, key in secret.items()}, current)
