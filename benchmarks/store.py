"""Benchmark: the trace store with many stored turns (issue 26).

A real agent turn (the scripted model calls a tool, then answers) is recorded
once; the store is filled with copies of it, each with its own id, start time
and question (one word of the question from a small vocabulary, one unique), so
searches can match few or many turns. Measured, each next to a baseline from
the same run:

- the first page of ``list()`` and of ``search()`` (one word matching one turn,
  one matching a tenth, one matching every turn), against reading the newest
  50 rows, every column, with one plain SQL query on the table's key;
- the writer's time per turn (summary, redaction, JSON and the database, in
  batches as the writer writes them), against writing the same turn with
  ``Trace.save`` to a JSON file;
- what saving costs the chat's event loop: turns run with ``ainvoke`` on one
  loop with a store and without: the loop thread's own CPU time per turn, and
  the wall-clock time per turn (which includes waiting while the writer
  thread holds Python's GIL).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from panel_langchain_steps import ChatStepCallbackHandler, Trace, TraceStore
from panel_langchain_steps.store import _Turn
from panel_langchain_steps.testing import ScriptedChatModel

from .common import verdict

VOCABULARY = [f"topic{index}" for index in range(10)]
PRICES = {"scripted-model": (2.5, 10.0)}
#: Seconds between the model's tokens: none (turns back to back, the worst case), and a fast
#: provider's; each with how many turns are run, and how many times (the best is kept).
LOOPS = {0.0: (50, 3), 0.02: (20, 1)}


@dataclass
class StoreResult:
    turns: int
    fill_s: float
    list_ms: float
    search_ms: dict[str, float]
    raw_ms: float
    writer_ms: float
    json_ms: float
    #: {token delay: [(loop CPU ms, wall ms) per turn without a store, the same with a store]}
    loops: dict[float, list[tuple[float, float]]]
    size_mb: float


QUESTION = {"messages": [("user", "Look up the item.")]}


@tool
def lookup(query: str) -> str:
    """Look something up."""
    return f"result for {query}"


def agent(token_delay: float = 0.0) -> Any:
    """A real agent: the scripted model streams a sentence and calls `lookup`, then answers."""
    call = {"name": "lookup", "args": {"query": "the item"}, "id": "call_0", "type": "tool_call"}
    replies = [AIMessage("Let me look up the item.", tool_calls=[call]), "Done: the item is found."]
    return create_agent(
        ScriptedChatModel(responses=replies, token_delay=token_delay, streaming=True), [lookup]
    )


def template() -> dict:
    """One real turn as saved data."""
    handler = ChatStepCallbackHandler()
    agent().invoke(QUESTION, config={"callbacks": [handler]})
    return handler.trace.to_dict()


def copy_of(data: dict, index: int, start: float) -> dict:
    """The template turn as turn ``index``: new ids, its start time, its own question."""
    data = copy.deepcopy(data)
    suffix = f"-{index}"
    offset = start - data["runs"][0]["start_time"]
    for run in data["runs"]:
        run["id"] += suffix
        run["root_id"] += suffix
        run["parent_id"] = run["parent_id"] and run["parent_id"] + suffix
        for key in ("start_time", "end_time", "first_token_time"):
            if run[key]:
                run[key] += offset
    question = f"Look up {VOCABULARY[index % 10]} and unique{index}."
    data["runs"][0]["inputs"] = {"messages": [{"type": "human", "content": question}]}
    return data


def turns(copies: list[dict]) -> Trace:
    """One trace of several turns."""
    return Trace.from_dict({**copies[0], "runs": [run for data in copies for run in data["runs"]]})


def timed_ms(action, repeats: int = 5) -> float:
    """Median milliseconds of ``action()``."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def writer_ms(store: TraceStore, data: dict, count: int, batch: int = 100) -> float:
    """Store ``count`` turns as the writer does (prepare each, write a batch in one transaction):
    ms per turn."""
    spent = 0.0
    for first in range(0, count, batch):
        trace = turns([copy_of(data, index, index) for index in range(first, min(count, first + batch))])
        started = time.perf_counter()
        store.save(trace, PRICES)
        spent += time.perf_counter() - started
    store.delete(*(f"{data['runs'][0]['id']}-{index}" for index in range(count)))
    return spent * 1000 / count


