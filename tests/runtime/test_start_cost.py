"""What a runtime no longer repeats at every start: moto's Batch (and EC2) imports, and the parse of
each state machine it has parsed before (tsunagu_local.moto_imports, tsunagu_local.interpreter).
Each check runs in a fresh interpreter, whose imports and caches start empty."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = ROOT / "statemachines" / "hand_off_to_sales.asl.json"


def _python(code: str, **environment: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **environment},
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_the_interpreter_imports_without_moto_batch_or_ec2_and_batch_still_works() -> None:
    answer = json.loads(
        _python(
            "import json, sys, tsunagu_local\n"
            "import moto.stepfunctions.parser.models\n"
            "before = {m: m in sys.modules for m in ('moto.ec2', 'moto.batch.models')}\n"
            "from moto.backends import get_backend\n"
            "backend = get_backend('batch')['123456789012']['us-east-1']\n"
            "import moto.batch\n"
            "print(json.dumps({'before': before, 'backend': type(backend).__name__,\n"
            "  'package_has_backends': hasattr(moto.batch, 'batch_backends')}))"
        )
    )
    assert answer["before"] == {"moto.ec2": False, "moto.batch.models": False}
    assert answer["backend"] == "BatchBackend"  # first use runs the package's real __init__
    assert answer["package_has_backends"] is True


_PARSE = (
    "import json, sys, pathlib\n"
    "import tsunagu_local\n"
    "from tsunagu_local import interpreter\n"
    "parsed = []\n"
    "import moto.stepfunctions.parser.asl.parse.asl_parser as p\n"
    "original = p.AmazonStateLanguageParser.parse\n"
    "def counting(definition):\n"
    "    parsed.append(1)\n"
    "    return original(definition)\n"
    "p.AmazonStateLanguageParser.parse = staticmethod(counting)\n"
    "program = interpreter._program(pathlib.Path(sys.argv[-1]).read_text())\n"
    "states = sorted(program.states.states.keys())\n"
    "print(json.dumps({'parsed': len(parsed), 'states': states}))"
)


def _parse_in_a_fresh_process(cache: Path | str, definition: Path) -> dict[str, object]:
    code = _PARSE.replace("sys.argv[-1]", repr(str(definition)))
    return dict(json.loads(_python(code, TSUNAGU_LOCAL_ASL_CACHE=str(cache))))


def test_a_definition_parsed_once_is_loaded_by_the_next_process_with_the_same_states(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "asl"
    first = _parse_in_a_fresh_process(cache, DEFINITION)
    second = _parse_in_a_fresh_process(cache, DEFINITION)

    assert first["parsed"] == 1
    assert len(list(cache.glob("*.pickle"))) == 1
    assert second["parsed"] == 0  # loaded, not parsed
    assert second["states"] == first["states"] and first["states"]


def test_a_changed_definition_is_parsed_again_and_a_damaged_file_is_replaced(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "asl"
    _parse_in_a_fresh_process(cache, DEFINITION)
    changed = tmp_path / "changed.asl.json"
    document = json.loads(DEFINITION.read_text())
    document["Comment"] = "changed"
    changed.write_text(json.dumps(document))

    assert _parse_in_a_fresh_process(cache, changed)["parsed"] == 1
    assert len(list(cache.glob("*.pickle"))) == 2

    for kept in cache.glob("*.pickle"):
        kept.write_bytes(b"cut short")
    assert _parse_in_a_fresh_process(cache, DEFINITION)["parsed"] == 1
    assert _parse_in_a_fresh_process(cache, DEFINITION)["parsed"] == 0


def test_the_cache_can_be_turned_off(tmp_path: Path) -> None:
    assert _parse_in_a_fresh_process("off", DEFINITION)["parsed"] == 1
    assert _parse_in_a_fresh_process("off", DEFINITION)["parsed"] == 1
