"""Who in sales gets a lead that has no owner yet, when it becomes an MQL.

Rules are tried in order and the first that matches wins, so the specific ones go first: a key
account's domain, then territories by country, then a round robin over the team as the catch-all.

A round robin is fair only if its counter moves exactly when the round robin is used: a counter
bumped for every lead (including those a territory took) would, with two people and every other
lead going to a territory, send every round-robin lead to the same person. So the counter is a
port the rule calls only when it is reached, and the store behind it increments atomically (two
Lambdas assigning at once must not read the same value).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tsunagu.leads.email import InvalidEmail, normalise_email
from tsunagu.qualification.grading import fold, rule_domain


class RoundRobinCounter(Protocol):
    def next_value(self, team: str) -> int:
        """Increment the team's counter and return the new value (0, 1, 2, ... from the first
        call, or any starting point: only the sequence matters)."""
        ...


def _owner_address(value: str) -> str:
    try:
        return normalise_email(value).address
    except InvalidEmail as error:
        raise ValueError(str(error)) from None


class ByDomain(BaseModel):
    """Leads whose mail domain (or a subdomain of it) is listed go to ``owner``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["domain"] = "domain"
    domains: tuple[str, ...] = Field(min_length=1, max_length=500)
    owner: str

    _owner = field_validator("owner")(_owner_address)

    @field_validator("domains")
    @classmethod
    def _folded(cls, domains: tuple[str, ...]) -> tuple[str, ...]:
        folded = tuple(rule_domain(d) for d in domains)
        if not all(folded):
            raise ValueError("a domain cannot be blank")
        return folded

    def owner_for(self, email: str, attributes: Mapping[str, str]) -> str | None:
        domain = fold(email).rpartition("@")[2].rstrip(".")
        if any(domain == d or domain.endswith("." + d) for d in self.domains):
            return self.owner
        return None


class ByCountry(BaseModel):
    """Leads whose ``country`` attribute is listed go to ``owner`` (a territory)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["country"] = "country"
    countries: tuple[str, ...] = Field(min_length=1, max_length=300)
    """ISO codes or names, as the forms collect them; compared folded."""
    owner: str

    _owner = field_validator("owner")(_owner_address)

    def owner_for(self, email: str, attributes: Mapping[str, str]) -> str | None:
        country = fold(attributes.get("country") or "")
        if country and country in {fold(c) for c in self.countries}:
            return self.owner
        return None


class RoundRobin(BaseModel):
    """Every lead that reaches this rule, in turn to each member of the team."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["round_robin"] = "round_robin"
    team: str = Field(default="sales", pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    """Names the counter: two round robins over different teams do not share one."""
    members: tuple[str, ...] = Field(min_length=1, max_length=200)

    @field_validator("members")
    @classmethod
    def _addresses(cls, members: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_owner_address(m) for m in members)

    def owner_at(self, counter_value: int) -> str:
        return self.members[counter_value % len(self.members)]


OwnerRule = Annotated[ByDomain | ByCountry | RoundRobin, Field(discriminator="kind")]


class OwnerRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[OwnerRule, ...] = Field(default=(), max_length=100)

    @field_validator("rules")
    @classmethod
    def _each_reachable(cls, rules: tuple[OwnerRule, ...]) -> tuple[OwnerRule, ...]:
        # A round robin takes every lead that reaches it: a rule after it would never be used,
        # which is always a mistake of order (the catch-all goes last).
        for position, rule in enumerate(rules[:-1], start=1):
            if isinstance(rule, RoundRobin):
                raise ValueError(
                    f"rule {position + 1} is never reached: the round robin before it (rule "
                    f"{position}) takes every lead; put the round robin last"
                )
        return rules


def assign_owner(
    email: str,
    attributes: Mapping[str, str],
    rules: OwnerRules | Sequence[OwnerRule],
    counter: RoundRobinCounter,
) -> str | None:
    """The owner the first matching rule gives the lead; None if no rule matches (no round robin
    at the end, and no territory fits)."""
    for rule in rules.rules if isinstance(rules, OwnerRules) else rules:
        if isinstance(rule, RoundRobin):
            return rule.owner_at(counter.next_value(rule.team))
        owner = rule.owner_for(email, attributes)
        if owner is not None:
            return owner
    return None
