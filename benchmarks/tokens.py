"""Benchmark 1: cost per streamed token, without a handler, naive, and with this handler."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from panel.layout.base import ListLike

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.render import Step, markdown
from panel_langchain_steps.stream import StepText
from panel_langchain_steps.testing import split_tokens

from .common import NaiveHandler, live_layout, sample_text, stream, timed

#: The naive handler is quadratic: it stops streaming after this many seconds.
NAIVE_BUDGET = 10.0


@dataclass
class TokenResult:
    tokens: int
    bare_us: float
    naive_us: float
    naive_tokens: int | None  # how many tokens the naive handler got through, when its budget ran out
    handler_us: float
    render_us: float
    step_us: float

    @property
    def ratio(self) -> float:
        return self.handler_us / self.bare_us


def render_once(text: str) -> float:
    """Seconds to render ``text`` once as Markdown blocks in a live document: the floor for (c)."""
    layout, _ = live_layout()
    blocks = StepText(lambda source: layout.append(markdown(source)) or layout[-1])
    return timed(lambda: blocks.show(text))


def one_step() -> float:
    """Seconds to create, place and finish one step with no text in a live document: the
    part of (c) that does not depend on the number of tokens (best of 3)."""

    def create_place_finish(layout: ListLike) -> None:
        step = Step(status="running", default_title="Model")
        layout.append(step)
        step.param.update(status="success", success_title="Model · done in 0.1 s")

    layouts = [live_layout()[0] for _ in range(3)]
    return min(timed(functools.partial(create_place_finish, layout)) for layout in layouts)


def until_shown(text: str) -> float:
    """Seconds to stream ``text`` through this handler into a live document and show all of it."""
    handler = ChatStepCallbackHandler(live_layout()[0])
    _, seconds, _ = stream(text, [handler])
    # Timed by hand, not with `timed`: its collection before the clock starts would let the
    # view draw unmeasured.
    start = time.perf_counter()
    handler.flush()
    return seconds + time.perf_counter() - start


def run(sizes: list[int], repeats: int = 3, naive_budget: float = NAIVE_BUDGET) -> list[TokenResult]:
    """Best of ``repeats`` for the bare model and this handler; the naive handler once, within a budget."""
    warm = sample_text(500)  # every kind of block, code included
    stream(warm, [])
    stream(warm, [ChatStepCallbackHandler(live_layout()[0])])
    step = one_step()
    results = []
    for size in sizes:
        text = sample_text(size)
        tokens = len(split_tokens(text))
        bare = ours = float("inf")
        for _ in range(repeats):
            bare = min(bare, stream(text, [])[1])
            ours = min(ours, until_shown(text))
        layout, _ = live_layout()
        naive_tokens, naive, stopped = stream(text, [NaiveHandler(layout)], naive_budget)
        results.append(
            TokenResult(
                tokens=tokens,
                bare_us=bare / tokens * 1e6,
                naive_us=naive / naive_tokens * 1e6,
                naive_tokens=naive_tokens if stopped else None,
                handler_us=ours / tokens * 1e6,
                render_us=render_once(text) / tokens * 1e6,
                step_us=step / tokens * 1e6,
            )
        )
    return results
