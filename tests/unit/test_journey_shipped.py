"""The journeys Tsunagu ships: their templates render, the state machines use only templates that
ship and functions the template substitutes, every state is wired and reachable, and each journey
names a state machine template.yaml deploys (tsunagu.journeys.shipped, statemachines/)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from tsunagu.forms.model import ConsentSpec
from tsunagu.journeys.shipped import (
    CONFIRMATION_MAIL,
    SHIPPED_JOURNEYS,
    SHIPPED_MAILS,
    ShippedMail,
    shipped_site_paths,
    shipped_template,
)
from tsunagu.mail.render import check_template

ROOT = Path(__file__).resolve().parents[2]
STATE_MACHINES = ROOT / "statemachines"
ASL_FILES = sorted(STATE_MACHINES.glob("*.asl.json"))
SITE = "https://www.example.com"
SENDER = "news@example.com"
SUBSTITUTION = re.compile(r"^\$\{([A-Za-z0-9]+)\}$")


def template_yaml() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text(encoding="utf-8"))
    return parsed


def state_machine_resources() -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template_yaml()["Resources"].items()
        if resource["Type"] == "AWS::Serverless::StateMachine"
    }


def definition(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def targets(state: dict[str, Any]) -> Iterator[str]:
    """Every state this one may go to next."""
    if "Next" in state:
        yield state["Next"]
    if "Default" in state:
        yield state["Default"]
    for choice in state.get("Choices", []):
        yield choice["Next"]
    for catch in state.get("Catch", []):
        yield catch["Next"]


def task_payloads(asl: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Lambda task's parameters (settle_clicks also has a DynamoDB task)."""
    for name, state in asl["States"].items():
        if state["Type"] == "Task" and state["Resource"].startswith(
            "arn:aws:states:::lambda:invoke"
        ):
            yield name, state.get("Parameters", {})


def test_the_three_journeys_ship_with_an_asl_file_each() -> None:
    assert sorted(j.journey_id for j in SHIPPED_JOURNEYS) == [
        "re_engagement",
        "seminar_follow_up",
        "welcome_nurture",
    ]
    names = {p.name for p in ASL_FILES}
    for journey in SHIPPED_JOURNEYS:
        assert f"{journey.journey_id}.asl.json" in names, journey.journey_id


# ---------------------------------------------------------------- templates
@pytest.mark.parametrize("mail", SHIPPED_MAILS, ids=[m.template_id for m in SHIPPED_MAILS])
def test_every_shipped_template_renders(mail: ShippedMail) -> None:
    template = shipped_template(mail, site_url=SITE + "/", sender=SENDER)
    check_template(template)
    assert "{site}" not in template.html
    assert f'href="{SITE}/' in template.html  # the trailing slash of the site is not doubled
    assert template.from_address == SENDER


@pytest.mark.parametrize("mail", SHIPPED_MAILS, ids=[m.template_id for m in SHIPPED_MAILS])
def test_no_shipped_mail_names_a_month_it_cannot_know(mail: ShippedMail) -> None:
    # The seminar invitation said "12月" whatever month it went out in
    assert not re.search(
        r"\d+\s*月|\b(January|February|March|April|May|June|July|August|"
        r"September|October|November|December)\b",
        mail.subject + mail.body,
    )


def test_the_confirmation_mail_ships_as_the_forms_default_transactional_template() -> None:
    # A form's box ticked for a lead who said no asks for it, whatever the form's own settings
    template = shipped_template(CONFIRMATION_MAIL, site_url=SITE, sender=SENDER)
    check_template(template)
    default = ConsentSpec.model_fields["confirmation_template"].default
    assert template.template_id == default
    assert template.kind == "transactional"
    assert "{{ confirm_url }}" in template.html


def test_template_ids_are_unique() -> None:
    ids = [m.template_id for m in SHIPPED_MAILS]
    assert len(ids) == len(set(ids))


def test_the_site_paths_the_mails_link_to() -> None:
    paths = shipped_site_paths()
    assert "/pricing" in paths and "/case-study" in paths
    assert all(p.startswith("/") and "{" not in p for p in paths)


def used_template_ids() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for path in ASL_FILES:
        for _, parameters in task_payloads(definition(path)):
            template_id = parameters.get("Payload", {}).get("template_id")
            if template_id is not None:
                used.setdefault(template_id, set()).add(path.name)
    return used


def test_every_template_a_state_machine_sends_ships() -> None:
    shipped = {m.template_id for m in SHIPPED_MAILS}
    missing = {t: files for t, files in used_template_ids().items() if t not in shipped}
    assert missing == {}


def test_every_shipped_template_is_sent_by_some_state_machine() -> None:
    unused = {m.template_id for m in SHIPPED_MAILS} - set(used_template_ids())
    assert unused == set()


# ---------------------------------------------------------------- journeys and template.yaml
def test_every_journey_names_a_state_machine_the_template_deploys() -> None:
    suffixes = set()
    for properties in state_machine_resources().values():
        name = properties["Name"]
        text = name["Fn::Sub"] if isinstance(name, dict) else name
        assert text.startswith("${AWS::StackName}-"), text
        suffixes.add(text.removeprefix("${AWS::StackName}-"))
    assert {j.state_machine for j in SHIPPED_JOURNEYS} <= suffixes
    assert len(suffixes) == len(state_machine_resources())


