"""Undoing an import takes back the opt-ins its consent column recorded (moto, in-process): a
column read backwards, or the wrong file, must not go on mailing people who never said yes. An
opt-in is withdrawn while the lead's consent for the topic still rests on it - the topic goes
back to what it was, recorded as new evidence beside the list's - and a later answer (a form)
is kept; so is an opt-out the list gave: an undo never makes more mail go."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.conftest import AwsStack
from tests.integration.mail_helpers import (
    capture,
    consent_records,
    consent_state,
    prepare_mail,
    save_template,
    send,
)
from tests.support.admin import event
from tests.support.cli import runtime_here
from tests.support.leads import store_lead
from tsunagu import cli, services
from tsunagu.api import admin
from tsunagu.commands import imports
from tsunagu.commands.access import Actor, Role
from tsunagu.imports.plan import ConsentColumn, ImportOptions
from tsunagu.leads.merge import Channel

MARKETER = Actor(user_id="m@example.com", role=Role.MARKETER, email="m@example.com")
OPTIONS = ImportOptions(
    Channel.TRADE_SHOW,
    consent=ConsentColumn("配信希望", frozenset({"希望する"}), frozenset({"希望しない"})),
)


def sheet(*rows: tuple[str, str]) -> bytes:
    """A trade-show list: each row an address and its 配信希望 answer."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["メールアドレス", "氏名", "配信希望"])
    writer.writerows([address, "展示 花子", said] for address, said in rows)
    return out.getvalue().encode("utf-8")


def run(aws: AwsStack, data: bytes, options: ImportOptions = OPTIONS) -> str:
    ports = services.import_commands(aws.settings())
    record, _ = imports.run(ports, MARKETER, data, "展示会.csv", options)
    return record.import_id


def lead_id(aws: AwsStack, address: str) -> str:
    lead = services.lead_repository(aws.settings()).find_lead(f"email:{address}")
    assert lead is not None, address
    return lead.lead_id


def undo_through_the_admin_api(aws: AwsStack, import_id: str) -> dict:  # type: ignore[type-arg]
    path = f"/admin/imports/{import_id}/undo"
    response = admin.handle(event("POST", path, role=Role.MARKETER), aws.settings())
    assert response["statusCode"] == 200, response["body"]
    answer: dict = json.loads(response["body"])  # type: ignore[type-arg]
    return answer


def test_undo_withdraws_the_opt_ins_a_list_gave_and_marketing_mail_stops(aws: AwsStack) -> None:
    # Given a known lead who never answered about marketing, and one opted in to seminars only
    prepare_mail(aws)
    save_template(aws)
    store_lead(aws, "known@example.jp", name="既存 太郎")
    seminars = capture(aws, "seminars@example.jp", form_id="seminar")
    assert consent_state(aws, seminars) == {"seminars": "opted_in"}
    known = lead_id(aws, "known@example.jp")
    assert send(aws, known, template_id="welcome")["reason"] == "no_consent"

    # And a list whose consent column answered "yes" for them and for two new people, one of
    # whom has been mailed since (the undo keeps that lead: it has had a life since)
    rows = ["known", "seminars", "new", "mailed"]
    import_id = run(aws, sheet(*[(f"{name}@example.jp", "希望する") for name in rows]))
    mailed = lead_id(aws, "mailed@example.jp")
    for lead in (known, seminars, mailed):
        assert consent_state(aws, lead).get("marketing") == "opted_in"
    assert send(aws, mailed, template_id="welcome")["status"] == "sent"
    assert send(aws, known, template_id="welcome")["status"] == "sent"

    # When the list is undone (its column was read backwards)
    answer = undo_through_the_admin_api(aws, import_id)

    # Then the new lead nothing happened to is gone, consent and all; the others stay (the
    # known ones with their names back), and every opt-in the list gave them is withdrawn:
    # the topic is back to what it was
    assert answer["undo"] == {"removed": 1, "restored": 2, "withdrawn": 3, "kept": 1}
    assert [(k["email"], "consent" in k) for k in answer["kept"]] == [("mailed@example.jp", False)]
    leads = services.lead_repository(aws.settings())
    assert leads.find_lead("email:new@example.jp") is None
    assert consent_state(aws, known) == {}
    assert consent_state(aws, seminars) == {"seminars": "opted_in"}
    assert consent_state(aws, mailed) == {}
    # ... and a marketing mail is skipped for consent, as for anyone who never said yes
    for lead in (known, mailed):
        sent = send(aws, lead, template_id="welcome")
        assert (sent["status"], sent["reason"]) == ("skipped", "no_consent"), sent

    # And nothing was deleted from the ledger: the list's evidence stays, and beside it the
    # undo's, naming the undo, who asked for it and the import
    listed, withdrawn = leads.consent_evidence(known)
    assert (listed.status, listed.text_version) == ("opted_in", import_id)
    assert (withdrawn.status, withdrawn.method, withdrawn.topic) == (
        "withdrawn", "import_undone", "marketing",
    )  # fmt: skip
    assert withdrawn.text is not None
    assert f"Undo of import {import_id} by marketer@example.com" in withdrawn.text
    assert "展示会.csv, row 2" in withdrawn.text and listed.evidence_id in withdrawn.text
    said = [e for e in leads.events(known) if e.type == "consent_changed"]
    assert [(e.properties["status"], e.properties["import_id"]) for e in said] == [
        ("withdrawn", import_id)
    ]


