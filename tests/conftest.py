"""Shared fixtures: real Panel components attached to a real Bokeh document,
real LangChain tools and a real LangGraph agent on the scripted model."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import pytest
from bokeh.document import Document
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from panel.io.state import state

from panel_langchain_steps import ChatStepCallbackHandler, steps_in
from panel_langchain_steps.testing import ScriptedChatModel

# The examples' scripted model streams a token every 3 ms in tests (30 ms in demos), here and in
# the servers the tests start.
os.environ.setdefault("EXAMPLE_TOKEN_DELAY", "0.003")


def pytest_collection_modifyitems(items):
    """Browser tests last: Playwright's sync API keeps an event loop running in the main thread."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(autouse=True)
def _reset_panel_state():
    yield
    state.reset()


@pytest.fixture
def document():
    return Document()


@pytest.fixture
def make_handler(document):
    """A handler whose layout is attached to a live Bokeh document."""

    def make(target=None, *args, **params):
        handler = ChatStepCallbackHandler(target, *args, **params)
        view = handler.layout
        view.get_root(document)
        return handler

    return make


#: The deadline of every wait on a condition: generous, for a loaded machine.
WAIT_SECONDS = 60


async def until(
    condition: Callable[[], object], what: str = "the condition", timeout: float = WAIT_SECONDS
) -> None:
    """Wait (without blocking the event loop) until ``condition()`` holds; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.01)


def opened(handler, layout):
    """The steps in ``layout`` after the user opened each one (their bodies are built on opening)."""
    handler.flush()
    for step in steps_in(layout):
        step.collapsed = False  # a line of finished steps becomes a step, open
    handler.flush()
    return steps_in(layout)


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool
def shout(text: str) -> str:
    """Say it louder."""
    return text.upper() + "!"


def call(name: str, args: dict, id: str) -> dict:
    return {"name": name, "args": args, "id": id, "type": "tool_call"}


def adding_agent(final: str = "The sum is 3.", **model_params):
    """A real agent that calls `add` once, then answers."""
    model = ScriptedChatModel(
        responses=[
            AIMessage(content="Let me add.", tool_calls=[call("add", {"a": 1, "b": 2}, "c1")]),
            final,
        ],
        **model_params,
    )
    return create_agent(model, [add])


QUESTION = {"messages": [("user", "What is 1 + 2?")]}
