"""Serving: one app under `panel serve --num-procs 2`, several sessions at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .harness import free_port, wait_until_listening

pytestmark = pytest.mark.browser

EXAMPLE = Path(__file__).parents[2] / "examples" / "long_agent.py"


def test_sessions_run_side_by_side_under_num_procs(browser):
    port = free_port()
    command = [sys.executable, "-m", "panel", "serve", str(EXAMPLE), "--num-procs", "2"]
    command += ["--address", "127.0.0.1", "--port", str(port), f"--allow-websocket-origin=127.0.0.1:{port}"]
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        wait_until_listening(port, 60)  # the server is starting its processes
        pages = [browser.new_page() for _ in range(3)]
        for page in pages:
            page.goto(f"http://127.0.0.1:{port}/long_agent")
        for number, page in enumerate(pages, 2):  # every session asks at once
            page.locator("textarea").fill(f"Check {number} servers")
            page.get_by_role("button", name="Send").click()
        for number, page in enumerate(pages, 2):
            expect(page.locator(".reply-answer")).to_contain_text(f"Checked {number} servers: ")
            expect(page.locator(".chat-steps .card-title")).to_contain_text(" steps · done in ")
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and the processes it forked
        _, errors = server.communicate(timeout=60)
    assert "Traceback" not in errors, errors
