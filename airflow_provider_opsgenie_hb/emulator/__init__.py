"""A local emulator of the OpsGenie Heartbeat API.

Start it with ``opsgenie-heartbeat-emulator --port 8765 --api-key KEY``, with
``python -m airflow_provider_opsgenie_hb.emulator``, from Python with
:class:`EmulatorServer`, or in a test with the pytest plugin
``airflow_provider_opsgenie_hb.emulator.pytest_plugin``.
"""

from __future__ import annotations

from airflow_provider_opsgenie_hb.emulator.control import EmulatorHandle, emulator_process, start_emulator_cli
from airflow_provider_opsgenie_hb.emulator.server import EmulatorServer

__all__ = ["EmulatorHandle", "EmulatorServer", "emulator_process", "start_emulator_cli"]
