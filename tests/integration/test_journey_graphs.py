"""A journey's graph through the admin API, as the console's editor uses it: the shipped graph
opens, a draft is kept with its problems named on their nodes, something that is not a journey
definition is refused field by field, and the dry run counts who reaches each node and when."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ROOT, AwsStack
from tests.support.admin import event
from tests.support.shipped import install_shipped_journeys
from tsunagu import services
from tsunagu.api import admin
from tsunagu.clock import isoformat
from tsunagu.commands import journeys
from tsunagu.commands.access import Role
from tsunagu.errors import ConcurrentUpdate, FieldError, TsunaguError, ValidationFailed
from tsunagu.journeys.compiler import compile_journey
from tsunagu.journeys.definition import JourneyDefinition
from tsunagu.journeys.model import (
    RESERVED_JOURNEY_IDS,
    Journey,
    PublishedVersion,
    StoredGraph,
    published_graph_key,
)
from tsunagu.settings import Settings

TWO_MAILS: dict[str, Any] = {
    "$format": "tsunagu.journey/1",
    "journey_id": "webinar_follow_up",
    "name": "Webinar follow-up",
    "description": "Thanks the next business morning, then the recording three days later.",
    "start": "before_thanks",
    "nodes": [
        {"id": "before_thanks", "kind": "wait", "label": "the thank-you mail",
         "rule": {"kind": "next_business_day", "at": "10:00"}, "next": "thanks"},
        {"id": "thanks", "kind": "send", "label": "the thank-you mail", "template": "welcome",
         "next": "before_recording"},
        {"id": "before_recording", "kind": "wait", "label": "the recording",
         "rule": {"kind": "business_days_later", "days": 3, "at": "10:00"}, "next": "recording"},
        {"id": "recording", "kind": "send", "label": "the recording",
         "template": "welcome-getting-started", "next": "done"},
        {"id": "done", "kind": "end", "label": "the end"},
    ],
}  # fmt: skip


ALIAS = "arn:aws:states:ap-northeast-1:123456789012:stateMachine:tsunagu-test-journey-wf:live"


def call(settings: Settings, *args: Any, **kwargs: Any) -> tuple[int, Any]:
    response = admin.handle(event(*args, **kwargs), settings)
    return response["statusCode"], json.loads(response.get("body") or "null")


@pytest.fixture
def stack(aws: AwsStack) -> Settings:
    settings = aws.settings()
    install_shipped_journeys(settings, with_graphs=True)
    return settings


def test_a_shipped_journey_opens_in_the_editor_as_shipped(stack: Settings) -> None:
    status, shown = call(stack, "GET", "/admin/journeys/welcome_nurture/graph", role=Role.VIEWER)
    assert status == 200
    assert (shown["which"], shown["version"], shown["problems"]) == ("shipped", None, [])
    file = json.loads((ROOT / "journeys" / "welcome_nurture.json").read_text("utf-8"))
    assert shown["definition"] == file
    # ... under the name the journey list shows (the shipped graph names none; its record does)
    assert "name" not in file and shown["name"] == "Welcome nurture for new form leads"


def test_a_draft_is_kept_with_its_problems_on_their_nodes(stack: Settings) -> None:
    # Given a graph whose last mail points at a node that is not there yet
    unfinished = {**TWO_MAILS, "nodes": [*TWO_MAILS["nodes"][:3], {
        **TWO_MAILS["nodes"][3], "next": "later"}]}  # fmt: skip
    path = "/admin/journeys/webinar_follow_up/graph"

    # When the marketer saves it as a draft
    status, saved = call(stack, "PUT", path, body={"definition": unfinished})

    # Then it is kept, and the problem is named on the node it concerns
    assert status == 200, saved
    assert saved["which"] == "draft"
    assert [p["field"] for p in saved["problems"]] == ["recording"]
    assert "later" in saved["problems"][0]["message"]
    _, shown = call(stack, "GET", path)
    assert shown["definition"]["nodes"][3]["next"] == "later"
    entries = services.audit_log(stack).entries(
        datetime(2000, 1, 1).astimezone(), datetime(2100, 1, 1).astimezone()
    )
    assert [(e.operation, e.target) for e in entries] == [
        ("journeys.save", "journey:webinar_follow_up")
    ]

    # And once finished, it has no problem left
    _, fixed = call(stack, "PUT", path, body={"definition": TWO_MAILS})
    assert fixed["problems"] == []


# What a palette button adds (the console's NEW_NODE), before the marketer fills it in and
# connects it; and the fields the console leaves out once emptied (a webhook's event).
JUST_ADDED: dict[str, dict[str, Any]] = {
    "wait": {"id": "wait_3", "kind": "wait", "label": "wait wait_3",
             "rule": {"kind": "next_business_day", "at": "10:00"}},
    "wait_for": {"id": "wait_for_3", "kind": "wait_for", "label": "a click wait_for_3",
                 "events": [{"type": "link_clicked", "outcome": "clicked"}],
                 "within_seconds": 259200, "exits": []},
    "branch": {"id": "branch_3", "kind": "branch", "label": "branch branch_3", "cases": []},
    "split": {"id": "split_3", "kind": "split", "label": "test split_3", "paths": []},
    "split_emptied_share": {"id": "split_4", "kind": "split", "label": "test split_4", "paths": [
        {"outcome": "a", "percent": 0, "next": "done"},
        {"outcome": "b", "percent": 50, "next": "done"}]},
    "notify_owner": {"id": "notify_owner_3", "kind": "notify_owner",
                     "label": "tell the owner notify_owner_3", "message": ""},
    "webhook_emptied_event": {"id": "webhook_3", "kind": "webhook", "label": "call the CRM"},
}  # fmt: skip


@pytest.mark.parametrize("added", sorted(JUST_ADDED))
def test_a_draft_with_a_node_just_added_from_the_palette_is_kept_with_its_problems(
    stack: Settings, added: str
) -> None:
    # Given the finished graph and one node just added from the palette (not connected yet)
    node = JUST_ADDED[added]
    draft = {**TWO_MAILS, "nodes": [*TWO_MAILS["nodes"], node]}
    path = "/admin/journeys/webinar_follow_up/graph"

    # When the marketer saves the draft, it is kept, with what is missing named on the node
    status, saved = call(stack, "PUT", path, body={"definition": draft})
    assert status == 200, saved
    assert node["id"] in [p["field"] for p in saved["problems"]], saved["problems"]
    _, shown = call(stack, "GET", path)
    assert shown["definition"]["nodes"][-1]["id"] == node["id"]

    # And neither the dry run nor publish takes it while the problems are there
    status, body = call(
        stack, "POST", "/admin/journeys/webinar_follow_up/dry-run", body={"definition": draft}
    )
    assert status == 422 and node["id"] in [e["field"] for e in body["errors"]], body
    ports = services.journey_commands(stack)
    with pytest.raises(ValidationFailed):
        journeys.publish(ports, services.operator(stack), draft, None, lambda _: {"ok": True})


def test_a_new_journey_saved_with_its_name_left_blank_is_kept_nameless(stack: Settings) -> None:
    # The console's new journey and its cleared Name input send "" (the name is optional)
    path = "/admin/journeys/webinar_follow_up/graph"
    status, saved = call(stack, "PUT", path, body={"definition": {**TWO_MAILS, "name": " "}})
    assert status == 200, saved
    assert "name" not in saved["definition"] and saved["problems"] == []


def test_a_branch_case_as_long_as_a_filter_may_be_dry_runs(stack: Settings) -> None:
    # A case of 539 characters (a filter takes up to 1,000): saved without a problem, and the
    # dry run (as publish) decides on it rather than failing on a shorter limit of its own
    when = ",".join(f"tag=t{i:03d}" for i in range(60))
    graph = {**TWO_MAILS, "start": "pick", "nodes": [
        {"id": "pick", "kind": "branch", "label": "the interest",
         "cases": [{"outcome": "tagged", "when": when, "next": "thanks"}],
         "default": "before_thanks"},
        *TWO_MAILS["nodes"]]}  # fmt: skip
    path = "/admin/journeys/webinar_follow_up"
    status, saved = call(stack, "PUT", path + "/graph", body={"definition": graph})
    assert (status, saved["problems"]) == (200, []), saved
    status, run = call(stack, "POST", path + "/dry-run", body={"definition": graph, "leads": 5})
    assert status == 200, run
    assert run["nodes"]["pick"]["outcomes"] == {"default": 5}


# "Remind them until they click": publishable, as the loop passes a wait for the click
REMIND_UNTIL_CLICKED: dict[str, Any] = {**TWO_MAILS, "start": "ask", "nodes": [
    {"id": "ask", "kind": "send", "label": "the offer", "template": "welcome", "next": "clicked"},
    {"id": "clicked", "kind": "wait_for", "label": "a click on the offer",
     "events": [{"type": "link_clicked", "of_mail": "ask", "outcome": "clicked"}],
     "within_seconds": 259200, "exits": [{"outcome": "clicked", "next": "done"}],
     "timed_out": "ask"},
    {"id": "done", "kind": "end", "label": "The lead clicked"},
]}  # fmt: skip


def test_a_loop_that_publishes_also_dry_runs_and_says_who_is_still_going_round(
    stack: Settings,
) -> None:
    path = "/admin/journeys/webinar_follow_up"
    status, saved = call(stack, "PUT", path + "/graph", body={"definition": REMIND_UNTIL_CLICKED})
    assert (status, saved["problems"]) == (200, []), saved

    # When it is dry-run with nobody assumed to click
    status, run = call(
        stack, "POST", path + "/dry-run", body={"definition": REMIND_UNTIL_CLICKED, "leads": 5}
    )

    # Then it answers (not a 500): every lead still going round the reminder when its walk
    # stopped, the reminders each would have had until then
    assert status == 200, run
    assert run["still_in"] == {"ask": 5}
    assert run["nodes"]["done"]["reached"] == 0
    assert run["nodes"]["clicked"]["outcomes"] == {"timed_out": run["nodes"]["ask"]["reached"]}
    assert run["nodes"]["ask"]["reached"] == 5 * run["steps_per_lead_at_most"] // 2
    # And with clicks assumed, those who click leave it
    status, run = call(stack, "POST", path + "/dry-run",
                       body={"definition": REMIND_UNTIL_CLICKED, "leads": 5,
                             "assume": "click=0.5"})  # fmt: skip
    assert status == 200, run
    assert (run["nodes"]["done"]["reached"], run["still_in"]) == (5, {})


def test_where_the_marketer_put_the_nodes_is_kept_with_the_draft(stack: Settings) -> None:
    # Given the canvas's nodes moved by hand, saved with the draft
    placed = {**TWO_MAILS, "layout": {"thanks": {"x": 40, "y": 300}, "done": {"x": -12.5, "y": 0}}}
    path = "/admin/journeys/webinar_follow_up/graph"
    status, saved = call(stack, "PUT", path, body={"definition": placed})
    assert (status, saved["problems"]) == (200, []), saved

    # Then the editor opens them there (those it names; the others are laid out as before)
    _, shown = call(stack, "GET", path)
    assert shown["definition"]["layout"] == {"thanks": {"x": 40, "y": 300},
                                             "done": {"x": -12.5, "y": 0}}  # fmt: skip


@pytest.mark.parametrize(
    "layout",
    [
        {"thanks": {"x": 1e12, "y": 0}},
        {"thanks": {"x": 0}},
        {"Not A Node": {"x": 0, "y": 0}},
        {f"n{i}": {"x": i, "y": 0} for i in range(201)},
    ],
    ids=["a number no canvas reaches", "half a place", "no node id", "more places than nodes"],
)
def test_a_layout_that_is_no_canvas_s_is_refused_and_kept_nowhere(
    stack: Settings, layout: dict[str, Any]
) -> None:
    path = "/admin/journeys/webinar_follow_up/graph"
    status, body = call(stack, "PUT", path, body={"definition": {**TWO_MAILS, "layout": layout}})
    assert status == 422, body
    assert call(stack, "GET", path)[0] == 404


def test_the_editor_names_a_missing_mail_as_publish_refuses_it(stack: Settings) -> None:
    # Given a draft whose last mail names a template no one has written
    missing = {**TWO_MAILS, "nodes": [*TWO_MAILS["nodes"][:3], {
        **TWO_MAILS["nodes"][3], "template": "no-such-mail"}, TWO_MAILS["nodes"][4]]}  # fmt: skip
    path = "/admin/journeys/webinar_follow_up/graph"

    # When it is saved and opened in the editor
    status, saved = call(stack, "PUT", path, body={"definition": missing})
    _, shown = call(stack, "GET", path)

    # Then both say it would not publish, on the mail's node
    assert status == 200, saved
    said = [(p["field"], p["message"]) for p in saved["problems"]]
    assert said == [("recording", "sends template 'no-such-mail', which does not exist")]
    assert [(p["field"], p["message"]) for p in shown["problems"]] == said

    # And publishing it is refused with the same words, before the publisher is asked
    asked: list[dict[str, Any]] = []

    def publisher(payload: dict[str, Any]) -> dict[str, Any]:
        asked.append(payload)
        return {"ok": True, "version": 1, "changed": True, "created": True}

    ports = services.journey_commands(stack)
    with pytest.raises(ValidationFailed) as refused:
        journeys.publish(ports, services.operator(stack), missing, None, publisher)
    assert [(e.field, e.message) for e in refused.value.errors] == said
    assert asked == []


def test_two_marketers_saving_one_draft_never_lose_an_edit_silently(stack: Settings) -> None:
    # Given a draft, opened by two marketers in their editors
    path = "/admin/journeys/webinar_follow_up/graph"
    status, first = call(stack, "PUT", path, body={"definition": TWO_MAILS, "revision": 0})
    assert (status, first["revision"]) == (200, 1), first
    _, seen_by_a = call(stack, "GET", path, email="a@example.com")
    _, seen_by_b = call(stack, "GET", path, email="b@example.com")
    assert seen_by_a["revision"] == seen_by_b["revision"] == 1

    # When B renames the thank-you mail and saves, and A (who has not seen it) saves afterwards
    b_version = json.loads(json.dumps(seen_by_b["definition"]))
    b_version["nodes"][1]["label"] = "the thanks"
    by_b = {"definition": b_version, "revision": seen_by_b["revision"]}
    status, saved_by_b = call(stack, "PUT", path, email="b@example.com", body=by_b)
    assert (status, saved_by_b["revision"]) == (200, 2)
    a_version = json.loads(json.dumps(seen_by_a["definition"]))
    a_version["description"] = "Changed by A."
    by_a = {"definition": a_version, "revision": seen_by_a["revision"]}
    status, refused = call(stack, "PUT", path, email="a@example.com", body=by_a)

    # Then A's save is refused as made on a draft changed since (the console says reload),
    # and B's edit is kept
    assert status == 409, refused
    assert "changed by someone else" in refused["message"] and "reload" in refused["message"]
    _, now = call(stack, "GET", path)
    assert now["definition"]["nodes"][1]["label"] == "the thanks"
    assert now["definition"]["description"] == TWO_MAILS["description"]
    # And a new journey's first draft, saved as over none, is refused once one exists
    status, _ = call(stack, "PUT", path, body={"definition": a_version, "revision": 0})
    assert status == 409


def standing_publisher(
    ports: journeys.JourneyCommands,
    at: Callable[[int], str],
    meanwhile: Callable[[int], None] = lambda number: None,
) -> tuple[journeys.Publisher, list[dict[str, Any]]]:
    """A publisher standing in for the publish_journey function, as it does: each publication a
    new version of webinar_follow_up, its graph kept ``at(number)`` with the draft's revision it
    was published from, the record pointed at it. ``meanwhile`` runs first (what a colleague
    does while it publishes). Returns it and the payloads it was given."""
    asked: list[dict[str, Any]] = []

    def publisher(payload: dict[str, Any]) -> dict[str, Any]:
        asked.append(payload)
        number = len(asked)
        meanwhile(number)
        graph = StoredGraph(
            "webinar_follow_up", published_graph_key(number), payload["definition"], payload["by"],
            at(number), draft_revision=payload["draft_revision"],
        )  # fmt: skip
        ports.journeys.save_graph(graph)
        record = ports.journeys.get_journey("webinar_follow_up") or Journey(
            journey_id="webinar_follow_up", name="Webinar", state_machine="webinar", status="active"
        )
        version = PublishedVersion(version=number, version_arn=f"{ALIAS[:-5]}:{number}",
                                   alias_arn=ALIAS, published_at=at(number))  # fmt: skip
        ports.journeys.put_journey(record.model_copy(update={"published": version}), at(number))
        return {"ok": True, "journey_id": "webinar_follow_up", "version": number,
                "changed": True, "created": number == 1}  # fmt: skip

    return publisher, asked


def test_publishing_from_a_stale_canvas_never_buries_a_colleague_s_saved_draft(
    stack: Settings,
) -> None:
    # Given webinar_follow_up published once, and A and B both opening the editor on it
    ports = services.journey_commands(stack)
    clock = services.clock(stack)
    publisher, published = standing_publisher(ports, lambda number: isoformat(clock.now()))
    actor = services.operator(stack)
    # A file published (the CLI's way: no revision): the draft is left as it is - none
    journeys.publish(ports, actor, TWO_MAILS, "v1", publisher)
    assert ports.journeys.graph("webinar_follow_up", "draft") is None
    path = "/admin/journeys/webinar_follow_up/graph"
    _, seen_by_a = call(stack, "GET", path, email="a@example.com")
    _, seen_by_b = call(stack, "GET", path, email="b@example.com")
    assert (seen_by_a["which"], seen_by_a["revision"]) == ("v000001", 0)

    # When B changes the description and saves the draft (not published yet), and A, whose
    # canvas still shows version 1, renames a mail and publishes from the canvas
    by_b = {**seen_by_b["definition"], "description": "B's careful rewrite."}
    body = {"definition": by_b, "revision": seen_by_b["revision"]}
    assert call(stack, "PUT", path, email="b@example.com", body=body)[0] == 200
    by_a = json.loads(json.dumps(seen_by_a["definition"]))
    by_a["nodes"][1]["label"] = "the welcome mail"
    with pytest.raises(ConcurrentUpdate, match="changed by someone else"):
        journeys.publish(ports, actor, by_a, "v2", publisher, revision=seen_by_a["revision"])
    # ... as the console does it: the same conflict the draft save answers, a 409
    stale = {"definition": by_a, "revision": seen_by_a["revision"]}
    status, refused = call(stack, "POST", "/admin/journeys", email="a@example.com", body=stale)
    assert (status, refused["code"]) == (409, "concurrent_update"), refused

    # Then nothing of A's was published, and B's draft is what the editor shows
    assert len(published) == 1
    _, now = call(stack, "GET", path)
    assert (now["which"], now["definition"]["description"]) == ("draft", "B's careful rewrite.")

    # And A, having reloaded, publishes over B's draft: the canvas is kept as the draft first,
    # the answer gives its new revision, and the editor shows the version published
    again = {**now["definition"], "name": "Webinar follow-up (A)"}
    answer = journeys.publish(ports, actor, again, "v2", publisher, revision=now["revision"])
    assert (answer["version"], answer["revision"]) == (2, now["revision"] + 1)
    _, shown = call(stack, "GET", path)
    assert (shown["which"], shown["revision"]) == ("v000002", answer["revision"])
    assert shown["definition"]["description"] == "B's careful rewrite."
    # ... and B's save from the canvas read before it is refused, not laid over version 2
    status, _ = call(stack, "PUT", path, email="b@example.com", body=body)
    assert status == 409


def test_a_draft_a_colleague_saves_while_a_publication_runs_is_still_shown_as_not_published(
    stack: Settings,
) -> None:
    # Given A publishing webinar_follow_up from the editor, the version's graph kept two
    # seconds after the publication began (on AWS, making a state machine version takes that),
    # and B saving the draft in those two seconds, over the revision A's publication kept
    ports = services.journey_commands(stack)
    clock = services.clock(stack)
    path = "/admin/journeys/webinar_follow_up/graph"
    _, opened = call(stack, "PUT", path, body={"definition": TWO_MAILS, "revision": 0})
    by_b = {**TWO_MAILS, "description": "B's rewrite, saved while A published."}
    saved_by_b: list[Any] = []

    def b_saves(number: int) -> None:
        if number == 1:
            kept = ports.journeys.graph("webinar_follow_up", "draft")
            assert kept is not None
            body = {"definition": by_b, "revision": kept.revision}
            saved_by_b.append(call(stack, "PUT", path, email="b@example.com", body=body))

    publisher, _ = standing_publisher(
        ports, lambda number: isoformat(clock.now() + timedelta(seconds=2 * number)), b_saves
    )

    # When A's publication finishes
    actor = services.operator(stack)
    answer = journeys.publish(ports, actor, TWO_MAILS, "v1", publisher, revision=opened["revision"])

    # Then version 1 is A's canvas, and the editor shows B's draft, saved after the revision
    # published though before the version's time: B's work is not buried under version 1
    status, saved = saved_by_b[0]
    assert status == 200 and saved["revision"] == answer["revision"] + 1, saved
    _, shown = call(stack, "GET", path)
    assert (shown["which"], shown["revision"]) == ("draft", saved["revision"])
    assert shown["definition"]["description"] == by_b["description"]
    # And once that draft is published, the editor shows the version, not the draft again
    again = journeys.publish(ports, actor, by_b, "v2", publisher, revision=saved["revision"])
    _, shown = call(stack, "GET", path)
    assert shown["which"] == "v000002" and again["revision"] == saved["revision"] + 1


# What publish_journey refuses once the admin API has kept the canvas as the draft (made anew
# for each publish: the refusal raised carries the revision)
REFUSALS_AFTER_THE_DRAFT: dict[str, tuple[int, Callable[[], TsunaguError]]] = {
    "another publication holds the journey": (409, lambda: ConcurrentUpdate(
        "journey 'webinar_follow_up' is being published or rolled back by someone else right"
        " now: look at its versions in a minute, and publish or roll back again if it is"
        " still needed")),
    "a check only the publisher makes": (422, lambda: ValidationFailed(
        [FieldError("(journey)", "its state machine's definition is too large")])),
}  # fmt: skip


@pytest.mark.parametrize("refusal", sorted(REFUSALS_AFTER_THE_DRAFT))
def test_a_publish_refused_after_the_canvas_was_kept_gives_the_draft_s_new_revision(
    stack: Settings, monkeypatch: pytest.MonkeyPatch, refusal: str
) -> None:
    # Given a draft open in the editor, and a publisher (publish_journey) that refuses after
    # the canvas was kept as the draft
    status_expected, refusing = REFUSALS_AFTER_THE_DRAFT[refusal]
    asked: list[dict[str, Any]] = []

    def publisher(payload: dict[str, Any]) -> dict[str, Any]:
        asked.append(payload)
        raise refusing()

    monkeypatch.setattr(services, "journey_publisher", lambda settings: publisher)
    path = "/admin/journeys/webinar_follow_up/graph"
    _, opened = call(stack, "PUT", path, body={"definition": TWO_MAILS, "revision": 0})

    # When the marketer renames a mail and publishes from the editor
    edited = json.loads(json.dumps(opened["definition"]))
    edited["nodes"][1]["label"] = "the welcome mail"
    body = {"definition": edited, "revision": opened["revision"]}
    status, refused = call(stack, "POST", "/admin/journeys", body=body)

    # Then it is refused as the publisher said, with the revision the canvas is now kept at
    assert len(asked) == 1 and status == status_expected, refused
    assert refused["revision"] == opened["revision"] + 1, refused
    _, shown = call(stack, "GET", path)
    assert (shown["which"], shown["revision"]) == ("draft", refused["revision"])
    assert shown["definition"]["nodes"][1]["label"] == "the welcome mail"
    # And the editor's next save, over that revision, is kept - not refused as over a
    # colleague's edit - while one over the revision it had opened still is
    again = {**edited, "description": "Saved after the refusal."}
    stale = {"definition": again, "revision": opened["revision"]}
    assert call(stack, "PUT", path, body=stale)[0] == 409
    status, saved = call(
        stack, "PUT", path, body={"definition": again, "revision": refused["revision"]}
    )
    assert (status, saved["revision"]) == (200, refused["revision"] + 1), saved


def test_a_refusal_before_the_draft_was_kept_gives_no_revision(stack: Settings) -> None:
    # A publish from a stale canvas is refused by the draft's own write: nothing of it is
    # stored, so no revision comes back to carry on from (the colleague's draft stands)
    path = "/admin/journeys/webinar_follow_up/graph"
    call(stack, "PUT", path, body={"definition": TWO_MAILS, "revision": 0})
    body = {"definition": TWO_MAILS, "revision": 0}
    status, refused = call(stack, "POST", "/admin/journeys", body=body)
    assert (status, refused["code"]) == (409, "concurrent_update") and "revision" not in refused


def test_after_a_rollback_the_editor_and_the_dry_run_show_the_live_version(
    stack: Settings,
) -> None:
    # Given webinar_follow_up published twice, then rolled back to version 1 (a publisher
    # standing in for the publish_journey function: it keeps the version's graph and records the
    # live version, as it does)
    ports = services.journey_commands(stack)
    actor = services.operator(stack)
    live = {"version": 0}

    def publisher(payload: dict[str, Any]) -> dict[str, Any]:
        live["version"] += 1 if payload["action"] == "publish" else -1
        number = live["version"]
        version = PublishedVersion(
            version=number, version_arn=f"{ALIAS[:-5]}:{number}", alias_arn=ALIAS,
            published_at="2026-12-01T00:00:00Z",
        )  # fmt: skip
        record = ports.journeys.get_journey("webinar_follow_up") or Journey(
            journey_id="webinar_follow_up", name="Webinar", state_machine="webinar", status="active"
        )
        if payload["action"] == "publish":
            ports.journeys.save_graph(
                StoredGraph(
                    journey_id="webinar_follow_up",
                    which=published_graph_key(number),
                    definition=payload["definition"],
                    by=payload["by"],
                    updated_at="2026-12-01T00:00:00Z",
                )
            )
        ports.journeys.put_journey(record.model_copy(update={"published": version}), "2026-12-01")
        return {"ok": True, "journey_id": "webinar_follow_up", "version": number,
                "changed": True, "created": number == 1}  # fmt: skip

    second = {**TWO_MAILS, "description": "Version two."}
    journeys.publish(ports, actor, TWO_MAILS, "one", publisher)
    journeys.publish(ports, actor, second, "two", publisher)
    journeys.rollback(ports, actor, "webinar_follow_up", None, publisher)

    # When the editor opens it, and the dry run plays its stored graph
    _, shown = call(stack, "GET", "/admin/journeys/webinar_follow_up/graph")
    status, run = call(stack, "POST", "/admin/journeys/webinar_follow_up/dry-run", body={})

    # Then both see version 1, the one new entries take - not version 2, the latest
    assert (shown["version"], shown["definition"]["description"]) == (
        1, TWO_MAILS["description"])  # fmt: skip
    assert status == 200 and set(run["nodes"]) == {node["id"] for node in TWO_MAILS["nodes"]}


def test_after_a_rollback_a_draft_that_was_published_is_not_shown_as_unpublished_work(
    stack: Settings,
) -> None:
    # Given the console's way: each version saved as a draft, then published (each step an
    # hour after the last), then a rollback to version 1
    ports = services.journey_commands(stack)
    hours = iter(f"2026-12-01T{hour:02d}:00:00.000Z" for hour in range(24))
    live = {"version": 0}

    def draft(definition: dict[str, Any]) -> None:
        ports.journeys.save_graph(StoredGraph("webinar_follow_up", "draft", definition, None,
                                              next(hours)))  # fmt: skip

    def publisher(payload: dict[str, Any]) -> dict[str, Any]:
        live["version"] += 1 if payload["action"] == "publish" else -1
        number, at = live["version"], next(hours)
        if payload["action"] == "publish":
            graph = StoredGraph("webinar_follow_up", published_graph_key(number),
                                payload["definition"], None, at)  # fmt: skip
            ports.journeys.save_graph(graph)
        record = ports.journeys.get_journey("webinar_follow_up") or Journey(
            journey_id="webinar_follow_up", name="Webinar", state_machine="webinar", status="active"
        )
        version = PublishedVersion(version=number, version_arn=f"{ALIAS[:-5]}:{number}",
                                   alias_arn=ALIAS, published_at=at)  # fmt: skip
        ports.journeys.put_journey(record.model_copy(update={"published": version}), at)
        return {"ok": True, "journey_id": "webinar_follow_up", "version": number,
                "changed": True, "created": number == 1}  # fmt: skip

    second = {**TWO_MAILS, "description": "Version two."}
    actor = services.operator(stack)
    draft(TWO_MAILS)
    journeys.publish(ports, actor, TWO_MAILS, "one", publisher)
    draft(second)
    journeys.publish(ports, actor, second, "two", publisher)
    journeys.rollback(ports, actor, "webinar_follow_up", None, publisher)

    # When the editor opens it, it shows version 1, live - not version 2's draft as new work
    path = "/admin/journeys/webinar_follow_up/graph"
    _, shown = call(stack, "GET", path)
    assert (shown["version"], shown["definition"]["description"]) == (
        1, TWO_MAILS["description"])  # fmt: skip

    # And a draft saved after that is work not published yet: it is what the editor shows
    third = {**TWO_MAILS, "description": "Version three."}
    draft(third)
    _, shown = call(stack, "GET", path)
    assert (shown["which"], shown["definition"]["description"]) == ("draft", "Version three.")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"nodes": [{"id": "thanks", "kind": "teleport", "label": "x"}]}, "thanks"),
        ({"nodes": [{**TWO_MAILS["nodes"][1], "template": "Not A Template"}]}, "thanks"),
        ({"journey_id": "another_one"}, "journey_id"),
        ({"start": None}, "(journey)"),
    ],
)
def test_what_is_not_a_journey_definition_is_refused_on_its_node_and_kept_nowhere(
    stack: Settings, change: dict[str, Any], field: str
) -> None:
    path = "/admin/journeys/webinar_follow_up/graph"
    status, body = call(stack, "PUT", path, body={"definition": {**TWO_MAILS, **change}})
    assert status == 422, body
    assert field in [problem["field"] for problem in body["errors"]], body
    assert call(stack, "GET", path)[0] == 404


@pytest.mark.parametrize(
    ("label", "said"),
    [
        ("the thank-you \\u0000 mail", "a control character (U+0000)"),
        ("the thank-you \\u0085 mail", "a control character (U+0085)"),
        ("the thank-you \\u2028 mail", "a line separator (U+2028)"),
        ("the thank-you \\u2029 mail", "a paragraph separator (U+2029)"),
        ("the thank-you \\u200b mail", "an invisible format character (U+200B)"),
        ("the thank-you \\u202e mail", "an invisible format character (U+202E)"),
        ("   ", "blank"),
        ("\\u3000", "blank"),
    ],
)
def test_a_label_a_reader_cannot_see_is_refused_on_its_node(
    stack: Settings, label: str, said: str
) -> None:
    # Given the thank-you mail's label written with a character no one sees (as JSON escapes)
    text = json.dumps({"definition": TWO_MAILS}).replace("the thank-you mail", label, 2)
    path = "/admin/journeys/webinar_follow_up/graph"

    # When it is saved, it is refused on its node, saying what is wrong, and nothing is kept
    response = admin.handle(event("PUT", path, raw_body=text), stack)
    body = json.loads(response["body"])
    assert response["statusCode"] == 422, body
    assert [p["field"] for p in body["errors"]][:1] == ["before_thanks"], body
    assert said in body["errors"][0]["message"], body
    assert call(stack, "GET", path)[0] == 404


def test_a_label_is_kept_without_the_spaces_around_it(stack: Settings) -> None:
    padded = json.loads(json.dumps(TWO_MAILS).replace('"the end"', '"  the end "'))
    path = "/admin/journeys/webinar_follow_up/graph"
    status, saved = call(stack, "PUT", path, body={"definition": padded})
    assert status == 200, saved
    assert saved["definition"]["nodes"][-1]["label"] == "the end"


def big_but_valid() -> dict[str, Any]:
    """About 450 KB: under the API's 512 KB body limit and every per-field limit, over
    DynamoDB's 400 KB item."""
    nodes: list[dict[str, Any]] = [
        {"id": f"n{number}", "kind": "update_lead", "label": f"Set fields {number}",
         "fields": {f"f{k}": "x" * 120 for k in range(20)},
         "next": f"n{number + 1}" if number < 179 else None}
        for number in range(180)
    ]  # fmt: skip
    return {**TWO_MAILS, "start": "n0", "nodes": nodes}


