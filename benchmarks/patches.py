"""Benchmark 2: bytes of document patches sent to the browser per character of the answer."""

from __future__ import annotations

from dataclasses import dataclass

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.testing import split_tokens

from .common import NaiveHandler, live_layout, sample_text, stream


@dataclass
class PatchResult:
    tokens: int
    chars: int
    handler_bytes: int
    handler_messages: int
    naive_chars: int
    naive_bytes: int

    @property
    def handler_per_char(self) -> float:
        return self.handler_bytes / self.chars

    @property
    def naive_per_char(self) -> float:
        return self.naive_bytes / max(self.naive_chars, 1)


#: A fast provider's pace: every refresh carries a few tokens, as it does for users.
TOKEN_DELAY = 0.005


def measure(tokens: int, naive: bool, budget: float) -> tuple[int, int, int]:
    """Stream an answer into a live document at a fast provider's pace; return (chars streamed,
    patch bytes, patch messages)."""
    layout, served = live_layout()
    handler = NaiveHandler(layout) if naive else ChatStepCallbackHandler(layout)
    text = sample_text(tokens)
    seen, _, _ = stream(text, [handler], budget if naive else None, token_delay=TOKEN_DELAY)
    if not naive:
        handler.flush()  # what is still to be drawn
    return len("".join(split_tokens(text)[:seen])), served.bytes, served.messages


def run(tokens: int, naive_budget: float) -> PatchResult:
    chars, ours, messages = measure(tokens, naive=False, budget=0)
    naive_chars, naive, _ = measure(tokens, naive=True, budget=naive_budget)
    return PatchResult(tokens, chars, ours, messages, naive_chars, naive)