def test_a_later_form_opt_in_keeps_the_lead_opted_in(aws: AwsStack) -> None:
    # Given a known lead a list opted in, who then ticks the consent box of a form themselves
    prepare_mail(aws)
    save_template(aws)
    store_lead(aws, "known@example.jp", name="既存 太郎")
    import_id = run(aws, sheet(("known@example.jp", "希望する")))
    known = lead_id(aws, "known@example.jp")
    assert capture(aws, "known@example.jp") == known
    form_said = consent_records(aws, known)["topic#marketing"]["evidence"]

    # When the list is undone
    done = imports.undo(services.import_commands(aws.settings()), MARKETER, import_id)

    # Then the person's own answer is the lead's consent, and stays: kept, and said why
    assert done.record.undo == {"removed": 0, "restored": 1, "withdrawn": 0, "kept": 1}
    [kept] = done.kept
    assert kept["consent"]["reason_code"] == "answered_since"
    assert kept["consent"]["reason_params"]["by"] == "form:demo"
    assert consent_state(aws, known) == {"marketing": "opted_in"}
    assert consent_records(aws, known)["topic#marketing"]["evidence"] == form_said
    assert send(aws, known, template_id="welcome")["status"] == "sent"


def test_an_opt_out_the_list_gave_is_kept_and_the_cli_says_so(
    aws: AwsStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a lead opted in through a form, whom a list then answered "no" for, and a known
    # lead the same list answered "yes" for
    prepare_mail(aws)
    save_template(aws)
    said_no = capture(aws, "said-no@example.jp")
    store_lead(aws, "known@example.jp", name="既存 太郎")
    rows = [("said-no@example.jp", "希望しない"), ("known@example.jp", "希望する")]
    import_id = run(aws, sheet(*rows))
    assert consent_state(aws, said_no) == {"marketing": "opted_out"}

    # When the list is undone with the CLI
    runtime_here(aws, tmp_path, monkeypatch)
    assert cli.main(["imports", "undo", import_id]) == 0

    # Then the opt-out stays - an undo errs toward less mail, never more - and is listed with
    # why; the "yes" is withdrawn
    printed = capsys.readouterr().out
    assert "0 leads removed, 2 restored, 1 left as they were" in printed
    assert "1 opt-in it recorded withdrawn" in printed
    assert "said-no@example.jp  consent: its opt-out of marketing is kept" in printed
    assert consent_state(aws, said_no) == {"marketing": "opted_out"}
    assert send(aws, said_no, template_id="welcome")["reason"] == "opted_out"
    assert consent_state(aws, lead_id(aws, "known@example.jp")) == {}


@pytest.mark.parametrize("order", ["second_first", "first_first"])
def test_a_lead_a_list_opted_in_and_another_corrected_goes_once_both_are_undone(
    aws: AwsStack, order: str
) -> None:
    # Given list A, which created a lead and opted it in, and list B, which corrected it
    ports = services.import_commands(aws.settings())
    first = run(aws, sheet(("listed@example.jp", "希望する")))
    fixed = "メールアドレス,会社名\r\nlisted@example.jp,ブース工業\r\n".encode()
    second = run(aws, fixed, ImportOptions(Channel.TRADE_SHOW))
    listed = lead_id(aws, "listed@example.jp")

    # When both are undone, in either order (A first: the lead stays for B's row, and A's
    # opt-in is withdrawn - the undo's doing, not the lead's life)
    ids = [second, first] if order == "second_first" else [first, second]
    for import_id in ids:
        imports.undo(ports, MARKETER, import_id)

    # Then the lead goes with its events and consent records, as if never listed
    leads = services.lead_repository(aws.settings())
    assert leads.get_lead(listed) is None and leads.events(listed) == []
    assert consent_records(aws, listed) == {}
