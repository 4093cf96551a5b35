"""The hand_off function's steps under moto, as the hand-off state machine calls them: the owner
by rule (round robin over the demo sales team the local runtime seeds; an owned lead keeps its
owner), and the owner's notification - once, with every point and the lead's recent activity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.mail_helpers import parse, parts, sent_messages
from tests.qualification.conftest import Qualified
from tsunagu import cli, services
from tsunagu.leads.merge import Channel
from tsunagu.leads.updates import LeadUpdate, update_lead
from tsunagu.mail.send import MessengerError
from tsunagu.observability import metrics
from tsunagu.store.ses import SesMessenger
from tsunagu_local.seed import DEMO_SALES_TEAM, seed_qualification

KEPT_OWNER = "sales.takahashi@example.com"
LEAD = "hanako.sato@example.jp"


def hand_off(q: Qualified, step: str, lead_id: str, **payload: Any) -> dict[str, Any]:
    result: dict[str, Any] = q.aws.function("hand_off").invoke(
        {"step": step, "lead_id": lead_id, **payload}
    )
    return result


def owner_of(q: Qualified, lead_id: str) -> str | None:
    field = q.lead(lead_id)["fields"].get("owner_email")
    return None if field is None else str(field["value"])


@pytest.fixture
def team(qualified: Qualified) -> Qualified:
    """The rules the local runtime seeds: the default scoring, the demo team in turn."""
    seed_qualification(services.qualification_repository(qualified.settings()))
    return qualified


def test_round_robin_alternates_and_a_lead_with_an_owner_keeps_it(team: Qualified) -> None:
    q = team
    first = q.capture("first@example.jp")
    second = q.capture("second@example.jp")
    owned = q.capture("owned@example.jp")
    third = q.capture("third@example.jp")
    update_lead(
        owned,
        LeadUpdate(fields={"owner_email": KEPT_OWNER}),
        by="cli:tester",
        source=Channel.SALES,
        store=services.lead_repository(q.settings()),
        now=services.clock(q.settings()).now(),
    )

    # When each becomes an MQL and its hand-off assigns an owner
    owners = {lead: hand_off(q, "assign", lead)["owner"] for lead in (first, second, owned)}
    # (and the first's assign step runs again, as a retried task would)
    again = hand_off(q, "assign", first)["owner"]
    owners[third] = hand_off(q, "assign", third)["owner"]

    # Then the team takes turns; the owned lead keeps its owner and does not use up a turn
    assert {owners[first], owners[second]} == set(DEMO_SALES_TEAM)
    assert owners[owned] == KEPT_OWNER
    assert again == owners[first]
    assert owners[third] == owners[first]
    # And each owner is stored on the lead, by the rule
    for lead, owner in owners.items():
        assert owner_of(q, lead) == owner
    (assigned,) = [
        e for e in q.events(first, "lead_updated") if "owner_email" in e["properties"]["fields"]
    ]
    assert assigned["properties"]["by"] == "rule: owner assignment"


def mql(q: Qualified) -> str:
    """A lead handed to sales by the rule: the form, an automated open (Apple's proxy), eight
    opens, the seminar."""
    lead_id = q.capture("hanako.sato@example.jp")
    q.open_mail(lead_id, "msg_proxy", user_agent="Mozilla/5.0", ip="17.58.100.12")
    for n in range(8):
        q.open_mail(lead_id, f"msg_{n}")
    q.record(lead_id, "seminar_attended")
    q.deliver()
    assert q.lead(lead_id)["stage"] == "mql"
    return lead_id


def mails_to(address: str) -> list[Any]:
    return [m for m in sent_messages() if address in str(parse(m.raw_data)["To"])]


def test_the_owner_is_told_once_with_every_point_and_the_recent_activity(team: Qualified) -> None:
    q = team
    lead_id = mql(q)
    owner = hand_off(q, "assign", lead_id)["owner"]
    key = "arn:aws:states:ap-northeast-1:123456789012:execution:x:mql-1:Notify the owner"

    # When the notify step runs, and runs again (a retried task)
    first = hand_off(q, "notify", lead_id, owner=owner, key=key)
    second = hand_off(q, "notify", lead_id, owner=owner, key=key)

    # Then one mail went to the owner
    assert (first["notified"], second["notified"]) == ("sent", "already_sent")
    (mail,) = mails_to(owner)
    message = parse(mail.raw_data)
    assert "[MQL D1] 佐藤 花子 (Example KK)" in str(message["Subject"])
    assert str(message["Reply-To"]) == "hanako.sato@example.jp"
    text, _ = parts(message)
    # With every point: eight opens, the form, the seminar, and the total
    assert text.count("mail-opened (Opened a mail)  +5") == 8
    assert "form-submitted (Submitted a form)  +10" in text
    assert "seminar-attended (Attended a seminar)  +20" in text
    assert "total 70.0" in text
    # And the recent activity: what the lead did, not what a proxy did nor what Tsunagu wrote
    recent = text.split("Recent activity:", 1)[1]
    assert recent.count("mail_opened") == 8
    assert "seminar_attended" in recent and "form_submitted" in recent
    assert "score_changed" not in recent and "stage_changed" not in recent
    (notified,) = q.events(lead_id, "owner_notified")
    assert notified["properties"]["owner"] == owner


def test_a_notification_ses_refused_goes_out_when_the_step_runs_again(
    team: Qualified, monkeypatch: pytest.MonkeyPatch
) -> None:
    q = team
    lead_id = mql(q)
    owner = hand_off(q, "assign", lead_id)["owner"]
    key = "arn:aws:states:ap-northeast-1:123456789012:execution:x:mql-2:Notify the owner"
    send = SesMessenger.send
    refusals: list[str] = []

    def throttled_once(self: SesMessenger, mail: Any) -> str:
        if not refusals:
            refusals.append(mail.recipient)
            raise MessengerError("Throttling: Maximum sending rate exceeded")
        return send(self, mail)

    monkeypatch.setattr(SesMessenger, "send", throttled_once)

    # When SES refuses the notification, and the step is run again (a redrive, a retry)
    with pytest.raises(Exception, match="Maximum sending rate"):
        hand_off(q, "notify", lead_id, owner=owner, key=key)
    again = hand_off(q, "notify", lead_id, owner=owner, key=key)

    # Then the owner gets the mail the second time
    assert again["notified"] == "sent"
    assert len(mails_to(owner)) == 1


def test_a_journeys_owner_mail_with_no_owner_to_go_to_says_so_once_on_the_timeline(
    qualified: Qualified,
) -> None:
    # No owner rules (nothing seeded) and no owner on the lead
    q = qualified
    lead = q.capture("nobody.owns.me@example.jp")
    step = {"assign_owner": True, "note": "Call them", "journey_id": "pricing", "key": "exec:s"}
    assert hand_off(q, "notify", lead, **step) == {"notified": "no_owner"}
    assert hand_off(q, "notify", lead, **step) == {"notified": "no_owner"}  # a retried task

    events = services.lead_repository(q.settings()).events(lead)
    told = [e for e in events if e.type == "owner_notified"]
    assert len(told) == 1
    assert told[0].properties == {"status": "no_owner", "journey_id": "pricing"}
    assert sent_messages() == []


@pytest.mark.parametrize("crm", ["", "https://crm.example.com/hook"])
def test_an_mql_no_one_owns_says_so_on_its_timeline_and_is_alarmed_when_no_crm_hears_of_it(
    qualified: Qualified, monkeypatch: pytest.MonkeyPatch, crm: str
) -> None:
    # Given no owner rules (nothing seeded), a lead with no owner, and a CRM webhook or none
    q = qualified
    counted: list[str] = []
    monkeypatch.setattr(
        metrics, "add_metric", lambda name, **_: counted.append(name), raising=False
    )
    function = q.aws.function("hand_off")
    function.environment["TSUNAGU_CRM_WEBHOOK_URL"] = crm
    lead = q.capture("nobody.owns.this.mql@example.jp")
    key = "arn:aws:states:ap-northeast-1:123456789012:execution:hand-off:mql-evt_9:Notify the owner"

    # When the MQL hand-off assigns nobody and its notify step runs, and runs again (a retry)
    assert hand_off(q, "assign", lead)["owner"] is None
    for _ in range(2):
        assert hand_off(q, "notify", lead, owner=None, key=key) == {"notified": "no_owner"}

    # Then the lead's timeline says once that sales was told nothing, as a journey's mail does
    told = services.lead_repository(q.settings()).events(lead)
    assert [e.properties for e in told if e.type == "owner_notified"] == [{"status": "no_owner"}]
    assert sent_messages() == []
    # And with no CRM to push it to either, nobody in sales heard of it: alarmed, once
    assert counted.count("MqlNotHandedOff") == (0 if crm else 1)


# ---------------------------------------------------------------- the owner is an address


def test_an_owner_that_is_no_address_is_refused_and_nothing_is_stored(
    qualified: Qualified, cli_here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    q = qualified
    lead_id = q.capture(LEAD)
    capsys.readouterr()

    # When a rep types a name where the owner's address belongs
    code = cli.main(["leads", "set", LEAD, "--field", "owner_email=佐藤 営業部"])

    # Then the CLI says what is wrong, and the lead has no owner the hand-off would mail
    assert code != 0
    assert "owner_email must be an e-mail address" in capsys.readouterr().err
    assert owner_of(q, lead_id) is None


def test_an_owner_stored_before_owners_were_checked_holds_the_notice_back_instead_of_failing(
    qualified: Qualified,
) -> None:
    q = qualified
    # Given a lead whose owner an earlier version stored as typed: a name, not an address
    lead_id = q.capture(LEAD)
    q.dynamodb().update_item(
        TableName=q.aws.tables["LeadsTable"],
        Key={"lead_id": {"S": lead_id}},
        UpdateExpression="SET #fields.owner_email = :owner",
        ExpressionAttributeNames={"#fields": "fields"},
        ExpressionAttributeValues={
            ":owner": {
                "M": {
                    "value": {"S": "佐藤 営業部"},
                    "source": {"S": "sales"},
                    "at": {"S": "2026-11-30T01:00:00.000Z"},
                }
            }
        },
    )

    # When the hand-off assigns and notifies (outside production)
    owner = hand_off(q, "assign", lead_id)["owner"]
    result = hand_off(q, "notify", lead_id, owner=owner, key="x:mql-1:Notify")

    # Then the notice is held back as any address off the allowlist is, and the step succeeds
    assert result == {"notified": "sandboxed"}
    assert sent_messages() == []
