"""Journey definitions: each validation rule answers with the node's id and a sentence; the
compiler puts every mail behind the gate and gives every task the same retries."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tsunagu.errors import MalformedRequest, ValidationFailed
from tsunagu.journeys.compiler import (
    LAMBDA_RETRY,
    LEFT_THE_JOURNEY,
    LEFT_WITHOUT_THE_MAIL,
    SEND_RETRY,
    compile_journey,
    read_definition,
)
from tsunagu.journeys.definition import JourneyDefinition

BASE: dict[str, Any] = {
    "$format": "tsunagu.journey/1",
    "journey_id": "trial_follow_up",
    "description": "A trial user gets a tip; a click earns the case study, silence a reminder.",
    "start": "tip",
    "nodes": [
        {
            "id": "tip",
            "kind": "send",
            "label": "the tip",
            "template": "trial-tip",
            "next": "tip_clicked",
        },
        {
            "id": "tip_clicked",
            "kind": "wait_for",
            "label": "a click on the tip",
            "events": [{"type": "link_clicked", "of_mail": "tip", "outcome": "clicked"}],
            "within_seconds": 172800,
            "exits": [{"outcome": "clicked", "next": "case_study"}],
            "timed_out": "before_reminder",
        },
        {
            "id": "case_study",
            "kind": "send",
            "label": "the case study",
            "template": "trial-case-study",
        },
        {
            "id": "before_reminder",
            "kind": "wait",
            "label": "the reminder",
            "rule": {"kind": "business_days_later", "days": 2, "at": "10:00"},
            "next": "reminder",
        },
        {"id": "reminder", "kind": "send", "label": "the reminder", "template": "trial-reminder"},
    ],
}
TEMPLATES = {"trial-tip", "trial-case-study", "trial-reminder"}


def changed(change: Any) -> JourneyDefinition:
    data = copy.deepcopy(BASE)
    change(data)
    return JourneyDefinition.model_validate(data)


def node(data: dict[str, Any], node_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in data["nodes"] if n["id"] == node_id)
    return found


def problems(definition: JourneyDefinition) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as refused:
        compile_journey(definition, TEMPLATES)
    return [(e.field, e.message) for e in refused.value.errors]


def test_a_valid_definition_compiles_with_every_mail_behind_the_gate() -> None:
    asl = compile_journey(JourneyDefinition.model_validate(BASE), TEMPLATES)

    states = asl["States"]
    assert asl["StartAt"] == "Check the gate before the tip"
    gate = states["What did the gate say about the tip?"]
    assert [c["Next"] for c in gate["Choices"]] == [
        "Send the tip",
        "Defer the tip under the frequency cap",
        "Hold the tip while the journey is paused",
        "Note that the tip was skipped",
    ]
    assert gate["Default"] == LEFT_THE_JOURNEY
    assert states["Send the tip"]["Retry"] == [LAMBDA_RETRY, SEND_RETRY]
    # A retry held by a pause or the emergency stop (SendHeld) goes back through the gate,
    # the error in the gate's answer that let it through (whose booking the gate lets go)
    [held] = states["Send the tip"]["Catch"]
    assert (held["ErrorEquals"], held["Next"]) == (["SendHeld"], "Check the gate before the tip")
    assert held["ResultPath"] == "$.gate.held"
    tasks = [s for s in states.values() if s["Type"] == "Task"]
    assert all(s["Retry"][0] == LAMBDA_RETRY for s in tasks)
    assert all(s["Parameters"]["FunctionName"].startswith("${") for s in tasks)
    wait = states["Wait for a click on the tip"]
    assert wait["Catch"][0]["Next"] == "Mail skipped for a click on the tip?"
    assert states["Mail skipped for a click on the tip?"]["Default"] == (
        "Time is up for a click on the tip"
    )
    assert wait["Parameters"]["Payload"]["events"][0]["message_id.$"] == "$.tip.message_id"
    assert states["Send the reminder"]["End"] is True


def test_a_wait_for_a_skipped_mail_that_times_out_leaves_the_journey() -> None:
    # Given the tip, followed by a wait for a click on it whose "no click" way is a reminder
    states = compile_journey(JourneyDefinition.model_validate(BASE), TEMPLATES)["States"]

    # When the gate skips the tip, the lead still waits (other events would still count)
    skipped = states["Note that the tip was skipped"]
    assert skipped["Result"] == {"status": "skipped", "message_id": "skipped"}
    assert skipped["Next"] == "Wait for a click on the tip"

    # Then, when the wait times out, a lead whose tip was skipped (by the gate, or by
    # send_email at the moment of sending) leaves instead of getting the "you did not click"
    # reminder; one that got it takes the timed-out way
    caught = states["Wait for a click on the tip"]["Catch"][0]["Next"]
    assert states[caught] == {
        "Type": "Choice",
        "Choices": [
            {"Variable": "$.tip.status", "StringEquals": "skipped", "Next": LEFT_WITHOUT_THE_MAIL}
        ],
        "Default": "Time is up for a click on the tip",
    }
    assert states[LEFT_WITHOUT_THE_MAIL]["Type"] == "Succeed"


def test_a_wait_for_two_events_of_one_mail_asks_about_the_mail_once() -> None:
    def both(data: dict[str, Any]) -> None:
        wait = node(data, "tip_clicked")
        wait["events"].append({"type": "mail_opened", "of_mail": "tip", "outcome": "opened"})
        wait["exits"].append({"outcome": "opened", "next": "case_study"})

    states = compile_journey(changed(both), TEMPLATES)["States"]
    [choice] = states["Mail skipped for a click on the tip?"]["Choices"]
    assert choice["Variable"] == "$.tip.status"


def test_a_wait_for_no_mail_times_out_as_before() -> None:
    def visit(data: dict[str, Any]) -> None:
        wait = node(data, "tip_clicked")
        wait["events"] = [{"type": "page_view", "url_contains": "/pricing", "outcome": "clicked"}]
        wait["exits"] = [{"outcome": "clicked", "next": "case_study"}]
        wait.pop("question", None)

    states = compile_journey(changed(visit), TEMPLATES)["States"]
    caught = states["Wait for a click on the tip"]["Catch"][0]["Next"]
    assert caught == "Time is up for a click on the tip"
    assert LEFT_WITHOUT_THE_MAIL not in states


def test_the_same_definition_always_compiles_to_the_same_asl() -> None:
    first = json.dumps(compile_journey(JourneyDefinition.model_validate(BASE)))
    again = json.dumps(compile_journey(JourneyDefinition.model_validate(copy.deepcopy(BASE))))
    assert first == again


def test_where_the_nodes_are_on_the_canvas_changes_nothing_compiled() -> None:
    placed = changed(lambda data: data.update(layout={"tip": {"x": 10, "y": 20}}))
    assert placed.layout is not None and placed.layout["tip"].x == 10
    base = JourneyDefinition.model_validate(BASE)
    assert compile_journey(placed, TEMPLATES) == compile_journey(base, TEMPLATES)


@pytest.mark.parametrize(
    "kind", ["stage_changed", "crm_status_changed", "lead_updated", "mail_delivered"]
)
def test_a_wait_for_an_event_tsunagu_records_itself_is_named(kind: str) -> None:
    # route_events resumes no wait on these (what Tsunagu did, not what the lead did): "wait
    # up to two days for the lead to become an MQL" would always take its timed_out way
    def waits_for_a_record(data: dict[str, Any]) -> None:
        node(data, "tip_clicked")["events"] = [{"type": kind, "outcome": "clicked"}]

    [(where, sentence)] = problems(changed(waits_for_a_record))
    assert where == "tip_clicked"
    assert f"waits for {kind!r}, which Tsunagu records itself" in sentence
    assert "'clicked' is never taken" in sentence


@pytest.mark.parametrize("kind", ["page_view", "seminar_attended", "demo_booked", "form_submitted"])
def test_a_wait_for_what_the_lead_does_is_no_problem(kind: str) -> None:
    # A site's own kinds (/t/events takes any but Tsunagu's) end waits as Tsunagu's do
    def waits_for_an_act(data: dict[str, Any]) -> None:
        node(data, "tip_clicked")["events"] = [{"type": kind, "outcome": "clicked"}]

    assert compile_journey(changed(waits_for_an_act), TEMPLATES)["States"]


def test_an_unreachable_node_is_named() -> None:
    def orphan(data: dict[str, Any]) -> None:
        data["nodes"].append(
            {"id": "orphan", "kind": "send", "label": "the orphan", "template": "trial-tip"}
        )

    assert problems(changed(orphan)) == [("orphan", "cannot be reached from the start")]


def test_a_loop_without_a_wait_is_named() -> None:
    def loop(data: dict[str, Any]) -> None:
        node(data, "case_study")["next"] = "tag"
        data["nodes"].append(
            {
                "id": "tag",
                "kind": "update_lead",
                "label": "Tag the lead",
                "add_tags": ["t"],
                "next": "case_study",
            }
        )

    assert problems(changed(loop)) == [
        ("case_study", "is in a loop with no wait in it: case_study -> tag -> case_study")
    ]


def test_a_loop_through_a_wait_is_allowed() -> None:
    def loop(data: dict[str, Any]) -> None:
        node(data, "reminder")["next"] = "tip_clicked"

    compile_journey(changed(loop), TEMPLATES)


def test_a_wait_for_without_its_timed_out_edge_is_named() -> None:
    def no_timeout(data: dict[str, Any]) -> None:
        del node(data, "tip_clicked")["timed_out"]
        data["nodes"] = [n for n in data["nodes"] if n["id"] not in ("before_reminder", "reminder")]

    assert problems(changed(no_timeout)) == [
        ("tip_clicked", "has no timed_out edge: say where leads go when nothing happens in time")
    ]


def test_an_unknown_template_is_named() -> None:
    def unknown(data: dict[str, Any]) -> None:
        node(data, "reminder")["template"] = "trial-remnder"

    assert problems(changed(unknown)) == [
        ("reminder", "sends template 'trial-remnder', which does not exist")
    ]


def test_an_edge_to_a_missing_node_is_named() -> None:
    def dangling(data: dict[str, Any]) -> None:
        node(data, "case_study")["next"] = "upsell"

    assert problems(changed(dangling)) == [("case_study", "goes to 'upsell', which is not a node")]


def test_outcomes_going_different_ways_need_a_named_decision() -> None:
    def two_ways(data: dict[str, Any]) -> None:
        wait = node(data, "tip_clicked")
        wait["events"].append({"type": "mail_opened", "of_mail": "tip", "outcome": "opened"})
        wait["exits"].append({"outcome": "opened", "next": "before_reminder"})

    assert problems(changed(two_ways)) == [
        ("tip_clicked", "sends outcomes different ways: name the decision in 'question'")
    ]


def test_an_outcome_without_an_exit_is_named() -> None:
    def no_exit(data: dict[str, Any]) -> None:
        node(data, "tip_clicked")["events"].append({"type": "mail_opened", "outcome": "opened"})

    assert problems(changed(no_exit)) == [("tip_clicked", "has no exit for the outcome 'opened'")]


def test_waiting_for_a_mail_no_send_records_is_named() -> None:
    def other_mail(data: dict[str, Any]) -> None:
        node(data, "tip_clicked")["events"][0]["of_mail"] = "newsletter"

    assert problems(changed(other_mail)) == [
        ("tip_clicked", "waits for activity of 'newsletter', which no send records")
    ]


def test_two_nodes_with_one_id_are_named() -> None:
    def twice(data: dict[str, Any]) -> None:
        data["nodes"].append(dict(node(data, "reminder"), label="another reminder"))

    assert ("reminder", "two nodes have this id") in problems(changed(twice))


def test_a_rule_missing_its_numbers_is_named() -> None:
    def no_days(data: dict[str, Any]) -> None:
        del node(data, "before_reminder")["rule"]["days"]

    assert problems(changed(no_days)) == [("before_reminder", "business_days_later needs its days")]


def test_a_step_name_over_80_characters_is_named() -> None:
    def long_label(data: dict[str, Any]) -> None:
        node(data, "case_study")["label"] = "the case study about " + "x" * 39

    [(node_id, sentence)] = problems(changed(long_label))
    assert node_id == "case_study" and "longer than 80 characters" in sentence


def test_waiting_for_a_mail_sent_only_later_is_named() -> None:
    # The wait reads the mail's message id: on a path that has not sent it, the execution fails.
    def wait_first(data: dict[str, Any]) -> None:
        data["start"] = "tip_clicked"
        node(data, "tip_clicked")["events"][0]["of_mail"] = "reminder"
        data["nodes"] = [n for n in data["nodes"] if n["id"] != "tip"]

    assert problems(changed(wait_first)) == [
        ("tip_clicked", "waits for activity of 'reminder', which is not always sent first")
    ]


def test_a_loop_through_a_wait_that_may_not_wait_is_named() -> None:
    # same_day_or_next answers "now" before its cutoff: such a loop spins until the cutoff.
    def spin(data: dict[str, Any]) -> None:
        before = node(data, "before_reminder")
        before["rule"] = {"kind": "same_day_or_next", "cutoff": "17:00", "at": "10:00"}
        before["next"] = "tag"
        data["nodes"].append(
            {
                "id": "tag",
                "kind": "update_lead",
                "label": "Tag the lead",
                "add_tags": ["t"],
                "next": "before_reminder",
            }
        )
        data["nodes"] = [n for n in data["nodes"] if n["id"] != "reminder"]

    [(node_id, sentence)] = problems(changed(spin))
    assert node_id == "before_reminder" and "loop with no wait" in sentence


def test_a_result_kept_under_a_name_the_journey_uses_is_named() -> None:
    def overwrite(data: dict[str, Any]) -> None:
        node(data, "case_study")["result"] = "lead_id"

    assert problems(changed(overwrite)) == [
        (
            "case_study",
            "keeps its result as 'lead_id', a name the journey uses:"
            " every execution's input carries it",
        )
    ]


@pytest.mark.parametrize(
    "slot", ["journey_version", "trigger", "entered_on", "entered_by", "time_zone", "journey_id"]
)
def test_a_result_kept_under_a_key_of_the_execution_input_is_refused(slot: str) -> None:
    # Given a send whose result would replace a key every execution's input carries (the
    # version the next decision reads, when the lead entered, its time zone)
    def overwrite(data: dict[str, Any]) -> None:
        node(data, "case_study")["result"] = slot

    # Then the definition is refused, saying why, rather than breaking the run at a later step
    assert problems(changed(overwrite)) == [
        (
            "case_study",
            f"keeps its result as {slot!r}, a name the journey uses:"
            " every execution's input carries it",
        )
    ]


def test_a_result_kept_under_a_key_the_steps_write_is_refused() -> None:
    def overwrite(data: dict[str, Any]) -> None:
        node(data, "case_study")["result"] = "schedule"

    assert problems(changed(overwrite)) == [
        (
            "case_study",
            "keeps its result as 'schedule', a name the journey uses: the journey's steps write it",
        )
    ]


@pytest.mark.parametrize(
    ("change", "sentence"),
    [
        (
            lambda data: node(data, "tip_clicked").update(question="Wait for a click on the tip"),
            "makes the step name 'Wait for a click on the tip', which itself has already",
        ),
        (
            lambda data: node(data, "before_reminder").update(
                schedule_label="Wait", wait_label="Wait"
            ),
            "makes the step name 'Wait', which itself has already",
        ),
    ],
    ids=["a question named like its wait", "schedule and wait named alike"],
)
def test_a_node_whose_own_steps_share_a_name_is_named(change: Any, sentence: str) -> None:
    node_id = "tip_clicked" if "click" in sentence else "before_reminder"
    assert (node_id, sentence) in problems(changed(change))


def test_the_gates_exit_name_is_kept_for_the_gate() -> None:
    def take_it(data: dict[str, Any]) -> None:
        node(data, "case_study")["next"] = "tag"
        data["nodes"].append(
            {
                "id": "tag",
                "kind": "update_lead",
                "label": "The lead left the journey",
                "add_tags": ["t"],
            }
        )

    assert problems(changed(take_it)) == [
        (
            "tag",
            "makes the step name 'The lead left the journey', which the gate's exit has already",
        )
    ]


@pytest.mark.parametrize(
    "change",
    [
        lambda data: node(data, "tip_clicked")["events"][0].update(outcome="o" * 41),
        lambda data: node(data, "case_study").update(template="trial_case_study"),
        lambda data: data["nodes"].append(
            {"id": "t", "kind": "update_lead", "label": "Tag", "add_tags": ["x" * 51]}
        ),
        lambda data: data["nodes"].append(
            {
                "id": "o",
                "kind": "update_lead",
                "label": "Give the lead to Sato",
                "fields": {"owner_email": "佐藤 営業部"},
            }
        ),
    ],
    ids=[
        "an outcome over 40 characters",
        "a template id with _",
        "a tag over 50 characters",
        "an owner that is no address",
    ],
)
def test_the_format_refuses_what_the_journey_functions_would_refuse(change: Any) -> None:
    # Caught when the definition is read, not when a lead reaches the step and its task fails.
    data = copy.deepcopy(BASE)
    change(data)
    with pytest.raises(ValidationFailed):
        read_definition(json.dumps(data))


def test_a_definition_file_that_breaks_the_format_is_refused_field_by_field() -> None:
    with pytest.raises(MalformedRequest):
        read_definition("{not json")
    bad = copy.deepcopy(BASE)
    bad["nodes"][0]["kind"] = "teleport"
    with pytest.raises(ValidationFailed) as refused:
        read_definition(json.dumps(bad))
    assert refused.value.errors[0].field.startswith("nodes.0")


# ---------------------------------------------------------------- nodes that tell sales
def telling(data: dict[str, Any]) -> None:
    """The case study is followed by a mark, a mail to the owner and a call to the CRM."""
    node(data, "case_study")["next"] = "mark"
    data["nodes"] += [
        {"id": "mark", "kind": "update_lead", "label": "Mark the lead as engaged",
         "stage": "sql", "fields": {"interest": "case study"}, "next": "tell_owner"},
        {"id": "tell_owner", "kind": "notify_owner", "label": "Tell the owner",
         "message": "The lead read the case study.", "next": "tell_crm"},
        {"id": "tell_crm", "kind": "webhook", "label": "Tell the CRM",
         "event": "lead.engaged"},
    ]  # fmt: skip


def test_notify_owner_and_webhook_call_hand_off_and_the_lead_goes_on_when_they_fail() -> None:
    states = compile_journey(changed(telling), TEMPLATES)["States"]

    mark = states["Mark the lead as engaged"]["Parameters"]["Payload"]
    assert mark["stage"] == "sql" and mark["fields"] == {"interest": "case study"}
    owner = states["Tell the owner"]
    assert owner["Parameters"]["FunctionName"] == "${HandOffFunctionArn}"
    payload = owner["Parameters"]["Payload"]
    assert payload["step"] == "notify" and payload["assign_owner"] is True
    assert payload["note"] == "The lead read the case study."
    assert "MessengerError" in owner["Retry"][0]["ErrorEquals"]
    # SES refusing every retry: the lead goes on to the next node all the same
    [caught] = owner["Catch"]
    assert caught["ErrorEquals"] == ["MessengerError"] and caught["ResultPath"] is None
    assert states[caught["Next"]] == {"Type": "Pass", "Next": "Check the gate: Tell the CRM"}
    assert owner["Next"] == "Check the gate: Tell the CRM"

    crm = states["Tell the CRM"]
    assert crm["Parameters"]["Payload"]["step"] == "push"
    assert crm["Parameters"]["Payload"]["event"] == "lead.engaged"
    assert crm["Retry"][0]["ErrorEquals"] == ["PushFailed"]
    # a call that fails every retry is parked, and the journey ends as it would have
    park = states[crm["Catch"][0]["Next"]]
    assert park["Parameters"]["Payload"]["step"] == "park"
    assert crm["End"] is True and park["End"] is True


def test_an_update_lead_that_changes_nothing_is_named() -> None:
    def empty(data: dict[str, Any]) -> None:
        node(data, "case_study")["next"] = "mark"
        data["nodes"].append({"id": "mark", "kind": "update_lead", "label": "Mark it"})

    assert problems(changed(empty)) == [("mark", "changes nothing: set a stage, tags or fields")]


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "update_lead", "label": "Mark", "stage": "vip"},
        {"kind": "notify_owner", "label": "Tell", "message": "x" * 1001},
        {"kind": "webhook", "label": "Call", "event": "Lead Engaged"},
        {"kind": "webhook", "label": "Call", "event": "x", "url": "http://169.254.169.254/"},
    ],
    ids=["an unknown stage", "a message too long", "an event with spaces", "a URL of its own"],
)
def test_the_format_refuses_bad_sales_nodes(bad: dict[str, Any]) -> None:
    data = copy.deepcopy(BASE)
    data["nodes"].append({"id": "extra", **bad})
    with pytest.raises(ValidationFailed):
        read_definition(json.dumps(data))


@pytest.mark.parametrize(
    ("unfinished", "sentence"),
    [
        ({"kind": "notify_owner", "label": "Tell", "message": " "}, "has no message"),
        ({"kind": "webhook", "label": "Call"}, "has no event"),
        ({"kind": "wait", "label": "the wait", "rule": {"kind": "next_business_day",
          "at": "10:00"}}, "leads nowhere"),
        ({"kind": "branch", "label": "the interest", "default": "case_study", "cases": []},
         "has no case"),
        ({"kind": "split", "label": "the test", "paths": [
            {"outcome": "a", "percent": 100, "next": "case_study"}]}, "has 1 path(s)"),
        ({"kind": "split", "label": "the test", "paths": [
            {"outcome": "a", "percent": 0, "next": "case_study"},
            {"outcome": "b", "percent": 100, "next": "case_study"}]}, "takes 0%"),
    ],
    ids=["a blank message", "no event", "a wait with no next", "no case", "one path",
         "an emptied share"],
)  # fmt: skip
def test_what_a_node_just_added_still_lacks_is_named_on_it_not_refused_as_a_format(
    unfinished: dict[str, Any], sentence: str
) -> None:
    # A draft keeps what the console's palette adds and an emptied input leaves (the format
    # takes it); the compiler names what is missing before it publishes or dry-runs
    def added(data: dict[str, Any]) -> None:
        node(data, "case_study")["next"] = "extra"
        data["nodes"].append({"id": "extra", **unfinished})

    said = [message for field, message in problems(changed(added)) if field == "extra"]
    assert any(sentence in message for message in said), said


def test_a_blank_name_is_no_name() -> None:
    assert changed(lambda data: data.update(name="")).name is None


def test_a_branch_case_as_long_as_a_filter_may_be_compiles() -> None:
    when = ",".join(f"tag=t{i:03d}" for i in range(60))  # 539 characters, a filter's 1,000

    def branching(data: dict[str, Any]) -> None:
        data["start"] = "pick"
        data["nodes"].append({"id": "pick", "kind": "branch", "label": "the interest",
            "cases": [{"outcome": "tagged", "when": when, "next": "tip"}],
            "default": "tip"})  # fmt: skip

    states = compile_journey(changed(branching), TEMPLATES)["States"]
    payload = states["Decide the interest"]["Parameters"]["Payload"]
    assert payload["decision"]["cases"][0]["when"] == when


def test_a_timed_out_wait_is_recorded_on_the_lead_before_the_timed_out_edge() -> None:
    states = compile_journey(JourneyDefinition.model_validate(BASE), TEMPLATES)["States"]

    [caught] = states["Wait for a click on the tip"]["Catch"]
    assert caught["ErrorEquals"] == ["States.Timeout"]
    # (after asking whether the tip was skipped: a lead that got it takes the timed-out edge)
    recorded = states[states[caught["Next"]]["Default"]]
    assert states[caught["Next"]]["Default"] == "Time is up for a click on the tip"
    assert recorded["Parameters"]["FunctionName"] == "${JourneyDecideFunctionArn}"
    payload = recorded["Parameters"]["Payload"]
    assert payload["node"] == "tip_clicked"
    assert payload["decision"] == {"kind": "timed_out", "within_seconds": 172800}
    assert recorded["ResultPath"] is None  # the lead's state goes on unchanged
    assert recorded["Next"] == "Schedule the reminder"


def test_a_wait_for_with_two_exits_for_one_outcome_is_named() -> None:
    # Step Functions would take the first exit, the dry run the last: neither is what was meant
    def twice(data: dict[str, Any]) -> None:
        wait = node(data, "tip_clicked")
        wait["exits"].append({"outcome": "clicked", "next": "before_reminder"})
        wait["question"] = "Which way after the tip?"

    assert problems(changed(twice)) == [
        ("tip_clicked", "has two exits for the outcome 'clicked': say which way it goes")
    ]


# ---------------------------------------------------------------- each pass of a loop
def looping(data: dict[str, Any]) -> None:
    """The reminder again, the next business day, until the lead clicks the tip."""
    node(data, "reminder")["next"] = "tip_clicked"


def test_a_send_in_a_loop_is_keyed_on_each_pass_through_its_gate() -> None:
    states = compile_journey(changed(looping), TEMPLATES)["States"]

    # The gate keeps when it was entered: a new instant on each pass, the same one on every
    # retry of the send that follows it, and on a redrive of that send (its input is kept)
    gate = states["Check the gate before the reminder"]
    assert gate["ResultSelector"]["entered_at.$"] == "$$.State.EnteredTime"
    assert gate["ResultPath"] == "$.gate"
    key = states["Send the reminder"]["Parameters"]["Payload"]["idempotency_key.$"]
    assert key == ("States.Format('{}:{}:{}', $$.Execution.Id, $.gate.entered_at, $$.State.Name)")
    # The wait for a click reads the message id of the mail sent on this pass
    wait = states["Wait for a click on the tip"]["Parameters"]["Payload"]
    assert wait["events"][0]["message_id.$"] == "$.tip.message_id"


# ---------------------------------------------------------------- a mail of one day
def one_day(data: dict[str, Any]) -> None:
    """A click brings the case study at once; silence brings it, only that day, later."""
    node(data, "tip_clicked")["timed_out"] = "case_study_day"
    data["nodes"] = [n for n in data["nodes"] if n["id"] not in ("before_reminder", "reminder")]
    rule = {"kind": "same_day_or_next", "cutoff": "17:00", "at": "10:00", "only_that_day": True}
    data["nodes"].append(
        {
            "id": "case_study_day",
            "kind": "wait",
            "label": "the case study",
            "rule": rule,
            "next": "case_study",
        }
    )


def test_only_the_edge_from_an_only_that_day_wait_carries_its_day() -> None:
    states = compile_journey(changed(one_day), TEMPLATES)["States"]

    # From its own wait, the mail's gate reads the day that wait chose
    assert states["Wait until the case study may go"]["Next"] == (
        "Check the gate before the case study"
    )
    gate = states["Check the gate before the case study"]["Parameters"]["Payload"]
    assert gate["send_by_field"] == "schedule.send_by"
    # Any other way (the click) forgets a day an earlier wait chose, before the gate reads it
    clicked = states["Wait for a click on the tip"]["Next"]
    assert clicked == "Any day will do for the case study"
    assert states[clicked] == {
        "Type": "Pass",
        "Comment": "Reached other than from its only-that-day wait: the day an earlier wait"
        " chose is not this mail's.",
        "Result": {},
        "ResultPath": "$.schedule",
        "Next": "Check the gate before the case study",
    }


def test_an_only_that_day_wait_not_right_before_its_mail_is_named() -> None:
    # A step between the wait and the mail forgets the day (the gate would send the mail on a
    # later day all the same, while the dry run would skip it): the editor says so instead
    def one_day_then_a_click(data: dict[str, Any]) -> None:
        one_day(data)
        node(data, "case_study_day")["next"] = "tip_clicked"
        node(data, "tip_clicked")["timed_out"] = "case_study"
        data["start"] = "case_study_day"
        node(data, "tip")["next"] = None
        node(data, "tip_clicked")["events"][0].pop("of_mail")

    said = problems(changed(one_day_then_a_click))
    assert [field for field, _ in said] == ["case_study_day"], said
    assert "right after" in said[0][1]


def test_a_mail_reached_only_from_its_only_that_day_wait_has_no_extra_step() -> None:
    def only_from_the_wait(data: dict[str, Any]) -> None:
        one_day(data)
        node(data, "tip_clicked")["exits"][0]["next"] = "case_study_day"

    states = compile_journey(changed(only_from_the_wait), TEMPLATES)["States"]
    assert "Any day will do for the case study" not in states


# ---------------------------------------------------------------- pause holds every step
def test_update_lead_notify_owner_and_webhook_are_held_by_a_pause_and_left_by_an_exit() -> None:
    states = compile_journey(changed(telling), TEMPLATES)["States"]

    for label in ("Mark the lead as engaged", "Tell the owner", "Tell the CRM"):
        gate = states[f"Check the gate: {label}"]
        assert gate["Parameters"]["FunctionName"] == "${JourneyGateFunctionArn}"
        payload = gate["Parameters"]["Payload"]
        # Only what holds the journey and ends a lead's time in it: no cap, no quiet hours
        assert payload["mail"] is False and payload["step"] == label
        assert gate["Next"] == f"Go on to: {label}?"
        choice = states[f"Go on to: {label}?"]
        assert [(c["StringEquals"], c["Next"]) for c in choice["Choices"]] == [
            ("go", label),
            ("park", f"Hold while paused: {label}"),
        ]
        assert choice["Default"] == LEFT_THE_JOURNEY
        hold = states[f"Hold while paused: {label}"]
        assert hold["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
        assert hold["Parameters"]["Payload"]["park"] == {"token.$": "$$.Task.Token"}
        assert hold["Next"] == f"Check the gate: {label}"
        assert hold["Catch"][0]["ErrorEquals"] == ["NotPaused"]
        assert hold["ResultPath"] == "$.release"  # an expire release holds later deadlines
    # Each step is entered through its gate
    assert states["Send the case study"]["Next"] == "Check the gate: Mark the lead as engaged"
    assert states["Mark the lead as engaged"]["Next"] == "Check the gate: Tell the owner"