def test_every_asl_file_is_deployed_by_the_template() -> None:
    uris = {p["DefinitionUri"] for p in state_machine_resources().values()}
    assert uris == {f"statemachines/{p.name}" for p in ASL_FILES}


def test_each_journey_runs_the_asl_file_that_names_it() -> None:
    by_suffix = {}
    for properties in state_machine_resources().values():
        suffix = properties["Name"]["Fn::Sub"].removeprefix("${AWS::StackName}-")
        by_suffix[suffix] = properties["DefinitionUri"]
    for journey in SHIPPED_JOURNEYS:
        asl = definition(ROOT / by_suffix[journey.state_machine])
        ids = {
            payload.get("journey_id")
            for _, parameters in task_payloads(asl)
            for payload in [parameters.get("Payload", {})]
            if "journey_id" in payload
        }
        journey_steps = {
            parameters["Payload"]["journey"]["journey_id"]
            for _, parameters in task_payloads(asl)
            if "journey" in parameters.get("Payload", {})
        }
        assert ids | journey_steps == {journey.journey_id}, journey.journey_id


# ---------------------------------------------------------------- the ASL files
@pytest.mark.parametrize("path", ASL_FILES, ids=[p.stem for p in ASL_FILES])
def test_every_next_target_exists(path: Path) -> None:
    states = definition(path)["States"]
    assert definition(path)["StartAt"] in states
    dangling = [(name, target) for name, s in states.items() for target in targets(s)]
    assert [(n, t) for n, t in dangling if t not in states] == []


@pytest.mark.parametrize("path", ASL_FILES, ids=[p.stem for p in ASL_FILES])
def test_every_state_is_reachable_from_the_start(path: Path) -> None:
    asl = definition(path)
    states = asl["States"]
    seen = {asl["StartAt"]}
    frontier = [asl["StartAt"]]
    while frontier:
        for target in targets(states[frontier.pop()]):
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert set(states) - seen == set()


@pytest.mark.parametrize("path", ASL_FILES, ids=[p.stem for p in ASL_FILES])
def test_every_state_ends_or_goes_on(path: Path) -> None:
    for name, state in definition(path)["States"].items():
        terminal = state["Type"] in ("Succeed", "Fail") or state.get("End") is True
        assert terminal != ("Next" in state or state["Type"] == "Choice"), name


@pytest.mark.parametrize("path", ASL_FILES, ids=[p.stem for p in ASL_FILES])
def test_every_task_calls_a_function_the_template_substitutes(path: Path) -> None:
    [properties] = [
        p
        for p in state_machine_resources().values()
        if p["DefinitionUri"] == f"statemachines/{path.name}"
    ]
    declared = set(properties["DefinitionSubstitutions"])
    for name, parameters in task_payloads(definition(path)):
        function = parameters.get("FunctionName")
        assert isinstance(function, str), name
        match = SUBSTITUTION.match(function)
        assert match, f"{name}: FunctionName {function!r} is not a ${{...}} substitution"
        assert match.group(1) in declared, f"{name}: {match.group(1)} is not substituted"


@pytest.mark.parametrize("path", ASL_FILES, ids=[p.stem for p in ASL_FILES])
def test_every_substitution_refers_to_a_function_of_the_template(path: Path) -> None:
    resources = template_yaml()["Resources"]
    for properties in state_machine_resources().values():
        for key, value in properties["DefinitionSubstitutions"].items():
            if "Ref" in value:  # a table a task writes directly (settle_clicks)
                assert resources[value["Ref"]]["Type"] == "AWS::DynamoDB::Table", key
                continue
            logical_id, attribute = value["Fn::GetAtt"]
            assert attribute == "Arn", key
            assert resources[logical_id]["Type"] == "AWS::Serverless::Function", key


@pytest.mark.parametrize("path", ASL_FILES, ids=[p.stem for p in ASL_FILES])
def test_every_gate_is_followed_by_its_choice_and_every_wait_times_out(path: Path) -> None:
    states = definition(path)["States"]
    for name, state in states.items():
        if name.startswith("Check the gate"):
            choice = states[state["Next"]]
            actions = {c["StringEquals"] for c in choice["Choices"]}
            mail = state["Parameters"]["Payload"].get("mail", True)
            # A mail's gate, or the lighter one before a step that is no mail
            assert actions == ({"send", "defer", "park", "skip"} if mail else {"go", "park"}), name
            assert choice["Default"] == "The lead left the journey", name
        if state.get("Resource", "").endswith(".waitForTaskToken") and "park" not in state.get(
            "Parameters", {}
        ).get("Payload", {}):
            assert state.get("TimeoutSeconds"), name
            assert state["Parameters"]["Payload"]["timeout_seconds"] == state["TimeoutSeconds"]
            caught = [c["ErrorEquals"] for c in state["Catch"]]
            assert ["States.Timeout"] in caught, name
