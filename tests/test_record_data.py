"""The record is data: nothing a run carries stops it from ending, opening, saving or being freed."""

from __future__ import annotations

import gc
import json
import tracemalloc
import weakref

import pytest
from conftest import opened
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

from panel_langchain_steps import Trace
from panel_langchain_steps.snapshot import VALUE_CHARS
from panel_langchain_steps.testing import iter_steps, step_tree


class Unprintable(Exception):
    """An exception whose message cannot be printed."""

    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class Opaque:
    """An app object that cannot be printed at all."""

    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__


def saved_and_loaded(trace: Trace, tmp_path) -> Trace:
    """The trace after a round trip through a file (which must not raise)."""
    json.dumps(trace.to_dict())
    trace.save(tmp_path / "run.json")
    return Trace.load(tmp_path / "run.json")


def test_an_exception_that_cannot_be_printed_still_ends_its_run(make_handler, tmp_path):
    def explode(_: object) -> None:
        raise Unprintable()

    handler = make_handler()
    with pytest.raises(Unprintable):  # the caller gets its own exception
        RunnableLambda(explode, name="explode").invoke(1, config={"callbacks": [handler]})
    assert handler.open_runs == 0
    (step,) = opened(handler, handler.layout)
    assert step.status == "failed"
    assert "Unprintable: <unprintable Unprintable>" in step.serialize()
    (run,) = saved_and_loaded(handler.trace, tmp_path).runs
    assert (run.status, run.error["message"]) == ("failed", "<unprintable Unprintable>")


class OpaqueRetriever(BaseRetriever):
    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun):
        return [Document(page_content="found it", metadata={"source": Opaque(), "page": 3})]


def test_a_document_whose_metadata_cannot_be_printed_opens_and_saves(make_handler, tmp_path):
    handler = make_handler()
    OpaqueRetriever().invoke("where", config={"callbacks": [handler]})
    (step,) = opened(handler, handler.layout)
    assert step.status == "success"
    text = step.serialize()
    assert "found it" in text and "<unprintable Opaque>" in text and step.body_text
    (run,) = saved_and_loaded(handler.trace, tmp_path).runs
    assert run.outputs["documents"][0]["metadata"] == {"source": "<unprintable Opaque>", "page": 3}


def test_a_tool_output_holding_an_unprintable_value_opens_and_saves(make_handler, tmp_path):
    @tool
    def lookup(key: str) -> dict:
        """Look a key up."""
        return {"key": key, "value": Opaque()}

    handler = make_handler()
    lookup.invoke({"key": "k"}, config={"callbacks": [handler]})
    (step,) = opened(handler, handler.layout)
    assert step.status == "success" and "<unprintable Opaque>" in step.serialize()
    (run,) = saved_and_loaded(handler.trace, tmp_path).runs
    assert run.outputs == {"key": "k", "value": "<unprintable Opaque>"}


class Thing:
    """One of the app's own objects, returned inside a tool's output."""

    def __init__(self) -> None:
        self.items = ["first"]

    def __repr__(self) -> str:
        return f"Thing({self.items})"


def test_the_record_keeps_a_snapshot_not_the_apps_objects(make_handler):
    made: list[weakref.ref] = []

    @tool
    def make_thing() -> dict:
        """Make a thing."""
        thing = Thing()
        made.append(weakref.ref(thing))
        return {"thing": thing, "items": thing.items}

    handler = make_handler()
    result = make_thing.invoke({}, config={"callbacks": [handler]})
    (run,) = handler.trace.runs
    assert run.outputs == {"thing": "Thing(['first'])", "items": ["first"]}
    result["items"].append("changed later")  # the app changes its object: the trace does not
    assert run.outputs["items"] == ["first"]
    del result
    gc.collect()
    assert made[0]() is None, "the record still holds the app's object"


def test_each_value_is_kept_up_to_the_documented_limit(make_handler):
    @tool
    def dump() -> str:
        """Return a lot."""
        return "y" * (VALUE_CHARS + 5_000)

    handler = make_handler(max_chars=None)
    dump.invoke({}, config={"callbacks": [handler]})
    (run,) = handler.trace.runs
    assert run.outputs == "y" * VALUE_CHARS + "… [5,000 more characters]"


@tool
def bulk(turn: int) -> str:
    """Return two megabytes."""
    return f"turn {turn} " + "x" * 2_000_000


@pytest.mark.parametrize("target", [None, "column"])
def test_forgetting_turns_frees_their_memory_with_any_target(make_handler, target):
    import panel as pn

    handler = make_handler(pn.Column() if target else None)

    def turn(number: int) -> None:
        bulk.invoke({"turn": number}, config={"callbacks": [handler]})
        handler.flush()
        assert [step["title"].split(" · ")[0] for step in step_tree(handler.layout)] == ["Tool bulk"]

    def forget() -> None:
        handler.layout.clear()
        handler.trace.clear()
        handler.flush()
        gc.collect()

    tracemalloc.start()
    try:
        turn(0)  # the first turn warms what every turn shares (styles, caches)
        forget()
        before = tracemalloc.get_traced_memory()[0]
        turn(1)
        one_turn = tracemalloc.get_traced_memory()[0] - before
        forget()
        for number in range(2, 7):
            turn(number)
            forget()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(handler.trace) == 0 and list(iter_steps(step_tree(handler.layout))) == []
    assert after - before < 0.1 * one_turn, f"kept {after - before:,} B; one turn holds {one_turn:,} B"
