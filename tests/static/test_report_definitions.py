"""Each report figure's definition is written where people read it - the README and the API
document - in the words the code's definitions give (tsunagu.reports.definitions)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tsunagu.reports.definitions import ATTRIBUTION, DAYS_AND_UNIQUES, METRICS, RATES

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_defines_every_metric_and_rate_as_the_code_does() -> None:
    readme = " ".join((ROOT / "README.md").read_text("utf-8").split())
    missing = [
        line
        for line in (
            DAYS_AND_UNIQUES,
            ATTRIBUTION,
            *(f"- `{name}`: {meaning}" for name, meaning in METRICS.items()),
            *(f"- `{name}` = {formula}" for name, formula in RATES.items()),
        )
        if " ".join(line.split()) not in readme
    ]
    assert missing == []


def test_the_api_document_gives_the_definitions_with_each_report() -> None:
    document = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text("utf-8"))
    reports = {
        path: operations["get"]
        for path, operations in document["paths"].items()
        if path.startswith("/admin/reports/")
        and "get" in operations
        # A background rebuild's progress is no report: it has no figures to define
        and not path.startswith("/admin/reports/rebuilds/")
    }
    assert set(reports) == {
        "/admin/reports/mail/{template}",
        "/admin/reports/journeys/{journey}",
        "/admin/reports/journeys/{journey}/experiments/{node}",
        "/admin/reports/funnel",
        "/admin/reports/attribution",
    }
    for operation in reports.values():
        assert " ".join(ATTRIBUTION.split()) in " ".join(operation["description"].split())
        for name, meaning in METRICS.items():
            assert f"- `{name}`: {meaning}" in operation["description"]
        for name, formula in RATES.items():
            assert f"- `{name}` = {formula}" in operation["description"]
