"""Static checks: the template, the files it points at, and the documents kept in step with it.

Nothing here deploys or invokes anything. cfn-lint and ``sam validate --lint`` run offline as
subprocesses; the other checks read files. Each cross-file check is a small function returning
the problems it found, so a failure names every mismatch at once.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_openapi_document
from pydantic_core.core_schema import ErrorType
from samtranslator.yaml_helper import yaml_parse

from tsunagu.api.admin import ROUTES as ADMIN_ROUTES
from tsunagu.api.responses import STATUS_BY_ERROR
from tsunagu.errors import Unauthenticated, UpstreamRefused
from tsunagu.forms.refusals import FORM_REFUSAL_CODES
from tsunagu.imports.refusals import REFUSAL_CODES
from tsunagu.journeys.problems import JOURNEY_PROBLEM_CODES
from tsunagu_local.admin_document import rendered

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
OPENAPI = ROOT / "docs" / "openapi.yaml"
FIXTURES = ROOT / "tests" / "fixtures" / "static"
REGION = "ap-northeast-1"
# The venv's console scripts sit next to its interpreter; PATH may point elsewhere.
BIN = Path(sys.executable).parent

FUNCTION = "AWS::Serverless::Function"
STATE_MACHINE = "AWS::Serverless::StateMachine"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
# CloudFormation replaces ${Name} in a DefinitionUri file with DefinitionSubstitutions[Name].
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


# ---------------------------------------------------------------- loading


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    # samtranslator's loader understands the short intrinsic tags (!Ref, !Sub, !GetAtt, ...).
    parsed: dict[str, Any] = yaml_parse(TEMPLATE.read_text("utf-8"))
    return parsed


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(OPENAPI.read_text("utf-8"))
    return document


def resources_of_type(template: Mapping[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == type_
    }


def offline_environment(**extra: str) -> dict[str, str]:
    """The test environment (fake credentials from conftest) with every network path closed.

    Any HTTP(S) client that honours the proxy variables fails at once on a closed local port
    instead of reaching the internet.
    """
    closed = "http://127.0.0.1:9"
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "http_proxy": closed,
        "https_proxy": closed,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        **extra,
    }


def run_tool(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    # check=False: the caller asserts on the exit code and shows the tool's output.
    return subprocess.run(
        args,
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


# ---------------------------------------------------------------- linters


def test_cfn_lint_accepts_the_template() -> None:
    # Given the venv's cfn-lint (it bundles its resource specs, so it needs no network)
    # When it lints template.yaml
    result = run_tool([str(BIN / "cfn-lint"), str(TEMPLATE)], offline_environment())

    # Then it finds nothing: no errors, warnings or informational matches
    assert result.returncode == 0, f"cfn-lint:\n{result.stdout}\n{result.stderr}"


def test_sam_validate_lint_accepts_the_template(tmp_path: Path) -> None:
    # Given a SAM CLI config dir that says "version checked just now, telemetry off": otherwise
    # `sam` asks pypi.org for a newer release after the command (once a week).
    (tmp_path / "metadata.json").write_text(
        json.dumps({"telemetryEnabled": False, "lastVersionCheck": time.time()}), "utf-8"
    )
    env = offline_environment(SAM_CLI_TELEMETRY="0", __SAM_CLI_APP_DIR=str(tmp_path))

    # When `sam validate --lint` checks the template (--lint runs the transform through
    # cfn-lint locally; plain `sam validate` would call IAM for managed policies)
    result = run_tool(
        [
            str(BIN / "sam"),
            "validate",
            "--lint",
            "--template",
            str(TEMPLATE),
            "--region",
            REGION,
        ],
        env,
    )

    # Then the template is valid
    assert result.returncode == 0, f"sam validate:\n{result.stdout}\n{result.stderr}"


# ---------------------------------------------------------------- state machines


def placeholders(node: Any) -> Iterator[str]:
    """Every ${Name} in an ASL document, in keys as well as values."""
    if isinstance(node, str):
        yield from PLACEHOLDER.findall(node)
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from placeholders(key)
            yield from placeholders(value)
    elif isinstance(node, list):
        for item in node:
            yield from placeholders(item)


def missing_substitutions(definition: Any, substitutions: Mapping[str, Any]) -> set[str]:
    """The placeholders of an ASL document that the DefinitionSubstitutions do not provide."""
    return set(placeholders(definition)) - set(substitutions)


def state_machine_problems(template: Mapping[str, Any], root: Path) -> list[str]:
    """Unresolved ${...} in state machine definitions, and ASL files no resource deploys.

    An unresolved placeholder is deployed as the literal text "${Name}" and only fails when an
    execution reaches that state; an unreferenced file is a journey that silently never runs.
    """
    problems: list[str] = []
    referenced: set[Path] = set()
    for logical_id, resource in sorted(resources_of_type(template, STATE_MACHINE).items()):
        properties = resource.get("Properties", {})
        substitutions = properties.get("DefinitionSubstitutions") or {}
        definitions: list[tuple[str, Any]] = []
        if "Definition" in properties:
            definitions.append(("its inline Definition", properties["Definition"]))
        uri = properties.get("DefinitionUri")
        if isinstance(uri, str):
            path = (root / uri).resolve()
            referenced.add(path)
            if not path.is_file():
                problems.append(f"{logical_id}: DefinitionUri {uri} does not exist")
                continue
            definitions.append((uri, json.loads(path.read_text("utf-8"))))
        for where, definition in definitions:
            for name in sorted(missing_substitutions(definition, substitutions)):
                problems.append(
                    f"{logical_id}: ${{{name}}} in {where} has no DefinitionSubstitutions entry"
                )
    for path in sorted((root / "statemachines").glob("*.asl.json")):
        if path.resolve() not in referenced:
            problems.append(
                f"statemachines/{path.name} is not the DefinitionUri of any {STATE_MACHINE}"
            )
    return problems


def test_state_machine_substitutions_and_files_match(template: dict[str, Any]) -> None:
    assert state_machine_problems(template, ROOT) == []


def test_state_machine_checker_reports_a_missing_substitution_and_an_orphan_file(
    tmp_path: Path,
) -> None:
    # Given a journey using ${SendEmailFunctionArn} and ${LeadsTableName}, a state machine that
    # substitutes only the first, and a second ASL file that no resource points at
    asl = json.loads((FIXTURES / "welcome.asl.json").read_text("utf-8"))
    (tmp_path / "statemachines").mkdir()
    shutil.copy(FIXTURES / "welcome.asl.json", tmp_path / "statemachines" / "welcome.asl.json")
    shutil.copy(FIXTURES / "welcome.asl.json", tmp_path / "statemachines" / "orphan.asl.json")
    substitutions = {"SendEmailFunctionArn": {"Fn::GetAtt": ["SendEmailFunction", "Arn"]}}
    template = {
        "Resources": {
            "WelcomeJourney": {
                "Type": STATE_MACHINE,
                "Properties": {
                    "DefinitionUri": "statemachines/welcome.asl.json",
                    "DefinitionSubstitutions": substitutions,
                },
            }
        }
    }

    # When the checkers run on the ASL dict and on that project
    missing = missing_substitutions(asl, substitutions)
    problems = state_machine_problems(template, tmp_path)

    # Then the missing name and the orphan file are both reported, and nothing else
    assert missing == {"LeadsTableName"}
    assert problems == [
        "WelcomeJourney: ${LeadsTableName} in statemachines/welcome.asl.json "
        "has no DefinitionSubstitutions entry",
        f"statemachines/orphan.asl.json is not the DefinitionUri of any {STATE_MACHINE}",
    ]
    # And once the substitution is provided and the orphan is gone, the project is clean
    substitutions["LeadsTableName"] = {"Ref": "LeadsTable"}
    (tmp_path / "statemachines" / "orphan.asl.json").unlink()
    assert state_machine_problems(template, tmp_path) == []


# ---------------------------------------------------------------- functions


def top_level_names(source: Path) -> set[str]:
    """Functions and variables a module defines at top level (what Lambda can call)."""
    names: set[str] = set()
    for node in ast.parse(source.read_text("utf-8"), filename=str(source)).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def function_folders(root: Path) -> list[Path]:
    return sorted(
        path
        for path in (root / "functions").iterdir()
        if path.is_dir() and not path.name.startswith((".", "__"))
    )


def function_code_problems(template: Mapping[str, Any], root: Path) -> list[str]:
    """Functions whose code is missing, and function folders no resource deploys."""
    defaults = template.get("Globals", {}).get("Function", {})
    problems: list[str] = []
    deployed: set[Path] = set()
    for logical_id, resource in sorted(resources_of_type(template, FUNCTION).items()):
        properties = {**defaults, **resource.get("Properties", {})}
        code_uri, handler = properties.get("CodeUri"), properties.get("Handler")
        if not isinstance(code_uri, str):
            problems.append(f"{logical_id}: CodeUri {code_uri!r} is not a local folder")
            continue
        folder = (root / code_uri).resolve()
        deployed.add(folder)
        if not folder.is_dir():
            problems.append(f"{logical_id}: CodeUri {code_uri} does not exist")
            continue
        if not isinstance(handler, str) or "." not in handler:
            problems.append(f"{logical_id}: Handler {handler!r} is not module.function")
            continue
        module, _, function = handler.rpartition(".")
        source = folder / f"{module.replace('.', '/')}.py"
        if not source.is_file():
            problems.append(f"{logical_id}: {code_uri}/{module}.py does not exist")
        elif function not in top_level_names(source):
            problems.append(f"{logical_id}: {code_uri}/{module}.py defines no {function}")
    for folder in function_folders(root):
        if folder.resolve() not in deployed:
            problems.append(f"functions/{folder.name} is not the CodeUri of any {FUNCTION}")
    return problems


def test_every_function_has_its_folder_and_every_folder_its_function(
    template: dict[str, Any],
) -> None:
    assert resources_of_type(template, FUNCTION), "template.yaml declares no functions"
    assert function_code_problems(template, ROOT) == []


def test_function_resources_are_named_after_their_folders(template: dict[str, Any]) -> None:
    # DESIGN.md: functions/send_email is SendEmailFunction, so either name finds the other.
    defaults = template.get("Globals", {}).get("Function", {})
    misnamed = {}
    for logical_id, resource in resources_of_type(template, FUNCTION).items():
        code_uri = resource.get("Properties", {}).get("CodeUri", defaults.get("CodeUri"))
        folder = Path(str(code_uri)).name
        expected = "".join(part.capitalize() for part in folder.split("_")) + "Function"
        if logical_id != expected:
            misnamed[logical_id] = expected
    assert misnamed == {}


# ---------------------------------------------------------------- alarms

# Powertools publishes add_metric(name="X") as metric X in the namespace the template sets
# (POWERTOOLS_METRICS_NAMESPACE); an alarm on a name nothing emits never fires, and says nothing.
EMITTED_METRIC = re.compile(r"add_metric\(\s*name=\"([A-Za-z0-9]+)\"")


def emitted_metric_names(root: Path) -> set[str]:
    sources = [*(root / "functions").rglob("*.py"), *(root / "layers").rglob("*.py")]
    return {name for path in sources for name in EMITTED_METRIC.findall(path.read_text("utf-8"))}


def alarm_metric_problems(template: Mapping[str, Any], emitted: set[str]) -> list[str]:
    namespace = template["Globals"]["Function"]["Environment"]["Variables"][
        "POWERTOOLS_METRICS_NAMESPACE"
    ]
    problems = []
    for logical_id, alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").items():
        properties = alarm["Properties"]
        if properties.get("Namespace") != namespace:
            continue
        if properties["MetricName"] not in emitted:
            problems.append(f"{logical_id}: nothing emits {namespace}/{properties['MetricName']}")
    return problems


def test_every_alarm_on_our_own_metrics_names_one_the_code_emits(
    template: dict[str, Any],
) -> None:
    emitted = emitted_metric_names(ROOT)
    assert {"ImportChunkParked", "MailUnknown"} <= emitted
    assert alarm_metric_problems(template, emitted) == []


def test_the_alarm_checker_reports_a_metric_nothing_emits(template: dict[str, Any]) -> None:
    emitted = emitted_metric_names(ROOT) - {"ImportChunkParked"}
    assert alarm_metric_problems(template, emitted) == [
        "ImportChunkParkedAlarm: nothing emits Tsunagu/ImportChunkParked"
    ]


# ---------------------------------------------------------------- public API document


def openapi_routes(document: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document.get("paths", {}).items()
        for method in item
        if method in HTTP_METHODS
    }


ADMIN_PROXY = ("ANY", "/admin/{proxy+}")
"""One route in the template for the admin API, whose function routes inside (its table is
tsunagu.api.admin.ROUTES): the document lists those routes instead."""


def http_api_routes(template: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The routes API Gateway serves, the admin API's one route spelt out as its table."""
    routes = set()
    for resource in resources_of_type(template, FUNCTION).values():
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            if event.get("Type") == "HttpApi":
                # An HttpApi event without Method/Path is the API's catch-all $default route.
                properties = event.get("Properties") or {}
                routes.add(
                    (
                        str(properties.get("Method", "ANY")).upper(),
                        properties.get("Path", "$default"),
                    )
                )
    if ADMIN_PROXY in routes:
        routes.remove(ADMIN_PROXY)
        routes |= {(route.method, route.path) for route in ADMIN_ROUTES}
    return routes


