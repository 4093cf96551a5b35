"""Cold-start cost of each HTTP function as deployed, as a ratio to the floor every Python function
on Lambda pays.

What is measured is the artifact ``sam build`` makes, built for this machine by the same recipes
(template.yaml's Makefiles, from the local wheelhouse: tests/support/artifact.py), not this
virtualenv, where pip compiled every dependency at install time and far more is installed. Each
sample is one fresh interpreter that sees nothing but the built function's folder and the built
layer (``python -I -S -B``, see _cold_start_child.py), timed with time.perf_counter inside it.

Floor: ``import boto3; boto3.client("dynamodb")`` from the built layer. Handler: import ``app``
from the built function's folder as Lambda does, then build what the first invocation builds
before any network I/O (settings, the store the handler asks for, clock, bound tables; see
FUNCTIONS in _cold_start_child.py). What the handlers build on first use instead of at import
(the Tracer, validators, modules only some requests need) is timed apart, for information: the
first request on a new container still waits for it.

Each kind runs with the artifact's bytecode and without it. Without: the same tree with every
__pycache__ left out, which is what ``sam build`` shipped before the Makefiles. (Not
PYTHONPYCACHEPREFIX: -I ignores it, and it would hide the standard library's bytecode too, which
Lambda's runtime does have.) Each round runs every kind once, in an order that rotates, so machine
noise hits all alike, and the floor's samples serve every function's ratio.

This is a report: the goal (with bytecode, ratio of medians <= 1.15) is printed as met or not
met, never asserted. One section per function.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from tests.conftest import REGION, TEMPLATE
from tests.support.artifact import BuiltArtifact, built_for_this_run
from tests.support.bench_report import QUICK, BenchReport
from tsunagu.settings import Settings

CHILD = Path(__file__).with_name("_cold_start_child.py")
DEFERRED_MARKER = "DEFERRED WORK FOLLOWS"  # as _cold_start_child.py prints it on stderr
ROUNDS = 3 if QUICK else 21  # with bytecode: the goal's figures; odd, so the median is a sample
SOURCE_ROUNDS = 1 if QUICK else 11  # without bytecode: each process takes about three times longer
QUICK_NOTE = "; a quick run: make bench takes 21 and 11" if QUICK else ""
WARM_UP_ROUNDS = 1  # with bytecode, discarded: the first processes pay for a cold page cache
GOAL = 1.15
FLOOR = "floor"
# The interpreter sees only what BENCH_SYS_PATH names: no PYTHON* variables, user site, script
# folder (-I) or site-packages (-S); and writes no bytecode (-B), as none can be written on Lambda.
ISOLATED = ("-I", "-S", "-B")


@dataclass(frozen=True)
class Function:
    """A handler folder to measure, and how its report names what its first request builds."""

    folder: str
    logical_id: str
    first_client: str
    next_client: str
    deferred: str
    """What its first request builds on first use that importing the handler does not."""

    @property
    def title(self) -> str:
        return f"{self.folder} cold start"


FUNCTIONS = (
    Function(
        "capture_form",
        "CaptureFormFunction",
        "the first DynamoDB client",
        "transactions' connection (shares the client)",
        "the Tracer, the stored form's record, the submission's check with the e-mail validator,"
        " the search modules",
    ),
    Function(
        "track_event",
        "TrackEventFunction",
        "the BatchGetItem connection",
        "Events table's connection (shares the client)",
        "the Tracer, the first event's check",
    ),
)


@pytest.fixture(scope="module")
def artifact(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> BuiltArtifact:
    return built_for_this_run(tmp_path_factory, pytestconfig)


def lambda_environment(home: Path, function: Function, artifact: BuiltArtifact) -> dict[str, str]:
    """What the function's process sees in AWS, with fake credentials and no config files, and
    the artifact's folders for the child to put on sys.path."""
    settings = Settings(
        stage="bench",
        region=REGION,
        leads_table="tsunagu-bench-LeadsTable",
        lead_identities_table="tsunagu-bench-LeadIdentitiesTable",
        events_table="tsunagu-bench-EventsTable",
        consent_table="tsunagu-bench-ConsentTable",
        forms_table="tsunagu-bench-FormsTable",
        idempotency_table="tsunagu-bench-IdempotencyTable",
        sites_table="tsunagu-bench-SitesTable",
        templates_table="tsunagu-bench-TemplatesTable",
        journey_waits_table="tsunagu-bench-JourneyWaitsTable",
        journeys_table="tsunagu-bench-JourneysTable",
        qualification_table="tsunagu-bench-QualificationTable",
        lead_terms_table="tsunagu-bench-LeadTermsTable",
        tracking_secret_arn=(
            f"arn:aws:secretsmanager:{REGION}:123456789012:secret:tsunagu-bench-TrackingSecret"
        ),
    )
    task_root = artifact.function_dir(function.logical_id)
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": str(home),
        # Nothing on this machine may leak in: no profile, no config file, no instance metadata.
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": f"tsunagu-bench-{function.logical_id}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "LAMBDA_TASK_ROOT": str(task_root),
        "_HANDLER": "app.handler",
        "POWERTOOLS_SERVICE_NAME": "tsunagu",
        "POWERTOOLS_METRICS_NAMESPACE": "Tsunagu",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        # /var/task before /opt/python, as Lambda orders them.
        "BENCH_SYS_PATH": os.pathsep.join([str(task_root), str(artifact.layer_site)]),
    }
    environment.update(settings.as_environ())  # AWS_REGION and every TSUNAGU_* variable
    environment.update(template_constants())  # e.g. PYDANTIC_DISABLE_PLUGINS, as deployed
    return environment


