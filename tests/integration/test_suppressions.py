"""The suppression list through the admin API (on moto, in-process): read newest first from its
own sparse index, filtered and paged; a suppression lifted only by whom it may be, only with a
reason, and never when it changed in between - each lift on the lead's timeline and in the
audit log."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AwsStack
from tests.support.admin import event
from tests.support.cli import runtime_here
from tests.support.leads import store_lead
from tsunagu import cli, services
from tsunagu.api import admin
from tsunagu.commands.access import Role
from tsunagu.leads.lookup import lead_by_email
from tsunagu.leads.model import Lead, LeadEvent
from tsunagu.settings import Settings

MANUAL = "manual.lead@example.jp"
BOUNCED = "bounced.lead@example.jp"
COMPLAINED = "complained.lead@example.jp"
SOFT = "soft.lead@example.jp"
FREE = "free.lead@example.jp"


def call(settings: Settings, *args: Any, **kwargs: Any) -> tuple[int, Any]:
    response = admin.handle(event(*args, **kwargs), settings)
    return response["statusCode"], json.loads(response.get("body") or "null")


def lead(settings: Settings, email: str) -> Lead:
    return lead_by_email(services.mail_repository(settings), email)


def suppress(settings: Settings, email: str, reason: str, at: str) -> str:
    store = services.mail_repository(settings)
    lead = lead_by_email(store, email)
    marker = LeadEvent(
        f"evt_{reason}", "mail_suppressed", at, lead.lead_id, properties={"reason": reason}
    )
    store.suppress(lead.lead_id, email, reason, at, marker)
    return lead.lead_id


@pytest.fixture
def stack(aws: AwsStack) -> Settings:
    """Five leads, four suppressed a day apart (oldest first: manual, hard bounce, complaint,
    soft-bounce limit after two counted soft bounces)."""
    settings = aws.settings()
    for email in (MANUAL, BOUNCED, COMPLAINED, SOFT, FREE):
        store_lead(aws, email)
    suppress(settings, MANUAL, "manual", "2026-11-01T01:00:00+00:00")
    suppress(settings, BOUNCED, "hard_bounce", "2026-11-02T01:00:00+00:00")
    suppress(settings, COMPLAINED, "complaint", "2026-11-03T01:00:00+00:00")
    store = services.mail_repository(settings)
    soft = lead(settings, SOFT)
    for feedback in ("fb-1", "fb-2"):
        store.count_soft_bounce(soft.lead_id, SOFT, "2026-11-04T00:00:00+00:00", feedback)
    suppress(settings, SOFT, "soft_bounce_limit", "2026-11-04T01:00:00+00:00")
    return settings


def listed(settings: Settings, **query: str) -> tuple[int, Any]:
    return call(settings, "GET", "/admin/suppressions", role=Role.VIEWER, query=query or None)


def test_the_list_is_newest_first_filtered_by_reason_and_paged(stack: Settings) -> None:
    status, page = listed(stack)
    assert status == 200
    assert [(i["email"], i["reason"]) for i in page["items"]] == [
        (SOFT, "soft_bounce_limit"),
        (COMPLAINED, "complaint"),
        (BOUNCED, "hard_bounce"),
        (MANUAL, "manual"),
    ]
    assert page["next_cursor"] is None
    assert page["items"][0]["at"] == "2026-11-04T01:00:00+00:00"
    # Each says who may lift it: the console offers the lift on this, not a rule of its own
    assert [i["liftable_by"] for i in page["items"]] == [
        ["admin"],
        [],
        ["admin"],
        ["admin", "marketer"],
    ]

    _, bounces = listed(stack, reason="hard_bounce")
    assert [i["email"] for i in bounces["items"]] == [BOUNCED]

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        _, part = listed(stack, limit="3", **({"cursor": cursor} if cursor else {}))
        seen += [i["email"] for i in part["items"]]
        cursor = part["next_cursor"]
        if cursor is None:
            break
    assert seen == [SOFT, COMPLAINED, BOUNCED, MANUAL]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"reason": "bored"}, "reason"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_a_bad_filter_or_cursor_is_a_422_naming_it(
    stack: Settings, query: dict[str, str], field: str
) -> None:
    status, body = listed(stack, **query)
    assert status == 422, body
    assert field in json.dumps(body)


def test_a_marketer_lifts_a_manual_suppression_with_a_reason(stack: Settings) -> None:
    status, body = call(
        stack,
        "DELETE",
        f"/admin/leads/{MANUAL}/suppression",
        role=Role.MARKETER,
        body={"note": "asked for the newsletter again by phone"},
    )
    assert status == 200, body
    assert body["lifted"] == "manual"
    store = services.mail_repository(stack)
    lifted_lead = lead(stack, MANUAL)
    assert store.recipient(lifted_lead.lead_id, "marketing").consent.suppression is None
    assert MANUAL not in [i["email"] for i in listed(stack)[1]["items"]]
    lifted = [e for e in store.events(lifted_lead.lead_id) if e.type == "mail_unsuppressed"]
    assert [e.properties["reason"] for e in lifted] == ["manual"]
    (entry,) = audited(stack, "leads.unsuppress")
    assert entry.outcome == "done" and entry.detail == "asked for the newsletter again by phone"
    assert (entry.before, entry.after) == ({"suppressed": "manual"}, {"suppressed": None})


def test_a_bounce_is_lifted_by_an_admin_only_and_its_soft_bounce_count_starts_again(
    stack: Settings,
) -> None:
    for email in (BOUNCED, SOFT):
        status, body = call(
            stack,
            "DELETE",
            f"/admin/leads/{email}/suppression",
            role=Role.MARKETER,
            body={"note": "the address works again"},
        )
        assert status == 403 and "only an admin" in body["message"], body
    assert len(listed(stack)[1]["items"]) == 4  # nothing lifted

    for email in (BOUNCED, SOFT):
        status, body = call(
            stack,
            "DELETE",
            f"/admin/leads/{email}/suppression",
            role=Role.ADMIN,
            body={"note": "the customer corrected the address"},
        )
        assert status == 200, body
    store = services.mail_repository(stack)
    soft = lead(stack, SOFT)
    # The next soft bounce is the first of a new count, not the third of the old one.
    assert store.count_soft_bounce(soft.lead_id, SOFT, "2026-11-05T00:00:00+00:00", "fb-3") == 1
    assert [i["email"] for i in listed(stack)[1]["items"]] == [COMPLAINED, MANUAL]


def test_no_one_lifts_a_complaint(stack: Settings) -> None:
    status, body = call(
        stack,
        "DELETE",
        f"/admin/leads/{COMPLAINED}/suppression",
        role=Role.ADMIN,
        body={"note": "sales says they want mail"},
    )
    assert status == 403 and "complained" in body["message"], body
    assert COMPLAINED in [i["email"] for i in listed(stack)[1]["items"]]


@pytest.mark.parametrize(
    ("email", "role", "body", "expected"),
    [
        (FREE, Role.ADMIN, {"note": "x"}, 404),  # not suppressed
        (MANUAL, Role.ADMIN, {}, 422),  # no reason given
        (MANUAL, Role.ADMIN, {"note": ""}, 422),
        (MANUAL, Role.ADMIN, {"note": "x", "force": True}, 422),
        (MANUAL, Role.VIEWER, {"note": "x"}, 403),
        (MANUAL, Role.SALES, {"note": "x"}, 403),
        ("nobody@example.jp", Role.ADMIN, {"note": "x"}, 404),
    ],
)
def test_refused_lifts_change_nothing(
    stack: Settings, email: str, role: Role, body: dict[str, Any], expected: int
) -> None:
    status, answer = call(
        stack, "DELETE", f"/admin/leads/{email}/suppression", role=role, body=body
    )
    assert status == expected, answer
    assert answer["message"]
    assert len(listed(stack)[1]["items"]) == 4


def audited(settings: Settings, operation: str) -> list[Any]:
    now = services.clock(settings).now()
    entries = services.audit_log(settings).entries(
        now - timedelta(hours=1), now + timedelta(hours=1), limit=100
    )
    return [e for e in entries if e.operation == operation]


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        (COMPLAINED, "complaint"),
        (BOUNCED, "hard_bounce"),
        (SOFT, "soft_bounce_limit"),
        (MANUAL, "manual"),
    ],
)
def test_suppressing_a_suppressed_lead_by_hand_is_a_409_that_keeps_its_reason(
    stack: Settings, email: str, reason: str
) -> None:
    # (found by an audit: a marketer "suppressed" a complained address by hand, and then lifted
    # the manual suppression that had replaced the complaint no one may lift)
    store = services.mail_repository(stack)
    before = store.suppression(lead(stack, email).lead_id)

    status, body = call(
        stack,
        "POST",
        f"/admin/leads/{email}/suppression",
        role=Role.MARKETER,
        body={"note": "belt and braces"},
    )

    assert status == 409, body
    assert reason in body["message"] and "already" in body["message"], body
    assert store.suppression(lead(stack, email).lead_id) == before
    assert not audited(stack, "leads.suppress")  # nothing changed, nothing logged as changed
    if reason != "manual":
        # And the marketer still may not lift it
        status, body = call(
            stack,
            "DELETE",
            f"/admin/leads/{email}/suppression",
            role=Role.MARKETER,
            body={"note": "lift"},
        )
        assert status == 403, body


def test_a_manual_suppression_is_logged_with_what_was_there_before(stack: Settings) -> None:
    status, body = call(
        stack,
        "POST",
        f"/admin/leads/{FREE}/suppression",
        role=Role.MARKETER,
        body={"note": "asked by phone"},
    )

    assert status == 200, body
    assert FREE in [i["email"] for i in listed(stack)[1]["items"]]
    (entry,) = audited(stack, "leads.suppress")
    assert (entry.before, entry.after) == ({"suppressed": None}, {"suppressed": "manual"})


def test_a_suppression_replaces_a_weaker_one_only(stack: Settings) -> None:
    store = services.mail_repository(stack)
    at = "2026-11-06T01:00:00+00:00"
    # The store's own condition decides (a command's read before could race a bounce)
    for email, reason, standing in [
        (BOUNCED, "manual", "hard_bounce"),
        (COMPLAINED, "hard_bounce", "complaint"),
        (COMPLAINED, "soft_bounce_limit", "complaint"),
        (SOFT, "hard_bounce", "soft_bounce_limit"),  # as strong: the first stands
    ]:
        lead_id = lead(stack, email).lead_id
        marker = LeadEvent(f"evt_{email}_{reason}", "mail_suppressed", at, lead_id)
        kept = store.suppress(lead_id, email, reason, at, marker)
        assert kept is not None and kept.reason == standing, (email, reason)
        assert store.suppression(lead_id) == kept
        assert not [e for e in store.events(lead_id) if e.event_id == marker.event_id]
    # A stronger one replaces it: a bounce of a manually suppressed address is an admin's to lift
    manual = lead(stack, MANUAL).lead_id
    marker = LeadEvent("evt_bounce", "mail_suppressed", at, manual)
    assert store.suppress(manual, MANUAL, "hard_bounce", at, marker) is None
    replaced = store.suppression(manual)
    assert replaced is not None and (replaced.reason, replaced.at) == ("hard_bounce", at)


def test_a_suppression_that_changed_since_it_was_read_is_not_lifted(stack: Settings) -> None:
    store = services.mail_repository(stack)
    manual = lead(stack, MANUAL)
    read = store.suppression(manual.lead_id)
    assert read is not None and read.reason == "manual"
    # Meanwhile the address hard-bounces: a decision about the manual suppression must not
    # lift the bounce.
    suppress(stack, MANUAL, "hard_bounce", "2026-11-06T01:00:00+00:00")
    marker = LeadEvent("evt_lift", "mail_unsuppressed", "2026-11-06T02:00:00+00:00", manual.lead_id)
    assert store.lift_suppression(read, marker) is False
    current = store.suppression(manual.lead_id)
    assert current is not None and current.reason == "hard_bounce"
    assert not [e for e in store.events(manual.lead_id) if e.event_id == "evt_lift"]


def test_the_cli_lists_and_lifts_as_the_api_does(
    stack: Settings,
    aws: AwsStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A folder whose runtime state names the test stack, as `make up` leaves one.
    runtime_here(aws, tmp_path, monkeypatch)
    assert cli.main(["suppressions", "list", "--reason", "manual"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"2026-11-01T01:00:00+00:00  manual             {MANUAL}"]
    assert cli.main(["leads", "unsuppress", MANUAL, "--note", "asked again"]) == 0
    assert "no longer suppressed (was manual" in capsys.readouterr().out
    assert cli.main(["leads", "unsuppress", COMPLAINED, "--note", "sales asked"]) != 0
    assert "complained" in capsys.readouterr().err
    assert [i["email"] for i in listed(stack)[1]["items"]] == [SOFT, COMPLAINED, BOUNCED]


def test_the_lead_page_says_whether_and_why_the_lead_is_suppressed(
    stack: Settings,
    aws: AwsStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # (found by an audit: a bounced lead's page read "marketing: opted_in" and nothing else, so
    # no one could see why no mail went, nor that "Suppress" had nothing left to do)
    shown: dict[str, Any] = {}
    for email in (BOUNCED, COMPLAINED, FREE):
        status, body = call(stack, "GET", f"/admin/leads/{email}", role=Role.VIEWER)
        assert status == 200, body
        shown[email] = body["suppression"]
    assert shown == {
        BOUNCED: {
            "reason": "hard_bounce",
            "at": "2026-11-02T01:00:00+00:00",
            "liftable_by": ["admin"],
        },
        COMPLAINED: {"reason": "complaint", "at": "2026-11-03T01:00:00+00:00", "liftable_by": []},
        FREE: None,
    }

    # And `tsunagu leads get` prints what the API answers
    runtime_here(aws, tmp_path, monkeypatch)
    assert cli.main(["leads", "get", BOUNCED]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["suppression"] == shown[BOUNCED]


def test_an_empty_reason_is_not_every_reason(stack: Settings) -> None:
    # (found by the admin fuzz: ?reason= listed every suppression)
    status, body = listed(stack, reason="")
    assert status == 422 and "reason" in json.dumps(body), body
