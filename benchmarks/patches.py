"""Benchmark 2: bytes of document patches sent to the browser per character of the answer."""

from __future__ import annotations

from dataclasses import dataclass

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.testing import split_tokens

from .common import NaiveHandler, PatchMeter, live_layout, sample_text, stream


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


def measure(tokens: int, naive: bool, budget: float) -> tuple[int, int, int]:
    """Stream an answer into a live document; return (chars streamed, patch bytes, patch messages)."""
    layout, doc = live_layout()
    meter = PatchMeter(doc)
    handler = NaiveHandler(layout) if naive else ChatStepCallbackHandler(layout)
    text = sample_text(tokens)
    seen, _, _ = stream(text, [handler], budget if naive else None)
    return len("".join(split_tokens(text)[:seen])), meter.bytes, meter.messages


def run(tokens: int, naive_budget: float) -> PatchResult:
    chars, ours, messages = measure(tokens, naive=False, budget=0)
    naive_chars, naive, _ = measure(tokens, naive=True, budget=naive_budget)
    return PatchResult(tokens, chars, ours, messages, naive_chars, naive)
