"""Benchmark: TraceView on 1,000 and 10,000-run traces, against a plain Markdown page of the same text.

The traces are real: an agent loop calls a `ScriptedChatModel` and a tool,
LangChain's own run collector records every run, and `from_langsmith`
reads the records. For each size, in the same run: time from opening the
page until it is interactive in Chromium (the table's rows and the
waterfall drawn; for the floor, the Markdown's last line shown) and the
Python memory of building the view in a Bokeh document (tracemalloc peak).
Target: TraceView within 3x the floor.

Run: ``python -m benchmarks.trace_view [--sizes 1000 10000]``.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import panel as pn
from bokeh.document import Document
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import tool
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

from panel_langchain_steps import from_langsmith
from panel_langchain_steps.testing import ScriptedChatModel
from panel_langchain_steps.trace import Trace
from panel_langchain_steps.trace_view import TraceView
from tests.browser.harness import launch_chromium, served

from .common import quiet_gc

TIMEOUT = 600_000

#: True once a selector matches inside the page, shadow roots included.
_FOUND = """(selector) => {
  const find = (root) => root.querySelector(selector)
    || [...root.querySelectorAll("*")].some((node) => node.shadowRoot && find(node.shadowRoot)) || null;
  return Boolean(find(document));
}"""


@tool
def lookup(query: str) -> str:
    """Look something up."""
    return f"result for {query}"


def agent_trace(runs: int) -> Trace:
    """A real agent loop of ``runs`` runs (a model call and a tool call per step), as a `Trace`."""
    model = ScriptedChatModel(responses=lambda messages: "Looking it up.")
    steps = max(1, (runs - 1) // 2)

    def agent(question: str, config: RunnableConfig) -> str:
        for number in range(steps):
            model.invoke(f"{question} {number}", config)
            lookup.invoke({"query": f"{question} {number}"}, config)
        return "done"

    collector = RunCollectorCallbackHandler()
    RunnableLambda(agent).with_config(run_name="agent").invoke("q", {"callbacks": [collector]})

    def flat(run: Any) -> Any:
        yield run.model_dump(mode="json", fallback=repr)
        for child in run.child_runs:
            yield from flat(child)

    return from_langsmith([item for root in collector.traced_runs for item in flat(root)])


def floor_text(trace: Trace) -> str:
    """The trace's text as one Markdown list: every run's name, kind, status, seconds, tokens and text."""
    lines = []
    for run in trace.runs:
        tokens = (run.usage or {}).get("total_tokens", 0)
        text = " ".join(run.text.get("text", "").split())
        lines.append(
            f"- {run.name} · {run.kind} · {run.status} · {run.elapsed:.3f} s · {tokens} tokens {text}"
        )
    return "\n".join(lines) + "\n\nEND-OF-TRACE"


@dataclass
class Result:
    runs: int
    view_s: float
    floor_s: float
    view_mb: float
    floor_mb: float

    @property
    def ratio(self) -> float:
        return self.view_s / self.floor_s


def python_memory(build: Callable[[], Any]) -> float:
    """Peak MB that building ``build()`` into a Bokeh document allocates."""
    with quiet_gc():
        tracemalloc.start()
        pn.panel(build()).get_root(Document())
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 1e6


def time_to_interactive(browser: Any, app: Callable[[], Any], ready: str, arg: Any) -> float:
    """Seconds from opening the served page until ``ready(arg)`` holds in it."""
    with served(app) as url:
        page = browser.new_page()
        try:
            start = time.perf_counter()
            page.goto(url)
            page.wait_for_function(ready, arg=arg, timeout=TIMEOUT, polling=50)
            return time.perf_counter() - start
        finally:
            page.close()


def run(sizes: list[int]) -> list[Result]:
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            for size in [10, *sizes]:  # the first, small one warms Chromium's cache up: not reported
                trace = agent_trace(size)
                text = floor_text(trace)

                def view(trace: Trace = trace) -> TraceView:
                    return TraceView(trace)

                def floor(text: str = text) -> pn.pane.Markdown:
                    return pn.pane.Markdown(text, sizing_mode="stretch_width")

                # Interactive: rows in the table and the waterfall's canvas drawn.
                view_ready = f"(s) => ({_FOUND})(s[0]) && ({_FOUND})(s[1])"
                view_s = time_to_interactive(browser, view, view_ready, [".tabulator-row", "canvas"])
                floor_ready = f"(s) => ({_FOUND})(s)"
                floor_s = time_to_interactive(browser, floor, floor_ready, "li:last-child")
                results.append(Result(len(trace), view_s, floor_s, python_memory(view), python_memory(floor)))
        finally:
            browser.close()
    return results[1:]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.trace_view", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    args = parser.parse_args()
    print(
        "| runs | TraceView interactive (s) | Markdown floor (s) | ratio | target <= 3 "
        "| TraceView Python MB | floor Python MB |"
    )
    print("|---:|---:|---:|---:|:---:|---:|---:|")
    for result in run(args.sizes):
        ok = "yes" if result.ratio <= 3 else "**no**"
        print(
            f"| {result.runs:,} | {result.view_s:.2f} | {result.floor_s:.2f} | {result.ratio:.2f} | {ok} "
            f"| {result.view_mb:.1f} | {result.floor_mb:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
