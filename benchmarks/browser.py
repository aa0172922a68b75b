"""Long agent traces in Chromium (issue 16): time to interactive, DOM, websocket bytes, expanding."""

from __future__ import annotations

import argparse
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import panel as pn

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.options import StepOptions, ViewOptions
from panel_langchain_steps.render import Renderer, default_title
from tests.browser.harness import launch_chromium, served

from .common import DEEP_JS, ScriptedAgent, verdict

#: The reply's card title once the turn is done ("Steps · 401 steps · done in 2.1 s").
_DONE = r"Steps · ([\d,]+) steps · done"

# Clicks the header of the step titled ``title`` (the first or last such step) and resolves
# with the ms until an element whose text matches the regular expression ``body`` is visible;
# -1 after 10 s.
_EXPAND = """async ([title, last, body]) => {
  const pattern = new RegExp(body);
  const headers = window.deepElements(document)
    .filter(el => el.matches("button.card-header") && window.deepText(el).includes(title));
  const header = last ? headers[headers.length - 1] : headers[0];
  const shown = () => window.deepElements(document).some(el =>
    (el.childElementCount === 0 || el.tagName === "H3") && pattern.test(el.textContent)
    && el.checkVisibility());
  const start = performance.now();
  header.click();
  while (!shown()) {
    if (performance.now() - start > 10000) return -1;
    await new Promise(requestAnimationFrame);
  }
  return performance.now() - start;
}"""


@dataclass
class PageResult:
    seconds: float  # from navigation until the trace is done and shown
    elements: int  # in the whole page, shadow roots included
    ws_bytes: int  # received over the websocket


@dataclass
class BrowserResult:
    calls: int
    steps: int
    trace: PageResult
    floor: PageResult
    expand_first_ms: float
    expand_last_ms: float

    @property
    def ratio(self) -> float:
        return self.trace.seconds / self.floor.seconds

    @property
    def elements_per_step(self) -> float:
        return self.trace.elements / self.steps

    @property
    def ws_per_step(self) -> float:
        return self.trace.ws_bytes / self.steps


def trace_page(calls: int) -> tuple[Callable[[], pn.chat.ChatInterface], list[ChatStepCallbackHandler]]:
    """An app whose sessions run an agent making ``calls`` tool calls into a ChatInterface on
    load, and the list of its sessions' handlers."""
    views: list[ChatStepCallbackHandler] = []

    def app() -> pn.chat.ChatInterface:
        chat = pn.chat.ChatInterface()
        handler = ChatStepCallbackHandler(chat)
        agent = ScriptedAgent(calls)
        pn.state.onload(lambda: threading.Thread(target=agent.invoke, args=([handler],), daemon=True).start())
        views.append(handler)
        return chat

    return app, views


def floor_page(text: str) -> Callable[[], pn.chat.ChatInterface]:
    """An app showing ``text`` as one Markdown message in a ChatInterface."""

    def app() -> pn.chat.ChatInterface:
        chat = pn.chat.ChatInterface()
        chat.send(pn.pane.Markdown(text), user="Assistant", respond=False)
        return chat

    return app


def plain_text(handler: ChatStepCallbackHandler) -> str:
    """Every run's title and text (what its step shows when opened), then the reply's card title,
    as one Markdown text."""
    renderer = Renderer(ViewOptions.of(StepOptions()), report=lambda *_: None)
    runs = [
        f"**{default_title(run)}**\n\n"
        + "\n".join(part for _, part in renderer.body(run, shows_error=True, answer_below=False))
        for run in handler.trace.runs
    ]
    card = handler.layout.objects[-1].object.objects[0]
    return "\n\n".join([*runs, card.title])


def open_steps_card(page: Any) -> None:
    """Open the reply's card of steps (a click on its header) and wait until its steps show."""
    assert page.evaluate(_EXPAND, ["Steps ·", False, "^Tool lookup"]) >= 0, (
        "the reply's steps card did not open"
    )


