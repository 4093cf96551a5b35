"""The journeys Tsunagu ships with, their mail templates and entry rules.

Installed into a fresh local runtime by ``make up`` and into a deployed stack by
``tsunagu journeys install``. Installing never overwrites: a marketer's edited template or
paused journey stays as it is; only what is missing is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tsunagu.journeys.model import ExitConditions, Journey, ReentryPolicy, Trigger
from tsunagu.journeys.waits import EventMatch
from tsunagu.mail.templates import MailTemplate

SEMINAR_FOLLOW_UP = Journey(
    journey_id="seminar_follow_up",
    name="Seminar follow-up (seed 000)",
    state_machine="seminar-follow-up",
    status="active",
    triggers=[Trigger(kind="manual")],
    reentry=ReentryPolicy(kind="after_interval", interval_days=30),
)

WELCOME_NURTURE = Journey(
    journey_id="welcome_nurture",
    name="Welcome nurture for new form leads",
    state_machine="welcome-nurture",
    status="active",
    triggers=[Trigger(kind="form_submitted")],
    reentry=ReentryPolicy(kind="never"),
    exit=ExitConditions(goals=[EventMatch(type="form_submitted", form_id="demo-request")]),
)

RE_ENGAGEMENT = Journey(
    journey_id="re_engagement",
    name="Re-engagement for leads silent for 90 days",
    state_machine="re-engagement",
    status="active",
    triggers=[Trigger(kind="segment", segment="silent_days>=90"), Trigger(kind="manual")],
    reentry=ReentryPolicy(kind="after_interval", interval_days=180),
)

SHIPPED_JOURNEYS = (SEMINAR_FOLLOW_UP, WELCOME_NURTURE, RE_ENGAGEMENT)


@dataclass(frozen=True)
class ShippedMail:
    template_id: str
    name: str
    subject: str
    body: str
    """Paragraphs of HTML; ``{site}`` is the site's base URL."""
    kind: Literal["marketing", "transactional"] = "marketing"


def _link(path: str, text: str) -> str:
    return f'<p><a href="{{site}}{path}">{text}</a></p>'


