"""The console in Debian's Chromium, on the runtime `make up` starts, used as people would:
a marketer finds a lead by its company and sees a scanner's click marked automated, pauses a
journey and resumes it with a policy; a viewer finds no button that changes anything and is
refused when a change is forced; an admin finds those actions in the audit log and exports it.
Every screen is checked with axe-core (no serious or critical violations), in both languages.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import APIResponse, Locator, Page, Request, Route, expect

from tests.e2e.conftest import (
    RunningTsunagu,
    add_console_user,
    admin_password,
    console_page,
    start_tsunagu,
    tracked_links,
)
from tests.support.browser import Chromium, accessibility_problems, screenshot
from tests.support.runtime import wait_for
from tsunagu import services
from tsunagu.clock import isoformat
from tsunagu.commands.access import Actor, Role
from tsunagu.commands.audit import MAX_AUDIT_ENTRIES, AuditEntry
from tsunagu.ids import new_id
from tsunagu.settings import Settings
from tsunagu.signed_requests import signature_header
from tsunagu_local.people import ADMIN_EMAIL

PASSWORD = "Console-test-2026"
MARKETER = "marketer.ito@example.com"
VIEWER = "viewer.ueno@example.com"
LEAD = "kaori.sato@example.jp"
COMPANY = "株式会社ツナグ商事"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SCREENS = ("leads", "segments", "journeys", "templates", "forms", "imports", "settings")
BULK_WRITER = "crm.sync@example.com"
STREAM_WAIT_SECONDS = 120
"""A bound on the runtime's stream pollers counting a mail (a broken run, not a measure)."""


@pytest.fixture(scope="module")
def tsunagu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTsunagu]:
    """The runtime with a marketer and a viewer, and a lead whose mail a scanner clicked."""
    running = start_tsunagu(tmp_path_factory.mktemp("console"), "--no-persist")
    add_console_user(running, MARKETER, PASSWORD, "marketer")
    add_console_user(running, VIEWER, PASSWORD, "viewer")
    status, _ = running.post_json(
        "/forms/demo/submissions", {"email": LEAD, "name": "佐藤 香織", "company": COMPANY}
    )
    assert status == 201
    # A security gateway follows every link of a mail the moment it arrives
    for link in tracked_links(running, LEAD)["links"]:
        path = link.removeprefix(running.api_url)
        assert running.request("GET", path, headers={"user-agent": CHROME})[0] == 302

    # A word search reads the lead terms, and the lead page the lead's journeys: both written
    # from the streams, asynchronously as in AWS, and no screen refreshes by itself
    def found_and_entered() -> bool:
        found = LEAD in running.cli("leads", "search", "ツナグ").stdout
        shown = json.loads(running.cli("leads", "get", LEAD).stdout)
        return found and any(j["journey_id"] == "welcome_nurture" for j in shown["journeys"])

    wait_for(
        found_and_entered,
        timeout=STREAM_WAIT_SECONDS,
        what=f"{LEAD} found by its company and in welcome_nurture",
        interval=0.5,
    )
    yield running
    if running.process.poll() is None:
        running.stop()


def open_screen(page: Page, tsunagu: RunningTsunagu, screen: str) -> None:
    page.goto(f"{tsunagu.api_url}/console/#/{screen}")
    page.wait_for_url(re.compile(f"#/{re.escape(screen)}$"))
    expect(page.locator("main h1")).to_be_visible()
    settled(page)


def settled(page: Page) -> None:
    """Wait until the screen has filled in: no request of the console's under way (it marks
    its main region aria-busy meanwhile) and no part of the screen still loading. Not the
    network's silence: a slow machine or the canvas's live counts may never give half a
    second of it."""
    expect(page.locator("main")).to_have_attribute("aria-busy", "false")
    expect(page.locator("main .loading")).to_have_count(0)
    expect(page.locator("main")).to_have_attribute("aria-busy", "false")


def test_a_marketer_finds_a_lead_by_its_company_and_sees_the_scanner_marked(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="ja-JP")

    # When she searches by a word of the company and opens the lead
    page.get_by_label("検索").first.fill("ツナグ")
    page.get_by_role("button", name="検索").click()
    page.get_by_role("link", name=LEAD).click()

    # Then its timeline shows the form and the clicks, the scanner's marked with its reasons
    timeline = page.locator("ol.timeline")
    expect(timeline).to_contain_text("フォーム送信")
    automated = timeline.locator("li.automated")
    expect(automated.first).to_contain_text("機械による操作")
    expect(automated.first).to_contain_text("too_soon_after_delivery")
    expect(automated.first).to_contain_text("配信から数秒以内（人が読む前）")  # the reason in words
    expect(page.locator("h1")).to_contain_text("佐藤 香織")
    # And the journeys it is in: the form entered it into the welcome nurture
    expect(page.locator("article.lead")).to_contain_text("welcome_nurture")
    # ... all in words, not codes: its fields and their sources by name, what entered it, and
    # each score change with its points
    article = page.locator("article.lead")
    expect(article).to_contain_text("会社名")
    expect(article).to_contain_text("きっかけ：フォーム送信")
    expect(article).not_to_contain_text("web_form")
    expect(timeline.locator("li", has_text="スコア変更").first).to_contain_text("点（")

    # When she starts the seminar follow-up for it from the lead page
    page.locator("section.actions").get_by_label("ジャーニー").select_option("seminar_follow_up")
    page.get_by_role("button", name="ジャーニーを開始").click()
    expect(page.get_by_role("status")).to_contain_text("リードがジャーニーを開始しました")
    expect(page.locator("article.lead")).to_contain_text("seminar_follow_up")
    screenshot(page, tmp_path, "console-lead")
    assert accessibility_problems(page) == []

    # And on a laptop's screen every item of the menu reads on one line ("リー/ド" once)
    page.set_viewport_size({"width": 1280, "height": 720})
    lines = page.locator("header.top nav a").evaluate_all(
        """links => links.map((link) => {
            const words = document.createRange();
            words.selectNodeContents(link);
            return [link.textContent, new Set([...words.getClientRects()].map((r) => r.top)).size];
        })"""
    )
    assert lines and all(count == 1 for _, count in lines), lines


def test_searching_again_with_the_same_word_shows_a_lead_captured_since(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given the lead list searched for a company nobody has signed up from yet
    company, newcomer = "株式会社ヨリミチ", "jiro.tanaka@example.jp"
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB")
    page.get_by_label("Search").first.fill("ヨリミチ")
    page.get_by_role("button", name="Search").click()
    settled(page)
    expect(page.locator("main")).to_contain_text("No lead matches.")

    # When someone of that company signs up meanwhile, and the search index has him
    status, _ = tsunagu.post_json(
        "/forms/demo/submissions", {"email": newcomer, "name": "田中 次郎", "company": company}
    )
    assert status == 201
    wait_for(
        lambda: newcomer in tsunagu.cli("leads", "search", "ヨリミチ").stdout,
        timeout=STREAM_WAIT_SECONDS,
        what=f"{newcomer} found by its company",
        interval=0.5,
    )
    # And she presses Search again, the word unchanged (the address stays the same)
    page.get_by_role("button", name="Search").click()
    settled(page)

    # Then the list is read again and shows him, without reloading the page
    expect(page.get_by_role("link", name=newcomer)).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("No lead matches.")


def answer_late(page: Page, held: Route, answer: APIResponse | None = None) -> None:
    """Let a request held back answer now, and wait until the screen has taken the answer in.
    ``answer``: what the API answered when the request was made (api_answer_now), given now as
    a slow network would; else the request goes on to the API now."""
    with page.expect_response(lambda answered: answered.request == held.request) as late:
        if answer is None:
            held.continue_()
        else:
            held.fulfill(response=answer)
    late.value.finished()
    settled(page)
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => setTimeout(done)))")


def hold_first(
    page: Page, url: str, *, picked: Callable[[Request], bool] = lambda asked: asked.method == "GET"
) -> list[Route]:
    """Hold back the first request to ``url`` (a pattern) that ``picked`` picks - a read, unless
    told - as a slow network would; every other request goes on. The list the held request is
    put in, to be let go with answer_late."""
    held: list[Route] = []

    def first_held(route: Route) -> None:
        if held or not picked(route.request):
            route.continue_()
        else:
            held.append(route)

    page.route(re.compile(url), first_held)
    return held


def api_answer_now(page: Page, tsunagu: RunningTsunagu, path: str) -> APIResponse:
    """What the API answers the signed-in console for GET ``path`` at this moment, asked beside
    the page (its routes do not see it): for a request held back, the answer it had when it was
    asked, to be given it later (answer_late)."""
    token = page.evaluate('() => JSON.parse(sessionStorage.getItem("tsunagu.session")).idToken')
    answer = page.request.get(
        f"{tsunagu.api_url}{path}", headers={"authorization": f"Bearer {token}"}
    )
    assert answer.ok, (answer.status, answer.text())
    return answer


def test_a_search_typed_before_the_list_first_answered_keeps_its_own_answer(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given the lead list opened on a slow network: its first, unfiltered answer is held back
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="journeys")
    settled(page)
    held: list[Route] = []

    def unfiltered_held(route: Route) -> None:
        if "q=" in route.request.url:
            route.continue_()
        else:
            held.append(route)

    page.route(re.compile(r"/admin/leads(\?|$)"), unfiltered_held)
    page.locator("header.top nav").get_by_role("link", name="Leads", exact=True).click()

    # When she searches for a company nobody has signed up from before the list has answered
    page.get_by_label("Search").first.fill("ミチクサ")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("main")).to_contain_text("No lead matches.")
    assert len(held) == 1, [route.request.url for route in held]

    # ... and the unfiltered answer arrives after her search's
    with page.expect_response(lambda answer: answer.request == held[0].request) as late:
        held[0].continue_()
    late.value.finished()
    settled(page)
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => setTimeout(done)))")

    # Then the list still shows what her search found, not every lead
    expect(page.locator("main")).to_contain_text("No lead matches.")
    expect(page.get_by_role("link", name=LEAD)).to_have_count(0)


