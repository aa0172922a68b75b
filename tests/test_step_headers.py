"""Finished, collapsed steps are lines of one light component; opening a line makes it a step."""

from __future__ import annotations

import threading

from conftest import QUESTION, adding_agent, call, until
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from panel.chat import ChatInterface

from panel_langchain_steps import StepHeader, StepHeaders, steps_in
from panel_langchain_steps.render import Step
from panel_langchain_steps.testing import ScriptedChatModel, step_tree

RELEASE = threading.Event()


@tool
def wait_for_release() -> str:
    """Returns once the test lets it."""
    assert RELEASE.wait(30), "never released"
    return "released"


def names(layout) -> list[str]:
    return [step.title.split(" · ")[0] for step in steps_in(layout)]


def test_a_finished_turn_is_one_component_of_lines(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat)
    adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    (graph,) = steps_in(chat.objects[-1])
    assert isinstance(graph, Step) and not graph.collapsed  # a chain step stays a step, open
    (lines,) = graph.objects  # one component holds every finished, collapsed step
    assert isinstance(lines, StepHeaders)
    assert all(isinstance(step, StepHeader) and step.collapsed for step in steps_in(graph))
    assert names(graph) == ["Model scripted-model", "Tool add", "Model scripted-model"]
    assert [step.status for step in steps_in(graph)] == ["success"] * 3
    # What the browser gets: each line's key, status, kind and title as plain text.
    assert [header[1:3] for header in lines.headers] == [
        ["success", "llm"],
        ["success", "tool"],
        ["success", "llm"],
    ]
    assert lines.headers[1][3].startswith("Tool add · 1, 2 · done in")


async def test_a_running_step_is_a_step_and_becomes_a_line_when_it_ends(make_handler):
    RELEASE.clear()
    handler = make_handler()
    model = ScriptedChatModel(
        responses=[AIMessage(content="", tool_calls=[call("wait_for_release", {}, "c1")]), "Done."]
    )
    agent = create_agent(model, [wait_for_release])
    worker = threading.Thread(
        target=agent.invoke, args=(QUESTION,), kwargs={"config": {"callbacks": [handler]}}
    )
    worker.start()
    try:

        def tool_shown() -> bool:
            handler.flush()
            return any("Tool wait_for_release" in names(graph) for graph in steps_in(handler.layout))

        await until(tool_shown, "the running tool's step")
        (graph,) = handler.layout
        model_step, tool_step = steps_in(graph)
        assert isinstance(model_step, StepHeader) and model_step.status == "success"
        assert isinstance(tool_step, Step) and tool_step.status == "running" and not tool_step.collapsed
    finally:
        RELEASE.set()
        worker.join(30)
    handler.flush()
    assert all(isinstance(step, StepHeader) for step in steps_in(graph))
    assert names(graph) == ["Model scripted-model", "Tool wait_for_release", "Model scripted-model"]


def test_opening_a_line_makes_it_a_step_in_its_place(make_handler):
    handler = make_handler()
    adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    (graph,) = handler.layout
    first, middle, last = steps_in(graph)
    text = middle.serialize()
    middle.collapsed = False  # as a click on its line does
    handler.flush()
    before, opened, after = graph.objects
    assert isinstance(before, StepHeaders) and isinstance(after, StepHeaders)  # the lines around it
    assert [step.title for step in steps_in(graph)] == [first.title, middle.title, last.title]
    assert isinstance(opened, Step) and not opened.collapsed
    assert [pane.object for pane in opened.objects] == [
        '**Input**\n\n```json\n{\n  "a": 1,\n  "b": 2\n}\n```',
        "**Output**\n\n3",
    ]
    assert opened.serialize() == text  # the same step, however it is drawn
    opened.collapsed = True  # closed again: back to a line among the others
    handler.flush()
    (lines,) = graph.objects
    assert isinstance(lines, StepHeaders) and len(lines.steps) == 3
    assert step_tree(graph)[1]["text"] == middle.body_text


def test_a_click_on_a_line_opens_its_step(make_handler):
    handler = make_handler()
    adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    (graph,) = handler.layout
    (lines,) = graph.objects
    key = lines.headers[1][0]
    lines.opened = key  # what the browser sends when the line is clicked
    handler.flush()
    assert lines.opened == ""  # ready for the next click
    opened = steps_in(graph)[1]
    assert isinstance(opened, Step) and not opened.collapsed and opened.title.startswith("Tool add")
    lines.opened = "a line that left"  # a click that crossed a redraw changes nothing
    handler.flush()
    assert [type(step) for step in steps_in(graph)] == [StepHeader, Step, StepHeader]


def test_lines_serialize_as_the_steps_they_show(make_handler):
    handler = make_handler()
    adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    (graph,) = handler.layout
    (lines,) = graph.objects
    assert lines.serialize() == "\n\n".join(step.serialize() for step in steps_in(graph))
    assert "Tool add · 1, 2 · done in" in lines.serialize() and "Output:\n3" in lines.serialize()
