"""A list refused whole says why with a code and its params beside the English words, so the
console says it in the marketer's language (tsunagu.imports.refusals): through the admin API's
dry run, run, column list, saved mapping and upload."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import AwsStack
from tests.support.admin import event
from tsunagu.api import admin
from tsunagu.commands.access import Role
from tsunagu.settings import Settings

HEADER = "メールアドレス,氏名\r\n"
ROW = "taro@example.jp,山田 太郎\r\n"


@pytest.fixture
def stack(aws: AwsStack) -> Settings:
    return aws.settings()


def answer(settings: Settings, method: str, path: str, body: Any) -> tuple[int, Any]:
    response = admin.handle(event(method, path, role=Role.MARKETER, body=body), settings)
    return response["statusCode"], json.loads(response["body"])


def plan_body(data: bytes, file_name: str = "list.csv", **more: Any) -> dict[str, Any]:
    return {"file_name": file_name, "content_base64": base64.b64encode(data).decode(), **more}


CP932_LIST = (HEADER + ROW).encode("cp932")
CP932_BYTE = next(at for at, byte in enumerate(CP932_LIST) if byte >= 0x80)

REFUSED: list[tuple[str, dict[str, Any], str, str, dict[str, Any]]] = [
    # (the request, the field, the code, its params)
    ("a cp932 list read as UTF-8", plan_body(CP932_LIST, encoding="utf-8"),
     "encoding", "not_in_encoding",
     {"encoding": "utf-8", "byte": CP932_BYTE, "detail": "invalid start byte"}),
    ("bytes no encoding reads", plan_body(b"email\n\x81\x20\n"),
     "encoding", "encoding_not_detected", {}),
    ("more columns than are read", plan_body(",".join(f"c{n}" for n in range(201)).encode()),
     "file", "too_many_columns", {"most": 200}),
    ("an empty file", plan_body(b"\r\n\r\n"), "file", "no_header_row", {}),
    ("an Excel 97-2003 workbook", plan_body(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512,
                                            "list.xls"),
     "file", "old_workbook", {}),
    ("a scan sent as the list", plan_body(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "来場者.csv"),
     "file", "not_a_list", {"kind": "PNG"}),
    ("the sheet printed to PDF", plan_body(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "来場者.csv"),
     "file", "not_a_list", {"kind": "PDF"}),
    ("a .xlsx that is no zip", plan_body(b"not a workbook", "list.xlsx"),
     "file", "not_xlsx", {"detail": "File is not a zip file"}),
    ("no e-mail column", plan_body("氏名,会社名\r\n山田,サンプル\r\n".encode()),
     "mapping", "no_email_column", {"headers": "氏名, 会社名", "rows": 10}),
    ("two e-mail columns", plan_body("メール,Email\r\na@example.jp,b@example.jp\r\n".encode()),
     "mapping.Email", "second_column_for", {"header": "Email", "name": "email"}),
    ("the lead's own as a field", plan_body((HEADER.strip() + ",スコア\r\n").encode(),
                                            mapping={"スコア": "score"}),
     "mapping.スコア", "reserved_field", {"header": "スコア", "name": "score"}),
    ("a field name no field has", plan_body(HEADER.encode(), mapping={"氏名": "Full Name"}),
     "mapping.氏名", "not_a_field_name", {"header": "氏名", "name": "Full Name"}),
    ("a mapping of too many columns", plan_body(HEADER.encode(),
                                                mapping={f"c{n}": "-" for n in range(201)}),
     "mapping", "too_many_mapped_columns", {"most": 200, "given": 201}),
    ("a consent column the file lacks", plan_body(HEADER.encode(),
                                                  consent={"column": "配信希望", "yes": ["はい"]}),
     "consent_column", "no_consent_column",
     {"column": "配信希望", "headers": "メールアドレス, 氏名"}),
    ("an answer both yes and no", plan_body(HEADER.encode(), consent={
        "column": "氏名", "yes": ["Yes"], "no": ["YES"]}),
     "consent_no", "consent_yes_and_no", {"answers": "yes"}),
    ("an answer of marks only", plan_body(HEADER.encode(), consent={
        "column": "氏名", "yes": ["-"]}),
     "consent_yes", "consent_answer_blank", {"answer": "-"}),
    ("the topic no one may name", plan_body(HEADER.encode(), consent={
        "column": "氏名", "yes": ["はい"], "topic": "all"}),
     "consent_topic", "reserved_topic", {"topic": "all"}),
    ("a file that is not base64", {"file_name": "list.csv", "content_base64": "メール"},
     "content_base64", "not_base64", {}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "body", "field", "code", "params"), REFUSED, ids=[case[0] for case in REFUSED]
)
def test_a_dry_run_refused_says_why_with_a_code_and_its_params(
    stack: Settings, what: str, body: dict[str, Any], field: str, code: str, params: dict[str, Any]
) -> None:
    status, refused = answer(stack, "POST", "/admin/imports/plans", body)
    assert status == 422, (what, refused)
    problems = {problem["field"]: problem for problem in refused["errors"]}
    assert field in problems, (what, refused)
    assert problems[field]["code"] == code
    assert problems[field]["params"] == params
    assert problems[field]["message"]  # the English words are kept for the CLI and clients


def test_the_run_refuses_with_the_dry_run_s_codes(stack: Settings) -> None:
    body = plan_body(CP932_LIST, encoding="utf-8", plan_digest="0123456789abcdef")
    status, refused = answer(stack, "POST", "/admin/imports", body)
    assert status == 422, refused
    assert [(p["field"], p["code"]) for p in refused["errors"]] == [("encoding", "not_in_encoding")]


def test_the_column_list_says_the_mapping_s_problems_with_their_codes(stack: Settings) -> None:
    body = plan_body("氏名,会社名\r\n山田,サンプル\r\n".encode())
    status, found = answer(stack, "POST", "/admin/imports/columns", body)
    assert status == 200, found
    assert [(p["field"], p["code"], p["params"]) for p in found["problems"]] == [
        ("mapping", "no_email_column", {"headers": "氏名, 会社名", "rows": 10})
    ]
    # A file it cannot read at all is refused, coded as the dry run's refusal is
    status, refused = answer(stack, "POST", "/admin/imports/columns", plan_body(b"\r\n"))
    assert status == 422 and refused["errors"][0]["code"] == "no_header_row", refused


def test_a_mapping_saved_badly_says_each_problem_with_its_code(stack: Settings) -> None:
    body = {"columns": {"ご芳名": "Not A Field"}}
    status, refused = answer(stack, "PUT", "/admin/imports/mappings/cards", body)
    assert status == 422, refused
    assert [(p["field"], p["code"], p["params"]) for p in refused["errors"]] == [
        ("columns", "not_a_field_name", {"header": "ご芳名", "name": "Not A Field"})
    ]
    status, refused = answer(stack, "PUT", "/admin/imports/mappings/Cards", {})
    assert status == 422, refused
    assert [(p["field"], p["code"], p["params"]) for p in refused["errors"]] == [
        ("name", "invalid_mapping_name", {"name": "Cards"})
    ]


def test_an_upload_of_a_file_that_is_no_list_says_so_with_a_code(stack: Settings) -> None:
    body = {"file_name": "名簿.exe"}
    status, refused = answer(stack, "POST", "/admin/imports/uploads", body)
    assert status == 422, refused
    assert [(p["field"], p["code"], p["params"]) for p in refused["errors"]] == [
        ("file_name", "invalid_file_name", {"name": "名簿.exe"})
    ]


FORGED_NAME = "\x1b[2J\x1b[31mFAKE\x1b[0m\r\nimp_01FAKE  applied  trusted.csv"
"""A name that, printed in a terminal, clears the screen and forges a line of `imports list`."""


@pytest.mark.parametrize(
    "path", ["/admin/imports/plans", "/admin/imports/columns", "/admin/imports"]
)
def test_a_list_named_with_control_characters_is_refused_and_nothing_is_stored(
    stack: Settings, path: str
) -> None:
    run = {"plan_digest": "0123456789abcdef"} if path == "/admin/imports" else {}
    body = plan_body(CP932_LIST, file_name=FORGED_NAME, **run)
    status, refused = answer(stack, "POST", path, body)
    assert status == 422, refused
    assert [(p["field"], p["code"], p["params"]) for p in refused["errors"]] == [
        ("file_name", "invalid_file_name", {"name": FORGED_NAME})
    ]
    # No import, and no audit entry naming it (the run is refused before it is recorded)
    assert answer(stack, "GET", "/admin/imports", None) == (200, {"items": []})
    audit = admin.handle(event("GET", "/admin/audit", role=Role.ADMIN), stack)
    assert "FAKE" not in audit["body"], audit["body"]


def test_a_list_named_with_a_full_width_space_is_a_list_s_name(stack: Settings) -> None:
    # A Japanese file name often holds U+3000; it is no control character
    name = "展示会\u3000名簿.csv"
    status, planned = answer(stack, "POST", "/admin/imports/plans", plan_body(CP932_LIST, name))
    assert (status, planned["counts"]["create"]) == (200, 1), planned
    status, upload = answer(stack, "POST", "/admin/imports/uploads", {"file_name": name})
    assert (status, upload["file_name"]) == (201, name), upload


def test_a_refusal_outside_the_import_path_reads_as_it_always_did(stack: Settings) -> None:
    # A problem said only in words (a filter's syntax) has no "code" or "params" keys: every
    # other client reads it unchanged
    tried = event("POST", "/admin/segments/try", body={"filter": "stage=="})
    response = admin.handle(tried, stack)
    refused = json.loads(response["body"])
    assert response["statusCode"] == 422, refused
    assert all(set(problem) == {"field", "message"} for problem in refused["errors"]), refused

    # And one pydantic finds keeps its words, with its type beside them (value.<type>)
    response = admin.handle(event("GET", "/admin/leads", query={"limit": "abc"}), stack)
    refused = json.loads(response["body"])
    assert response["statusCode"] == 422, refused
    [problem] = refused["errors"]
    assert problem["field"] == "limit" and problem["code"] == "value.int_parsing", problem
    assert problem["message"].startswith("Input should be a valid integer"), problem
