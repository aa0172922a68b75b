"""The store browser on a real Bokeh document: pages read from a real store, search and
filters, a turn opened in a TraceView, two turns compared; and the command line's errors."""

from __future__ import annotations

import pytest
from conftest import adding_agent

from panel_langchain_steps import ChatStepCallbackHandler, TraceStore
from panel_langchain_steps.cli import main
from panel_langchain_steps.store_view import StoreView, comparison_panel
from panel_langchain_steps.trace_view import TraceView
from panel_langchain_steps.usage import format_cost


@pytest.fixture
def filled(tmp_path):
    """A store of five turns (the third answers differently), oldest first."""
    store = TraceStore(tmp_path / "traces.db")
    handler = ChatStepCallbackHandler(store=store, prices={"scripted-model": (1.0, 2.0)})
    for index in range(5):
        question = {"messages": [("user", f"Question {index}: what is 1 + 2?")]}
        agent = adding_agent("It is <b>three</b>." if index == 2 else "The sum is 3.")
        agent.invoke(question, config={"callbacks": [handler]})
    assert store.flush(60)
    yield store, [root.id for root in handler.trace.roots]
    store.close()


def test_pages_search_and_filters(filled, document):
    store, ids = filled
    view = StoreView(store, page_size=2)
    view.__panel__().get_root(document)
    assert [row["id"] for row in view.rows] == [ids[4], ids[3]]
    assert view.rows[0]["question"] == "Question 4: what is 1 + 2?"
    assert view.rows[0]["status"] == "success" and view.rows[0]["cost"].startswith("$")
    view.page = 1
    assert [row["id"] for row in view.rows] == [ids[2], ids[1]]
    view.page = 2
    assert [row["id"] for row in view.rows] == [ids[0]]
    view.search = "three"  # back to the first page
    assert view.page == 0 and [row["id"] for row in view.rows] == [ids[2]]
    view.search = ""
    view.tool = "subtract"
    assert view.rows == []
    view.tool, view.status, view.within = "add", "success", "last hour"
    assert len(view.rows) == 2
    view.status = "failed"
    assert view.rows == []


def test_a_threads_turns_and_their_cost(tmp_path, document):
    store = TraceStore(tmp_path / "traces.db")
    handler = ChatStepCallbackHandler(store=store, prices={"scripted-model": (1.0, 2.0)})
    for thread in ("alice", "bob", "alice"):
        adding_agent().invoke(
            {"messages": [("user", "What is 1 + 2?")]},
            config={"callbacks": [handler], "configurable": {"thread_id": thread}},
        )
    assert store.flush(60)
    view = StoreView(store)
    view.__panel__().get_root(document)
    assert view.totals == ""
    view.thread = "alice"
    assert [row["thread"] for row in view.rows] == ["alice", "alice"]
    totals = store.totals(thread_id="alice")
    assert totals["turns"] == 2 and totals["cost"] > 0
    cost = format_cost(totals["cost"])
    assert (
        view.totals
        == f"thread: 2 turns, {totals['total_tokens']:,} tokens, {cost}, {totals['duration']:.1f} s"
    )
    store.close()


def test_a_turn_opens_in_a_trace_view_and_two_compare(filled, document):
    store, ids = filled
    view = StoreView(store)
    view.__panel__().get_root(document)
    opened = view.open(ids[1])
    assert isinstance(opened, TraceView) and view.shown is opened
    assert [row["run"].strip().split()[-1] for row in opened.rows][:1] == ["LangGraph"]
    result = view.compare(ids[1], ids[2])
    assert view.shown is result
    assert (result.diverged.path, result.diverged.fields) == (
        "LangGraph",
        ("inputs", "outputs"),
    )  # the question
    answers = [step for step in result.changes("changed") if step.kind == "llm"]
    assert "text" in answers[-1].fields  # and the answer
    assert result.changes("added") == result.changes("removed") == []
    assert view.compare(ids[1], ids[1]).diverged is None


def test_the_command_line_refuses_a_file_that_is_not_a_store(tmp_path, capsys):
    bad = tmp_path / "broken.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    assert main(["view", str(bad)]) == 2
    error = capsys.readouterr().err
    assert (
        error.startswith("panel-langchain-steps: ") and str(bad) in error and error.count("\n") == 1
    )  # one line


def test_the_comparison_shows_untrusted_text_as_text(filled):
    store, ids = filled
    result = StoreView(store).compare(ids[1], ids[2])
    summary, steps = comparison_panel(result)
    assert "**Diverged at** LangGraph (changed: inputs, outputs)" in summary.object
    assert all(spec == {"type": "plaintext"} for spec in steps.formatters.values())
    answer = steps.value[steps.value["kind"] == "llm"].iloc[-1]
    assert answer["change"] == "changed" and "text" in answer["what changed"]
