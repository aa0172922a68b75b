"""TraceView on traces of real agent runs: rows, live updates, filters, totals, detail, replay."""

from __future__ import annotations

import contextlib
import threading

import panel as pn
import pytest
from conftest import QUESTION, adding_agent, call, until
from langchain.agents import create_agent
from langchain_core.documents import Document
from langchain_core.messages import AIMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import tool
from panel.models.tabulator import DataTabulator

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.replay import replay
from panel_langchain_steps.safety import render_markdown
from panel_langchain_steps.testing import ScriptedChatModel, iter_steps, step_tree
from panel_langchain_steps.trace import FAILED, SUCCESS, Trace
from panel_langchain_steps.trace_view import TraceView, detail_text, totals

HOSTILE = "<img src=x onerror=alert(1)>"


@tool
def explode(text: str) -> str:
    """Fail loudly."""
    raise RuntimeError(f"boom: {text} api_key=sk-abcdefghijklmnopqrstuvwx")


def failing_agent():
    """A real agent whose tool call fails, failing the whole run."""
    model = ScriptedChatModel(
        responses=[AIMessage(content="Trying.", tool_calls=[call("explode", {"text": "x"}, "e1")])]
    )
    return create_agent(model, [explode])


def recorded(agent=None) -> Trace:
    recorder = ChatStepCallbackHandler()
    with contextlib.suppress(RuntimeError):  # the failing agent's run is recorded up to its error
        (agent or adding_agent()).invoke(QUESTION, config={"callbacks": [recorder]})
    return recorder.trace


def shown(document, trace: Trace, **params) -> TraceView:
    view = TraceView(trace, **params)
    view.__panel__().get_root(document)
    return view


def names(view: TraceView) -> list[str]:
    return [row["run"].replace("\u00a0", " ") for row in view.rows]


def test_rows_are_the_run_tree_in_order(document):
    view = shown(document, recorded())
    assert names(view)[0] == "◇ LangGraph"
    assert [name for name in names(view) if name.lstrip().startswith(("✦", "⚙"))] == [
        "    ✦ scripted-model",
        "    ⚙ add · 1, 2",
        "    ✦ scripted-model",
    ]
    assert len(view.rows) == len(view.trace)
    assert {row["status"] for row in view.rows} == {"✓ success"}
    assert [row["tokens"] for row in view.rows if row["kind"] == "llm"] == [13, 14]


def test_totals_count_tokens_calls_errors_and_cost(document):
    trace = recorded()
    numbers = totals(trace, {"scripted-model": (1_000_000.0, 2_000_000.0)})
    assert (numbers["model_calls"], numbers["tool_calls"], numbers["errors"]) == (2, 1, 0)
    assert (numbers["input_tokens"], numbers["output_tokens"]) == (20, 7)
    assert numbers["cost"] == pytest.approx(20 * 1.0 + 7 * 2.0)
    assert numbers["wall_time"] > 0 and 0 < numbers["time_to_first_token"] <= numbers["wall_time"]
    view = shown(document, trace, prices={"scripted-model": (1_000_000.0, 2_000_000.0)})
    assert "**2** model calls, **1** tool calls" in view.summary
    assert "cost **34.0000**" in view.summary
    view.prices = {}
    assert "cost" not in view.summary


def test_live_trace_streams_new_rows_and_patches_changed_ones(document):
    recorder = ChatStepCallbackHandler()
    trace = recorder.trace
    view = shown(document, trace)
    assert view.rows == []
    adding_agent().invoke(QUESTION, config={"callbacks": [recorder]})
    view.refresh()
    first = names(view)
    assert len(first) == len(trace) and first[0] == "◇ LangGraph"
    # A second turn arrives after every shown row: appended, and the first turn's rows stay.
    adding_agent("Three.").invoke(QUESTION, config={"callbacks": [recorder]})
    view.refresh()
    assert names(view) == first * 2


