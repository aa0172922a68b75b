"""Runs on a real LangGraph server (``langgraph dev``, started here), followed with ``handler.follow``:
the same steps as the same graphs run in-process, errors, stop, approval; no mock of the server or
the SDK."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import re
import shutil
import threading
from pathlib import Path

import httpx
import pytest
import remote_graphs
from conftest import WAIT_SECONDS, until
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.schema import StreamPart
from panel.chat import ChatInterface
from test_approval import click, reviews, shown_buttons
from test_examples import EXAMPLES, ask, load, open_session, titles

from panel_langchain_steps import ChatStepCallbackHandler, replay
from panel_langchain_steps.langgraph_dev import langgraph_dev
from panel_langchain_steps.testing import answer_text, iter_steps, outline, step_tree

QUESTION = "What is 1 + 2?"
MODES = ["events", "updates"]
# Steps compared with others are drawn at the end, not while the run goes on (the first tick is at its
# start, the next 5 s later): a step drawn mid-run as its node's one action keeps that title
# ("math › model") once the node gets a second one (a steps view bug, not the remote recording's), so
# what a mid-run tick drew would depend on timing.
AT_THE_END = {"flush_interval": 5.0}


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The URL of a `langgraph dev` server serving `remote_graphs` (offline, tracing off)."""
    directory = tmp_path_factory.mktemp("langgraph-project")
    shutil.copy(Path(remote_graphs.__file__), directory / "graphs.py")
    graphs = {name: f"./graphs.py:{name}" for name in remote_graphs.GRAPHS}
    (directory / "langgraph.json").write_text(json.dumps({"dependencies": ["."], "graphs": graphs}))
    try:
        with langgraph_dev(directory) as running:
            yield running.url
    except RuntimeError as error:
        pytest.fail(f"the LangGraph server for the remote tests did not start: {error}")


def start(client, thread_id, graph="math_agent", **options):
    """The stream of a new run of ``graph`` on the server (the question as input unless told)."""
    options.setdefault("input", {"messages": [{"role": "user", "content": QUESTION}]})
    return client.runs.stream(thread_id, graph, stream_mode=MODES, stream_subgraphs=True, **options)


async def remote_run(server, handler, graph, **options):
    """Run ``graph`` on the server, following its stream with ``handler``; the parts and the thread id."""
    client = get_client(url=server)
    thread_id = (await client.threads.create())["thread_id"]
    stream = start(client, thread_id, graph, **options)
    parts = [part async for part in handler.follow(stream, client=client, thread_id=thread_id)]
    return parts, thread_id


_TIMING = re.compile(r"\d[\d,.]* ?(?:ms|s|tokens/s)\b")


def shown(handler, layout=None) -> list[dict]:
    """What the steps show (in ``layout``, else the handler's), timings left out."""
    handler.flush()

    def strip(steps):
        return [
            {
                "title": _TIMING.sub("…", step["title"]),
                "status": step["status"],
                "text": _TIMING.sub("…", step["text"]),
                "steps": strip(step["steps"]),
            }
            for step in steps
        ]

    return strip(step_tree(handler.layout if layout is None else layout))


def records(handler) -> list[tuple]:
    """The trace's runs as (depth, kind, name, status, tool input, tool output)."""
    trace = handler.trace
    return [
        (
            len(list(trace.ancestors(run))),
            run.kind,
            run.name,
            run.status,
            run.inputs if run.kind == "tool" else None,
            run.outputs if run.kind == "tool" else None,
        )
        for run in trace.runs
    ]


# -- the same steps as in-process ------------------------------------------------------------


