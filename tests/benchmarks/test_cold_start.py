"""Cold-start cost of each HTTP function, as a ratio to the floor every Python function on Lambda
pays.

Floor: ``import boto3; boto3.client("dynamodb")``. Handler: import functions/<folder>/app.py as
Lambda imports ``app``, then build what the first invocation builds before any network I/O
(settings, the store the handler asks for, clock, bound tables; see FUNCTIONS in
_cold_start_child.py). Each sample is one fresh interpreter, timed with time.perf_counter inside
it; each round runs the floor and every handler once, in an order that rotates, so machine noise
hits all alike, and the floor's samples serve every function's ratio.

The goal's figure is measured with this virtualenv, as the issue asks. Because the virtualenv holds
far more than the deployed layer (moto, SAM CLI and their dependencies), a second, informational
run hides every package the layer would not have, to show what the deployed function would see.

This is a report: the goal (ratio of medians <= 1.15) is printed as met or not met, never asserted.
One section per function.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REGION, ROOT
from tests.support.bench_report import QUICK, BenchReport
from tsunagu.settings import Settings

CHILD = Path(__file__).with_name("_cold_start_child.py")
LAYER_REQUIREMENTS = ROOT / "layers" / "tsunagu" / "requirements.txt"
ROUNDS = 7 if QUICK else 21  # at least 11 of each (make bench); odd: the median is one sample
LAYER_ROUNDS = 3 if QUICK else 11  # the informational layer-only comparison
QUICK_NOTE = "; a quick run: make bench takes 21" if QUICK else ""
WARM_UP_ROUNDS = 1  # discarded: the first processes pay for a cold page cache
GOAL = 1.15
FLOOR = "floor"


def app_path(folder: str) -> Path:
    return ROOT / "functions" / folder / "app.py"


@dataclass(frozen=True)
class Function:
    """A handler folder to measure, and how its report names what its first request builds."""

    folder: str
    logical_id: str
    first_client: str
    next_client: str

    @property
    def title(self) -> str:
        return f"{self.folder} cold start"


FUNCTIONS = (
    Function(
        "capture_form",
        "CaptureFormFunction",
        "the first DynamoDB client",
        "transactions' connection (shares the client)",
    ),
    Function(
        "track_event",
        "TrackEventFunction",
        "the BatchGetItem connection",
        "Events table's connection (shares the client)",
    ),
)


def lambda_environment(home: Path, function: Function) -> dict[str, str]:
    """What the function's process sees in AWS, with fake credentials and no config files."""
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
        tracking_secret_arn=(
            f"arn:aws:secretsmanager:{REGION}:123456789012:secret:tsunagu-bench-TrackingSecret"
        ),
    )
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
        "LAMBDA_TASK_ROOT": str(app_path(function.folder).parent),
        "_HANDLER": "app.handler",
        "POWERTOOLS_SERVICE_NAME": "tsunagu",
        "POWERTOOLS_METRICS_NAMESPACE": "Tsunagu",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    environment.update(settings.as_environ())  # AWS_REGION and every TSUNAGU_* variable
    return environment


