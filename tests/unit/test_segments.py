"""The lead filter: saved segments, manual entry (``tsunagu journeys start --segment``),
segment triggers and branch cases."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tsunagu.clock import isoformat
from tsunagu.errors import MissingSegment, ValidationFailed
from tsunagu.leads.email import normalise_email
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import Lead
from tsunagu.qualification.scores import LeadScores
from tsunagu.segments.filter import Condition, NoFacts, Segment
from tsunagu.segments.saved import SavedSegment, checked, parsed_filter
from tsunagu.segments.selection import selected

NOW = datetime(2026, 12, 9, 1, 0, tzinfo=UTC)
NO_IMPORTS = frozenset[str]().__contains__
"""Whether an import exists, where none does."""


def lead(**overrides: Any) -> Lead:
    values: dict[str, Any] = {
        "lead_id": "lead_1",
        "email": "hanako@Sales.Example.JP",
        "fields": {},
        "sources": ["web_form", "seminar"],
        "visitor_ids": set(),
        "stage": "lead",
        "created_at": isoformat(NOW - timedelta(days=400)),
        "updated_at": isoformat(NOW - timedelta(days=10)),
        "last_activity_at": isoformat(NOW - timedelta(days=95)),
        "tags": {"seminar-2026-12", "interest:pricing"},
        "score": 72.5,
        "grade": "B",
        "crm_status": "Working",
    }
    return Lead(**{**values, **overrides})


# ---------------------------------------------------------------- parsing
def test_a_segment_is_parsed_into_its_conditions() -> None:
    segment = Segment.parse(" stage=lead , tag=seminar-2026-12,silent_days>=90,")
    assert segment.conditions == (
        Condition("stage", "=", "lead"),
        Condition("tag", "=", "seminar-2026-12"),
        Condition("silent_days", ">=", "90"),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty segment"),
        (" , ,", "empty segment"),
        ("stage", "is not NAME=VALUE"),
        ("stage:lead", "is not NAME=VALUE"),
        ("colour=red", "unknown filter 'colour'"),
        ("stage>=3", "stage: use = or != (>= and <= are for score and silent_days)"),
        ("silent_days=90", "silent_days: use silent_days>=N or silent_days<=N"),
        ("score=70", "score: use score>=N or score<=N"),
        ("field=x", "field: name the field: field.X"),
        ("consent.newsletter=maybe", "consent.newsletter: use yes / no / none"),
        ("did=form_submitted", "did needs an event and 1 to 3650 days"),
        ("did=form_submitted/0d", "did needs an event and 1 to 3650 days"),
        ("did!=form_submitted/3d", "did: use did=EVENT/Nd"),
        ("in_segment=Not A Name", "in_segment needs a segment's name"),
        ("stage.x=lead", "unknown filter 'stage.x'"),
        ("tag=", "tag needs a value"),
        ("stage == 'mql'", "one operator, e.g. stage=mql (not ==)"),
        ("silent_days>=²", "whole number"),  # isdigit() would take it, and int() refuse it
        ("score>=١٢", "whole number"),
        ("stage='mql'", "without quotes"),
        ('field.company="Example"', "without quotes"),
        ("score>=high", "whole number"),
        ("silent_days>=ninety", "whole number"),
        ("silent_days>=-5", "whole number"),
        ("stage=lead,bogus=1", "unknown filter 'bogus'"),
    ],
)
def test_a_bad_segment_is_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Segment.parse(text)


# ---------------------------------------------------------------- each filter
@pytest.mark.parametrize(
    ("text", "selected"),
    [
        ("stage=lead", True),
        ("stage=mql", False),
        ("tag=seminar-2026-12", True),
        ("tag=seminar-2026-11", False),
        ("source=seminar", True),
        ("source=trade_show", False),
        ("domain=sales.example.jp", True),  # compared case-insensitively
        ("domain=SALES.EXAMPLE.JP", True),
        ("domain=example.jp", False),  # the whole domain, not a suffix
        ("domain=ｓａｌｅｓ．ｅｘａｍｐｌｅ．ｊｐ", True),  # typed with the IME in full width
        ("silent_days>=90", True),
        ("silent_days>=95", True),  # exactly 95 days silent
        ("silent_days>=96", False),
        ("stage=lead,tag=interest:pricing,silent_days>=30", True),
        ("stage=lead,tag=nope", False),  # every condition must hold
        ("score>=70", True),
        ("score>=73", False),
        ("grade=b", True),  # compared case-insensitively
        ("grade=A", False),
        ("crm_status=working", True),
        ("crm_status=won", False),
    ],
)
def test_each_filter_selects(text: str, selected: bool) -> None:
    assert Segment.parse(text).selects(lead(), NOW) is selected


@pytest.mark.parametrize(
    ("typed", "address"),
    [
        ("日本.example.jp", "info@日本.example.jp"),
        ("xn--wgv71a.example.jp", "info@日本.example.jp"),
        ("straße.example.com", "info@straße.example.com"),
    ],
)
def test_an_internationalised_domain_selects_the_leads_whose_address_is_there(
    typed: str, address: str
) -> None:
    # The lead's address as every lead's is stored: its domain in punycode
    at_domain = lead(email=normalise_email(address).address)
    assert Segment.parse(f"domain={typed}").selects(at_domain, NOW)
    assert not Segment.parse(f"domain!={typed}").selects(at_domain, NOW)
    assert not Segment.parse(f"domain={typed}").selects(lead(), NOW)


@pytest.mark.parametrize(
    "typed", ["sales.example.jp.", "@sales.example.jp", "＠ｓａｌｅｓ．ｅｘａｍｐｌｅ．ｊｐ．"]
)
def test_a_domain_written_fully_qualified_or_with_its_at_sign_selects_the_leads_there(
    typed: str,
) -> None:
    # Given a domain as people copy it: from DNS with its final dot, or from an address
    # When it is given as a new filter
    segment = parsed_filter(f"domain={typed}")
    # Then it is the domain the leads' addresses hold, and selects (and excludes) them
    assert str(segment) == "domain=sales.example.jp"
    assert segment.selects(lead(), NOW)
    assert not parsed_filter(f"domain!={typed}").selects(lead(), NOW)


@pytest.mark.parametrize("typed", ["staff.local", "sales.example.jp..", "sales example.jp"])
def test_a_new_filter_with_a_domain_no_address_could_have_is_refused(typed: str) -> None:
    # Given a domain no lead's address can be at (it would select nobody with =, everyone
    # with !=)
    # When a person gives it as a filter, Then it is refused, naming the filter
    with pytest.raises(ValidationFailed) as refused:
        parsed_filter(f"domain!={typed}")
    assert [problem.field for problem in refused.value.errors] == ["filter"]


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("stage!=custmer", "'custmer' is no stage"),  # with != it would select every lead
        ("stage=mq1", "'mq1' is no stage"),
        ("grade=E", "'E' is no grade"),
        ("consent.Newsletter=no", "a topic is lower-case"),
        ("field.Company!=株式会社ライバル", "a field's name is lower-case"),
        # a hyphen for trade_show's underscore: no lead's sources can hold it
        ("source!=trade-show", "'trade-show' is no source"),
        ("source=web", "'web' is no source"),
        # no import's id: a typo (O is no Crockford digit) or a name
        ("import!=imp_01KDTYPO0000000000000000000", "no import's id"),
        ("import=not-an-import-id", "no import's id"),
    ],
)
def test_a_new_filter_naming_a_value_no_lead_can_hold_is_refused(typed: str, message: str) -> None:
    # Given a value outside a closed list (a stage, a grade) or a name nothing writes (a topic,
    # a field): = would select nobody, != every lead
    # When a person gives it as a filter, Then it is refused, saying what is wrong
    with pytest.raises(ValidationFailed) as refused:
        parsed_filter(typed)
    [problem] = refused.value.errors
    assert problem.field == "filter" and message in problem.message
    # And a filter stored before this rule still reads (and selects as it always did)
    assert str(Segment.parse(typed)) == typed


@pytest.mark.parametrize(
    "typed",
    [
        "stage=MQL",
        "stage=ｍｑｌ",
        "grade=b",
        "consent.all=no",
        "field.company=",
        *(f"source!={channel.value}" for channel in Channel),
        "import=imp_01KDAAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_a_new_filter_s_values_are_checked_as_the_filter_compares_them(typed: str) -> None:
    # Case and full-width letters are folded when a filter compares, so they are when checked
    assert str(parsed_filter(typed)) == typed


def test_a_filter_stored_before_domains_were_checked_still_reads() -> None:
    # Given a filter saved when a domain no address could have was still taken
    stored = Segment.parse("domain=staff.local")
    # When it is read back, Then it reads as written and selects no lead
    assert str(stored) == "domain=staff.local"
    assert not stored.selects(lead(), NOW)


def test_a_lead_never_active_is_silent_since_it_was_created() -> None:
    never_active = lead(last_activity_at=None, created_at=isoformat(NOW - timedelta(days=120)))
    assert Segment.parse("silent_days>=120").selects(never_active, NOW)
    assert not Segment.parse("silent_days>=121").selects(never_active, NOW)


def _cli_segment_help() -> str:
    from tsunagu.cli import _parser

    parser = _parser()
    groups = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    journeys = groups.choices["journeys"]
    commands = next(a for a in journeys._actions if isinstance(a, argparse._SubParsersAction))
    start = commands.choices["start"]
    [segment] = [a for a in start._actions if "--segment" in a.option_strings]
    return str(segment.help)


def test_every_filter_the_cli_help_offers_is_accepted() -> None:
    examples = re.findall(r"([a-z_]+(?:=|>=|<=)[\w:./-]+)", _cli_segment_help())
    assert examples, "the help names no example filters"
    refused = []
    for example in examples:
        try:
            Segment.parse(example)
        except ValueError as error:
            refused.append(f"{example}: {error}")
    assert refused == []


def test_a_lead_without_a_score_grade_or_crm_status_has_none_of_them() -> None:
    bare = lead(score=None, grade=None, crm_status=None)
    assert not Segment.parse("score>=1").selects(bare, NOW)
    assert Segment.parse("score>=0").selects(bare, NOW)
    assert not Segment.parse("grade=B").selects(bare, NOW)
    assert not Segment.parse("crm_status=working").selects(bare, NOW)


def test_the_values_a_filter_read_say_why_it_selected() -> None:
    segment = Segment.parse("tag=nope,score>=70,silent_days>=30,grade=B")
    assert segment.values(lead(), NOW) == {
        "tag": ["interest:pricing", "seminar-2026-12"],
        "score": 72.5,
        "silent_days": 95,
        "grade": "B",
    }


def test_a_score_condition_reads_the_score_now() -> None:
    from tsunagu.qualification.scores import Fading
    from tsunagu.qualification.scoring import Award, ScoringModel, ScoringRule

    # Given seminars halve every 14 days, and a lead stored at 72.5 whose seminars were long ago
    seminar = ScoringRule(rule_id="seminar", type="seminar_attended", points=20, half_life_days=14)
    model = ScoringModel(rules=(seminar,))
    long_ago = NOW - timedelta(days=70)
    awards = [Award("seminar", 20, f"evt_{n}", long_ago, "", None, 14) for n in range(4)]

    class Fades(Facts):
        def scores(self, now: datetime) -> LeadScores:
            return LeadScores(model, Fading.of(model), lambda lead_id: awards, now)

    facts = Fades()
    segment = Segment.parse("score>=70,stage=lead")

    # Then the filter reads its score now (80 halved five times: 2.5), not the 72.5 stored
    assert not segment.selects(lead(), NOW, facts)
    assert Segment.parse("score<=10").selects(lead(), NOW, facts)
    assert segment.values(lead(), NOW, facts)["score"] == pytest.approx(2.5)
    # And the stage, the lead's own, is checked first
    assert [c.name for c in segment.conditions] == ["stage", "score"]


# ---------------------------------------------------------------- negation, bands, fields
@pytest.mark.parametrize(
    ("text", "selected"),
    [
        ("stage!=customer", True),
        ("stage!=lead", False),
        ("tag!=seminar-2026-12", False),
        ("tag!=customer", True),
        ("score>=70,score<=80", True),  # a score band
        ("score<=72", False),
        ("silent_days<=100", True),
        ("silent_days<=94", False),
        ("owner=Sales.Owner@example.jp", True),  # without case
        ("owner=other@example.jp", False),
        ("owner!=other@example.jp", True),
        ("field.company=株式会社Ｅｘａｍｐｌｅ", True),  # NFKC: full-width letters are one
        ("field.company!=株式会社Example", False),
        ("field.department=", True),  # blank: the lead has no department
        ("field.company=", False),
    ],
)
def test_negation_bands_owner_and_fields(text: str, selected: bool) -> None:
    fields = {
        "company": FieldValue("株式会社Example", Channel.WEB_FORM, isoformat(NOW)),
        "owner_email": FieldValue("sales.owner@example.jp", Channel.CRM, isoformat(NOW)),
    }
    assert Segment.parse(text).selects(lead(fields=fields), NOW) is selected


class Facts:
    """What a filter reads beyond the lead, as a test states it."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str], datetime] = {}
        self.topics: dict[str, dict[str, str]] = {}
        self.imports: dict[str, frozenset[str]] = {}
        self.saved: dict[str, Segment] = {}
        self.asked: list[str] = []

    def did(self, lead_id: str, event_type: str, since: datetime) -> bool:
        self.asked.append(f"did {event_type}")
        at = self.events.get((lead_id, event_type))
        return at is not None and at >= since

    def consent(self, lead_id: str) -> dict[str, str]:
        self.asked.append("consent")
        return self.topics.get(lead_id, {})

    def imported(self, import_id: str) -> frozenset[str]:
        self.asked.append(f"import {import_id}")
        return self.imports.get(import_id, frozenset())

    def segment(self, name: str) -> Segment | None:
        self.asked.append(f"segment {name}")
        return self.saved.get(name)

    def scores(self, now: datetime) -> LeadScores:
        return LeadScores.stored(now)