def test_rows_arriving_leave_the_tables_configuration_as_it_was(document):
    # A changed configuration makes the browser build its table anew, and Panel 1.9 drops the
    # rows that arrive during that build: the empty table already has the columns' types.
    recorder = ChatStepCallbackHandler()
    view = TraceView(recorder.trace)
    table = view.__panel__().get_root(document).select_one({"type": DataTabulator})
    empty = table.configuration
    adding_agent().invoke(QUESTION, config={"callbacks": [recorder]})
    view.refresh()
    assert len(view.rows) == len(recorder.trace) > 0
    assert table.configuration == empty


async def test_live_view_refreshes_on_its_own(document):
    recorder = ChatStepCallbackHandler()
    trace = recorder.trace
    view = shown(document, trace, interval=0.05)
    adding_agent().invoke(QUESTION, config={"callbacks": [recorder]})
    await until(
        lambda: len(view.rows) == len(trace) > 0 and view.rows[0]["status"] == "✓ success", "rows shown"
    )
    view.close()


def test_a_tool_row_is_named_as_its_step_is(document, make_handler):
    """One title rule in both views: a tool shows its key arguments in the chat's steps and in the tree."""
    handler = make_handler(pn.Column())
    adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    titles = [step["title"] for step in iter_steps(step_tree(handler.layout))]
    view = shown(document, handler.trace)
    (row,) = [name.strip() for name in names(view) if name.lstrip().startswith("⚙")]
    assert row == "⚙ add · 1, 2"
    assert any(title.startswith("Tool add · 1, 2 · done in") for title in titles)
    view.search = "1, 2"  # the search finds what the tree shows
    assert [name.strip() for name in names(view)] == ["⚙ add · 1, 2"]


def error_button(view: TraceView) -> pn.widgets.Button:
    (button,) = view.__panel__().select(pn.widgets.Button)
    return button


def test_next_error_is_there_only_while_a_run_failed(document):
    trace = Trace()
    view = shown(document, trace)
    run = trace.start("r1", None, "tool", name="slow")
    view.refresh()
    assert (error_button(view).label, error_button(view).disabled) == ("No errors", True)
    assert view.next_error() is None
    trace.end(run, FAILED, error={"type": "Timeout", "message": "too slow", "traceback": ""})
    view.refresh()
    assert (error_button(view).label, error_button(view).disabled) == ("Next error", False)
    error_button(view).clicks += 1  # as the user does
    assert view.selected == "r1"


def test_a_running_run_shows_as_running_then_ended(document):
    trace = Trace()
    view = shown(document, trace)
    run = trace.start("r1", None, "tool", name="slow")
    view.refresh()
    assert view.rows[0]["status"] == "⏳ running"
    trace.end(run, FAILED, error={"type": "Timeout", "message": "too slow", "traceback": ""})
    view.refresh()
    assert view.rows[0]["status"] == "✗ failed"
    assert view.next_error() == "r1"


def test_search_kind_status_filters_and_collapse(document):
    view = shown(document, recorded(failing_agent()))
    assert len(view.rows) == len(view.trace)
    view.search = "explode"
    assert names(view) == ["    ⚙ explode · x"]
    view.search = ""
    view.kinds = ["llm"]
    assert {row["kind"] for row in view.rows} == {"llm"}
    view.kinds = ["chain", "llm", "tool", "retriever"]
    view.statuses = [FAILED]
    assert names(view) == ["◇ LangGraph", "  ◇ tools", "    ⚙ explode · x"]
    view.statuses = [SUCCESS, FAILED]
    root = view.rows[0]["id"]
    view.collapsed = [root]
    assert names(view) == ["◇ LangGraph"] and view.rows[0]["toggle"] == "▸"
    view.collapsed = []
    assert len(view.rows) == len(view.trace) and view.rows[0]["toggle"] == "▾"


def test_next_error_selects_the_failed_run_even_when_hidden(document):
    view = shown(document, recorded(failing_agent()))
    view.collapsed = [view.rows[0]["id"]]
    view.kinds = ["llm"]
    failed = [view.next_error() for _ in range(4)]
    assert [view.trace.get(run_id).name for run_id in failed] == [
        "LangGraph",
        "tools",
        "explode",
        "LangGraph",
    ]
    assert view.selected == failed[-1] and failed[-1] in [row["id"] for row in view.rows]
    view.next_error()
    view.next_error()
    assert "RuntimeError" in view.detail and "boom: x" in view.detail
    assert "sk-abcdefghijklmnopqrstuvwx" not in view.detail


