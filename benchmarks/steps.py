"""Benchmark 3: cost per step for an agent trace of many tool runs."""

from __future__ import annotations

import time
from dataclasses import dataclass

from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import tool

from panel_langchain_steps import ChatStepCallbackHandler

from .common import live_layout, quiet_gc


@tool
def lookup(query: str) -> str:
    """Look something up."""
    return f"result for {query}"


@dataclass
class StepResult:
    tools: int
    bare_ms: float
    handler_ms: float
    handler_tools: int  # fewer than ``tools`` when the time budget ran out

    @property
    def ratio(self) -> float:
        return self.handler_ms / self.bare_ms


def trace(tools: int, callbacks: list, budget: float | None = None) -> tuple[int, float]:
    """An agent run that calls a tool ``tools`` times; return (tool runs done, seconds)."""
    done = 0

    def agent(question: str, config: RunnableConfig) -> int:
        nonlocal done
        for number in range(tools):
            lookup.invoke({"query": f"{question} {number}"}, config)
            done += 1
            if budget is not None and time.perf_counter() - start > budget:
                break
        return done

    with quiet_gc():
        start = time.perf_counter()
        RunnableLambda(agent).with_config(run_name="agent").invoke("q", {"callbacks": callbacks})
        return done, time.perf_counter() - start


def run(sizes: list[int], budget: float) -> list[StepResult]:
    trace(5, [])
    layout, _ = live_layout()
    trace(5, [ChatStepCallbackHandler(layout)])  # warm up
    results = []
    for tools in sizes:
        _, bare = trace(tools, [])
        layout, _ = live_layout()
        done, ours = trace(tools, [ChatStepCallbackHandler(layout)], budget)
        results.append(StepResult(tools, bare / tools * 1e3, ours / done * 1e3, done))
    return results
