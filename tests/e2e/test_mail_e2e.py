"""Mail on the running local runtime, as a marketer and a recipient meet it: a template stored
with the CLI, a mail sent with it and read in the sent-mail viewer, a tracked link followed,
one-click unsubscribe, and SES bounces and complaints simulated with the CLI."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import RunningTsunagu

TEMPLATE_ID = "e2e-welcome"
PRICING = "https://www.example.com/pricing?utm_source=tsunagu&utm_medium=email"
SUBJECT = "森 葵 様 資料ダウンロードのお礼"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.fixture(scope="module")
def template(tsunagu: RunningTsunagu) -> str:
    """Given the welcome template stored with `tsunagu templates create --file`."""
    definition = {
        "template_id": TEMPLATE_ID,
        "name": "E2E welcome",
        "subject": "{{ lead.name }} 様 資料ダウンロードのお礼",
        "html": (
            "<html><body><p>{{ lead.name }} 様</p>"
            f'<p><a href="{PRICING.replace("&", "&amp;")}">料金プランを見る</a></p>'
            "</body></html>"
        ),
        "from_address": "news@example.com",
        "from_name": "Example Corp",
        "defaults": {"name": "ご担当者"},
    }
    path = Path(tsunagu.workdir) / "welcome-template.json"
    path.write_text(json.dumps(definition, ensure_ascii=False), "utf-8")
    created = tsunagu.cli("templates", "create", "--file", str(path))
    assert created.returncode == 0, created.stderr
    assert f"template {TEMPLATE_ID!r} stored as version 1" in created.stdout
    listed = tsunagu.cli("templates", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"{TEMPLATE_ID}\tv1\tmarketing\t" in listed.stdout
    return TEMPLATE_ID


def signed_up(tsunagu: RunningTsunagu, email: str, name: str = "森 葵") -> None:
    """A demo-form lead. The form also enters it into welcome_nurture, whose welcome mail is
    awaited here: this module's own mail is then always the lead's latest (which `tsunagu mail
    simulate` reports feedback for), and `mails_to` leaves the journey's mail out."""
    status, body = tsunagu.post_json(
        "/forms/demo/submissions", {"email": email, "name": name, "consent": True}
    )
    assert status == 201, body
    deadline = time.monotonic() + 15
    while not [m for m in viewer(tsunagu) if email in m["recipients"]]:
        assert time.monotonic() < deadline, f"no welcome mail for {email}"
        time.sleep(0.1)


def mail_send(tsunagu: RunningTsunagu, email: str, template: str) -> dict[str, Any]:
    done = tsunagu.cli("mail", "send", email, "--template", template)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def simulate(tsunagu: RunningTsunagu, what: str, email: str) -> list[str]:
    done = tsunagu.cli("mail", "simulate", what, email)
    assert done.returncode == 0, done.stderr
    outcomes: list[str] = json.loads(done.stdout)["outcomes"]
    return outcomes


def viewer(tsunagu: RunningTsunagu) -> list[dict[str, Any]]:
    status, headers, body = tsunagu.request("GET", "/_local/mail?format=json")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    mails: list[dict[str, Any]] = json.loads(body)
    return mails


def mails_to(tsunagu: RunningTsunagu, email: str) -> list[dict[str, Any]]:
    """This module's mails (its template's sender) to the address, newest first, as the viewer
    lists them."""
    return [
        m
        for m in viewer(tsunagu)
        if email in m["recipients"] and m["sender"].startswith("Example Corp")
    ]


def header(mail: dict[str, Any], name: str) -> str:
    (value,) = [v for k, v in mail["headers"] if k.lower() == name.lower()]
    return str(value)


def anchors(html: str) -> list[tuple[str, str]]:
    """(href, the whole tag) of every link."""
    return [
        (match.group(2).replace("&amp;", "&"), match.group(0))
        for match in re.finditer(r"""<a\b[^>]*\bhref=(["'])([^"']+)\1[^>]*>""", html)
    ]


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def consent(tsunagu: RunningTsunagu, email: str) -> dict[str, str]:
    shown = tsunagu.cli("leads", "get", email)
    assert shown.returncode == 0, shown.stderr
    state: dict[str, str] = json.loads(shown.stdout)["consent"]
    return state


