"""A site's own server posting tracking events (server-side tracking) through track_event's
handler, signed with the secret an admin made for the site through the admin API; under moto,
on the runtime's clock."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
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
from tsunagu.clock import FixedClock, isoformat, register_in_process
from tsunagu.commands.access import Role
from tsunagu.signed_requests import signature_header
from tsunagu.tracking.server_posts import PREVIOUS_SECRET_OVERLAP

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


@pytest.fixture
def clock(stack: AwsStack) -> Iterator[FixedClock]:
    """The functions' clock standing still at NOW (virtual time): it moves only when the test
    moves it, so an instant a test names is the one every function reads."""
    url = "http://127.0.0.1:9/_local/clock-server-posts"
    still = FixedClock(NOW)
    stack.environment["TSUNAGU_CLOCK_URL"] = url
    register_in_process(url, still)
    try:
        yield still
    finally:
        register_in_process(url, None)


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


def rotate(stack: AwsStack, **body: Any) -> dict[str, Any]:
    """An admin makes a new secret in place of the site's current one."""
    status, made = call_admin(
        stack, "POST", f"/admin/sites/{SITE_ID}/signing-secret", body=body or None
    )
    assert status == 201 and made["replaced"] is True, made
    return made


def accepted(stack: AwsStack, secret: str, visitor: str = LINKED_VISITOR) -> int:
    """The status of a post signed with ``secret`` now (each a new request: its own visitor)."""
    status: int = server_post(stack, [purchase(visitor)], secret)["statusCode"]
    return status


def test_the_secret_a_rotation_replaced_is_accepted_for_24_hours_then_refused(
    stack: AwsStack, clock: FixedClock
) -> None:
    # Given a secret, then a new one in its place
    old = make_secret(stack)
    made = rotate(stack)
    until = isoformat(NOW + PREVIOUS_SECRET_OVERLAP)

    # Then the answer says until when the old one is still accepted, and so does the site
    assert made["previous_secret_accepted_until"] == until
    assert made["ended_overlap_until"] is None
    assert (
        call_admin(stack, "GET", f"/admin/sites/{SITE_ID}")[1]["previous_secret_accepted_until"]
        == until
    )
    # And posts signed with either are taken: the site's servers switch one by one
    assert accepted(stack, old, "v_0000000000000001") == 200
    assert accepted(stack, made["secret"], "v_0000000000000002") == 200

    # Still a second before the day is over
    clock.instant = NOW + PREVIOUS_SECRET_OVERLAP - timedelta(seconds=1)
    assert accepted(stack, old, "v_0000000000000003") == 200

    # When the day is over, Then the old secret is refused (and its post stores nothing), the
    # new one taken, and the site says no old secret is accepted
    clock.instant = NOW + PREVIOUS_SECRET_OVERLAP
    response = server_post(stack, [purchase("v_0000000000000004")], old)
    assert response["statusCode"] == 401, response
    assert "does not match" in json.loads(response["body"])["message"]
    views = [e for e in stored_events(stack) if e["type"] == "page_view"]
    assert len(views) == 3
    assert accepted(stack, made["secret"], "v_0000000000000005") == 200
    _, shown = call_admin(stack, "GET", f"/admin/sites/{SITE_ID}")
    assert shown["previous_secret_accepted_until"] is None
    _, listed = call_admin(stack, "GET", "/admin/sites")
    assert [s["previous_secret_accepted_until"] for s in listed["items"]] == [None]


def test_a_second_rotation_inside_the_overlap_ends_the_first_ones(
    stack: AwsStack, clock: FixedClock
) -> None:
    # Given a secret replaced an hour ago (still accepted for 23 hours)
    first = make_secret(stack)
    second = rotate(stack)
    clock.instant = NOW + timedelta(hours=1)

    # When it is replaced in turn
    third = rotate(stack)

    # Then one previous secret only: the second is accepted for a day from now, and the answer
    # says the first one's overlap is over, which is refused at once
    assert third["previous_secret_accepted_until"] == isoformat(
        NOW + timedelta(hours=1) + PREVIOUS_SECRET_OVERLAP
    )
    assert third["ended_overlap_until"] == second["previous_secret_accepted_until"]
    assert accepted(stack, first, "v_0000000000000001") == 401
    assert accepted(stack, second["secret"], "v_0000000000000002") == 200
    assert accepted(stack, third["secret"], "v_0000000000000003") == 200


