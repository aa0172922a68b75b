"""Threads, odd event orders, faults inside the handler, and memory: the run always wins."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import panel as pn
import param
from conftest import QUESTION, adding_agent, call, until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from panel.chat import ChatFeed, ChatStep

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.testing import ScriptedChatModel, answer_text, iter_steps, step_tree


def numbered_text(tag: str, count: int = 60) -> str:
    return " ".join(f"{tag}-{i}" for i in range(count))


def all_steps(layout):
    return list(iter_steps(step_tree(layout)))


# -- threads -----------------------------------------------------------------


@tool
def wait_and_echo(value: str) -> str:
    """Wait a little, then echo."""
    time.sleep(0.05)
    return f"echo {value}"


def test_parallel_tool_calls(make_handler):
    calls = [call("wait_and_echo", {"value": f"v{i}"}, f"c{i}") for i in range(6)]
    model = ScriptedChatModel(responses=[AIMessage(content="", tool_calls=calls), "Done."])
    handler = make_handler()
    create_agent(model, [wait_and_echo]).invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    (graph,) = step_tree(handler.layout)
    # LangGraph sends each call to its own "tools" node run, on its thread pool: each node is
    # shown as its one tool call.
    tool_steps = [s for s in graph["steps"] if s["title"].startswith("Tool wait_and_echo")]
    assert len(tool_steps) == 6
    outputs = sorted(step["text"].split("**Output**\n\n")[1] for step in tool_steps)
    assert outputs == [f"echo v{i}" for i in range(6)]
    for step in tool_steps:
        value = step["text"].split('"value": "')[1].split('"')[0]
        assert step["text"].endswith(f"echo {value}")  # each input with its own output
    assert {step["status"] for step in all_steps(handler.layout)} == {"success"}


def test_batch_streams_every_token_into_its_own_step(make_handler):
    texts = [numbered_text(f"run{i}") for i in range(16)]
    model = ScriptedChatModel(responses=lambda messages: f"{messages[-1].content}", streaming=True)
    handler = make_handler(flush_interval=0.005)
    model.batch(texts, config={"callbacks": [handler], "max_concurrency": 8})
    handler.flush()
    shown = sorted(step["text"].split("\n*Tokens")[0] for step in step_tree(handler.layout))
    assert shown == sorted(texts)


async def test_concurrent_ainvoke_into_one_feed(make_handler):
    feed = ChatFeed()
    handler = make_handler(feed, flush_interval=0.005)

    async def one(i):
        model = ScriptedChatModel(responses=[numbered_text(f"ask{i}")], streaming=True)
        await model.ainvoke("hi", config={"callbacks": [handler]})

    await asyncio.gather(*(one(i) for i in range(16)))
    handler.flush()
    assert len(feed.objects) == 16
    shown = sorted(answer_text(message) for message in feed.objects)
    assert shown == sorted(numbered_text(f"ask{i}") for i in range(16))
    assert handler.open_runs == 0


# -- odd event orders ------------------------------------------------------------


def test_tolerates_odd_events(make_handler, caplog):
    handler = make_handler()
    root, child, ghost = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with caplog.at_level(logging.WARNING, "panel_langchain_steps"):
        handler.on_tool_end("nobody started me", run_id=uuid.uuid4())
        handler.on_chain_error(ValueError("x"), run_id=uuid.uuid4())
        handler.on_chain_start(None, {}, run_id=root, name="Agent")
        handler.on_llm_new_token("early ", run_id=child, parent_run_id=root)  # before its start
        handler.on_chat_model_start({"name": "m"}, [[]], run_id=child, parent_run_id=root)
        handler.on_llm_new_token("late", run_id=child, parent_run_id=root)
        handler.on_llm_end(None, run_id=child, parent_run_id=root)
        handler.on_llm_end(None, run_id=child, parent_run_id=root)  # duplicate
        handler.on_tool_start({"name": "orphan"}, "x", run_id=uuid.uuid4(), parent_run_id=ghost)
        handler.on_chain_end({}, run_id=root)
        handler.on_chain_end({}, run_id=root)  # duplicate after the root ended
        handler.flush()
    assert not caplog.records
    steps = {step["title"].split(" · ")[0]: step for step in all_steps(handler.layout)}
    assert steps["Model m"]["text"] == "early late"
    assert steps["Model m"]["status"] == "success"
    # Its parent never came and it never ended: it stands alone, running, until a sweep ends it
    # after `orphan_timeout` seconds with no event, and says so.
    assert steps["Tool orphan"]["status"] == "running" and handler.open_runs == 1
    handler.trace.orphan_timeout = 0
    handler.trace.sweep()
    handler.flush()
    steps = {step["title"].split(" · ")[0]: step for step in all_steps(handler.layout)}
    assert steps["Tool orphan"]["status"] == "failed"
    assert "its parent never reported" in steps["Tool orphan"]["title"]
    assert handler.open_runs == 0
    assert steps["Agent"]["status"] == "success"


async def test_an_orphan_ends_on_its_own_with_no_new_turn(make_handler):
    handler = make_handler()
    handler.trace.orphan_timeout = 0.5
    handler.on_tool_start({"name": "orphan"}, "x", run_id=uuid.uuid4(), parent_run_id=uuid.uuid4())
    # Nothing else happens: no new turn, no flush. The view's own tick ends it.
    await until(lambda: [step["status"] for step in all_steps(handler.layout)] == ["failed"], "orphan ended")
    (step,) = all_steps(handler.layout)
    assert "no event for 0.5 s; its parent never reported" in step["title"]
    assert handler.open_runs == 0


# A run tree: ids 0..n-1, each with a parent among earlier ids (or none), a
# kind, and a sequence of events that may be shuffled, duplicated or dropped.
KINDS = ["chain", "tool", "llm", "retriever", "glue"]


@st.composite
def event_sequences(draw):
    n = draw(st.integers(1, 5))
    parents = [None] + [draw(st.one_of(st.none(), st.integers(0, i - 1))) for i in range(1, n)]
    kinds = [draw(st.sampled_from(KINDS)) for _ in range(n)]
    events = []
    for i in range(n):
        events.append(("start", i))
        events.extend(("token", i, f"t{i}.{k} ") for k in range(draw(st.integers(0, 3))))
        events.append((draw(st.sampled_from(["end", "error"])), i))
    events = draw(st.permutations(events))
    extra = draw(st.lists(st.sampled_from(events), max_size=4)) if events else []
    dropped = draw(st.sets(st.integers(0, len(events) - 1), max_size=2))
    events = [e for j, e in enumerate(events) if j not in dropped] + extra
    return n, parents, kinds, events


def send(handler, ids, parents, kinds, event):
    kind_of = kinds[event[1]]
    run_id = ids[event[1]]
    parent = parents[event[1]]
    parent_id = ids[parent] if parent is not None else None
    ids_kw = {"run_id": run_id, "parent_run_id": parent_id}
    if event[0] == "start":
        if kind_of in ("chain", "glue"):
            name = "RunnableSequence" if kind_of == "glue" else f"chain{event[1]}"
            handler.on_chain_start(None, {}, name=name, **ids_kw)
        elif kind_of == "tool":
            handler.on_tool_start({"name": f"tool{event[1]}"}, "in", **ids_kw)
        elif kind_of == "llm":
            handler.on_chat_model_start({"name": "m"}, [[]], **ids_kw)
        else:
            handler.on_retriever_start({"name": "r"}, "q", **ids_kw)
    elif event[0] == "token":
        handler.on_llm_new_token(event[2], **ids_kw)
    else:
        family = "chain" if kind_of == "glue" else kind_of
        family = "llm" if family == "llm" else family
        if event[0] == "end":
            getattr(handler, f"on_{family}_end")(None if family != "retriever" else [], **ids_kw)
        else:
            getattr(handler, f"on_{family}_error")(RuntimeError("boom"), **ids_kw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event_sequences())
def test_any_event_sequence(caplog, sequence):
    n, parents, kinds, events = sequence
    handler = ChatStepCallbackHandler(flush_interval=0.001)
    ids = [uuid.uuid4() for _ in range(n)]
    caplog.clear()
    with caplog.at_level(logging.WARNING, "panel_langchain_steps"):
        for event in events:
            send(handler, ids, parents, kinds, event)
        # Then every run ends (LangChain ends children before parents).
        for i in reversed(range(n)):
            send(handler, ids, parents, kinds, ("end", i))
    assert not caplog.records, "the handler had to contain one of its own faults"
    handler.flush()
    steps = all_steps(handler.layout)
    assert all(step["status"] in ("success", "failed") for step in steps)
    assert handler.open_runs == 0
    # Every token that arrived before its run (or an ancestor) ended is in
    # the run's step, in order; later ones are late events and are dropped.
    for i in range(n):
        lineage, parent = {i}, parents[i]
        while parent is not None:
            lineage.add(parent)
            parent = parents[parent]
        ended = next((j for j, e in enumerate(events) if e[1] in lineage and e[0] in ("end", "error")), None)
        tokens = [e[2] for e in events[:ended] if e[0] == "token" and e[1] == i]
        owners = [s for s in steps if s["title"].startswith("Model m") and "".join(tokens) in s["text"]]
        if kinds[i] == "llm" and tokens:
            assert owners


# -- faults inside the handler ------------------------------------------------------


class BrokenColumn(pn.Column):
    """A real Column that refuses steps, as a fault inside rendering."""

    @param.depends("objects", watch=True)
    def _refuse(self):
        if any(isinstance(obj, ChatStep) for obj in self.objects):
            raise RuntimeError("layout refused the step")


def test_fault_in_rendering_never_breaks_the_run(make_handler, caplog):
    # No timed refresh during the runs: the fault surfaces in the run's own events (the timer's
    # faults are reported too: test_a_fault_in_a_timed_refresh_is_reported_and_spares_other_layouts).
    handler = make_handler(BrokenColumn(), flush_interval=5)
    with caplog.at_level(logging.WARNING, "panel_langchain_steps"):
        result = adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
        handler.flush()
        adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
        handler.flush()
    assert result["messages"][-1].content == "The sum is 3."
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "layout refused the step" in m]) == 1
    assert "failed for run '" in messages[0]


def test_user_exception_inside_a_runnable_passes_through(make_handler):
    handler = make_handler()

    def explode(_):
        raise KeyError("mine")

    chain = RunnableLambda(explode).with_config(run_name="Explode")
    try:
        chain.invoke(1, config={"callbacks": [handler]})
    except KeyError as error:
        assert error.args == ("mine",)
    else:
        raise AssertionError("the run's exception must reach the caller")
    handler.flush()
    (step,) = step_tree(handler.layout)
    assert step["status"] == "failed" and "**KeyError**: 'mine'" in step["text"]


# -- memory ----------------------------------------------------------------------


def test_bookkeeping_is_freed_when_roots_end(make_handler):
    feed = ChatFeed()
    handler = make_handler(feed)
    for _ in range(5):
        adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    assert handler.open_runs == 0
    assert len(feed.objects) == 5 and len(handler.trace.roots) == 5
    feed.clear()
    assert len(handler.trace) == 0  # the turns went with their messages