SHIPPED_MAILS = (
    ShippedMail(
        "seminar-invitation",
        "Seminar: invitation",
        "【ご招待】{{ lead.company }} の皆さまへ: 導入事例セミナーのご案内",
        "<p>{{ lead.name }} 様</p><p>導入事例セミナーを開催します。</p>"
        + _link("/seminar", "セミナーの詳細とお申し込み"),
    ),
    ShippedMail(
        "seminar-clicked-follow-up",
        "Seminar: mail A (clicked)",
        "セミナーのご案内をご覧いただきありがとうございます",
        "<p>{{ lead.name }} 様</p><p>当日の資料を先にお届けします。</p>"
        + _link("/case-study", "導入事例を読む"),
    ),
    ShippedMail(
        "seminar-no-click-reminder",
        "Seminar: mail B (no click)",
        "【残席わずか】導入事例セミナーのご案内",
        "<p>{{ lead.name }} 様</p><p>先日ご案内したセミナー、まだお席があります。</p>"
        + _link("/seminar", "お申し込みはこちら"),
    ),
    ShippedMail(
        "seminar-thanks-for-attending",
        "Seminar: mail C (attended)",
        "本日はセミナーにご参加いただきありがとうございました",
        "<p>{{ lead.name }} 様</p><p>本日の資料とアンケートをお送りします。</p>"
        + _link("/seminar/materials", "資料をダウンロード"),
    ),
    ShippedMail(
        "welcome",
        "Welcome: first mail",
        "{{ lead.name }} 様、資料のダウンロードありがとうございます",
        "<p>{{ lead.name }} 様</p><p>ご登録ありがとうございます。</p>"
        + _link("/pricing", "料金プランを見る")
        + _link("/case-study", "導入事例を見る"),
    ),
    ShippedMail(
        "welcome-campaign-offer",
        "Welcome: campaign offer (viewed pricing)",
        "今月末までのキャンペーンのご案内",
        "<p>{{ lead.name }} 様</p><p>料金ページをご覧いただいた方へ、特別プランのご案内です。</p>"
        + _link("/pricing/campaign", "キャンペーンの詳細"),
    ),
    ShippedMail(
        "welcome-case-study-pack",
        "Welcome: detailed material (read a case study)",
        "導入事例の詳細資料をお送りします",
        "<p>{{ lead.name }} 様</p><p>同じ業界の導入事例をまとめた資料です。</p>"
        + _link("/case-study/pack", "詳細資料をダウンロード"),
    ),
    ShippedMail(
        "welcome-getting-started",
        "Welcome: getting-started guide",
        "はじめてのマーケティングオートメーション: 3つのステップ",
        "<p>{{ lead.name }} 様</p><p>はじめの一歩に役立つガイドです。</p>"
        + _link("/guide", "ガイドを読む"),
    ),
    ShippedMail(
        "welcome-book-a-demo",
        "Welcome: book a demo (clicked)",
        "30分のデモで、貴社の使い方をご提案します",
        "<p>{{ lead.name }} 様</p>" + _link("/demo", "デモを予約する"),
    ),
    ShippedMail(
        "welcome-customer-stories",
        "Welcome: customer stories (no click)",
        "お客様の声: 商談化率が2倍になった理由",
        "<p>{{ lead.name }} 様</p>" + _link("/case-study", "お客様の声を読む"),
    ),
    ShippedMail(
        "welcome-next-steps",
        "Welcome: next steps (opened)",
        "次のステップのご提案",
        "<p>{{ lead.name }} 様</p>" + _link("/demo", "担当者に相談する"),
    ),
    ShippedMail(
        "welcome-last-chance",
        "Welcome: last mail (not opened)",
        "【最後のご案内】資料のご感想をお聞かせください",
        "<p>{{ lead.name }} 様</p>" + _link("/survey", "1分アンケートに答える"),
    ),
    ShippedMail(
        "reengage-we-miss-you",
        "Re-engagement: we miss you",
        "{{ lead.name }} 様、最近の新機能をご紹介します",
        "<p>{{ lead.name }} 様</p><p>しばらくご無沙汰しています。</p>"
        + _link("/whats-new", "新機能を見る"),
    ),
    ShippedMail(
        "reengage-stay-subscribed",
        "Re-engagement: stay subscribed?",
        "今後もメールをお送りしてよろしいですか?",
        "<p>{{ lead.name }} 様</p>"
        + _link("/whats-new", "はい、引き続き受け取ります")
        + '<p>不要な場合は <a href="{{ unsubscribe_url }}">配信停止</a> できます。</p>',
    ),
)


CONFIRMATION_MAIL = ShippedMail(
    "double-opt-in",
    "Double opt-in: confirm the subscription",
    "ご登録の確認 / Please confirm your subscription",
    "<p>{{ lead.name }} 様</p>"
    "<p>メールの配信をご希望の場合は、下のボタンから登録を確定してください。"
    "お心当たりがない場合は、このメールを破棄してください (配信は再開されません)。</p>"
    "<p>To receive our mail, please confirm below. If you did not ask for it, ignore this"
    " mail: nothing will be sent.</p>"
    '<p><a href="{{ confirm_url }}">登録を確定する / Confirm</a></p>',
    kind="transactional",
)
"""The mail a form's consent box sends for confirmation (the forms' default
``confirmation_template``): for a form with double opt-in, and for any form's box ticked for a
lead who had said no (tsunagu.leads.capture), so it must exist even where no form asks for it."""


def shipped_template(mail: ShippedMail, *, site_url: str, sender: str) -> MailTemplate:
    body = mail.body.replace("{site}", site_url.rstrip("/"))
    return MailTemplate(
        template_id=mail.template_id,
        kind=mail.kind,
        name=mail.name,
        subject=mail.subject,
        html=f"<html><body>{body}</body></html>",
        from_address=sender,
        from_name="Tsunagu demo",
        defaults={"name": "ご担当者", "company": "貴社"},
    )


def shipped_site_paths() -> list[str]:
    """The site paths the shipped mails link to (the local runtime serves a page for each)."""
    import re

    return sorted(
        {m for mail in SHIPPED_MAILS for m in re.findall(r"\{site\}(/[^\"]*)", mail.body)}
    )