def test_a_definition_too_large_to_keep_is_a_422_naming_the_limit(stack: Settings) -> None:
    # Given a definition valid in each field, too large for DynamoDB as a whole
    body = {"definition": big_but_valid()}
    assert 400 * 1024 < len(json.dumps(body).encode()) < admin.MAX_BODY_BYTES
    path = "/admin/journeys/webinar_follow_up/graph"

    # When it is saved as a draft, it is refused saying how large it is and may be
    status, refused = call(stack, "PUT", path, body=body)
    assert status == 422, refused
    assert "KB as stored, more than the 256 KB" in refused["errors"][0]["message"]
    assert call(stack, "GET", path)[0] == 404

    # And when it is published, it is refused before the version can go live
    asked: list[dict[str, Any]] = []

    def publisher(payload: dict[str, Any]) -> dict[str, Any]:
        asked.append(payload)
        return {"ok": True, "version": 1, "changed": True, "created": True}

    ports = services.journey_commands(stack)
    with pytest.raises(ValidationFailed, match="256 KB"):
        journeys.publish(ports, services.operator(stack), big_but_valid(), None, publisher)
    assert asked == []


def japanese_notes(count: int) -> dict[str, Any]:
    """``count`` owner notes of 1,000 Japanese characters each: 3 KB each in UTF-8, 6 KB each
    as the store keeps them (JSON, every such character escaped)."""
    nodes: list[dict[str, Any]] = [
        {"id": f"n{number}", "kind": "notify_owner", "label": f"Tell the owner {number}",
         "message": "営業担当へのお知らせ" * 100, "next": f"n{number + 1}"}
        for number in range(count)
    ]  # fmt: skip
    nodes.append({"id": f"n{count}", "kind": "end", "label": "the end"})
    return {**TWO_MAILS, "start": "n0", "nodes": nodes}


