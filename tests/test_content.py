"""What a step shows: inputs, outputs, model text, reasoning, tool calls, usage, documents, titles."""

from __future__ import annotations

import html
import logging

import pytest
from conftest import QUESTION, adding_agent, opened, shout
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.messages import AIMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import tool
from panel.pane import Markdown

from panel_langchain_steps import StepHeader, StepHeaders, steps_in
from panel_langchain_steps.render import Step
from panel_langchain_steps.testing import ScriptedChatModel, iter_steps, step_tree


class Library(BaseRetriever):
    """A real retriever over a few documents."""

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun):
        return [
            Document(page_content="Panel is a dashboarding library.", metadata={"source": "panel.md"}),
            Document(page_content="LangChain composes runnables.", metadata={"source": "langchain.md"}),
        ]


def only_step(handler):
    handler.flush()
    (step,) = step_tree(handler.layout)
    return step


def test_tool_with_text_input(make_handler):
    handler = make_handler()
    assert shout.invoke("hello", config={"callbacks": [handler]}) == "HELLO!"
    step = only_step(handler)
    assert step["title"].startswith("Tool shout · hello · done in")
    assert step["text"] == "**Input**\n\nhello\n**Output**\n\nHELLO\\!"


def test_tool_with_structured_input(make_handler):
    handler = make_handler()
    shout.invoke({"text": "hi"}, config={"callbacks": [handler]})
    assert '```json\n{\n  "text": "hi"\n}\n```' in only_step(handler)["text"]


def test_retriever_documents(make_handler):
    handler = make_handler()
    Library().invoke("what is panel?", config={"callbacks": [handler]})
    step = only_step(handler)
    assert step["title"].startswith("Retriever Library · done")
    assert "**Query**\n\nwhat is panel?" in step["text"]
    assert "**1. panel\\.md**\n\nPanel is a dashboarding library\\." in step["text"]
    assert "**2. langchain\\.md**" in step["text"]


def test_streamed_text_is_shown_once(make_handler):
    handler = make_handler()
    model = ScriptedChatModel(responses=["Hello *there*, friend."])
    assert "".join(chunk.content for chunk in model.stream("hi", config={"callbacks": [handler]}))
    step = only_step(handler)
    assert step["text"].count("Hello *there*, friend.") == 1


def test_invoked_text_comes_from_the_end(make_handler):
    handler = make_handler()
    ScriptedChatModel(responses=["Hello there."]).invoke("hi", config={"callbacks": [handler]})
    step = only_step(handler)
    assert step["text"].startswith("Hello there.")
    assert "*Tokens: 10 in · 2 out · scripted\\-model*" in step["text"]


def test_reasoning_is_set_apart(make_handler):
    content = [
        {"type": "reasoning", "reasoning": "First, think."},
        {"type": "text", "text": "Then answer."},
    ]
    for run in ("stream", "invoke"):
        handler = make_handler()
        model = ScriptedChatModel(responses=[AIMessage(content=content)])
        if run == "stream":
            list(model.stream("hi", config={"callbacks": [handler]}))
        else:
            model.invoke("hi", config={"callbacks": [handler]})
        (step,) = opened(handler, handler.layout)
        panes = [pane for pane in step.objects if isinstance(pane, Markdown)]
        assert "step-reasoning" in panes[0].css_classes and panes[0].object == "First, think."
        assert "step-message" in panes[1].css_classes and panes[1].object == "Then answer."


def test_tool_calls_the_model_asked_for(make_handler):
    handler = make_handler()
    adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    first_model = next(s for s in iter_steps(step_tree(handler.layout)) if s["title"].startswith("Model"))
    assert '**Calls add**\n\n```json\n{\n  "a": 1,\n  "b": 2\n}\n```' in first_model["text"]


def test_title_function(make_handler):
    def title(run):
        if run.kind == "tool":
            return f"<i>{run.name}</i> is {run.status}"
        return None

    handler = make_handler(title_function=title)
    shout.invoke("hi", config={"callbacks": [handler]})
    step = only_step(handler)
    assert step["title"] == "&lt;i&gt;shout&lt;/i&gt; is success"  # shown as text, not markup


