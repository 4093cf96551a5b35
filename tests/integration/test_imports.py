"""The dry run of a lead-list import through the admin API and the CLI (moto, in-process): a
Shift_JIS trade-show sheet planned row by row against the leads stored, the rejected rows handed
back as a file, and nothing written."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shlex
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import ROOT, AwsStack, load_event, moto_client
from tests.support.admin import event
from tests.support.cli import runtime_here
from tests.support.leads import store_lead
from tsunagu import cli, services
from tsunagu.api import admin
from tsunagu.commands.access import Role
from tsunagu.imports.plan import REASON_HEADER
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import LeadEvent
from tsunagu.settings import Settings
from tsunagu_local.seed import demo_form

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
    # ... its reason as a code the console says in the user's language, with what it needs
    assert (rows[4]["reason_code"], rows[4]["reason_params"]) == (
        "invalid_email",
        {
            "column": "メールアドレス",
            "value": "broken-address",
            "detail": "An email address must have an @-sign.",
        },
    )
    assert rows[2]["reason_code"] is None and rows[2]["reason_params"] == {}
    # The rejected rows' file says why in Japanese, unless English is asked for
    returned = base64.b64decode(plan["rejected_csv_base64"]).decode("utf-8-sig")
    assert returned.splitlines()[1] == (
        "broken-address,壊れ 太郎,,,,メールアドレス: 「broken-address」はメールアドレスとして"
        "使えません (An email address must have an @-sign.)"
    )
    in_english = call(
        stack,
        {
            "file_name": "展示会2026.csv",
            "content_base64": base64.b64encode(sheet_bytes()).decode(),
            "language": "en",
        },
    )[1]
    returned = base64.b64decode(in_english["rejected_csv_base64"]).decode("utf-8-sig")
    assert returned.splitlines()[1] == (
        "broken-address,壊れ 太郎,,,,email 'broken-address': An email address must have an @-sign."
    )

    # Nothing was written: no new lead, the known one as it was
    repository = services.lead_repository(stack)
    assert repository.find_lead("email:new.visitor@example.jp") is None
    assert repository.find_lead("email:known@example.jp") == before


def test_a_header_below_a_title_is_found_by_the_mapping_that_names_its_email_column(
    stack: Settings,
) -> None:
    # A seminar sheet with a title row, whose address column only the user's mapping names
    rows = [["2026年12月 セミナー参加者"], ["ご連絡先", "ご芳名"], ["aoki@example.jp", "青木 花子"]]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    status, plan = call(
        stack,
        {
            "file_name": "セミナー.csv",
            "content_base64": base64.b64encode(out.getvalue().encode("cp932")).decode(),
            "source": "seminar",
            "mapping": {"ご連絡先": "email", "ご芳名": "name"},
        },
    )
    assert status == 200, plan
    assert plan["encoding"] == "cp932, header on row 2"
    assert [(row["row"], row["action"]) for row in plan["rows"]] == [(3, "create")]


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
        ({"file_name": "a.csv", "content_base64": "YQ==", "language": "fr"}, Role.MARKETER, 422,
         "language"),
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
    # The CLI prints the reason in English, as it always has; the file says it in Japanese
    # (its header is), or in English with --language en
    assert "rejected   email 'broken-address': An email address must have an @-sign." in printed
    reason = "「broken-address」はメールアドレスとして使えません"
    assert reason in (tmp_path / "rejected.csv").read_text("utf-8-sig")
    assert (
        cli.main(["imports", "plan", "list.csv", "--rejected", "en.csv", "--language", "en"]) == 0
    )
    written = (tmp_path / "en.csv").read_text("utf-8-sig")
    assert "email 'broken-address': An email" in written and reason not in written


@pytest.mark.parametrize(
    "command",
    [
        ["imports", "plan", "展示会.csv", "--source", "trade_show"],
        ["imports", "run", "展示会.csv", "--source", "trade_show", "--plan", "0123456789abcdef"],
        ["imports", "run", "展示会.csv", "--background", "--plan", "0123456789abcdef"],
    ],
    ids=["plan", "run", "run-in-the-background"],
)
def test_a_file_that_is_not_there_is_said_in_one_line(
    command: list[str],
    stack: Settings,
    aws: AwsStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given no such file here (a typo, another folder)
    runtime_here(aws, tmp_path, monkeypatch)
    # When it is planned or imported
    code = cli.main(command)
    # Then the CLI says which file it could not read, without a traceback, and imports nothing
    assert code == 1
    assert capsys.readouterr().err == "tsunagu: cannot read 展示会.csv: No such file or directory\n"
    assert cli.main(["imports", "list"]) == 0
    assert "(no imports yet)" in capsys.readouterr().out


def test_a_rejected_rows_file_that_cannot_be_written_is_said_in_one_line(
    stack: Settings,
    aws: AwsStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the sheet, and --rejected naming a folder that does not exist
    runtime_here(aws, tmp_path, monkeypatch)
    (tmp_path / "list.csv").write_bytes(sheet_bytes())
    # When it is planned
    code = cli.main(["imports", "plan", "list.csv", "--rejected", "out/rejected.csv"])
    # Then the CLI says which file it could not write, without a traceback
    assert code == 1
    err = capsys.readouterr().err
    assert err == "tsunagu: cannot write out/rejected.csv: No such file or directory\n"


def readme_example() -> tuple[list[list[str]], list[str]]:
    """README's "Importing a lead list" example: its commands (each split as the shell splits
    it, continuation lines joined) and the output it shows for the last of them."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Importing a lead list") :]
    commands_block = re.search(r"```sh\n(curl .*?)```", section, re.DOTALL)
    output_block = re.search(r"<!-- the plan's output[^>]*-->\n```\n(.*?)```", section, re.DOTALL)
    assert commands_block and output_block, "README: the import example has moved"
    lines = commands_block.group(1).replace("\\\n", " ").splitlines()
    return [shlex.split(line) for line in lines if line.strip()], output_block.group(1).splitlines()


