"""The CLI's counts and limits: a number below what the option can mean is refused where
argparse reads it, with the option named, before anything is read or sent (no runtime needed)."""

from __future__ import annotations

import pytest

from tsunagu import cli

COMMANDS = {
    "audit list --limit": ["audit", "list", "--limit"],
    "leads timeline --limit": ["leads", "timeline", "hanako.sato@example.jp", "--limit"],
    "leads search --limit": ["leads", "search", "sato", "--limit"],
    "leads hot --limit": ["leads", "hot", "--limit"],
    "leads get --events": ["leads", "get", "hanako.sato@example.jp", "--events"],
    "mail send --version": ["mail", "send", "sato@example.jp", "--template", "t", "--version"],
    "journeys resume --rate": ["journeys", "resume", "welcome", "--policy", "pace", "--rate"],
    "journeys rollback --to": ["journeys", "rollback", "welcome", "--to"],
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
@pytest.mark.parametrize("number", ["-5", "0", "five"])
def test_a_count_below_one_is_refused_not_read_as_none_or_all(
    command: list[str], number: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When a command is given a limit, a count or a version that is not 1 or more
    with pytest.raises(SystemExit) as refused:
        cli.main([*command, number])
    # Then argparse refuses it, naming the option, as it refuses any option it cannot read
    option = command[-1]
    assert refused.value.code == 2
    said = capsys.readouterr().err.splitlines()[-1]
    assert said.endswith(f"argument {option}: give a whole number of 1 or more, not {number}")


@pytest.mark.parametrize(
    "command",
    [
        ["imports", "plan", "list.csv", "--rows"],
        ["tracking", "links", "hanako.sato@example.jp", "--url", "https://www.example.com",
         "--sent-seconds-ago"],
    ],
    ids=["imports plan --rows", "tracking links --sent-seconds-ago"],
)  # fmt: skip
def test_a_count_where_none_means_something_may_be_0_but_not_negative(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # When a count that may be 0 (print no rows) is given as a negative number
    with pytest.raises(SystemExit) as refused:
        cli.main([*command, "-1"])
    # Then it is refused too, not read as "all but the last row"
    assert refused.value.code == 2
    said = capsys.readouterr().err.splitlines()[-1]
    assert said.endswith(f"argument {command[-1]}: give a whole number of 0 or more, not -1")
