"""Brings the template's stack up on an in-process moto server, and takes it down again."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from threading import Thread
from typing import Any

import boto3
from botocore.config import Config
from werkzeug.serving import BaseWSGIServer, make_server

from tsunagu.clock import isoformat, register_in_process
from tsunagu.journeys.business_time import business_calendar
from tsunagu.settings import Settings, SettingsError
from tsunagu_local import console, faults, firehose
from tsunagu_local.clock_api import clock_page
from tsunagu_local.clocks import RuntimeClock, ScaledRuntimeClock, VirtualClock
from tsunagu_local.conditions import parse_conditions_once
from tsunagu_local.fast_reads import serialize_reads_quickly
from tsunagu_local.faults import FaultPlan
from tsunagu_local.gateway import HttpApiGateway, LocalPage, routes_from
from tsunagu_local.index_order import order_index_queries_cheaply
from tsunagu_local.interpreter import repeat_no_work_per_execution
from tsunagu_local.intrinsics import Resolver
from tsunagu_local.item_size import check_item_size_once
from tsunagu_local.jwt_authorizer import JwtAuthorizer
from tsunagu_local.lambdas import FunctionRegistry, LocalFunction, install_moto_invoke
from tsunagu_local.mailbox import Mailbox, install_send_clock
from tsunagu_local.model_tracking import track_models_weakly
from tsunagu_local.moto_dispatch import dispatch_without_rereading
from tsunagu_local.people import ADMIN_EMAIL, add_user, local_password
from tsunagu_local.receiving import ReceiptRule, Receiving
from tsunagu_local.schedules import ScheduledRule, rate_seconds
from tsunagu_local.secrets import create_secret, generated_value
from tsunagu_local.sessions import SessionClock, install_session_clock
from tsunagu_local.streams import (
    StreamMapping,
    StreamPoller,
    StreamReaders,
)
from tsunagu_local.tables import create_table
from tsunagu_local.template import Stack, TemplateError, declared_parameters, load_stack
from tsunagu_local.totp import check_totp_codes
from tsunagu_local.transactions import (
    honour_client_request_tokens,
    isolate_reads,
    roll_back_transactions_in_place,
)
from tsunagu_local.versions import run_versions_as_aws_does
from tsunagu_local.waits import install_step_functions_clock

log = logging.getLogger("tsunagu.local")

ACCOUNT_ID = "123456789012"
REGION = "ap-northeast-1"
LOCAL_DISTRIBUTION_DOMAIN = "console.invalid"
CLIENT_SETTINGS = (
    "ReadAttributes",
    "WriteAttributes",
    "EnableTokenRevocation",
    "IdTokenValidity",
    "AccessTokenValidity",
    "RefreshTokenValidity",
    "TokenValidityUnits",
)
"""What the runtime passes on from a template's AWS::Cognito::UserPoolClient besides its name,
secret and flows."""
"""What a CloudFront distribution's DomainName is locally (the console's origin is the API's)."""
MAIL_FILE = "mail.json"
"""Where a persisted runtime keeps the sent-mail viewer's mail, in its state folder."""
ANALYTICS_FOLDER = "analytics"
"""Where the runtime's buckets are, in its state folder: what Firehose delivers to S3 lands in
``analytics/`` (tsunagu_local.firehose), and `tsunagu analytics query` reads it there."""
STATE_FILE = "runtime.json"

