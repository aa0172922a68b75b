"""ChatInterface turns: steps card and answer per reply, the stop button, tool approval."""

from __future__ import annotations

import asyncio
import threading

import pytest
from conftest import QUESTION, WAIT_SECONDS, adding_agent, call, until
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from panel import Column
from panel.chat import ChatInterface
from panel.widgets import Button, Tabulator

from panel_langchain_steps.approval import resume_value
from panel_langchain_steps.testing import ScriptedChatModel, answer_text, iter_steps, step_tree


def steps_card(message):
    return message.object.objects[0]


@pytest.mark.parametrize("streamed", [True, False])
def test_one_turn_one_reply(make_handler, streamed):
    chat = ChatInterface()
    handler = make_handler(chat)
    agent = adding_agent(streaming=streamed)
    agent.invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    (reply,) = chat.objects
    assert answer_text(reply) == "The sum is 3."
    card = steps_card(reply)
    assert card.collapsed and card.title.startswith("Steps · 4 steps · done in ")
    models = [s for s in iter_steps(step_tree(reply)) if s["title"].startswith("Model")]
    assert models[0]["text"].startswith("Let me add.")  # it called tools: not the answer
    assert "The sum is 3." not in models[1]["text"]  # the answer is the reply's text


def test_answer_can_stay_in_steps(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat, answer_in_reply=False)
    adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    (reply,) = chat.objects
    assert answer_text(reply) == ""
    models = [s for s in iter_steps(step_tree(reply)) if s["title"].startswith("Model")]
    assert models[1]["text"].startswith("The sum is 3.")


# -- stop --------------------------------------------------------------------------

RAN: list[str] = []


#: How long `slow_search` takes, unless `SEARCH_DONE` is set first (the tests set it).
SEARCH_SECONDS = 60.0
SEARCH_DONE = threading.Event()


@tool
def slow_search(query: str) -> str:
    """Search slowly."""
    RAN.append(f"search {query}")
    SEARCH_DONE.wait(SEARCH_SECONDS)
    return "found it"


@tool
def summarize(text: str) -> str:
    """Summarize."""
    RAN.append("summarize")
    return "summary"


def two_tool_agent():
    model = ScriptedChatModel(
        responses=[
            AIMessage(content="Searching.", tool_calls=[call("slow_search", {"query": "x"}, "c1")]),
            AIMessage(content="Summarizing.", tool_calls=[call("summarize", {"text": "y"}, "c2")]),
            "Done.",
        ]
    )
    return create_agent(model, [slow_search, summarize])


async def test_stop_button_halts_a_sync_run(make_handler):
    RAN.clear()
    SEARCH_DONE.clear()
    agent = two_tool_agent()
    finished = threading.Event()

    def respond(contents, user, instance):
        try:
            agent.invoke({"messages": [("user", contents)]}, config={"callbacks": [handler]})
        finally:
            finished.set()

    chat = ChatInterface(callback=respond)
    handler = make_handler(chat)
    chat.send("go")
    await until(lambda: RAN, "the search started")
    chat.stop()  # what the stop button does
    await until(lambda: handler.open_runs == 0, "the runs ended")
    handler.flush()
    reply = chat.objects[-1]
    assert not steps_card(reply).collapsed and "· stopped after" in steps_card(reply).title
    statuses = {s["title"].split(" · ")[0]: s for s in iter_steps(step_tree(reply))}
    assert statuses["Tool slow_search"]["status"] == "failed"
    assert "stopped after" in statuses["Tool slow_search"]["title"]
    assert all(s["status"] in ("success", "failed") for s in statuses.values())
    SEARCH_DONE.set()  # the search returns, in the worker thread
    assert await asyncio.to_thread(finished.wait, WAIT_SECONDS), "the worker thread did not end"
    assert RAN == ["search x"]  # the thread halted before the next tool
    assert not chat.disabled
    assert handler.open_runs == 0


async def test_stop_cancels_an_async_run(make_handler):
    RAN.clear()
    SEARCH_DONE.clear()
    agent = two_tool_agent()

    async def respond(contents, user, instance):
        await agent.ainvoke({"messages": [("user", contents)]}, config={"callbacks": [handler]})

    chat = ChatInterface(callback=respond)
    handler = make_handler(chat)
    chat.send("go")
    await until(lambda: RAN, "the search started")
    chat.stop()
    await until(lambda: handler.open_runs == 0 and not chat.disabled, "the run stopped")
    SEARCH_DONE.set()  # the search's thread returns; the cancelled run does not go on
    handler.flush()
    steps = list(iter_steps(step_tree(chat.objects[-1])))
    assert steps and all(s["status"] in ("success", "failed") for s in steps)
    assert RAN == ["search x"]
    assert handler.open_runs == 0


# -- tool approval ----------------------------------------------------------------------


@tool
def delete_file(path: str) -> str:
    """Delete a file."""
    RAN.append(f"delete {path}")
    return f"deleted {path}"


