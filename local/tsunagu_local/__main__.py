"""``make up``: Tsunagu on the embedded local AWS, in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from tsunagu import services
from tsunagu.clock import parse_instant
from tsunagu.journeys.install import install_shipped, shipped_graphs
from tsunagu.journeys.shipped import shipped_site_paths
from tsunagu_local import faults, firehose, pages
from tsunagu_local.clocks import ScaledRuntimeClock
from tsunagu_local.faults import Fault, FaultPlan
from tsunagu_local.people import ADMIN_EMAIL, SIGN_IN_FILE, local_password
from tsunagu_local.runtime import ANALYTICS_FOLDER, MAIL_FILE, LocalRuntime, RuntimeOptions
from tsunagu_local.seed import (
    DEMO_FORM_ID,
    DEMO_SITE_ID,
    demo_form,
    demo_site,
    seed_qualification,
)
from tsunagu_local.template import declared_parameters

LOCAL_REPLY_DOMAIN = "reply.example.com"
"""Where `make up`'s mail says to reply (no mail leaves the machine: the viewer's reply form
hands a reply to the template's receipt rule)."""


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tsunagu-local", description="Run Tsunagu on the embedded local AWS (moto)."
    )
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--state-dir", type=Path, default=Path(".tsunagu"))
    parser.add_argument("--port", type=int, default=3000, help="API port (default 3000)")
    parser.add_argument(
        "--clock-start", help="simulated start instant, ISO-8601 (default: now)", default=None
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=None,
        help="simulated seconds per real second, e.g. 3600 = one hour per second "
        "(default: $TSUNAGU_TIME_SCALE or 1)",
    )
    parser.add_argument(
        "--virtual-time",
        action="store_true",
        default=None,
        help="time stands still while work is in flight and moves only when told"
        " (tsunagu clock advance ...); for tests and trying journeys"
        " (default: $TSUNAGU_VIRTUAL_TIME)",
    )
    parser.add_argument("--fresh", action="store_true", help="start with empty tables")
    parser.add_argument("--no-persist", action="store_true", help="keep no data across restarts")
    parser.add_argument(
        "--no-demo", action="store_true", help="do not seed the demo form (for other templates)"
    )
    parser.add_argument(
        "--faults",
        default=None,
        metavar="SPEC",
        help="inject AWS's own failures at random, e.g. 'seed=7,all=0.02' (kinds: "
        + ", ".join(kind.value for kind in Fault)
        + f"); for make proof (default: ${faults.ENVIRONMENT_VARIABLE}: none)",
    )
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a template parameter, as sam deploy --parameter-overrides gives it"
        " (e.g. CrmWebhookUrl=http://127.0.0.1:8080/crm); repeat for more",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def _parameters(pairs: list[str]) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise SystemExit(f"tsunagu-local: --parameter {pair!r}: say NAME=VALUE")
        parameters[name.strip()] = value
    return parameters


def build_runtime(args: argparse.Namespace) -> LocalRuntime:
    import os

    scale = args.time_scale or float(os.environ.get("TSUNAGU_TIME_SCALE", "1"))
    start = args.clock_start or os.environ.get("TSUNAGU_CLOCK_START")
    virtual = args.virtual_time or os.environ.get("TSUNAGU_VIRTUAL_TIME", "") in ("1", "true")
    if virtual and args.time_scale:
        raise SystemExit("tsunagu-local: --virtual-time and --time-scale are two different clocks")
    if args.fresh:
        for saved in (args.state_dir / "dynamodb").glob("*.json"):
            saved.unlink()
        (args.state_dir / MAIL_FILE).unlink(missing_ok=True)
        firehose.clear(args.state_dir / ANALYTICS_FOLDER)  # the events' rows go with the events
    spec = args.faults or os.environ.get(faults.ENVIRONMENT_VARIABLE) or None
    if spec:
        try:
            FaultPlan.parse(spec)
        except faults.FaultSpecError as error:
            raise SystemExit(f"tsunagu-local: --faults: {error}") from None
    parameters = _parameters(args.parameter)
    if "ReplyDomain" in declared_parameters(args.template):
        # Replies on, so the sent-mail viewer can answer a mail (README "Replies")
        parameters.setdefault("ReplyDomain", LOCAL_REPLY_DOMAIN)
    return LocalRuntime(
        RuntimeOptions(
            template=args.template,
            state_dir=args.state_dir,
            api_port=args.port,
            clock_start=parse_instant(start) if start else None,
            time_scale=scale,
            virtual_time=virtual,
            persist=not args.no_persist,
            parameters=parameters,
            faults=spec,
        )
    )


