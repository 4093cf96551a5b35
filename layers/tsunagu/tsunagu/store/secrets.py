"""Signing keys from Secrets Manager: mail-tracking tokens, the CRM webhooks, sites' servers.

The secret is JSON: ``{"current": "<key id>", "<key id>": "<key>", ...}``. CloudFormation
generates the first key; rotating means adding a key, pointing ``current`` at it, and removing
the old one once mail signed with it no longer matters.
"""

from __future__ import annotations

import json
from typing import Any

from tsunagu.settings import Settings
from tsunagu.tracking.tokens import TokenSigner


def _secret_json(settings: Settings, secret_arn: str) -> dict[str, Any]:
    # Imported here: only the functions that sign or verify something need boto3 at all.
    import boto3

    client: Any = boto3.client(
        "secretsmanager", region_name=settings.region, endpoint_url=settings.aws_endpoint_url
    )
    secret: dict[str, Any] = json.loads(
        client.get_secret_value(SecretId=secret_arn)["SecretString"]
    )
    return secret


def load_token_signer(settings: Settings) -> TokenSigner:
    secret = _secret_json(settings, settings.tracking_secret_arn)
    current = secret.pop("current")
    return TokenSigner({key_id: key.encode() for key_id, key in secret.items()}, current)


def load_site_signing_key(settings: Settings) -> bytes:
    """The key sites' signing secrets are derived from: ``{"signing_key": "..."}``."""
    if not settings.site_secret_arn:
        raise RuntimeError("TSUNAGU_SITE_SECRET_ARN is not set for this function")
    return str(_secret_json(settings, settings.site_secret_arn)["signing_key"]).encode()


def load_crm_signing_key(settings: Settings) -> bytes:
    """The key both CRM webhooks are signed with: ``{"signing_key": "..."}``."""
    if not settings.crm_secret_arn:
        raise RuntimeError("TSUNAGU_CRM_SECRET_ARN is not set for this function")
    return str(_secret_json(settings, settings.crm_secret_arn)["signing_key"]).encode()
