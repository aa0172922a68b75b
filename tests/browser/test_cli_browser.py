"""``python -m panel_langchain_steps view FILE`` serves the trace; Chromium shows it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUESTION, adding_agent
from playwright.sync_api import Error as PlaywrightError

from panel_langchain_steps import ChatStepCallbackHandler

from .conftest import deep_text
from .harness import free_port

pytestmark = pytest.mark.browser

ROOT = Path(__file__).parents[2]


def view_command(path: Path, port: int) -> subprocess.Popen:
    """``python -m panel_langchain_steps view PATH --port PORT``, started from the checkout; its
    first line of output says what it serves."""
    command = [sys.executable, "-m", "panel_langchain_steps", "view", str(path), "--port", str(port)]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def test_view_serves_a_saved_trace(browser, tmp_path):
    recorder = ChatStepCallbackHandler()
    adding_agent().invoke(QUESTION, config={"callbacks": [recorder]})
    recorder.trace.save(tmp_path / "run.json")
    port = free_port()
    server = view_command(tmp_path / "run.json", port)
    try:
        line = server.stdout.readline()  # printed before serving
        assert f"at http://127.0.0.1:{port}/" in line and f"({len(recorder.trace)} runs)" in line
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        for _ in range(100):  # the server may still be starting: retry until it answers
            try:
                page.goto(f"http://127.0.0.1:{port}/")
                break
            except PlaywrightError:
                page.wait_for_timeout(200)
        page.locator(".tabulator-row", has_text="add").first.wait_for(timeout=30_000)
        text = deep_text(page, ".tabulator")
        assert "LangGraph" in text and "scripted-model" in text
        assert errors == []
        page.close()
    finally:
        server.terminate()
        server.wait(30)
