"""capture_form's handler fed with events/capture_form/*.json, under moto, through PynamoDB."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.conftest import AwsStack, load_event, moto_client
from tsunagu import services
from tsunagu.client_values import STORED
from tsunagu.forms.model import FormDefinition

SITE = "https://www.example.com"


@pytest.fixture
def stack(aws: AwsStack) -> AwsStack:
    """Given the demo form registered for the customer's site."""
    aws.seed_demo_form()
    return aws


def invoke(stack: AwsStack, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = stack.function("capture_form").invoke(event)
    return response


def items(stack: AwsStack, logical_id: str) -> list[dict[str, Any]]:
    dynamodb = moto_client("dynamodb")
    found: list[dict[str, Any]] = dynamodb.scan(TableName=stack.tables[logical_id])["Items"]
    return found


def stored_counts(stack: AwsStack) -> dict[str, int]:
    return {logical_id: len(items(stack, logical_id)) for logical_id in stack.tables}


def with_json_body(event: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    changed["body"] = json.dumps(body)
    return changed


def test_a_new_lead_is_stored_whole(stack: AwsStack) -> None:
    response = invoke(stack, load_event("capture_form", "new_lead_json"))

    assert response["statusCode"] == 201
    lead_id = json.loads(response["body"])["lead_id"]
    (lead,) = items(stack, "LeadsTable")
    assert lead["lead_id"]["S"] == lead_id
    assert lead["email"]["S"] == "hanako.sato@example.jp"
    assert lead["fields"]["M"]["company"]["M"]["value"]["S"] == "Example KK"
    identities = {
        i["identity"]["S"]: i["lead_id"]["S"] for i in items(stack, "LeadIdentitiesTable")
    }
    assert identities == {
        "email:hanako.sato@example.jp": lead_id,
        "visitor:v_8f14e45fceea167a": lead_id,
    }
    (event,) = items(stack, "EventsTable")
    assert event["type"]["S"] == "form_submitted"
    assert event["subject"]["S"] == f"lead#{lead_id}"
    assert int(event["expires_at"]["N"]) > 0
    consent = {c["record"]["S"].split("#")[0]: c for c in items(stack, "ConsentTable")}
    assert consent["topic"]["status"]["S"] == "opted_in"
    assert consent["evidence"]["text"]["S"] == "Send me product news."
    assert consent["evidence"]["text_version"]["S"] == "2026-11"
    assert consent["evidence"]["ip"]["S"] == "198.51.100.7"
    assert "Mozilla" in consent["evidence"]["user_agent"]["S"]
    remembered = [i for i in items(stack, "IdempotencyTable") if i["key"]["S"].startswith("form:")]
    assert len(remembered) == 1


def test_a_double_click_makes_one_submission(stack: AwsStack) -> None:
    event = load_event("capture_form", "new_lead_json")
    first = invoke(stack, event)
    before = stored_counts(stack)

    again = invoke(stack, event)

    assert again["statusCode"] == first["statusCode"] == 201
    assert again["body"] == first["body"]
    assert again["headers"]["idempotent-replayed"] == "true"
    assert stored_counts(stack) == before


def test_a_retried_submission_for_a_known_address_gets_its_first_answer(stack: AwsStack) -> None:
    # Given a lead, and a second submission for its address sent with its own submission_id
    invoke(stack, load_event("capture_form", "new_lead_json"))
    body = {"email": "hanako.sato@example.jp", "submission_id": "second-visit-0001"}
    second = with_json_body(load_event("capture_form", "new_lead_json"), body)
    first_answer = invoke(stack, second)
    before = stored_counts(stack)

    # When the browser retries it (the same submission_id)
    retried = invoke(stack, second)

    # Then it gets the same answer (the same id, that names no lead), and nothing new is stored
    assert retried["statusCode"] == first_answer["statusCode"] == 201
    assert retried["body"] == first_answer["body"]
    assert retried["headers"]["idempotent-replayed"] == "true"
    assert stored_counts(stack) == before
    (lead,) = items(stack, "LeadsTable")
    assert lead["lead_id"]["S"] != json.loads(retried["body"])["lead_id"]


def test_a_known_address_updates_its_lead(stack: AwsStack) -> None:
    created = invoke(stack, load_event("capture_form", "new_lead_json"))
    body = {"email": "HANAKO.SATO@example.jp", "name": "Hanako Sato", "company": "Example Group"}

    updated = invoke(stack, with_json_body(load_event("capture_form", "new_lead_json"), body))

    # Answered as a new address is: the public form tells no caller whether one is a lead
    assert updated["statusCode"] == created["statusCode"] == 201
    assert json.loads(updated["body"])["lead_id"] != json.loads(created["body"])["lead_id"]
    (lead,) = items(stack, "LeadsTable")
    assert lead["lead_id"]["S"] == json.loads(created["body"])["lead_id"]
    assert lead["fields"]["M"]["company"]["M"]["value"]["S"] == "Example Group"
    assert len(items(stack, "EventsTable")) == 2


def test_a_browser_form_post_is_redirected_to_the_thank_you_page(stack: AwsStack) -> None:
    response = invoke(stack, load_event("capture_form", "browser_form_post"))

    assert response["statusCode"] == 303
    assert response["headers"]["location"] == f"{SITE}/thanks"
    assert response["headers"]["access-control-allow-origin"] == SITE
    (lead,) = items(stack, "LeadsTable")
    assert lead["email"]["S"] == "ichiro.suzuki@example.com"


def test_a_base64_form_post_keeps_japanese_text(stack: AwsStack) -> None:
    response = invoke(stack, load_event("capture_form", "browser_form_post_base64"))

    assert response["statusCode"] == 303
    (lead,) = items(stack, "LeadsTable")
    assert lead["fields"]["M"]["name"]["M"]["value"]["S"] == "田中次郎"


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("malformed_json", 400),
        ("wrong_content_type", 415),
        ("invalid_email", 422),
        ("missing_email", 422),
        ("too_long_field", 422),
        ("unknown_form", 404),
        ("foreign_origin", 403),
    ],
)
def test_bad_input_gets_a_clear_4xx_and_stores_nothing(
    stack: AwsStack, case: str, status: int
) -> None:
    before = stored_counts(stack)

    response = invoke(stack, load_event("capture_form", case))

    assert response["statusCode"] == status
    assert json.loads(response["body"])["message"]
    assert stored_counts(stack) == before


