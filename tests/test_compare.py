"""Comparing two traces: steps aligned by path and name, added, removed and changed steps, the
change in time, tokens and cost, and the first point where two real agent runs diverge."""

from __future__ import annotations

import contextlib

import pytest
from conftest import QUESTION, add, adding_agent, call
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from panel_langchain_steps import ChatStepCallbackHandler, Trace
from panel_langchain_steps.compare import compare
from panel_langchain_steps.testing import ScriptedChatModel

PRICES = {"scripted-model": (1.0, 2.0)}


def recorded(agent, question=QUESTION) -> Trace:
    handler = ChatStepCallbackHandler()
    with contextlib.suppress(RuntimeError):  # a failing run is compared too
        agent.invoke(question, config={"callbacks": [handler]})
    return handler.trace


def test_the_same_agent_run_twice_has_no_changes():
    before, after = recorded(adding_agent()), recorded(adding_agent())
    result = compare(before, after, PRICES)
    assert len(result.steps) == len(list(before.runs)) == len(list(after.runs))
    assert [step.path for step in result.steps if step.kind in ("llm", "tool")] == [
        "LangGraph / model / scripted-model",
        "LangGraph / tools / add",
        "LangGraph / model #2 / scripted-model",
    ]
    assert {step.change for step in result.steps} == {"same"}
    assert result.diverged is None
    assert result.delta["total_tokens"] == 0 and result.delta["cost"] == 0
    root = result.steps[0]
    assert root.duration == pytest.approx(after.roots[0].duration - before.roots[0].duration)


def test_a_different_run_shows_what_was_added_changed_and_where_it_diverged():
    twice = ScriptedChatModel(
        responses=[
            AIMessage("Let me add.", tool_calls=[call("add", {"a": 2, "b": 2}, "c1")]),
            AIMessage("Once more.", tool_calls=[call("add", {"a": 2, "b": 2}, "c2")]),
            "The sum is 4.",
        ]
    )
    before, after = recorded(adding_agent()), recorded(create_agent(twice, [add]))
    result = compare(before, after, PRICES)
    changes = {step.path: (step.change, step.fields) for step in result.steps}
    assert changes["LangGraph / model / scripted-model"] == ("changed", ("outputs", "tool_calls"))
    assert changes["LangGraph / tools / add"] == ("changed", ("inputs", "outputs"))
    added = [step.path for step in result.changes("added")]
    assert len(added) == len(list(after.runs)) - len(list(before.runs))
    assert [path for path in added if path.endswith(("add", "scripted-model"))] == [
        "LangGraph / tools #2 / add",
        "LangGraph / model #3 / scripted-model",
    ]
    assert result.changes("removed") == []
    # The model asked for other arguments first: everything after follows from that.
    assert result.diverged.path == "LangGraph / model / scripted-model"
    model_calls = [run for run in after.runs if run.kind == "llm"]
    assert result.after["model_calls"] == len(model_calls) == 3 and result.before["model_calls"] == 2
    assert result.delta["total_tokens"] == result.after["total_tokens"] - result.before["total_tokens"] > 0
    assert result.delta["cost"] == pytest.approx(result.after["cost"] - result.before["cost"])
    assert changes["LangGraph / model #3 / scripted-model"] == ("added", ())


def test_a_failure_is_where_the_runs_diverge_and_removed_steps_are_listed():
    @tool("add")
    def broken_add(a: int, b: int) -> int:
        """Add two numbers (broken)."""
        raise RuntimeError("the adder is broken")

    model = ScriptedChatModel(
        responses=[
            AIMessage("Let me add.", tool_calls=[call("add", {"a": 1, "b": 2}, "c1")]),
            "The sum is 3.",
        ]
    )
    before, after = recorded(adding_agent()), recorded(create_agent(model, [broken_add]))
    result = compare(before, after)
    assert result.diverged.path == "LangGraph / tools / add"
    assert result.diverged.fields[0] == "status" and "error" in result.diverged.fields
    removed = [step.path for step in result.changes("removed")]
    assert "LangGraph / model #2" in removed and "LangGraph / model #2 / scripted-model" in removed
    assert result.delta["cost"] is None  # no prices given