def test_the_readme_s_example_prints_what_the_readme_shows(
    aws: AwsStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the README's commands, run in order from a folder holding the example sheet
    commands, shown = readme_example()
    form_post = commands[0]
    assert form_post[0] == "curl" and form_post[-2] == "-d", form_post
    url = urlsplit(form_post[form_post.index("-s") + 1])
    # The form `make up` seeds, posted as curl posts it: JSON, no Origin
    settings = aws.settings()
    services.form_repository(settings).put(
        demo_form(f"{url.scheme}://{url.netloc}"), services.clock(settings)
    )
    posted = load_event("capture_form", "new_lead_json") | {
        "rawPath": url.path,
        "pathParameters": {"form_id": url.path.split("/")[2]},
        "headers": {"content-type": "application/json", "user-agent": "curl/8.11.1"},
        "body": form_post[-1],
    }
    assert url.path == "/forms/demo/submissions", url
    answer = aws.function("capture_form").invoke(posted)
    assert answer["statusCode"] == 201, answer
    runtime_here(aws, tmp_path, monkeypatch)
    (tmp_path / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "展示会2026.csv", tmp_path / "examples")
    printed = []
    for command in commands[1:]:
        assert command[0] == ".venv/bin/tsunagu", command
        assert cli.main(command[1:]) == 0, command
        printed = capsys.readouterr().out.splitlines()

    # Then the plan is the README's, line for line (but the digest, which the leads' own
    # instants change)
    def without_digest(lines: list[str]) -> list[str]:
        return [re.sub(r"--plan [0-9a-f]{16}$", "--plan DIGEST", line) for line in lines]

    assert without_digest(printed) == without_digest(shown)
    # And the rejected rows' file holds the broken row with its reason; fixed, it imports
    rejected = tmp_path / "rejected.csv"
    rows = rejected.read_text("utf-8-sig").splitlines()
    assert len(rows) == 2 and rows[0].endswith(REASON_HEADER), rows
    assert rows[1].startswith("broken-address,壊れ 太郎"), rows
    rejected.write_text(
        rejected.read_text("utf-8-sig").replace("broken-address", "fixed@example.jp")
    )
    assert cli.main(["imports", "plan", "rejected.csv", "--source", "trade_show"]) == 0
    assert "create 1  update 0  unchanged 0  merged 0  rejected 0" in capsys.readouterr().out


def test_text_that_is_not_even_ascii_is_not_base64_and_says_so(stack: Settings) -> None:
    # (found by the admin fuzz: it was a 500)
    status, answer = call(stack, {"file_name": "a.csv", "content_base64": "メール"})
    assert status == 422 and "content_base64" in json.dumps(answer), answer


# ---------------------------------------------------------------- the real run, and undo
RUN_SHEET = [
    ["メールアドレス", "氏名", "会社名", "部署", "役職", "配信希望"],
    ["new.visitor@example.jp", "展示 花子", "㈱ブース", "", "部長", "希望する"],
    ["known@example.jp", "既存 一郎", "株式会社ノウン", "営業部", "課長", ""],
    ["broken-address", "壊れ 太郎", "", "", "", ""],
    ["ＮＥＷ.visitor@example.jp", "", "", "総務部", "", ""],
    ["optout@example.jp", "配信 停止", "", "", "", "希望しない"],
]
CONSENT = {"column": "配信希望", "yes": ["希望する"], "no": ["希望しない"]}


def run_body(**more: Any) -> dict[str, Any]:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(RUN_SHEET)
    return {
        "file_name": "展示会2026.csv",
        "content_base64": base64.b64encode(out.getvalue().encode("cp932")).decode(),
        "source": "trade_show",
        "consent": CONSENT,
        **more,
    }


def post(settings: Settings, path: str, body: Any = None) -> tuple[int, Any]:
    response = admin.handle(event("POST", path, role=Role.MARKETER, body=body), settings)
    return response["statusCode"], json.loads(response["body"])


def test_the_run_applies_exactly_the_dry_run_s_plan_and_undo_takes_it_back(
    stack: Settings,
) -> None:
    leads = services.lead_repository(stack)
    status, plan = call(stack, run_body())
    assert status == 200, plan
    assert plan["counts"] == {
        "create": 2, "update": 1, "unchanged": 0, "merged": 1, "rejected": 1,
    }  # fmt: skip

    # When the marketer applies that plan
    status, done = post(stack, "/admin/imports", run_body(plan_digest=plan["plan_digest"]))
    assert status == 201, done
    assert (done["status"], done["counts"]) == ("applied", plan["counts"])
    assert done["background"] is False
    import_id = done["import_id"]

    # Then the new lead has the file's values (row 5 merged into row 2), as a trade show's
    visitor = leads.find_lead("email:new.visitor@example.jp")
    assert visitor is not None
    assert {k: (v.value, v.source.value) for k, v in visitor.fields.items()} == {
        "name": ("展示 花子", "trade_show"),
        "company": ("㈱ブース", "trade_show"),
        "department": ("総務部", "trade_show"),
        "job_title": ("部長", "trade_show"),
    }
    [imported] = leads.events(visitor.lead_id)
    assert imported.type == "lead_imported"
    assert (imported.properties["import_id"], imported.properties["row"]) == (import_id, 2)
    # ... its consent is evidence naming the file, the row and the import
    assert leads.consent_state(visitor.lead_id) == {"marketing": "opted_in"}
    [evidence] = leads.consent_evidence(visitor.lead_id)
    assert evidence.text == "展示会2026.csv, row 2: 配信希望 = '希望する'"
    assert evidence.text_version == import_id
    # ... 希望しない is an opt-out, never an opt-in
    optout = leads.find_lead("email:optout@example.jp")
    assert optout is not None
    assert leads.consent_state(optout.lead_id) == {"marketing": "opted_out"}
    [said_no] = leads.consent_evidence(optout.lead_id)
    assert said_no.text == "展示会2026.csv, row 6: 配信希望 = '希望しない'"
    # ... the known lead got its department; the CRM's job title stays
    known = leads.find_lead("email:known@example.jp")
    assert known is not None
    assert known.fields["department"].value == "営業部"
    assert (known.fields["job_title"].value, known.fields["job_title"].source.value) == (
        "部長", "crm",
    )  # fmt: skip
    assert leads.events(known.lead_id)[0].properties["import_id"] == import_id

    # The same plan cannot be applied twice: the leads now exist, so the plan is another one;
    # the second click is told which import applied it, not that leads changed meanwhile
    before = len(list(leads.all_leads()))
    status, refused = post(stack, "/admin/imports", run_body(plan_digest=plan["plan_digest"]))
    assert status == 409, refused
    assert refused["message"].startswith(
        f"this plan was applied already by import {import_id} (applied, "
    ), refused
    assert len(list(leads.all_leads())) == before
    # ... and a plan no import applied is said to have changed since the dry run
    status, refused = post(stack, "/admin/imports", run_body(plan_digest="0123456789abcdef"))
    assert status == 409 and refused["message"].startswith(
        "the plan changed since the dry run: leads were created or changed meanwhile, or the file"
    ), refused

    # When sales renames the opted-out lead afterwards, and the import is undone
    renamed = leads.find_lead("email:optout@example.jp")
    assert renamed is not None
    renamed.fields["name"] = FieldValue("営業 更新", Channel.SALES, "2026-12-05T00:00:00+00:00")
    renamed.updated_at = "2026-12-05T00:00:00+00:00"
    leads.save_changes(renamed, [])
    status, undone = post(stack, f"/admin/imports/{import_id}/undo")
    assert status == 200, undone
    # Then the visitor it created is gone (its address free again), the known lead's department
    # is as before, and the lead changed since is kept, and said so
    assert undone["undo"] == {"removed": 1, "restored": 1, "withdrawn": 0, "kept": 1}
    assert [k["email"] for k in undone["kept"]] == ["optout@example.jp"]
    assert leads.find_lead("email:new.visitor@example.jp") is None
    assert leads.events(visitor.lead_id) == [] and leads.consent_evidence(visitor.lead_id) == []
    known = leads.find_lead("email:known@example.jp")
    assert known is not None and "department" not in known.fields
    assert leads.find_lead("email:optout@example.jp") is not None
    # ... once: an import is undone one time
    status, again = post(stack, f"/admin/imports/{import_id}/undo")
    assert status == 409, again
    response = admin.handle(event("GET", "/admin/imports", role=Role.VIEWER), stack)
    [listed] = json.loads(response["body"])["items"]
    assert (listed["import_id"], listed["status"]) == (import_id, "undone")


@pytest.mark.parametrize(
    ("path", "body", "role", "status"),
    [
        ("/admin/imports", run_body(), Role.MARKETER, 422),  # no plan_digest
        ("/admin/imports", run_body(plan_digest="xyz"), Role.MARKETER, 422),
        ("/admin/imports", run_body(plan_digest="0123456789abcdef"), Role.MARKETER, 409),
        ("/admin/imports", run_body(plan_digest="0123456789abcdef"), Role.VIEWER, 403),
        ("/admin/imports/imp_unknown/undo", None, Role.MARKETER, 404),
        ("/admin/imports/imp_unknown/undo", None, Role.SALES, 403),
    ],
)
def test_a_run_or_undo_asked_for_badly_changes_nothing(
    stack: Settings, path: str, body: Any, role: Role, status: int
) -> None:
    before = len(list(services.lead_repository(stack).all_leads()))
    response = admin.handle(event("POST", path, role=role, body=body), stack)
    assert response["statusCode"] == status, response["body"]
    assert json.loads(response["body"])["message"]
    assert len(list(services.lead_repository(stack).all_leads())) == before


def test_the_cli_runs_the_plan_lists_it_and_undoes_it(
    stack: Settings,
    aws: AwsStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runtime_here(aws, tmp_path, monkeypatch)
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(RUN_SHEET)
    (tmp_path / "list.csv").write_bytes(out.getvalue().encode("cp932"))
    options = ["--source", "trade_show", "--consent-column", "配信希望",
               "--consent-yes", "希望する", "--consent-no", "希望しない"]  # fmt: skip
    assert cli.main(["imports", "plan", "list.csv", *options]) == 0
    printed = capsys.readouterr().out
    digest = printed.rsplit("--plan ", 1)[1].strip()
    assert cli.main(["imports", "run", "list.csv", *options, "--plan", digest]) == 0
    printed = capsys.readouterr().out
    assert "create 2  update 1  unchanged 0  merged 1  rejected 1" in printed
    import_id = printed.split(" as ", 1)[1].split(":", 1)[0]
    assert services.lead_repository(stack).find_lead("email:optout@example.jp") is not None
    assert cli.main(["imports", "list"]) == 0
    assert f"{import_id}  applied" in capsys.readouterr().out
    assert cli.main(["imports", "undo", import_id]) == 0
    assert "2 leads removed, 1 restored, 0 left" in capsys.readouterr().out
    assert services.lead_repository(stack).find_lead("email:optout@example.jp") is None


def test_a_lead_that_changes_while_the_undo_runs_is_kept_and_said_so(
    stack: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.leads.capture import WriteConflict
    from tsunagu.store.leads import LeadRepository

    status, plan = call(stack, run_body())
    status, done = post(stack, "/admin/imports", run_body(plan_digest=plan["plan_digest"]))
    assert status == 201, done

    # A form post lands on each created lead between the undo's read and its removal
    def changed_meanwhile(self: LeadRepository, lead: Any, identities: list[str], _: Any) -> bool:
        raise WriteConflict("lead")

    monkeypatch.setattr(LeadRepository, "remove_lead", changed_meanwhile)
    status, undone = post(stack, f"/admin/imports/{done['import_id']}/undo")
    assert status == 200, undone
    assert undone["undo"] == {"removed": 0, "restored": 1, "withdrawn": 1, "kept": 2}
    assert {k["email"] for k in undone["kept"]} == {"new.visitor@example.jp", "optout@example.jp"}
    assert all(k["changed_since"] == ["(changed while the undo ran)"] for k in undone["kept"])
    assert services.lead_repository(stack).find_lead("email:new.visitor@example.jp") is not None


def test_an_undone_import_takes_its_leads_out_of_the_funnel_counted_yet_or_not(
    stack: Settings, aws: AwsStack
) -> None:
    from tests.support.leads import new_stream_records
    from tsunagu.commands import imports, reports
    from tsunagu.commands.access import Actor
    from tsunagu.imports.plan import ImportOptions

    admin_actor = Actor(user_id="a@example.com", role=Role.ADMIN, email="a@example.com")
    ports = services.import_commands(stack)

    def imported(first: int, rows: int, source: Channel = Channel.TRADE_SHOW) -> str:
        data = big_sheet(first + rows)
        lines = data.decode("cp932").splitlines(keepends=True)
        kept = "".join(lines[:1] + lines[1 + first :]).encode("cp932")
        record, _ = imports.run(ports, admin_actor, kept, "展示会.csv", ImportOptions(source))
        assert record.counts["create"] == rows
        return record.import_id

    def count_what_happened() -> None:
        records = new_stream_records(aws, "EventsTable")
        answer = aws.function("report_events").invoke({"Records": records})
        assert answer == {"batchItemFailures": []}, answer

    # Given a list of three imported and counted: three trade-show leads in the funnel
    counted = imported(0, 3)
    count_what_happened()
    lead = services.lead_repository(stack).find_lead("email:big00000@example.jp")
    assert lead is not None
    day = datetime.fromisoformat(lead.created_at).astimezone(ZoneInfo("Asia/Tokyo")).date()

    def funnel() -> dict[str, int]:
        shown = reports.funnel_report(services.report_commands(stack), admin_actor, day, day)
        return {g.name: g.stages[0].reached for g in shown.groups}

    assert funnel() == {"trade_show": 3}
    # And a second list of two, a seminar's, imported while the counters have not come to it
    # yet, one of whose leads a scoring rule has made an MQL meanwhile (a stage change on its
    # way too)
    not_yet = imported(3, 2, Channel.SEMINAR)
    moved = services.lead_repository(stack).find_lead("email:big00003@example.jp")
    assert moved is not None
    services.lead_repository(stack).put_event(
        LeadEvent("evt_mql", "stage_changed", moved.created_at, moved.lead_id, None,
                  {"from": "lead", "to": "mql"})
    )  # fmt: skip
    # When the second import is undone - the MQL is kept: it is a lead of its own now - then
    # the counters come to its leads' creation (the removed one's counting nothing, failing
    # nothing) and the MQL's stage change, and the first import is undone too
    undone = imports.undo(ports, admin_actor, not_yet)
    assert [k["email"] for k in undone.kept] == ["big00003@example.jp"]
    count_what_happened()
    assert funnel() == {"trade_show": 3, "seminar": 1}
    imports.undo(ports, admin_actor, counted)
    # Then only the MQL is in the funnel, the trade show's list not even as a row of noughts:
    # as if never imported
    assert funnel() == {"seminar": 1}


def test_a_group_meeting_a_lead_created_meanwhile_goes_row_by_row_and_loses_nothing(
    stack: Settings, aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.store.imports import ImportRepository

    status, plan = call(stack, run_body())
    assert plan["counts"]["create"] == 2
    grouped = ImportRepository.apply_rows
    groups: list[int] = []

    # A form creates one of the file's new leads between the dry run and its group's write
    def form_first(
        self: ImportRepository, import_id: str, writes: Any, applied: Any, token: Any = None
    ) -> None:
        groups.append(len(writes))
        if len(groups) == 1:
            store_lead(aws, "new.visitor@example.jp", name="フォーム 花子")
        grouped(self, import_id, writes, applied, token)

    monkeypatch.setattr(ImportRepository, "apply_rows", form_first)
    status, done = post(stack, "/admin/imports", run_body(plan_digest=plan["plan_digest"]))
    assert status == 201, done
    # The three rows that write went as one group, which was refused; then one at a time, the
    # form's lead twice (as planned, refused: its address is claimed; then read again, updated)
    assert groups == [3, 1, 1, 1, 1]
    leads = services.lead_repository(stack)
    visitor = leads.find_lead("email:new.visitor@example.jp")
    assert visitor is not None and visitor.lead_id == "lead_new.visitor"  # the form's, updated
    assert visitor.fields["company"].value == "㈱ブース"
    assert leads.find_lead("email:optout@example.jp") is not None
    known = leads.find_lead("email:known@example.jp")
    assert known is not None and known.fields["department"].value == "営業部"


def test_a_group_applied_by_an_earlier_attempt_is_not_applied_twice(
    stack: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.leads.capture import WriteConflict
    from tsunagu.store.imports import ImportRepository

    grouped = ImportRepository.apply_rows
    calls: list[int] = []

    # The group is written, but the answer is lost (a timeout): the run goes row by row
    def answer_lost(
        self: ImportRepository, import_id: str, writes: Any, applied: Any, token: Any = None
    ) -> None:
        calls.append(len(writes))
        grouped(self, import_id, writes, applied, token)
        raise WriteConflict("lead")

    monkeypatch.setattr(ImportRepository, "apply_rows", answer_lost)
    status, plan = call(stack, run_body())
    status, done = post(stack, "/admin/imports", run_body(plan_digest=plan["plan_digest"]))
    assert status == 201 and done["counts"]["create"] == 2, done
    # Each row was found in the group's receipt: none was written again
    assert calls == [3]
    events = services.lead_repository(stack).events("lead_known")
    assert [e.type for e in events].count("lead_updated") == 1
    # And undo has every row's record, the updated lead's earlier values included
    status, undone = post(stack, f"/admin/imports/{done['import_id']}/undo")
    assert status == 200 and undone["undo"] == {
        "removed": 2,
        "restored": 1,
        "withdrawn": 0,
        "kept": 0,
    }, undone


def test_a_receipt_written_already_is_told_apart_from_a_lead_changed_underneath(
    stack: Settings,
) -> None:
    """A refused receipt means "applied already", told apart from a lead changed underneath -
    here one that unsubscribed from all mail after the row was planned (the plan would not
    have opted it in: see test_import_consent)."""
    from tsunagu.imports.apply import row_write
    from tsunagu.imports.plan import ConsentColumn, ImportOptions, RowPlan
    from tsunagu.leads.capture import WriteConflict
    from tsunagu.leads.model import ConsentEvidence
    from tsunagu.store.converters import consent_items
    from tsunagu.store.tables import bind_tables

    leads = services.lead_repository(stack)
    known = leads.find_lead("email:known@example.jp")
    assert known is not None
    unsubscribed = ConsentEvidence(
        "cns_unsubscribed", known.lead_id, known.email, "all", "opted_out",
        "2026-12-01T02:00:00+00:00", text="配信停止",
    )  # fmt: skip
    for item in consent_items(bind_tables(stack), unsubscribed):
        item.save()
    options = ImportOptions(
        Channel.TRADE_SHOW, consent=ConsentColumn("配信希望", frozenset({"希望する"}), frozenset())
    )
    row = RowPlan(3, "update", known.email, changes={"department": (None, "営業部")}, consent="yes")
    write, applied = row_write(
        row, known, import_id="imp_x", file_name="a.csv", options=options,
        now=datetime(2026, 12, 2, 1, tzinfo=UTC),
    )  # fmt: skip
    store = services.import_repository(stack)
    assert store is not None
    with pytest.raises(WriteConflict) as refused:
        store.apply_rows("imp_x", [write], [applied])
    assert refused.value.kind == "lead"  # read again, and planned without the opt-in
    assert leads.consent_state(known.lead_id) == {"all": "opted_out"}

    # Once the unsubscribe is lifted (by the person), the row is written
    item = bind_tables(stack).consent.get(known.lead_id, "topic#all")
    item.delete()
    store.apply_rows("imp_x", [write], [applied])
    assert leads.consent_state(known.lead_id) == {"marketing": "opted_in"}

    # The same row again (an attempt that did not know): its receipt is what refuses it
    with pytest.raises(WriteConflict) as again:
        store.apply_rows("imp_x", [write], [applied])
    assert again.value.kind == "submission"
    assert store.get_row("imp_x", 3) == applied
    assert [e.type for e in leads.events(known.lead_id)].count("lead_updated") == 1


def long_values_sheet(rows: int) -> tuple[bytes, list[str]]:
    """``rows`` leads, each with nine text fields of 500 characters (the longest a cell may
    be), in Japanese: three bytes a character."""
    headers = ["メールアドレス", "氏名", "フリガナ", "会社名", "部署", "役職", "住所", "業種",
               "備考", "メモ"]  # fmt: skip
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    emails = [f"long{n:02d}@example.jp" for n in range(rows)]
    for n, email in enumerate(emails):
        writer.writerow([email, *((f"{n:02d}{k}" + "展" * 496) for k in range(len(headers) - 1))])
    return out.getvalue().encode("utf-8"), emails


def test_rows_whose_records_would_not_fit_one_receipt_are_written_under_several(
    stack: Settings, aws: AwsStack
) -> None:
    # 19 known leads (one transaction's worth), each of whose nine long fields the file changes:
    # the records keep what was written and what was there, about 27 KB a row, 500 KB in all
    data, emails = long_values_sheet(19)
    at = "2026-12-01T01:00:00+00:00"
    for email in emails:
        store_lead(
            aws, email, fields={"name": FieldValue("旧 " + "名" * 490, Channel.IMPORT, at)}
            | {f: FieldValue("旧" * 499, Channel.IMPORT, at) for f in
               ("name_kana", "company", "department", "job_title", "address", "industry",
                "remarks", "memo")},
        )  # fmt: skip
    body = {
        "file_name": "long.csv",
        "content_base64": base64.b64encode(data).decode(),
        "source": "trade_show",
        "mapping": {"備考": "remarks", "メモ": "memo"},
    }
    status, plan = call(stack, body)
    assert status == 200 and plan["counts"]["update"] == 19, plan
    status, done = post(stack, "/admin/imports", {**body, "plan_digest": plan["plan_digest"]})
    assert status == 201 and done["status"] == "applied", done

    leads = services.lead_repository(stack)
    for n, email in enumerate(emails):
        lead = leads.find_lead(f"email:{email}")
        assert lead is not None and lead.fields["memo"].value.startswith(f"{n:02d}8"), email
    receipts = moto_client("dynamodb").query(
        TableName=stack.imports_table,
        KeyConditionExpression="pk = :import AND begins_with(sk, :row)",
        ExpressionAttributeValues={
            ":import": {"S": f"import#{done['import_id']}"}, ":row": {"S": "row#"}
        },
    )["Items"]  # fmt: skip
    assert len(receipts) >= 2
    assert all(len(item["rows"]["S"].encode()) < 400_000 for item in receipts)

    # And undo puts every field back from them
    status, undone = post(stack, f"/admin/imports/{done['import_id']}/undo")
    assert status == 200 and undone["undo"] == {
        "removed": 0,
        "restored": 19,
        "withdrawn": 0,
        "kept": 0,
    }, undone
    assert all(
        lead.fields["memo"].value == "旧" * 499
        for lead in (leads.find_lead(f"email:{email}") for email in emails)
        if lead is not None
    )


# ---------------------------------------------------------------- mappings saved per source
CARD_SCANS = [
    ["E-mail", "ご芳名", "貴社名", "案内"],
    ["card.one@example.jp", "名刺 一郎", "カード(株)", "可"],
    ["card.two@example.jp", "名刺 二郎", "", "不可"],
]


def card_scans() -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(CARD_SCANS)
    return base64.b64encode(out.getvalue().encode("cp932")).decode()


def put(settings: Settings, path: str, body: Any, role: Role = Role.MARKETER) -> tuple[int, Any]:
    response = admin.handle(event("PUT", path, role=role, body=body), settings)
    return response["statusCode"], json.loads(response["body"])


def test_a_mapping_saved_for_a_source_is_reused_by_name_and_can_be_overridden(
    stack: Settings,
) -> None:
    # Unknown headers: without a mapping the file has no name, no company and no consent
    status, plan = call(stack, {"file_name": "cards.csv", "content_base64": card_scans()})
    assert status == 200 and set(plan["unmapped"]) >= {"ご芳名", "案内"}, plan

    cards = {"source": "trade_show", "columns": {"ご芳名": "name", "貴社名": "company"},
             "consent": {"column": "案内", "yes": ["可"], "no": ["不可"]},
             "encoding": "cp932", "description": "展示会の名刺スキャン"}  # fmt: skip
    status, saved = put(stack, "/admin/imports/mappings/trade-show-cards", cards)
    assert status == 200 and saved["by"] == "marketer@example.com", saved

    status, plan = call(
        stack,
        {"file_name": "cards.csv", "content_base64": card_scans(), "saved_mapping":
         "trade-show-cards"},
    )  # fmt: skip
    assert status == 200, plan
    rows = {row["email"]: row for row in plan["rows"]}
    assert rows["card.one@example.jp"]["values"] == {"name": "名刺 一郎", "company": "カード(株)"}
    assert [rows[e]["consent"] for e in ("card.one@example.jp", "card.two@example.jp")] == [
        "yes",
        "no",
    ]

    # What the request gives wins over what was saved: here, the column left out
    status, plan = call(
        stack,
        {"file_name": "cards.csv", "content_base64": card_scans(),
         "saved_mapping": "trade-show-cards", "mapping": {"貴社名": "-"}},
    )  # fmt: skip
    assert "company" not in plan["rows"][0]["values"], plan

    response = admin.handle(event("GET", "/admin/imports/mappings", role=Role.VIEWER), stack)
    listed = json.loads(response["body"])["items"]
    assert [(m["name"], m["source"]) for m in listed] == [("trade-show-cards", "trade_show")]

    for path, body, role, status_wanted in (
        ("/admin/imports/mappings/cards", {"columns": {"x": "Not A Field"}}, Role.MARKETER, 422),
        ("/admin/imports/mappings/Bad Name", {}, Role.MARKETER, 422),
        ("/admin/imports/mappings/cards", {}, Role.VIEWER, 403),
    ):
        assert put(stack, path, body, role)[0] == status_wanted
    status, answer = call(
        stack, {"file_name": "c.csv", "content_base64": card_scans(), "saved_mapping": "gone"}
    )
    assert status == 404 and "trade-show-cards" in answer["message"], answer

    deleted = admin.handle(
        event("DELETE", "/admin/imports/mappings/trade-show-cards", role=Role.MARKETER), stack
    )
    assert deleted["statusCode"] == 200
    assert json.loads(admin.handle(event("GET", "/admin/imports/mappings"), stack)["body"]) == {
        "items": []
    }


def test_the_rejected_rows_of_a_cp932_source_import_again_with_its_saved_mapping(
    stack: Settings,
) -> None:
    # The source's cards come as cp932, and its mapping says so; the rejected rows come back
    # UTF-8 with a BOM, and fixed, they import with the same mapping: the BOM says what they are
    cards = {"source": "trade_show", "columns": {"ご芳名": "name"}, "encoding": "cp932"}
    assert put(stack, "/admin/imports/mappings/cards", cards)[0] == 200
    scans = "E-mail,ご芳名\r\ncard.one-at-example.jp,名刺 一郎\r\ncard.two@example.jp,名刺 二郎\r\n"
    body = {"file_name": "cards.csv", "saved_mapping": "cards",
            "content_base64": base64.b64encode(scans.encode("cp932")).decode()}  # fmt: skip
    status, plan = call(stack, body)
    assert status == 200 and plan["encoding"] == "cp932", plan
    assert plan["counts"]["rejected"] == 1, plan["counts"]
    rejected = base64.b64decode(plan["rejected_csv_base64"])
    assert rejected.startswith(b"\xef\xbb\xbf")
    fixed = rejected.replace(b"card.one-at-example.jp", b"card.one@example.jp")
    body |= {"file_name": "rejected-cards.csv", "content_base64": base64.b64encode(fixed).decode()}
    status, again = call(stack, body)
    assert status == 200 and again["encoding"] == "utf-8-sig", again
    assert [(r["action"], r["values"]) for r in again["rows"]] == [
        ("create", {"name": "名刺 一郎"})
    ]
    # An encoding the request names still overrides what the file says
    status, named = call(stack, body | {"encoding": "utf-8"})
    assert status == 200 and named["encoding"] == "utf-8", named


def test_the_cli_saves_a_mapping_and_plans_with_it(
    stack: Settings,
    aws: AwsStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runtime_here(aws, tmp_path, monkeypatch)
    (tmp_path / "cards.csv").write_bytes(base64.b64decode(card_scans()))
    assert cli.main(
        ["imports", "mappings", "save", "cards", "--source", "trade_show", "--map",
         "ご芳名=name", "--consent-column", "案内", "--consent-yes", "可", "--consent-no", "不可"]
    ) == 0  # fmt: skip
    saved = capsys.readouterr().out
    assert "saved mapping cards: counted as trade_show, ご芳名 → name" in saved
    assert "consent: 案内 (yes: 可; no: 不可)" in saved  # what a no is, as well as a yes
    assert cli.main(["imports", "plan", "cards.csv", "--mapping", "cards"]) == 0
    printed = capsys.readouterr().out
    assert "counted as trade_show (saved mapping cards)" in printed
    assert "create 2" in printed and "consent: no" in printed


# ---------------------------------------------------------------- large lists, in the background
def big_sheet(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["メールアドレス", "氏名", "会社名", "配信希望"])
    for n in range(rows):
        writer.writerow([f"big{n:05d}@example.jp", f"大量 {n}", "株式会社ビッグ", "希望する"])
    return out.getvalue().encode("cp932")


def read_dry_run(settings: Settings, plan_id: str) -> dict[str, Any]:
    response = admin.handle(event("GET", f"/admin/imports/plans/{plan_id}"), settings)
    assert response["statusCode"] == 200, response
    answer: dict[str, Any] = json.loads(response["body"])
    return answer


def test_a_large_list_runs_in_chunks_a_failing_chunk_is_parked_and_the_rest_written(
    stack: Settings, aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.commands import import_jobs
    from tsunagu.imports import jobs

    monkeypatch.setattr(jobs, "CHUNK_ROWS", 40)
    started: list[str] = []
    monkeypatch.setattr(services, "start_import", lambda _s, i, *_: started.append(i) or i)
    aws.environment["TSUNAGU_IMPORT_STATE_MACHINE_ARN"] = "arn:aws:states:x:1:stateMachine:i"
    stack = aws.settings()
    ports = services.import_commands(aws.settings())

    # The marketer asks where to upload; the CLI uploads itself (both land in the bucket)
    response = admin.handle(
        event("POST", "/admin/imports/uploads", role=Role.MARKETER,
              body={"file_name": "大量リスト.csv"}), stack,
    )  # fmt: skip
    upload = json.loads(response["body"])
    assert response["statusCode"] == 201 and upload["method"] == "PUT", upload
    assert upload["upload_id"].startswith("upl_") and "uploads/" in upload["url"]
    upload_id = import_jobs.upload_file(ports, "大量リスト.csv", big_sheet(100))

    body = {"file_name": "大量リスト.csv", "upload_id": upload_id, "source": "trade_show",
            "consent": {"column": "配信希望", "yes": ["希望する"]}}  # fmt: skip
    # Its dry run is planned in the background too (a request has 29 s), then read
    status, queued = call(aws.settings(), body)
    assert (status, queued["status"]) == (202, "planning"), queued
    plan_id = queued["plan_id"]
    assert started == [plan_id]
    assert read_dry_run(stack, plan_id)["status"] == "planning"
    function = aws.function("import_list")
    assert function.invoke({"step": "dry_run", "plan_id": plan_id}) == {"status": "planned"}
    plan = read_dry_run(stack, plan_id)
    assert plan["status"] == "planned" and plan["counts"]["create"] == 100, plan
    started.clear()
    status, queued = post(
        aws.settings(), "/admin/imports", body | {"plan_digest": plan["plan_digest"]}
    )
    assert status == 202 and (queued["status"], queued["background"]) == ("queued", True), queued
    import_id = queued["import_id"]
    assert started == [import_id]

    # The state machine's steps, as import_list.asl.json runs them
    chunks = function.invoke({"step": "prepare", "import_id": import_id})["chunks"]
    assert [c["index"] for c in chunks] == [0, 1, 2]
    assert function.invoke({"step": "prepare", "import_id": import_id})["chunks"] == chunks
    assert function.invoke({"step": "chunk", "import_id": import_id, "index": 0}) == {"rows": 40}
    assert function.invoke({"step": "chunk", "import_id": import_id, "index": 0}) == {"rows": 40}
    status_of = admin.handle(event("GET", f"/admin/imports/{import_id}", role=Role.VIEWER), stack)
    progress = json.loads(status_of["body"])["progress"]
    assert (progress["rows_done"], progress["rows_total"], progress["chunks_done"]) == (40, 100, 1)
    function.invoke({"step": "park", "import_id": import_id, "index": 1,
                     "error": {"Error": "ConcurrentUpdate", "Cause": "kept changing"}})  # fmt: skip
    assert function.invoke({"step": "chunk", "import_id": import_id, "index": 2}) == {"rows": 20}
    assert function.invoke({"step": "finish", "import_id": import_id}) == {
        "status": "applied_with_parked"
    }

    record, progress_now = import_jobs.status(ports, services.operator(stack), import_id)
    assert progress_now is not None
    assert (progress_now.rows_done, progress_now.rows_parked) == (60, 40)
    assert progress_now.parked[0]["first_row"] == 42 and progress_now.parked[0]["last_row"] == 81
    assert record.detail is not None and "rows 42-81" in record.detail
    leads = services.lead_repository(stack)
    assert leads.find_lead("email:big00000@example.jp") is not None
    assert leads.find_lead("email:big00040@example.jp") is None  # parked: not written
    assert leads.find_lead("email:big00099@example.jp") is not None

    # Undo takes back what was written, and only that
    status, undone = post(stack, f"/admin/imports/{import_id}/undo")
    assert status == 200 and undone["undo"]["removed"] == 60, undone


def test_a_background_run_that_stops_part_way_is_marked_failed_and_can_be_undone(
    stack: Settings, aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.commands import import_jobs
    from tsunagu.commands.imports import _group_token
    from tsunagu.imports import jobs

    assert len(_group_token("imp_01KDZZZZZZZZZZZZZZZZZZZZZZ", 1_000_000)) <= 36  # DynamoDB's
    monkeypatch.setattr(jobs, "CHUNK_ROWS", 40)
    monkeypatch.setattr(services, "start_import", lambda _settings, i, *_: i)
    aws.environment["TSUNAGU_IMPORT_STATE_MACHINE_ARN"] = "arn:aws:states:x:1:stateMachine:i"
    stack = aws.settings()
    ports = services.import_commands(stack)
    upload_id = import_jobs.upload_file(ports, "list.csv", big_sheet(100))
    file = {"file_name": "list.csv", "upload_id": upload_id}
    function = aws.function("import_list")
    plan_id = call(stack, file)[1]["plan_id"]
    function.invoke({"step": "dry_run", "plan_id": plan_id})
    digest = read_dry_run(stack, plan_id)["plan_digest"]
    status, queued = post(stack, "/admin/imports", file | {"plan_digest": digest})
    function.invoke({"step": "prepare", "import_id": queued["import_id"]})
    function.invoke({"step": "chunk", "import_id": queued["import_id"], "index": 0})
    status, refused = post(stack, f"/admin/imports/{queued['import_id']}/undo")
    assert status == 409 and "still running" in refused["message"], refused

    # The Map ran out of retries (the state machine's Catch): the import says so
    stopped = {"Error": "States.Timeout", "Cause": "chunk 1"}
    failed = function.invoke({"step": "fail", "import_id": queued["import_id"], "error": stopped})
    assert failed == {"status": "failed"}
    record, _ = import_jobs.status(ports, services.operator(stack), queued["import_id"])
    assert record.detail == "stopped part-way: States.Timeout: chunk 1"
    status, undone = post(stack, f"/admin/imports/{queued['import_id']}/undo")
    assert status == 200 and undone["undo"]["removed"] == 40, undone

    # (a lone surrogate is not text at all: the body is refused before its fields are read)
    refused = {"a.csv\n": 422, "../a.csv": 422, "a.exe": 422, "\udc80.csv": 400, "a\x7f.csv": 422}
    for name, expected in refused.items():
        response = admin.handle(
            event("POST", "/admin/imports/uploads", role=Role.MARKETER, body={"file_name": name}),
            stack,
        )
        assert response["statusCode"] == expected, (name, response)


def test_a_background_run_whose_plan_changed_is_refused_and_writes_nothing(
    stack: Settings, aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.commands import import_jobs

    monkeypatch.setattr(services, "start_import", lambda _settings, i, *_: i)
    aws.environment["TSUNAGU_IMPORT_STATE_MACHINE_ARN"] = "arn:aws:states:x:1:stateMachine:i"
    stack = aws.settings()
    ports = services.import_commands(aws.settings())
    upload_id = import_jobs.upload_file(ports, "list.csv", big_sheet(3))
    body = {"file_name": "list.csv", "upload_id": upload_id}
    status, queued = post(aws.settings(), "/admin/imports", body | {"plan_digest": "0" * 16})
    assert status == 202, queued
    function = aws.function("import_list")
    assert function.invoke({"step": "prepare", "import_id": queued["import_id"]}) == {"chunks": []}
    assert function.invoke({"step": "finish", "import_id": queued["import_id"]}) == {
        "status": "refused"
    }
    record, _ = import_jobs.status(ports, services.operator(stack), queued["import_id"])
    assert record.detail is not None and "plan changed since the dry run" in record.detail
    assert services.lead_repository(stack).find_lead("email:big00000@example.jp") is None

    for asked, expected in (
        (body | {"upload_id": "upl_01NOSUCHUPLOAD"}, 404),
        (body | {"upload_id": "../../etc"}, 422),
        (body | {"content_base64": "YQ=="}, 422),  # both a body and an upload
    ):
        assert post(aws.settings(), "/admin/imports", asked | {"plan_digest": "0" * 16})[0] == (
            expected
        )


# ---------------------------------------------------------------- a list's columns, to map them
GUEST_LIST = [
    ["ご芳名", "E-Mail(会社)", "会社名", "案内希望", "備考"],
    ["芳名 一郎", "guest.one@example.jp", "ゲスト(株)", "する", "VIP"],
    ["芳名 二郎", "guest.two@example.jp", "", "しない", ""],
    ["芳名 三郎", "guest.three@example.jp", "ゲスト(株)", "", ""],
    ["芳名 四郎", "guest.four@example.jp", "", "", ""],
]


def guest_list() -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(GUEST_LIST)
    return base64.b64encode(out.getvalue().encode("cp932")).decode()


def columns_of(settings: Settings, body: Any, role: Role = Role.MARKETER) -> tuple[int, Any]:
    response = admin.handle(event("POST", "/admin/imports/columns", role=role, body=body), settings)
    return response["statusCode"], json.loads(response["body"])


def test_the_columns_are_the_dry_runs_below_a_title_and_beside_a_consent_column_named_mail(
    stack: Settings,
) -> None:
    # A card-scan sheet: a title row, the address under 「ご連絡先」, and 「メール」 (可 / 不可)
    # as its consent column - an e-mail alias, read as consent because it is named so
    rows = [["名刺スキャン 2026-12"], ["ご連絡先", "ご芳名", "メール"],
            ["aoki@example.jp", "青木 花子", "可"]]  # fmt: skip
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    body = {
        "file_name": "名刺.csv",
        "content_base64": base64.b64encode(out.getvalue().encode("cp932")).decode(),
        "mapping": {"ご連絡先": "email"},
    }
    status, found = columns_of(stack, body | {"consent_column": "メール"})
    assert status == 200 and found["problems"] == [], found
    assert [(c["header"], c["field"], c["by"], c["consent"]) for c in found["columns"]] == [
        ("ご連絡先", "email", "mapping", False), ("ご芳名", None, None, False),
        ("メール", None, None, True),
    ]  # fmt: skip
    # Before the address column is mapped (the dry run would refuse), the consent column is
    # still no e-mail column
    status, unmapped = columns_of(stack, body | {"mapping": {}, "consent_column": "メール"})
    assert status == 200 and unmapped["problems"], unmapped
    assert [(c["header"], c["field"], c["consent"]) for c in unmapped["columns"]] == [
        ("ご連絡先", None, False), ("ご芳名", None, False), ("メール", None, True),
    ]  # fmt: skip
    # And the dry run reads the file the same way
    consent = {"column": "メール", "yes": ["可"], "no": ["不可"]}
    status, plan = call(stack, body | {"source": "trade_show", "consent": consent})
    assert status == 200, plan
    assert [(r["row"], r["action"], r["consent"]) for r in plan["rows"]] == [(3, "create", "yes")]


def test_a_list_whose_headers_name_no_e_mail_column_is_shown_column_by_column_to_be_mapped(
    stack: Settings,
) -> None:
    # Given a guest list headed ご芳名 / E-Mail(会社): its dry run is refused, no column is
    # the e-mail address
    file = {"file_name": "来賓.csv", "content_base64": guest_list()}
    status, refused = call(stack, file)
    assert status == 422 and "e-mail" in refused["message"], refused

    # When its columns are asked for
    status, found = columns_of(stack, file)

    # Then each column is answered in the file's order, with a few of its values and what the
    # dry run would read it as; why the mapping would be refused is said, not answered with
    assert status == 200, found
    assert found["encoding"] == "cp932"
    assert [(c["header"], c["field"], c["by"]) for c in found["columns"]] == [
        ("ご芳名", None, None),
        ("E-Mail(会社)", None, None),
        ("会社名", "company", "automatic"),
        ("案内希望", None, None),
        ("備考", None, None),
    ]
    assert found["columns"][2]["samples"] == ["ゲスト(株)"]  # the first different values
    assert found["columns"][3]["samples"] == ["する", "しない"]
    ((problem),) = found["problems"]
    assert problem["field"] == "mapping"
    assert problem["message"].startswith(
        "no column of the row read as the header (ご芳名, E-Mail(会社), 会社名, 案内希望, 備考)"
        " is the e-mail address: name one (列名=email)"
    )
    assert {"email", "name", "company", "visited_on"} <= set(found["fields"])

    # When the columns are mapped as the console maps them, and saved for the source
    mapping = {"ご芳名": "name", "E-Mail(会社)": "email", "備考": "-"}
    status, mapped = columns_of(stack, file | {"mapping": mapping})
    assert status == 200 and mapped["problems"] == [], mapped
    assert [(c["field"], c["by"]) for c in mapped["columns"]] == [
        ("name", "mapping"), ("email", "mapping"), ("company", "automatic"), (None, None),
        (None, "mapping"),
    ]  # fmt: skip
    saved = {"source": "seminar", "columns": mapping,
             "consent": {"column": "案内希望", "yes": ["する"], "no": ["しない"]}}  # fmt: skip
    assert put(stack, "/admin/imports/mappings/guests", saved)[0] == 200

    # Then the saved mapping names them, and says its consent column, when the file is read again
    status, again = columns_of(stack, file | {"saved_mapping": "guests"})
    assert status == 200 and again["problems"] == [], again
    assert [c["field"] for c in again["columns"]] == ["name", "email", "company", None, None]
    assert again["consent_column"] == "案内希望"
    assert [c["header"] for c in again["columns"] if c["consent"]] == ["案内希望"]
    # ... and the dry run reads the file as the columns said, in the file's order
    status, plan = call(stack, file | {"saved_mapping": "guests"})
    assert status == 200, plan
    assert plan["header"] == GUEST_LIST[0]
    assert plan["columns"] == {"ご芳名": "name", "E-Mail(会社)": "email", "会社名": "company"}
    assert plan["counts"]["create"] == 4
    assert [row["consent"] for row in plan["rows"]] == ["yes", "no", None, None]

    # A field two columns would claim is said too, each column still shown as it is named
    both = {"ご芳名": "email", "E-Mail(会社)": "email"}
    status, twice = columns_of(stack, file | {"mapping": both})
    assert status == 200, twice
    assert [c["field"] for c in twice["columns"][:2]] == ["email", "email"]
    assert twice["problems"] == [
        {
            "field": "mapping.E-Mail(会社)",
            "message": "a second column for email",
            "code": "second_column_for",
            "params": {"header": "E-Mail(会社)", "name": "email"},
        }
    ]


@pytest.mark.parametrize(
    ("body", "role", "status", "field"),
    [
        ({"file_name": "a.csv", "content_base64": "***"}, Role.MARKETER, 422, "content_base64"),
        ({"file_name": "a.csv", "content_base64": base64.b64encode("名".encode("cp932")).decode(),
          "encoding": "utf-8"}, Role.MARKETER, 422, "encoding"),
        ({"file_name": "a.csv", "content_base64": "YQ==", "saved_mapping": "gone"},
         Role.MARKETER, 404, None),
        ({"file_name": "a.csv", "content_base64": "YQ=="}, Role.VIEWER, 403, None),
    ],
)  # fmt: skip
def test_columns_asked_for_badly_are_refused_naming_why(
    stack: Settings, body: dict[str, Any], role: Role, status: int, field: str | None
) -> None:
    answered, answer = columns_of(stack, body, role)
    assert answered == status, answer
    if field:
        assert field in json.dumps(answer), answer


def test_a_large_list_s_dry_run_answers_within_a_lambda_s_limit(
    stack: Settings, aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20,000 rows with long values, half of them with broken addresses, planned in the
    background: the answer holds every count, the rows' plans that fit, and the rejected rows
    behind a link, not megabytes of base64."""
    from tsunagu.commands import import_jobs

    monkeypatch.setattr(services, "start_import", lambda _settings, i, *_: i)
    aws.environment["TSUNAGU_IMPORT_STATE_MACHINE_ARN"] = "arn:aws:states:x:1:stateMachine:i"
    stack = aws.settings()

    rows = [["メールアドレス", "会社名", "部署", "役職"]]
    rows += [
        [f"visitor{n:05d}@example.jp" if n % 2 else f"broken-{n:05d}", *(["展" * 400] * 3)]
        for n in range(20_000)
    ]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    ports = services.import_commands(stack)
    upload_id = import_jobs.upload_file(ports, "大量.csv", out.getvalue().encode("utf-8"))

    body = {"file_name": "大量.csv", "upload_id": upload_id, "rows": 5000}
    status, queued = call(stack, body)
    assert status == 202, queued
    planned = aws.function("import_list").invoke({"step": "dry_run", "plan_id": queued["plan_id"]})
    assert planned == {"status": "planned"}
    response = admin.handle(event("GET", f"/admin/imports/plans/{queued['plan_id']}"), stack)
    assert response["statusCode"] == 200
    assert len(json.dumps(response)) < 6 * 1024 * 1024  # what a Lambda may answer, as it does
    plan = json.loads(response["body"])
    assert (plan["counts"]["create"], plan["counts"]["rejected"]) == (10_000, 10_000)
    assert 0 < plan["rows_shown"] == len(plan["rows"]) < 5000
    assert "rejected_csv_base64" not in plan
    key = plan["rejected_csv_key"]
    assert key.startswith("rejected/") and key in plan["rejected_csv_url"]
    # ... saved as what it is, a CSV named after the list
    assert "filename*=UTF-8''rejected-大量.csv" in unquote(unquote(plan["rejected_csv_url"]))
    assert ports.files is not None
    kept = ports.files.get(key)
    assert kept is not None and kept.decode("utf-8-sig").count("\r\n") == 10_001

    # Another list, every row of it rejected too, makes the same plan - never the same file
    other = [["メールアドレス", "会社名"], *([f"other-{n:05d}", "別" * 400] for n in range(2_000))]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(other)
    first = [["メールアドレス", "会社名"], *([f"first-{n:05d}", "初" * 400] for n in range(2_000))]
    out_first = io.StringIO()
    csv.writer(out_first, lineterminator="\r\n").writerows(first)
    answers = []
    for name, text in (("a.csv", out_first.getvalue()), ("b.csv", out.getvalue())):
        upload = import_jobs.upload_file(ports, name, text.encode())
        plan_id = call(stack, {"file_name": name, "upload_id": upload})[1]["plan_id"]
        aws.function("import_list").invoke({"step": "dry_run", "plan_id": plan_id})
        answers.append(read_dry_run(stack, plan_id))
    assert answers[0]["plan_digest"] == answers[1]["plan_digest"]
    keys = [answer["rejected_csv_key"] for answer in answers]
    assert keys[0] != keys[1]
    assert "first-00000" in (ports.files.get(keys[0]) or b"").decode("utf-8-sig")
    assert "other-00000" in (ports.files.get(keys[1]) or b"").decode("utf-8-sig")


def test_a_background_dry_run_of_a_file_that_is_no_list_is_refused_saying_why(
    stack: Settings, aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.commands import import_jobs

    monkeypatch.setattr(services, "start_import", lambda _settings, i, *_: i)
    aws.environment["TSUNAGU_IMPORT_STATE_MACHINE_ARN"] = "arn:aws:states:x:1:stateMachine:i"
    stack = aws.settings()
    ports = services.import_commands(stack)
    function = aws.function("import_list")

    upload_id = import_jobs.upload_file(
        ports, "list.csv", "氏名,会社名\r\n山田,サンプル\r\n".encode()
    )
    plan_id = call(stack, {"file_name": "list.csv", "upload_id": upload_id})[1]["plan_id"]
    assert function.invoke({"step": "dry_run", "plan_id": plan_id}) == {"status": "refused"}
    refused = read_dry_run(stack, plan_id)
    assert refused["status"] == "refused" and "plan_digest" not in refused
    assert refused["error"]["fields"] == [
        {
            "field": "mapping",
            "message": "no column of the row read as the header (氏名, 会社名) is the e-mail"
            " address: name one (列名=email); the header is looked for in the first 10 rows",
            # What the console says it from, in the marketer's language
            "code": "no_email_column",
            "params": {"headers": "氏名, 会社名", "rows": 10},
        }
    ]

    # A step out of its retries is refused too, saying so
    other = call(stack, {"file_name": "list.csv", "upload_id": upload_id})[1]["plan_id"]
    failure = {"Error": "Lambda.Unknown", "Cause": "out of memory"}
    function.invoke({"step": "dry_run_failed", "plan_id": other, "error": failure})
    assert read_dry_run(stack, other)["error"] == {
        "message": "the dry run failed: Lambda.Unknown: out of memory"
    }

    for unknown in ("pln_01NOSUCHPLAN", "imp_01NOTAPLAN", "..%2F..%2Fetc"):
        response = admin.handle(event("GET", f"/admin/imports/plans/{unknown}"), stack)
        assert response["statusCode"] == 404, (unknown, response)


def test_a_background_dry_run_says_why_rows_are_rejected_in_the_language_asked(
    stack: Settings, aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.commands import import_jobs
    from tsunagu.imports import jobs

    monkeypatch.setattr(services, "start_import", lambda _settings, i, *_: i)
    aws.environment["TSUNAGU_IMPORT_STATE_MACHINE_ARN"] = "arn:aws:states:x:1:stateMachine:i"
    stack = aws.settings()
    ports = services.import_commands(stack)
    assert ports.files is not None
    function = aws.function("import_list")
    upload_id = import_jobs.upload_file(ports, "展示会.csv", sheet_bytes())

    def planned(**asked: Any) -> tuple[str, dict[str, Any]]:
        body = {"file_name": "展示会.csv", "upload_id": upload_id, **asked}
        plan_id = call(stack, body)[1]["plan_id"]
        assert function.invoke({"step": "dry_run", "plan_id": plan_id}) == {"status": "planned"}
        return plan_id, read_dry_run(stack, plan_id)

    def reason_in_file(plan: dict[str, Any]) -> str:
        returned = base64.b64decode(plan["rejected_csv_base64"]).decode("utf-8-sig")
        return returned.splitlines()[1].rsplit(",", 1)[1]

    # Asked in English, planned in the background: the file's reason is English, and the
    # rows' plans kept for the answer carry their codes
    _, plan = planned(language="en")
    assert reason_in_file(plan) == "email 'broken-address': An email address must have an @-sign."
    rows = {row["row"]: row for row in plan["rows"]}
    assert rows[4]["reason_code"] == "invalid_email"
    assert rows[4]["reason_params"]["value"] == "broken-address"

    # A dry run queued before the language was asked (its job says none): Japanese
    plan_id, _ = planned()
    job = ports.files.get_json(jobs.dry_run_key(plan_id, "job"))
    assert job.pop("language") == "ja"
    ports.files.put_json(jobs.dry_run_key(plan_id, "job"), job)
    assert function.invoke({"step": "dry_run", "plan_id": plan_id}) == {"status": "planned"}
    assert reason_in_file(read_dry_run(stack, plan_id)).startswith(
        "メールアドレス: 「broken-address」"
    )

    # An answer kept before rows had codes is read as it was kept: its English reasons
    answer = ports.files.get_json(jobs.dry_run_key(plan_id, "answer"))
    for row in answer["rows"]:
        del row["reason_code"], row["reason_params"]
    ports.files.put_json(jobs.dry_run_key(plan_id, "answer"), answer)
    rows = {row["row"]: row for row in read_dry_run(stack, plan_id)["rows"]}
    assert "reason_code" not in rows[4]
    assert rows[4]["reason"] == "email 'broken-address': An email address must have an @-sign."


def damaged_workbook() -> bytes:
    """A workbook whose sheet XML stops part-way (a download cut short)."""
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["メールアドレス", "氏名"])
    book.active.append(["a@example.jp", "山田 太郎"])
    saved = io.BytesIO()
    book.save(saved)
    out = io.BytesIO()
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(out, "w") as damaged:
        for name in source.namelist():
            body = source.read(name)
            damaged.writestr(name, body[:-20] if name == "xl/worksheets/sheet1.xml" else body)
    return out.getvalue()


def test_a_damaged_workbook_is_refused_by_the_dry_run_and_the_background_run(
    stack: Settings, aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu.commands import import_jobs

    content = base64.b64encode(damaged_workbook()).decode()
    status, answer = call(stack, {"file_name": "来場者.xlsx", "content_base64": content})
    assert status == 422, answer
    assert answer["errors"][0]["field"] == "file"
    assert answer["errors"][0]["message"].startswith("not a readable workbook: ")

    # The background run's first step plans the file: the import is refused, saying why
    monkeypatch.setattr(services, "start_import", lambda _settings, i, *_: i)
    aws.environment["TSUNAGU_IMPORT_STATE_MACHINE_ARN"] = "arn:aws:states:x:1:stateMachine:i"
    ports = services.import_commands(aws.settings())
    upload_id = import_jobs.upload_file(ports, "来場者.xlsx", damaged_workbook())
    body = {"file_name": "来場者.xlsx", "upload_id": upload_id, "plan_digest": "0" * 16}
    status, queued = post(aws.settings(), "/admin/imports", body)
    assert status == 202, queued
    function = aws.function("import_list")
    assert function.invoke({"step": "prepare", "import_id": queued["import_id"]}) == {"chunks": []}
    record, _ = import_jobs.status(ports, services.operator(stack), queued["import_id"])
    assert record.status == "refused"
    assert record.detail is not None and "not a readable workbook" in record.detail


def test_a_workbook_s_plan_names_the_sheet_it_read_and_those_it_did_not(stack: Settings) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "見本"
    book.active.append(["メールアドレス", "氏名"])
    book.active.append(["sample@example.jp", "見本 太郎"])
    book.active.sheet_state = "hidden"
    visitors = book.create_sheet("来場者")
    visitors.append(["メールアドレス", "氏名"])
    visitors.append(["visitor@example.jp", "来場 花子"])
    book.active = visitors
    saved = io.BytesIO()
    book.save(saved)
    content = base64.b64encode(saved.getvalue()).decode()
    status, plan = call(stack, {"file_name": "来場者.xlsx", "content_base64": content})
    assert status == 200, plan
    assert plan["encoding"] == "xlsx, sheet '来場者' (not read: '見本' (hidden))"
    assert [row["email"] for row in plan["rows"]] == ["visitor@example.jp"]


def test_rows_a_stray_quote_or_an_unquoted_comma_spoils_come_back_rejected(
    stack: Settings,
) -> None:
    lines = [
        "メールアドレス,氏名,会社名,電話番号",
        "a@example.jp,山田 太郎,Sample, Inc.,03-1234-5678",
        'b@example.jp,"佐藤 花子,株式会社ビー,03-1111-2222',
        "c@example.jp,鈴木 一郎,株式会社シー,03-3333-4444",
    ]
    content = base64.b64encode(("\r\n".join(lines) + "\r\n").encode("cp932")).decode()
    status, plan = call(stack, {"file_name": "名刺.csv", "content_base64": content})
    assert status == 200, plan
    assert plan["counts"]["rejected"] == 3 and plan["counts"]["create"] == 0, plan
    reasons = {row["row"]: row["reason"] for row in plan["rows"]}
    assert "column 5: '03-1234-5678'" in reasons[2]
    assert reasons[3] == reasons[4] and reasons[3].startswith(
        'unbalanced quote: a " in file lines 3-4'
    )
    returned = base64.b64decode(plan["rejected_csv_base64"]).decode("utf-8-sig").splitlines()
    assert [line.split(",")[0] for line in returned[1:]] == [
        "a@example.jp", "b@example.jp", "c@example.jp",
    ]  # fmt: skip


def test_a_mapping_too_large_to_keep_is_refused_saying_so_and_the_largest_allowed_is_kept(
    stack: Settings,
) -> None:
    path = "/admin/imports/mappings/cards"
    # The largest allowed, replaced by another: 50 headers of 200 Japanese characters, in the
    # mapping's item and, before and after, in the audit log's; or 200 short ones
    for kind in ("来", "場"):
        largest = {f"{n:03d}" + kind * 197: f"field_{n}" for n in range(50)}
        status, saved = put(stack, path, {"source": "trade_show", "columns": largest})
        assert status == 200 and saved["columns"] == largest, saved

    for columns, problem in (
        ({"a" * 450_000: "booth"}, "the header 'aaaa"),  # 450 KB: was a 500 from DynamoDB
        ({"来" * 201: "booth"}, "longer than 200 characters"),
        ({f"列{n}": "-" for n in range(201)}, "at most 200 columns, not 201"),
        ({f"{n:03d}" + "来" * 197: "-" for n in range(51)}, "come to 10,200 characters"),
        ({"ブース": "b" * 41}, "the field for 'ブース' is longer than 40 characters"),
    ):
        status, answer = put(stack, path, {"source": "trade_show", "columns": columns})
        assert status == 422, answer
        assert answer["errors"][0]["field"] == "columns" and problem in answer["message"], answer
        # The header is not sent back, only clipped (in the message and the problem's params)
        assert len(json.dumps(answer)) < 2_000
    listed = json.loads(admin.handle(event("GET", "/admin/imports/mappings"), stack)["body"])
    assert [m["columns"] for m in listed["items"]] == [largest]
    many = {f"列{n:03d}": "-" for n in range(200)}
    assert put(stack, path, {"source": "trade_show", "columns": many})[0] == 200

    # A dry run's mapping is kept nowhere: any of a file's 200 columns, headers held the same
    for columns, status_wanted in (
        ({f"{n:03d}" + "来" * 197: "-" for n in range(51)}, 200),
        ({f"列{n}": "-" for n in range(201)}, 422),
        ({"a" * 450_000: "booth"}, 422),
    ):
        body = {"file_name": "c.csv", "content_base64": card_scans(), "mapping": columns}
        status, answer = call(stack, body)
        assert status == status_wanted, answer
        assert status == 200 or answer["errors"][0]["field"] == "mapping", answer
