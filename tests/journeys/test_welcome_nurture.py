"""Issue 5's "done when": a lead who submits the demo form enters welcome_nurture and receives
its mails in the viewer at the right simulated times.

Three demo-form leads, early on Friday 20 November 2026 (see holiday_week.py): one views the
pricing page on Friday, one reads a case study, one does nothing. Monday 23 November is a
holiday, so each one's second mail is due on Tuesday at 10:00.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.journeys.harness import JST, WELCOME, History, SentMail, jst, mail_of, sent_mails
from tests.journeys.holiday_week import (
    FRIDAY,
    LATE,
    READS_CASE_STUDY,
    SILENT,
    TUESDAY_NOON,
    TUESDAY_TEN,
    VIEWS_PRICING,
    HolidayWeek,
    name_of,
)
from tsunagu.clock import parse_instant

AT_ONCE = timedelta(seconds=1)
"""The welcome mail goes "at once" (no wait before it: see the history): on virtual time the
stream, route_events, the gate and send_email take no simulated time, so it is stamped with the
instant of the submission."""
TUESDAY_TEN_UTC = "2026-11-24T01:00:00Z"
WAIT_FOR_A_VISIT = "Wait for a visit to the pricing or case-study page"


def at_ten(mail: SentMail, day: datetime) -> None:
    assert day <= mail.sent_at_jst < day + LATE, (mail.template_id, mail.sent_at_jst)


def welcome_history(world: HolidayWeek, email: str) -> History:
    entry = world.runtime.entry(world.leads[email], WELCOME)
    assert entry is not None, f"{email} did not enter {WELCOME}"
    assert entry.trigger == "form_submitted"
    return world.runtime.history(entry.execution_arn)


def second_mail(world: HolidayWeek, email: str, template_id: str) -> SentMail:
    runtime = world.runtime
    return mail_of(runtime, world.leads[email], template_id, timeout=runtime.once_at(TUESDAY_NOON))


def test_a_demo_form_lead_gets_the_welcome_mail_at_once(holiday_week_world: HolidayWeek) -> None:
    world = holiday_week_world
    # When three people submit the demo form
    forms = world.step("forms")
    for email in (VIEWS_PRICING, READS_CASE_STUDY, SILENT):
        # Then each enters welcome_nurture and gets the welcome mail at once, by name
        welcome = mail_of(world.runtime, world.leads[email], "welcome")
        submitted: datetime = forms[email]["at"]
        assert submitted <= welcome.sent_at < submitted + AT_ONCE, welcome.sent_at_jst
        assert welcome.sent_at_jst.date() == FRIDAY
        assert welcome.recipients == [email]
        assert welcome.subject == f"{name_of(email)} 様、資料のダウンロードありがとうございます"
        assert welcome.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert len(welcome.tracked_links()) == 2  # pricing, case study (not the honeypot)
        history = welcome_history(world, email)
        assert history.states()[:3] == [
            "Check the gate before the welcome mail",
            "What did the gate say about the welcome mail?",
            "Send the welcome mail",
        ]


def test_a_pricing_page_viewer_gets_the_campaign_offer_the_next_business_morning(
    holiday_week_world: HolidayWeek,
) -> None:
    world = holiday_week_world
    # Given the welcome mail, When the lead views the pricing page on Friday
    world.step("page views")
    offer = second_mail(world, VIEWS_PRICING, "welcome-campaign-offer")

    # Then the journey tagged the lead, and sent the campaign offer on Tuesday at 10:00
    history = welcome_history(world, VIEWS_PRICING)
    [visit] = history.outputs(WAIT_FOR_A_VISIT)
    assert visit["response"]["matched"] == "pricing"
    assert parse_jst(visit["response"]["occurred_at"]).date() == FRIDAY
    assert "interest:pricing" in world.runtime.lead(world.leads[VIEWS_PRICING]).tags
    # ... and the lead's timeline says why: the page view that decided the wait, a person's
    [decision] = [
        e
        for e in world.runtime.events(world.leads[VIEWS_PRICING])
        if e.type == "journey_decision" and e.properties["node"] == "pricing_or_case_study"
    ]
    assert decision.properties["outcome"] == "pricing"
    assert decision.properties["values"]["event"] == "page_view"
    assert decision.properties["values"]["by"] == "person"
    assert decision.properties["values"]["event_id"] == visit["response"]["event_id"]
    [scheduled] = history.outputs("Schedule the campaign offer")
    assert scheduled["schedule"]["send_at"] == TUESDAY_TEN_UTC
    at_ten(offer, TUESDAY_TEN)
    assert offer.subject == "今月末までのキャンペーンのご案内"
    assert [m.template_id for m in sent_mails(world.runtime, world.leads[VIEWS_PRICING])] == [
        "welcome",
        "welcome-campaign-offer",
    ]


def test_a_case_study_reader_gets_the_detailed_material(holiday_week_world: HolidayWeek) -> None:
    world = holiday_week_world
    world.step("page views")
    material = second_mail(world, READS_CASE_STUDY, "welcome-case-study-pack")
    history = welcome_history(world, READS_CASE_STUDY)
    [visit] = history.outputs(WAIT_FOR_A_VISIT)
    assert visit["response"]["matched"] == "case_study"
    assert "interest:case-studies" in world.runtime.lead(world.leads[READS_CASE_STUDY]).tags
    [scheduled] = history.outputs("Schedule the detailed material")
    assert scheduled["schedule"]["send_at"] == TUESDAY_TEN_UTC
    at_ten(material, TUESDAY_TEN)
    assert material.subject == "導入事例の詳細資料をお送りします"


def test_a_lead_who_does_nothing_gets_the_guide_after_three_days(
    holiday_week_world: HolidayWeek,
) -> None:
    world = holiday_week_world
    world.step("forms")
    guide = second_mail(world, SILENT, "welcome-getting-started")
    # The three-day wait for a page view timed out on Monday, a holiday: "the same business
    # day" is Tuesday, at 10:00
    history = welcome_history(world, SILENT)
    [entered] = history.entered(WAIT_FOR_A_VISIT)
    submitted = next(e for e in history.of_type("TaskSubmitted") if e["id"] > entered["id"])
    [timed_out] = history.of_type("TaskTimedOut")
    waited = history.simulated(timed_out) - history.simulated(submitted)
    assert abs(waited - timedelta(days=3)) <= LATE, waited
    assert history.simulated(timed_out).astimezone(JST).date() == jst(2026, 11, 23).date()
    # ... and the lead's timeline says so: the node's decision, at the instant it timed out
    [decision] = [
        e
        for e in world.runtime.events(world.leads[SILENT])
        if e.type == "journey_decision" and e.properties["node"] == "pricing_or_case_study"
    ]
    assert decision.properties["outcome"] == "timed_out"
    assert decision.properties["kind"] == "wait_for"
    assert decision.properties["values"] == {"within_seconds": 3 * 86400}
    assert abs(parse_instant(decision.occurred_at) - history.simulated(timed_out)) <= LATE
    [scheduled] = history.outputs("Schedule the getting-started guide")
    assert scheduled["schedule"]["send_at"] == TUESDAY_TEN_UTC
    at_ten(guide, TUESDAY_TEN)
    assert [m.template_id for m in sent_mails(world.runtime, world.leads[SILENT])] == [
        "welcome",
        "welcome-getting-started",
    ]


def parse_jst(text: str) -> datetime:
    return parse_instant(text).astimezone(JST)
