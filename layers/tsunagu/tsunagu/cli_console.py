"""``tsunagu console publish --stack NAME``: the built console (console/dist) into the stack's
private bucket, with the config.json that tells it where the admin API, the public routes and the
sign-in are, and CloudFront told to drop its copies of what changes between releases (every file
whose name has no content hash: the page, the config, the mail preview's page and script; the
assets have hashes in their names, so a release never changes one). Run after ``sam deploy`` (``make
publish-console STACK=...``)."""

from __future__ import annotations

import argparse
import json
import mimetypes
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PREFIX = "console"
"""The console is served under /console/ (Vite's base), so its files are kept under console/."""
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


class ConsoleCliError(Exception):
    """Something the user can fix; printed without a traceback."""


def publish(
    dist: Path,
    outputs: Mapping[str, str],
    region: str,
    *,
    s3: Any,
    cloudfront: Any,
) -> dict[str, Any]:
    """Upload ``dist`` and the config, then invalidate every file kept under the same name
    between releases. Returns what was done: the files uploaded, the invalidation's id and the
    console's URL."""
    if not (dist / "index.html").is_file():
        raise ConsoleCliError(f"{dist} has no index.html: build the console first (make console)")
    missing = [
        key
        for key in (
            "ConsoleBucketName",
            "ConsoleDistributionId",
            "ConsoleUrl",
            "ApiUrl",
            "PublicUrl",
            "AdminConsoleClientId",
        )
        if key not in outputs
    ]
    if missing:  # another stack, or one deployed before this version's template: sam deploy
        raise ConsoleCliError(
            f"the stack has no {', '.join(missing)}: deploy this version's template first"
        )
    bucket = outputs["ConsoleBucketName"]
    uploaded = []
    for path in sorted(p for p in dist.rglob("*") if p.is_file()):
        relative = path.relative_to(dist).as_posix()
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        s3.put_object(
            Bucket=bucket,
            Key=f"{PREFIX}/{relative}",
            Body=path.read_bytes(),
            ContentType=kind,
            CacheControl=IMMUTABLE if _hashed(relative) else REVALIDATE,
        )
        uploaded.append(relative)
    config = {
        # The console's own admin calls: always execute-api, which a custom domain that fronts
        # only the public routes may not serve.
        "api_url": outputs["ApiUrl"],
        # What the code for the team's website names (the tracking snippet, a form's embed
        # code): its own domain when it set PublicBaseUrl, so its visitors' requests stay
        # first-party and show the domain it chose.
        "public_url": outputs["PublicUrl"],
        "cognito_url": f"https://cognito-idp.{region}.amazonaws.com/",
        "client_id": outputs["AdminConsoleClientId"],
        "region": region,
    }
    s3.put_object(
        Bucket=bucket,
        Key=f"{PREFIX}/config.json",
        Body=json.dumps(config).encode(),
        ContentType="application/json",
        CacheControl=REVALIDATE,
    )
    uploaded.append("config.json")
    # The folder's own address serves index.html; a file named the same in every release (not
    # an asset) may differ from the copy CloudFront holds.
    paths = [f"/{PREFIX}/", *(f"/{PREFIX}/{name}" for name in uploaded if not _hashed(name))]
    invalidation = cloudfront.create_invalidation(
        DistributionId=outputs["ConsoleDistributionId"],
        InvalidationBatch={
            "Paths": {"Quantity": len(paths), "Items": paths},
            "CallerReference": f"tsunagu-console-{time.time_ns()}",
        },
    )
    return {
        "uploaded": uploaded,
        "invalidation": invalidation["Invalidation"]["Id"],
        "url": outputs["ConsoleUrl"],
    }


def _hashed(relative: str) -> bool:
    """Whether the file's name changes with its content: Vite's build output under assets/."""
    return relative.startswith("assets/")


def console_publish(args: argparse.Namespace) -> int:
    import boto3

    if not args.stack:
        raise ConsoleCliError("say which deployed stack: tsunagu --stack NAME console publish")
    cloudformation = boto3.client("cloudformation", region_name=args.region)
    stack = cloudformation.describe_stacks(StackName=args.stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    region = cloudformation.meta.region_name
    done = publish(
        Path(args.dist),
        outputs,
        region,
        s3=boto3.client("s3", region_name=region),
        cloudfront=boto3.client("cloudfront"),
    )
    print(f"uploaded {len(done['uploaded'])} files; CloudFront invalidation {done['invalidation']}")
    print(f"the console: {done['url']}")
    return 0


def add_console_commands(groups: Any) -> None:
    console = groups.add_parser("console", help="the marketers' console in AWS")
    commands = console.add_subparsers(dest="command", required=True)
    publishing = commands.add_parser(
        "publish", help="upload the built console to a deployed stack (after sam deploy)"
    )
    publishing.add_argument("--dist", default="console/dist", help="the built console")
    publishing.set_defaults(run_offline=console_publish)
