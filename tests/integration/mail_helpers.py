"""What the mail handlers' tests share: the stack made ready to send, leads, templates, sends,
the mail moto's SES accepted, and sample events with their placeholders filled in.

send_email needs settings only it gets in template.yaml (the API's URL for links, the
configuration set, the allowlist); ``prepare_mail`` adds them to the environment every function
of the test stack is invoked with, verifies the sender's domain and creates the configuration
set in moto, as the local runtime does at start-up.
"""

from __future__ import annotations

import base64
import copy
import email
import email.policy
import json
import re
import uuid
from email.message import EmailMessage
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from tests.conftest import REGION, AwsStack, load_event, moto_client
from tests.integration.tracking_helpers import raw_items, stored_events
from tsunagu import services
from tsunagu.forms.model import ConsentSpec, FormDefinition, FormField
from tsunagu.leads.lookup import lead_by_email
from tsunagu.mail.templates import MailTemplate

API_URL = "https://api.example.com"
SENDER = "news@example.com"
CONFIGURATION_SET = "tsunagu-test"
PLACEHOLDER = "SIGNED_TOKEN"
DESTINATION = "https://www.example.com/seminar/2026-12?utm_source=tsunagu&utm_medium=email"
PRICING = "https://www.example.com/pricing"
LEAD_EMAIL = "hanako.sato@example.jp"
MAIL_ENVIRONMENT = {
    "TSUNAGU_API_URL": API_URL,
    "TSUNAGU_MAIL_CONFIGURATION_SET": CONFIGURATION_SET,
    "TSUNAGU_MAIL_ALLOWLIST": "example.com,example.jp",
    "TSUNAGU_VERIFIED_SENDER_DOMAINS": "example.com",
    "TSUNAGU_SOFT_BOUNCE_LIMIT": "3",
}
WELCOME_HTML = (
    "<html><body><p>{{ lead.name }} 様</p>"
    "<p>ホワイトペーパーをダウンロードいただきありがとうございます。</p>"
    f'<p><a href="{DESTINATION.replace("&", "&amp;")}">12月のセミナーに申し込む</a></p>'
    f"<p><a href='{PRICING}'>料金プラン</a></p>"
    "</body></html>"
)
_deserializer = TypeDeserializer()


def prepare_mail(aws: AwsStack, **environment: str) -> AwsStack:
    """Given the stack able to send: mail settings, a verified sender domain, the configuration
    set, and two forms with a consent checkbox (``demo`` for marketing, ``seminar`` for the
    ``seminars`` topic)."""
    aws.environment.update({**MAIL_ENVIRONMENT, **environment})
    moto_client("ses").verify_domain_identity(Domain="example.com")
    moto_client("sesv2").create_configuration_set(ConfigurationSetName=CONFIGURATION_SET)
    settings = aws.settings()
    forms = services.form_repository(settings)
    for form_id, topic in (("demo", "marketing"), ("seminar", "seminars")):
        forms.put(
            FormDefinition(
                form_id=form_id,
                name=f"Form for {topic}",
                fields=[
                    FormField(name="email", type="email", required=True),
                    FormField(name="name", max_length=100),
                    FormField(name="company", max_length=200),
                    FormField(name="consent", type="checkbox"),
                ],
                consent=ConsentSpec(
                    topic=topic, text=f"Send me {topic} news by e-mail.", version="2026-11"
                ),
            ),
            services.clock(settings),
        )
    return aws


def capture(
    aws: AwsStack,
    address: str = LEAD_EMAIL,
    *,
    consent: bool = True,
    form_id: str = "demo",
    name: str = "佐藤 花子",
) -> str:
    """A lead captured through capture_form (the sample event, with this body); its lead_id,
    found by the address as an integrator finds it: the form's answer names the lead only when
    the address was new (for a known one, an id of no lead: it tells nobody who is a lead)."""
    event = load_event("capture_form", "new_lead_json")
    event["body"] = json.dumps(
        {"email": address, "name": name, "company": "Example KK", "consent": consent}
    )
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/forms/{form_id}/submissions"
    event["pathParameters"]["form_id"] = form_id
    response = aws.function("capture_form").invoke(event)
    assert response["statusCode"] == 201, response
    return lead_by_email(services.lead_repository(aws.settings()), address).lead_id


