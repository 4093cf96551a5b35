"""A journey started for a segment through the admin API (the console's start form) runs in the
background: answered at once with the start, run by enter_segments with the same names a start
in the request would give, its progress readable, and continued by a new invocation when its
time runs short - nobody entered twice, whatever is run again (moto in-process; the
asynchronous invocations queued and run by the test, tests.support.starts)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest

from tests.conftest import REGION, AwsStack, moto_client
from tests.support.admin import event
from tests.support.leads import store_lead
from tests.support.starts import QueuedStarts, queue_starts, time_runs_short
from tsunagu import services
from tsunagu.api import admin
from tsunagu.clock import isoformat, parse_instant
from tsunagu.commands.access import Role
from tsunagu.commands.journeys import ENTRY_BACKOFF_SECONDS
from tsunagu.errors import Throttled
from tsunagu.journeys.lifecycle import execution_name
from tsunagu.journeys.model import Journey
from tsunagu.journeys.start_jobs import KEPT_FOR, MAX_ATTEMPTS, STALE_AFTER
from tsunagu.segments import selection
from tsunagu.store import journeys as journey_store
from tsunagu.store import leads as lead_store
from tsunagu.store import segments as segment_store
from tsunagu.store.tables import bind_tables
from tsunagu_local.lambdas import FunctionError

PREFIX = f"arn:aws:states:{REGION}:123456789012:stateMachine:tsunagu-test-"
PATH = "/admin/journeys/winter/entries"
LEADS = 12
"""In the stage ``lead``; three customers besides, whom ``stage=lead`` does not select."""


def call(
    aws: AwsStack, method: str, path: str, body: Any = None, role: Role = Role.MARKETER
) -> tuple[int, Any]:
    path, _, asked = path.partition("?")
    query = dict(parse_qsl(asked, keep_blank_values=True))
    response = admin.handle(event(method, path, role=role, body=body, query=query), aws.settings())
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def starts(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> QueuedStarts:
    """The journey "winter" with a state machine its entries start on, 12 leads in the stage
    lead and 3 customers, Scan pages of 5 leads (so a start reads several), and the background
    starts queued."""
    queued = queue_starts(aws, monkeypatch)
    aws.environment["TSUNAGU_STATE_MACHINE_ARN_PREFIX"] = PREFIX
    monkeypatch.setenv("TSUNAGU_STATE_MACHINE_ARN_PREFIX", PREFIX)
    monkeypatch.setattr(lead_store, "SCAN_PAGE_LEADS", 5)
    settings = aws.settings()
    at = isoformat(services.clock(settings).now())
    winter = Journey(journey_id="winter", name="Winter", state_machine="winter", status="active")
    services.journey_repository(settings).put_journey(winter, at)
    moto_client("stepfunctions").create_state_machine(
        name="tsunagu-test-winter",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/journey",
    )
    for n in range(LEADS):
        store_lead(aws, f"lead{n:02d}@example.jp")
    for n in range(3):
        store_lead(aws, f"customer{n}@example.com", stage="customer")
    return queued


def executions() -> list[dict[str, Any]]:
    listed = moto_client("stepfunctions").list_executions(stateMachineArn=PREFIX + "winter")
    return list(listed["executions"])


def entered_leads() -> list[str]:
    described = [
        moto_client("stepfunctions").describe_execution(executionArn=e["executionArn"])
        for e in executions()
    ]
    return sorted(json.loads(d["input"])["lead_id"] for d in described)


def progress(aws: AwsStack, start_id: str) -> dict[str, Any]:
    status, answer = call(aws, "GET", f"/admin/journeys/winter/starts/{start_id}")
    assert status == 200, answer
    return dict(answer)


def counts(job: dict[str, Any]) -> tuple[Any, ...]:
    return (job["status"], job["selected"], job["entered"], job["already_in"], job["failed"])


def test_a_segment_start_is_answered_at_once_and_its_job_enters_every_lead_once(
    aws: AwsStack, starts: QueuedStarts
) -> None:
    # When a marketer starts the journey for a segment
    body = {"segment": "stage=lead", "request_key": "winter-2026"}
    status, queued = call(aws, "POST", PATH, body)

    # Then it is answered at once with the start, queued, and nobody has entered yet
    assert status == 202, queued
    assert queued["start_id"].startswith("start_") and counts(queued) == ("queued", 0, 0, 0, 0)
    assert queued["done"] is False and queued["filter"] == "stage=lead"
    assert executions() == [] and len(starts.queued) == 1
    assert progress(aws, queued["start_id"])["status"] == "queued"
    # in one shape wherever the start is shown: its 202, its progress, the journey's starts
    status, listed = call(aws, "GET", "/admin/journeys/winter/starts")
    assert status == 200 and queued["stale"] is False, queued
    assert set(queued) == set(progress(aws, queued["start_id"])) == set(listed["items"][0])

    # When the function runs it
    [answer] = starts.run_all()

    # Then every lead the segment selects entered once, named by the request key, and the job
    # says so; the customers did not
    assert answer["done"] is True
    job = progress(aws, queued["start_id"])
    assert counts(job) == ("done", LEADS, LEADS, 0, 0), job
    assert job["not_entered"] == 0 and job["finished_at"] is not None
    assert entered_leads() == [f"lead_lead{n:02d}" for n in range(LEADS)]
    # named as a start in the request names them: the one names whichever ran it
    names = {execution_name("winter", f"lead_lead{n:02d}", "manual:winter-2026")
             for n in range(LEADS)}  # fmt: skip
    assert {e["name"] for e in executions()} == names

    # And the start is in the audit log, as a start in the request is
    status, audit = call(aws, "GET", "/admin/audit", role=Role.ADMIN)
    started = [e for e in audit["items"] if e["operation"] == "journeys.start"]
    assert status == 200 and queued["start_id"] in started[0]["detail"], started


def test_a_job_run_again_or_the_same_start_again_enters_nobody_twice(
    aws: AwsStack, starts: QueuedStarts
) -> None:
    # Given a start for the segment, run to the end
    body = {"segment": "stage=lead", "request_key": "winter-2026"}
    _, first = call(aws, "POST", PATH, body)
    starts.run_all()

    # When Lambda runs the same invocation again (its retry of an asynchronous event)
    starts.queued.append({"start": {"journey_id": "winter", "start_id": first["start_id"]}})
    again = starts.run_all()

    # Then the job is as it was, and nobody entered twice
    assert counts(again[0]) == ("done", LEADS, LEADS, 0, 0)
    assert len(executions()) == LEADS

    # When the marketer starts the same request again (a double click, a retry)
    _, second = call(aws, "POST", PATH, body)
    starts.run_all()

    # Then every lead is "already in", nothing new started
    assert counts(progress(aws, second["start_id"])) == ("done", LEADS, 0, LEADS, 0)
    assert len(executions()) == LEADS

    # And a new request (another key) is the journey's re-entry rule's to decide: never
    _, third = call(aws, "POST", PATH, body | {"request_key": "spring-2027"})
    starts.run_all()
    job = progress(aws, third["start_id"])
    assert counts(job) == ("done", LEADS, 0, 0, 0) and job["not_entered"] == LEADS, job
    assert set(job["not_entered_by_reason"]) == {"reentry_never"}, job
    assert len(executions()) == LEADS


def test_a_job_whose_time_runs_short_records_where_it_got_to_and_goes_on(
    aws: AwsStack, starts: QueuedStarts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a start for the segment
    _, queued = call(aws, "POST", PATH, {"segment": "stage=lead", "request_key": "k"})
    start_id = queued["start_id"]

    # When its first run's time runs short after 7 of the 15 leads (mid-page: pages of 5)
    with time_runs_short(monkeypatch, after=7):
        first = starts.run_next()

    # Then it stopped where it was, said so, and asked for a new invocation to go on
    assert first["status"] == "running" and first["done"] is False, first
    assert 0 < first["selected"] < LEADS and first["entered"] == first["selected"], first
    assert len(executions()) == first["entered"]
    assert starts.queued == [{"start": {"journey_id": "winter", "start_id": start_id}}]
    assert progress(aws, start_id)["selected"] == first["selected"]

    # When that invocation runs
    starts.run_all()

    # Then the job is done, every lead entered once, none counted twice, in two runs
    job = progress(aws, start_id)
    assert counts(job) == ("done", LEADS, LEADS, 0, 0) and job["runs"] == 2, job
    assert entered_leads() == [f"lead_lead{n:02d}" for n in range(LEADS)]


def test_a_start_that_cannot_be_run_is_refused_with_a_message_and_stores_nothing(
    aws: AwsStack, starts: QueuedStarts
) -> None:
    asks = [
        ({"segment": "no-such-segment"}, 404, "no segment 'no-such-segment'"),
        ({"segment": "stage=lead", "lead": "lead00@example.jp"}, 422, "not both"),
        ({"segment": "stage=lead", "lead": ""}, 422, "is empty"),
        ({"segment": "stage=lead", "lead": "  "}, 422, "is empty"),
        ({"segment": "colour=red"}, 422, "unknown filter"),
        ({"segment": "stage=lead", "input": {"lead_id": "x"}}, 422, "written by the journey"),
    ]
    for body, expected, message in asks:
        status, answer = call(aws, "POST", PATH, body)
        assert status == expected and message in json.dumps(answer), (body, answer)
    status, answer = call(aws, "POST", "/admin/journeys/nowhere/entries", {"segment": "stage=lead"})
    assert status == 404 and "no journey 'nowhere'" in answer["message"], answer
    assert starts.queued == [] and executions() == []
    assert list(bind_tables(aws.settings()).journeys.query("start#winter")) == []

    # And a start that is not there is a 404 saying so
    for start_id in ("start_01KDZZZZZZZZZZZZZZZZZZZZZZ", "x" * 3000, "start_1"):
        status, answer = call(aws, "GET", f"/admin/journeys/winter/starts/{start_id}")
        assert status == 404 and "no start" in answer["message"], answer


def test_a_lead_whose_entry_fails_is_counted_the_rest_enter_and_the_same_start_enters_it(
    aws: AwsStack, starts: QueuedStarts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Step Functions refusing one lead's execution (throttled)
    adapter = type(services.executions(aws.settings()))
    real_start = adapter.start

    def start(self: Any, arn: str, name: str, payload: Any) -> str:
        if payload["lead_id"] == "lead_lead03":
            raise RuntimeError("Rate exceeded")
        return real_start(self, arn, name, payload)

    monkeypatch.setattr(adapter, "start", start)

    # When the journey is started for the segment
    body = {"segment": "stage=lead", "request_key": "k"}
    _, queued = call(aws, "POST", PATH, body)
    starts.run_all()

    # Then that lead is counted as failed, saying why, and every other lead entered
    job = progress(aws, queued["start_id"])
    assert counts(job) == ("done", LEADS, LEADS - 1, 0, 1), job
    assert job["error"] == "lead03@example.jp: Rate exceeded", job
    assert "lead_lead03" not in entered_leads() and len(executions()) == LEADS - 1

    # When Step Functions takes it again and the same start is asked again
    monkeypatch.setattr(adapter, "start", real_start)
    _, again = call(aws, "POST", PATH, body)
    starts.run_all()

    # Then that lead enters (the first start put its claim back), nobody twice
    assert progress(aws, again["start_id"])["status"] == "done"
    assert entered_leads() == [f"lead_lead{n:02d}" for n in range(LEADS)]


def test_a_start_whose_segment_is_deleted_before_it_runs_fails_saying_so_and_enters_nobody(
    aws: AwsStack, starts: QueuedStarts
) -> None:
    # Given a start for every lead not in the saved segment "customers", asked while it exists
    saved = {"name": "customers", "filter": "stage=customer"}
    assert call(aws, "POST", "/admin/segments", saved)[0] == 201
    _, queued = call(aws, "POST", PATH, {"segment": "in_segment!=customers"})
    assert queued["status"] == "queued", queued

    # When the segment is deleted before the job runs
    assert call(aws, "DELETE", "/admin/segments/customers")[0] == 200
    starts.run_all()

    # Then the job fails naming the segment, and nobody entered ("not in a segment that is
    # not there" would have been every lead)
    job = progress(aws, queued["start_id"])
    assert job["status"] == "failed" and "'customers'" in job["error"], job
    assert job["done"] is True and executions() == []


def test_a_start_whose_every_run_fails_is_failed_after_lambdas_last_attempt_saying_why(
    aws: AwsStack, starts: QueuedStarts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a start, and the leads table refusing every read (throttled)
    _, queued = call(aws, "POST", PATH, {"segment": "stage=lead", "request_key": "k"})
    [invocation] = starts.queued

    def throttled(self: Any, after: Any = None) -> Any:
        raise RuntimeError("ProvisionedThroughputExceededException: the leads table")
        yield  # pragma: no cover  (a generator, as lead_pages is)

    monkeypatch.setattr(lead_store.LeadRepository, "lead_pages", throttled)

    # When Lambda runs the invocation and its two retries, each failing
    seen = []
    for _attempt in range(MAX_ATTEMPTS):
        starts.queued[:] = [invocation]
        with pytest.raises(FunctionError):
            starts.run_next()
        seen.append(progress(aws, queued["start_id"]))

    # Then each failure is said on the job, which still runs until the last attempt failed;
    # then it is failed, done with, saying why - the console stops following it
    assert [(job["status"], job["failed_attempts"]) for job in seen] == [
        ("running", 1),
        ("running", 2),
        ("failed", 3),
    ], seen
    job = seen[-1]
    assert job["done"] is True and job["finished_at"] is not None, job
    assert "run 3 of 3 failed" in job["error"] and "leads table" in job["error"], job
    assert executions() == []


def test_a_start_not_written_for_a_long_time_reads_as_stale(
    aws: AwsStack, starts: QueuedStarts
) -> None:
    # Given a start that began running and whose function then died without a word (timed out)
    _, queued = call(aws, "POST", PATH, {"segment": "stage=lead"})
    settings = aws.settings()
    repo = services.journey_repository(settings)
    job = repo.start_job("winter", queued["start_id"])
    assert job is not None and progress(aws, queued["start_id"])["stale"] is False
    long_ago = services.clock(settings).now() - STALE_AFTER - timedelta(minutes=1)
    repo.save_start_job(replace(job, status="running", updated_at=isoformat(long_ago)))

    # Then its progress says it is stale: not done, but nothing runs it any more
    answer = progress(aws, queued["start_id"])
    assert answer["status"] == "running" and answer["stale"] is True, answer


@pytest.mark.parametrize(
    "change",
    [
        "the import, still applying, records a lead behind where the start got to",
        "an undo takes a lead the start did off the import",
    ],
)
def test_an_import_start_continued_after_its_leads_changed_misses_nobody_and_counts_nobody_twice(
    aws: AwsStack, starts: QueuedStarts, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    # Given a start for an import's leads, read 4 at a time
    monkeypatch.setattr(selection, "IDS_PER_PAGE", 4)
    rows = {f"lead_lead{n:02d}" for n in (0, 2, 3, 4, 5, 6, 7)}
    monkeypatch.setattr(segment_store, "_imported_leads", lambda _repo, _import: frozenset(rows))
    monkeypatch.setattr(services, "_import_exists", lambda _settings: lambda _import: True)
    body = {"segment": "import=imp_01KDAAAAAAAAAAAAAAAAAAAAAA", "request_key": "k"}
    status, queued = call(aws, "POST", PATH, body)
    assert status == 202, queued

    # When its first run's time runs short after its first page (lead00, 02, 03, 04): asked
    # once for its lease, then before each lead
    with time_runs_short(monkeypatch, after=1 + 4):
        starts.run_next()
    assert entered_leads() == ["lead_lead00", "lead_lead02", "lead_lead03", "lead_lead04"]

    # And the import's leads change before the next run reads them again
    if "records" in change:
        rows.add("lead_lead01")
    else:
        rows.discard("lead_lead00")
    starts.run_all()

    # Then the next run went on after the last lead done, whatever moved behind it: each lead
    # of the import read once (05, 06, 07 too), none counted twice
    job = progress(aws, queued["start_id"])
    expected = [f"lead_lead{n:02d}" for n in (0, 2, 3, 4, 5, 6, 7)]
    assert entered_leads() == expected, change
    assert counts(job) == ("done", 7, 7, 0, 0), (change, job)


def refusing(
    monkeypatch: pytest.MonkeyPatch, aws: AwsStack, lead_id: str, times: int
) -> list[float]:
    """Step Functions throttling ``lead_id``'s execution ``times`` times (after the SDK's own
    retries), and the run's back-off waits, counted instead of slept."""
    adapter = type(services.executions(aws.settings()))
    real_start = adapter.start
    refused = [0]

    def start(self: Any, arn: str, name: str, payload: Any) -> str:
        if payload["lead_id"] == lead_id and refused[0] < times:
            refused[0] += 1
            raise Throttled("Step Functions: ThrottlingException: Rate exceeded")
        return real_start(self, arn, name, payload)

    monkeypatch.setattr(adapter, "start", start)
    slept: list[float] = []
    real_ports = services.journey_commands
    monkeypatch.setattr(
        services, "journey_commands", lambda s: replace(real_ports(s), sleep=slept.append)
    )
    return slept


