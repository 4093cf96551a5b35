"""Revenue attribution: the won deals of a range of days, credited to the journeys and mails
that touched their leads.

A **touch** is a mail a person opened or clicked (a machine's open or click is never one: a
security gateway or a privacy proxy did not buy anything), counted once per mail at the instant
of that person's first open or click. A deal's touches are those of every lead the CRM
associates with it, from ``lookback_days`` before the start of its close day to the end of that
day, in the account's time zone.

Three models share each deal's revenue out among its touches:

- ``first_touch``: all of it to the earliest touch;
- ``last_touch``: all of it to the latest;
- ``linear``: equal shares to every touch (in hundredths of the currency's unit; what does not
  divide evenly goes a hundredth at a time to the earliest touches, so the shares add up to the
  deal exactly).

A touch credits its mail template and, when a journey sent it, the journey. A won deal without
a touch in its window is **unattributed** and said so, never spread over everything. Amounts
are kept per currency: no exchange rate is assumed. ROI per journey is the revenue attributed
to it over its AWS cost at list price (tsunagu.reports.cost) for the days its touches could
have come from; it needs the revenue's currency in US dollars, given as a rate (JPY=150: 150
yen to the dollar), and is left out for a currency without one.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, localcontext
from typing import Any
from zoneinfo import ZoneInfo

from tsunagu.clock import isoformat
from tsunagu.errors import FieldError, ValidationFailed
from tsunagu.reports.counting import CountedDeal, CountedMail
from tsunagu.text import spreadsheet_safe

MODELS = ("first_touch", "last_touch", "linear")
DEFAULT_LOOKBACK_DAYS = 90
MAX_LOOKBACK_DAYS = 365

Touches = Callable[[str, str, str], list[CountedMail]]
"""(lead, since, until) -> the mails of the lead a person touched then (ISO instants)."""


@dataclass
class Credit:
    """What one journey or one mail template was credited: the deals it touched, its touches
    among them, and revenue per model and currency (hundredths)."""

    deals: set[str] = field(default_factory=set)
    touches: int = 0
    revenue: dict[str, dict[str, int]] = field(
        default_factory=lambda: {model: {} for model in MODELS}
    )

    def add(self, model: str, currency: str, cents: int) -> None:
        by_currency = self.revenue[model]
        by_currency[currency] = by_currency.get(currency, 0) + cents


@dataclass(frozen=True)
class Attribution:
    first_day: str
    last_day: str
    lookback_days: int
    time_zone: str
    won: dict[str, int]
    """Won revenue per currency (hundredths), every won deal of the days."""
    deals_won: int
    unattributed: dict[str, int]
    deals_unattributed: int
    journeys: dict[str, Credit]
    mails: dict[str, Credit]
    sources: dict[tuple[str, str], tuple[int, dict[str, int]]] = field(default_factory=dict)
    """(first channel, first form) of each won deal's primary lead -> (deals, revenue per
    currency): the deals and revenue each source of leads brought, whatever touched them."""
    costs_usd: Mapping[str, Decimal | None] = field(default_factory=dict)
    """Each credited journey's AWS cost over the days its touches could come from."""
    usd_rates: Mapping[str, Decimal] = field(default_factory=dict)

    def roi(self, journey_id: str, model: str) -> Decimal | None:
        """Attributed revenue in US dollars over the journey's cost; None without a cost, or
        with revenue in a currency no rate was given for."""
        cost = self.costs_usd.get(journey_id)
        if not cost:
            return None
        revenue = Decimal(0)
        for currency, cents in self.journeys[journey_id].revenue[model].items():
            rate = Decimal(1) if currency == "USD" else self.usd_rates.get(currency)
            if rate is None:
                return None
            revenue += Decimal(cents) / 100 / rate
        # Enough digits for the largest revenue (20-digit deals at the lowest rate) over the
        # smallest cost: quantize refuses a result with more digits than the context holds.
        with localcontext(prec=80):
            return (revenue / cost).quantize(Decimal("0.01"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.first_day,
            "to": self.last_day,
            "lookback_days": self.lookback_days,
            "time_zone": self.time_zone,
            "models": list(MODELS),
            "touch": "a mail a person opened or clicked (machines' never), at its first",
            "deals_won": self.deals_won,
            "won": _amounts(self.won),
            "unattributed": {
                "deals": self.deals_unattributed,
                "revenue": _amounts(self.unattributed),
            },
            "usd_rates": {c: str(r) for c, r in sorted(self.usd_rates.items())},
            "journeys": [
                {
                    "journey_id": journey_id,
                    **_credit(credit),
                    "cost_usd": _text(self.costs_usd.get(journey_id)),
                    "roi": {m: _text(self.roi(journey_id, m)) for m in MODELS},
                }
                for journey_id, credit in sorted(self.journeys.items())
            ],
            "mails": [
                {"template_id": template_id, **_credit(credit)}
                for template_id, credit in sorted(self.mails.items())
            ],
            "sources": [
                {"channel": channel, "form": form, "deals": deals, "revenue": _amounts(revenue)}
                for (channel, form), (deals, revenue) in sorted(self.sources.items())
            ],
        }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _amounts(cents: Mapping[str, int]) -> dict[str, str]:
    """Hundredths as exact decimal text per currency ("1350000", "33333.33")."""
    return {currency: str(Decimal(n) / 100) for currency, n in sorted(cents.items())}


def _credit(credit: Credit) -> dict[str, Any]:
    return {
        "deals": len(credit.deals),
        "touches": credit.touches,
        "revenue": {model: _amounts(credit.revenue[model]) for model in MODELS},
    }


LOWEST_USD_RATE, HIGHEST_USD_RATE = Decimal("0.000001"), Decimal("1000000000")
"""The exchange rates taken (units of a currency per dollar): wider than any currency's, and
narrow enough that revenue over cost is a number a report can print (a rate of 1e-30 made
a deal worth more dollars than Decimal's precision holds)."""


def parse_usd_rates(texts: Iterable[str], name: str) -> dict[str, Decimal]:
    """``["JPY=150", "EUR=0.92"]`` (``:`` also separates) as currency -> units per dollar;
    ValidationFailed naming ``name`` for text that is not one (a currency is three capital
    letters, a rate a number from LOWEST_USD_RATE to HIGHEST_USD_RATE)."""
    rates = {}
    for text in texts:
        currency, _, rate = text.replace(":", "=").partition("=")
        currency = currency.strip().upper()
        try:
            value = Decimal(rate.strip())
        except ArithmeticError:
            value = Decimal("NaN")
        if not (_CURRENCY.fullmatch(currency) and value.is_finite() and value > 0):
            raise ValidationFailed([FieldError(name, f"{text!r}: CUR=RATE, e.g. JPY=150")])
        if not LOWEST_USD_RATE <= value <= HIGHEST_USD_RATE:
            raise ValidationFailed(
                [
                    FieldError(
                        name,
                        f"{text!r}: a rate is units of the currency per US dollar, from"
                        f" {LOWEST_USD_RATE} to {HIGHEST_USD_RATE}",
                    )
                ]
            )
        rates[currency] = value
    return rates


_CURRENCY = re.compile(r"[A-Z]{3}")


def window(close_day: str, lookback_days: int, time_zone: ZoneInfo) -> tuple[str, str]:
    """The instants a deal's touches may have: from ``lookback_days`` before the start of its
    close day to the end of that day."""
    day = date.fromisoformat(close_day)
    start = datetime.combine(day - timedelta(days=lookback_days), time.min, time_zone)
    end = datetime.combine(day + timedelta(days=1), time.min, time_zone)
    return isoformat(start), isoformat(end - timedelta(milliseconds=1))


def shares(cents: int, count: int) -> list[int]:
    """``cents`` in ``count`` equal shares that add up to it exactly, the remainder a hundredth
    at a time to the first shares."""
    base, rest = divmod(cents, count)
    return [base + (1 if n < rest else 0) for n in range(count)]


def attribute(
    deals: Iterable[CountedDeal],
    touches: Touches,
    *,
    first_day: date,
    last_day: date,
    lookback_days: int,
    time_zone: str,
    first_touches: Mapping[str, tuple[str, str]] | None = None,
) -> Attribution:
    """Credit the won deals among ``deals`` (as counted, closed in the days) to what touched
    their leads, by every model; and to the source of each deal's primary lead
    (``first_touches``: lead -> its first channel and form, as the funnel keeps them)."""
    zone = ZoneInfo(time_zone)
    sources: dict[tuple[str, str], tuple[int, dict[str, int]]] = {}
    won: dict[str, int] = {}
    unattributed: dict[str, int] = {}
    deals_won = deals_unattributed = 0
    journeys: dict[str, Credit] = {}
    mails: dict[str, Credit] = {}
    for deal in deals:
        if deal.status != "won" or deal.close_day is None:
            continue
        deals_won += 1
        won[deal.currency] = won.get(deal.currency, 0) + deal.amount_cents
        primary = deal.lead_ids[0] if deal.lead_ids else None
        source = (first_touches or {}).get(primary or "", ("unknown", "-"))
        count, revenue = sources.get(source, (0, {}))
        revenue = {**revenue, deal.currency: revenue.get(deal.currency, 0) + deal.amount_cents}
        sources[source] = (count + 1, revenue)
        since, until = window(deal.close_day, lookback_days, zone)
        found = {
            mail.message_id: mail for lead in deal.lead_ids for mail in touches(lead, since, until)
        }
        ordered = sorted(found.values(), key=lambda m: (m.touched_at or "", m.message_id))
        if not ordered:
            deals_unattributed += 1
            unattributed[deal.currency] = unattributed.get(deal.currency, 0) + deal.amount_cents
            continue
        credited: dict[str, list[int]] = {
            "first_touch": [deal.amount_cents] + [0] * (len(ordered) - 1),
            "last_touch": [0] * (len(ordered) - 1) + [deal.amount_cents],
            "linear": shares(deal.amount_cents, len(ordered)),
        }
        for n, mail in enumerate(ordered):
            credits = [mails.setdefault(mail.template_id, Credit())]
            if mail.journey_id:
                credits.append(journeys.setdefault(mail.journey_id, Credit()))
            for credit in credits:
                credit.deals.add(deal.deal_id)
                credit.touches += 1
                for model in MODELS:
                    if credited[model][n]:
                        credit.add(model, deal.currency, credited[model][n])
    return Attribution(
        first_day=first_day.isoformat(),
        last_day=last_day.isoformat(),
        lookback_days=lookback_days,
        time_zone=time_zone,
        won=won,
        deals_won=deals_won,
        unattributed=unattributed,
        deals_unattributed=deals_unattributed,
        journeys=journeys,
        mails=mails,
        sources=sources,
    )


def attribution_csv(found: Attribution) -> str:
    """One row per journey or mail, model and currency: the revenue credited, with the deals
    and touches, and for a journey its cost and ROI (cells a spreadsheet will not run)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(
        ["kind", "id", "model", "currency", "revenue", "deals", "touches", "cost_usd", "roi",
         "from", "to", "lookback_days"]
    )  # fmt: skip
    subjects = [("journey", j, c) for j, c in sorted(found.journeys.items())]
    subjects += [("mail", t, c) for t, c in sorted(found.mails.items())]
    for kind, subject_id, credit in subjects:
        cost = found.costs_usd.get(subject_id) if kind == "journey" else None
        for model in MODELS:
            for currency, cents in sorted(credit.revenue[model].items()):
                roi = found.roi(subject_id, model) if kind == "journey" else None
                row = [
                    kind, subject_id, model, currency, Decimal(cents) / 100, len(credit.deals),
                    credit.touches, "" if cost is None else cost, "" if roi is None else roi,
                    found.first_day, found.last_day, found.lookback_days,
                ]  # fmt: skip
                writer.writerow([spreadsheet_safe(str(cell)) for cell in row])
    for (channel, form), (deals, revenue) in sorted(found.sources.items()):
        for currency, cents in sorted(revenue.items()):
            row = ["source", f"{channel}#{form}", "won", currency, Decimal(cents) / 100, deals,
                   "", "", "", found.first_day, found.last_day, found.lookback_days]  # fmt: skip
            writer.writerow([spreadsheet_safe(str(cell)) for cell in row])
    return buffer.getvalue()
