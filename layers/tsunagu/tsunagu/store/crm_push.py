"""The outbound webhook: POST a lead to the CRM, signed like the inbound one."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import datetime

from tsunagu.qualification.crm import signature_header
from tsunagu.qualification.handoff import PushFailed

TIMEOUT_SECONDS = 5.0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is never followed: urllib would resend the POST as a body-less GET, whose 200
    would read as a delivery although the CRM never received the lead."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post_signed(url: str, body: bytes, key: bytes, now: datetime) -> int:
    """The CRM's status code; PushFailed on anything but 2xx (a 3xx included: the push is not
    followed to the Location, which the error names), or no answer in time."""
    if not url.startswith(("https://", "http://")):
        raise PushFailed(f"the CRM webhook URL is not http(s): {url!r}")
    timestamp = str(int(now.timestamp()))
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=body,
        method="POST",
        headers={
            "content-type": "application/json",
            "x-tsunagu-timestamp": timestamp,
            "x-tsunagu-signature": signature_header(key, timestamp, body),
            "user-agent": "tsunagu-crm-push/1",
        },
    )
    try:
        with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
            status: int = response.status
    except urllib.error.HTTPError as error:
        if 300 <= error.code < 400:
            location = error.headers.get("location", "")
            raise PushFailed(
                f"the CRM answered {error.code}, a redirect to {location!r} that is not"
                " followed: set the CRM webhook URL to where it points"
            ) from None
        raise PushFailed(f"the CRM answered {error.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise PushFailed(f"the CRM did not answer: {error}") from None
    if not 200 <= status < 300:
        raise PushFailed(f"the CRM answered {status}")
    return status
