"""``opsgenie-heartbeat``: heartbeats as code from the command line.

opsgenie-heartbeat sync --dags-folder PATH [--conn-id ID] [--dry-run] [--prune]
"""

from __future__ import annotations

import argparse
import logging
import sys

from airflow_provider_opsgenie_hb.errors import HeartbeatError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opsgenie-heartbeat", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sync = commands.add_parser("sync", help="create, update (and with --prune delete) heartbeats to match the DAGs")
    sync.add_argument("--dags-folder", required=True, help="the folder of DAG files to read")
    sync.add_argument("--conn-id", default="opsgenie_heartbeat_default", help="the opsgenie_heartbeat connection")
    sync.add_argument("--dry-run", action="store_true", help="show the plan; change nothing")
    sync.add_argument("--prune", action="store_true", help="delete orphaned heartbeats that sync manages")
    move = commands.add_parser("migrate", help="copy every heartbeat from OpsGenie to JSM Operations")
    move.add_argument("--from", dest="source", required=True, help="the opsgenie_heartbeat connection")
    move.add_argument("--to", dest="target", required=True, help="the jsm_ops_heartbeat connection")
    move.add_argument("--dry-run", action="store_true", help="show the plan; change nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    return _sync(args) if args.command == "sync" else _migrate(args)


def _migrate(args: argparse.Namespace) -> int:
    from airflow_provider_opsgenie_hb.migrate import migrate_heartbeats

    print(f"Heartbeats of {args.source} -> {args.target}:\n")
    try:
        plan = migrate_heartbeats(args.source, args.target, dry_run=args.dry_run)
    except HeartbeatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(plan.render())
    if args.dry_run:
        print("\nDry run: nothing was changed.")
        return 0
    print(
        f"\nMigrated: {plan.count('create')} created, {plan.count('update')} updated, "
        f"{plan.count('unchanged')} already there and equal, {plan.count('skipped')} could not be mapped, "
        f"{plan.count('failed')} failed."
    )
    return 1 if plan.count("failed") else 0


def _sync(args: argparse.Namespace) -> int:
    from airflow_provider_opsgenie_hb import sync
    from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook

    dags, errors = sync.load_dags(args.dags_folder)
    for path, error in errors.items():
        print(f"warning: {path} could not be imported and is left out: {error.strip().splitlines()[-1]}")
    declared = sync.declarations(dags, conn_id=args.conn_id)
    print(f"OpsGenie heartbeats declared by {len(dags)} DAG(s) in {args.dags_folder} (connection {args.conn_id}):\n")
    hook = OpsgenieHeartbeatHook(args.conn_id)
    try:
        plan = sync.plan(hook, declared)
        print(plan.render())
        if args.dry_run:
            print("\nDry run: nothing was changed.")
            return 0
        sync.apply(hook, plan, prune=args.prune)
    except HeartbeatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"\nApplied: {plan.count('create')} created, {plan.count('update')} updated, "
        f"{plan.count('deleted')} deleted, {plan.count('failed')} failed."
    )
    for item in plan.items:
        if item.action == "failed":
            print(f"  x {item.name}: {item.reason}")
    return 1 if plan.count("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
