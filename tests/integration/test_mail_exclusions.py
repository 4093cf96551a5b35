"""Global exclusions through the admin API and the real send path (moto, in-process): a domain
put on the competitors' list stops marketing mail to a lead who consented, the skipped send says
``excluded``, taking it off lets mail go again, and bad entries are 422 changing nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import AwsStack
from tests.integration.mail_helpers import capture, prepare_mail, save_template, send
from tests.support.admin import event
from tsunagu import services
from tsunagu.api import admin
from tsunagu.commands import mail
from tsunagu.commands.access import Role
from tsunagu.errors import ValidationFailed
from tsunagu.mail.exclusions import MAX_LIST_BYTES, ExclusionList, exclusion_entry
from tsunagu.store.mail import forget_cached_templates

RIVAL = "buyer@example.jp"  # on the test stage's allowlist, so it may be mailed


def call(
    aws: AwsStack, method: str, path: str, body: Any = None, role: Role = Role.MARKETER
) -> tuple[int, Any]:
    response = admin.handle(event(method, path, role=role, body=body), aws.settings())
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def mailing(aws: AwsStack) -> AwsStack:
    prepare_mail(aws)
    save_template(aws)
    return aws


def test_a_domain_on_the_competitors_list_gets_no_marketing_mail_until_it_is_taken_off(
    mailing: AwsStack,
) -> None:
    lead_id = capture(mailing, RIVAL, consent=True)
    rivals = {"value": "example.jp", "list": "competitors", "note": "競合"}
    status, added = call(mailing, "POST", "/admin/exclusions", rivals)
    assert status == 201, added
    assert (added["kind"], added["value"]) == ("domain", "example.jp")

    # The sender's cache is half a minute: a new function (a cold container) reads it now
    forget_cached_templates()
    skipped = send(mailing, lead_id)
    assert (skipped["status"], skipped["reason"]) == ("skipped", "excluded")
    [event_] = [e for e in services.lead_repository(mailing.settings()).events(lead_id)
                if e.type == "mail_skipped"]  # fmt: skip
    assert event_.properties["excluded_by"] == "competitors: example.jp"

    status, listed = call(mailing, "GET", "/admin/exclusions", role=Role.VIEWER)
    assert status == 200 and [e["value"] for e in listed["items"]] == ["example.jp"]

    status, _ = call(mailing, "DELETE", "/admin/exclusions/example.jp")
    assert status == 200
    forget_cached_templates()
    again = send(mailing, lead_id)
    assert again["status"] == "sent", again


def test_an_internationalised_domain_is_excluded_and_taken_off_as_it_was_typed(
    mailing: AwsStack,
) -> None:
    # Given a lead at straße.example.com who consented (on the allowlist of the test stage), and
    # straße.example.com and 日本.example.jp excluded as a person types them
    mailing.environment["TSUNAGU_MAIL_ALLOWLIST"] += ",xn--strae-oqa.example.com"
    lead_id = capture(mailing, "info@straße.example.com", consent=True)
    for typed, stored in (("straße.example.com", "xn--strae-oqa.example.com"),
                          ("日本.example.jp", "xn--wgv71a.example.jp"),
                          ("rival@日本.example.jp", "rival@xn--wgv71a.example.jp")):  # fmt: skip
        status, added = call(mailing, "POST", "/admin/exclusions", {"value": typed})
        assert (status, added["value"]) == (201, stored), added

    # Then no marketing mail goes to the lead
    forget_cached_templates()
    skipped = send(mailing, lead_id)
    assert (skipped["status"], skipped["reason"]) == ("skipped", "excluded"), skipped

    # And each entry is taken off by the text it was added with
    for typed in ("日本.example.jp", "rival@日本.example.jp", "straße.example.com"):
        status, answer = call(mailing, "DELETE", f"/admin/exclusions/{typed}")
        assert status == 200, answer
    assert services.mail_repository(mailing.settings()).exclusions(fresh=True).entries == ()
    forget_cached_templates()
    assert send(mailing, lead_id)["status"] == "sent"


@pytest.mark.parametrize(
    ("method", "path", "body", "role", "status"),
    [
        ("POST", "/admin/exclusions", {"value": "not a domain"}, Role.MARKETER, 422),
        ("POST", "/admin/exclusions", {"value": "exam\x85ple.jp"}, Role.MARKETER, 422),  # idna
        ("POST", "/admin/exclusions", {"value": "example.jp", "list": "Bad"}, Role.MARKETER, 422),
        ("POST", "/admin/exclusions", {"value": "co.jp"}, Role.MARKETER, 422),  # public suffix
        ("POST", "/admin/exclusions", {"value": "com.au"}, Role.MARKETER, 422),
        ("POST", "/admin/exclusions", {"value": "example.jp", "extra": 1}, Role.MARKETER, 422),
        ("POST", "/admin/exclusions", {"value": "example.jp"}, Role.VIEWER, 403),
        ("DELETE", "/admin/exclusions/example.com", None, Role.MARKETER, 404),
    ],
)  # fmt: skip
def test_bad_exclusions_are_refused_and_change_nothing(
    mailing: AwsStack, method: str, path: str, body: Any, role: Role, status: int
) -> None:
    got, answer = call(mailing, method, path, body, role)
    assert got == status, answer
    assert answer["message"]
    assert services.mail_repository(mailing.settings()).exclusions(fresh=True).entries == ()


def test_a_list_too_large_for_its_stored_item_is_refused_with_a_422_not_a_500(
    aws: AwsStack,
) -> None:
    # Given a list near its budget (entries with notes at the API's limit, as people write
    # them in Japanese: 1.5 KB each in UTF-8)
    note = "競合他社のため配信停止。" * 41
    store = services.mail_repository(aws.settings())
    at, by = "2026-12-01T00:00:00.000Z", "m@example.com"
    entries: list[Any] = []
    while len(ExclusionList(tuple(entries)).stored().encode()) < MAX_LIST_BYTES - 10_000:
        entries.append(
            exclusion_entry(f"rival{len(entries)}.example.jp", "competitors", note, by, at)
        )
    store.save_exclusions(ExclusionList(tuple(entries), 1))
    # When marketers go on adding such entries (past DynamoDB's 400 KB, had nothing stopped them)
    answers = []
    for n in range(60):
        body = {"value": f"more{n}.example.jp", "list": "competitors", "note": note}
        answers.append(call(aws, "POST", "/admin/exclusions", body))
        if answers[-1][0] != 201:
            break
    # Then the one that would not fit is a 422 saying the list is full and what to do
    status, refused = answers[-1]
    assert (status, refused["code"]) == (422, "validation_failed"), refused
    assert "the exclusions are full" in refused["message"]
    assert "Remove entries no longer needed" in refused["message"]
    # And nothing of it was stored; the list still reads, and an entry still comes off
    stored = store.exclusions(fresh=True)
    assert len(stored.entries) == len(entries) + len(answers) - 1
    assert stored.excluding_entry(f"more{len(answers) - 1}.example.jp") is None
    status, _ = call(aws, "DELETE", "/admin/exclusions/rival0.example.jp")
    assert status == 200


def test_the_cli_s_note_has_the_api_s_limit(aws: AwsStack) -> None:
    # The CLI passes --note to the same command the admin API calls
    ports, actor = services.mail_commands(aws.settings()), services.operator(aws.settings())
    with pytest.raises(ValidationFailed) as refused:
        mail.exclude(ports, actor, "rival.example.jp", "competitors", "x" * 500_000)
    assert [e.field for e in refused.value.errors] == ["note"]
    assert services.mail_repository(aws.settings()).exclusions(fresh=True).entries == ()