def test_a_marketer_pauses_a_journey_and_resumes_it_by_a_policy(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB")
    open_screen(page, tsunagu, "journeys")
    row = page.locator("tr", has_text="seminar_follow_up")

    row.get_by_role("button", name="Pause").click()  # confirmed (the dialog is accepted)
    expect(row).to_contain_text("Paused")
    row.get_by_role("button", name="Resume").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Held mails are not sent")  # each policy explained
    assert accessibility_problems(page) == []
    dialog.get_by_label("Skip what was missed").check()
    dialog.get_by_role("button", name="Resume").click()
    expect(row).to_contain_text("Active")

    shown = tsunagu.cli("journeys", "show", "seminar_follow_up")
    assert json.loads(shown.stdout)["status"] == "active", shown


def test_two_journeys_paused_at_once_both_stay_paused_when_the_first_reload_answers_late(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given the journeys on a slow network: what is read after the first change is held back
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="journeys")
    settled(page)
    held = hold_first(page, r"/admin/journeys/status(\?|$)")
    seminar = page.locator("tr", has_text="seminar_follow_up")
    engagement = page.locator("tr", has_text="re_engagement")
    try:
        # When she pauses one journey (the list read after it answers at once, the counts are
        # held back) and the other before the first one's reload has answered
        with page.expect_response(
            lambda answer: (
                answer.request.method == "GET"
                and re.search(r"/admin/journeys(\?|$)", answer.url) is not None
            )
        ) as listed:
            seminar.get_by_role("button", name="Pause").click()
        statuses = {row["journey_id"]: row["status"] for row in listed.value.json()["items"]}
        assert statuses["re_engagement"] == "active", statuses
        engagement.get_by_role("button", name="Pause").click()
        expect(engagement).to_contain_text("Paused")
        expect(seminar).to_contain_text("Paused")
        assert len(held) == 1, [route.request.url for route in held]

        # ... and the first reload arrives after the second's
        answer_late(page, held[0])

        # Then both are shown paused, as they are: the first reload's list, read before the
        # second pause, does not put the second journey back as active
        expect(engagement).to_contain_text("Paused")
        expect(engagement.get_by_role("button", name="Resume")).to_be_visible()
        expect(seminar).to_contain_text("Paused")
    finally:
        for journey in ("seminar_follow_up", "re_engagement"):
            tsunagu.cli("journeys", "resume", journey, "--policy", "skip_missed")


def test_a_viewer_sees_no_button_that_changes_anything_and_is_refused_when_forcing_one(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    page = console_page(chromium, tsunagu, VIEWER, PASSWORD, locale="en-GB")
    page.goto(f"{tsunagu.api_url}/console/#/leads/{LEAD}")
    expect(page.locator("ol.timeline")).to_be_visible()
    assert page.locator("section.actions").count() == 0
    filled_in = {
        "journeys": "seminar_follow_up",
        "templates/seminar-invitation": "Seminar: invitation",
        "settings": "Scoring, grading and owners",
    }
    for screen, shows in filled_in.items():
        open_screen(page, tsunagu, screen)
        expect(page.locator("main")).to_contain_text(shows)
        changing = page.get_by_role(
            "button", name=re.compile("Pause|Stop|Store|Save|Invite|Send|Suppress|Lift|Add|Remove")
        )
        assert changing.count() == 0, screen
    expect(page.get_by_role("link", name="Audit log")).to_have_count(0)

    # Forced from the page with the viewer's own token: the API refuses
    status = page.evaluate(
        """async (lead) => {
            const token = JSON.parse(sessionStorage.getItem("tsunagu.session")).idToken;
            const answer = await fetch(`/admin/leads/${lead}`, {
                method: "PATCH",
                headers: {authorization: `Bearer ${token}`, "content-type": "application/json"},
                body: JSON.stringify({stage: "customer"}),
            });
            return answer.status;
        }""",
        LEAD,
    )
    assert status == 403
    lead = json.loads(tsunagu.cli("leads", "get", LEAD).stdout)
    assert lead["stage"] != "customer"


def test_the_lead_link_in_a_forwarded_reply_opens_the_lead_in_the_console(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given a lead (an address with a plus) sent the welcome mail, with its reply address
    lead, name = "mika+seminar@example.jp", "中村 美香"
    status, _ = tsunagu.post_json(
        "/forms/demo/submissions", {"email": lead, "name": name, "consent": True}
    )
    assert status == 201

    def viewer() -> list[dict[str, Any]]:
        status, _, body = tsunagu.request("GET", "/_local/mail?format=json")
        assert status == 200
        mails: list[dict[str, Any]] = json.loads(body)
        return mails

    def welcome() -> dict[str, Any] | None:
        answerable = [
            m
            for m in viewer()
            if lead in m["recipients"] and any(k.lower() == "reply-to" for k, _ in m["headers"])
        ]
        return answerable[0] if answerable else None

    sent = wait_for(welcome, timeout=STREAM_WAIT_SECONDS, what=f"the welcome mail to {lead}")

    # When the lead answers it (the viewer's reply form, as SES receiving would hand it over)
    status, _, page_text = tsunagu.request(
        "POST",
        "/_local/mail/reply",
        urlencode({"message_id": sent["message_id"], "body": "資料をお願いします。"}).encode(),
        {"content-type": "application/x-www-form-urlencoded"},
    )
    assert status == 200 and b"forward to" in page_text, page_text

    # Then the colleague's notice links the lead's page in the console
    def notice() -> dict[str, Any] | None:
        notices = [m for m in viewer() if m["subject"].startswith("[返信 / Reply]")]
        return next((m for m in notices if lead in (m["text"] or "")), None)

    text = wait_for(notice, timeout=STREAM_WAIT_SECONDS, what="the forwarded reply")["text"]
    (link,) = re.findall(r"^Lead: (\S+)", text, flags=re.MULTILINE)
    document, _, route = link.partition("#")
    assert document == f"{tsunagu.api_url}/console/", link
    assert tsunagu.request("GET", document.removeprefix(tsunagu.api_url))[0] == 200

    # And the link, followed by a colleague signed in, shows that lead
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB")
    page.goto(link)
    expect(page.locator("h1")).to_contain_text(name)
    expect(page.locator("article.lead")).to_contain_text(lead)
    assert route == "/leads/mika%2Bseminar%40example.jp", link


@pytest.mark.parametrize(
    ("locale", "heading"), [("en-GB", "Leads in it"), ("ja-JP", "進行中のリード")]
)
def test_a_journey_with_more_leads_than_are_counted_shows_at_least_that_many(
    tsunagu: RunningTsunagu, chromium: Chromium, locale: str, heading: str
) -> None:
    # Given the status answering as on AWS for a journey past the count (one ListExecutions
    # page of 1,000 a journey: the runtime holds too few leads to be past it)
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale=locale)
    answered: list[dict[str, Any]] = []

    def past_the_count(route: Route) -> None:
        answer = route.fetch()
        status = answer.json()
        answered.extend(status["journeys"])
        for journey in status["journeys"]:
            if journey["journey"] == "seminar_follow_up":
                journey.update(running=1000, running_at_least=True)
        route.fulfill(response=answer, json=status)

    page.route(re.compile(r"/admin/journeys/status(\?|$)"), past_the_count)
    # When she opens the Journeys screen
    open_screen(page, tsunagu, "journeys")

    # Then that journey reads "1,000+" under the count's heading, the others their exact count
    expect(page.locator("main table th", has_text=heading)).to_be_visible()
    seminar = page.locator("tr", has_text="seminar_follow_up")
    expect(seminar.locator("td.number").first).to_have_text("1,000+")
    welcome = page.locator("tr", has_text="welcome_nurture")
    [exact] = [j for j in answered if j["journey"] == "welcome_nurture"]
    assert exact["running_at_least"] is False and isinstance(exact["running"], int), exact
    expect(welcome.locator("td.number").first).to_have_text(str(exact["running"]))


def test_a_marketer_edits_a_mail_and_sees_it_rendered_for_the_lead_as_she_types(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given a browser that enforces the console's CSP, as every browser does
    page = console_page(
        chromium,
        tsunagu,
        MARKETER,
        PASSWORD,
        locale="en-GB",
        at="templates/seminar-invitation",
        bypass_csp=False,
    )
    blocked: list[str] = []
    page.on(
        "console",
        lambda message: blocked.append(message.text) if "Security Policy" in message.text else None,
    )
    caption = page.locator("figure.preview figcaption")
    # The mail is its own sandboxed document, inside the preview page's frame
    preview = page.frame_locator("figure.preview iframe").frame_locator("iframe")
    # Before any lead is named, the sample lead's data fills the merge tags
    expect(caption).to_contain_text("as edited, not stored yet")

    page.get_by_label("Preview for the lead").fill(LEAD)
    page.get_by_label("Subject").fill("{{ lead.name }} 様へ: 導入事例セミナーのご案内")
    expect(caption).to_contain_text("佐藤 香織 様へ: 導入事例セミナーのご案内")
    expect(preview.locator("body")).to_be_visible()
    # Links in the preview go nowhere (the sender's renderer, with inert links)
    hrefs = preview.locator("a").evaluate_all("links => links.map(a => a.href)")
    assert hrefs and all(href.startswith("https://preview.invalid/") for href in hrefs), hrefs

    # When she styles the mail inline and in a <style> element, as mails are styled
    page.get_by_role("form", name="Template").get_by_label(re.compile("^HTML")).fill(
        "<html><head><style>p.lead { font-size: 32px }</style></head><body>"
        '<p style="color: #ff0000">{{ lead.name }} 様</p><p class="lead">ご案内</p></body></html>'
    )
    # Then the preview shows it styled, as it will be sent, and the CSP blocked nothing
    greeting = preview.locator("p", has_text="佐藤 香織 様")
    expect(greeting).to_have_css("color", "rgb(255, 0, 0)")
    expect(preview.locator("p.lead")).to_have_css("font-size", "32px")
    # ... while the mail itself runs no script: its document is sandboxed without scripts
    sandbox = page.frame_locator("figure.preview iframe").locator("iframe")
    expect(sandbox).to_have_attribute("sandbox", "")
    assert blocked == [], blocked

    # A subject that does not render says why, and nothing was stored
    page.get_by_label("Subject").fill("{{ lead.name 様へ")
    expect(page.get_by_role("alert")).to_contain_text("does not render")
    listed = tsunagu.cli("templates", "list").stdout.splitlines()
    (invitation,) = [line for line in listed if line.startswith("seminar-invitation\t")]
    assert invitation.split("\t")[1] == "v1", invitation


def test_a_template_stored_by_a_colleague_meanwhile_is_not_replaced_by_a_stale_editor(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given the invitation open in her editor (version 1)
    page = console_page(
        chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="templates/seminar-invitation"
    )
    editor = page.get_by_role("form", name="Template")
    expect(editor.get_by_label("Subject")).not_to_have_value("")
    # When a colleague stores version 2 (a fixed subject), and she then stores her edit
    theirs = tmp_path / "theirs.json"
    theirs.write_text(
        json.dumps(
            {
                "template_id": "seminar-invitation",
                "name": "Seminar: invitation",
                "subject": "{{ lead.name }} 様: セミナーのご案内 (訂正)",
                "html": "<p>{{ lead.name }} 様</p>",
                "from_address": "news@example.com",
            }
        ),
        "utf-8",
    )
    stored = tsunagu.cli("templates", "create", "--file", str(theirs))
    assert "stored as version 2" in stored.stdout, (stored.stdout, stored.stderr)
    editor.get_by_label("Subject").fill("{{ lead.name }} 様: 私の件名")
    editor.get_by_role("button", name="Store as a new version").click()
    # Then hers is refused, saying so, with her edit still in the editor; theirs is the newest
    expect(page.get_by_role("status")).to_contain_text("stored version 2")
    expect(editor.get_by_label("Subject")).to_have_value("{{ lead.name }} 様: 私の件名")
    listed = tsunagu.cli("templates", "versions", "seminar-invitation").stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == ["v2", "v1"], listed
    # And storing again, having been told, makes hers the newest over theirs
    editor.get_by_role("button", name="Store as a new version").click()
    expect(page.get_by_role("status")).to_have_text("Stored as version 3.")


def policy_of(tsunagu: RunningTsunagu, path: str) -> dict[str, str]:
    """The CSP a console page is served with, by directive."""
    status, headers, _ = tsunagu.request("GET", path)
    assert status == 200, path
    directives = (part.split(maxsplit=1) for part in headers["content-security-policy"].split(";"))
    return {name: (sources[0] if sources else "") for name, *sources in directives}


def test_the_console_keeps_its_strict_policy_and_only_the_mail_preview_page_shows_styles(
    tsunagu: RunningTsunagu,
) -> None:
    # When the console's page and the mail preview's page are asked for (with the headers the
    # template's CloudFront distribution gives each, read from template.yaml)
    console = policy_of(tsunagu, "/console/")
    preview = policy_of(tsunagu, "/console/mail-preview.html")

    # Then the console allows nothing inline and no other origin's images
    assert (console["script-src"], console["style-src"]) == ("'self'", "'self'")
    assert console["img-src"] == "'self' data:" and console["frame-ancestors"] == "'none'"
    # ... and the preview's page allows styles and https images, its own script only, and is
    # sandboxed, framed by the console alone
    assert (preview["style-src"], preview["img-src"]) == ("'unsafe-inline'", "https: data:")
    assert (preview["default-src"], preview["script-src"]) == ("'none'", "'self'")
    assert preview["sandbox"] == "allow-scripts" and preview["frame-ancestors"] == "'self'"


def new_template(page: Page, template_id: str, name: str, subject: str) -> Locator:
    """Fill in and send the template list's "New template" form; the form, for what it says."""
    page.get_by_role("button", name="New template").click()
    form = page.get_by_role("form", name="New template")
    form.get_by_label("Id", exact=True).fill(template_id)
    form.get_by_label("Name").fill(name)
    form.get_by_label("Subject").fill(subject)
    form.get_by_label("From (address)").fill("news@example.com")
    form.get_by_role("button", name="Create").click()
    return form


def test_a_marketer_creates_a_mail_changes_it_and_rolls_it_back_from_its_history(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="templates")
    new_template(page, "spring-offer", "Spring offer", "春のご案内")

    # She lands in the new template's editor, and gives it a text version and a default
    page.wait_for_url(re.compile("#/templates/spring-offer$"))
    editor = page.get_by_role("form", name="Template")
    editor.get_by_label("Subject").fill("{{ lead.name }} 様: 春のご案内")
    editor.get_by_label("Values for fields a lead lacks").fill("name=ご担当者")
    editor.get_by_label("Kind").select_option("transactional")
    expect(page.locator("figure.preview figcaption")).to_contain_text("見本 花子 様: 春のご案内")
    editor.get_by_role("button", name="Store as a new version").click()
    expect(page.get_by_role("status")).to_have_text("Stored as version 2.")

    # A second "new" template with the same id is refused, naming it
    page.goto(f"{tsunagu.api_url}/console/#/templates")
    form = new_template(page, "spring-offer", "Another", "別件")
    expect(form.get_by_role("alert")).to_contain_text("spring-offer")

    # From the history she opens version 1 and restores it as the newest
    page.goto(f"{tsunagu.api_url}/console/#/templates/spring-offer")
    history = page.get_by_role("region", name="Versions")
    expect(history.locator("tbody tr")).to_have_count(2)
    expect(history.locator("tbody tr").first).to_contain_text(MARKETER)
    history.get_by_role("button", name="Open v1").click()
    expect(page.get_by_role("note")).to_contain_text("Storing it makes it version 3")
    assert accessibility_problems(page) == []
    page.get_by_role("button", name="Restore version 1 as the newest").click()
    expect(page.get_by_role("status")).to_have_text("Stored as version 3.")

    listed = tsunagu.cli("templates", "versions", "spring-offer").stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == ["v3", "v2", "v1"], listed
    assert listed[0].split("\t")[2] == MARKETER and listed[0].endswith("\t春のご案内"), listed


def stored_template(
    tsunagu: RunningTsunagu, tmp_path: Path, template_id: str, name: str, subject: str
) -> None:
    """A version of the template stored from a file, as an operator stores one."""
    file = tmp_path / f"{template_id}.json"
    file.write_text(
        json.dumps(
            {
                "template_id": template_id,
                "name": name,
                "subject": subject,
                "html": "<p>{{ lead.name }} 様</p>",
                "from_address": "news@example.com",
            }
        ),
        "utf-8",
    )
    stored = tsunagu.cli("templates", "create", "--file", str(file))
    assert stored.returncode == 0, (stored.stdout, stored.stderr)


def test_another_mail_opened_by_its_address_starts_in_a_clean_editor(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given the year-end offer stored again from her editor, previewed for a lead
    stored_template(tsunagu, tmp_path, "year-end-offer", "Year-end offer", "年末のご案内")
    stored_template(tsunagu, tmp_path, "new-year-offer", "New year offer", "新春のご案内")
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="templates/year-end-offer")
    editor = page.get_by_role("form", name="Template")
    expect(editor.get_by_label("Subject")).to_have_value("年末のご案内")
    page.get_by_label("Preview for the lead").fill(LEAD)
    editor.get_by_label("Subject").fill("{{ lead.name }} 様: 年末のご案内")
    editor.get_by_role("button", name="Store as a new version").click()
    expect(page.get_by_role("status")).to_have_text("Stored as version 2.")

    # When she opens the new year offer by its address (a link pasted in a chat)
    page.goto(f"{tsunagu.api_url}/console/#/templates/new-year-offer")
    expect(page.locator("main h1")).to_contain_text("New year offer")
    settled(page)

    # Then its editor says nothing of the year-end offer's store, nor previews for its lead
    expect(editor.get_by_label("Subject")).to_have_value("新春のご案内")
    expect(page.get_by_role("status")).to_have_count(0)
    expect(page.get_by_label("Preview for the lead")).to_have_value("")


def test_the_version_opened_last_stays_in_the_editor_when_an_earlier_one_answers_late(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given a mail with three versions, open in her editor
    for subject in ("GWのご案内 (1)", "GWのご案内 (2)", "GWのご案内 (3)"):
        stored_template(tsunagu, tmp_path, "golden-week-offer", "Golden week offer", subject)
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="templates/golden-week-offer")
    history = page.get_by_role("region", name="Versions")
    expect(history.locator("tbody tr")).to_have_count(3)
    settled(page)
    held: list[Route] = []
    page.route(
        re.compile(r"/admin/templates/golden-week-offer\?(.*&)?version=1(&|$)"),
        lambda route: held.append(route),
    )

    # When she opens version 1 and, before it has answered, version 2
    history.get_by_role("button", name="Open v1").click()
    history.get_by_role("button", name="Open v2").click()
    editor = page.get_by_role("form", name="Template")
    expect(editor.get_by_label("Subject")).to_have_value("GWのご案内 (2)")
    assert len(held) == 1, [route.request.url for route in held]

    # ... and version 1 answers after version 2
    answer_late(page, held[0])

    # Then the editor holds version 2, the one she opened last
    expect(editor.get_by_label("Subject")).to_have_value("GWのご案内 (2)")
    expect(page.get_by_role("note")).to_contain_text("You are looking at version 2;")


def test_a_marketer_builds_a_sign_up_form_and_a_person_signs_up_through_it(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="forms")
    page.get_by_text("New form", exact=True).click()
    editor = page.get_by_role("form", name="Form New form")
    editor.get_by_label("Id", exact=True).fill("seminar-2027")
    editor.get_by_label("Name", exact=True).fill("Seminar 2027 sign-up")
    editor.get_by_label("Counts as").select_option("seminar")
    # Two sites, typed key by key as a person types them (a comma just typed stays)
    sites = editor.get_by_label("Sites it may be embedded on")
    sites.press_sequentially("https://www.example.com, https://lp.example.com")
    expect(sites).to_have_value("https://www.example.com, https://lp.example.com")
    editor.get_by_role("button", name="Add a field").click()
    editor.get_by_label("Name (data) of field 2").fill("company")
    editor.get_by_label("Label (shown) of field 2").fill("会社名")
    editor.get_by_label("Required of field 2").check()
    editor.get_by_label("Ask for consent to marketing mail").check()
    words = "セミナー情報のメール配信に同意します"
    editor.get_by_label("The words the person agrees to").fill(words)
    # A field name Tsunagu keeps for itself is refused, naming it, and nothing is stored
    editor.get_by_role("button", name="Add a field").click()
    editor.get_by_label("Name (data) of field 4").fill("submission_id")
    editor.get_by_role("button", name="Save").click()
    expect(editor.get_by_role("alert")).to_contain_text("reserved")
    assert "seminar-2027" not in tsunagu.cli("forms", "list").stdout
    editor.get_by_role("button", name="Remove submission_id").click()
    editor.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")

    # The embed code it shows is the form as built: labels, the consent in its exact words
    card = page.locator("article", has_text="seminar-2027")
    embed = card.get_by_label("Embed code").input_value()
    assert 'action="' in embed and "/forms/seminar-2027/submissions" in embed
    assert '<input type="text" name="company" required>' in embed.replace("会社名 ", "")
    assert words in embed
    # ... and its button in the form's language (its label and consent are in Japanese), where
    # the demo form, worded in English, says "Submit"
    assert '<button type="submit">送信</button>' in embed
    demo = page.locator("article", has_text="Demo: white paper download")
    assert '<button type="submit">Submit</button>' in demo.get_by_label("Embed code").input_value()
    assert accessibility_problems(page) == []
    stored = json.loads(tsunagu.cli("forms", "get", "seminar-2027").stdout)
    assert stored["allowed_origins"] == ["https://www.example.com", "https://lp.example.com"]

    # And a person signing up through it is a lead with the consent, in those words' version
    status, _ = tsunagu.post_json(
        "/forms/seminar-2027/submissions",
        {"email": "signs.up@example.jp", "company": "株式会社サインアップ", "consent": True},
        origin="https://www.example.com",
    )
    assert status == 201
    lead = json.loads(tsunagu.cli("leads", "get", "signs.up@example.jp").stdout)
    assert lead["fields"]["company"]["value"] == "株式会社サインアップ", lead
    (evidence,) = lead["consent_evidence"]
    assert (evidence["form_id"], evidence["text_version"]) == ("seminar-2027", "1"), evidence


def test_the_code_for_the_team_s_website_names_its_public_url_and_the_console_calls_the_api(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="forms")
    settled(page)
    demo_site = page.locator("article", has_text="Demo site (local runtime)")
    demo_form = page.locator("article", has_text="Demo: white paper download")
    # Locally there is no custom domain: the snippet names the local API, as config.json does
    expect(demo_site.get_by_label("Tracking snippet")).to_have_value(
        f'<script async src="{tsunagu.api_url}/t.js" data-site="demo"></script>'
    )

    # Given config.json as `console publish` writes it for a stack with PublicBaseUrl set: the
    # team's own domain for the public routes, execute-api (here the runtime) for the admin API
    def with_a_custom_domain(route: Route) -> None:
        answer = route.fetch()
        config = answer.json()
        assert config["public_url"] == config["api_url"] == tsunagu.api_url, config
        route.fulfill(response=answer, json={**config, "public_url": "https://t.example.com/"})

    page.route(re.compile(r"/console/config\.json$"), with_a_custom_domain)
    admin_calls: list[str] = []
    page.on("request", lambda r: admin_calls.append(r.url) if "/admin/" in r.url else None)
    # When the marketer opens Forms & Sites again
    page.reload()
    settled(page)

    # Then what she copies for the website names that domain: the snippet's script and the
    # form's post, so the site's visitors reach Tsunagu first-party, under the domain chosen
    expect(demo_site.get_by_label("Tracking snippet")).to_have_value(
        '<script async src="https://t.example.com/t.js" data-site="demo"></script>'
    )
    embed = demo_form.get_by_label("Embed code").input_value()
    assert '<form method="post" action="https://t.example.com/forms/demo/submissions"' in embed
    assert tsunagu.api_url not in embed
    # ... while the screen itself was read from the admin API where config.json's api_url is
    assert any("/admin/forms" in url for url in admin_calls), admin_calls
    assert all(url.startswith(f"{tsunagu.api_url}/admin/") for url in admin_calls), admin_calls


def read_as_consent(page: Page, column: str, yes: str) -> None:
    """In English: the list's ``column`` read as consent, ``yes`` its answer meaning yes."""
    page.get_by_label(f"Imported as, {column}").select_option("(consent)")
    page.get_by_label("Answers meaning yes").fill(yes)


def test_a_marketer_dry_runs_a_shift_jis_trade_show_list_and_downloads_its_rejected_rows(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    sheet = tmp_path / "展示会リスト.csv"
    rows = [
        ["メールアドレス", "氏名", "会社名", "配信希望"],
        ["booth.visitor@example.jp", "来場 一郎", "㈱ブース", "希望する"],
        [LEAD, "佐藤 香織", COMPANY, ""],
        ["名刺の読み取りミス", "不明", "", ""],
    ]
    sheet.write_bytes("".join(",".join(row) + "\r\n" for row in rows).encode("cp932"))
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="imports")
    page.get_by_label("File").set_input_files(str(sheet))
    page.get_by_label("Counts as").select_option("trade_show")
    read_as_consent(page, "配信希望", "希望する")
    page.get_by_role("button", name="Dry run").click()

    status = page.get_by_role("status")
    expect(status).to_contain_text("Read as Shift_JIS (cp932).")
    expect(status).to_contain_text("create 1 · update 0 · unchanged 1 · merged 0 · rejected 1")
    # The consent column is said to be read as consent, not listed among the columns left out
    expect(page.locator("main")).to_contain_text("配信希望 → read as consent")
    expect(page.locator("main")).not_to_contain_text("left out")
    table = page.get_by_role("table", name="Rows")
    expect(table.locator("tr", has_text="booth.visitor@example.jp")).to_contain_text("consent: yes")
    assert accessibility_problems(page) == []
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the rejected rows").click()
    # ... saved as the CSV it is, named after the list
    assert download.value.suggested_filename == "rejected-展示会リスト.csv"
    saved = tmp_path / "rejected.csv"
    download.value.save_as(saved)
    returned = saved.read_text("utf-8-sig").splitlines()
    # The screen is in English: so is the file's reason, and the table's, said from its code
    assert returned[1].startswith("名刺の読み取りミス,不明") and "email" in returned[1]
    expect(table.locator("tr", has_text="rejected")).to_contain_text(
        "メールアドレス: “名刺の読み取りミス” cannot be used as an e-mail address"
    )
    # A dry run writes nothing
    assert tsunagu.cli("leads", "get", "booth.visitor@example.jp").returncode != 0

    # In Japanese, the same list's rejected rows say why in Japanese, on the screen and in the
    # file: an answer the consent column gives no meaning to, and the broken address
    rows.append(["maybe@example.jp", "迷う 次郎", "", "たぶん"])
    rows.append(["両方の誤り", "二重 三郎", "", "たぶん"])  # rejected for both, said at once
    sheet.write_bytes("".join(",".join(row) + "\r\n" for row in rows).encode("cp932"))
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="ja-JP", at="imports")
    page.get_by_label("ファイル").set_input_files(str(sheet))
    page.get_by_label("「配信希望」の取り込み先").select_option("(consent)")
    page.get_by_label("同意を意味する回答").fill("希望する")
    page.get_by_role("button", name="ドライラン").click()
    table = page.get_by_role("table", name="行")
    expect(table.locator("tr", has_text="たぶん", has_not_text="両方の誤り")).to_contain_text(
        "配信希望: 「たぶん」は「はい」の答え (希望する) にも「いいえ」の答え (なし) にも"
        "当たりません"
    )
    broken = "メールアドレス: 「名刺の読み取りミス」はメールアドレスとして使えません"
    expect(table.locator("tr", has_text="名刺の読み取りミス")).to_contain_text(broken)
    both = (
        "メールアドレス: 「両方の誤り」はメールアドレスとして使えません (An email address must"
        " have an @-sign.)。配信希望: 「たぶん」は"
    )
    expect(table.locator("tr", has_text="両方の誤り")).to_contain_text(both)
    # (the address checker's own words stay as they are, in brackets; the English reason not)
    expect(table).not_to_contain_text("email '")
    assert accessibility_problems(page) == []
    with page.expect_download() as download:
        page.get_by_role("button", name="取り込めなかった行をダウンロード").click()
    download.value.save_as(saved)
    returned = saved.read_text("utf-8-sig").splitlines()
    assert returned[0].endswith(",取り込めなかった理由 (reason)")
    assert returned[1].startswith(f"名刺の読み取りミス,不明,,,{broken}"), returned
    assert returned[2].startswith("maybe@example.jp,迷う 次郎,,たぶん,配信希望: 「たぶん」は")
    assert returned[3].startswith(f"両方の誤り,二重 三郎,,たぶん,{both}"), returned

    # A workbook saved by Excel 97-2003 is refused in Japanese too, not in the server's English
    old_workbook = tmp_path / "来場者.xls"
    old_workbook.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    page.get_by_label("ファイル", exact=True).set_input_files(str(old_workbook))
    main = page.locator("main")
    expect(main).to_contain_text("ファイルを確認してください（Excel 97-2003 形式 (.xls) のブック")
    expect(main).not_to_contain_text("cannot be read")


def test_a_marketer_changes_the_rules_in_forms_and_nothing_is_kept_that_the_api_refuses(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB")
    open_screen(page, tsunagu, "settings")
    click = "Clicked a link in a mail"
    # At 1280 pixels the scoring table fits the page; each activity is chosen by its name, and
    # a blank form or mail says it means any (no example id that looks chosen)
    page.set_viewport_size({"width": 1280, "height": 800})
    expect(page.get_by_label(f"Activity of {click}").locator("option:checked")).to_have_text(
        "Clicked a link"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    expect(page.get_by_label(f"Form or mail of {click}")).to_have_attribute(
        "placeholder", "any mail"
    )

    # She makes a click worth 15 points, at most 45 a week, and gives example.co.jp an owner
    page.get_by_label(f"Points of {click}").fill("15")
    page.get_by_label(f"Cap of {click}").fill("45")
    page.get_by_label(f"Period of {click}").select_option("week")
    # ... only for the seminar invitation's links, and only a link to the seminar page
    page.get_by_label(f"Form or mail of {click}").fill("seminar-invitation")
    page.get_by_label(f"Other properties of {click}").fill("link_id=l1")
    page.get_by_label(f"Other properties of {click}").blur()
    page.get_by_role("button", name="CRM merge").click()
    page.get_by_label("Owner").select_option("crm_wins")
    expect(page.locator("main")).to_contain_text("The CRM's value replaces the one set in Tsunagu.")
    assert accessibility_problems(page) == []
    page.get_by_role("button", name="Owners").click()
    page.get_by_role("button", name="Add an owner rule").click()
    page.get_by_label("Domains (comma-separated)").fill("example.co.jp, example.ne.jp")
    page.get_by_label("Owner (e-mail)").fill("sales.kato@example.com")
    page.get_by_role("button", name="Save", exact=True).click()
    # ... after the round robin that came with Tsunagu, where no lead would ever reach it
    expect(page.get_by_role("alert")).to_contain_text("rule 2 is never reached")
    page.get_by_role("button", name="Move up").last.click()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    rules = json.loads(tsunagu.cli("qualification", "show").stdout)
    (clicked,) = [r for r in rules["scoring"]["rules"] if r["rule_id"] == "link-clicked"]
    assert (clicked["points"], clicked["cap"], clicked["cap_period"]) == (15, 45, "week")
    assert (clicked["template_id"], clicked["properties"]) == (
        "seminar-invitation",
        {"link_id": "l1"},
    )
    assert rules["crm_merge"]["owner"] == "crm_wins"
    key_accounts, catch_all = rules["owners"]["rules"]
    assert key_accounts == {
        "kind": "domain",
        "domains": ["example.co.jp", "example.ne.jp"],
        "owner": "sales.kato@example.com",
    }
    assert catch_all["kind"] == "round_robin"

    # A rule worth 0 points is refused on the rule's own row, and nothing of it is stored
    page.get_by_role("button", name="Scoring").click()
    page.get_by_label(f"Points of {click}").fill("0")
    page.get_by_label(f"Cap of {click}").fill("60")
    page.get_by_role("button", name="Save", exact=True).click()
    row = page.locator("tr", has=page.get_by_label(f"Points of {click}"))
    expect(row.get_by_role("alert")).to_contain_text("worth 0 points does nothing")
    assert accessibility_problems(page) == []
    page.reload()
    expect(page.get_by_label(f"Points of {click}")).to_have_value("15")
    expect(page.get_by_label(f"Cap of {click}")).to_have_value("45")


def test_rules_saved_by_a_colleague_meanwhile_are_not_replaced_by_a_stale_screen(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    before = json.loads(tsunagu.cli("qualification", "show").stdout)
    threshold, grade = before["scoring"]["mql_threshold"], before["minimum_grade"]
    assert (threshold, grade) != (85, "B"), before
    # Given the rules open on two screens: an admin's, and a marketer's in Japanese
    theirs = console_page(
        chromium, tsunagu, ADMIN_EMAIL, admin_password(tsunagu), locale="en-GB", at="settings"
    )
    mine = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="ja-JP", at="settings")
    for page in (theirs, mine):
        settled(page)
    # When the admin saves a new MQL threshold, and the marketer then saves her minimum grade
    theirs.get_by_label("MQL at score").fill("85")
    theirs.get_by_role("button", name="Save", exact=True).click()
    expect(theirs.get_by_role("status")).to_have_text("Saved.")
    mine.get_by_label("…かつ最低グレード").select_option("B")
    mine.get_by_role("button", name="保存", exact=True).click()
    # Then hers is refused, saying so in her language, with her edit still on the screen; the
    # admin's threshold stands and nothing of hers is stored
    expect(mine.get_by_role("status")).to_contain_text("開いた後に他の人がこのルールを保存しました")
    expect(mine.get_by_label("…かつ最低グレード")).to_have_value("B")
    expect(mine.get_by_label("MQLとするスコア")).to_have_value(str(threshold))
    stored = json.loads(tsunagu.cli("qualification", "show").stdout)
    assert (stored["scoring"]["mql_threshold"], stored["minimum_grade"]) == (85, grade), stored
    # And saving again, having been told, goes over the admin's save: the rules on her screen
    # (her grade, the threshold she read) are the rules saved
    mine.get_by_role("button", name="保存", exact=True).click()
    expect(mine.get_by_role("status")).to_have_text("保存しました。")
    stored = json.loads(tsunagu.cli("qualification", "show").stdout)
    assert (stored["scoring"]["mql_threshold"], stored["minimum_grade"]) == (threshold, "B")
    # ... and the admin's screen, now the stale one, is refused in turn
    theirs.get_by_label("MQL at score").fill("90")
    theirs.get_by_role("button", name="Save", exact=True).click()
    expect(theirs.get_by_role("status")).to_contain_text("Someone saved these rules")
    assert json.loads(tsunagu.cli("qualification", "show").stdout) == stored

    # (the rules as they were, for the tests after this one)
    saved_before = tmp_path / "rules.json"
    saved_before.write_text(json.dumps(before), "utf-8")
    restored = tsunagu.cli("qualification", "set", "--file", str(saved_before))
    assert restored.returncode == 0, restored.stderr


def test_a_marketer_suppresses_an_address_and_lifts_it_with_a_reason(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    address = "asked.by.phone@example.jp"
    status, _ = tsunagu.post_json(
        "/forms/demo/submissions", {"email": address, "name": "電話 依頼"}
    )
    assert status == 201
    reason = "they asked for the newsletter again"
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", prompt_answer=reason)
    open_screen(page, tsunagu, "settings")
    suppressions = page.get_by_role("table", name="Suppression list")

    page.get_by_label("Suppress an address").fill(address)
    page.get_by_label("Why (for the record)").fill("asked by phone")
    page.get_by_role("button", name="Suppress", exact=True).click()
    row = suppressions.locator("tr", has_text=address)
    expect(row).to_contain_text("Added by hand")
    assert address in tsunagu.cli("suppressions", "list", "--reason", "manual").stdout

    # Lifting asks why (answered as the page opened), and the reason goes to the audit log
    row.get_by_role("button", name="Lift").click()
    expect(page.get_by_role("status")).to_contain_text(f"Mail may reach {address} again")
    expect(suppressions.locator("tr", has_text=address)).to_have_count(0)
    assert address not in tsunagu.cli("suppressions", "list").stdout
    logged = tsunagu.cli("audit", "list", "--csv")
    assert reason in logged.stdout, logged


def test_a_reason_chosen_before_the_suppression_list_first_answered_keeps_its_own_answer(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given an address stopped by hand, and the settings opened on a slow network: the
    # suppression list's first answer, of every reason, is held back
    address = "held.back.stop@example.jp"
    status, _ = tsunagu.post_json(
        "/forms/demo/submissions", {"email": address, "name": "保留 停止"}
    )
    assert status == 201
    stopped = tsunagu.cli("leads", "suppress", address)
    assert stopped.returncode == 0, stopped.stderr
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="journeys")
    settled(page)
    held: list[Route] = []

    def every_reason_held(route: Route) -> None:
        if "reason=" in route.request.url:
            route.continue_()
        else:
            held.append(route)

    page.route(re.compile(r"/admin/suppressions(\?|$)"), every_reason_held)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()

    # When she asks for complaints only before the list has answered
    page.get_by_role("combobox", name="Reason", exact=True).select_option("complaint")
    expect(page.locator("main")).to_contain_text("No address is suppressed.")
    assert len(held) == 1, [route.request.url for route in held]

    # ... and the answer of every reason arrives after hers
    answer_late(page, held[0])

    # Then the list still shows what she asked for: no complaint, not the address stopped by hand
    expect(page.locator("main")).to_contain_text("No address is suppressed.")
    expect(page.get_by_role("link", name=address)).to_have_count(0)


def test_the_lead_page_says_a_lead_is_suppressed_and_offers_a_lift_not_a_second_stop(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # (found by an audit: the page never said a lead was suppressed, and its "Stop all mail"
    # put a manual suppression in place of a bounce or a complaint)
    address = "stopped.on.its.page@example.jp"
    status, _ = tsunagu.post_json(
        "/forms/demo/submissions", {"email": address, "name": "停止 依頼"}
    )
    assert status == 201
    page = console_page(
        chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", prompt_answer="asked again"
    )
    page.goto(f"{tsunagu.api_url}/console/#/leads/{address}")
    settled(page)
    facts = page.locator("dl.facts").first
    expect(facts).to_contain_text("Not stopped")

    # When she stops all mail to the lead from its page
    page.get_by_role("button", name="Stop all mail").click()

    # Then the page says so and why, and offers the lift her role may make, not a second stop
    expect(page.get_by_role("status")).to_have_text("No mail will go to this lead.")
    expect(facts).to_contain_text("All mail stopped since")
    expect(facts).to_contain_text("Added by hand")
    expect(page.get_by_role("button", name="Stop all mail")).to_have_count(0)
    assert json.loads(tsunagu.cli("leads", "get", address).stdout)["suppression"]["reason"] == (
        "manual"
    )
    assert accessibility_problems(page) == []

    page.get_by_role("button", name="Lift the stop").click()
    expect(page.get_by_role("status")).to_contain_text(f"Mail may reach {address} again")
    expect(facts).to_contain_text("Not stopped")
    expect(page.get_by_role("button", name="Lift the stop")).to_have_count(0)
    assert json.loads(tsunagu.cli("leads", "get", address).stdout)["suppression"] is None


def test_another_lead_opened_by_its_address_offers_its_own_stage_and_says_nothing_of_the_last(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given a lead she has just made an MQL on its page, and another lead, left as it came
    moved, other = "moved.by.hand@example.jp", "left.as.it.came@example.jp"
    for email, name in ((moved, "手動 移動"), (other, "そのまま 太郎")):
        status, _ = tsunagu.post_json("/forms/demo/submissions", {"email": email, "name": name})
        assert status == 201
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at=f"leads/{moved}")
    settled(page)
    actions = page.get_by_role("region", name="Actions")
    actions.get_by_label("Stage").select_option("mql")
    actions.get_by_role("button", name="Set stage").click()
    expect(actions.get_by_role("status")).to_have_text("Saved.")
    expect(page.locator("dl.facts").first).to_contain_text("MQL")

    # When she opens the other lead by its address (a link in a colleague's mail)
    page.goto(f"{tsunagu.api_url}/console/#/leads/{other}")
    expect(page.locator("main h1")).to_contain_text(other)
    settled(page)

    # Then its page offers its own stage to change, and says nothing of the last lead's
    expect(page.locator("dl.facts").first).to_contain_text("Lead")
    expect(actions.get_by_label("Stage")).to_have_value("lead")
    expect(page.get_by_role("status")).to_have_count(0)


def test_an_admin_finds_the_changes_in_the_audit_log_and_exports_it(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given the marketer's pause and resume and the viewer's refused change (tests above; made
    # here too when this test runs alone)
    marketer = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB")
    open_screen(marketer, tsunagu, "journeys")
    row = marketer.locator("tr", has_text="re_engagement")
    row.get_by_role("button", name="Pause").click()
    expect(row).to_contain_text("Paused")

    page = console_page(chromium, tsunagu, ADMIN_EMAIL, admin_password(tsunagu), locale="en-GB")
    open_screen(page, tsunagu, "audit")
    table = page.locator("table.audit")
    # ... each entry in words: the operation named, what it was done to by its name
    paused = table.locator("tr", has_text="Pause a journey").first
    expect(paused).to_contain_text(MARKETER)
    expect(paused).to_contain_text("Journey re_engagement")
    assert accessibility_problems(page) == []

    # When she keeps only the marketer's pauses, the table and the export hold those alone
    page.get_by_label("Operation").select_option("journeys.pause")
    page.get_by_label("Who").fill("marketer.ito")
    expect(table.locator("tbody tr").first).to_contain_text(MARKETER)
    expect(table.locator("tbody tr", has_not_text="Pause a journey")).to_have_count(0)
    expect(table.locator("tbody tr", has_not_text=MARKETER)).to_have_count(0)
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    saved = tmp_path / "audit.csv"
    download.value.save_as(saved)
    assert saved.read_bytes().startswith(b"\xef\xbb\xbf")  # the BOM Excel reads UTF-8 by
    rows = list(csv.DictReader(io.StringIO(saved.read_text("utf-8-sig"))))
    assert rows and {(r["email"], r["operation"]) for r in rows} == {
        (MARKETER, "journeys.pause")
    }, rows
    assert any(r["target"] == "journey:re_engagement" for r in rows), rows


def test_an_admin_exports_a_log_larger_than_one_file_file_by_file(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given 5,001 changes by one integration in the last hours: one more than a CSV file holds
    # (and, newer than all of them, one change by someone else)
    archived = seed_audit_entries(tsunagu, BULK_WRITER, MAX_AUDIT_ENTRIES + 1)
    seed_audit_entries(tsunagu, "someone.else@example.com", 1, later=True)
    page = console_page(chromium, tsunagu, ADMIN_EMAIL, admin_password(tsunagu), locale="en-GB")
    open_screen(page, tsunagu, "audit")
    first_row = page.locator("table.audit tbody tr").first
    expect(first_row).not_to_contain_text(BULK_WRITER)
    page.get_by_label("Who").fill(BULK_WRITER)
    expect(first_row).to_contain_text(BULK_WRITER)  # the filter has been applied

    # When she exports them, the first file holds the newest 5,000 and the page says there is more
    with page.expect_download() as first:
        page.get_by_role("button", name="Export CSV").click()
    cut = page.get_by_role("status").filter(has_text="the range holds older ones")
    expect(cut).to_contain_text(f"File 1 holds {MAX_AUDIT_ENTRIES:,} entries")
    # And the next file holds the rest, after which nothing more is offered
    with page.expect_download() as second:
        cut.get_by_role("button", name="Export the next file (2)").click()
    expect(cut).to_have_count(0)

    files = []
    for number, download in enumerate((first.value, second.value), start=1):
        saved = tmp_path / f"audit-{number}.csv"
        download.save_as(saved)
        files.append(list(csv.DictReader(io.StringIO(saved.read_text("utf-8-sig")))))
    assert second.value.suggested_filename.endswith("-part2.csv")
    assert [len(rows) for rows in files] == [MAX_AUDIT_ENTRIES, 1]
    targets = [row["target"] for rows in files for row in rows]
    assert sorted(targets) == sorted(archived)  # every entry, once


def test_a_refusal_of_filters_since_changed_is_not_said_over_the_audit_log_they_show(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given the audit log on a slow network: the log read for the next "who" is held back
    page = console_page(chromium, tsunagu, ADMIN_EMAIL, admin_password(tsunagu), locale="en-GB")
    open_screen(page, tsunagu, "audit")
    held = hold_first(page, r"/admin/audit(\?|$)", picked=lambda asked: "who=" in asked.url)
    who = page.get_by_label("Who")

    # When she pastes more into "who" than an address holds (the API refuses it) and puts her
    # colleague's address in its place before that refusal has come back
    with page.expect_request(lambda asked: "who=" in asked.url):
        who.fill("marketer.ito " * 30)
    with page.expect_response(lambda answer: "who=marketer.ito%40" in answer.url) as answered:
        who.fill(MARKETER)
    assert answered.value.ok, answered.value.text()
    assert len(held) == 1, [route.request.url for route in held]

    # ... and the refusal arrives after the answer to her address
    answer_late(page, held[0])

    # Then the log she asked for is shown with nothing said of the filter she no longer has
    expect(who).to_have_value(MARKETER)
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text("at most 254 characters")


def seed_audit_entries(
    tsunagu: RunningTsunagu, email: str, count: int, *, later: bool = False
) -> list[str]:
    """``count`` audit entries of one actor, a second apart up to a second ago (``later``: up
    to now), written straight to the runtime's audit table (as many changes through the API
    would take minutes); their targets."""
    state = json.loads((tsunagu.workdir / ".tsunagu" / "runtime.json").read_text())
    log = services.audit_log(Settings.from_environ(state["environment"]))
    actor = Actor(user_id=email, role=Role.ADMIN, email=email)
    newest = datetime.now(UTC) - timedelta(seconds=0 if later else 1)
    entries = [
        AuditEntry(
            entry_id=new_id("aud", newest),
            at=isoformat(newest - timedelta(seconds=n)),
            actor=actor,
            operation="leads.update",
            target=f"lead:{email.split('@')[0]}-{n:05d}",
            outcome="done",
            after={"stage": "recycled"},
        )
        for n in range(count)
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(log.append, entries))
    return [entry.target for entry in entries]


def test_a_marketer_reads_a_mail_s_report_counted_from_the_events_stream(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given the seminar invitation sent to a lead who asked for news (send_email, as a
    # journey's step sends it)
    reader = "news.reader@example.jp"
    status, _ = tsunagu.post_json(
        "/forms/demo/submissions", {"email": reader, "name": "読者 一郎", "consent": True}
    )
    assert status == 201
    sent = tsunagu.cli("mail", "send", reader, "--template", "seminar-invitation", "--key", "r1")
    assert sent.returncode == 0 and '"sent"' in sent.stdout, (sent.stdout, sent.stderr)

    # When report_events has counted it from the events stream (asynchronously, as in AWS)
    def counted() -> bool:
        shown = tsunagu.cli("reports", "mail", "seminar-invitation", "--format", "json")
        assert shown.returncode == 0, shown.stderr
        return bool(json.loads(shown.stdout)["total"]["counts"].get("sent") == 1)

    wait_for(counted, timeout=STREAM_WAIT_SECONDS, what="the mail counted", interval=0.5)
    # Then the marketer's report shows it, with the definitions and a chart
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB")
    open_screen(page, tsunagu, "reports/mail/seminar-invitation")
    table = page.locator("table.report")
    expect(table.locator("tr", has_text="Total")).to_contain_text("1")
    chart = page.locator("figure.report-chart")
    expect(chart.locator("figcaption")).to_contain_text("seminar-invitation")
    expect(chart.locator("canvas")).to_be_visible()
    page.get_by_text("What each figure means").click()
    expect(page.locator("dl.definitions")).to_contain_text("opened_people_unique")
    assert accessibility_problems(page) == []


def test_a_funnel_refused_for_its_days_comes_back_when_the_days_are_fixed(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB")
    open_screen(page, tsunagu, "reports/funnel")
    expect(page.get_by_role("table", name=re.compile("Leads reaching each stage"))).to_be_visible()
    since = page.get_by_label("From")
    # The date fields hold the days the funnel is of (the API's default until some are chosen)
    expect(since).to_have_value(re.compile(r"^\d{4}-\d{2}-\d{2}$"))
    chosen = since.input_value()
    expect(page.locator("main")).to_contain_text(f"Leads created {chosen} to")

    # When the marketer types a year the API refuses (a date field passes 0002-... on the way)
    since.fill("0002-01-01")
    # Then she is told why, and the choice of grouping stays on screen to change
    expect(page.locator(".problem")).to_be_visible()
    expect(page.get_by_label("Group by")).to_be_visible()

    # And once the days are right again, the refusal goes and the funnel is shown
    since.fill(chosen)
    expect(page.locator(".problem")).to_have_count(0)
    expect(page.get_by_role("table", name=re.compile("Leads reaching each stage"))).to_be_visible()


def test_a_mail_chosen_while_the_last_one_s_report_loads_shows_its_own_report(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given the seminar invitation sent and counted, and a mail never sent
    reader = "late.report.reader@example.jp"
    status, _ = tsunagu.post_json(
        "/forms/demo/submissions", {"email": reader, "name": "遅延 読者", "consent": True}
    )
    assert status == 201
    sent = tsunagu.cli("mail", "send", reader, "--template", "seminar-invitation", "--key", "late")
    assert sent.returncode == 0 and '"sent"' in sent.stdout, (sent.stdout, sent.stderr)

    def counted() -> bool:
        shown = tsunagu.cli("reports", "mail", "seminar-invitation", "--format", "json")
        assert shown.returncode == 0, shown.stderr
        return bool(json.loads(shown.stdout)["total"]["counts"].get("sent", 0) >= 1)

    wait_for(counted, timeout=STREAM_WAIT_SECONDS, what="the mail counted", interval=0.5)
    stored_template(tsunagu, tmp_path, "never-sent-offer", "Never sent offer", "未送信のご案内")
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="reports/mail")
    settled(page)
    held: list[Route] = []
    page.route(
        re.compile(r"/admin/reports/mail/seminar-invitation(\?|$)"),
        lambda route: held.append(route),
    )

    # When she chooses the invitation and, before its report has answered, the mail never sent
    # (its label holds its options' names too, hence its words' start)
    chooser = page.get_by_label(re.compile(r"^Mail template"))
    chooser.select_option("seminar-invitation")
    chooser.select_option("never-sent-offer")
    expect(page.locator("main")).to_contain_text("Nothing was counted in these days.")
    assert len(held) == 1, [route.request.url for route in held]

    # ... and the invitation's report arrives after it
    answer_late(page, held[0])

    # Then the report is still the one of the mail she chose last
    expect(page.locator("main")).to_contain_text("Nothing was counted in these days.")
    expect(page.locator("table.report")).to_have_count(0)


def test_a_look_back_applied_while_the_first_attribution_loads_keeps_its_own_answer(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given the revenue attribution opened on a slow network: its first answer is held back
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="reports")
    settled(page)
    held: list[Route] = []

    def first_held(route: Route) -> None:
        if re.search(r"lookback_days=7(&|$)", route.request.url):
            route.continue_()
        else:
            held.append(route)

    page.route(re.compile(r"/admin/reports/attribution(\?|$)"), first_held)
    page.get_by_label("Report on").select_option("attribution")

    # When she applies a look-back of 7 days before it has answered
    settings = page.get_by_role("form", name="Attribution settings")
    settings.get_by_label("Look-back (days)").fill("7")
    settings.get_by_role("button", name="Apply").click()
    expect(page.locator("main")).to_contain_text("in the 7 days before each close")
    assert len(held) == 1, [route.request.url for route in held]

    # ... and the first answer, of 90 days, arrives after hers
    answer_late(page, held[0])

    # Then the screen still shows what she applied
    expect(page.locator("main")).to_contain_text("in the 7 days before each close")
    expect(page.locator("main")).not_to_contain_text("in the 90 days before each close")


@pytest.mark.parametrize("locale", ["ja-JP", "en-GB"])
def test_every_screen_passes_the_accessibility_check_in_both_languages(
    tsunagu: RunningTsunagu, chromium: Chromium, locale: str
) -> None:
    expected_language = locale.split("-")[0]
    problems = {}
    # The sign-in screen, before anyone is signed in
    context = chromium.new_context(locale=locale, bypass_csp=True)
    signing_in = context.new_page()
    signing_in.goto(f"{tsunagu.api_url}/console/")
    expect(signing_in.locator("input[type=password]")).to_be_visible()
    assert signing_in.evaluate("document.documentElement.lang") == expected_language
    problems["sign-in"] = accessibility_problems(signing_in)
    context.close()

    page = console_page(chromium, tsunagu, ADMIN_EMAIL, admin_password(tsunagu), locale=locale)
    screens = (*SCREENS, f"leads/{LEAD}", "templates/seminar-invitation", "audit", "reports")
    canvases = ("journeys/seminar_follow_up", "journeys/new")
    for screen in (*screens, *canvases, "reports/journey/welcome_nurture", "reports/funnel"):
        open_screen(page, tsunagu, screen)
        assert page.evaluate("document.documentElement.lang") == expected_language
        problems[screen] = accessibility_problems(page)
    assert problems == {screen: [] for screen in problems}


BUYER = "buyer.kimura@example.jp"
DEAL_AMOUNT = "1350000"


def attribution(tsunagu: RunningTsunagu, *args: str) -> dict[str, Any]:
    """What `tsunagu reports attribution` credits over its default days (the last 30, up to
    today on the runtime's clock, in the account's time zone)."""
    shown = tsunagu.cli("reports", "attribution", "--format", "json", *args)
    assert shown.returncode == 0, shown.stderr
    found: dict[str, Any] = json.loads(shown.stdout)
    return found


def signed_crm_post(
    tsunagu: RunningTsunagu, path: str, payload: dict[str, Any], folder: Path
) -> tuple[int, dict[str, Any]]:
    """POST ``payload`` as the CRM would, signed with the CRM secret by `tsunagu crm sign`."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    (folder / "crm-body.json").write_bytes(body)
    signed = tsunagu.cli("crm", "sign", "--file", str(folder / "crm-body.json"))
    assert signed.returncode == 0, signed.stderr
    headers = dict(line.split(": ", 1) for line in signed.stdout.strip().splitlines())
    status, _, answer = tsunagu.request(
        "POST", path, body, {"content-type": "application/json", **headers}
    )
    return status, json.loads(answer)


def welcome_mail_of(tsunagu: RunningTsunagu, email: str) -> str:
    """The message id of the welcome mail welcome_nurture sent the lead (its first node)."""

    def sent() -> str | None:
        shown = tsunagu.cli("leads", "timeline", email, "--json")
        assert shown.returncode == 0, shown.stderr
        mails = [
            e["message_id"]
            for e in json.loads(shown.stdout)
            if e["type"] == "mail_sent" and e.get("template_id") == "welcome"
        ]
        return mails[0] if mails else None

    return wait_for(sent, timeout=STREAM_WAIT_SECONDS, what="the welcome mail", interval=0.5)


def test_a_marketer_sees_a_won_deal_credited_to_the_mail_its_lead_opened(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given a lead who asked for news, sent the welcome mail by welcome_nurture, and who opened
    # it in person an hour later (the open pixel, loaded by a desktop Chrome)
    status, _ = tsunagu.post_json(
        "/forms/demo/submissions", {"email": BUYER, "name": "木村 誠", "consent": True}
    )
    assert status == 201
    message_id = welcome_mail_of(tsunagu, BUYER)
    pixel = tracked_links(tsunagu, BUYER, "--message", message_id, "--sent-seconds-ago", "3600")
    opened = tsunagu.request(
        "GET", pixel["open_pixel"].removeprefix(tsunagu.api_url), headers={"user-agent": CHROME}
    )
    assert opened[0] == 200

    # When the CRM says the lead's company signed today (the runtime's today, in Tokyo)
    today = attribution(tsunagu)["to"]
    deal = {
        "deal_id": "D-E2E-0001",
        "name": "年間契約 2027",
        "amount": DEAL_AMOUNT,
        "currency": "JPY",
        "stage": "受注",
        "status": "won",
        "close_date": today,
        "leads": [{"email": BUYER}],
        "account": "木村商事 株式会社",
        # The start of that day in Tokyo: never after the request is signed, whatever the hour
        # (a CRM record dated after its signed request is refused)
        "updated_at": isoformat(datetime.fromisoformat(f"{today}T00:00:00+09:00")),
    }
    status, answer = signed_crm_post(tsunagu, "/crm/deals", deal, tmp_path)
    assert status == 200, answer

    # And the events stream has counted the deal and the open (asynchronously, as in AWS)
    def credited() -> dict[str, Any] | None:
        found = attribution(tsunagu)
        mails = {m["template_id"]: m for m in found["mails"]}
        welcome = mails.get("welcome")
        if welcome is None or welcome["revenue"]["last_touch"].get("JPY") != DEAL_AMOUNT:
            return None
        return found

    found = wait_for(credited, timeout=STREAM_WAIT_SECONDS, what="the deal credited")
    (journey,) = [j for j in found["journeys"] if j["journey_id"] == "welcome_nurture"]
    assert journey["revenue"]["first_touch"] == {"JPY": DEAL_AMOUNT}
    assert journey["roi"]["linear"] is None  # no exchange rate given

    # Then the marketer's attribution view shows the revenue on the mail and on the journey
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB")
    open_screen(page, tsunagu, "reports")
    page.get_by_label("Report on").select_option("attribution")
    page.wait_for_url(re.compile("#/reports/attribution$"))
    settled(page)
    main = page.locator("main")
    expect(main).to_contain_text("A touch is a mail a person opened or clicked")
    expect(main).to_contain_text("Last touch")
    mails = page.get_by_role("table", name="Revenue credited per mail template")
    expect(row_of(mails, "welcome")).to_contain_text("1,350,000 JPY")
    journeys = page.get_by_role("table", name="Revenue credited per journey")
    journey_row = row_of(journeys, "welcome_nurture")
    expect(journey_row).to_contain_text("1,350,000 JPY")
    expect(journey_row).to_contain_text("USD")  # its AWS cost: the shipped version is priced
    # Without an exchange rate no ROI, and the dash says why
    expect(journey_row.locator("[title^='No exchange rate for JPY']")).to_have_count(3)
    expect(page.locator("figure.report-chart canvas")).to_be_visible()
    # ... and where the deal's lead first came from: the demo form
    sources = page.get_by_role("table", name=re.compile("where their lead first came from"))
    expect(row_of(sources, "Web form")).to_contain_text("1,350,000 JPY")
    assert accessibility_problems(page) == []

    # When she gives the yen's rate, the ROI is shown
    page.get_by_label("Exchange rates to US dollars").fill("JPY:150")
    page.get_by_role("button", name="Apply").click()
    settled(page)
    expect(journey_row.locator("[title^='No exchange rate']")).to_have_count(0)
    screenshot(page, tmp_path, "console-attribution")

    # And the CSV she downloads has the mail's row
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    saved = tmp_path / "attribution.csv"
    download.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text("utf-8-sig"))))
    assert any(
        (r["kind"], r["id"], r["model"], r["currency"], r["revenue"])
        == ("mail", "welcome", "linear", "JPY", DEAL_AMOUNT)
        for r in rows
    ), rows
    journey_rows = [r for r in rows if r["kind"] == "journey" and r["id"] == "welcome_nurture"]
    assert journey_rows and all(r["roi"] for r in journey_rows), journey_rows

    # And in Japanese, the same view reads in Japanese and passes the accessibility check
    japanese = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="ja-JP")
    open_screen(japanese, tsunagu, "reports/attribution")
    table = japanese.get_by_role("table", name="メールテンプレート別の貢献売上")
    expect(row_of(table, "welcome")).to_contain_text("1,350,000 JPY")
    expect(japanese.locator("main")).to_contain_text("タッチとは")
    assert accessibility_problems(japanese) == []


def row_of(table: Locator, heading: str) -> Locator:
    """The table's row headed ``heading`` (its row header, exactly)."""
    return table.get_by_role("row").filter(
        has=table.page.get_by_role("rowheader", name=heading, exact=True)
    )


def test_two_exclusions_added_at_once_are_both_listed_when_the_first_reload_answers_late(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given the settings on a slow network: the list read after the first change is held back
    first, second = "late-list-one.example.com", "late-list-two.example.com"
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="settings")
    settled(page)
    section = page.locator("section.exclusions")
    table = page.get_by_role("table", name="Exclusions")
    held = hold_first(page, r"/admin/exclusions(\?|$)")

    def exclude(value: str) -> None:
        section.get_by_label("Address or domain to exclude").fill(value)
        section.get_by_role("button", name="Exclude", exact=True).click()
        expect(section.get_by_role("status")).to_contain_text(f"{value} is excluded")

    try:
        # When she excludes one domain, and a second before the list read after the first has
        # answered (it answered the list as it stood then: the first domain, not the second)
        exclude(first)
        as_then = api_answer_now(page, tsunagu, "/admin/exclusions")
        exclude(second)
        expect(row_of(table, second)).to_be_visible()
        assert len(held) == 1, [route.request.url for route in held]

        # ... and that list arrives after the one read after the second
        answer_late(page, held[0], as_then)

        # Then both are listed: the older list does not take the second off the screen
        expect(row_of(table, first)).to_be_visible()
        expect(row_of(table, second)).to_be_visible()
    finally:
        for value in (first, second):
            tsunagu.cli("exclusions", "remove", value)


def test_two_users_invited_at_once_are_both_listed_when_the_first_reload_answers_late(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given the admin's settings on a slow network: the users read after the first invitation
    # are held back
    first, second = "late.invite.one@example.com", "late.invite.two@example.com"
    page = console_page(
        chromium, tsunagu, ADMIN_EMAIL, admin_password(tsunagu), locale="en-GB", at="settings"
    )
    settled(page)
    users = page.get_by_role("heading", name="Users and roles").locator("xpath=..")
    held = hold_first(page, r"/admin/users(\?|$)")

    def invite(email: str) -> None:
        users.get_by_label("E-mail").fill(email)
        users.get_by_role("button", name="Invite", exact=True).click()
        expect(users.get_by_role("status")).to_contain_text("Invited")

    # When she invites one user, and a second before the list read after the first has
    # answered (it answered the users as they were then: the first, not the second)
    invite(first)
    as_then = api_answer_now(page, tsunagu, "/admin/users?limit=200")
    assert second not in as_then.text()
    invite(second)
    expect(users.get_by_role("row", name=re.compile(re.escape(second)))).to_be_visible()
    assert len(held) == 1, [route.request.url for route in held]

    # ... and that list arrives after the one read after the second
    answer_late(page, held[0], as_then)

    # Then both are listed: the older list does not take the second off the screen
    expect(users.get_by_role("row", name=re.compile(re.escape(first)))).to_be_visible()
    expect(users.get_by_role("row", name=re.compile(re.escape(second)))).to_be_visible()


def test_a_journey_s_settings_saved_twice_keep_the_last_when_the_first_reload_answers_late(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given a journey's entry and exit settings open on a slow network: the journey read again
    # after a save is held
    path = "/admin/journeys/seminar_follow_up"
    page = console_page(
        chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="journeys/seminar_follow_up"
    )
    page.get_by_text("Entry, re-entry and exit").click()
    settings = page.get_by_role("form", name="Entry, re-entry and exit")
    statuses = settings.get_by_label(re.compile("these CRM statuses"))
    expect(settings.get_by_role("button", name="Add a trigger")).to_be_visible()  # read
    held = hold_first(page, rf"{path}$")

    def save_statuses(words: str, said: str, *, read_after: bool = True) -> None:
        """Save ``words`` as the CRM statuses; unless told, wait for the journey read after."""
        statuses.fill(words)
        if read_after:
            with page.expect_response(
                lambda read: read.request.method == "GET" and read.url.endswith(path)
            ) as read:
                settings.get_by_role("button", name="Save the settings").click()
            read.value.finished()
        else:
            settings.get_by_role("button", name="Save the settings").click()
        expect(settings.get_by_role("status")).to_contain_text(said)

    # When she saves CRM statuses (the journey read after it answers them as saved then)
    save_statuses("late-one", "Saved.", read_after=False)
    as_then = api_answer_now(page, tsunagu, path)
    # ... saves others before that read answers (over the record her first save stored: not
    # refused as someone else's change)
    save_statuses("late-two", "Saved.")
    expect(settings.get_by_role("status")).not_to_contain_text("Someone else changed")
    assert len(held) == 1, [route.request.url for route in held]

    # ... and the read after the first save arrives after the one after the last has
    answer_late(page, held[0], as_then)

    # Then the settings shown are the last saved, and saving again is not refused
    expect(statuses).to_have_value("late-two")
    save_statuses("late-three", "Saved.")
    shown = json.loads(tsunagu.cli("journeys", "show", "seminar_follow_up").stdout)
    assert shown["exit"]["crm_statuses"] == ["late-three"]


def test_leaving_a_journey_with_its_settings_changed_and_not_saved_asks_first(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given a journey's entry and exit settings open, as read
    page = console_page(
        chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="journeys/seminar_follow_up"
    )
    asked: list[str] = []  # every dialog is also accepted (console_page)
    page.on("dialog", lambda dialog: asked.append(dialog.message))
    menu = page.get_by_role("navigation", name="Main")

    def open_settings() -> Locator:
        expect(page.get_by_role("heading", name="Versions")).to_be_visible()  # the journey read
        page.get_by_text("Entry, re-entry and exit").click()
        settings = page.get_by_role("form", name="Entry, re-entry and exit")
        expect(settings.get_by_role("button", name="Add a trigger")).to_be_visible()  # read
        return settings

    def leave() -> None:
        menu.get_by_role("link", name="Journeys").click()
        page.wait_for_url(re.compile("#/journeys$"))
        # ... and the journey's page gone: the address changes first, and a page opened again
        # before the list is drawn would be the same page still, its panel open as it was left
        expect(page.locator(".canvas-screen")).to_have_count(0)

    # When she leaves without changing anything, nothing is asked
    open_settings()
    leave()
    assert asked == []

    # When she types CRM statuses that end it and leaves without saving, she is asked first
    page.goto(page.url.replace("#/journeys", "#/journeys/seminar_follow_up"))
    statuses = open_settings().get_by_label(re.compile("these CRM statuses"))
    statuses.fill("won-unsaved")
    leave()
    assert asked == ["You have changes that are not saved. Leave this page and lose them?"]

    # When she saves them, she leaves without a question
    page.goto(page.url.replace("#/journeys", "#/journeys/seminar_follow_up"))
    settings = open_settings()
    settings.get_by_label(re.compile("these CRM statuses")).fill("won-saved")
    settings.get_by_role("button", name="Save the settings").click()
    expect(settings.get_by_role("status")).to_contain_text("Saved.")
    leave()
    assert len(asked) == 1, asked


def test_a_marketer_sees_what_a_journey_cost_on_aws_at_list_price(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given welcome_nurture has sent a welcome mail (counted from the events stream)
    reader = "cost.reader@example.jp"
    status, _ = tsunagu.post_json(
        "/forms/demo/submissions", {"email": reader, "name": "費用 読者", "consent": True}
    )
    assert status == 201
    welcome_mail_of(tsunagu, reader)

    def counted() -> bool:
        shown = tsunagu.cli("reports", "journey", "welcome_nurture", "--format", "json")
        assert shown.returncode == 0, shown.stderr
        report = json.loads(shown.stdout)
        return any(v["priced"] and v["mails"] for v in report["cost"]["versions"])

    wait_for(counted, timeout=STREAM_WAIT_SECONDS, what="the journey's cost", interval=0.5)

    # Then its report has the cost section: per version, the estimate's assumptions said
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB")
    open_screen(page, tsunagu, "reports/journey/welcome_nurture")
    section = page.locator("section.journey-cost")
    expect(section.get_by_role("heading")).to_have_text("AWS cost (estimate)")
    expect(section).to_contain_text("0.5 GB and 100 ms per Lambda call")
    costs = page.get_by_role("table", name="Estimated AWS cost per version, in US dollars")
    expect(row_of(costs, "deployed")).to_contain_text("USD")
    screenshot(page, tmp_path, "console-journey-cost")
    assert accessibility_problems(page) == []


def test_a_marketer_applies_a_list_s_dry_run_and_undoes_the_import(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given a Shift_JIS list of a seminar with one new address that asked for mail
    address = "seminar.apply.nakamura@example.jp"
    sheet = tmp_path / "セミナー参加者.csv"
    rows = [
        ["メールアドレス", "氏名", "会社名", "配信希望"],
        [address, "中村 真一", "中村工業株式会社", "希望する"],
    ]
    sheet.write_bytes("".join(",".join(row) + "\r\n" for row in rows).encode("cp932"))
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="imports")
    settled(page)

    # When she dry runs it and applies the plan (confirmed: the dialog is accepted)
    page.get_by_label("File").set_input_files(str(sheet))
    page.get_by_label("Counts as").select_option("seminar")
    read_as_consent(page, "配信希望", "希望する")
    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_role("status")).to_contain_text("create 1 · update 0")
    page.get_by_role("button", name="Apply this plan").click()

    # Then the import's id and counts are said, the lead exists, and the import is listed
    status = page.get_by_role("status")
    expect(status).to_contain_text("applied: create 1 · update 0 · unchanged 0")
    found = re.search(r"Import (\S+) applied", status.inner_text())
    assert found, status.inner_text()
    import_id = found[1]
    shown = tsunagu.cli("leads", "get", address)
    assert shown.returncode == 0, shown.stderr
    assert "中村 真一" in shown.stdout and "opted_in" in shown.stdout, shown.stdout
    history = page.get_by_role("table", name="Imports so far")
    row = history.locator("tr", has_text=import_id)
    expect(row).to_contain_text("セミナー参加者.csv")
    expect(row).to_contain_text("applied")
    settled(page)
    assert accessibility_problems(page) == []

    # When she undoes it (confirmed), the lead it created is removed and the import says so
    row.get_by_role("button", name="Undo").click()
    expect(page.get_by_role("status")).to_contain_text(
        f"Import {import_id} undone: removed 1, restored 0, opt-ins withdrawn 0, kept 0"
    )
    expect(row).to_contain_text("undone")
    expect(row.get_by_role("button", name="Undo")).to_have_count(0)
    assert tsunagu.cli("leads", "get", address).returncode != 0


def test_a_dry_run_of_a_file_no_longer_chosen_is_not_offered_when_it_answers_late(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given two lists, the first of two new addresses, the second of one
    first, second = tmp_path / "first-list.csv", tmp_path / "second-list.csv"
    first.write_text(
        "email,name\nlate.plan.one@example.jp,遅延 一\nlate.plan.two@example.jp,遅延 二\n"
    )
    second.write_text("email,name\nlate.plan.three@example.jp,遅延 三\n")
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="imports")
    settled(page)
    held = hold_first(page, r"/admin/imports/plans$", picked=lambda asked: True)
    plan_status = page.get_by_role("status").filter(has_text="create")

    # When she dry runs the first list on a slow network, and chooses the second before the
    # first one's plan has come back
    page.get_by_label("File", exact=True).set_input_files(str(first))
    expect(page.get_by_label("Imported as, email")).to_be_visible()
    with page.expect_request(re.compile(r"/admin/imports/plans$")):
        page.get_by_role("button", name="Dry run").click()
    page.get_by_label("File", exact=True).set_input_files(str(second))
    expect(page.get_by_label("Imported as, email")).to_be_visible()
    assert len(held) == 1, [route.request.url for route in held]

    # ... and that plan arrives only now
    answer_late(page, held[0])

    # Then no plan is offered: not the first list's, for the second list chosen
    expect(plan_status).to_have_count(0)
    expect(page.get_by_role("button", name="Apply this plan")).to_have_count(0)
    # And the second list's own dry run shows its plan
    page.get_by_role("button", name="Dry run").click()
    expect(plan_status).to_contain_text("create 1 · update 0")
    expect(page.get_by_role("table", name="Rows")).to_contain_text("late.plan.three@example.jp")
    expect(page.get_by_role("table", name="Rows")).not_to_contain_text("late.plan.one")


def test_two_imports_undone_at_once_both_show_undone_when_the_first_reload_answers_late(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given two lists imported, each of one new address
    imported = []
    for number in (1, 2):
        sheet = tmp_path / f"taken-back-{number}.csv"
        sheet.write_text(f"email,name\nlate.undo.{number}@example.jp,取消 {number}\n")
        ran = tsunagu.cli("imports", "run", str(sheet))
        assert ran.returncode == 0, ran.stderr
        found = re.search(r"imp_[0-9A-Z]+", ran.stdout)
        assert found, ran.stdout
        imported.append(found[0])
    # ... and the imports screen on a slow network: the list read after the first undo is held
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="imports")
    settled(page)
    history = page.get_by_role("table", name="Imports so far")
    first, second = (history.locator("tr", has_text=import_id) for import_id in imported)
    held = hold_first(page, r"/admin/imports$")

    # When she undoes one (confirmed), and the other before the list read after the first has
    # answered (it answered the imports as they were then: the second still applied)
    first.get_by_role("button", name="Undo").click()
    expect(page.get_by_role("status")).to_contain_text(f"Import {imported[0]} undone")
    as_then = api_answer_now(page, tsunagu, "/admin/imports")
    second.get_by_role("button", name="Undo").click()
    expect(page.get_by_role("status")).to_contain_text(f"Import {imported[1]} undone")
    expect(second).to_contain_text("undone")
    assert len(held) == 1, [route.request.url for route in held]

    # ... and that list arrives after the one read after the second
    answer_late(page, held[0], as_then)

    # Then both show undone, with nothing to undo again
    for row in (first, second):
        expect(row).to_contain_text("undone")
        expect(row.get_by_role("button", name="Undo")).to_have_count(0)


def test_two_mappings_saved_one_after_the_other_are_both_offered_when_the_first_reload_answers_late(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given a list whose address column no automatic mapping knows, mapped by hand
    sheet = tmp_path / "late-mapping.csv"
    sheet.write_text("連絡先,お名前\nlate.mapping@example.jp,遅延 写像\n")
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="imports")
    settled(page)
    page.get_by_label("File", exact=True).set_input_files(str(sheet))
    page.get_by_label("Imported as, 連絡先").select_option("email")
    saved_mappings = page.get_by_label("Saved mapping").locator("option")
    held = hold_first(page, r"/admin/imports/mappings$")

    # When she saves it as late-a with a dry run on a slow network (the mappings read after the
    # save are held: they answer late-a alone), and again as late-b before that read answers
    def save_as(name: str) -> None:
        page.get_by_label("Save this mapping for").check()
        page.get_by_label("Name of the mapping").fill(name)
        page.get_by_role("button", name=re.compile(r"^Dry run")).click()
        expect(page.get_by_role("status").filter(has_text="saved for")).to_contain_text(
            f"Mapping {name} saved"
        )

    save_as("late-a")
    as_then = api_answer_now(page, tsunagu, "/admin/imports/mappings")
    save_as("late-b")
    expect(saved_mappings.filter(has_text="late-b")).to_have_count(1)
    assert len(held) == 1, [route.request.url for route in held]

    # ... and the read after late-a arrives after the one after late-b
    answer_late(page, held[0], as_then)

    # Then both mappings are offered, the one saved last too
    expect(saved_mappings.filter(has_text="late-a")).to_have_count(1)
    expect(saved_mappings.filter(has_text="late-b")).to_have_count(1)


def test_a_marketer_maps_a_list_whose_headers_name_nothing_saves_the_mapping_and_reuses_it(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given a guest list saved by Excel as "Unicode text" (UTF-16, tab-separated), its columns
    # headed ご芳名 and E-Mail(会社), which no automatic mapping knows; one address is broken
    sheet = tmp_path / "来賓リスト.txt"
    rows = [
        ["ご芳名", "E-Mail(会社)", "会社名", "案内希望", "備考"],
        ["来賓 一郎", "guest.ichiro@example.jp", "来賓商事株式会社", "する", "VIP"],
        ["来賓 二郎", "guest.jiro@example.jp", "", "しない", ""],
        ["来賓 三郎", "来賓三郎のアドレス", "", "", ""],
    ]
    sheet.write_bytes("".join("\t".join(row) + "\r\n" for row in rows).encode("utf-16"))
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="ja-JP", at="imports")
    settled(page)

    # When she chooses it, each column is listed with its values and what it is imported as:
    # 会社名 automatically; nothing is the e-mail address yet, and the screen says so
    page.get_by_label("ファイル").set_input_files(str(sheet))
    page.get_by_label("データの出所").select_option("seminar")
    columns = page.get_by_role("table", name="ファイルの列")
    expect(row_of(columns, "会社名")).to_contain_text("来賓商事株式会社")
    expect(row_of(columns, "会社名")).to_contain_text("（自動）")
    expect(page.get_by_label("「会社名」の取り込み先")).to_have_value("company")
    expect(page.get_by_label("「ご芳名」の取り込み先")).to_have_value("-")
    expect(row_of(columns, "案内希望")).to_contain_text("する / しない")
    expect(page.locator("main")).to_contain_text("メールアドレスとして取り込む列がありません")
    encoding = page.get_by_label("文字コード")
    expect(encoding.locator("option:checked")).to_have_text("自動判定: Unicodeテキスト（UTF-16）")
    settled(page)
    assert accessibility_problems(page) == []

    # ... and maps them: ご芳名 to the name, E-Mail(会社) to the address, 案内希望 read as
    # consent with its answers, 備考 into a field of her own; and saves the mapping
    page.get_by_label("「ご芳名」の取り込み先").select_option("name")
    page.get_by_label("「E-Mail(会社)」の取り込み先").select_option("email")
    page.get_by_label("「案内希望」の取り込み先").select_option("(consent)")
    page.get_by_label("同意を意味する回答").fill("する")
    page.get_by_label("同意しないを意味する回答").fill("しない")
    expect(page.locator("main")).not_to_contain_text("メールアドレスとして取り込む列がありません")
    page.get_by_label("このマッピングをセミナー申込用に保存する").check()
    page.get_by_label("マッピングの名前").fill("guest-list")
    page.get_by_role("button", name="ドライラン").click()

    # Then the dry run reads the file as mapped, and the mapping is kept for the source
    plan = page.get_by_role("status").filter(has_text="として読み込みました")
    expect(plan).to_contain_text("新規 2")
    expect(plan).to_contain_text("取り込み不可 1")
    main = page.locator("main")
    expect(main).to_contain_text("ご芳名 → 氏名, E-Mail(会社) → メールアドレス, 会社名 → 会社名")
    expect(main).to_contain_text("案内希望 → 配信同意として読み込み")
    expect(page.get_by_role("status").filter(has_text="guest-list")).to_contain_text(
        "マッピング「guest-list」をセミナー申込用に保存しました"
    )
    listed = json.loads(tsunagu.cli("imports", "mappings", "list", "--json").stdout)
    kept = next(m for m in listed if m["name"] == "guest-list")
    assert (kept["source"], kept["columns"]) == (
        "seminar",
        {"ご芳名": "name", "E-Mail(会社)": "email"},
    ), kept
    assert (kept["consent_column"], kept["consent_yes"]) == ("案内希望", ["する"]), kept
    # ... the rejected rows are saved as the CSV they are, named after the list
    with page.expect_download() as download:
        page.get_by_role("button", name="取り込めなかった行をダウンロード").click()
    assert download.value.suggested_filename == "rejected-来賓リスト.csv"

    # When she changes a column after the dry run, that plan is no longer the one to apply
    page.get_by_label("「備考」の取り込み先").select_option("(other)")
    page.get_by_label("「備考」の項目名").fill("guest_note")
    expect(main).to_contain_text("このドライランのあとでマッピングを変更しました")
    expect(page.get_by_role("button", name="この内容で取り込む")).to_have_count(0)
    page.get_by_role("button", name="もう一度ドライラン").click()
    expect(main).to_contain_text("備考 → guest_note")

    # ... and the run applies exactly that plan
    page.get_by_role("button", name="この内容で取り込む").click()
    expect(page.get_by_role("status")).to_contain_text("取り込みが完了しました")
    shown = tsunagu.cli("leads", "get", "guest.ichiro@example.jp")
    assert shown.returncode == 0, shown.stderr
    for value in ("来賓 一郎", "来賓商事株式会社", "guest_note", "VIP", "opted_in"):
        assert value in shown.stdout, (value, shown.stdout)

    # When the next list of the source comes, the saved mapping is picked: its columns and
    # consent are as saved, and the list plans without a column chosen by hand
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="ja-JP", at="imports")
    settled(page)
    page.get_by_label("ファイル").set_input_files(str(sheet))
    page.get_by_label("データの出所").select_option("seminar")
    page.get_by_label("保存したマッピング").select_option("guest-list")
    columns, main = page.get_by_role("table", name="ファイルの列"), page.locator("main")
    expect(page.get_by_label("「E-Mail(会社)」の取り込み先")).to_have_value("email")
    expect(row_of(columns, "ご芳名")).to_contain_text("（保存したマッピング）")
    expect(page.get_by_label("「案内希望」の取り込み先")).to_have_value("(consent)")
    expect(page.get_by_label("同意を意味する回答")).to_have_value("する")
    page.get_by_role("button", name="ドライラン").click()
    # (the two guests it took are there already: nobody is created again)
    expect(page.get_by_role("status")).to_contain_text("新規 0")
    expect(page.get_by_role("status")).to_contain_text("取り込み不可 1")
    expect(main).to_contain_text("案内希望 → 配信同意として読み込み")
    settled(page)
    assert accessibility_problems(page) == []

    # ... and an encoding named over the one found is what the file is read in: a file that is
    # not in it is refused in her language (from the refusal's code), not in the server's words
    page.get_by_label("文字コード").select_option("cp932")
    expect(main).to_contain_text("文字コードを確認してください（ファイルは cp932 ではありません")
    expect(main).not_to_contain_text("the file is not cp932")


UPLOAD_OVER_BYTES = 300 * 1024
"""The console uploads a list larger than this (a pre-signed PUT) and applies it in the
background (console/src/screens/Imports.tsx)."""
BACKGROUND_RUN_MS = 600_000
"""A bound on the runtime's import state machine planning or applying a large list (a broken
run, not a measure: on a loaded machine planning 3,000 rows took longer than Playwright's
default 30 s)."""


def trade_show_list(sheet: Path, visitor: str, visitors: int = 3_000) -> Path:
    """A trade show's visitors as Shift_JIS CSV (``visitor`` and a number at example.jp), more
    than a request's body holds: the console uploads it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["メールアドレス", "氏名", "会社名", "部署", "役職", "電話番号", "配信希望"])
    for n in range(visitors):
        writer.writerow([
            f"{visitor}{n:05d}@example.jp", f"来場 {n:05d}", "株式会社ツナグ展示会サンプル",
            "マーケティング本部 デジタル推進部", "部長", f"03-5555-{n:04d}", "希望する",
        ])  # fmt: skip
    sheet.write_bytes(out.getvalue().encode("cp932"))
    assert sheet.stat().st_size > UPLOAD_OVER_BYTES
    return sheet


def dry_run_trade_show_list(page: Page, sheet: Path) -> None:
    page.get_by_label("File").set_input_files(str(sheet))
    page.get_by_label("Counts as").select_option("trade_show")
    # (its columns read from the first part of the file: the whole is uploaded for the dry run)
    read_as_consent(page, "配信希望", "希望する")
    page.get_by_role("button", name="Dry run").click()


def test_a_marketer_applies_a_list_too_large_for_a_request_and_watches_it_in_the_background(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given a Shift_JIS list of a trade show's 3,000 visitors, more than a request's body holds
    sheet = trade_show_list(tmp_path / "展示会2027来場者.csv", "expo2027.visitor")
    # ... and a browser that enforces the console's CSP, as every browser does: an upload the
    # CSP blocked would fail here
    policy = tsunagu.request("GET", "/console/")[1]["content-security-policy"]
    assert "connect-src" in policy, policy
    page = console_page(
        chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="imports", bypass_csp=False
    )
    blocked: list[str] = []
    page.on(
        "console",
        lambda message: blocked.append(message.text) if "Security Policy" in message.text else None,
    )
    settled(page)

    # When she dry runs it
    with (
        page.expect_response(lambda answer: answer.request.method == "PUT") as put,
        page.expect_request(lambda asked: asked.url.endswith("/admin/imports/plans")) as planned,
    ):
        dry_run_trade_show_list(page, sheet)

    # Then the file went to the imports bucket (another origin) in one PUT, and was planned there
    assert put.value.status == 200, put.value.text()
    assert not put.value.url.startswith(tsunagu.api_url + "/"), put.value.url
    asked = planned.value.post_data_json
    assert asked["upload_id"].startswith("upl_") and "content_base64" not in asked, asked
    status = page.get_by_role("status")
    # Planned in the background: real work, bounded only against a broken run (not a measure)
    expect(status).to_contain_text("Read as Shift_JIS (cp932).", timeout=BACKGROUND_RUN_MS)
    expect(status).to_contain_text("create 3000 · update 0 · unchanged 0 · merged 0 · rejected 0")
    first = page.get_by_role("table", name="Rows").locator("tr", has_text="visitor00000@example.jp")
    expect(first).to_contain_text("consent: yes")
    expect(page.locator("main")).to_contain_text("applied in the background, 500 rows at a time")

    # When she applies it (confirmed), it is queued, and its progress is shown as it goes
    with page.expect_response(
        lambda answer: answer.request.method == "POST" and answer.url.endswith("/admin/imports")
    ) as queued:
        page.get_by_role("button", name="Apply this plan").click()
    assert queued.value.status == 202, queued.value.text()
    import_id = queued.value.json()["import_id"]
    run = page.get_by_role("region", name=f"Import of {sheet.name}")
    expect(run.get_by_role("heading")).to_be_focused()
    bar = run.get_by_role("progressbar", name="Rows written")
    expect(bar).to_be_visible()

    # Then the progress reaches the total, and the import is applied
    expect(run.get_by_role("status")).to_contain_text(
        f"Import {import_id} applied: create 3000 · update 0", timeout=BACKGROUND_RUN_MS
    )
    expect(run).to_contain_text("3,000 / 3,000 rows, 6 of 6 chunks")
    expect(bar).to_have_js_property("value", 3000)
    expect(bar).to_have_js_property("max", 3000)
    expect(run.get_by_role("table", name="Parked chunks")).to_have_count(0)
    history = page.get_by_role("table", name="Imports so far")
    expect(history.locator("tr", has_text=import_id)).to_contain_text("applied")
    assert blocked == [], blocked
    shown = tsunagu.cli("leads", "get", "expo2027.visitor02999@example.jp")
    assert shown.returncode == 0, shown.stderr
    assert "株式会社ツナグ展示会サンプル" in shown.stdout, shown.stdout
    assert "opted_in" in shown.stdout, shown.stdout

    # And opened from the list (in Japanese, where axe-core can be put into the page), the
    # finished import shows its progress and passes the accessibility check
    checked = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="ja-JP", at="imports")
    settled(checked)
    listed = checked.get_by_role("table", name="取り込み履歴").locator("tr", has_text=import_id)
    expect(listed).to_contain_text("取り込み済み")
    listed.get_by_role("button", name="進み具合").click()
    opened = checked.get_by_role("region", name=f"{sheet.name} の取り込み")
    expect(opened.get_by_role("heading")).to_be_focused()
    expect(opened.get_by_role("progressbar", name="書き込んだ行")).to_have_js_property(
        "value", 3000
    )
    expect(opened).to_contain_text("3,000 / 3,000 行、6 ブロック中 6 ブロック完了")
    expect(opened.get_by_role("status")).to_contain_text(f"取り込みが完了しました（{import_id}）")
    settled(checked)
    assert accessibility_problems(checked) == []


def listed_as_queued_then_asked_once_ended(page: Page) -> None:
    """The order a slow browser meets after she applies a list in the background: the list of
    imports is read while the run is still queued (its row is answered as ``POST /admin/imports``
    answered it), and the console's first question about the run
    (``GET /admin/imports/imp_…``) is answered only once the run has ended on the server."""
    queued: dict[str, Any] = {}

    def applied(route: Route) -> None:
        answer = route.fetch()
        queued.update(answer.json())
        route.fulfill(response=answer)

    def listed(route: Route) -> None:
        if not queued or "listed" in queued:
            route.continue_()
            return
        queued["listed"] = True
        answer = route.fetch()
        as_queued = {
            key: value for key, value in queued.items() if key not in ("progress", "listed")
        }
        items = [
            as_queued if item["import_id"] == as_queued["import_id"] else item
            for item in answer.json()["items"]
        ]
        route.fulfill(response=answer, json={"items": items})

    def asked(route: Route) -> None:
        assert route.request.method == "GET", route.request.method

        def ended() -> APIResponse | None:
            answer = route.fetch()
            return None if answer.json().get("status") in ("queued", "applying") else answer

        route.fulfill(
            response=wait_for(ended, timeout=BACKGROUND_RUN_MS / 1000, what="the run's end")
        )

    def applied_or_listed(route: Route) -> None:
        (applied if route.request.method == "POST" else listed)(route)

    page.route(re.compile(r"/admin/imports$"), applied_or_listed)
    page.route(re.compile(r"/admin/imports/imp_[0-9A-Z]+$"), asked, times=1)


def test_a_large_list_whose_plan_changed_since_its_dry_run_is_refused_in_the_background(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given a large list's dry run, and one of its visitors signing up through a form meanwhile
    sheet = trade_show_list(tmp_path / "展示会2027追加.csv", "expo2027.late")
    page = console_page(
        chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="imports", bypass_csp=False
    )
    settled(page)
    dry_run_trade_show_list(page, sheet)
    expect(page.get_by_role("status")).to_contain_text(
        "create 3000 · update 0", timeout=BACKGROUND_RUN_MS
    )
    status, _ = tsunagu.post_json(
        "/forms/demo/submissions", {"email": "expo2027.late00000@example.jp", "name": "来場 00000"}
    )
    assert status == 201

    # When she applies the plan, it is queued, then refused: nothing is written, and it says why.
    # In the order a loaded machine can give: the list read while the run was queued, the run's
    # progress first asked after its refusal (the list said "queued" for good)
    listed_as_queued_then_asked_once_ended(page)
    page.get_by_role("button", name="Apply this plan").click()
    run = page.get_by_role("region", name=f"Import of {sheet.name}")
    expect(run.get_by_role("status")).to_contain_text(
        "refused, nothing was written: the plan changed since the dry run",
        timeout=BACKGROUND_RUN_MS,
    )
    found = re.search(r"Import (\S+) refused", run.get_by_role("status").inner_text())
    assert found, run.inner_text()
    row = page.get_by_role("table", name="Imports so far").locator("tr", has_text=found[1])
    expect(row).to_contain_text("refused (nothing written)")
    expect(row).to_contain_text("run the dry run again")
    expect(row.get_by_role("button", name="Undo")).to_have_count(0)
    assert tsunagu.cli("leads", "get", "expo2027.late00001@example.jp").returncode != 0


def test_a_marketer_excludes_a_domain_and_a_viewer_only_sees_the_exclusions(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    domain = "rival-exclusion.example.com"
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB")
    open_screen(page, tsunagu, "settings")
    section = page.locator("section.exclusions")
    expect(section).to_contain_text("No marketing mail goes to these addresses and domains")

    # When she excludes a competitor's domain with a note
    section.get_by_label("Address or domain to exclude").fill(domain)
    section.get_by_label("List", exact=True).fill("competitors")
    section.get_by_label("Note (why it is excluded)").fill("競合: 展示会で名刺交換")
    section.get_by_role("button", name="Exclude", exact=True).click()
    expect(section.get_by_role("status")).to_contain_text(f"{domain} is excluded")
    table = page.get_by_role("table", name="Exclusions")
    row = row_of(table, domain)
    expect(row).to_contain_text("Domain (and its subdomains)")
    expect(row).to_contain_text("Competitors")
    expect(row).to_contain_text("競合: 展示会で名刺交換")
    expect(row).to_contain_text(MARKETER)
    assert domain in tsunagu.cli("exclusions", "list").stdout
    settled(page)
    assert accessibility_problems(page) == []

    # Then a viewer sees it listed, with nothing to add or remove it
    viewer = console_page(chromium, tsunagu, VIEWER, PASSWORD, locale="ja-JP")
    open_screen(viewer, tsunagu, "settings")
    viewed = viewer.locator("section.exclusions")
    expect(viewer.get_by_role("table", name="除外管理")).to_contain_text(domain)
    expect(viewed.get_by_role("button")).to_have_count(0)
    expect(viewed.locator("form")).to_have_count(0)
    assert accessibility_problems(viewer) == []

    # When she removes it (confirmed), it is gone from the list and from the account's
    row.get_by_role("button", name=f"Remove {domain}").click()
    expect(section.get_by_role("status")).to_contain_text(f"{domain} is no longer excluded")
    expect(row_of(table, domain)).to_have_count(0)
    assert domain not in tsunagu.cli("exclusions", "list").stdout


RIVALS = ("rival.suzuki@example.jp", "rival.tanaka@example.jp")
RIVAL_COMPANY = "株式会社ライバル商事"


def test_a_marketer_tries_a_filter_saves_it_excluded_and_exports_it_in_shift_jis(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given two people of a competitor who signed up through the demo form, one with a name
    # Shift_JIS has no code for (𠮷)
    for email, name in zip(RIVALS, ("競合 社員", "𠮷野 社員"), strict=True):
        status, _ = tsunagu.post_json(
            "/forms/demo/submissions", {"email": email, "name": name, "company": RIVAL_COMPANY}
        )
        assert status == 201
    segment = "rival_staff"
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="segments")
    settled(page)

    # When she writes a filter and tries it, before saving anything
    page.get_by_role("textbox", name="Filter", exact=True).fill(f"field.company={RIVAL_COMPANY}")
    page.get_by_role("button", name="Try").click()
    expect(page.locator("main")).to_contain_text("2 leads selected now.")
    sample = page.get_by_role("table", name="The first leads selected, highest score first")
    for email in RIVALS:
        expect(sample.locator("tr", has_text=email)).to_contain_text(RIVAL_COMPANY)
    assert segment not in tsunagu.cli("segments", "list").stdout
    settled(page)
    assert accessibility_problems(page) == []

    # And saves it as a segment no marketing mail goes to
    page.get_by_label("Name", exact=True).fill(segment)
    page.get_by_label("Description", exact=True).fill("競合の社員（展示会で名刺交換）")
    page.get_by_label("Exclude from marketing mail").check()
    expect(page.locator("main")).to_contain_text("transactional mail")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("status")).to_contain_text(f"Segment {segment} is saved.")

    # Then it is listed with its badge, and saved as she wrote it
    saved = page.get_by_role("table", name="Saved segments").locator("tr", has_text=segment)
    expect(saved).to_contain_text("Excluded from marketing")
    expect(saved).to_contain_text(f"field.company={RIVAL_COMPANY}")
    shown = json.loads(tsunagu.cli("segments", "show", segment, "--json").stdout)
    assert shown["exclude_from_marketing"] is True and shown["count"] == 2, shown
    assert shown["description"] == "競合の社員（展示会で名刺交換）", shown

    # When she exports it as CSV for an older Excel (Shift_JIS)
    page.get_by_label("CSV encoding").select_option("cp932")
    with page.expect_download() as download:
        saved.get_by_role("button", name=f"Export CSV {segment}").click()
    file = tmp_path / "rivals.csv"
    download.value.save_as(file)
    assert download.value.suggested_filename == f"leads-{segment}.csv"

    # Then the file is cp932 as the API wrote it (no BOM, the Japanese intact), with its leads
    data = file.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf") and RIVAL_COMPANY.encode("cp932") in data
    rows = list(csv.DictReader(io.StringIO(data.decode("cp932"))))
    assert sorted(row["email"] for row in rows) == list(RIVALS), rows
    assert {row["company"] for row in rows} == {RIVAL_COMPANY}, rows
    # And she is told the one character the file holds as ?, which only the API knows
    assert sorted(row["name"] for row in rows) == ["?野 社員", "競合 社員"], rows
    expect(page.get_by_role("status")).to_contain_text(
        "1 character has no code in Shift_JIS and is written as ? in the file"
    )

    # And the export is in the audit log: who, which segment, how many leads
    logged = tsunagu.cli("audit", "list", "--csv")
    exports = [
        row
        for row in csv.DictReader(io.StringIO(logged.stdout.lstrip("\ufeff")))
        if row["operation"] == "leads.export" and row["target"] == f"segment:{segment}"
    ]
    assert [(r["email"], r["outcome"], r["detail"]) for r in exports] == [
        (MARKETER, "done", "2 leads as CSV (cp932, 1 characters not in cp932)")
    ], exports
    admin = console_page(chromium, tsunagu, ADMIN_EMAIL, admin_password(tsunagu), locale="en-GB")
    open_screen(admin, tsunagu, "audit")
    exported = admin.locator("table.audit tr", has_text=f"Segment {segment}").filter(
        has_text="Export leads"
    )
    expect(exported).to_contain_text(MARKETER)

    # And a viewer sees the segment and may try a filter, with nothing to save, delete or export
    viewer = console_page(chromium, tsunagu, VIEWER, PASSWORD, locale="ja-JP", at="segments")
    settled(viewer)
    row = viewer.get_by_role("table", name="保存済みのセグメント").locator("tr", has_text=segment)
    expect(row).to_contain_text("マーケティング配信から除外")
    row.get_by_role("button", name=f"開く {segment}").click()
    expect(viewer.locator("main")).to_contain_text("現在 2 件のリードが該当します。")
    viewer.get_by_role("button", name="試す").click()
    expect(viewer.locator("main")).to_contain_text("現在 2 件のリードが該当します。")
    # When she tries a filter written in Japanese words, she is told once, in Japanese and
    # next to 試す, which field to check (the server's detail kept); editing it clears that
    filter_box = viewer.get_by_role("textbox", name="条件", exact=True)
    filter_box.fill("ステージ=リード")
    viewer.get_by_role("button", name="試す").click()
    said = viewer.locator("#segment-try-problem")
    expect(said).to_contain_text("条件を確認してください")
    assert said.inner_text().count("is not NAME=VALUE") == 1, said.inner_text()
    expect(filter_box).to_have_attribute("aria-invalid", "true")
    filter_box.fill("stage=lead")
    expect(viewer.get_by_role("alert")).to_have_count(0)
    settled(viewer)
    for forbidden in ("セグメントを保存", "削除", "CSVエクスポート"):
        expect(viewer.get_by_role("button", name=forbidden)).to_have_count(0)
    expect(viewer.get_by_label("CSVの文字コード")).to_have_count(0)
    assert accessibility_problems(viewer) == []
    open_screen(viewer, tsunagu, "leads")
    expect(viewer.get_by_role("button", name="CSVエクスポート")).to_have_count(0)
    # Forced with the viewer's own token, the API refuses the export
    status = viewer.evaluate(
        """async () => {
            const token = JSON.parse(sessionStorage.getItem("tsunagu.session")).idToken;
            const answer = await fetch("/admin/leads/export?encoding=cp932", {
                headers: {authorization: `Bearer ${token}`},
            });
            return answer.status;
        }"""
    )
    assert status == 403


def test_a_marketer_saves_over_a_change_made_meanwhile_and_cannot_delete_a_segment_still_read(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given a segment, and another segment that reads it
    saved = tsunagu.cli("segments", "save", "seminar_hot", "tag=seminar-hot")
    assert saved.returncode == 0, saved.stderr
    saved = tsunagu.cli("segments", "save", "seminar_hot_grade_a", "in_segment=seminar_hot,grade=A")
    assert saved.returncode == 0, saved.stderr
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="segments")
    settled(page)

    # When she opens it, it says what reads it
    table = page.get_by_role("table", name="Saved segments")
    table.get_by_role("button", name="Open seminar_hot", exact=True).click()
    expect(page.get_by_role("heading", name="Segment seminar_hot")).to_be_focused()
    expect(page.locator(".used-by")).to_contain_text("segment seminar_hot_grade_a")
    settled(page)
    assert accessibility_problems(page) == []

    # When someone else changes it after she opened it, her save is refused, and what she
    # typed stays in the form (not overwritten by theirs)
    changed = tsunagu.cli(
        "segments", "save", "seminar_hot", "tag=seminar-hot,score>=10", "--replace"
    )
    assert changed.returncode == 0, changed.stderr
    page.get_by_label("Description", exact=True).fill("セミナー後に関心の高いリード")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("alert")).to_contain_text("Someone changed segment seminar_hot")
    description = page.get_by_label("Description", exact=True)
    expect(description).to_have_value("セミナー後に関心の高いリード")
    expect(page.get_by_role("textbox", name="Filter", exact=True)).not_to_have_value(
        re.compile("score>=10")
    )
    shown = json.loads(tsunagu.cli("segments", "show", "seminar_hot", "--json").stdout)
    assert (shown["version"], shown["description"]) == (2, ""), shown

    # ... and saved again, as she chooses, it goes over the version stored meanwhile
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("status")).to_contain_text("Segment seminar_hot is saved.")
    shown = json.loads(tsunagu.cli("segments", "show", "seminar_hot", "--json").stdout)
    assert (shown["version"], shown["description"]) == (3, "セミナー後に関心の高いリード")
    assert "score>=10" not in shown["filter"], shown

    # When she deletes it (confirmed), the API refuses, naming the segment that reads it
    page.get_by_role("button", name="Delete seminar_hot").click()
    expect(page.get_by_role("alert")).to_contain_text("still read by segment seminar_hot_grade_a")
    assert "seminar_hot " in tsunagu.cli("segments", "list").stdout

    # ... but the segment that reads it, nothing reads: deleted
    table.get_by_role("button", name="Open seminar_hot_grade_a").click()
    expect(page.get_by_role("heading", name="Segment seminar_hot_grade_a")).to_be_visible()
    settled(page)
    page.get_by_role("button", name="Delete seminar_hot_grade_a").click()
    expect(page.get_by_role("status")).to_contain_text("Segment seminar_hot_grade_a is deleted.")
    expect(table.locator("tr", has_text="seminar_hot_grade_a")).to_have_count(0)
    assert "seminar_hot_grade_a" not in tsunagu.cli("segments", "list").stdout


def test_leaving_a_segment_with_unsaved_changes_asks_first_and_a_saved_one_does_not(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    saved = tsunagu.cli("segments", "save", "webinar_hot", "tag=webinar-hot")
    assert saved.returncode == 0, saved.stderr
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="segments")
    asked: list[str] = []  # every dialog is also accepted (console_page)
    page.on("dialog", lambda dialog: asked.append(dialog.message))
    settled(page)
    page.get_by_role("table", name="Saved segments").get_by_role(
        "button", name="Open webinar_hot", exact=True
    ).click()
    expect(page.get_by_role("heading", name="Segment webinar_hot")).to_be_focused()
    menu = page.get_by_role("navigation", name="Main")

    # When she leaves it for another screen with a description typed and not saved, she is
    # asked first (and, having said yes, is there)
    page.get_by_label("Description", exact=True).fill("ウェビナー後に関心の高いリード")
    menu.get_by_role("link", name="Journeys").click()
    page.wait_for_url(re.compile("#/journeys$"))
    assert asked == ["You have changes that are not saved. Leave this page and lose them?"]

    # When she saves her change, she leaves without a question
    menu.get_by_role("link", name="Segments").click()
    page.wait_for_url(re.compile("#/segments$"))
    settled(page)
    page.get_by_role("table", name="Saved segments").get_by_role(
        "button", name="Open webinar_hot", exact=True
    ).click()
    expect(page.get_by_role("heading", name="Segment webinar_hot")).to_be_focused()
    page.get_by_label("Description", exact=True).fill("ウェビナー後に関心の高いリード")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("status")).to_contain_text("Segment webinar_hot is saved.")
    menu.get_by_role("link", name="Journeys").click()
    page.wait_for_url(re.compile("#/journeys$"))
    assert len(asked) == 1, asked


def test_the_segment_opened_last_stays_in_the_form_when_an_earlier_one_answers_late(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given two saved segments, and the first one's answer held back when it is opened
    for name, read in (("trial_hot", "tag=trial-hot"), ("trial_cold", "tag=trial-cold")):
        saved = tsunagu.cli("segments", "save", name, read)
        assert saved.returncode == 0, saved.stderr
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="segments")
    settled(page)
    held: list[Route] = []
    page.route(re.compile(r"/admin/segments/trial_hot$"), lambda route: held.append(route))

    # When she opens trial_hot and, before it has answered, trial_cold
    table = page.get_by_role("table", name="Saved segments")
    table.get_by_role("button", name="Open trial_hot", exact=True).click()
    table.get_by_role("button", name="Open trial_cold", exact=True).click()
    expect(page.get_by_role("heading", name="Segment trial_cold")).to_be_visible()
    assert len(held) == 1, [route.request.url for route in held]

    # ... and trial_hot answers after trial_cold
    answer_late(page, held[0])

    # Then the form holds trial_cold, the one she opened last
    expect(page.get_by_role("heading", name="Segment trial_cold")).to_be_visible()
    expect(page.get_by_role("textbox", name="Filter", exact=True)).to_have_value("tag=trial-cold")


def test_two_tags_added_at_once_both_stay_on_the_lead_page_when_the_first_reload_answers_late(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given a lead's page on a slow network: what is read after the first change is held back
    address = "two.tags.at.once@example.jp"
    status, _ = tsunagu.post_json("/forms/demo/submissions", {"email": address, "name": "二つ 札"})
    assert status == 201
    page = console_page(
        chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at=f"leads/{address}"
    )
    expect(page.locator("article.lead")).to_be_visible()
    settled(page)
    held = hold_first(page, r"/admin/leads/[^/?]+/score(\?|$)")
    actions = page.locator("section.actions")
    tags = page.locator("dl.facts").first

    def add_tag(tag: str) -> None:
        actions.get_by_label("Tag", exact=True).fill(tag)
        actions.get_by_role("button", name="Add", exact=True).click()

    # When she adds a tag (the lead read after it answers at once, its score is held back) and
    # a second before the first one's reload has answered
    with page.expect_response(
        lambda answer: (
            answer.request.method == "GET"
            and re.search(r"/admin/leads/[^/?]+$", answer.url) is not None
        )
    ) as read:
        add_tag("first-of-two")
    assert read.value.json()["tags"] == ["first-of-two"], read.value.json()["tags"]
    add_tag("second-of-two")
    expect(tags).to_contain_text("second-of-two")
    assert len(held) == 1, [route.request.url for route in held]

    # ... and the first reload arrives after the second's
    answer_late(page, held[0])

    # Then the page shows both tags, as the lead has them: the lead read before the second tag
    # does not take it off the page
    expect(tags).to_contain_text("first-of-two")
    expect(tags).to_contain_text("second-of-two")


def test_an_earlier_page_of_a_timeline_asked_before_an_action_is_not_put_before_its_reload(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given a lead with a few events, and its page on a slow network reading its timeline two
    # events at a time (not 500), so that a few events make pages
    address = "earlier.events@example.jp"
    status, _ = tsunagu.post_json("/forms/demo/submissions", {"email": address, "name": "以前 頁"})
    assert status == 201
    for booth in ("A", "B", "C"):
        recorded = tsunagu.cli(
            "leads", "record", address, "booth_visited", "--prop", f"booth={booth}"
        )
        assert recorded.returncode == 0, recorded.stderr
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="journeys")
    settled(page)
    held: list[Route] = []

    def first_earlier_page_held(route: Route) -> None:
        if "before=" in route.request.url and not held:
            held.append(route)
        else:
            route.continue_()

    def two_a_page(route: Route) -> None:
        url = route.request.url
        route.fallback(url=f"{url}{'&' if '?' in url else '?'}limit=2")

    timeline_read = re.compile(r"/admin/leads/[^/?]+/timeline(\?|$)")
    page.route(timeline_read, first_earlier_page_held)
    page.route(timeline_read, two_a_page)  # the last route added is asked first
    with page.expect_response(
        lambda answer: timeline_read.search(answer.url) is not None and "before=" not in answer.url
    ) as first:
        page.goto(f"{tsunagu.api_url}/console/#/leads/{address}")
    shown_first = [event["event_id"] for event in first.value.json()["events"]]
    timeline = page.locator("ol.timeline > li")
    expect(timeline).to_have_count(2)
    settled(page)

    # When she asks for the earlier events and, before they have answered, records that the
    # lead attended a seminar: the page reads the lead again, its newest two events now
    page.get_by_role("button", name="Show earlier events").click()
    with page.expect_response(
        lambda answer: timeline_read.search(answer.url) is not None and "before=" not in answer.url
    ) as reloaded:
        page.get_by_role("button", name="Record seminar attendance").click()
    newest = [event["event_id"] for event in reloaded.value.json()["events"]]
    assert shown_first[0] not in newest, (shown_first, newest)
    expect(page.locator("ol.timeline")).to_contain_text("Attended a seminar")
    assert len(held) == 1, [route.request.url for route in held]

    # ... and the earlier events, those before the two shown when she asked, arrive after it
    answer_late(page, held[0])

    # Then the timeline shows the newest two events and offers the earlier ones: the page asked
    # before the reload is not put before it, where it left out the event between them (the
    # older of the two shown when she asked, pushed off the newest two by the attendance)
    expect(timeline).to_have_count(len(newest))
    with page.expect_response(lambda answer: "before=" in answer.url) as earlier:
        page.get_by_role("button", name="Show earlier events").click()
    listed = [event["event_id"] for event in earlier.value.json()["events"]] + newest
    assert shown_first[0] in listed, (shown_first, listed)
    expect(timeline).to_have_count(len(listed))


def test_a_marketer_exports_every_lead_from_the_lead_list(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB")
    settled(page)
    expect(page.locator("main")).to_contain_text("Every export is recorded in the audit log")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    file = tmp_path / "leads.csv"
    download.value.save_as(file)
    data = file.read_bytes()
    # UTF-8 with the BOM Excel needs, kept as the API sent it
    assert data.startswith(b"\xef\xbb\xbf"), data[:20]
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    (lead,) = [row for row in rows if row["email"] == LEAD]
    assert lead["company"] == COMPANY, lead
    logged = tsunagu.cli("audit", "list", "--csv").stdout
    assert any(
        row["operation"] == "leads.export" and row["target"] == "leads" and row["email"] == MARKETER
        for row in csv.DictReader(io.StringIO(logged.lstrip("\ufeff")))
    ), logged


def test_a_marketer_branches_a_journey_on_a_saved_segment_the_canvas_offers(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given a saved segment, and a journey draft whose branch tests a tag
    saved = tsunagu.cli(
        "segments", "save", "key_accounts", "tag=key-account", "--description", "重点顧客"
    )
    assert saved.returncode == 0, saved.stderr
    definition = {
        "$format": "tsunagu.journey/1",
        "journey_id": "account_branch",
        "description": "Key accounts one way, the rest another",
        "start": "decide",
        "nodes": [
            {
                "id": "decide",
                "kind": "branch",
                "label": "the account",
                "cases": [{"outcome": "key_account", "when": "tag=vip", "next": "done"}],
                "default": "done",
            },
            {"id": "done", "kind": "end", "label": "The lead has been sorted"},
        ],
    }
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB")
    status = page.evaluate(
        """async (definition) => {
            const token = JSON.parse(sessionStorage.getItem("tsunagu.session")).idToken;
            const answer = await fetch("/admin/journeys/account_branch/graph", {
                method: "PUT",
                headers: {authorization: `Bearer ${token}`, "content-type": "application/json"},
                body: JSON.stringify({definition}),
            });
            return answer.status;
        }""",
        definition,
    )
    assert status == 200

    # When she chooses the branch on the canvas, its case's condition offers the saved segments
    page.goto(f"{tsunagu.api_url}/console/#/journeys/account_branch")
    page.locator('.react-flow__node[data-id="decide"]').click()
    condition = page.get_by_role("combobox", name="Condition of key_account")
    expect(condition).to_have_value("tag=vip")
    offered = page.locator("datalist#segment-conditions option")
    expect(offered).to_have_count(len(segment_names(tsunagu)))
    expect(page.locator('datalist option[value="in_segment=key_accounts"]')).to_have_count(1)
    settled(page)
    assert accessibility_problems(page) == []

    # And she makes it test the segment, saves the draft and publishes it (confirmed)
    condition.fill("in_segment=key_accounts")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_contain_text("Draft saved: it can be published.")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("status")).to_contain_text("Version 1 is live.")

    # Then the segment says the journey's branch reads it, and cannot be deleted under it
    shown = json.loads(tsunagu.cli("segments", "show", "key_accounts", "--json").stdout)
    readers = shown["used_by"]
    assert "journey account_branch (draft, branch decide)" in readers, shown
    assert any(r.startswith("journey account_branch (v") for r in readers), shown  # published
    assert tsunagu.cli("segments", "delete", "key_accounts").returncode != 0


def segment_names(tsunagu: RunningTsunagu) -> list[str]:
    listed = tsunagu.cli("segments", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return [segment["name"] for segment in json.loads(listed.stdout)]


def test_a_marketer_adds_a_site_in_a_form_and_copies_its_snippet(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="forms")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_text("New site", exact=True).click()
    editor = page.get_by_role("form", name="New site")
    editor.get_by_label("Id", exact=True).fill("campaign-lp")
    editor.get_by_label("Name", exact=True).fill("Campaign landing pages")
    # An origin that is not one (a path, plain http to a public host) is refused on its field
    editor.get_by_label("Where its pages are").fill(
        "https://lp.example.com\nhttp://www.example.com/lp"
    )
    editor.get_by_role("button", name="Save").click()
    expect(editor.get_by_role("alert").first).to_be_visible()
    assert "campaign-lp" not in tsunagu.cli("sites", "list").stdout

    editor.get_by_label("Where its pages are").fill(
        "https://lp.example.com\nhttps://www.example.com"
    )
    editor.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    card = page.locator("article", has_text="campaign-lp")
    expect(card).to_contain_text("https://lp.example.com, https://www.example.com")

    # Its snippet is copied whole with one click
    card.get_by_role("button", name="Copy the Tracking snippet").click()
    expect(card).to_contain_text("Tracking snippet copied.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == card.get_by_label("Tracking snippet").input_value()
    assert 'data-site="campaign-lp"' in copied
    assert accessibility_problems(page) == []

    # The new-site form is empty again; a second site with the same id is refused, not made to
    # replace the first
    again = page.get_by_role("form", name="New site")
    expect(again.get_by_label("Id", exact=True)).to_have_value("")
    again.get_by_label("Id", exact=True).fill("campaign-lp")
    again.get_by_label("Name", exact=True).fill("Another")
    again.get_by_label("Where its pages are").fill("https://other.example.com")
    again.get_by_role("button", name="Save").click()
    expect(again.get_by_role("alert")).to_contain_text("campaign-lp")
    listed = tsunagu.cli("sites", "list").stdout
    assert "Campaign landing pages" in listed and "Another" not in listed, listed


def test_two_sites_added_at_once_are_both_listed_when_the_first_reload_answers_late(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given the forms screen on a slow network: the sites read after the first save are held
    first, second = "late-site-one", "late-site-two"
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="forms")
    settled(page)
    held = hold_first(page, r"/admin/sites(\?|$)")
    page.get_by_text("New site", exact=True).click()

    def card_of(site_id: str) -> Locator:
        return page.locator("article").filter(
            has=page.locator("h3 small", has_text=re.compile(f"^{re.escape(site_id)}$"))
        )

    def add(site_id: str) -> None:
        editor = page.get_by_role("form", name="New site")
        editor.get_by_label("Id", exact=True).fill(site_id)
        editor.get_by_label("Name", exact=True).fill(f"Pages of {site_id}")
        editor.get_by_label("Where its pages are").fill(f"https://{site_id}.example.com")
        editor.get_by_role("button", name="Save").click()
        expect(editor.get_by_label("Id", exact=True)).to_have_value("")  # stored: emptied

    # When she adds one site, and a second before the sites read after the first have
    # answered (they answered the sites as they were then: the first, not the second)
    add(first)
    expect(page.get_by_role("status")).to_have_text("Saved.")
    as_then = api_answer_now(page, tsunagu, "/admin/sites?limit=200")
    assert second not in as_then.text()
    add(second)
    expect(card_of(second)).to_be_visible()
    assert len(held) == 1, [route.request.url for route in held]

    # ... and that list arrives after the one read after the second
    answer_late(page, held[0], as_then)

    # Then both are listed: the older list does not take the second site off the screen
    expect(card_of(first)).to_be_visible()
    expect(card_of(second)).to_be_visible()


def demo_site_card(page: Page) -> Locator:
    """The demo site's card on the forms screen (the demo form's card names "demo" too)."""
    return (
        page.locator("article")
        .filter(has=page.get_by_label("Tracking snippet"))
        .filter(has=page.locator("h3 small", has_text=re.compile(r"^demo$")))
    )


def test_an_admin_makes_a_sites_signing_secret_once_and_its_server_signs_with_it(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # A marketer saves sites but is offered no secret: a signing secret is an admin's to make
    marketer = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="en-GB", at="forms")
    demo = demo_site_card(marketer)
    expect(demo.get_by_role("button", name="Copy the Tracking snippet")).to_be_visible()
    expect(demo.get_by_text("Tracking from your server")).to_have_count(0)

    # An admin opens the site's server tracking and makes its secret
    page = console_page(
        chromium, tsunagu, ADMIN_EMAIL, admin_password(tsunagu), locale="en-GB", at="forms"
    )
    card = demo_site_card(page)
    # The card says the site has no secret yet: a first one replaces nothing, so no question
    expect(card).to_contain_text("It has no signing secret yet.")
    card.get_by_text("Tracking from your server").click()
    card.get_by_role("button", name="Make a new signing secret").click()
    shown = card.get_by_label("Signing secret of demo")
    expect(shown).to_have_value(re.compile(r"^tss_[0-9a-f]{64}$"))
    expect(card.get_by_role("status")).to_contain_text("Shown this once")
    # and the card says when it was made
    expect(card).to_contain_text("Its signing secret was made on")
    assert accessibility_problems(page) == []
    secret = shown.input_value()

    # The site's server signs a post with it, at the runtime's time, and it is taken
    assert signed_post(tsunagu, secret, "e2e0") == 200
    # Reloaded, the screen shows the secret no more: it was shown that once
    page.reload()
    card = demo_site_card(page)
    card.get_by_text("Tracking from your server").click()
    expect(card.get_by_label("Signing secret of demo")).to_have_count(0)

    # A new one replaces a live secret: the admin is asked first, and saying no changes nothing
    # (the question is asked in the click itself, before any request: the answer is read back
    # as soon as the click returns)
    page.evaluate("window.confirm = (question) => { window.asked = question; return false; }")
    card.get_by_role("button", name="Make a new signing secret").click()
    question = page.evaluate("window.asked")
    assert "Replace the signing secret made on" in question, question
    assert "still accepted for 24 hours" in question, question
    expect(card.get_by_label("Signing secret of demo")).to_have_count(0)
    assert (
        signed_post(tsunagu, secret, "e2e1") == 200
    )  # the old secret still verifies: none was made

    # Saying yes makes the new one; the card says until when the old one is still accepted, and
    # meanwhile a post signed with either is taken (the site's servers switch one by one)
    page.evaluate("window.confirm = () => true")
    card.get_by_role("button", name="Make a new signing secret").click()
    expect(shown).to_have_value(re.compile(r"^tss_[0-9a-f]{64}$"))
    second = shown.input_value()
    assert second != secret
    expect(card).to_contain_text("The secret it replaced is still accepted until")
    assert accessibility_problems(page) == []
    assert signed_post(tsunagu, secret, "e2e2") == 200
    assert signed_post(tsunagu, second, "e2e3") == 200

    # The new one leaked: the admin makes another saying so, is asked first, and then neither
    # old secret is accepted any more
    page.reload()
    card = demo_site_card(page)
    expect(card).to_contain_text("The secret it replaced is still accepted until")
    card.get_by_text("Tracking from your server").click()
    card.get_by_label("The current secret leaked: stop accepting it at once").check()
    page.evaluate("window.confirm = (question) => { window.asked = question; return true; }")
    card.get_by_role("button", name="Make a new signing secret").click()
    shown = card.get_by_label("Signing secret of demo")
    expect(shown).to_have_value(re.compile(r"^tss_[0-9a-f]{64}$"))
    question = page.evaluate("window.asked")
    assert "and stop accepting it" in question, question
    assert "refused (401) within 30 seconds" in question, question
    expect(card).not_to_contain_text("still accepted until")
    assert signed_post(tsunagu, second, "e2e4") == 401
    assert signed_post(tsunagu, secret, "e2e5") == 401
    assert signed_post(tsunagu, shown.input_value(), "e2e6") == 200


def signed_post(tsunagu: RunningTsunagu, secret: str, visitor: str) -> int:
    """The status of a purchase by the visitor ``v_<visitor>000000000001`` posted by the demo
    site's server, signed with ``secret`` at the runtime's now (each visitor a new request)."""
    now = tsunagu.cli("clock", "show").stdout.split("\t")[1]
    timestamp = str(int(datetime.fromisoformat(now.replace("Z", "+00:00")).timestamp()))
    event = {"type": "purchase", "visitor_id": f"v_{visitor}000000000001"}
    body = json.dumps({"site_id": "demo", "events": [event]}).encode()
    headers = {
        "content-type": "application/json",
        "x-tsunagu-timestamp": timestamp,
        "x-tsunagu-signature": signature_header(secret.encode(), timestamp, body),
    }
    status, _, answer = tsunagu.request("POST", "/t/events", body, headers)
    assert status in (200, 401), answer
    return int(status)
