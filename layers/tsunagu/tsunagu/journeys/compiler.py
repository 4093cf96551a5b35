"""Journey definitions to Step Functions ASL.

Deterministic: the same definition always gives the same ASL, so the generated files can be
committed and checked. Every ``send`` becomes the gate pattern the journey activities expect
(check the gate; send, defer under the frequency cap, hold while paused, or skip; leave when the
lead may not stay); every step that acts on the lead otherwise (update_lead, notify_owner,
webhook) a lighter gate (go, hold while paused, or leave), so a paused journey does nothing to
or about its leads; every Lambda task the same retries, and every function ARN a
``${...FunctionArn}`` substitution the template (or the publisher) fills in.

Validation runs first and answers each problem with the node's id and a sentence.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from tsunagu.api.requests import load_json_object
from tsunagu.client_values import validation_failed
from tsunagu.errors import FieldError, ValidationFailed
from tsunagu.event_kinds import resumes_waits
from tsunagu.journeys.decisions import HOLDOUT, TimedOutSpec, spec_of
from tsunagu.journeys.definition import (
    Branch,
    End,
    Holdout,
    JourneyDefinition,
    Node,
    NotifyOwner,
    Send,
    Split,
    UpdateLead,
    Wait,
    WaitFor,
    Webhook,
)
from tsunagu.journeys.lifecycle import EXECUTION_INPUT_KEYS
from tsunagu.segments.filter import Segment

ASL = dict[str, Any]

LAMBDA_RETRY: ASL = {
    "ErrorEquals": [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ],
    "IntervalSeconds": 2,
    "MaxAttempts": 6,
    "BackoffRate": 2,
    "JitterStrategy": "FULL",
}
"""Lambda's own transient errors, on every task: the handlers are idempotent."""
SEND_RETRY: ASL = {
    "ErrorEquals": ["SendFailed", "SendInProgress"],
    "IntervalSeconds": 60,
    "MaxAttempts": 3,
    "BackoffRate": 4,
}
"""SES refused for now, or another attempt of the same send still holds its claim."""
OWNER_MAIL_RETRY: ASL = {
    **LAMBDA_RETRY,
    "ErrorEquals": ["MessengerError", *LAMBDA_RETRY["ErrorEquals"]],
}
"""SES refused the owner's mail (the claim is released, so a retry sends it once)."""
WEBHOOK_RETRY: ASL = {
    "ErrorEquals": ["PushFailed"],
    "IntervalSeconds": 30,
    "MaxAttempts": 5,
    "BackoffRate": 2,
}
"""As the hand-off's push to the CRM: a CRM down for a few minutes is waited for."""

LEFT_THE_JOURNEY = "The lead left the journey"
LEFT_WITHOUT_THE_MAIL = "The lead left: it never got the mail it was waited on for"
"""Where a wait for a mail's click or open goes when it times out and that mail was skipped
(by the gate, or at send time): its "did not click" way would follow up a mail the lead never
got ("you have not clicked the invitation"), so the lead leaves instead."""
SKIPPED = "skipped"
"""A send's status, in its result slot, when the mail did not go (the gate's skip, or
send_email's: no consent, suppressed at the moment of sending)."""
MAX_STATE_NAME = 80  # Step Functions' limit
STATE_KEYS = frozenset(
    {
        "gate",
        "schedule",
        "response",
        "release",
        "timed_out",
        "not_paused",
        "held",
        "decision",
        "webhook_error",
    }
)
"""Keys of the execution's state that the generated states write (ResultPath)."""
RESERVED_SLOTS = EXECUTION_INPUT_KEYS | STATE_KEYS
"""Keys of the execution's state that the input or the generated states write: a send's result
stored under one would overwrite it (``$.lead_id`` replaced by a mail's outcome,
``$.journey_version`` by one the next decision refuses)."""

_INVOKE = "arn:aws:states:::lambda:invoke"
_INVOKE_WAITING = "arn:aws:states:::lambda:invoke.waitForTaskToken"


# ---------------------------------------------------------------- names


def send_state(node: Send) -> str:
    return f"Send {node.label}"


def _gate_state(node: Send) -> str:
    return f"Check the gate before {node.label}"


def _schedule_state(node: Wait) -> str:
    return node.schedule_label or f"Schedule {node.label}"


def _wait_state(node: Wait) -> str:
    return node.wait_label or f"Wait until {node.label} may go"


def _wait_for_state(node: WaitFor) -> str:
    return f"Wait for {node.label}"


def _decide_state(node: Branch | Split | Holdout) -> str:
    return f"Decide {node.label}" if isinstance(node, Branch) else f"Draw {node.label}"


def _which_state(node: Branch | Split | Holdout) -> str:
    if isinstance(node, Branch):
        return f"Which way after {node.label}?"
    if isinstance(node, Split):
        return f"Which path of {node.label}?"
    return f"Is the lead in {node.label}?"


def _kept_state(node: Holdout) -> str:
    return f"Keep the lead in {node.label}"


