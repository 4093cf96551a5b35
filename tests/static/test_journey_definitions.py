"""The shipped journeys are definitions (journeys/*.json); their ASL in statemachines/ is the
compiler's output, committed so that sam deploy and the local runtime read it as before.
``make journeys`` regenerates both the ASL and the JSON Schema; these tests fail when either
was edited by hand or not regenerated."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tsunagu.journeys.compiler import asl_text, compile_journey, definition_schema, read_definition
from tsunagu.journeys.shipped import SHIPPED_JOURNEYS, SHIPPED_MAILS

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = sorted((ROOT / "journeys").glob("*.json"))
SCHEMA_FILE = ROOT / "docs" / "journey-definition.schema.json"


def test_every_shipped_journey_is_a_definition() -> None:
    assert sorted(p.stem for p in DEFINITIONS) == sorted(j.journey_id for j in SHIPPED_JOURNEYS)


def test_the_definitions_are_short() -> None:
    # The measure of "a marketer can read it": 3,166 lines of hand-written ASL before.
    assert sum(len(p.read_text().splitlines()) for p in DEFINITIONS) < 400


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.stem)
def test_the_committed_asl_is_the_compilers_output(path: Path) -> None:
    definition = read_definition(path.read_text(encoding="utf-8"))
    templates = {mail.template_id for mail in SHIPPED_MAILS}
    compiled = asl_text(compile_journey(definition, templates))
    committed = ROOT / "statemachines" / f"{definition.journey_id}.asl.json"
    assert committed.read_text(encoding="utf-8") == compiled, "run make journeys"


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.stem)
def test_each_definition_matches_the_published_json_schema(path: Path) -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.validate(json.loads(path.read_text(encoding="utf-8")), schema)


def test_the_published_json_schema_is_the_models(tmp_path: Path) -> None:
    expected = json.dumps(definition_schema(), ensure_ascii=False, indent=2) + "\n"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == expected, "run make journeys"


def test_the_schema_refuses_what_the_models_refuse() -> None:
    # The schema is for editors (the console, an IDE): a node of a kind the compiler does not
    # know is refused there too.
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    bad = json.loads(DEFINITIONS[0].read_text(encoding="utf-8"))
    bad["nodes"][0]["kind"] = "teleport"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_the_readmes_example_definition_compiles() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Build a journey", 1)[1]
    example = section.split("```json", 1)[1].split("```", 1)[0]
    templates = {mail.template_id for mail in SHIPPED_MAILS}
    compiled = compile_journey(read_definition(example), templates)
    assert compiled["StartAt"] == "Check the gate before the we-miss-you mail"