def test_events_are_read_for_the_last_n_days() -> None:
    facts = Facts()
    facts.events[("lead_1", "form_submitted")] = NOW - timedelta(days=29, hours=23)
    assert Segment.parse("did=form_submitted/30d").selects(lead(), NOW, facts)
    assert not Segment.parse("did=form_submitted/29d").selects(lead(), NOW, facts)
    assert not Segment.parse("did_not=form_submitted/30d").selects(lead(), NOW, facts)
    assert Segment.parse("did_not=webinar_attended/90d").selects(lead(), NOW, facts)


@pytest.mark.parametrize(
    ("topics", "yes", "no", "none"),
    [
        ({"newsletter": "opted_in"}, True, False, False),
        ({"marketing": "opted_in"}, True, False, False),  # the forms' box covers each topic
        ({"marketing": "opted_in", "newsletter": "opted_out"}, False, True, False),
        ({"newsletter": "opted_in", "all": "opted_out"}, False, True, False),  # unsubscribed
        ({"newsletter": "pending"}, False, False, True),  # not confirmed yet
        ({}, False, False, True),
    ],
)
def test_consent_per_topic_is_read_as_a_send_reads_it(
    topics: dict[str, str], yes: bool, no: bool, none: bool
) -> None:
    facts = Facts()
    facts.topics["lead_1"] = topics
    for value, expected in (("yes", yes), ("no", no), ("none", none)):
        assert Segment.parse(f"consent.newsletter={value}").selects(lead(), NOW, facts) is expected
        assert Segment.parse(f"consent.newsletter!={value}").selects(lead(), NOW, facts) is (
            not expected
        )


