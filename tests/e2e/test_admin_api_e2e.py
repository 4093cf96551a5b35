"""The admin API over real HTTP, on the runtime `make up` starts (with the allowlist set to
127.0.0.1): sign in as the admin it prints, and every way in without a valid token or from
another address is refused and changes nothing."""

from __future__ import annotations

import gzip
import http.client
import json
import time
from collections.abc import Iterator
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.conftest import ROOT
from tests.e2e.conftest import RunningTsunagu, start_tsunagu
from tests.support.runtime import local_client
from tsunagu_local.people import ADMIN_EMAIL, SIGN_IN_FILE

INTRUDER_SITE = {"name": "Not ours", "allowed_origins": ["https://intruder.example.com"]}


@pytest.fixture(scope="module")
def tsunagu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTsunagu]:
    running = start_tsunagu(
        tmp_path_factory.mktemp("admin"),
        "--no-persist",
        "--parameter",
        "AdminAllowedCidrs=127.0.0.1/32",
    )
    yield running
    if running.process.poll() is None:
        running.stop()


def state(tsunagu: RunningTsunagu) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((tsunagu.workdir / ".tsunagu/runtime.json").read_text())
    return loaded


def cognito(tsunagu: RunningTsunagu) -> Any:
    environment = state(tsunagu)["environment"]
    return local_client(
        "cognito-idp",
        region=environment["AWS_REGION"],
        endpoint_url=environment["AWS_ENDPOINT_URL"],
        max_attempts=2,
    )


def admin_token(tsunagu: RunningTsunagu) -> str:
    password = (tsunagu.workdir / ".tsunagu" / SIGN_IN_FILE).read_text().strip()
    client_id = state(tsunagu)["sign_in"]["clients"]["AdminConsoleClient"]
    answer = cognito(tsunagu).initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": ADMIN_EMAIL, "PASSWORD": password},
    )
    token: str = answer["AuthenticationResult"]["IdToken"]
    return token


def admin_call(
    tsunagu: RunningTsunagu,
    method: str,
    path: str,
    *,
    token: str | None,
    body: Any = None,
    from_address: str = "127.0.0.1",
) -> tuple[int, dict[str, str], Any]:
    """Over HTTP from ``from_address`` (any 127.x address reaches the runtime's port)."""
    url = urlsplit(tsunagu.api_url)
    connection = http.client.HTTPConnection(
        url.hostname or "127.0.0.1", url.port, timeout=30, source_address=(from_address, 0)
    )
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        text = response.read()
        answer = json.loads(text) if text else None
        return response.status, {k.lower(): v for k, v in response.getheaders()}, answer
    finally:
        connection.close()


def pool_key() -> RSAKey:
    """The key moto's user pools sign with (what a stolen signing key would be)."""
    return RSAKey.import_key(_moto_resource("jwks-private.json.gz"))


def resigned(token: str, key: RSAKey, **changes: Any) -> str:
    """The token's claims, changed, signed with ``key``."""
    claims = dict(jwt.decode(token, KeySet.import_key_set(_public_keys())).claims)
    claims.update(changes)
    header = {"alg": "RS256", "kid": key.kid or "other"}
    return jwt.encode(header, claims, key)


def _public_keys() -> dict[str, Any]:
    return _moto_resource("jwks-public.json.gz")


def _moto_resource(name: str) -> dict[str, Any]:
    packed = (files("moto.cognitoidp") / "resources" / name).read_bytes()
    loaded: dict[str, Any] = json.loads(gzip.decompress(packed))
    return loaded


def test_make_up_prints_how_to_sign_in_and_the_admin_can(tsunagu: RunningTsunagu) -> None:
    printed = "".join(tsunagu.output)
    password = (tsunagu.workdir / ".tsunagu" / SIGN_IN_FILE).read_text().strip()
    assert f"Sign in as:        {ADMIN_EMAIL} / {password}" in printed

    status, _, me = admin_call(tsunagu, "GET", "/admin/me", token=admin_token(tsunagu))

    assert status == 200
    assert (me["email"], me["role"]) == (ADMIN_EMAIL, "admin")
    assert "audit.list" in me["operations"]


@pytest.mark.parametrize(
    "forge",
    ["none", "garbage", "expired", "another_key", "another_audience", "another_issuer"],
)
def test_without_a_valid_token_the_gateway_refuses_and_nothing_changes(
    tsunagu: RunningTsunagu, forge: str
) -> None:
    good = admin_token(tsunagu)
    tokens: dict[str, str | None] = {
        "none": None,
        "garbage": "not-a-jwt",
        "expired": resigned(good, pool_key(), exp=int(time.time()) - 60),
        "another_key": resigned(good, RSAKey.generate_key(2048)),
        "another_audience": resigned(good, pool_key(), aud="someone-elses-app"),
        "another_issuer": resigned(
            good, pool_key(), iss="https://cognito-idp.ap-northeast-1.amazonaws.com/other"
        ),
    }
    site = f"/admin/sites/intruder-{forge.replace('_', '-')}"

    status, headers, body = admin_call(
        tsunagu, "PUT", site, token=tokens[forge], body=INTRUDER_SITE
    )

    assert status == 401
    assert body == {"message": "Unauthorized"}
    assert (forge == "none") == ("www-authenticate" not in headers)
    assert admin_call(tsunagu, "GET", site, token=good)[0] == 404