def fill(store: TraceStore, data: dict, count: int, batch: int = 2000) -> None:
    """Store ``count`` copies of one prepared turn, each with its id, start time, question and text."""
    trace = turns([copy_of(data, 0, 0)])
    turn = _Turn.of(trace.runs_of(trace.roots[0].id), PRICES)
    start = time.time() - count
    for first in range(0, count, batch):
        prepared = []
        for index in range(first, min(count, first + batch)):
            question = f"Look up {VOCABULARY[index % 10]} and unique{index}."
            summary = {
                **turn.summary,
                "id": f"turn-{index}",
                "start_time": start + index,
                "preview": question,
            }
            prepared.append(dataclasses.replace(turn, summary=summary, body=f"{question}\n{turn.body}"))
        store._write_turns(prepared)  # fast: the copies are prepared once (the writer is timed above)


async def loop_time(count: int, store: TraceStore | None, token_delay: float) -> tuple[float, float]:
    """Running ``count`` turns one after another on this loop: the loop thread's CPU milliseconds
    per turn (what the loop did), and the wall-clock milliseconds per turn."""
    handler = ChatStepCallbackHandler(store=store, prices=PRICES)
    agents = [agent(token_delay) for _ in range(count)]
    started, cpu = time.perf_counter(), time.thread_time()
    for each in agents:
        await each.ainvoke(QUESTION, config={"callbacks": [handler]})
    spent, cpu = time.perf_counter() - started, time.thread_time() - cpu
    if store is not None:
        await asyncio.to_thread(store.flush, 60)
    return cpu * 1000 / count, spent * 1000 / count


def run(count: int) -> StoreResult:
    data = template()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "traces.db"
        store = TraceStore(path)
        writer = min(writer_ms(store, data, 300) for _ in range(3))
        started = time.perf_counter()
        fill(store, data, count)
        fill_s = time.perf_counter() - started
        json_ms = timed_ms(lambda: turns([copy_of(data, 0, 0)]).save(Path(folder) / "turn.json"), 50)
        engine = store._engine
        import sqlalchemy as sa

        def raw() -> None:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT * FROM turns ORDER BY seq DESC LIMIT 50")).all()

        raw_ms = timed_ms(raw)
        list_ms = timed_ms(store.list)
        searches = {"one turn": f"unique{count // 2}", "a tenth": "topic3", "every turn": "lookup"}
        search_ms = {
            label: timed_ms(lambda word=word: store.search(word)) for label, word in searches.items()
        }
        assert len(store.search(f"unique{count // 2}")) == 1
        loops = {
            delay: [
                min(asyncio.run(loop_time(count, chosen, delay)) for _ in range(repeats))
                for chosen in (None, store)
            ]
            for delay, (count, repeats) in LOOPS.items()
        }
        size = sum(file.stat().st_size for file in Path(folder).glob("traces.db*")) / 1e6
        store.close()
    return StoreResult(count, fill_s, list_ms, search_ms, raw_ms, writer, json_ms, loops, size)


def report(args) -> None:
    count = 10_000 if args.quick else 100_000
    r = run(count)
    size = f"{r.size_mb:,.0f} MB, filled in {r.fill_s:.0f} s"
    print(f"### Trace store ({r.turns:,} stored turns in SQLite: {size})\n")
    print("| first page (50 turns) | ms | / plain SQL query | target < 200 ms |")
    print("|---|---:|---:|:---:|")
    print(f"| plain `SELECT ... LIMIT 50` (baseline) | {r.raw_ms:.1f} | 1.00 | |")
    print(f"| `list()` | {r.list_ms:.1f} | {r.list_ms / r.raw_ms:.2f} | {verdict(r.list_ms < 200)} |")
    for label, ms in r.search_ms.items():
        print(f"| `search()`, a word of {label} | {ms:.1f} | {ms / r.raw_ms:.2f} | {verdict(ms < 200)} |")
    print("\n| saving a turn | ms per turn | / `Trace.save` to JSON | target |")
    print("|---|---:|---:|:---:|")
    print(f"| `Trace.save` of the turn (baseline) | {r.json_ms:.2f} | 1.00 | |")
    print(
        f"| the store's writer (300 turns in batches of 100, best of 3) | {r.writer_ms:.2f} "
        f"| {r.writer_ms / r.json_ms:.2f} | < 5 ms: {verdict(r.writer_ms < 5)} |\n"
    )
    print("| the chat's loop (turns with `ainvoke`) | without a store | with a store | ratio |")
    print("|---|---:|---:|---:|")
    for delay, ((cpu, wall), (cpu_store, wall_store)) in r.loops.items():
        count = LOOPS[delay][0]
        model = (
            f"{count} turns, a token every {delay * 1000:.0f} ms" if delay else f"{count} turns back to back"
        )
        print(f"| {model}: loop's CPU ms per turn | {cpu:.1f} | {cpu_store:.1f} | {cpu_store / cpu:.2f} |")
        print(
            f"| {model}: wall-clock ms per turn | {wall:.1f} | {wall_store:.1f} | {wall_store / wall:.2f} |"
        )
    print()