def test_a_definition_s_size_is_counted_as_it_is_stored_japanese_text_and_all(
    stack: Settings,
) -> None:
    path = "/admin/journeys/webinar_follow_up/graph"
    # 80 notes: 245 KB in UTF-8, 490 KB as stored - refused, not a 500 from DynamoDB
    status, refused = call(stack, "PUT", path, body={"definition": japanese_notes(80)})
    assert status == 422, refused
    assert "KB as stored, more than the 256 KB" in refused["errors"][0]["message"]
    # 40 notes: 245 KB as stored - kept
    status, saved = call(stack, "PUT", path, body={"definition": japanese_notes(40)})
    assert status == 200, saved


def test_a_viewer_may_read_but_not_save_a_graph(stack: Settings) -> None:
    path = "/admin/journeys/webinar_follow_up/graph"
    status, _ = call(stack, "PUT", path, role=Role.VIEWER, body={"definition": TWO_MAILS})
    assert status == 403
    assert call(stack, "GET", path, role=Role.VIEWER)[0] == 404


def test_the_dry_run_counts_each_node_and_dates_each_mail(stack: Settings) -> None:
    # When the marketer dry-runs the graph for 50 leads entering on a Friday evening in Tokyo
    status, run = call(
        stack,
        "POST",
        "/admin/journeys/webinar_follow_up/dry-run",
        body={"definition": TWO_MAILS, "leads": 50, "start": "2026-12-04T19:00:00+09:00"},
    )

    # Then every lead reaches every node; the thanks go on Monday 10:00, the recording three
    # business days later (Thursday), both in the journey's time zone
    assert status == 200, run
    assert {node: counts["reached"] for node, counts in run["nodes"].items()} == dict.fromkeys(
        ("before_thanks", "thanks", "before_recording", "recording", "done"), 50
    )
    assert run["nodes"]["thanks"]["first_at"] == "2026-12-07T10:00:00+09:00"
    assert run["nodes"]["recording"]["first_at"] == "2026-12-10T10:00:00+09:00"
    assert run["mails"] == {
        "welcome": {"2026-12-07": 50},
        "welcome-getting-started": {"2026-12-10": 50},
    }
    assert run["transitions_per_entry"] > 0
    # ... saying what the synthetic leads are taken to be (branches on anything else go by it)
    assert "opted in to marketing, in no saved segment or import" in run["synthetic_leads"]

    # And a graph that would not publish is refused with its problems, nothing simulated
    broken = {**TWO_MAILS, "start": "nowhere"}
    status, body = call(
        stack, "POST", "/admin/journeys/webinar_follow_up/dry-run", body={"definition": broken}
    )
    assert status == 422 and body["errors"][0]["field"] == "(journey)"


