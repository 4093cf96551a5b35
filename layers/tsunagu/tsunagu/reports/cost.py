"""What a journey cost on AWS at list price, from the counters the journey report already has.

A journey runs as a Standard Step Functions workflow: it is billed per state transition, and
each Lambda task it runs is billed as a request and its duration; each mail is an SES message.
None of these is counted per journey by AWS (the bill is per account), so the cost is
*estimated* from what Tsunagu counts per node of a journey version:

- what one pass through a node costs is read from the node's compiled ASL fragment
  (``tsunagu.journeys.compiler``), never from a table of our own: a change to the compiler
  changes the estimate with it. The walk from the node's entry state follows ``Next``; at a
  Choice it follows the counted outcome's choice when there is one (a decision node), else
  the first choice (a gate's "send", or "go" before a step); a task that timed out follows
  its ``States.Timeout`` Catch. Every state entered is a transition (Task, Choice, Wait, Pass
  and Succeed alike: Step Functions "counts a state transition each time a step of your
  workflow is executed"); a Task calling Lambda (``.waitForTaskToken`` included) is one
  invocation. The execution's start and end are not states and add nothing; the Succeed
  states the compiler writes at each end are states, and count.
- how many passes each node had: a send's ``sent`` and a decision's ``decided`` (with its
  ``outcome:<outcome>`` counts saying where the leads went) are *measured*; a node without
  counters (wait, update_lead, notify_owner, webhook, end) is *estimated* from the leads that
  flowed into it.

What the estimate leaves out, so that it is a floor of the journey's own cost: retries (each is
a transition and an invocation), a send the gate deferred, held or skipped (``sent`` counts
mails sent, not leads gated), owner notifications' mails, the account-wide free tiers, and
what runs outside the state machine (route_events resuming a wait, the events stream).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

# The compiler's own fragments and Lambda resources: what a pass costs follows any change to
# what a node compiles to.
from tsunagu.journeys.compiler import (
    ASL,
    LAMBDA_TASK_RESOURCES,
    entry_states,
    node_states,
    validate,
)
from tsunagu.journeys.decisions import TIMED_OUT
from tsunagu.journeys.definition import (
    Branch,
    Holdout,
    JourneyDefinition,
    Node,
    Send,
    Split,
    WaitFor,
)

USD_PLACES = Decimal("0.000001")
"""Dollar figures are shown to a millionth of a dollar: a journey of a few hundred leads costs
cents, and the report should not show it as $0.00."""


@dataclass(frozen=True)
class ListPrices:
    """USD list prices, and the two assumptions turning Lambda's into a price per invocation.

    Step Functions: $0.0250 per 1,000 state transitions (Standard workflows), Asia Pacific
    (Tokyo) as https://aws.amazon.com/step-functions/pricing/ publishes it (the same as US East).
    Lambda: $0.20 per 1M requests and $0.0000133334 per GB-second for Arm (the first tier, up to
    7.5 billion GB-seconds a month), https://aws.amazon.com/lambda/pricing/ — the figures found
    were US East (N. Virginia)'s; Tokyo's table was not found, so these are us-east-1 prices.
    SES: $0.10 per 1,000 outbound mails, https://aws.amazon.com/ses/pricing/.
    Free tiers are left out: they are the account's, not a journey's.
    """

    region: str = "ap-northeast-1 (Step Functions); us-east-1 (Lambda)"
    step_functions_per_transition: Decimal = Decimal("0.000025")
    lambda_per_request: Decimal = Decimal("0.0000002")
    lambda_per_gb_second: Decimal = Decimal("0.0000133334")
    ses_per_mail: Decimal = Decimal("0.0001")
    lambda_memory_gb: Decimal = Decimal("0.5")
    """An assumption: the template's Globals give every function 512 MB; the gate, the wait,
    the decision and update_lead functions have 256 MB, so 0.5 GB errs on the high side."""
    lambda_seconds_per_invocation: Decimal = Decimal("0.1")
    """An assumption: the average billed duration of one journey task (they read and write a
    few DynamoDB items; sending a mail is the longest). Override it with what CloudWatch shows
    (the functions' average Duration)."""

    @property
    def lambda_per_invocation(self) -> Decimal:
        seconds = self.lambda_memory_gb * self.lambda_seconds_per_invocation
        return self.lambda_per_request + seconds * self.lambda_per_gb_second

    def as_dict(self) -> dict[str, str]:
        """Decimals as strings: exact, and JSON-safe."""
        return {
            "region": self.region,
            "step_functions_per_transition": str(self.step_functions_per_transition),
            "lambda_per_request": str(self.lambda_per_request),
            "lambda_per_gb_second": str(self.lambda_per_gb_second),
            "ses_per_mail": str(self.ses_per_mail),
            "lambda_memory_gb": str(self.lambda_memory_gb),
            "lambda_seconds_per_invocation": str(self.lambda_seconds_per_invocation),
        }


PRICES = ListPrices()


@dataclass(frozen=True)
class NodeCost:
    """One node's share: its passes (``measured`` from its counters, or estimated from what
    flowed into it) and what they took in total."""

    node_id: str
    kind: str
    passes: int
    measured: bool
    transitions: int
    invocations: int
    mails: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node_id,
            "kind": self.kind,
            "passes": self.passes,
            "measured": self.measured,
            "transitions": self.transitions,
            "invocations": self.invocations,
            "mails": self.mails,
        }


