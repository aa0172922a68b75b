"""Verbosity: from the answer alone to every run, switchable while the chat runs."""

from __future__ import annotations

import asyncio
import threading

import pytest
from conftest import QUESTION, WAIT_SECONDS, adding_agent, call, until
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from panel.chat import ChatInterface
from panel.widgets import Button

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.testing import ScriptedChatModel, answer_text, iter_steps, outline, step_tree

#: What each level shows of the adding agent's turn.
LEVELS = {
    "answer": [],
    "tools": ["Tool add"],
    "steps": ["LangGraph", "  Model scripted-model", "  Tool add", "  Model scripted-model"],
    "all": [
        "LangGraph",
        "  model",
        "    Model scripted-model",
        "  tools",
        "    Tool add",
        "  model",
        "    Model scripted-model",
    ],
}


def outline_of(message) -> list[str]:
    """The reply's steps as an outline, without the routing functions that older LangChain
    agents run as nodes of their own (shown only with ``"all"``)."""
    return [line for line in outline(step_tree(message)) if "_to_" not in line]


def steps_card(message):
    return message.object.objects[0]


@pytest.mark.parametrize("level", LEVELS)
def test_each_level_shows_its_steps_and_always_the_answer(make_handler, level):
    chat = ChatInterface()
    handler = make_handler(chat, verbosity=level)
    adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    (reply,) = chat.objects
    assert outline_of(reply) == LEVELS[level]
    assert answer_text(reply) == "The sum is 3."
    assert steps_card(reply).visible == bool(LEVELS[level])


def test_an_unknown_level_names_the_levels():
    with pytest.raises(ValueError) as raised:
        ChatStepCallbackHandler(verbosity="loud")
    for word in ("verbosity", "answer", "tools", "steps", "all"):
        assert word in str(raised.value)


def test_exclusions_hold_at_every_level(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat, verbosity="all", exclude_names=["tools"])
    adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    shown = outline_of(chat.objects[0])
    assert "  tools" not in shown and "  Tool add" in shown


def test_a_failure_shows_even_with_the_answer_alone(make_handler):
    def fail(_):
        raise ValueError("the disk is full")

    handler = make_handler(verbosity="answer")
    with pytest.raises(ValueError):
        (RunnableLambda(lambda x: x) | RunnableLambda(fail)).invoke(1, config={"callbacks": [handler]})
    handler.flush()
    (step,) = step_tree(handler.layout)
    assert step["status"] == "failed" and "the disk is full" in step["text"]


# -- switching while the chat runs -------------------------------------------------------

SEARCH_DONE = threading.Event()


@tool
def slow_search(query: str) -> str:
    """Search, until the test lets it finish."""
    SEARCH_DONE.wait(WAIT_SECONDS)
    return "found it"


def searching_agent():
    model = ScriptedChatModel(
        responses=[
            AIMessage(content="Searching.", tool_calls=[call("slow_search", {"query": "x"}, "s1")]),
            "Found it.",
        ]
    )
    return create_agent(model, [slow_search])


async def test_switching_redraws_every_turn_finished_and_running(make_handler):
    SEARCH_DONE.clear()
    chat = ChatInterface()
    handler = make_handler(chat)
    adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    running = asyncio.create_task(
        asyncio.to_thread(searching_agent().invoke, QUESTION, {"callbacks": [handler]})
    )

    def shown():
        handler.flush()
        return [outline_of(reply) for reply in chat.objects]

    await until(lambda: len(shown()) == 2 and "  Tool slow_search" in shown()[1], "the search runs")

    handler.verbosity = "tools"
    assert shown() == [["Tool add"], ["Tool slow_search"]]
    searching = step_tree(chat.objects[1])[0]
    assert searching["status"] == "running"

    handler.verbosity = "answer"
    assert shown() == [[], []]
    assert not steps_card(chat.objects[0]).visible
    assert answer_text(chat.objects[0]) == "The sum is 3."
    assert steps_card(chat.objects[1]).title == "Steps · running…"  # still says it runs

    handler.verbosity = "all"
    SEARCH_DONE.set()
    await running
    handler.flush()
    assert shown()[0] == LEVELS["all"]
    assert "    Tool slow_search" in shown()[1] and "  tools" in shown()[1]
    assert answer_text(chat.objects[1]) == "Found it."

    handler.verbosity = "steps"
    assert shown()[0] == LEVELS["steps"]
    assert all(step["status"] == "success" for reply in chat.objects for step in iter_steps(step_tree(reply)))
    assert steps_card(chat.objects[1]).title.startswith("Steps · 4 steps · done in ")


@tool
def delete_file(path: str) -> str:
    """Delete a file."""
    return f"deleted {path}"


@pytest.mark.parametrize("level", ["answer", "tools"])
def test_a_decision_to_make_shows_at_every_level_and_outlives_a_switch(make_handler, level):
    model = ScriptedChatModel(
        responses=lambda messages: (
            AIMessage(content="Deleting.", tool_calls=[call("delete_file", {"path": "/tmp/x"}, "d1")])
            if messages[-1].type == "human"
            else f"Result: {messages[-1].content}"
        )
    )
    agent = create_agent(
        model,
        [delete_file],
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"delete_file": True})],
        checkpointer=InMemorySaver(),
    )
    chat = ChatInterface()
    config = {"configurable": {"thread_id": "t1"}}
    handler = make_handler(
        chat, verbosity=level, resume=lambda value: agent.invoke(Command(resume=value), config)
    )
    config["callbacks"] = [handler]
    agent.invoke(QUESTION, config)
    handler.flush()
    (reply,) = chat.objects
    (approve,) = [b for b in reply.select(Button) if b.label == "Approve"]

    handler.verbosity = "steps"  # the prompt is kept, not made again
    handler.flush()
    assert [b for b in reply.select(Button) if b.label == "Approve"] == [approve]
    approve.clicks += 1
    handler.flush()
    assert answer_text(reply) == "Result: deleted /tmp/x"
    assert len(chat.objects) == 1