def save_template(aws: AwsStack, **changes: Any) -> MailTemplate:
    settings = aws.settings()
    template = MailTemplate(
        **{
            "template_id": "welcome",
            "name": "Welcome",
            "subject": "{{ lead.name }} 様 資料ダウンロードのお礼",
            "html": WELCOME_HTML,
            "from_address": SENDER,
            "from_name": "Example Corp",
            "defaults": {"name": "ご担当者"},
            **changes,
        }
    )
    stored: MailTemplate = services.mail_repository(settings).save_template(
        template, services.clock(settings)
    )
    return stored


def send(
    aws: AwsStack,
    lead_id: str,
    *,
    template_id: str | None = None,
    key: str | None = None,
    case: str = "journey_step",
) -> dict[str, Any]:
    """send_email invoked with events/send_email/<case>.json for this lead (a fresh idempotency
    key unless given); what the journey's task would get back."""
    event = load_event("send_email", case)
    event["lead_id"] = lead_id
    if template_id is not None:
        event["template_id"] = template_id
    event["idempotency_key"] = key or f"{event['idempotency_key']}:{uuid.uuid4().hex}"
    result: dict[str, Any] = aws.function("send_email").invoke(event)
    return result


def sent_messages() -> list[Any]:
    """Every mail moto's SES accepted in this test, oldest first."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def parse(raw: str) -> EmailMessage:
    return email.message_from_string(raw, policy=email.policy.default)


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and the HTML part."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def hrefs(html: str) -> list[str]:
    return [
        value.replace("&amp;", "&")
        for value in re.findall(r"""<a\b[^>]*\bhref\s*=\s*["']([^"']+)["']""", html)
    ]


def unsubscribe_url(message: EmailMessage) -> str:
    match = re.search(r"<(https://[^>]+)>", str(message["List-Unsubscribe"]))
    assert match is not None, message["List-Unsubscribe"]
    return match.group(1)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def with_token(event: dict[str, Any], token: str) -> dict[str, Any]:
    """The sample event with ``token`` where its placeholder is (path, parameter, referer)."""
    changed = copy.deepcopy(event)
    changed["rawPath"] = changed["rawPath"].replace(PLACEHOLDER, token)
    http = changed["requestContext"]["http"]
    http["path"] = http["path"].replace(PLACEHOLDER, token)
    changed["pathParameters"]["token"] = token
    if "referer" in changed["headers"]:
        changed["headers"]["referer"] = changed["headers"]["referer"].replace(PLACEHOLDER, token)
    return changed


def with_body(event: dict[str, Any], body: str | bytes, content_type: str) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    if isinstance(body, bytes):
        changed["body"] = base64.b64encode(body).decode()
        changed["isBase64Encoded"] = True
    else:
        changed["body"] = body
        changed["isBase64Encoded"] = False
    changed["headers"]["content-type"] = content_type
    changed["headers"].pop("content-length", None)
    return changed


def unsubscribe(aws: AwsStack, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = aws.function("unsubscribe").invoke(event)
    return response


def feedback_event(
    case: str,
    lead_id: str,
    message_id: str,
    feedback_id: str | None = None,
    address: str = LEAD_EMAIL,
) -> dict[str, Any]:
    """events/ses_feedback/<case>.json with the mail's tags naming this lead and message, about
    the mail to ``address`` (and, given one, another SES feedback id: a new bounce rather than
    the same one redelivered)."""
    event = load_event("ses_feedback", case)
    for record in event["Records"]:
        notification = json.loads(record["Sns"]["Message"])
        mail = notification["mail"]
        mail["tags"]["lead_id"] = [lead_id]
        mail["tags"]["message_id"] = [message_id]
        mail["destination"] = mail["commonHeaders"]["to"] = [address]
        detail = notification.get("bounce") or notification.get("complaint") or {}
        for recipient in [
            *detail.get("bouncedRecipients", ()),
            *detail.get("complainedRecipients", ()),
        ]:
            recipient["emailAddress"] = address
        if "delivery" in notification:
            notification["delivery"]["recipients"] = [address]
        if feedback_id is not None and "bounce" in notification:
            notification["bounce"]["feedbackId"] = feedback_id
        record["Sns"]["Message"] = json.dumps(notification, ensure_ascii=False)
    return event


def feedback(
    aws: AwsStack, case: str, lead_id: str, message_id: str, feedback_id: str | None = None
) -> list[str]:
    """ses_feedback's outcomes for SES's word on the mail sent to the lead (at its address)."""
    lead = services.lead_repository(aws.settings()).get_lead(lead_id)
    address = lead.email if lead is not None else LEAD_EMAIL
    event = feedback_event(case, lead_id, message_id, feedback_id, address)
    result = aws.function("ses_feedback").invoke(event)
    outcomes: list[str] = result["outcomes"]
    return outcomes


def consent_records(aws: AwsStack, lead_id: str) -> dict[str, dict[str, Any]]:
    """The lead's consent-table items by record key, as plain values."""
    items = [
        {name: _deserializer.deserialize(value) for name, value in item.items()}
        for item in raw_items(aws, "ConsentTable")
    ]
    return {item["record"]: item for item in items if item["lead_id"] == lead_id}


