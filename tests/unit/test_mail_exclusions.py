"""Global exclusions (除外管理): whatever addresses and domains are on the lists and whatever the
leads consented to, a marketing mail never reaches an excluded address (its own entry, its
domain's or a parent domain's), and is recorded as skipped with ``excluded``; everything else is
decided exactly as without exclusions, and transactional mail is not affected.

Hypothesis draws the lists, the leads' addresses and their consent; ``MemoryMailStore`` and
``send_mail`` are the real send path's domain code."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsunagu.errors import ValidationFailed
from tsunagu.leads.email import normalise_email
from tsunagu.mail.exclusions import MAX_LIST_BYTES, Exclusion, ExclusionList, exclusion_entry
from tsunagu.mail.send import SendRequest, send_mail

from .mail_fakes import (
    MemoryMailStore,
    MemoryMessenger,
    make_clock,
    make_lead,
    make_policy,
    make_signer,
    make_template,
)

DOMAINS = ("example.com", "example.co.jp", "mail.example.co.jp", "example.jp")
LOCAL_PARTS = ("aiko", "ben", "chie", "info")
AT = "2026-12-04T00:00:00+00:00"

address = st.builds(lambda local, domain: f"{local}@{domain}", st.sampled_from(LOCAL_PARTS),
                    st.sampled_from(DOMAINS))  # fmt: skip
entry = st.one_of(
    address.map(lambda a: exclusion_entry(a, "competitors", None, "m@example.com", AT)),
    st.sampled_from(DOMAINS).map(lambda d: exclusion_entry(d, "staff", None, "m@example.com", AT)),
)


def truly_excluded(email: str, entries: list[Exclusion]) -> bool:
    """Written down without ExclusionList: the address itself, or its domain or a parent."""
    domain = email.rsplit("@", 1)[1]
    return any(
        e.value == email
        if e.kind == "address"
        else (domain == e.value or domain.endswith("." + e.value))
        for e in entries
    )


@settings(max_examples=300, deadline=None)
@given(
    entries=st.lists(entry, max_size=6),
    email=address,
    consented=st.booleans(),
    kind=st.sampled_from(("marketing", "transactional")),
)
def test_no_marketing_mail_reaches_an_excluded_address(
    entries: list[Exclusion], email: str, consented: bool, kind: str
) -> None:
    store, messenger = MemoryMailStore(), MemoryMessenger()
    listed = ExclusionList()
    for one in entries:
        listed = listed.with_entry(one)
    store.exclusion_list = listed
    store.add_lead(make_lead("lead_1", email))
    if consented:
        store.set_consent("lead_1", "marketing", "opted_in")
    store.add_template(make_template(kind=kind))
    result = send_mail(
        SendRequest(lead_id="lead_1", template_id="welcome", idempotency_key="k1"),
        store=store,
        messenger=messenger,
        signer=make_signer(),
        clock=make_clock(),
        policy=make_policy(),
    )
    excluded = truly_excluded(email, entries)
    if kind == "transactional":
        assert result.status == "sent"  # a receipt the person asked for still goes
    elif not consented:
        assert (result.status, result.reason) == ("skipped", "no_consent")
    elif excluded:
        assert (result.status, result.reason) == ("skipped", "excluded")
        [skipped] = store.events_of("mail_skipped")
        assert skipped.properties["excluded_by"]
    else:
        assert result.status == "sent"
    if kind == "marketing" and excluded:
        assert messenger.sent == []  # nothing was handed to SES


def test_an_entry_is_an_address_or_a_domain_as_a_person_types_it() -> None:
    by = "m@example.com"
    assert exclusion_entry("＠Example.CO.JP ", "staff", None, by, AT).value == "example.co.jp"
    assert exclusion_entry("Rival@Example.com", "competitors", None, by, AT).kind == "address"
    assert exclusion_entry("例え.jp", "competitors", None, by, AT).value == "xn--r8jz45g.jp"
    # As DNS writes a domain, with its final dot - as segments and owner rules take it too
    assert exclusion_entry("rival.example.jp.", "competitors", None, by, AT).value == (
        "rival.example.jp"
    )


@pytest.mark.parametrize(
    ("typed", "lead_address"),
    [
        ("straße.example.com", "info@straße.example.com"),
        ("info@straße.example.com", "info@straße.example.com"),
        ("ελλάς.example.com", "info@ελλάς.example.com"),
        ("日本.example.jp", "rival@日本.example.jp"),
        ("Rival@日本.Example.JP", "rival@日本.example.jp"),
        ("日本.example.jp", "rival@sales.日本.example.jp"),
    ],
)
def test_an_internationalised_entry_excludes_the_lead_and_is_taken_off_as_it_was_typed(
    typed: str, lead_address: str
) -> None:
    # Given an entry added as a person typed it, and a lead whose address was stored as every
    # lead's is
    entry = exclusion_entry(typed, "competitors", None, "m@example.com", AT)
    listed = ExclusionList().with_entry(entry)
    # Then the lead is excluded
    assert listed.excluding(normalise_email(lead_address).address) == entry
    # And the entry is taken off by the same text, or as it is listed
    for named in (typed, entry.value):
        remaining, gone = listed.without(named)
        assert (remaining.entries, gone) == ((), entry)


def test_an_entry_stored_by_an_earlier_rule_can_be_taken_off_as_it_is_listed() -> None:
    # A domain no address may have now (a special-use name), which an earlier Tsunagu took
    earlier = Exclusion("staff.local", "domain", "staff", None, "m@example.com", AT)
    remaining, gone = ExclusionList((earlier,), 1).without("Staff.Local")
    assert (remaining.entries, gone) == ((), earlier)


def test_taking_off_straße_leaves_strasse_which_is_another_domain() -> None:
    strasse = exclusion_entry("strasse.example.com", "competitors", None, "m@example.com", AT)
    strasse_eszett = exclusion_entry("straße.example.com", "competitors", None, "m", AT)
    listed = ExclusionList().with_entry(strasse).with_entry(strasse_eszett)
    remaining, gone = listed.without("straße.example.com")
    assert (remaining.entries, gone) == ((strasse,), strasse_eszett)


@pytest.mark.parametrize(
    ("value", "list_name", "field"),
    [("not a domain", "staff", "value"), ("a@", "staff", "value"),
     ("example.com", "Staff", "list"), ("localhost", "staff", "value")],
)  # fmt: skip
def test_what_is_neither_is_refused_naming_the_field(
    value: str, list_name: str, field: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        exclusion_entry(value, list_name, None, "m@example.com", AT)
    assert [e.field for e in refused.value.errors] == [field]


def test_a_note_is_at_most_500_characters_whoever_adds_it() -> None:
    # The admin API's model says 500; the CLI's --note reaches the same rule
    note = "競合他社のため配信停止。" * 41 + "12345678"
    assert len(exclusion_entry("rival.example.jp", "competitors", note, "m", AT).note or "") == 500
    with pytest.raises(ValidationFailed) as refused:
        exclusion_entry("rival.example.jp", "competitors", note + "。", "m", AT)
    assert [e.field for e in refused.value.errors] == ["note"]
    assert "at most 500 characters (this one has 501)" in refused.value.message


def test_a_list_that_would_not_fit_its_stored_item_is_refused_saying_what_to_do() -> None:
    # Given entries with long Japanese notes, added until the next one would not fit
    note = "競合他社のため配信停止。" * 41  # about 1.5 KB in UTF-8
    listed = ExclusionList()
    refused: ValidationFailed | None = None
    while refused is None:
        entry = exclusion_entry(
            f"rival{len(listed.entries)}.example.jp", "competitors", note, "m", AT
        )
        try:
            listed = listed.with_entry(entry)
        except ValidationFailed as error:
            refused = error
    added = len(listed.entries)
    # Then every list it made fits its budget, and the refusal says the list is full and what
    # to do about it
    assert len(listed.stored().encode()) <= MAX_LIST_BYTES < len(listed.stored().encode()) + 1_600
    assert 200 < added < 250
    [error] = refused.errors
    assert error.field == "value"
    assert "the exclusions are full" in error.message
    assert "Remove entries no longer needed, shorten long notes" in error.message
    # And replacing an entry by a shorter one, or taking one off, still works
    shorter = exclusion_entry("rival0.example.jp", "competitors", "競合", "m", AT)
    assert len(listed.with_entry(shorter).stored()) < len(listed.stored())
    assert len(listed.without("rival1.example.jp")[0].entries) == added - 1


def test_entries_with_a_few_words_of_note_fit_by_the_thousand() -> None:
    # What the README says: some 2,000 entries as people write them
    by, at = "tanaka.hanako@example.co.jp", "2026-12-06T10:08:56.769Z"
    entries = tuple(
        exclusion_entry(f"rival-company-{n}.example.co.jp", "competitors", "競合", by, at)
        for n in range(2_000)
    )
    listed = ExclusionList(entries[:-1], 1).with_entry(entries[-1])
    assert len(listed.entries) == 2_000


@pytest.mark.parametrize(
    "typed",
    ["co.jp", "ne.jp", "or.jp", "ac.jp", "tokyo.jp", "東京.jp", "＠ＣＯ．ＪＰ", "Co.JP ",
     "co.uk", "com.au", "com.cn", "co.kr"],
)  # fmt: skip
def test_a_public_suffix_is_refused_since_it_would_exclude_every_company_under_it(
    typed: str,
) -> None:
    # A marketer who meant rival.co.jp and typed co.jp would stop marketing mail to most
    # Japanese B2B leads: a domain excludes its subdomains
    with pytest.raises(ValidationFailed) as refused:
        exclusion_entry(typed, "competitors", None, "m@example.com", AT)
    [error] = refused.value.errors
    assert error.field == "value"
    assert "is a public suffix" in error.message
    assert "Give the company's own domain" in error.message


@pytest.mark.parametrize(
    "typed",
    ["rival.co.jp", "example.jp", "rival.tokyo.jp", "city.kawasaki.jp", "example.github.io",
     "東京.example.jp", "rival@co.jp"],
)  # fmt: skip
def test_a_companys_own_domain_under_a_public_suffix_is_taken(typed: str) -> None:
    # (an address is one person, whatever its domain; github.io is a hosting company's suffix,
    # the list's private section, under which no company's mail domain is)
    assert exclusion_entry(typed, "competitors", None, "m@example.com", AT).value


def test_a_public_suffix_an_earlier_rule_took_can_still_be_taken_off() -> None:
    earlier = Exclusion("co.jp", "domain", "competitors", None, "m@example.com", AT)
    remaining, gone = ExclusionList((earlier,), 1).without("co.jp")
    assert (remaining.entries, gone) == ((), earlier)
