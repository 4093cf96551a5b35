"""``tsunagu``: the marketer's and operator's command line.

By default it talks to the local runtime started with ``make up`` (found through
``.tsunagu/runtime.json`` in this folder or a parent). ``--stack NAME`` talks to a deployed stack
instead, reading table names from its CloudFormation outputs with your AWS credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tsunagu import services
from tsunagu.leads.email import InvalidEmail, normalise_email
from tsunagu.leads.model import email_identity
from tsunagu.settings import Settings

LOCAL_STATE = Path(".tsunagu") / "runtime.json"
OUTPUT_TO_SETTING = {
    "Stage": "TSUNAGU_STAGE",
    "LeadsTableName": "TSUNAGU_LEADS_TABLE",
    "LeadIdentitiesTableName": "TSUNAGU_LEAD_IDENTITIES_TABLE",
    "EventsTableName": "TSUNAGU_EVENTS_TABLE",
    "ConsentTableName": "TSUNAGU_CONSENT_TABLE",
    "FormsTableName": "TSUNAGU_FORMS_TABLE",
    "IdempotencyTableName": "TSUNAGU_IDEMPOTENCY_TABLE",
}


class CliError(Exception):
    """Something the user can fix; printed without a traceback."""


def _local_settings() -> Settings:
    for folder in [Path.cwd(), *Path.cwd().parents]:
        state_file = folder / LOCAL_STATE
        if state_file.exists():
            state = json.loads(state_file.read_text())
            os.environ.update(
                {
                    "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing",
                    **state["environment"],
                }
            )
            return Settings.from_environ(state["environment"])
    raise CliError("the local runtime is not running here: start it with `make up`")


def _stack_settings(stack_name: str, region: str | None) -> Settings:
    import boto3

    cloudformation = boto3.client("cloudformation", region_name=region)
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    environ = {setting: outputs[key] for key, setting in OUTPUT_TO_SETTING.items()}
    environ["AWS_REGION"] = cloudformation.meta.region_name
    return Settings.from_environ(environ)


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


# ---------------------------------------------------------------- leads
def leads_get(settings: Settings, args: argparse.Namespace) -> int:
    try:
        address = normalise_email(args.email)
    except InvalidEmail as error:
        raise CliError(f"{args.email!r} is not an e-mail address: {error}") from None
    leads = services.lead_repository(settings)
    lead = leads.find_lead(email_identity(address.identity_key))
    if lead is None:
        raise CliError(f"no lead with the address {address.address}")
    _print(
        {
            **lead.summary(),
            "consent": leads.consent_state(lead.lead_id),
            "consent_evidence": [e.__dict__ for e in leads.consent_evidence(lead.lead_id)],
            "recent_events": [
                {"type": e.type, "at": e.occurred_at, **e.properties}
                for e in leads.events(lead.lead_id, limit=args.events)
            ],
        }
    )
    return 0


# ---------------------------------------------------------------- forms
def forms_create(settings: Settings, args: argparse.Namespace) -> int:
    from tsunagu.forms.model import FormDefinition

    forms = services.form_repository(settings)
    try:
        definition = FormDefinition.model_validate_json(Path(args.file).read_text("utf-8"))
    except OSError as error:
        raise CliError(f"cannot read {args.file}: {error.strerror}") from None
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'form'}: {e['msg']}" for e in error.errors()
        )
        raise CliError(f"{args.file} is not a valid form: {problems}") from None
    exists = forms.get(definition.form_id) is not None
    if exists and not args.replace:
        raise CliError(f"form {definition.form_id!r} exists; add --replace to update it")
    forms.put(definition, services.clock(settings))
    print(f"form {definition.form_id!r} {'updated' if exists else 'created'}")
    return 0


def forms_list(settings: Settings, args: argparse.Namespace) -> int:
    for form in services.form_repository(settings).list():
        origins = ", ".join(form.allowed_origins) or "(server-side posts only)"
        print(f"{form.form_id}\t{form.name}\t{origins}")
    return 0


def forms_get(settings: Settings, args: argparse.Namespace) -> int:
    form = services.form_repository(settings).get(args.form_id)
    if form is None:
        raise CliError(f"no form with id {args.form_id!r}")
    _print(form.model_dump(mode="json"))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tsunagu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", help="a deployed stack's name (default: the local runtime)")
    parser.add_argument("--region", help="the deployed stack's region")
    groups = parser.add_subparsers(dest="group", required=True)

    leads = groups.add_parser("leads", help="look at leads").add_subparsers(
        dest="command", required=True
    )
    get = leads.add_parser("get", help="a lead with its consent evidence and recent events")
    get.add_argument("email")
    get.add_argument("--events", type=int, default=20, help="how many recent events to show")
    get.set_defaults(run=leads_get)

    forms = groups.add_parser("forms", help="manage web forms").add_subparsers(
        dest="command", required=True
    )
    create = forms.add_parser("create", help="create (or --replace) a form from a JSON file")
    create.add_argument("--file", required=True, help="the form definition, JSON")
    create.add_argument("--replace", action="store_true", help="update an existing form")
    create.set_defaults(run=forms_create)
    forms.add_parser("list", help="list forms").set_defaults(run=forms_list)
    show = forms.add_parser("get", help="show a form's definition")
    show.add_argument("form_id")
    show.set_defaults(run=forms_get)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _stack_settings(args.stack, args.region) if args.stack else _local_settings()
        code: int = args.run(settings, args)
    except CliError as error:
        print(f"tsunagu: {error}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