def test_a_mail_is_sent_tracked_and_unsubscribed_with_one_click(
    tsunagu: RunningTsunagu, template: str
) -> None:
    email = "aoi.mori@example.jp"
    signed_up(tsunagu, email)

    # When the marketer sends the template to the lead
    result = mail_send(tsunagu, email, template)

    # Then it is sent, and the viewer shows it with its headers, HTML and text
    assert result["status"] == "sent", result
    (mail,) = mails_to(tsunagu, email)
    assert mail["message_id"] == result["ses_message_id"]
    assert mail["subject"] == SUBJECT
    assert "news@example.com" in mail["sender"]
    assert header(mail, "X-Tsunagu-Message-Id") == result["message_id"]
    assert header(mail, "List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    unsubscribe = re.fullmatch(r"<([^>]+)>", header(mail, "List-Unsubscribe"))
    assert unsubscribe is not None
    unsubscribe_url = unsubscribe.group(1)
    assert unsubscribe_url.startswith(f"{tsunagu.api_url}/u/")
    assert "森 葵 様" in mail["html"]
    assert "森 葵 様" in mail["text"]
    assert unsubscribe_url in mail["text"]
    # And its links are tracked: no destination is linked directly
    links = anchors(mail["html"])
    visible = [href for href, tag in links if "display:none" not in tag and href != unsubscribe_url]
    (pricing,) = visible
    assert pricing.startswith(f"{tsunagu.api_url}/c/")
    assert all(href != PRICING for href, _ in links)
    assert f"{tsunagu.api_url}/o/" in mail["html"]

    # When the person follows the link
    status, headers, _ = tsunagu.request("GET", path_of(pricing), headers={"user-agent": CHROME})

    # Then they land on the destination
    assert status == 302
    assert headers["Location"] == PRICING

    # When they open the unsubscribe link, the page changes nothing
    status, headers, page = tsunagu.request(
        "GET", path_of(unsubscribe_url), headers={"user-agent": CHROME}
    )
    assert status == 200
    assert "topic:marketing" in page.decode("utf-8")
    assert consent(tsunagu, email) == {"marketing": "opted_in"}

    # When their mail provider posts the RFC 8058 one-click request
    status, headers, page = tsunagu.request(
        "POST",
        path_of(unsubscribe_url),
        b"List-Unsubscribe=One-Click",
        {"content-type": "application/x-www-form-urlencoded"},
    )

    # Then they are unsubscribed, and the next send is skipped
    assert status == 200
    assert "You are unsubscribed" in page.decode("utf-8")
    assert consent(tsunagu, email)["all"] == "opted_out"
    again = mail_send(tsunagu, email, template)
    assert (again["status"], again["reason"]) == ("skipped", "opted_out")
    assert len(mails_to(tsunagu, email)) == 1


def test_one_click_as_multipart_unsubscribes_too(tsunagu: RunningTsunagu, template: str) -> None:
    email = "multipart@example.com"
    signed_up(tsunagu, email, "多田 部")
    assert mail_send(tsunagu, email, template)["status"] == "sent"
    (mail,) = mails_to(tsunagu, email)
    url = header(mail, "List-Unsubscribe").strip("<>")

    body = (
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        b"One-Click\r\n--b0undary--\r\n"
    )
    status, _, _ = tsunagu.request(
        "POST", path_of(url), body, {"content-type": "multipart/form-data; boundary=b0undary"}
    )

    assert status == 200
    assert mail_send(tsunagu, email, template)["reason"] == "opted_out"


def test_a_forged_unsubscribe_link_changes_nothing(tsunagu: RunningTsunagu, template: str) -> None:
    email = "forged.unsubscribe@example.jp"
    signed_up(tsunagu, email)

    status, headers, page = tsunagu.request(
        "POST",
        "/u/k1.eyJrIjoidSJ9.AAAA",
        b"List-Unsubscribe=One-Click",
        {"content-type": "application/x-www-form-urlencoded"},
    )

    assert status == 404
    assert headers["Content-Type"].startswith("text/html")
    assert "Link not valid" in page.decode("utf-8")
    assert consent(tsunagu, email) == {"marketing": "opted_in"}


def test_a_hard_bounce_stops_the_next_mail(tsunagu: RunningTsunagu, template: str) -> None:
    email = "bounce@example.jp"
    signed_up(tsunagu, email, "跳 返")
    assert mail_send(tsunagu, email, template)["status"] == "sent"

    # When SES reports a hard bounce for the lead's mail
    assert simulate(tsunagu, "bounce", email) == ["suppressed: hard bounce"]

    # Then the next send is skipped as bounced, and nothing more reaches the viewer
    result = mail_send(tsunagu, email, template)
    assert (result["status"], result["reason"]) == ("skipped", "bounced")
    assert len(mails_to(tsunagu, email)) == 1


def test_a_complaint_stops_every_mail(tsunagu: RunningTsunagu, template: str) -> None:
    email = "complaint@example.com"
    signed_up(tsunagu, email, "苦 情")
    assert mail_send(tsunagu, email, template)["status"] == "sent"

    # When the person marks the mail as spam
    assert simulate(tsunagu, "complaint", email) == ["suppressed and opted out: complaint"]

    # Then the address is suppressed and opted out, and the next send is skipped
    result = mail_send(tsunagu, email, template)
    assert (result["status"], result["reason"]) == ("skipped", "suppressed")
    assert consent(tsunagu, email)["all"] == "opted_out"
    assert len(mails_to(tsunagu, email)) == 1


def test_soft_bounces_suppress_after_three(tsunagu: RunningTsunagu, template: str) -> None:
    email = "mailbox.full@example.jp"
    signed_up(tsunagu, email, "満 杯")
    assert mail_send(tsunagu, email, template)["status"] == "sent"

    outcomes = [simulate(tsunagu, "soft-bounce", email)[0] for _ in range(3)]

    assert outcomes == ["soft bounce 1 of 3", "soft bounce 2 of 3", "suppressed: 3 soft bounces"]
    assert mail_send(tsunagu, email, template)["reason"] == "bounced"


def test_a_version_stored_a_moment_ago_is_the_one_mail_send_sends(
    tsunagu: RunningTsunagu, template: str
) -> None:
    # Given a mail sent with version 1 of a template (the send function now holds it)
    email = "news.reader@example.jp"
    signed_up(tsunagu, email)
    path = Path(tsunagu.workdir) / "news-template.json"

    def store(subject: str) -> None:
        definition = {"template_id": "e2e-news", "name": "E2E news", "subject": subject,
                      "html": "<html><body><p>お知らせ</p></body></html>",
                      "from_address": "news@example.com", "from_name": "Example Corp"}  # fmt: skip
        path.write_text(json.dumps(definition, ensure_ascii=False), "utf-8")
        assert tsunagu.cli("templates", "create", "--file", str(path)).returncode == 0

    store("ニュース 第1号")
    assert mail_send(tsunagu, email, "e2e-news")["status"] == "sent"

    # When she corrects it, storing version 2, and sends it at once
    store("ニュース 第1号 (訂正)")
    sent = mail_send(tsunagu, email, "e2e-news")

    # Then version 2 is what went out, not the version the send function had read before
    assert sent["status"] == "sent", sent
    assert [m["subject"] for m in mails_to(tsunagu, email)] == [
        "ニュース 第1号 (訂正)",
        "ニュース 第1号",
    ]


def test_an_unknown_template_is_reported(tsunagu: RunningTsunagu, template: str) -> None:
    email = "no.template@example.jp"
    signed_up(tsunagu, email)

    done = tsunagu.cli("mail", "send", email, "--template", "never-written")

    assert done.returncode == 1
    assert "NotFound" in done.stderr
    assert mails_to(tsunagu, email) == []


def test_the_viewer_page_shows_the_sent_mail(tsunagu: RunningTsunagu, template: str) -> None:
    email = "viewer@example.com"
    signed_up(tsunagu, email, "閲 覧")
    assert mail_send(tsunagu, email, template)["status"] == "sent"

    status, headers, body = tsunagu.request("GET", "/_local/mail")

    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    page = body.decode("utf-8")
    assert "閲 覧 様 資料ダウンロードのお礼" in page
    assert "List-Unsubscribe" in page