@pytest.mark.parametrize("overlapping", [False, True], ids=["one-secret", "during-an-overlap"])
def test_a_rotation_revoking_the_previous_secret_refuses_it_at_once_and_is_audited(
    stack: AwsStack, clock: FixedClock, overlapping: bool
) -> None:
    # Given the site's secret (and, during an overlap, the one it replaced an hour ago)
    older = make_secret(stack)
    leaked = older
    if overlapping:
        leaked = rotate(stack)["secret"]
        clock.instant = NOW + timedelta(hours=1)

    # When an admin rotates it because it leaked
    made = rotate(stack, revoke_previous=True)

    # Then no old secret is accepted any more: not the leaked one, not the one before it
    assert made["previous_secret_accepted_until"] is None
    assert accepted(stack, leaked, "v_0000000000000001") == 401
    assert accepted(stack, older, "v_0000000000000002") == 401
    assert accepted(stack, made["secret"], "v_0000000000000003") == 200
    shown = call_admin(stack, "GET", f"/admin/sites/{SITE_ID}")[1]
    assert shown["previous_secret_accepted_until"] is None

    # And the log says the replaced secret was revoked, by key id, without any secret
    settings = stack.settings()
    entries = services.audit_log(settings).entries(
        NOW - timedelta(hours=1), NOW + timedelta(hours=2), limit=100
    )
    # (found by the key it made: the secret's creation and its rotation can share an instant,
    # and entries of one instant have no order)
    revoking = next(
        e
        for e in entries
        if e.operation == "sites.rotate_secret" and e.after["signing_key_id"] == made["key_id"]
    )
    assert revoking.detail is not None and "revoked at once" in revoking.detail
    assert revoking.after.get("previous_signing_key_id") is None
    assert revoking.before["signing_key_id"] != made["key_id"]
    assert leaked not in json.dumps([e.before | e.after | {"d": e.detail} for e in entries])


def test_a_rotation_body_with_anything_else_is_refused_and_changes_nothing(
    stack: AwsStack, clock: FixedClock
) -> None:
    secret = make_secret(stack)
    for body in ({"revoke_previous": "yes"}, {"revoke": True}):
        status, answer = call_admin(
            stack, "POST", f"/admin/sites/{SITE_ID}/signing-secret", body=body
        )
        assert status == 422, answer
    assert accepted(stack, secret) == 200
    (item,) = moto_client("dynamodb").scan(TableName=stack.tables["SitesTable"])["Items"]
    assert "previous_signing_key_id" not in item


def test_of_two_rotations_at_once_the_second_is_refused(stack: AwsStack) -> None:
    # Given two admins who read the site's keys at the same time, and the first one's rotation
    from tsunagu.errors import ConcurrentUpdate
    from tsunagu.tracking.stored_sites import SigningKeys

    make_secret(stack)
    sites = services.site_repository(stack.settings())
    read = sites.signing_keys(SITE_ID)
    assert read is not None
    rotate(stack)

    # When the second stores hers over the key she read, Then it is refused: the first one's
    # secret, which someone was shown, is not turned into a "previous" one of a lost secret
    with pytest.raises(ConcurrentUpdate, match="meanwhile"):
        sites.set_signing_keys(
            SITE_ID, SigningKeys("f" * 32, isoformat(NOW)), replacing=read.key_id
        )


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
    stack: AwsStack, clock: FixedClock, new_first: bool
) -> None:
    # Given the site's secret, and a new one made in its place a day ago (the old one is no
    # longer accepted)
    old = make_secret(stack)
    made = rotate(stack)
    clock.instant = NOW + PREVIOUS_SECRET_OVERLAP
    track = stack.function("track_event")
    assert track.invoke(server_request(stack, [purchase()], old))["statusCode"] == 401

    # When the server signs a post with both, in either order
    response = track.invoke(signed_with_both(stack, old, made["secret"], new_first=new_first))

    # Then the new secret's entry verifies it: the post is taken, signed, and stored once
    assert response["statusCode"] == 200, response
    (view,) = [e for e in stored_events(stack) if e["type"] == "page_view"]
    assert view["properties"]["automated"] is False and view["properties"]["signed"] is True


def test_two_entries_of_which_none_is_the_current_secret_are_refused(stack: AwsStack) -> None:
    # Given a secret revoked by a rotation, a post signed with it and a forged one is one no
    # entry of which verifies: several entries add no way in
    old = make_secret(stack)
    rotate(stack, revoke_previous=True)
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