def test_an_entry_throttled_is_asked_again_after_a_wait_and_enters(
    aws: AwsStack, starts: QueuedStarts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Step Functions throttling one lead's execution twice
    slept = refusing(monkeypatch, aws, "lead_lead03", times=2)

    # When the journey is started for the segment
    _, queued = call(aws, "POST", PATH, {"segment": "stage=lead"})
    starts.run_all()

    # Then the run waited, longer each time, asked again, and every lead entered
    assert slept == list(ENTRY_BACKOFF_SECONDS[:2])
    assert counts(progress(aws, queued["start_id"])) == ("done", LEADS, LEADS, 0, 0)
    assert entered_leads() == [f"lead_lead{n:02d}" for n in range(LEADS)]


def test_a_lead_still_throttled_is_failed_and_a_later_start_of_another_key_enters_it(
    aws: AwsStack, starts: QueuedStarts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Step Functions throttling one lead's execution through every wait
    slept = refusing(monkeypatch, aws, "lead_lead03", times=len(ENTRY_BACKOFF_SECONDS) + 1)

    # When the console starts the journey for the segment (the day's request key)
    _, first = call(aws, "POST", PATH, {"segment": "stage=lead", "request_key": "2026-12-06"})
    starts.run_all()

    # Then the lead is counted failed, after every wait
    assert slept == list(ENTRY_BACKOFF_SECONDS)
    job = progress(aws, first["start_id"])
    assert counts(job) == ("done", LEADS, LEADS - 1, 0, 1) and "Rate exceeded" in job["error"]

    # When the segment is started again the next day (another key; re-entry never)
    _, later = call(aws, "POST", PATH, {"segment": "stage=lead", "request_key": "2026-12-07"})
    starts.run_all()

    # Then that lead enters - the failed entry left no claim to keep it out - and only it
    job = progress(aws, later["start_id"])
    assert job["entered"] == 1 and job["not_entered_by_reason"] == {"reentry_never": LEADS - 1}
    assert entered_leads() == [f"lead_lead{n:02d}" for n in range(LEADS)]


def test_step_functions_throttling_reads_as_throttled(aws: AwsStack) -> None:
    from botocore.exceptions import ClientError

    class Throttling:
        def start_execution(self, **_asked: Any) -> Any:
            error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
            raise ClientError(error, "StartExecution")  # type: ignore[arg-type]

    adapter = services.executions(aws.settings())
    adapter._client = Throttling()
    with pytest.raises(Throttled, match="Rate exceeded"):
        adapter.start(PREFIX + "winter", "name", {})


def test_a_journey_archived_while_its_start_runs_takes_nobody_after_the_next_checkpoint(
    aws: AwsStack, starts: QueuedStarts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a start for the segment, and the marketer archiving the journey after its third
    # entry (the run reads the journey again where it stores its progress: each page of 5)
    _, queued = call(aws, "POST", PATH, {"segment": "stage=lead", "request_key": "k"})
    adapter = type(services.executions(aws.settings()))
    real_start = adapter.start
    started = [0]

    def start(self: Any, arn: str, name: str, payload: Any) -> str:
        started[0] += 1
        answer = real_start(self, arn, name, payload)
        if started[0] == 3:
            status, archived = call(
                aws, "PUT", "/admin/journeys/winter/status", {"status": "archived"}
            )
            assert status == 200, archived
        return answer

    monkeypatch.setattr(adapter, "start", start)

    # When the job runs
    starts.run_all()

    # Then it stopped at the end of that page, failed, saying why and what it did
    job = progress(aws, queued["start_id"])
    assert job["status"] == "failed" and "winter is archived" in job["error"], job
    assert 3 <= job["entered"] < LEADS and len(executions()) == job["entered"], job


def test_a_lead_whose_claim_outlived_its_failed_start_is_counted_entered_when_it_enters(
    aws: AwsStack, starts: QueuedStarts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a start whose entry of one lead failed, and whose claim of it stayed (the release
    # refused too, as a run that dies between the claim and the start leaves it)
    adapter = type(services.executions(aws.settings()))
    real_start = adapter.start

    def start(self: Any, arn: str, name: str, payload: Any) -> Any:
        if payload["lead_id"] == "lead_lead03":
            raise RuntimeError("Rate exceeded")
        return real_start(self, arn, name, payload)

    def release_refused(*_args: Any) -> None:
        raise RuntimeError("ProvisionedThroughputExceededException")

    with monkeypatch.context() as patch:
        patch.setattr(adapter, "start", start)
        patch.setattr(journey_store.JourneyRepository, "release_entry", release_refused)
        body = {"segment": "stage=lead", "request_key": "k"}
        _, first = call(aws, "POST", PATH, body)
        starts.run_all()
    assert counts(progress(aws, first["start_id"])) == ("done", LEADS, LEADS - 1, 0, 1)

    # When the same start is asked again
    _, again = call(aws, "POST", PATH, body)
    starts.run_all()

    # Then that lead is entered now - its execution had never started - and the others,
    # whose executions had, are already in
    job = progress(aws, again["start_id"])
    assert counts(job) == ("done", LEADS, 1, LEADS - 1, 0), job
    assert entered_leads() == [f"lead_lead{n:02d}" for n in range(LEADS)]


def test_a_run_retried_after_its_last_page_counts_each_lead_once(
    aws: AwsStack, starts: QueuedStarts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a start whose run, at the end of its last page, cannot store that it is done
    _, queued = call(aws, "POST", PATH, {"segment": "stage=lead", "request_key": "k"})
    [invocation] = starts.queued
    real_save = journey_store.JourneyRepository.save_start_job
    refused = []

    def save(self: Any, job: Any) -> Any:
        if job.status == "done" and not refused:
            refused.append(job)
            raise RuntimeError("ProvisionedThroughputExceededException")
        return real_save(self, job)

    monkeypatch.setattr(journey_store.JourneyRepository, "save_start_job", save)
    with pytest.raises(FunctionError):
        starts.run_next()

    # When Lambda runs the invocation again
    starts.queued[:] = [invocation]
    starts.run_all()

    # Then it went on from its last checkpoint, not from the first lead: each lead counted
    # once, entered by this start (those its first run entered, named again, are its own)
    job = progress(aws, queued["start_id"])
    assert counts(job) == ("done", LEADS, LEADS, 0, 0) and job["runs"] == 2, job
    assert len(executions()) == LEADS


def test_a_duplicate_delivery_running_alongside_backs_off_and_the_counts_stay_whole(
    aws: AwsStack, starts: QueuedStarts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a start, and Lambda delivering its invocation a second time while the first runs
    # (asynchronous invocation is at least once): the second runs after the first's 3rd entry
    _, queued = call(aws, "POST", PATH, {"segment": "stage=lead", "request_key": "k"})
    adapter = type(services.executions(aws.settings()))
    real_start = adapter.start
    started, duplicates = [0], []

    def start(self: Any, arn: str, name: str, payload: Any) -> Any:
        started[0] += 1
        answer = real_start(self, arn, name, payload)
        if started[0] == 3:
            duplicates.append(starts.run(delivered))
        return answer

    [delivered] = starts.queued
    monkeypatch.setattr(adapter, "start", start)

    # When the first delivery runs
    starts.run_all()

    # Then the duplicate backed off before entering anyone, and the first finished the job:
    # every lead entered once, and counted so
    [duplicate] = duplicates
    assert duplicate["status"] == "running" and duplicate["done"] is False, duplicate
    job = progress(aws, queued["start_id"])
    assert counts(job) == ("done", LEADS, LEADS, 0, 0) and job["runs"] == 1, job
    assert len(executions()) == LEADS


def test_a_run_finding_the_lease_of_a_run_whose_time_is_out_takes_it(
    aws: AwsStack, starts: QueuedStarts
) -> None:
    # Given a start whose run took the lease and was killed (its function timed out)
    _, queued = call(aws, "POST", PATH, {"segment": "stage=lead"})
    settings = aws.settings()
    repo = services.journey_repository(settings)
    job = repo.start_job("winter", queued["start_id"])
    assert job is not None
    over = services.clock(settings).now() - timedelta(seconds=1)
    repo.save_start_job(
        replace(job, status="running", lease="run_gone", leased_until=isoformat(over))
    )

    # When Lambda runs the invocation again
    starts.run_all()

    # Then it takes the job over and finishes it
    assert counts(progress(aws, queued["start_id"])) == ("done", LEADS, LEADS, 0, 0)


def test_a_journeys_recent_starts_are_listed_newest_first_with_their_progress_a_page_at_a_time(
    aws: AwsStack, starts: QueuedStarts
) -> None:
    # Given three starts of the journey, the first run to the end
    asked = []
    for key in ("one", "two", "three"):
        _, queued = call(aws, "POST", PATH, {"segment": "stage=lead", "request_key": key})
        asked.append(queued["start_id"])
        if key == "one":
            starts.run_all()

    # When the console lists them two at a time (a viewer may)
    status, first = call(aws, "GET", "/admin/journeys/winter/starts?limit=2", role=Role.VIEWER)
    assert status == 200, first

    # Then the newest come first, each with its progress, and the page after holds the rest
    assert [job["start_id"] for job in first["items"]] == asked[:0:-1]
    assert [job["status"] for job in first["items"]] == ["queued", "queued"]
    assert first["next_before"] == asked[1] and first["items"][0]["stale"] is False
    status, rest = call(aws, "GET", f"/admin/journeys/winter/starts?before={asked[1]}")
    assert status == 200 and rest["next_before"] is None, rest
    assert [(j["start_id"], j["status"]) for j in rest["items"]] == [(asked[0], "done")]

    # And what names nothing listable is said so
    for path, expected in (
        ("/admin/journeys/nowhere/starts", 404),
        ("/admin/journeys/winter/starts?before=", 422),
        ("/admin/journeys/winter/starts?before=x", 422),
        ("/admin/journeys/winter/starts?limit=0", 422),
    ):
        status, answer = call(aws, "GET", path)
        assert status == expected, (path, answer)


class SetClock:
    def __init__(self, at: str) -> None:
        self.at = at

    def now(self) -> datetime:
        return parse_instant(self.at)


def test_a_start_without_a_key_is_the_same_request_all_through_the_teams_day(
    aws: AwsStack, starts: QueuedStarts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the team's time zone Asia/Tokyo, and the runtime's clock at 08:30 there (23:30 UTC
    # the day before)
    clock = SetClock("2026-12-06T23:30:00Z")
    monkeypatch.setattr(services, "clock", lambda settings: clock)
    body = {"segment": "stage=lead"}
    _, first = call(aws, "POST", PATH, body)
    starts.run_all()
    assert progress(aws, first["start_id"])["request_key"] == "2026-12-07"

    # When the marketer starts it again at 10:00 the same day (01:00 UTC, another UTC date)
    clock.at = "2026-12-07T01:00:00Z"
    _, second = call(aws, "POST", PATH, body)
    starts.run_all()

    # Then it is the same request: everybody is already in, nothing new started
    assert counts(progress(aws, second["start_id"])) == ("done", LEADS, 0, LEADS, 0)

    # And after midnight there (15:30 UTC, still the same UTC date) it is a new request, for the
    # journey's re-entry rule to decide
    clock.at = "2026-12-07T15:30:00Z"
    _, third = call(aws, "POST", PATH, body)
    starts.run_all()
    job = progress(aws, third["start_id"])
    assert job["request_key"] == "2026-12-08"
    assert set(job["not_entered_by_reason"]) == {"reentry_never"}, job
    assert len(executions()) == LEADS


def stored_expiry(aws: AwsStack, start_id: str) -> datetime:
    """The job's ``expires_at`` as stored, the table's TTL attribute."""
    item = bind_tables(aws.settings()).journeys.get("start#winter", start_id)
    assert item.expires_at is not None
    return datetime.fromtimestamp(int(item.expires_at), UTC)


def test_a_start_expires_30_days_after_it_finished_and_never_while_it_runs(
    aws: AwsStack, starts: QueuedStarts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a start asked on 1 December, whose first run's time runs short mid-way
    clock = SetClock("2026-12-01T09:00:00Z")
    monkeypatch.setattr(services, "clock", lambda settings: clock)
    _, queued = call(aws, "POST", PATH, {"segment": "stage=lead", "request_key": "k"})
    start_id = queued["start_id"]
    assert stored_expiry(aws, start_id) == parse_instant(queued["at"]) + KEPT_FOR
    clock.at = "2026-12-01T09:05:00Z"
    with time_runs_short(monkeypatch, after=7):
        first = starts.run_next()
    assert first["status"] == "running", first

    # Then while it runs, each write moves its expiry on: 30 days after the last one
    assert stored_expiry(aws, start_id) == parse_instant(first["updated_at"]) + KEPT_FOR

    # When it goes on 20 days later (a run far slower than any, to tell the two instants apart)
    clock.at = "2026-12-21T09:00:00Z"
    starts.run_all()

    # Then it expires 30 days after it finished, not after it was asked or first ran
    job = progress(aws, start_id)
    assert job["status"] == "done" and job["finished_at"].startswith("2026-12-21"), job
    finished = parse_instant(job["finished_at"])
    assert stored_expiry(aws, start_id) == finished + KEPT_FOR
    # ... readable, and listed, until then
    clock.at = isoformat(finished + KEPT_FOR - timedelta(seconds=1))
    assert progress(aws, start_id)["status"] == "done"
    assert [j["start_id"] for j in call(aws, "GET", "/admin/journeys/winter/starts")[1]["items"]]

    # When it is past its time and another start was asked since, while DynamoDB (deleting
    # lazily - and moto never) still holds its item
    _, later = call(aws, "POST", PATH, {"segment": "stage=lead", "request_key": "later"})
    clock.at = isoformat(finished + KEPT_FOR)
    assert bind_tables(aws.settings()).journeys.get("start#winter", start_id) is not None

    # Then it is read as gone: no progress, and not listed (nor counted as one more page)
    status, answer = call(aws, "GET", f"/admin/journeys/winter/starts/{start_id}")
    assert status == 404, answer
    status, listed = call(aws, "GET", "/admin/journeys/winter/starts?limit=1")
    assert status == 200, listed
    assert [j["start_id"] for j in listed["items"]] == [later["start_id"]]
    assert listed["next_before"] is None, listed