def run_child(
    kind: str, environment: dict[str, str], cwd: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    """One fresh process: kind is FLOOR or a function's folder."""
    arguments = [FLOOR] if kind == FLOOR else ["handler", str(app_path(kind))]
    # -P: the child's own folder is not put on sys.path (Lambda's /var/task is, but it holds
    # only app.py, which is loaded by path here).
    completed = subprocess.run(
        [sys.executable, *options, "-P", str(CHILD), *arguments],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, f"{kind} child failed:\n{completed.stderr}"
    return completed


def measure(kind: str, environment: dict[str, str], cwd: Path, *options: str) -> dict[str, Any]:
    completed = run_child(kind, environment, cwd, *options)
    results = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    assert results, f"{kind} child printed no result:\n{completed.stdout}\n{completed.stderr}"
    result: dict[str, Any] = json.loads(results[-1].removeprefix("RESULT "))
    return result


@dataclass
class Samples:
    floors: list[dict[str, Any]]
    handlers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """By folder."""

    def floor_ms(self) -> list[float]:
        return [f["total_ms"] for f in self.floors]

    def handler(self, folder: str, key: str = "total_ms") -> list[float]:
        return [h[key] for h in self.handlers[folder]]

    def ratio(self, folder: str, key: str = "total_ms") -> float:
        return statistics.median(self.handler(folder, key)) / statistics.median(self.floor_ms())


def interleaved(rounds: int, environments: dict[str, dict[str, str]], cwd: Path) -> Samples:
    """Rounds of one floor process and one process per function (keys of environments), in an
    order that rotates each round, so no kind always follows the same other."""
    kinds = [FLOOR, *environments]
    samples = Samples([], {folder: [] for folder in environments})
    for round_number in range(WARM_UP_ROUNDS + rounds):
        shift = round_number % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            # The floor runs in the first function's environment (it reads none of it).
            environment = environments.get(kind) or next(iter(environments.values()))
            result = measure(kind, environment, cwd)
            if round_number >= WARM_UP_ROUNDS:
                (samples.floors if kind == FLOOR else samples.handlers[kind]).append(result)
    # Correctness, not speed: every handler child loaded a callable handler and built a client.
    assert len(samples.floors) == rounds
    for handlers in samples.handlers.values():
        assert len(handlers) == rounds
        assert all(h.get("has_handler") for h in handlers), handlers[0]
        assert all(h["client_service"] == "dynamodb" for h in handlers)
    return samples


IMPORT_TIME = re.compile(r"^import time:\s+(\d+) \|\s+\d+ \|\s+(\S+)$")


def import_self_times(folder: str, environment: dict[str, str], cwd: Path) -> dict[str, float]:
    """Milliseconds of import self-time per third-party package, from one -X importtime run."""
    completed = run_child(folder, environment, cwd, "-X", "importtime")
    totals: dict[str, float] = {}
    for line in completed.stderr.splitlines():
        match = IMPORT_TIME.match(line)
        if match is None:
            continue
        package = match.group(2).split(".", 1)[0]
        if package in sys.stdlib_module_names or package.startswith("_"):
            continue
        totals[package] = totals.get(package, 0.0) + int(match.group(1)) / 1000
    return dict(sorted(totals.items(), key=lambda item: item[1], reverse=True))


def installed_with(requirements: list[str]) -> set[str]:
    """The distributions these requirements install (followed through this virtualenv's
    metadata, without extras), plus tsunagu itself: what the deployed layer holds."""
    pending = [Requirement(line) for line in requirements]
    found = {"tsunagu"}
    while pending:
        requirement = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        found.add(name)
        pending.extend(Requirement(r) for r in importlib.metadata.requires(name) or [])
    return found


def not_installed_with(distributions: set[str]) -> set[str]:
    """Top-level modules of this virtualenv that those distributions do not provide."""
    return {
        module
        for module, owners in importlib.metadata.packages_distributions().items()
        if module not in sys.stdlib_module_names
        and not any(canonicalize_name(owner) in distributions for owner in owners)
    } | {"tsunagu_local"}  # the local runtime: in this project's distribution, not in the layer


def layer_requirements() -> list[str]:
    lines = LAYER_REQUIREMENTS.read_text("utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def summary(label: str, samples: list[float]) -> str:
    median = statistics.median(samples)
    return f"  {label:<54} {median:8.1f} {min(samples):8.1f} {max(samples):8.1f}"


def wrapped(text: str, indent: int = 4) -> list[str]:
    return textwrap.wrap(
        text, width=96, initial_indent=" " * indent, subsequent_indent=" " * indent
    )


def verdict(ratio: float) -> str:
    return f"goal <= {GOAL:.2f}: {'met' if ratio <= GOAL else 'NOT MET'}"


def test_cold_start(bench_report: BenchReport, tmp_path: Path) -> None:
    environments = {f.folder: lambda_environment(tmp_path, f) for f in FUNCTIONS}
    venv = interleaved(ROUNDS, environments, tmp_path)

    # The same, with only what the deployed layer installs importable, for every function whose
    # handler imports at all that way.
    layer_only = not_installed_with(installed_with(layer_requirements()))
    blocked = {"BENCH_BLOCKED_MODULES": ",".join(sorted(layer_only))}
    layer_environments = {folder: {**env, **blocked} for folder, env in environments.items()}
    layer_checks = {
        folder: measure(folder, env, tmp_path) for folder, env in layer_environments.items()
    }
    importable = {
        folder: env
        for folder, env in layer_environments.items()
        if "import_error" not in layer_checks[folder]
    }
    layer = interleaved(LAYER_ROUNDS, importable, tmp_path) if importable else None

    for function in FUNCTIONS:
        environment = environments[function.folder]
        lines = cold_start_report(
            function,
            venv,
            census=measure(function.folder, {**environment, "BENCH_CENSUS": "1"}, tmp_path),
            self_times=import_self_times(function.folder, environment, tmp_path),
            layer_only=layer_only,
            layer_check=layer_checks[function.folder],
            layer=layer if function.folder in importable else None,
        )
        bench_report.add(function.title, *lines)


def cold_start_report(
    function: Function,
    venv: Samples,
    census: dict[str, Any],
    self_times: dict[str, float],
    layer_only: set[str],
    layer_check: dict[str, Any],
    layer: Samples | None,
) -> list[str]:
    folder = function.folder
    handlers = venv.handlers[folder]
    profiled = sum(self_times.values())
    beyond_floor = sorted(
        set(handlers[0]["modules"])
        - set(venv.floors[0]["modules"])
        - set(sys.stdlib_module_names)
        - {"app"}
    )
    beyond_floor = [name for name in beyond_floor if not name.startswith("_")]
    loaded = set(handlers[0]["modules"]) | set(venv.floors[0]["modules"])
    venv_only_loaded = sorted(name for name in layer_only & loaded if not name.startswith("_"))

    next_first_ms = [h["next_client_ms"][0] for h in handlers]
    next_reuse_ms = [ms for h in handlers for ms in h["next_client_ms"][1:]]
    paired = [h / f for h, f in zip(venv.handler(folder), venv.floor_ms(), strict=True)]
    ratio = venv.ratio(folder)
    created = census["clients_at_init"]
    others = [f.folder for f in FUNCTIONS if f.folder != folder]
    lines = [
        f"{ROUNDS} fresh processes of each kind, interleaved "
        f"({WARM_UP_ROUNDS} warm-up round discarded{QUICK_NOTE});",
        "time.perf_counter inside the child, interpreter start-up excluded.",
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs "
        "(the template deploys arm64). Packages: this virtualenv.",
        f"The floor's samples are the same in every function's section (rounds also ran "
        f"{', '.join(others)}).",
        "",
        f"  {'(milliseconds)':<54} {'median':>8} {'min':>8} {'max':>8}",
        summary('floor: import boto3; boto3.client("dynamodb")', venv.floor_ms()),
        summary("handler: import app + init", venv.handler(folder)),
        summary("  of which import app", venv.handler(folder, "import_ms")),
        summary(
            "  of which init (settings, repository, clock, tables)",
            venv.handler(folder, "init_ms"),
        ),
        "",
        f"  handler / floor, ratio of medians: {ratio:.2f}   ({verdict(ratio)})",
        f"  (median of the per-round ratios: {statistics.median(paired):.2f})",
        "",
        "  for information, not the goal's measure:",
        summary("import + init + first client", venv.handler(folder, "with_client_ms")),
        summary(f"  of which {function.first_client}", venv.handler(folder, "client_ms")),
        "  import + init + first client / floor, ratio of medians: "
        f"{venv.ratio(folder, 'with_client_ms'):.2f}",
        summary(f"{function.next_client}, first use (first request)", next_first_ms),
        summary(f"{function.next_client}, reused (warm requests)", next_reuse_ms),
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
        "",
        f"  with only what the layer installs importable ({LAYER_REQUIREMENTS.relative_to(ROOT)}",
        "  and what those packages require, no extras; informational):",
        "    packages this virtualenv gives the floor and handler beyond that (botocore and",
        "    pynamodb use them when present):",
        *wrapped(", ".join(venv_only_loaded), indent=6),
    ]
    if layer is None:
        lines += [
            "    the handler does NOT import: " + layer_check["import_error"],
            "    (the deployed function would fail at init; no layer-only timing)",
        ]
    else:
        layer_ratio = layer.ratio(folder)
        lines += [
            f"    {LAYER_ROUNDS} rounds each, interleaved:",
            summary("  floor", layer.floor_ms()),
            summary("  handler: import app + init", layer.handler(folder)),
            summary("  import + init + first client", layer.handler(folder, "with_client_ms")),
            f"      handler / floor, ratio of medians: {layer_ratio:.2f}   "
            f"({verdict(layer_ratio)}); with first client: "
            f"{layer.ratio(folder, 'with_client_ms'):.2f}",
        ]
    return lines