def test_the_dry_run_keeps_off_the_holidays_and_names_them(stack: Settings) -> None:
    # When the leads enter on New Year's Eve (元日 is a national holiday, then a weekend)
    status, run = call(
        stack,
        "POST",
        "/admin/journeys/webinar_follow_up/dry-run",
        body={"definition": TWO_MAILS, "leads": 5, "start": "2026-12-31T19:00:00+09:00"},
    )

    # Then the thanks wait for Monday the 4th, and the period's holidays are named for the canvas
    assert status == 200, run
    assert run["nodes"]["thanks"]["first_at"] == "2027-01-04T10:00:00+09:00"
    assert run["days_off"] == {"2027-01-01": "元日"}
    # ... named in the reader's language when the console asks for it
    for language, named in (("en", "New Year's Day"), ("ja", "元日")):
        _, run = call(
            stack,
            "POST",
            "/admin/journeys/webinar_follow_up/dry-run",
            body={
                "definition": TWO_MAILS,
                "leads": 5,
                "start": "2026-12-31T19:00:00+09:00",
                "language": language,
            },
        )
        assert run["days_off"] == {"2027-01-01": named}
    status, refused = call(
        stack,
        "POST",
        "/admin/journeys/webinar_follow_up/dry-run",
        body={"definition": TWO_MAILS, "language": "fr"},
    )
    assert status == 422 and "language" in json.dumps(refused)


