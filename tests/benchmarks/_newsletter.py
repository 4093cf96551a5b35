"""A typical ~30 KB HTML newsletter template as a marketer would store it (mail benchmarks).

Table layout, inline styles on nearly every element, a <style> block for clients that read one,
Japanese and English copy, about 25 distinct https links (some reached from several anchors, as
an image, a title and a "read more" usually are), ``{{ lead.name | default(...) }}`` and friends,
a ``{% for %}`` over the journey's recommendations, and ``{{ unsubscribe_url }}`` in the footer.

The source is built from data below so that it stays readable here; what the benchmarks store
and render is the resulting Jinja2 text, the same as a template written by hand.
"""

from __future__ import annotations

from typing import Any

SITE = "https://www.example.com"
FONT = (
    "font-family:'Hiragino Kaku Gothic ProN','Hiragino Sans',Meiryo,'Helvetica Neue',Arial,"
    "sans-serif"
)
TEXT = f"{FONT};font-size:15px;line-height:1.7;color:#1f2937;mso-line-height-rule:exactly"
SMALL = f"{FONT};font-size:12px;line-height:1.6;color:#6b7280"
HEADING = f"{FONT};font-size:20px;line-height:1.4;font-weight:bold;color:#111827;margin:0 0 12px"
BUTTON = (
    f"{FONT};display:inline-block;padding:12px 28px;background-color:#0f766e;color:#ffffff;"
    "font-size:15px;font-weight:bold;text-decoration:none;border-radius:6px;"
    "mso-padding-alt:0;border:1px solid #0f766e"
)
LINK = "color:#0f766e;text-decoration:underline"
CELL = "padding:0 32px 24px 32px"

STYLE_BLOCK = """<style type="text/css">
  body, table, td, a { -webkit-text-size-adjust: 100%; -ms-text-size-adjust: 100%; }
  table, td { mso-table-lspace: 0pt; mso-table-rspace: 0pt; }
  img { -ms-interpolation-mode: bicubic; border: 0; height: auto; line-height: 100%;
        outline: none; text-decoration: none; }
  table { border-collapse: collapse !important; }
  body { height: 100% !important; margin: 0 !important; padding: 0 !important;
         width: 100% !important; background-color: #f3f4f6; }
  a[x-apple-data-detectors] { color: inherit !important; text-decoration: none !important;
         font-size: inherit !important; font-family: inherit !important;
         font-weight: inherit !important; line-height: inherit !important; }
  .button-td:hover, .button-a:hover { background-color: #115e59 !important;
         border-color: #115e59 !important; }
  @media screen and (max-width: 600px) {
    .container { width: 100% !important; max-width: 100% !important; }
    .stack-column, .stack-column-center { display: block !important; width: 100% !important;
         max-width: 100% !important; direction: ltr !important; }
    .stack-column-center { text-align: center !important; }
    .center-on-narrow { text-align: center !important; display: block !important;
         margin-left: auto !important; margin-right: auto !important; float: none !important; }
    table.center-on-narrow { display: inline-block !important; }
    .hide-on-mobile { display: none !important; max-height: 0 !important; overflow: hidden; }
    .padding-mobile { padding-left: 16px !important; padding-right: 16px !important; }
    h1 { font-size: 24px !important; line-height: 1.3 !important; }
  }
  @media (prefers-color-scheme: dark) {
    .dark-bg { background-color: #111827 !important; }
    .dark-text { color: #f9fafb !important; }
  }
</style>"""

NAV = [
    ("製品 / Products", f"{SITE}/products"),
    ("導入事例 / Customers", f"{SITE}/customers"),
    ("料金 / Pricing", f"{SITE}/pricing"),
    ("ブログ / Blog", f"{SITE}/blog"),
]

