"""The CLI piped into a command that stops reading (``tsunagu ... | head``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# A CLI whose settings and one command are stand-ins: the point is what happens to its output.
SCRIPT = textwrap.dedent(
    """
    import sys
    from tsunagu import cli

    def many_lines(settings, args):
        for number in range(200_000):
            print(f"line {number}")
        return 0

    cli._local_settings = lambda: (None, {})
    cli.forms_list = many_lines
    sys.exit(cli.main(["forms", "list"]))
    """
)


def test_output_into_a_closed_pipe_ends_quietly() -> None:
    # Given the CLI printing many lines into a pipe
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    # When the reader takes the first line and goes away (as head does)
    assert process.stdout.readline() == b"line 0\n"
    process.stdout.close()
    errors = process.stderr.read().decode()
    code = process.wait(timeout=60)
    # Then there is no traceback, and the exit status says the pipe closed
    assert "Traceback" not in errors and "BrokenPipeError" not in errors, errors
    assert code == 141, (code, errors)
