"""``opsgenie-heartbeat``: heartbeats as code from the command line.

opsgenie-heartbeat sync --dags-folder PATH [--conn-id ID] [--dry-run] [--prune] [--adopt] [--allow-empty]
                        [--paused disable]
opsgenie-heartbeat migrate --from OPSGENIE_CONN --to JSM_CONN [--dry-run] [--adopt]
opsgenie-heartbeat status --dags-folder PATH [--conn-id ID] [--output table|json|yaml|plain]

On Airflow 3.2+ the same commands are Airflow's own: ``airflow opsgenie-heartbeat sync ...``.

Exit codes: 0 everything applied; 1 a change failed, a conflict was left alone, a DAG file
failed to import or a declaration could not be built, or prune was refused; 2 a usage or
configuration error (missing folder or connection).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from airflow_provider_opsgenie_hb.api.errors import HeartbeatError
from airflow_provider_opsgenie_hb.settings import DEFAULT_CONN_ID

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE = 0, 1, 2
T = TypeVar("T")
_EPILOG = (
    "exit codes: 0 everything applied; 1 a change failed, a conflict was left alone, a DAG file failed to "
    "import or a declaration could not be built, or prune was refused; 2 usage or configuration error "
    "(missing folder or connection)"
)


_MIGRATE_EPILOG = (
    "exit codes: 0 everything copied; 1 a copy failed or a heartbeat in the target was left alone (conflict); "
    "2 usage or configuration error (missing connection)"
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"error: {message}\n")


@dataclass(frozen=True)
class Option:
    """One command-line option, stated once for ``opsgenie-heartbeat`` and ``airflow opsgenie-heartbeat``."""

    flags: tuple[str, ...]
    help: str
    settings: dict[str, Any] = field(default_factory=dict)


SYNC_HELP = "create, update (and with --prune delete) heartbeats to match the DAGs"
SYNC_OPTIONS = (
    Option(("--dags-folder",), "the folder of DAG files to read", {"required": True}),
    Option(("--conn-id",), "the opsgenie_heartbeat connection", {"default": DEFAULT_CONN_ID}),
    Option(("--dry-run",), "show the plan; change nothing", {"action": "store_true"}),
    Option(
        ("--prune",),
        "delete orphaned heartbeats this deployment manages; refused unless every DAG file was read",
        {"action": "store_true"},
    ),
    Option(("--adopt",), "manage existing heartbeats this deployment does not manage yet", {"action": "store_true"}),
    Option(("--allow-empty",), "let --prune run when no DAG declares a heartbeat", {"action": "store_true"}),
    Option(
        ("--paused",),
        "disable the heartbeats of DAGs paused in Airflow (read from its metadata database), "
        "and enable them again when the DAGs are unpaused",
        {"choices": ["disable"]},
    ),
)
STATUS_HELP = "what the DAGs declare against OpsGenie, and the scheduled DAGs no heartbeat watches"
STATUS_OPTIONS = (
    Option(("--dags-folder",), "the folder of DAG files to read", {"required": True}),
    Option(("--conn-id",), "the opsgenie_heartbeat connection", {"default": DEFAULT_CONN_ID}),
    Option(
        ("-o", "--output"),
        "the output format, as Airflow's own commands",
        {"choices": ["table", "json", "yaml", "plain"], "default": "table"},
    ),
)
_STATUS_EPILOG = (
    "exit codes: 0 every declared heartbeat is in OpsGenie, matches and is not expired, and every scheduled DAG "
    "is watched; 1 otherwise; 2 usage or configuration error (missing folder or connection)"
)
MIGRATE_HELP = "copy every heartbeat from OpsGenie to JSM Operations"
MIGRATE_OPTIONS = (
    Option(("--from",), "the opsgenie_heartbeat connection", {"dest": "source", "required": True}),
    Option(("--to",), "the jsm_ops_heartbeat connection", {"dest": "target", "required": True}),
    Option(("--dry-run",), "show the plan; change nothing", {"action": "store_true"}),
    Option(("--adopt",), "overwrite target heartbeats this deployment does not manage", {"action": "store_true"}),
)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="opsgenie-heartbeat", description=__doc__.splitlines()[0], epilog=_EPILOG)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, text, epilog, options in (
        ("sync", SYNC_HELP, _EPILOG, SYNC_OPTIONS),
        ("migrate", MIGRATE_HELP, _MIGRATE_EPILOG, MIGRATE_OPTIONS),
        ("status", STATUS_HELP, _STATUS_EPILOG, STATUS_OPTIONS),
    ):
        command = commands.add_parser(name, help=text, epilog=epilog)
        for option in options:
            command.add_argument(*option.flags, help=option.help, **option.settings)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    return {"sync": run_sync, "migrate": run_migrate, "status": run_status}[args.command](args)


def run_migrate(args: argparse.Namespace) -> int:
    from airflow.providers.common.compat.sdk import AirflowNotFoundException

    from airflow_provider_opsgenie_hb.core.migrate import migrate_heartbeats
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    print(f"Heartbeats of {args.source} -> {args.target}:\n")
    try:
        source, target = OpsgenieHeartbeatHook(args.source), OpsgenieHeartbeatHook(args.target)
        plan = migrate_heartbeats(source, target, dry_run=args.dry_run, adopt=args.adopt)
    except AirflowNotFoundException as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HeartbeatError as exc:
        _error(exc)
        return EXIT_INCOMPLETE
    print(plan.render())
    if args.dry_run:
        print("\nDry run: nothing was changed.")
        return EXIT_OK
    print(
        f"\nMigrated: {plan.count('create')} created, {plan.count('update')} updated, "
        f"{plan.count('unchanged')} already there and equal, {plan.count('conflict')} in conflict (left alone), "
        f"{plan.count('skipped')} could not be mapped, {plan.count('failed')} failed."
    )
    return EXIT_INCOMPLETE if plan.count("failed") or plan.count("conflict") else EXIT_OK


def run_sync(args: argparse.Namespace) -> int:
    from airflow_provider_opsgenie_hb.core import sync
    from airflow_provider_opsgenie_hb.core.paused import paused_from_database
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    try:
        plan = sync.sync_heartbeats(
            args.dags_folder,
            OpsgenieHeartbeatHook(args.conn_id),
            conn_id=args.conn_id,
            dry_run=args.dry_run,
            prune=args.prune,
            adopt=args.adopt,
            allow_empty=args.allow_empty,
            paused_states=paused_from_database if args.paused else None,
        )
    except sync.SyncUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HeartbeatError as exc:
        _error(exc)
        return EXIT_INCOMPLETE
    print(f"OpsGenie heartbeats declared in {args.dags_folder} (connection {args.conn_id}):\n")
    print(plan.render())
    # Not everything the folder declares is (or can be) in place: a DAG may be left without a heartbeat.
    incomplete = bool(plan.count("conflict") or plan.count("skipped") or plan.prune_blockers)
    if args.dry_run:
        print("\nDry run: nothing was changed.")
        return EXIT_INCOMPLETE if incomplete else EXIT_OK
    print(
        f"\nApplied: {plan.count('create')} created, {plan.count('update')} updated, "
        f"{plan.count('deleted')} deleted, {plan.count('conflict')} in conflict (left alone), "
        f"{plan.count('failed')} failed."
    )
    for item in plan.items:
        if item.action == "failed":
            print(f"  x {item.name}: {item.reason}")
    if plan.prune_refused:
        print("\nPrune refused: orphans were not deleted, because the DAG folder was not read completely.")
    return EXIT_INCOMPLETE if incomplete or plan.count("failed") or plan.prune_refused else EXIT_OK


def run_status(args: argparse.Namespace) -> int:
    from airflow.providers.common.compat.sdk import AirflowNotFoundException

    from airflow_provider_opsgenie_hb.core.status import heartbeat_status
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    if not Path(args.dags_folder).expanduser().is_dir():
        print(f"error: DAG folder {args.dags_folder!r} does not exist or is not a folder", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = _quietly(
            lambda: heartbeat_status(args.dags_folder, OpsgenieHeartbeatHook(args.conn_id), conn_id=args.conn_id)
        )
    except AirflowNotFoundException:
        print(f"error: connection {args.conn_id!r} does not exist", file=sys.stderr)
        return EXIT_USAGE
    except HeartbeatError as exc:
        _error(exc)
        return EXIT_INCOMPLETE
    if args.output == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        from airflow.cli.simple_table import AirflowConsole

        AirflowConsole().print_as(data=report.rows(), output=args.output)
    for path, error in report.import_errors.items():
        print(f"warning: {path} could not be imported, what it declares is not known: {error}", file=sys.stderr)
    return EXIT_OK if report.healthy else EXIT_INCOMPLETE


def _quietly(work: Callable[[], T]) -> T:
    """``work()`` without Airflow's log lines on stdout (reading a DAG folder logs there), as Airflow's
    own commands that print a table or JSON do."""
    from airflow.utils.cli import suppress_logs_and_warning

    done: list[T] = []
    suppress_logs_and_warning(lambda _: done.append(work()))(argparse.Namespace(verbose=False))
    return done[0]


def airflow_status(args: argparse.Namespace) -> None:
    """``airflow opsgenie-heartbeat status``."""
    from airflow.providers.common.compat.sdk import conf

    args.dags_folder = args.dags_folder or conf.get("core", "dags_folder")
    _exit(run_status(args))


def airflow_sync(args: argparse.Namespace) -> None:
    """``airflow opsgenie-heartbeat sync``: the same, with Airflow's configuration and secrets already loaded."""
    from airflow.providers.common.compat.sdk import conf

    args.dags_folder = args.dags_folder or conf.get("core", "dags_folder")
    _exit(run_sync(args))


def airflow_migrate(args: argparse.Namespace) -> None:
    """``airflow opsgenie-heartbeat migrate``."""
    _exit(run_migrate(args))


def _error(exc: HeartbeatError) -> None:
    """One line for the error, and one for what to do about it (as the callback says)."""
    from airflow_provider_opsgenie_hb.core.advice import what_to_do

    advice = what_to_do(exc)
    print(f"error: {exc}" + (f"\nWhat to do: {advice}" if advice else ""), file=sys.stderr)


def _exit(code: int) -> None:
    if code:
        sys.exit(code)


if __name__ == "__main__":
    sys.exit(main())
