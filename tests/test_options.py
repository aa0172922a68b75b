"""Targets, option validation, and choosing which runs are shown."""

from __future__ import annotations

from pathlib import Path

import panel as pn
import pytest
from conftest import QUESTION, adding_agent, shout
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from panel.chat import ChatFeed, ChatInterface, ChatMessage, ChatStep

from panel_langchain_steps import ChatStepCallbackHandler, steps_in
from panel_langchain_steps.testing import ScriptedChatModel, iter_steps, outline, step_tree


def trace(make_handler, runnable, inputs, **params):
    handler = make_handler(**params)
    runnable.invoke(inputs, config={"callbacks": [handler]})
    handler.flush()
    return outline(step_tree(handler.layout))


# -- validation -------------------------------------------------------------


@pytest.mark.parametrize(
    "params, words",
    [
        ({"context_exception": "loud"}, ["context_exception", "summary", "verbose"]),
        ({"include_types": ["chain", "agent"]}, ["include_types", "agent"]),
        ({"exclude_types": ["model"]}, ["exclude_types", "model"]),
        ({"max_depth": 0}, ["max_depth"]),
        ({"flush_interval": 0}, ["flush_interval"]),
        ({"max_chars": 5}, ["max_chars"]),
        ({"exclude_names": "tools"}, ["exclude_names"]),
        ({"title": "{label} {nope}"}, ["title", "nope", "{label}", "title_function"]),
        ({"title": "{label"}, ["title", "title_function"]),
        ({"title": 42}, ["title"]),
        ({"title_function": "not callable"}, ["title_function"]),
    ],
)
def test_invalid_options_name_the_option(params, words):
    with pytest.raises(ValueError) as raised:
        ChatStepCallbackHandler(**params)
    for word in words:
        assert word in str(raised.value)


def test_unknown_option():
    with pytest.raises(TypeError, match="flush_intervall"):
        ChatStepCallbackHandler(flush_intervall=1)


@pytest.mark.parametrize("target", [42, "feed", pn.pane.Markdown("x"), [ChatStep()]])
def test_wrong_target_type(target):
    with pytest.raises(TypeError, match="ChatFeed or ChatInterface, a ChatMessage, a list-like"):
        ChatStepCallbackHandler(target)


# -- targets -----------------------------------------------------------------


def test_no_target_makes_a_layout(make_handler):
    handler = make_handler()
    assert isinstance(handler.layout, pn.Column)
    assert handler.__panel__() is handler.layout
    shout.invoke("hi", config={"callbacks": [handler]})
    handler.flush()
    assert len(handler.layout) == 1


def test_column_target(make_handler):
    column = pn.Column("Trace:")
    handler = make_handler(column)
    shout.invoke("hi", config={"callbacks": [handler]})
    handler.flush()
    assert column.objects[0].object == "Trace:" and len(column) == 2
    assert [step.title.split(" · ")[0] for step in steps_in(column)] == ["Tool shout"]


def test_message_target_keeps_its_content(make_handler):
    message = ChatMessage("Working on it", user="Assistant")
    handler = make_handler(message)
    shout.invoke("hi", config={"callbacks": [handler]})
    handler.flush()
    first, _ = message.object.objects
    assert first.object == "Working on it"
    assert [step.title.split(" · ")[0] for step in steps_in(message)] == ["Tool shout"]


@pytest.mark.parametrize("feed_type", [ChatFeed, ChatInterface])
def test_feed_target_one_message_per_run(make_handler, feed_type):
    feed = feed_type()
    handler = make_handler(feed, user="Agent")
    shout.invoke("one", config={"callbacks": [handler]})
    adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    messages = feed.objects
    assert len(messages) == 2 and {m.user for m in messages} == {"Agent"}
    assert outline(step_tree(messages[0])) == ["Tool shout"]
    assert outline(step_tree(messages[1]))[0] == "LangGraph"


# -- what is shown -------------------------------------------------------------


def lcel_chain():
    prompt = ChatPromptTemplate.from_messages([("user", "{question}")])
    return prompt | ScriptedChatModel(responses=["Paris."] * 3) | StrOutputParser()


def test_glue_is_hidden(make_handler):
    assert trace(make_handler, lcel_chain(), {"question": "Capital?"}) == ["Model scripted-model"]


def test_show_glue(make_handler):
    shown = trace(make_handler, lcel_chain(), {"question": "Capital?"}, show_glue=True)
    assert shown == [
        "RunnableSequence",
        "  ChatPromptTemplate",
        "  Model scripted-model",
        "  StrOutputParser",
    ]


def test_named_chains_are_shown(make_handler):
    chain = RunnableLambda(lambda x: x).with_config(run_name="Clean up") | shout
    assert trace(make_handler, chain, "hi") == ["Clean up", "Tool shout"]