def template_constants() -> dict[str, str]:
    """The variables template.yaml gives every function as plain values (not references)."""
    template = yaml_parse(TEMPLATE.read_text(encoding="utf-8"))
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    return {name: value for name, value in variables.items() if isinstance(value, str)}


@dataclass(frozen=True)
class Kind:
    """One kind of child process: the floor or a handler, from one artifact tree."""

    name: str
    arguments: tuple[str, ...]
    environment: dict[str, str]
    rounds: int
    """Measured rounds, after the warm-up rounds."""
    warm_up: bool = True
    """Whether it runs in the warm-up rounds too."""

    def runs_in(self, round_number: int) -> bool:
        if round_number < WARM_UP_ROUNDS:
            return self.warm_up
        return round_number < WARM_UP_ROUNDS + self.rounds


def run_child(kind: Kind, cwd: Path, *options: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, *ISOLATED, *options, str(CHILD), *kind.arguments],
        env=kind.environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, f"{kind.name} child failed:\n{completed.stderr}"
    return completed


def measure(kind: Kind, cwd: Path, *options: str) -> dict[str, Any]:
    completed = run_child(kind, cwd, *options)
    results = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    assert results, f"{kind.name} child printed no result:\n{completed.stdout}\n{completed.stderr}"
    result: dict[str, Any] = json.loads(results[-1].removeprefix("RESULT "))
    return result


@dataclass
class Samples:
    """Each kind's results, by kind name."""

    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def ms(self, kind: str, key: str = "total_ms") -> list[float]:
        return [result[key] for result in self.results[kind]]

    def median(self, kind: str, key: str = "total_ms") -> float:
        return statistics.median(self.ms(kind, key))

    def ratio(self, kind: str, to: str, key: str = "total_ms") -> float:
        """Ratio of medians: kind's key to the other kind's total."""
        return self.median(kind, key) / self.median(to)


def interleaved(kinds: list[Kind], cwd: Path) -> Samples:
    """Rounds of one process of each kind that runs in that round, in an order that rotates each
    round, so no kind always follows the same other."""
    samples = Samples({kind.name: [] for kind in kinds})
    for round_number in range(WARM_UP_ROUNDS + max(kind.rounds for kind in kinds)):
        due = [kind for kind in kinds if kind.runs_in(round_number)]
        shift = round_number % len(due)
        for kind in due[shift:] + due[:shift]:
            result = measure(kind, cwd)
            if round_number >= WARM_UP_ROUNDS:
                samples.results[kind.name].append(result)
    # Correctness, not speed: every handler child loaded a callable handler and built a client.
    for kind in kinds:
        results = samples.results[kind.name]
        assert len(results) == kind.rounds
        if kind.arguments[0] != FLOOR:
            assert all(r["has_handler"] for r in results), results[0]
            assert all(r["client_service"] == "dynamodb" for r in results)
    return samples