def consent_state(aws: AwsStack, lead_id: str) -> dict[str, str]:
    """topic -> opted_in / opted_out / pending."""
    return {
        item["topic"]: item["status"]
        for record, item in consent_records(aws, lead_id).items()
        if record.startswith("topic#")
    }


def suppression(aws: AwsStack, lead_id: str) -> str | None:
    item = consent_records(aws, lead_id).get("suppression")
    return None if item is None else str(item["status"])


def lead_events(aws: AwsStack, lead_id: str, kind: str) -> list[dict[str, Any]]:
    return [
        e for e in stored_events(aws) if e["subject"] == f"lead#{lead_id}" and e["type"] == kind
    ]


def snapshot(aws: AwsStack) -> dict[str, list[dict[str, Any]]]:
    """Everything a request could change, to compare before and after."""
    return {
        logical_id: sorted(raw_items(aws, logical_id), key=lambda i: json.dumps(i, sort_keys=True))
        for logical_id in ("ConsentTable", "EventsTable", "LeadsTable", "IdempotencyTable")
    }


def confirmation_token(aws: AwsStack, lead_id: str) -> str:
    """The token of the confirm link in the mail route_events sent for the lead's sign-up."""
    route = aws.function("route_events")
    assert route.invoke(stream_batch_of_lead_events(aws, lead_id)) == {"batchItemFailures": []}
    (confirmation,) = [
        m for m in sent_messages() if "ご登録の確認" in str(parse(m.raw_data)["Subject"])
    ]
    _, html = parts(parse(confirmation.raw_data))
    confirm_url = re.search(r'href="([^"]+\?confirm=1)"', html)
    assert confirm_url is not None
    return token_of(confirm_url.group(1).removesuffix("?confirm=1"))


def stream_batch_of_lead_events(aws: AwsStack, lead_id: str) -> dict[str, Any]:
    """The events table's items for the lead, as the stream would deliver them (NEW_IMAGE)."""
    client = moto_client("dynamodb")
    items = client.query(
        TableName=aws.tables["EventsTable"],
        KeyConditionExpression="subject = :s",
        ExpressionAttributeValues={":s": {"S": f"lead#{lead_id}"}},
    )["Items"]
    template = load_event("route_events", "form_submitted")["Records"][0]
    records = []
    for number, item in enumerate(items, start=1):
        record = {**template, "dynamodb": {**template["dynamodb"]}}
        record["dynamodb"]["NewImage"] = item
        record["dynamodb"]["SequenceNumber"] = str(number)
        records.append(record)
    return {"Records": records}


def confirm(aws: AwsStack, lead_id: str) -> dict[str, Any]:
    """The person presses the button of the confirmation mail route_events sent for the lead's
    pending consent (the page's POST; a GET of the link confirms nothing)."""
    post = with_body(
        with_token(load_event("unsubscribe", "preferences_form"), confirmation_token(aws, lead_id)),
        "confirm=1",
        "application/x-www-form-urlencoded",
    )
    return unsubscribe(aws, post)