def test_from_outside_the_allowlist_a_signed_in_admin_is_refused_and_it_is_logged(
    tsunagu: RunningTsunagu,
) -> None:
    token = admin_token(tsunagu)

    status, _, body = admin_call(
        tsunagu, "PUT", "/admin/sites/from-elsewhere", token=token,
        body=INTRUDER_SITE, from_address="127.0.0.2",
    )  # fmt: skip

    assert status == 403
    assert "127.0.0.2" in body["message"]
    assert admin_call(tsunagu, "GET", "/admin/sites/from-elsewhere", token=token)[0] == 404
    _, _, log = admin_call(tsunagu, "GET", "/admin/audit?limit=200", token=token)
    [refusal] = [e for e in log["items"] if e["target"] == "/admin/sites/from-elsewhere"]
    assert (refusal["outcome"], refusal["source_ip"], refusal["email"]) == (
        "refused",
        "127.0.0.2",
        ADMIN_EMAIL,
    )


def test_a_change_is_logged_with_who_from_where_and_what_changed(
    tsunagu: RunningTsunagu,
) -> None:
    token = admin_token(tsunagu)

    partner = {"name": "Partner", "allowed_origins": ["https://partner.example.jp"]}
    status, _, _ = admin_call(tsunagu, "PUT", "/admin/sites/partner", token=token, body=partner)

    assert status == 201
    _, _, log = admin_call(tsunagu, "GET", "/admin/audit?limit=200", token=token)
    [entry] = [e for e in log["items"] if e["target"] == "site:partner"]
    assert (entry["operation"], entry["via"], entry["email"], entry["source_ip"]) == (
        "sites.save",
        "api",
        ADMIN_EMAIL,
        "127.0.0.1",
    )
    assert entry["after"]["allowed_origins"] == ["https://partner.example.jp"]


def test_no_state_folder_secret_is_left_readable_by_others(tsunagu: RunningTsunagu) -> None:
    mode = (tsunagu.workdir / ".tsunagu" / SIGN_IN_FILE).stat().st_mode & 0o777
    assert mode == 0o600, oct(mode)


def test_a_marketer_publishes_a_journey_through_the_api_and_a_broken_one_says_why(
    tsunagu: RunningTsunagu,
) -> None:
    token = admin_token(tsunagu)
    definition = json.loads((ROOT / "journeys" / "welcome_nurture.json").read_text("utf-8"))
    broken = {**definition, "nodes": [{**definition["nodes"][0], "kind": "teleport"}]}
    # As shipped, the journey has no versions yet: that is an answer, not a 404
    before = admin_call(tsunagu, "GET", "/admin/journeys/welcome_nurture/versions", token=token)
    assert before[0] == 200 and (before[2]["live"], before[2]["versions"]) == (None, []), before

    published = admin_call(
        tsunagu, "POST", "/admin/journeys", token=token,
        body={"definition": definition, "note": "first from the console"},
    )  # fmt: skip
    refused = admin_call(tsunagu, "POST", "/admin/journeys", token=token,
                         body={"definition": broken})  # fmt: skip
    _, _, versions = admin_call(
        tsunagu, "GET", "/admin/journeys/welcome_nurture/versions", token=token
    )

    assert published[0] == 201, published
    assert published[2]["version"] == 1
    assert refused[0] == 422 and refused[2]["errors"], refused
    assert versions["live"] == 1
    assert [v["note"] for v in versions["versions"]] == ["first from the console"]
    _, _, log = admin_call(tsunagu, "GET", "/admin/audit?limit=200", token=token)
    [entry] = [e for e in log["items"] if e["operation"] == "journeys.publish"]
    assert (entry["before"], entry["after"]) == ({"version": None}, {"version": 1})


