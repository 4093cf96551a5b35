"""``tsunagu api sign-in|get|post|put|patch|delete``: the admin API from the command line, with a
signed-in person's token instead of the operator's AWS credentials. The same routes (and so the
same use cases, roles and audit log) as the console; what the call answers is printed as JSON.

    tsunagu api sign-in marketer@example.com          # asks for the password (and TOTP code)
    tsunagu api get /admin/leads --query stage=mql
    tsunagu api patch /admin/leads/taro@example.jp --data '{"stage": "sql"}'

The ID token is kept in ``.tsunagu/api-token`` and the refresh token beside it in
``.tsunagu/api-token.refresh`` (both readable by their owner only). The ID token lives a quarter
of an hour (the app client's IdTokenValidity); when the API refuses it (401), the call renews it
once with the refresh token (REFRESH_TOKEN_AUTH) and is sent again, so the session lasts as long
as the refresh token: 12 hours, or until an admin disables or demotes the user, which revokes it
(AdminUserGlobalSignOut)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN_FILE = Path(".tsunagu") / "api-token"
REFRESH_SUFFIX = ".refresh"
"""The refresh token's file: the ID token's name with this after it."""
METHODS = ("get", "post", "put", "patch", "delete")
TIMEOUT_SECONDS = 60
LOCAL_KEYS = dict(
    zip(("aws_access_key_id", "aws_secret_access_key"), ("testing",) * 2, strict=True)
)
"""moto's fixed local credentials (the local runtime's, as the rest of the CLI uses)."""


class ApiCliError(Exception):
    """Printed without a traceback by the CLI's main."""


@dataclass(frozen=True)
class ApiTarget:
    api_url: str
    client_id: str
    region: str
    cognito_endpoint: str | None
    """The local runtime's moto; None in AWS."""


