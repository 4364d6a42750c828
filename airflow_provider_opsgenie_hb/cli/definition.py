"""``airflow opsgenie-heartbeat ...``: the commands Airflow 3.2+ adds to its own CLI from ``cli`` in the provider info.

On Airflow 3.0 and 3.1 the same commands are the ``opsgenie-heartbeat`` console script.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def get_cli_commands() -> list[Any]:
    """The ``opsgenie-heartbeat`` group: ``sync``, ``migrate`` and ``status``, with the console script's options."""
    from airflow.cli.cli_config import ActionCommand, Arg, GroupCommand, lazy_load_command

    from airflow_provider_opsgenie_hb.cli.main import (
        _EPILOG,
        _MIGRATE_EPILOG,
        _STATUS_EPILOG,
        MIGRATE_HELP,
        MIGRATE_OPTIONS,
        STATUS_HELP,
        STATUS_OPTIONS,
        SYNC_HELP,
        SYNC_OPTIONS,
    )

    def args(options: Any) -> list[Any]:
        # Airflow's configuration is loaded here: the DAG folder defaults to [core] dags_folder.
        options = [
            dataclasses.replace(o, settings={}, help="the folder of DAG files to read (default: [core] dags_folder)")
            if o.flags == ("--dags-folder",)
            else o
            for o in options
        ]
        return [Arg(option.flags, help=option.help, **option.settings) for option in options]  # type: ignore[no-untyped-call]

    commands = [
        ActionCommand(
            name=name,
            help=text,
            func=lazy_load_command(f"airflow_provider_opsgenie_hb.cli.main.airflow_{name}"),
            args=args(options),
            epilog=epilog,
        )
        for name, text, options, epilog in (
            ("sync", SYNC_HELP, SYNC_OPTIONS, _EPILOG),
            ("migrate", MIGRATE_HELP, MIGRATE_OPTIONS, _MIGRATE_EPILOG),
            ("status", STATUS_HELP, STATUS_OPTIONS, _STATUS_EPILOG),
        )
    ]
    return [GroupCommand(name="opsgenie-heartbeat", help="OpsGenie heartbeats as code", subcommands=commands)]
