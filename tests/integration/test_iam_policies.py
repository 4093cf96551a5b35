"""Every AWS call a handler makes is allowed by the IAM role template.yaml gives its function.

The roles are read from the template as SAM expands it (``load_stack`` runs samtranslator
offline: DynamoDBCrudPolicy & co. become Statements), with the intrinsics resolved to the names
and ARNs the test stack uses (tables ``tsunagu-test-<LogicalId>``, the stack ``tsunagu-test``,
the secrets' moto ARNs, the configuration set's ``tsunagu-${Stage}``). The calls are recorded
(every botocore API call, with its parameters) while each handler runs under moto in realistic
invocations, and each is mapped to the IAM action(s) and resource(s) AWS authorizes it against.

Static checks cannot see that route_events starts executions or writes the qualification table;
this test does, because it runs the handlers. A function or call path no scenario drives is not
checked: ``EXPECTED`` pins the calls the scenarios must reach, so coverage cannot quietly shrink.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import botocore.client
import pytest

from tests.conftest import REGION, ROOT, TEMPLATE, AwsStack, load_event, moto_client
from tests.integration.mail_helpers import (
    feedback,
    parse,
    sent_messages,
    token_of,
    unsubscribe,
    unsubscribe_url,
    with_body,
    with_token,
)
from tests.integration.tracking_helpers import set_clock
from tests.qualification.conftest import (
    ACCOUNT_ID,
    NOW,
    STAGE_PREFIX,
    STATE_MACHINE_ARN_PREFIX,
    Qualified,
    crm_body,
    qualify,
)
from tests.support.admin import event as admin_event
from tests.support.leads import index_leads, new_stream_records
from tests.support.shipped import install_shipped_journeys
from tsunagu import services
from tsunagu.commands.access import Role
from tsunagu_local.intrinsics import Resolver
from tsunagu_local.lambdas import LocalFunction
from tsunagu_local.template import Stack, load_stack

STACK_NAME = STAGE_PREFIX.rstrip("-")
"""What ``${AWS::StackName}`` is for the test stack: its state machines are tsunagu-test-*."""
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::StackName": STACK_NAME,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": "",
}
CALLER = "marketer@example.com"
"""Whom tests.support.admin.event signs in unless told."""
JOURNEY_MACHINES = ("welcome-nurture", "seminar-follow-up", "re-engagement")

# (function folder, IAM action) the scenarios below must reach: if a refactoring stops a call
# being made (or recorded), the test says so rather than checking less.
EXPECTED = {
    ("capture_form", "dynamodb:TransactWriteItems"),
    ("capture_form", "dynamodb:GetItem"),
    ("track_event", "dynamodb:BatchWriteItem"),
    ("track_event", "dynamodb:TransactWriteItems"),
    ("open_pixel", "secretsmanager:GetSecretValue"),
    ("click_link", "secretsmanager:GetSecretValue"),
    ("send_email", "ses:SendEmail"),
    ("send_email", "secretsmanager:GetSecretValue"),
    ("unsubscribe", "secretsmanager:GetSecretValue"),
    ("route_events", "states:StartExecution"),
    ("route_events", "states:StopExecution"),
    ("route_events", "states:SendTaskSuccess"),
    ("route_events", "dynamodb:PutItem"),
    ("crm_webhook", "secretsmanager:GetSecretValue"),
    ("hand_off", "ses:SendEmail"),
    ("enter_segments", "states:StartExecution"),
    ("publish_journey", "states:CreateStateMachine"),
    ("publish_journey", "iam:PassRole"),
    ("publish_journey", "states:UpdateStateMachine"),
    ("publish_journey", "states:PublishStateMachineVersion"),
    ("publish_journey", "states:CreateStateMachineAlias"),
    ("publish_journey", "states:UpdateStateMachineAlias"),
    ("publish_journey", "states:ListStateMachineVersions"),
    ("publish_journey", "dynamodb:PutItem"),
    ("journey_decide", "dynamodb:PutItem"),
    ("admin_api", "dynamodb:TransactWriteItems"),
    ("admin_api", "dynamodb:Scan"),
    ("admin_api", "states:StartExecution"),
    ("admin_api", "dynamodb:PutItem"),
    ("admin_api", "states:ListExecutions"),
    ("admin_api", "cognito-idp:AdminCreateUser"),
    ("admin_api", "cognito-idp:AdminRemoveUserFromGroup"),
    ("admin_api", "cognito-idp:AdminUserGlobalSignOut"),
    ("admin_api", "cognito-idp:AdminSetUserMFAPreference"),
    ("admin_api", "cognito-idp:ListUsersInGroup"),
    ("admin_api", "dynamodb:BatchGetItem"),
    ("index_leads", "dynamodb:BatchWriteItem"),
    ("report_events", "dynamodb:BatchGetItem"),
    ("report_events", "dynamodb:TransactWriteItems"),
    ("admin_api", "dynamodb:Query"),
    ("admin_api", "s3:GetObject"),
    ("admin_api", "states:StartExecution"),
    ("import_list", "s3:PutObject"),
    ("import_list", "s3:GetObject"),
    ("import_list", "dynamodb:TransactWriteItems"),
    ("import_list", "dynamodb:BatchGetItem"),
    # A start for a segment: handed to enter_segments, which runs it (and may go on in a new
    # invocation of itself)
    ("admin_api", "lambda:InvokeFunction"),
    ("enter_segments", "dynamodb:Scan"),
    ("enter_segments", "dynamodb:PutItem"),
    # A rebuild of more report days than the request can count: the state machine started, its
    # day steps (the events' Scan, the rows written and replaced, the job), its end logged
    ("rebuild_reports", "dynamodb:Scan"),
    # ...each day's events read from the day index, and the rebuild's progress asking how its
    # execution stands (one stopped by hand says so)
    ("rebuild_reports", "dynamodb:Query"),
    ("admin_api", "states:DescribeExecution"),
    ("rebuild_reports", "dynamodb:BatchWriteItem"),
    ("rebuild_reports", "dynamodb:GetItem"),
    ("rebuild_reports", "dynamodb:PutItem"),
    ("admin_api", "dynamodb:GetItem"),
}
FUNCTIONS_DRIVEN = {
    "capture_form",
    "track_event",
    "open_pixel",
    "click_link",
    "send_email",
    "unsubscribe",
    "ses_feedback",
    "route_events",
    "journey_gate",
    "wait_for_event",
    "update_lead",
    "hand_off",
    "crm_webhook",
    "enter_segments",
    "publish_journey",
    "journey_decide",
    "admin_api",
    "index_leads",
    "report_events",
    "import_list",
    "rebuild_reports",
}


# ================================================================ the roles, from the template
@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    source: str = ""
    """Which policy of the role it came from (for messages)."""
    string_equals: tuple[tuple[str, str], ...] = ()
    """``Condition: {StringEquals: {key: value}}``, the one condition operator the template
    uses (iam:PassedToService on iam:PassRole)."""

    def describe(self) -> str:
        condition = f" if {dict(self.string_equals)}" if self.string_equals else ""
        return (
            f"{self.effect} {list(self.actions)} on {list(self.resources)}{condition}"
            f"  [{self.source}]"
        )


class _StackResolver(Resolver):
    """Resolver for policy documents: a resource the test stack does not create still gets a
    recognisable placeholder (no call of a handler can ever match it)."""

    def _Ref(self, name: str) -> str:
        if name in PSEUDO:
            return PSEUDO[name]
        try:
            return super()._Ref(name)
        except Exception:
            return f"unresolved:{name}"

    def _fn_GetAtt(self, arg: Any) -> str:
        logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
        try:
            return super()._fn_GetAtt(arg)
        except Exception:
            return f"unresolved:{logical_id}.{attribute}"


def stack_resolver(stack: Stack, names: Mapping[str, str]) -> Resolver:
    """``names``: logical id -> what Ref returns for it in the test stack."""
    resolver = _StackResolver(parameters=stack.parameters, conditions=stack.conditions)
    resolver.refs.update(names)
    for logical_id in stack.of_type("AWS::DynamoDB::Table"):
        table = names.get(logical_id)
        if table is not None:
            arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{table}"
            resolver.attributes[(logical_id, "Arn")] = arn
            resolver.attributes[(logical_id, "StreamArn")] = f"{arn}/stream/local"
    for logical_id in stack.of_type("AWS::Lambda::Function"):
        # As AwsStack.function names them.
        function = f"test-{stack.code_dirs[logical_id].name}"
        resolver.refs.setdefault(logical_id, function)
        resolver.attributes[(logical_id, "Arn")] = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function}"
        )
    for logical_id in stack.of_type("AWS::IAM::Role"):
        resolver.attributes[(logical_id, "Arn")] = (
            f"arn:aws:iam::{ACCOUNT_ID}:role/{STAGE_PREFIX}{logical_id}"
        )
    for logical_id in stack.of_type("AWS::Cognito::UserPool"):
        pool = names.get(logical_id)
        if pool is not None:
            resolver.attributes[(logical_id, "Arn")] = (
                f"arn:aws:cognito-idp:{REGION}:{ACCOUNT_ID}:userpool/{pool}"
            )
    for logical_id in stack.of_type("AWS::StepFunctions::StateMachine"):
        machine = names.get(logical_id)
        if machine is not None:  # GetAtt Name: the state machine's name, its ARN's last part
            resolver.attributes[(logical_id, "Name")] = machine.rsplit(":", 1)[-1]
    bucket = names.get("ImportsBucket")
    if bucket is not None:
        resolver.attributes[("ImportsBucket", "Arn")] = f"arn:aws:s3:::{bucket}"
    for logical_id in stack.of_type("AWS::CloudFront::Distribution"):
        resolver.attributes[(logical_id, "DomainName")] = "console.invalid"
    for logical_id, resource in stack.of_type("AWS::SES::ConfigurationSet").items():
        # Ref of a configuration set is its Name (tsunagu-${Stage}).
        name = resource.get("Properties", {}).get("Name")
        if name is not None:
            resolver.refs[logical_id] = str(resolver.resolve(name))
    return resolver


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in (value if isinstance(value, list) else [value]))


def role_statements(stack: Stack, resolver: Resolver) -> dict[str, list[Statement]]:
    """Function folder (functions/<folder>) -> its role's inline policy statements, resolved.
    Managed policies (logs, X-Ray, the stream poller) are left out: handlers need none of them
    for their own calls."""
    found: dict[str, list[Statement]] = {}
    for logical_id, function in stack.of_type("AWS::Lambda::Function").items():
        folder = stack.code_dirs[logical_id].name
        role_arn = function["Properties"]["Role"]
        if not (isinstance(role_arn, dict) and "Fn::GetAtt" in role_arn):
            raise AssertionError(f"{logical_id}: role {role_arn!r} is not one of the template's")
        role_id = role_arn["Fn::GetAtt"][0]
        role = stack.resources[role_id]["Properties"]
        found[folder] = policy_statements(logical_id, role, resolver)
    return found


def policy_statements(
    logical_id: str, role: Mapping[str, Any], resolver: Resolver
) -> list[Statement]:
    """An AWS::IAM::Role's inline policy statements, resolved."""
    statements: list[Statement] = []
    for policy in role.get("Policies", []):
        document = resolver.resolve(policy["PolicyDocument"])
        for raw in _strings_or_dicts(document.get("Statement", [])):
            unsupported = {"NotAction", "NotResource"} & set(raw)
            condition = dict(raw.get("Condition", {}))
            string_equals = condition.pop("StringEquals", {})
            if unsupported or condition:
                raise AssertionError(
                    f"{logical_id} ({policy['PolicyName']}): {sorted(unsupported | set(condition))}"
                    " is not understood by this test; extend the matcher"
                )
            statements.append(
                Statement(
                    effect=raw["Effect"],
                    actions=_strings(raw["Action"]),
                    resources=_strings(raw["Resource"]),
                    source=str(policy["PolicyName"]),
                    string_equals=tuple(sorted((k, str(v)) for k, v in string_equals.items())),
                )
            )
    return statements