def test_the_admin_routes_in_the_document_are_generated_from_the_code() -> None:
    # Given the document as it is, and as `make docs` would write it from the routes' table
    written = OPENAPI.read_text("utf-8")

    # Then they are the same: each route's roles, body and parameters are the code's
    assert rendered(written) == written, "docs/openapi.yaml is stale: run `make docs`"


def test_every_admin_route_says_its_roles_and_needs_a_token(
    template: dict[str, Any], openapi: dict[str, Any]
) -> None:
    function = resources_of_type(template, FUNCTION)["AdminApiFunction"]
    events = function["Properties"]["Events"]
    assert set(events) == {"Admin", "ConsolePreflight"}
    assert events["Admin"]["Properties"]["Auth"] == {"Authorizer": "AdminSignIn"}
    # Only a browser's CORS preflight (it carries no token) is answered without the authorizer
    preflight = events["ConsolePreflight"]["Properties"]
    assert preflight["Method"] == "OPTIONS" and "Auth" not in preflight
    for route in ADMIN_ROUTES:
        documented = openapi["paths"][route.path][route.method.lower()]
        assert documented["security"] == [{"AdminSignIn": []}]
        assert documented["x-tsunagu-roles"], route.path


def test_openapi_document_is_valid_openapi_3(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.0.")
    validate_openapi_document(openapi)  # raises with the first problem it finds


def test_openapi_routes_are_the_template_http_api_routes(
    template: dict[str, Any], openapi: dict[str, Any]
) -> None:
    # Given the routes API Gateway will serve and the routes the document describes
    served, documented = http_api_routes(template), openapi_routes(openapi)

    # Then they are the same: nothing undocumented is public, nothing documented is missing
    assert served, "template.yaml declares no HttpApi routes"
    assert {"undocumented": served - documented, "not served": documented - served} == {
        "undocumented": set(),
        "not served": set(),
    }


def example_problems(document: Mapping[str, Any]) -> list[str]:
    """Examples in media types that do not match their schema (validators ignore examples)."""
    problems = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, Mapping):
            if "schema" in node and ("example" in node or "examples" in node):
                values = (
                    {"example": node["example"]}
                    if "example" in node
                    else {name: e["value"] for name, e in node["examples"].items() if "value" in e}
                )
                # "#/components/..." references resolve against this wrapper's root.
                schema = {**node["schema"], "components": document.get("components", {})}
                for name, value in values.items():
                    for error in OAS30Validator(schema).iter_errors(value):
                        problems.append(f"{where} {name}: {error.message}")
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}/{index}")

    walk(document, "#")
    return problems


