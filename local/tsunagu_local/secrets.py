"""Creating a template's Secrets Manager secret, as CloudFormation would generate it."""

from __future__ import annotations

import json
import secrets
import string
from typing import Any


def generated_value(props: dict[str, Any]) -> str:
    """The value CloudFormation's GenerateSecretString would produce (letters and digits only)."""
    spec = props.get("GenerateSecretString")
    if spec is None:
        return str(props.get("SecretString", ""))
    length = int(spec.get("PasswordLength", 32))
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += "!#$%&()*+,-.:;<=>?[]^_{|}~"
    generated = "".join(secrets.choice(alphabet) for _ in range(length))
    if "SecretStringTemplate" in spec:
        value = json.loads(spec["SecretStringTemplate"])
        value[spec["GenerateStringKey"]] = generated
        return json.dumps(value)
    return generated


def create_secret(client: Any, name: str, value: str) -> str:
    """Create the secret in moto; returns its ARN (what Ref returns for a secret)."""
    arn: str = client.create_secret(Name=name, SecretString=value)["ARN"]
    return arn