def _time_is_up_state(node: WaitFor) -> str:
    return f"Time is up for {node.label}"


def _mail_skipped_state(node: WaitFor) -> str:
    return f"Mail skipped for {node.label}?"


def _awaited_mails(node: WaitFor) -> list[str]:
    """The result slots of the mails whose click or open the wait watches, in order, once."""
    return list(dict.fromkeys(e.of_mail for e in node.events if e.of_mail))


def _park_state(node: Webhook) -> str:
    return f"Park the failed call: {node.label}"


GatedStep = UpdateLead | NotifyOwner | Webhook
"""Steps that act on or about the lead without mailing it: behind the step gate."""


def _step_gate_states(node: GatedStep) -> list[str]:
    """The step gate's task, its Choice and its hold. Short prefixes: with a label of 60
    characters they stay within Step Functions' 80."""
    return [
        f"Check the gate: {node.label}",
        f"Go on to: {node.label}?",
        f"Hold while paused: {node.label}",
    ]


def _any_day_state(node: Send) -> str:
    return f"Any day will do for {node.label}"


def _one_day_waits(nodes: Iterable[Node]) -> dict[str, list[str]]:
    """Send id -> the ``only_that_day`` waits that lead straight to it."""
    found: dict[str, list[str]] = {}
    for node in nodes:
        if isinstance(node, Wait) and node.rule.only_that_day and node.next:
            found.setdefault(node.next, []).append(node.id)
    return found


def _reached_other_ways(definition: JourneyDefinition) -> set[str]:
    """The sends an ``only_that_day`` wait leads to that are also reached another way (or
    start the journey): on those ways, the day an earlier wait chose is forgotten first."""
    one_day = _one_day_waits(definition.nodes)
    sends = {n.id for n in definition.nodes if isinstance(n, Send) and n.id in one_day}
    other = {definition.start} & sends
    for node in definition.nodes:
        if isinstance(node, Wait) and node.rule.only_that_day:
            continue
        other.update(target for target in _edges(node) if target in sends)
    return other


def _without_mail_state(node: NotifyOwner) -> str:
    return f"Go on without the mail: {node.label}"


def entry_state(node: Node, any_day: bool = False) -> str:
    """The state other nodes go to when they go to this node (``any_day``: a send reached by
    its ``only_that_day`` wait and other ways too, whose other ways go through
    ``_any_day_state``; see ``entry_states``)."""
    if isinstance(node, Send):
        return _any_day_state(node) if any_day else _gate_state(node)
    if isinstance(node, Wait):
        return _schedule_state(node)
    if isinstance(node, WaitFor):
        return _wait_for_state(node)
    if isinstance(node, Branch | Split | Holdout):
        return _decide_state(node)
    if isinstance(node, GatedStep):
        return _step_gate_states(node)[0]
    return node.label


def entry_states(definition: JourneyDefinition) -> dict[str, str]:
    """Node id -> the state the other nodes (but its ``only_that_day`` wait) go to."""
    any_day = _reached_other_ways(definition)
    return {n.id: entry_state(n, n.id in any_day) for n in definition.nodes}


def _state_names(node: Node, any_day: bool = False) -> list[str]:
    if isinstance(node, Send):
        return [
            _gate_state(node),
            f"What did the gate say about {node.label}?",
            f"Hold {node.label} while the journey is paused",
            f"Defer {node.label} under the frequency cap",
            send_state(node),
            f"Note that {node.label} was skipped",
            *([_any_day_state(node)] if any_day else []),
        ]
    if isinstance(node, Wait):
        return [_schedule_state(node), _wait_state(node)]
    if isinstance(node, WaitFor):
        question = [node.question] if node.question else []
        mail = [_mail_skipped_state(node)] if _awaited_mails(node) else []
        return [_wait_for_state(node), _time_is_up_state(node), *mail, *question]
    if isinstance(node, Holdout):
        return [_decide_state(node), _which_state(node), _kept_state(node)]
    if isinstance(node, Branch | Split):
        return [_decide_state(node), _which_state(node)]
    if isinstance(node, Webhook):
        return [*_step_gate_states(node), node.label, _park_state(node)]
    if isinstance(node, NotifyOwner):
        return [*_step_gate_states(node), node.label, _without_mail_state(node)]
    if isinstance(node, UpdateLead):
        return [*_step_gate_states(node), node.label]
    return [node.label]


# ---------------------------------------------------------------- validation


def _edges(node: Node) -> list[str]:
    if isinstance(node, WaitFor):
        return [e.next for e in node.exits] + ([node.timed_out] if node.timed_out else [])
    if isinstance(node, Branch):
        return [c.next for c in node.cases] + ([node.default] if node.default else [])
    if isinstance(node, Split):
        return [p.next for p in node.paths]
    if isinstance(node, End):
        return []
    return [node.next] if node.next else []


