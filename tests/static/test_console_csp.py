"""The deployed console may call what its config.json names, with or without a custom domain.

The console reads ``api_url`` and ``cognito_url`` from the config.json that ``tsunagu console
publish`` writes from the stack's outputs, and CloudFront sends it template.yaml's CSP
(ConsoleSecurityHeaders). The local runtime swaps connect-src for its own origins, so only this
check, over the template as CloudFormation would resolve it, sees the two disagree: with
``PublicBaseUrl`` set, connect-src once named the custom domain only, while config.json named the
execute-api URL, and the browser refused every admin call. The same config names the public
routes (``public_url``) for the code a team pastes into its website: the custom domain when set.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from samtranslator.yaml_helper import yaml_parse

from tests.conftest import TEMPLATE
from tsunagu.cli_console import publish

REGION = "ap-northeast-1"
PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "tsunagu-prod",
}
API_ID = "abc123defg"
"""What CloudFormation gives for ``!Ref HttpApi``."""
DISTRIBUTION_DOMAIN = "d111example.cloudfront.net"


class Deployed:
    """template.yaml's values as CloudFormation resolves them for one set of parameters: just
    the intrinsics the console's headers and the outputs publish reads use."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str]) -> None:
        self.template = template
        self.values = {
            **{name: str(p.get("Default", "")) for name, p in template["Parameters"].items()},
            **parameters,
            **PSEUDO,
            "HttpApi": API_ID,
            "HttpApi.ApiEndpoint": f"https://{API_ID}.execute-api.{REGION}.amazonaws.com",
            "ConsoleDistribution.DomainName": DISTRIBUTION_DOMAIN,
        }

    def resolve(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        ((function, argument),) = node.items()
        if function == "Ref":
            return self.value(argument)
        if function == "Fn::GetAtt":
            return self.value(argument if isinstance(argument, str) else ".".join(argument))
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            known = {name: str(self.resolve(value)) for name, value in variables.items()}
            return re.sub(r"\$\{([^}!]+)\}", lambda m: self.value(m[1], known), text)
        if function == "Fn::If":
            condition, then, otherwise = argument
            return self.resolve(then if self.condition(condition) else otherwise)
        if function == "Fn::Not":
            return not self.resolve(argument[0])
        if function == "Fn::Equals":
            return self.resolve(argument[0]) == self.resolve(argument[1])
        if function == "Condition":
            return self.condition(argument)
        raise AssertionError(f"no resolver for {function}")

    def value(self, name: str, substituted: dict[str, str] | None = None) -> str:
        if substituted and name in substituted:
            return substituted[name]
        if name in self.values:
            return self.values[name]
        # Any other resource's name or attribute: what the console reads is none of them
        assert name.split(".")[0] in self.template["Resources"], name
        return f"{PSEUDO['AWS::StackName']}-{name}"

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def outputs(self) -> dict[str, str]:
        return {
            name: str(self.resolve(output["Value"]))
            for name, output in self.template["Outputs"].items()
            if "Condition" not in output or self.condition(output["Condition"])
        }

    def connect_src(self) -> list[str]:
        headers = self.template["Resources"]["ConsoleSecurityHeaders"]["Properties"]
        config = headers["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
        policy = str(self.resolve(config["ContentSecurityPolicy"]["ContentSecurityPolicy"]))
        (directive,) = [d.split() for d in policy.split(";") if d.split()[:1] == ["connect-src"]]
        return directive[1:]


def allows(sources: list[str], url: str) -> bool:
    """Whether a CSP source list lets the page fetch ``url`` (host sources, CSP Level 3: the
    scheme, a host or ``*.``-wildcard host, the default port, and a path prefix if one is given)."""
    wanted = urlsplit(url)
    for source in sources:
        if source.startswith("'"):
            continue  # 'self' is the console's own origin, never the API's
        allowed = urlsplit(source)
        host, want = allowed.hostname or "", wanted.hostname or ""
        host_matches = want.endswith(host[1:]) if host.startswith("*.") else want == host
        path = allowed.path
        path_matches = not path or (
            wanted.path.startswith(path) if path.endswith("/") else wanted.path == path
        )
        if allowed.scheme == wanted.scheme and host_matches and path_matches:
            return True
    return False


class Bucket:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, **request: Any) -> None:
        self.objects[request["Key"]] = request["Body"]


class CloudFront:
    def create_invalidation(self, **_: Any) -> dict[str, Any]:
        return {"Invalidation": {"Id": "I1"}}


def published_config(tmp_path: Path, outputs: dict[str, str]) -> dict[str, str]:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html><title>Tsunagu</title>")
    bucket = Bucket()
    publish(dist, outputs, REGION, s3=bucket, cloudfront=CloudFront())
    config: dict[str, str] = json.loads(bucket.objects["console/config.json"])
    return config


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse(TEMPLATE.read_text("utf-8"))
    return parsed


@pytest.mark.parametrize("public_base_url", ["", "https://t.example.com"])
def test_the_console_may_call_the_api_and_the_sign_in_its_config_names(
    template: dict[str, Any], public_base_url: str, tmp_path: Path
) -> None:
    # Given a stack deployed with or without a custom domain for the links in mail
    deployed = Deployed(template, {"Stage": "prod", "PublicBaseUrl": public_base_url})
    # When the console is published to it
    config = published_config(tmp_path, deployed.outputs())
    # Then the console's policy lets it call the admin API and Cognito that config names
    sources = deployed.connect_src()
    assert config["api_url"] == f"https://{API_ID}.execute-api.{REGION}.amazonaws.com"
    assert allows(sources, config["api_url"] + "/admin/me"), (config["api_url"], sources)
    assert allows(sources, config["cognito_url"]), (config["cognito_url"], sources)


@pytest.mark.parametrize(
    ("public_base_url", "public_url"),
    [
        ("", f"https://{API_ID}.execute-api.{REGION}.amazonaws.com"),
        ("https://t.example.com", "https://t.example.com"),
    ],
)
def test_the_website_s_code_names_the_team_s_own_domain_when_it_has_one(
    template: dict[str, Any], public_base_url: str, public_url: str, tmp_path: Path
) -> None:
    # Given a stack deployed with or without a custom domain in front of the public routes
    deployed = Deployed(template, {"Stage": "prod", "PublicBaseUrl": public_base_url})
    # When the console is published to it
    config = published_config(tmp_path, deployed.outputs())
    # Then the tracking snippet and the embed code (made from public_url) name that domain, as
    # the links in mail do (the sender's TSUNAGU_API_URL), while the console's admin calls stay
    # on execute-api
    assert config["public_url"] == public_url
    sender = template["Resources"]["SendEmailFunction"]["Properties"]
    assert config["public_url"] == deployed.resolve(
        sender["Environment"]["Variables"]["TSUNAGU_API_URL"]
    )
    assert config["api_url"] == f"https://{API_ID}.execute-api.{REGION}.amazonaws.com"


def test_the_custom_domain_may_be_called_beside_the_api(template: dict[str, Any]) -> None:
    # The same API under the team's own domain: an operator may point config.json at it
    deployed = Deployed(template, {"Stage": "prod", "PublicBaseUrl": "https://t.example.com"})
    assert allows(deployed.connect_src(), "https://t.example.com/admin/me")


def test_the_source_matcher_refuses_what_a_browser_refuses() -> None:
    sources = [
        "'self'",
        "https://*.execute-api.ap-northeast-1.amazonaws.com",
        "https://t.example.com",
    ]
    assert allows(sources, "https://abc.execute-api.ap-northeast-1.amazonaws.com/admin/me")
    assert not allows(sources, "https://abc.execute-api.us-east-1.amazonaws.com/admin/me")
    assert not allows(sources, "http://t.example.com/admin/me")
    assert not allows(sources, "https://u.example.com/admin/me")
