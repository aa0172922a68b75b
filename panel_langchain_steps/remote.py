"""Runs on a LangGraph server: the SDK's run stream, recorded as the handler records local runs.

`ChatStepCallbackHandler.follow` wraps the stream of ``client.runs.stream(...)``
(or ``join_stream``): each part is passed on unchanged, and what it says is
recorded first. With ``stream_mode="events"`` the server sends the
``astream_events`` of the run, so each event becomes the LangChain callback it
came from (``on_chain_start``, ``on_llm_new_token``, ``on_tool_end``, ...), with
the messages rebuilt from their JSON, and goes through the handler's own
callbacks: a remote run makes the same records, and the same steps, as the same
graph run in-process. An interrupt (``__interrupt__`` in the ``updates`` or
``values`` mode), an ``error`` part, a stream that ends before its run did and a
connection that is lost end the open runs through the handler's error callbacks
too, so they end the way a local run's do. A stream without the ``events`` mode
is recorded from what its other modes carry (`remote_modes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

from .capture import StopRun
from .remote_data import generation, llm_result, part_error, plain_text, remote_error, revive
from .trace import STOPPED

if TYPE_CHECKING:
    from .handler import ChatStepCallbackHandler
    from .remote_modes import ModesRecorder

#: The stream modes read when the stream has no ``events`` mode (``messages`` is ``messages-tuple``).
MODES = frozenset({"tasks", "debug", "updates", "messages", "custom"})

#: What the runs of a stream that ended before its run did say (in their titles).
ENDED_EARLY = "stopped: its stream ended before it did (cancelled on the server?)"
#: What the runs of a run cancelled on the server say (older servers send an ``error`` part for it).
CANCELLED = "stopped: cancelled on the server"
_SERVER_CANCELS = frozenset({"UserInterrupt", "CancelledError"})
#: What the open runs of a stream the app stopped reading say.
CLOSED = "stopped: the app stopped following its stream"


class Interrupt(NamedTuple):
    """A pending ``interrupt()`` of a remote run: its request (``value``) and its ``id``."""

    value: Any
    id: str


class ResumeCommand(dict):
    """A graph's input that resumes it (LangGraph's ``Command``, as the server's JSON): data, with
    the ``resume`` attribute a ``Command`` has, so the resumed run goes on in the paused turn's reply."""

    @property
    def resume(self) -> Any:
        return self.get("resume")


_COMMAND_KEYS = frozenset({"graph", "update", "resume", "goto"})


def follow(
    handler: ChatStepCallbackHandler, stream: Any, *, client: Any = None, thread_id: str | None = None
) -> Iterator[Any] | AsyncIterator[Any]:
    """The parts of ``stream``, unchanged and in order, each recorded in ``handler.trace`` first."""
    if inspect.iscoroutine(stream) or inspect.isawaitable(stream):
        raise TypeError(
            "follow() takes the run stream itself, e.g. handler.follow(client.runs.stream(...)); "
            f"got {type(stream).__name__} (an awaitable: a run from runs.create or runs.wait is not a stream)"
        )
    if client is not None and not callable(getattr(getattr(client, "runs", None), "cancel", None)):
        raise TypeError(
            f"client must be a LangGraph SDK client (get_client(url=...)), not {type(client).__name__}"
        )
    if thread_id is not None and not isinstance(thread_id, str):
        raise TypeError(f"thread_id must be a str, not {type(thread_id).__name__}")
    run = RemoteRun(handler, client, thread_id)
    if hasattr(stream, "__anext__"):
        return _follow_async(run, stream)
    if hasattr(stream, "__next__"):
        return _follow_sync(run, stream)
    raise TypeError(
        "follow() takes the run stream of a LangGraph SDK client (client.runs.stream(...) or "
        f"client.runs.join_stream(...)), an iterator of stream parts; got {type(stream).__name__}"
    )


