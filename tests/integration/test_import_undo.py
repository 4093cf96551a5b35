"""Undoing an import takes back what the import did, never what happened to its leads since
(moto, in-process): a lead it created who has been mailed, unsubscribed and complained is kept,
opt-out, suppression and all; a lead nothing else has touched goes, with the score a rule gave
its import."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.benchmarks.test_aws_requests import recording_aws_calls
from tests.conftest import REGION, AwsStack, load_event, moto_client
from tests.integration.mail_helpers import (
    consent_state,
    feedback,
    parse,
    prepare_mail,
    save_template,
    send,
    sent_messages,
    suppression,
    token_of,
    unsubscribe,
    unsubscribe_url,
    with_token,
)
from tests.support.leads import store_lead
from tsunagu import services
from tsunagu.clock import FixedClock, isoformat, parse_instant
from tsunagu.commands import imports
from tsunagu.commands import journeys as journey_commands
from tsunagu.commands import segments as segment_commands
from tsunagu.commands.access import Actor, Role
from tsunagu.errors import ConcurrentUpdate
from tsunagu.event_kinds import LEAD_IMPORTED
from tsunagu.imports.plan import ConsentColumn, ImportOptions
from tsunagu.journeys.model import Journey
from tsunagu.leads.capture import FORM_SUBMITTED, CaptureWrite
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import Lead, LeadEvent, email_identity
from tsunagu.qualification.config import QualificationConfig
from tsunagu.qualification.pipeline import score_event
from tsunagu.qualification.scoring import ScoringModel, ScoringRule

MARKETER = Actor(user_id="m@example.com", role=Role.MARKETER, email="m@example.com")
OPTIONS = ImportOptions(
    Channel.TRADE_SHOW,
    consent=ConsentColumn("配信希望", frozenset({"希望する"}), frozenset({"希望しない"})),
)


def sheet(*addresses: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["メールアドレス", "氏名", "配信希望"])
    writer.writerows([address, "展示 花子", "希望する"] for address in addresses)
    return out.getvalue().encode("utf-8")


def imported(aws: AwsStack, *addresses: str) -> str:
    record, _ = imports.run(
        services.import_commands(aws.settings()), MARKETER, sheet(*addresses), "展示会.csv", OPTIONS
    )
    return record.import_id


def test_a_lead_who_unsubscribed_and_complained_is_kept_with_its_opt_out(aws: AwsStack) -> None:
    prepare_mail(aws)
    save_template(aws)
    settings = aws.settings()
    import_id = imported(aws, "visitor@example.jp", "quiet@example.jp")
    leads = services.lead_repository(settings)
    visitor = leads.find_lead("email:visitor@example.jp")
    assert visitor is not None

    # The welcome mail goes; the visitor unsubscribes from it, then reports it as spam
    sent = send(aws, visitor.lead_id, template_id="welcome")
    assert sent["status"] == "sent", sent
    link = token_of(unsubscribe_url(parse(sent_messages()[-1].raw_data)))
    assert (
        unsubscribe(aws, with_token(load_event("unsubscribe", "one_click_urlencoded"), link))[
            "statusCode"
        ]
        == 200
    )
    feedback(aws, "complaint", visitor.lead_id, sent["message_id"])
    assert consent_state(aws, visitor.lead_id)["all"] == "opted_out"
    assert suppression(aws, visitor.lead_id) == "complaint"

    done = imports.undo(services.import_commands(settings), MARKETER, import_id)
    assert done.record.undo == {"removed": 1, "restored": 0, "withdrawn": 1, "kept": 1}
    assert done.kept == [
        {"row": 2, "email": "visitor@example.jp",
         "changed_since": [
             "(the lead has had activity since: consent_changed, mail_complained, mail_sent)"
         ]},
    ]  # fmt: skip
    assert leads.find_lead("email:quiet@example.jp") is None
    # The person's word stays with the lead: no later list can mail them as a stranger
    assert leads.get_lead(visitor.lead_id) is not None
    assert consent_state(aws, visitor.lead_id)["all"] == "opted_out"
    assert suppression(aws, visitor.lead_id) == "complaint"


def test_a_lead_scored_for_its_import_alone_is_removed_with_its_score(aws: AwsStack) -> None:
    settings = aws.settings()
    import_id = imported(aws, "scored@example.jp")
    leads = services.lead_repository(settings)
    lead = leads.find_lead("email:scored@example.jp")
    assert lead is not None
    (event,) = [e for e in leads.events(lead.lead_id) if e.type == LEAD_IMPORTED]

    # A scoring rule gives points for being on a list: that is the import's doing too
    rule = ScoringRule(rule_id="listed", description="On a list", type=LEAD_IMPORTED, points=5)
    config = QualificationConfig(scoring=ScoringModel(rules=(rule,), mql_threshold=70))
    scores = services.qualification_repository(settings)
    now = parse_instant(event.occurred_at)
    outcome = score_event(
        lead.lead_id, event.event_id, event.type, event.occurred_at, event.properties,
        config=config, store=scores, now=now,
    )  # fmt: skip
    assert outcome is not None and outcome.after == 5
    assert {e.type for e in leads.events(lead.lead_id)} == {LEAD_IMPORTED, "score_changed"}

    done = imports.undo(services.import_commands(settings), MARKETER, import_id)
    assert done.record.undo == {"removed": 1, "restored": 0, "withdrawn": 0, "kept": 0}
    assert leads.get_lead(lead.lead_id) is None
    assert leads.events(lead.lead_id) == [] and scores.awards_of(lead.lead_id) == []


def test_a_lead_entered_into_a_journey_since_is_kept_with_its_entry(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a list just imported, and a nurture journey started for its new leads, as the
    # README suggests (--segment "import=imp_...,stage=lead"): an entry writes nothing on the
    # lead itself (no event, no updated_at)
    prefix = f"arn:aws:states:{REGION}:123456789012:stateMachine:tsunagu-test-"
    aws.environment["TSUNAGU_STATE_MACHINE_ARN_PREFIX"] = prefix
    for key, value in aws.environment.items():
        monkeypatch.setenv(key, value)
    settings = aws.settings()
    import_id = imported(aws, "listed@example.jp", "quiet@example.jp")
    leads = services.lead_repository(settings)
    listed = leads.find_lead("email:listed@example.jp")
    assert listed is not None
    journeys = services.journey_repository(settings)
    journeys.put_journey(
        Journey(journey_id="nurture", name="nurture", state_machine="nurture", status="active"),
        isoformat(services.clock(settings).now()),
    )
    moto_client("stepfunctions").create_state_machine(
        name="tsunagu-test-nurture",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/journey",
    )
    started = journey_commands.start(
        services.journey_commands(settings), MARKETER, "nurture",
        segment=f"import={import_id},stage=lead",
    )  # fmt: skip
    assert started.entered == 2
    quiet = leads.find_lead("email:quiet@example.jp")
    assert quiet is not None
    journeys.exit_entry(journeys.entries_of(quiet.lead_id)[0], "completed", listed.updated_at)

    # When the import is undone
    done = imports.undo(services.import_commands(settings), MARKETER, import_id)

    # Then both leads, one still in the journey and one through it, are kept with their
    # entries (removed, a re-import would be a new lead the journey's re-entry policy has
    # never seen), and the undo says why
    assert done.record.undo == {"removed": 0, "restored": 0, "withdrawn": 2, "kept": 2}
    assert sorted(row["changed_since"][0] for row in done.kept) == [
        "(entered journey nurture since)", "(entered journey nurture since)"
    ]  # fmt: skip
    for lead in (listed, quiet):
        assert leads.get_lead(lead.lead_id) is not None
        assert [e.journey_id for e in journeys.entries_of(lead.lead_id)] == ["nurture"]


def test_an_undone_import_selects_only_the_leads_it_created_that_undo_kept(
    aws: AwsStack,
) -> None:
    # Given a list that updated a known lead's name and created two leads, one of whom has
    # been mailed since
    prepare_mail(aws)
    save_template(aws)
    settings = aws.settings()
    store_lead(aws, "known@example.jp", name="既存 太郎")
    import_id = imported(aws, "known@example.jp", "mailed@example.jp", "quiet@example.jp")
    leads = services.lead_repository(settings)
    mailed = leads.find_lead("email:mailed@example.jp")
    assert mailed is not None
    assert send(aws, mailed.lead_id, template_id="welcome")["status"] == "sent"

    def selected() -> list[str]:
        # A new evaluation each time, in the same warm process (its cache of the import's leads)
        ports = services.segment_commands(settings)
        tried = segment_commands.try_filter(ports, MARKETER, f"import={import_id}")
        return sorted(lead.email for lead in tried.sample)

    assert selected() == ["known@example.jp", "mailed@example.jp", "quiet@example.jp"]

    # When the import is undone
    done = imports.undo(services.import_commands(settings), MARKETER, import_id)
    assert done.record.undo == {"removed": 1, "restored": 1, "withdrawn": 2, "kept": 1}

    # Then the import selects at once only the lead it created that undo kept: the known
    # lead holds nothing of the list any more (its name is back), the quiet one is gone
    assert selected() == ["mailed@example.jp"]


def test_an_undone_import_takes_its_channel_off_the_leads_it_updated_unless_relied_on(
    aws: AwsStack,
) -> None:
    # Given three known leads: two from an earlier import, one met at a trade show before
    settings = aws.settings()
    store_lead(aws, "known@example.jp", name="既存 太郎")
    store_lead(aws, "again@example.jp", name="既存 次郎")
    store_lead(aws, "met@example.jp", name="既存 三郎", sources=["import", "trade_show"])
    ports = services.import_commands(settings)
    leads = services.lead_repository(settings)

    def sources(address: str) -> list[str]:
        lead = leads.find_lead(f"email:{address}")
        assert lead is not None
        return lead.sources

    def from_trade_shows() -> list[str]:
        tried = segment_commands.try_filter(
            services.segment_commands(settings), MARKETER, "source=trade_show"
        )
        return sorted(lead.email for lead in tried.sample)

    # And a trade-show list that updated all three, then a second one that updated "again"
    import_id = imported(aws, "known@example.jp", "again@example.jp", "met@example.jp")
    titles = "メールアドレス,役職\r\nagain@example.jp,部長\r\n".encode()
    imports.run(ports, MARKETER, titles, "B.csv", ImportOptions(Channel.TRADE_SHOW))
    assert sources("known@example.jp") == ["import", "trade_show"]

    # When the first list is undone
    done = imports.undo(ports, MARKETER, import_id)

    # Then the lead only that list brought from a trade show is no longer selected by
    # source=trade_show; the one the second list also came from keeps it, and so does the
    # lead met at a trade show before either
    assert done.record.undo == {"removed": 0, "restored": 3, "withdrawn": 3, "kept": 0}
    assert sources("known@example.jp") == ["import"]
    assert from_trade_shows() == ["again@example.jp", "met@example.jp"]


def test_an_undo_or_a_second_run_waits_for_a_run_still_applying(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.store.imports import ImportRepository

    clock = FixedClock(datetime(2026, 12, 3, 1, tzinfo=UTC))
    ports = replace(services.import_commands(aws.settings()), clock=clock)
    data = sheet(*(f"visitor{n:02d}@example.jp" for n in range(40)))
    grouped = ImportRepository.apply_rows
    asked: list[str] = []

    # While the run writes its first group, the marketer clicks again, and a colleague undoes it
    def meanwhile(self: ImportRepository, import_id: str, *rest: Any) -> None:
        if not asked:
            with pytest.raises(ConcurrentUpdate, match="being applied already") as again:
                imports.run(ports, MARKETER, data, "展示会.csv", OPTIONS)
            with pytest.raises(ConcurrentUpdate, match="still running") as undone:
                imports.undo(ports, MARKETER, import_id)
            asked.extend([str(again.value), str(undone.value)])
        grouped(self, import_id, *rest)

    monkeypatch.setattr(ImportRepository, "apply_rows", meanwhile)
    record, _ = imports.run(ports, MARKETER, data, "展示会.csv", OPTIONS)
    assert len(asked) == 2 and record.status == "applied"
    assert [r.status for r in imports.list_imports(ports, MARKETER)] == ["applied"]  # one run
    leads = services.lead_repository(aws.settings())
    assert len(leads.consent_evidence(leads.find_lead("email:visitor00@example.jp").lead_id)) == 1

    monkeypatch.setattr(ImportRepository, "apply_rows", grouped)
    assert imports.undo(ports, MARKETER, record.import_id).record.undo["removed"] == 40


def test_a_run_taken_for_dead_and_undone_does_not_write_applied_over_the_undo(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.store.imports import ImportRepository

    clock = FixedClock(datetime(2026, 12, 3, 1, tzinfo=UTC))
    ports = replace(services.import_commands(aws.settings()), clock=clock)
    data = sheet(*(f"visitor{n:02d}@example.jp" for n in range(40)))
    grouped = ImportRepository.apply_rows
    calls: list[str] = []

    # The run stalls past its lease after its first group; undo, asked then, takes it as dead
    def stalled(self: ImportRepository, import_id: str, *rest: Any) -> None:
        grouped(self, import_id, *rest)
        if not calls:
            calls.append(import_id)
            clock.advance(minutes=16)
            assert imports.undo(ports, MARKETER, import_id).record.undo["removed"] == 19

    monkeypatch.setattr(ImportRepository, "apply_rows", stalled)
    with pytest.raises(ConcurrentUpdate, match="undone now, not applying"):
        imports.run(ports, MARKETER, data, "展示会.csv", OPTIONS)
    (record,) = imports.list_imports(ports, MARKETER)
    assert (record.import_id, record.status) == (calls[0], "undone")


def test_a_parked_chunk_counts_what_it_wrote_and_names_only_the_rows_it_did_not(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.commands import import_jobs
    from tsunagu.imports import jobs
    from tsunagu.store.imports import ImportRepository

    monkeypatch.setattr(jobs, "CHUNK_ROWS", 40)
    aws.environment["TSUNAGU_IMPORT_STATE_MACHINE_ARN"] = "arn:aws:states:x:1:stateMachine:i"
    ports = replace(services.import_commands(aws.settings()), start_job=lambda import_id: import_id)
    data = sheet(*(f"visitor{n:02d}@example.jp" for n in range(40)))
    upload_id = import_jobs.upload_file(ports, "展示会.csv", data)
    import_id = import_jobs.start(ports, MARKETER, upload_id, "展示会.csv", OPTIONS).import_id
    assert import_jobs.prepare(ports, import_id) == [0]

    # The chunk's first group is written; then DynamoDB fails it on every retry
    grouped = ImportRepository.apply_rows
    written: list[int] = []

    def failing_after_one(self: ImportRepository, *args: Any) -> None:
        if written:
            raise RuntimeError("throttled")
        grouped(self, *args)
        written.append(1)

    monkeypatch.setattr(ImportRepository, "apply_rows", failing_after_one)
    with pytest.raises(RuntimeError):
        import_jobs.apply_chunk(ports, import_id, 0)
    import_jobs.park_chunk(ports, import_id, 0, "throttled")
    record = import_jobs.finish(ports, import_id)

    _, progress = import_jobs.status(ports, MARKETER, import_id)
    assert progress is not None
    assert (progress.rows_done, progress.rows_parked) == (19, 21)
    assert record.status == "applied_with_parked"
    assert record.detail is not None and "not written: rows 21-41 (21 rows)" in record.detail
    monkeypatch.setattr(ImportRepository, "apply_rows", grouped)
    assert imports.undo(ports, MARKETER, import_id).record.undo["removed"] == 19


def test_undoing_two_imports_of_a_field_puts_back_what_was_there_before_both(
    aws: AwsStack,
) -> None:
    from tests.support.leads import store_lead

    settings = aws.settings()
    store_lead(aws, "known@example.jp", more_fields={"job_title": "主任"})
    ports = services.import_commands(settings)

    def title_list(title: str, name: str) -> str:
        data = f"メールアドレス,役職\r\nknown@example.jp,{title}\r\n".encode()
        record, _ = imports.run(ports, MARKETER, data, name, ImportOptions(Channel.TRADE_SHOW))
        return record.import_id

    first, second = title_list("部長", "A.csv"), title_list("課長", "B.csv")
    leads = services.lead_repository(settings)

    def title() -> tuple[str, str]:
        lead = leads.find_lead("email:known@example.jp")
        assert lead is not None
        return lead.fields["job_title"].value, lead.fields["job_title"].source.value

    assert title() == ("課長", "trade_show")
    # The first list was the wrong one: undone, it leaves the second's value (changed since)
    assert imports.undo(ports, MARKETER, first).kept[0]["changed_since"] == ["job_title"]
    assert title() == ("課長", "trade_show")
    # Then the second is undone too: the title goes back to what it was before either
    assert imports.undo(ports, MARKETER, second).record.undo["restored"] == 1
    assert title() == ("主任", "import")


def card_list(company: str) -> bytes:
    return f"メールアドレス,氏名,会社名\r\nlisted@example.jp,展示 花子,{company}\r\n".encode()


@pytest.mark.parametrize("order", ["second_first", "first_first"])
def test_a_lead_one_list_created_and_another_corrected_goes_once_both_are_undone(
    aws: AwsStack, order: str
) -> None:
    # Given list A, which created a lead, and list B, its corrected version, which updated it
    settings = aws.settings()
    ports = services.import_commands(settings)
    options = ImportOptions(Channel.TRADE_SHOW)
    first, _ = imports.run(ports, MARKETER, card_list("ブース"), "v1.csv", options)
    second, planned = imports.run(ports, MARKETER, card_list("ブース工業"), "v2.csv", options)
    assert planned.plan.counts["update"] == 1
    leads = services.lead_repository(settings)
    lead = leads.find_lead("email:listed@example.jp")
    assert lead is not None

    # When both are undone, in either order
    ids = [second.import_id, first.import_id]
    if order == "first_first":
        ids.reverse()
    done = [imports.undo(ports, MARKETER, import_id) for import_id in ids]

    # Then the lead goes with its events: neither list stands, and nothing else touched it
    assert leads.find_lead("email:listed@example.jp") is None
    assert leads.get_lead(lead.lead_id) is None and leads.events(lead.lead_id) == []
    assert sum(d.record.undo["removed"] for d in done) == 1


def test_a_lead_kept_for_another_list_that_stands_names_that_import(aws: AwsStack) -> None:
    # Given list A, which created a lead, and list B, which only added its department
    ports = services.import_commands(aws.settings())
    options = ImportOptions(Channel.TRADE_SHOW)
    first, _ = imports.run(ports, MARKETER, card_list("ブース"), "v1.csv", options)
    more = "メールアドレス,部署\r\nlisted@example.jp,営業部\r\n".encode()
    second, _ = imports.run(ports, MARKETER, more, "部署.csv", options)

    # When A is undone while B stands
    done = imports.undo(ports, MARKETER, first.import_id)

    # Then the lead is kept, and the report says which import keeps it (not just "activity")
    stands = f"(changed since by import {second.import_id}, which still stands)"
    assert done.kept == [{"row": 2, "email": "listed@example.jp", "changed_since": [stands]}]


@pytest.mark.parametrize("order", ["second_first", "first_first"])
def test_a_lead_a_person_edited_between_two_lists_stays_when_both_are_undone(
    aws: AwsStack, order: str
) -> None:
    from tsunagu.commands import leads as lead_commands
    from tsunagu.leads.updates import LeadUpdate

    settings = aws.settings()
    ports = services.import_commands(settings)
    options = ImportOptions(Channel.TRADE_SHOW)
    first, _ = imports.run(ports, MARKETER, card_list("ブース"), "v1.csv", options)
    # A person tags the lead: the lead's own life, which no undo takes back
    lead_commands.update(
        services.lead_commands(settings), MARKETER, "listed@example.jp",
        LeadUpdate(add_tags=["会った"]),
    )  # fmt: skip
    second, _ = imports.run(ports, MARKETER, card_list("ブース工業"), "v2.csv", options)
    ids = [second.import_id, first.import_id]
    if order == "first_first":
        ids.reverse()
    for import_id in ids:
        imports.undo(ports, MARKETER, import_id)
    lead = services.lead_repository(settings).find_lead("email:listed@example.jp")
    assert lead is not None and lead.tags == {"会った"}


def test_a_lead_a_list_still_standing_updated_stays_when_its_creator_is_undone(
    aws: AwsStack,
) -> None:
    settings = aws.settings()
    ports = services.import_commands(settings)
    options = ImportOptions(Channel.TRADE_SHOW)
    first, _ = imports.run(ports, MARKETER, card_list("ブース"), "v1.csv", options)
    imports.run(ports, MARKETER, card_list("ブース工業"), "v2.csv", options)
    done = imports.undo(ports, MARKETER, first.import_id)
    assert done.kept[0]["changed_since"] == ["company"]
    lead = services.lead_repository(settings).find_lead("email:listed@example.jp")
    assert lead is not None and lead.fields["company"].value == "ブース工業"


def background_ports(aws: AwsStack) -> imports.ImportCommands:
    aws.environment["TSUNAGU_IMPORT_STATE_MACHINE_ARN"] = "arn:aws:states:x:1:stateMachine:i"
    return replace(services.import_commands(aws.settings()), start_job=lambda import_id: import_id)


def test_a_chunk_retried_after_its_rows_were_written_writes_none_again(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.commands import import_jobs
    from tsunagu.store.imports import ImportRepository

    ports = background_ports(aws)
    rows = "\r\n".join(
        ["メールアドレス,氏名,配信希望", "quiet@example.jp,無回答,"]
        + [f"yes{n}@example.jp,希望 {n},希望する" for n in range(3)]
    )
    upload_id = import_jobs.upload_file(ports, "展示会.csv", rows.encode())
    import_id = import_jobs.start(ports, MARKETER, upload_id, "展示会.csv", OPTIONS).import_id
    assert import_jobs.prepare(ports, import_id) == [0]

    # The chunk's rows are written, then counting it fails (a throttle): the step is retried
    counted = ImportRepository.chunk_finished
    failures = [RuntimeError("throttled")]

    def throttled_once(self: ImportRepository, *args: Any, **kwargs: Any) -> bool:
        if failures:
            raise failures.pop()
        return counted(self, *args, **kwargs)

    monkeypatch.setattr(ImportRepository, "chunk_finished", throttled_once)
    with pytest.raises(RuntimeError):
        import_jobs.apply_chunk(ports, import_id, 0)
    assert import_jobs.apply_chunk(ports, import_id, 0) == 4
    import_jobs.finish(ports, import_id)

    store = ports.imports
    assert store is not None
    assert [(r.row, r.outcome) for r in store.rows_of(import_id)] == [
        (2, "created"), (3, "created"), (4, "created"), (5, "created"),
    ]  # fmt: skip
    leads = services.lead_repository(aws.settings())
    yes = leads.find_lead("email:yes0@example.jp")
    assert yes is not None and len(leads.consent_evidence(yes.lead_id)) == 1
    assert imports.undo(ports, MARKETER, import_id).record.undo["removed"] == 4


def test_a_run_that_fails_is_said_failed_and_can_be_undone_at_once(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.store.imports import ImportRepository

    ports = services.import_commands(aws.settings())
    data = sheet(*(f"visitor{n:02d}@example.jp" for n in range(40)))
    grouped = ImportRepository.apply_rows
    calls: list[int] = []

    def second_group_fails(self: ImportRepository, *args: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("DynamoDB is unavailable")
        grouped(self, *args)

    monkeypatch.setattr(ImportRepository, "apply_rows", second_group_fails)
    with pytest.raises(RuntimeError):
        imports.run(ports, MARKETER, data, "展示会.csv", OPTIONS)
    (record,) = imports.list_imports(ports, MARKETER)
    assert (record.status, record.lease_until) == ("failed", None)
    assert record.detail == "stopped part-way: DynamoDB is unavailable"
    monkeypatch.setattr(ImportRepository, "apply_rows", grouped)
    assert imports.undo(ports, MARKETER, record.import_id).record.undo["removed"] == 19
    # The plan is free again: the same list runs
    again, _ = imports.run(ports, MARKETER, data, "展示会.csv", OPTIONS)
    assert again.counts["create"] == 40


def test_a_plan_is_let_go_of_however_its_background_run_ends(aws: AwsStack) -> None:
    from tsunagu.commands import import_jobs

    ports = background_ports(aws)
    data = sheet("one@example.jp", "two@example.jp")

    def queued() -> str:
        upload_id = import_jobs.upload_file(ports, "展示会.csv", data)
        return import_jobs.start(ports, MARKETER, upload_id, "展示会.csv", OPTIONS).import_id

    # Failed after its plan was claimed (queued without a dry run's digest: prepare claims it)
    failing = queued()
    assert import_jobs.prepare(ports, failing) == [0]
    import_jobs.fail(ports, failing, "States.Timeout: prepare")
    # Undone once its chunks were counted, before its finish step ran
    undone = queued()
    assert import_jobs.prepare(ports, undone) == [0]
    import_jobs.apply_chunk(ports, undone, 0)
    imports.undo(ports, MARKETER, undone)
    assert import_jobs.finish(ports, undone).status == "undone"
    # Each time, the same list can be run again at once
    record, _ = imports.run(ports, MARKETER, data, "展示会.csv", OPTIONS)
    assert record.counts["create"] == 2


HISTORY = 300
"""A long-lived lead's events: a year of visits, which an undo has no reason to read."""


