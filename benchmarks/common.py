"""Shared pieces: sample answers, a served document, a scripted agent, the naive handler."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import panel as pn
from bokeh.document import Document
from bokeh.document.events import DocumentPatchedEvent
from bokeh.protocol import Protocol
from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import tool
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


#: Page helpers for Chromium (add with ``page.add_init_script``): every element and all text,
#: through shadow roots, as Panel's components keep most of the page in them.
DEEP_JS = """
window.deepElements = (root) => {
  const found = [];
  for (const el of root.querySelectorAll("*")) {
    found.push(el);
    // Not push(...inner): a spread of a huge page's elements overflows the stack.
    if (el.shadowRoot) for (const inner of window.deepElements(el.shadowRoot)) found.push(inner);
  }
  return found;
};
window.deepText = (root) => {
  let text = root.textContent || "";
  for (const el of root.querySelectorAll("*")) if (el.shadowRoot) text += window.deepText(el.shadowRoot);
  return text;
};
"""


def live_layout() -> tuple[pn.Column, ServedDocument]:
    """A Column rendered into a Bokeh document as its root, as ``panel serve`` does."""
    layout = pn.Column(sizing_mode="stretch_width")
    return layout, ServedDocument(layout)


def live_chat() -> tuple[pn.chat.ChatInterface, ServedDocument]:
    """A ChatInterface rendered into a Bokeh document as its root, as ``panel serve`` does."""
    chat = pn.chat.ChatInterface()
    return chat, ServedDocument(chat)


class ScriptedAgent:
    """A real ``create_agent`` agent on `ScriptedChatModel`: ``calls`` sequential calls to a
    trivial tool (each model reply says one sentence and calls it once), then a final answer.

    The tool notes the ``time.perf_counter()`` of each call in ``stamps``. After ``budget``
    seconds from the first call the model answers instead of calling the tool again.
    """

    def __init__(self, calls: int, budget: float | None = None, token_delay: float = 0.0):
        self.calls = calls
        self.budget = budget
        self.stamps: list[float] = []

        @tool
        def lookup(query: str) -> str:
            """Look something up."""
            self.stamps.append(time.perf_counter())
            return f"result for {query}"

        model = ScriptedChatModel(responses=self._reply, token_delay=token_delay)
        self.graph = create_agent(model, [lookup])

    def _reply(self, messages: list[BaseMessage]) -> AIMessage | str:
        done = len(self.stamps)
        late = self.budget is not None and done and time.perf_counter() - self.stamps[0] > self.budget
        if done >= self.calls or late:
            return f"Done: looked up {done} items."
        call = {
            "name": "lookup",
            "args": {"query": f"item {done}"},
            "id": f"call_{done}",
            "type": "tool_call",
        }
        return AIMessage(content=f"Let me look up item {done}.", tool_calls=[call])

    def invoke(self, callbacks: list) -> Any:
        config = {"callbacks": callbacks, "recursion_limit": 2 * self.calls + 10}
        return self.graph.invoke({"messages": [("user", "Look up every item.")]}, config)

    async def ainvoke(self, callbacks: list) -> Any:
        config = {"callbacks": callbacks, "recursion_limit": 2 * self.calls + 10}
        return await self.graph.ainvoke({"messages": [("user", "Look up every item.")]}, config)

    @property
    def gaps(self) -> list[float]:
        """Seconds between consecutive tool calls."""
        return [b - a for a, b in zip(self.stamps, self.stamps[1:], strict=False)]


def flatness(gaps: list[float]) -> float:
    """Mean gap of the last tenth of the calls / mean gap of the first tenth."""
    tenth = max(len(gaps) // 10, 1)
    return statistics.fmean(gaps[-tenth:]) / statistics.fmean(gaps[:tenth])


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


class ServedDocument:
    """A new Bokeh document with ``view`` as its root, whose changes go out as a served session
    sends them: each document event as a PATCH-DOC message, counted here. Sending matters for
    memory too: Bokeh keeps every model added to a document until a message has carried it."""

    def __init__(self, view: pn.viewable.Viewable):
        self.doc = Document()
        view.server_doc(self.doc)
        self.bytes = 0
        self.messages = 0
        self._protocol = Protocol()
        self.doc.on_change(self._patched)

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


def stream(
    text: str, callbacks: list, budget: float | None = None, token_delay: float = 0.0
) -> tuple[int, float, bool]:
    """Stream ``text`` through LangChain, ``token_delay`` seconds apart; return (tokens streamed,
    seconds, stopped by the budget)."""
    model = ScriptedChatModel(responses=[text], token_delay=token_delay)
    seen = 0
    with quiet_gc():
        start = time.perf_counter()
        for chunk in model.stream("question", config={"callbacks": callbacks}):
            seen += bool(chunk.content)
            if budget is not None and time.perf_counter() - start > budget:
                return seen, time.perf_counter() - start, True
        return seen, time.perf_counter() - start, False


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` of ``values`` lie."""
    ordered = sorted(values)
    return ordered[max(int(len(ordered) * share) - 1, 0)]


def timed(work: Callable[[], Any]) -> float:
    """Wall-clock seconds of ``work()``."""
    with quiet_gc():
        start = time.perf_counter()
        work()
        return time.perf_counter() - start