def test_import_and_membership_of_another_segment() -> None:
    facts = Facts()
    facts.imports["imp_1"] = frozenset({"lead_1"})
    facts.saved["pricing"] = Segment.parse("tag=interest:pricing")
    facts.saved["big"] = Segment.parse("field.company_size=1000+")
    assert Segment.parse("import=imp_1").selects(lead(), NOW, facts)
    assert not Segment.parse("import=imp_2").selects(lead(), NOW, facts)
    assert Segment.parse("in_segment=pricing").selects(lead(), NOW, facts)
    assert not Segment.parse("in_segment=big").selects(lead(), NOW, facts)
    assert Segment.parse("in_segment!=big").selects(lead(), NOW, facts)


@pytest.mark.parametrize("operator", ["=", "!="])
def test_a_segment_that_is_not_saved_is_an_error_never_a_membership_of_nothing(
    operator: str,
) -> None:
    # in_segment!=deleted read as "not a member" would select every lead
    with pytest.raises(MissingSegment, match="'deleted'"):
        Segment.parse(f"in_segment{operator}deleted").selects(lead(), NOW, Facts())
    # a dry run's synthetic lead, with nothing known beyond itself, is in no segment
    assert Segment.parse(f"in_segment{operator}deleted").selects(lead(), NOW) is (operator == "!=")


