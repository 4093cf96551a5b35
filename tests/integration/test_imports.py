"""The dry run of a lead-list import through the admin API and the CLI (moto, in-process): a
Shift_JIS trade-show sheet planned row by row against the leads stored, the rejected rows handed
back as a file, and nothing written."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AwsStack
from tests.support.admin import event
from tests.support.cli import runtime_here
from tests.support.leads import store_lead
from tsunagu import cli, services
from tsunagu.api import admin
from tsunagu.commands.access import Role
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.settings import Settings

SHEET = [
    ["メールアドレス", "氏名", "会社名", "役職", "配信希望"],
    ["new.visitor@example.jp", "展示 花子", "㈱ブース", "部長", "希望する"],
    ["known@example.jp", "", "株式会社ノウン", "課長", ""],
    ["broken-address", "壊れ 太郎", "", "", ""],
]


def sheet_bytes() -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(SHEET)
    return out.getvalue().encode("cp932")


@pytest.fixture
def stack(aws: AwsStack) -> Settings:
    at = "2026-12-01T01:00:00+00:00"
    store_lead(
        aws,
        "known@example.jp",
        fields={
            "name": FieldValue("既存 一郎", Channel.IMPORT, at),
            "company": FieldValue("ノウン(株)", Channel.IMPORT, at),
            "job_title": FieldValue("部長", Channel.CRM, at),
        },
    )
    return aws.settings()


def call(settings: Settings, body: Any, role: Role = Role.MARKETER) -> tuple[int, Any]:
    response = admin.handle(event("POST", "/admin/imports/plans", role=role, body=body), settings)
    return response["statusCode"], json.loads(response["body"])


def test_a_trade_show_sheet_is_planned_row_by_row_and_nothing_is_written(
    stack: Settings,
) -> None:
    before = services.lead_repository(stack).find_lead("email:known@example.jp")
    status, plan = call(
        stack,
        {
            "file_name": "展示会2026.csv",
            "content_base64": base64.b64encode(sheet_bytes()).decode(),
            "source": "trade_show",
            "consent": {"column": "配信希望", "yes": ["希望する"], "no": ["希望しない"]},
        },
    )
    assert status == 200, plan
    assert plan["encoding"] == "cp932"
    assert plan["counts"] == {
        "create": 1, "update": 0, "unchanged": 1, "merged": 0, "rejected": 1,
    }  # fmt: skip
    rows = {row["row"]: row for row in plan["rows"]}
    assert (rows[2]["action"], rows[2]["consent"]) == ("create", "yes")
    # The CRM's title is kept over the trade show's, and said so; the company is the same one
    assert rows[3]["action"] == "unchanged"
    assert rows[3]["kept"] == {"job_title": {"kept": "部長", "source": "crm", "file": "課長"}}
    assert rows[4]["action"] == "rejected" and "broken-address" in rows[4]["reason"]
    returned = base64.b64decode(plan["rejected_csv_base64"]).decode("utf-8-sig")
    assert returned.splitlines()[1].startswith("broken-address,壊れ 太郎")

    # Nothing was written: no new lead, the known one as it was
    repository = services.lead_repository(stack)
    assert repository.find_lead("email:new.visitor@example.jp") is None
    assert repository.find_lead("email:known@example.jp") == before


@pytest.mark.parametrize(
    ("body", "role", "status", "field"),
    [
        ({"file_name": "a.csv", "content_base64": "***"}, Role.MARKETER, 422, "content_base64"),
        ({"file_name": "../a.csv", "content_base64": "YQ=="}, Role.MARKETER, 422, "file_name"),
        (
            {"file_name": "a.csv", "content_base64": base64.b64encode(sheet_bytes()).decode(),
             "consent": {"column": "メール配信", "yes": ["はい"]}},
            Role.MARKETER, 422, "consent_column",
        ),
        (
            {"file_name": "a.csv", "content_base64": base64.b64encode(b"name\r\nx\r\n").decode()},
            Role.MARKETER, 422, "mapping",
        ),
        ({"file_name": "a.csv", "content_base64": "YQ=="}, Role.VIEWER, 403, None),
        ({"file_name": "a.csv", "content_base64": "YQ=="}, Role.SALES, 403, None),
    ],
)  # fmt: skip
def test_what_cannot_be_planned_is_refused_naming_why(
    stack: Settings, body: dict[str, Any], role: Role, status: int, field: str | None
) -> None:
    answered, answer = call(stack, body, role)
    assert answered == status, answer
    assert answer["message"]
    if field:
        assert field in json.dumps(answer), answer


def test_the_cli_prints_the_plan_and_writes_the_rejected_rows(
    stack: Settings,
    aws: AwsStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runtime_here(aws, tmp_path, monkeypatch)
    (tmp_path / "list.csv").write_bytes(sheet_bytes())
    code = cli.main(
        ["imports", "plan", "list.csv", "--source", "trade_show", "--consent-column", "配信希望",
         "--consent-yes", "希望する", "--rejected", "rejected.csv"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "read as cp932, counted as trade_show" in printed
    assert "create 1  update 0  unchanged 1  merged 0  rejected 1" in printed
    assert "job_title kept (crm: 部長)" in printed
    assert (tmp_path / "rejected.csv").read_text("utf-8-sig").count("\n") == 2


def test_text_that_is_not_even_ascii_is_not_base64_and_says_so(stack: Settings) -> None:
    # (found by the admin fuzz: it was a 500)
    status, answer = call(stack, {"file_name": "a.csv", "content_base64": "メール"})
    assert status == 422 and "content_base64" in json.dumps(answer), answer