def test_openapi_examples_match_their_schemas(openapi: dict[str, Any]) -> None:
    assert example_problems(openapi) == []
    # The checker does look: a wrong example in the same document is reported.
    broken = {
        **openapi,
        "x-broken": {
            "schema": {"$ref": "#/components/schemas/SubmissionAccepted"},
            "example": {"lead": "lead_01M8271H6V9DD7T68JHXTN8R39"},
        },
    }
    assert len(example_problems(broken)) == 2  # lead_id missing, "lead" not allowed


def test_openapi_documents_every_code_a_field_problem_can_have(openapi: dict[str, Any]) -> None:
    # A client validating answers against the document (and the admin API's proof, which does)
    # meets every code the import path, a form's save or a journey's settings give a problem,
    # and no code never given
    refused, pydantic = openapi["components"]["schemas"]["FieldError"]["properties"]["code"][
        "anyOf"
    ]
    coded = (*REFUSAL_CODES, *FORM_REFUSAL_CODES, *JOURNEY_PROBLEM_CODES)
    assert refused["enum"] == list(coded)
    # And pydantic's problems, coded value.<its type> (client_values.pydantic_problem)
    pattern = re.compile(pydantic["pattern"])
    assert all(pattern.match(f"value.{kind}") for kind in get_args(ErrorType))
    assert not any(pattern.match(code) for code in coded)


