"""What is wrong with a journey's settings that each field alone would not say: each problem a
FieldError with a code that stays when the words change, the parameters a sentence about it
needs, and the English message the CLI and API clients read.

As a list's refusals (tsunagu.imports.refusals), the console says a problem from
``errors.field_codes.<code>`` in its locales (tests/static/test_console_locales.py holds both
languages to these codes and their parameters)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from tsunagu.errors import FieldError
from tsunagu.event_kinds import enters_journeys
from tsunagu.journeys.model import Journey, JourneySettings

JourneyProblemCode = Literal["trigger_stage_exits", "trigger_event_never_enters"]
JOURNEY_PROBLEM_CODES: tuple[JourneyProblemCode, ...] = get_args(JourneyProblemCode)
JOURNEY_PROBLEM_PARAMS: Mapping[JourneyProblemCode, tuple[str, ...]] = {
    "trigger_stage_exits": ("stage",),
    "trigger_event_never_enters": ("kind",),
}
"""Each code's parameters, by name: every problem of that code has them all."""


def journey_problem(
    field: str, code: JourneyProblemCode, message: str, **params: Any
) -> FieldError:
    """The problem with ``field``, said in English by ``message``; ``params`` are exactly the
    code's (JOURNEY_PROBLEM_PARAMS), or this is the code's own mistake."""
    expected = set(JOURNEY_PROBLEM_PARAMS[code])
    assert set(params) == expected, (code, sorted(params), sorted(expected))
    return FieldError(field, message, code, params)


def settings_problems(settings: JourneySettings | Journey) -> list[FieldError]:
    """Settings (given alone, or in a journey's whole record) that save but could never work:
    a lead entering on reaching a stage the journey's exits name would be entered and, at its
    first gate, leave as converted - the journey would never send a mail (the dry run, whose
    lead is at no such stage, shows mails going). Refused rather than mended: which of the two
    the marketer meant is theirs to say."""
    return _stage_problems(settings) + _event_problems(settings)


def _stage_problems(settings: JourneySettings | Journey) -> list[FieldError]:
    return [
        journey_problem(
            f"triggers.{index}.stage",
            "trigger_stage_exits",
            f"a lead entering on reaching {trigger.stage} would leave at once: {trigger.stage}"
            " is one of the stages the journey exits on (take it out of exit.stages, or enter"
            " on another stage)",
            stage=trigger.stage,
        )
        for index, trigger in enumerate(settings.triggers)
        if trigger.kind == "stage_reached"
        and trigger.stage is not None
        and trigger.stage in settings.exit.stages
    ]


def _event_problems(settings: JourneySettings | Journey) -> list[FieldError]:
    """An event trigger on a kind Tsunagu records itself (mail_delivered, crm_status_changed,
    owner_notified...), which the routing enters no journey on (event_kinds.enters_journeys):
    it would save, publish, and never enter anyone. (A kind Tsunagu does not know is a site's
    own - /t/events takes any - and is kept.)"""
    return [
        journey_problem(
            f"triggers.{index}.event.type",
            "trigger_event_never_enters",
            f"{trigger.event.type!r} is recorded by Tsunagu itself and enters no journey: the"
            " trigger would never fire (a stage or score trigger starts a journey on those)",
            kind=trigger.event.type,
        )
        for index, trigger in enumerate(settings.triggers)
        if trigger.kind == "event"
        and trigger.event is not None
        and not enters_journeys(trigger.event.type)
    ]
