"""The Heartbeats page in a real ``airflow api-server``: over HTTP, and in headless Chromium.

One API server for the module, with the simple auth manager's users ``admin``, ``editor`` (role
User: may edit DAGs) and ``viewer``, the scenario's DAG folder, and the session's emulator as
the default connection. Every request is checked against Airflow's auth manager: anonymous
gets 401, a viewer's POST 403.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from airflow_components import AirflowStack, new_stack, running
from conftest import AIRFLOW_VERSION
from packaging.version import Version
from page_scenario import DEFAULT_ROWS, MARKER, seed_heartbeats, write_dag_files

from opsgenie_heartbeat_emulator import EmulatorHandle

pytestmark = [
    pytest.mark.ui_server,
    pytest.mark.skipif(Version("3.1") > AIRFLOW_VERSION, reason="the page needs Airflow 3.1+ (plugin views)"),
]

PAGE = "/opsgenie-heartbeats"
USERS = ("admin", "editor", "viewer")
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


class PageServer:
    """The API server, and requests to it as one of its users (or nobody)."""

    def __init__(self, stack: AirflowStack, passwords: dict[str, str]) -> None:
        self.stack = stack
        self.url = stack.api_url
        self.passwords = passwords
        self._tokens: dict[str, str] = {}

    def headers(self, user: str | None) -> dict[str, str]:
        if user is None:
            return {}
        if user not in self._tokens:
            answer = requests.post(
                f"{self.url}/auth/token", json={"username": user, "password": self.passwords[user]}, timeout=60
            )
            assert answer.status_code == 201, answer.text
            self._tokens[user] = answer.json()["access_token"]
        return {"Authorization": f"Bearer {self._tokens[user]}"}

    def get(self, path: str, user: str | None) -> requests.Response:
        return requests.get(f"{self.url}{path}", headers=self.headers(user), timeout=120)

    def act(self, user: str | None, action: str, name: str, **form: str) -> requests.Response:
        body = {"conn_id": "opsgenie_heartbeat_default", "name": name, "action": action, **form}
        return requests.post(
            f"{self.url}{PAGE}/actions", data=body, headers=self.headers(user), allow_redirects=False, timeout=120
        )


@pytest.fixture(scope="module")
def page_server(
    opsgenie_emulator_server: EmulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PageServer]:
    home = tmp_path_factory.mktemp("airflow-page")
    passwords = {user: secrets.token_urlsafe(12) for user in USERS}
    (home / "passwords.json").write_text(json.dumps(passwords))
    stack = new_stack(
        home,
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin,editor:user,viewer:viewer",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(home / "passwords.json"),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
        AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT=opsgenie_emulator_server.connection_json(),
        # Every view lists again, so each test sees the emulator as it set it up.
        AIRFLOW__OPSGENIE_HEARTBEAT__UI_CACHE_SECONDS="0",
    )
    write_dag_files(stack.dags)
    stack.cli("db", "migrate")
    stack.cli("dags", "reserialize")  # the DAGs' own pages, where the Heartbeat tab is
    with running(stack, "api-server"):
        yield PageServer(stack, passwords)


@pytest.fixture
def scenario(page_server: PageServer, opsgenie_emulator_server: EmulatorHandle) -> EmulatorHandle:
    opsgenie_emulator_server.reset()
    seed_heartbeats(opsgenie_emulator_server)
    return opsgenie_emulator_server


class Shown(HTMLParser):
    """What a page shows, read from its data attributes: rows, buttons, banners, drift."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.buttons: list[tuple[str, str]] = []
        self.banners: list[dict[str, str]] = []
        self.fields: dict[str, str] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        if "data-name" in found:
            self.rows.append(found)
        elif tag == "button":
            self.buttons.append((self.rows[-1]["data-name"], found["data-action"]))
        elif "connection-error" in found.get("class", ""):
            self.banners.append(found)
        elif "data-field" in found:
            self.fields[found["data-field"]] = found["data-differs"]


def default_rows(shown: Shown) -> list[tuple[str, str]]:
    return [(r["data-name"], r["data-status"]) for r in shown.rows if r["data-conn"] == "opsgenie_heartbeat_default"]


def calls(emulator: EmulatorHandle, endpoint: str) -> list[str | None]:
    return [r["name"] for r in emulator.requests() if r["endpoint"] == endpoint]


