"""One runtime, one long weekend in November 2026, many leads at once.

The clock starts at midnight Tokyo time on Friday 20 November 2026, on virtual time: it stands
still while the runtime works and the script moves it from one scene to the next. Monday
23 November is a national holiday (勤労感謝の日), so from Friday the next business day is
Tuesday 24 November; journey mails go at 10:00 Tokyo time (01:00 UTC); quiet hours are
20:00-08:00.

Seminar leads are imported from an attendee list (no form, so welcome_nurture does not enter
them and the frequency cap is the seminar's alone) and entered into seminar_follow_up from the
CLI. Welcome leads submit the demo form and enter welcome_nurture from the events stream. The
script below is what people and marketers do, each at its simulated moment; the tests read what
the journeys did.

    Fri 00:00  demo forms (welcome mails at once); attendee list imported; seminar started (CLI);
               a form lead is also invited to the seminar
    Fri 09:00  a person clicks the invitation; then a one-click unsubscribe, a CRM status change,
               a link scanner, page views, repeated starts, a second form, a stream record
               delivered again
    Sat 12:00  a late attendee is invited, and so is a demo-form lead who viewed pricing
    Sun 12:00  that lead clicks the invitation
    Tue 09:00  the late attendee attends; mails A and B, and welcome mails, are due at 10:00
    Tue 12:00  a lead whose journey ended is entered again; a form submission is replayed
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tests.journeys.harness import (
    CHROME,
    CLOCK_TIMEOUT,
    SCANNER,
    SEMINAR,
    ScriptedWorld,
    Step,
    import_lead,
    jst,
    mail_of,
    submit_demo_form,
    view_page,
    wait_for,
)
from tsunagu import services
from tsunagu.clock import isoformat
from tsunagu.journeys.model import ReentryPolicy

CLOCK_START = "2026-11-19T15:00:00Z"
"""Friday 20 November 2026, 00:00 in Tokyo."""
LATE = timedelta(seconds=1)
"""How late a due mail may go on the simulated clock. On virtual time the work takes no
simulated time at all, so a mail due at 10:00 is sent at 10:00:00.000 however loaded the machine
is; the second only covers the whole-second rounding of Step Functions timestamps."""

FRIDAY = jst(2026, 11, 20).date()
FRIDAY_MORNING = jst(2026, 11, 20, 9)
SATURDAY_NOON = jst(2026, 11, 21, 12)
SUNDAY_NOON = jst(2026, 11, 22, 12)
TUESDAY = jst(2026, 11, 24).date()
TUESDAY_NINE = jst(2026, 11, 24, 9)
TUESDAY_TEN = jst(2026, 11, 24, 10)
"""The next business morning from Friday, and "three days later" from Friday: 01:00 UTC."""
TUESDAY_NOON = jst(2026, 11, 24, 12)
LAST_FRIDAY_STEP = "stream record again"
"""After it, the week's timing is no longer tight (see conftest.py)."""
SEMINAR_KEY = "seminar-2026-12"
SEMINAR_TAG = "seminar-2026-12"

# The seminar's attendee list (imported).
CLICKS_ON_FRIDAY = "clicks.friday@example.jp"
DOES_NOT_CLICK = "no.click@example.jp"
SCANNED = "scanned@example.com"
GOES_TO_SALES = "goes.to.sales@example.jp"
UNSUBSCRIBES = "unsubscribes@example.com"
STARTED_TWICE = "started.twice@example.jp"
SEMINAR_LEADS = (CLICKS_ON_FRIDAY, DOES_NOT_CLICK, SCANNED, GOES_TO_SALES, UNSUBSCRIBES)
ATTENDS = "attends@example.jp"
"""Invited on Saturday, attends on Tuesday."""

# Demo-form leads (welcome_nurture).
VIEWS_PRICING = "pricing.viewer@example.jp"
READS_CASE_STUDY = "case.reader@example.com"
SILENT = "silent.reader@example.jp"
TWO_JOURNEYS = "two.journeys@example.com"
SUBMITS_TWICE = "submits.twice@example.jp"
TWO_AT_TEN = "two.at.ten@example.jp"
"""Views the pricing page on Friday, is invited on Saturday and clicks on Sunday: welcome_nurture's
campaign offer and seminar_follow_up's mail A are both due on Tuesday at 10:00."""
AFTER_THE_REPLAY = "after.replay@example.com"
VISITORS = {
    VIEWS_PRICING: "v_pricing_viewer",
    READS_CASE_STUDY: "v_case_reader",
    TWO_AT_TEN: "v_two_at_ten",
}
FORM_LEADS = (VIEWS_PRICING, READS_CASE_STUDY, SILENT, TWO_JOURNEYS, SUBMITS_TWICE, TWO_AT_TEN)
FIRST_SUBMISSION = "sub_submits_twice_1"


def name_of(email: str) -> str:
    return email.split("@")[0].replace(".", " ").title()