def _strings_or_dicts(value: Any) -> list[dict[str, Any]]:
    return value if isinstance(value, list) else [value]


def _pattern(glob: str, *, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(f"^{body}$", re.IGNORECASE if ignore_case else 0)


def allows(
    statements: list[Statement],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> bool:
    """IAM's rule, for the Action/Resource statements a SAM role has: some Allow matches and no
    Deny does. Actions match case-insensitively, both with * and ? wildcards; a StringEquals
    condition holds when the request's ``context`` has each key with that value."""

    def matches(statement: Statement) -> bool:
        known = context or {}
        return (
            any(_pattern(a, ignore_case=True).match(action) for a in statement.actions)
            and any(_pattern(r, ignore_case=False).match(resource) for r in statement.resources)
            and all(known.get(key) == value for key, value in statement.string_equals)
        )

    if any(s.effect == "Deny" and matches(s) for s in statements):
        return False
    return any(s.effect == "Allow" and matches(s) for s in statements)


# ================================================================ the calls, recorded
@dataclass(frozen=True)
class Call:
    function: str
    service: str
    """The IAM service prefix (signing name): dynamodb, states, ses, secretsmanager, ..."""
    operation: str
    params: Mapping[str, Any] = field(hash=False, compare=False)


_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _table_arn(name: str, index: str | None = None) -> str:
    arn = (
        name if name.startswith("arn:") else f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
    )
    return f"{arn}/index/{index}" if index else arn


def required(call: Call) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs AWS authorizes this call against."""
    service, operation, params = call.service, call.operation, call.params
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            # The transaction itself needs no permission of its own: each item is authorized as
            # the single-item action on its table.
            pairs = []
            for item in params["TransactItems"]:
                ((kind, request),) = item.items()
                pairs.append(
                    (f"dynamodb:{_TRANSACT_ACTIONS[kind]}", _table_arn(request["TableName"]))
                )
            return pairs
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", _table_arn(t)) for t in params["RequestItems"]]
        if "TableName" in params:
            return [
                (f"dynamodb:{operation}", _table_arn(params["TableName"], params.get("IndexName")))
            ]
        return [(f"dynamodb:{operation}", "*")]
    if service == "states":
        machines = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine"
        if operation == "CreateStateMachine":
            # Creating one passes it its role: iam:PassRole on that role, to Step Functions;
            # publishing a version with it needs PublishStateMachineVersion as well.
            arn = f"{machines}:{params['name']}"
            return [
                ("states:CreateStateMachine", arn),
                ("iam:PassRole", params["roleArn"]),
                *([("states:PublishStateMachineVersion", arn)] if params.get("publish") else []),
            ]
        if operation == "UpdateStateMachine" and params.get("publish"):
            return [
                ("states:UpdateStateMachine", params["stateMachineArn"]),
                ("states:PublishStateMachineVersion", params["stateMachineArn"]),
            ]
        if operation == "CreateStateMachineAlias":
            version = params["routingConfiguration"][0]["stateMachineVersionArn"]
            return [
                ("states:CreateStateMachineAlias", f"{version.rsplit(':', 1)[0]}:{params['name']}")
            ]
        if operation in ("UpdateStateMachineAlias", "DescribeStateMachineAlias"):
            return [(f"states:{operation}", params["stateMachineAliasArn"])]
        if operation == "StartExecution":
            return [("states:StartExecution", params["stateMachineArn"])]
        if operation in ("StopExecution", "DescribeExecution", "GetExecutionHistory"):
            return [(f"states:{operation}", params["executionArn"])]
        if operation in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"):
            # A task token names no resource in the request; the wait is one of this stack's
            # journeys, so the role must allow it on this stack's state machines.
            return [(f"states:{operation}", f"{STATE_MACHINE_ARN_PREFIX}welcome-nurture")]
        return [(f"states:{operation}", params.get("stateMachineArn", "*"))]
    if service == "s3" and "Key" in params:
        # HeadObject is authorized as GetObject.
        action = {"HeadObject": "GetObject"}.get(operation, operation)
        return [(f"s3:{action}", f"arn:aws:s3:::{params['Bucket']}/{params['Key']}")]
    if service == "secretsmanager":
        return [(f"secretsmanager:{operation}", params["SecretId"])]
    if service == "lambda" and operation == "Invoke":
        name = params["FunctionName"]
        arn = (
            name
            if name.startswith("arn:")
            else f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
        )
        return [("lambda:InvokeFunction", arn)]
    if service == "cognito-idp" and "UserPoolId" in params:
        pool = f"arn:aws:cognito-idp:{REGION}:{ACCOUNT_ID}:userpool/{params['UserPoolId']}"
        return [(f"cognito-idp:{operation}", pool)]
    if service == "ses":
        ses_arn = f"arn:aws:ses:{REGION}:{ACCOUNT_ID}"
        if operation == "SendEmail" and "Content" in params:  # SES v2
            identity = params.get("FromEmailAddressIdentityArn") or (
                f"{ses_arn}:identity/{_sender_domain(params['FromEmailAddress'])}"
            )
            pairs = [("ses:SendEmail", identity)]
            if params.get("ConfigurationSetName"):
                pairs.append(
                    (
                        "ses:SendEmail",
                        f"{ses_arn}:configuration-set/{params['ConfigurationSetName']}",
                    )
                )
            return pairs
        source = params.get("Source") or params.get("FromEmailAddress") or ""
        return [(f"ses:{operation}", f"{ses_arn}:identity/{_sender_domain(source)}")]
    return [(f"{service}:{operation}", "*")]


def _sender_domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip(" >")


@dataclass
class Recorder:
    """Calls are attributed per thread: a handler's calls happen on the thread that invokes it,
    and a thread another test left running in this process (an embedded runtime's execution,
    say) must not have its calls charged to the handler running here."""

    calls: list[Call] = field(default_factory=list)
    invoked: list[str] = field(default_factory=list)
    running: threading.local = field(default_factory=threading.local)

    @property
    def current(self) -> str | None:
        return getattr(self.running, "function", None)

    @current.setter
    def current(self, function: str | None) -> None:
        self.running.function = function


def forget_warm_state() -> None:
    """Every invocation starts cold, so what a warm container would have cached (signing keys,
    forms, rules, bound tables) is fetched, and recorded, by the function that needs it."""
    from tsunagu import services
    from tsunagu.store import qualification, tables
    from tsunagu.store.mail import forget_cached_templates
    from tsunagu.store.stored_forms import forget_cached_forms
    from tsunagu.store.tracking import forget_cached_sites

    forget_cached_forms()
    forget_cached_sites()
    forget_cached_templates()
    qualification._configs.clear()
    services._signers.clear()
    services._crm_keys.clear()
    for value in vars(services).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()
    tables.bind_tables.cache_clear()


ASYNC_EVENTS: list[tuple[str, Any]] = []
"""Asynchronous Lambda invocations handlers asked for (function name, event), not yet run."""


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Records every botocore call made while a handler runs, under that function's folder."""
    recorded = Recorder()
    make_api_call = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]
    invoke = LocalFunction.invoke

    def recording_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = client.meta.service_model.signing_name
        if recorded.current is not None:
            recorded.calls.append(Call(recorded.current, service, operation_name, api_params))
        if service == "lambda" and api_params.get("InvocationType") == "Event":
            # Queued, as Lambda queues an asynchronous event: the scenario runs it
            ASYNC_EVENTS.append((api_params["FunctionName"], json.loads(api_params["Payload"])))
            return {"StatusCode": 202}
        return make_api_call(client, operation_name, api_params)

    def recording_invoke(function: LocalFunction, event: Any) -> Any:
        outer, recorded.current = recorded.current, function.code_dir.name
        recorded.invoked.append(function.code_dir.name)
        forget_warm_state()
        try:
            return invoke(function, event)
        finally:
            recorded.current = outer

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording_call)
    monkeypatch.setattr(LocalFunction, "invoke", recording_invoke)
    ASYNC_EVENTS.clear()
    return recorded


