"""The outbound CRM push (tsunagu.store.crm_push) against a CRM on 127.0.0.1, answering as told."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

from tsunagu.qualification.handoff import PushFailed
from tsunagu.store.crm_push import post_signed

KEY = b"k" * 32
BODY = b'{"type": "lead.mql", "lead_id": "lead_1"}'
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


class _Crm(BaseHTTPRequestHandler):
    """/moved answers the POST with the status in its query and a Location; anything else 200.
    Every request is kept, so a redirect that was followed (as a body-less GET) shows."""

    received: ClassVar[list[tuple[str, str]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        _Crm.received.append(("POST", self.path))
        if self.path.startswith("/moved"):
            self.send_response(int(self.path.rsplit("=", 1)[1]))
            self.send_header("location", "/hook/")
        else:
            self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        _Crm.received.append(("GET", self.path))
        self.send_response(200)  # a landing page, a login page ...
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def crm() -> Iterator[str]:
    _Crm.received = []
    server = HTTPServer(("127.0.0.1", 0), _Crm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_2xx_is_a_delivery(crm: str) -> None:
    assert post_signed(crm + "/hook", BODY, KEY, NOW) == 200
    assert _Crm.received == [("POST", "/hook")]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failed_push_naming_the_location_and_is_not_followed(
    crm: str, status: int
) -> None:
    # Given a CRM whose webhook moved (or http -> https): following it, urllib would resend the
    # POST as a body-less GET, and that GET's 200 would read as a delivery
    with pytest.raises(PushFailed, match=rf"{status}.*'/hook/'"):
        post_signed(f"{crm}/moved?status={status}", BODY, KEY, NOW)
    # Then nothing but the one POST was sent: the lead is retried, then parked, never lost
    assert _Crm.received == [("POST", f"/moved?status={status}")]
