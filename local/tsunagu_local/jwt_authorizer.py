"""API Gateway's JWT authorizer, on the local gateway: the same checks, in the same order, with
the same answers (HTTP APIs: "Working with JWT authorizers").

A route whose OpenAPI operation names a ``jwt`` security scheme gets the token from its identity
source (``$request.header.Authorization``, with or without ``Bearer``), and is refused 401
unless the token is a JWT signed with a key of the issuer's JWKS (RS256), its ``iss`` is the
configured issuer, its ``aud`` (or an access token's ``client_id``) is one of the audiences,
and it has not expired by the session clock. The verified claims reach the function as API
Gateway passes them: every value a string, a list as ``[a b]``.

The issuer is a user pool of the embedded moto server: its keys are fetched from the pool's
``/.well-known/jwks.json`` there, once. Expiry is judged on the session clock, the clock the
runtime has moto date tokens by (tsunagu_local.sessions: the runtime's when virtual, the
machine's when scaled; in AWS both are the system clock).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ISSUER_HOST = "https://cognito-idp."


class Unauthorized(Exception):
    """401: what API Gateway says in its ``www-authenticate`` header."""


@dataclass
class JwtAuthorizer:
    name: str
    issuer: str
    audiences: frozenset[str]
    header: str
    """The identity source's header, lower case (``authorization``)."""
    moto_endpoint: str
    now: Callable[[], float] = time.time
    """The session clock, in seconds since the epoch."""
    _keys: KeySet | None = field(default=None, repr=False)
    _lock: Lock = field(default_factory=Lock, repr=False)

    @classmethod
    def from_scheme(
        cls,
        name: str,
        scheme: Mapping[str, Any],
        moto_endpoint: str,
        now: Callable[[], float] = time.time,
    ) -> JwtAuthorizer:
        config = scheme["x-amazon-apigateway-authorizer"]
        source = str(config.get("identitySource", "$request.header.Authorization"))
        jwt_config = config["jwtConfiguration"]
        return cls(
            name=name,
            issuer=str(jwt_config["issuer"]),
            audiences=frozenset(str(a) for a in jwt_config.get("audience", [])),
            header=source.removeprefix("$request.header.").lower(),
            moto_endpoint=moto_endpoint,
            now=now,
        )

    def claims(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The verified claims as API Gateway hands them to the function; Unauthorized else."""
        value = headers.get(self.header, "").strip()
        if not value:
            raise Unauthorized("")
        token_text = value[7:].strip() if value[:7].lower() == "bearer " else value
        try:
            token = jwt.decode(token_text, self._key_set(), algorithms=["RS256"])
        except (JoseError, ValueError) as error:
            raise Unauthorized(f'error="invalid_token" error_description="{error}"') from None
        claims = token.claims
        if claims.get("iss") != self.issuer:
            raise Unauthorized('error="invalid_token" error_description="the issuer is not valid"')
        audience = claims.get("aud", claims.get("client_id"))
        audiences = set(audience) if isinstance(audience, list) else {audience}
        if not audiences & self.audiences:
            raise Unauthorized(
                'error="invalid_token" error_description="the audience is not valid"'
            )
        expires = claims.get("exp")
        if not isinstance(expires, int | float) or expires <= self.now():
            raise Unauthorized('error="invalid_token" error_description="the token has expired"')
        return {name: _as_api_gateway_passes(value) for name, value in claims.items()}

    def _key_set(self) -> KeySet:
        with self._lock:
            if self._keys is None:
                if not self.issuer.startswith(ISSUER_HOST):
                    raise Unauthorized(f"{self.issuer} is not a user pool this runtime has")
                pool_id = self.issuer.rsplit("/", 1)[-1]
                url = f"{self.moto_endpoint}/{pool_id}/.well-known/jwks.json"
                with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
                    self._keys = KeySet.import_key_set(json.loads(response.read()))
            return self._keys


def _as_api_gateway_passes(value: Any) -> str:
    if isinstance(value, list):
        return "[" + " ".join(str(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
