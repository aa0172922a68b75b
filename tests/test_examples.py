"""Each example runs one scripted turn, offline: what the user would see, checked on the components."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from bokeh.document import Document

from panel_langchain_steps.testing import answer_text, iter_steps, step_tree

EXAMPLES = Path(__file__).parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))  # as `panel serve` has it: the examples import their helpers
from providers import PROVIDERS  # noqa: E402


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No provider variables: every example runs on its scripted model."""
    for provider in PROVIDERS:
        monkeypatch.delenv(provider.variable, raising=False)


def load(name: str) -> ModuleType:
    """Import an example by its file path (with ``examples/`` importable, as ``panel serve`` has it)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so pydantic models in it can resolve their annotations
    spec.loader.exec_module(module)
    return module


def open_session(module: ModuleType):
    """A session's page, attached to a document as a served page is."""
    session = module.create_app()
    session.__panel__().get_root(Document())
    return session


async def ask(session, text: str):
    """Send ``text`` as the user and run the example's callback on it; return the reply."""
    session.chat.send(text, user="User", respond=False)
    await session.respond(text, "User", session.chat)
    session.handler.flush()
    return session.chat.objects[-1]


def titles(reply) -> list[str]:
    return [step["title"] for step in iter_steps(step_tree(reply))]


def steps_card(reply):
    return reply.object.objects[0]


async def test_agent_chat_searches_then_answers(monkeypatch):
    example = load("agent_chat")
    monkeypatch.setattr(example, "SLOW_SECONDS", 0.05)
    example.CALLS.clear()
    session = open_session(example)
    reply = await ask(session, "What is LangGraph persistence?")
    assert example.CALLS == ["web_search", "fetch_page"]
    assert "checkpointer saves the graph state" in answer_text(reply)
    assert steps_card(reply).collapsed
    shown = titles(reply)
    assert any(t.startswith("Tool web_search · What is LangGraph persistence? · done") for t in shown)
    assert all(step["status"] == "success" for step in iter_steps(step_tree(reply)))


async def test_agent_chat_shows_a_failed_tool_and_recovers(monkeypatch):
    example = load("agent_chat")
    monkeypatch.setattr(example, "FAILURE_RATE", 1.0)
    session = open_session(example)
    reply = await ask(session, "Convert USD to JPY")
    failed = [s for s in iter_steps(step_tree(reply)) if s["status"] == "failed"]
    assert [s["title"].split(" · ")[0] for s in failed] == ["Tool exchange_rate"] * 2  # tried twice
    assert "TimeoutError" in failed[0]["title"] and "did not answer in time" in failed[0]["text"]
    assert "Sorry" in answer_text(reply)
    assert steps_card(reply).collapsed and " · 2 failed · done in " in steps_card(reply).title


async def test_agent_chat_keeps_the_conversation_per_session(monkeypatch):
    example = load("agent_chat")
    monkeypatch.setattr(example, "FAILURE_RATE", 0.0)
    session, other = open_session(example), open_session(example)
    await ask(session, "What is 12 * 7?")
    reply = await ask(session, "Convert EUR to GBP")
    assert "1 EUR = 0.8587 GBP" in answer_text(reply)
    history = example.agent.get_state(session.config).values["messages"]
    assert [m.text for m in history if m.type == "human"] == ["What is 12 * 7?", "Convert EUR to GBP"]
    assert example.agent.get_state(other.config).values == {}


@pytest.mark.parametrize("approve", [True, False])
async def test_tool_approval(approve):
    example = load("tool_approval")
    example.CALLS.clear()
    session = open_session(example)
    reply = await ask(session, "Email Bob about lunch")
    assert "paused, waiting for input" in steps_card(reply).title
    assert example.CALLS == ["lookup_contact"]
    await example.resume(approval(approve), session.config)
    session.handler.flush()
    assert len(session.chat.objects) == 2  # the question and one reply
    if approve:
        assert example.CALLS == ["lookup_contact", "send_email"]
        assert answer_text(reply) == "Done: Email to bob@example.com sent."
    else:
        assert example.CALLS == ["lookup_contact"]
        assert "did **not** send" in answer_text(reply)


def approval(approve: bool) -> dict:
    from panel_langchain_steps.approval import resume_value

    return resume_value({"action_requests": [{"name": "send_email", "args": {}}]}, approve)


async def test_rag_chat_shows_the_documents_it_found():
    example = load("rag_chat")
    session = open_session(example)
    reply = await ask(session, "What does a checkpointer do?")
    (retriever,) = [s for s in iter_steps(step_tree(reply)) if "Retriever handbook · done" in s["title"]]
    assert r"**1. langgraph/persistence\.md**" in retriever["text"] and "thread id" in retriever["text"]
    assert answer_text(reply).startswith("A LangGraph checkpointer saves the state")
    assert "langgraph/persistence.md" in answer_text(reply)


