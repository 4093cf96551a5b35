"""Replies on the local runtime, as `make up` gives them: the template's receipt rule read like
any other resource, and the sent-mail viewer's reply form answering a mail as its recipient
would - the message in the rule's bucket, the rule's function invoked with SES's receipt."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from tests.support.runtime import http_request, move_clock, runtime_in_process
from tsunagu import services
from tsunagu_local.__main__ import LOCAL_REPLY_DOMAIN, install_pages
from tsunagu_local.runtime import LocalRuntime

LEAD = "hanako.sato@example.jp"


@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalRuntime]:
    start = datetime(2026, 12, 1, 1, tzinfo=UTC)  # a Tuesday, 10:00 in Tokyo
    parameters = {"ReplyDomain": LOCAL_REPLY_DOMAIN}
    with runtime_in_process("local-replies-", start, parameters) as running:
        install_pages(running)
        yield running


def settle(runtime: LocalRuntime) -> None:
    move_clock(runtime.api_url, {"settle": True}, timeout=120)


def events_of(runtime: LocalRuntime, lead_id: str, kind: str) -> list[dict[str, object]]:
    events = services.lead_repository(runtime.settings()).events(lead_id, limit=100)
    return [e.properties for e in events if e.type == kind]


def reply(runtime: LocalRuntime, message_id: str, body: str, automatic: bool = False) -> str:
    form = {"message_id": message_id, "body": body, **({"automatic": "on"} if automatic else {})}
    status, _, page = http_request(
        "POST",
        f"{runtime.api_url}/_local/mail/reply",
        urlencode(form).encode(),
        {"content-type": "application/x-www-form-urlencoded"},
    )
    assert status == 200
    return page.decode()


def test_the_viewer_answers_a_mail_and_the_lead_record_shows_it(runtime: LocalRuntime) -> None:
    assert runtime.receiving is not None and runtime.receiving.domains == [LOCAL_REPLY_DOMAIN]

    # Given a lead signed up on the demo form, sent the welcome mail by its journey
    status, _, answer = http_request(
        "POST",
        f"{runtime.api_url}/forms/demo/submissions",
        json.dumps({"email": LEAD, "name": "佐藤 花子", "consent": True}).encode(),
        {"content-type": "application/json", "origin": runtime.api_url},
    )
    assert status == 201, answer
    lead_id = json.loads(answer)["lead_id"]
    settle(runtime)
    (welcome,) = [m for m in runtime.mailbox.sent_mail() if LEAD in m.recipients]
    assert dict(welcome.headers)["Reply-To"].endswith(f"@{LOCAL_REPLY_DOMAIN}")

    # The viewer offers to answer it
    _, _, viewer = http_request("GET", f"{runtime.api_url}/_local/mail")
    assert b"action='/_local/mail/reply'" in viewer and b"name='automatic'" in viewer

    # When the lead's out-of-office answers, then the lead asks to stop
    page = reply(runtime, welcome.message_id, "不在です。", automatic=True)
    assert "recorded: automatic reply" in page
    page = reply(runtime, welcome.message_id, "配信停止してください。")
    assert "recorded: reply; opted out of &#x27;marketing&#x27;" in page
    settle(runtime)

    # Then the lead's record has both, told apart, and the opt-out with the lead's words
    (auto,) = events_of(runtime, lead_id, "email_auto_replied")
    assert auto["automated"] is True
    (replied,) = events_of(runtime, lead_id, "email_replied")
    assert replied["classification"] == "stop"
    assert str(replied["raw"]).startswith("s3://")
    (changed,) = events_of(runtime, lead_id, "consent_changed")
    assert (changed["method"], changed["status"]) == ("reply", "opted_out")
    # And a person got the reply (the demo template's sender: no Reply-To, no owner)
    notices = [m for m in runtime.mailbox.sent_mail() if m.subject.startswith("[返信 / Reply]")]
    assert len(notices) == 1 and notices[0].text is not None and LEAD in notices[0].text
    assert f"{runtime.api_url}/console/#/leads/{LEAD.replace('@', '%40')}" in notices[0].text
