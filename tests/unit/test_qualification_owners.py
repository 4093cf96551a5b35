"""Owner assignment: first matching rule wins; round robin is fair and deterministic."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from tsunagu.leads.email import normalise_email
from tsunagu.qualification.owners import (
    ByCountry,
    ByDomain,
    OwnerRules,
    RoundRobin,
    assign_owner,
)

TEAM = ("sato@example.com", "suzuki@example.com", "takahashi@example.com")


class MemoryCounter:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def next_value(self, team: str) -> int:
        value = self.values.get(team, -1) + 1
        self.values[team] = value
        return value


RULES = OwnerRules(
    rules=(
        ByDomain(domains=("bigcorp.example.jp",), owner="key-accounts@example.com"),
        ByCountry(countries=("JP",), owner="japan@example.com"),
        ByCountry(countries=("US", "CA"), owner="americas@example.com"),
        RoundRobin(members=TEAM),
    )
)


def test_round_robin_takes_turns_in_order() -> None:
    counter = MemoryCounter()
    rules = OwnerRules(rules=(RoundRobin(members=TEAM),))
    owners = [assign_owner(f"lead{n}@example.net", {}, rules, counter) for n in range(6)]
    assert owners == [*TEAM, *TEAM]


def test_round_robin_is_fair_over_many_leads() -> None:
    counter = MemoryCounter()
    rules = OwnerRules(rules=(RoundRobin(members=TEAM),))
    owners = Counter(assign_owner(f"l{n}@example.net", {}, rules, counter) for n in range(300))
    assert owners == dict.fromkeys(TEAM, 100)


def test_round_robin_is_deterministic_given_the_counter_value() -> None:
    robin = RoundRobin(members=TEAM)
    assert [robin.owner_at(v) for v in (0, 1, 2, 3, 301)] == [
        TEAM[0],
        TEAM[1],
        TEAM[2],
        TEAM[0],
        TEAM[1],
    ]


def test_leads_a_territory_takes_do_not_move_the_round_robin() -> None:
    # Given two people in the round robin and every other lead in the Japan territory
    counter = MemoryCounter()
    rules = OwnerRules(
        rules=(
            ByCountry(countries=("JP",), owner="japan@example.com"),
            RoundRobin(members=TEAM[:2]),
        )
    )
    # When eight leads arrive
    owners = [
        assign_owner(f"l{n}@example.net", {"country": "JP" if n % 2 else "DE"}, rules, counter)
        for n in range(8)
    ]
    # Then the round-robin leads still alternate between the two
    assert [o for o in owners if o != "japan@example.com"] == [*TEAM[:2], *TEAM[:2]]
    assert counter.values == {"sales": 3}


def test_the_first_matching_rule_wins() -> None:
    counter = MemoryCounter()
    # A Japanese key account: the domain rule comes before the Japan territory
    assert (
        assign_owner("buyer@bigcorp.example.jp", {"country": "JP"}, RULES, counter)
        == "key-accounts@example.com"
    )
    assert assign_owner("a@example.jp", {"country": "JP"}, RULES, counter) == "japan@example.com"
    assert assign_owner("a@example.com", {"country": "CA"}, RULES, counter) == (
        "americas@example.com"
    )
    # Neither domain nor territory: the round robin
    assert assign_owner("a@example.de", {"country": "DE"}, RULES, counter) == TEAM[0]
    assert assign_owner("b@example.de", {}, RULES, counter) == TEAM[1]


def test_a_subdomain_matches_a_lookalike_does_not() -> None:
    counter = MemoryCounter()
    rules = OwnerRules(
        rules=(ByDomain(domains=("@BigCorp.Example.jp",), owner="key-accounts@example.com"),)
    )
    assert (
        assign_owner("x@osaka.bigcorp.example.jp", {}, rules, counter) == "key-accounts@example.com"
    )
    assert assign_owner("x@notbigcorp.example.jp", {}, rules, counter) is None


@pytest.mark.parametrize(
    "typed", ["日本.example.jp", "＠日本.Example.JP.", "xn--wgv71a.example.jp"]
)
def test_a_domain_typed_as_it_is_written_takes_the_leads_stored_in_punycode(typed: str) -> None:
    # Given a key account's internationalised domain, typed as people write it: the leads'
    # addresses hold it in punycode (as a form or an import stores them)
    stored = normalise_email("taro@日本.example.jp").address
    assert stored == "taro@xn--wgv71a.example.jp"
    rules = OwnerRules(rules=(ByDomain(domains=(typed,), owner="key@example.com"),))
    # Then its leads and its subdomains' go to the key account's owner, and no lookalike's
    assert assign_owner(stored, {}, rules, MemoryCounter()) == "key@example.com"
    assert assign_owner("jiro@sub.xn--wgv71a.example.jp", {}, rules, MemoryCounter()) == (
        "key@example.com"
    )
    lookalike = "saburo@xn--wgv71a.example.jp.evil.example"
    assert assign_owner(lookalike, {}, rules, MemoryCounter()) is None
    assert assign_owner("shiro@other.example.jp", {}, rules, MemoryCounter()) is None


def test_countries_compare_folded() -> None:
    counter = MemoryCounter()
    rules = OwnerRules(rules=(ByCountry(countries=("JP", "日本"), owner="japan@example.com"),))
    for country in ("ｊｐ", "jp", "日本"):
        assert assign_owner("a@example.jp", {"country": country}, rules, counter) == (
            "japan@example.com"
        )


def test_no_matching_rule_means_no_owner() -> None:
    counter = MemoryCounter()
    rules = OwnerRules(rules=(ByCountry(countries=("JP",), owner="japan@example.com"),))
    assert assign_owner("a@example.com", {"country": "FR"}, rules, counter) is None
    assert assign_owner("a@example.com", {}, OwnerRules(), counter) is None
    assert counter.values == {}


def test_separate_teams_have_separate_counters() -> None:
    counter = MemoryCounter()
    rules = OwnerRules(
        rules=(
            ByCountry(countries=("JP",), owner="japan@example.com"),
            RoundRobin(team="inside-sales", members=TEAM[:2]),
        )
    )
    other = OwnerRules(rules=(RoundRobin(team="partners", members=TEAM[2:]),))
    assign_owner("a@example.com", {}, rules, counter)
    assign_owner("b@example.com", {}, other, counter)
    assert assign_owner("c@example.com", {}, rules, counter) == TEAM[1]
    assert counter.values == {"inside-sales": 1, "partners": 0}


def test_rules_are_data_with_a_kind() -> None:
    data = {
        "rules": [
            {"kind": "domain", "domains": ["bigcorp.example.jp"], "owner": "ka@example.com"},
            {"kind": "country", "countries": ["JP"], "owner": "ＪＡＰＡＮ@example.com"},
            {"kind": "round_robin", "members": list(TEAM)},
        ]
    }
    rules = OwnerRules.model_validate(data)
    assert [r.kind for r in rules.rules] == ["domain", "country", "round_robin"]
    territory = rules.rules[1]
    assert isinstance(territory, ByCountry)
    assert territory.owner == "JAPAN@example.com"  # full-width folded, case kept as typed
    assert OwnerRules.model_validate(rules.model_dump(mode="json")) == rules


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "round_robin", "members": []},
        {"kind": "round_robin", "members": ["not an address"]},
        {"kind": "country", "countries": ["JP"], "owner": "nobody"},
        {"kind": "domain", "domains": [" "], "owner": "ka@example.com"},
        {"kind": "region", "owner": "ka@example.com"},
    ],
)
def test_bad_owner_rules_are_refused(rule: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        OwnerRules.model_validate({"rules": [rule]})


def test_a_rule_after_a_round_robin_is_refused_as_never_reached() -> None:
    late_domain = {"kind": "domain", "domains": ["example.co.jp"], "owner": "ka@example.com"}
    with pytest.raises(ValidationError, match="rule 2 is never reached"):
        OwnerRules.model_validate(
            {"rules": [{"kind": "round_robin", "members": TEAM}, late_domain]}
        )
    # In the right order (the catch-all last) the same rules are taken
    rules = OwnerRules.model_validate(
        {"rules": [late_domain, {"kind": "round_robin", "members": TEAM}]}
    )
    assert [r.kind for r in rules.rules] == ["domain", "round_robin"]