@pytest.mark.parametrize(
    ("case", "body", "says"),
    [
        # A Shift_JIS page's form, and UTF-8 of a lone surrogate: no U+FFFD kept for a name
        ("browser_form_post", "email=sjis@example.jp&name=%82%A0", "accept-charset"),
        ("browser_form_post", "email=sjis@example.jp&name=%FF%FE", "accept-charset"),
        ("browser_form_post", "email=sjis@example.jp&name=%ED%A0%80", "accept-charset"),
        # A number past a float's range, which would be stored as the text "inf"
        ("new_lead_json", '{"email": "inf@example.jp", "name": 1e309}', "out of range"),
    ],
)
def test_a_value_that_cannot_be_kept_as_sent_is_refused_not_mangled(
    stack: AwsStack, case: str, body: str, says: str
) -> None:
    before = stored_counts(stack)
    event = copy.deepcopy(load_event("capture_form", case))
    event["body"] = body

    response = invoke(stack, event)

    assert response["statusCode"] == 400, response
    assert says in response["body"]  # a browser's post is answered with a page that says it
    assert stored_counts(stack) == before


@pytest.mark.parametrize(
    ("path_parameters", "says"),
    [
        (None, "no form with id ''"),
        ({}, "no form with id ''"),
        ({"form_id": ""}, "no form with id ''"),
        ({"form_id": "Demo Form"}, "no form with id 'Demo Form'"),
        ({"form_id": "d" * 2000}, "no form with id 'ddd"),
    ],
    ids=["null", "none", "empty", "not a form id", "over-long"],
)
def test_a_path_without_a_form_id_is_a_404_not_a_crash(
    stack: AwsStack, path_parameters: dict[str, str] | None, says: str
) -> None:
    # Given a submission whose path names no form id DynamoDB could look up (it refuses an
    # empty or over-long key with an error, which was a 500)
    before = stored_counts(stack)
    event = copy.deepcopy(load_event("capture_form", "new_lead_json"))
    event["pathParameters"] = path_parameters

    response = invoke(stack, event)

    # Then it is answered as a form that is not there, and nothing is stored
    assert response["statusCode"] == 404, response
    assert says in json.loads(response["body"])["message"]
    assert stored_counts(stack) == before


def test_a_base64_body_with_a_character_outside_ascii_is_a_400(stack: AwsStack) -> None:
    before = stored_counts(stack)
    event = copy.deepcopy(load_event("capture_form", "browser_form_post_base64"))
    event["body"] = "ｅｍａｉｌ＝ａ"  # full-width: not base64, and not ASCII either

    response = invoke(stack, event)

    assert response["statusCode"] == 400, response
    assert "not valid base64" in response["body"]
    assert stored_counts(stack) == before