@pytest.mark.parametrize("graph", ["math_agent", "team"])
@pytest.mark.parametrize("verbosity", ["steps", "all"])
async def test_a_remote_run_shows_the_same_steps_as_in_process(server, graph, verbosity):
    local = ChatStepCallbackHandler(verbosity=verbosity, **AT_THE_END)
    # Streamed, as the server runs it (with astream_events), so that the model streams its tokens.
    async for _ in remote_graphs.GRAPHS[graph].astream_events(
        {"messages": [("user", QUESTION)]}, config={"callbacks": [local]}, version="v2"
    ):
        pass
    remote = ChatStepCallbackHandler(verbosity=verbosity, **AT_THE_END)
    await remote_run(server, remote, graph)

    expected = shown(local)
    assert expected, "the in-process run shows steps"
    assert shown(remote) == expected
    steps = list(iter_steps(expected))
    assert any(step["title"].startswith("Tool add") for step in steps)  # a tool step, with its input...
    assert any('"a": 1' in step["text"] for step in steps)
    if graph == "team":  # and a node's progress
        assert any("asking the math agent" in step["text"] for step in steps)
    assert [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in records(remote) if r[1] != "chain"] == [
        r for r in records(local) if r[1] != "chain"
    ]


@pytest.mark.skipif(
    "version" not in inspect.signature(get_client(url="http://127.0.0.1:9").runs.stream).parameters,
    reason="this langgraph-sdk has no version='v2' stream format (0.4 has)",
)
async def test_the_sdks_v2_stream_format_shows_the_same_steps(server):
    client = get_client(url=server)
    handlers = []
    for version in ("v1", "v2"):
        thread_id = (await client.threads.create())["thread_id"]
        handlers.append(ChatStepCallbackHandler(**AT_THE_END))
        stream = start(client, thread_id, "team", version=version)
        parts = [part async for part in handlers[-1].follow(stream)]
        assert isinstance(parts[0], dict) == (version == "v2")
    assert shown(handlers[1]) == shown(handlers[0])
    assert len(list(iter_steps(shown(handlers[1])))) > 3


async def test_the_parts_pass_through_unchanged_and_in_order(server):
    client = get_client(url=server)
    thread_id = (await client.threads.create())["thread_id"]
    handler = ChatStepCallbackHandler()
    stream = start(client, thread_id)
    parts = [part async for part in handler.follow(stream)]
    assert parts[0].event == "metadata"
    kinds = [part.data["event"] for part in parts if part.event == "events"]
    assert kinds[0] == "on_chain_start" and kinds[-1] == "on_chain_end"
    assert "on_chat_model_stream" in kinds and "on_tool_end" in kinds
    run_id = parts[0].data["run_id"]
    (root,) = handler.trace.roots
    assert root.id == run_id and root.status == "success"
    assert handler.open_runs == 0


async def test_tokens_show_while_the_remote_model_streams(server):
    """Each token is recorded when its part arrives, before the next part is read."""
    handler = ChatStepCallbackHandler()
    client = get_client(url=server)
    thread_id = (await client.threads.create())["thread_id"]
    stream = start(client, thread_id)
    seen = []
    async for part in handler.follow(stream):
        if part.event == "events" and part.data["event"] == "on_chat_model_stream":
            run = handler.trace.get(part.data["run_id"])
            seen.append(run.text_of("text"))
    # The text grows part by part (the end of a word may wait for the next token: it could be a secret).
    assert seen[:4] == ["", "", "Let ", "Let me "]


def test_a_sync_client_stream_is_followed_with_a_sync_iterator(server):
    client = get_sync_client(url=server)
    thread_id = client.threads.create()["thread_id"]
    handler = ChatStepCallbackHandler()
    stream = start(client, thread_id)
    followed = handler.follow(stream, client=client, thread_id=thread_id)
    assert not hasattr(followed, "__anext__")
    parts = list(followed)
    assert parts[0].event == "metadata" and len(parts) > 10
    handler.flush()
    steps = {step["title"].split(" · ")[0]: step for step in iter_steps(step_tree(handler.layout))}
    assert steps["Tool add"]["status"] == "success" and "**Output**\n\n3" in steps["Tool add"]["text"]
    assert handler.open_runs == 0


async def test_a_chat_reply_of_a_remote_run_has_its_answer(server):
    async def respond(contents, user, instance):
        await remote_run(server, handler, "math_agent")

    chat = ChatInterface(callback=respond)
    handler = ChatStepCallbackHandler(chat)
    chat.send(QUESTION)
    await until(lambda: len(chat.objects) == 2 and not chat.disabled, "the reply")
    handler.flush()
    reply = chat.objects[-1]
    assert answer_text(reply) == "The **sum** is 3."
    card = reply.object.objects[0]
    assert card.title.startswith("Steps · ") and "1 tool call, 2 model calls" in card.title


