"""The console's two languages: the same keys in each, a label for every event kind Tsunagu
writes itself or its snippet sends, so a lead's timeline never shows a raw code
(``consent_changed``) in either language, and words for every reason an import rejects a row
for and every refusal of a list."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic_core.core_schema import ErrorType

from tsunagu.event_kinds import SERVER_EVENT_KINDS
from tsunagu.forms.refusals import FORM_REFUSAL_PARAMS
from tsunagu.imports.reasons import JAPANESE, JAPANESE_WORDS, REASON_CODES, REASON_PARAMS
from tsunagu.imports.refusals import REFUSAL_PARAMS
from tsunagu.journeys.problems import JOURNEY_PROBLEM_PARAMS

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ROOT / "console" / "src" / "locales"
SNIPPET_KINDS = {"page_view"}
"""What tracking/snippet.js sends on its own (a site's custom events are shown as named)."""
WRITTEN_ELSEWHERE = {"deal_changed"}
"""Written by the CRM path (qualification/deals.py)."""


def keys(tree: dict[str, Any], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for name, value in tree.items():
        path = f"{prefix}{name}"
        found |= keys(value, f"{path}.") if isinstance(value, dict) else {path}
    return found


def locale(language: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((LOCALES / f"{language}.json").read_text("utf-8"))
    return loaded


def test_both_languages_have_the_same_keys_but_english_plurals() -> None:
    english, japanese = keys(locale("en")), keys(locale("ja"))
    # Japanese has no plural forms: i18next falls back from "_one" to the key itself
    assert {k for k in english - japanese if not k.endswith("_one")} == set()
    assert japanese - english == set()


@pytest.mark.parametrize("language", ["en", "ja"])
def test_every_event_kind_tsunagu_writes_has_a_label(language: str) -> None:
    labels = locale(language)["events"]
    written = SERVER_EVENT_KINDS | SNIPPET_KINDS | WRITTEN_ELSEWHERE
    assert sorted(written - labels.keys()) == []


def test_every_reason_an_import_rejects_a_row_for_is_said_in_both_languages() -> None:
    # The console says a rejected row's reason from its code (falling back to the server's
    # English only for a code it does not know): a code without words would show English to
    # a Japanese marketer, and a sentence naming a parameter the code lacks would show it raw
    for language in ("en", "ja"):
        said = locale(language)["imports"]["reasons"]
        assert sorted(said) == sorted(REASON_CODES), language
        for code, sentence in said.items():
            named = set(re.findall(r"\{\{(\w+)\}\}", sentence))
            assert named <= set(REASON_PARAMS[code]), (language, code, named)


def test_the_rejected_rows_file_and_the_screen_say_a_reason_in_the_same_japanese() -> None:
    japanese = locale("ja")["imports"]
    assert japanese["reasons"] == dict(JAPANESE)
    assert japanese["reason_words"] == dict(JAPANESE_WORDS)


def test_every_refusal_of_a_list_or_a_form_is_said_in_both_languages() -> None:
    # A list refused whole (its encoding, its header, its mapping...), a form refused at save
    # (its consent box's confirmation mail) or a journey's settings that could never work
    # (tsunagu.journeys.problems) is said from the problem's code
    # (errors.field_codes.<code>), falling back to the server's English only for a code the
    # console does not know: every code the import path or a form's save can raise needs words
    # in both languages, naming no parameter the code lacks
    params: dict[str, tuple[str, ...]] = {
        **REFUSAL_PARAMS,
        **FORM_REFUSAL_PARAMS,
        **JOURNEY_PROBLEM_PARAMS,
    }
    for language in ("en", "ja"):
        said = dict(locale(language)["errors"]["field_codes"])
        said.pop("value")  # pydantic's problems (test_pydantic_problems_are_said_by_their_type)
        assert sorted(said) == sorted(params), language
        for code, sentence in said.items():
            named = set(re.findall(r"\{\{(\w+)\}\}", sentence))
            assert named <= set(params[code]), (language, code, named)


IMPORT_PATH = [
    *sorted((ROOT / "layers/tsunagu/tsunagu/imports").glob("*.py")),
    ROOT / "layers/tsunagu/tsunagu/commands/imports.py",
    ROOT / "layers/tsunagu/tsunagu/commands/import_jobs.py",
]
"""Where a list, its dry run, column list, run and saved mappings are refused (the admin API's
own refusals of an import request's file go through ``refusal`` too: ``_not_base64``)."""


@pytest.mark.parametrize("module", IMPORT_PATH, ids=lambda path: path.name)
def test_the_import_path_makes_every_problem_with_a_code(module: Path) -> None:
    # REFUSAL_CODES is every code the import path can raise only while each of its problems is
    # made by refusal(), whose code mypy holds to RefusalCode: a FieldError made directly would
    # reach the console with no code, in English
    if module.name == "refusals.py":
        return
    tree = ast.parse(module.read_text("utf-8"))
    direct = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "FieldError"
    ]
    assert direct == [], f"{module.name}: FieldError made without a code on lines {direct}"


def test_pydantic_problems_are_said_by_their_type() -> None:
    # A body pydantic refuses has each problem coded value.<pydantic's error type>
    # (client_values.pydantic_problem): the console's words are keyed by those types, so a
    # misspelt key would never be said; both languages say the same ones
    types = set(get_args(ErrorType))
    english = locale("en")["errors"]["field_codes"]["value"]
    japanese = locale("ja")["errors"]["field_codes"]["value"]
    assert sorted(english) == sorted(japanese)
    assert set(english) <= types, set(english) - types