# ================================================================ checking
def permission_gaps(
    calls: list[Call], statements: Mapping[str, list[Statement]]
) -> list[tuple[str, str, str]]:
    """(function, action, resource) of every call its role does not allow, once each."""
    gaps: dict[tuple[str, str, str], None] = {}
    for call in calls:
        own = statements.get(call.function, [])
        for action, resource in required(call):
            if not allows(own, action, resource, request_context(call, action)):
                gaps[(call.function, action, resource)] = None
    return list(gaps)


def request_context(call: Call, action: str) -> dict[str, str]:
    """The condition keys IAM sets for this request (only those the template's conditions
    name): a role passed by a Step Functions call is passed to Step Functions."""
    if action == "iam:PassRole":
        return {"iam:PassedToService": f"{call.service}.amazonaws.com"}
    return {}


def gap_report(
    gaps: list[tuple[str, str, str]],
    statements: Mapping[str, list[Statement]],
    names: Mapping[str, str],
) -> str:
    by_name = {v: k for k, v in names.items()}

    def labelled(resource: str) -> str:
        for name, logical_id in by_name.items():
            if resource.endswith(f"/{name}") or resource == name:
                return f"{resource} ({logical_id})"
        return resource

    lines = ["calls the function's role in template.yaml does not allow:"]
    for function in dict.fromkeys(g[0] for g in gaps):
        lines.append(f"\n{function}:")
        lines.extend(f"  MISSING {a} on {labelled(r)}" for f, a, r in gaps if f == function)
        lines.append("  its statements:")
        lines.extend(f"    {s.describe()}" for s in statements.get(function, []))
    return "\n".join(lines)