# What AWS gives a function that the template does not, and what makes no sense locally.
LOCAL_FUNCTION_ENVIRONMENT = {
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
    "POWERTOOLS_METRICS_DISABLED": "true",  # no CloudWatch here; keeps the console readable
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RuntimeOptions:
    template: Path
    state_dir: Path
    api_port: int = 3000
    moto_port: int = 0
    """0 picks a free port."""
    stage: str = "local"
    clock_start: datetime | None = None
    time_scale: float = 1.0
    virtual_time: bool = False
    """Time stands still while work is in flight and moves only as far as a client allows
    (``POST /_local/clock``); time_scale is then unused."""
    persist: bool = True
    """Keep DynamoDB data in state_dir across restarts."""
    parameters: dict[str, str] = field(default_factory=dict)
    faults: str | None = None
    """A fault-injection spec (tsunagu_local.faults): AWS's own failures, injected at random at
    the Lambda API, the stream pollers and SES, for the proof that nothing is lost or sent
    twice. None: no faults."""


class LocalRuntime:
    def __init__(self, options: RuntimeOptions) -> None:
        self.options = options
        self.functions = FunctionRegistry()
        self.pollers: list[StreamPoller] = []
        self.stream_readers = StreamReaders()
        self.schedules: list[ScheduledRule] = []
        self.tables: dict[str, str] = {}
        self.local_pages: dict[str, LocalPage] = {}
        self.local_folders: dict[str, LocalPage] = {}
        self._api_server: BaseWSGIServer | None = None
        self._moto: Any = None
        self.stack: Stack | None = None
        self.clock: RuntimeClock | None = None
        self.mailbox = Mailbox(
            ACCOUNT_ID, REGION, self.options.state_dir / MAIL_FILE if self.options.persist else None
        )
        self._saved_environ: dict[str, str | None] = {}
        self._resolver: Resolver | None = None
        self.user_pools: dict[str, str] = {}
        """The template's user pools: logical id to pool id."""
        self.user_pool_clients: dict[str, str] = {}
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self.delivery_streams: list[str] = []
        """The Firehose streams whose Parquet this runtime writes (tsunagu_local.firehose)."""
        self.receiving: Receiving | None = None
        """SES receiving, as the template's receipt rules say (tsunagu_local.receiving)."""

    # ------------------------------------------------------------------ lifecycle
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.options.api_port}"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.options.moto_port}"

    @property
    def clock_url(self) -> str:
        return f"{self.api_url}/_local/clock"

    def _clock_environment(self) -> dict[str, str]:
        """How a function (or the CLI) finds the runtime's clock."""
        assert self.clock is not None
        if isinstance(self.clock, ScaledRuntimeClock):
            return {
                "TSUNAGU_CLOCK_START": isoformat(self.clock.start),
                "TSUNAGU_CLOCK_EPOCH": repr(self.clock.epoch),
                "TSUNAGU_TIME_SCALE": repr(self.clock.scale),
            }
        return {"TSUNAGU_CLOCK_URL": self.clock_url}

    def start(self) -> None:
        track_models_weakly()
        check_item_size_once()
        parse_conditions_once()
        dispatch_without_rereading()
        self._start_moto()
        os.environ["TZ"] = "UTC"  # moto's Wait and timestamp code reads naive local time
        time.tzset()
        start = self.options.clock_start or datetime.now(UTC).replace(microsecond=0)
        if self.options.virtual_time:
            self.clock = VirtualClock(start)
            # The runtime's functions read this object; other processes (the CLI, tests) ask
            # GET /_local/clock.
            register_in_process(self.clock_url, self.clock)
        else:
            self.clock = ScaledRuntimeClock(start, time.time(), self.options.time_scale)
        install_step_functions_clock(self.clock)
        repeat_no_work_per_execution()
        run_versions_as_aws_does()
        order_index_queries_cheaply()
        install_send_clock(self.clock)
        roll_back_transactions_in_place()
        isolate_reads()
        serialize_reads_quickly()
        honour_client_request_tokens()
        firehose.install()
        check_totp_codes()
        install_session_clock(self._session_clock())
        install_moto_invoke(self.functions)
        faults.install(FaultPlan.parse(self.options.faults) if self.options.faults else None)
        self.local_pages["/_local/faults"] = faults.faults_page
        parameters = dict(self.options.parameters)
        if "Stage" in declared_parameters(self.options.template):
            parameters.setdefault("Stage", self.options.stage)
        self.stack = load_stack(self.options.template, parameters, REGION)
        restored = self._deploy(self.stack)
        if isinstance(self.clock, ScaledRuntimeClock):
            # Simulated time starts now that everything is up, not while tables were created.
            self.clock.epoch = time.time()
            if self.options.clock_start is None:
                self.clock.start = datetime.now(UTC)
        for function in self.functions:
            function.environment.update(self._clock_environment())
        for poller in self.pollers:
            # Restored data was consumed in the run that wrote it: start from new records only.
            poller.start("LATEST" if restored else None)
            if isinstance(self.clock, VirtualClock):
                self.clock.add_probe(poller.has_pending_work)
        self._start_api(self.stack)
        self._point_console_links_here()
        self._add_local_admin()
        self._serve_console(self.stack)
        if isinstance(self.clock, VirtualClock):
            self.clock.start()
        for schedule in self.schedules:
            schedule.start()
        self._write_state_file()

    def stop(self) -> None:
        if self._api_server is not None:
            self._api_server.shutdown()
        for poller in self.pollers:
            poller.stop()
        for schedule in self.schedules:
            schedule.stop()
        for name in self.delivery_streams:
            firehose.forget(name)
        if isinstance(self.clock, VirtualClock):
            self.clock.stop()
            register_in_process(self.clock_url, None)
            # moto's Cognito outlives this runtime in the process: not on a stopped clock
            install_session_clock(time.time)
        if self.options.persist and self.tables:
            self._save_tables()
            self.mailbox.save()
        state_file = self.options.state_dir / STATE_FILE
        state_file.unlink(missing_ok=True)
        if self._moto is not None:
            # moto keeps every service's state in this process, not in its server: without a
            # reset, the next runtime started here would find this one's tables and refuse to
            # create its own (benchmarks start one runtime per module).
            request = urllib.request.Request(  # noqa: S310 - our own loopback server
                f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST"
            )
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                response.read()
            self._moto.stop()
        self._clients.clear()
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        time.tzset()

    def client(self, service: str) -> Any:
        """One client per service for the runtime's own calls to moto: making a botocore client
        costs about 50 ms of CPU, and deploying the template asked for 80 of them at every start.
        botocore's clients are safe to share between threads."""
        with self._clients_lock:
            if service not in self._clients:
                make_client: Any = boto3.client  # typed per service literal; ours is a plain str
                self._clients[service] = make_client(
                    service,
                    region_name=REGION,
                    endpoint_url=self.endpoint_url,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",  # noqa: S106 - moto's fixed local credentials
                    config=Config(retries={"max_attempts": 2}),
                )
            return self._clients[service]

    def settings(self) -> Settings:
        """Every setting any function of this runtime sees (for the CLI, seeding and tests):
        functions share the template's globals and add their own."""
        environment: dict[str, str] = {}
        for function in self.functions:
            environment.update(function.environment)
        return Settings.from_environ(environment)

    def wait_for_streams(self, timeout: float = 10.0) -> None:
        """Block until every stream poller has caught up (for tests and demos)."""
        if isinstance(self.clock, VirtualClock):
            self.clock.settle(timeout)
            return
        # Caught up: no record written that a poller has not delivered, and no poller in the
        # middle of a delivery (whose function may be writing to another stream right now). The
        # pollers are looked at one after another, so a look is trusted only if no delivery
        # ended during it (one that did may have written to a stream already looked at).
        deadline = time.monotonic() + timeout
        while True:
            handled = sum(p.batches_handled for p in self.pollers)
            quiet = not any(p.has_pending_work() or not p.idle.is_set() for p in self.pollers)
            if quiet and handled == sum(p.batches_handled for p in self.pollers):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the stream pollers did not catch up in {timeout:g} s")
            time.sleep(0.05)

    # ------------------------------------------------------------------ moto
    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer

        if not self.options.moto_port:
            self.options.moto_port = free_port()
        process_env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            # Step Functions tasks inside moto call Lambda on this port.
            "MOTO_PORT": str(self.options.moto_port),
        }
        # Remembered so stop() can put the process environment back as it found it.
        touched = [*process_env, "AWS_SESSION_TOKEN", "AWS_PROFILE", "TZ"]
        self._saved_environ = {key: os.environ.get(key) for key in touched}
        os.environ.update(process_env)
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        self._moto = ThreadedMotoServer(
            ip_address="127.0.0.1", port=self.options.moto_port, verbose=False
        )
        self._moto.start()
        config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        request = urllib.request.Request(  # noqa: S310 - our own loopback server
            f"{self.endpoint_url}/moto-api/config",
            data=json.dumps(config).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()

    # ------------------------------------------------------------------ resources
    def _physical_name(self, logical_id: str) -> str:
        return f"tsunagu-{self.options.stage}-{logical_id}"[:64]

    def _deploy(self, stack: Stack) -> bool:
        resolver = Resolver(
            parameters={
                **stack.parameters,
                "AWS::Region": REGION,
                "AWS::AccountId": ACCOUNT_ID,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::StackName": f"tsunagu-{self.options.stage}",
                "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/local/0",
                "AWS::NoValue": "",
            },
            conditions=stack.conditions,
        )
        steps: list[tuple[str, Callable[[str, dict[str, Any], Resolver], None]]] = [
            ("AWS::DynamoDB::Table", self._create_table),
            ("AWS::SQS::Queue", self._create_queue),
            ("AWS::SecretsManager::Secret", self._create_secret),
            ("AWS::SNS::Topic", self._create_topic),
            ("AWS::Logs::LogGroup", self._create_log_group),
            ("AWS::Logs::LogStream", self._create_log_stream),
            ("AWS::SES::ConfigurationSet", self._create_configuration_set),
            ("AWS::SES::EmailIdentity", self._create_email_identity),
            ("AWS::Cognito::UserPool", self._create_user_pool),
            ("AWS::Cognito::UserPoolClient", self._create_user_pool_client),
            ("AWS::Cognito::UserPoolGroup", self._create_user_pool_group),
            ("AWS::S3::Bucket", self._create_bucket),
            ("AWS::Glue::Database", self._create_glue_database),
            ("AWS::Glue::Table", self._create_glue_table),
            ("AWS::IAM::Role", self._create_role),
            ("AWS::KinesisFirehose::DeliveryStream", self._create_delivery_stream),
            ("AWS::CloudFront::Distribution", self._name_distribution),
            ("AWS::Lambda::LayerVersion", self._name_layer),
            # Named before functions, so a function's environment can refer to them.
            ("AWS::ApiGatewayV2::Api", self._name_api),
            ("AWS::StepFunctions::StateMachine", self._name_state_machine),
            ("AWS::Lambda::Function", self._name_function),
            ("AWS::Lambda::Function", self._create_function),
            ("AWS::StepFunctions::StateMachine", self._create_state_machine),
            ("AWS::Lambda::EventSourceMapping", self._create_event_source),
            ("AWS::Events::Rule", self._create_schedule),
            ("AWS::SES::ReceiptRuleSet", self._name_receipt_rule_set),
            ("AWS::SES::ReceiptRule", self._create_receipt_rule),
        ]
        self._resolver = resolver  # the API's authorizers name the user pool it created
        handled = {kind for kind, _ in steps}
        for kind, create in steps:
            for logical_id, resource in stack.of_type(kind).items():
                if "Condition" in resource and not resolver.condition(resource["Condition"]):
                    continue
                create(logical_id, resource.get("Properties", {}), resolver)
        skipped = sorted({r["Type"] for r in stack.resources.values()} - handled)
        log.debug("not emulated locally (no behaviour to run): %s", ", ".join(skipped))
        return self._restore_tables() if self.options.persist else False

    def _name_distribution(
        self, logical_id: str, props: dict[str, Any], resolver: Resolver
    ) -> None:
        # No CloudFront here: the runtime serves the console itself, on the API's own origin
        # (tsunagu_local/console.py). A reserved name (RFC 2606) no browser page comes from.
        resolver.attributes[(logical_id, "DomainName")] = LOCAL_DISTRIBUTION_DOMAIN

    def _create_table(self, logical_id: str, props: dict[str, Any], resolver: Resolver) -> None:
        props = resolver.resolve(props)
        name = props.get("TableName") or self._physical_name(logical_id)
        description = create_table(self.client("dynamodb"), name, props)
        self.tables[logical_id] = name
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = description["TableArn"]
        if "LatestStreamArn" in description:
            resolver.attributes[(logical_id, "StreamArn")] = description["LatestStreamArn"]

    def _create_queue(self, logical_id: str, props: dict[str, Any], resolver: Resolver) -> None:
        props = resolver.resolve(props)
        name = props.get("QueueName") or self._physical_name(logical_id)
        url = self.client("sqs").create_queue(QueueName=name)["QueueUrl"]
        resolver.refs[logical_id] = url
        resolver.attributes[(logical_id, "QueueName")] = name
        resolver.attributes[(logical_id, "QueueUrl")] = url
        resolver.attributes[(logical_id, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"

    def _create_secret(self, logical_id: str, props: dict[str, Any], resolver: Resolver) -> None:
        props = resolver.resolve(props)
        name = props.get("Name") or self._physical_name(logical_id)
        # A generated value is kept with the data, so that what it signed (links in mail already
        # sent) stays valid across restarts.
        saved = self.options.state_dir / "secrets" / f"{logical_id}.json"
        if self.options.persist and saved.exists():
            value = saved.read_text()
        else:
            value = generated_value(props)
            if self.options.persist:
                saved.parent.mkdir(parents=True, exist_ok=True)
                saved.write_text(value)
                saved.chmod(0o600)
        arn = create_secret(self.client("secretsmanager"), name, value)
        resolver.refs[logical_id] = arn
        resolver.attributes[(logical_id, "Id")] = arn

    def _create_topic(self, logical_id: str, props: dict[str, Any], resolver: Resolver) -> None:
        # Created so that references resolve; SES here publishes no events to it, so the CLI's
        # `tsunagu mail simulate` invokes the subscribed function with what SNS would deliver.
        name = resolver.resolve(props.get("TopicName")) or self._physical_name(logical_id)
        arn = self.client("sns").create_topic(Name=name)["TopicArn"]
        resolver.refs[logical_id] = arn
        resolver.attributes[(logical_id, "TopicArn")] = arn
        resolver.attributes[(logical_id, "TopicName")] = name

    def _create_log_group(self, logical_id: str, props: dict[str, Any], resolver: Resolver) -> None:
        # Created so that functions' LoggingConfig and the API's access-log settings resolve;
        # locally, logs print to the console (Powertools) and nothing is written here.
        props = resolver.resolve(props)
        name = props.get("LogGroupName") or f"/tsunagu/{self.options.stage}/{logical_id}"
        self.client("logs").create_log_group(logGroupName=name)
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = (
            f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*"
        )

    def _create_log_stream(
        self, logical_id: str, props: dict[str, Any], resolver: Resolver
    ) -> None:
        props = resolver.resolve(props)
        name = props.get("LogStreamName") or logical_id
        self.client("logs").create_log_stream(
            logGroupName=props["LogGroupName"], logStreamName=name
        )
        resolver.refs[logical_id] = name

    def _create_configuration_set(
        self, logical_id: str, props: dict[str, Any], resolver: Resolver
    ) -> None:
        name = resolver.resolve(props).get("Name") or self._physical_name(logical_id)
        self.client("sesv2").create_configuration_set(ConfigurationSetName=name)
        resolver.refs[logical_id] = name

    def _create_email_identity(
        self, logical_id: str, props: dict[str, Any], resolver: Resolver
    ) -> None:
        identity = resolver.resolve(props)["EmailIdentity"]
        # SES refuses to send from an unverified identity; moto's verify_* marks it verified.
        ses = self.client("ses")
        if "@" in identity:
            ses.verify_email_identity(EmailAddress=identity)
        else:
            ses.verify_domain_identity(Domain=identity)
        resolver.refs[logical_id] = identity

    def _create_role(self, logical_id: str, props: dict[str, Any], resolver: Resolver) -> None:
        # Only the name and trust policy: policies are not enforced locally, and they name
        # resources (functions, state machines) that do not exist yet at this point.
        name = resolver.resolve(props.get("RoleName")) or self._physical_name(logical_id)
        trust = resolver.resolve(props.get("AssumeRolePolicyDocument", {}))
        role = self.client("iam").create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = role["Arn"]

    def _create_bucket(self, logical_id: str, props: dict[str, Any], resolver: Resolver) -> None:
        # Named and made in moto so that references resolve; what Firehose delivers to a bucket
        # as Parquet is written to the state folder instead (see _create_delivery_stream).
        name = resolver.resolve(props.get("BucketName")) or self._physical_name(logical_id).lower()
        self.client("s3").create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
        resolver.attributes[(logical_id, "RegionalDomainName")] = (
            f"{name}.s3.{REGION}.amazonaws.com"
        )

    def _create_glue_database(
        self, logical_id: str, props: dict[str, Any], resolver: Resolver
    ) -> None:
        database = resolver.resolve(props)["DatabaseInput"]
        self.client("glue").create_database(DatabaseInput=database)
        resolver.refs[logical_id] = database["Name"]

    def _create_glue_table(
        self, logical_id: str, props: dict[str, Any], resolver: Resolver
    ) -> None:
        props = resolver.resolve(props)
        self.client("glue").create_table(
            DatabaseName=props["DatabaseName"], TableInput=props["TableInput"]
        )
        resolver.refs[logical_id] = props["TableInput"]["Name"]

    def analytics_dir(self) -> Path:
        """The local stand-in for the buckets Firehose delivers Parquet to."""
        return self.options.state_dir / ANALYTICS_FOLDER

    def _create_delivery_stream(
        self, logical_id: str, props: dict[str, Any], resolver: Resolver
    ) -> None:
        props = resolver.resolve(props)
        name = props.get("DeliveryStreamName") or self._physical_name(logical_id)
        destination = props.get("ExtendedS3DestinationConfiguration")
        if destination is None:
            raise TemplateError(f"{logical_id}: only ExtendedS3 delivery streams run locally")
        self.client("firehose").create_delivery_stream(
            DeliveryStreamName=name,
            DeliveryStreamType=props.get("DeliveryStreamType", "DirectPut"),
            ExtendedS3DestinationConfiguration=destination,
        )
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = (
            f"arn:aws:firehose:{REGION}:{ACCOUNT_ID}:deliverystream/{name}"
        )
        conversion = destination.get("DataFormatConversionConfiguration")
        if not conversion or not conversion.get("Enabled", True):
            return  # no conversion: moto's own Firehose, raw records into its S3
        # Firehose reads the schema from the Glue table the conversion names; so does this.
        schema = conversion["SchemaConfiguration"]
        table = self.client("glue").get_table(
            DatabaseName=schema["DatabaseName"], Name=schema["TableName"]
        )["Table"]
        columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
        if not self.options.persist:
            firehose.clear(self.analytics_dir())  # nothing is kept across restarts
        self.delivery_streams.append(name)
        firehose.register(
            name,
            firehose.ParquetDestination.from_configuration(
                self.analytics_dir(), destination, columns
            ),
        )

    def _name_layer(self, logical_id: str, props: dict[str, Any], resolver: Resolver) -> None:
        # The domain package is installed in this environment (editable); nothing to unpack.
        name = resolver.resolve(props).get("LayerName") or self._physical_name(logical_id)
        resolver.refs[logical_id] = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:{name}:1"

    def _create_function(self, logical_id: str, props: dict[str, Any], resolver: Resolver) -> None:
        assert self.stack is not None
        assert self.clock is not None
        props = resolver.resolve(props)
        name = props.get("FunctionName") or self._physical_name(logical_id)
        environment = dict(props.get("Environment", {}).get("Variables", {}))
        environment.update(LOCAL_FUNCTION_ENVIRONMENT)
        environment.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(props.get("MemorySize", 128)),
                **self._clock_environment(),
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_REGION": REGION,
            }
        )
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("app.py", "# runs in-process in the local runtime\n")
        arn = self.client("lambda").create_function(
            FunctionName=name,
            Runtime=props.get("Runtime", "python3.13"),
            Role=props["Role"],
            Handler=props["Handler"],
            Code={"ZipFile": archive.getvalue()},
            Timeout=int(props.get("Timeout", 3)),
            MemorySize=int(props.get("MemorySize", 128)),
        )["FunctionArn"]
        self.functions.add(
            LocalFunction(
                logical_id=logical_id,
                name=name,
                arn=arn,
                code_dir=self.stack.code_dirs[logical_id],
                handler=props["Handler"],
                environment={k: str(v) for k, v in environment.items()},
                timeout=int(props.get("Timeout", 3)),
                memory=int(props.get("MemorySize", 128)),
                clock=self.clock,
            )
        )
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = arn

    def _name_function(self, logical_id: str, props: dict[str, Any], resolver: Resolver) -> None:
        # The publishing function's environment names the functions a journey may call.
        name = resolver.resolve(props.get("FunctionName")) or self._physical_name(logical_id)
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
        )

    def _name_state_machine(
        self, logical_id: str, props: dict[str, Any], resolver: Resolver
    ) -> None:
        name = resolver.resolve(props.get("StateMachineName")) or self._physical_name(logical_id)
        arn = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{name}"
        resolver.refs[logical_id] = arn
        resolver.attributes[(logical_id, "Arn")] = arn
        resolver.attributes[(logical_id, "Name")] = name

    def _create_state_machine(
        self, logical_id: str, props: dict[str, Any], resolver: Resolver
    ) -> None:
        props = resolver.resolve(props)
        definition = props.get("DefinitionString")
        if definition is None:
            definition = json.dumps(props["Definition"])
        for key, value in (props.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        self.client("stepfunctions").create_state_machine(
            name=resolver.attributes[(logical_id, "Name")],
            definition=definition,
            roleArn=props["RoleArn"],
            type="STANDARD",
        )

    def _create_user_pool(self, logical_id: str, props: dict[str, Any], resolver: Resolver) -> None:
        props = resolver.resolve(props)
        cognito = self.client("cognito-idp")
        kept = ("Policies", "UsernameAttributes", "AdminCreateUserConfig", "MfaConfiguration")
        asked: dict[str, Any] = {key: props[key] for key in kept if key in props}
        name = props.get("UserPoolName") or self._physical_name(logical_id)
        pool = cognito.create_user_pool(PoolName=name, **asked)["UserPool"]
        self.user_pools[logical_id] = pool["Id"]
        resolver.refs[logical_id] = pool["Id"]
        resolver.attributes[(logical_id, "Arn")] = pool["Arn"]
        resolver.attributes[(logical_id, "ProviderName")] = (
            f"cognito-idp.{REGION}.amazonaws.com/{pool['Id']}"
        )
        resolver.attributes[(logical_id, "ProviderURL")] = (
            f"https://cognito-idp.{REGION}.amazonaws.com/{pool['Id']}"
        )

    def _create_user_pool_client(
        self, logical_id: str, props: dict[str, Any], resolver: Resolver
    ) -> None:
        props = resolver.resolve(props)
        created = self.client("cognito-idp").create_user_pool_client(
            UserPoolId=props["UserPoolId"],
            ClientName=props.get("ClientName") or logical_id,
            GenerateSecret=bool(props.get("GenerateSecret", False)),
            ExplicitAuthFlows=props.get("ExplicitAuthFlows", []),
            # What the ID token carries (moto puts only these attributes in it), and how long
            # each token lives (tsunagu_local.sessions)
            **{key: props[key] for key in CLIENT_SETTINGS if key in props},
        )["UserPoolClient"]
        self.user_pool_clients[logical_id] = created["ClientId"]
        resolver.refs[logical_id] = created["ClientId"]

    def _create_user_pool_group(
        self, logical_id: str, props: dict[str, Any], resolver: Resolver
    ) -> None:
        props = resolver.resolve(props)
        self.client("cognito-idp").create_group(
            GroupName=props["GroupName"],
            UserPoolId=props["UserPoolId"],
            Description=props.get("Description", ""),
            Precedence=int(props.get("Precedence", 0)),
        )
        resolver.refs[logical_id] = props["GroupName"]

    def _serve_console(self, stack: Stack) -> None:
        """The console at /console (built into console/dist by make up), signing in with the
        template's user pool client."""
        if not self.user_pool_clients:
            return
        client_id = next(iter(self.user_pool_clients.values()))
        dist = self.options.template.parent / "console" / "dist"
        # The headers the template's distribution sends; the browser calls the API here on its
        # own origin, and a large list goes straight to the imports bucket (moto, here).
        headers_for = console.distribution_headers(
            stack.resources, connect_src=f"'self' {self.endpoint_url}"
        )
        self.local_folders[console.PREFIX] = console.console_page(dist, headers_for)
        self.local_pages[f"{console.PREFIX}/config.json"] = console.config_page(
            self.api_url, client_id, REGION
        )
        self.local_pages["/_local/cognito"] = console.cognito_page(self.endpoint_url, REGION)

    def _point_console_links_here(self) -> None:
        """A link to the console in a function's mail (a forwarded reply's) names CloudFront's
        domain, which is nothing here: the console is served on the API's own origin."""
        for function in self.functions:
            url = function.environment.get("TSUNAGU_CONSOLE_URL", "")
            if url.startswith(f"https://{LOCAL_DISTRIBUTION_DOMAIN}"):
                function.environment["TSUNAGU_CONSOLE_URL"] = url.replace(
                    f"https://{LOCAL_DISTRIBUTION_DOMAIN}", self.api_url, 1
                )

    def _add_local_admin(self) -> None:
        """One admin in each user pool, so `make up` can print how to sign in."""
        for pool_id in self.user_pools.values():
            password = local_password(self.options.state_dir)
            add_user(self.client("cognito-idp"), pool_id, ADMIN_EMAIL, password, "admin")

    def _session_clock(self) -> SessionClock:
        """What tokens are dated and judged by (tsunagu_local.sessions): the runtime's clock
        when it is virtual, the machine's when it is scaled."""
        clock = self.clock
        if isinstance(clock, VirtualClock):
            return lambda: clock.now().timestamp()
        return time.time

    def _authorizers(self, stack: Stack) -> dict[str, JwtAuthorizer]:
        """The HttpApi's JWT authorizers, with the user pool and client this runtime made."""
        assert self._resolver is not None
        found: dict[str, JwtAuthorizer] = {}
        for api in stack.of_type("AWS::ApiGatewayV2::Api").values():
            body = api["Properties"].get("Body", {})
            schemes = self._resolver.resolve(body.get("components", {}).get("securitySchemes", {}))
            for name, scheme in schemes.items():
                config = scheme.get("x-amazon-apigateway-authorizer", {})
                if config.get("type") == "jwt":
                    found[name] = JwtAuthorizer.from_scheme(
                        name, scheme, self.endpoint_url, now=self._session_clock()
                    )
        return found

    def _name_api(self, logical_id: str, props: dict[str, Any], resolver: Resolver) -> None:
        resolver.refs[logical_id] = "local"
        resolver.attributes[(logical_id, "ApiEndpoint")] = self.api_url

    def _create_schedule(self, logical_id: str, props: dict[str, Any], resolver: Resolver) -> None:
        props = resolver.resolve(props)
        expression = str(props.get("ScheduleExpression", ""))
        interval = rate_seconds(expression)
        if interval is None or props.get("State", "ENABLED") != "ENABLED":
            log.warning("%s: %r does not run locally (only rate(...) does)", logical_id, expression)
            return
        assert self.clock is not None
        for target in props.get("Targets", []):
            if ":lambda:" not in str(target.get("Arn", "")):
                continue
            self.schedules.append(
                ScheduledRule(
                    f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{logical_id}",
                    self.functions.get(target["Arn"]),
                    interval,
                    self.clock,
                    REGION,
                    ACCOUNT_ID,
                )
            )

    def _name_receipt_rule_set(
        self, logical_id: str, props: dict[str, Any], resolver: Resolver
    ) -> None:
        # moto receives no mail: the rule set only names its rules (whether it is the active
        # one is an account setting, made by hand in AWS)
        resolver.refs[logical_id] = resolver.resolve(props).get("RuleSetName") or logical_id

    def _create_receipt_rule(
        self, logical_id: str, props: dict[str, Any], resolver: Resolver
    ) -> None:
        assert self.clock is not None
        rule = resolver.resolve(props)["Rule"]
        if not rule.get("Enabled", False):
            return
        if self.receiving is None:
            s3 = self.client("s3")
            self.receiving = Receiving(
                put_object=lambda bucket, key, body: s3.put_object(
                    Bucket=bucket, Key=key, Body=body
                ),
                function_named=self.functions.get,
                clock=self.clock,
                region=REGION,
                account_id=ACCOUNT_ID,
            )
        self.receiving.rules.append(
            ReceiptRule(
                name=str(rule.get("Name") or logical_id),
                recipients=tuple(str(r) for r in rule.get("Recipients") or ()),
                actions=tuple(rule.get("Actions") or ()),
            )
        )

    def _create_event_source(
        self, logical_id: str, props: dict[str, Any], resolver: Resolver
    ) -> None:
        props = resolver.resolve(props)
        source = props["EventSourceArn"]
        if ":dynamodb:" not in source:
            log.warning("%s: only DynamoDB stream sources run locally", logical_id)
            return
        destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        queue_url = None
        if destination and ":sqs:" in destination:
            queue_url = self.client("sqs").get_queue_url(QueueName=destination.split(":")[-1])[
                "QueueUrl"
            ]
        mapping = StreamMapping(
            function=self.functions.get(props["FunctionName"]),
            stream_arn=source,
            batch_size=int(props.get("BatchSize", 100)),
            # On virtual time no simulated time passes while records wait to be delivered, so
            # the window (simulated seconds) is over at once; waiting it out in real seconds
            # would only hold every settle for a second.
            batching_window=0.0
            if self.options.virtual_time
            else float(props.get("MaximumBatchingWindowInSeconds", 0)),
            starting_position=props.get("StartingPosition", "TRIM_HORIZON"),
            max_retries=int(props.get("MaximumRetryAttempts", -1)),
            report_item_failures="ReportBatchItemFailures"
            in (props.get("FunctionResponseTypes") or []),
            on_failure_queue_url=queue_url,
        )
        poller = StreamPoller(mapping, self.client("sqs"))
        self.stream_readers.add(poller)
        self.pollers.append(poller)

    # ------------------------------------------------------------------ API
    def _start_api(self, stack: Stack) -> None:
        assert self.clock is not None
        try:
            settings = self.settings()
            calendar = business_calendar(settings.business_country, settings.company_closed_days)
            time_zone = settings.default_time_zone
        except SettingsError:  # not Tsunagu's own template: Japan's calendar
            calendar, time_zone = business_calendar("JP", ""), "Asia/Tokyo"
        self.local_pages["/_local/clock"] = clock_page(self.clock, calendar, time_zone)
        routes = routes_from(stack, self._authorizers(stack))
        gateway = HttpApiGateway(
            routes, self.functions, self.local_pages, self.clock, self.local_folders
        )
        self._api_server = make_server("127.0.0.1", self.options.api_port, gateway, threaded=True)
        self.options.api_port = self._api_server.server_port
        Thread(target=self._api_server.serve_forever, name="http-api", daemon=True).start()

    # ------------------------------------------------------------------ state
    def _write_state_file(self) -> None:
        self.options.state_dir.mkdir(parents=True, exist_ok=True)
        assert self.clock is not None
        try:
            environment = self.settings().as_environ()
        except SettingsError:
            # Not Tsunagu's own template (the runtime's tests use others): what any client needs.
            environment = {
                "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL": self.endpoint_url,
                **self._clock_environment(),
            }
        state = {
            "pid": os.getpid(),
            "api_url": self.api_url,
            "environment": environment,
            "functions": {f.logical_id: f.name for f in self.functions},
            # Where Firehose's Parquet lands (`tsunagu analytics query` reads it).
            "analytics": str(self.analytics_dir().resolve()),
            # How a client signs in to the admin API (the password is in its own file).
            "sign_in": {
                "user_pools": self.user_pools,
                "clients": self.user_pool_clients,
                "admin": ADMIN_EMAIL if self.user_pools else None,
            },
        }
        (self.options.state_dir / STATE_FILE).write_text(json.dumps(state, indent=2))

    def _data_dir(self) -> Path:
        return self.options.state_dir / "dynamodb"

    def _save_tables(self) -> None:
        dynamodb = self.client("dynamodb")
        self._data_dir().mkdir(parents=True, exist_ok=True)
        for logical_id, name in self.tables.items():
            items = [
                item
                for page in dynamodb.get_paginator("scan").paginate(TableName=name)
                for item in page["Items"]
            ]
            (self._data_dir() / f"{logical_id}.json").write_text(json.dumps(items))

    def _restore_tables(self) -> bool:
        dynamodb = self.client("dynamodb")
        restored = False
        for logical_id, name in self.tables.items():
            saved = self._data_dir() / f"{logical_id}.json"
            if not saved.exists():
                continue
            items = json.loads(saved.read_text())
            for start in range(0, len(items), 25):
                requests = [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]
                dynamodb.batch_write_item(RequestItems={name: requests})
            restored = restored or bool(items)
        return restored
