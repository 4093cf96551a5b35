"""Step Functions versions and aliases, run as AWS runs them.

A published journey (tsunagu.journeys.publishing) starts every entry on its alias, so that an
execution finishes on the version it started on while new entries take the newest. moto keeps
versions and aliases but does not run them that way:

- StartExecution on an alias ARN answers StateMachineDoesNotExist;
- an execution started on a version is kept on that version only, so DescribeExecution,
  GetExecutionHistory and StopExecution by its ARN, and ListExecutions on the state machine, do
  not find it, and a second start with the same name is not refused;
- DescribeExecution does not say which version and alias ran it;
- ListStateMachineVersions is not answered at all;
- once an execution has run on a version, StartExecution on the state machine fails (its copy
  of the state machine copies the version's executions too).

Here an alias routes each start to one of its versions by the weights of its routing
configuration, a version's execution is also the state machine's (as in AWS, where execution
names are unique per state machine), and DescribeExecution gives ``stateMachineVersionArn`` and
``stateMachineAliasArn``, ListStateMachineVersions lists the versions newest first (one
page: a journey has tens of versions, not thousands), and the state machine itself starts
whatever has run on its versions.
"""

from __future__ import annotations

import secrets
from types import MethodType
from typing import Any

_PATCHED_FLAG = "_tsunagu_runs_versions"


def _is_alias_arn(arn: str) -> bool:
    """``arn:aws:states:<region>:<account>:stateMachine:<name>:<alias>`` (a version ends in a
    number instead)."""
    parts = arn.split(":")
    return len(parts) == 8 and parts[5] == "stateMachine" and not parts[7].isdigit()


class _ExecutionsOfAVersion(list[Any]):
    """A version's executions (ListExecutions on the version answers them), left out of copies.

    moto's StartExecution on a state machine deep-copies it as the new execution's snapshot of
    the definition, leaving out the state machine's own executions (live threads and locks that
    cannot be copied, moto issue 10077) but not its versions' - copied with them, an execution
    started on a version or an alias made every later start on the state machine answer 500
    ("cannot pickle '_thread.RLock' object"). A snapshot needs none of them."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _ExecutionsOfAVersion:
        return _ExecutionsOfAVersion()


def _routed_version(routing: list[dict[str, Any]]) -> str:
    arns = [str(route["stateMachineVersionArn"]) for route in routing]
    weights = [int(route["weight"]) for route in routing]
    return secrets.SystemRandom().choices(arns, weights)[0]


def run_versions_as_aws_does() -> None:
    """Install the behaviours above (once per process)."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    if getattr(StepFunctionsParserBackend.start_execution, _PATCHED_FLAG, False):
        return
    moto_start = StepFunctionsParserBackend.start_execution
    moto_describe = StepFunctionResponse.describe_execution

    def start_execution(
        self: Any,
        state_machine_arn: str,
        name: Any = None,
        execution_input: Any = None,
        trace_header: Any = None,
    ) -> Any:
        alias_arn = None
        if _is_alias_arn(state_machine_arn):
            alias_arn = state_machine_arn
            alias = self.describe_state_machine_alias(alias_arn)
            state_machine_arn = _routed_version(alias.routing_configuration)
        source_arn = getattr(self.describe_state_machine(state_machine_arn), "source_arn", None)
        if source_arn is None:  # the state machine itself: moto runs it as AWS does
            return moto_start(self, state_machine_arn, name, execution_input, trace_header)
        state_machine = self.describe_state_machine(source_arn)
        repeated = state_machine._handle_name_input_idempotency(name, execution_input or "{}")
        if repeated is not None:
            return repeated
        # moto's start reads these from a state machine; a version has neither.
        version = self.describe_state_machine(state_machine_arn)
        if not isinstance(version.executions, _ExecutionsOfAVersion):
            version.executions = _ExecutionsOfAVersion(version.executions)
        version.backend = state_machine.backend
        version._handle_name_input_idempotency = MethodType(
            type(state_machine)._handle_name_input_idempotency, version
        )
        execution: Any = moto_start(self, state_machine_arn, name, execution_input, trace_header)
        execution.state_machine_arn = source_arn
        execution.tsunagu_version_arn = state_machine_arn
        execution.tsunagu_alias_arn = alias_arn
        state_machine.executions.append(execution)
        return execution

    def describe_execution(self: Any) -> Any:
        answer = moto_describe(self)
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        described: Any = answer.result  # the dict moto built
        for key, attribute in (
            ("stateMachineVersionArn", "tsunagu_version_arn"),
            ("stateMachineAliasArn", "tsunagu_alias_arn"),
        ):
            if getattr(execution, attribute, None):
                described[key] = getattr(execution, attribute)
        return answer

    def list_state_machine_versions(self: Any) -> Any:
        from moto.core.responses import ActionResult

        arn = self._get_param("stateMachineArn")
        state_machine = self.stepfunction_backend.describe_state_machine(arn)
        newest_first = sorted(state_machine.versions.values(), key=lambda v: -v.version)
        return ActionResult(
            {
                "stateMachineVersions": [
                    {"stateMachineVersionArn": v.arn, "creationDate": v.creation_date}
                    for v in newest_first
                ]
            }
        )

    setattr(start_execution, _PATCHED_FLAG, True)
    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]
    StepFunctionResponse.describe_execution = describe_execution  # type: ignore[method-assign]
    StepFunctionResponse.list_state_machine_versions = list_state_machine_versions  # type: ignore[attr-defined]