@dataclass(frozen=True)
class JourneyCost:
    """A journey version's estimated AWS cost at list price (USD, rounded to ``USD_PLACES``;
    the total is the sum of the rounded parts, so the figures shown add up)."""

    executions: int
    transitions: int
    invocations: int
    mails: int
    step_functions_usd: Decimal
    lambda_usd: Decimal
    ses_usd: Decimal
    nodes: tuple[NodeCost, ...]
    prices: ListPrices = field(default=PRICES)

    @property
    def total_usd(self) -> Decimal:
        return self.step_functions_usd + self.lambda_usd + self.ses_usd

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe: counts as numbers, dollars as strings ("0.012500"), exact where a float
        would print 0.0125000000001."""
        return {
            "executions": self.executions,
            "transitions": self.transitions,
            "invocations": self.invocations,
            "mails": self.mails,
            "usd": {
                "step_functions": str(self.step_functions_usd),
                "lambda": str(self.lambda_usd),
                "ses": str(self.ses_usd),
                "total": str(self.total_usd),
            },
            "prices": self.prices.as_dict(),
            "nodes": [n.as_dict() for n in self.nodes],
        }


def journey_cost(
    definition: JourneyDefinition,
    counts_by_node: Mapping[str, Mapping[str, int]],
    prices: ListPrices = PRICES,
) -> JourneyCost:
    """The cost of one journey version from its counters (node id -> counts, as the journey
    report sums them): a send's ``sent``, a decision's ``decided`` and ``outcome:<outcome>``.
    A node that counts but has no row had no passes. The definition is validated first
    (ValidationFailed), as the compiler does.

    Nodes without counters are estimates: each gets the leads its predecessors sent its way (a
    decision's outcome count for the edge to it, any other node's passes). Leads that reached
    a start without counters all went on to the first counted node after it, so executions are
    that node's passes less those that came to it another way (a loop back). A loop with no
    decision in it never lets a lead out; its nodes are counted once per lead.
    """
    validate(definition)
    journey = _Journey(definition, counts_by_node)
    rows = tuple(journey.node_cost(node) for node in definition.nodes)
    transitions = sum(r.transitions for r in rows)
    invocations = sum(r.invocations for r in rows)
    mails = sum(r.mails for r in rows)
    return JourneyCost(
        executions=journey.executions,
        transitions=transitions,
        invocations=invocations,
        mails=mails,
        step_functions_usd=_usd(transitions * prices.step_functions_per_transition),
        lambda_usd=_usd(invocations * prices.lambda_per_invocation),
        ses_usd=_usd(mails * prices.ses_per_mail),
        nodes=rows,
        prices=prices,
    )


def _usd(amount: Decimal) -> Decimal:
    return amount.quantize(USD_PLACES, rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------- one pass, from the ASL


@dataclass(frozen=True)
class _Walk:
    """One way through a node's states: the states entered, the Lambda invocations, and the
    node it leads to (None: the execution ends in the node)."""

    transitions: int
    invocations: int
    leads_to: str | None


_LAMBDA_TASKS = LAMBDA_TASK_RESOURCES


def _walk(
    fragment: ASL, entry: str, outcome: str | None, node_of_state: Mapping[str, str]
) -> _Walk:
    """From ``entry`` until the walk leaves ``fragment`` (the node's own states) or ends.
    ``outcome``: the decision's outcome, which picks the Choice's way and, for ``timed_out``,
    the task's timeout Catch; None takes the usual way (the first choice)."""
    transitions = invocations = 0
    entered: set[str] = set()
    name: str | None = entry
    while name is not None and name in fragment and name not in entered:
        entered.add(name)  # a way back into the node (a deferral, a hold) is not the usual way
        state = fragment[name]
        transitions += 1
        if state["Type"] == "Task" and state.get("Resource") in _LAMBDA_TASKS:
            invocations += 1
        name = _next_state(state, outcome)
    # A state outside the node is another node's entry; "The lead left the journey" (the
    # gate's exit, off the usual way) belongs to no node, and ends the execution.
    leads_to = node_of_state.get(name) if name is not None and name not in fragment else None
    return _Walk(transitions, invocations, leads_to)


def _next_state(state: ASL, outcome: str | None) -> str | None:
    if state["Type"] == "Choice":
        choices: list[ASL] = state["Choices"]
        if outcome is None:
            return str(choices[0]["Next"])
        chosen = next((c for c in choices if c.get("StringEquals") == outcome), None)
        return str(chosen["Next"] if chosen else state["Default"])
    if outcome == TIMED_OUT:
        for catch in state.get("Catch", []):
            if "States.Timeout" in catch["ErrorEquals"]:
                return str(catch["Next"])
    if state.get("End") or "Next" not in state:
        return None  # Succeed, Fail, or a last task
    return str(state["Next"])


# ---------------------------------------------------------------- passes, from the counters


def _measured(node: Node) -> bool:
    """Whether the reports count the node's passes (a send's mails, a decision's decisions)."""
    return isinstance(node, Send | Branch | Split | Holdout | WaitFor)


@dataclass(frozen=True)
class _Route:
    """Leads that went one way through a node."""

    leads: int
    walk: _Walk


class _Journey:
    def __init__(
        self, definition: JourneyDefinition, counts_by_node: Mapping[str, Mapping[str, int]]
    ) -> None:
        self.nodes = {n.id: n for n in definition.nodes}
        self.counts = counts_by_node
        self.fragments = node_states(definition)
        self.entries = entry_states(definition)
        # Every state, not only each node's entry: an only-that-day wait goes straight to its
        # mail's gate, past the entry the mail's other ways take
        self.node_of_state = {
            name: node_id for node_id, states in self.fragments.items() for name in states
        }
        self.estimated: dict[str, int] = {n.id: 0 for n in definition.nodes if not _measured(n)}
        arrivals = self._flow_from_measured_nodes()
        self.executions = self._flow_from_the_start(definition.start, arrivals)

    def walk(self, node_id: str, outcome: str | None = None) -> _Walk:
        return _walk(
            self.fragments[node_id],
            self.entries[node_id],
            outcome,
            self.node_of_state,
        )

    def count(self, node_id: str, name: str) -> int:
        return max(0, self.counts.get(node_id, {}).get(name, 0))

    def routes(self, node_id: str) -> list[_Route]:
        """A counted node's leads, by the way they went."""
        node = self.nodes[node_id]
        if isinstance(node, Send):
            return [_Route(self.count(node_id, "sent"), self.walk(node_id))]
        counts = self.counts.get(node_id, {})
        routes = [
            _Route(max(0, n), self.walk(node_id, name.removeprefix("outcome:")))
            for name, n in sorted(counts.items())
            if name.startswith("outcome:")
        ]
        # Each decision counts ``decided`` and its outcome together; should they disagree, the
        # leads no outcome accounts for take the usual way.
        unaccounted = self.count(node_id, "decided") - sum(r.leads for r in routes)
        if unaccounted > 0:
            routes.append(_Route(unaccounted, self.walk(node_id)))
        return routes

    def _flow_from_measured_nodes(self) -> dict[str, int]:
        """Adds every counted node's outgoing leads to the uncounted nodes they pass; returns
        the leads arriving at each counted node from another counted node's way."""
        arrivals: dict[str, int] = {}
        for node_id, node in self.nodes.items():
            if not _measured(node):
                continue
            for route in self.routes(node_id):
                if route.walk.leads_to is not None:
                    reached = self._pass_on(route.walk.leads_to, route.leads)
                    if reached is not None:
                        arrivals[reached] = arrivals.get(reached, 0) + route.leads
        return arrivals

    def _pass_on(self, node_id: str, leads: int) -> str | None:
        """``leads`` through the uncounted nodes from ``node_id`` on (each has one way out);
        returns the counted node they reach (None: they end, or go round a loop with no
        decision, counted once)."""
        seen: set[str] = set()
        current: str | None = node_id
        while current is not None and current not in seen:
            if _measured(self.nodes[current]):
                return current
            seen.add(current)
            self.estimated[current] += leads
            current = self.walk(current).leads_to
        return None

    def _flow_from_the_start(self, start: str, arrivals: Mapping[str, int]) -> int:
        """Executions: the passes of the first counted node from the start, less the leads that
        came to it by another way; they also pass the uncounted nodes before it."""
        first = start
        seen: set[str] = set()
        while not _measured(self.nodes[first]):
            seen.add(first)
            following = self.walk(first).leads_to
            if following is None or following in seen:
                return 0  # nothing counted on the way: nothing to estimate from
            first = following
        executions = max(0, self.passes_measured(first) - arrivals.get(first, 0))
        if first != start:
            self._pass_on(start, executions)
        return executions

    def passes_measured(self, node_id: str) -> int:
        return sum(r.leads for r in self.routes(node_id))

    def node_cost(self, node: Node) -> NodeCost:
        if _measured(node):
            routes = self.routes(node.id)
        else:
            routes = [_Route(self.estimated[node.id], self.walk(node.id))]
        return NodeCost(
            node_id=node.id,
            kind=node.kind,
            passes=sum(r.leads for r in routes),
            measured=_measured(node),
            transitions=sum(r.leads * r.walk.transitions for r in routes),
            invocations=sum(r.leads * r.walk.invocations for r in routes),
            mails=self.count(node.id, "sent") if isinstance(node, Send) else 0,
        )
