"""Qualification on the embedded runtime (``make up``, started as tests/e2e does): what a lead
does over HTTP and the CLI, and where to look afterwards - the runtime's moto (tables, Step
Functions, secrets) and the sent-mail viewer.

The runtimes these tests start run on **virtual time** (``--virtual-time``): simulated time
stands still while any work is in flight (a Lambda invocation, a Step Functions execution between
its waits, a stream record not yet delivered) and moves only when a test advances it
(:meth:`Embedded.advance`). A test never sleeps or polls on the wall clock: it waits for the work
to settle (:meth:`Embedded.settle`), then looks, and it asserts the simulated instants the product
recorded."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.e2e.conftest import RunningTsunagu
from tests.qualification.conftest import CHROME, plain
from tests.support import runtime as runtime_support
from tsunagu.clock import clock_from, parse_instant
from tsunagu.qualification.crm import signature_header

REGION = "ap-northeast-1"
STACK = "tsunagu-local"
CLOCK_START = "2026-12-01T01:00:00Z"
"""Tuesday 10:00 in Tokyo: the welcome mail goes at once (no quiet hours, no holiday)."""
VIRTUAL_TIME = ("--virtual-time", "--clock-start", CLOCK_START)
"""The options that start a runtime on virtual time at CLOCK_START."""
CLOCK_TIMEOUT = 180.0
"""Real seconds the runtime may take to settle its work after a move of the clock: a bound for a
broken run, never a measure of the product (simulated instants do not depend on it)."""


@dataclass
class Embedded:
    tsunagu: RunningTsunagu

    # ------------------------------------------------------------------ the runtime
    @property
    def environment(self) -> dict[str, str]:
        state = json.loads((self.tsunagu.workdir / ".tsunagu" / "runtime.json").read_text())
        environment: dict[str, str] = state["environment"]
        return environment

    def client(self, service: str) -> Any:
        return runtime_support.local_client(
            service,
            region=REGION,
            endpoint_url=self.environment["AWS_ENDPOINT_URL"],
            max_attempts=2,
        )

    def now(self) -> datetime:
        """The runtime's clock, as its functions read it: in virtual time over HTTP
        (``TSUNAGU_CLOCK_URL``), else wall time x scale (start, epoch and scale)."""
        env = self.environment
        epoch = env.get("TSUNAGU_CLOCK_EPOCH")
        return clock_from(
            env.get("TSUNAGU_CLOCK_START"),
            float(epoch) if epoch else None,
            float(env.get("TSUNAGU_TIME_SCALE", "1")),
            env.get("TSUNAGU_CLOCK_URL"),
        ).now()

    def advance(self, **body: Any) -> dict[str, Any]:
        """``POST /_local/clock`` with ``body`` (one of ``to``, ``by``, ``until_idle``,
        ``settle``): returns the clock's state once time got there and all work has settled,
        everything due on the way having happened at its own simulated instant."""
        return runtime_support.move_clock(self.tsunagu.api_url, body, timeout=CLOCK_TIMEOUT)

    def settle(self) -> datetime:
        """Wait until the work in flight has finished (every stream record routed, every
        execution waiting or ended), time standing still; the clock's instant."""
        return parse_instant(self.advance(settle=True)["now"])

    def cli(self, *args: str) -> str:
        done = self.tsunagu.cli(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    # ------------------------------------------------------------------ what a lead does
    @staticmethod
    def visitor(email: str) -> str:
        return "v_" + hashlib.sha256(email.encode()).hexdigest()[:16]

    def sign_up(self, email: str, name: str) -> str:
        """The demo form, consent given, from the lead's browser: its lead id."""
        status, body = self.tsunagu.post_json(
            "/forms/demo/submissions",
            {
                "email": email,
                "name": name,
                "company": "Example KK",
                "consent": True,
                "visitor_id": self.visitor(email),
            },
        )
        assert status == 201, body
        lead_id: str = body["lead_id"]
        return lead_id

    def view_pages(self, email: str, *paths: str) -> None:
        """Page views the snippet on the demo site sends for the lead's browser."""
        payload = {
            "site_id": "demo",
            "events": [
                {
                    "type": "page_view",
                    "visitor_id": self.visitor(email),
                    "url": f"{self.tsunagu.api_url}{path}",
                    "title": path,
                }
                for path in paths
            ],
        }
        status, _, body = self.tsunagu.request(
            "POST",
            "/t/events",
            json.dumps(payload).encode(),
            {
                "content-type": "text/plain;charset=UTF-8",
                "origin": self.tsunagu.api_url,
                "user-agent": CHROME,
            },
        )
        assert status == 200, body
        assert json.loads(body)["accepted"] == len(paths), body

    def open_mail(self, email: str, message_id: str, times: int = 1) -> None:
        """The lead opens a mail sent an hour ago (its signed pixel), ``times`` times."""
        links = json.loads(
            self.cli(
                "tracking",
                "links",
                email,
                "--url",
                "https://www.example.com/pricing",
                "--message",
                message_id,
                "--api",
                self.tsunagu.api_url,
                "--sent-seconds-ago",
                "3600",
            )
        )
        pixel = links["open_pixel"].removeprefix(self.tsunagu.api_url)
        for _ in range(times):
            status, _, body = self.tsunagu.request("GET", pixel, headers={"user-agent": CHROME})
            assert status == 200 and body.startswith(b"GIF89a")

    def record(self, email: str, kind: str) -> None:
        assert f"{kind} recorded" in self.cli("leads", "record", email, kind)

    def crm_post(self, fields: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST /crm/leads signed as the CRM signs it: real time, the runtime's key."""
        secret = self.client("secretsmanager").get_secret_value(
            SecretId=self.environment["TSUNAGU_CRM_SECRET_ARN"]
        )
        key = str(json.loads(secret["SecretString"])["signing_key"]).encode()
        body = json.dumps(fields, ensure_ascii=False).encode()
        timestamp = str(int(time.time()))  # a CRM signs on real time
        status, _, answer = self.tsunagu.request(
            "POST",
            "/crm/leads",
            body,
            {
                "content-type": "application/json",
                "x-tsunagu-timestamp": timestamp,
                "x-tsunagu-signature": signature_header(key, timestamp, body),
            },
        )
        parsed: dict[str, Any] = json.loads(answer)
        return status, parsed

    # ------------------------------------------------------------------ what is stored
    def lead(self, lead_id: str) -> dict[str, Any]:
        item = self.client("dynamodb").get_item(
            TableName=self.environment["TSUNAGU_LEADS_TABLE"],
            Key={"lead_id": {"S": lead_id}},
            ConsistentRead=True,
        )["Item"]
        return plain(item)

    def score(self, lead_id: str) -> Decimal | None:
        value: Decimal | None = self.lead(lead_id).get("score")
        return value

    def settled_score(self, lead_id: str) -> Decimal | None:
        """The lead's score once everything written so far has been routed."""
        self.settle()
        return self.score(lead_id)

    def awards(self, lead_id: str) -> list[dict[str, Any]]:
        items = self.client("dynamodb").query(
            TableName=self.environment["TSUNAGU_QUALIFICATION_TABLE"],
            KeyConditionExpression="pk = :pk AND begins_with(sk, :award)",
            ExpressionAttributeValues={":pk": {"S": f"lead#{lead_id}"}, ":award": {"S": "award#"}},
            ConsistentRead=True,
        )["Items"]
        return [json.loads(plain(item)["data"]) for item in items]

    def executions(self, machine: str, lead_id: str | None = None) -> list[dict[str, Any]]:
        """Executions of ``tsunagu-local-<machine>``, described (with input), for one lead."""
        stepfunctions = self.client("stepfunctions")
        arn = f"arn:aws:states:{REGION}:123456789012:stateMachine:{STACK}-{machine}"
        listed = stepfunctions.list_executions(stateMachineArn=arn)["executions"]
        described = [
            stepfunctions.describe_execution(executionArn=e["executionArn"]) for e in listed
        ]
        return [
            d for d in described if lead_id is None or json.loads(d["input"])["lead_id"] == lead_id
        ]

    def finished(self, machine: str, lead_id: str) -> dict[str, Any]:
        """The lead's one execution of ``machine``, which has ended by the time the work in
        flight has settled (one that still waits for simulated time fails the test)."""
        self.settle()
        (found,) = self.executions(machine, lead_id)
        assert found["status"] != "RUNNING", (found, self.now())
        return found

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The execution's history, oldest first (stamped with the runtime's clock)."""
        return runtime_support.execution_history(self.client("stepfunctions"), execution_arn)

    def mails(self) -> list[dict[str, Any]]:
        """The sent-mail viewer's list (``/_local/mail?format=json``), newest first."""
        status, _, body = self.tsunagu.request("GET", "/_local/mail?format=json")
        assert status == 200
        mails: list[dict[str, Any]] = json.loads(body)
        return mails

    def mails_to(self, address: str) -> list[dict[str, Any]]:
        return [m for m in self.mails() if address in m["recipients"]]