ARTICLES = [
    (
        "リード管理を一つの画面に / One place for every lead",
        f"{SITE}/blog/one-place-for-leads",
        "フォーム、名刺、展示会の来場者リストがばらばらの場所にあると、営業がフォローする頃には"
        "温度感が下がってしまいます。Tsunagu はすべての接点を一人のリードにまとめ、誰が何に関心を"
        "持っているかを一目で分かるようにします。",
        "Web forms, business cards and trade-show lists end up in different places, and by the "
        "time sales follows up the interest has cooled. Every touchpoint now lands on one lead, "
        "so anyone can see at a glance who cares about what.",
    ),
    (
        "同意管理と特定電子メール法 / Consent, done properly",
        f"{SITE}/blog/consent-and-the-law",
        "特定電子メール法では、広告宣伝メールの送信に事前の同意が必要です。同意の文言、日時、"
        "取得経路を証跡として残し、配信停止は次の送信から確実に反映されます。",
        "Japan's anti-spam law asks for consent before any marketing mail. The exact wording, "
        "the time and the channel are kept as evidence, and an unsubscribe takes effect from "
        "the very next send.",
    ),
    (
        "シナリオ配信の始め方 / Your first journey in ten minutes",
        f"{SITE}/blog/first-journey",
        "資料ダウンロードの直後にお礼、三日後に事例紹介、一週間後にウェビナーのご案内。よくある"
        "流れをテンプレートから選び、文面を整えるだけで始められます。",
        "A thank-you right after the download, a case study three days later and a webinar "
        "invitation after a week: pick the usual flow from a template, adjust the copy, done.",
    ),
    (
        "開封率より大切な指標 / Metrics that matter more than opens",
        f"{SITE}/blog/metrics-that-matter",
        "Apple のメールプライバシー保護以降、開封率は当てになりません。クリック、サイト再訪、"
        "商談化までを一本の線で追うと、どのメールが効いているかが見えてきます。",
        "Since Apple's Mail Privacy Protection, open rates say little. Following clicks, return "
        "visits and opportunities along one line shows which mail actually works.",
    ),
]

EVENTS = [
    (
        "12月4日(水) 14:00–15:00",
        "ウェビナー：展示会リードを商談につなげる 5 つのステップ",
        "Webinar: five steps from trade-show lead to opportunity",
        f"{SITE}/events/webinar-2026-12-04",
    ),
    (
        "12月11日(水) 16:00–17:00",
        "ハンズオン：フォーム設置からシナリオ配信まで",
        "Hands-on: from the first form to the first journey",
        f"{SITE}/events/hands-on-2026-12-11",
    ),
    (
        "1月22日(木) 東京・大手町",
        "ユーザー会 2027 冬 / User group, winter 2027",
        "Talks from customers, the roadmap, and drinks afterwards",
        f"{SITE}/events/user-group-2027-winter",
    ),
]

CASES = [
    (
        "株式会社サンプル製作所",
        "展示会後のフォロー工数を 60% 削減",
        "Cut trade-show follow-up work by 60%",
        f"{SITE}/customers/sample-seisakusho",
    ),
    (
        "Example Logistics KK",
        "問い合わせから商談化までの期間を半分に",
        "Halved the time from enquiry to opportunity",
        f"{SITE}/customers/example-logistics",
    ),
]

UPDATES = [
    ("送信ドメイン認証(DKIM/DMARC)の設定ガイドを公開しました", f"{SITE}/docs/sender-auth"),
    ("リードのスコアリング条件に「Web 再訪」を追加しました", f"{SITE}/changelog/2026-11"),
    (
        "CSV インポートが 10 万件まで対応しました / CSV import now takes 100k rows",
        f"{SITE}/docs/csv",
    ),
]

SOCIAL = [
    ("X", "https://x.com/example"),
    ("LinkedIn", "https://www.linkedin.com/company/example"),
    ("YouTube", "https://www.youtube.com/@example"),
    ("note", "https://note.com/example"),
]

FOOTER = [
    ("プライバシーポリシー / Privacy", f"{SITE}/privacy"),
    ("会社概要 / Company", f"{SITE}/company"),
    ("お問い合わせ / Contact", f"{SITE}/contact"),
]

LOGO_URL = f"{SITE}/?utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign=2026-11"
HERO_URL = f"{SITE}/whitepaper/lead-management-2027?utm_source=newsletter&amp;utm_medium=email"


def _row(content: str, style: str = CELL) -> str:
    return f'<tr>\n<td class="padding-mobile" style="{style}">\n{content}\n</td>\n</tr>\n'