def test_a_segment_that_contains_itself_stops_instead_of_recursing() -> None:
    facts = Facts()
    facts.saved["a"] = Segment.parse("in_segment=b")
    facts.saved["b"] = Segment.parse("in_segment=a")
    with pytest.raises(ValueError, match="contain itself"):
        Segment.parse("in_segment=a").selects(lead(), NOW, facts)


def test_the_leads_own_conditions_are_checked_before_any_fact_is_read() -> None:
    facts = Facts()
    segment = Segment.parse("did=form_submitted/30d,consent.newsletter=yes,stage=mql")
    assert str(segment.conditions[0]) == "stage=mql"
    assert not segment.selects(lead(), NOW, facts)
    assert facts.asked == []


def test_a_lead_a_store_gives_twice_is_selected_once() -> None:
    # Given a store whose read gives a lead twice (a page read again)
    class Twice:
        def lead_pages(self, after: Any = None) -> Iterator[tuple[list[Lead], Any]]:
            yield [lead(), lead()], {"lead_id": {"S": "lead_1"}}
            yield [lead(lead_id="lead_other")], None

        def leads_by_id(self, lead_ids: Any) -> list[Lead]:
            return [lead(), lead(), lead(lead_id="lead_other")]

    # When a segment is selected, Then each lead is in it once: counted, entered, exported once
    chosen = selected(Segment.parse("source=web_form"), Twice(), NoImportFacts(), NOW)
    assert [found.lead_id for found in chosen] == ["lead_1", "lead_other"]
    chosen = selected(Segment.parse("import=imp_1"), Twice(), NoImportFacts(), NOW)
    assert [found.lead_id for found in chosen] == ["lead_1", "lead_other"]