def test_detail_is_inert_and_redacted(document):
    trace = Trace()
    run = trace.start(
        "r1", None, "tool", name=HOSTILE, inputs={"text": HOSTILE, "api_key": "sk-secretsecretsecret1234"}
    )
    trace.write(run, "text", f"**{HOSTILE}**")
    trace.end(run, FAILED, exception=RuntimeError(HOSTILE))
    view = shown(document, trace)
    view.selected = "r1"
    assert view.detail == detail_text(trace.get("r1"))
    html = render_markdown(view.detail)
    assert "<img" not in html and html.count("&lt;img src=x onerror=alert(1)&gt;") >= 4
    assert "sk-secretsecretsecret1234" not in view.detail


def test_replay_into_a_live_view_shows_the_same_runs(document, tmp_path):
    original = recorded(failing_agent())
    original.save(tmp_path / "run.json")
    saved = Trace.load(tmp_path / "run.json")
    target = Trace()
    view = shown(document, target)
    replay(saved, target, speed=None)
    view.refresh()
    assert [(row["run"], row["status"]) for row in view.rows] == [
        (row["run"], row["status"]) for row in shown(document, original).rows
    ]
    for before, after in zip(saved.runs, target.runs, strict=True):
        assert (after.start_time, after.end_time, after.text) == (
            before.start_time,
            before.end_time,
            before.text,
        )
        assert (after.status, after.error) == (before.status, before.error)


def test_replay_keeps_the_timing_scaled_by_speed():
    trace = Trace()
    run = trace.start("r1", None, "chain", name="root", at=1000.0)
    child = trace.start("c1", "r1", "llm", name="model", at=1000.0)
    trace.end(child, SUCCESS, at=1000.2)
    trace.end(run, SUCCESS, at=1000.4)
    target = replay(trace, speed=4.0)
    assert target.get("r1").duration == pytest.approx(0.1, abs=1e-6)
    assert [run.id for run in target.runs] == ["r1", "c1"]
    with pytest.raises(ValueError, match="speed must be positive"):
        replay(trace, speed=0)


class Shelf(BaseRetriever):
    """A real retriever over a fixed shelf of documents."""

    def _get_relevant_documents(self, query: str, *, run_manager) -> list[Document]:
        return [
            Document(
                page_content=f"About {query}: {HOSTILE}", metadata={"source": "a.md", "api_key": "sk-x"}
            ),
            Document("Second page.", metadata={"source": "b.md"}),
        ]


def test_a_retrievers_documents_show_one_by_one(document, tmp_path):
    recorder = ChatStepCallbackHandler()
    Shelf().invoke("cats", config={"callbacks": [recorder]})
    recorder.trace.save(tmp_path / "run.json")
    for trace in (recorder.trace, Trace.load(tmp_path / "run.json")):
        view = shown(document, trace)
        view.selected = trace.roots[0].id
        assert view.rows[0]["kind"] == "retriever"
        assert "**Document 1**" in view.detail and "**Document 2**" in view.detail
        assert "About cats" in view.detail and '"source": "b.md"' in view.detail
        html = render_markdown(view.detail)
        assert "<img" not in html and "sk-x" not in html


async def test_replay_at_speed_updates_a_live_view_on_its_own(document):
    original = recorded()
    target = Trace()
    view = shown(document, target, interval=0.05)
    player = threading.Thread(target=replay, args=(original, target), kwargs={"speed": 4.0})
    player.start()
    expected = [(row["run"], row["status"]) for row in shown(document, original).rows]
    await until(lambda: [(row["run"], row["status"]) for row in view.rows] == expected, "the replay shown")
    player.join(30)
    root = original.roots[0]
    assert target.get(root.id).duration == pytest.approx(root.duration / 4, abs=1e-6)
    view.close()
