"""Fixtures shared by every suite.

Tests never reach AWS: fake credentials are set for the whole session, and every AWS call goes
either to moto in-process (``aws`` fixture) or to the local runtime on 127.0.0.1.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from tests.support.crm import Crm, serve

# The benchmark report's and the scheduling hooks must live where the xdist controller, which
# collects no tests, loads them too.
pytest_plugins = ["tests.support.bench_report", "tests.support.scheduling"]

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
REGION = "ap-northeast-1"
DEMO_SITE = "https://www.example.com"

# Before any test module imports boto3: nothing here may find real credentials.
for _variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_variable, None)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        # As template.yaml's Globals give every function: Powertools' Metrics takes its namespace
        # when tsunagu.observability is first imported (at collection, in this environment), and
        # a flush without one fails the handler ("Must contain a metric namespace").
        "POWERTOOLS_METRICS_NAMESPACE": "Tsunagu",
        "TZ": "UTC",
    }
)


# Property tests run without hypothesis' 200 ms deadline per example: on a loaded machine an
# example that took longer failed the test (test_the_explanation_always_sums_to_the_score did),
# which says something of the machine, nothing of the code.
hypothesis_settings.register_profile("tsunagu", deadline=None)
hypothesis_settings.load_profile("tsunagu")


def moto_table(name: str) -> Any:
    """moto's own table ``name`` in the ``aws`` fixture's account and region (its items as moto
    holds them), for tests that look beneath the API."""
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends["123456789012"][REGION].tables[name]


@functools.cache
def moto_client(service: str, region: str = REGION) -> Any:
    """A botocore client for the in-process moto of the ``aws`` fixture, made once per process:
    making one costs tens of milliseconds, and tests asked for hundreds. moto answers whichever
    client calls while a mock is active (its handler is on every client), and each test's mock
    starts from empty backends, so sharing the client shares no data."""
    import boto3

    make_client: Any = boto3.client  # typed per service literal; ours is a plain str
    return make_client(service, region_name=region)


@dataclass
class AwsStack:
    """The template's tables created in moto (in-process), and the environment functions get."""

    environment: dict[str, str]
    tables: dict[str, str]
    stream_marks: dict[str, int] = field(default_factory=dict)
    """Stream ARN -> the last sequence number handed to its consumer (tests.support.leads)."""

    def function(self, folder: str) -> Any:
        """The handler in functions/<folder>, loaded and invoked as the local runtime does."""
        from tsunagu_local.clocks import ScaledRuntimeClock
        from tsunagu_local.lambdas import LocalFunction

        return LocalFunction(
            logical_id=folder,
            name=f"test-{folder}",
            arn=f"arn:aws:lambda:{REGION}:123456789012:function:test-{folder}",
            code_dir=ROOT / "functions" / folder,
            handler="app.handler",
            environment=self.environment,
            timeout=10,
            memory=512,
            # The wall clock, as the handlers' own clock is here (scale 1 from now).
            clock=ScaledRuntimeClock(datetime.now(UTC), time.time()),
        )

    def settings(self) -> Any:
        from tsunagu.settings import Settings

        return Settings.from_environ(self.environment)

    def seed_demo_form(self) -> None:
        """The demo form of the sample events: registered for https://www.example.com, with a
        consent box and a thank-you page."""
        from tsunagu import services
        from tsunagu.forms.model import ConsentSpec, FormDefinition, FormField

        settings = self.settings()
        services.form_repository(settings).put(
            FormDefinition(
                form_id="demo",
                name="White paper",
                fields=[
                    FormField(name="email", type="email", required=True),
                    FormField(name="name", max_length=100),
                    FormField(name="company", max_length=200),
                    FormField(name="consent", type="checkbox"),
                ],
                allowed_origins=[DEMO_SITE],
                consent=ConsentSpec(text="Send me product news.", version="2026-11"),
                thank_you_url=f"{DEMO_SITE}/thanks",
            ),
            services.clock(settings),
        )