def target(args: argparse.Namespace) -> ApiTarget:
    """Where the API and its user pool are: the local runtime's state file, or the stack's
    outputs (``--stack``)."""
    if args.stack:
        import boto3

        cloudformation = boto3.client("cloudformation", region_name=args.region)
        stack = cloudformation.describe_stacks(StackName=args.stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        return ApiTarget(
            _checked(outputs["ApiUrl"]),
            outputs["AdminConsoleClientId"],
            cloudformation.meta.region_name,
            None,
        )
    from tsunagu.cli import LOCAL_STATE

    for folder in [Path.cwd(), *Path.cwd().parents]:
        state_file = folder / LOCAL_STATE
        if state_file.exists():
            state = json.loads(state_file.read_text("utf-8"))
            environment = state["environment"]
            clients = (state.get("sign_in") or {}).get("clients") or {}
            if "AdminConsoleClient" not in clients:
                raise ApiCliError("this runtime's template has no sign-in (AdminConsoleClient)")
            return ApiTarget(
                _checked(state["api_url"]),
                clients["AdminConsoleClient"],
                environment["AWS_REGION"],
                environment["AWS_ENDPOINT_URL"],
            )
    raise ApiCliError("the local runtime is not running here: start it with `make up`")


def _checked(url: str) -> str:
    """The API's address, refused unless it is https (a token goes with every call), or http to
    this machine's own runtime."""
    parts = urllib.parse.urlsplit(url)
    local = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")
    if parts.scheme != "https" and not local:
        raise ApiCliError(f"the API's address {url!r} is neither https nor this machine's")
    return url.rstrip("/")


def sign_in(args: argparse.Namespace) -> int:
    where = target(args)
    password = (
        Path(args.password_file).read_text("utf-8").strip()
        if args.password_file
        else getpass.getpass(f"password for {args.email}: ")
    )
    cognito = _cognito(where)
    try:
        answer = cognito.initiate_auth(
            ClientId=where.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": args.email, "PASSWORD": password},
        )
    except cognito.exceptions.NotAuthorizedException:
        raise ApiCliError("the e-mail or the password is wrong") from None
    if answer.get("ChallengeName") == "SOFTWARE_TOKEN_MFA":
        answer = _answer_code(cognito, where, args, answer["Session"])
    result = answer.get("AuthenticationResult")
    if result is None:
        # A new user's first sign-in asks for a new password (NEW_PASSWORD_REQUIRED); a pool
        # that requires TOTP asks a user without it to set it up (MFA_SETUP): both are the
        # console's sign-in form's, which then signs in here too.
        raise ApiCliError(
            f"sign-in needs one more step ({answer.get('ChallengeName')}): sign in once in the "
            "console, which asks for it, then here again"
        )
    path = Path(args.token_file)
    _keep(path, result["IdToken"])
    _keep(_refresh_file(path), result["RefreshToken"])
    print(f"signed in as {args.email}; the token is in {path}, renewed as it expires")
    return 0


def _cognito(where: ApiTarget) -> Any:
    import boto3

    make_client: Any = boto3.client  # typed per service literal and keyword
    # The local pool's moto takes any key (LOCAL_KEYS); in AWS, InitiateAuth needs none at all.
    keys = LOCAL_KEYS if where.cognito_endpoint else {}
    return make_client(
        "cognito-idp", region_name=where.region, endpoint_url=where.cognito_endpoint, **keys
    )


def _keep(path: Path, token: str) -> None:
    """A token in ``path``, readable by its owner only (made so before the token is in it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(token, "utf-8")


def _refresh_file(token_file: Path) -> Path:
    return token_file.with_name(token_file.name + REFRESH_SUFFIX)


def _renewed(where: ApiTarget, token_file: Path) -> str:
    """A new ID token from the stored refresh token (kept in ``token_file``); ApiCliError when
    there is none, or the pool refuses it: expired, or revoked by a sign-out everywhere (an admin
    disabled or demoted the user)."""
    refresh_file = _refresh_file(token_file)
    if not refresh_file.exists():
        raise ApiCliError("the token has expired: run `tsunagu api sign-in EMAIL` again")
    cognito = _cognito(where)
    try:
        answer = cognito.initiate_auth(
            ClientId=where.client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": refresh_file.read_text("utf-8").strip()},
        )
    except cognito.exceptions.NotAuthorizedException:
        raise ApiCliError(
            "the session has ended (expired, or you were signed out everywhere): run "
            "`tsunagu api sign-in EMAIL` again"
        ) from None
    token: str = answer["AuthenticationResult"]["IdToken"]
    _keep(token_file, token)
    return token


def _answer_code(cognito: Any, where: ApiTarget, args: argparse.Namespace, session: str) -> Any:
    """The user has two-step sign-in on: the code their authenticator app shows now."""
    code = args.code or input("code from your authenticator app: ")
    try:
        return cognito.respond_to_auth_challenge(
            ClientId=where.client_id,
            ChallengeName="SOFTWARE_TOKEN_MFA",
            Session=session,
            ChallengeResponses={"USERNAME": args.email, "SOFTWARE_TOKEN_MFA_CODE": code.strip()},
        )
    except cognito.exceptions.CodeMismatchException:
        raise ApiCliError("that code is not the one your authenticator app shows now") from None
    except cognito.exceptions.NotAuthorizedException:
        raise ApiCliError("the sign-in took too long: sign in again") from None


def call(args: argparse.Namespace) -> int:
    where = target(args)
    path = Path(args.token_file)
    if not path.exists():
        raise ApiCliError("not signed in: run `tsunagu api sign-in EMAIL` first")
    if not args.path.startswith("/admin/") and args.path != "/admin":
        raise ApiCliError(f"{args.path!r} is not an admin API path (they start with /admin/)")
    query = dict(_pair(pair) for pair in args.query or [])
    url = where.api_url + args.path + (f"?{urllib.parse.urlencode(query)}" if query else "")
    body = _body(args.data)
    status, text = _send(args.method, url, body, path.read_text("utf-8").strip())
    if status == 401:
        # The gateway refuses an expired token before anything runs: renewed, the call is sent
        # again, once (a second 401 is the answer).
        status, text = _send(args.method, url, body, _renewed(where, path))
    try:
        shown: Any = json.loads(text) if text else None
    except ValueError:
        shown = text
    if isinstance(shown, str):
        sys.stdout.write(shown)
    else:
        print(json.dumps(shown, indent=2, ensure_ascii=False))
    if status >= 400:
        print(f"tsunagu: the API answered {status}", file=sys.stderr)
        return 1
    return 0


def _send(method: str, url: str, body: bytes | None, token: str) -> tuple[int, str]:
    request = urllib.request.Request(  # noqa: S310 - the URL is the stack's own API (https) or 127.0.0.1
        url,
        data=body,
        method=method.upper(),
        headers={
            "authorization": f"Bearer {token}",
            **({"content-type": "application/json"} if body is not None else {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def _pair(text: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise ApiCliError(f"--query takes NAME=VALUE, not {text!r}")
    return name, value


def _body(data: str | None) -> bytes | None:
    if data is None:
        return None
    text = Path(data[1:]).read_text("utf-8") if data.startswith("@") else data
    try:
        json.loads(text)
    except ValueError as error:
        raise ApiCliError(f"--data is not JSON: {error}") from None
    return text.encode("utf-8")


def add_api_commands(groups: Any) -> None:
    api = groups.add_parser("api", help="the admin API with a signed-in person's token")
    commands = api.add_subparsers(dest="command", required=True)
    signing = commands.add_parser("sign-in", help="sign in (the session lasts 12 hours)")
    signing.add_argument("email")
    signing.add_argument("--password-file", help="read the password from this file")
    signing.add_argument(
        "--code", help="the authenticator app's code, for a user with two-step sign-in on"
    )
    signing.add_argument("--token-file", default=str(TOKEN_FILE))
    signing.set_defaults(run_offline=sign_in)
    for method in METHODS:
        one = commands.add_parser(method, help=f"{method.upper()} an /admin path, print the JSON")
        one.add_argument("path", help="e.g. /admin/leads")
        one.add_argument("--query", action="append", metavar="NAME=VALUE")
        one.add_argument("--data", help="the JSON body, or @FILE")
        one.add_argument("--token-file", default=str(TOKEN_FILE))
        one.set_defaults(run_offline=call, method=method)
