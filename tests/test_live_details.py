"""What a running step shows as it runs: custom progress, tool-call arguments as the model
writes them, and the numbers of each model call (tokens, speed, cost, context window)."""

from __future__ import annotations

import threading
from typing import Any

from conftest import QUESTION, adding_agent, call
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.callbacks.manager import dispatch_custom_event
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from panel.chat import ChatInterface

from panel_langchain_steps import get_stream_writer
from panel_langchain_steps.testing import ScriptedChatModel, iter_steps, step_tree

WAIT = 10  # seconds: a bound on waiting for a condition, never an expected duration

PAGES = threading.Event()


def fetching(state: MessagesState) -> dict[str, Any]:
    """A node that reports progress through LangGraph's stream writer, then waits."""
    write = get_stream_writer()
    write({"page": 1, "of": 3})
    write("fetched **page 2** of 3 <img src=x onerror=alert(1)>")
    PAGES.wait(WAIT)
    return {"messages": [AIMessage(content="fetched")]}


def fetch_graph():
    graph = StateGraph(MessagesState)
    graph.add_node("fetch", fetching)
    graph.add_edge(START, "fetch")
    return graph.compile()


def step_named(handler, name: str) -> dict[str, Any]:
    handler.flush()
    return next(s for s in iter_steps(step_tree(handler.layout)) if s["title"].startswith(name))


def test_stream_writer_progress_shows_inside_the_running_step(make_handler):
    PAGES.clear()
    handler = make_handler()
    chunks: list[Any] = []
    worker = threading.Thread(
        target=lambda: chunks.extend(
            fetch_graph().stream(QUESTION, {"callbacks": [handler]}, stream_mode="custom")
        )
    )
    worker.start()
    try:
        for _ in range(WAIT * 100):  # a bounded wait for the second chunk to be recorded
            run = next((r for r in handler.trace.runs if r.name == "fetch"), None)
            if run is not None and len(run.events) == 2:
                break
            threading.Event().wait(0.01)
        step = step_named(handler, "fetch")
        assert step["status"] == "running"
        assert '"page": 1' in step["text"]
        # Untrusted text, shown as written: nothing in it formats or runs.
        assert "fetched \\*\\*page 2\\*\\* of 3 \\<img src\\=x onerror\\=alert\\(1\\)\\>" in step["text"]
    finally:
        PAGES.set()
        worker.join(WAIT)
    assert chunks == [
        {"page": 1, "of": 3},
        "fetched **page 2** of 3 <img src=x onerror=alert(1)>",
    ]  # the stream still gets them
    assert step_named(handler, "fetch")["status"] == "success"


@tool
def crawl(url: str) -> str:
    """Crawl a site."""
    for page in (1, 2):
        dispatch_custom_event("crawled", {"page": page, "url": url})
    return "2 pages"


def test_dispatched_events_show_in_the_tool_step(make_handler):
    handler = make_handler()
    model = ScriptedChatModel(
        responses=[
            AIMessage(content="", tool_calls=[call("crawl", {"url": "https://a.example"}, "c1")]),
            "Done.",
        ]
    )
    from langchain.agents import create_agent

    create_agent(model, [crawl]).invoke(QUESTION, config={"callbacks": [handler]})
    text = step_named(handler, "Tool crawl")["text"]
    assert text.count("**crawled**") == 2 and '"page": 2' in text


class Snapshots(BaseCallbackHandler):
    """A second real callback: after each token our handler recorded, what the model step showed."""

    run_inline = True

    def __init__(self, handler):
        self.handler = handler
        self.seen: list[tuple[str, str]] = []

    def on_llm_new_token(self, token, *, chunk=None, **kwargs):
        if getattr(getattr(chunk, "message", None), "tool_call_chunks", None):
            step = step_named(self.handler, "Model")
            self.seen.append((step["status"], step["text"]))


def test_tool_call_arguments_stream_before_the_tool_runs(make_handler):
    handler = make_handler()
    snapshots = Snapshots(handler)
    agent = adding_agent(streaming=True)
    agent.invoke(QUESTION, config={"callbacks": [handler, snapshots]})
    statuses = {status for status, _ in snapshots.seen}
    assert statuses == {"running"}
    texts = [text for _, text in snapshots.seen]
    # The arguments grow piece by piece while the model writes them, in the running step.
    assert any("**Calls add**" in text and '{"a": 1' in text and '"b": 2}' not in text for text in texts)
    assert '{"a": 1, "b": 2}' in texts[-1]
    final = step_named(handler, "Model")["text"]
    assert '"a": 1,\n  "b": 2' in final  # parsed at the end


def test_model_footer_has_tokens_speed_cost_and_context(make_handler):
    usage = {
        "input_tokens": 1200,
        "output_tokens": 300,
        "total_tokens": 1500,
        "input_token_details": {"cache_read": 1000},
        "output_token_details": {"reasoning": 120},
    }
    # LangChain 1.1 gave chat models a profile (the context window among its facts).
    profiles = "profile" in ScriptedChatModel.model_fields
    model = ScriptedChatModel(
        responses=[AIMessage(content="Fine.", usage_metadata=usage)],
        model_name="gpt-test",
        **({"profile": {"max_input_tokens": 4000}} if profiles else {}),
    )
    chat = ChatInterface()
    handler = make_handler(chat, prices={"gpt-test": (2.0, 8.0)}, models=[model])
    list(model.stream("hi", config={"callbacks": [handler]}))
    handler.flush()
    (step,) = iter_steps(step_tree(chat.objects[-1]))
    footer = step["text"].splitlines()[-1]
    assert footer.startswith("*Tokens: 1,200 in · 300 out · 1,000 cache read · 120 reasoning · gpt\\-test · ")
    assert "first token " in footer and " tokens/s" in footer
    assert "$0.0048" in footer  # 1,200 x 2 + 300 x 8 per million
    if profiles:
        assert footer.endswith(" · context 30% of 4,000*")
    else:
        assert footer.endswith(" · $0.0048*")
    card = chat.objects[-1].object.objects[0]
    assert "0 tool calls, 1 model call" in card.title and "1,500 tokens" in card.title
    assert "$0.0048" in card.title


def test_progress_of_a_hidden_run_shows_in_the_step_above_it(make_handler):
    """Glue (here a RunnableLambda inside a named chain) is hidden; its progress is not."""
    from langchain_core.runnables import RunnableLambda

    def index(text: str) -> str:
        dispatch_custom_event("indexed", {"chunks": 3})
        return text

    steps = RunnableLambda(lambda text: index(text)) | RunnableLambda(lambda text: text.upper())
    chain = steps.with_config(run_name="Indexer")
    handler = make_handler()
    chain.invoke("doc", config={"callbacks": [handler]})
    step = step_named(handler, "Indexer")
    assert step["steps"] == []  # the lambdas are not steps
    assert '**indexed**: `{"chunks": 3}`' in step["text"]
