"""The README and docs/: links resolve, the README stays short, and its runnable recipe runs.

A block of README.md that is meant to be copied and run is marked by the line
``<!-- runnable -->`` right before its ```bash fence. The e2e test runs those blocks, in order,
in one ``bash -euo pipefail`` process, as a new user would paste them into one terminal.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import AIRFLOW_VERSION
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
#: Pages that do not open with an example: the layout page.
NO_EXAMPLE_NEEDED = {"ARCHITECTURE.md"}
BIN = Path(sys.executable).parent

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
RUNNABLE = re.compile(r"^<!-- runnable -->\n```bash\n(.*?)^```[ \t]*$", re.M | re.S)


def prose(path: Path) -> str:
    """The page without its code blocks: links and headings are looked for in the rest."""
    return FENCE.sub("", path.read_text())


def links(path: Path) -> list[str]:
    text = prose(path)
    text_no_code = INLINE_CODE.sub("code", text)
    return LINK.findall(text_no_code) + REFERENCE.findall(text_no_code)


def local_links() -> list[tuple[Path, str]]:
    found = []
    for page in PAGES:
        for target in links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
                continue  # http(s), mailto and the like; an anchor in the same page
            found.append((page, target))
    return found


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for heading in HEADING.findall(prose(path)):
        anchor = github_anchor(heading)
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        result.add(anchor if count == 0 else f"{anchor}-{count}")
    return result


def test_there_are_pages_and_links_to_check() -> None:
    assert len(PAGES) >= 10
    assert len(local_links()) >= 20


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for source, target in local_links():
        if source != page:
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"


def test_links_into_a_page_name_one_of_its_headings() -> None:
    broken = []
    for source, target in local_links():
        path, _, anchor = target.partition("#")
        page = (source.parent / path).resolve()
        if anchor and page.suffix == ".md" and page.exists() and anchor not in anchors(page):
            broken.append(f"{source.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_the_readme_is_at_most_250_lines() -> None:
    assert README.read_text().count("\n") <= 250


def test_the_readme_links_every_docs_page() -> None:
    targets = [target.split("#", 1)[0] for source, target in local_links() if source == README]
    linked = {(README.parent / target).resolve() for target in targets}
    missing = [page.name for page in DOCS.glob("*.md") if page.resolve() not in linked]
    assert not missing, missing


@pytest.mark.parametrize(
    "page",
    [page for page in sorted(DOCS.glob("*.md")) if page.name not in NO_EXAMPLE_NEEDED],
    ids=lambda p: p.name,
)
def test_each_docs_page_opens_with_an_example(page: Path) -> None:
    lines = [line for line in page.read_text().splitlines() if line.strip()]
    assert lines[0].startswith("# "), "a page starts with its title"
    assert lines[1].startswith("```"), "then an example, before any prose"


def runnable_blocks() -> list[str]:
    return RUNNABLE.findall(README.read_text())


def test_every_runnable_marker_is_right_before_a_bash_block() -> None:
    assert README.read_text().count("<!-- runnable -->") == len(runnable_blocks()) >= 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.e2e
@pytest.mark.skipif(Version("3") > AIRFLOW_VERSION, reason="the README's recipe is written for Airflow 3 (airflow.sdk)")
def test_the_readme_recipe_runs_and_a_missed_run_alerts(tmp_path: Path) -> None:
    """ "Try it on your own DAG", pasted into one shell: the ping reaches the emulator, then the alert."""
    script = "\n".join(["trap 'kill $(jobs -p) 2>/dev/null || true' EXIT", *runnable_blocks()])
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        EMULATOR_PORT=str(free_port()),
        TMPDIR=str(tmp_path),  # the recipe's mktemp -d: inside this test's folder
        AIRFLOW_HOME=str(tmp_path / "airflow-home"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the emulator it starts is in this group: stopped below whatever happens
    )
    try:
        output, _ = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"the recipe did not finish within 240 s:\n{output[-6000:]}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    assert process.returncode == 0, output[-6000:]
    # Step 4: the DAG run pinged, and ensure=True created the heartbeat from the schedule.
    assert "Pinged OpsGenie heartbeat 'hello_heartbeat'" in output, output[-6000:]
    assert "OpsGenie heartbeat 'hello_heartbeat' created (interval 25 hours)" in output, output[-6000:]
    assert re.search(r"^hello_heartbeat\s+hello_heartbeat\s+ok\s+True\s+\S+Z$", output, re.M), output[-3000:]
    # Step 5: 26 hours later with no run, the emulator raised the heartbeat's alert.
    alerts_line = next((line for line in output.splitlines() if line.startswith('{"alerts"')), None)
    assert alerts_line is not None, output[-3000:]
    alerts = json.loads(alerts_line)["alerts"]
    assert [(alert["name"], alert["message"]) for alert in alerts] == [
        ("hello_heartbeat", "hello_heartbeat is expired")
    ]
    assert re.search(r"^hello_heartbeat\s+hello_heartbeat\s+expired\s+True\s", output, re.M), output[-3000:]
    assert "status exited 1: a heartbeat is not ok" in output
