"""Graphs served by the LangGraph server the remote tests start, and run in-process to compare.

Offline agents on the scripted model: each reply is a function of the
conversation, so any number of runs (on the server, in-process) give the same
steps.
"""

from __future__ import annotations

import asyncio

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph

from panel_langchain_steps import get_stream_writer
from panel_langchain_steps.testing import ScriptedChatModel

#: Seconds the `wait` tool waits: long enough to be stopped in the middle.
WAIT_SECONDS = 30.0


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
async def add_slowly(a: int, b: int) -> int:
    """Add two integers, taking half a second."""
    await asyncio.sleep(0.5)
    return a + b


@tool
async def wait(seconds: float) -> str:
    """Wait for a while."""
    await asyncio.sleep(seconds)
    return "waited"


def _adds(messages):
    if messages[-1].type == "tool":
        return f"The **sum** is {messages[-1].content}."
    return AIMessage(
        content="Let me add.", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "call_add"}]
    )


def _adds_slowly(messages):
    if messages[-1].type == "tool":
        return f"The **sum** is {messages[-1].content}."
    return AIMessage(
        content="Let me add.", tool_calls=[{"name": "add_slowly", "args": {"a": 1, "b": 2}, "id": "call_add"}]
    )


def _waits(messages):
    if messages[-1].type == "tool":
        return "Done waiting."
    return AIMessage(
        content="", tool_calls=[{"name": "wait", "args": {"seconds": WAIT_SECONDS}, "id": "call_w"}]
    )


def _fails(messages):
    raise ValueError("the model is down")


math_agent = create_agent(ScriptedChatModel(responses=_adds), [add], name="math_agent")


def make_approval_agent(checkpointer=None):
    """An agent that asks before each `add` (the server gives it its checkpointer; in-process, pass one)."""
    return create_agent(
        ScriptedChatModel(responses=_adds),
        [add],
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"add": True})],
        checkpointer=checkpointer,
        name="approval_agent",
    )


approval_agent = make_approval_agent()

slow_math_agent = create_agent(
    ScriptedChatModel(responses=_adds_slowly), [add_slowly], name="slow_math_agent"
)

waiting_agent = create_agent(ScriptedChatModel(responses=_waits), [wait], name="waiting_agent")

failing_agent = create_agent(ScriptedChatModel(responses=_fails), [add], name="failing_agent")


def plan(state):
    """A node that reports its progress as it goes."""
    write = get_stream_writer()
    write({"step": "reading the question"})
    write({"step": "asking the math agent"})
    return {}


# An agent inside a graph (a subgraph, streamed with stream_subgraphs=True), after a node with progress.
team = (
    StateGraph(MessagesState)
    .add_node("plan", plan)
    .add_node("math", math_agent)
    .add_edge(START, "plan")
    .add_edge("plan", "math")
    .compile(name="team")
)

GRAPHS = {
    "math_agent": math_agent,
    "approval_agent": approval_agent,
    "slow_math_agent": slow_math_agent,
    "waiting_agent": waiting_agent,
    "failing_agent": failing_agent,
    "team": team,
}