def stack_names(aws: AwsStack) -> dict[str, str]:
    """Logical id -> what Ref returns in the test stack (tables, secrets, the user pool)."""
    names = dict(aws.tables)
    secrets = moto_client("secretsmanager")
    for secret in secrets.list_secrets()["SecretList"]:
        if secret["Name"].startswith(STAGE_PREFIX):
            names[secret["Name"].removeprefix(STAGE_PREFIX)] = secret["ARN"]
    for pool in moto_client("cognito-idp").list_user_pools(MaxResults=60)["UserPools"]:
        if pool["Name"] == PEOPLE_POOL:
            names["AdminUserPool"] = pool["Id"]
    names["ImportsBucket"] = "tsunagu-test-importsbucket"  # as the aws fixture names it
    for machine in moto_client("stepfunctions").list_state_machines()["stateMachines"]:
        if machine["name"] == IMPORT_MACHINE:
            names["ImportListStateMachine"] = machine["stateMachineArn"]
        if machine["name"] == REBUILD_MACHINE:
            names["RebuildReportsStateMachine"] = machine["stateMachineArn"]
    return names


IMPORT_MACHINE = "tsunagu-test-import-list"
"""The template's ImportListStateMachine at stage test (made by drive_import_list)."""


REBUILD_MACHINE = "tsunagu-test-rebuild-reports"
"""The template's RebuildReportsStateMachine at stage test (made by drive_rebuild_reports)."""


PEOPLE_POOL = "tsunagu-test-people"
"""The template's AdminUserPool at stage test (made by drive_admin_api)."""


def make_people_pool() -> str:
    cognito = moto_client("cognito-idp")
    pool: str = cognito.create_user_pool(PoolName=PEOPLE_POOL, UsernameAttributes=["email"])[
        "UserPool"
    ]["Id"]
    for group in ("admin", "marketer", "sales", "viewer"):
        cognito.create_group(GroupName=group, UserPoolId=pool)
    return pool


def template_statements(template: Path, names: Mapping[str, str]) -> dict[str, list[Statement]]:
    stack = load_stack(template, {"Stage": "test"}, REGION)
    return role_statements(stack, stack_resolver(stack, names))


# ================================================================ the scenarios
def prepare_journeys(q: Qualified) -> None:
    """The shipped journeys and templates installed, the demo scoring and sales team seeded, and
    the journeys' state machines created in moto (executions start; moto runs none)."""
    from tsunagu import services
    from tsunagu_local.seed import seed_qualification

    settings = q.settings()
    install_shipped_journeys(settings)
    seed_qualification(services.qualification_repository(settings))
    stepfunctions = moto_client("stepfunctions")
    for machine in JOURNEY_MACHINES:
        stepfunctions.create_state_machine(
            name=f"{STAGE_PREFIX}{machine}",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/journey",
        )
    # What only some functions get in template.yaml, given to all: the tested call paths need it.
    q.aws.environment["TSUNAGU_API_URL"] = "https://api.example.com"


def journey_executions(journey_machine: str) -> list[dict[str, Any]]:
    stepfunctions = moto_client("stepfunctions")
    listed = stepfunctions.list_executions(
        stateMachineArn=f"{STATE_MACHINE_ARN_PREFIX}{journey_machine}"
    )["executions"]
    return [dict(e) for e in listed]


