"""A list's "yes" never outweighs a person's later "no", and a list never overwrites what a
higher-ranked source set, also when the lead changes between the dry run and the write (moto,
in-process): the plan says what it keeps and why, the synchronous run writes by the leads as
they are when it writes, and so does every chunk of a background run."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from typing import Any

import pytest

from tests.conftest import AwsStack, load_event
from tests.integration.mail_helpers import (
    consent_state,
    parse,
    prepare_mail,
    save_template,
    send,
    sent_messages,
    token_of,
    unsubscribe,
    unsubscribe_url,
    with_token,
)
from tests.support.leads import store_lead
from tsunagu import services
from tsunagu.commands import import_jobs, imports
from tsunagu.commands.access import Actor, Role
from tsunagu.errors import ConcurrentUpdate, ValidationFailed
from tsunagu.imports.plan import ConsentColumn, ImportOptions
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import ConsentEvidence, Lead
from tsunagu.store.converters import consent_items
from tsunagu.store.tables import bind_tables

MARKETER = Actor(user_id="m@example.com", role=Role.MARKETER, email="m@example.com")
CONSENT = ConsentColumn("配信希望", frozenset({"希望する"}), frozenset({"希望しない"}))
OPTIONS = ImportOptions(Channel.TRADE_SHOW, consent=CONSENT)


def sheet(*rows: tuple[str, str, str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["メールアドレス", "役職", "配信希望"])
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def lead_of(aws: AwsStack, address: str) -> Lead:
    lead = services.lead_repository(aws.settings()).find_lead(f"email:{address}")
    assert lead is not None
    return lead


def opted_out_of(aws: AwsStack, lead: Lead, topic: str) -> None:
    """The person's "no" as the preferences page records it (the evidence and the state)."""
    at = services.clock(aws.settings()).now()
    said = ConsentEvidence(
        f"cns_{topic}", lead.lead_id, lead.email, topic, "opted_out", at.isoformat(), text="no"
    )
    for item in consent_items(bind_tables(aws.settings()), said):
        item.save()


@pytest.fixture
def mailed(aws: AwsStack) -> AwsStack:
    """Three leads from an earlier list: two opted in by it and sent its welcome mail - one has
    since unsubscribed by the mail's link, one has opted out of marketing mail only - and one
    whose row said nothing about mail (a yes for it now is a change)."""
    prepare_mail(aws)
    save_template(aws)
    rows = [(f"{name}@example.jp", "課長", "希望する") for name in ("link", "topic")]
    rows.append(("still@example.jp", "課長", ""))
    imports.run(
        services.import_commands(aws.settings()), MARKETER, sheet(*rows), "前回.csv", OPTIONS
    )
    link = lead_of(aws, "link@example.jp")
    sent = send(aws, link.lead_id, template_id="welcome")
    assert sent["status"] == "sent", sent
    token = token_of(unsubscribe_url(parse(sent_messages()[-1].raw_data)))
    answer = unsubscribe(aws, with_token(load_event("unsubscribe", "one_click_urlencoded"), token))
    assert answer["statusCode"] == 200
    opted_out_of(aws, lead_of(aws, "topic@example.jp"), "marketing")
    return aws


def test_a_list_s_yes_does_not_opt_in_again_a_person_who_said_no_since(mailed: AwsStack) -> None:
    data = sheet(*[(f"{n}@example.jp", "課長", "希望する") for n in ("link", "topic", "still")])
    ports = services.import_commands(mailed.settings())
    planned = imports.plan(ports, MARKETER, data, "今回.csv", OPTIONS)
    by_email = {row.email: row for row in planned.plan.rows}
    for refused in ("link@example.jp", "topic@example.jp"):
        assert (by_email[refused].action, by_email[refused].consent) == ("unchanged", None)
        assert by_email[refused].consent_kept is not None
        assert "only they can opt in again" in by_email[refused].consent_kept
    assert (by_email["still@example.jp"].action, by_email["still@example.jp"].consent) == (
        "update",
        "yes",
    )
    shown = planned.as_json()["rows"]
    assert [row["consent_kept"] is not None for row in shown] == [True, True, False]

    imports.run(ports, MARKETER, data, "今回.csv", OPTIONS)
    link, topic = lead_of(mailed, "link@example.jp"), lead_of(mailed, "topic@example.jp")
    assert consent_state(mailed, link.lead_id)["all"] == "opted_out"
    assert consent_state(mailed, topic.lead_id)["marketing"] == "opted_out"
    for lead in (link, topic):
        assert send(mailed, lead.lead_id, template_id="welcome")["status"] == "skipped"


