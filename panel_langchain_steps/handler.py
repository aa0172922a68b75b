"""Event intake: the LangChain callback handler that records runs in a `Trace`.

Every callback goes through `_intake`: a stopped run is halted there, and a
fault in the handler is logged once and never reaches the user's run. A
callback only records what happened (`capture` reads LangChain's objects,
`Trace` keeps the data) and returns: it never renders. The `StepsView`
subscribed to the trace shows the steps on its own schedule.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Callable
from typing import Any
from uuid import UUID

import panel as pn
import param
from langchain_core.callbacks import BaseCallbackHandler
from panel.chat import ChatFeed
from panel.layout.base import ListLike
from panel.viewable import Viewer

from . import capture
from .capture import StopRun
from .options import StepOptions, ViewOptions
from .schedule import call_soon
from .steps_view import StepsView
from .store import TraceStore
from .store import shared as shared_store
from .trace import RUNNING, STOPPED, RunRecord, Trace

log = logging.getLogger("panel_langchain_steps")

_LOGGED_LIMIT = 256
#: How many stopped run ids are remembered to halt their late children.
_HALTED_LIMIT = 4096


def _intake(method: Callable[..., Any]) -> Callable[..., Any]:
    """Take a LangChain callback in: halt it if stopped, record it, contain any fault."""
    halts = method.__name__.endswith(("_start", "_new_token"))

    @functools.wraps(method)
    def wrapper(self: ChatStepCallbackHandler, *args: Any, **kwargs: Any) -> None:
        if halts and self._halted:
            self._check_halted(kwargs.get("run_id"), kwargs.get("parent_run_id"))
        try:
            method(self, *args, **kwargs)
        except Exception as error:
            self._contain(method.__name__, kwargs.get("run_id"), error)

    return wrapper


class ChatStepCallbackHandler(BaseCallbackHandler, StepOptions, Viewer):
    """Shows every step of a LangChain or LangGraph run as a live, nested `ChatStep`.

    Attach it to any runnable with ``config={"callbacks": [handler]}`` (or to
    the constructors of models, tools and agents). Each chain, tool, model and
    retriever run is recorded in ``handler.trace`` and gets a step inside its
    parent's step; tokens stream in; errors fail the step as
    ``context_exception`` says.

    ``target`` is where top-level steps go: a ``ChatFeed`` or
    ``ChatInterface`` (one reply message per turn), a ``ChatMessage``, any
    list-like layout such as a ``Column``, or ``None`` for a new ``Column``
    available as ``handler.layout``. The handler is a Panel `Viewer`: put it
    in a layout, or show it in a notebook, to show ``handler.layout``.

    ``user`` and ``avatar`` may be given positionally, and ``instance`` may
    name the target, as for Panel's former ``PanelCallbackHandler``.
    """

    store = param.ClassSelector(
        class_=TraceStore,
        default=None,
        constant=True,
        doc="""
        A `TraceStore` (or the path or URL of one, opened once per process and
        shared by the handlers given it) that keeps every turn: a turn
        is saved when it ends, fails, is stopped or pauses for a decision, by the
        store's writer thread, so the chat never waits for the disk. If the
        database stays locked or unreachable, one log line says so and the chat
        goes on.""",
    )

    # Called on the event loop's thread in async runs, in order, instead of in
    # an executor: each callback is short and must keep token order.
    run_inline = True

    def __init__(
        self,
        target: Any = None,
        user: str | None = None,
        avatar: Any = None,
        *,
        instance: Any = None,
        **params: Any,
    ):
        if instance is not None:
            if target is not None:
                raise TypeError("give the target once: as `target` (or the older name `instance`), not both")
            _deprecated("instance", "ChatStepCallbackHandler(chat) or target=chat")
            target = instance
        if "run_types" in params:
            _deprecated("run_types", "include_types")
            params["include_types"] = params.pop("run_types")
        if callable(params.get("title")):
            _deprecated("title=<function>", "title_function=<function>")
            params["title_function"] = params.pop("title")
        if isinstance(params.get("store"), str | os.PathLike):
            params["store"] = shared_store(params["store"])
        if user is not None:
            params["user"] = user
        if avatar is not None:
            params["avatar"] = avatar
        super().__init__(**params)
        self.trace = Trace()
        if self.store is not None:
            self.store.follow(self.trace, prices=lambda: self.prices)
        self._logged: set[tuple[str, str]] = set()
        self._halted: dict[Any, None] = {}
        self._followed: set[Any] = set()  # the remote runs `follow` is recording (remote.py)
        # A feed's stop button cancels its callback: stop the runs too.
        self._view = StepsView(
            self.trace, target, ViewOptions.of(self), report=self._report, stopped=self.stop
        )
        self.layout: ListLike = self._view.layout
        self._feed = target if isinstance(target, ChatFeed) else None
        document = pn.state.curdoc
        if document is not None and document.session_context is not None:
            document.on_session_destroyed(self._session_destroyed)

    def __panel__(self) -> ListLike:
        """The layout the steps are shown in (``handler.layout``)."""
        return self.layout

    @property
    def run_types(self) -> list[str]:
        """Deprecated: the older name of ``include_types``."""
        _deprecated("run_types", "include_types")
        return self.include_types

    @run_types.setter
    def run_types(self, value: list[str]) -> None:
        _deprecated("run_types", "include_types")
        self.include_types = value

    @param.depends(*StepOptions.NAMES, watch=True)
    def _configure(self) -> None:
        self._view.configure(ViewOptions.of(self))

    # -- LangChain callbacks ------------------------------------------------

    @_intake
    def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, **kwargs):
        self._start("chain", run_id, parent_run_id, serialized, kwargs, inputs)

    @_intake
    def on_chain_end(self, outputs, *, run_id, parent_run_id=None, **kwargs):
        self._end("chain", run_id, parent_run_id, outputs=outputs)

    @_intake
    def on_chain_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        self._fail("chain", run_id, parent_run_id, error)

    @_intake
    def on_tool_start(self, serialized, input_str, *, run_id, parent_run_id=None, inputs=None, **kwargs):
        self._start(
            "tool", run_id, parent_run_id, serialized, kwargs, inputs if inputs is not None else input_str
        )

    @_intake
    def on_tool_end(self, output, *, run_id, parent_run_id=None, **kwargs):
        self._end("tool", run_id, parent_run_id, outputs=capture.tool_output(output))

    @_intake
    def on_tool_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        self._fail("tool", run_id, parent_run_id, error)

    @_intake
    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, **kwargs):
        self._start("llm", run_id, parent_run_id, serialized, kwargs, {"messages": messages})

    @_intake
    def on_llm_start(self, serialized, prompts, *, run_id, parent_run_id=None, **kwargs):
        self._start("llm", run_id, parent_run_id, serialized, kwargs, {"prompts": prompts})

    @_intake
    def on_llm_new_token(self, token, *, chunk=None, run_id, parent_run_id=None, **kwargs):
        trace = self.trace
        run = trace.touch(run_id, parent_run_id, "llm")
        if run is None:
            return
        message = getattr(chunk, "message", None)
        if isinstance(token, str) and token:
            trace.write(run, "text", token)
        elif not isinstance(token, str):
            message = message or token
            for section, text in capture.text_pieces(message):
                trace.write(run, section, text)
        if message is not None:
            # Tool calls as the model writes them, and usage as the provider reports it (kept if stopped).
            calls = capture.streamed_tool_calls(run.tool_calls, message)
            if calls is not None:
                trace.update(run, tool_calls=calls)
            usage = capture.added_usage(run.usage, message)
            if usage is not None:
                trace.update(run, usage=usage)

    @_intake
    def on_llm_end(self, response, *, run_id, parent_run_id=None, **kwargs):
        run = self.trace.touch(run_id, parent_run_id, "llm")
        if run is None or run.ended:
            return
        message = capture.final_message(response)
        if not run.streamed:
            # Nothing streamed (a plain invoke): the text comes from the run's end.
            for section, text in capture.text_pieces(message):
                self.trace.write(run, section, text, streamed=False)
        self.trace.update(
            run, tool_calls=capture.tool_calls(message), usage=capture.usage(message) or run.usage
        )
        self.trace.end(run, "success", outputs=message)

    @_intake
    def on_llm_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        self._fail("llm", run_id, parent_run_id, error)

    @_intake
    def on_retriever_start(self, serialized, query, *, run_id, parent_run_id=None, **kwargs):
        self._start("retriever", run_id, parent_run_id, serialized, kwargs, query)

    @_intake
    def on_retriever_end(self, documents, *, run_id, parent_run_id=None, **kwargs):
        self._end("retriever", run_id, parent_run_id, outputs={"documents": capture.documents(documents)})

    @_intake
    def on_retriever_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        self._fail("retriever", run_id, parent_run_id, error)

    @_intake
    def on_custom_event(self, name, data, *, run_id, tags=None, metadata=None, **kwargs):
        run = self.trace.live(run_id)
        if run is not None:
            self.trace.event(run, str(name), data)

    # -- recording -------------------------------------------------------------

    def _start(
        self, kind: str, run_id: UUID, parent_run_id: UUID | None, serialized: Any, kwargs: dict, inputs: Any
    ) -> None:
        self.trace.start(
            run_id,
            parent_run_id,
            kind,
            name=capture.run_name(kind, serialized, kwargs),
            run_type=kwargs.get("run_type"),
            tags=kwargs.get("tags"),
            metadata=kwargs.get("metadata"),
            inputs=inputs,
            model=capture.model_name(kwargs) if kind == "llm" else None,
            resumes=parent_run_id is None and capture.resumes(inputs),
        )

    def _end(self, kind: str, run_id: UUID, parent_run_id: UUID | None, outputs: Any) -> None:
        run = self.trace.touch(run_id, parent_run_id, kind)
        if run is not None:
            self.trace.end(run, "success", outputs=outputs)

    def _fail(self, kind: str, run_id: UUID, parent_run_id: UUID | None, error: BaseException) -> None:
        run = self.trace.touch(run_id, parent_run_id, kind)
        if run is None:
            return
        status = capture.error_status(error)
        if status == "success":  # a hand-off
            self.trace.end(run, status, note="handed off")
        else:
            self.trace.end(run, status, exception=error, interrupts=capture.interrupts(error))

    # -- containment ---------------------------------------------------------

    def _contain(self, callback: str, run_id: UUID | None, error: Exception) -> None:
        run = self.trace.live(run_id) if run_id is not None else None
        self._report(run, callback, error)
        if run is not None and callback.endswith(("_end", "_error")):
            # Whatever failed while ending the run, it still ends.
            failed = run.error is not None or callback.endswith("_error")
            self.trace.end(run, "failed" if failed else "success", note="ended after a fault in the handler")

    def _report(self, run: RunRecord | None, where: str, error: BaseException) -> None:
        """Log a fault once per run name and place, with the run's name."""
        name = run.name if run is not None else "unknown run"
        key = (name, where)
        if key in self._logged:
            return
        if len(self._logged) < _LOGGED_LIMIT:
            self._logged.add(key)
        log.warning("panel-langchain-steps: %s failed for run %r: %r", where, name, error, exc_info=error)

    # -- stopping ------------------------------------------------------------

    def stop(self) -> None:
        """Stop every open run now.

        Its steps show that they were stopped at once, and a run still going
        (a sync run in a worker thread, which cancelling a task cannot reach)
        is halted with `StopRun` at its next callback event.
        """
        with self.trace.lock:
            for run in self.trace.runs:
                if run.status == RUNNING and run.key is not None:
                    self._halt(run.key)
            self.trace.end_all(STOPPED, exception=StopRun("stopped by the user"))
        for remote_run in list(self._followed):
            remote_run.stop()
        self._view.flush()

    def _check_halted(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        """Raise `StopRun` into a run that was stopped (or started below a stopped run)."""
        if run_id in self._halted or (parent_run_id is not None and parent_run_id in self._halted):
            self._halt(run_id)
            raise StopRun("stopped by the user")

    def _halt(self, run_id: Any) -> None:
        self._halted[run_id] = None
        if len(self._halted) > _HALTED_LIMIT:
            del self._halted[next(iter(self._halted))]

    def _session_destroyed(self, session_context: Any) -> None:
        """The page's session ended (its tab was closed): draw nothing more, and stop its runs."""
        self._view.close()
        # Bokeh calls this once the document is gone; by the next turn Panel has let go of its
        # models too, so stopping the feed's callback changes no document.
        call_soon(self._stop_session)

    def _stop_session(self) -> None:
        """Stop the runs as the stop button does: cancel the feed's callback (which then stops them)."""
        if self._feed is None or not self._feed.stop():
            self.stop()

    # -- remote runs (the stream's parts are turned into callbacks in remote.py) --

    def follow(self, stream: Any, *, client: Any = None, thread_id: str | None = None) -> Any:
        """Record a run on a LangGraph server from its SDK stream, as its callbacks would.

        ``stream`` is what ``client.runs.stream(...)`` or ``client.runs.join_stream(...)``
        returns (async or sync client); the same parts come back, in order, as an
        async iterator for an async stream and an iterator for a sync one, each
        recorded in ``handler.trace`` as it arrives. With ``stream_mode=["events",
        "updates"]`` the steps are those of the same graph run in-process, approval
        prompts included. Give the ``client`` and ``thread_id`` so that the stop
        button cancels the run on the server. See docs/remote.md.
        """
        from .remote import follow

        return follow(self, stream, client=client, thread_id=thread_id)

    # -- public --------------------------------------------------------------

    def flush(self) -> None:
        """Show every recorded change now (scripts and tests; a served page updates by itself).

        Called from another thread than a served page's event loop, the drawing is
        done on that loop, and waited for unless the session's lock is held (the
        caller may be the callback the loop waits for; see `StepsView.flush`).
        """
        self._view.flush()

    @property
    def always_allowed(self) -> set[str]:
        """Tools the user chose to "always allow" in this chat: their calls are approved without asking.

        Fill it to allow tools from the start, clear it to ask again.
        """
        return self._view.always_allowed

    @property
    def open_runs(self) -> int:
        """How many runs have started and not ended (zero once every turn has ended)."""
        return self.trace.open_runs


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"ChatStepCallbackHandler: {old} is deprecated; use {new}",
        DeprecationWarning,
        stacklevel=3,
    )