def test_an_event_whose_request_context_is_null_is_answered(stack: AwsStack) -> None:
    # An invoker other than API Gateway (a test harness, a replay) may send null for a part it
    # has not: it is read as absent, as a missing part is
    event = copy.deepcopy(load_event("capture_form", "new_lead_json"))
    event["requestContext"] = None

    response = invoke(stack, event)

    assert response["statusCode"] == 201, response


def test_a_one_megabyte_body_is_refused(stack: AwsStack) -> None:
    before = stored_counts(stack)
    event = with_json_body(
        load_event("capture_form", "new_lead_json"),
        {"email": "big@example.com", "company": "x" * (1024 * 1024)},
    )

    response = invoke(stack, event)

    assert response["statusCode"] == 413
    assert stored_counts(stack) == before


def test_hostile_strings_are_refused_or_stored_inertly(stack: AwsStack) -> None:
    hostile = {
        "email": "a@example.com",
        "name": "<script>alert(1)</script>",
        "company": "'; DROP TABLE leads; --",
    }
    response = invoke(stack, with_json_body(load_event("capture_form", "new_lead_json"), hostile))
    # Markup and SQL are just text to Tsunagu: stored as typed, escaped wherever shown.
    assert response["statusCode"] == 201
    (lead,) = items(stack, "LeadsTable")
    assert lead["fields"]["M"]["name"]["M"]["value"]["S"] == "<script>alert(1)</script>"


def test_a_browser_error_is_an_html_page(stack: AwsStack) -> None:
    event = load_event("capture_form", "browser_form_post")
    event["body"] = "email=not-an-address&consent=on"

    response = invoke(stack, event)

    assert response["statusCode"] == 422
    assert response["headers"]["content-type"].startswith("text/html")
    assert "email" in response["body"]
    assert items(stack, "LeadsTable") == []
    # In Japanese first, as the unsubscribe pages are, then the English detail
    assert "<html lang=ja>" in response["body"]
    assert "送信できませんでした / The form could not be sent" in response["body"]
    assert "入力内容に誤りがあります" in response["body"]


def test_the_built_in_thank_you_page_speaks_japanese_and_english(stack: AwsStack) -> None:
    # Given a form without a thank-you URL of its own
    settings = stack.settings()
    services.form_repository(settings).put(
        FormDefinition.model_validate(
            {"form_id": "demo", "name": "No thanks page", "allowed_origins": [SITE],
             "fields": [{"name": "email", "type": "email", "required": True}]}
        ),
        services.clock(settings),
    )  # fmt: skip

    # When a browser posts it without script
    response = invoke(stack, load_event("capture_form", "browser_form_post"))

    # Then its page thanks the person in both languages
    assert response["headers"]["content-type"].startswith("text/html")
    assert "<html lang=ja>" in response["body"]
    assert "ありがとうございました / Thank you" in response["body"]


def test_a_filled_honeypot_is_answered_as_success_and_stored_nowhere(stack: AwsStack) -> None:
    before = stored_counts(stack)

    response = invoke(stack, load_event("capture_form", "honeypot_filled"))

    assert response["statusCode"] == 201
    assert json.loads(response["body"])["lead_id"].startswith("lead_")
    assert stored_counts(stack) == before


def test_cors_preflight_only_for_registered_sites(stack: AwsStack) -> None:
    allowed = invoke(stack, load_event("capture_form", "preflight"))
    assert allowed["statusCode"] == 204
    assert allowed["headers"]["access-control-allow-origin"] == SITE
    assert "POST" in allowed["headers"]["access-control-allow-methods"]

    foreign = load_event("capture_form", "preflight")
    foreign["headers"]["origin"] = "https://evil.example.net"
    refused = invoke(stack, foreign)
    assert refused["statusCode"] == 403
    assert "access-control-allow-origin" not in refused["headers"]


