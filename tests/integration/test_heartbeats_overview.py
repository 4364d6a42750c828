"""What the Heartbeats page shows, built from a real DAG folder (read in a child process) and the emulator."""

from __future__ import annotations

import json
import socket
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import AIRFLOW_VERSION
from faulty_servers import serve, trickle_headers
from packaging.version import Version
from page_scenario import DEFAULT_ROWS, MARKER, OTHER_CONN, seed_heartbeats, write_dag_files

from airflow_provider_opsgenie_hb.api.client import HeartbeatClient
from airflow_provider_opsgenie_hb.api.errors import HeartbeatTimeoutError
from airflow_provider_opsgenie_hb.api.policy import LEGACY_OWNER_MARKER
from airflow_provider_opsgenie_hb.hooks.opsgenie_heartbeat import OpsgenieHeartbeatHook
from airflow_provider_opsgenie_hb.ui import declared, overview
from airflow_provider_opsgenie_hb.ui.declared import DagFolderCache
from airflow_provider_opsgenie_hb.ui.overview import (
    NOT_MANAGED,
    ConnectionCache,
    Overview,
    OverviewSource,
)
from opsgenie_heartbeat_emulator import EmulatorHandle


@pytest.fixture(scope="module")
def dag_folder(tmp_path_factory: pytest.TempPathFactory) -> DagFolderCache:
    """The scenario's DAG files, read once for the module (a read is a child process)."""
    folder = tmp_path_factory.mktemp("page-dags")
    write_dag_files(folder)
    return DagFolderCache(str(folder))


@pytest.fixture
def source(dag_folder: DagFolderCache, monkeypatch: pytest.MonkeyPatch) -> OverviewSource:
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__UI_CACHE_SECONDS", "60")
    return OverviewSource(dag_folder)


def lists(emulator: EmulatorHandle) -> int:
    return sum(1 for r in emulator.requests() if r["endpoint"] == "list")


