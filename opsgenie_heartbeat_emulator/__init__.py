"""A local emulator of the OpsGenie Heartbeat API.

Start it with ``opsgenie-heartbeat-emulator --port 8765 --api-key KEY``, with
``python -m opsgenie_heartbeat_emulator``, from Python with
:class:`EmulatorServer`, or in a test with the pytest plugin
``opsgenie_heartbeat_emulator.pytest_plugin``.
"""

from __future__ import annotations

from opsgenie_heartbeat_emulator.control import EmulatorHandle, emulator_process, start_emulator_cli
from opsgenie_heartbeat_emulator.server import EmulatorServer

__all__ = ["EmulatorHandle", "EmulatorServer", "emulator_process", "start_emulator_cli"]