# -- the other stream modes ------------------------------------------------------------------------


async def followed(server, graph, modes, handler=None):
    """A handler that followed a run of ``graph`` streamed in ``modes`` (with subgraphs)."""
    client = get_client(url=server)
    thread_id = (await client.threads.create())["thread_id"]
    handler = handler or ChatStepCallbackHandler(**AT_THE_END)
    stream = client.runs.stream(
        thread_id,
        graph,
        input={"messages": [{"role": "user", "content": QUESTION}]},
        stream_mode=modes,
        stream_subgraphs=True,
    )
    async for _ in handler.follow(stream, client=client, thread_id=thread_id):
        pass
    handler.flush()
    return handler


MODEL, TOOL = "Model scripted-model", "Tool add"


@pytest.mark.parametrize(
    ("modes", "expected"),
    [
        # Each node once it has run; a subgraph's nodes come before the node that ran it.
        (["updates"], ["LangGraph", "  plan", "  model", "  tools", "  model", "  math"]),
        # Each node from its start to its result, nested in the subgraph that ran it.
        (["debug"], ["LangGraph", "  plan", "  math", "    model", "    tools", "    model"]),
        # ... with each model call and tool result (a node doing one action shows as that action).
        (
            ["tasks", "messages-tuple"],
            ["LangGraph", "  plan", "  math", f"    {MODEL}", f"    {TOOL}", f"    {MODEL}"],
        ),
        # Models and tools from the messages, the other nodes from the updates; progress.
        (
            ["updates", "messages-tuple", "custom"],
            ["LangGraph", "  plan", f"  {MODEL}", f"  {TOOL}", f"  {MODEL}", "  math"],
        ),
    ],
)
async def test_the_other_stream_modes_show_what_they_carry(server, modes, expected):
    handler = await followed(server, "team", modes)
    # The steps drawn once from the finished record: nodes that are leaves here would otherwise keep the
    # title a mid-run tick gave them while they stood for their node's one action (see AT_THE_END).
    redrawn = ChatStepCallbackHandler()
    replay(handler.trace, redrawn.trace, speed=None)
    redrawn.flush()
    assert outline(step_tree(redrawn.layout)) == expected
    tree = step_tree(handler.layout)
    steps = list(iter_steps(tree))
    assert all(step["status"] == "success" for step in steps)
    assert handler.open_runs == 0
    if "messages-tuple" in modes:  # the model's text and tool call as streamed, the tool's input and output
        model = next(step for step in steps if step["title"].startswith(MODEL))
        assert "Let me add." in model["text"] and "**Calls add**" in model["text"]
        tool = next(step for step in steps if step["title"].startswith(TOOL))
        assert '"a": 1' in tool["text"] and "**Output**\n\n3" in tool["text"]
    if "custom" in modes:
        assert "asking the math agent" in tree[0]["text"]


async def test_with_the_events_mode_the_other_modes_add_nothing(server):
    every = ["events", "updates", "messages-tuple", "tasks", "debug", "custom", "values"]
    assert shown(await followed(server, "team", every)) == shown(await followed(server, "team", MODES))


async def test_a_node_that_fails_fails_in_the_tasks_mode(server):
    handler = await followed(server, "failing_agent", ["tasks"])
    tree = step_tree(handler.layout)
    assert outline(tree) == ["LangGraph", "  model"]
    assert [step["status"] for step in iter_steps(tree)] == ["failed", "failed"]
    assert "**ValueError**: the model is down" in tree[0]["steps"][0]["text"]


@pytest.mark.parametrize("modes", [["updates"], ["tasks"]])
async def test_an_interrupt_asks_for_the_decision_in_the_other_modes(server, modes):
    chat = ChatInterface()
    handler = await followed(server, "approval_agent", modes, ChatStepCallbackHandler(chat, resume=print))
    (review,) = reviews(chat.objects[-1].object)
    assert shown_buttons(review) == ["Approve", "Edit", "Reject"]
    assert handler.open_runs == 0


