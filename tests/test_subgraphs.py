"""LangGraph's structure in the steps: agents as nodes of other graphs, parallel branches, and
a stop that reaches inside them."""

from __future__ import annotations

import asyncio
import operator
import threading
import uuid
from typing import Annotated, Any, TypedDict

from conftest import QUESTION, add, call, until
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.types import Send
from panel.chat import ChatInterface

from panel_langchain_steps.testing import ScriptedChatModel, answer_text, iter_steps, outline, step_tree

WAIT = 10  # seconds: a bound on waiting for a condition, never an expected duration


def math_agent():
    model = ScriptedChatModel(
        responses=[AIMessage(content="Adding.", tool_calls=[call("add", {"a": 1, "b": 2}, "c1")]), "It is 3."]
    )
    return create_agent(model, [add], name="math_agent")


def test_an_agent_node_is_named_and_holds_its_steps(make_handler):
    graph = StateGraph(MessagesState)
    graph.add_node("math", math_agent())
    graph.add_edge(START, "math")
    handler = make_handler()
    graph.compile().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    tree = step_tree(handler.layout)
    lines = outline(tree)
    (agent_line,) = [line for line in lines if "math_agent" in line]
    depth = len(agent_line) - len(agent_line.lstrip())
    below = lines[lines.index(agent_line) + 1 :]
    # Its model and tool steps are nested under it, deeper than its own line.
    assert [line.strip() for line in below] == ["Model scripted-model", "Tool add", "Model scripted-model"]
    assert all(len(line) - len(line.lstrip()) > depth for line in below)
    agent = next(s for s in iter_steps(tree) if "math_agent" in s["title"])
    assert agent["status"] == "success"


class Topics(TypedDict):
    topics: list[str]
    notes: Annotated[list[str], operator.add]


def fan_out_graph(model, worker=None):
    def research(state: dict[str, Any]) -> dict[str, Any]:
        if worker is not None:
            worker(state["topic"])
        answer = model.invoke(f"Research {state['topic']}")
        return {"notes": [answer.content]}

    graph = StateGraph(Topics)
    graph.add_node("research", research)
    graph.add_conditional_edges(
        START, lambda state: [Send("research", {"topic": t}) for t in state["topics"]]
    )
    return graph.compile()


def about(messages):
    return f"Notes on {messages[-1].content.split()[-1]}: " + " ".join(["word"] * 30)


def test_parallel_branches_stay_apart(make_handler):
    handler = make_handler()
    model = ScriptedChatModel(responses=about, streaming=True)
    result = fan_out_graph(model).invoke({"topics": ["alpha", "beta", "gamma"]}, {"callbacks": [handler]})
    assert len(result["notes"]) == 3
    handler.flush()
    (root,) = step_tree(handler.layout)
    branches = root["steps"]  # each branch is its one model call, shown as the node's action
    assert [b["title"].split(" · ")[0] for b in branches] == ["research › Model scripted-model"] * 3
    topics = set()
    for model_step in branches:
        (topic,) = {t for t in ("alpha", "beta", "gamma") if f"Notes on {t}:" in model_step["text"]}
        assert model_step["text"].count("Notes on") == 1  # no tokens of another branch
        topics.add(topic)
    assert topics == {"alpha", "beta", "gamma"}


RELEASE = threading.Event()
STARTED: list[str] = []


@tool
def slow_lookup(topic: str) -> str:
    """Look a topic up, slowly."""
    STARTED.append(topic)
    RELEASE.wait(WAIT)
    return f"found {topic}"


def branch_agent():
    model = ScriptedChatModel(
        responses=lambda messages: (
            AIMessage(
                content="Looking.", tool_calls=[call("slow_lookup", {"topic": "x"}, f"c{len(messages)}")]
            )
            if messages[-1].type == "human"
            else "Done."
        )
    )
    return create_agent(model, [slow_lookup], name="branch_agent")