def test_a_returning_lead_on_a_form_saved_with_consent_topic_all_is_answered(
    stack: AwsStack,
) -> None:
    # Given a form saved, before that was refused, with the consent topic "all" (the reserved
    # record of "unsubscribed from all mail")
    settings = stack.settings()
    form = FormDefinition.model_validate(
        {
            "form_id": "demo",
            "name": "White paper",
            "fields": [
                {"name": "email", "type": "email", "required": True},
                {"name": "consent", "type": "checkbox"},
            ],
            "allowed_origins": [SITE],
            "consent": {"text": "Send me everything.", "version": "1", "topic": "all"},
        },
        context={STORED: True},
    )
    services.form_repository(settings).put(form, services.clock(settings))
    event = with_json_body(
        load_event("capture_form", "new_lead_json"),
        {"email": "hanako.sato@example.jp", "consent": True},
    )
    assert invoke(stack, event)["statusCode"] == 201

    # When the same person submits it again, ticking the box
    again = invoke(stack, event)

    # Then they are answered (the opt-in replaces the record; no transaction names it twice)
    assert again["statusCode"] == 201, again
    consent = [i for i in items(stack, "ConsentTable") if i["record"]["S"] == "topic#all"]
    assert [i["status"]["S"] for i in consent] == ["opted_in"]


def test_a_post_without_origin_links_no_browser_to_a_lead_that_exists(stack: AwsStack) -> None:
    # Given a person's lead, from the form on the site (a browser's post, with Origin)
    browser = copy.deepcopy(load_event("capture_form", "new_lead_json"))
    browser["headers"]["origin"] = SITE
    lead_id = json.loads(invoke(stack, browser)["body"])["lead_id"]

    # When someone posts the form from a script (no Origin) naming that address and their own
    # browser's visitor id
    script = with_json_body(
        load_event("capture_form", "new_lead_json"),
        {"email": "hanako.sato@example.jp", "visitor_id": "v_attacker_00000001"},
    )
    assert invoke(stack, script)["statusCode"] == 201

    # Then their browser is not the lead's: its page views stay theirs
    identities = {
        i["identity"]["S"]: i["lead_id"]["S"] for i in items(stack, "LeadIdentitiesTable")
    }
    assert "visitor:v_attacker_00000001" not in identities
    (lead,) = items(stack, "LeadsTable")
    assert "v_attacker_00000001" not in json.dumps(lead)
    assert identities["visitor:v_8f14e45fceea167a"] == lead_id

    # And the same post from the site's own page (a browser: Origin the form allows) links it
    script["headers"]["origin"] = SITE
    assert invoke(stack, script)["statusCode"] == 201
    identities = {
        i["identity"]["S"]: i["lead_id"]["S"] for i in items(stack, "LeadIdentitiesTable")
    }
    assert identities["visitor:v_attacker_00000001"] == lead_id


def test_a_browser_post_does_not_tell_a_known_address_from_a_new_one(stack: AwsStack) -> None:
    # Given a form that answers a plain post with its own page, and a lead who used it
    settings = stack.settings()
    services.form_repository(settings).put(
        FormDefinition.model_validate(
            {"form_id": "demo", "name": "No thanks page", "allowed_origins": [SITE],
             "fields": [{"name": "email", "type": "email", "required": True}]}
        ),
        services.clock(settings),
    )  # fmt: skip

    def post(address: str) -> dict[str, Any]:
        event = copy.deepcopy(load_event("capture_form", "browser_form_post"))
        event["body"] = f"email={address}"
        return invoke(stack, event)

    post("ceo%40example.jp")

    # When an outsider posts the lead's address, and one that is no lead
    known, new = post("ceo%40example.jp"), post("nobody-yet%40example.jp")

    # Then both are answered alike
    assert (
        (known["statusCode"], known["body"])
        == (new["statusCode"], new["body"])
        == (201, known["body"])
    )


def test_a_browser_post_is_sent_to_the_same_thank_you_url_for_a_known_address(
    stack: AwsStack,
) -> None:
    # Given the demo form (a thank-you URL of its own) and a lead who used it from the page
    def post(address: str) -> dict[str, Any]:
        event = copy.deepcopy(load_event("capture_form", "browser_form_post"))
        event["body"] = f"email={address}"
        return invoke(stack, event)

    post("ceo%40example.jp")

    # When an outsider posts the lead's address, and one that is no lead
    known, new = post("ceo%40example.jp"), post("nobody-yet%40example.jp")

    # Then both browsers are sent to the same page, with the same headers
    assert known["statusCode"] == new["statusCode"] == 303
    assert known["headers"] == new["headers"]
    assert known["headers"]["location"] == f"{SITE}/thanks"
    # And the lead was updated all the same: still one lead for the address
    assert [i["email"]["S"] for i in items(stack, "LeadsTable")].count("ceo@example.jp") == 1
