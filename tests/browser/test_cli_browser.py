"""``python -m panel_langchain_steps view FILE`` serves the trace; Chromium shows it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import QUESTION, adding_agent

from panel_langchain_steps import ChatStepCallbackHandler

from .conftest import deep_text
from .harness import free_port, wait_until_listening

pytestmark = pytest.mark.browser

ROOT = Path(__file__).parents[2]


@contextmanager
def served_view(path: Path) -> Iterator[tuple[str, str]]:
    """``python -m panel_langchain_steps view PATH`` from the checkout, on a free port, while the
    block runs: the first line it printed (what it serves) and its URL, once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "panel_langchain_steps", "view", str(path), "--port", str(port)]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline()  # printed before serving
        wait_until_listening(port, 60)
        yield line, f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(30)


def test_view_serves_a_saved_trace(browser, tmp_path):
    recorder = ChatStepCallbackHandler()
    adding_agent().invoke(QUESTION, config={"callbacks": [recorder]})
    recorder.trace.save(tmp_path / "run.json")
    with served_view(tmp_path / "run.json") as (line, url):
        assert f"at {url}" in line and f"({len(recorder.trace)} runs)" in line
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.goto(url)
        page.locator(".tabulator-row", has_text="add").first.wait_for(timeout=30_000)
        text = deep_text(page, ".tabulator")
        assert "LangGraph" in text and "scripted-model" in text
        assert errors == []
        page.close()