def test_the_cli_calls_the_api_with_a_signed_in_persons_token(tsunagu: RunningTsunagu) -> None:
    # Given the admin signed in at the CLI (the password from the file make up wrote)
    password_file = tsunagu.workdir / ".tsunagu" / SIGN_IN_FILE
    signed = tsunagu.cli("api", "sign-in", ADMIN_EMAIL, "--password-file", str(password_file))
    assert signed.returncode == 0, signed.stderr
    token_file = tsunagu.workdir / ".tsunagu" / "api-token"
    assert token_file.stat().st_mode & 0o777 == 0o600

    # When they ask who they are, invite a marketer and store a site through the API
    me = tsunagu.cli("api", "get", "/admin/me")
    invited = tsunagu.cli(
        "api", "post", "/admin/users", "--data", '{"email": "mika@example.jp", "role": "marketer"}'
    )
    stored = tsunagu.cli(
        "api",
        "put",
        "/admin/sites/cli-site",
        "--data",
        '{"name": "CLI", "allowed_origins": ["https://cli.example.jp"]}',
    )
    refused = tsunagu.cli("api", "get", "/admin/leads/not-an-address")

    # Then each went through the API as that person, and the log says so
    assert json.loads(me.stdout)["role"] == "admin", me.stderr
    assert json.loads(invited.stdout)["role"] == "marketer", invited.stderr
    assert stored.returncode == 0, stored.stderr
    assert refused.returncode == 1 and "the API answered 4" in refused.stderr
    _, _, log = admin_call(tsunagu, "GET", "/admin/audit?limit=200", token=admin_token(tsunagu))
    made = {e["target"]: (e["via"], e["email"]) for e in log["items"] if e["outcome"] == "done"}
    assert made["site:cli-site"] == ("api", ADMIN_EMAIL)
    assert made["user:mika@example.jp"] == ("api", ADMIN_EMAIL)

    # And a wrong password or no token is a plain message, not a traceback
    wrong = tsunagu.workdir / "wrong-password"
    wrong.write_text("Not-the-password-1")
    failed = tsunagu.cli("api", "sign-in", ADMIN_EMAIL, "--password-file", str(wrong))
    assert failed.returncode == 1 and "the e-mail or the password is wrong" in failed.stderr
    token_file.unlink()
    assert "not signed in" in tsunagu.cli("api", "get", "/admin/me").stderr


def test_a_large_list_uploaded_to_s3_is_imported_in_chunks_on_step_functions(
    tsunagu: RunningTsunagu,
) -> None:
    import csv
    import io
    import urllib.request

    from tests.support.runtime import wait_for

    rows = 1_100  # three chunks of up to 500
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["メールアドレス", "氏名", "会社名", "配信希望"])
    for n in range(rows):
        writer.writerow([f"chunked{n:05d}@example.jp", f"分割 {n}", "株式会社チャンク", "希望する"])
    data = out.getvalue().encode("cp932")
    token = admin_token(tsunagu)

    # The browser's way: a pre-signed URL from the admin API, and one PUT of the file to S3
    status, _, upload = admin_call(
        tsunagu, "POST", "/admin/imports/uploads", token=token, body={"file_name": "大量.csv"}
    )
    assert status == 201, upload
    # As a browser PUTs a File: its type as the content type (urllib would send a form's)
    put = urllib.request.Request(
        upload["url"], data=data, method="PUT", headers={"content-type": "text/csv"}
    )
    with urllib.request.urlopen(put, timeout=30) as answer:
        assert answer.status == 200
    file = {"file_name": "大量.csv", "upload_id": upload["upload_id"], "source": "trade_show",
            "consent": {"column": "配信希望", "yes": ["希望する"]}}  # fmt: skip
    # Its dry run is planned by the same state machine, and asked for until it is there
    status, _, queued_plan = admin_call(
        tsunagu, "POST", "/admin/imports/plans", token=token, body=file
    )
    assert status == 202 and queued_plan["status"] == "planning", queued_plan

    def planned() -> dict[str, Any] | None:
        _, _, found = admin_call(
            tsunagu, "GET", f"/admin/imports/plans/{queued_plan['plan_id']}", token=token
        )
        return found if found["status"] != "planning" else None

    plan = wait_for(planned, timeout=600, interval=1.0, what="the dry run's state machine")
    assert plan["status"] == "planned" and plan["counts"]["create"] == rows, plan

    status, _, queued = admin_call(
        tsunagu, "POST", "/admin/imports", token=token,
        body=file | {"plan_digest": plan["plan_digest"]},
    )  # fmt: skip
    assert status == 202 and queued["status"] == "queued", queued

    def finished() -> dict[str, Any] | None:
        _, _, found = admin_call(
            tsunagu, "GET", f"/admin/imports/{queued['import_id']}", token=token
        )
        return found if found["status"] not in ("queued", "applying") else None

    done = wait_for(finished, timeout=600, interval=1.0, what="the import state machine")
    assert done["status"] == "applied", done
    assert done["progress"] == {
        "rows_total": rows, "rows_done": rows, "rows_parked": 0, "chunks_total": 3,
        "chunks_done": 3, "parked": [],
    }  # fmt: skip

    shown = tsunagu.cli("imports", "status", queued["import_id"])
    assert shown.returncode == 0, shown.stderr
    assert "applied" in shown.stdout and "1,100 / 1,100 rows, 3 of 3 chunks" in shown.stdout
    assert "[##############################] 100%" in shown.stdout
    lead = tsunagu.cli("leads", "get", "chunked01099@example.jp")
    assert lead.returncode == 0 and "株式会社チャンク" in lead.stdout, lead.stderr