# -- joining and rejoining a run's stream -------------------------------------------------------------


async def test_a_background_run_followed_with_join_stream_shows_the_same_steps(server):
    direct = await followed(server, "team", MODES)
    client = get_client(url=server)
    thread_id = (await client.threads.create())["thread_id"]
    run = await client.runs.create(
        thread_id,
        "team",
        input={"messages": [{"role": "user", "content": QUESTION}]},
        stream_mode=MODES,
        stream_subgraphs=True,
        stream_resumable=True,
    )
    joined = ChatStepCallbackHandler(**AT_THE_END)
    stream = client.runs.join_stream(thread_id, run["run_id"], last_event_id="0")  # from its start
    async for _ in joined.follow(stream, client=client, thread_id=thread_id):
        pass
    assert shown(joined) == shown(direct)
    assert joined.open_runs == 0


class Proxy:
    """A TCP proxy in front of the server whose connections can be cut (a dropped connection)."""

    def __init__(self, upstream: str):
        self.host, _, port = upstream.removeprefix("http://").partition(":")
        self.port = int(port)
        self.connections: list[asyncio.StreamWriter] = []
        self.pipes: list[asyncio.Task] = []
        self.opened = 0

    async def __aenter__(self) -> Proxy:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        self.cut()
        if self.pipes:
            await asyncio.wait(self.pipes, timeout=WAIT_SECONDS)
        self.server.close()

    async def _pipe(self, reader, writer) -> None:
        self.pipes.append(asyncio.current_task())
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self.connections += [writer, up_writer]
        self.opened += 1

        async def copy(source, target):
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    target.write(data)
                    await target.drain()
                target.close()

        with contextlib.suppress(OSError):
            await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))

    def cut(self) -> None:
        for writer in self.connections:
            writer.transport.abort()
        self.connections.clear()


@pytest.mark.skipif(
    not hasattr(StreamPart, "id"),
    reason="this langgraph-sdk (0.2) gives stream parts no event ids: a dropped stream cannot resume "
    "where it stopped (0.4 resumes it itself)",
)
async def test_a_dropped_connection_resumes_without_repeating_a_step(server):
    uncut = ChatStepCallbackHandler(**AT_THE_END)
    handler = ChatStepCallbackHandler(**AT_THE_END)
    async with Proxy(server) as proxy:
        client = get_client(url=proxy.url)
        received = []
        for following, cut in ((uncut, False), (handler, True)):
            thread_id = (await client.threads.create())["thread_id"]
            stream = start(client, thread_id, "slow_math_agent", stream_resumable=True)
            parts = []
            async for part in following.follow(stream, client=client, thread_id=thread_id):
                parts.append(what(part))
                if cut and part.event.startswith("events") and part.data["event"] == "on_tool_start":
                    # The connection drops while the tool runs (for half a second: the server sends nothing
                    # then); the SDK rejoins the stream after the last event id it received.
                    proxy.cut()
            received.append(parts)
    assert proxy.opened == 2  # the one connection kept alive, and the SDK's new one after the cut
    assert received[1] == received[0]  # every part once, in order
    assert shown(handler) == shown(uncut)
    assert handler.open_runs == 0


def what(part) -> tuple:
    """What a part says, without the ids and times that differ from run to run."""
    data = part.data
    if part.event.startswith("events"):
        chunk = data.get("data", {}).get("chunk")
        content = chunk.get("content") if isinstance(chunk, dict) else None
        return (part.event.partition("|")[0], data["event"], data["name"], content)
    return (part.event.partition("|")[0],)


# -- bad input, errors, runs that end early ---------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "says"),
    [
        ([], "an iterator of stream parts; got list"),
        ({"event": "events"}, "got dict"),
        ("events", "got str"),
        (None, "got NoneType"),
    ],
)
def test_something_that_is_not_a_stream_is_refused(stream, says):
    with pytest.raises(TypeError, match=re.escape(says)):
        ChatStepCallbackHandler().follow(stream)