@pytest.mark.parametrize(
    "start", ["2027-04-28T10:00:00", "2027-04-28", "1999-12-31T10:00:00+09:00", "tomorrow"]
)
def test_a_dry_run_start_that_names_no_instant_is_a_422_on_start(
    stack: Settings, start: str
) -> None:
    # A time without its offset is no instant (10:00 where?): said on the field, as every
    # other route says it, not a 500 from comparing it with the aware instants of the run
    status, body = call(
        stack,
        "POST",
        "/admin/journeys/webinar_follow_up/dry-run",
        body={"definition": TWO_MAILS, "leads": 5, "start": start},
    )
    assert status == 422, body
    assert [error["field"] for error in body["errors"]] == ["start"], body


def test_a_mail_the_frequency_cap_defers_is_dated_when_it_goes_not_when_it_is_reached(
    stack: Settings,
) -> None:
    # Two mails back to back, the leads entering on the Friday before Golden Week at 10:00
    back_to_back = {
        **TWO_MAILS,
        "start": "thanks",
        "nodes": [
            {**TWO_MAILS["nodes"][1], "next": "recording"},
            TWO_MAILS["nodes"][3],
            TWO_MAILS["nodes"][4],
        ],
    }
    status, run = call(
        stack,
        "POST",
        "/admin/journeys/webinar_follow_up/dry-run",
        body={"definition": back_to_back, "leads": 5, "start": "2027-04-30T10:00:00+09:00"},
    )
    assert status == 200, run
    recording = run["nodes"]["recording"]
    # Reached right after the thanks, but one mail a day: it goes after the weekend and the
    # three holidays, on Thursday 6 May as the quiet hours end
    assert recording["first_at"] == "2027-04-30T10:00:00+09:00"
    assert recording["first_sent_at"] == "2027-05-06T08:00:00+09:00"
    assert run["nodes"]["thanks"]["first_sent_at"] == "2027-04-30T10:00:00+09:00"
    assert run["nodes"]["done"]["first_sent_at"] is None
    assert run["days_off"] == {
        "2027-05-03": "憲法記念日",
        "2027-05-04": "みどりの日",
        "2027-05-05": "こどもの日",
    }


