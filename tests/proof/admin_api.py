"""``make proof``'s admin section: schemathesis against every admin operation of
``docs/openapi.yaml``, signed in.

The public section (``api.py``) leaves the admin routes out: without a token every request of
theirs is the gateway's 401. Here the run carries an admin's ID token, signed in on the local
runtime as the console signs in (Cognito USER_PASSWORD_AUTH), so its requests reach the
handlers; schemathesis's own ``ignored_auth`` check still sends some without it and expects the
401. The hooks (``schemathesis_hooks.py``) put real ids in the paths most of the time - an
imported lead's address, a shipped journey, template, form or site, a user who is not the one
signed in - so the changes are really made, and the rest keep the generated ids to exercise the
404s. Afterwards the tables are checked as the public section checks them (no half-written
lead, event or consent), and every change answered 2xx has its audit-log entry.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.journeys.harness import Runtime
from tests.proof import ProofResult
from tests.proof.api import (
    EXCLUDED_CHECKS,
    NEGATIVE_DATA_REFUSALS,
    OBSERVED_CHECKS,
    SCHEMATHESIS,
    RunReport,
    check_tables,
    cpu_seconds,
    import_leads,
    read_report,
    report_checks,
    report_tables,
    run_schemathesis_command,
    scan,
    schemathesis_command,
)
from tsunagu_local.people import ADMIN_EMAIL, SIGN_IN_FILE, add_user

TITLE = "admin api: schemathesis against every admin operation, signed in as an admin"
CLOCK_START = "2026-12-07T00:00:00Z"
SEED = 20261204
OTHER_USER = "proof.marketer@example.com"
"""A user the run may change (its role, enabled or not): never the admin it is signed in as."""
SHIPPED_JOURNEYS = ["welcome_nurture", "seminar_follow_up", "re_engagement"]


def max_examples(quick: bool) -> int:
    return 4 if quick else 150


def admin_token(runtime: Runtime) -> str:
    """The admin's ID token, signed in with ``tsunagu api sign-in`` as a user would."""
    password_file = runtime.workdir / ".tsunagu" / SIGN_IN_FILE
    signed = runtime.cli("api", "sign-in", ADMIN_EMAIL, "--password-file", str(password_file))
    if signed.returncode != 0:
        raise AssertionError(f"could not sign in: {signed.stderr}")
    return (runtime.workdir / ".tsunagu" / "api-token").read_text("utf-8").strip()


def add_other_user(runtime: Runtime) -> None:
    state = json.loads((runtime.workdir / ".tsunagu" / "runtime.json").read_text())
    pool = state["sign_in"]["user_pools"]["AdminUserPool"]
    add_user(runtime.client("cognito-idp"), pool, OTHER_USER, "Proof-marketer-2026", "marketer")


def write_fixtures(runtime: Runtime, quick: bool, workdir: Path) -> Path:
    leads = import_leads(runtime, 6 if quick else 40)
    fixtures: dict[str, Any] = {
        "lead_emails": [lead["email"] for lead in leads],
        "admin": {
            "journey_ids": SHIPPED_JOURNEYS,
            "template_ids": ["seminar-invitation", "welcome", "welcome-getting-started"],
            "form_ids": ["demo"],
            "site_ids": ["demo"],
            "user_emails": [OTHER_USER],
        },
        "calls_path": str(workdir / "calls.json"),
        # What the public section's hooks read; unused by the admin operations
        "tokens": {"open": [], "click": [], "unsubscribe": []},
        "source_addresses": 20,
    }
    path = workdir / "fixtures.json"
    path.write_text(json.dumps(fixtures, indent=1, ensure_ascii=False))
    return path


def write_config(workdir: Path) -> Path:
    """What the command line cannot say: that 413 (a body over the API's 512 KB) refuses
    schema-violating data too, as the public section counts it."""
    statuses = ", ".join(f'"{status}"' for status in [*NEGATIVE_DATA_REFUSALS, "5xx"])
    path = workdir / "schemathesis.toml"
    path.write_text(f"[checks.negative_data_rejection]\nexpected-statuses = [{statuses}]\n")
    return path