def test_anonymous_requests_get_401(page_server: PageServer, scenario: EmulatorHandle) -> None:
    assert page_server.get(f"{PAGE}/", None).status_code == 401
    assert page_server.get(f"{PAGE}/dags/page_nightly", None).status_code == 401
    assert page_server.act(None, "disable", "page_hourly").status_code == 401
    forged = {"Authorization": "Bearer not-a-token"}
    assert requests.get(f"{page_server.url}{PAGE}/", headers=forged, timeout=60).status_code in (401, 403)
    assert calls(scenario, "disable") == []


def test_a_viewer_sees_every_heartbeat_but_no_button_and_may_not_act(
    page_server: PageServer, scenario: EmulatorHandle
) -> None:
    answer = page_server.get(f"{PAGE}/", "viewer")
    assert answer.status_code == 200
    shown = Shown(answer.text)
    assert default_rows(shown) == [(name, status) for name, status, *_ in DEFAULT_ROWS]
    assert shown.buttons == []
    assert '<li data-dag="page_undeclared">' in answer.text  # the scheduled DAG nothing watches
    assert 'data-dag="page_shared_a"' not in answer.text  # a manual DAG is not "unwatched"
    refused = page_server.act("viewer", "disable", "page_hourly")
    assert refused.status_code == 403
    assert calls(scenario, "disable") == []
    assert scenario.heartbeats()["page_hourly"]["enabled"] is True


def test_an_editor_disables_enables_and_pings(page_server: PageServer, scenario: EmulatorHandle) -> None:
    shown = Shown(page_server.get(f"{PAGE}/?status=expired", "editor").text)
    assert default_rows(shown) == [("page_hourly", "expired")]
    assert shown.buttons == [("page_hourly", "ping"), ("page_hourly", "disable")]

    disabled = page_server.act("editor", "disable", "page_hourly", status="expired")
    assert disabled.status_code == 303
    assert disabled.headers["Location"] == f"{PAGE}/?status=expired&done=disable&heartbeat=page_hourly"
    assert calls(scenario, "disable") == ["page_hourly"]
    assert scenario.heartbeats()["page_hourly"]["enabled"] is False
    after = page_server.get(disabled.headers["Location"], "editor").text
    assert "Disabled &#39;page_hourly&#39;." in after
    assert ("page_hourly", "disabled") in default_rows(Shown(page_server.get(f"{PAGE}/", "editor").text))

    assert page_server.act("editor", "enable", "page_hourly").status_code == 303
    assert scenario.heartbeats()["page_hourly"]["enabled"] is True
    pinged = page_server.act("editor", "ping", "page_hourly", dag_id="page_hourly")
    assert pinged.headers["Location"] == f"{PAGE}/dags/page_hourly?done=ping&heartbeat=page_hourly"
    assert calls(scenario, "ping")[-1] == "page_hourly"
    assert scenario.heartbeats()["page_hourly"]["expired"] is False
    tab = page_server.get(pinged.headers["Location"], "editor").text
    assert "page (editor)" in tab  # the last pings this deployment sent


def test_ensure_brings_a_heartbeat_in_line_and_creates_a_missing_one(
    page_server: PageServer, scenario: EmulatorHandle
) -> None:
    assert page_server.act("editor", "ensure", "page_nightly", dag_id="page_nightly").status_code == 303
    nightly = scenario.heartbeats()["page_nightly"]
    assert nightly["alertPriority"] == "P2"
    assert nightly["alertTags"] == ["team-a", MARKER]
    assert Shown(page_server.get(f"{PAGE}/dags/page_nightly", "editor").text).fields["alert_priority"] == "false"
    assert page_server.act("editor", "ensure", "page-missing").status_code == 303
    created = scenario.heartbeats()["page-missing"]
    assert (created["interval"], created["intervalUnit"], created["alertTags"]) == (25, "hours", [MARKER])
    # What the page offers no button for is refused too.
    assert page_server.act("editor", "ensure", "hand-made").status_code == 409  # no DAG declares it
    assert page_server.act("editor", "enable", "hand-made").status_code == 409  # nor is it this deployment's
    assert page_server.act("editor", "enable", "page_nightly").status_code == 409  # enabled already
    assert page_server.act("editor", "disable", "no-such-heartbeat").status_code == 404
    assert page_server.act("editor", "delete", "page_nightly").status_code == 400
    assert calls(scenario, "delete") == []


