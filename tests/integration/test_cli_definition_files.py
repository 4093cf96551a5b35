"""The CLI's ``--file`` takes back what it and the admin API give out: a form, site or segment
as GET answers it (its revision or version, its read-only fields) loads as its bare definition
does, by the rule the API's save reads it by, and a template as GET answers it is stored over
the version it was read at when asked to; under moto, the CLI in the test's own process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AwsStack
from tests.integration.mail_helpers import SENDER, prepare_mail
from tests.support.admin import event as admin_event
from tests.support.cli import runtime_here
from tests.support.leads import store_lead
from tsunagu import cli
from tsunagu.api import admin

FORM = {
    "form_id": "seminar-2027",
    "name": "Seminar 2027",
    "fields": [{"name": "email", "type": "email", "required": True}],
    "allowed_origins": ["https://www.example.com"],
}
SITE = {"site_id": "corp", "name": "Corporate site", "allowed_origins": ["https://www.example.com"]}
EXPORTED_SITE = {
    **SITE,
    "truncate_ip": True,
    "revision": 7,
    "signing_secret_made_at": "2027-01-05T09:00:00.000Z",
    "previous_secret_accepted_until": None,
}
"""A site as another stack's GET /admin/sites/corp answered it (saved seven times there, its
secret made there)."""


@pytest.fixture
def here(aws: AwsStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return runtime_here(aws, tmp_path, monkeypatch)


def call_admin(aws: AwsStack, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    response = admin.handle(admin_event(method, path, **kwargs), aws.settings())
    return response["statusCode"], json.loads(response.get("body") or "null")


def tsunagu(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def written(folder: Path, name: str, value: Any) -> str:
    (folder / name).write_text(json.dumps(value, ensure_ascii=False), "utf-8")
    return name


def test_a_form_the_cli_printed_is_loaded_back_over_the_revision_it_was_read_at(
    aws: AwsStack, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a form created from its bare definition, and printed by `forms get` to edit it
    assert tsunagu(capsys, "forms", "create", "--file", written(here, "f.json", FORM))[0] == 0
    code, out, _ = tsunagu(capsys, "forms", "get", FORM["form_id"])
    exported = json.loads(out)
    assert (code, exported["revision"]) == (0, 1)

    # When the edited export is loaded back with --replace --if-unchanged
    edited = written(here, "edited.json", {**exported, "name": "Seminar 2027 (Osaka)"})
    code, out, err = tsunagu(
        capsys, "forms", "create", "--file", edited, "--replace", "--if-unchanged"
    )

    # Then it replaces the form, one save later, as the API's PUT of the same answer would
    assert (code, out) == (0, "form 'seminar-2027' updated\n"), err
    status, shown = call_admin(aws, "GET", "/admin/forms/seminar-2027")
    assert (status, shown["name"], shown["revision"]) == (200, "Seminar 2027 (Osaka)", 2)


def test_a_stale_export_is_refused_as_the_api_refuses_it_and_nothing_is_stored(
    aws: AwsStack, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a form exported at revision 1, then changed by a colleague in the console
    tsunagu(capsys, "forms", "create", "--file", written(here, "f.json", FORM))
    exported = json.loads(tsunagu(capsys, "forms", "get", FORM["form_id"])[1])
    theirs = {**exported, "name": "Their name"}
    status, _ = call_admin(
        aws, "PUT", "/admin/forms/seminar-2027", body=theirs, query={"replace": "true"}
    )
    assert status == 200

    # When the export, edited, is loaded back over it only if unchanged
    mine = written(here, "mine.json", {**exported, "name": "My name"})
    code, out, err = tsunagu(
        capsys, "forms", "create", "--file", mine, "--replace", "--if-unchanged"
    )

    # Then it is refused in one line, saying what the API's 409 says and what to do here
    assert (code, out) == (1, "")
    assert (
        "form 'seminar-2027' was saved since mine.json was exported (its revision 1, now 2)" in err
    ), err
    assert "load it without --if-unchanged" in err and err.count("\n") == 1, err
    # And nothing was stored: their name stays, at their revision
    status, shown = call_admin(aws, "GET", "/admin/forms/seminar-2027")
    assert (shown["name"], shown["revision"]) == ("Their name", 2)


def test_a_site_promoted_from_another_stack_replaces_it_here_whatever_its_count_there(
    aws: AwsStack, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the site on this stack (saved once here), and staging's export of it (saved seven
    # times there, renamed)
    assert tsunagu(capsys, "sites", "create", "--file", written(here, "s.json", SITE))[0] == 0
    staging = written(here, "staging.json", {**EXPORTED_SITE, "name": "Corporate (new)"})

    # When it is loaded with --replace, as a promotion from staging to production is
    code, out, err = tsunagu(capsys, "sites", "create", "--file", staging, "--replace")

    # Then it replaces this stack's: staging's count of its saves means nothing here
    assert (code, out) == (0, "site 'corp' updated\n"), err
    status, shown = call_admin(aws, "GET", "/admin/sites/corp")
    assert (status, shown["name"], shown["revision"]) == (200, "Corporate (new)", 2)

    # And asked to replace only if unchanged since the file's revision, it is refused (this
    # stack's count is not staging's), nothing stored
    code, _, err = tsunagu(
        capsys, "sites", "create", "--file", staging, "--replace", "--if-unchanged"
    )
    assert code == 1 and "was saved since staging.json was exported" in err, err
    assert call_admin(aws, "GET", "/admin/sites/corp")[1]["revision"] == 2


@pytest.mark.parametrize(
    "asked", [["--if-unchanged"], ["--replace", "--if-unchanged"]], ids=["alone", "no-revision"]
)
def test_if_unchanged_without_what_it_needs_is_refused_and_nothing_is_stored(
    aws: AwsStack, here: Path, capsys: pytest.CaptureFixture[str], asked: list[str]
) -> None:
    # Given a bare site definition (no revision), and for the replace the site stored
    if "--replace" in asked:
        assert tsunagu(capsys, "sites", "create", "--file", written(here, "s.json", SITE))[0] == 0
    bare = written(here, "bare.json", {**SITE, "name": "Renamed"})
    # When it is loaded asking for a check it cannot make
    code, out, err = tsunagu(capsys, "sites", "create", "--file", bare, *asked)
    # Then it is refused, saying why, and nothing is stored
    assert (code, out) == (1, ""), err
    assert "--if-unchanged" in err, err
    status, shown = call_admin(aws, "GET", "/admin/sites/corp")
    assert status == (200 if "--replace" in asked else 404)
    assert status == 404 or shown["name"] == SITE["name"]


@pytest.mark.parametrize("replace", [[], ["--replace"]], ids=["create", "replace"])
def test_a_sites_answer_from_another_stack_creates_it_here_read_only_fields_unread(
    aws: AwsStack, here: Path, capsys: pytest.CaptureFixture[str], replace: list[str]
) -> None:
    # Given a site as another stack's API answered it, at its revision there
    exported = written(here, "site.json", EXPORTED_SITE)
    # When it is loaded on a stack that has no such site
    code, out, err = tsunagu(capsys, "sites", "create", "--file", exported, *replace)
    # Then it is created here, its first save: that stack's count means nothing here, and what
    # is not a site's to set (when a secret was made) is not taken from the file
    assert (code, out) == (0, "site 'corp' created\n"), err
    status, shown = call_admin(aws, "GET", "/admin/sites/corp")
    assert status == 200
    assert shown == {**EXPORTED_SITE, "revision": 1, "signing_secret_made_at": None}


def test_an_answer_of_a_form_that_exists_still_needs_replace(
    aws: AwsStack, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a form, and its export at the revision it is at
    tsunagu(capsys, "forms", "create", "--file", written(here, "f.json", FORM))
    exported = json.loads(tsunagu(capsys, "forms", "get", FORM["form_id"])[1])
    again = written(here, "again.json", {**exported, "name": "Changed"})
    # When it is loaded without --replace, Then it is refused: never overwritten by accident
    code, _, err = tsunagu(capsys, "forms", "create", "--file", again)
    assert code == 1 and "add --replace" in err, err
    assert call_admin(aws, "GET", "/admin/forms/seminar-2027")[1]["name"] == FORM["name"]


@pytest.mark.parametrize(
    ("kind", "body", "problem"),
    [
        ("forms", {**FORM, "revision": 1, "colour": "red"}, "colour: Extra inputs"),
        ("forms", {**FORM, "revision": "1"}, "revision: must be the revision of the form"),
        ("sites", {**EXPORTED_SITE, "signing_key_id": "k1"}, "signing_key_id: Extra inputs"),
        ("sites", {**EXPORTED_SITE, "revision": -1}, "revision: must be the revision of the site"),
        ("sites", [SITE], "a site is a JSON object"),
    ],
    ids=["unknown-form-field", "text-revision", "unknown-site-field", "negative", "not-an-object"],
)
def test_a_file_with_what_no_answer_has_is_refused_naming_it_and_nothing_is_stored(
    aws: AwsStack,
    here: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    body: Any,
    problem: str,
) -> None:
    code, out, err = tsunagu(capsys, kind, "create", "--file", written(here, "x.json", body))
    assert (code, out) == (1, "")
    assert err.startswith("tsunagu: x.json is not valid: ") and problem in err, err
    status, listed = call_admin(aws, "GET", f"/admin/{kind}")
    assert (status, listed["items"]) == (200, [])


def test_a_journey_the_cli_showed_is_saved_back_its_start_input_unread(
    aws: AwsStack, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a journey record, and what `journeys show` prints of it (with its start_input)
    record = {"journey_id": "spring_news", "name": "Spring news", "state_machine": "spring-news"}
    code, _, err = tsunagu(capsys, "journeys", "save", "--file", written(here, "j.json", record))
    assert code == 0, err
    code, out, _ = tsunagu(capsys, "journeys", "show", "spring_news")
    shown = json.loads(out)
    assert (code, shown["start_input"]) == (0, [])

    # When it is edited and saved back
    edited = written(here, "edited.json", {**shown, "name": "Spring news 2027"})
    code, out, err = tsunagu(capsys, "journeys", "save", "--file", edited, "--replace")

    # Then the record is replaced, as from its bare record
    assert (code, out) == (0, "journey spring_news saved (draft)\n"), err
    assert json.loads(tsunagu(capsys, "journeys", "show", "spring_news")[1])["name"] == (
        "Spring news 2027"
    )
    # And a field neither the record nor its answer has is still refused, nothing stored
    odd = written(here, "odd.json", {**shown, "colour": "red"})
    code, _, err = tsunagu(capsys, "journeys", "save", "--file", odd, "--replace")
    assert code == 1 and "colour" in err and "Extra inputs" in err, err
    assert json.loads(tsunagu(capsys, "journeys", "show", "spring_news")[1])["name"] == (
        "Spring news 2027"
    )


EXPORTED_SEGMENT = {
    "name": "hot",
    "filter": "stage=mql",
    "description": "営業対応中",
    "exclude_from_marketing": True,
    "by": "someone@example.com",
    "at": "2027-01-05T09:00:00.000Z",
    "version": 7,
    "count": 999,
    "sample": [{"lead_id": "lead_x", "email": "x@example.jp", "stage": "mql", "score": 90}],
    "used_by": ["journey spring_news (trigger)"],
}
"""A segment as another stack's `segments show --json` printed it (saved seven times there)."""