IMPORT_TIME = re.compile(r"^import time:\s+(\d+) \|\s+\d+ \|\s+(\S+)$")


def import_self_times(kind: Kind, cwd: Path) -> dict[str, float]:
    """Milliseconds of import self-time per third-party package, from one -X importtime run,
    up to what the child builds for the first request on first use."""
    completed = run_child(kind, cwd, "-X", "importtime")
    totals: dict[str, float] = {}
    for line in completed.stderr.splitlines():
        if line == DEFERRED_MARKER:
            break
        match = IMPORT_TIME.match(line)
        if match is None:
            continue
        package = match.group(2).split(".", 1)[0]
        if package in sys.stdlib_module_names or package.startswith("_") or package == "app":
            continue
        totals[package] = totals.get(package, 0.0) + int(match.group(1)) / 1000
    return dict(sorted(totals.items(), key=lambda item: item[1], reverse=True))


def from_source(name: str) -> str:
    return f"{name}, from source"


def kinds_of(artifact: BuiltArtifact, source_only: BuiltArtifact, home: Path) -> list[Kind]:
    """The floor and each function, with the artifact's bytecode and from source."""
    kinds = []
    # Without bytecode, no warm-up: the tree is hard-linked to the artifact, whose sources
    # compileall has just read, and those processes are the slow ones.
    variants = ((artifact, ROUNDS, True, str), (source_only, SOURCE_ROUNDS, False, from_source))
    for tree, rounds, warm_up, named in variants:
        environments = {f.folder: lambda_environment(home, f, tree) for f in FUNCTIONS}
        # The floor reads none of a function's environment: the first function's will do.
        floor_environment = environments[FUNCTIONS[0].folder]
        kinds.append(Kind(named(FLOOR), (FLOOR,), floor_environment, rounds, warm_up))
        kinds += [
            Kind(named(folder), ("handler", folder), environment, rounds, warm_up)
            for folder, environment in environments.items()
        ]
    return kinds


def test_cold_start(bench_report: BenchReport, artifact: BuiltArtifact, tmp_path: Path) -> None:
    source_only = artifact.without_bytecode(tmp_path / "without-bytecode")
    kinds = kinds_of(artifact, source_only, tmp_path)
    samples = interleaved(kinds, tmp_path)
    by_name = {kind.name: kind for kind in kinds}
    for function in FUNCTIONS:
        handler = by_name[function.folder]
        census = replace(handler, environment={**handler.environment, "BENCH_CENSUS": "1"})
        lines = cold_start_report(
            function,
            samples,
            census=measure(census, tmp_path),
            self_times=import_self_times(handler, tmp_path),
        )
        bench_report.add(function.title, *lines)


def summary(label: str, samples: list[float]) -> str:
    median = statistics.median(samples)
    return f"  {label:<54} {median:8.1f} {min(samples):8.1f} {max(samples):8.1f}"


def wrapped(text: str, indent: int = 4) -> list[str]:
    return textwrap.wrap(
        text, width=96, initial_indent=" " * indent, subsequent_indent=" " * indent
    )


def _ratio_with_deferred(samples: Samples, folder: str) -> float:
    """Import + init + what the first request builds on first use, against the floor: the part
    of a cold request's wait that moving work out of import does not remove."""
    totals = [result["total_ms"] + result["deferred_ms"] for result in samples.results[folder]]
    return statistics.median(totals) / samples.median(FLOOR)


def verdict(ratio: float) -> str:
    return f"goal <= {GOAL:.2f}: {'met' if ratio <= GOAL else 'NOT MET'}"


