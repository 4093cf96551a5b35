"""A site's own server posting tracking events (server-side tracking) through track_event's
handler, signed with the secret an admin made for the site through the admin API; under moto,
on the runtime's clock."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AwsStack, load_event, moto_client
from tests.integration.test_tracking_events import stream_batch
from tests.integration.tracking_helpers import (
    NOW,
    ORIGIN,
    SITE_ID,
    capture_lead,
    register_site,
    set_clock,
    stored_events,
)
from tests.support.admin import event as admin_event
from tests.support.cli import runtime_here
from tsunagu import cli, services
from tsunagu.api import admin
from tsunagu.commands.access import Role
from tsunagu.signed_requests import signature_header

LINKED_VISITOR = "v_8f14e45fceea167a"
"""The browser events/capture_form/new_lead_json.json links to the lead it captures."""
SERVER_AGENT = "python-requests/2.32.3"


@pytest.fixture
def stack(aws: AwsStack) -> AwsStack:
    """Given the customer's site, the stack's site-signing key, and the clock a few seconds
    after the sample events happened."""
    aws.environment["TSUNAGU_SITE_SECRET_ARN"] = "tsunagu-test-SiteSigningSecret"
    set_clock(aws, NOW)
    register_site(aws)
    return aws


def call_admin(stack: AwsStack, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    response = admin.handle(admin_event(method, path, **kwargs), stack.settings())
    return response["statusCode"], json.loads(response.get("body") or "null")


def make_secret(stack: AwsStack) -> str:
    """An admin makes the site's signing secret; the answer is the only place it is shown."""
    status, body = call_admin(stack, "POST", f"/admin/sites/{SITE_ID}/signing-secret")
    assert status == 201, body
    secret: str = body["secret"]
    return secret


def server_request(
    stack: AwsStack,
    events: list[dict[str, Any]],
    secret: str | None,
    *,
    signed_at_offset: timedelta = timedelta(0),
) -> dict[str, Any]:
    """The site's server posting ``events`` without Origin, as python-requests does, signed
    with ``secret`` at the runtime's now (plus the offset) unless ``secret`` is None."""
    event = copy.deepcopy(load_event("track_event", "server_side_json"))
    event["headers"]["user-agent"] = event["requestContext"]["http"]["userAgent"] = SERVER_AGENT
    body = json.dumps({"site_id": SITE_ID, "events": events})
    event["body"] = body
    if secret is not None:
        now = services.clock(stack.settings()).now() + signed_at_offset
        timestamp = str(int(now.timestamp()))
        event["headers"]["x-tsunagu-timestamp"] = timestamp
        event["headers"]["x-tsunagu-signature"] = signature_header(
            secret.encode(), timestamp, body.encode()
        )
    return event


def server_post(
    stack: AwsStack,
    events: list[dict[str, Any]],
    secret: str | None,
    *,
    signed_at_offset: timedelta = timedelta(0),
) -> dict[str, Any]:
    event = server_request(stack, events, secret, signed_at_offset=signed_at_offset)
    response: dict[str, Any] = stack.function("track_event").invoke(event)
    return response


def purchase(visitor: str = LINKED_VISITOR, **changes: Any) -> dict[str, Any]:
    return {"type": "page_view", "visitor_id": visitor, "url": f"{ORIGIN}/pricing", **changes}


def lead_score(stack: AwsStack, lead_id: str) -> float:
    item = moto_client("dynamodb").get_item(
        TableName=stack.tables["LeadsTable"], Key={"lead_id": {"S": lead_id}}
    )["Item"]
    return float(item.get("score", {}).get("N", "0"))


def route(stack: AwsStack, events: list[dict[str, Any]]) -> None:
    function = stack.function("route_events")
    for sequence, event in enumerate(events, start=1):
        assert function.invoke(stream_batch(event, str(sequence))) == {"batchItemFailures": []}