def test_a_no_given_between_the_dry_run_and_the_run_is_kept(mailed: AwsStack) -> None:
    data = sheet(("still@example.jp", "課長", "希望する"))
    ports = services.import_commands(mailed.settings())
    digest = imports.plan(ports, MARKETER, data, "今回.csv", OPTIONS).as_json()["plan_digest"]
    opted_out_of(mailed, lead_of(mailed, "still@example.jp"), "all")
    with pytest.raises(ConcurrentUpdate, match="plan changed since the dry run"):
        imports.run(ports, MARKETER, data, "今回.csv", OPTIONS, plan_digest=digest)


def background(aws: AwsStack, data: bytes) -> tuple[imports.ImportCommands, str]:
    """The list uploaded, planned and queued for the import state machine (not started)."""
    aws.environment["TSUNAGU_IMPORT_STATE_MACHINE_ARN"] = "arn:aws:states:x:1:stateMachine:i"
    ports = replace(services.import_commands(aws.settings()), start_job=lambda import_id: import_id)
    upload_id = import_jobs.upload_file(ports, "今回.csv", data)
    record = import_jobs.start(ports, MARKETER, upload_id, "今回.csv", OPTIONS)
    assert import_jobs.prepare(ports, record.import_id) == [0]
    return ports, record.import_id


def test_a_chunk_writes_by_the_leads_as_they_are_when_it_runs(mailed: AwsStack) -> None:
    # Prepared while "still" had said nothing and its job title was a trade show's
    ports, import_id = background(mailed, sheet(("still@example.jp", "部長", "希望する")))

    # Then, before the chunk runs, sales set the job title, and the person said no to all mail
    still = lead_of(mailed, "still@example.jp")
    at = services.clock(mailed.settings()).now().isoformat()
    fields = {**still.fields, "job_title": FieldValue("本部長", Channel.SALES, at)}
    services.lead_repository(mailed.settings()).save_changes(replace(still, fields=fields), [])
    opted_out_of(mailed, still, "all")

    import_jobs.apply_chunk(ports, import_id, 0)
    import_jobs.finish(ports, import_id)
    now = lead_of(mailed, "still@example.jp")
    assert (now.fields["job_title"].value, now.fields["job_title"].source) == (
        "本部長",
        Channel.SALES,
    )
    assert consent_state(mailed, still.lead_id)["all"] == "opted_out"
    assert send(mailed, still.lead_id, template_id="welcome")["status"] == "skipped"


