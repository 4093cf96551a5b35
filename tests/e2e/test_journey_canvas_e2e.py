"""Journeys in the console, in Debian's Chromium, on the runtime in virtual time (a Tuesday
morning in Tokyo, so no quiet hour holds a mail): a marketer builds a two-mail journey by
dragging edges between nodes, dry-runs it and sees the counts on the canvas, publishes it,
starts it for a lead and finds the first mail in the mail viewer; she pauses the seminar
follow-up, lets the reminder's day pass, resumes it skipping what was missed, and the held
reminder is never sent."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.e2e.conftest import RunningTsunagu, add_console_user, console_page, start_tsunagu
from tests.support.browser import Chromium, accessibility_problems, screenshot
from tests.support.runtime import move_clock
from tsunagu import services
from tsunagu.settings import Settings

LEAD = "mei.kondo@example.jp"
MARKETER = "marketer.ito@example.com"
PASSWORD = "Canvas-test-2026"
CLOCK_TIMEOUT = 60
"""A bound on the real seconds the runtime takes to move its clock (a broken run, not a measure)."""


@pytest.fixture(scope="module")
def tsunagu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTsunagu]:
    running = start_tsunagu(
        tmp_path_factory.mktemp("canvas"),
        "--no-persist",
        "--virtual-time",
        "--clock-start",
        "2026-12-08T10:00:00+09:00",
    )
    add_console_user(running, MARKETER, PASSWORD, "marketer")
    status, _ = running.post_json(
        "/forms/demo/submissions", {"email": LEAD, "name": "近藤 芽衣", "consent": True}
    )
    assert status == 201
    yield running
    if running.process.poll() is None:
        running.stop()


def sent_mail(tsunagu: RunningTsunagu) -> list[dict[str, Any]]:
    _, _, body = tsunagu.request("GET", "/_local/mail?format=json")
    mails: list[dict[str, Any]] = json.loads(body)
    return mails


def node(page: Page, node_id: str) -> Any:
    return page.locator(f'.react-flow__node[data-id="{node_id}"]')


def drag_edge(page: Page, source: str, target: str) -> None:
    """From the source node's right handle to the target node's left one, with the mouse, as a
    person drags an edge."""
    start = node(page, source).locator(".react-flow__handle-right").bounding_box()
    end = node(page, target).locator(".react-flow__handle-left").bounding_box()
    assert start is not None and end is not None
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=12)
    page.mouse.up()


def test_a_marketer_builds_dry_runs_publishes_and_starts_a_journey_on_the_canvas(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="journeys/new")

    # Given a new journey: one mail, then the end
    page.get_by_label("Journey id").fill("webinar_follow_up")
    page.get_by_label("Name").first.fill("Webinar follow-up")
    expect(node(page, "first_mail")).to_be_visible()

    # When she adds a second mail and connects first mail -> second mail -> end on the canvas
    page.get_by_role("button", name="+ Send").click()
    expect(node(page, "send_3")).to_be_visible()
    page.get_by_label("Mail template").fill("welcome-customer-stories")
    node(page, "first_mail").click()
    page.get_by_label("Mail template").fill("welcome-getting-started")
    drag_edge(page, "first_mail", "send_3")
    drag_edge(page, "send_3", "done")

    # Then saving keeps a draft with no problem left
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_contain_text("Draft saved")
    assert page.locator(".node-problem, .problem").all_inner_texts() == []
    expect(page.get_by_role("status")).to_contain_text("it can be published")

    # And the dry run puts each node's count on the canvas
    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_test_id("run-first_mail")).to_contain_text("200 leads")
    expect(page.get_by_test_id("run-send_3")).to_contain_text("200 leads")
    expect(page.locator(".panel")).to_contain_text("welcome-customer-stories")
    assert accessibility_problems(page) == []

    # And a dry run for leads entering on the Friday before Golden Week shows its holidays on
    # the calendar and the mails kept off them: the first mail goes that morning; the second
    # (one mail a day) waits over the weekend and 5/3-5/5 until Thursday the 6th
    page.get_by_label("Leads enter at (blank: now)").fill("2027-04-30T10:00")
    page.get_by_role("button", name="Dry run").click()
    calendar = page.locator(".send-calendar")
    for day, holiday in (("2027-05-03", "Constitution Day"), ("2027-05-05", "Children's Day")):
        expect(calendar.locator(f'td[data-day="{day}"]')).to_contain_text(holiday)
        expect(calendar.locator(f'td[data-day="{day}"]')).to_have_class(re.compile("holiday"))
    expect(calendar.locator('td[data-day="2027-04-30"]')).to_contain_text("200 mails")
    expect(calendar.locator('td[data-day="2027-05-06"]')).to_contain_text("200 mails")
    expect(page.get_by_test_id("run-send_3")).to_contain_text("6 May 2027")  # when it goes
    expect(calendar.locator("td.holiday.sending")).to_have_count(0)
    screenshot(page, tmp_path, "console-canvas")
    assert accessibility_problems(page) == []

    # When she publishes it and starts it for a lead
    page.get_by_label("What changed").fill("first version")
    page.get_by_role("button", name="Publish").last.click()
    expect(page.get_by_role("status")).to_contain_text("Version 1 is live")
    page.locator(".panel").get_by_label("E-mail").fill(LEAD)
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("1 lead(s) entered")

    # Then the first mail is in the mail viewer, addressed to the lead: the next day, since the
    # frequency cap (one mail a day) held it behind the welcome mail sent this morning
    settled = tsunagu.cli("clock", "advance", "--by", "1d")
    assert settled.returncode == 0, settled.stderr
    to_lead = [m for m in sent_mail(tsunagu) if LEAD in json.dumps(m, ensure_ascii=False)]
    subjects = [str(m.get("subject")) for m in to_lead]
    assert "はじめてのマーケティングオートメーション: 3つのステップ" in subjects, subjects

    # And the graph it opens with next time is the published version 1, with what the report
    # counters counted on its nodes over the last 30 days
    page.reload()
    expect(page.locator("h1")).to_contain_text("v1")
    expect(page.get_by_test_id("counted-first_mail")).to_contain_text("1 sent")


def test_a_node_just_added_is_saved_unfinished_and_nodes_stay_where_they_were_put(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="journeys/new")
    # Given a new journey, its Name left blank, and a wait just added from the palette
    page.get_by_label("Journey id").fill("placed_by_hand")
    page.get_by_role("button", name="+ Wait", exact=True).click()
    expect(node(page, "wait_3")).to_be_visible()

    # When she moves the end down by hand and saves the draft
    box = node(page, "done").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 10)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 130, steps=12)
    page.mouse.up()
    moved = node(page, "done").get_attribute("style")
    page.get_by_role("button", name="Save draft").click()

    # Then the draft is kept, what the wait still lacks named on it
    expect(page.get_by_role("status")).to_contain_text("Draft saved, with 1 problem(s)")
    expect(node(page, "wait_3").locator(".node-problem").first).to_contain_text("leads nowhere")

    # And opened again, the end is where she put it
    page.reload()
    expect(node(page, "wait_3")).to_be_visible()
    translate = re.compile(r"translate\([^)]*\)")
    found = translate.search(node(page, "done").get_attribute("style") or "")
    wanted = translate.search(moved or "")
    assert found and wanted and found.group() == wanted.group(), (found, wanted)


ALL_NODES_ON_THE_CANVAS = """() => {
    const canvas = document.querySelector(".react-flow").getBoundingClientRect();
    const nodes = [...document.querySelectorAll(".react-flow__node")];
    return nodes.length > 0 && nodes.every((node) => {
        const box = node.getBoundingClientRect();
        return box.left >= canvas.left && box.right <= canvas.right
            && box.top >= canvas.top && box.bottom <= canvas.bottom;
    });
}"""


def test_a_twenty_node_journey_opens_whole_and_readable_on_a_laptop_screen(
    tsunagu: RunningTsunagu, chromium: Chromium, tmp_path: Path
) -> None:
    # Given the shipped welcome nurture: 20 nodes, branching three ways and meeting twice
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="journeys")
    # When a marketer opens it on a laptop's screen
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{tsunagu.api_url}/console/#/journeys/welcome_nurture")
    expect(page.locator(".react-flow__node")).to_have_count(20)

    # Then every node is on the canvas, the start among them, with no panning or zooming
    page.wait_for_function(ALL_NODES_ON_THE_CANVAS)
    expect(node(page, "welcome")).to_contain_text("start")
    # ... drawn at 60 % of its size or more, its labels readable (it once opened at the 50 %
    # React Flow allows by default, the start cut off, its text about 6px high)
    scale = page.locator(".react-flow__viewport").evaluate(
        "viewport => new DOMMatrix(getComputedStyle(viewport).transform).a"
    )
    screenshot(page, tmp_path, "welcome-nurture-1280x720")
    assert scale >= 0.6, scale


def test_a_shipped_journey_opens_under_its_name_with_no_version_published_yet(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given the journeys list, which names the shipped re-engagement journey
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="journeys")
    row = page.locator("tr", has_text="re_engagement")
    name = row.get_by_role("link").inner_text()
    # ... its version: the one shipped with Tsunagu, not a dash
    expect(row.locator("td").nth(2)).to_have_text("shipped with Tsunagu")
    failed: list[str] = []
    page.on("response", lambda answer: failed.append(answer.url) if answer.status >= 400 else None)

    # When she opens it
    row.get_by_role("link").click()

    # Then the canvas is headed by that name, which the name field holds too
    expect(page.locator("h1")).to_contain_text(name)
    expect(page.get_by_label("Name", exact=True)).to_have_value(name)
    # ... and its versions say none is published yet, with no request refused on the way
    expect(page.locator(".panel")).to_contain_text("None published yet")
    assert failed == [], failed


def test_a_japanese_marketer_reads_a_new_journey_and_its_edges_in_japanese(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # When a marketer who reads Japanese starts a new journey
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, locale="ja-JP", at="journeys/new")

    # Then it starts in her language: its description, its mail and its end
    expect(node(page, "first_mail")).to_contain_text("最初のメール")
    expect(node(page, "done")).to_contain_text("終了")
    expect(page.get_by_label("説明", exact=True)).to_have_value("新しいジャーニー。")
    # ... and so does a node she adds (named with its id: each label names its own states)
    page.get_by_role("button", name="+ 待機").click()
    expect(node(page, "wait_3")).to_contain_text("待機 wait_3")

    # When she opens the seminar follow-up, its edges taken on no reply read in Japanese too
    page.goto(f"{tsunagu.api_url}/console/#/journeys/seminar_follow_up")
    edges = page.locator(".react-flow__edges")
    expect(edges.get_by_text("期限切れ", exact=True)).to_have_count(1)
    expect(edges).not_to_contain_text("timed out")


def test_another_journey_opened_by_its_address_starts_on_a_clean_canvas(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given the seminar follow-up's canvas, dry-run: its mails by day are on the panel
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="journeys/seminar_follow_up")
    expect(node(page, "click_or_attend")).to_be_visible()
    page.get_by_role("button", name="Dry run").click()
    panel = page.locator(".panel")
    expect(panel).to_contain_text("Mails by day (dry run)")
    expect(panel).to_contain_text("seminar-invitation")

    # When she opens the welcome nurture by its address (a bookmark, a link pasted in a chat)
    page.goto(f"{tsunagu.api_url}/console/#/journeys/welcome_nurture")
    expect(node(page, "welcome")).to_be_visible()
    expect(node(page, "click_or_attend")).to_have_count(0)

    # Then its canvas shows no dry run, least of all the seminar's
    expect(panel).to_contain_text("Choose a node to configure it.")
    expect(panel).not_to_contain_text("Mails by day")
    expect(panel).not_to_contain_text("seminar-invitation")


def test_a_paused_journey_resumed_by_skipping_sends_nothing_it_held(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    lead = "sora.ikeda@example.jp"
    # A lead in no other journey: the welcome nurture, archived, takes no new lead (its welcome
    # mail would use the day's one mail the frequency cap allows, deferring the invitation)
    archived = tsunagu.cli("journeys", "set-status", "welcome_nurture", "archived")
    assert archived.returncode == 0, archived.stderr
    status, _ = tsunagu.post_json(
        "/forms/demo/submissions", {"email": lead, "name": "池田 空", "consent": True}
    )
    assert status == 201
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="journeys/seminar_follow_up")

    # Given the lead started on the seminar follow-up (its invitation goes at once)
    page.locator(".panel").get_by_label("E-mail").fill(lead)
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("1 lead(s) entered")
    assert tsunagu.cli("clock", "advance", "--by", "1m").returncode == 0
    # ... and the canvas counts it waiting for a click or attendance after the invitation
    page.reload()
    expect(page.get_by_test_id("waiting-click_or_attend")).to_have_text("1 waiting here")
    expect(page.locator(".live-status")).to_have_text("Now: Active, 1 lead in it.")

    # When the marketer pauses it, and the reminder's day passes while it is paused
    page.goto(f"{tsunagu.api_url}/console/#/journeys")
    row = page.locator("tr", has_text="seminar_follow_up")
    # (the journeys list says where leads wait too, by the node's label, not its id)
    expect(row.locator("td").nth(4)).to_have_text(
        "1 (a click on the invitation or for attendance: 1)"
    )
    row.get_by_role("button", name="Pause").click()
    expect(row).to_contain_text("Paused")
    # (the reminder's day: three days without a click, then the next business morning; six
    # days cover a weekend on the way, whichever weekday the lead started on)
    assert tsunagu.cli("clock", "advance", "--by", "6d").returncode == 0
    page.reload()
    held = row.locator("td").nth(5)  # "held while paused"
    expect(held).to_contain_text("1")  # the lead waits at the reminder's gate

    # And she resumes it, choosing to skip what was missed
    row.get_by_role("button", name="Resume").click()
    page.get_by_role("dialog").get_by_label("Skip what was missed").check()
    page.get_by_role("dialog").get_by_role("button", name="Resume").click()
    expect(row).to_contain_text("Active")
    assert tsunagu.cli("clock", "advance", "--by", "1d").returncode == 0

    # Then the invitation went, and the reminder it held never did
    subjects = [
        str(mail.get("subject"))
        for mail in sent_mail(tsunagu)
        if lead in json.dumps(mail, ensure_ascii=False)
    ]
    assert any("導入事例セミナーのご案内" in s and "【ご招待】" in s for s in subjects), subjects
    assert "【残席わずか】導入事例セミナーのご案内" not in subjects, subjects

    # And the lead's page lists, under the journey, the decision taken at the wait for a click
    page.goto(f"{tsunagu.api_url}/console/#/leads/{lead}")
    decisions = page.get_by_role("list", name="Its decisions")
    expect(decisions).to_contain_text("click_or_attend → timed_out")
    expect(page.locator("li", has=decisions)).to_contain_text("seminar_follow_up")
    assert accessibility_problems(page) == []


def test_a_marketer_sets_a_wait_and_a_wait_for_in_forms_not_json(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="journeys/seminar_follow_up")
    # The wait for a click or attendance: three days, listening to the invitation's clicks
    expect(node(page, "click_or_attend")).to_be_visible()
    node(page, "click_or_attend").click()
    panel = page.locator(".panel")
    expect(panel.get_by_label("Within (days)")).to_have_value("3")
    expect(panel.get_by_label("Of the mail").first).to_have_value("invitation")
    panel.get_by_label("Within (days)").fill("5")
    # ... and mail A's wait: the next business day at 10:00, moved to 09:30
    node(page, "next_business_morning").click()
    expect(panel.get_by_label(re.compile(r"^Rule"))).to_have_value("next_business_day")
    panel.get_by_label("At (local time)").fill("09:30")
    assert accessibility_problems(page) == []
    # ... and a rule with a long name, on a laptop's screen, fits the panel: the page is no
    # wider than the window (the panel's choices once pushed it 90px past it)
    page.set_viewport_size({"width": 1280, "height": 720})
    panel.get_by_label(re.compile(r"^Rule")).select_option("same_day_or_next")
    page_width = page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= 1280, page_width
    panel.get_by_label(re.compile(r"^Rule")).select_option("next_business_day")
    panel.get_by_label("At (local time)").fill("09:30")
    # ... and its every field, as JSON, is as wide as the panel (not a column of 150px)
    panel.get_by_text("Every field", exact=True).click()
    written = panel.get_by_label("The node (JSON)").bounding_box()
    around = panel.bounding_box()
    assert written and around and written["width"] >= 0.9 * around["width"], (written, around)

    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_contain_text("Draft saved")
    # The stored draft, read from the API with her own token
    stored = page.evaluate(
        """async () => {
            const token = JSON.parse(sessionStorage.getItem("tsunagu.session")).idToken;
            const answer = await fetch("/admin/journeys/seminar_follow_up/graph",
                                       {headers: {authorization: `Bearer ${token}`}});
            return await answer.json();
        }"""
    )
    assert stored["which"] == "draft", stored
    nodes = {n["id"]: n for n in stored["definition"]["nodes"]}
    assert nodes["click_or_attend"]["within_seconds"] == 5 * 86_400
    rule = nodes["next_business_morning"]["rule"]
    assert (rule["kind"], rule["at"]) == ("next_business_day", "09:30"), rule


def test_a_marketer_builds_an_ab_test_with_a_control_group_in_forms(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="journeys/new")
    page.get_by_label("Journey id").fill("subject_line_test")
    page.get_by_label("Name").first.fill("Subject-line test")
    panel = page.locator(".panel")

    # A control group first, then a split between two mails, all from the palette
    page.get_by_role("button", name="+ Holdout").click()
    expect(node(page, "holdout_3")).to_be_visible()
    panel.get_by_label("Share of leads kept out (%)").fill("20")
    panel.get_by_role("button", name="Make this the start").click()
    page.get_by_role("button", name="+ Split").click()
    page.get_by_role("button", name="+ Send").click()
    panel.get_by_label("Mail template").fill("welcome-customer-stories")
    drag_edge(page, "holdout_3", "split_4")
    drag_edge(page, "split_4", "first_mail")
    drag_edge(page, "split_4", "send_5")
    drag_edge(page, "send_5", "done")

    # The split's paths are named and shared out in its form; a total other than 100 is said
    node(page, "split_4").click()
    panel.get_by_label("Path 2: its name").fill("stories")
    panel.get_by_label("Share of path_1 (%)").fill("70")
    expect(panel.get_by_role("alert")).to_have_text("The shares add up to 120 of 100.")
    panel.get_by_label("Share of stories (%)").fill("30")
    expect(panel).to_contain_text("The shares add up to 100 of 100.")
    assert accessibility_problems(page) == []

    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_contain_text("it can be published")
    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_test_id("run-holdout_3")).to_contain_text("200 leads")

    stored = page.evaluate(
        """async () => {
            const token = JSON.parse(sessionStorage.getItem("tsunagu.session")).idToken;
            const answer = await fetch("/admin/journeys/subject_line_test/graph",
                                       {headers: {authorization: `Bearer ${token}`}});
            return await answer.json();
        }"""
    )
    definition = stored["definition"]
    nodes = {n["id"]: n for n in definition["nodes"]}
    assert definition["start"] == "holdout_3"
    assert (nodes["holdout_3"]["percent"], nodes["holdout_3"]["next"]) == (20, "split_4")
    assert [(p["outcome"], p["percent"], p["next"]) for p in nodes["split_4"]["paths"]] == [
        ("path_1", 70, "first_mail"),
        ("stories", 30, "send_5"),
    ]


def journey_settings(
    chromium: Chromium, tsunagu: RunningTsunagu, journey: str
) -> tuple[Page, Locator]:
    """The journey's page, signed in as the marketer, with its entry/exit settings opened."""
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at=f"journeys/{journey}")
    page.get_by_text("Entry, re-entry and exit").click()
    return page, page.get_by_role("form", name="Entry, re-entry and exit")