def test_hidden_tag_hides_a_run_but_not_its_children(make_handler):
    inner = RunnableLambda(lambda x: shout.invoke(x)).with_config(
        run_name="Hidden wrapper", tags=["langsmith:hidden"]
    )
    outer = RunnableLambda(lambda x: inner.invoke(x)).with_config(run_name="Outer")
    assert trace(make_handler, outer, "hi") == ["Outer", "  Tool shout"]


def test_exclude_names_reattaches_children(make_handler):
    shown = trace(make_handler, adding_agent(), QUESTION, exclude_names=["model", "tools"])
    assert shown == [
        "LangGraph",
        "  Model scripted-model",
        "  Tool add",
        "  Model scripted-model",
    ]


def test_include_and_exclude_types(make_handler):
    assert trace(make_handler, adding_agent(), QUESTION, include_types=["tool"]) == ["Tool add"]
    assert trace(make_handler, adding_agent(), QUESTION, exclude_types=["chain", "llm"]) == ["Tool add"]


def test_run_types_is_a_deprecated_name_of_include_types(make_handler):
    with pytest.deprecated_call(match="include_types"):
        shown = trace(make_handler, adding_agent(), QUESTION, run_types=["tool"])
    assert shown == ["Tool add"]
    handler = ChatStepCallbackHandler()
    with pytest.deprecated_call(match="include_types"):
        handler.run_types = ["llm"]
    assert handler.include_types == ["llm"]


def test_max_depth(make_handler):
    shown = trace(make_handler, adding_agent(), QUESTION, max_depth=2)
    assert shown == ["LangGraph", "  model", "  tools", "  model"]


def test_include_names_and_tags(make_handler):
    chain = RunnableLambda(lambda x: x).with_config(tags=["audit"]) | RunnableLambda(lambda x: x)
    assert trace(make_handler, chain, "x") == []
    assert trace(make_handler, chain, "x", include_tags=["audit"]) == ["RunnableLambda"]
    assert trace(make_handler, chain, "x", include_names=["RunnableSequence"]) == ["RunnableSequence"]
    # With every node shown, the tools node's tag hides it: its tool joins the graph's step.
    assert "  tools" in trace(make_handler, adding_agent(), QUESTION, show_glue=True)
    shown = trace(make_handler, adding_agent(), QUESTION, exclude_tags=["graph:step:2"], show_glue=True)
    assert "  tools" not in shown and "  Tool add" in shown


def test_options_can_change_later(make_handler):
    handler = make_handler()
    handler.include_types = ["llm"]
    handler.context_exception = "ignore"
    handler.flush_interval = 0.5
    adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    assert outline(step_tree(handler.layout)) == ["Model scripted-model"] * 2
    with pytest.raises(ValueError, match="context_exception"):
        handler.context_exception = "loud"
    with pytest.raises(ValueError, match="title_function"):
        handler.title = lambda run: "x"


# -- the public API ---------------------------------------------------------------


def test_the_handler_is_a_viewer_of_its_layout(document):
    handler = ChatStepCallbackHandler()
    page = pn.Column(handler)
    page.get_root(document)
    shout.invoke("hi", config={"callbacks": [handler]})
    handler.flush()
    (shown,) = page.objects
    assert shown is handler.layout  # Panel shows the handler as its layout
    assert outline(step_tree(page)) == ["Tool shout"]
    assert isinstance(handler, pn.viewable.Viewer)  # servable(), show() and notebook display too
    assert pn.panel(handler) is handler.layout


def test_every_public_name_is_exported_from_the_package_root():
    import panel_langchain_steps

    documented = (Path(__file__).parents[1] / "docs" / "api.md").read_text()
    for name in panel_langchain_steps.__all__:
        assert getattr(panel_langchain_steps, name) is not None
        assert f"::: panel_langchain_steps.{name}" in documented
    assert {"ChatStepCallbackHandler", "StopRun", "Trace", "TraceView", "ScriptedChatModel"} <= set(
        panel_langchain_steps.__all__
    )


def test_a_material_chat_gets_material_steps(make_handler):
    pmui = pytest.importorskip("panel_material_ui")
    chat = pmui.ChatInterface()
    handler = make_handler(chat)
    adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    (reply,) = chat.objects
    card = reply.object.objects[0]
    assert isinstance(card, pmui.Card) and card.title.startswith("Steps · 4 steps · done in")
    tree = step_tree(reply)
    assert outline(tree) == ["LangGraph", "  Model scripted-model", "  Tool add", "  Model scripted-model"]
    steps = card.select(pn.chat.ChatStep)
    assert len(steps) == 4 and all(isinstance(step, pmui.ChatStep) for step in steps)
    tool = next(step for step in iter_steps(tree) if step["title"].startswith("Tool add"))
    assert tool["collapsed"] and '"a": 1' in tool["text"]  # its body, built when opened