def validate(definition: JourneyDefinition, templates: Collection[str] | None = None) -> None:
    """Every problem at once, each as (node id, sentence); ``templates``, when given, are the
    template ids that exist."""
    problems: list[FieldError] = []

    def problem(node_id: str, sentence: str) -> None:
        problems.append(FieldError(node_id, sentence))

    nodes: dict[str, Node] = {}
    for node in definition.nodes:
        if node.id in nodes:
            problem(node.id, "two nodes have this id")
        nodes[node.id] = node
    if definition.start not in nodes:
        problem("(journey)", f"starts at {definition.start!r}, which is not a node")
    for node in definition.nodes:
        for target in _edges(node):
            if target not in nodes:
                problem(node.id, f"goes to {target!r}, which is not a node")
    slots = {n.result_slot for n in definition.nodes if isinstance(n, Send)}
    inputs = {n.deadline_input_field for n in definition.nodes if isinstance(n, Send)}
    for node in definition.nodes:
        if isinstance(node, Send):
            _check_result_slot(node, inputs, problem)
        if isinstance(node, WaitFor):
            _check_wait_for(node, slots, problem)
        if isinstance(node, Send) and templates is not None and node.template not in templates:
            problem(node.id, f"sends template {node.template!r}, which does not exist")
        if isinstance(node, Wait):
            _check_rule(node, nodes, problem)
        if isinstance(node, Branch):
            _check_branch(node, problem)
        if isinstance(node, Split):
            _check_split(node, problem)
        if isinstance(node, UpdateLead) and not (
            node.stage or node.add_tags or node.remove_tags or node.fields
        ):
            problem(node.id, "changes nothing: set a stage, tags or fields")
        if isinstance(node, NotifyOwner) and node.message is None:
            problem(node.id, "has no message: say what the owner should know or do")
        if isinstance(node, Webhook) and node.event is None:
            problem(node.id, "has no event: name the call's type for the CRM (lead.pricing)")
    shared = {
        LEFT_THE_JOURNEY: "the gate's exit",
        LEFT_WITHOUT_THE_MAIL: "the exit after a skipped mail",
    }
    seen: dict[str, str] = dict.fromkeys(shared, "")
    any_day = _reached_other_ways(definition)
    for node in definition.nodes:
        names = _state_names(node, node.id in any_day)
        too_long = [name for name in names if len(name) > MAX_STATE_NAME]
        if too_long:
            problem(node.id, f"makes the step name {too_long[0]!r}, longer than 80 characters")
        for name in names:
            if name in seen:
                owner = seen[name]
                who = shared[name] if not owner else "itself" if owner == node.id else owner
                problem(node.id, f"makes the step name {name!r}, which {who} has already")
            seen.setdefault(name, node.id)
    if not problems:
        _check_reachable_and_loops(definition, nodes, problem)
    if not problems:
        _check_mails_sent_before_their_waits(definition, nodes, problem)
    if problems:
        raise ValidationFailed(problems)


def _check_result_slot(node: Send, deadline_inputs: Collection[str | None], problem: Any) -> None:
    slot = node.result_slot
    if slot in EXECUTION_INPUT_KEYS:
        why = "every execution's input carries it"
    elif slot in STATE_KEYS:
        why = "the journey's steps write it"
    elif slot in deadline_inputs:
        why = "a mail's deadline is read from it"
    else:
        return
    problem(node.id, f"keeps its result as {slot!r}, a name the journey uses: {why}")


def _check_wait_for(node: WaitFor, slots: set[str], problem: Any) -> None:
    # (No exits at all: each outcome without its exit is named below.)
    if node.timed_out is None:
        problem(node.id, "has no timed_out edge: say where leads go when nothing happens in time")
    outcomes = [e.outcome for e in node.events]
    exits = [e.outcome for e in node.exits]
    for outcome in sorted(set(outcomes) - set(exits)):
        problem(node.id, f"has no exit for the outcome {outcome!r}")
    for outcome in sorted(set(exits) - set(outcomes)):
        problem(node.id, f"has an exit for {outcome!r}, which none of its events is")
    # Step Functions' Choice would take the first, the dry run the last: neither is meant
    for outcome in _repeated(exits):
        problem(node.id, f"has two exits for the outcome {outcome!r}: say which way it goes")
    if len({e.next for e in node.exits}) > 1 and not node.question:
        problem(node.id, "sends outcomes different ways: name the decision in 'question'")
    for event in node.events:
        if event.of_mail is not None and event.of_mail not in slots:
            problem(node.id, f"waits for activity of {event.of_mail!r}, which no send records")
        if not resumes_waits(event.type):
            problem(
                node.id,
                f"waits for {event.type!r}, which Tsunagu records itself: it never ends a wait,"
                f" so the outcome {event.outcome!r} is never taken (wait for what the lead"
                " does, or branch on the lead's stage or score after a wait)",
            )