def test_the_dag_tab_shows_drift_field_by_field_and_the_pings_sent(
    page_server: PageServer, scenario: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import DAG

    from airflow_provider_opsgenie_hb.notifications.heartbeat import send_opsgenie_heartbeat

    # The success callback pings on this host, with the API server's record folder.
    record_dir = page_server.stack.env["AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_DIR"]
    monkeypatch.setenv("AIRFLOW__OPSGENIE_HEARTBEAT__RECORD_DIR", record_dir)
    monkeypatch.setenv("AIRFLOW_CONN_OPSGENIE_HEARTBEAT_DEFAULT", scenario.connection_json())
    send_opsgenie_heartbeat()({"dag": DAG("page_nightly", schedule=None), "run_id": "scheduled__1"})
    tab = page_server.get(f"{PAGE}/dags/page_nightly", "viewer")
    assert tab.status_code == 200
    shown = Shown(tab.text)
    assert [(r["data-name"], r["data-status"]) for r in shown.rows] == [("page_nightly", "ok")]
    assert [field for field, differs in shown.fields.items() if differs == "true"] == ["alert_priority"]
    assert list(shown.fields) == ["interval", "interval_unit", "alert_tags", "alert_priority"]
    assert "<td>callback</td>" in tab.text
    assert shown.buttons == []  # a viewer
    assert "declares no heartbeat" in page_server.get(f"{PAGE}/dags/page_undeclared", "viewer").text
    assert "not in the DAG folder" in page_server.get(f"{PAGE}/dags/nowhere", "viewer").text


def test_when_opsgenie_is_down_the_page_renders_with_status_and_request_id(
    page_server: PageServer, scenario: EmulatorHandle
) -> None:
    assert page_server.get(f"{PAGE}/", "editor").status_code == 200  # a good list first
    scenario.set_faults({"kind": "status", "status": 503, "endpoint": "list"})
    try:
        answer = page_server.get(f"{PAGE}/", "editor")
        assert answer.status_code == 200
        shown = Shown(answer.text)
        assert default_rows(shown) == [(name, status) for name, status, *_ in DEFAULT_ROWS]  # as last listed
        banner = next(b for b in shown.banners if b["data-conn"] == "opsgenie_heartbeat_default")
        assert banner["data-status"] == "503"
        assert banner["data-request-id"]
        assert "HTTP 503" in answer.text
        scenario.set_faults({"kind": "status", "status": 503, "endpoint": "disable"})
        failed = page_server.act("editor", "disable", "page_hourly")
        assert failed.status_code == 502
        assert "Could not disable heartbeat &#39;page_hourly&#39;" in failed.text
        assert "HTTP 503, requestId " in failed.text
    finally:
        scenario.clear_faults()


def test_the_api_key_never_reaches_a_page_or_the_log(page_server: PageServer, scenario: EmulatorHandle) -> None:
    bodies = [page_server.get(f"{PAGE}/", "admin").text, page_server.get(f"{PAGE}/dags/page_nightly", "admin").text]
    scenario.set_faults({"kind": "status", "status": 401, "endpoint": "*"})
    try:
        bodies.append(page_server.get(f"{PAGE}/", "admin").text)
        bodies.append(page_server.act("admin", "ping", "page_hourly").text)
    finally:
        scenario.clear_faults()
    assert "HTTP 401" in bodies[2]
    assert "HTTP 401" in bodies[3]
    assert "What to do: check the API key in the connection" in bodies[3]  # not a "conflict"
    for text in [*bodies, *(p.read_text() for p in page_server.stack.logs.glob("*.log"))]:
        assert scenario.api_key not in text


def test_a_form_posted_from_another_site_is_refused(page_server: PageServer, scenario: EmulatorHandle) -> None:
    """The UI's session cookie goes with a form another site posts: such a request needs this server's Origin."""
    cookie = {"_token": page_server.headers("editor")["Authorization"].removeprefix("Bearer ")}
    body = {"conn_id": "opsgenie_heartbeat_default", "name": "page_hourly", "action": "disable"}

    def post(**headers: str) -> requests.Response:
        return requests.post(
            f"{page_server.url}{PAGE}/actions",
            data=body,
            cookies=cookie,
            headers=headers,
            allow_redirects=False,
            timeout=120,
        )

    for forged in ({"Origin": "http://attacker.invalid"}, {"Referer": "http://attacker.invalid/x"}, {}):
        refused = post(**forged)
        assert refused.status_code == 403, forged
        assert "must be posted from this API server" in refused.text
    assert calls(scenario, "disable") == []
    assert post(Origin=page_server.url).status_code == 303  # the page's own form, as a browser posts it
    assert calls(scenario, "disable") == ["page_hourly"]
    # Nor may another site show the page in a frame and have its buttons clicked.
    shown = page_server.get(f"{PAGE}/", "viewer")
    assert shown.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert shown.headers["Content-Security-Policy"] == "frame-ancestors 'self'"


def test_airflow_lists_the_nav_entry_and_the_dag_tab(page_server: PageServer) -> None:
    plugins = page_server.get("/api/v2/plugins", "admin").json()["plugins"]
    views = next(p for p in plugins if p["name"] == "opsgenie_heartbeat")["external_views"]
    assert [(v["destination"], v["href"]) for v in views] == [
        ("nav", f"{PAGE}/"),
        ("dag", PAGE + "/dags/{DAG_ID}"),
    ]
    assert page_server.get(f"{PAGE}/icon.svg", None).headers["Content-Type"] == "image/svg+xml"


# ------------------------------------------------------------------------------------ in a browser


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium from the distribution's packages (nothing is downloaded)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            "headless Chromium is not installed: `make browser` installs the chromium and chromium-driver "
            "packages (as root), then run `make test` or these tests again"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=1400,820",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def open_in_airflow(driver: Any, server: PageServer, user: str, path: str) -> None:
    """Log in through the simple auth manager's form, land on ``path`` and enter the view's frame."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{server.url}/auth/login?next={quote(path)}")
    wait = WebDriverWait(driver, 120)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "input")) >= 2)
    username, password = driver.find_elements(By.CSS_SELECTOR, "input")[:2]
    username.send_keys(user)
    password.send_keys(server.passwords[user])
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(expected_conditions.frame_to_be_available_and_switch_to_it((By.TAG_NAME, "iframe")))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-name]"))


def screenshot(driver: Any, tmp_path: Path, name: str) -> None:
    """Into the test's folder, and into HEARTBEATS_SCREENSHOTS when set (``make screenshots``: docs/)."""
    driver.switch_to.default_content()
    driver.save_screenshot(str(tmp_path / name))
    if os.environ.get("HEARTBEATS_SCREENSHOTS"):
        shutil.copy(tmp_path / name, Path(os.environ["HEARTBEATS_SCREENSHOTS"]) / name)


def test_in_a_browser_an_editor_sees_the_expired_heartbeat_and_disables_it(
    page_server: PageServer, scenario: EmulatorHandle, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    open_in_airflow(browser, page_server, "editor", "/plugin/opsgenie-heartbeats")
    first = browser.find_elements(By.CSS_SELECTOR, "tr[data-name]")[0]
    assert first.get_attribute("data-name") == "page_hourly"  # expired first
    assert first.find_element(By.CSS_SELECTOR, "[data-role=status]").text == "expired"
    screenshot(browser, tmp_path, "heartbeats-page.png")

    browser.switch_to.frame(browser.find_element(By.TAG_NAME, "iframe"))
    browser.find_element(By.CSS_SELECTOR, 'tr[data-name="page_hourly"] button[data-action="disable"]').click()
    wait = WebDriverWait(browser, 60)
    wait.until(lambda _: scenario.heartbeats()["page_hourly"]["enabled"] is False)
    wait.until(expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "body"), "Disabled 'page_hourly'."))
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-name="page_hourly"]')
    assert row.get_attribute("data-status") == "disabled"
    assert calls(scenario, "disable") == ["page_hourly"]

    browser.switch_to.default_content()
    browser.get(f"{page_server.url}/dags/page_nightly/plugin/opsgenie-heartbeat")
    wait.until(expected_conditions.frame_to_be_available_and_switch_to_it((By.TAG_NAME, "iframe")))
    differs = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-field="alert_priority"]'))[0]
    assert differs.get_attribute("data-differs") == "true"
    screenshot(browser, tmp_path, "heartbeat-tab.png")


def test_in_a_browser_a_viewer_sees_no_button_and_its_post_is_refused(
    page_server: PageServer, scenario: EmulatorHandle, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    open_in_airflow(browser, page_server, "viewer", "/plugin/opsgenie-heartbeats")
    assert browser.find_elements(By.CSS_SELECTOR, 'tr[data-name="page_hourly"][data-status="expired"]')
    assert browser.find_elements(By.TAG_NAME, "button") == []
    status = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const body = new URLSearchParams({conn_id: "opsgenie_heartbeat_default", name: "page_hourly",
                                          action: "disable"});
        fetch(arguments[0], {method: "POST", body, credentials: "same-origin"}).then(r => done(r.status));
        """,
        f"{page_server.url}{PAGE}/actions",
    )
    assert status == 403
    assert calls(scenario, "disable") == []