def install_pages(runtime: LocalRuntime) -> None:
    """Seed the demo form and site (keeping a user's changes, but always admitting this run's
    origin: the port may differ from the run that created them) and serve the local pages."""
    settings = runtime.settings()
    clock = services.clock(settings)
    forms = services.form_repository(settings)
    fresh_form = demo_form(runtime.api_url)
    demo = forms.get(DEMO_FORM_ID) or fresh_form
    origins = sorted(set(demo.allowed_origins) | set(fresh_form.allowed_origins))
    demo = demo.model_copy(update={"allowed_origins": origins})
    forms.put(demo, clock)
    sites = services.site_repository(settings)
    fresh_site = demo_site(runtime.api_url)
    site = sites.get(DEMO_SITE_ID) or fresh_site
    origins = sorted(set(site.allowed_origins) | set(fresh_site.allowed_origins))
    sites.put(site.model_copy(update={"allowed_origins": origins}), clock)
    site_url = f"{runtime.api_url}/_local/demo"
    install_shipped(
        journeys=services.journey_repository(settings),
        templates=services.mail_repository(settings),
        clock=clock,
        site_url=site_url,
        sender=f"news@{sorted(settings.sender_domains)[0]}",
        graphs=shipped_graphs(runtime.options.template.parent / "journeys"),
    )
    seed_qualification(services.qualification_repository(settings))
    for path in shipped_site_paths():
        runtime.local_pages[f"/_local/demo{path}"] = pages.content_page(path.strip("/"))
    runtime.local_pages.update(
        {
            "/": pages.index_page(runtime.api_url),
            "/_local/demo": pages.demo_page(demo),
            "/_local/demo/pricing": pages.content_page("pricing"),
            "/_local/demo/case-study": pages.content_page("case-study"),
            "/_local/thanks": pages.thanks_page,
            "/favicon.ico": pages.no_content,
        }
    )
    install_mail_pages(runtime)


def install_mail_pages(runtime: LocalRuntime) -> None:
    """The sent-mail viewer, and its reply form where the template receives replies."""
    receiving = runtime.receiving
    domains = receiving.domains if receiving else []
    runtime.local_pages["/_local/mail"] = pages.mail_viewer(runtime.mailbox.sent_mail, domains)
    if receiving is not None and runtime.clock is not None:
        runtime.local_pages["/_local/mail/reply"] = pages.mail_reply(
            runtime.mailbox.sent_mail, receiving, runtime.clock
        )


def _clock_line(runtime: LocalRuntime) -> str:
    assert runtime.clock is not None
    now = f"{runtime.clock.now():%Y-%m-%d %H:%M:%S} UTC"
    if isinstance(runtime.clock, ScaledRuntimeClock):
        return f"{now}, x{runtime.clock.scale:g}"
    return (
        f"{now}, virtual: stands still until told to move\n"
        "                     .venv/bin/tsunagu clock show | advance --by 3d | --to T"
        " | --business-days 1 | --until-idle"
    )


def _console_line(runtime: LocalRuntime) -> str:
    if not runtime.user_pools:
        return ""
    built = (runtime.options.template.parent / "console" / "dist" / "index.html").is_file()
    note = "" if built else "  (not built: make console)"
    return f"  Console:           {runtime.api_url}/console/{note}\n"


def _sign_in_lines(runtime: LocalRuntime) -> str:
    if not runtime.user_pools:
        return ""
    password = local_password(runtime.options.state_dir)
    return (
        f"  Admin API:         {runtime.api_url}/admin/me  (Authorization: Bearer <ID token>)\n"
        f"  Sign in as:        {ADMIN_EMAIL} / {password}  (role admin; .tsunagu/{SIGN_IN_FILE})\n"
    )


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("botocore", "urllib3", "moto", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not args.template.exists():
        print(f"no {args.template} here: run this from the project's folder", file=sys.stderr)
        return 2
    runtime = build_runtime(args)
    try:
        runtime.start()
        if not args.no_demo:
            install_pages(runtime)
        else:
            install_mail_pages(runtime)
    except OSError as error:
        print(f"could not start: {error}", file=sys.stderr)
        runtime.stop()
        return 1
    stopping = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    assert runtime.clock is not None
    demo = "" if args.no_demo else f"  Demo form:         {runtime.api_url}/_local/demo\n"
    print(
        "\nTsunagu is running on the embedded local AWS.\n"
        f"{demo}"
        f"  API:               {runtime.api_url}  (POST /forms/demo/submissions)\n"
        f"  Sent-mail viewer:  {runtime.api_url}/_local/mail\n"
        f"{_console_line(runtime)}"
        f"{_sign_in_lines(runtime)}"
        f"  Clock:             {_clock_line(runtime)}\n"
        f"  CLI:               .venv/bin/tsunagu leads get EMAIL | leads score EMAIL\n"
        f"                     .venv/bin/tsunagu journeys list | status | start | pause | resume\n"
        "Press Ctrl-C to stop.\n",
        flush=True,
    )
    # In slices: a signal delivered while the main thread waits without a timeout may never
    # wake it (Ctrl-C was lost under load).
    while not stopping.wait(timeout=0.5):
        pass
    print("\nstopping...", flush=True)
    runtime.stop()
    print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