def command(runtime: Runtime, token: str, quick: bool, report_dir: Path) -> list[str]:
    return schemathesis_command(
        runtime,
        write_config(report_dir.parent),
        report_dir,
        workers=2,
        seed=SEED,
        chosen=[
            "--include-tag",
            "admin",
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            str(max_examples(quick)),
        ],
    )


def audited(runtime: Runtime, report: RunReport) -> dict[str, int]:
    """The audit log beside the answers: changes answered 2xx and the entries of changes done
    (fewer when a change changed nothing, which is not logged); answers 403 and the refused
    entries."""
    answered = {"changes answered 2xx": 0, "answered 403": 0}
    for (operation, status), count in report.answers.items():
        method = operation.split(" ", 1)[0]
        if method in ("POST", "PUT", "PATCH", "DELETE") and status.startswith("2"):
            answered["changes answered 2xx"] += count
        if status == "403":
            answered["answered 403"] += count
    table = runtime.settings.audit_table
    outcomes = [str(json.loads(item["data"]).get("outcome")) if isinstance(item["data"], str)
                else str(item["data"].get("outcome")) for item in scan(runtime, table)]  # fmt: skip
    return {
        **answered,
        "entries done": outcomes.count("done"),
        "entries refused": outcomes.count("refused"),
    }


def run(*, quick: bool, workdir: Path) -> ProofResult:
    result = ProofResult(TITLE)
    if not SCHEMATHESIS.exists():
        result.fail(f"{SCHEMATHESIS} is missing: run `make .venv-proof/.installed`")
        return result
    runtime = Runtime.launch("proof-admin", workdir / "runtime", clock_start=CLOCK_START)
    try:
        runtime.wait_ready()
        add_other_user(runtime)
        token = admin_token(runtime)
        fixtures = write_fixtures(runtime, quick, workdir)
        started, cpu_before = time.monotonic(), cpu_seconds(runtime)
        report_dir = workdir / "report"
        done = run_schemathesis_command(
            command(runtime, token, quick, report_dir), workdir, fixtures, 240 if quick else 2400
        )
        seconds, cpu = time.monotonic() - started, cpu_seconds(runtime) - cpu_before
        report = read_report(workdir)
        runtime.settle()
        invariants, figures = check_tables(runtime, report)
        logged = audited(runtime, report)
    finally:
        runtime.stop()
    operations = {operation for operation, _ in report.answers}
    result.line(
        f"schemathesis on the {len(operations)} admin operations answered, signed in as"
        f" {ADMIN_EMAIL}; up to {max_examples(quick)} fuzzing examples each, seed {SEED}"
    )
    result.line(
        f"requests sent: {report.requests} in {seconds:.0f} s; the runtime's CPU time"
        f" meanwhile: {cpu:.0f} s"
    )
    by_status: dict[str, int] = {}
    for (_, status), count in report.answers.items():
        by_status[status] = by_status.get(status, 0) + count
    result.line("answers by status: " + ", ".join(f"{s} {n}" for s, n in sorted(by_status.items())))
    # (Printed, not asserted: a change that changed nothing is not logged, and most 403s here
    # are CORS preflights from no page, which no use case sees.)
    result.line("audit log: " + ", ".join(f"{name} {count}" for name, count in logged.items()))
    if not quick and report.requests < 1000:
        result.fail(f"only {report.requests} requests (goal: at least 1,000)")
    report_checks(result, report, done.returncode, workdir)
    report_tables(result, invariants, figures)
    result.line(
        "checks left out: "
        + "; ".join(f"{name} ({why})" for name, why in {**EXCLUDED_CHECKS}.items())
        + "; observed, not asserted: "
        + ", ".join(OBSERVED_CHECKS)
    )
    return result
