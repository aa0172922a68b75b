"""Benchmark 4: delay from a token leaving the model to its text showing in a real browser."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import panel as pn
from langchain_core.callbacks import BaseCallbackHandler

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.testing import ScriptedChatModel
from tests.browser.harness import launch_chromium, served

from .common import DEEP_JS, percentile

# Polls the page (through every shadow root) every few ms and notes when each
# numbered token ("t00042") first shows; tokens arrive in order, so the
# highest number seen marks every token up to it as shown.
WATCHER = (
    DEEP_JS
    + """
window.__seen = {};
let highest = -1;
setInterval(() => {
  const marks = deepText(document).match(/t\\d{5}/g);
  if (!marks) return;
  const top = Math.max(...marks.map(m => parseInt(m.slice(1), 10)));
  const now = Date.now();
  for (let i = highest + 1; i <= top; i++) window.__seen[i] = now;
  highest = Math.max(highest, top);
}, 4);
"""
)


@dataclass
class FreshResult:
    tokens: int
    token_delay: float
    median_ms: float
    p95_ms: float
    max_ms: float


class Stamps(BaseCallbackHandler):
    """Notes the wall-clock time each token leaves the model."""

    run_inline = True

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_llm_new_token(self, token, **kwargs):
        if token:
            self.times.append(time.time() * 1000)


def answer(tokens: int) -> str:
    """Numbered tokens, with a paragraph break every 30 tokens."""
    return "t00000" + "".join((" " if i % 30 else "\n\n") + f"t{i:05d}" for i in range(1, tokens))


def watch(app: Callable[[], Any], tokens: int, done: threading.Event, timeout: float) -> dict[str, float]:
    """Serve ``app`` to headless Chromium; when each numbered token first showed there (ms since the epoch,
    by its number), once ``done`` is set (or ``timeout`` seconds passed) and the last token showed."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, served(app) as url:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.add_init_script(WATCHER)
            page.goto(url)
            done.wait(timeout=timeout)
            page.wait_for_function(f"window.__seen[{tokens - 1}] !== undefined", timeout=10_000)
            return page.evaluate("window.__seen")
        finally:
            browser.close()


def run(tokens: int, token_delay: float, flush_interval: float | None = None) -> FreshResult:
    stamps = Stamps()
    done = threading.Event()
    options = {} if flush_interval is None else {"flush_interval": flush_interval}

    def app():
        layout = pn.Column(sizing_mode="stretch_width")
        handler = ChatStepCallbackHandler(layout, collapsed_on_success=False, **options)
        model = ScriptedChatModel(responses=[answer(tokens)], token_delay=token_delay)

        def work():
            for _ in model.stream("question", config={"callbacks": [stamps, handler]}):
                pass
            done.set()

        pn.state.onload(lambda: threading.Thread(target=work, daemon=True).start())
        return layout

    seen = watch(app, tokens, done, timeout=60 + tokens * token_delay * 2)
    delays = sorted(seen[str(i)] - sent for i, sent in enumerate(stamps.times[:tokens]))
    return FreshResult(
        tokens,
        token_delay,
        statistics.median(delays),
        percentile(delays, 0.95),
        delays[-1],
    )