def load(browser: Any, url: str, timeout: float) -> tuple[Any, PageResult]:
    """Open ``url``; wait until the page shows a finished trace; measure it."""
    page = browser.new_page()
    page.add_init_script(DEEP_JS)
    received = [0]

    def on_websocket(ws: Any) -> None:
        ws.on("framereceived", lambda payload: received.__setitem__(0, received[0] + len(payload)))

    page.on("websocket", on_websocket)
    start = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_function(
        f"() => /{_DONE}/.test(window.deepText(document))", polling=50, timeout=timeout * 1000
    )
    seconds = time.perf_counter() - start
    elements = page.evaluate("() => window.deepElements(document).length")
    return page, PageResult(seconds, elements, received[0])


def run(steps: int, timeout: float = 600) -> BrowserResult:
    """Serve an agent trace of about ``steps`` steps (2 per tool call: the model's, the tool's; four
    runs) and the plain-Markdown floor."""
    from playwright.sync_api import sync_playwright

    calls = max(steps // 2, 1)
    app, views = trace_page(calls)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            with served(app) as url:
                page, trace = load(browser, url, timeout)
                title = page.evaluate(f"() => window.deepText(document).match(/{_DONE}/)[0]")
                open_steps_card(page)
                # The oldest and the newest tool steps on the page: the graph's newest `max_steps`
                # node steps are shown, half of them tool nodes (older ones are behind a button).
                made = (int(re.search(_DONE, title).group(1).replace(",", "")) - 2) // 2
                oldest = made - ChatStepCallbackHandler.param.max_steps.default // 2
                first = page.evaluate(_EXPAND, ["Tool lookup", False, f"^result for item {oldest}$"])
                last = page.evaluate(_EXPAND, ["Tool lookup", True, f"^result for item {made - 1}$"])
                text = plain_text(views[-1])
                page.close()
            with served(floor_page(text)) as url:
                page, floor = load(browser, url, timeout)
                page.close()
        finally:
            browser.close()
    count = int(re.search(_DONE, title).group(1).replace(",", ""))
    return BrowserResult(calls, count, trace, floor, first, last)


def report(args: argparse.Namespace) -> None:
    sizes = [int(size) for size in args.steps.split(",")] if args.steps else [40 if args.quick else 1000]
    print("### 6. A long agent trace in headless Chromium (a served ChatInterface; the agent runs on load)\n")
    print(
        "| steps | to interactive | plain-Markdown floor | ratio | target <= 3 | DOM elements per step "
        "| target <= 25 | websocket bytes per step | target <= 1 KB | expand first / last step "
        "| target < 100 ms |"
    )
    print("|---:|---:|---:|---:|:---:|---:|:---:|---:|:---:|---:|:---:|")
    for size in sizes:
        r = run(size)
        expand = max(r.expand_first_ms, r.expand_last_ms)
        expanded = "did not open" if min(r.expand_first_ms, r.expand_last_ms) < 0 else ""
        print(
            f"| {r.steps:,} | {r.trace.seconds:.1f} s | {r.floor.seconds:.2f} s | {r.ratio:.1f} "
            f"| {verdict(r.ratio <= 3)} | {r.elements_per_step:.0f} | {verdict(r.elements_per_step <= 25)} "
            f"| {r.ws_per_step:,.0f} | {verdict(r.ws_per_step <= 1024)} "
            f"| {expanded or f'{r.expand_first_ms:.0f} / {r.expand_last_ms:.0f} ms'} "
            f"| {verdict(not expanded and expand < 100)} |"
        )
    print(
        "\nTo interactive: from navigation until the reply's card says the turn is done. Floor: the same "
        "steps' titles and texts as one Markdown message in a ChatInterface, served and timed the same "
        "way. DOM elements: all, shadow roots included, over the steps in the card's title. Expand: "
        "click a collapsed tool step's header until its output is visible.\n"
    )