def test_a_correctly_signed_post_is_the_leads_own_page_view_and_scores(stack: AwsStack) -> None:
    # Given a lead whose browser the site knows, and the site's signing secret
    lead_id = capture_lead(stack)
    secret = make_secret(stack)
    before = lead_score(stack, lead_id)

    # When the site's server posts that visitor's view of the pricing page, signed
    response = server_post(stack, [purchase()], secret)

    # Then it is accepted, and stored as the lead's: a person's event, signed
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"]) == {"accepted": 1, "rejected": []}
    (view,) = [e for e in stored_events(stack) if e["type"] == "page_view"]
    assert view["subject"] == f"lead#{lead_id}"
    assert view["properties"]["automated"] is False
    assert view["properties"]["signed"] is True
    assert "ip" not in view["properties"]  # the server's address is not the visitor's
    # And routed, it scores (the shipped rules: the pricing page 10, a page of the site 1)
    route(stack, [view])
    assert lead_score(stack, lead_id) == before + 11


def refused_without_a_trace(stack: AwsStack, response: dict[str, Any], status: int) -> str:
    assert response["statusCode"] == status, response
    assert [e for e in stored_events(stack) if e["type"] == "page_view"] == []
    message: str = json.loads(response["body"])["message"]
    return message


def test_a_post_signed_with_a_wrong_secret_is_a_401_and_stores_nothing(stack: AwsStack) -> None:
    capture_lead(stack)
    secret = make_secret(stack)
    forged = secret[:-4] + ("0000" if not secret.endswith("0000") else "1111")

    message = refused_without_a_trace(stack, server_post(stack, [purchase()], forged), 401)
    assert "does not match" in message


def test_a_rotated_secret_no_longer_verifies(stack: AwsStack) -> None:
    # Given a secret, then a new one in its place
    old = make_secret(stack)
    status, body = call_admin(stack, "POST", f"/admin/sites/{SITE_ID}/signing-secret")
    assert status == 201 and body["replaced"] is True and body["secret"] != old

    # Then the old secret is refused and the new one taken
    refused_without_a_trace(stack, server_post(stack, [purchase()], old), 401)
    assert server_post(stack, [purchase()], body["secret"])["statusCode"] == 200


def signed_with_both(stack: AwsStack, old: str, new: str, *, new_first: bool) -> dict[str, Any]:
    """A post the site's server signs with two secrets, as it does while it switches to a new
    one (README: Tracking from your server): one ``v1=`` entry each."""
    event = server_request(stack, [purchase()], old)
    entries = [
        signature_header(
            s.encode(), event["headers"]["x-tsunagu-timestamp"], event["body"].encode()
        )
        for s in (old, new)
    ]
    event["headers"]["x-tsunagu-signature"] = ", ".join(entries[::-1] if new_first else entries)
    return event


@pytest.mark.parametrize("new_first", [False, True], ids=["old-first", "new-first"])
def test_a_server_signing_with_the_old_and_the_new_secret_is_taken_through_a_rotation(
    stack: AwsStack, new_first: bool
) -> None:
    # Given the site's secret, and a new one made in its place (the old one no longer verifies)
    old = make_secret(stack)
    status, made = call_admin(stack, "POST", f"/admin/sites/{SITE_ID}/signing-secret")
    assert status == 201 and made["replaced"] is True
    track = stack.function("track_event")
    assert track.invoke(server_request(stack, [purchase()], old))["statusCode"] == 401

    # When the server signs a post with both, in either order
    response = track.invoke(signed_with_both(stack, old, made["secret"], new_first=new_first))

    # Then the new secret's entry verifies it: the post is taken, signed, and stored once
    assert response["statusCode"] == 200, response
    (view,) = [e for e in stored_events(stack) if e["type"] == "page_view"]
    assert view["properties"]["automated"] is False and view["properties"]["signed"] is True


def test_two_entries_of_which_none_is_the_current_secret_are_refused(stack: AwsStack) -> None:
    # Given a rotated secret, a post signed with the old one and a forged one is one no entry of
    # which verifies: several entries add no way in
    old = make_secret(stack)
    call_admin(stack, "POST", f"/admin/sites/{SITE_ID}/signing-secret")
    forged = "tss_" + "0" * 64
    event = signed_with_both(stack, old, forged, new_first=True)

    message = refused_without_a_trace(stack, stack.function("track_event").invoke(event), 401)
    assert "does not match" in message


