"""A site's server posting tracking events signed with the site's secret
(tsunagu.tracking.server_posts), checked by the CRM webhook's signature rules
(tsunagu.signed_requests), and what the batch then is: a person's, or refused whole."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.unit.test_browser_events import CONTEXT, SITE, MemoryTracking, page_view
from tsunagu.api.responses import status_for
from tsunagu.clock import FixedClock
from tsunagu.signed_requests import (
    ReplayedRequest,
    SignatureRejected,
    StaleRequest,
    signature_header,
)
from tsunagu.tracking.browser import ingest_browser_events
from tsunagu.tracking.server_posts import (
    PREVIOUS_SECRET_OVERLAP,
    SECRET_PREFIX,
    SignedPost,
    site_secret,
    verify_server_post,
)
from tsunagu.tracking.stored_sites import SigningKeys

MASTER = b"m" * 64
KEY_ID = "0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
SIGNED_SITE = replace(SITE, signing_keys=SigningKeys(KEY_ID, "2026-12-01T00:00:00.000Z"))
SERVER = replace(CONTEXT, origin=None, user_agent="python-requests/2.32.3", source_ip="192.0.2.10")


def signed(body: bytes, *, at: datetime = NOW, secret: str | None = None) -> SignedPost:
    """``body`` signed as the site's server signs it (README, Tracking from your server)."""
    key = (secret or site_secret(MASTER, SITE.site_id, KEY_ID)).encode()
    timestamp = str(int(at.timestamp()))
    return SignedPost(timestamp, signature_header(key, timestamp, body), body)


def body_of(*events: dict[str, object]) -> bytes:
    return json.dumps({"site_id": SITE.site_id, "events": list(events)}).encode()


# ---------------------------------------------------------------- the secret


def test_a_sites_secret_is_its_own_and_changes_with_its_key_id() -> None:
    secret = site_secret(MASTER, "corp", KEY_ID)
    assert secret.startswith(SECRET_PREFIX) and len(secret) == len(SECRET_PREFIX) + 64
    assert site_secret(MASTER, "corp", KEY_ID) == secret  # derived, so never stored
    assert site_secret(MASTER, "other", KEY_ID) != secret
    assert site_secret(MASTER, "corp", "f" * 32) != secret  # a rotation
    assert site_secret(b"n" * 64, "corp", KEY_ID) != secret


# ---------------------------------------------------------------- the signature check


def test_a_post_signed_with_the_sites_secret_now_is_verified() -> None:
    verified = verify_server_post(SIGNED_SITE, signed(b"{}"), lambda: MASTER, NOW)
    assert verified.timestamp == NOW
    assert verified.keep_until == NOW + timedelta(minutes=5)


def test_a_post_signed_with_another_secret_is_refused_as_unauthenticated() -> None:
    rotated_away = site_secret(MASTER, SITE.site_id, "f" * 32)
    for post in (
        signed(b"{}", secret=rotated_away),
        signed(b"{}", secret=site_secret(MASTER, "other-site", KEY_ID)),
        replace(signed(b"{}"), body=b'{"site_id": "corp"}'),  # the body changed on the way
        replace(signed(b"{}"), signature="v1=" + "0" * 64),
        replace(signed(b"{}"), signature=""),
        replace(signed(b"{}"), timestamp="yesterday"),
    ):
        with pytest.raises(SignatureRejected) as refused:
            verify_server_post(SIGNED_SITE, post, lambda: MASTER, NOW)
        assert status_for(refused.value) == 401
        assert not isinstance(refused.value, StaleRequest)


@pytest.mark.parametrize("seconds", [-301, 301, -86_400])
def test_a_post_signed_outside_the_window_is_refused_as_stale(seconds: int) -> None:
    post = signed(b"{}", at=NOW + timedelta(seconds=seconds))
    with pytest.raises(StaleRequest, match="more than 300 seconds") as refused:
        verify_server_post(SIGNED_SITE, post, lambda: MASTER, NOW)
    assert status_for(refused.value) == 401


@pytest.mark.parametrize("seconds", [-300, 300])
def test_a_post_signed_at_the_edge_of_the_window_is_verified(seconds: int) -> None:
    post = signed(b"{}", at=NOW + timedelta(seconds=seconds))
    verify_server_post(SIGNED_SITE, post, lambda: MASTER, NOW)


OLD_KEY_ID = "fedcba9876543210fedcba9876543210"
ROTATED_AT = NOW - timedelta(hours=1)
ROTATED_SITE = replace(
    SITE,
    signing_keys=SigningKeys(
        KEY_ID, "2026-12-04T08:00:00.000Z", OLD_KEY_ID, "2026-12-05T08:00:00.000Z"
    ),
)
"""Rotated an hour before NOW: OLD_KEY_ID's secret is accepted until a day after the rotation."""