def test_the_publishing_lease_is_held_by_one_holder_until_let_go_or_stale(
    stack: Settings,
) -> None:
    store = services.journey_repository(stack)
    at = datetime.fromisoformat("2026-12-07T01:00:00+00:00")
    minute = datetime.fromisoformat("2026-12-07T01:01:00+00:00")
    listed = [j.journey_id for j in store.journeys()]
    # One holder takes it; another, a minute later, may not
    assert store.claim_publishing("welcome_nurture", "first", at, at)
    assert not store.claim_publishing("welcome_nurture", "second", minute, at)
    # Another journey's lease is its own
    assert store.claim_publishing("seminar_follow_up", "second", minute, at)
    # Someone else letting go of it frees nothing; its holder letting go does
    store.release_publishing("welcome_nurture", "second")
    assert not store.claim_publishing("welcome_nurture", "second", minute, at)
    store.release_publishing("welcome_nurture", "first")
    assert store.claim_publishing("welcome_nurture", "second", minute, at)
    # A lease taken before ``stale_before`` is taken over, and the old holder's letting go
    # then leaves the new one's alone
    assert store.claim_publishing("welcome_nurture", "third", minute, minute.replace(second=1))
    store.release_publishing("welcome_nurture", "second")
    assert not store.claim_publishing("welcome_nurture", "fourth", minute, minute)
    # And a lease is never listed as a journey
    assert [j.journey_id for j in store.journeys()] == listed