@pytest.mark.parametrize("minutes", [-10, 10])
def test_a_post_signed_outside_the_window_is_a_401_and_stores_nothing(
    stack: AwsStack, minutes: int
) -> None:
    secret = make_secret(stack)
    response = server_post(stack, [purchase()], secret, signed_at_offset=timedelta(minutes=minutes))
    assert "more than 300 seconds from now" in refused_without_a_trace(stack, response, 401)


def test_a_replayed_signed_post_is_a_409_and_stored_once(stack: AwsStack) -> None:
    # Given a signed post taken (an event without a client id: a copy would be a second event)
    secret = make_secret(stack)
    captured = server_request(stack, [purchase()], secret)
    assert stack.function("track_event").invoke(captured)["statusCode"] == 200

    # When the very request is sent again, inside its window
    again = stack.function("track_event").invoke(captured)

    # Then it is refused, and its events are stored once
    assert again["statusCode"] == 409
    assert "already received" in json.loads(again["body"])["message"]
    assert len([e for e in stored_events(stack) if e["type"] == "page_view"]) == 1


def test_a_signed_post_for_a_site_without_a_secret_says_how_to_make_one(stack: AwsStack) -> None:
    made_elsewhere = "tss_" + "0" * 64
    message = refused_without_a_trace(stack, server_post(stack, [purchase()], made_elsewhere), 401)
    assert f"/admin/sites/{SITE_ID}/signing-secret" in message


def test_an_unsigned_post_without_origin_stays_a_machines(stack: AwsStack) -> None:
    # Given a lead, and a site that has a secret
    lead_id = capture_lead(stack)
    make_secret(stack)
    before = lead_score(stack, lead_id)

    # When a post without Origin and without a signature names the lead's browser
    assert server_post(stack, [purchase()], None)["statusCode"] == 200

    # Then it is kept, judged a machine's, and never scores
    (view,) = [e for e in stored_events(stack) if e["type"] == "page_view"]
    assert view["properties"]["automated"] is True
    assert "no_origin" in view["properties"]["reasons"]
    route(stack, [view])
    assert lead_score(stack, lead_id) == before


# ---------------------------------------------------------------- the admin route


def test_the_secret_is_shown_once_kept_by_its_id_and_logged_without_it(stack: AwsStack) -> None:
    settings = stack.settings()
    status, made = call_admin(stack, "POST", f"/admin/sites/{SITE_ID}/signing-secret")
    assert status == 201
    assert made["site_id"] == SITE_ID and made["replaced"] is False
    assert made["secret"].startswith("tss_")

    # The site's item keeps the key id, never the secret; the site's settings do not show it
    (item,) = moto_client("dynamodb").scan(TableName=stack.tables["SitesTable"])["Items"]
    assert item["signing_key_id"]["S"] == made["key_id"]
    assert made["secret"] not in json.dumps(item)
    status, shown = call_admin(stack, "GET", f"/admin/sites/{SITE_ID}")
    assert status == 200 and made["secret"] not in json.dumps(shown)

    # Saving the site's settings keeps its secret
    status, _ = call_admin(
        stack,
        "PUT",
        f"/admin/sites/{SITE_ID}",
        body={"name": "Renamed", "allowed_origins": [ORIGIN]},
        query={"replace": "true"},
    )
    assert status == 200
    assert server_post(stack, [purchase()], made["secret"])["statusCode"] == 200

    # And the log says who made which key, by id
    now = services.clock(settings).now()
    entries = services.audit_log(settings).entries(
        now - timedelta(hours=1), now + timedelta(hours=1), limit=100
    )
    (entry,) = [e for e in entries if e.operation == "sites.rotate_secret"]
    assert (entry.target, entry.outcome, entry.detail) == (f"site:{SITE_ID}", "done", "created")
    assert entry.after == {"signing_key_id": made["key_id"]}
    assert made["secret"] not in json.dumps([e.before | e.after for e in entries])