def _header() -> str:
    nav = "\n".join(
        f'<td style="padding:0 8px"><a href="{url}" style="{SMALL};color:#374151;'
        f'text-decoration:none">{label}</a></td>'
        for label, url in NAV
    )
    return _row(
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">'
        f'<tr><td style="padding:24px 0" align="left"><a href="{LOGO_URL}">'
        f'<img src="{SITE}/img/mail/logo.png" width="140" height="32" alt="Example" '
        'style="display:block;border:0;outline:none"></a></td>'
        '<td align="right" class="hide-on-mobile"><table role="presentation" cellpadding="0" '
        f'cellspacing="0" border="0"><tr>\n{nav}\n</tr></table></td></tr></table>',
        style="padding:0 32px;border-bottom:1px solid #e5e7eb",
    )


def _greeting() -> str:
    return _row(
        f'<p style="{TEXT};margin:24px 0 8px">'
        "{{ lead.company | default('貴社') }}<br>"
        "{{ lead.name | default('ご担当者') }} 様</p>\n"
        f'<p style="{TEXT};margin:0 0 8px">いつも Example をご利用いただき、ありがとうございます。'
        "今月のニュースレターでは、リード管理の新しいホワイトペーパー、年末のウェビナー、"
        "そしてお客様の導入事例をお届けします。</p>\n"
        f'<p style="{TEXT};margin:0;color:#4b5563">Hello {{{{ lead.name | default("there") }}}}, '
        "thank you for using Example. This month: a new white paper on lead management, the "
        "last webinars of the year, and two customer stories.</p>"
    )


def _hero() -> str:
    return _row(
        f'<a href="{HERO_URL}"><img src="{SITE}/img/mail/2026-11/hero.jpg" width="536" '
        'height="268" alt="ホワイトペーパー：リード管理 2027" style="display:block;width:100%;'
        'max-width:536px;height:auto;border:0;border-radius:8px"></a>\n'
        f'<h1 style="{HEADING};font-size:26px;margin:20px 0 12px">'
        "新ホワイトペーパー「リード管理 2027」を公開しました</h1>\n"
        f'<p style="{TEXT};margin:0 0 8px">展示会、Web、紹介。入口が増えるほど、リードの情報は'
        "散らばります。本資料では、国内 BtoB 企業 120 社への調査をもとに、リードを取りこぼさない"
        "ための体制づくりと、明日から使えるチェックリストをご紹介します。</p>\n"
        f'<p style="{TEXT};margin:0 0 20px;color:#4b5563">Trade shows, the web, referrals: the '
        "more ways in, the more scattered your leads. Based on a survey of 120 B2B companies "
        "in Japan, this paper shows how teams stop losing leads, with a checklist you can use "
        "tomorrow.</p>\n"
        '<table role="presentation" cellpadding="0" cellspacing="0" border="0" '
        'class="center-on-narrow"><tr><td class="button-td" style="border-radius:6px;'
        f'background-color:#0f766e"><a class="button-a" href="{HERO_URL}" style="{BUTTON}">'
        "無料でダウンロード / Download free</a></td></tr></table>"
    )


def _article(title: str, url: str, japanese: str, english: str, number: int) -> str:
    return _row(
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="border:1px solid #e5e7eb;border-radius:8px"><tr>'
        '<td class="stack-column" width="180" valign="top" style="padding:16px">'
        f'<a href="{url}"><img src="{SITE}/img/mail/2026-11/article-{number}.jpg" width="160" '
        f'height="120" alt="{title}" style="display:block;width:100%;max-width:160px;'
        'height:auto;border:0;border-radius:4px"></a></td>'
        '<td class="stack-column" valign="top" style="padding:16px 16px 16px 0">'
        f'<h2 style="{HEADING};font-size:17px"><a href="{url}" style="color:#111827;'
        f'text-decoration:none">{title}</a></h2>\n'
        f'<p style="{TEXT};font-size:14px;margin:0 0 8px">{japanese}</p>\n'
        f'<p style="{TEXT};font-size:14px;margin:0 0 8px;color:#4b5563">{english}</p>\n'
        f'<a href="{url}" style="{LINK};{FONT};font-size:14px">続きを読む / Read more →</a>'
        "</td></tr></table>"
    )


