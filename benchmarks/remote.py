"""Benchmark: a LangGraph server's run stream followed with ``handler.follow``.

(1) What ``follow`` costs per part: a real server's stream of a long answer
(``stream_mode=["events", "updates"]``), iterated bare and through
``handler.follow`` in the same run, live from the server, and replayed from
memory (follow's own work alone, with and without drawing the steps).
(2) How soon a remote token shows in a real browser: the served app follows
a run on the server; each token's time leaving the model (stamped on the
server) and arriving in the app are compared with the time it shows in
headless Chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import panel as pn

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.langgraph_dev import langgraph_dev

from .common import percentile, verdict
from .freshness import answer, watch

# The served graphs: one agent answering with numbered tokens at once, one at a pace, whose model
# notes (in BENCH_STAMPS) when each token leaves it.
GRAPHS = """
import os
import time

from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler

from panel_langchain_steps.testing import ScriptedChatModel


class Stamps(BaseCallbackHandler):
    run_inline = True

    def on_llm_new_token(self, token, **kwargs):
        if token:
            with open(os.environ["BENCH_STAMPS"], "a") as stamps:
                stamps.write(f"{{time.time() * 1000}}\\n")


fast = create_agent(ScriptedChatModel(responses=lambda messages: {answer!r}), [], name="fast")
paced = create_agent(
    ScriptedChatModel(responses=lambda messages: {paced!r}, token_delay={delay}, callbacks=[Stamps()]),
    [],
    name="paced",
)
"""
MODES = ["events", "updates"]
QUESTION = {"messages": [{"role": "user", "content": "Go."}]}


@dataclass
class CostResult:
    parts: int
    live_bare_us: float
    live_follow_us: float
    replay_bare_us: float
    replay_follow_us: float
    replay_shown_us: float


@dataclass
class FreshResult:
    tokens: int
    server_to_app_ms: float
    app_to_browser_ms: float
    median_ms: float
    p95_ms: float
    max_ms: float


async def _parts(url: str, graph: str, handler: ChatStepCallbackHandler | None = None) -> list[Any]:
    from langgraph_sdk import get_client

    client = get_client(url=url)
    thread_id = (await client.threads.create())["thread_id"]
    stream = client.runs.stream(thread_id, graph, input=QUESTION, stream_mode=MODES, stream_subgraphs=True)
    if handler is not None:
        stream = handler.follow(stream, client=client, thread_id=thread_id)
    return [part async for part in stream]


async def _replay(parts: list[Any]) -> AsyncIterator[Any]:
    for part in parts:
        yield part


async def _drain(stream: AsyncIterator[Any]) -> None:
    async for _ in stream:
        pass


def _best(timings: list[float], parts: int) -> float:
    return min(timings) / parts * 1e6


def cost(url: str, repeats: int) -> CostResult:
    live_bare, live_follow, bare, followed, shown = [], [], [], [], []
    parts: list[Any] = []
    for _ in range(repeats):  # alternated, so that both see the same machine
        started = time.perf_counter()
        parts = asyncio.run(_parts(url, "fast"))
        live_bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        asyncio.run(_parts(url, "fast", ChatStepCallbackHandler()))
        live_follow.append(time.perf_counter() - started)
    for _ in range(repeats):
        started = time.perf_counter()
        asyncio.run(_drain(_replay(parts)))
        bare.append(time.perf_counter() - started)
        handler = ChatStepCallbackHandler()
        started = time.perf_counter()
        asyncio.run(_drain(handler.follow(_replay(parts))))
        followed.append(time.perf_counter() - started)
        handler = ChatStepCallbackHandler(collapsed_on_success=False)
        started = time.perf_counter()
        asyncio.run(_drain(handler.follow(_replay(parts))))
        handler.flush()
        shown.append(time.perf_counter() - started)
    count = len(parts)
    return CostResult(
        count,
        _best(live_bare, count),
        _best(live_follow, count),
        _best(bare, count),
        _best(followed, count),
        _best(shown, count),
    )


def freshness(url: str, tokens: int, stamps: Path) -> FreshResult:
    arrivals: list[float] = []
    done = threading.Event()

    def app():
        layout = pn.Column(sizing_mode="stretch_width")
        handler = ChatStepCallbackHandler(layout, collapsed_on_success=False)

        async def work():
            from langgraph_sdk import get_client

            client = get_client(url=url)
            thread_id = (await client.threads.create())["thread_id"]
            stream = client.runs.stream(thread_id, "paced", input=QUESTION, stream_mode=MODES)
            async for part in handler.follow(stream, client=client, thread_id=thread_id):
                event = part.data if part.event == "events" else {}
                if event.get("event") == "on_chat_model_stream" and event["data"]["chunk"]["content"]:
                    arrivals.append(time.time() * 1000)
            done.set()

        pn.state.onload(lambda: threading.Thread(target=asyncio.run, args=(work(),), daemon=True).start())
        return layout

    seen = watch(app, tokens, done, timeout=120)
    sent = [float(line) for line in stamps.read_text().split()][-tokens:]
    delays = sorted(seen[str(i)] - sent[i] for i in range(tokens))
    return FreshResult(
        tokens,
        statistics.median(arrivals[i] - sent[i] for i in range(tokens)),
        statistics.median(seen[str(i)] - arrivals[i] for i in range(tokens)),
        statistics.median(delays),
        percentile(delays, 0.95),
        delays[-1],
    )


def report(args: argparse.Namespace) -> None:
    tokens = 500 if args.quick else 2000
    paced = 100 if args.quick else 300
    with tempfile.TemporaryDirectory() as directory:
        project = Path(directory)
        stamps = project.parent / f"{project.name}-stamps.txt"
        source = GRAPHS.format(answer=answer(tokens), paced=answer(paced), delay=0.02)
        (project / "graphs.py").write_text(source)
        (project / "langgraph.json").write_text(
            '{"dependencies": ["."], "graphs": {"fast": "./graphs.py:fast", "paced": "./graphs.py:paced"}}'
        )
        os.environ["BENCH_STAMPS"] = str(stamps)
        try:
            with langgraph_dev(project) as server:
                c = cost(server.url, 2 if args.quick else 5)
                f = None if args.no_browser else freshness(server.url, paced, stamps)
        finally:
            stamps.unlink(missing_ok=True)
    best = "best of 2" if args.quick else "best of 5"
    print(f"### Remote runs: a LangGraph server's stream through `handler.follow` ({best})\n")
    print(f"A {tokens:,}-token answer is {c.parts:,} stream parts (`events` and `updates`).\n")
    print("| | bare stream, us per part | through `follow`, us per part | ratio | target <= 1.3 |")
    print("|---|---:|---:|---:|:---:|")
    ratio = c.live_follow_us / c.live_bare_us
    print(
        f"| live from `langgraph dev` | {c.live_bare_us:.1f} | {c.live_follow_us:.1f} | {ratio:.2f} "
        f"| {verdict(ratio <= 1.3)} |"
    )
    print(
        f"| replayed from memory (recording only) | {c.replay_bare_us:.2f} | {c.replay_follow_us:.1f} | | |"
    )
    print(f"| replayed, until the steps are drawn | | {c.replay_shown_us:.1f} | | |\n")
    if f is not None:
        print(
            f"Freshness in headless Chromium ({f.tokens} tokens at 50 tokens/s, from the server's model):\n"
        )
        print(
            "| server to app, median | app to browser, median | median | p95 | max | target median < 150 ms |"
        )
        print("|---:|---:|---:|---:|---:|:---:|")
        print(
            f"| {f.server_to_app_ms:.0f} ms | {f.app_to_browser_ms:.0f} ms | {f.median_ms:.0f} ms "
            f"| {f.p95_ms:.0f} ms | {f.max_ms:.0f} ms | {verdict(f.median_ms < 150)} |\n"
        )