def _check_branch(node: Branch, problem: Any) -> None:
    if not node.cases:
        problem(node.id, "has no case: add one, with the filter that selects its leads")
    if node.default is None:
        problem(node.id, "has no default: say where a lead no case selects goes")
    for outcome in _repeated(c.outcome for c in node.cases):
        problem(node.id, f"has two cases with the outcome {outcome!r}")
    if any(c.outcome == "default" for c in node.cases):
        problem(node.id, "names a case 'default', the outcome of no case holding: rename it")
    for case in node.cases:
        try:
            Segment.parse(case.when)
        except ValueError as error:
            problem(node.id, f"case {case.outcome!r}: {error}")


def _check_split(node: Split, problem: Any) -> None:
    if len(node.paths) < 2:
        problem(node.id, f"has {len(node.paths)} path(s): a split shares leads between two or more")
    for path in node.paths:
        if not 1 <= path.percent <= 99:
            problem(node.id, f"path {path.outcome!r} takes {path.percent}%: give it 1 to 99")
    total = sum(p.percent for p in node.paths)
    if total != 100:
        problem(node.id, f"shares {total}% of the leads: the paths' percents must add up to 100")
    for outcome in _repeated(p.outcome for p in node.paths):
        problem(node.id, f"has two paths with the outcome {outcome!r}")


