"""``opsgenie-heartbeat-emulator``: run the emulator in the foreground."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import datetime
from types import FrameType

from opsgenie_heartbeat_emulator.server import EmulatorServer
from opsgenie_heartbeat_emulator.state import INTERVAL_CHANGES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="opsgenie-heartbeat-emulator",
        description="A local OpsGenie Heartbeat API (v2) for tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one; default 8765)")
    parser.add_argument("--api-key", required=True, help="the API key clients must send as GenieKey")
    parser.add_argument("--ping-only-key", help="a second key that may ping and do nothing else")
    parser.add_argument("--state", metavar="FILE", help="keep state in this SQLite file across restarts")
    parser.add_argument(
        "--jsm-email",
        default="emulator@example.com",
        help="the account email of the JSM Operations routes (Basic auth with --api-key as the token)",
    )
    parser.add_argument(
        "--interval-change",
        choices=INTERVAL_CHANGES,
        default=INTERVAL_CHANGES[0],
        help="what a changed interval does to the running countdown: applies at once (running, the "
        "default) or from the next ping (next_ping); OpsGenie does not document which",
    )
    parser.add_argument(
        "--clock-start",
        metavar="ISO-8601",
        help="start the clock at this time instead of now (e.g. 2025-01-01T00:00:00Z), to replay a "
        "schedule with POST /_emulator/clock/advance; a reset returns to it",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s")
    server = EmulatorServer(
        args.host,
        args.port,
        api_key=args.api_key,
        ping_only_key=args.ping_only_key,
        state_file=args.state,
        jsm_email=args.jsm_email,
        interval_change=args.interval_change,
        clock_start=datetime.fromisoformat(args.clock_start.replace("Z", "+00:00")).timestamp()
        if args.clock_start
        else None,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"OpsGenie heartbeat emulator listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        server.state.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
