"""Python memory of a long agent trace (issue 10): per finished step, and after ``chat.clear()``."""

from __future__ import annotations

import argparse
import gc
import tracemalloc
from dataclasses import dataclass

import panel as pn

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.testing import iter_steps, step_tree

from .common import ScriptedAgent, live_chat, verdict


@dataclass
class MemoryResult:
    calls: int
    steps: int
    turn_bytes: int  # traced memory held after the turn, over what was held before it
    cleared_bytes: int  # still held after ``chat.clear()``

    @property
    def per_step_kb(self) -> float:
        return self.turn_bytes / self.steps / 1024

    @property
    def kept_share(self) -> float:
        """What ``chat.clear()`` left of the turn's memory."""
        return self.cleared_bytes / self.turn_bytes


def held() -> int:
    """Traced bytes held now, after a full collection."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def run(calls: int) -> MemoryResult:
    """One agent turn of ``calls`` tool calls into a ChatInterface in a live document (steps
    collapsed when done), measured with tracemalloc; then the chat is cleared."""
    chat, _ = live_chat()
    handler = ChatStepCallbackHandler(chat)
    ScriptedAgent(3).invoke([handler])  # warm up: first-use caches are not the turn's
    handler.flush()
    chat.clear()
    tracemalloc.start()
    try:
        before = held()
        ScriptedAgent(calls).invoke([handler])
        handler.flush()
        after = held()
        steps = sum(1 for _ in iter_steps(step_tree(chat.objects[-1])))
        chat.clear()
        cleared = held()
    finally:
        tracemalloc.stop()
    return MemoryResult(calls, steps, after - before, cleared - before)


def panel_kept_share(messages: int = 5) -> float:
    """The floor: what Panel itself keeps after ``chat.clear()`` of a live chat holding
    ``messages`` plain messages (a card and a Markdown pane each), no handler involved."""
    chat, _ = live_chat()
    chat.send("warm up", respond=False)
    chat.clear()
    tracemalloc.start()
    try:
        before = held()
        for number in range(messages):
            card = pn.Card(pn.pane.Markdown(f"Step {number}"), title=f"Step {number}")
            chat.send(pn.Column(card, pn.pane.Markdown(f"Answer {number}")), respond=False)
        after = held()
        chat.clear()
        cleared = held()
    finally:
        tracemalloc.stop()
    return (cleared - before) / (after - before)


def report(args: argparse.Namespace) -> None:
    r = run(10 if args.quick else 25)
    floor = panel_kept_share()
    print("### 8. Python memory of an agent trace (tracemalloc, after `gc.collect()`)\n")
    print(
        "| tool calls | steps | held after the turn | per step | target <= 30 KB | still held after "
        "`chat.clear()` | share of the turn's | target <= 10% |"
    )
    print("|---:|---:|---:|---:|:---:|---:|---:|:---:|")
    print(
        f"| {r.calls} | {r.steps} | {r.turn_bytes / 2**20:.1f} MB | {r.per_step_kb:.0f} KB "
        f"| {verdict(r.per_step_kb <= 30)} | {r.cleared_bytes / 2**20:.1f} MB | {r.kept_share:.0%} "
        f"| {verdict(r.kept_share <= 0.1)} |\n"
    )
    print(
        f"The floor, in the same run: a plain `ChatInterface` holding 5 messages of Panel's own "
        f"(a `Card` and a `Markdown` pane each, no handler) still holds {floor:.0%} of their memory "
        "after `chat.clear()`: in a document made with `server_doc` (outside a served session), "
        "Panel keeps a feed's removed messages alive, and a reply's steps are inside its message. "
        "The handler itself forgets the cleared turns' runs.\n"
    )