def test_a_marketer_gives_a_journey_a_form_trigger_and_a_new_sign_up_enters_it(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    page, settings = journey_settings(chromium, tsunagu, "re_engagement")
    expect(settings.get_by_role("button", name="Add a trigger")).to_be_visible()  # read
    # Whatever triggers it came with, she makes a submission of the demo form the only one
    while settings.get_by_role("button", name=re.compile("^Remove trigger")).count():
        settings.get_by_role("button", name=re.compile("^Remove trigger")).first.click()
    expect(settings).to_contain_text("leads enter only when started by hand")
    settings.get_by_role("button", name="Add a trigger").click()
    settings.get_by_label("Trigger 1").select_option("form_submitted")
    settings.get_by_label("Which form").select_option("demo")
    settings.get_by_label("May a lead enter again?").select_option("after_interval")
    settings.get_by_role("spinbutton", name="Days since its last entry").fill("30")
    settings.get_by_label("Customer").check()
    assert accessibility_problems(page) == []
    settings.get_by_role("button", name="Save the settings").click()
    expect(settings.get_by_role("status")).to_have_text("Saved.")

    shown = json.loads(tsunagu.cli("journeys", "show", "re_engagement").stdout)
    assert shown["triggers"] == [
        {"kind": "form_submitted", "form_id": "demo", "event": None, "threshold": None,
         "stage": None, "segment": None}
    ]  # fmt: skip
    assert shown["reentry"] == {"kind": "after_interval", "interval_days": 30}
    assert "customer" in shown["exit"]["stages"]

    # A person who signs up through the demo form now enters the journey
    newcomer = "hana.mori@example.jp"
    status, _ = tsunagu.post_json(
        "/forms/demo/submissions", {"email": newcomer, "name": "森 花", "consent": True}
    )
    assert status == 201
    assert tsunagu.cli("clock", "advance", "--by", "1m").returncode == 0
    lead = json.loads(tsunagu.cli("leads", "get", newcomer).stdout)
    assert "re_engagement" in [entry["journey_id"] for entry in lead["journeys"]], lead


def test_saving_a_journeys_settings_keeps_what_the_form_does_not_show_and_statuses_whole(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    _, settings = journey_settings(chromium, tsunagu, "welcome_nurture")
    # Its goal, a demo request through one form, shows with that form
    expect(settings.get_by_label("Which form").last).to_have_value("demo-request")
    # CRM statuses with spaces stay whole; sent with Enter, what is shown is what is saved
    statuses = settings.get_by_label(re.compile("these CRM statuses"))
    statuses.fill("working, in negotiation, closed won")
    statuses.press("Enter")
    expect(settings.get_by_role("status")).to_have_text("Saved.")

    shown = json.loads(tsunagu.cli("journeys", "show", "welcome_nurture").stdout)
    assert shown["exit"]["crm_statuses"] == ["working", "in negotiation", "closed won"]
    [goal] = shown["exit"]["goals"]
    assert (goal["type"], goal["form_id"]) == ("form_submitted", "demo-request")


def test_settings_saved_over_a_colleague_s_save_are_refused_and_said_so(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given the settings of one journey open in two tabs (two marketers, or one twice)
    _, first = journey_settings(chromium, tsunagu, "re_engagement")
    _, second = journey_settings(chromium, tsunagu, "re_engagement")
    expect(second.get_by_role("button", name="Add a trigger")).to_be_visible()  # read
    expect(first.get_by_role("button", name="Add a trigger")).to_be_visible()

    # When the first saves, then the second (not reloaded) saves its own change
    first.get_by_label(re.compile("these CRM statuses")).fill("closed won")
    first.get_by_role("button", name="Save the settings").click()
    expect(first.get_by_role("status")).to_have_text("Saved.")
    second.get_by_label(re.compile("these CRM statuses")).fill("lost")
    second.get_by_role("button", name="Save the settings").click()

    # Then the second is told someone else changed the journey, and the first's save stands
    expect(second.get_by_role("status")).to_contain_text("Someone else changed this journey")
    shown = json.loads(tsunagu.cli("journeys", "show", "re_engagement").stdout)
    assert shown["exit"]["crm_statuses"] == ["closed won"]

    # ... with its edit still there; saved again, it goes over the journey as it is now (with
    # the revision first read, every later save was refused as well)
    expect(second.get_by_label(re.compile("these CRM statuses"))).to_have_value("lost")
    second.get_by_role("button", name="Save the settings").click()
    expect(second.get_by_role("status")).to_have_text("Saved.")
    shown = json.loads(tsunagu.cli("journeys", "show", "re_engagement").stdout)
    assert shown["exit"]["crm_statuses"] == ["lost"]


def test_a_lead_started_from_its_page_is_asked_for_the_date_its_journey_s_mails_read(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    lead = "riko.aoki@example.jp"
    status, _ = tsunagu.post_json(
        "/forms/demo/submissions", {"email": lead, "name": "青木 莉子", "consent": True}
    )
    assert status == 201
    # Given the canvas of the seminar follow-up, whose live mails read seminar_at as their
    # deadline: its start form asks for that date
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="journeys/seminar_follow_up")
    expect(page.locator(".panel").get_by_label("Date-time for seminar_at")).to_be_visible()

    # When the marketer opens the lead's page and picks the journey, the same field appears
    page.goto(f"{tsunagu.api_url}/console/#/leads/{lead}")
    actions = page.get_by_role("region", name="Actions")
    expect(actions.get_by_label("Date-time for seminar_at")).to_have_count(0)
    actions.get_by_label("Journey").select_option(label="Seminar follow-up (seed 000)")
    seminar = actions.get_by_label("Date-time for seminar_at")
    expect(seminar).to_be_visible()
    seminar.fill("2026-12-10T14:00")

    # Then starting sends the date with its offset, and the lead enters
    with page.expect_request(re.compile(r"/admin/journeys/seminar_follow_up/entries$")) as sent:
        actions.get_by_role("button", name="Start the journey").click()
    body = sent.value.post_data_json
    assert body["lead"] == lead and re.fullmatch(
        r"2026-12-(09|10)T\d\d:00:00\.000Z", body["input"]["seminar_at"]
    ), body
    expect(actions.get_by_role("status")).to_have_text("The lead is in the journey.")
    assert accessibility_problems(page) == []


def test_a_marketer_starts_a_journey_for_a_segment_and_follows_it_until_it_is_done(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given two leads at example.com (every other lead of this module is at example.jp)
    for email, name in (("ren.kato@example.com", "加藤 蓮"), ("yui.kato@example.com", "加藤 結衣")):
        status, _ = tsunagu.post_json(
            "/forms/demo/submissions", {"email": email, "name": name, "consent": True}
        )
        assert status == 201

    # When the marketer starts the seminar follow-up for the segment of that domain
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="journeys/seminar_follow_up")
    panel = page.locator(".panel")
    panel.get_by_label("or every lead of a segment").fill("domain=example.com")
    with page.expect_response(re.compile(r"/admin/journeys/seminar_follow_up/entries$")) as sent:
        page.get_by_role("button", name="Start", exact=True).click()

    # Then it is answered at once, started in the background, and the page follows it until
    # it is done and shows what it did: both leads entered, by enter_segments
    assert sent.value.status == 202
    progress = page.locator(".segment-start")
    expect(progress).to_contain_text("in the background")
    expect(progress).to_contain_text(
        "Done: 2 lead(s) selected - 2 entered, 0 already in", timeout=20_000
    )
    expect(progress.locator("progress")).to_have_count(0)
    assert accessibility_problems(page) == []

    # When she leaves the page and comes back
    page.reload()

    # Then the journey's recent starts list it: by her, for the segment, done, what it did
    listed = page.locator(".recent-starts .start-item").first
    expect(listed).to_contain_text("domain=example.com")
    expect(listed).to_contain_text(MARKETER)
    expect(listed.locator(".start-status")).to_have_text("done")
    expect(listed).to_contain_text("2 selected - 2 entered, 0 already in, 0 not entered, 0 failed")
    expect(listed.locator("progress")).to_have_count(0)
    assert accessibility_problems(page) == []


def test_a_publish_refused_after_the_canvas_was_kept_lets_the_next_save_through(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given a new journey saved from the canvas, and another publication holding it (its
    # publishing lease taken straight in the runtime's table, as a colleague's publish does)
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="journeys/new")
    page.get_by_label("Journey id").fill("held_while_publishing")
    node(page, "first_mail").click()
    page.get_by_label("Mail template").fill("welcome-getting-started")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_contain_text("it can be published")
    state = json.loads((tsunagu.workdir / ".tsunagu" / "runtime.json").read_text())
    journeys = services.journey_repository(Settings.from_environ(state["environment"]))
    never_stale = datetime(2100, 1, 1, tzinfo=UTC)
    assert journeys.claim_publishing("held_while_publishing", "colleague", never_stale, never_stale)

    # When she publishes (the canvas is kept as the draft first; then the publisher refuses)
    try:
        page.get_by_role("button", name="Publish").last.click()
        expect(page.get_by_role("status")).to_contain_text(
            "saved as the draft, but it was not published"
        )
        expect(page.get_by_role("status")).to_contain_text("being published or rolled back")
    finally:
        journeys.release_publishing("held_while_publishing", "colleague")

    # Then her next save goes over the draft she just kept: not refused as a colleague's edit
    page.get_by_label("Description").fill("Kept after the refused publish.")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_contain_text("Draft saved")
    # ... and opened again, the canvas is that draft
    page.reload()
    expect(page.get_by_label("Description")).to_have_value("Kept after the refused publish.")


def test_more_starts_asked_before_a_new_start_do_not_skip_one_of_the_list_read_again(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given two starts of the seminar follow-up, a minute apart, for segments nobody is in
    page = console_page(chromium, tsunagu, MARKETER, PASSWORD, at="journeys/seminar_follow_up")
    panel = page.locator(".panel")

    def start_for(segment: str) -> None:
        panel.get_by_label("or every lead of a segment").fill(segment)
        with page.expect_response(
            re.compile(r"/admin/journeys/seminar_follow_up/entries$")
        ) as sent:
            page.get_by_role("button", name="Start", exact=True).click()
        assert sent.value.status == 202, sent.value.text()

    # (the clock moved first: a start made by an earlier test at the same instant would be
    # ordered against hers by its id's random part, and could come between them)
    for segment in ("domain=older-start.example", "domain=newer-start.example"):
        move_clock(tsunagu.api_url, {"by": "1m"}, timeout=CLOCK_TIMEOUT)
        start_for(segment)
    move_clock(tsunagu.api_url, {"by": "1m"}, timeout=CLOCK_TIMEOUT)

    # ... and the page opened again on a slow network, listing its starts one at a time
    held: list[Route] = []

    def first_more_held(route: Route) -> None:
        if "before=" in route.request.url and not held:
            held.append(route)
        else:
            route.continue_()

    def one_a_page(route: Route) -> None:
        route.fallback(url=re.sub(r"limit=\d+", "limit=1", route.request.url))

    starts_read = re.compile(r"/admin/journeys/seminar_follow_up/starts(\?|$)")
    page.route(starts_read, first_more_held)
    page.route(starts_read, one_a_page)  # the last route added is asked first
    page.reload()
    recent = page.locator(".recent-starts")
    listed = recent.locator(".start-item")
    expect(listed).to_have_count(1)
    expect(listed.first).to_contain_text("domain=newer-start.example")

    # When she asks for more and, before they have answered, starts the journey for a third
    # segment: the list is read again (its newest start, followed above, is left out of it)
    recent.get_by_role("button", name="Show more").click()
    with page.expect_response(
        lambda answer: starts_read.search(answer.url) is not None and "before=" not in answer.url
    ):
        start_for("domain=newest-start.example")
    expect(listed).to_have_count(0)
    assert len(held) == 1, [route.request.url for route in held]

    # ... and the starts after the one listed when she asked arrive after the list read again
    with page.expect_response(lambda answer: answer.request == held[0].request) as late:
        held[0].continue_()
    late.value.finished()
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => setTimeout(done)))")

    # Then the list goes on from the list read again: the start for newer-start, now second,
    # is not skipped by a page that began after it
    expect(listed.filter(has_text="domain=older-start.example")).to_have_count(0)
    recent.get_by_role("button", name="Show more").click()
    expect(listed).to_have_count(1)
    expect(listed.first).to_contain_text("domain=newer-start.example")
    recent.get_by_role("button", name="Show more").click()
    expect(listed).to_have_count(2)
    expect(listed.last).to_contain_text("domain=older-start.example")