def test_every_heartbeat_next_to_what_the_dags_declare(
    source: OverviewSource, opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    seed_heartbeats(opsgenie_heartbeat_conn)
    overview = source.overview()
    default = [r for r in overview.rows if r.conn_id == "opsgenie_heartbeat_default"]
    assert [(r.name, r.status, r.dag_ids, r.orphaned, r.drifted) for r in default] == DEFAULT_ROWS
    # page_broken.py did not import: a DAG in it may still declare the orphan, so it is not disabled here.
    orphan = overview.row("opsgenie_heartbeat_default", "page-orphan")
    assert orphan is not None
    assert "could not be imported" in (orphan.refusal("disable") or "")
    assert orphan.allows("ping")
    assert {r.backend for r in default} == {"OpsGenie"}
    nightly = overview.row("opsgenie_heartbeat_default", "page_nightly")
    assert nightly is not None
    assert [(d.field, d.declared, d.current) for d in nightly.drift() if d.differs] == [("alert_priority", "P2", "P3")]
    assert nightly.allows("ensure")
    missing = overview.row("opsgenie_heartbeat_default", "page-missing")
    assert missing is not None
    assert (missing.interval, missing.allows("ensure"), missing.allows("ping")) == ("25 hours", True, False)
    # The other connection is declared but does not exist: its heartbeat is unknown, and the page says why.
    same_name = overview.row("opsgenie_heartbeat_default", "page-elsewhere")
    assert same_name is not None
    assert same_name.notes == ("DAG page_other_account: declared on connection 'page_other_account', not this one",)
    assert not same_name.allows("disable")
    hand_made = overview.row("opsgenie_heartbeat_default", "hand-made")
    assert hand_made is not None
    assert not any(hand_made.allows(action) for action in ("ping", "enable"))
    elsewhere = overview.row(OTHER_CONN, "page-elsewhere")
    assert elsewhere is not None
    assert (elsewhere.status, elsewhere.dag_ids) == ("unknown", ("page_other_account",))
    assert [c.conn_id for c in overview.connections if c.missing_connection] == [OTHER_CONN]
    assert [r.name for r in overview.rows if r.status == "expired"] == ["page_hourly"]  # expired first
    assert any("page_broken.py could not be imported" in problem for problem in overview.problems)
    assert overview.dag_folder is not None
    assert "page_undeclared" in overview.dag_folder.dag_ids
    # Scheduled and watched by nothing; the manual DAGs (page_shared_a, _b) are not "unwatched"
    assert overview.dag_folder.unwatched == ("page_undeclared",)
    assert [r.name for r in overview.for_dag("page_shared_b")] == ["page-shared"]
    assert lists(opsgenie_heartbeat_conn) == 1  # one list call for the connection


def test_one_list_call_per_connection_kept_for_the_configured_seconds(
    source: OverviewSource, opsgenie_heartbeat_conn: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_heartbeats(opsgenie_heartbeat_conn)
    before = lists(opsgenie_heartbeat_conn)
    for _ in range(3):
        source.overview()
    assert lists(opsgenie_heartbeat_conn) == before + 1
    source.connection("opsgenie_heartbeat_default").forget_list()  # what an action does
    source.overview()
    assert lists(opsgenie_heartbeat_conn) == before + 2
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__UI_CACHE_SECONDS", "0")
    source.overview()
    source.overview()
    assert lists(opsgenie_heartbeat_conn) == before + 4


@pytest.mark.parametrize(
    ("fault", "status"),
    [({"kind": "status", "status": 503}, 503), ({"kind": "rate_limit", "rate": 0.01, "burst": 0}, 429)],
    ids=["down", "throttling"],
)
def test_when_opsgenie_fails_the_last_list_is_shown_with_status_and_request_id(
    fault: dict[str, object],
    status: int,
    source: OverviewSource,
    opsgenie_heartbeat_conn: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__UI_CACHE_SECONDS", "0")
    seed_heartbeats(opsgenie_heartbeat_conn)
    good = source.overview()
    opsgenie_heartbeat_conn.set_faults({**fault, "endpoint": "list"})
    bad = source.overview()
    state = next(c for c in bad.connections if c.conn_id == "opsgenie_heartbeat_default")
    assert getattr(state.error, "status", None) == status
    assert getattr(state.error, "request_id", None)
    assert state.listed_at == next(c.listed_at for c in good.connections if c.conn_id == state.conn_id)
    assert _rows(bad) == _rows(good)
    # A page that never had a list shows the declared heartbeats as unknown, and nothing else.
    fresh = OverviewSource(source.dag_folder).overview()
    default = [r for r in fresh.rows if r.conn_id == "opsgenie_heartbeat_default"]
    assert {r.status for r in default} == {"unknown"}
    assert {r.name for r in default} == {"page_hourly", "page-missing", "page-shared", "page_nightly"}


def test_the_dag_folder_is_read_again_only_when_a_file_changes(
    tmp_path: Path, opsgenie_heartbeat_conn: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__UI_CACHE_SECONDS", "0")
    dag_file = tmp_path / "one.py"
    dag_file.write_text(_tagged_dag("one"))
    source = OverviewSource(DagFolderCache(str(tmp_path)))
    first = source.overview()
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "one.cpython-311.pyc").write_bytes(b"written by the read itself")
    assert source.overview().dag_folder is first.dag_folder  # no DAG file changed: not read again
    dag_file.write_text(_tagged_dag("one") + _tagged_dag("two"))
    # The read of the changed folder is waited for READ_WAIT at most, then shown when it ends (on a
    # loaded machine the child's Airflow import alone can take longer): ask until it is, for a bounded time.
    deadline = time.monotonic() + 120
    while (names := [r.name for r in source.overview().rows]) != ["one", "two"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert names == ["one", "two"]


def test_jsm_operations_heartbeats(
    dag_folder: DagFolderCache, opsgenie_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT", opsgenie_emulator.jsm_connection_json())
    hook = OpsgenieHeartbeatHook()
    hook.create_heartbeat(name="page_hourly", interval=2, interval_unit="hours", alert_tags=[MARKER])
    hook.ping_heartbeat("page_hourly")
    hook.create_heartbeat(name="page-orphan", interval=1, interval_unit="days", alert_tags=[MARKER])
    hook.ping_heartbeat("page-orphan")
    opsgenie_emulator.advance(3 * 3600)
    rows = {r.name: r for r in OverviewSource(dag_folder).overview().rows if r.conn_id == "opsgenie_heartbeat_default"}
    assert {r.backend for r in rows.values()} == {"JSM Operations"}
    assert (rows["page_hourly"].status, rows["page-orphan"].status, rows["page-orphan"].orphaned) == (
        "expired",
        "ok",
        True,
    )
    assert rows["page_nightly"].status == "missing"


def _rows(overview: Overview) -> list[tuple[str, str, str]]:
    return [(r.conn_id, r.name, r.status) for r in overview.rows]


def _tagged_dag(dag_id: str) -> str:
    return (
        "import pendulum\nfrom airflow.providers.common.compat.sdk import DAG\n"
        f"with DAG({json.dumps(dag_id)}, schedule='@daily', start_date=pendulum.datetime(2026, 1, 1),"
        " tags=['opsgenie-heartbeat']):\n    pass\n"
    )


NEXT_RUN_AND_OTHERS = """
    import pendulum
    from airflow.providers.common.compat.sdk import DAG
    from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

    START = pendulum.datetime(2026, 1, 1, tz="UTC")
    for dag_id, schedule in [("nr_weekdays", "30 6 * * 1-5"), ("nr_weekly", "0 8 * * 1"), ("nr_theirs", "0 1 * * 1-5")]:
        with DAG(dag_id, schedule=schedule, start_date=START,
                 on_success_callback=send_opsgenie_heartbeat(interval="next_run")):
            pass
    for dag_id in ("theirs", "by_hand"):
        with DAG(dag_id, schedule="@daily", start_date=START, on_success_callback=send_opsgenie_heartbeat()):
            pass
"""


def test_next_run_heartbeats_and_heartbeats_that_are_not_this_deployments(
    tmp_path: Path, opsgenie_heartbeat_conn: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runs' interval is no drift (unless the schedule now sets a longer one), and a heartbeat
    a DAG here declares but another deployment manages (or nobody) gets a Ping, nothing more."""
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__UI_CACHE_SECONDS", "0")
    (tmp_path / "dags.py").write_text(textwrap.dedent(NEXT_RUN_AND_OTHERS))
    client = HeartbeatClient.opsgenie(opsgenie_heartbeat_conn.api_key, opsgenie_heartbeat_conn.url)
    for name, hours, tags in [
        ("nr_weekdays", 25, [MARKER]),  # set by Monday's run: the next run is a day away
        ("nr_weekly", 2, [MARKER]),  # shorter than any weekly run sets: the schedule changed
        ("theirs", 25, ["managed-by-airflow:prod-us"]),
        ("by_hand", 25, []),
        ("nr_theirs", 49, ["managed-by-airflow:prod-us"]),  # its interval set by prod-us's runs
        ("old_orphan", 25, [LEGACY_OWNER_MARKER]),  # an earlier release's: which deployment's, nobody knows
    ]:
        client.create_heartbeat(name=name, interval=hours, interval_unit="hours", alert_tags=tags)
    shown = OverviewSource(DagFolderCache(str(tmp_path))).overview()
    assert shown.problems == []  # the declarations of next_run DAGs cross from the child process
    rows = {row.name: row for row in shown.rows}
    assert {name: row.dag_ids for name, row in rows.items() if name != "old_orphan"} == {
        name: (name,) for name in rows if name != "old_orphan"
    }

    weekdays = rows["nr_weekdays"]
    assert (weekdays.drifted, [d.field for d in weekdays.drift() if d.differs]) == (False, [])
    assert "interval set by each run (next_run)" in weekdays.notes
    assert [a for a in ("ping", "disable", "ensure") if weekdays.allows(a)] == ["ping", "disable"]

    weekly = rows["nr_weekly"]
    assert weekly.drifted
    assert weekly.allows("ensure")
    assert [(d.field, d.declared, d.current) for d in weekly.drift() if d.differs] == [("interval", 169, 2)]

    for name in ("theirs", "by_hand", "nr_theirs", "old_orphan"):
        row = rows[name]
        assert [a for a in ("ping", "disable", "enable", "ensure") if row.allows(a)] == ["ping"], name
        assert row.refusal("disable") == NOT_MANAGED
    assert rows["theirs"].refusal("ensure") == NOT_MANAGED
    assert rows["old_orphan"].orphaned
    assert "interval" not in [d.field for d in rows["nr_theirs"].drift() if d.differs]  # the runs', even there


def test_a_server_that_trickles_holds_a_view_no_longer_than_the_page_waits(
    source: OverviewSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Headers a byte at a time stay within each read's timeout: the list call outlasts its budget,
    but the views answer after ANSWER_WAIT with a banner, and make no call of their own."""
    monkeypatch.setattr(overview, "ANSWER_WAIT", 0.5)
    monkeypatch.setattr(overview, "STUCK_AFTER", 60.0)
    connections: list[socket.socket] = []

    def counted(conn: socket.socket, stop: threading.Event) -> None:
        connections.append(conn)
        trickle_headers(conn, stop, every=0.5)

    server = serve(counted)
    url = next(server)
    try:
        conn = {"conn_type": "opsgenie_heartbeat", "host": url, "password": "k"}
        monkeypatch.setenv("AIRFLOW_CONN_TRICKLING", json.dumps(conn))
        cache = ConnectionCache("trickling")
        states = [cache.state(ttl=0) for _ in range(3)]
        for state in states:
            assert isinstance(state.error, HeartbeatTimeoutError)
            assert "no answer within 0.5s (still waiting)" in str(state.error)
            assert state.heartbeats is None
        assert len(connections) == 1  # one list call in flight, waited for, not repeated
        monkeypatch.setattr(overview, "STUCK_AFTER", 0.0)
        cache.state(ttl=60)
        assert len(connections) == 2  # one stuck too long is left to its connection: a new call
    finally:
        next(server, None)


def test_a_dag_file_that_hangs_holds_a_view_no_longer_than_the_page_waits(
    tmp_path: Path, opsgenie_heartbeat_conn: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(declared, "FIRST_READ_WAIT", 0.5)
    release = tmp_path / "release"
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "slow.py").write_text(
        "import pathlib, time\n"
        f"while not pathlib.Path({str(release)!r}).exists():\n    time.sleep(0.05)\n" + _tagged_dag("slow")
    )
    cache = DagFolderCache(str(dags))
    folder, problem = cache.read(ttl=0)
    assert folder is None
    assert problem == f"the DAG files in {dags} are still being read: reload in a moment"
    release.touch()
    monkeypatch.setattr(declared, "FIRST_READ_WAIT", 120.0)
    folder, problem = cache.read(ttl=0)  # waits for the read under way, not a second one
    assert (problem, folder.dag_ids if folder else None) == (None, ("slow",))


def test_a_read_that_fails_unexpectedly_is_reported_and_the_next_change_is_read(
    tmp_path: Path, opsgenie_heartbeat_conn: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "one.py").write_text(_tagged_dag("one"))
    cache = DagFolderCache(str(tmp_path))
    real = declared.read_in_child

    def no_scratch_space(folder: str, timeout: float) -> declared.DagFolder:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(declared, "read_in_child", no_scratch_space)
    folder, problem = cache.read(ttl=0)
    assert folder is None
    assert problem == f"reading the DAG files in {tmp_path} failed: OSError: [Errno 28] No space left on device"
    monkeypatch.setattr(declared, "read_in_child", real)
    (tmp_path / "one.py").write_text(_tagged_dag("one") + _tagged_dag("two"))
    folder, problem = cache.read(ttl=0)
    assert (problem, folder.dag_ids if folder else None) == (None, ("one", "two"))


def test_an_api_server_without_dag_files_shows_what_sync_recorded(
    tmp_path: Path,
    opsgenie_heartbeat_conn: EmulatorHandle,
    metadata_record: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``declarations = auto`` on an empty DAG folder: the page reads sync's record in the metadata database,
    and shows every row as the API server that has the DAG files does."""
    from airflow_provider_opsgenie_hb.core.sync import sync_heartbeats
    from airflow_provider_opsgenie_hb.ui.declared import AutoSource, declaration_source

    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__UI_CACHE_SECONDS", "0")
    folder, empty = tmp_path / "dags", tmp_path / "no-dags"
    folder.mkdir()
    empty.mkdir()
    write_dag_files(folder)
    seed_heartbeats(opsgenie_heartbeat_conn)
    without_files = OverviewSource(declaration_source(str(empty)))
    assert isinstance(without_files.dag_folder, AutoSource)

    before = without_files.overview()
    assert before.dag_folder is None
    # Nothing is known to be declared yet: nothing is an orphan, and nothing can be disabled from here.
    assert [r.name for r in before.rows if r.orphaned] == []
    assert not [r.name for r in before.rows if r.allows("disable")]
    assert any("none are recorded yet" in p and "opsgenie-heartbeat sync" in p for p in before.problems)

    with caplog.at_level("INFO"):
        sync_heartbeats(folder, OpsgenieHeartbeatHook(), allow_empty=True)
    assert "Recorded the declarations for the Heartbeats page" in caplog.text
    recorded = without_files.overview()
    with_files = OverviewSource(declaration_source(str(folder))).overview()

    def shown(view: Overview) -> list[tuple[object, ...]]:
        return [(r.conn_id, r.name, r.status, r.dag_ids, r.orphaned, r.drifted, r.interval) for r in view.rows]

    assert shown(recorded) == shown(with_files)
    assert [r.name for r in recorded.rows if r.orphaned] == ["page-orphan"]  # only what no DAG declares
    assert recorded.dag_folder is not None
    assert with_files.dag_folder is not None
    assert recorded.dag_folder.unwatched == with_files.dag_folder.unwatched
    assert recorded.problems == with_files.problems  # the import error of page_broken.py, from the record
    assert recorded.dag_folder.origin.startswith(f"recorded by sync on {socket.gethostname()} from {folder}")
    # A Python file in the folder: auto reads the folder again.
    (empty / "nothing.py").write_text("")
    read_folder = OverviewSource(declaration_source(str(empty))).overview().dag_folder
    assert read_folder is not None
    assert (read_folder.dag_ids, read_folder.origin) == ((), "")


@pytest.mark.skipif(Version("3.1") > AIRFLOW_VERSION, reason="the Heartbeats page needs Airflow 3.1+")
def test_last_ping_is_counted_on_opsgenies_clock_not_this_machines(
    source: OverviewSource, opsgenie_heartbeat_conn: EmulatorHandle
) -> None:
    """OpsGenie sets lastPingTime on its own clock: "how long ago" is counted on it (from the list answer's
    Date header), so a clock that differs from this machine's never shows a fresh ping as old, or the reverse."""
    from airflow_provider_opsgenie_hb.ui.app import _ago

    emulator = opsgenie_heartbeat_conn
    client = HeartbeatClient.opsgenie(emulator.api_key, emulator.url)
    client.create_heartbeat(name="clocked", interval=1, interval_unit="days")
    client.ping_heartbeat("clocked")
    emulator.advance(2.5 * 3600)  # OpsGenie's clock is now two and a half hours ahead of this machine's
    overview = source.overview()
    state = next(c for c in overview.connections if c.conn_id == "opsgenie_heartbeat_default")
    assert 2.5 * 3600 - 5 < state.clock_offset < 2.5 * 3600 + 5
    row = overview.row("opsgenie_heartbeat_default", "clocked")
    assert row is not None
    assert row.heartbeat is not None
    assert _ago(row.heartbeat.last_ping_time, state.clock_offset) == "2 hours ago"
    assert _ago(row.heartbeat.last_ping_time).endswith("seconds ago")  # on this machine's clock: misleading
