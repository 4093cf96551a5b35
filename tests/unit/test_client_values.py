"""pydantic's refusals of a client's values as the domain's field problems: coded by pydantic's
error type with its context, so the console says them in the user's language (its sentences
name only what the context has)."""

from __future__ import annotations

import json
import re
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from tsunagu.client_values import validation_failed
from tsunagu.errors import FieldError

LOCALES = Path(__file__).resolve().parents[2] / "console" / "src" / "locales"


class Colour(Enum):
    RED = "red"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="x", min_length=1, max_length=5)
    tags: list[str] = Field(default_factory=list, min_length=0, max_length=2)
    score: int = Field(default=5, gt=0, lt=100)
    limit: int = Field(default=5, ge=1, le=50, multiple_of=5)
    mfa: Literal["off"] = "off"
    colour: Colour = Colour.RED
    site: AnyHttpUrl | None = None
    since: date = Field(default=date(2026, 1, 1), ge=date(2000, 1, 1))
    word: str = "a"

    @field_validator("word")
    @classmethod
    def _word(cls, value: str) -> str:
        if value == "bad":
            raise ValueError("is not a word we take")
        return value


def problems(body: dict[str, Any]) -> list[FieldError]:
    with pytest.raises(ValidationError) as raised:
        Body.model_validate(body)
    return validation_failed(raised.value, "(body)").errors


def sentences(code: str) -> list[str]:
    """What the console says for ``value.<type>``, in each language."""
    kind = code.removeprefix("value.")
    said = []
    for language in ("en", "ja"):
        codes = json.loads((LOCALES / f"{language}.json").read_text("utf-8"))
        said.append(codes["errors"]["field_codes"]["value"][kind])
    return said


@pytest.mark.parametrize(
    ("body", "code", "params"),
    [
        ({"name": ""}, "value.string_too_short", {"min_length": 1}),
        ({"name": "abcdef"}, "value.string_too_long", {"max_length": 5}),
        ({"tags": ["a", "b", "c"]}, "value.too_long", {"max_length": 2}),
        ({"score": 0}, "value.greater_than", {"gt": 0}),
        ({"score": 100}, "value.less_than", {"lt": 100}),
        ({"limit": 0}, "value.greater_than_equal", {"ge": 1}),
        ({"limit": 55}, "value.less_than_equal", {"le": 50}),
        ({"limit": 7}, "value.multiple_of", {"multiple_of": 5}),
        ({"mfa": "on"}, "value.literal_error", {"expected": "'off'"}),
        ({"colour": "blue"}, "value.enum", {"expected": "'red'"}),
        (
            {"site": "ftp://example.com/"},
            "value.url_scheme",
            {"expected_schemes": "'http' or 'https'"},
        ),
        ({"score": "many"}, "value.int_parsing", {}),
        ({"other": 1}, "value.extra_forbidden", {}),
    ],
)
def test_a_problem_pydantic_finds_carries_its_type_and_what_its_sentence_names(
    body: dict[str, Any], code: str, params: dict[str, Any]
) -> None:
    [problem] = problems(body)
    assert problem.code == code
    assert {name: problem.params[name] for name in params} == params, problem.params
    for sentence in sentences(code):
        named = set(re.findall(r"\{\{(\w+)\}\}", sentence))
        assert named <= set(problem.params), (sentence, problem.params)


def test_our_own_sentences_and_a_context_json_cannot_hold_keep_only_their_words() -> None:
    # A validator's ValueError is our sentence (no type names it); a context with a list in it
    # cannot be put into a sentence, so the English stays
    [own] = problems({"word": "bad"})
    assert (own.code, own.message) == (None, "Value error, is not a word we take")
    assert own.as_json() == {"field": "word", "message": own.message}

    class Listed(BaseModel):
        days: str

        @field_validator("days")
        @classmethod
        def _days(cls, value: str) -> str:
            raise PydanticCustomError("closed_days", "closed on {days}", {"days": ["Sat", "Sun"]})

    with pytest.raises(ValidationError) as raised:
        Listed.model_validate({"days": "Sat"})
    [listed] = validation_failed(raised.value, "(body)").errors
    assert (listed.code, listed.message) == (None, "closed on ['Sat', 'Sun']")


def test_a_missing_field_is_named_and_coded() -> None:
    class Needs(BaseModel):
        email: str

    with pytest.raises(ValidationError) as raised:
        Needs.model_validate({})
    [problem] = validation_failed(raised.value, "(body)").errors
    assert problem.as_json() == {
        "field": "email",
        "message": "Field required",
        "code": "value.missing",
        "params": {},
    }