async def test_an_awaitable_is_refused_with_what_to_pass_instead(server):
    client = get_client(url=server)
    created = client.threads.create()
    with pytest.raises(TypeError, match=r"takes the run stream itself.*got coroutine"):
        ChatStepCallbackHandler().follow(created)
    await created


def test_a_client_and_a_thread_id_are_checked():
    handler = ChatStepCallbackHandler()
    with pytest.raises(TypeError, match="client must be a LangGraph SDK client"):
        handler.follow(iter([]), client="http://localhost:2024")
    with pytest.raises(TypeError, match="thread_id must be a str, not int"):
        handler.follow(iter([]), thread_id=7)


def test_parts_the_handler_cannot_read_pass_through_and_are_logged(caplog):
    parts = [
        StreamPart("metadata", {"run_id": "not-a-uuid"}),
        StreamPart("events", {"event": "on_chain_start", "run_id": None, "data": 3}),
        StreamPart("events", "not a dict"),
        "not a part",
        StreamPart("updates", {"__interrupt__": "nonsense"}),
    ]
    handler = ChatStepCallbackHandler()
    with caplog.at_level("WARNING", logger="panel_langchain_steps"):
        assert list(handler.follow(iter(parts))) == parts
    assert "follow failed" in caplog.text
    assert handler.open_runs == 0


def test_an_error_before_any_run_started_gets_a_failed_step_saying_why():
    # What a server sends for a run it refused (parts as the SDK gives them).
    parts = [
        StreamPart("metadata", {"run_id": "01a24949-880c-758e-947b-a13cbc848acc", "attempt": 1}),
        StreamPart("error", {"error": "ValueError", "message": "Thread is busy"}),
    ]
    handler = ChatStepCallbackHandler()
    assert list(handler.follow(iter(parts))) == parts
    handler.flush()
    (step,) = step_tree(handler.layout)
    assert step["title"].startswith("LangGraph · failed: ValueError")
    assert "**ValueError**: Thread is busy" in step["text"]
    assert handler.open_runs == 0


async def test_an_error_part_fails_the_steps_as_the_error_does_in_process(server):
    local = ChatStepCallbackHandler(**AT_THE_END)
    with pytest.raises(ValueError, match="the model is down"):
        async for _ in remote_graphs.failing_agent.astream_events(
            {"messages": [("user", QUESTION)]}, config={"callbacks": [local]}, version="v2"
        ):
            pass
    remote = ChatStepCallbackHandler(**AT_THE_END)
    parts, _ = await remote_run(server, remote, "failing_agent")

    assert parts[-1].event == "error"  # passed on, not raised: the SDK does not raise it either
    assert shown(remote) == shown(local)
    steps = list(iter_steps(shown(remote)))
    assert steps and all(step["status"] == "failed" for step in steps)
    assert "**ValueError**: the model is down" in steps[-1]["text"]
    assert remote.open_runs == 0


async def test_a_run_cancelled_elsewhere_ends_its_turn_stopped_saying_why(server):
    client = get_client(url=server)
    thread_id = (await client.threads.create())["thread_id"]
    handler = ChatStepCallbackHandler()
    run_id = None
    async for part in handler.follow(start(client, thread_id, "waiting_agent")):
        if part.event == "metadata":
            run_id = part.data["run_id"]
        if part.event == "events" and part.data["event"] == "on_tool_start":
            await client.runs.cancel(thread_id, run_id)  # another client: say, an admin
    assert (await client.runs.get(thread_id, run_id))["status"] == "interrupted"
    handler.flush()
    steps = {step["title"].split(" · ")[0]: step for step in iter_steps(step_tree(handler.layout))}
    assert steps["Tool wait"]["status"] == "failed"  # ChatStep's status for a stopped run
    # Newer servers end the stream; older ones send an error part ("UserInterrupt") first.
    assert re.search(r" · stopped: .*cancelled on the server", steps["Tool wait"]["title"])
    assert handler.open_runs == 0