def test_a_lead_a_form_created_while_the_run_wrote_keeps_what_outranks_the_list(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run planned a create; a web form made the lead just before the group's write: the
    row, read again, goes in as the sources' ranks say - an old list (ranked below forms)
    fills only what the form left empty."""
    from tsunagu.store.imports import ImportRepository

    data = sheet(("late@example.jp", "部長", ""))
    grouped = ImportRepository.apply_rows
    writes_seen: list[int] = []

    def form_first(self: ImportRepository, import_id: str, writes: Any, *rest: Any) -> None:
        if not writes_seen:
            at = services.clock(aws.settings()).now().isoformat()
            store_lead(
                aws,
                "late@example.jp",
                fields={"job_title": FieldValue("課長", Channel.WEB_FORM, at)},
            )
        writes_seen.append(len(writes))
        grouped(self, import_id, writes, *rest)

    monkeypatch.setattr(ImportRepository, "apply_rows", form_first)
    ports = services.import_commands(aws.settings())
    imports.run(ports, MARKETER, data, "名簿.csv", ImportOptions(Channel.IMPORT))
    late = lead_of(aws, "late@example.jp")
    assert (late.fields["job_title"].value, late.fields["job_title"].source) == (
        "課長",
        Channel.WEB_FORM,
    )
    # The group, refused; the row alone as planned, refused (the address is the form's now);
    # read again, nothing of the list's is left to write
    assert writes_seen == [1, 1]


@pytest.mark.parametrize(
    ("yes", "no"),
    [({"-"}, set()), ({"希望する"}, {"・"}), ({" "}, set()), ({"Yes"}, {"yes"})],
)
def test_answers_that_would_match_blank_cells_or_both_ways_are_refused(
    yes: set[str], no: set[str]
) -> None:
    with pytest.raises(ValidationFailed):
        ConsentColumn("配信希望", frozenset(yes), frozenset(no))


def test_a_blank_consent_cell_says_nothing(aws: AwsStack) -> None:
    data = sheet(("blank@example.jp", "", ""), ("mark@example.jp", "", "・"))
    ports = services.import_commands(aws.settings())
    planned = imports.plan(ports, MARKETER, data, "名簿.csv", OPTIONS)
    assert [(row.action, row.consent) for row in planned.plan.rows] == [
        ("create", None),
        ("create", None),
    ]


def test_a_no_given_between_the_check_and_the_write_is_kept(
    mailed: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The person opts out of marketing mail on the preferences page just after the run read
    who had opted out: the write is refused by the opt-out itself, read again, and the row
    goes in without the opt-in."""
    from tsunagu.store.leads import LeadRepository

    read_opt_outs = LeadRepository.opted_out
    still = lead_of(mailed, "still@example.jp")
    reads: list[int] = []

    def opting_out_meanwhile(self: LeadRepository, lead_ids: Any, topic: str) -> Any:
        answer = read_opt_outs(self, lead_ids, topic)
        reads.append(1)
        if len(reads) == 1:  # the group's check, just before its write (the plan read before)
            opted_out_of(mailed, still, "marketing")
        return answer

    monkeypatch.setattr(LeadRepository, "opted_out", opting_out_meanwhile)
    data = sheet(("still@example.jp", "部長", "希望する"))
    imports.run(services.import_commands(mailed.settings()), MARKETER, data, "今回.csv", OPTIONS)
    assert consent_state(mailed, still.lead_id)["marketing"] == "opted_out"
    assert lead_of(mailed, "still@example.jp").fields["job_title"].value == "部長"
    assert send(mailed, still.lead_id, template_id="welcome")["status"] == "skipped"


def test_the_same_list_imported_again_is_unchanged_and_its_plan_applies_once(
    aws: AwsStack,
) -> None:
    # Given a list that answered for a new person and for one already known
    store_lead(aws, "known@example.jp")
    ports = services.import_commands(aws.settings())
    data = sheet(("new@example.jp", "課長", "希望する"), ("known@example.jp", "", "希望しない"))
    planned = imports.plan(ports, MARKETER, data, "今回.csv", OPTIONS)
    digest = planned.as_json()["plan_digest"]
    first, _ = imports.run(ports, MARKETER, data, "今回.csv", OPTIONS, plan_digest=digest)
    leads = services.lead_repository(aws.settings())
    known = lead_of(aws, "known@example.jp")
    before = (leads.events(known.lead_id), leads.consent_evidence(known.lead_id))

    # Then the same list planned again changes nothing: each answer is what the lead holds
    again = imports.plan(ports, MARKETER, data, "今回.csv", OPTIONS)
    assert [(row.action, row.consent) for row in again.plan.rows] == [
        ("unchanged", None), ("unchanged", None)
    ]  # fmt: skip
    # ... and the plan applied once is not applied again: nothing is written twice
    applied = f"this plan was applied already by import {first.import_id}"
    with pytest.raises(ConcurrentUpdate, match=applied):
        imports.run(ports, MARKETER, data, "今回.csv", OPTIONS, plan_digest=digest)
    assert (leads.events(known.lead_id), leads.consent_evidence(known.lead_id)) == before
