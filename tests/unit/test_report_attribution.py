"""Revenue attribution's models on hand-made deals and touches: each model's shares, the
look-back window's edges, what is left unattributed, and ROI's currencies."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tsunagu.errors import ValidationFailed
from tsunagu.reports.attribution import attribute, parse_usd_rates, shares, window
from tsunagu.reports.counting import CountedDeal, CountedMail

TOKYO = "Asia/Tokyo"


def mail(message_id: str, lead: str, at: str, template: str, journey: str | None) -> CountedMail:
    return CountedMail(message_id, lead, template, 1, at[:10], journey_id=journey, touched_at=at)


TOUCHES = [
    # lead L1: three touches by two journeys and a one-off mail
    mail("m1", "L1", "2026-09-01T00:00:00.000Z", "welcome", "welcome_nurture"),
    mail("m2", "L1", "2026-11-20T03:00:00.000Z", "seminar-invitation", "seminar_follow_up"),
    mail("m3", "L1", "2026-11-30T05:00:00.000Z", "newsletter", None),
    # lead L2, of the same account
    mail("m4", "L2", "2026-11-25T01:00:00.000Z", "seminar-invitation", "seminar_follow_up"),
]


def touches(lead: str, since: str, until: str) -> list[CountedMail]:
    return [m for m in TOUCHES if m.lead_id == lead and since <= (m.touched_at or "") <= until]


def deal(deal_id: str, cents: int, leads: tuple[str, ...], status: str = "won") -> CountedDeal:
    return CountedDeal(deal_id, status, "JPY", cents, "2026-12-01", leads, "2026-12-01T00:00Z")


def test_each_model_shares_a_deal_out_among_its_touches_and_the_shares_add_up() -> None:
    found = attribute(
        [
            deal("D1", 100_000_00, ("L1", "L2")),
            deal("D2", 1_00, ("L9",)),
            deal("D3", 5, ("L1",), "lost"),
        ],
        touches,
        first_day=date(2026, 12, 1),
        last_day=date(2026, 12, 1),
        lookback_days=30,
        time_zone=TOKYO,
    )
    # The window is 30 days before 2026-12-01 in Tokyo: m1 (September) is out; m2, m4, m3
    journeys = {j: c.revenue for j, c in found.journeys.items()}
    assert journeys == {
        "seminar_follow_up": {
            "first_touch": {"JPY": 100_000_00},  # m2, the earliest
            "last_touch": {},
            "linear": {"JPY": 33_333_34 + 33_333_33},  # m2 and m4 of three shares
        },
    }
    newsletter = found.mails["newsletter"].revenue
    assert newsletter == {"first_touch": {}, "last_touch": {"JPY": 100_000_00},
                          "linear": {"JPY": 33_333_33}}  # fmt: skip
    # Everything credited by a model adds up to the deal
    for model in ("first_touch", "last_touch", "linear"):
        assert sum(c.revenue[model].get("JPY", 0) for c in found.mails.values()) == 100_000_00
    # A won deal with no touch is unattributed; a lost one is not won
    assert (found.deals_won, found.won) == (2, {"JPY": 100_001_00})
    assert (found.deals_unattributed, found.unattributed) == (1, {"JPY": 1_00})


def test_the_window_runs_from_the_look_back_days_before_the_close_day_to_its_end_in_tokyo() -> None:
    since, until = window("2026-12-01", 30, __import__("zoneinfo").ZoneInfo(TOKYO))
    # Tokyo's 2026-11-01 00:00 is 2026-10-31 15:00 UTC; the close day ends at 14:59:59.999 UTC
    assert since.startswith("2026-10-31T15:00:00")
    assert until.startswith("2026-12-01T14:59:59.999")


@pytest.mark.parametrize(("cents", "count"), [(100, 3), (1, 4), (30_000_100, 7), (0, 2)])
def test_linear_shares_add_up_exactly_the_remainder_to_the_first(cents: int, count: int) -> None:
    split = shares(cents, count)
    assert sum(split) == cents
    assert max(split) - min(split) <= 1
    assert split == sorted(split, reverse=True)


def test_roi_needs_a_rate_for_every_currency_credited() -> None:
    found = attribute(
        [deal("D1", 150_000_00, ("L2",))],
        touches,
        first_day=date(2026, 12, 1),
        last_day=date(2026, 12, 1),
        lookback_days=30,
        time_zone=TOKYO,
    )
    from dataclasses import replace

    priced = replace(found, costs_usd={"seminar_follow_up": Decimal("0.50")})
    assert priced.roi("seminar_follow_up", "linear") is None  # yen, and no rate given
    rated = replace(priced, usd_rates={"JPY": Decimal(150)})
    # 150,000 yen = $1,000, over $0.50
    assert rated.roi("seminar_follow_up", "linear") == Decimal("2000.00")
    # A huge deal at the lowest rate taken, over a cost of a millionth of a cent: a number
    # with more digits than Decimal's usual 28, still a number (quantize refused it: a 500)
    huge = replace(
        found,
        journeys={"seminar_follow_up": replace(
            found.journeys["seminar_follow_up"],
            revenue={"linear": {"JPY": 10**22}},
        )},
        costs_usd={"seminar_follow_up": Decimal("0.00000001")},
        usd_rates={"JPY": Decimal("0.000001")},
    )  # fmt: skip
    assert huge.roi("seminar_follow_up", "linear") == Decimal(10**34)


@pytest.mark.parametrize(
    "text",
    ["JPY", "JPY=abc", "JPY=NaN", "JPY=Infinity", "JPY=0", "JPY=-150", "=150", "JP=150",
     # (found by an audit: a rate of 1e-30 made ROI too long a number, a 500)
     "JPY=1e-30", "JPY=0.0000000000000000000000000001", "JPY=0.0000009", "JPY=1E+40",
     "JPY=1000000001"],
)  # fmt: skip
def test_an_exchange_rate_that_is_not_one_is_refused_by_name(text: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_usd_rates([text], "usd_rates")
    assert [e.field for e in refused.value.errors] == ["usd_rates"]


def test_exchange_rates_are_read_with_either_separator() -> None:
    rates = parse_usd_rates(["jpy=150", "EUR:0.92"], "usd_rates")
    assert rates == {"JPY": Decimal(150), "EUR": Decimal("0.92")}
    # the bounds themselves are rates
    rates = parse_usd_rates(["XAU=0.000001", "VES=1000000000"], "usd_rates")
    assert rates == {"XAU": Decimal("0.000001"), "VES": Decimal(1_000_000_000)}