def test_a_site_says_when_its_secret_was_made_and_never_its_key(stack: AwsStack) -> None:
    # Given a site without a secret, Then its answers say it has none (a first secret replaces
    # nothing)
    status, shown = call_admin(stack, "GET", f"/admin/sites/{SITE_ID}")
    assert (status, shown["signing_secret_made_at"]) == (200, None)
    status, listed = call_admin(stack, "GET", "/admin/sites")
    assert [s["signing_secret_made_at"] for s in listed["items"]] == [None]

    # When an admin makes its secret, later by the runtime's clock
    set_clock(stack, NOW + timedelta(days=2))
    status, made = call_admin(stack, "POST", f"/admin/sites/{SITE_ID}/signing-secret")
    assert status == 201

    # Then the site shows when, in its own answer and in the list, and never the key id the
    # secret is made from, nor the secret
    status, shown = call_admin(stack, "GET", f"/admin/sites/{SITE_ID}")
    assert shown["signing_secret_made_at"] == made["created_at"]
    status, listed = call_admin(stack, "GET", "/admin/sites")
    assert [s["signing_secret_made_at"] for s in listed["items"]] == [made["created_at"]]
    for answer in (shown, listed):
        assert made["key_id"] not in json.dumps(answer)
        assert made["secret"] not in json.dumps(answer)

    # And the site's answer is still one its editor can send back: saving it with the time
    # (read-only) is refused whole rather than half-stored
    status, body = call_admin(
        stack, "PUT", f"/admin/sites/{SITE_ID}", body=shown, query={"replace": "true"}
    )
    assert status == 422 and body["errors"][0]["field"] == "signing_secret_made_at", body


@pytest.mark.parametrize("role", [Role.MARKETER, Role.VIEWER, Role.SALES])
def test_only_an_admin_makes_a_sites_secret(stack: AwsStack, role: Role) -> None:
    status, body = call_admin(stack, "POST", f"/admin/sites/{SITE_ID}/signing-secret", role=role)
    assert status == 403, body
    (item,) = moto_client("dynamodb").scan(TableName=stack.tables["SitesTable"])["Items"]
    assert "signing_key_id" not in item


@pytest.mark.parametrize("site", ["no-such-site", "Not_A_Site_Id"])
def test_a_secret_for_a_site_no_one_registered_is_a_404_and_stores_nothing(
    stack: AwsStack, site: str
) -> None:
    status, body = call_admin(stack, "POST", f"/admin/sites/{site}/signing-secret")
    assert status == 404, body
    assert "no site" in body["message"]
    assert len(moto_client("dynamodb").scan(TableName=stack.tables["SitesTable"])["Items"]) == 1


# ---------------------------------------------------------------- the CLI


def test_the_cli_makes_the_secret_by_the_same_use_case_and_prints_it_once(
    stack: AwsStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runtime_here(stack, tmp_path, monkeypatch)
    # When the operator makes the site's secret, then a new one
    assert cli.main(["sites", "rotate-secret", SITE_ID]) == 0
    first = capsys.readouterr()
    assert cli.main(["sites", "rotate-secret", SITE_ID]) == 0
    second = capsys.readouterr()

    # Then each is printed alone on its line (stdout: for a script to read), the note on stderr
    old, new = first.out.splitlines()[1], second.out.splitlines()[1]
    assert old.startswith("tss_") and new.startswith("tss_") and old != new
    assert "shown this once" in first.err and "no longer verifies" in second.err
    # And only the newest verifies
    refused_without_a_trace(stack, server_post(stack, [purchase()], old), 401)
    assert server_post(stack, [purchase()], new)["statusCode"] == 200
    # And both are in the log, as the operator's
    settings = stack.settings()
    now = services.clock(settings).now()
    entries = services.audit_log(settings).entries(
        now - timedelta(hours=1), now + timedelta(hours=1), limit=100
    )
    made = [e for e in entries if e.operation == "sites.rotate_secret"]
    assert sorted(e.detail or "" for e in made) == ["created", "rotated"]
    assert {e.actor.via for e in made} == {"cli"}


def test_the_cli_names_a_site_no_one_registered(
    stack: AwsStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runtime_here(stack, tmp_path, monkeypatch)
    assert cli.main(["sites", "rotate-secret", "no-such-site"]) != 0
    assert "no site with id 'no-such-site'" in capsys.readouterr().err