def drive_every_function(q: Qualified, monkeypatch: pytest.MonkeyPatch) -> None:
    aws = q.aws
    prepare_journeys(q)
    for key, value in aws.environment.items():
        monkeypatch.setenv(key, value)

    # capture_form -> route_events: a form_submitted that scores and enters welcome_nurture.
    lead_id = q.capture("hanako.sato@example.jp")
    q.deliver()
    assert journey_executions("welcome-nurture"), "form_submitted entered no journey"

    # track_event, open_pixel, click_link, then route_events scores them (MQL -> hand-off).
    q.view_pages(lead_id, "/pricing", "/seminar")
    # ... and one from a clock not believed: stored with a claim on its client id
    skewed = load_event("track_event", "custom_events_json")
    skewed["body"] = json.dumps(
        {
            "site_id": "example-corp",
            "events": [
                {
                    "type": "page_view",
                    "id": "iam-test-clock-01",
                    "visitor_id": q.visitors[lead_id],
                    "occurred_at": "2001-01-01T00:00:00Z",
                }
            ],
        }
    )
    assert aws.function("track_event").invoke(skewed)["statusCode"] == 200
    for n in range(8):
        q.open_mail(lead_id, f"msg_open_{n}")
    q.record(lead_id, "seminar_attended")
    q.deliver()

    # The journey's steps, as its state machine calls them.
    gate = load_event("journey_gate", "before_mail_a")
    gate["lead_id"] = gate["state"]["lead_id"] = lead_id
    aws.function("journey_gate").invoke(gate)
    sent = aws.function("send_email").invoke(
        {
            **load_event("send_email", "journey_step"),
            "lead_id": lead_id,
            "template_id": "welcome",
            "idempotency_key": f"iam-test:{uuid.uuid4().hex}",
        }
    )
    assert sent.get("status") in ("sent", "already_sent"), sent
    wait = load_event("wait_for_event", "click_within_three_days")
    wait["lead_id"] = lead_id
    wait["events"][0]["message_id"] = "msg_clicked"
    # Entered when this scenario began: what the lead does from then on ends the wait
    wait["execution"]["StartTime"] = NOW.isoformat().replace("+00:00", "Z")
    aws.function("wait_for_event").invoke(wait)
    update = load_event("update_lead", "tag_pricing_interest")
    update["lead_id"] = lead_id
    aws.function("update_lead").invoke(update)
    decide = load_event("journey_decide", "split")
    decide["lead_id"] = lead_id
    assert aws.function("journey_decide").invoke(decide)["outcome"] in ("a", "b")

    # click_link on the waited-for mail -> route_events resumes the wait (SendTaskSuccess).
    q.click(lead_id, "msg_clicked")
    q.deliver()

    # hand_off: assign and notify, as the hand-off state machine calls them.
    owner = aws.function("hand_off").invoke({"step": "assign", "lead_id": lead_id})["owner"]
    aws.function("hand_off").invoke(
        {
            "step": "notify",
            "lead_id": lead_id,
            "owner": owner,
            "key": f"arn:aws:states:{REGION}:{ACCOUNT_ID}:execution:x:mql-1:Notify the owner",
        }
    )

    # unsubscribe (one-click from the mail sent above), then ses_feedback on that mail.
    mails = [m for m in sent_messages() if "hanako.sato@example.jp" in str(parse(m.raw_data)["To"])]
    assert mails, "send_email sent nothing"
    token = token_of(unsubscribe_url(parse(mails[-1].raw_data)))
    one_click = with_token(load_event("unsubscribe", "one_click_urlencoded"), token)
    unsubscribe(
        aws, with_body(one_click, "List-Unsubscribe=One-Click", "application/x-www-form-urlencoded")
    )
    feedback(aws, "delivery", lead_id, str(sent.get("message_id", "msg_feedback")))
    q.deliver()

    # crm_webhook: the CRM says "in negotiation" -> route_events stops the journey execution.
    body = crm_body(
        crm_id="SF-0001",
        email="hanako.sato@example.jp",
        status="in negotiation",
        owner="sales.sato@example.com",
        updated_at=(NOW - timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
    )
    response = q.crm_post(body, q.signed_headers(body))
    assert response["statusCode"] == 200, response
    q.deliver()

    # enter_segments: 100 days later every lead is silent_days>=90 -> re_engagement.
    set_clock(aws, NOW + timedelta(days=100))
    for key, value in aws.environment.items():
        monkeypatch.setenv(key, value)
    report = aws.function("enter_segments").invoke({})
    assert report.get("re_engagement", {}).get("entered"), report

    publish_journeys(aws)
    import_id = drive_import_list(aws)
    q.capture("jiro.suzuki@example.jp")  # a new lead, in no journey yet
    count_for_reports(aws)
    drive_admin_api(aws, "jiro.suzuki@example.jp", import_id)
    drive_rebuild_reports(aws, monkeypatch)


def drive_rebuild_reports(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild of more report days than the admin API counts in its request: queued (its
    state machine started), followed, and the state machine's steps - each day, and the
    failure a day out of retries records."""
    from tsunagu.api import admin as admin_routes

    moto_client("stepfunctions").create_state_machine(
        name=REBUILD_MACHINE,
        definition=json.dumps({"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/tsunagu-test-rebuild-reports",
    )
    stack = load_stack(TEMPLATE, {"Stage": "test"}, REGION)
    resolver = stack_resolver(stack, stack_names(aws))
    for logical_id in ("AdminApiFunction", "RebuildReportsFunction"):
        variables = stack.resources[logical_id]["Properties"].get("Environment", {})
        resolved = resolver.resolve(variables.get("Variables", {}))
        aws.environment.update({k: str(v) for k, v in resolved.items()})
    monkeypatch.setattr(admin_routes, "API_REBUILD_EVENTS", 0)
    admin = aws.function("admin_api")

    def ask(method: str, path: str, body: Any = None) -> Any:
        response = admin.invoke(admin_event(method, path, role=Role.ADMIN, body=body))
        assert response["statusCode"] < 300, (path, response)
        return json.loads(response["body"])

    steps = aws.function("rebuild_reports")
    for last_step in ("day", "failed"):
        job = ask("POST", "/admin/reports/rebuild", {"from": "2026-11-30", "to": "2026-12-01"})
        assert job["status"] == "queued", job
        step = {"step": "day", "rebuild_id": job["rebuild_id"]}
        assert steps.invoke(step)["days_done"] == 1
        if last_step == "failed":
            steps.invoke(step | {"step": "failed", "error": {"Error": "x", "Cause": "y"}})
        else:
            assert steps.invoke(step)["done"] is True
        ask("GET", f"/admin/reports/rebuilds/{job['rebuild_id']}")


def drive_import_list(aws: AwsStack) -> str:
    """A large list as the admin API and import_list take it: a pre-signed upload, its dry run
    queued, planned by import_list and read, the background run queued (its state machine
    started), and the state machine's steps. The import's id."""
    role = "arn:aws:iam::123456789012:role/tsunagu-test-import-list"
    moto_client("stepfunctions").create_state_machine(
        name=IMPORT_MACHINE,
        definition=json.dumps({"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}),
        roleArn=role,
    )
    stack = load_stack(TEMPLATE, {"Stage": "test"}, REGION)
    resolver = stack_resolver(stack, stack_names(aws))
    for logical_id in ("AdminApiFunction", "ImportListFunction"):
        variables = stack.resources[logical_id]["Properties"]["Environment"]["Variables"]
        aws.environment.update({k: str(v) for k, v in resolver.resolve(variables).items()})
    admin = aws.function("admin_api")
    sheet = "メールアドレス,氏名\r\niam.bulk@example.jp,一括 太郎\r\n".encode("cp932")

    def ask(method: str, path: str, body: Any) -> Any:
        response = admin.invoke(admin_event(method, path, role=Role.MARKETER, body=body))
        assert response["statusCode"] < 300, (path, response)
        return json.loads(response["body"])

    upload = ask("POST", "/admin/imports/uploads", {"file_name": "bulk.csv"})
    key = f"uploads/{upload['upload_id']}/bulk.csv"
    moto_client("s3").put_object(Bucket="tsunagu-test-importsbucket", Key=key, Body=sheet)
    file = {"file_name": "bulk.csv", "upload_id": upload["upload_id"]}
    steps = aws.function("import_list")
    plan_id = ask("POST", "/admin/imports/plans", file)["plan_id"]
    assert steps.invoke({"step": "dry_run", "plan_id": plan_id}) == {"status": "planned"}
    plan = ask("GET", f"/admin/imports/plans/{plan_id}", None)
    queued = ask("POST", "/admin/imports", file | {"plan_digest": plan["plan_digest"]})
    import_id = queued["import_id"]
    [chunk] = steps.invoke({"step": "prepare", "import_id": import_id})["chunks"]
    assert steps.invoke({"step": "chunk", **chunk}) == {"rows": 1}
    steps.invoke({"step": "park", **chunk, "error": {"Error": "x"}})  # counted once: no-op here
    assert steps.invoke({"step": "finish", "import_id": import_id}) == {"status": "applied"}
    ask("GET", f"/admin/imports/{import_id}", None)
    return str(import_id)


def count_for_reports(aws: AwsStack) -> None:
    """report_events counts everything the scenario stored, from the events stream."""
    records = new_stream_records(aws, "EventsTable")
    assert records
    for start in range(0, len(records), 100):
        answer = aws.function("report_events").invoke({"Records": records[start : start + 100]})
        assert answer == {"batchItemFailures": []}, answer


def drive_admin_api(aws: AwsStack, email: str, import_id: str) -> None:
    """admin_api with the environment template.yaml gives it, asked as a marketer what the
    console asks, and as an admin what only admins do (publishing is publish_journey's,
    above); a segment reads the import ``import_id`` (whose record it is checked against)."""
    pool = make_people_pool()
    # The users routes read their caller in the pool: the signed-in admin is there
    moto_client("cognito-idp").admin_create_user(UserPoolId=pool, Username=CALLER)
    moto_client("cognito-idp").admin_add_user_to_group(
        UserPoolId=pool, Username=CALLER, GroupName="admin"
    )
    stack = load_stack(TEMPLATE, {"Stage": "test"}, REGION)
    function = stack.resources["AdminApiFunction"]["Properties"]
    variables = stack_resolver(stack, stack_names(aws)).resolve(
        function["Environment"]["Variables"]
    )
    aws.environment.update({key: str(value) for key, value in variables.items()})
    admin = aws.function("admin_api")
    asks: list[tuple[str, str, Any]] = [
        ("GET", f"/admin/leads/{email}", None),
        ("GET", f"/admin/leads/{email}/timeline", None),
        ("PATCH", f"/admin/leads/{email}", {"add_tags": ["vip"], "fields": {"title": "部長"}}),
        ("POST", f"/admin/leads/{email}/events", {"kind": "booth_visited"}),
        ("GET", "/admin/journeys", None),
        ("GET", "/admin/journeys/status", None),
        ("POST", "/admin/journeys/seminar_follow_up/entries", {"lead": email}),
        # The same start again (the console sends no key: today's): asked whether its
        # execution exists, entered nobody twice
        ("POST", "/admin/journeys/seminar_follow_up/entries", {"lead": email}),
        ("POST", "/admin/journeys/re_engagement/entries", {"segment": "stage=lead"}),
        ("POST", "/admin/segments", {"name": "iam-test", "filter":
            f"stage=lead,did=form_submitted/30d,consent.marketing=yes,import={import_id}"}),
        ("POST", "/admin/segments/try", {"filter": "in_segment=iam-test"}),
        ("GET", "/admin/segments/iam-test", None),
        ("GET", "/admin/leads/export?segment=iam-test&encoding=cp932", None),
        ("POST", "/admin/journeys/re_engagement/entries", {"segment": "iam-test"}),
        ("POST", "/admin/journeys/welcome_nurture/pause", {}),
        ("POST", "/admin/journeys/welcome_nurture/resume", {"policy": {"kind": "skip_missed"}}),
        ("PUT", "/admin/emergency-stop", None),
        ("DELETE", "/admin/emergency-stop", None),
        ("PUT", "/admin/forms/iam-test", {"name": "IAM", "fields": [{"name": "email",
                                          "type": "email", "required": True}]}),
        ("PUT", "/admin/sites/iam-test", {"name": "IAM",
                                          "allowed_origins": ["https://www.example.com"]}),
        ("GET", "/admin/qualification", None),
        ("PUT", "/admin/qualification", {"minimum_grade": "C"}),
        ("POST", f"/admin/leads/{email}/suppression", {"note": "asked by phone"}),
        ("GET", "/admin/suppressions", None),
        ("POST", "/admin/imports/plans", {"file_name": "list.csv", "content_base64":
            "44Oh44O844Or44Ki44OJ44Os44K5DQppYW0ubGlzdEBleGFtcGxlLmpwDQo="}),
        ("DELETE", f"/admin/leads/{email}/suppression", {"note": "asked again"}),
        ("GET", "/admin/audit", None),
        ("GET", f"/admin/leads/{email}/score", None),
        ("GET", "/admin/hot-list", None),
        ("GET", "/admin/crm/pushes", None),
        ("GET", "/admin/templates", None),
        ("POST", "/admin/templates/seminar-invitation/versions", {"name": "IAM",
                 "subject": "IAM", "html": "<p>IAM</p>", "from_address": "news@example.com"}),
        ("GET", "/admin/templates/seminar-invitation", None),
        ("GET", f"/admin/templates/seminar-invitation/preview?lead={email}", None),
        ("POST", "/admin/templates/seminar-invitation/preview", {"lead": email, "template": {
            "name": "IAM", "subject": "IAM", "html": "<p>IAM</p>",
            "from_address": "news@example.com"}}),
        ("GET", "/admin/reports/mail/welcome", None),
        ("GET", "/admin/reports/journeys/welcome_nurture?format=csv", None),
    ]  # fmt: skip
    as_admin: list[tuple[str, str, Any]] = [
        ("POST", "/admin/users", {"email": "new.marketer@example.jp", "role": "marketer"}),
        ("PATCH", "/admin/users/new.marketer@example.jp", {"role": "viewer", "enabled": False}),
        ("PATCH", "/admin/users/new.marketer@example.jp", {"enabled": True}),
        ("PATCH", "/admin/users/new.marketer@example.jp", {"mfa": "off"}),
        ("GET", "/admin/users", None),
        ("POST", "/admin/reports/rebuild", {"from": "2026-11-01", "to": "2026-12-31"}),
    ]
    starts: list[str] = []
    lead_starts: set[tuple[str, str]] = set()
    for method, path, body in asks + as_admin:
        role = Role.ADMIN if (method, path, body) in as_admin else Role.MARKETER
        path, _, query = path.partition("?")
        response = admin.invoke(
            admin_event(
                method,
                path,
                role=role,
                body=body,
                query=dict(pair.split("=") for pair in query.split("&")) if query else None,
            )
        )
        if path == "/admin/audit":
            assert response["statusCode"] == 403, response  # marketers may not read the log
        else:
            assert response["statusCode"] < 300, (method, path, response)
        if path.endswith("/entries") and "lead" in body:
            entered = 0 if (path, body["lead"]) in lead_starts else 1
            lead_starts.add((path, body["lead"]))
            assert json.loads(response["body"])["entered"] == entered, response
        if path.endswith("/entries") and "segment" in body:
            assert response["statusCode"] == 202, response
            starts.append(json.loads(response["body"])["start_id"])

    # enter_segments runs each start for a segment, as Lambda runs the asynchronous event
    runner = dataclasses.replace(aws.function("enter_segments"), timeout=300)
    while ASYNC_EVENTS:
        function_name, queued = ASYNC_EVENTS.pop(0)
        assert function_name == "tsunagu-test-enter-segments", function_name
        assert runner.invoke(queued)["done"] is True
    for start_id in starts:
        response = admin.invoke(
            admin_event("GET", f"/admin/journeys/re_engagement/starts/{start_id}")
        )
        assert json.loads(response["body"])["status"] == "done", response

    # index_leads keeps the lead terms from the leads stream; searches read them
    assert index_leads(aws)
    for query in ({"tag": "vip"}, {"q": "jiro"}, {"tag": "vip", "stage": "lead"}):
        response = admin.invoke(admin_event("GET", "/admin/leads", query=query))
        assert response["statusCode"] == 200, response
        assert [row["email"] for row in json.loads(response["body"])["items"]] == [email]


PUBLISHED_MACHINE = f"{STATE_MACHINE_ARN_PREFIX}journey-welcome-nurture"


def publish_journeys(aws: AwsStack) -> None:
    """publish_journey with the environment template.yaml gives it: welcome_nurture published,
    changed and published again, its versions listed, rolled back."""
    from tsunagu_local.versions import run_versions_as_aws_does

    run_versions_as_aws_does()  # moto answers ListStateMachineVersions only with this
    stack = load_stack(TEMPLATE, {"Stage": "test"}, REGION)
    function = stack.resources["PublishJourneyFunction"]["Properties"]
    variables = stack_resolver(stack, stack_names(aws)).resolve(
        function["Environment"]["Variables"]
    )
    aws.environment.update({key: str(value) for key, value in variables.items()})
    definition = json.loads((ROOT / "journeys" / "welcome_nurture.json").read_text("utf-8"))
    publish = aws.function("publish_journey")
    first = publish.invoke({"action": "publish", "definition": definition, "note": "first"})
    assert first["ok"] and first["version"] == 1, first
    changed = {**definition, "description": definition["description"] + " Changed."}
    second = publish.invoke({"action": "publish", "definition": changed})
    assert second["ok"] and second["version"] == 2, second
    listed = publish.invoke({"action": "versions", "journey_id": "welcome_nurture"})
    assert [v["version"] for v in listed["versions"]] == [2, 1] and listed["live"] == 2, listed
    back = publish.invoke({"action": "rollback", "journey_id": "welcome_nurture"})
    assert back["ok"] and back["version"] == 1, back


def functions_named(asl: Any) -> set[str]:
    """Every FunctionName a state machine's tasks invoke."""
    if isinstance(asl, dict):
        named = {str(asl["FunctionName"])} if "FunctionName" in asl else set()
        return named.union(*(functions_named(value) for value in asl.values()))
    if isinstance(asl, list):
        return set().union(*(functions_named(value) for value in asl))
    return set()


# ================================================================ the tests
def test_every_call_a_handler_makes_is_allowed_by_its_role(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch, recorder: Recorder, tmp_path: Path
) -> None:
    q = qualify(aws, monkeypatch)
    # The events from November on are all in the day index (a stack upgraded before then): a
    # rebuild of November's days reads them by Query (rebuild_reports), one of earlier days
    # by a Scan (the admin API's)
    services.reports(aws.settings()).start_events_index("2026-11-01")
    drive_every_function(q, monkeypatch)

    missing_functions = FUNCTIONS_DRIVEN - set(recorder.invoked)
    assert not missing_functions, f"never invoked: {sorted(missing_functions)}"
    reached = {(c.function, f"{c.service}:{c.operation}") for c in recorder.calls} | {
        (call.function, action) for call in recorder.calls for action, _ in required(call)
    }
    assert not EXPECTED - reached, (
        f"calls the scenarios no longer make: {sorted(EXPECTED - reached)}"
    )

    names = stack_names(aws)
    statements = template_statements(TEMPLATE, names)
    gaps = permission_gaps(recorder.calls, statements)
    assert not gaps, gap_report(gaps, statements, names)

    # The role every published journey runs with may invoke each function the published
    # journey's tasks invoke (the calls Step Functions makes with it), and no other.
    stack = load_stack(TEMPLATE, {"Stage": "test"}, REGION)
    journey_role = policy_statements(
        "JourneyRole", stack.resources["JourneyRole"]["Properties"], stack_resolver(stack, names)
    )
    published = moto_client("stepfunctions").describe_state_machine(
        stateMachineArn=PUBLISHED_MACHINE
    )
    invoked = functions_named(json.loads(published["definition"]))
    # gate, send, wait for an event, next send time, update, and journey_decide (a timed-out wait)
    assert len(invoked) == 6, invoked
    # ... and every activity a published journey may call (journey_decide too, and hand_off
    # for notify_owner and webhook nodes)
    pairs = aws.environment["TSUNAGU_JOURNEY_ACTIVITY_ARNS"].split(",")
    activities = {pair.partition("=")[2] for pair in pairs}
    assert len(activities) == 7 and invoked <= activities, activities
    refused = [arn for arn in activities if not allows(journey_role, "lambda:InvokeFunction", arn)]
    assert not refused, f"JourneyRole may not invoke {refused}"
    # publish_journey may make only journey-* state machines, and pass only JourneyRole
    publisher = statements["publish_journey"]
    stack_machine = f"{STATE_MACHINE_ARN_PREFIX}welcome-nurture"
    assert allows(publisher, "states:UpdateStateMachine", PUBLISHED_MACHINE)
    assert not allows(publisher, "states:UpdateStateMachine", stack_machine)
    assert not allows(publisher, "states:CreateStateMachine", f"{STATE_MACHINE_ARN_PREFIX}x")
    to_states = {"iam:PassedToService": "states.amazonaws.com"}
    assert allows(publisher, "iam:PassRole", aws.environment["TSUNAGU_JOURNEY_ROLE_ARN"], to_states)
    other_role = f"arn:aws:iam::{ACCOUNT_ID}:role/{STAGE_PREFIX}RouteEventsFunctionRole"
    assert not allows(publisher, "iam:PassRole", other_role, to_states)
    assert not allows(
        journey_role,
        "lambda:InvokeFunction",
        f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:test-capture_form",
    )

    # And the check can fail: route_events without its Step Functions statement and without
    # the QualificationTable policy (the gap that reached a deployment).
    weakened = weakened_template(tmp_path)
    weak_statements = template_statements(weakened, names)
    weak_gaps = permission_gaps(recorder.calls, weak_statements)
    qualification_arn = _table_arn(names["QualificationTable"])
    assert (
        "route_events",
        "states:StartExecution",
        f"{STATE_MACHINE_ARN_PREFIX}welcome-nurture",
    ) in weak_gaps
    assert any(
        f == "route_events" and r == qualification_arn and a.startswith("dynamodb:")
        for f, a, r in weak_gaps
    ), gap_report(weak_gaps, weak_statements, names)
    assert {f for f, _, _ in weak_gaps} == {"route_events"}, weak_gaps
    report = gap_report(weak_gaps, weak_statements, names)
    assert "MISSING states:StartExecution" in report and "(QualificationTable)" in report


def test_every_transaction_a_handler_writes_can_be_retried_safely(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch, recorder: Recorder
) -> None:
    # A TransactWriteItems whose answer was lost is sent again by the SDK with the same
    # ClientRequestToken (botocore fills it in), and DynamoDB - and the local runtime, see
    # tsunagu_local.transactions - answers the repeat without applying it again. Here: every
    # transaction of every handler carries one, and no two share one
    q = qualify(aws, monkeypatch)
    drive_every_function(q, monkeypatch)
    transactions = [c for c in recorder.calls if c.operation == "TransactWriteItems"]
    writers = {c.function for c in transactions}
    assert {"capture_form", "route_events", "send_email"} <= writers, writers
    untokened = sorted({c.function for c in transactions if not c.params.get("ClientRequestToken")})
    assert not untokened, f"transactions without a ClientRequestToken: {untokened}"
    tokens = [c.params["ClientRequestToken"] for c in transactions]
    # One token per transaction (the SDK's own retries reuse it; a new write never does)
    assert len(tokens) == len(set(tokens))
    assert all(1 <= len(t) <= 36 for t in tokens)


def weakened_template(tmp_path: Path) -> Path:
    """A copy of template.yaml whose route_events role lacks states:StartExecution and the
    QualificationTable policy."""
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(TEMPLATE.read_text("utf-8"))
    policies = template["Resources"]["RouteEventsFunction"]["Properties"]["Policies"]
    kept = []
    for policy in policies:
        crud = policy.get("DynamoDBCrudPolicy") if isinstance(policy, dict) else None
        if crud is not None and crud["TableName"] == {"Ref": "QualificationTable"}:
            continue
        if isinstance(policy, dict) and "Statement" in policy:
            policy = {
                "Statement": [
                    s
                    for s in policy["Statement"]
                    if "states:StartExecution" not in _strings(s["Action"])
                ]
            }
        kept.append(policy)
    template["Resources"]["RouteEventsFunction"]["Properties"]["Policies"] = kept
    (tmp_path / "statemachines").symlink_to(ROOT / "statemachines")
    copy = tmp_path / "template.yaml"
    copy.write_text(json.dumps(template), "utf-8")  # JSON is YAML
    return copy


def test_the_matcher_follows_iam() -> None:
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/tsunagu-test-LeadsTable"
    machines = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:tsunagu-test-*"
    statements = [
        Statement("Allow", ("dynamodb:GetItem", "dynamodb:Query"), (table, f"{table}/index/*")),
        Statement("Allow", ("states:Start*",), (machines,)),
        Statement("Deny", ("states:StartExecution",), (machines.replace("*", "secret-*"),)),
    ]
    assert allows(statements, "dynamodb:GetItem", table)
    assert allows(statements, "DynamoDB:getitem", table)  # actions are case-insensitive
    assert allows(statements, "dynamodb:Query", f"{table}/index/by-email")
    assert not allows(statements, "dynamodb:PutItem", table)
    assert not allows(statements, "dynamodb:GetItem", table + "2")
    assert not allows(statements, "dynamodb:GetItem", table.replace("Leads", "Events"))
    assert allows(statements, "states:StartExecution", machines.replace("*", "welcome-nurture"))
    assert not allows(
        statements, "states:StartExecution", machines.replace("tsunagu-test-*", "other-x")
    )
    assert not allows(statements, "states:StartExecution", machines.replace("*", "secret-x"))
    assert not allows([], "dynamodb:GetItem", table)

    # A transaction is authorized item by item, on each item's table.
    transaction = Call(
        "capture_form",
        "dynamodb",
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "tsunagu-test-LeadsTable"}},
                {"ConditionCheck": {"TableName": "tsunagu-test-EventsTable"}},
            ]
        },
    )
    assert required(transaction) == [
        ("dynamodb:PutItem", table),
        ("dynamodb:ConditionCheckItem", table.replace("Leads", "Events")),
    ]
    gaps = permission_gaps([transaction], {"capture_form": statements})
    assert gaps == [
        ("capture_form", "dynamodb:PutItem", table),
        ("capture_form", "dynamodb:ConditionCheckItem", table.replace("Leads", "Events")),
    ]
    # SES v2 SendEmail needs the identity and the configuration set.
    send = Call(
        "send_email",
        "ses",
        "SendEmail",
        {
            "FromEmailAddress": "Example <news@example.com>",
            "ConfigurationSetName": "tsunagu-test",
            "Content": {},
        },
    )
    ses = f"arn:aws:ses:{REGION}:{ACCOUNT_ID}"
    assert required(send) == [
        ("ses:SendEmail", f"{ses}:identity/example.com"),
        ("ses:SendEmail", f"{ses}:configuration-set/tsunagu-test"),
    ]
    only_identity = [Statement("Allow", ("ses:SendEmail",), (f"{ses}:identity/example.com",))]
    assert permission_gaps([send], {"send_email": only_identity}) == [
        ("send_email", "ses:SendEmail", f"{ses}:configuration-set/tsunagu-test")
    ]

    # iam:PassRole with a StringEquals condition: only when the role goes to that service.
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/tsunagu-test-JourneyRole"
    pass_to_states = [
        Statement(
            "Allow",
            ("iam:PassRole",),
            (role,),
            string_equals=(("iam:PassedToService", "states.amazonaws.com"),),
        )
    ]
    create = Call(
        "publish_journey",
        "states",
        "CreateStateMachine",
        {"name": "tsunagu-test-journey-x", "roleArn": role},
    )
    assert ("iam:PassRole", role) in required(create)
    assert request_context(create, "iam:PassRole") == {
        "iam:PassedToService": "states.amazonaws.com"
    }
    assert allows(pass_to_states, "iam:PassRole", role, request_context(create, "iam:PassRole"))
    assert not allows(pass_to_states, "iam:PassRole", role)
    assert not allows(
        pass_to_states, "iam:PassRole", role, {"iam:PassedToService": "lambda.amazonaws.com"}
    )