class NoImportFacts(NoFacts):
    def imported(self, import_id: str) -> frozenset[str]:
        return frozenset({"lead_1", "lead_other"})


def saved_segment(name: str, filter_text: str) -> SavedSegment:
    return SavedSegment(name, filter_text, "", False, "m@example.com", "2026-12-01T00:00:00Z")


def test_a_change_that_would_nest_the_segments_reading_it_too_deep_is_refused() -> None:
    # e -> d -> c -> b -> a: five deep, the most a segment may be
    chain = [saved_segment("a", "stage=lead")] + [
        saved_segment(name, f"in_segment={below}")
        for name, below in zip("bcde", "abcd", strict=True)
    ]
    checked("a", "stage=lead,tag=vip", "", saved=chain, import_exists=NO_IMPORTS)  # no deeper: fine
    with pytest.raises(ValidationFailed, match="nest deeper than 5: f -> e -> d -> c -> b -> a"):
        checked("f", "in_segment=e", "", saved=chain, import_exists=NO_IMPORTS)
    # a change at the bottom pushes the segments that read it too deep
    changed = [*chain, saved_segment("z", "stage=lead")]
    with pytest.raises(ValidationFailed, match="deeper than 5: e -> d -> c -> b -> a -> z"):
        checked("a", "in_segment=z", "", saved=changed, import_exists=NO_IMPORTS)
    with pytest.raises(ValidationFailed, match="contain itself: a -> e -> d -> c -> b -> a"):
        checked("a", "in_segment=e", "", saved=chain, import_exists=NO_IMPORTS)
    with pytest.raises(ValidationFailed, match="no segment is named 'gone'"):
        checked("x", "in_segment=gone", "", saved=chain, import_exists=NO_IMPORTS)


