"""Resolving CloudFormation intrinsic functions against the locally created resources."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tsunagu_local.template import TemplateError

_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


@dataclass
class Resolver:
    parameters: Mapping[str, str]
    conditions: Mapping[str, Any]
    refs: dict[str, str] = field(default_factory=dict)
    """Logical id -> what Ref returns for it."""
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    """(logical id, attribute) -> what Fn::GetAtt returns."""

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            handler = getattr(self, "_" + key.replace("::", "_").replace("Fn_", "fn_"), None)
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                if handler is None:
                    raise TemplateError(f"the local runtime does not support {key}")
                return handler(arg)
        return {k: self.resolve(v) for k, v in value.items()}

    def _Ref(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise TemplateError(f"Ref to {name!r}, which the local runtime has not created")

    def _fn_GetAtt(self, arg: Any) -> str:
        logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
        try:
            return self.attributes[(logical_id, self.resolve(attribute))]
        except KeyError:
            raise TemplateError(
                f"Fn::GetAtt {logical_id}.{attribute} is not known locally"
            ) from None

    def _fn_Sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                return self._fn_GetAtt(name)
            return self._Ref(name)

        return _SUB.sub(replace, text).replace("${!", "${")

    def _fn_Join(self, arg: Any) -> str:
        separator, items = arg
        return str(separator).join(str(v) for v in self.resolve(items))

    def _fn_Select(self, arg: Any) -> Any:
        index, items = arg
        return self.resolve(items)[int(self.resolve(index))]

    def _fn_Split(self, arg: Any) -> list[str]:
        separator, text = arg
        return str(self.resolve(text)).split(separator)

    def _fn_If(self, arg: Any) -> Any:
        condition, if_true, if_false = arg
        return self.resolve(if_true if self.condition(condition) else if_false)

    def _fn_Equals(self, arg: Any) -> bool:
        left, right = self.resolve(arg)
        return str(left) == str(right)

    def _fn_Not(self, arg: Any) -> bool:
        return not self.resolve(arg[0])

    def _fn_And(self, arg: Any) -> bool:
        return all(self.resolve(a) for a in arg)

    def _fn_Or(self, arg: Any) -> bool:
        return any(self.resolve(a) for a in arg)

    def _Condition(self, name: str) -> bool:
        return self.condition(name)

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            raise TemplateError(f"condition {name!r} is not defined")
        return bool(self.resolve(self.conditions[name]))
