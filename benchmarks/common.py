"""Shared pieces: sample answers, a live document, the naive handler, a patch meter."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import panel as pn
from bokeh.document import Document
from bokeh.document.events import DocumentPatchedEvent
from bokeh.protocol import Protocol
from langchain_core.callbacks import BaseCallbackHandler
from panel.chat import ChatStep

from panel_langchain_steps.testing import ScriptedChatModel, split_tokens

_PARAGRAPH = (
    "The next step reads the tool's result and decides what to do with it. "
    "It weighs the **options** in plain words, citing `a_function` here and there, "
    "and it goes on for a few sentences before it comes to a conclusion.\n\n"
)
#: A typical answer: mostly prose, with a list and a code block now and then.
_PARTS = [
    _PARAGRAPH,
    _PARAGRAPH,
    "1. first item of a numbered list\n2. second item with more words\n3. third item\n\n",
    _PARAGRAPH,
    "- a bullet\n- another bullet\n  continued on an indented line\n\n",
    _PARAGRAPH,
    _PARAGRAPH,
    "```python\ndef answer(x):\n    total = x * 2\n\n    return total + 1\n```\n\n",
    "> A quoted line that says something wise.\n\n",
]


def sample_text(tokens: int) -> str:
    """A Markdown answer of exactly ``tokens`` word-sized tokens (paragraphs, lists, code)."""
    part_tokens = len(split_tokens("".join(_PARTS)))
    text = "".join(_PARTS) * (tokens // part_tokens + 2)
    return "".join(split_tokens(text)[:tokens])


def live_layout() -> tuple[pn.Column, Document]:
    """A Column rendered into a Bokeh document as its root, as ``panel serve`` does."""
    doc = Document()
    layout = pn.Column(sizing_mode="stretch_width")
    layout.server_doc(doc)
    return layout, doc


class NaiveHandler(BaseCallbackHandler):
    """The obvious handler: one ChatStep per model run, ``step.stream(token)`` per token."""

    def __init__(self, layout: pn.Column):
        self.layout = layout
        self.steps: dict[Any, ChatStep] = {}

    def on_chat_model_start(self, serialized, messages, *, run_id, **kwargs):
        step = self.steps[run_id] = ChatStep(status="running", default_title="Model")
        self.layout.append(step)

    def on_llm_new_token(self, token, *, run_id, **kwargs):
        if isinstance(token, str) and token:
            self.steps[run_id].stream(token)

    def on_llm_end(self, response, *, run_id, **kwargs):
        self.steps[run_id].status = "success"


class PatchMeter:
    """Counts what a Bokeh server would send: each document event as a PATCH-DOC message."""

    def __init__(self, doc: Document):
        self.bytes = 0
        self.messages = 0
        self._protocol = Protocol()
        doc.on_change(self._patched)

    def _patched(self, event: Any) -> None:
        if not isinstance(event, DocumentPatchedEvent):
            return
        message = self._protocol.create("PATCH-DOC", [event])
        self.messages += 1
        self.bytes += len(message.header_json) + len(message.metadata_json) + len(message.content_json)
        self.bytes += sum(len(payload) for _, payload in message.buffers)


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Collect before a measurement so one run's garbage is not billed to the next."""
    gc.collect()
    yield


def stream(text: str, callbacks: list, budget: float | None = None) -> tuple[int, float, bool]:
    """Stream ``text`` through LangChain; return (tokens streamed, seconds, stopped by the budget)."""
    model = ScriptedChatModel(responses=[text])
    seen = 0
    with quiet_gc():
        start = time.perf_counter()
        for chunk in model.stream("question", config={"callbacks": callbacks}):
            seen += bool(chunk.content)
            if budget is not None and time.perf_counter() - start > budget:
                return seen, time.perf_counter() - start, True
        return seen, time.perf_counter() - start, False


def timed(work: Callable[[], Any]) -> float:
    """Wall-clock seconds of ``work()``."""
    with quiet_gc():
        start = time.perf_counter()
        work()
        return time.perf_counter() - start
