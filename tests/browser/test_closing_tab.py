"""Closing a tab mid-run ends that session's runs quietly: stopped, and no traceback from the package."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import WAIT_SECONDS
from playwright.sync_api import expect

import panel_langchain_steps

from .harness import free_port, wait_until_listening

pytestmark = pytest.mark.browser

APP = Path(__file__).with_name("closing_tab_app.py")
PACKAGE = str(Path(panel_langchain_steps.__file__).parent)
CALLBACKS = ("async", "sync")


def wait_for(path: Path, what: str) -> None:
    """Wait until the app has written ``path``; fail after `WAIT_SECONDS`."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not path.exists():
        assert time.monotonic() < deadline, f"{what}: not within {WAIT_SECONDS} s"
        time.sleep(0.02)


def statuses(folder: Path) -> dict[str, str]:
    """The status of each run the session saved, by kind and name (the latest run of each name)."""
    runs = json.loads((folder / "trace.json").read_text())["runs"]
    return {f"{run['kind']} {run['name']}": run["status"] for run in runs}


def test_closing_tabs_stops_their_runs_quietly(browser, tmp_path):
    port = free_port()
    address = ["--address", "127.0.0.1", "--port", str(port), f"--allow-websocket-origin=127.0.0.1:{port}"]
    # A closed tab's session ends as soon as it is unused, not 15 s later.
    lifetime = ["--check-unused-sessions", "50", "--unused-session-lifetime", "50"]
    command = [sys.executable, "-m", "panel", "serve", str(APP), *address, *lifetime, "--args", str(tmp_path)]
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        wait_until_listening(port, WAIT_SECONDS)
        pages = [browser.new_page() for _ in CALLBACKS]
        for page, callback in zip(pages, CALLBACKS, strict=True):
            page.goto(f"http://127.0.0.1:{port}/{APP.stem}?callback={callback}")
        for page in pages:
            page.locator("textarea").fill("Check every server")
            page.get_by_role("button", name="Send").click()
        for page in pages:  # each agent is inside its turn, a step running
            expect(page.locator(".step-badge-running").first).to_be_attached()
            page.close()
        for callback in CALLBACKS:
            wait_for(tmp_path / callback / "ended", f"the {callback} callback returned")
            wait_for(tmp_path / callback / "trace.json", f"every {callback} run ended")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            _, errors = server.communicate(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:  # a run that was never stopped keeps it alive
            os.killpg(server.pid, signal.SIGKILL)
            _, errors = server.communicate()
    for callback in CALLBACKS:
        ended = statuses(tmp_path / callback)
        assert ended["chain LangGraph"] == "stopped", callback
        assert set(ended.values()) <= {"success", "stopped"}, callback  # every run ended
    assert PACKAGE not in errors and "panel-langchain-steps" not in errors, errors
