"""Long agent traces (issue 10): cost per tool call of a real agent, without and with the handler."""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

from panel_langchain_steps import ChatStepCallbackHandler

from .common import ScriptedAgent, flatness, live_chat, quiet_gc, verdict


@dataclass
class AgentResult:
    calls: int
    handler_calls: int  # fewer than ``calls`` when the time budget ran out
    bare_ms: float  # mean gap between tool calls, over the calls the handler's run made
    handler_ms: float
    handler_total_ms: float  # whole run and a final flush, per tool call
    flatness: float  # of the handler's gaps: last tenth / first tenth
    bare_flatness: float

    @property
    def ratio(self) -> float:
        return self.handler_ms / self.bare_ms

    @property
    def growth(self) -> float:
        """How much faster the cost per call grows with the handler than without it."""
        return self.flatness / self.bare_flatness


def trace(calls: int, handler: bool, budget: float | None = None) -> tuple[ScriptedAgent, float]:
    """Run the agent (into a ChatInterface in a live document, with ``handler``); return it and
    the seconds of the run plus a final ``flush()``."""
    agent = ScriptedAgent(calls, budget)
    callbacks = [ChatStepCallbackHandler(live_chat()[0])] if handler else []
    with quiet_gc():
        start = time.perf_counter()
        agent.invoke(callbacks)
        for callback in callbacks:
            callback.flush()
        return agent, time.perf_counter() - start


def run(sizes: list[int], budget: float) -> list[AgentResult]:
    """Each size without the handler, then with it (stopping after ``budget`` seconds), repeated
    for short runs: gaps are averaged call by call over the repeats, so that where the handler's
    drawing passes land does not decide the flatness of a 10-call run."""
    trace(5, handler=False)
    trace(5, handler=True)  # warm up
    results = []
    for calls in sizes:
        bares, ours, totals = [], [], []
        for _ in range(min(5, max(1, 1000 // calls))):
            bares.append(trace(calls, handler=False)[0].gaps)
            agent, total = trace(calls, handler=True, budget=budget)
            ours.append(agent.gaps)
            totals.append(total / len(agent.stamps))
        done = min(len(gaps) for gaps in ours) + 1
        bare, our = mean_gaps(bares, done - 1), mean_gaps(ours, done - 1)
        results.append(
            AgentResult(
                calls,
                done,
                statistics.fmean(bare) * 1e3,
                statistics.fmean(our) * 1e3,
                statistics.fmean(totals) * 1e3,
                flatness(our),
                flatness(bare),
            )
        )
    return results


def mean_gaps(runs: list[list[float]], count: int) -> list[float]:
    """The first ``count`` gaps, each averaged over the runs."""
    return [statistics.fmean(gaps[i] for gaps in runs) for i in range(count)]


def report(args: argparse.Namespace) -> None:
    sizes = [10, 50] if args.quick else [10, 100, 500]
    budget = 10.0 if args.quick else 60.0
    rows = run(sizes, budget)
    print("### 5. Agent trace (`create_agent`, ms per tool call; the handler into a live ChatInterface)\n")
    print(
        "| tool calls | no handler | this handler | ratio | target <= 10 | with the final flush "
        "| flatness | flatness, no handler | growth beyond the agent's own | target <= 1.2 |"
    )
    print("|---:|---:|---:|---:|:---:|---:|---:|---:|---:|:---:|")
    for r in rows:
        done = f" (first {r.handler_calls:,} only)" if r.handler_calls < r.calls else ""
        print(
            f"| {r.calls:,} | {r.bare_ms:.1f} | {r.handler_ms:.1f}{done} | {r.ratio:.1f} "
            f"| {verdict(r.ratio <= 10)} | {r.handler_total_ms:.1f} | {r.flatness:.2f} "
            f"| {r.bare_flatness:.2f} | {r.growth:.2f} | {verdict(r.growth <= 1.2)} |"
        )
    print(
        "\nPer tool call: the mean gap between the tool's calls (without the handler: over as many "
        "calls as the handler's run made). Flatness: the mean gap of the last tenth of the calls / the "
        "first tenth. The agent itself slows down as its message history grows (every model call "
        "gets the whole history), so the handler's growth is its flatness over the bare agent's. "
        f"With the handler the agent stops after {budget:.0f} s.\n"
    )
