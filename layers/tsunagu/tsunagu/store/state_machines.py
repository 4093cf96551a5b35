"""Publishing journeys to Step Functions (the port: tsunagu.journeys.publishing.StateMachines)."""

from __future__ import annotations

from typing import Any

from tsunagu.clock import isoformat
from tsunagu.journeys.publishing import LIVE_ALIAS, Machine, MachineVersion
from tsunagu.settings import Settings


def _code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


class StepFunctionsStateMachines:
    def __init__(self, settings: Settings) -> None:
        import boto3  # only the publishing function and the CLI publish

        self._client: Any = boto3.client(
            "stepfunctions", region_name=settings.region, endpoint_url=settings.aws_endpoint_url
        )

    def find(self, arn: str) -> Machine | None:
        try:
            self._client.describe_state_machine(stateMachineArn=arn)
        except Exception as error:  # botocore's ClientError, without importing botocore here
            if _code(error) == "StateMachineDoesNotExist":
                return None
            raise
        alias_arn = f"{arn}:{LIVE_ALIAS}"
        try:
            alias = self._client.describe_state_machine_alias(stateMachineAliasArn=alias_arn)
        except Exception as error:
            if _code(error) in ("ResourceNotFound", "StateMachineDoesNotExist"):
                return Machine(arn=arn, alias_arn=None, live_version_arn=None)
            raise
        routes = alias["routingConfiguration"]
        live = max(routes, key=lambda route: route["weight"])["stateMachineVersionArn"]
        return Machine(arn=arn, alias_arn=alias_arn, live_version_arn=str(live))

    def create(self, name: str, definition: str, role_arn: str, note: str | None) -> str:
        response = self._client.create_state_machine(
            name=name,
            definition=definition,
            roleArn=role_arn,
            type="STANDARD",
            tracingConfiguration={"enabled": True},
            publish=True,
            **({"versionDescription": note} if note else {}),
        )
        return str(response["stateMachineVersionArn"])

    def publish(self, arn: str, definition: str, note: str | None) -> str:
        response = self._client.update_state_machine(
            stateMachineArn=arn,
            definition=definition,
            publish=True,
            **({"versionDescription": note} if note else {}),
        )
        return str(response["stateMachineVersionArn"])

    def definition(self, version_arn: str) -> str:
        described = self._client.describe_state_machine(stateMachineArn=version_arn)
        return str(described["definition"])

    def point_alias(self, machine: Machine, version_arn: str) -> str:
        routing = [{"stateMachineVersionArn": version_arn, "weight": 100}]
        if machine.alias_arn is None:
            created = self._client.create_state_machine_alias(
                name=LIVE_ALIAS,
                routingConfiguration=routing,
                description="The version new entries take (tsunagu journeys publish / rollback).",
            )
            return str(created["stateMachineAliasArn"])
        self._client.update_state_machine_alias(
            stateMachineAliasArn=machine.alias_arn, routingConfiguration=routing
        )
        return machine.alias_arn

    def versions(self, arn: str) -> list[MachineVersion]:
        found: list[MachineVersion] = []
        token: str | None = None
        while True:  # boto3 has no paginator for this call
            page = self._client.list_state_machine_versions(
                stateMachineArn=arn, **({"nextToken": token} if token else {})
            )
            for item in page["stateMachineVersions"]:
                version_arn = str(item["stateMachineVersionArn"])
                described = self._client.describe_state_machine(stateMachineArn=version_arn)
                found.append(
                    MachineVersion(
                        number=int(version_arn.rsplit(":", 1)[1]),
                        arn=version_arn,
                        created_at=isoformat(item["creationDate"]),
                        note=described.get("description") or None,
                    )
                )
            token = page.get("nextToken")
            if not token:
                break
        return sorted(found, key=lambda version: version.number, reverse=True)