def test_no_role_may_change_or_delete_an_audit_entry(aws: AwsStack) -> None:
    # The audit log is appended to by the use cases: with the operator's own credentials at the
    # CLI, and by the admin API's function, which may append (PutItem, conditional on a new
    # key, in tsunagu.store.audit) and nothing else; no role may overwrite or delete an entry.
    names = stack_names(aws)
    audit_table = _table_arn(names["AuditLogTable"])
    stack = load_stack(TEMPLATE, {"Stage": "test"}, REGION)
    roles = template_statements(TEMPLATE, names)
    roles["JourneyRole"] = policy_statements(
        "JourneyRole", stack.resources["JourneyRole"]["Properties"], stack_resolver(stack, names)
    )
    writes = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "DeleteTable", "UpdateTable")
    granted = [
        (role, action)
        for role, statements in roles.items()
        for action in (f"dynamodb:{w}" for w in writes)
        if allows(statements, action, audit_table)
    ]
    # (rebuild_reports logs a background rebuild's end under whoever asked for it: appended
    # through the same store, conditional on a new key)
    assert sorted(granted) == [
        ("admin_api", "dynamodb:PutItem"),
        ("rebuild_reports", "dynamodb:PutItem"),
    ]
    assert len(roles) > 10  # every function's role was read, not none