def _follow_sync(run: RemoteRun, stream: Iterator[Any]) -> Iterator[Any]:
    try:
        with run.following():
            for part in stream:
                if not run.take(part):
                    break
                yield part
                if run.stopped:
                    break
    finally:
        _close(stream)


async def _follow_async(run: RemoteRun, stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
    try:
        with run.following(asyncio.get_running_loop()):
            async for part in stream:
                if not run.take(part):
                    break
                yield part
                if run.stopped:
                    break
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):  # a broken stream may fail to close: closed either way
                await aclose()


def _close(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close()


class RemoteRun:
    """One followed stream: what its parts say, turned into the handler's callbacks."""

    def __init__(self, handler: ChatStepCallbackHandler, client: Any, thread_id: str | None):
        self.handler = handler
        self.client = client
        self.thread_id = thread_id
        #: The server's id of the run (the stream's ``metadata`` part), and the last event id seen.
        self.run_id: str | None = None
        self.last_event_id: str | None = None
        self.stopped = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runs: dict[Any, None] = {}  # the runs this stream started, in order
        self._interrupts: set[str] = set()
        self._ids: dict[str, Any] = {}
        self._events = False  # the stream has the events mode: it alone says which runs there are
        self._modes: ModesRecorder | None = None
        self._closed = False
        self._cancelling = False

    # -- the stream's life -------------------------------------------------------

    @contextlib.contextmanager
    def following(self, loop: asyncio.AbstractEventLoop | None = None) -> Iterator[None]:
        """While the stream is read (on ``loop`` for an async one): ends what it leaves open."""
        self._loop = loop
        self.handler._followed.add(self)
        try:
            yield
        except GeneratorExit:
            self.close(note=CLOSED)
            raise
        except asyncio.CancelledError as error:
            # The app's task was cancelled (Panel's stop button cancels an async callback): so is the run.
            self.close(error)
            self.cancel()
            raise
        except Exception as error:
            self.close(error)
            raise
        finally:
            self.close()

    def take(self, part: Any) -> bool:
        """Record one part; False once the run was stopped (the part is not passed on)."""
        if self.stopped:
            if self.run_id is None:  # stopped before the server said which run: cancel it now
                with contextlib.suppress(Exception):
                    mode, _, data, _ = _split(part)
                    self.run_id = data.get("run_id") if mode == "metadata" else None
                    self.cancel()
            return False
        try:
            self._record(part)
        except StopRun:
            self.stop()
        except Exception as error:
            self.handler._report(None, "follow", error)
        return not self.stopped

    def close(self, error: BaseException | None = None, note: str = ENDED_EARLY) -> None:
        """The stream ended (``error``: how it broke): end what it left open, once.

        Runs still open when a stream ends without an error are stopped, and
        say why in ``note``: nothing more will come for them.
        """
        if self._closed:
            return
        self._closed = True
        self.handler._followed.discard(self)
        if self.stopped:
            return
        try:
            if error is not None:
                self._end(self.open_runs(), error)
            elif self._modes is not None and note == ENDED_EARLY:
                self._modes.finish()  # without events, nothing says the graph's run ended but the stream
            self._stop_open(note)
        except Exception as fault:
            self.handler._report(None, "follow", fault)

    def _stop_open(self, note: str) -> None:
        """Stop this stream's open runs, saying why: nothing more will come for them."""
        trace = self.handler.trace
        for run in self.open_runs():
            trace.end(run, STOPPED, note=note)

    def stop(self) -> None:
        """The user stopped the runs: cancel the run on the server, pass on no more parts."""
        if not self.stopped:
            self.stopped = True
            self.cancel()

    def cancel(self) -> None:
        """Cancel the run on the server (with a client and a thread id; else closing the stream must do)."""
        if self.client is None or self.thread_id is None or self.run_id is None or self._cancelling:
            return
        self._cancelling = True
        try:
            cancel = self.client.runs.cancel
            if inspect.iscoroutinefunction(cancel):
                if self._loop is not None and not self._loop.is_closed():
                    future = asyncio.run_coroutine_threadsafe(cancel(self.thread_id, self.run_id), self._loop)
                    future.add_done_callback(self._cancelled)
            else:
                threading.Thread(target=self._cancel_sync, args=(cancel,), daemon=True).start()
        except Exception as error:
            self.handler._report(None, "cancelling the remote run", error)

    def _cancel_sync(self, cancel: Any) -> None:
        try:
            cancel(self.thread_id, self.run_id)
        except Exception as error:
            self.handler._report(None, "cancelling the remote run", error)

    def _cancelled(self, future: Any) -> None:
        if not future.cancelled() and future.exception() is not None:
            self.handler._report(None, "cancelling the remote run", future.exception())

    # -- parts -------------------------------------------------------------------------

    def _record(self, part: Any) -> None:
        mode, namespace, data, event_id = _split(part)
        if event_id:
            self.last_event_id = event_id
        if mode == "events":
            self._events = True
            self._event(data)
            return
        if mode in ("updates", "values") and isinstance(data, dict) and "__interrupt__" in data:
            self._pause(data["__interrupt__"])
        if mode == "metadata":
            self.run_id = self.run_id or (data.get("run_id") if isinstance(data, dict) else None)
        elif mode == "error":
            data = data if isinstance(data, dict) else {"message": data}
            if data.get("error") in _SERVER_CANCELS:
                self._stop_open(CANCELLED)
            else:
                error = remote_error(data.get("error") or "RemoteError", str(data.get("message") or data))
                runs = self._path()
                if not runs and not self._runs:
                    # Failed before any run started (the server refused it): a step of its own says why.
                    runs = [self.handler.trace.live(self.modes().root())]
                self._end([run for run in runs if run is not None], error)
        elif not self._events and mode in MODES:
            self.modes().record(mode, namespace, data)

    def modes(self) -> ModesRecorder:
        """The recorder of the other modes' parts, for a stream without the ``events`` mode."""
        if self._modes is None:
            from .remote_modes import ModesRecorder

            self._modes = ModesRecorder(self)
        return self._modes

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("event") or ""
        data = event.get("data") or {}
        ids = {"run_id": self.key(event.get("run_id"))}
        parents = event.get("parent_ids")
        ids["parent_run_id"] = self.key(parents[-1]) if parents else None
        handler = self.handler
        if kind == "on_chat_model_stream":
            chunk = data.get("chunk")
            if plain_text(chunk):  # most tokens: the handler reads their text only
                handler.on_llm_new_token(chunk["content"], **ids)
            else:
                chunk = revive(chunk)
                handler.on_llm_new_token(getattr(chunk, "content", ""), chunk=generation(chunk), **ids)
            return
        if kind == "on_llm_stream":
            chunk = data.get("chunk")
            handler.on_llm_new_token(chunk.get("text", "") if isinstance(chunk, dict) else str(chunk), **ids)
            return
        described = {"name": event.get("name"), "tags": event.get("tags"), "metadata": event.get("metadata")}
        if kind.endswith("_start"):
            self.started(ids["run_id"])
        if kind in ("on_chain_start", "on_prompt_start", "on_parser_start"):
            run_type = kind[3:-6] if kind != "on_chain_start" else None
            inputs = revive(data.get("input"))
            if not parents and isinstance(inputs, dict) and inputs.keys() == _COMMAND_KEYS:
                inputs = ResumeCommand(inputs)
            handler.on_chain_start(None, inputs, run_type=run_type, **described, **ids)
        elif kind in ("on_chain_end", "on_prompt_end", "on_parser_end"):
            handler.on_chain_end(revive(data.get("output")), **ids)
        elif kind == "on_chat_model_start":
            messages = revive((data.get("input") or {}).get("messages") or [])
            handler.on_chat_model_start(None, messages, **described, **ids)
        elif kind == "on_llm_start":
            prompts = (data.get("input") or {}).get("prompts") or []
            handler.on_llm_start(None, prompts, **described, **ids)
        elif kind in ("on_chat_model_end", "on_llm_end"):
            handler.on_llm_end(llm_result(data.get("output")), **ids)
        elif kind == "on_tool_start":
            inputs = data.get("input")
            handler.on_tool_start(None, str(inputs), inputs=inputs, **described, **ids)
        elif kind == "on_tool_end":
            handler.on_tool_end(revive(data.get("output")), **ids)
        elif kind == "on_tool_error":
            handler.on_tool_error(part_error(data.get("error")), **ids)
        elif kind == "on_retriever_start":
            handler.on_retriever_start(None, (data.get("input") or {}).get("query"), **described, **ids)
        elif kind == "on_retriever_end":
            handler.on_retriever_end(revive(data.get("output")) or [], **ids)
        elif kind == "on_custom_event":
            handler.on_custom_event(event.get("name"), event.get("data"), **ids)

    def key(self, value: Any) -> Any:
        """A run id as LangChain gives it (a UUID), parsed once per run."""
        found = self._ids.get(value)
        if found is None:
            try:
                found = UUID(str(value))
            except ValueError:
                found = value
            if isinstance(value, str):
                self._ids[value] = found
        return found

    def _pause(self, found: Any) -> None:
        """The graph paused at ``interrupt()``: its newest open step waits for the decision."""
        # As in-process: the runs that raised the interrupt pause, the graph's own run goes on to its end.
        path = [run for run in self._path() if run.parent_id is not None]
        if not path and self._modes is not None:
            path = [self._modes.paused_step()]  # no open node to pause: one that stands for it
        self.pause(path, found)

    def pause(self, runs: list[Any], found: Any) -> None:
        """End ``runs`` paused at the interrupts ``found`` (``[{"value", "id"}]``) not seen before."""
        interrupts = tuple(
            Interrupt(item.get("value"), str(item.get("id")))
            for item in found or []
            if isinstance(item, dict) and str(item.get("id")) not in self._interrupts
        )
        if not interrupts:
            return  # told again (by a subgraph and its parent, or by a task and the updates)
        self._interrupts.update(interrupt.id for interrupt in interrupts)
        self._end(runs, remote_error("GraphInterrupt", interrupts))

    def started(self, key: Any) -> None:
        """This stream started the run ``key``."""
        self._runs[key] = None

    # -- ending runs ---------------------------------------------------------------------

    def open_runs(self) -> list[Any]:
        """This stream's runs still open, newest first."""
        trace = self.handler.trace
        return [run for key in reversed(self._runs) if (run := trace.live(key)) is not None]

    def _path(self) -> list[Any]:
        """The newest open run and its open ancestors, innermost first: where an error was raised."""
        runs = self.open_runs()
        if not runs:
            return []
        newest = runs[0]
        return [newest, *(run for run in self.handler.trace.ancestors(newest) if not run.ended)]

    def _end(self, runs: list[Any], error: BaseException) -> None:
        """End ``runs`` (innermost first) with ``error``, through the handler's error callbacks."""
        for run in runs:
            getattr(self.handler, f"on_{run.kind}_error")(error, run_id=run.key)


def _split(part: Any) -> tuple[str, str, Any, str | None]:
    """A part's stream mode, subgraph namespace (``node:task_id|...``), data and event id.

    Both shapes of the SDK's parts: ``StreamPart(event, data, id)``, whose event
    is ``mode|namespace`` for a subgraph's parts, and the ``version="v2"`` dicts
    ``{"type", "ns", "data"}``.
    """
    if isinstance(part, dict):
        namespace = part.get("ns") or []
        namespace = "|".join(namespace) if isinstance(namespace, list | tuple) else str(namespace)
        return str(part.get("type") or ""), namespace, part.get("data"), part.get("id")
    event = getattr(part, "event", None)
    if not isinstance(event, str):
        raise TypeError(f"not a LangGraph stream part: {type(part).__name__}")
    mode, _, namespace = event.partition("|")
    return mode, namespace, getattr(part, "data", None), getattr(part, "id", None)