def test_openapi_documents_every_error_status_of_a_submission(openapi: dict[str, Any]) -> None:
    # Given the statuses tsunagu.api.responses maps domain errors to (but Unauthenticated: only
    # signed endpoints raise it, and a form is posted by anyone; and UpstreamRefused: only the
    # admin API's template test send calls SES while answering)
    statuses = {
        str(status)
        for error, status in STATUS_BY_ERROR.items()
        if not issubclass(error, (Unauthenticated, UpstreamRefused))
    }

    # Then the POST operation documents each of them
    documented = set(openapi["paths"]["/forms/{form_id}/submissions"]["post"]["responses"])
    assert statuses - documented == set()


def test_openapi_documents_every_error_status_of_the_crm_webhook(openapi: dict[str, Any]) -> None:
    # no origin check, and no submission limits (those are for forms), and no SES call
    statuses = {str(status) for status in STATUS_BY_ERROR.values()} - {
        "403", "429", str(STATUS_BY_ERROR[UpstreamRefused])
    }  # fmt: skip
    documented = set(openapi["paths"]["/crm/leads"]["post"]["responses"])
    assert statuses - documented == set()


# The layer's dependencies: tests/static/test_layer_pins.py.


def test_the_console_reads_a_journeys_versions_by_the_names_publish_journey_answers() -> None:
    # publish_journey's versions answer: {"version", "created_at", "note"} per version
    app = ast.parse((ROOT / "functions" / "publish_journey" / "app.py").read_text("utf-8"))
    answered = next(
        {key.value for key in node.elt.keys if isinstance(key, ast.Constant)}
        for node in ast.walk(app)
        if isinstance(node, ast.ListComp) and isinstance(node.elt, ast.Dict)
    )
    # The canvas's version list: the fields its Versions type gives each version
    canvas = (ROOT / "console" / "src" / "screens" / "JourneyCanvas.tsx").read_text("utf-8")
    typed = re.search(r"versions: \{ ([^}]*) \}\[\];", canvas)
    assert typed is not None
    read = {field.split(":")[0].rstrip("?").strip() for field in typed.group(1).split(";")}
    assert read == answered, "the console would show no dates (or notes) for the versions"
