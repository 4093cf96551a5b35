"""What a marketer reads when the API refuses: the console says an error and a coded problem in
the user's language (api.ts describeError / describeProblem / problemText), never the server's
English message in their place, and a screen that shows each problem at its field does not say
it a second time in the status line."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "console" / "src"

RAW_MESSAGE = re.compile(r"error instanceof ApiError \? error\.message")
RAW_PROBLEM = re.compile(r"\.map\(\(p\) => p\.message\)|\{problem\.field\}: \{problem\.message\}")


def hits(pattern: re.Pattern[str]) -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.tsx")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(SRC)}:{number}")
    return found


def test_no_screen_shows_an_api_error_in_the_servers_english() -> None:
    # A 409 already_exists, a 422 trigger_stage_exits (coded, said in Japanese under its field)
    # or a 403 were shown as error.message: English, and a trigger refusal said twice
    assert hits(RAW_MESSAGE) == []


def test_no_screen_shows_a_coded_problem_by_its_english_message() -> None:
    # A journey's problem ("triggers.0.stage: a lead entering on reaching customer would
    # leave at once...") was shown in English beside the same problem said by describeError
    assert hits(RAW_PROBLEM) == []