def approval_agent():
    model = ScriptedChatModel(
        responses=lambda messages: (
            AIMessage(content="Deleting.", tool_calls=[call("delete_file", {"path": "/tmp/x"}, "d1")])
            if messages[-1].type == "human"
            else f"Result: {messages[-1].content}"
        )
    )
    return create_agent(
        model,
        [delete_file],
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"delete_file": True})],
        checkpointer=InMemorySaver(),
    )


def paused_turn(make_handler):
    """A chat whose approval agent paused before deleting a file: the chat, its handler, the reply."""
    RAN.clear()
    agent = approval_agent()
    chat = ChatInterface()
    config = {"configurable": {"thread_id": "t1"}}
    handler = make_handler(chat, resume=lambda value: agent.invoke(Command(resume=value), config))
    config["callbacks"] = [handler]
    agent.invoke(QUESTION, config)
    handler.flush()
    (reply,) = chat.objects
    return chat, handler, reply


@pytest.mark.parametrize("approve", [True, False])
def test_tool_approval(make_handler, approve):
    chat, handler, reply = paused_turn(make_handler)
    assert "paused, waiting for input" in steps_card(reply).title
    (review,) = reviews(reply.object)
    request = review.objects[0].object
    assert "delete\\_file" in request and "/tmp/x" in request
    assert RAN == []

    if approve:
        click(review, "Approve")
    else:
        click(review, "Reject")
        click(review, "Send")  # no reason given
    handler.flush()

    assert len(chat.objects) == 1  # the trace continued in the same reply
    assert all(button.disabled for button in review.select(Button))
    assert review.objects[-1].object == ("✅ **Approved**" if approve else "❌ **Rejected**")
    assert steps_card(reply).collapsed
    if approve:
        assert RAN == ["delete /tmp/x"]
        assert answer_text(reply) == "Result: deleted /tmp/x"
    else:
        assert RAN == []
        assert "The user rejected this call." in answer_text(reply)


def reviews(layout):
    """The tool-call reviews anywhere in a layout, as shown (a Viewer is shown as its panel)."""
    return [obj for obj in layout.select(Column) if "action-review" in obj.css_classes]


def click(layout, label):
    """Click the shown button with this label, as the browser does."""
    (button,) = [b for b in layout.select(Button) if b.label == label and b.visible]
    button.clicks += 1


def test_approval_prompt_resume_values():
    request = {"action_requests": [{"name": "a", "args": {}}, {"name": "b", "args": {}}]}
    assert resume_value(request, True) == {"decisions": [{"type": "approve"}, {"type": "approve"}]}
    rejected = resume_value(request, False)["decisions"]
    assert [d["type"] for d in rejected] == ["reject", "reject"]
    assert resume_value("Proceed?", True) is True and resume_value("Proceed?", False) is False


def test_a_saved_turn_replays_into_a_feed_as_it_was_shown(make_handler, tmp_path):
    from panel_langchain_steps import Trace, replay
    from panel_langchain_steps.testing import outline

    live_chat = ChatInterface()
    live = make_handler(live_chat)
    adding_agent().invoke(QUESTION, config={"callbacks": [live]})
    live.flush()
    live.trace.save(tmp_path / "turn.json")

    replayed_chat = ChatInterface()
    replayed = make_handler(replayed_chat)
    replay(Trace.load(tmp_path / "turn.json"), replayed.trace, speed=None)
    replayed.flush()
    (before,), (after,) = live_chat.objects, replayed_chat.objects
    assert outline(step_tree(after)) == outline(step_tree(before))
    assert [s["title"] for s in iter_steps(step_tree(after))] == [
        s["title"] for s in iter_steps(step_tree(before))
    ]
    assert answer_text(after) == answer_text(before) == "The sum is 3."
    assert steps_card(after).title == steps_card(before).title


# -- the whole turn, one click away --------------------------------------------------


@pytest.mark.parametrize("beside", [False, True])
def test_a_reply_opens_its_turn_in_a_trace_view(make_handler, beside):
    chat, sidebar = ChatInterface(), Column()
    handler = make_handler(chat, trace_target=sidebar if beside else None)
    adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    first, _ = chat.objects
    button = next(item for item in first.object.objects if "reply-trace" in item.css_classes)
    assert button.visible and button.label == "Trace view"
    button.clicks += 1  # a click, as the browser sends it
    (table,) = (sidebar if beside else first).select(Tabulator)
    runs = list(table.value["run"])
    assert "LangGraph" in runs[0] and any("add · 1, 2" in run for run in runs)
    first_turn = handler.trace.roots[0]
    assert len(runs) == len(handler.trace.runs_of(first_turn.id))  # this turn's runs, not the other's
    if not beside:
        assert button.label == "Close trace view"
        button.clicks += 1
        assert first.select(Tabulator) == []