def states_on_the_usual_way(asl: dict[str, Any]) -> int:
    """The states an execution enters from StartAt to its end, each Choice taking its first
    way (the gate's send or go, a decision's first outcome)."""
    entered, name = 0, asl["StartAt"]
    while name is not None:
        state = asl["States"][name]
        entered += 1
        if state["Type"] == "Choice":
            name = state["Choices"][0]["Next"]
        else:
            name = None if state.get("End") or "Next" not in state else state["Next"]
    return entered


def test_the_dry_run_counts_the_step_gates_the_state_machine_enters(stack: Settings) -> None:
    # Given a graph that tags the lead and tells its owner before the mail: each of those steps
    # is behind the state machine's step gate (its task and its Choice), as the mail is
    # behind the gate
    graph = {
        **TWO_MAILS,
        "start": "tag",
        "nodes": [
            {"id": "tag", "kind": "update_lead", "label": "Tag the lead",
             "add_tags": ["webinar"], "next": "owner"},
            {"id": "owner", "kind": "notify_owner", "label": "Tell the owner",
             "message": "a webinar lead", "next": "recording"},
            TWO_MAILS["nodes"][3],
            TWO_MAILS["nodes"][4],
        ],
    }  # fmt: skip

    # When the marketer dry-runs it
    status, run = call(
        stack,
        "POST",
        "/admin/journeys/webinar_follow_up/dry-run",
        body={"definition": graph, "leads": 5, "start": "2026-12-07T10:00:00+09:00"},
    )

    # Then each lead passes every step, and the transitions (what the journey costs) are the
    # states its state machine enters on that way, the gates included
    assert status == 200, run
    assert {node: counts["reached"] for node, counts in run["nodes"].items()} == dict.fromkeys(
        ("tag", "owner", "recording", "done"), 5
    )
    compiled = compile_journey(JourneyDefinition.model_validate(graph))
    assert run["transitions_per_entry"] == states_on_the_usual_way(compiled) == 10