def test_leaving_the_loop_early_stops_the_open_steps_saying_why(server):
    client = get_sync_client(url=server)
    thread_id = client.threads.create()["thread_id"]
    handler = ChatStepCallbackHandler()
    for part in handler.follow(start(client, thread_id, "waiting_agent")):
        if part.event == "metadata":
            run_id = part.data["run_id"]
        if part.event == "events" and part.data["event"] == "on_tool_start":
            break  # the follower is closed as the loop lets it go
    handler.flush()
    steps = {step["title"].split(" · ")[0]: step for step in iter_steps(step_tree(handler.layout))}
    assert steps["Tool wait"]["title"].endswith("· stopped: the app stopped following its stream")
    assert handler.open_runs == 0
    assert client.runs.get(thread_id, run_id)["status"] == "running"  # the server's run goes on
    client.runs.cancel(thread_id, run_id)


async def test_a_server_that_goes_away_mid_run_fails_the_turn_saying_why(tmp_path):
    shutil.copy(Path(remote_graphs.__file__), tmp_path / "graphs.py")
    graphs = {"waiting_agent": "./graphs.py:waiting_agent"}
    (tmp_path / "langgraph.json").write_text(json.dumps({"dependencies": ["."], "graphs": graphs}))
    handler = ChatStepCallbackHandler()
    with langgraph_dev(tmp_path) as running:
        client = get_client(url=running.url)
        thread_id = (await client.threads.create())["thread_id"]
        stream = start(client, thread_id, "waiting_agent", stream_resumable=True)
        with pytest.raises(httpx.HTTPError):  # raised as the SDK raises it (after its own retries)
            async for part in handler.follow(stream, client=client, thread_id=thread_id):
                if part.event == "events" and part.data["event"] == "on_tool_start":
                    running.kill()
    handler.flush()
    (root,) = step_tree(handler.layout)
    assert root["status"] == "failed"
    steps = {step["title"].split(" · ")[0]: step for step in iter_steps([root])}
    assert steps["Tool wait"]["status"] == "failed"
    assert "Error" in steps["Tool wait"]["text"]
    assert handler.open_runs == 0


async def server_status(client, thread_id, run_id, expected):
    """The run's status on the server once it is ``expected`` (a bounded wait)."""
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    status = None
    while asyncio.get_running_loop().time() < deadline:
        status = (await client.runs.get(thread_id, run_id))["status"]
        if status == expected:
            break
        await asyncio.sleep(0.1)
    return status


def tool_running(handler):
    return any(run.kind == "tool" and run.status == "running" for run in handler.trace.runs)


# -- stop -------------------------------------------------------------------------------------


async def test_the_stop_button_cancels_the_remote_run(server):
    client = get_client(url=server)
    thread_id = (await client.threads.create())["thread_id"]
    run_ids = []

    async def respond(contents, user, instance):
        stream = start(client, thread_id, "waiting_agent")
        async for part in handler.follow(stream, client=client, thread_id=thread_id):
            if part.event == "metadata":
                run_ids.append(part.data["run_id"])

    chat = ChatInterface(callback=respond)
    handler = ChatStepCallbackHandler(chat)
    chat.send("wait")
    await until(lambda: tool_running(handler), "the tool started on the server")
    chat.stop()  # what the stop button does
    await until(lambda: handler.open_runs == 0 and not chat.disabled, "the turn stopped")
    assert await server_status(client, thread_id, run_ids[0], "interrupted") == "interrupted"
    handler.flush()
    steps = {step["title"].split(" · ")[0]: step for step in iter_steps(step_tree(chat.objects[-1]))}
    assert "stopped after" in steps["Tool wait"]["title"]
    messages = (await client.threads.get_state(thread_id))["values"]["messages"]
    assert not any(message["type"] == "tool" for message in messages)  # the tool never returned


