"""What the examples share: a chat page per browser session, and scripted-model helpers.

`ChatSession` is one browser session's page: a ``ChatInterface`` whose
callback runs one turn, a `ChatStepCallbackHandler` bound to it (with a
switch for its ``verbosity``), and a LangGraph ``thread_id`` of its own, so
a checkpointer keeps each session's history apart. Turns run as async
callbacks on the server's event loop: the steps update as events arrive, and
the stop button cancels the run.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import uuid4

import panel as pn
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig
from providers import chat_model, model_label

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.testing import ScriptedChatModel

#: Seconds between the scripted model's tokens: slow enough to watch them stream (the tests
#: set ``EXAMPLE_TOKEN_DELAY`` shorter).
TOKEN_DELAY = float(os.environ.get("EXAMPLE_TOKEN_DELAY", "0.03"))

Turn = Callable[[str, RunnableConfig], Awaitable[None]]


def example_model(responder: Callable[[list[BaseMessage]], AIMessage | str]) -> BaseChatModel:
    """The provider model the environment selects, else a scripted model answering with ``responder``."""
    return chat_model(ScriptedChatModel(responses=responder, token_delay=TOKEN_DELAY, model_name="scripted"))


def header(title: str, about: str, model: BaseChatModel | str) -> pn.pane.Markdown:
    """The page's heading: what the example shows, and on which model (or which remote agent)."""
    label = model if isinstance(model, str) else model_label(model)
    return pn.pane.Markdown(
        f"## {title}\n\n{about}\n\n*Model: {label}*",
        sizing_mode="stretch_width",
        margin=(0, 10),
    )


class ChatSession(pn.viewable.Viewer):
    """One browser session's chat page.

    ``turn(question, config)`` runs the chain or agent for one question; the
    config carries this session's handler and thread id. With ``resume``, a
    run paused for approval is resumed by ``resume(value, config)``.
    """

    def __init__(
        self,
        turn: Turn,
        *,
        title: str,
        about: str,
        model: BaseChatModel | str,
        resume: Callable[[Any, RunnableConfig], Awaitable[None]] | None = None,
        **handler_params: Any,
    ):
        super().__init__()
        self._turn = turn
        self.thread_id = uuid4().hex
        self.chat = pn.chat.ChatInterface(
            callback=self.respond,
            callback_user="Assistant",
            show_rerun=False,
            show_undo=False,
            sizing_mode="stretch_both",
            min_height=500,
        )
        if resume is not None:

            async def resume_here(value: Any) -> None:
                await resume(value, self.config)

            handler_params["resume"] = resume_here
        self.handler = ChatStepCallbackHandler(self.chat, **handler_params)
        # How much of each turn is shown: switchable at any time, also while a turn runs.
        verbosity = pn.widgets.RadioButtonGroup.from_param(
            self.handler.param.verbosity, description=None, margin=(0, 10)
        )
        self._page = pn.Column(header(title, about, model), verbosity, self.chat, sizing_mode="stretch_both")

    @property
    def config(self) -> RunnableConfig:
        """The run config of this session's turns: its handler and its thread."""
        return {"callbacks": [self.handler], "configurable": {"thread_id": self.thread_id}}

    async def respond(self, contents: str, user: str, instance: pn.chat.ChatInterface) -> None:
        """The ChatInterface callback: one turn, on the event loop (the stop button cancels it)."""
        await self._turn(contents, self.config)

    def __panel__(self) -> pn.Column:
        return self._page


async def stream_graph(graph: Runnable, inputs: Any, config: RunnableConfig) -> None:
    """Run a LangGraph graph to its end with its models streaming, so the handler shows their tokens."""
    async for _ in graph.astream(inputs, config, stream_mode="messages"):
        pass


def graph_turn(graph: Runnable) -> Turn:
    """A turn that sends the question to a LangGraph graph (such as an agent) and streams it to its end."""

    async def turn(text: str, config: RunnableConfig) -> None:
        await stream_graph(graph, {"messages": [("user", text)]}, config)

    return turn


def tool_call(tool: str, /, **args: Any) -> dict[str, Any]:
    """A tool call for a scripted model reply."""
    return {"name": tool, "args": args, "id": f"call_{uuid4().hex[:8]}", "type": "tool_call"}


def this_turn(messages: list[BaseMessage]) -> list[BaseMessage]:
    """The messages since the user's latest question, that question first."""
    starts = [index for index, message in enumerate(messages) if message.type == "human"]
    return messages[starts[-1] if starts else 0 :]


def question(messages: list[BaseMessage]) -> str:
    """The user's latest question."""
    first = this_turn(messages)[:1]
    return first[0].text if first and first[0].type == "human" else ""


def previous_answer(messages: list[BaseMessage]) -> str:
    """The assistant's answer before the user's latest question ("" on the first turn)."""
    earlier = messages[: len(messages) - len(this_turn(messages))]
    return next((m.text for m in reversed(earlier) if m.type == "ai" and not m.tool_calls), "")


def tool_results(messages: list[BaseMessage]) -> list[ToolMessage]:
    """The results of the model's latest tool calls, in order (none when the user spoke last)."""
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        results.insert(0, message)
    return results