def _recommendations() -> str:
    # The journey passes what this lead was shown interest in; the template loops over it.
    return (
        _row(
            f'<h2 style="{HEADING}">{{{{ lead.name | default("あなた") }}}} 様へのおすすめ / '
            "Picked for you</h2>",
            style="padding:8px 32px 0 32px",
        )
        + "{% for item in journey.recommendations %}\n"
        + _row(
            '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
            'border="0"><tr><td width="24" valign="top" style="'
            f'{TEXT};color:#0f766e;font-weight:bold">{{{{ loop.index }}}}.</td><td valign="top">'
            f'<a href="{{{{ item.url }}}}" style="{LINK};{FONT};font-size:15px;font-weight:bold">'
            "{{ item.title }}</a>"
            f'<p style="{SMALL};margin:4px 0 0">{{{{ item.summary }}}}'
            "{% if item.minutes %} ・ {{ item.minutes }} 分で読めます{% endif %}</p>"
            "</td></tr></table>",
            style="padding:0 32px 12px 32px",
        )
        + "{% endfor %}\n"
    )


def _events() -> str:
    rows = "\n".join(
        '<tr><td style="padding:12px 0;border-top:1px solid #e5e7eb">'
        f'<p style="{SMALL};margin:0;color:#0f766e;font-weight:bold">{when}</p>'
        f'<p style="{TEXT};margin:2px 0;font-weight:bold">{japanese}</p>'
        f'<p style="{SMALL};margin:0 0 6px">{english}</p>'
        f'<a href="{url}" style="{LINK};{FONT};font-size:14px">'
        "詳細・お申し込み / Details and registration</a></td></tr>"
        for when, japanese, english, url in EVENTS
    )
    return _row(
        f'<h2 style="{HEADING}">イベント / Events</h2>\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">\n'
        f"{rows}\n</table>"
    )


def _cases() -> str:
    cells = "\n".join(
        '<td class="stack-column" width="50%" valign="top" style="padding:0 8px">'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="background-color:#f0fdfa;border-radius:8px"><tr><td style="padding:16px">'
        f'<p style="{SMALL};margin:0">{company}</p>'
        f'<p style="{TEXT};margin:4px 0;font-weight:bold;font-size:16px">{japanese}</p>'
        f'<p style="{SMALL};margin:0 0 8px">{english}</p>'
        f'<a href="{url}" style="{LINK};{FONT};font-size:14px">事例を読む / Read the story</a>'
        "</td></tr></table></td>"
        for company, japanese, english, url in CASES
    )
    return _row(
        f'<h2 style="{HEADING}">導入事例 / Customer stories</h2>\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">'
        f"<tr>\n{cells}\n</tr></table>"
    )


def _updates() -> str:
    items = "\n".join(
        f'<li style="{TEXT};font-size:14px;margin:0 0 6px"><a href="{url}" style="{LINK}">'
        f"{label}</a></li>"
        for label, url in UPDATES
    )
    return _row(
        f'<h2 style="{HEADING}">製品アップデート / Product updates</h2>\n'
        f'<ul style="margin:0;padding:0 0 0 20px">\n{items}\n</ul>'
    )


def _owner_note() -> str:
    return _row(
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="background-color:#f9fafb;border-radius:8px"><tr><td style="padding:16px">'
        f'<p style="{TEXT};font-size:14px;margin:0">'
        "ご不明な点は、担当の {{ owner.name | default('カスタマーサクセス') }} までお気軽に"
        "ご連絡ください。このメールに返信していただければ、担当者に直接届きます。</p>"
        f'<p style="{SMALL};margin:6px 0 0">Questions? Just reply to this mail and it reaches '
        "{{ owner.name | default('our customer success team') }} directly.</p>"
        "</td></tr></table>"
    )