def test_a_sites_answer_sent_back_is_saved_and_its_read_only_fields_are_not(
    stack: AwsStack, clock: FixedClock
) -> None:
    # Given a site with a secret replaced (its answer carries both read-only times)
    make_secret(stack)
    clock.instant = NOW + timedelta(hours=1)
    rotate(stack)
    status, shown = call_admin(stack, "GET", f"/admin/sites/{SITE_ID}")
    assert status == 200 and shown["previous_secret_accepted_until"] is not None

    # When its editor sends the answer back, edited, with the read-only times changed too
    edited = {
        **shown,
        "name": "Renamed",
        "signing_secret_made_at": "2000-01-01T00:00:00.000Z",
        "previous_secret_accepted_until": "2099-01-01T00:00:00.000Z",
    }
    status, saved = call_admin(
        stack, "PUT", f"/admin/sites/{SITE_ID}", body=edited, query={"replace": "true"}
    )

    # Then the edit is saved over the revision read, and the times are the site's own still,
    # in the save's answer and when read again
    assert status == 200, saved
    assert saved["revision"] == shown["revision"] + 1
    status, again = call_admin(stack, "GET", f"/admin/sites/{SITE_ID}")
    for answer in (saved, again):
        assert answer["name"] == "Renamed"
        assert answer["signing_secret_made_at"] == shown["signing_secret_made_at"]
        assert answer["previous_secret_accepted_until"] == shown["previous_secret_accepted_until"]
    # And a second save of the same answer is over a revision since saved: a 409
    status, body = call_admin(
        stack, "PUT", f"/admin/sites/{SITE_ID}", body=edited, query={"replace": "true"}
    )
    assert status == 409 and body["revision"] == saved["revision"], body


@pytest.mark.parametrize("unknown", ["signing_key_id", "secret", "made_at"])
def test_a_site_saved_with_a_field_no_answer_has_is_refused_whole(
    stack: AwsStack, unknown: str
) -> None:
    status, shown = call_admin(stack, "GET", f"/admin/sites/{SITE_ID}")
    status, body = call_admin(
        stack,
        "PUT",
        f"/admin/sites/{SITE_ID}",
        body={**shown, "name": "Renamed", unknown: "x"},
        query={"replace": "true"},
    )
    assert status == 422 and [e["field"] for e in body["errors"]] == [unknown], body
    status, again = call_admin(stack, "GET", f"/admin/sites/{SITE_ID}")
    assert again == shown  # nothing stored: not the name, not the revision


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
    # saying until when the old one is still accepted
    old, new = first.out.splitlines()[1], second.out.splitlines()[1]
    assert old.startswith("tss_") and new.startswith("tss_") and old != new
    assert "shown this once" in first.err and "still accepted until" not in first.err
    _, shown = call_admin(stack, "GET", f"/admin/sites/{SITE_ID}")
    until = shown["previous_secret_accepted_until"]
    assert f"the previous secret is still accepted until {until}" in second.err
    # And both verify while the old one's day lasts
    assert accepted(stack, old, "v_0000000000000001") == 200
    assert accepted(stack, new, "v_0000000000000002") == 200

    # When the new one leaked, and the operator rotates revoking it
    assert cli.main(["sites", "rotate-secret", SITE_ID, "--revoke-previous"]) == 0
    third = capsys.readouterr()

    # Then only the newest verifies, and the note says the previous one is revoked and the
    # one before it, still accepted until then, no longer verifies
    newest = third.out.splitlines()[1]
    assert "the previous secret is revoked" in third.err
    assert f"which was accepted until {until}, no longer verifies" in third.err
    for secret, visitor in ((old, "v_0000000000000003"), (new, "v_0000000000000004")):
        assert accepted(stack, secret, visitor) == 401
    assert accepted(stack, newest, "v_0000000000000005") == 200
    # And both are in the log, as the operator's
    settings = stack.settings()
    now = services.clock(settings).now()
    entries = services.audit_log(settings).entries(
        now - timedelta(hours=1), now + timedelta(hours=1), limit=100
    )
    made = [e for e in entries if e.operation == "sites.rotate_secret"]
    assert sorted((e.detail or "").split(":")[0] for e in made) == ["created", *["rotated"] * 2]
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
