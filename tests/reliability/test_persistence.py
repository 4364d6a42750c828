"""The emulator with --state, killed (SIGKILL) during a burst of writes: nothing acknowledged is lost."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pendulum
import requests

KEY = "persistence-key"


def test_acknowledged_writes_survive_sigkill(
    tmp_path: Path, start_emulator_cli: Callable[[str, Path], tuple[subprocess.Popen[str], str]]
) -> None:
    state = tmp_path / "emulator.db"
    process, url = start_emulator_cli(KEY, state)
    created: list[str] = []
    pinged: dict[str, pendulum.DateTime] = {}
    stop = threading.Event()

    def burst(worker: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"GenieKey {KEY}"
        i = 0
        while not stop.is_set():
            name = f"w{worker}-{i}"
            try:
                body = {"name": name, "interval": 1, "intervalUnit": "hours", "enabled": True}
                if session.post(f"{url}/v2/heartbeats", json=body, timeout=5).status_code == 201:
                    created.append(name)
                before = pendulum.now("UTC")
                if session.post(f"{url}/v2/heartbeats/{name}/ping", timeout=5).status_code == 202:
                    pinged[name] = before
            except requests.RequestException:
                return  # the server was killed mid-request: that write was never acknowledged
            i += 1

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    stop.set()
    for thread in threads:
        thread.join(10)
    assert len(created) > 50  # a real burst, not a handful

    process, url = start_emulator_cli(KEY, state)
    try:
        response = requests.get(f"{url}/v2/heartbeats", headers={"Authorization": f"GenieKey {KEY}"}, timeout=10)
        stored = {hb["name"]: hb for hb in response.json()["data"]["heartbeats"]}
    finally:
        process.terminate()
        process.wait(10)
    missing = [name for name in created if name not in stored]
    assert missing == []
    for name, sent_after in pinged.items():
        last_ping = pendulum.parse(stored[name]["lastPingTime"])
        assert last_ping >= sent_after.subtract(seconds=1), name  # the acknowledged ping is there
