"""The trace store: turns saved by the handler as they end, listed, searched, loaded, deleted and
pruned, on SQLite and on a real Postgres server the tests start; bad files and a locked or
unreachable database."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import postgres
import pytest
import sqlalchemy as sa
from conftest import QUESTION, add, adding_agent, call
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

from panel_langchain_steps import ChatStepCallbackHandler, Trace, TraceStore
from panel_langchain_steps.store import STORE_VERSION, StoreError
from panel_langchain_steps.testing import ScriptedChatModel

ROOT = Path(__file__).parent.parent
PRICES = {"scripted-model": (1.0, 2.0)}


@pytest.fixture(scope="session")
def postgres_server():
    """A Postgres server for the whole run (Debian's postgresql; `make test` installs it)."""
    if postgres.binaries() is None:
        message = (
            f"Debian's postgresql package is not installed (no {postgres.BINARIES}); `make test` installs it"
        )
        if os.environ.get("CI") == "true":  # CI must test Postgres: `.ci/run` installs it
            pytest.fail(message)
        pytest.skip(message)
    try:
        with postgres.server() as url:
            yield url
    except RuntimeError as error:
        pytest.fail(f"could not start the Postgres server for the tests: {error}")


_databases = iter(range(1, 1_000_000))


@pytest.fixture(params=["sqlite", "postgres"])
def target(request, tmp_path):
    """Where a new, empty store goes: a SQLite file, or a new database on the Postgres server."""
    if request.param == "sqlite":
        return str(tmp_path / "traces.db")
    url = request.getfixturevalue("postgres_server")
    name = f"store_{next(_databases)}"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def store(target):
    store = TraceStore(target)
    yield store
    store.close()


def ask(handler, agent=None, question=QUESTION, **config):
    (agent or adding_agent()).invoke(question, config={"callbacks": [handler], **config})


def test_each_turn_is_saved_when_it_ends_and_loads_back(store):
    handler = ChatStepCallbackHandler(store=store, prices=PRICES)
    ask(handler)
    ask(handler, adding_agent("Three."), {"messages": [("user", "And 1 + 2 again?")]})
    assert store.flush(60)
    first, second = [root.id for root in handler.trace.roots]
    newest = store.list()
    assert [turn.id for turn in newest] == [second, first]
    turn = newest[0]
    assert (turn.name, turn.status, turn.preview) == ("LangGraph", "success", "And 1 + 2 again?")
    assert (turn.model_calls, turn.tool_calls, turn.errors, turn.runs) == (
        2,
        1,
        0,
        len(handler.trace.runs_of(second)),
    )
    assert turn.total_tokens == turn.input_tokens + turn.output_tokens > 0
    assert turn.cost == pytest.approx((turn.input_tokens * 1.0 + turn.output_tokens * 2.0) / 1e6)
    assert turn.duration == pytest.approx(turn.end_time - turn.start_time)
    loaded = store.load(second)
    assert [run.to_dict() for run in loaded.runs] == [run.to_dict() for run in handler.trace.runs_of(second)]
    assert len(store) == 2


def test_a_turn_saved_twice_is_kept_once(store):
    handler = ChatStepCallbackHandler()
    ask(handler)
    assert store.save(handler.trace) == store.save(handler.trace) == [handler.trace.roots[0].id]
    assert len(store) == 1 and len(store.search("add")) == 1


def test_search_finds_turns_by_what_they_carried(store):
    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"Sunny in {city}, with a light breeze"

    @tool
    def explode(reason: str) -> str:
        """Fails."""
        raise RuntimeError(f"Kaboom because {reason}")

    handler = ChatStepCallbackHandler(store=store)
    calls = [call("weather", {"city": "Reykjavik"}, "w1")]
    weather_model = ScriptedChatModel(responses=[AIMessage("", tool_calls=calls), "Bring sunglasses."])
    ask(handler, create_agent(weather_model, [weather]), {"messages": [("user", "Weather please")]})
    failing = ScriptedChatModel(
        responses=[AIMessage("", tool_calls=[call("explode", {"reason": "zebra"}, "e1")])]
    )
    with pytest.raises(RuntimeError):
        ask(handler, create_agent(failing, [explode]), {"messages": [("user", "Do it")]})
    ask(handler)
    assert store.flush(60)
    weather_turn, failed_turn, adding_turn = [root.id for root in handler.trace.roots]

    def found(text, **filters):
        return [turn.id for turn in store.search(text, **filters)]

    assert found("reykjavik") == [weather_turn]  # a tool's input
    assert found("light breeze") == [weather_turn]  # a tool's output
    assert found("sunglasses") == [weather_turn]  # the streamed answer
    assert found("Kaboom zebra") == [failed_turn]  # an error
    assert found("explode") == [failed_turn]  # a name
    assert found("Reyk") == [weather_turn]  # the start of a word
    assert found("reykjavik kaboom") == []  # every word must be there
    assert found("scripted-model") == [adding_turn, failed_turn, weather_turn]  # the model, newest first
    assert found("scripted", status="failed") == [failed_turn]
    assert found("") == [adding_turn, failed_turn, weather_turn]
    failed_runs = [run for run in handler.trace.runs_of(failed_turn) if run.status == "failed"]
    assert store.list(status="failed")[0].errors == len(failed_runs) > 1  # the tool, its node, the graph


def test_list_filters_and_pages(store):
    handler = ChatStepCallbackHandler(store=store)
    for thread in ("a", "a", "b"):
        ask(handler, configurable={"thread_id": thread})
    stopping = ChatStepCallbackHandler(store=store)
    stopping.on_chain_start(
        {}, {"messages": []}, run_id="00000000-0000-0000-0000-00000000000a", name="Stopped"
    )
    stopping.stop()
    assert store.flush(60)
    one, two, three = [root.id for root in handler.trace.roots]
    stopped = stopping.trace.roots[0].id

    def ids(**filters):
        return [turn.id for turn in store.list(**filters)]

    assert ids() == [stopped, three, two, one]
    assert ids(thread_id="a") == [two, one]
    assert store.list(thread_id="b")[0].thread_id == "b"
    assert ids(status="stopped") == [stopped]
    assert ids(status=["success", "stopped"]) == [stopped, three, two, one]
    assert ids(tool="add") == [three, two, one]
    assert ids(tool="subtract") == []
    assert ids(model="scripted-model") == [three, two, one]
    start = store.load(two).roots[0].start_time
    assert ids(since=start) == [stopped, three, two]
    assert ids(until=start) == [one]
    assert ids(limit=2) + ids(limit=2, offset=2) == ids()
    assert ids(limit=2, offset=4) == []
    totals = store.totals(thread_id="a")
    assert totals["turns"] == 2
    assert totals["total_tokens"] == sum(turn.total_tokens for turn in store.list(thread_id="a"))
    with pytest.raises(ValueError, match="limit"):
        store.list(limit=0)


def test_failed_stopped_and_paused_turns_are_saved_with_their_status(store):
    class State(TypedDict):
        answer: str

    def ask_user(state: State) -> State:
        return {"answer": interrupt({"question": "Proceed?"})}

    graph = StateGraph(State).add_node("ask_user", ask_user)
    graph = graph.add_edge(START, "ask_user").add_edge("ask_user", END).compile(checkpointer=InMemorySaver())
    handler = ChatStepCallbackHandler(store=store)
    graph.invoke({"answer": ""}, config={"callbacks": [handler], "configurable": {"thread_id": "t"}})
    failing = ScriptedChatModel(responses=[])  # no reply scripted: the model call fails
    with pytest.raises(Exception):  # noqa: B017 - whatever the scripted model raises
        ask(handler, create_agent(failing, [add]))
    assert store.flush(60)
    statuses = {turn.id: turn.status for turn in store.list()}
    assert list(statuses.values()) == ["failed", "paused"]
    paused = handler.trace.roots[0].id
    assert [run.status for run in store.load(paused).runs] == [
        run.status for run in handler.trace.runs_of(paused)
    ]
    assert [turn.id for turn in store.search("proceed")] == [paused]  # what it asked


def test_secrets_are_redacted_in_the_store(store):
    secret = "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0k1L2"
    handler = ChatStepCallbackHandler(store=store)
    ask(handler, question={"messages": [("user", f"my key is {secret}")]}, metadata={"api_key": "hunter2"})
    assert store.flush(60)
    (turn,) = store.list()
    saved = str(store.load(turn.id).to_dict())
    assert secret not in saved and "hunter2" not in saved and "[redacted]" in saved
    assert secret not in turn.preview
    assert store.search("a1B2c3D4e5F6g7H8i9J0k1L2") == [] and store.search("hunter2") == []


def test_delete_and_retention(target):
    store = TraceStore(target, max_turns=2)
    handler = ChatStepCallbackHandler(store=store)
    for _ in range(3):
        ask(handler)
    assert store.flush(60)
    ids = [root.id for root in handler.trace.roots]
    assert [turn.id for turn in store.list()] == ids[:0:-1]  # the oldest went when the third came
    assert store.search("add") and store.delete(ids[2], "no-such-turn") == 1
    assert [turn.id for turn in store.list()] == [ids[1]]
    assert [turn.id for turn in store.search("add")] == [ids[1]]
    with pytest.raises(KeyError, match="no-such-turn"):
        store.load("no-such-turn")
    store.close()

    old = handler.trace.runs_of(ids[1])[0].to_dict()
    aged = TraceStore(target, max_age=3600)
    aged.save(
        Trace.from_dict(
            {**Trace().to_dict(), "runs": [{**old, "id": "old", "root_id": "old", "start_time": 1.0}]}
        )
    )
    assert [turn.id for turn in aged.list()] == [ids[1]]  # saved, then pruned as too old
    aged.max_age = None
    aged.save(
        Trace.from_dict(
            {**Trace().to_dict(), "runs": [{**old, "id": "old", "root_id": "old", "start_time": 1.0}]}
        )
    )
    aged.max_age = 3600
    assert aged.prune() == 1 and len(aged) == 1
    aged.close()


def test_turns_that_started_at_the_same_time_are_all_kept(store):
    handler = ChatStepCallbackHandler()
    for _ in range(3):
        ask(handler)
    runs = [run.to_dict() for run in handler.trace.runs]
    for run in runs:
        run["start_time"] = 1_800_000_000.0  # every turn started in the same microsecond
    store.save(Trace.from_dict({**Trace().to_dict(), "runs": runs}))
    assert len(store) == 3
    assert {turn.id for turn in store.list()} == {root.id for root in handler.trace.roots}
    assert len(store.list(since=1_800_000_000.0)) == 3


def test_many_threads_and_processes_write_to_one_store(target):
    store = TraceStore(target)
    handlers = [ChatStepCallbackHandler(store=store) for _ in range(4)]

    def chat(handler):
        for _ in range(5):
            ask(handler)

    threads = [threading.Thread(target=chat, args=(handler,)) for handler in handlers]
    script = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from conftest import QUESTION, adding_agent\n"
        "from panel_langchain_steps import ChatStepCallbackHandler, TraceStore\n"
        "handler = ChatStepCallbackHandler(store=TraceStore(sys.argv[1]))\n"
        "for _ in range(5):\n"
        "    adding_agent().invoke(QUESTION, config={'callbacks': [handler]})\n"
    )  # each process exits right after its last turn: its pending turns are written at exit
    processes = [subprocess.Popen([sys.executable, "-c", script, target], cwd=ROOT) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [process.wait(120) for process in processes] == [0, 0, 0]
    assert store.flush(60)
    assert len(store) == 4 * 5 + 3 * 5
    assert len({turn.id for turn in store.list(limit=100)}) == 35
    store.close()


async def test_an_async_chat_saves_its_turns(store):
    handler = ChatStepCallbackHandler(store=store)
    await asyncio.gather(
        *(adding_agent().ainvoke(QUESTION, config={"callbacks": [handler]}) for _ in range(3))
    )
    assert await asyncio.to_thread(store.flush, 60)
    assert len(store.list()) == 3


def test_a_locked_database_is_retried_and_the_chat_waits_for_nothing(tmp_path, caplog):
    path = tmp_path / "traces.db"
    store = TraceStore(path, timeout=0.5)
    handler = ChatStepCallbackHandler(store=store)
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    ask(handler)  # the turn ends while the database is locked
    assert locker.execute("SELECT count(*) FROM turns").fetchone() == (0,)
    locker.execute("COMMIT")  # released within the retries: the turn is saved
    assert store.flush(60)
    assert len(store) == 1

    locker.execute("BEGIN EXCLUSIVE")
    with caplog.at_level(logging.WARNING, "panel_langchain_steps"):
        ask(handler)
        assert store.flush(60)
        ask(handler)
        assert store.flush(60)
    locker.execute("COMMIT")
    warnings = [record.getMessage() for record in caplog.records if record.name == "panel_langchain_steps"]
    assert len(warnings) == 1, warnings  # one line, not one per turn
    assert f"trace store sqlite:///{path}: could not save after 3 tries: database is locked" in warnings[0]
    assert "\n" not in warnings[0]
    ask(handler)  # the store works again
    assert store.flush(60)
    assert len(store) == 2
    store.close()


def test_an_unreachable_server_is_reported_in_one_line(caplog):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{postgres.free_port()}/traces"
    store = TraceStore(url, timeout=1)  # a server is first reached when the store is used
    with pytest.raises(StoreError, match=r"could not read after 3 tries: .*127\.0\.0\.1") as error:
        store.list()
    assert "\n" not in str(error.value)
    handler = ChatStepCallbackHandler(store=store)
    with caplog.at_level(logging.WARNING, "panel_langchain_steps"):
        ask(handler)
        assert store.flush(60)
    assert handler.trace.roots[0].status == "success"  # the chat went on
    (warning,) = [record.getMessage() for record in caplog.records if record.name == "panel_langchain_steps"]
    assert f"trace store {url}: could not save after 3 tries" in warning


def test_files_that_are_not_stores_are_refused(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database")
    with pytest.raises(ValueError, match=f"{notes}: not a trace store"):
        TraceStore(notes)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE people (name TEXT)")
    with pytest.raises(ValueError, match=f"{other}: not a trace store .*people"):
        TraceStore(other)
    with pytest.raises(ValueError, match="is a directory"):
        TraceStore(tmp_path)
    with pytest.raises(ValueError, match="folder does not exist"):
        TraceStore(tmp_path / "missing" / "traces.db")
    with pytest.raises(ValueError, match="SQLite or Postgres"):
        TraceStore("mysql://user@host/traces")
    with pytest.raises(ValueError, match="max_turns must be a positive number"):
        TraceStore(tmp_path / "traces.db", max_turns=0)


def test_a_store_of_a_newer_version_is_refused_and_an_older_one_upgraded(tmp_path):
    path = tmp_path / "traces.db"
    TraceStore(path).close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT value FROM store_meta WHERE key = 'version'").fetchone() == (
            str(STORE_VERSION),
        )
        connection.execute("UPDATE store_meta SET value = '99' WHERE key = 'version'")
    with pytest.raises(ValueError, match=f"{path}: a trace store of version 99, made by a newer"):
        TraceStore(path)


def test_handlers_given_a_path_share_one_store(tmp_path):
    handler = ChatStepCallbackHandler(store=str(tmp_path / "traces.db"))
    other = ChatStepCallbackHandler(store=tmp_path / "traces.db")
    assert other.store is handler.store
    ask(handler)
    ask(other)
    assert handler.store.flush(60)
    roots = [handler.trace.roots[0].id, other.trace.roots[0].id]
    assert [turn.id for turn in TraceStore(tmp_path / "traces.db").list()] == roots[::-1]
