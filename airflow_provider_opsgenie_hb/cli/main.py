"""``opsgenie-heartbeat``: heartbeats as code from the command line.

opsgenie-heartbeat sync --dags-folder PATH [--conn-id ID] [--dry-run] [--prune] [--adopt] [--allow-empty]
                        [--paused disable]
opsgenie-heartbeat migrate --from OPSGENIE_CONN --to JSM_CONN [--dry-run] [--adopt]

Exit codes: 0 everything applied; 1 a change failed, a conflict was left alone, a DAG file
failed to import or a declaration could not be built, or prune was refused; 2 a usage or
configuration error (missing folder or connection).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import NoReturn

from airflow_provider_opsgenie_hb.api.errors import HeartbeatError
from airflow_provider_opsgenie_hb.settings import DEFAULT_CONN_ID

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE = 0, 1, 2
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


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="opsgenie-heartbeat", description=__doc__.splitlines()[0], epilog=_EPILOG)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sync = commands.add_parser(
        "sync", help="create, update (and with --prune delete) heartbeats to match the DAGs", epilog=_EPILOG
    )
    sync.add_argument("--dags-folder", required=True, help="the folder of DAG files to read")
    sync.add_argument("--conn-id", default=DEFAULT_CONN_ID, help="the opsgenie_heartbeat connection")
    sync.add_argument("--dry-run", action="store_true", help="show the plan; change nothing")
    sync.add_argument(
        "--prune",
        action="store_true",
        help="delete orphaned heartbeats this deployment manages; refused unless every DAG file was read",
    )
    sync.add_argument(
        "--adopt", action="store_true", help="manage existing heartbeats this deployment does not manage yet"
    )
    sync.add_argument("--allow-empty", action="store_true", help="let --prune run when no DAG declares a heartbeat")
    sync.add_argument(
        "--paused",
        choices=["disable"],
        help="disable the heartbeats of DAGs paused in Airflow (read from its metadata database), "
        "and enable them again when the DAGs are unpaused",
    )
    move = commands.add_parser(
        "migrate", help="copy every heartbeat from OpsGenie to JSM Operations", epilog=_MIGRATE_EPILOG
    )
    move.add_argument("--from", dest="source", required=True, help="the opsgenie_heartbeat connection")
    move.add_argument("--to", dest="target", required=True, help="the jsm_ops_heartbeat connection")
    move.add_argument("--dry-run", action="store_true", help="show the plan; change nothing")
    move.add_argument(
        "--adopt", action="store_true", help="overwrite target heartbeats this deployment does not manage"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    return _sync(args) if args.command == "sync" else _migrate(args)


def _migrate(args: argparse.Namespace) -> int:
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
        print(f"error: {exc}", file=sys.stderr)
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


def _sync(args: argparse.Namespace) -> int:
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
        print(f"error: {exc}", file=sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
