"""Failures, cancellations and pauses: every step ends, and the caller gets its exception."""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest import QUESTION, call, until
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import interrupt

from panel_langchain_steps.testing import ScriptedChatModel, iter_steps, step_tree

FAILURE = ValueError("the <b>database</b> is down")


@tool
def lookup(key: str) -> str:
    """Look something up."""
    raise FAILURE


@tool
def slow(seconds: float) -> str:
    """Wait a while."""
    time.sleep(seconds)
    return "waited"


@tool
async def aslow(seconds: float) -> str:
    """Wait a while, asynchronously."""
    await asyncio.sleep(seconds)
    return "waited"


@tool
def approve(action: str) -> str:
    """Ask a human first."""
    answer = interrupt({"action": action})
    return f"human said {answer}"


def agent_calling(tool_, args, checkpointer=None):
    model = ScriptedChatModel(
        responses=[AIMessage(content="", tool_calls=[call(tool_.name, args, "c1")]), "All done."]
    )
    return create_agent(model, [tool_], checkpointer=checkpointer)


def steps_of(handler):
    handler.flush()
    return {step["title"].split(" · ")[0]: step for step in iter_steps(step_tree(handler.layout))}


@pytest.mark.parametrize("mode", ["raise", "summary", "verbose", "ignore"])
def test_error_modes(make_handler, mode):
    handler = make_handler(context_exception=mode)
    with pytest.raises(ValueError) as raised:
        agent_calling(lookup, {"key": "x"}).invoke(QUESTION, config={"callbacks": [handler]})
    assert raised.value is FAILURE  # the caller gets the run's own exception, unchanged

    steps = steps_of(handler)
    for name in ("LangGraph", "Tool lookup"):
        assert steps[name]["status"] == "failed"
        assert "failed: ValueError after" in steps[name]["title"]
    assert "tools" not in steps  # the node that failed with its tool is shown as the tool
    assert steps["Model scripted-model"]["status"] == "success"
    text = steps["Tool lookup"]["text"]
    if mode in ("raise", "summary"):
        assert "**ValueError**: the \\<b\\>database\\</b\\> is down" in text
        assert "Traceback" not in text
    elif mode == "verbose":
        assert "Traceback (most recent call last)" in text and "raise FAILURE" in text
    else:
        assert "ValueError" not in text
    # The error is shown once, where it happened, not again by every ancestor.
    assert steps["LangGraph"]["text"] == ""


def test_handled_tool_error_fails_only_the_tool(make_handler):
    handler = make_handler()
    from langchain_core.tools import ToolException

    @tool
    def flaky(key: str) -> str:
        """Sometimes fails."""
        raise ToolException("flaky failed")

    flaky.handle_tool_error = True
    agent_calling(flaky, {"key": "x"}).invoke(QUESTION, config={"callbacks": [handler]})
    steps = steps_of(handler)
    assert steps["Tool flaky"]["status"] == "success"  # LangChain turned it into an output
    assert "flaky failed" in steps["Tool flaky"]["text"]
    assert steps["LangGraph"]["status"] == "success"


async def test_cancelled_run_is_stopped(make_handler):
    handler = make_handler()
    task = asyncio.create_task(
        agent_calling(aslow, {"seconds": 30}).ainvoke(QUESTION, config={"callbacks": [handler]})
    )
    await until(lambda: "Tool aslow" in steps_of(handler), "the slow tool's step")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    steps = steps_of(handler)
    for name in ("LangGraph", "Tool aslow"):
        assert steps[name]["status"] == "failed"
        assert "stopped after" in steps[name]["title"]
        assert "CancelledError" not in steps[name]["text"]
    assert handler.open_runs == 0


def test_keyboard_interrupt_is_stopped(make_handler):
    @tool
    def interrupted(x: int) -> int:
        """Gets interrupted."""
        raise KeyboardInterrupt

    handler = make_handler()
    with pytest.raises(KeyboardInterrupt):
        agent_calling(interrupted, {"x": 1}).invoke(QUESTION, config={"callbacks": [handler]})
    steps = steps_of(handler)
    assert steps["Tool interrupted"]["status"] == "failed"
    assert "stopped" in steps["Tool interrupted"]["title"]
    assert all(step["status"] in ("success", "failed") for step in steps.values())


def test_consumer_that_stops_iterating(make_handler):
    handler = make_handler()
    model = ScriptedChatModel(responses=["one two three four five six seven eight"])
    stream = model.stream("hi", config={"callbacks": [handler]})
    next(stream)
    stream.close()  # GeneratorExit inside the run
    handler.flush()
    (step,) = step_tree(handler.layout)
    assert step["status"] == "failed" and "stopped" in step["title"]
    assert handler.open_runs == 0


def test_interrupt_is_a_pause_not_a_failure(make_handler):
    handler = make_handler()
    agent = agent_calling(approve, {"action": "delete"}, checkpointer=InMemorySaver())
    result = agent.invoke(QUESTION, config={"callbacks": [handler], "configurable": {"thread_id": "t"}})
    assert "__interrupt__" in result
    steps = steps_of(handler)
    assert all(step["status"] == "success" for step in steps.values())
    assert steps["Tool approve"]["title"].endswith("paused, waiting for input")
    assert "GraphInterrupt" not in steps["Tool approve"]["text"]


def test_failure_in_hidden_glue_still_shows(make_handler):
    from langchain_core.output_parsers import JsonOutputParser

    handler = make_handler()
    chain = ScriptedChatModel(responses=["not json"]) | JsonOutputParser()
    with pytest.raises(Exception, match="Invalid json output"):
        chain.invoke("hi", config={"callbacks": [handler]})
    steps = steps_of(handler)
    assert steps["Model scripted-model"]["status"] == "success"
    # The parser and its sequence are glue, but the failure gets a step that says what failed.
    failed = [step for step in steps.values() if step["status"] == "failed"]
    assert len(failed) == 1 and "OutputParserException" in failed[0]["title"]
    assert "Invalid json output" in failed[0]["text"]


def test_hand_off_is_not_a_failure(make_handler):
    from langgraph.errors import ParentCommand
    from langgraph.types import Command

    @tool
    def transfer(to: str) -> str:
        """Hand the conversation to another agent."""
        raise ParentCommand(Command(graph=Command.PARENT, goto=to))

    handler = make_handler()
    with pytest.raises(ParentCommand):
        transfer.invoke({"to": "billing"}, config={"callbacks": [handler]})
    step = steps_of(handler)["Tool transfer"]
    assert step["status"] == "success" and step["title"].endswith("handed off")