async def stopped_mid_run(make_handler, run, started: str) -> tuple[ChatInterface, Any]:
    """Run ``run(config)`` as a chat's sync callback (in Panel's worker thread), press stop once
    both branches have started, release them, and wait until the callback has returned."""
    finished = threading.Event()

    def respond(contents, user, instance):
        try:
            run({"callbacks": [handler]})
        except BaseException:  # the stop reaches the caller as StopRun
            pass
        finally:
            finished.set()

    chat = ChatInterface(callback=respond)
    handler = make_handler(chat)
    chat.send("go")
    await until(lambda: len(STARTED) == 2, started, WAIT)
    chat.stop()  # what the stop button does
    await until(lambda: handler.open_runs == 0, "the stop ended every run", WAIT)
    RELEASE.set()  # the blocked calls return; their branches must not go on
    await asyncio.to_thread(finished.wait, WAIT)
    assert finished.is_set()
    handler.flush()
    return chat, handler


async def test_stop_ends_runs_inside_subgraphs_and_parallel_branches(make_handler):
    STARTED.clear()
    RELEASE.clear()
    agent = branch_agent()

    def fan(state: dict[str, Any]):
        return [Send("agent", {"messages": [("user", topic)]}) for topic in ("a", "b")]

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_conditional_edges(START, fan)
    compiled = graph.compile()
    chat, handler = await stopped_mid_run(
        make_handler, lambda config: compiled.invoke(QUESTION, config), "both branches are inside their tool"
    )
    steps = list(iter_steps(step_tree(chat.objects[-1])))
    assert steps and {s["status"] for s in steps} <= {"success", "failed"}
    assert handler.open_runs == 0
    tools = [s for s in steps if s["title"].startswith("Tool slow_lookup")]
    assert len(tools) == 2 and all("stopped after" in s["title"] for s in tools)
    # No branch asked its model again after the stop, and the usage reported so far is kept.
    models = [run for run in handler.trace.runs if run.kind == "llm"]
    assert len(models) == 2
    assert all(run.usage and run.usage["input_tokens"] == 10 for run in models)


class StallingModel(ScriptedChatModel):
    """Streams a few chunks (the input's usage first, as Anthropic does), then waits for RELEASE."""

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        for number, chunk in enumerate(super()._stream(messages, stop, run_manager, **kwargs)):
            if number == 3:
                STARTED.append("streaming")
                RELEASE.wait(WAIT)
            yield chunk


async def test_a_stop_mid_stream_keeps_the_text_and_usage_so_far(make_handler):
    STARTED.clear()
    RELEASE.clear()
    model = StallingModel(responses=about, streaming=True)
    graph = fan_out_graph(model)
    chat, _ = await stopped_mid_run(
        make_handler,
        lambda config: graph.invoke({"topics": ["alpha", "beta"]}, config),
        "both branches stream",
    )
    reply = chat.objects[-1]
    models = [s for s in iter_steps(step_tree(reply)) if "Model" in s["title"]]
    assert len(models) == 2
    for step in models:
        assert "stopped after" in step["title"]
        # The text so far stays, in the step or (the turn's last model call) as the reply's answer.
        text = answer_text(reply) if "answer below" in step["title"] else step["text"]
        assert text.startswith("Notes on")
        assert "*Tokens: 10 in · 0 out" in step["text"]  # and the usage reported so far


def test_a_node_that_stood_for_its_action_gives_back_the_actions_title(make_handler):
    """A node with one action is shown as that action ("math › model"); once it has a second one, it
    is a step of its own and the first action's title no longer says it stands for the node."""
    handler = make_handler()
    root, math, model, tools = (uuid.uuid4() for _ in range(4))

    def node(name: str) -> dict:
        return {"name": name, "tags": ["graph:step:1"], "metadata": {"langgraph_node": name}}

    handler.on_chain_start(None, {}, run_id=root, name="LangGraph")
    handler.on_chain_start(None, {}, run_id=math, parent_run_id=root, **node("math"))
    handler.on_chain_start(None, {}, run_id=model, parent_run_id=math, **node("model"))
    handler.on_chain_end({}, run_id=model)
    handler.flush()
    assert outline(step_tree(handler.layout)) == ["LangGraph", "  math › model"]
    handler.on_chain_start(None, {}, run_id=tools, parent_run_id=math, **node("tools"))
    handler.on_chain_end({}, run_id=tools)
    handler.on_chain_end({}, run_id=math)
    handler.on_chain_end({}, run_id=root)
    handler.flush()
    assert outline(step_tree(handler.layout)) == ["LangGraph", "  math", "    model", "    tools"]
