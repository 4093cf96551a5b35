"""`tsunagu console publish`: the built console into the stack's bucket (moto S3), each file
with its type and caching, the config the console reads, and the page and the config
invalidated in CloudFront, with every other file named the same in every release."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tsunagu.cli_console import ConsoleCliError, publish

REGION = "ap-northeast-1"
OUTPUTS = {
    "ConsoleBucketName": "tsunagu-dev-console",
    "ConsoleDistributionId": "E2EXAMPLE",
    "ConsoleUrl": "https://d111.cloudfront.net/console/",
    "ApiUrl": "https://abc.execute-api.ap-northeast-1.amazonaws.com",
    "PublicUrl": "https://t.example.com",
    "AdminConsoleClientId": "client123",
}


class CloudFront:
    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    def create_invalidation(self, **request: Any) -> dict[str, Any]:
        self.asked.append(request)
        return {"Invalidation": {"Id": "I1"}}


def built(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>Tsunagu</title>")
    (dist / "assets" / "index-abc123.js").write_text("console.log(1)")
    # console/public/: copied as they are, no hash in their names
    (dist / "mail-preview.html").write_text("<!doctype html><title>Preview</title>")
    (dist / "mail-preview.js").write_text("console.log(2)")
    return dist


def test_the_console_goes_to_the_bucket_with_its_config_and_the_page_is_invalidated(
    tmp_path: Path,
) -> None:
    cloudfront = CloudFront()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(
            Bucket=OUTPUTS["ConsoleBucketName"],
            CreateBucketConfiguration={"LocationConstraint": REGION},
        )
        done = publish(built(tmp_path), OUTPUTS, REGION, s3=s3, cloudfront=cloudfront)

        objects = {
            key: s3.get_object(Bucket=OUTPUTS["ConsoleBucketName"], Key=key)
            for key in (
                "console/index.html",
                "console/assets/index-abc123.js",
                "console/mail-preview.js",
                "console/config.json",
            )
        }
        config = json.loads(objects["console/config.json"]["Body"].read())

    assert done["uploaded"] == [
        "assets/index-abc123.js", "index.html", "mail-preview.html", "mail-preview.js",
        "config.json",
    ]  # fmt: skip
    assert objects["console/index.html"]["ContentType"] == "text/html"
    assert objects["console/index.html"]["CacheControl"] == "no-cache"
    assert objects["console/assets/index-abc123.js"]["CacheControl"].endswith("immutable")
    assert objects["console/mail-preview.js"]["CacheControl"] == "no-cache"
    assert config == {
        "api_url": OUTPUTS["ApiUrl"],
        "public_url": "https://t.example.com",
        "cognito_url": f"https://cognito-idp.{REGION}.amazonaws.com/",
        "client_id": "client123",
        "region": REGION,
    }
    [asked] = cloudfront.asked
    assert asked["DistributionId"] == "E2EXAMPLE"
    # Every file a release may change under the same name: the preview too, or a deployed
    # console would show last release's preview page beside this release's screens
    paths = asked["InvalidationBatch"]["Paths"]
    assert paths["Items"] == [
        "/console/", "/console/index.html", "/console/mail-preview.html",
        "/console/mail-preview.js", "/console/config.json",
    ]  # fmt: skip
    assert paths["Quantity"] == len(paths["Items"])


def test_an_unbuilt_console_or_a_stack_without_one_is_said_plainly(tmp_path: Path) -> None:
    with pytest.raises(ConsoleCliError, match="make console"):
        publish(tmp_path, OUTPUTS, REGION, s3=None, cloudfront=None)
    dist = built(tmp_path)
    older = {k: v for k, v in OUTPUTS.items() if k != "ConsoleBucketName"}
    with pytest.raises(ConsoleCliError, match="ConsoleBucketName"):
        publish(dist, older, REGION, s3=None, cloudfront=None)
    # A stack deployed before PublicUrl was an output: published anyway, its site's code would
    # name execute-api even where the team has its own domain
    before_public_url = {k: v for k, v in OUTPUTS.items() if k != "PublicUrl"}
    with pytest.raises(ConsoleCliError, match="PublicUrl: deploy"):
        publish(dist, before_public_url, REGION, s3=None, cloudfront=None)