def test_a_segment_the_cli_showed_is_saved_back_over_the_version_it_was_read_at(
    aws: AwsStack, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a segment saved from the command line, and printed by `segments show --json`
    code, _, err = tsunagu(capsys, "segments", "save", "hot", "stage=mql", "--description", "営業")
    assert code == 0, err
    code, out, _ = tsunagu(capsys, "segments", "show", "hot", "--json")
    exported = json.loads(out)
    assert (code, exported["version"], exported["count"], exported["used_by"]) == (0, 1, 0, [])

    # When the export, edited (its count claiming what is not so), is loaded back if unchanged
    edited = written(here, "edited.json", {**exported, "filter": "score>=70", "count": 999})
    code, out, err = tsunagu(
        capsys, "segments", "save", "--file", edited, "--replace", "--if-unchanged"
    )

    # Then it changes the segment, one save later, as the API's PUT of the same answer would
    assert code == 0, err
    assert out.startswith("saved segment hot (version 2): score>=70\n0 leads selected now"), out
    status, shown = call_admin(aws, "GET", "/admin/segments/hot")
    assert (status, shown["filter"], shown["description"], shown["count"]) == (
        200, "score>=70", "営業", 0,
    )  # fmt: skip
    # And what the API's GET answers loads back the same way
    from_api = written(here, "api.json", {**shown, "description": "営業 (API)"})
    code, out, err = tsunagu(
        capsys, "segments", "save", "--file", from_api, "--replace", "--if-unchanged"
    )
    assert (code, out.split("\n")[0]) == (0, "saved segment hot (version 3): score>=70"), err
    assert call_admin(aws, "GET", "/admin/segments/hot")[1]["description"] == "営業 (API)"


def test_a_segments_sample_is_the_same_row_from_the_cli_as_from_the_api(
    aws: AwsStack, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a lead a saved segment selects, with a name, company, grade and tags
    store_lead(aws, "mika@example.jp", company="株式会社サンプル", stage="mql", score=75.0,
               grade="A", tags={"vip", "展示会"})  # fmt: skip
    tsunagu(capsys, "segments", "save", "hot", "stage=mql")

    # When the segment is shown by the command line and by the API
    code, out, err = tsunagu(capsys, "segments", "show", "hot", "--json")
    status, shown = call_admin(aws, "GET", "/admin/segments/hot")

    # Then both show the lead as one row, every column of the API's lead list in it
    assert (code, status) == (0, 200), err
    cli_sample = json.loads(out)["sample"]
    assert cli_sample == shown["sample"], (cli_sample, shown["sample"])
    row = cli_sample[0]
    assert (row["email"], row["name"], row["company"], row["grade"], row["tags"]) == (
        "mika@example.jp", "テスト 太郎", "株式会社サンプル", "A", ["vip", "展示会"],
    )  # fmt: skip
    # And `segments try --json` gives the same row
    code, out, err = tsunagu(capsys, "segments", "try", "stage=mql", "--json")
    assert (code, json.loads(out)["sample"]) == (0, shown["sample"]), err


def test_a_stale_segment_export_is_refused_if_unchanged_and_goes_over_with_replace(
    aws: AwsStack, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a segment exported at version 1, then changed by a colleague through the API
    tsunagu(capsys, "segments", "save", "hot", "stage=mql")
    exported = json.loads(tsunagu(capsys, "segments", "show", "hot", "--json")[1])
    theirs = {**exported, "filter": "tag=vip"}
    assert call_admin(aws, "PUT", "/admin/segments/hot", body=theirs)[0] == 200

    # When the export, edited, is loaded back over it only if unchanged
    mine = written(here, "mine.json", {**exported, "filter": "score>=70"})
    code, out, err = tsunagu(
        capsys, "segments", "save", "--file", mine, "--replace", "--if-unchanged"
    )

    # Then it is refused in one line, saying so in a file's terms, and nothing is stored
    assert (code, out) == (1, "")
    assert "segment 'hot' was saved since mine.json was exported (its version 1, now 2)" in err
    assert "load it without --if-unchanged" in err and err.count("\n") == 1, err
    shown = call_admin(aws, "GET", "/admin/segments/hot")[1]
    assert (shown["filter"], shown["version"]) == ("tag=vip", 2)
    # And loaded with --replace alone it goes over whatever is stored, as a promotion does
    code, out, err = tsunagu(capsys, "segments", "save", "--file", mine, "--replace")
    assert (code, out.split("\n")[0]) == (0, "saved segment hot (version 3): score>=70"), err


@pytest.mark.parametrize(
    "replace", [[], ["--replace"], ["--replace", "--if-unchanged"]],
    ids=["create", "replace", "if-unchanged"],
)  # fmt: skip
def test_a_segment_exported_from_another_stack_is_created_here_read_only_fields_unread(
    aws: AwsStack, here: Path, capsys: pytest.CaptureFixture[str], replace: list[str]
) -> None:
    # Given a segment as another stack printed it, and a stack that has no such segment
    exported = written(here, "hot.json", EXPORTED_SEGMENT)
    # When it is loaded
    code, out, err = tsunagu(capsys, "segments", "save", "--file", exported, *replace)
    # Then it is created here, its first version: who saved it there, when, its count and what
    # read it there are not taken from the file
    assert (code, out.split("\n")[0]) == (
        0, "saved segment hot (version 1): stage=mql (excluded from marketing mail)",
    ), err  # fmt: skip
    status, shown = call_admin(aws, "GET", "/admin/segments/hot")
    assert status == 200
    assert (shown["version"], shown["count"], shown["sample"], shown["used_by"]) == (1, 0, [], [])
    assert shown["description"] == "営業対応中" and shown["by"] != "someone@example.com", shown


@pytest.mark.parametrize(
    ("body", "argv", "problem"),
    [
        ({**EXPORTED_SEGMENT, "colour": "red"}, [], "hot.json is not valid: colour: Extra inputs"),
        ({**EXPORTED_SEGMENT, "version": "7"}, [], "hot.json is not valid: version: "),
        ([EXPORTED_SEGMENT], [], "hot.json is not valid: a segment is a JSON object"),
        (EXPORTED_SEGMENT, ["hot"], "--file gives the segment whole: say NAME in hot.json"),
        (EXPORTED_SEGMENT, ["--if-unchanged"], "--if-unchanged is for --replace"),
        ({**EXPORTED_SEGMENT, "version": None}, ["--replace", "--if-unchanged"],
         '--if-unchanged needs the "version" the segment was read at in hot.json'),
    ],
    ids=["unknown-field", "text-version", "not-an-object", "name-beside", "alone", "no-version"],
)  # fmt: skip
def test_a_segment_file_the_cli_cannot_take_is_refused_saying_why_and_nothing_is_stored(
    aws: AwsStack,
    here: Path,
    capsys: pytest.CaptureFixture[str],
    body: Any,
    argv: list[str],
    problem: str,
) -> None:
    exported = written(here, "hot.json", body)
    code, out, err = tsunagu(capsys, "segments", "save", "--file", exported, *argv)
    assert (code, out) == (1, "")
    assert err.startswith("tsunagu: ") and problem in err, err
    assert call_admin(aws, "GET", "/admin/segments")[1]["items"] == []


def test_if_unchanged_without_a_file_is_refused_and_nothing_is_stored(
    aws: AwsStack, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tsunagu(capsys, "segments", "save", "hot", "stage=mql")
    code, out, err = tsunagu(
        capsys, "segments", "save", "hot", "tag=vip", "--replace", "--if-unchanged"
    )
    assert (code, out) == (1, "") and "--if-unchanged is for --file" in err, err
    assert call_admin(aws, "GET", "/admin/segments/hot")[1]["filter"] == "stage=mql"


def test_a_segment_that_exists_still_needs_replace(
    aws: AwsStack, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a segment, and its export
    tsunagu(capsys, "segments", "save", "hot", "stage=mql")
    exported = json.loads(tsunagu(capsys, "segments", "show", "hot", "--json")[1])
    again = written(here, "again.json", {**exported, "filter": "tag=vip"})
    # When it is loaded without --replace, Then it is refused: never changed by accident
    code, _, err = tsunagu(capsys, "segments", "save", "--file", again)
    assert (code, err) == (1, "tsunagu: segment 'hot' exists: add --replace to change it\n")
    assert call_admin(aws, "GET", "/admin/segments/hot")[1]["filter"] == "stage=mql"


TEMPLATE = {
    "template_id": "product-news",
    "name": "Product news",
    "subject": "{{ lead.name }} 様、資料をお送りします",
    "html": "<p>資料をお送りします</p>",
    "from_address": SENDER,
}


def test_a_template_the_cli_printed_is_stored_over_the_version_it_was_read_at(
    aws: AwsStack, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a template stored from its bare JSON, and printed by `templates get` to edit it
    prepare_mail(aws)
    code, _, err = tsunagu(
        capsys, "templates", "create", "--file", written(here, "t.json", TEMPLATE)
    )
    assert code == 0, err
    code, out, _ = tsunagu(capsys, "templates", "get", "product-news")
    exported = json.loads(out)
    assert (code, exported["version"]) == (0, 1)
    assert exported == call_admin(aws, "GET", "/admin/templates/product-news")[1]

    # When the edited export is stored back only if unchanged
    edited = written(here, "edited.json", {**exported, "subject": "新しい件名"})
    code, out, err = tsunagu(capsys, "templates", "create", "--file", edited, "--if-unchanged")

    # Then it is the next version, as the console's editor's save of version 1 would be
    assert (code, out) == (0, "template 'product-news' stored as version 2\n"), err
    shown = call_admin(aws, "GET", "/admin/templates/product-news")[1]
    assert (shown["version"], shown["subject"]) == (2, "新しい件名")


def test_a_stale_template_export_is_refused_if_unchanged_and_stored_over_the_latest_without(
    aws: AwsStack, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a template exported at version 1, then a colleague's fix stored in the console
    prepare_mail(aws)
    tsunagu(capsys, "templates", "create", "--file", written(here, "t.json", TEMPLATE))
    exported = json.loads(tsunagu(capsys, "templates", "get", "product-news")[1])
    theirs = {**exported, "subject": "修正した件名"}
    path = "/admin/templates/product-news/versions"
    assert call_admin(aws, "POST", path, body=theirs)[0] == 201

    # When the export, edited, is stored back only if unchanged
    mine = written(here, "mine.json", {**exported, "html": "<p>私の変更</p>"})
    code, out, err = tsunagu(capsys, "templates", "create", "--file", mine, "--if-unchanged")

    # Then it is refused in one line, in a file's terms, and their fix stays the latest
    assert (code, out) == (1, ""), out
    assert (
        "template 'product-news' was saved since mine.json was exported (its version 1, now 2)"
        in err
    ), err
    assert "load it without --if-unchanged" in err and err.count("\n") == 1, err
    shown = call_admin(aws, "GET", "/admin/templates/product-news")[1]
    assert (shown["version"], shown["subject"]) == (2, "修正した件名")
    # And without --if-unchanged it is stored over whatever is latest, as it always was
    code, out, err = tsunagu(capsys, "templates", "create", "--file", mine)
    assert (code, out) == (0, "template 'product-news' stored as version 3\n"), err


def test_a_template_exported_from_another_stack_is_created_here_if_unchanged(
    aws: AwsStack, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a template as another stack answered it (its fifth version there), none here
    prepare_mail(aws)
    staging = written(here, "staging.json", {**TEMPLATE, "version": 5})
    # When it is stored only if unchanged
    code, out, err = tsunagu(capsys, "templates", "create", "--file", staging, "--if-unchanged")
    # Then it is created here, its first version: that stack's count means nothing here
    assert (code, out) == (0, "template 'product-news' stored as version 1\n"), err


def test_a_template_file_without_the_version_read_is_refused_if_unchanged_nothing_stored(
    aws: AwsStack, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a bare template file (no version), and the template stored
    prepare_mail(aws)
    bare = written(here, "bare.json", TEMPLATE)
    tsunagu(capsys, "templates", "create", "--file", bare)
    # When it is stored asking for a check it cannot make
    code, out, err = tsunagu(capsys, "templates", "create", "--file", bare, "--if-unchanged")
    # Then it is refused, saying why, and nothing is stored
    assert (code, out) == (1, "")
    assert '--if-unchanged needs the "version" the template was read at in bare.json' in err, err
    assert call_admin(aws, "GET", "/admin/templates/product-news")[1]["version"] == 1
