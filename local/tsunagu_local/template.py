"""template.yaml -> the transformed CloudFormation resources, offline."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

PLACEHOLDER_BUCKET = "tsunagu-local-artifacts"


class TemplateError(Exception):
    """The template asks for something the local runtime cannot provide."""


@dataclass(frozen=True)
class Stack:
    """The translated template plus what the translation forgets: where each code folder is."""

    resources: dict[str, dict[str, Any]]
    parameters: dict[str, Any]
    conditions: dict[str, Any]
    outputs: dict[str, Any]
    code_dirs: dict[str, Path]
    """Logical id of each AWS::Lambda::Function -> its CodeUri folder."""

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}


class _OfflinePolicyLoader:
    """The translator asks IAM for the managed-policy map; offline, an empty map is enough."""

    def load(self) -> dict[str, str]:
        return {}


def _prepare(template: dict[str, Any], base_dir: Path) -> dict[str, Path]:
    """Point code at placeholder S3 URIs (the translator refuses local paths) and inline ASL."""
    global_code = template.get("Globals", {}).get("Function", {}).get("CodeUri")
    code_dirs: dict[str, Path] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        props = resource.setdefault("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function":
            code_uri = props.get("CodeUri", global_code)
            if not isinstance(code_uri, str):
                raise TemplateError(f"{logical_id}: CodeUri must be a local folder")
            code_dirs[logical_id] = (base_dir / code_uri).resolve()
            props["CodeUri"] = f"s3://{PLACEHOLDER_BUCKET}/{logical_id}.zip"
        elif kind == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = f"s3://{PLACEHOLDER_BUCKET}/{logical_id}.zip"
        elif kind == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            definition_path = base_dir / props.pop("DefinitionUri")
            props["Definition"] = json.loads(definition_path.read_text(encoding="utf-8"))
        elif kind in ("AWS::Serverless::HttpApi", "AWS::Serverless::Api") and isinstance(
            props.get("DefinitionUri"), str
        ):
            props["DefinitionBody"] = yaml_parse(
                (base_dir / props.pop("DefinitionUri")).read_text(encoding="utf-8")
            )
    if global_code is not None:
        template["Globals"]["Function"].pop("CodeUri")
    return code_dirs


def declared_parameters(template_path: Path) -> dict[str, Any]:
    parameters: dict[str, Any] = _parsed(template_path.read_text(encoding="utf-8")).get(
        "Parameters", {}
    )
    return copy.deepcopy(parameters)


# Parsing template.yaml and translating it take most of a second (PyYAML in pure Python, then the
# SAM translator). The test suite loads the same template for every in-process stack and every
# runtime it starts, so both are kept for the text, and the translation for its exact input:
# a changed template, ASL or API document is parsed and translated again. Callers get copies.


@lru_cache(maxsize=4)
def _parsed(text: str) -> Any:
    return yaml_parse(text)


@lru_cache(maxsize=8)
def _translated(prepared: str, values: str) -> dict[str, Any]:
    template = json.loads(prepared)
    translated: dict[str, Any] = transform(template, json.loads(values), _OfflinePolicyLoader())
    return translated


def load_stack(template_path: Path, parameters: dict[str, str], region: str) -> Stack:
    template = copy.deepcopy(_parsed(template_path.read_text(encoding="utf-8")))
    code_dirs = _prepare(template, template_path.parent)
    declared = template.get("Parameters", {})
    unknown = set(parameters) - set(declared)
    if unknown:
        raise TemplateError(f"parameters not declared in the template: {sorted(unknown)}")
    values = {name: spec.get("Default") for name, spec in declared.items()} | parameters
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise TemplateError(f"parameters without a value: {missing}")
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    # The translation's whole input as its cache key (the template holds only JSON values once
    # parsed: samtranslator's loader reads dates and numbers as text where CloudFormation does).
    translated = copy.deepcopy(
        _translated(json.dumps(template, sort_keys=True), json.dumps(values, sort_keys=True))
    )
    resources = translated["Resources"]
    # The translator renames nothing that had a CodeUri: the function keeps its logical id.
    return Stack(
        resources=resources,
        parameters={k: str(v) for k, v in values.items()},
        conditions=translated.get("Conditions", {}),
        outputs=translated.get("Outputs", {}),
        code_dirs={k: v for k, v in code_dirs.items() if k in resources},
    )