def _repeated(outcomes: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    repeated = []
    for outcome in outcomes:
        if outcome in seen and outcome not in repeated:
            repeated.append(outcome)
        seen.add(outcome)
    return repeated


def _check_rule(node: Wait, nodes: Mapping[str, Node], problem: Any) -> None:
    if node.next is None:
        problem(node.id, "leads nowhere: say where leads go when the wait is over (next)")
    rule = node.rule
    if rule.kind == "same_day_or_next" and rule.cutoff is None:
        problem(node.id, "same_day_or_next needs its cutoff (HH:MM)")
    if rule.kind == "business_days_later" and rule.days is None:
        problem(node.id, "business_days_later needs its days")
    if rule.only_that_day and rule.kind != "same_day_or_next":
        problem(node.id, "only_that_day goes with same_day_or_next")
    # The day travels to the mail's gate with the wait's answer (_Compiler._after_wait): any
    # step between them would forget it, and the mail would go on a later day all the same.
    elif rule.only_that_day and node.next and not isinstance(nodes.get(node.next), Send | None):
        problem(
            node.id,
            "only_that_day keeps the day for a mail right after the wait; a step between them"
            " forgets it, and the mail would go on a later day all the same: put the send right"
            " after this wait, or turn only_that_day off",
        )


def _check_reachable_and_loops(
    definition: JourneyDefinition, nodes: dict[str, Node], problem: Any
) -> None:
    reached: set[str] = set()
    todo = [definition.start]
    while todo:
        current = todo.pop()
        if current not in reached:
            reached.add(current)
            todo.extend(_edges(nodes[current]))
    for node in definition.nodes:
        if node.id not in reached:
            problem(node.id, "cannot be reached from the start")
    # A loop must pass a wait: without one a lead would spin through it at once, forever.
    instant = {n.id: _edges(n) for n in definition.nodes if not _waits(n)}
    for start in sorted(instant):
        path = _cycle_from(start, instant)
        if path:
            problem(start, f"is in a loop with no wait in it: {' -> '.join(path)}")
            return


def _waits(node: Node) -> bool:
    """Whether the node always takes time. Not ``same_day_or_next``: on a business day before
    its cutoff it answers "now", so a loop through it would spin until the cutoff."""
    if isinstance(node, Wait):
        return node.rule.kind != "same_day_or_next"
    return isinstance(node, WaitFor)


def _check_mails_sent_before_their_waits(
    definition: JourneyDefinition, nodes: dict[str, Node], problem: Any
) -> None:
    """A wait for a mail's activity reads the mail's message id: on every path from the start
    to the wait, a send must have recorded it (else the execution fails at the wait)."""
    for node in definition.nodes:
        if not isinstance(node, WaitFor):
            continue
        for slot in sorted({e.of_mail for e in node.events if e.of_mail}):
            if _reachable_without(definition.start, node.id, slot, nodes):
                problem(node.id, f"waits for activity of {slot!r}, which is not always sent first")


def _reachable_without(start: str, target: str, slot: str, nodes: dict[str, Node]) -> bool:
    def records(node_id: str) -> bool:
        node = nodes[node_id]
        return isinstance(node, Send) and node.result_slot == slot

    if records(start):
        return False
    reached: set[str] = set()
    todo = [start]
    while todo:
        current = todo.pop()
        if current == target:
            return True
        if current in reached:
            continue
        reached.add(current)
        todo.extend(t for t in _edges(nodes[current]) if not records(t))
    return False


def _cycle_from(start: str, graph: dict[str, list[str]]) -> list[str]:
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    visited: set[str] = set()
    while stack:
        current, path = stack.pop()
        for target in graph.get(current, []):
            if target == start:
                return [*path, start]
            if target in graph and target not in visited:
                visited.add(target)
                stack.append((target, [*path, target]))
    return []


# ---------------------------------------------------------------- compiling


LAMBDA_TASK_RESOURCES = frozenset({_INVOKE, _INVOKE_WAITING})
"""The Task resources that invoke a Lambda function (what the cost of a journey counts)."""


def node_states(definition: JourneyDefinition) -> dict[str, ASL]:
    """Each node's own states, as ``compile_journey`` writes them (node id -> its fragment),
    for whoever needs to read what one pass through a node does (tsunagu.reports.cost)."""
    compiler = _Compiler(definition)
    return {node.id: compiler.states_of(node) for node in definition.nodes}


def compile_journey(definition: JourneyDefinition, templates: Collection[str] | None = None) -> ASL:
    """The state machine of a definition (validated first: ValidationFailed names each node)."""
    validate(definition, templates)
    states: ASL = {}
    compiler = _Compiler(definition)
    for node in definition.nodes:
        for name, state in compiler.states_of(node).items():
            assert name not in states, f"two states named {name!r}"  # validate() refuses it
            states[name] = state
    if any(isinstance(n, Send | GatedStep) for n in definition.nodes):
        states[LEFT_THE_JOURNEY] = {
            "Type": "Succeed",
            "Comment": "The gate found the lead may not stay: unsubscribed, bounced, removed,"
            " converted, with sales, or the journey archived.",
        }
    if any(isinstance(n, WaitFor) and _awaited_mails(n) for n in definition.nodes):
        states[LEFT_WITHOUT_THE_MAIL] = {
            "Type": "Succeed",
            "Comment": "A wait for a mail's click or open timed out, and the mail was skipped:"
            " nothing follows up a mail the lead never got.",
        }
    return {
        "Comment": definition.description,
        "StartAt": compiler.to(definition.start),
        "States": states,
    }


def read_definition(text: str) -> JourneyDefinition:
    """A definition from JSON text (a file or a request body). Unreadable JSON is
    MalformedRequest; a definition that breaks the format is ValidationFailed, field by field."""
    data = load_json_object(text)
    try:
        return JourneyDefinition.model_validate(data)
    except PydanticValidationError as error:
        raise validation_failed(error, "(definition)") from None


def definition_schema() -> ASL:
    """The JSON Schema of the definition format (docs/journey-definition.schema.json)."""
    schema = JourneyDefinition.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://tsunagu.example.com/schemas/journey-definition.schema.json"
    return schema


def asl_text(asl: ASL) -> str:
    """The committed form of compiled ASL: two-space JSON, non-ASCII kept, a final newline."""
    return json.dumps(asl, ensure_ascii=False, indent=2) + "\n"


class _Compiler:
    def __init__(self, definition: JourneyDefinition) -> None:
        self.journey_id = definition.journey_id
        self.nodes = {n.id: n for n in definition.nodes}
        self.entries = entry_states(definition)
        self.one_day = _one_day_waits(definition.nodes)
        self.any_day = _reached_other_ways(definition)

    def states_of(self, node: Node) -> ASL:
        if isinstance(node, Send):
            return self._send(node)
        if isinstance(node, Wait):
            return self._wait(node)
        if isinstance(node, WaitFor):
            return self._wait_for(node)
        if isinstance(node, UpdateLead):
            return self._update_lead(node)
        if isinstance(node, NotifyOwner):
            return self._notify_owner(node)
        if isinstance(node, Webhook):
            return self._webhook(node)
        if isinstance(node, Branch):
            assert node.default is not None  # validated
            ways = [(c.outcome, self.to(c.next)) for c in node.cases]
            return self._decision(node, ways, node.default)
        if isinstance(node, Split):
            ways = [(p.outcome, self.to(p.next)) for p in node.paths[:-1]]
            return self._decision(node, ways, node.paths[-1].next)
        if isinstance(node, Holdout):
            kept = _kept_state(node)
            states = self._decision(node, [(HOLDOUT, kept)], node.next)
            states[kept] = {
                "Type": "Succeed",
                "Comment": "A control group: the lead gets nothing more from this journey.",
            }
            return states
        return {node.label: {"Type": "Succeed"}}

    def _decision(
        self,
        node: Branch | Split | Holdout,
        ways: list[tuple[str, str]],
        otherwise: str,
    ) -> ASL:
        """The journey_decide task (which records the decision on the lead) and the Choice on
        its outcome."""
        return {
            _decide_state(node): _lambda_task(
                "${JourneyDecideFunctionArn}",
                self._decision_payload(node, spec_of(node)),
                ResultSelector={"outcome.$": "$.Payload.outcome"},
                ResultPath="$.decision",
                Next=_which_state(node),
            ),
            _which_state(node): {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.decision.outcome", "StringEquals": outcome, "Next": target}
                    for outcome, target in ways
                ],
                "Default": self.to(otherwise),
            },
        }

    def _decision_payload(self, node: Node, spec: BaseModel) -> ASL:
        return {
            "journey_id": self.journey_id,
            "journey_version.$": "$.journey_version",
            "node": node.id,
            "lead_id.$": "$.lead_id",
            "execution_id.$": "$$.Execution.Id",
            "entered_at.$": "$$.State.EnteredTime",
            "decision": spec.model_dump(mode="json"),
        }

    def to(self, node_id: str) -> str:
        """The state a node goes to when it goes to ``node_id`` (but an only_that_day wait's
        own edge: ``_after_wait``)."""
        return self.entries[node_id]

    def _then(self, node_id: str | None) -> ASL:
        return {"Next": self.to(node_id)} if node_id else {"End": True}

    def _send(self, node: Send) -> ASL:
        gate, choice, hold, defer, send, skipped = _state_names(node)[:6]
        payload: ASL = {
            "journey_id": self.journey_id,
            "lead_id.$": "$.lead_id",
            "step": send,
            # A mail deferred by the frequency cap waits at this node (journeys status)
            "node": node.id,
            "execution_name.$": "$$.Execution.Name",
            "state.$": "$",
            # A mail skipped or deferred is a line on the lead's timeline, keyed on this entry
            "template_id": node.template,
            "entered_at.$": "$$.State.EnteredTime",
        }
        if node.deadline_input_field:
            payload["deadline_field"] = node.deadline_input_field
        if node.id in self.one_day:
            # The end of the day its only_that_day wait chose: only that wait's edge carries
            # it (the other ways in go through _any_day_state, which forgets it)
            payload["send_by_field"] = "schedule.send_by"
        slot = f"$.{node.result_slot}"
        if node.next:
            skip: ASL = {
                "Type": "Pass",
                "Result": {"status": SKIPPED, "message_id": "skipped"},
                "ResultPath": slot,
                "Next": self.to(node.next),
            }
        else:
            skip = {
                "Type": "Succeed",
                "Comment": "The gate skipped the last mail (a resume policy or the frequency cap).",
            }
        return {
            gate: _lambda_task(
                "${JourneyGateFunctionArn}",
                payload,
                ResultSelector={
                    "action.$": "$.Payload.action",
                    "reason.$": "$.Payload.reason",
                    "send_at.$": "$.Payload.send_at",
                    # The pass through this mail, for its send's idempotency key
                    "entered_at.$": "$$.State.EnteredTime",
                },
                ResultPath="$.gate",
                Next=choice,
            ),
            choice: {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.gate.action", "StringEquals": action, "Next": target}
                    for action, target in (
                        ("send", send),
                        ("defer", defer),
                        ("park", hold),
                        ("skip", skipped),
                    )
                ],
                "Default": LEFT_THE_JOURNEY,
            },
            hold: _hold_at_gate(payload, gate),
            defer: {"Type": "Wait", "TimestampPath": "$.gate.send_at", "Next": gate},
            send: _lambda_task(
                "${SendEmailFunctionArn}",
                {
                    "lead_id.$": "$.lead_id",
                    "template_id": node.template,
                    # Once per pass through the mail: a loop back to it mails again. Keyed on
                    # the pass's gate, kept in the state: every retry of this task, and a
                    # redrive of it (which keeps its input), asks with the same key, so a mail
                    # SES may have taken is never sent twice.
                    "idempotency_key.$": (
                        "States.Format('{}:{}:{}', $$.Execution.Id, $.gate.entered_at,"
                        " $$.State.Name)"
                    ),
                    # Recorded on mail_sent: the reports count the mail for this node.
                    "journey": {
                        "journey_id": self.journey_id,
                        "journey_version.$": "$.journey_version",
                        "node": node.id,
                        "step": send,
                    },
                },
                retry=[LAMBDA_RETRY, SEND_RETRY],
                ResultSelector={
                    "status.$": "$.Payload.status",
                    "message_id.$": "$.Payload.message_id",
                },
                ResultPath=slot,
                # A retry (SES refused minutes ago) finding the journey paused or the account
                # stopped sends nothing: back to the gate, which parks the lead as it would
                # have, and on resume decides by the policy. The error goes into the gate's
                # answer that let the mail through: the next gate lets that pass's booking in
                # the lead's send ledger go (the mail is counted when it goes out), and its
                # own answer replaces it (steps.GateRequest.held_booking).
                Catch=[{"ErrorEquals": ["SendHeld"], "ResultPath": "$.gate.held", "Next": gate}],
                **self._then(node.next),
            ),
            skipped: skip,
            **self._any_day(node, gate),
        }

    def _any_day(self, node: Send, gate: str) -> ASL:
        """For a send its only_that_day wait leads to, reached other ways too: those ways
        forget the day an earlier wait chose (the schedule is its wait's, not this mail's), so
        a lead clicking the next day is not refused the mail as past an older day."""
        if node.id not in self.any_day:
            return {}
        return {
            _any_day_state(node): {
                "Type": "Pass",
                "Comment": "Reached other than from its only-that-day wait: the day an earlier"
                " wait chose is not this mail's.",
                "Result": {},
                "ResultPath": "$.schedule",
                "Next": gate,
            }
        }

    def _wait(self, node: Wait) -> ASL:
        rule = node.rule.model_dump(exclude_none=True, exclude_defaults=True)
        rule["kind"] = node.rule.kind
        selector = {"send_at.$": "$.Payload.send_at"}
        if node.rule.only_that_day:
            selector["send_by.$"] = "$.Payload.send_by"
        return {
            _schedule_state(node): _lambda_task(
                "${NextSendTimeFunctionArn}",
                {
                    "rule": rule,
                    "state.$": "$",
                    # Where the execution now waits, for the canvas's live counts.
                    "journey_id": self.journey_id,
                    "node": node.id,
                    "execution.$": "$$.Execution.Name",
                },
                ResultSelector=selector,
                ResultPath="$.schedule",
                Next=_wait_state(node),
            ),
            _wait_state(node): {
                "Type": "Wait",
                "TimestampPath": "$.schedule.send_at",
                "Next": self._after_wait(node),
            },
        }

    def _after_wait(self, node: Wait) -> str:
        """An only_that_day wait goes straight to its mail's gate, with the day it chose."""
        assert node.next is not None  # validate() refuses a wait that leads nowhere
        target = self.nodes[node.next]
        if node.rule.only_that_day and isinstance(target, Send):
            return _gate_state(target)
        return self.to(node.next)

    def _step_gate(self, node: GatedStep) -> ASL:
        """Before a step that acts on or about the lead without mailing it: the journey gate
        with ``mail: false`` (tsunagu.journeys.gate.decide_step) parks it while the journey or
        the account is paused, as a mail is parked (resume releases it; a release for a mail's
        pace or skip is a mail's, and the step goes on), and ends the journey for a lead that
        may not stay. Its release is kept in ``$.release`` as a mail's is: after an
        ``expire`` release, the deadlines of later mails hold."""
        gate, choice, hold = _step_gate_states(node)
        payload: ASL = {
            "journey_id": self.journey_id,
            "lead_id.$": "$.lead_id",
            "step": node.label,
            "node": node.id,
            "execution_name.$": "$$.Execution.Name",
            "state.$": "$",
            "entered_at.$": "$$.State.EnteredTime",
            "mail": False,
        }
        return {
            gate: _lambda_task(
                "${JourneyGateFunctionArn}",
                payload,
                ResultSelector={"action.$": "$.Payload.action", "reason.$": "$.Payload.reason"},
                ResultPath="$.gate",
                Next=choice,
            ),
            choice: {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.gate.action", "StringEquals": "go", "Next": node.label},
                    {"Variable": "$.gate.action", "StringEquals": "park", "Next": hold},
                ],
                "Default": LEFT_THE_JOURNEY,
            },
            hold: _hold_at_gate(payload, gate),
        }

    def _wait_for(self, node: WaitFor) -> ASL:
        events = []
        for awaited in node.events:
            event: ASL = {"type": awaited.type}
            if awaited.of_mail:
                event["message_id.$"] = f"$.{awaited.of_mail}.message_id"
            if awaited.url_contains:
                event["url_contains"] = awaited.url_contains
            event["label"] = awaited.outcome
            events.append(event)
        targets = [self.to(e.next) for e in node.exits]
        decided = len(set(targets)) > 1 and node.question is not None
        assert node.timed_out is not None  # validated
        mails = _awaited_mails(node)
        states: ASL = {
            _wait_for_state(node): _lambda_task(
                "${WaitForEventFunctionArn}",
                {
                    "token.$": "$$.Task.Token",
                    "lead_id.$": "$.lead_id",
                    "wait_id.$": "States.Format('{}:{}', $$.Execution.Name, $$.State.Name)",
                    "events": events,
                    "timeout_seconds": node.within_seconds,
                    # The event that ends the wait is recorded on the lead as this node's
                    # journey_decision (tsunagu.journeys.waits).
                    "journey_id": self.journey_id,
                    "journey_version.$": "$.journey_version",
                    "node": node.id,
                    # When the lead entered (the execution's start, and its input's entered_on):
                    # what it did since counts, also before this wait was registered; and the
                    # state, whose ``response`` names the event that ended the wait before
                    # this one (which does not count twice).
                    "execution.$": "$$.Execution",
                    "state.$": "$",
                },
                resource=_INVOKE_WAITING,
                TimeoutSeconds=node.within_seconds,
                ResultPath="$.response",
                Catch=[
                    {
                        "ErrorEquals": ["States.Timeout"],
                        "ResultPath": "$.timed_out",
                        "Next": _mail_skipped_state(node) if mails else _time_is_up_state(node),
                    }
                ],
                Next=node.question if decided else targets[0],
            ),
            # Nothing happened: recorded on the lead as the node's decision, as an event that
            # ended the wait is by route_events (no Lambda runs when a task times out).
            _time_is_up_state(node): _lambda_task(
                "${JourneyDecideFunctionArn}",
                self._decision_payload(
                    node, TimedOutSpec(kind="timed_out", within_seconds=node.within_seconds)
                ),
                ResultPath=None,
                Next=self.to(node.timed_out),
            ),
        }
        if mails:
            # Nothing happened in time, and a mail it watched never went: leave, rather than
            # take the "did not click" way (other events, such as attendance, still counted).
            skipped = [{"Variable": f"$.{slot}.status", "StringEquals": SKIPPED} for slot in mails]
            states[_mail_skipped_state(node)] = {
                "Type": "Choice",
                "Choices": [
                    {
                        **(skipped[0] if len(skipped) == 1 else {"Or": skipped}),
                        "Next": LEFT_WITHOUT_THE_MAIL,
                    }
                ],
                "Default": _time_is_up_state(node),
            }
        if decided and node.question is not None:
            states[node.question] = {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.response.matched", "StringEquals": e.outcome, "Next": target}
                    for e, target in zip(node.exits[:-1], targets[:-1], strict=True)
                ],
                "Default": targets[-1],
            }
        return states

    def _update_lead(self, node: UpdateLead) -> ASL:
        payload: ASL = {"lead_id.$": "$.lead_id", "journey_id": self.journey_id}
        if node.stage:
            payload["stage"] = node.stage
        if node.add_tags:
            payload["add_tags"] = list(node.add_tags)
        if node.remove_tags:
            payload["remove_tags"] = list(node.remove_tags)
        if node.fields:
            payload["fields"] = dict(node.fields)
        return {
            **self._step_gate(node),
            node.label: _lambda_task(
                "${UpdateLeadFunctionArn}", payload, ResultPath=None, **self._then(node.next)
            ),
        }

    def _notify_owner(self, node: NotifyOwner) -> ASL:
        """hand_off's notify step, once per execution and state (its send ledger key). A mail
        SES keeps refusing is recorded on the lead (``mail_failed``), and the lead goes on."""
        payload: ASL = {
            "step": "notify",
            "lead_id.$": "$.lead_id",
            "assign_owner": True,
            "key.$": "States.Format('{}:{}', $$.Execution.Id, $$.State.Name)",
            "note": node.message,
            "journey_id": self.journey_id,
            "node": node.id,
        }
        without = _without_mail_state(node)
        return {
            **self._step_gate(node),
            node.label: _lambda_task(
                "${HandOffFunctionArn}",
                payload,
                retry=(OWNER_MAIL_RETRY,),
                ResultPath=None,
                Catch=[{"ErrorEquals": ["MessengerError"], "ResultPath": None, "Next": without}],
                **self._then(node.next),
            ),
            without: {"Type": "Pass", **self._then(node.next)},
        }

    def _webhook(self, node: Webhook) -> ASL:
        """hand_off's push step with the node's event; parked when it fails every retry, and
        the lead goes on either way."""
        payload: ASL = {
            "step": "push",
            "lead_id.$": "$.lead_id",
            "key.$": "States.Format('{}:{}', $$.Execution.Id, $$.State.Name)",
            "event": node.event,
            "journey_id": self.journey_id,
            "node": node.id,
        }
        park = _park_state(node)
        return {
            **self._step_gate(node),
            node.label: _lambda_task(
                "${HandOffFunctionArn}",
                payload,
                retry=(WEBHOOK_RETRY, LAMBDA_RETRY),
                ResultPath=None,
                Catch=[
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.webhook_error", "Next": park}
                ],
                **self._then(node.next),
            ),
            park: _lambda_task(
                "${HandOffFunctionArn}",
                {
                    "step": "park",
                    "lead_id.$": "$.lead_id",
                    "error.$": "$.webhook_error",
                    "event": node.event,
                    "journey_id": self.journey_id,
                    "node": node.id,
                },
                ResultPath=None,
                **self._then(node.next),
            ),
        }


def _hold_at_gate(payload: ASL, gate: str) -> ASL:
    """The state that parks a lead while its journey is paused or stopped: the gate's own call
    with a task token, released (resume, lifting the stop) back into the gate, which judges
    again; NotPaused (the pause ended before the park was stored) goes back at once."""
    return _lambda_task(
        "${JourneyGateFunctionArn}",
        {**payload, "park": {"token.$": "$$.Task.Token"}},
        resource=_INVOKE_WAITING,
        ResultPath="$.release",
        Next=gate,
        Catch=[{"ErrorEquals": ["NotPaused"], "ResultPath": "$.not_paused", "Next": gate}],
    )


def _lambda_task(
    function: str,
    payload: ASL,
    *,
    resource: str = _INVOKE,
    retry: Iterable[ASL] = (LAMBDA_RETRY,),
    **fields: Any,
) -> ASL:
    return {
        "Type": "Task",
        "Resource": resource,
        "Parameters": {"FunctionName": function, "Payload": payload},
        "Retry": [dict(r) for r in retry],
        **fields,
    }