@pytest.fixture(autouse=True)
def _no_cached_forms() -> Iterator[None]:
    from tsunagu.store.mail import forget_cached_templates
    from tsunagu.store.segments import forget_cached_segments
    from tsunagu.store.stored_forms import forget_cached_forms
    from tsunagu.store.tracking import forget_cached_sites

    forgetters = (
        forget_cached_forms,
        forget_cached_sites,
        forget_cached_templates,
        forget_cached_segments,
    )
    for forget in forgetters:
        forget()
    yield
    for forget in forgetters:
        forget()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStack]:
    """moto in-process, with every DynamoDB table of template.yaml created from its definition;
    its transactions behave as the local runtime's do (tokens honoured, rolled back in place),
    and it measures an item's size and parses a condition once, reads a query's partition only
    and keeps no item nothing uses, as the runtime's does (moto's own query sorted the whole
    table, and its register kept every item it ever made: a large import's benchmark measured
    moto, not the import - its cost per row grew with the list)."""
    from moto import mock_aws

    from tsunagu_local.conditions import parse_conditions_once
    from tsunagu_local.fast_reads import serialize_reads_quickly
    from tsunagu_local.index_order import order_index_queries_cheaply
    from tsunagu_local.intrinsics import Resolver
    from tsunagu_local.item_size import check_item_size_once
    from tsunagu_local.model_tracking import track_models_weakly
    from tsunagu_local.secrets import create_secret, generated_value
    from tsunagu_local.tables import create_table
    from tsunagu_local.template import load_stack
    from tsunagu_local.transactions import (
        honour_client_request_tokens,
        isolate_reads,
        roll_back_transactions_in_place,
    )

    stack = load_stack(TEMPLATE, {"Stage": "test"}, REGION)
    resolver = Resolver(parameters=stack.parameters, conditions=stack.conditions)
    track_models_weakly()
    roll_back_transactions_in_place()
    check_item_size_once()
    parse_conditions_once()
    order_index_queries_cheaply()
    isolate_reads()
    serialize_reads_quickly()
    honour_client_request_tokens()
    # boto3's default session outlives the test (moto would replace it at every start): a new
    # session reads every service model again, and that was a third of an integration test.
    # Its credentials are the fake ones this fixture always has, so nothing leaks between tests.
    # moto's config is the process's: a local runtime started in this process (the tests of
    # the runtime) turns on its running of state machines, in threads, for every later mock;
    # here executions only start and stop as asked, whatever ran before on this worker.
    config: Any = {
        "core": {"reset_boto3_session": False},
        "stepfunctions": {"execute_state_machine": False},
    }
    with mock_aws(config=config):
        dynamodb = moto_client("dynamodb")
        tables = {}
        for logical_id, resource in stack.of_type("AWS::DynamoDB::Table").items():
            name = f"tsunagu-test-{logical_id}"
            create_table(dynamodb, name, resolver.resolve(resource["Properties"]))
            tables[logical_id] = name
            resolver.refs[logical_id] = name
        secrets = moto_client("secretsmanager")
        for logical_id, resource in stack.of_type("AWS::SecretsManager::Secret").items():
            value = generated_value(resolver.resolve(resource["Properties"]))
            resolver.refs[logical_id] = create_secret(secrets, f"tsunagu-test-{logical_id}", value)
        sesv2 = moto_client("sesv2")
        for logical_id in stack.of_type("AWS::SES::ConfigurationSet"):
            name = f"tsunagu-test-{logical_id}"
            sesv2.create_configuration_set(ConfigurationSetName=name)
            resolver.refs[logical_id] = name
        s3 = moto_client("s3")
        for logical_id in stack.of_type("AWS::S3::Bucket"):
            name = f"tsunagu-test-{logical_id.lower()}"
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
            resolver.refs[logical_id] = name
            resolver.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
        # SES refuses unverified senders: the template's sender domain, as at deploy time.
        ses = moto_client("ses")
        ses.verify_domain_identity(Domain=stack.parameters["SenderDomain"])
        # The template's Globals, as a function with none of its own variables has them.
        function = stack.of_type("AWS::Lambda::Function")["CaptureFormFunction"]
        variables = function["Properties"]["Environment"]["Variables"]
        environment = {k: str(v) for k, v in resolver.resolve(variables).items()}
        environment["AWS_REGION"] = REGION
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        yield AwsStack(environment, tables)


def load_event(function: str, case: str) -> dict[str, Any]:
    """A sample event from events/<function>/<case>.json (`sam local invoke` uses them too)."""
    event: dict[str, Any] = json.loads((EVENTS / function / f"{case}.json").read_text("utf-8"))
    return event


@pytest.fixture(scope="module")
def crm() -> Iterator[Crm]:
    """A CRM's inbound webhook on 127.0.0.1 for the module's tests (tests.support.crm)."""
    found = Crm()
    server = serve(found)
    yield found
    server.shutdown()
