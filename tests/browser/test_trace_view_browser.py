"""TraceView served in Chromium: a live trace fills the tree and the waterfall, hostile names stay text."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from pathlib import Path

import pytest
from conftest import QUESTION, adding_agent
from langchain_core.runnables import RunnableLambda
from playwright.sync_api import expect

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.trace_view import TraceView

from .conftest import DEEP_TEXT, deep_text

pytestmark = pytest.mark.browser

DOCS_IMAGE = Path(__file__).parents[2] / "docs" / "images" / "trace-view.png"
HOSTILE = "<img src=x onerror=alert(1)>"
TIMEOUT = 30_000
#: How many <img> elements the page has, shadow roots included.
IMAGES = """() => {
  const count = (root) => [...root.querySelectorAll("*")].reduce(
    (n, node) => n + (node.tagName === "IMG") + (node.shadowRoot ? count(node.shadowRoot) : 0), 0);
  return count(document);
}"""


def lookup(text: str) -> str:
    raise ValueError(f"no such thing: {text}")


def run_turns(recorder: ChatStepCallbackHandler) -> None:
    """A real agent turn with a hostile name, then a chain that fails."""
    adding_agent().invoke(QUESTION, config={"callbacks": [recorder], "run_name": HOSTILE})
    with contextlib.suppress(ValueError):
        RunnableLambda(lookup).invoke("x", config={"callbacks": [recorder]})


def wait_for_text(page, selector: str, text: str) -> None:
    page.wait_for_function(
        f"([selector, text]) => (({DEEP_TEXT})(selector) || '').includes(text)",
        arg=[selector, text],
        timeout=TIMEOUT,
    )


def test_live_trace_in_the_browser(open_app, tmp_path):
    recorder = ChatStepCallbackHandler()
    trace = recorder.trace

    def app() -> TraceView:
        return TraceView(trace, interval=0.1, prices={"scripted-model": (3.0, 15.0)})

    with open_app(app) as (page, log, _view):
        expect(page.locator(".tabulator").first).to_be_visible(timeout=TIMEOUT)
        expect(page.get_by_role("button", name="No errors")).to_be_disabled()
        worker = threading.Thread(target=run_turns, args=(recorder,))
        worker.start()
        worker.join(60)
        # The hostile name arrives live, as text, with no dialog.
        wait_for_text(page, ".tabulator", HOSTILE)
        wait_for_text(page, ".tabulator", "failed")
        assert "scripted-model" in deep_text(page, ".tabulator")
        assert "add · 1, 2" in deep_text(page, ".tabulator")  # named as its step in a chat
        wait_for_text(page, ".trace-totals", "1 errors")
        page.locator(".tabulator-row", has_text="add").first.click()
        wait_for_text(page, ".trace-detail", '"a": 1')
        page.get_by_role("button", name="Next error").click()
        wait_for_text(page, ".trace-detail", "ValueError: no such thing: x")
        # The root's bar spans most of the first waterfall row: its tooltip shows the name as text.
        box = page.locator(".bk-events").last.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 18)
        wait_for_text(page, ".bk-tooltip-content", f"run: {HOSTILE}")
        page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + 18)  # selects the root
        wait_for_text(page, ".trace-detail", "chain · success")
        assert HOSTILE in deep_text(page, ".trace-detail")
        shot = tmp_path / "trace-view.png"
        page.screenshot(path=str(shot), full_page=True)
        assert log.dialogs == []
        assert log.errors == [] and log.console_errors == []
        assert log.unexpected_requests() == []
        assert page.evaluate(IMAGES) == 0
    if os.environ.get("UPDATE_DOCS_IMAGES") == "1":
        shutil.copyfile(shot, DOCS_IMAGE)


def test_search_and_collapse_in_the_browser(open_app):
    recorder = ChatStepCallbackHandler()
    trace = recorder.trace
    run_turns(recorder)

    def app() -> TraceView:
        return TraceView(trace)

    with open_app(app) as (page, log, view):
        wait_for_text(page, ".tabulator", "add")
        page.get_by_placeholder("Search runs").fill("add")
        page.get_by_placeholder("Search runs").press("Enter")
        expect(page.locator(".tabulator-row")).to_have_count(1, timeout=TIMEOUT)
        page.get_by_placeholder("Search runs").fill("")
        page.get_by_placeholder("Search runs").press("Enter")
        expect(page.locator(".tabulator-row")).to_have_count(len(trace), timeout=TIMEOUT)
        page.locator(".tabulator-row").first.locator("[tabulator-field=toggle]").click()
        expect(page.locator(".tabulator-row")).to_have_count(2, timeout=TIMEOUT)
        assert view.collapsed == [trace.roots[0].id]
        assert log.dialogs == [] and log.errors == [] and log.console_errors == []
