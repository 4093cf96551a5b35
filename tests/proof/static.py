"""Outside scanners on the template, the code and the pinned dependencies.

- **checkov** on ``template.yaml`` (CloudFormation/SAM checks), offline (``--skip-download``);
- **bandit** on the code that ships or runs the product (``layers/``, ``functions/``, ``local/``);
- **pip-audit** on both lock files, in the full run only, because it needs a vulnerability
  database on the internet (PyPI's JSON API): when that cannot be reached, pip-audit reports every
  dependency as "not found" and still says "No known vulnerabilities found" with exit 0, so this
  section counts the dependencies it really audited and says plainly when it audited none.

Every checkov or bandit finding must be fixed or listed, with its reason, in
``tests/proof/accepted_findings.toml``; a new finding fails the section, and an entry that no
longer matches anything is reported so that it can be removed.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from collections import Counter
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from tests.conftest import ROOT
from tests.proof import ProofResult

PROOF_BIN = ROOT / ".venv-proof" / "bin"
ACCEPTED = Path(__file__).with_name("accepted_findings.toml")
BANDIT_TARGETS = ("layers/tsunagu/tsunagu", "functions", "local")
LOCK_FILES = ("requirements/dev.lock", "requirements/proof.lock")
AUDIT_TIMEOUT = 300


@dataclass(frozen=True)
class Finding:
    tool: str
    rule: str
    where: str
    """checkov: ``AWS::Type.LogicalId``; bandit: the file, relative to the repository."""
    text: str


@dataclass(frozen=True)
class Accepted:
    tool: str
    rule: str
    patterns: tuple[str, ...]
    reason: str

    def covers(self, finding: Finding) -> bool:
        return (
            finding.tool == self.tool
            and finding.rule == self.rule
            and any(fnmatch(finding.where, pattern) for pattern in self.patterns)
        )


def accepted_findings() -> list[Accepted]:
    listed = tomllib.loads(ACCEPTED.read_text(encoding="utf-8"))
    return [
        *(
            Accepted("checkov", e["check"], tuple(e["resources"]), e["reason"])
            for e in listed.get("checkov", [])
        ),
        *(
            Accepted("bandit", e["test"], tuple(e["files"]), e["reason"])
            for e in listed.get("bandit", [])
        ),
    ]


def tool(name: str) -> str:
    path = PROOF_BIN / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: `make proof` (or `make test`) creates .venv-proof")
    return str(path)


def checkov_findings() -> tuple[list[Finding], int]:
    completed = subprocess.run(
        [
            tool("checkov"),
            "--file",
            "template.yaml",
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",  # never ask Prisma Cloud for guidelines: nothing leaves the machine
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    report: Any = json.loads(completed.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = report["results"]["failed_checks"]
    findings = [
        Finding("checkov", check["check_id"], check["resource"], check["check_name"])
        for check in failed
    ]
    return findings, int(report["summary"]["passed"])


def bandit_findings() -> tuple[list[Finding], int]:
    completed = subprocess.run(
        [tool("bandit"), "--quiet", "--recursive", "--format", "json", *BANDIT_TARGETS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(completed.stdout)
    findings = [
        Finding(
            "bandit",
            issue["test_id"],
            issue["filename"],
            f"{issue['issue_severity']}: {issue['issue_text']} (line {issue['line_number']})",
        )
        for issue in report["results"]
    ]
    return findings, int(report["metrics"]["_totals"]["loc"])


def audit(lock_file: str) -> str:
    """One lock file through pip-audit: a line saying what it could check."""
    try:
        completed = subprocess.run(
            [
                tool("pip-audit"),
                "--requirement",
                lock_file,
                "--no-deps",
                "--disable-pip",
                "--progress-spinner",
                "off",
                "--format",
                "json",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=AUDIT_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return f"{lock_file}: pip-audit did not answer in {AUDIT_TIMEOUT} s (database unreachable)"
    try:
        dependencies = json.loads(completed.stdout)["dependencies"]
    except (ValueError, KeyError):
        return f"{lock_file}: pip-audit failed: {completed.stderr.strip()[-300:]}"
    audited = [d for d in dependencies if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    if not audited:
        return (
            f"{lock_file}: NOT AUDITED - the vulnerability database is not reachable from this "
            f"machine ({len(dependencies)} dependencies, every one 'not found')"
        )
    names = ", ".join(f"{d['name']} {d['version']}" for d in vulnerable) or "none"
    return f"{lock_file}: {len(audited)} of {len(dependencies)} audited; vulnerable: {names}"


def run(*, quick: bool, workdir: Path) -> ProofResult:
    result = ProofResult("checkov, bandit and pip-audit")
    accepted = accepted_findings()
    checkov, passed_checks = checkov_findings()
    bandit, lines_of_code = bandit_findings()
    used: set[Accepted] = set()
    for name, findings, scope in (
        ("checkov", checkov, f"template.yaml, {passed_checks} checks passed"),
        ("bandit", bandit, f"{', '.join(BANDIT_TARGETS)}: {lines_of_code:,} lines"),
    ):
        unexplained = []
        reasons: Counter[str] = Counter()
        for finding in findings:
            cover = next((a for a in accepted if a.covers(finding)), None)
            if cover is None:
                unexplained.append(finding)
            else:
                used.add(cover)
                reasons[cover.rule] += 1
        result.line(
            f"{name} ({scope}): {len(findings)} findings, {len(findings) - len(unexplained)} "
            f"listed with a reason, {len(unexplained)} new"
        )
        by_rule = ", ".join(f"{rule} {count}" for rule, count in sorted(reasons.items()))
        result.line(f"  listed, by rule: {by_rule}")
        for finding in unexplained:
            result.fail(f"{name} {finding.rule} on {finding.where}: {finding.text}")
    for entry in accepted:
        if entry not in used:
            result.line(
                f"stale entry in {ACCEPTED.name}: {entry.tool} {entry.rule} on "
                f"{', '.join(entry.patterns)} matches nothing now (remove it)"
            )
    if quick:
        result.line("pip-audit: not run in the short form (it needs the internet)")
    else:
        for lock_file in LOCK_FILES:
            result.line(f"pip-audit {audit(lock_file)}")
    return result
