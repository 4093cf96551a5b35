"""A CRM's inbound webhook on 127.0.0.1, for the tests of what Tsunagu pushes to it (the
hand-off's MQL push, a journey's webhook node): it keeps every request and answers as told."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FLAKY_FAILURES = 2


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def sent_at(self) -> datetime:
        """When the runtime pushed it, on its clock (the signed timestamp, whole seconds)."""
        return datetime.fromtimestamp(int(self.headers["x-tsunagu-timestamp"]), UTC)


@dataclass
class Crm:
    """A CRM's inbound webhook: 500 for the first FLAKY_FAILURES pushes of a lead whose address
    starts with "flaky", 500 always for "down", 200 otherwise."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: bytes) -> int:
        email = str(json.loads(body).get("email", ""))
        earlier = sum(1 for r in self.received if r.payload.get("email") == email)
        if email.startswith("down") or (email.startswith("flaky") and earlier < FLAKY_FAILURES):
            return 500
        return 200

    def of(self, email: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.payload.get("email") == email]


def serve(crm: Crm) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with crm.lock:
                status = crm.answer(body)
                crm.received.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body, status)
                )
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}' if status == 200 else b'{"error": "try later"}')

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, name="crm", daemon=True).start()
    crm.url = f"http://127.0.0.1:{server.server_port}/crm/inbound"
    return server
