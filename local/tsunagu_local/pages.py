"""The local runtime's own pages: index, demo form, thank-you page and the sent-mail viewer."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from importlib.resources import files
from string import Template

from werkzeug.wrappers import Request, Response

from tsunagu.clock import Clock
from tsunagu.forms.model import FormDefinition
from tsunagu_local.mailbox import SentMail
from tsunagu_local.receiving import Receiving, reply_to

_STYLE = (
    "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
    "padding:0 1rem;color:#1f2933}table{border-collapse:collapse}td,th{text-align:left;"
    "padding:.2rem .6rem;vertical-align:top}article{border:1px solid #cbd2d9;border-radius:6px;"
    "margin:1rem 0;padding:1rem}iframe{width:100%;height:28rem;border:1px solid #e4e7eb}"
    "pre{white-space:pre-wrap;word-break:break-all}td{word-break:break-all}</style>"
)


def _page(title: str, body: str) -> Response:
    document = (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"{_STYLE}<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return Response(document, content_type="text/html; charset=utf-8")


def index_page(api_url: str) -> Callable[[Request], Response]:
    def render(_: Request) -> Response:
        return _page(
            "Tsunagu (local)",
            "<ul>"
            "<li><a href='/_local/demo'>Demo form</a></li>"
            "<li><a href='/_local/mail'>Sent-mail viewer</a></li>"
            f"<li>API: <code>{html.escape(api_url)}</code></li>"
            "</ul>",
        )

    return render


def demo_page(form: FormDefinition) -> Callable[[Request], Response]:
    template = Template(files("tsunagu_local").joinpath("pages/demo.html").read_text("utf-8"))
    consent_text = form.consent.text if form.consent else ""
    document = template.substitute(consent_text=html.escape(consent_text))

    def render(_: Request) -> Response:
        return Response(document, content_type="text/html; charset=utf-8")

    return render


_CONTENT = {
    "pricing": ("Pricing", "Plans for teams of every size. Talk to us about a volume discount."),
    "case-study": ("Case study: Example KK", "How Example KK doubled qualified leads in a year."),
}


def content_page(name: str) -> Callable[[Request], Response]:
    """A page of the demo site: carries the snippet, so visiting it is tracked. Pages the
    shipped journeys' mails link to, beyond the two above, get a plain page of their own."""
    default = (name.replace("-", " ").replace("/", ": ").capitalize(), "A page of the demo site.")
    title, text = _CONTENT.get(name, default)
    document = (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>"
        '<script async src="/t.js" data-site="demo"></script>'
        f"{_STYLE}<body><nav><a href='/_local/demo/pricing'>Pricing</a> · "
        "<a href='/_local/demo/case-study'>Case study</a> · "
        "<a href='/_local/demo'>White paper</a></nav>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
        "<p><button onclick=\"tsunagu('track','pdf_download',{file:'brochure.pdf'})\">"
        "Download the brochure (PDF)</button></p></body></html>"
    )

    def render(_: Request) -> Response:
        return Response(document, content_type="text/html; charset=utf-8")

    return render


def no_content(_: Request) -> Response:
    """For /favicon.ico: browsers ask on every page; a 404 there is console noise."""
    return Response(status=204)


def thanks_page(_: Request) -> Response:
    return _page(
        "Thank you",
        "<p>Your request was received. <a href='/_local/demo'>Back to the demo form</a></p>",
    )


def _reply_form(mail: SentMail, reply_domains: Sequence[str]) -> str:
    """Answer the mail as its recipient would, when it asks for replies at a domain the
    template's receipt rule receives (SES receiving, tsunagu_local.receiving)."""
    answer_to = next((v for k, v in mail.headers if k.lower() == "reply-to"), "")
    domain = answer_to.rpartition("@")[2].rstrip(">").casefold()
    if domain not in {d.casefold() for d in reply_domains}:
        return ""
    return (
        "<details><summary>Reply as the recipient</summary>"
        "<form method='post' action='/_local/mail/reply'>"
        f"<input type='hidden' name='message_id' value='{html.escape(mail.message_id)}'>"
        f"<p><label>Reply to <code>{html.escape(answer_to)}</code><br>"
        "<textarea name='body' rows='4' cols='60' required>詳しく聞きたいです。</textarea>"
        "</label></p><p><label><input type='checkbox' name='automatic' value='on'> "
        "Automatic reply (out of office: Auto-Submitted, 自動返信)</label></p>"
        "<p><button type='submit'>Send the reply</button></p></form></details>"
    )


def _mail_html(mail: SentMail, reply_domains: Sequence[str] = ()) -> str:
    headers = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in mail.headers
    )
    parts = f"<table>{headers}</table>"
    if mail.text is not None:
        parts += f"<h3>Text</h3><pre>{html.escape(mail.text)}</pre>"
    if mail.html is not None:
        # Rendered in a sandbox: no scripts, no access to this page.
        parts += (
            "<h3>HTML</h3><iframe sandbox='allow-popups allow-popups-to-escape-sandbox' "
            f'srcdoc="{html.escape(mail.html, quote=True)}"></iframe>'
        )
    sent = (
        f"<p>Sent {html.escape(mail.sent_at)} (UTC, the runtime's clock)</p>"
        if mail.sent_at
        else ""
    )
    heading = f"<h2>{html.escape(mail.subject)}</h2>{sent}"
    form = _reply_form(mail, reply_domains)
    return f"<article id='{html.escape(mail.message_id)}'>{heading}{form}{parts}</article>"


def mail_reply(
    list_mail: Callable[[], list[SentMail]], receiving: Receiving, clock: Clock
) -> Callable[[Request], Response]:
    """POST /_local/mail/reply: the reply form's reply, handed to the template's receipt rule
    as SES receiving would hand it (stored in the rule's bucket, its function invoked)."""

    def receive(request: Request) -> Response:
        if request.method != "POST":
            return Response("POST the reply form", status=405, headers={"allow": "POST"})
        wanted = request.form.get("message_id", "")
        mail = next((m for m in list_mail() if m.message_id == wanted), None)
        body = request.form.get("body", "").strip()
        if mail is None or not body or len(body) > 20_000:
            return _page("Not replied", "<p>No such mail, or an empty reply.</p>")
        made = reply_to(mail, body, automatic="automatic" in request.form, now=clock.now())
        if made is None:
            return _page("Not replied", "<p>This mail names no reply address.</p>")
        raw, address = made
        results = receiving.deliver(raw, [address])
        outcomes = [
            str(o)
            for result in results
            for o in (result.get("outcomes") if isinstance(result, dict) else None)
            or [json.dumps(result, ensure_ascii=False)]
        ]
        listed = "".join(f"<li>{html.escape(o)}</li>" for o in outcomes) or "<li>no rule</li>"
        return _page(
            "Reply received",
            f"<ul>{listed}</ul><p><a href='/_local/mail'>Back to the sent mail</a></p>",
        )

    return receive


def mail_viewer(
    list_mail: Callable[[], list[SentMail]], reply_domains: Sequence[str] = ()
) -> Callable[[Request], Response]:
    def render(request: Request) -> Response:
        mails = list_mail()
        if request.args.get("format") == "json":
            return Response(
                json.dumps([m.__dict__ for m in mails], ensure_ascii=False),
                content_type="application/json",
            )
        body = "".join(_mail_html(m, reply_domains) for m in mails)
        body = body or "<p>No mail has been sent yet.</p>"
        return _page(f"Sent mail ({len(mails)})", body)

    return render