def test_the_secret_a_rotation_replaced_is_accepted_until_its_overlap_ends() -> None:
    assert datetime(2026, 12, 5, 8, 0, tzinfo=UTC) == ROTATED_AT + PREVIOUS_SECRET_OVERLAP
    old = site_secret(MASTER, SITE.site_id, OLD_KEY_ID)
    last_second = ROTATED_AT + PREVIOUS_SECRET_OVERLAP - timedelta(seconds=1)
    for now in (NOW, last_second):
        verify_server_post(ROTATED_SITE, signed(b"{}", at=now, secret=old), lambda: MASTER, now)
        verify_server_post(ROTATED_SITE, signed(b"{}", at=now), lambda: MASTER, now)

    # From the instant it ends, only the current secret verifies
    for now in (ROTATED_AT + PREVIOUS_SECRET_OVERLAP, NOW + timedelta(days=30)):
        with pytest.raises(SignatureRejected, match="does not match"):
            verify_server_post(ROTATED_SITE, signed(b"{}", at=now, secret=old), lambda: MASTER, now)
        verify_server_post(ROTATED_SITE, signed(b"{}", at=now), lambda: MASTER, now)


def test_a_post_signed_with_both_secrets_is_one_request_whichever_entry_comes_first() -> None:
    # Given a post signed with the old and the new secret, in either order
    old = site_secret(MASTER, SITE.site_id, OLD_KEY_ID).encode()
    new = site_secret(MASTER, SITE.site_id, KEY_ID).encode()
    timestamp = str(int(NOW.timestamp()))
    entries = [signature_header(s, timestamp, b"{}") for s in (old, new)]
    keys = {
        verify_server_post(
            ROTATED_SITE, SignedPost(timestamp, ", ".join(order), b"{}"), lambda: MASTER, NOW
        ).replay_key
        for order in (entries, entries[::-1])
    }
    # Then its replay key is the same (the current secret's): sent again, it is a replay
    assert len(keys) == 1


def test_a_signed_post_for_a_site_without_a_secret_says_how_to_make_one() -> None:
    def master() -> bytes:
        raise AssertionError("no key is read for a site that has no secret")

    with pytest.raises(SignatureRejected, match=r"no signing secret.*signing-secret"):
        verify_server_post(SITE, signed(b"{}"), master, NOW)


# ---------------------------------------------------------------- the batch


def ingest(store: MemoryTracking, post: SignedPost | None, *, at: datetime = NOW):  # type: ignore[no-untyped-def]
    events = json.loads(post.body)["events"] if post else [page_view()]
    context = replace(SERVER, signed=post)
    return ingest_browser_events(
        SITE.site_id,
        events,
        context,
        store=store,
        clock=FixedClock(at),
        site_signing_key=lambda: MASTER,
    )


def test_a_signed_server_post_is_a_persons_event_without_the_servers_address() -> None:
    store = MemoryTracking({"v_0123456789abcdef": "lead_1"})
    store.site = SIGNED_SITE
    result = ingest(store, signed(body_of(page_view(type="purchase"))))
    assert result.accepted == 1
    (event,) = store.stored
    assert event.lead_id == "lead_1"
    # Not judged a machine's, whatever the server's user agent: the site proved it said so
    assert event.properties["automated"] is False
    assert event.properties["signed"] is True
    assert "reasons" not in event.properties and "signals" not in event.properties
    # The request came from the site's server: its address and agent are not the visitor's
    assert "ip" not in event.properties and "user_agent" not in event.properties


def test_a_badly_signed_or_stale_post_stores_nothing() -> None:
    store = MemoryTracking()
    store.site = SIGNED_SITE
    body = body_of(page_view())
    with pytest.raises(SignatureRejected):
        ingest(store, signed(body, secret=site_secret(MASTER, SITE.site_id, "f" * 32)))
    with pytest.raises(StaleRequest):
        ingest(store, signed(body, at=NOW - timedelta(minutes=10)))
    assert store.stored == [] and store.signed_posts == set()


def test_a_signed_post_is_taken_once() -> None:
    store = MemoryTracking()
    store.site = SIGNED_SITE
    post = signed(body_of(page_view()))
    ingest(store, post)
    with pytest.raises(ReplayedRequest) as replayed:
        ingest(store, post, at=NOW + timedelta(seconds=30))
    assert status_for(replayed.value) == 409
    assert len(store.stored) == 1


def test_an_unsigned_post_without_origin_is_still_a_machines() -> None:
    store = MemoryTracking()
    store.site = SIGNED_SITE  # a site with a secret: an unsigned post proves nothing all the same
    ingest(store, None)
    (event,) = store.stored
    assert event.properties["automated"] is True
    assert "no_origin" in event.properties["reasons"]
    assert "signed" not in event.properties