def test_a_segment_reading_an_import_there_is_no_record_of_is_refused() -> None:
    # Given an import id shaped as one, but of no import (one letter off the receipt's)
    typo = "imp_01KDAAAAAAAAAAAAAAAAAAAAAB"
    # When a segment excluding its leads is saved, Then it is refused, naming the id - with !=
    # it would select every lead
    with pytest.raises(ValidationFailed, match=f"no import has the id '{typo}'"):
        checked("x", f"stage=lead,import!={typo}", "", saved=[], import_exists=NO_IMPORTS)
    # And one that exists is taken
    known = "imp_01KDAAAAAAAAAAAAAAAAAAAAAA"
    segment = checked("x", f"import!={known}", "", saved=[], import_exists={known}.__contains__)
    assert segment.imports_named == {known}


def test_an_import_s_leads_are_kept_only_once_it_has_finished() -> None:
    from types import SimpleNamespace

    from tsunagu.store.segments import StoredFacts, forget_cached_segments

    class Imports:
        """An import whose chunks are still being written."""

        def __init__(self) -> None:
            self.status = "applying"
            self.leads = ["lead_a"]

        def get_import(self, import_id: str) -> Any:
            return SimpleNamespace(status=self.status)

        def rows_of(self, import_id: str) -> Any:
            return [SimpleNamespace(lead_id=lead_id) for lead_id in self.leads]

    forget_cached_segments()
    imports = Imports()

    def imported() -> frozenset[str]:
        # A new StoredFacts per evaluation, as a send or a journey start makes one
        return StoredFacts(None, None, imports).imported("imp_x")  # type: ignore[arg-type]

    assert imported() == {"lead_a"}
    imports.leads.append("lead_b")  # the next chunk, written meanwhile
    assert imported() == {"lead_a", "lead_b"}  # read afresh: the import is still applying
    imports.status = "applied"
    assert imported() == {"lead_a", "lead_b"}
    imports.leads.append("lead_c")  # (cannot happen once applied: shows what is kept)
    assert imported() == {"lead_a", "lead_b"}  # finished: kept for a while, as before
    forget_cached_segments()


def test_an_import_undone_in_another_function_is_seen_by_the_next_send_at_once() -> None:
    from types import SimpleNamespace

    from tsunagu.store.segments import StoredFacts, forget_cached_segments

    class Imports:
        """An applied import that created lead_new and changed lead_known."""

        status = "applied"

        def get_import(self, import_id: str) -> Any:
            return SimpleNamespace(status=self.status)

        def rows_of(self, import_id: str) -> Any:
            return [SimpleNamespace(lead_id="lead_new", outcome="created"),
                    SimpleNamespace(lead_id="lead_known", outcome="updated")]  # fmt: skip

    forget_cached_segments()
    imports = Imports()

    def imported() -> frozenset[str]:
        return StoredFacts(None, None, imports).imported("imp_x")  # type: ignore[arg-type]

    # Given a warm function that has kept the import's leads
    assert imported() == {"lead_new", "lead_known"}
    # When the import is undone elsewhere (the admin API), within the minute it keeps them
    imports.status = "undone"
    # Then the next evaluation selects only what undo can have kept: the lead it created
    assert imported() == {"lead_new"}
    forget_cached_segments()