async def test_lcel_chain_shows_each_link_and_keeps_history():
    example = load("lcel_chain")
    session = open_session(example)
    await ask(session, "Callbacks")
    reply = await ask(session, "Streaming")
    (chain,) = step_tree(reply)
    assert chain["title"].startswith("explain · done")
    links = [step["title"].split(" · ")[0] for step in chain["steps"]]
    assert links == ["ChatPromptTemplate", "Model scripted", "StrOutputParser"]
    assert answer_text(reply).startswith("**Streaming** in three points")
    assert "talked about 1 other topic" in answer_text(reply)


async def test_parallel_tools_run_side_by_side():
    example = load("parallel_tools")
    session = open_session(example)
    reply = await ask(session, "Compare the weather in Oslo, Cairo and Quito")
    tools = [s for s in iter_steps(step_tree(reply)) if s["title"].startswith("Tool get_weather")]
    assert len(tools) == 3 and all(s["status"] == "success" for s in tools)
    cities = sorted(s["title"].split(" · ")[1] for s in tools)
    assert cities == ["Cairo", "Oslo", "Quito"]  # each call's title names its city
    runs = [run for run in session.handler.trace.runs if run.kind == "tool"]
    assert max(run.start_time for run in runs) < min(run.end_time for run in runs)  # the calls overlapped
    assert all(city in answer_text(reply) for city in ("Oslo", "Cairo", "Quito"))


async def test_standalone_trace():
    example = load("standalone_trace")
    page = example.create_app()
    page.__panel__().get_root(Document())
    answer = await page.ask("How many miles is 42.195 km?")
    page.handler.flush()
    assert answer == "**42.195 km = 26.22 mi**"
    assert page.answer.object == answer
    (graph,) = step_tree(page.trace)
    assert graph["status"] == "success" and not graph["collapsed"]
    assert any(s["title"].startswith("Tool convert · 42.195, km, mi · done") for s in iter_steps([graph]))


async def test_agent_trace_shows_the_chat_and_its_trace(tmp_path):
    from panel_langchain_steps import Trace

    example = load("agent_trace")
    page = example.create_app()
    page.__panel__().get_root(Document())
    session = page.session
    reply = await ask(session, "Check 3 servers")
    assert answer_text(reply).startswith("Checked 3 servers: ")
    page.trace_view.refresh()
    tools = [row for row in page.trace_view.rows if row["kind"] == "tool"]
    names = sorted(row["run"].strip("\u00a0") for row in tools)  # named as their steps: with the host
    assert names == ["⚙ ping · web-001", "⚙ ping · web-002", "⚙ ping · web-003"]
    saved = Trace.load(page.save())
    assert [run.name for run in saved.runs] == [run.name for run in session.handler.trace.runs]


async def test_agent_chat_follows_up_on_its_previous_answer(monkeypatch):
    example = load("agent_chat")
    example.CALLS.clear()
    session = open_session(example)
    first = await ask(session, "What is 12 * 7?")
    assert answer_text(first) == "The result is **84**."
    reply = await ask(session, "And what is that times 2?")
    assert example.CALLS == ["calculator", "calculator"]
    assert answer_text(reply) == "The result is **168**."
    assert any(t.startswith("Tool calculator · 84 * 2 · done") for t in titles(reply))


async def test_rag_chat_answers_its_suggested_questions():
    example = load("rag_chat")
    session = open_session(example)
    reply = await ask(session, "How do I stop a ChatInterface?")
    assert "a stop button replaces the send button; pressing it cancels the callback" in answer_text(reply)


async def test_research_team_shows_branches_agents_progress_and_cost(monkeypatch):
    example = load("research_team")
    monkeypatch.setattr(example, "READ_SECONDS", 0)
    session = open_session(example)
    reply = await ask(session, "Report on solar power")
    tree = step_tree(reply)
    steps = list(iter_steps(tree))
    branches = [s for s in steps if s["title"].startswith("research ·")]
    assert len(branches) == 2  # one step per parallel branch
    for branch in branches:
        assert "Reading the journal \\(3 of 3\\)" in branch["text"]  # its progress, in its step
        (notes,) = [s for s in branch["steps"] if s["title"].startswith("Model")]
        assert "Tokens: " in notes["text"] and "$" in notes["text"]
    (writer,) = [s for s in steps if "writer" in s["title"].split(" · ")[0] and s["steps"]]
    assert any(s["title"].startswith("Tool word_count") for s in iter_steps(writer["steps"]))
    assert answer_text(reply).startswith("**Report.**")
    assert session.chat.serialize()[-1]["content"] == answer_text(reply)
    title = steps_card(reply).title
    assert "1 tool call, 4 model calls" in title and "$" in title