def test_a_journey_cannot_be_named_as_a_path_the_admin_api_takes_for_itself(
    stack: Settings,
) -> None:
    # Given a graph named "status": GET /admin/journeys/status is every journey's status, so a
    # journey of that name could be made but never opened
    named_status = {**TWO_MAILS, "journey_id": "status"}
    asked: list[dict[str, Any]] = []

    def publisher(payload: dict[str, Any]) -> dict[str, Any]:
        asked.append(payload)
        return {"ok": True, "version": 1, "changed": True, "created": True}

    # When the console saves it as a draft, or the admin API or the CLI publishes it
    status, drafted = call(stack, "PUT", "/admin/journeys/status/graph",
                           body={"definition": named_status, "revision": 0})  # fmt: skip
    status_published, published = call(stack, "POST", "/admin/journeys",
                                       body={"definition": named_status})  # fmt: skip
    ports = services.journey_commands(stack)
    with pytest.raises(ValidationFailed) as by_file:
        journeys.publish(ports, services.operator(stack), named_status, None, publisher)

    # Then each is refused (422) naming the journey id and why, and nothing is kept or published
    for answer in (drafted, published):
        [problem] = answer["errors"]
        assert "journey_id" in problem["message"] and "'status' is reserved" in problem["message"]
    assert (status, status_published) == (422, 422)
    assert "'status' is reserved" in by_file.value.message
    assert asked == [] and call(stack, "GET", "/admin/journeys/status/graph")[0] == 404
    # ... nor is a record made from a file (tsunagu journeys save)
    record = Journey(journey_id="status", name="Status", state_machine="status")
    with pytest.raises(ValidationFailed) as saved:
        journeys.save(ports, services.operator(stack), record, replace=False)
    assert [e.field for e in saved.value.errors] == ["journey_id"]
    assert ports.journeys.get_journey("status") is None
    # ... while the journeys' status is still there, at the path clients know
    status, shown = call(stack, "GET", "/admin/journeys/status", role=Role.VIEWER)
    assert status == 200 and "journeys" in shown, shown


def test_a_journey_named_status_stored_before_the_rule_still_lists(stack: Settings) -> None:
    # A record stored before ids were reserved is read as it is: the list does not break on it
    record = Journey(journey_id="status", name="Status", state_machine="status")
    services.journey_repository(stack).put_journey(record, "2026-12-01T00:00:00Z")
    status, listed = call(stack, "GET", "/admin/journeys", query={"limit": "100"})
    assert status == 200 and "status" in [j["journey_id"] for j in listed["items"]], listed


def test_every_word_the_admin_api_s_journey_paths_take_is_a_reserved_journey_id() -> None:
    # A literal route beside /admin/journeys/{journey} shadows the journey of that name: each
    # such word must be refused as a journey id (RESERVED_JOURNEY_IDS), or it cannot be opened
    paths = [route.path.split("/") for route in admin.ROUTES]
    beside = {parts[3] for parts in paths if parts[:3] == ["", "admin", "journeys"] and parts[3:]}
    words = {part for part in beside if not part.startswith("{")}
    assert words and words <= RESERVED_JOURNEY_IDS, words


@pytest.mark.parametrize(
    ("triggers", "exits", "code"),
    [
        (
            [{"kind": "stage_reached", "stage": "customer"}],
            {"stages": ["customer"]},
            "trigger_stage_exits",
        ),
        (
            [{"kind": "event", "event": {"type": "mail_delivered"}}],
            None,
            "trigger_event_never_enters",
        ),
    ],
    ids=["stage_trigger_on_an_exit_stage", "event_trigger_on_a_kind_tsunagu_records"],
)
def test_a_journey_saved_from_a_file_is_held_to_the_settings_rules(
    aws: AwsStack, triggers: list[dict[str, Any]], exits: dict[str, Any] | None, code: str
) -> None:
    # Given a journey record, as `tsunagu journeys save FILE` reads one, whose triggers could
    # never work (the console's settings save refuses the same)
    settings = aws.settings()
    record = Journey.model_validate(
        {
            "journey_id": "never_sends",
            "name": "Never sends",
            "state_machine": "welcome-nurture",
            "triggers": triggers,
            **({"exit": exits} if exits else {}),
        }
    )
    # When it is saved, Then it is refused with the same coded problem, and nothing is stored
    ports = services.journey_commands(settings)
    with pytest.raises(ValidationFailed) as refused:
        journeys.save(ports, services.operator(settings), record, replace=False)
    assert [problem.code for problem in refused.value.errors] == [code]
    assert ports.journeys.get_journey("never_sends") is None