def test_title_template(make_handler):
    handler = make_handler(title="{label} <b>({status})</b> {kind}")
    shout.invoke("hi", config={"callbacks": [handler]})
    step = only_step(handler)
    assert step["title"] == "Tool shout · hi &lt;b&gt;(success)&lt;/b&gt; tool"  # shown as text, not markup


def test_title_function_wins_over_the_template(make_handler):
    handler = make_handler(title="{name}!", title_function=lambda run: None if run.kind == "tool" else "x")
    shout.invoke("hi", config={"callbacks": [handler]})
    assert only_step(handler)["title"] == "shout!"


def test_a_title_function_passed_as_title_still_works(make_handler):
    with pytest.deprecated_call(match="title_function"):
        handler = make_handler(title=lambda run: f"{run.name} ({run.kind})")
    shout.invoke("hi", config={"callbacks": [handler]})
    assert only_step(handler)["title"] == "shout (tool)"


def test_failing_title_function_is_contained(make_handler, caplog):
    def title(run):
        raise RuntimeError("broken title")

    handler = make_handler(title_function=title)
    with caplog.at_level(logging.WARNING, "panel_langchain_steps"):
        assert shout.invoke("hi", config={"callbacks": [handler]}) == "HI!"
        shout.invoke("again", config={"callbacks": [handler]})
        handler.flush()
    step = step_tree(handler.layout)[0]
    assert step["title"].startswith("Tool shout · hi · done in")  # the built-in title instead
    warnings = [r for r in caplog.records if "broken title" in r.getMessage()]
    assert len(warnings) == 1 and "'shout'" in warnings[0].getMessage()


def test_finished_trace_reads_as_an_outline(make_handler):
    handler = make_handler()
    adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    steps = list(iter_steps(step_tree(handler.layout)))
    assert len(steps) == 4  # the graph, then model, tool, model: one step per action
    for step in steps:
        is_chain = not step["title"].startswith(("Tool", "Model"))
        assert step["collapsed"] is not is_chain, step["title"]


@tool
def listing() -> str:
    """Three files, one per line."""
    return "a.txt\nb.txt\r\nc.txt"


def test_tool_output_keeps_its_line_breaks(make_handler):
    handler = make_handler()
    listing.invoke({}, config={"callbacks": [handler]})
    (step,) = opened(handler, handler.layout)
    (output,) = [pane for pane in step.objects if isinstance(pane, Markdown) and "Output" in pane.object]
    assert "<p>a.txt<br>\nb.txt<br>\nc.txt</p>" in html.unescape(output.get_root().text)


def test_a_finished_step_is_built_when_opened(make_handler):
    handler = make_handler()
    shout.invoke("hello", config={"callbacks": [handler]})
    handler.flush()
    (line,) = handler.layout  # finished and collapsed: a line of a light component, no step
    assert isinstance(line, StepHeaders)
    (step,) = steps_in(handler.layout)
    assert isinstance(step, StepHeader) and step.collapsed
    text = "**Input**\n\nhello\n**Output**\n\nHELLO\\!"
    assert step.body_text == text
    # Serialized, the step is readable text: values as written, nothing escaped.
    title = f"Tool shout · hello · {step.title.split(' · ')[2]}"
    assert step.serialize() == f"{title}\nInput:\nhello\n\nOutput:\nHELLO!"
    step.collapsed = False  # the user opens it: a step, open, in the line's place
    handler.flush()
    (step,) = handler.layout
    assert isinstance(step, Step) and not step.collapsed and step.title.startswith("Tool shout · hello")
    assert [pane.object for pane in step.objects] == ["**Input**\n\nhello", "**Output**\n\nHELLO\\!"]
    step.collapsed = True  # and closes it again: the body goes, and it is a line again
    handler.flush()
    (step,) = steps_in(handler.layout)
    assert isinstance(step, StepHeader) and step.body_text == text and step.title.startswith("Tool shout")


def test_durations_are_the_runs_own(make_handler):
    from panel_langchain_steps.render import format_duration

    handler = make_handler()
    adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    shown = {step["title"].split(" · ")[0]: step["title"] for step in iter_steps(step_tree(handler.layout))}
    for run in handler.trace.runs:
        if run.kind == "tool":
            took = format_duration(run.end_time - run.start_time)  # the events' own times
            assert shown["Tool add"] == f"Tool add · 1, 2 · done in {took}"