def test_undoing_a_list_that_updated_a_long_lived_form_lead_reads_none_of_its_history(
    aws: AwsStack,
) -> None:
    # Given a lead a form created a year ago, with HISTORY page views since, and a trade-show
    # list that corrected its company
    settings = aws.settings()
    created = datetime(2025, 12, 1, 1, tzinfo=UTC)
    at = isoformat(created)
    lead = Lead(
        lead_id="lead_long_lived",
        email="long.lived@example.jp",
        fields={"name": FieldValue("長井 久", Channel.WEB_FORM, at),
                "company": FieldValue("ナガイ", Channel.WEB_FORM, at)},
        sources=[Channel.WEB_FORM.value], visitor_ids=set(), stage="lead",
        created_at=at, updated_at=at,
    )  # fmt: skip
    submitted = LeadEvent("evt_long_lived_form", FORM_SUBMITTED, at, lead.lead_id, None,
                          {"form_id": "demo", "source": Channel.WEB_FORM.value})  # fmt: skip
    leads = services.lead_repository(settings)
    leads.commit_capture(
        CaptureWrite(lead=lead, is_new=True, claim_identities=[email_identity(lead.email)],
                     point_identities=[], event=submitted, consent=None, idempotency_key=None,
                     request_hash="", response={})
    )  # fmt: skip
    for n in range(HISTORY):
        visited = isoformat(created + timedelta(days=1, minutes=n))
        leads.put_event(LeadEvent(f"evt_long_lived_{n:04d}", "page_view", visited, lead.lead_id,
                                  None, {"url": "https://www.example.com/pricing"}))  # fmt: skip
    ports = services.import_commands(settings)
    data = "メールアドレス,会社名\r\nlong.lived@example.jp,長井工業\r\n".encode()
    options = ImportOptions(Channel.TRADE_SHOW)
    record, planned = imports.run(ports, MARKETER, data, "名刺.csv", options)
    assert planned.plan.counts["update"] == 1, planned.plan.counts

    # When the list is undone
    with recording_aws_calls({settings.events_table: "Events"}) as calls:
        done = imports.undo(ports, MARKETER, record.import_id)

    # Then the lead stays, its company as the form gave it and the list's channel taken off
    assert done.record.undo == {"removed": 0, "restored": 1, "withdrawn": 0, "kept": 0}
    kept = leads.get_lead(lead.lead_id)
    assert kept is not None and kept.fields["company"].value == "ナガイ"
    assert kept.sources == [Channel.WEB_FORM.value]
    # ... learnt from the events at its creation and since the list: a handful, not its history
    assert calls.items_read.get("Events", 0) <= 5, calls.items_read