def _footer() -> str:
    social = "\n".join(
        f'<td style="padding:0 6px"><a href="{url}"><img src="{SITE}/img/mail/social-'
        f'{label.lower()}.png" width="24" height="24" alt="{label}" style="display:block;'
        'border:0"></a></td>'
        for label, url in SOCIAL
    )
    links = " ｜ ".join(
        f'<a href="{url}" style="{LINK};color:#6b7280">{label}</a>' for label, url in FOOTER
    )
    return _row(
        '<table role="presentation" cellpadding="0" cellspacing="0" border="0" align="center">'
        f"<tr>\n{social}\n</tr></table>\n"
        f'<p style="{SMALL};text-align:center;margin:16px 0 4px">{links}</p>\n'
        f'<p style="{SMALL};text-align:center;margin:0 0 4px">株式会社 Example　〒100-0004 '
        "東京都千代田区大手町 1-2-3 Example ビル 12F / Example KK, Otemachi, Tokyo</p>\n"
        f'<p style="{SMALL};text-align:center;margin:0 0 4px">'
        "このメールは {{ lead.email }} 宛に、"
        "Example からの情報提供にご同意いただいた方へお送りしています。 This mail went to "
        "{{ lead.email }} because you asked to hear from Example.</p>\n"
        f'<p style="{SMALL};text-align:center;margin:0"><a href="{{{{ unsubscribe_url }}}}" '
        f'style="{LINK};color:#6b7280">配信停止・配信設定の変更 / Unsubscribe or change '
        "preferences</a></p>",
        style="padding:24px 32px 32px 32px;background-color:#f9fafb;border-top:1px solid #e5e7eb",
    )


def newsletter_html() -> str:
    """The template's HTML source (Jinja2)."""
    sections = [
        _header(),
        _greeting(),
        _hero(),
        _row(
            f'<h2 style="{HEADING};margin-top:8px">今月の記事 / This month</h2>',
            "padding:8px 32px 0",
        ),
        *(_article(*article, number) for number, article in enumerate(ARTICLES, 1)),
        _recommendations(),
        _events(),
        _cases(),
        _updates(),
        _owner_note(),
        _footer(),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="ja" xmlns="http://www.w3.org/1999/xhtml">\n<head>\n'
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta http-equiv="X-UA-Compatible" content="IE=edge">\n'
        '<meta name="x-apple-disable-message-reformatting">\n'
        '<meta name="color-scheme" content="light dark">\n'
        "<title>Example ニュースletter 2026年11月号</title>\n"
        f"{STYLE_BLOCK}\n</head>\n"
        '<body style="margin:0;padding:0;background-color:#f3f4f6" class="dark-bg">\n'
        '<div style="display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;'
        'opacity:0;overflow:hidden;mso-hide:all">新ホワイトペーパー公開、年末ウェビナー、'
        "導入事例をお届けします / A new white paper, webinars and customer stories</div>\n"
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="background-color:#f3f4f6"><tr><td align="center" style="padding:24px 8px">\n'
        '<table role="presentation" class="container" width="600" cellpadding="0" '
        'cellspacing="0" border="0" style="width:600px;max-width:600px;background-color:#ffffff;'
        'border-radius:8px">\n'
        + "".join(sections)
        + "</table>\n</td></tr></table>\n</body>\n</html>\n"
    )


SUBJECT = "{{ lead.name | default('ご担当者') }} 様：新ホワイトペーパーと年末ウェビナーのご案内"

RECOMMENDATIONS: list[dict[str, Any]] = [
    {
        "title": "展示会リード、三日以内のフォローが鍵 / Follow up within three days",
        "url": f"{SITE}/blog/three-day-follow-up",
        "summary": "来場者リストを放置しないための段取り。",
        "minutes": 5,
    },
    {
        "title": "名刺データと Web 行動をつなぐ / Cards meet clicks",
        "url": f"{SITE}/blog/cards-meet-clicks",
        "summary": "名刺交換した相手がサイトで何を見たか。",
        "minutes": 7,
    },
    {
        "title": "料金プラン比較表 / Plans compared",
        "url": f"{SITE}/pricing/compare",
        "summary": "チーム規模ごとのおすすめプラン。",
        "minutes": None,
    },
]
JOURNEY: dict[str, Any] = {"name": "whitepaper-follow-up", "recommendations": RECOMMENDATIONS}