async def test_the_stop_button_cancels_a_remote_run_followed_in_a_worker_thread(server):
    client = get_sync_client(url=server)
    thread_id = client.threads.create()["thread_id"]
    run_ids = []
    finished = threading.Event()

    def respond(contents, user, instance):
        try:
            stream = start(client, thread_id, "waiting_agent")
            for part in handler.follow(stream, client=client, thread_id=thread_id):
                if part.event == "metadata":
                    run_ids.append(part.data["run_id"])
        finally:
            finished.set()

    chat = ChatInterface(callback=respond)
    handler = ChatStepCallbackHandler(chat)
    chat.send("wait")
    await until(lambda: tool_running(handler), "the tool started on the server")
    chat.stop()
    # The cancelled run's stream ends, and with it the loop in the worker thread.
    assert await asyncio.to_thread(finished.wait, WAIT_SECONDS), "the worker thread did not end"
    status = await server_status(get_client(url=server), thread_id, run_ids[0], "interrupted")
    assert status == "interrupted"
    assert handler.open_runs == 0


# -- human in the loop ------------------------------------------------------------------------------


async def test_a_remote_interrupt_asks_as_a_local_one_and_the_decision_resumes_it(server):
    local_agent = remote_graphs.make_approval_agent(InMemorySaver())
    config = {"configurable": {"thread_id": "local"}}

    async def run_locally(value):
        async for _ in local_agent.astream_events(value, config, version="v2"):
            pass

    async def resume_locally(value):
        await run_locally(Command(resume=value))

    local_chat = ChatInterface()
    local = ChatStepCallbackHandler(local_chat, resume=resume_locally, **AT_THE_END)
    config["callbacks"] = [local]
    await run_locally({"messages": [("user", QUESTION)]})

    client = get_client(url=server)
    thread_id = (await client.threads.create())["thread_id"]

    async def run_remotely(**options):
        stream = start(client, thread_id, "approval_agent", **options)
        async for _ in remote.follow(stream, client=client, thread_id=thread_id):
            pass

    async def resume_remotely(value):  # as an app talking to a server does
        await run_remotely(input=None, command={"resume": value})

    chat = ChatInterface()
    remote = ChatStepCallbackHandler(chat, resume=resume_remotely, **AT_THE_END)
    await run_remotely()

    remote.flush()
    reply = chat.objects[-1]
    assert shown(remote, reply) == shown(local, local_chat.objects[-1])
    (review,) = reviews(reply.object)
    assert shown_buttons(review) == ["Approve", "Edit", "Reject"]

    for handler, message in ((local, local_chat.objects[-1]), (remote, reply)):
        click(reviews(message.object)[0], "Approve")
        await until(
            lambda h=handler, m=message: (
                (h.flush() or answer_text(m)) == "The **sum** is 3." and not h.open_runs
            ),
            "the resumed run's end",
        )
    assert len(chat.objects) == 1  # the resumed run went on in the same reply
    assert shown(remote, reply) == shown(local, local_chat.objects[-1])
    steps = {step["title"].split(" · ")[0]: step for step in iter_steps(step_tree(reply))}
    assert steps["Tool add"]["status"] == "success"
    assert remote.open_runs == 0


# -- the example --------------------------------------------------------------------------------------


async def test_the_remote_agent_example_asks_before_sending_and_goes_on_in_the_same_reply(
    monkeypatch, tmp_path
):
    # The examples' langgraph.json as its docstring says to serve it, from a copy (the server keeps its
    # state in the project's directory).
    for source in [*EXAMPLES.glob("*.py"), EXAMPLES / "langgraph.json"]:
        shutil.copy(source, tmp_path / source.name)
    with langgraph_dev(tmp_path) as running:
        monkeypatch.setenv("LANGGRAPH_URL", running.url)
        session = open_session(load("remote_agent"))
        reply = await ask(session, "Email Bob about lunch")
        (review,) = reviews(reply.object)
        assert shown_buttons(review) == ["Approve", "Edit", "Reject"]
        assert any(title.startswith("Tool lookup_contact · bob · done") for title in titles(reply))

        click(review, "Approve")
        handler = session.handler
        await until(
            lambda: (handler.flush() or answer_text(reply)).startswith("Done") and handler.open_runs == 0,
            "the resumed run's answer",
        )
    assert answer_text(reply) == "Done: Email to bob@example.com sent."
    assert len(session.chat.objects) == 2  # the question and one reply
    assert any(title.startswith("Tool send_email") for title in titles(reply))
    assert session.handler.open_runs == 0
