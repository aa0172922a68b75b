"""A real LangGraph agent on the scripted model, through every way of running it."""

from __future__ import annotations

import asyncio
from typing import TypedDict

import pytest
from conftest import QUESTION, adding_agent, shout
from langgraph.graph import END, START, StateGraph

from panel_langchain_steps.testing import ScriptedChatModel, iter_steps, outline, step_tree

# One step per action: the agent's "model" and "tools" nodes show as the model and tool runs.
EXPECTED_SHAPE = [
    "LangGraph",
    "  Model scripted-model",
    "  Tool add",
    "  Model scripted-model",
]


def check_trace(handler):
    handler.flush()
    tree = step_tree(handler.layout)
    assert outline(tree) == EXPECTED_SHAPE
    steps = list(iter_steps(tree))
    assert {step["status"] for step in steps} == {"success"}
    assert all(" · done in " in step["title"] for step in steps)
    models = [step for step in steps if step["title"].startswith("Model")]
    assert models[0]["text"].startswith("Let me add.")
    assert '"a": 1' in models[0]["text"]  # the tool call it asked for
    assert models[1]["text"].startswith("The sum is 3.")
    assert models[1]["text"].count("The sum is 3.") == 1  # streamed or not, never both
    tool = next(step for step in steps if step["title"].startswith("Tool add"))
    assert '"b": 2' in tool["text"] and "**Output**\n\n3" in tool["text"]
    assert handler.open_runs == 0
    return tree


def test_invoke(make_handler):
    handler = make_handler()
    result = adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    assert result["messages"][-1].content == "The sum is 3."
    check_trace(handler)


@pytest.mark.parametrize("mode", ["values", "updates", "messages", "custom", "debug"])
def test_stream_modes(make_handler, mode):
    handler = make_handler()
    chunks = list(adding_agent().stream(QUESTION, config={"callbacks": [handler]}, stream_mode=mode))
    if mode != "custom":
        assert chunks
    check_trace(handler)


async def test_ainvoke(make_handler):
    handler = make_handler()
    await adding_agent().ainvoke(QUESTION, config={"callbacks": [handler]})
    check_trace(handler)


async def test_astream_messages(make_handler):
    handler = make_handler()
    tokens = [
        chunk.content
        async for chunk, _ in adding_agent().astream(
            QUESTION, config={"callbacks": [handler]}, stream_mode="messages"
        )
        if isinstance(chunk.content, str)
    ]
    assert "".join(tokens).endswith("The sum is 3.")
    check_trace(handler)


async def test_astream_events(make_handler):
    handler = make_handler()
    events = [
        event["event"]
        async for event in adding_agent().astream_events(QUESTION, config={"callbacks": [handler]})
    ]
    assert "on_chat_model_stream" in events
    check_trace(handler)


def test_batch(make_handler):
    handler = make_handler()
    agents = adding_agent()
    agents.batch([QUESTION], config={"callbacks": [handler]})
    check_trace(handler)


async def test_abatch(make_handler):
    handler = make_handler()
    await adding_agent().abatch([QUESTION], config={"callbacks": [handler]})
    check_trace(handler)


def test_stream_from_a_worker_thread(make_handler):
    """Panel runs sync callbacks in a worker thread: the handler works there too."""
    handler = make_handler()

    async def main():
        await asyncio.to_thread(
            lambda: list(adding_agent().stream(QUESTION, {"callbacks": [handler]}, stream_mode="messages"))
        )

    asyncio.run(main())
    check_trace(handler)


class Notes(TypedDict):
    topic: str
    notes: list[str]


def notes_graph(fail_after_summary: bool = False):
    """A graph whose "research" node runs two tools and whose "summarize" node calls a model once."""
    model = ScriptedChatModel(responses=["A summary."])

    def research(state: Notes) -> dict:
        return {"notes": [shout.invoke(state["topic"]), shout.invoke("more")]}

    def summarize(state: Notes) -> dict:
        summary = model.invoke(" ".join(state["notes"])).content
        if fail_after_summary:
            raise RuntimeError("could not store the summary")
        return {"notes": [*state["notes"], summary]}

    graph = StateGraph(Notes)
    graph.add_node("research", research)
    graph.add_node("summarize", summarize)
    graph.add_edge(START, "research")
    graph.add_edge("research", "summarize")
    graph.add_edge("summarize", END)
    return graph.compile()


def test_a_node_is_shown_as_its_one_action(make_handler):
    handler = make_handler()
    notes_graph().invoke({"topic": "steps", "notes": []}, config={"callbacks": [handler]})
    handler.flush()
    assert outline(step_tree(handler.layout)) == [
        "LangGraph",
        "  research",  # two actions: the node keeps its card
        "    Tool shout",
        "    Tool shout",
        "  summarize › Model scripted-model",  # one action: one card, named after both
    ]


def test_every_node_has_a_card_with_show_glue(make_handler):
    handler = make_handler(show_glue=True)
    notes_graph().invoke({"topic": "steps", "notes": []}, config={"callbacks": [handler]})
    handler.flush()
    shown = outline(step_tree(handler.layout))
    assert "  summarize" in shown and "    Model scripted-model" in shown


def test_a_node_that_failed_after_its_action_shows_as_itself(make_handler):
    handler = make_handler()
    with pytest.raises(RuntimeError):
        notes_graph(fail_after_summary=True).invoke({"topic": "x", "notes": []}, {"callbacks": [handler]})
    handler.flush()
    tree = step_tree(handler.layout)
    assert outline(tree)[-2:] == ["  summarize", "    Model scripted-model"]
    summarize = tree[0]["steps"][-1]
    assert summarize["status"] == "failed" and "could not store the summary" in summarize["text"]
    assert summarize["steps"][0]["status"] == "success"
