"""Lead search on the leads table's indexes (moto, in-process): filters, order, pages, the
whole-address lookup, never a Scan, and the reindex of leads saved before the indexes."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import boto3
import pytest

from tests.conftest import AwsStack
from tests.support.admin import event
from tests.support.leads import index_leads, store_lead
from tsunagu import services
from tsunagu.api import admin
from tsunagu.commands import leads
from tsunagu.commands.access import Actor, Role
from tsunagu.errors import ValidationFailed
from tsunagu.leads.search import LeadQuery
from tsunagu.leads.search_words import rank
from tsunagu.leads.updates import LeadUpdate
from tsunagu.settings import Settings

VIEWER = Actor(user_id="u-viewer", role=Role.VIEWER, email="viewer@example.com", via="api")
SATO = "sales.sato@example.com"


GRADE_A = {"job_title": "部長", "company_size": "1000", "industry": "製造業", "country": "JP"}
GRADE_B = {"job_title": "部長", "company_size": "1000"}
"""Fields the default grading rules grade A and B (the grade follows them, from the stream)."""


@pytest.fixture
def people(aws: AwsStack) -> Settings:
    """Seven leads: stages, owners, tags, grades, scores, names and companies."""
    store_lead(
        aws,
        "aoki@example.jp",
        name="青木 花子",
        company="株式会社サンプル",
        stage="mql",
        score=85,
        more_fields=GRADE_A,
        tags={"seminar"},
        owner=SATO,
    )
    store_lead(
        aws,
        "ito@example.jp",
        name="伊藤 次郎",
        company="サンプル商事",
        stage="mql",
        score=72,
        more_fields=GRADE_B,
        owner=SATO,
    )
    store_lead(
        aws,
        "ueda@example.jp",
        name="Ueda Ken",
        company="Example KK",
        stage="lead",
        score=40,
        more_fields=GRADE_B,
        tags={"seminar", "vip"},
    )
    store_lead(aws, "endo@example.jp", name="遠藤 学", stage="lead", score=15)  # grade D
    store_lead(
        aws,
        "oda@example.com",
        name="Oda Mai",
        company="ｻﾝﾌﾟﾙ Lab",
        stage="sql",
        score=120,
        more_fields=GRADE_A,
        owner="sales.suzuki@example.com",
    )
    store_lead(aws, "kato@example.com", name="加藤 陽子", stage="customer", score=-5)
    store_lead(aws, "kimura@example.com", name="木村 翔", stage="lead")  # no score yet
    # Their tags and words, and their grades, from the leads stream; then the grades written
    # reach the lead terms (each term carries its lead's grade)
    while index_leads(aws):
        pass
    return aws.settings()  # fmt: skip


def found(settings: Settings, **asked: Any) -> list[str]:
    page = leads.search(services.lead_commands(settings), VIEWER, LeadQuery(**asked))
    return [lead.email for lead in page.leads]


FILTERS: list[tuple[dict[str, Any], list[str]]] = [
    ({}, ["oda", "aoki", "ito", "ueda", "endo", "kimura", "kato"]),
    ({"stage": "mql"}, ["aoki", "ito"]),
    ({"owner": "SALES.SATO@example.com"}, ["aoki", "ito"]),
    ({"tag": "seminar"}, ["aoki", "ueda"]),
    ({"grade": "B"}, ["ito", "ueda"]),
    ({"score_min": 40, "score_max": 85}, ["aoki", "ito", "ueda"]),
    ({"score_max": 0}, ["kimura", "kato"]),
    ({"q": "サンプル"}, ["oda", "aoki", "ito"]),  # ｻﾝﾌﾟﾙ (half-width) folds to サンプル
    ({"q": "ＵＥＤＡ"}, ["ueda"]),  # full-width, upper case
    ({"q": "example.com"}, ["oda", "kimura", "kato"]),
    ({"q": "sample"}, []),
    ({"stage": "lead", "tag": "vip", "score_min": 10}, ["ueda"]),
    ({"owner": SATO, "stage": "mql", "grade": "A", "q": "青木"}, ["aoki"]),
]
"""(what is asked, who is found in order): one stack for all of them."""


def test_filters_combine_and_the_highest_score_comes_first(people: Settings) -> None:
    got = [[e.split("@")[0] for e in found(people, **asked)] for asked, _ in FILTERS]
    assert got == [expected for _, expected in FILTERS]


def test_an_address_typed_whole_is_looked_up_and_still_filtered(people: Settings) -> None:
    assert found(people, q=" AOKI@example.jp ") == ["aoki@example.jp"]
    assert found(people, q="aoki@example.jp", stage="lead") == []
    assert found(people, q="nobody@example.jp") == []  # no lead: a word search finds none


def test_pages_follow_one_another_without_gaps_or_repeats(people: Settings) -> None:
    ports = services.lead_commands(people)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = leads.search(ports, VIEWER, LeadQuery(limit=2, cursor=cursor))
        seen += [lead.email for lead in page.leads]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [e.split("@")[0] for e in seen] == [
        "oda", "aoki", "ito", "ueda", "endo", "kimura", "kato"
    ]  # fmt: skip

    # A cursor of another search (other index) or a made-up one is refused, not misread
    first = leads.search(ports, VIEWER, LeadQuery(limit=1))
    with pytest.raises(ValidationFailed):
        leads.search(ports, VIEWER, LeadQuery(stage="mql", cursor=first.next_cursor))
    with pytest.raises(ValidationFailed):
        leads.search(ports, VIEWER, LeadQuery(cursor="eyJpIjoiYWxsX2xlYWRzIn0"))


@pytest.fixture
def dynamodb_operations(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every DynamoDB operation made, by name."""
    import botocore.client

    counted: Counter[str] = Counter()
    original = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]

    def counting(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "dynamodb":
            counted[operation] += 1
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return counted


def test_a_search_queries_an_index_and_never_scans(
    people: Settings, dynamodb_operations: Counter[str]
) -> None:
    searches = (
        {},
        {"stage": "lead"},
        {"owner": SATO},
        {"grade": "A"},
        {"tag": "seminar"},
        {"q": "サンプル"},
        {"q": "サンプル", "tag": "vip"},
        {"stage": "lead", "tag": "vip", "score_min": 10},
    )
    for asked in searches:
        found(people, **asked)

    # One Query each; those that read keys first fetch their page's leads in one batch
    assert set(dynamodb_operations) <= {"Query", "BatchGetItem"}, dynamodb_operations
    assert dynamodb_operations["Query"] == len(searches)
    assert dynamodb_operations["BatchGetItem"] <= len(searches) - 3


def reindexed_by_an_admin(aws: AwsStack, people: Settings) -> int:
    """``tsunagu leads reindex``, then the stream's work on what it wrote; how many it wrote."""
    admin_actor = Actor(user_id="local:ops", role=Role.ADMIN, via="cli")
    written = leads.reindex(services.lead_commands(people), admin_actor)
    while index_leads(aws):
        pass
    return written


def test_leads_saved_before_the_indexes_are_found_after_a_reindex(
    aws: AwsStack, people: Settings
) -> None:
    # Given a lead item as an earlier version wrote it (no search attributes)
    client = boto3.client("dynamodb", region_name=people.region)
    client.update_item(
        TableName=people.leads_table,
        Key={"lead_id": {"S": "lead_ueda"}},
        UpdateExpression="REMOVE listing, #o, #r, search_words",
        ExpressionAttributeNames={"#o": "owner", "#r": "rank"},
    )
    index_leads(aws)
    assert "ueda@example.jp" not in found(people)
    assert found(people, tag="vip") == [] and found(people, q="ueda") == []

    # When an admin reindexes (and the stream brings the change to the lead terms)
    written = reindexed_by_an_admin(aws, people)

    # Then it is found again, and only it was written
    assert written == 1
    assert found(people, tag="vip") == ["ueda@example.jp"]
    assert found(people, q="ueda") == ["ueda@example.jp"]


def test_a_lead_scored_by_an_earlier_version_is_ranked_by_its_score_after_a_reindex(
    aws: AwsStack, people: Settings
) -> None:
    # Given endo (15) scored to 95 as an earlier version's scoring wrote it: the score without
    # the rank the indexes sort by
    client = boto3.client("dynamodb", region_name=people.region)
    client.update_item(
        TableName=people.leads_table,
        Key={"lead_id": {"S": "lead_endo"}},
        UpdateExpression="SET score = :score",
        ExpressionAttributeValues={":score": {"N": "95"}},
    )
    index_leads(aws)
    assert "endo@example.jp" not in found(people, score_min=90)

    # When an admin reindexes
    written = reindexed_by_an_admin(aws, people)

    # Then endo is found and sorted by 95, and no other lead was written
    assert written == 1
    assert found(people, score_min=90) == ["oda@example.com", "endo@example.jp"]
    assert found(people, stage="lead", score_min=90) == ["endo@example.jp"]


def lead_terms(settings: Settings) -> set[tuple[str, str]]:
    items = boto3.client("dynamodb", region_name=settings.region).scan(
        TableName=settings.lead_terms_table
    )["Items"]
    return {(item["term"]["S"], item["lead_id"]["S"].removeprefix("lead_")) for item in items}


def test_the_lead_terms_follow_each_change_of_a_lead(aws: AwsStack, people: Settings) -> None:
    ports = services.lead_commands(people)
    admin_actor = Actor(user_id="u-admin", role=Role.ADMIN, email="a@example.com", via="api")
    assert ("tag#seminar", "endo") not in lead_terms(people)

    # A tag added, another removed: found by the new one only, once the stream has run
    leads.update(ports, admin_actor, "endo@example.jp", LeadUpdate(add_tags=["seminar"]))
    leads.update(ports, admin_actor, "ueda@example.jp", LeadUpdate(remove_tags=["seminar"]))
    assert found(people, tag="seminar") == ["aoki@example.jp", "ueda@example.jp"]  # not yet
    index_leads(aws)
    assert found(people, tag="seminar") == ["aoki@example.jp", "endo@example.jp"]
    assert ("tag#seminar", "ueda") not in lead_terms(people)

    # A new score moves the lead within its tag and its words
    client = boto3.client("dynamodb", region_name=people.region)
    client.update_item(
        TableName=people.leads_table,
        Key={"lead_id": {"S": "lead_endo"}},
        UpdateExpression="SET score = :s, #r = :r",
        ExpressionAttributeNames={"#r": "rank"},
        ExpressionAttributeValues={":s": {"N": "99"}, ":r": {"S": rank(99, "lead_endo")}},
    )
    index_leads(aws)
    assert found(people, tag="seminar") == ["endo@example.jp", "aoki@example.jp"]
    assert found(people, q="遠藤") == ["endo@example.jp"]

    # A last-activity mark changes no term, and a redelivered change writes nothing new
    terms = services.lead_terms(people)
    item = client.get_item(TableName=people.leads_table, Key={"lead_id": {"S": "lead_endo"}})
    marked = item["Item"] | {"last_activity_at": {"S": "2026-12-01T00:00:00+00:00"}}
    assert terms.apply(item["Item"], marked) == 0
    assert terms.apply(item["Item"], item["Item"]) == 0

    # A deleted lead leaves no term behind
    client.delete_item(TableName=people.leads_table, Key={"lead_id": {"S": "lead_endo"}})
    index_leads(aws)
    assert not [term for term in lead_terms(people) if term[1] == "endo"]


def test_a_word_finds_the_beginning_of_a_word_and_ranks_by_score(people: Settings) -> None:
    assert found(people, q="サン") == ["oda@example.com", "aoki@example.jp", "ito@example.jp"]
    assert found(people, q="株式会社サンプル") == found(people, q="サンプル")
    assert found(people, q="青木花子") == found(people, q="青木 花子") == ["aoki@example.jp"]
    assert found(people, q="example.jp") == [
        "aoki@example.jp", "ito@example.jp", "ueda@example.jp", "endo@example.jp"
    ]  # fmt: skip
    assert found(people, q="商事") == []  # inside a word: not looked for
    assert found(people, q="example.jp", score_min=40, score_max=80) == [
        "ito@example.jp", "ueda@example.jp"
    ]  # fmt: skip


def test_a_word_matching_too_many_leads_says_so_and_pages_go_on(
    people: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.store import lead_search

    ports = services.lead_commands(people)
    monkeypatch.setattr(lead_search, "WORD_MATCHES", 3)
    page = leads.search(ports, VIEWER, LeadQuery(q="example", limit=2))
    assert page.truncated and len(page.leads) == 2 and page.next_cursor

    monkeypatch.setattr(lead_search, "WORD_MATCHES", 1_000)
    first = leads.search(ports, VIEWER, LeadQuery(q="example", limit=4))
    second = leads.search(ports, VIEWER, LeadQuery(q="example", limit=4, cursor=first.next_cursor))
    assert not first.truncated and second.next_cursor is None
    assert [lead.email.split("@")[0] for lead in first.leads + second.leads] == [
        "oda", "aoki", "ito", "ueda", "endo", "kimura", "kato"
    ]  # fmt: skip
    tag_page = leads.search(ports, VIEWER, LeadQuery(tag="seminar", limit=1))
    with pytest.raises(ValidationFailed):  # a cursor of a tag search is not one of a word's
        leads.search(ports, VIEWER, LeadQuery(q="example", cursor=tag_page.next_cursor))
    with pytest.raises(ValidationFailed):  # nor of another tag's
        leads.search(ports, VIEWER, LeadQuery(tag="vip", cursor=tag_page.next_cursor))


def test_the_admin_route_answers_rows_and_refuses_unknown_filters(people: Settings) -> None:
    ok = admin.handle(
        event("GET", "/admin/leads", role=Role.SALES, query={"stage": "mql", "limit": "1"}),
        people,
    )
    bad = admin.handle(event("GET", "/admin/leads", query={"colour": "red"}), people)
    band = admin.handle(
        event("GET", "/admin/leads", query={"score_min": "50", "score_max": "10"}), people
    )

    body = json.loads(ok["body"])
    assert ok["statusCode"] == 200
    assert [(r["email"], r["company"], r["owner_email"]) for r in body["items"]] == [
        ("aoki@example.jp", "株式会社サンプル", SATO)
    ]
    assert body["next_cursor"]
    assert (bad["statusCode"], band["statusCode"]) == (422, 422)
    assert "colour" in bad["body"] and "score_min" in band["body"]


def test_the_grade_follows_the_fields_it_is_graded_on(aws: AwsStack, people: Settings) -> None:
    assert found(people, grade="B") == ["ito@example.jp", "ueda@example.jp"]
    # When ueda's job title changes (the CRM, an import or a person; here an admin)
    admin_actor = Actor(user_id="u-admin", role=Role.ADMIN, email="a@example.com", via="api")
    change = LeadUpdate(fields={"job_title": "担当"})
    leads.update(services.lead_commands(people), admin_actor, "ueda@example.jp", change)
    while index_leads(aws):
        pass

    # Then the stream regrades it (a large company still, no longer a manager: C), as `leads
    # score` explains it, for every filter on grade
    assert found(people, grade="B") == ["ito@example.jp"]
    assert found(people, grade="C") == ["ueda@example.jp"]
    assert found(people, grade="C", tag="vip") == ["ueda@example.jp"]  # the terms carry it
    ueda = services.lead_repository(people).find_lead("email:ueda@example.jp")
    assert ueda is not None and ueda.grade == "C"


def test_a_reindex_regrades_a_lead_whose_grade_the_rules_no_longer_give(
    aws: AwsStack, people: Settings
) -> None:
    # Given aoki graded A, and grading rules changed since so that no job title counts: the
    # stream regrades a lead only when the lead itself changes
    qualification = services.qualification_repository(people)
    config = qualification.config()
    grading = config.grading.model_copy(update={"job_titles": ()})
    qualification.save_config(config.model_copy(update={"grading": grading}))
    assert found(people, grade="A") == ["oda@example.com", "aoki@example.jp"]

    stored = services.lead_repository(people)
    moved = {
        lead.email for lead in stored.all_leads() if lead.grade != qualification.grade_of(lead)
    }
    assert "aoki@example.jp" in moved

    # When an admin reindexes
    written = reindexed_by_an_admin(aws, people)

    # Then every lead has the grade today's rules give it; only those that moved were written
    assert written == len(moved)
    assert all(lead.grade == qualification.grade_of(lead) for lead in stored.all_leads())
    assert "aoki@example.jp" not in found(people, grade="A")
