"""Python memory of a long agent trace (issue 10): per finished step, and after ``chat.clear()``."""

from __future__ import annotations

import argparse
import gc
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import panel as pn

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.testing import iter_steps, step_tree

from .common import ScriptedAgent, ServedDocument, live_chat, verdict


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
    """Traced bytes held now, after full collections until one finds nothing more (finalizers and
    weakref callbacks run by one collection can let go of more for the next)."""
    for _ in range(10):
        if not gc.collect():
            break
    return tracemalloc.get_traced_memory()[0]


@contextmanager
def tracing() -> Iterator[None]:
    """Allocations are traced inside (read them with `held`)."""
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def run(calls: int) -> MemoryResult:
    """One agent turn of ``calls`` tool calls into a ChatInterface in a live document (steps
    collapsed when done), measured with tracemalloc; then the chat is cleared."""
    chat, _ = live_chat()
    handler = ChatStepCallbackHandler(chat)
    ScriptedAgent(3).invoke([handler])  # warm up: first-use caches are not the turn's
    handler.flush()
    chat.clear()
    with tracing():
        before = held()
        ScriptedAgent(calls).invoke([handler])
        handler.flush()
        after = held()
        steps = sum(1 for _ in iter_steps(step_tree(chat.objects[-1])))
        chat.clear()
        cleared = held()
    return MemoryResult(calls, steps, after - before, cleared - before)


def panel_kept_share(messages: int = 5) -> float:
    """Panel's own share: what Panel itself keeps after ``chat.clear()`` of a live chat holding
    ``messages`` plain messages (a card and a Markdown pane each), no handler involved."""
    chat, _ = live_chat()
    chat.send("warm up", respond=False)
    chat.clear()
    with tracing():
        before = held()
        for number in range(messages):
            card = pn.Card(pn.pane.Markdown(f"Step {number}"), title=f"Step {number}")
            chat.send(pn.Column(card, pn.pane.Markdown(f"Answer {number}")), respond=False)
        after = held()
        chat.clear()
        cleared = held()
    return (cleared - before) / (after - before)


def card_floor_kb(cards: int = 50) -> float:
    """The floor of a step on the page: KB held per collapsed Panel ``Card`` with a one-line
    title and no body, added to a column in a live document (no handler involved)."""
    column = pn.Column(pn.Card(title="warm up", collapsed=True))
    ServedDocument(column)
    with tracing():
        before = held()
        column.extend(
            [pn.Card(title=f"Tool lookup {n} · done in 3 ms", collapsed=True) for n in range(cards)]
        )
        after = held()
    return (after - before) / cards / 1024


def report(args: argparse.Namespace) -> None:
    small, large = 4, 9  # both within the page's window of steps
    window, long = (10, 25) if args.quick else (25, 100)
    few, more, shown, beyond = run(small), run(large), run(window), run(long)
    on_page = (more.turn_bytes - few.turn_bytes) / (more.steps - few.steps) / 1024
    # Beyond the window the page holds the same steps: what grows is the record, 2 steps a call.
    off_page = (beyond.turn_bytes - shown.turn_bytes) / (2 * (beyond.calls - shown.calls)) / 1024
    card = card_floor_kb()
    floor = panel_kept_share()
    print("### 8. Python memory of an agent trace (tracemalloc, after `gc.collect()` until it finds none)\n")
    print("| what | KB per step | target <= 30 KB, and under Panel's `Card` |")
    print("|---|---:|:---:|")
    print(
        f"| a step on the page, finished and collapsed: a line (a {large}-call turn over a {small}-call "
        f"one: {more.steps - few.steps} more steps) | {on_page:.1f} | {verdict(on_page <= min(30, card))} |"
    )
    print(f"| Panel's own collapsed `Card` with a one-line title, no body | {card:.0f} | |")
    print(
        f"| a step beyond the page's window of {ChatStepCallbackHandler.param.max_steps.default} "
        f"(a {long}-call turn over a {window}-call one) | {off_page:.1f} | {verdict(off_page <= 30)} |"
    )
    print(
        f"| a {window}-call turn ({shown.turn_bytes / 2**20:.1f} MB, the reply included) over its "
        f"{shown.steps} steps on the page | {shown.per_step_kb:.0f} | {verdict(shown.per_step_kb <= 30)} |\n"
    )
    print(
        "| tool calls | held after the turn | still held after `chat.clear()` | share of the turn's "
        "| target <= 10% |"
    )
    print("|---:|---:|---:|---:|:---:|")
    for r in (shown, beyond):
        print(
            f"| {r.calls} | {r.turn_bytes / 2**20:.1f} MB | {r.cleared_bytes / 2**20:.1f} MB "
            f"| {r.kept_share:.0%} | {verdict(r.kept_share <= 0.1)} |"
        )
    print(
        f"\nThe floors, in the same run: a collapsed Panel `Card` alone holds {card:.0f} KB, so no step "
        "drawn as a Panel component of its own can hold 30 KB or less; a finished, collapsed step is a line "
        "of one `StepHeaders` shared by the window's lines. A plain `ChatInterface` holding 5 messages of "
        f"Panel's own (a `Card` and a `Markdown` pane each, no handler) still holds {floor:.0%} of their "
        "memory after `chat.clear()`. The document sends its changes as a served session does (each as "
        "a PATCH-DOC message): Bokeh keeps every model added to a document until a message carries it.\n"
    )