def cold_start_report(
    function: Function,
    samples: Samples,
    census: dict[str, Any],
    self_times: dict[str, float],
) -> list[str]:
    folder, source = function.folder, from_source(function.folder)
    floor_source = from_source(FLOOR)
    handlers = samples.results[folder]
    floors = samples.results[FLOOR]
    profiled = sum(self_times.values())
    beyond_floor = sorted(
        set(handlers[0]["modules"])
        - set(floors[0]["modules"])
        - set(sys.stdlib_module_names)
        - {"app"}
    )
    beyond_floor = [name for name in beyond_floor if not name.startswith("_")]
    first_use = sorted(
        set(handlers[0]["first_request_modules"])
        - set(handlers[0]["modules"])
        - set(sys.stdlib_module_names)
    )
    first_use = [name for name in first_use if not name.startswith("_")] or ["none"]

    next_first_ms = [h["next_client_ms"][0] for h in handlers]
    next_reuse_ms = [ms for h in handlers for ms in h["next_client_ms"][1:]]
    paired = [h / f for h, f in zip(samples.ms(folder), samples.ms(FLOOR), strict=True)]
    ratio = samples.ratio(folder, FLOOR)
    saved_ms = samples.median(source) - samples.median(folder)
    created = census["clients_at_init"]
    others = [f.folder for f in FUNCTIONS if f.folder != folder]
    return [
        f"{ROUNDS} fresh processes of each kind with bytecode, {SOURCE_ROUNDS} without, "
        f"interleaved ({WARM_UP_ROUNDS} warm-up round with bytecode discarded{QUICK_NOTE});",
        "time.perf_counter inside the child, interpreter start-up excluded.",
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs "
        "(the template deploys arm64).",
        "Packages: the built artifact only (template.yaml's Makefiles, run for this machine from",
        ".venv/wheelhouse: tests/support/artifact.py), with python -I -S -B.",
        f"The floor's samples are the same in every function's section (rounds also ran "
        f"{', '.join(others)}).",
        "",
        f"  {'(milliseconds)':<54} {'median':>8} {'min':>8} {'max':>8}",
        "  with the artifact's bytecode (as deployed):",
        summary('floor: import boto3; boto3.client("dynamodb")', samples.ms(FLOOR)),
        summary("handler: import app + init", samples.ms(folder)),
        summary("  of which import app", samples.ms(folder, "import_ms")),
        summary(
            "  of which init (settings, repository, clock, tables)",
            samples.ms(folder, "init_ms"),
        ),
        "",
        f"  handler / floor, ratio of medians: {ratio:.2f}   ({verdict(ratio)})",
        f"  (median of the per-round ratios: {statistics.median(paired):.2f})",
        "",
        "  without bytecode (every __pycache__ left out: what sam build shipped before):",
        summary("floor, from source", samples.ms(floor_source)),
        summary("handler: import app + init, from source", samples.ms(source)),
        f"  handler from source / floor with bytecode: {samples.ratio(source, FLOOR):.2f}; "
        f"/ handler with bytecode: {samples.ratio(source, folder):.2f}",
        f"  (the bytecode saves {saved_ms:.0f} ms of this cold start); floor from source / "
        f"floor with bytecode: {samples.ratio(floor_source, FLOOR):.2f}",
        "",
        "  for information, not the goal's measure (with bytecode):",
        summary("import + init + first client", samples.ms(folder, "with_client_ms")),
        summary(f"  of which {function.first_client}", samples.ms(folder, "client_ms")),
        "  import + init + first client / floor, ratio of medians: "
        f"{samples.ratio(folder, FLOOR, 'with_client_ms'):.2f}",
        summary(f"{function.next_client}, first use (first request)", next_first_ms),
        summary(f"{function.next_client}, reused (warm requests)", next_reuse_ms),
        "  built by the first request, on first use, rather than by import:",
        *wrapped(
            f"{function.deferred} (the Tracer with tracing disabled, as here; with tracing on "
            "it also patches botocore, pynamodb and the HTTP libraries)"
        ),
        summary("first use of all of these (first request)", samples.ms(folder, "deferred_ms")),
        f"  third-party packages that first use loads: {', '.join(first_use)}",
        "  import + init + that first use / floor, ratio of medians: "
        f"{_ratio_with_deferred(samples, folder):.2f}",
        "",
        f"  botocore clients created during handler import + init (one more run): {len(created)}",
        *(f"    {service:<10} {ms:6.1f} ms to create" for service, ms in created),
        "  third-party packages the handler loads beyond the floor:",
        *wrapped(", ".join(beyond_floor)),
        "",
        "  where the handler's import time goes, by package (one more run with -X importtime,",
        "  which inflates every figure; self-time summed per package, standard library left",
        "  out; * = not loaded by the floor):",
        *(
            f"    {package + (' *' if package in beyond_floor else ''):<28} "
            f"{ms:7.1f} ms  {ms / profiled:4.0%}"
            for package, ms in list(self_times.items())[:10]
        ),
    ]
