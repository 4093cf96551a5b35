"""The qualification rules (scoring, grading, the MQL threshold, owner rules, the CRM merge
policy), as marketers read and change them; each change goes in the audit log, section by
section, so "who lowered the MQL threshold?" has an answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from tsunagu.clock import Clock
from tsunagu.commands.access import Actor
from tsunagu.commands.audit import AuditLog, recorded
from tsunagu.errors import FieldError, ValidationFailed
from tsunagu.qualification.config import QualificationConfig


class Rules(Protocol):
    def config(self) -> QualificationConfig: ...

    def save_config(self, config: QualificationConfig) -> None: ...


@dataclass(frozen=True)
class QualificationCommands:
    rules: Rules
    audit: AuditLog
    clock: Clock


def show(ports: QualificationCommands, actor: Actor) -> QualificationConfig:
    with recorded(ports.audit, ports.clock, actor, "qualification.show", "qualification"):
        return ports.rules.config()


def replace_sections(
    ports: QualificationCommands, actor: Actor, given: Mapping[str, Any]
) -> QualificationConfig:
    """Replace the sections ``given`` has (scoring, grading, minimum_grade, owners, crm_merge);
    the others stay. ValidationFailed says what is wrong, field by field."""
    with recorded(ports.audit, ports.clock, actor, "qualification.set", "qualification") as log:
        current = ports.rules.config().model_dump(mode="json")
        try:
            config = QualificationConfig.model_validate({**current, **given})
        except ValidationError as error:
            raise ValidationFailed(
                [
                    FieldError(".".join(str(p) for p in e["loc"]) or "(rules)", e["msg"])
                    for e in error.errors()
                ]
            ) from None
        ports.rules.save_config(config)
        log.changed(current, config.model_dump(mode="json"))
    return config