@dataclass
class HolidayWeek(ScriptedWorld):
    def script(self) -> list[Step]:
        return [
            Step("forms", self.submit_forms),
            Step("attendee list", self.import_attendees),
            Step("seminar started", self.start_seminar),
            Step("seminar started after the welcome mail", self.start_seminar_after_welcome),
            Step("click", self.click_on_friday, FRIDAY_MORNING),
            Step("unsubscribe", self.unsubscribe),
            Step("crm status", self.hand_to_sales),
            Step("scanner", self.scanner_follows_the_link),
            Step("page views", self.view_pages),
            Step("start again", self.start_again),
            Step("form again", self.submit_again),
            Step("stream record again", self.redeliver_stream_record),
            Step("late invitation", self.invite_late_attendee, SATURDAY_NOON),
            Step("weekend invitation", self.invite_pricing_viewer),
            Step("weekend click", self.click_on_sunday, SUNDAY_NOON),
            Step("attendance", self.attend, TUESDAY_NINE),
            Step("second entry", self.enter_again_after_the_interval, TUESDAY_NOON),
            Step("form replayed", self.replay_first_submission),
            Step("form after the replay", self.submit_after_the_replay),
        ]

    def wait_until_done(self, name: str) -> None:
        assert self.director is not None
        self.director.wait_until_done(name)

    # ------------------------------------------------------------ Friday, first thing
    def submit_forms(self) -> dict[str, Any]:
        """First, so their welcome mails go out early on Friday."""
        answers = {}
        for email in FORM_LEADS:
            submitted_at = self.runtime.now()
            status, body = submit_demo_form(
                self.runtime,
                email,
                name_of(email),
                visitor_id=VISITORS.get(email),
                submission_id=FIRST_SUBMISSION if email == SUBMITS_TWICE else None,
            )
            assert status == 201, body
            self.leads[email] = body["lead_id"]
            answers[email] = {"status": status, "body": body, "at": submitted_at}
        return answers

    def import_attendees(self) -> None:
        for email in (*SEMINAR_LEADS, STARTED_TWICE):
            self.leads[email] = import_lead(self.runtime, email, "参加 予定者", tags=[SEMINAR_TAG])
        self.leads[ATTENDS] = import_lead(self.runtime, ATTENDS, "当日 参加者", tags=["late"])

    def start_seminar(self) -> str:
        return self.runtime.cli_ok(
            "journeys", "start", SEMINAR, "--segment", f"tag={SEMINAR_TAG}", "--key", SEMINAR_KEY
        )

    def start_seminar_after_welcome(self) -> dict[str, Any]:
        """The marketer invites a demo-form lead who has just had welcome_nurture's welcome."""
        welcome = mail_of(self.runtime, self.leads[TWO_JOURNEYS], "welcome")
        output = self.runtime.cli_ok(
            "journeys", "start", SEMINAR, "--lead", TWO_JOURNEYS, "--key", SEMINAR_KEY
        )

        def deferred_at_the_invitation() -> int:
            (status,) = json.loads(self.runtime.cli_ok("journeys", "status", SEMINAR))["journeys"]
            return int(status["waiting_at_node"].get("invitation", 0))

        # The invitation's gate defers it (the day's mail is used): journeys status shows the
        # lead waiting at the invitation, as it shows one at a wait
        waiting = wait_for(
            deferred_at_the_invitation, timeout=CLOCK_TIMEOUT, what="the deferred invitation"
        )
        return {"welcome": welcome, "output": output, "waiting_at_invitation": waiting}

    # ------------------------------------------------------------ Friday, 09:00
    def click_on_friday(self) -> dict[str, Any]:
        """The person opens the invitation in a browser and clicks its link."""
        invitation = mail_of(self.runtime, self.leads[CLICKS_ON_FRIDAY], "seminar-invitation")
        status, headers, _ = self.runtime.http(
            "GET", invitation.tracked_links()[0], headers={"user-agent": CHROME}
        )
        return {"status": status, "location": headers["Location"]}

    def unsubscribe(self) -> dict[str, Any]:
        """The mail client's one-click unsubscribe (RFC 8058) from the invitation's header."""
        invitation = mail_of(self.runtime, self.leads[UNSUBSCRIBES], "seminar-invitation")
        status, _, body = self.runtime.http(
            "POST",
            invitation.unsubscribe_url,
            b"List-Unsubscribe=One-Click",
            {"content-type": "application/x-www-form-urlencoded"},
        )
        assert status == 200, body[:300]
        return {"status": status}

    def hand_to_sales(self) -> str:
        return self.runtime.cli_ok("leads", "set", GOES_TO_SALES, "--crm-status", "in negotiation")

    def scanner_follows_the_link(self) -> list[int]:
        """A mail gateway checks the invitation's link: a HEAD, then a GET as an HTTP library."""
        invitation = mail_of(self.runtime, self.leads[SCANNED], "seminar-invitation")
        link = invitation.tracked_links()[0]
        head = self.runtime.http("HEAD", link, headers={"user-agent": CHROME})[0]
        get = self.runtime.http("GET", link, headers={"user-agent": SCANNER})[0]
        return [head, get]

    def view_pages(self) -> None:
        view_page(self.runtime, VISITORS[VIEWS_PRICING], "/pricing")
        view_page(self.runtime, VISITORS[READS_CASE_STUDY], "/case-study")
        view_page(self.runtime, VISITORS[TWO_AT_TEN], "/pricing")

    def start_again(self) -> dict[str, str]:
        """The marketer runs the same start command again, then once with a new key."""
        same = self.runtime.cli_ok(
            "journeys", "start", SEMINAR, "--lead", STARTED_TWICE, "--key", SEMINAR_KEY
        )
        other = self.runtime.cli_ok(
            "journeys", "start", SEMINAR, "--lead", STARTED_TWICE, "--key", "seminar-2026-12-b"
        )
        return {"same key": same, "new key": other}

    def submit_again(self) -> tuple[int, dict[str, Any]]:
        """The person fills in the demo form a second time (a new submission)."""
        return submit_demo_form(self.runtime, SUBMITS_TWICE, name_of(SUBMITS_TWICE))

    def redeliver_stream_record(self) -> list[Any]:
        """The events stream delivers the lead's first form_submitted record to route_events
        twice more (as a retried batch does)."""
        settings = self.runtime.settings
        dynamodb = self.runtime.client("dynamodb")
        items = dynamodb.query(
            TableName=settings.events_table,
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "subject"},
            ExpressionAttributeValues={":s": {"S": f"lead#{self.leads[SUBMITS_TWICE]}"}},
        )["Items"]
        first = min(
            (i for i in items if i["type"]["S"] == "form_submitted"), key=lambda i: i["sk"]["S"]
        )
        table = dynamodb.describe_table(TableName=settings.events_table)["Table"]
        record = {
            "eventID": "redelivered-1",
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": settings.region,
            "dynamodb": {
                "Keys": {"subject": first["subject"], "sk": first["sk"]},
                "NewImage": first,
                "SequenceNumber": "900000000000000000001",
                "SizeBytes": 400,
                "StreamViewType": "NEW_IMAGE",
            },
            "eventSourceARN": table["LatestStreamArn"],
        }
        answers = []
        for _ in range(2):
            response = self.runtime.client("lambda").invoke(
                FunctionName=self.runtime.function_name("RouteEventsFunction"),
                Payload=json.dumps({"Records": [record]}).encode(),
            )
            payload = response["Payload"].read()
            assert "FunctionError" not in response, payload
            answers.append(json.loads(payload))
        return answers

    # ------------------------------------------------------------ Saturday and Tuesday
    def invite_late_attendee(self) -> str:
        return self.runtime.cli_ok(
            "journeys", "start", SEMINAR, "--lead", ATTENDS, "--key", SEMINAR_KEY
        )

    def invite_pricing_viewer(self) -> str:
        return self.runtime.cli_ok(
            "journeys", "start", SEMINAR, "--lead", TWO_AT_TEN, "--key", SEMINAR_KEY
        )

    def click_on_sunday(self) -> int:
        invitation = mail_of(self.runtime, self.leads[TWO_AT_TEN], "seminar-invitation")
        status, _, _ = self.runtime.http(
            "GET", invitation.tracked_links()[0], headers={"user-agent": CHROME}
        )
        return status

    def attend(self) -> str:
        """The seminar's attendance list, recorded from the CLI on the day."""
        return self.runtime.cli_ok(
            "leads", "record", ATTENDS, "seminar_attended", "--prop", "seminar=2026-11"
        )

    def enter_again_after_the_interval(self) -> dict[str, Any]:
        """The marketer shortens seminar_follow_up's re-entry interval to one day, then starts
        the lead entered on Friday (whose journey has ended) again, and puts the shipped
        interval back."""
        journeys = services.journey_repository(self.runtime.settings)
        shipped = journeys.get_journey(SEMINAR)
        assert shipped is not None
        one_day = ReentryPolicy(kind="after_interval", interval_days=1)
        journeys.put_journey(
            shipped.model_copy(update={"reentry": one_day}), isoformat(self.runtime.now())
        )
        try:
            output = self.runtime.cli_ok(
                "journeys", "start", SEMINAR, "--lead", STARTED_TWICE, "--key", "seminar-2026-12-c"
            )
        finally:
            changed = journeys.get_journey(SEMINAR)
            assert changed is not None
            journeys.put_journey(
                changed.model_copy(update={"reentry": shipped.reentry}),
                isoformat(self.runtime.now()),
            )
        return {"output": output, "shipped": shipped.reentry}

    def replay_first_submission(self) -> tuple[int, dict[str, Any]]:
        """The browser retries the lead's first submission (the same submission id)."""
        return submit_demo_form(
            self.runtime, SUBMITS_TWICE, name_of(SUBMITS_TWICE), submission_id=FIRST_SUBMISSION
        )

    def submit_after_the_replay(self) -> str:
        status, body = submit_demo_form(self.runtime, AFTER_THE_REPLAY, name_of(AFTER_THE_REPLAY))
        assert status == 201, body
        self.leads[AFTER_THE_REPLAY] = body["lead_id"]
        return str(body["lead_id"])
