"""moto's Step Functions interpreter, without the work it repeats for every execution and task.

**Each definition parsed once.** moto's interpreter parses the whole ASL definition with an ANTLR
parser written in pure Python every time an execution starts
(``ExecutionWorker._get_evaluation_entrypoint``). welcome_nurture is about 900 lines of JSON: on
the runtime, that parse was two fifths of all the CPU a journey run took (measured with py-spy
during the fault-injection proof).

The parsed program is a tree of declarations: every value an execution changes lives in that
execution's ``Environment`` (retry attempts included, keyed by each component's ``heap_key``), so
one tree serves every execution of the same definition. The one lazy attribute, ``heap_key``,
is set on every component before the tree is shared, so two executions starting at once cannot
give one component two keys.

**Checked with the same parse.** CreateStateMachine and UpdateStateMachine check a definition by
parsing it (``StepFunctionsParserBackend._validate_definition``): the check keeps the tree it
parsed, so a journey's first execution does not parse its definition a second time, and a
runtime starts with one parse per state machine instead of two.

**Parsed once per virtualenv, not once per process.** Even one parse per state machine was a
quarter of a runtime's start (about 1.6 s of CPU for the shipped journeys), and the suite starts
runtimes by the dozen. A parsed tree is plain data, so it is pickled into the virtualenv the
runtime runs from (``<venv>/tsunagu-local-cache/asl``, keyed on the definition and the versions of
Python, moto and the ANTLR runtime) and the next process loads it in a millisecond. Loading a
pickle runs code, so the cache lives where only someone who could already change the installed
moto can write: the same virtualenv, created by ``make``. ``TSUNAGU_LOCAL_ASL_CACHE`` moves it;
``off`` turns it off.

**Each JSONPath parsed once.** moto's interpreter parses every JSONPath of a state (``InputPath``,
``Parameters`` bindings, ``ResultPath``...) each time the state runs, with jsonpath-ng, which
builds a new PLY lexer and parser for each parse: about a twentieth of the runtime's CPU under
load (py-spy, tests/proof/load.py). A parsed path is only read when it is applied, so one parse
serves every state and execution.

**One Lambda client per region and role.** For every Lambda task, moto's interpreter builds a new
boto3 client (``boto_client_for``): loading the service model each time was a tenth of a journey
run's CPU. A boto3 client is safe to share between threads, so the tasks share one per region and
role.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import pickle
import sys
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

_CACHE_LAYOUT = "1"  # bump when what is kept in a parsed tree changes

_PATCHED_FLAG = "_tsunagu_parsed_once"
_PARSE_LOCK = threading.Lock()


def _give_every_component_its_key(root: Any) -> None:
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    seen: set[int] = set()
    pending = [root]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, EvalComponent):
            _ = node.heap_key
        if isinstance(node, list | tuple | set | frozenset):
            pending.extend(node)
        elif isinstance(node, dict):
            pending.extend(node.values())
        elif hasattr(node, "__dict__") and type(node).__module__.startswith("moto.stepfunctions"):
            pending.extend(vars(node).values())


def _cache_folder() -> Path | None:
    chosen = os.environ.get("TSUNAGU_LOCAL_ASL_CACHE", "")
    if chosen == "off":
        return None
    return Path(chosen) if chosen else Path(sys.prefix) / "tsunagu-local-cache" / "asl"


def _cache_file(folder: Path, definition: str) -> Path:
    versions = "|".join(
        (
            _CACHE_LAYOUT,
            sys.version,
            importlib.metadata.version("moto"),
            importlib.metadata.version("antlr4-python3-runtime"),
        )
    )
    key = hashlib.sha256(f"{versions}\n{definition}".encode()).hexdigest()
    return folder / f"{key}.pickle"


def _kept_parse(definition: str) -> Any | None:
    folder = _cache_folder()
    if folder is None:
        return None
    try:
        data = _cache_file(folder, definition).read_bytes()
    except OSError:
        return None
    try:
        return pickle.loads(data)  # noqa: S301 - written by _keep_parse, see the docstring
    except Exception:  # a file cut short or from another layout: parse again, overwrite it
        return None


def _keep_parse(definition: str, program: Any) -> None:
    folder = _cache_folder()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        data = pickle.dumps(program, protocol=pickle.HIGHEST_PROTOCOL)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".part", delete=False) as part:
            part.write(data)
        os.replace(part.name, _cache_file(folder, definition))  # whole or not at all
    except (OSError, pickle.PicklingError, RecursionError):
        return  # a read-only virtualenv: every process parses, as before


@lru_cache(maxsize=128)
def _program(definition: str) -> Any:
    program = _kept_parse(definition)
    if program is not None:
        return program
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    program, _ = AmazonStateLanguageParser.parse(definition)
    _give_every_component_its_key(program)
    _keep_parse(definition, program)
    return program


def _one_client_per_region(build: Any) -> Any:
    """``boto_client_for``, building one client per region, service and role.

    moto hands every task the credentials it runs with (the state's own, or else the state
    machine's role), never None: a cache that built afresh whenever credentials were given
    was never used for a Lambda task, and building the client was again a tenth of the
    runtime's CPU under load (py-spy, tests/proof/load.py). The role is part of the key, so a
    task with credentials of its own still gets a client of its own."""
    clients: dict[tuple[str, str, str | None], Any] = {}
    lock = threading.Lock()

    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, getattr(state_credentials, "role_arn", None))
        with lock:
            if key not in clients:
                clients[key] = build(region, service, state_credentials)
            return clients[key]

    return client_for


def repeat_no_work_per_execution() -> None:
    """Install all four (once per process)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    if getattr(ExecutionWorker._get_evaluation_entrypoint, _PATCHED_FLAG, False):
        return
    build = getattr(lambda_eval_utils, "boto_client_for")  # noqa: B009 - not re-exported
    setattr(lambda_eval_utils, "boto_client_for", _one_client_per_region(build))  # noqa: B010
    _parse_each_definition_once(ExecutionWorker)
    _check_with_the_kept_parse(StepFunctionsParserBackend)
    _parse_each_json_path_once()


def _parse_each_definition_once(worker_class: Any) -> None:
    def entrypoint(self: Any) -> Any:
        definition: str = self._evaluation_details.state_machine_details.definition
        with _PARSE_LOCK:  # one parse per definition, even when executions start together
            return _program(definition)

    setattr(entrypoint, _PATCHED_FLAG, True)
    worker_class._get_evaluation_entrypoint = entrypoint


def _parse_each_json_path_once() -> None:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    for module in (json_path, result_path):  # jsonpath_ng.ext's parse, and jsonpath_ng's
        module.parse = lru_cache(maxsize=4096)(module.parse)  # type: ignore[attr-defined]


def _check_with_the_kept_parse(backend_class: Any) -> None:
    moto_check = backend_class._validate_definition

    def check(definition: str) -> None:
        try:
            with _PARSE_LOCK:
                _program(definition)
        except Exception:
            moto_check(definition)  # moto's own error, the one CreateStateMachine answers
            raise

    backend_class._validate_definition = staticmethod(check)
