"""Benchmark: memory and time per streamed token of the run record, against LangChain's own tracer.

Why the package keeps its own `Trace` instead of building on ``langchain_core.tracers.BaseTracer``:
the tracer stores every token as an event (its text, time and chunk) on the run, so
its memory grows with each token; the `Trace` keeps the run's text only. Both are fed
the same real model stream, with no rendering, and measured with tracemalloc.
"""

from __future__ import annotations

import argparse
import tracemalloc
from dataclasses import dataclass

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.base import BaseTracer

from panel_langchain_steps.trace import Trace

from .common import quiet_gc, sample_text, stream


class KeepingTracer(BaseTracer):
    """LangChain's tracer core, keeping each finished run (as LangSmith's tracer would until it sends it)."""

    run_inline = True

    def __init__(self) -> None:
        super().__init__()
        self.finished: list = []

    def _persist_run(self, run) -> None:
        self.finished.append(run)


class Recording(BaseCallbackHandler):
    """The package's intake without a view: model runs and tokens into a `Trace`."""

    run_inline = True

    def __init__(self) -> None:
        self.trace = Trace()

    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, **kwargs):
        self.trace.start(run_id, parent_run_id, "llm", name="model", inputs={"messages": messages})

    def on_llm_new_token(self, token, *, run_id, parent_run_id=None, **kwargs):
        run = self.trace.touch(run_id, parent_run_id, "llm")
        if run is not None and token:
            self.trace.write(run, "text", token)

    def on_llm_end(self, response, *, run_id, parent_run_id=None, **kwargs):
        run = self.trace.touch(run_id, parent_run_id, "llm")
        if run is not None:
            self.trace.end(run, "success", outputs=response)


@dataclass
class RecordResult:
    tokens: int
    bare_us: float
    tracer_us: float
    trace_us: float
    tracer_bytes: int
    trace_bytes: int


def held_bytes(handler: BaseCallbackHandler, text: str) -> int:
    """Bytes the handler still holds after one streamed answer (tracemalloc)."""
    with quiet_gc():
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        stream(text, [handler])
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    return held


def run(tokens: int) -> RecordResult:
    """Seconds per token (best of 3, no tracemalloc) and bytes held, for each way of recording."""
    text = sample_text(tokens)
    best = {}
    for name, make in (("bare", lambda: None), ("tracer", KeepingTracer), ("trace", Recording)):
        runs = [make() for _ in range(3)]
        best[name] = min(stream(text, [h] if h is not None else [])[1] for h in runs)
    tracer, recording = KeepingTracer(), Recording()
    tracer_bytes, trace_bytes = held_bytes(tracer, text), held_bytes(recording, text)
    assert recording.trace.roots and tracer.finished  # both kept what they saw
    per = 1e6 / tokens
    return RecordResult(
        tokens, best["bare"] * per, best["tracer"] * per, best["trace"] * per, tracer_bytes, trace_bytes
    )


def report(args: argparse.Namespace) -> None:
    tokens = 2000 if args.quick else 10_000
    r = run(tokens)
    print(f"### Run record: a {tokens:,}-token stream, LangChain's tracer core vs the Trace (no rendering)\n")
    print("| recorder | us per token | bytes held per token |")
    print("|---|---:|---:|")
    print(f"| none | {r.bare_us:.1f} | |")
    print(f"| `BaseTracer` | {r.tracer_us:.1f} | {r.tracer_bytes / tokens:,.0f} |")
    print(f"| `Trace` | {r.trace_us:.1f} | {r.trace_bytes / tokens:,.0f} |\n")
