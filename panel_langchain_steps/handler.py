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
from .compat import watch_callback_state
from .render import check_title
from .steps_view import StepsView
from .stream import soon
from .trace import RUNNING, STOPPED, RunRecord, Trace
from .visibility import RUN_TYPES, VERBOSITY

log = logging.getLogger("panel_langchain_steps")

_LOGGED_LIMIT = 256
#: How many stopped run ids are remembered to halt their late children.
_HALTED_LIMIT = 4096


class StopRun(BaseException):
    """Raised into a run the user stopped, at its next callback event.

    A ``BaseException`` (like ``KeyboardInterrupt``), so neither LangChain's
    callback dispatch nor a tool's error handling turns it into a result.
    """


class TitleTemplate(param.String):
    """A title template: a string whose fields are checked when it is set."""

    def _validate_value(self, val: Any, allow_None: bool) -> None:
        if callable(val):
            raise ValueError("title is a template string; a function goes in title_function")
        super()._validate_value(val, allow_None)
        check_title(val)


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


class ChatStepCallbackHandler(BaseCallbackHandler, Viewer):
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

    context_exception = param.Selector(
        default="summary",
        objects=["raise", "summary", "verbose", "ignore"],
        doc="""
        How a failed run's error is shown in its step: "summary" the exception
        type and message, "verbose" the full traceback, "ignore" no error
        text, "raise" like "summary". The step is "failed" in every mode, and
        the exception always reaches the caller unchanged.""",
    )

    verbosity = param.Selector(
        default="steps",
        objects=list(VERBOSITY),
        doc="""
        How much of each turn is shown, least to most: "answer" no steps (in
        a chat the reply is its answer; a failure or a pending decision still
        gets a step), "tools" tool and retriever calls only, "steps" the runs
        the options below choose, "all" every run (glue and every LangGraph
        node, at any depth). The ``exclude_*`` options hold at every level.
        It may change while the chat runs: every turn shown is redrawn from
        its record.""",
    )

    include_types = param.ListSelector(
        default=list(RUN_TYPES),
        objects=list(RUN_TYPES),
        doc="""
        Kinds of runs shown as steps: "chain" (LangGraph graphs and nodes,
        named chains), "tool", "llm" (chat models and LLMs), "retriever".""",
    )

    exclude_types = param.ListSelector(
        default=[],
        objects=list(RUN_TYPES),
        doc="""
        Kinds of runs never shown as steps (their children attach to the
        nearest shown ancestor).""",
    )

    include_names = param.List(
        default=[],
        item_type=str,
        doc="""
        Run names always shown, even glue or a kind not in ``run_types``.""",
    )

    exclude_names = param.List(
        default=[],
        item_type=str,
        doc="""
        Run names never shown; their children attach to the nearest shown ancestor.""",
    )

    include_tags = param.List(
        default=[],
        item_type=str,
        doc="""
        Runs with any of these tags are always shown.""",
    )

    exclude_tags = param.List(
        default=["langsmith:hidden"],
        item_type=str,
        doc="""
        Runs with any of these tags are never shown (LangGraph tags its
        internal runs ``langsmith:hidden``).""",
    )

    max_depth = param.Integer(
        default=None,
        bounds=(1, None),
        allow_None=True,
        doc="""
        Deepest nesting of shown steps; deeper runs are hidden. None: no limit.""",
    )

    show_glue = param.Boolean(
        default=False,
        doc="""
        Show composition runs (RunnableSequence, RunnableLambda, prompts,
        parsers, ...) as steps too, and every LangGraph node as a step of its
        own (by default a node that does one action is shown as that action).""",
    )

    title = TitleTemplate(
        default=None,
        allow_None=True,
        doc="""
        A template for every step's title, e.g. ``"{label} ({status})"``, with
        the fields ``label`` ("Tool search"), ``node`` (the LangGraph node the
        step also stands for, else empty), ``name``, ``kind``, ``status``
        ("success"), ``state`` ("done in 1.2 s"), ``elapsed`` ("1.2 s") and
        ``model``. None: the built-in title, ``"{label} · {state}"``. Shown as
        text, not HTML.""",
    )

    title_function = param.Callable(
        default=None,
        doc="""
        A function ``title_function(run) -> str | None`` that gives a step's
        title; it is called whenever the step is drawn with the run's
        `RunRecord` (``name``, ``kind``, ``status``, ``elapsed``, ``error``,
        ``tags``, ``metadata``, ...). Return None to keep the ``title``
        template's (or the built-in) title. Shown as text, not HTML.""",
    )

    collapsed_on_success = param.Boolean(
        default=True,
        doc="""
        Collapse a tool, model or retriever step when its run succeeds
        (chain steps stay open: their content is their child steps).""",
    )

    flush_interval = param.Number(
        default=0.08,
        bounds=(0.001, 5.0),
        doc="""
        Seconds of rest between updates of the steps: changes are recorded at
        once and shown at most this often (at once after a quiet spell), in
        slices that never hold the server's event loop for long.""",
    )

    max_steps = param.Integer(
        default=20,
        bounds=(1, None),
        doc="""
        Most child steps shown at once inside one step (or one reply); older
        ones fold into a "Show N earlier steps" button, so long agent runs
        stay light and navigable.""",
    )

    max_chars = param.Integer(
        default=20_000,
        bounds=(100, None),
        allow_None=True,
        doc="""
        Longest text shown for one tool input, output, document or error;
        longer text is cut with a note of how much was left out. None: no limit.""",
    )

    user = param.String(
        default=None,
        allow_None=True,
        doc="""
        With a chat feed target, the user the step messages are sent as
        (default: the feed's ``callback_user``).""",
    )

    avatar = param.Parameter(
        default=None,
        doc="""
        With a chat feed target, the avatar of the step messages.""",
    )

    answer_in_reply = param.Boolean(
        default=True,
        doc="""
        With a chat feed target, show the turn's final answer (the text of the
        model call that ended it without calling tools) as the reply's own
        text below the steps card. False: keep all text in the steps.""",
    )

    prices = param.Dict(
        default={},
        doc="""
        Model prices, ``{model: (input_per_1M_tokens, output_per_1M_tokens)}``
        (as `TraceView`'s): each model step's footer and each turn's summary
        show the cost. Models not listed show no cost.""",
    )

    models = param.List(
        default=[],
        doc="""
        The chat models in use: a model whose LangChain profile gives
        ``max_input_tokens`` gets a context-window gauge in its steps' footers.""",
    )

    serialize_steps = param.Boolean(
        default=False,
        doc="""
        With a chat feed target, what a reply is as chat history
        (``ChatFeed.serialize()``, the history for the next model call): the
        answer as the model wrote it, and with True a short readable summary
        of the turn's steps before it.""",
    )

    resume = param.Callable(
        default=None,
        doc="""
        A function ``resume(value)`` (sync or async) that resumes a paused
        LangGraph run, e.g. ``agent.invoke(Command(resume=value), config)``.
        When set, a step paused at ``interrupt()`` shows the request and its
        decisions: for ``HumanInTheLoopMiddleware``, Approve, Edit and Reject
        per tool call (those its ``allowed_decisions`` allow); for any other
        interrupt, Approve and Reject. Once decided, it is called with the
        value to resume with: the decision itself when the run paused at
        one interrupt; when it paused at several at once (parallel
        branches), once every one is decided, with ``{interrupt_id:
        value, ...}``, as LangGraph requires.""",
    )

    tools = param.List(
        default=[],
        doc="""
        The agent's tools: an Edit decision's form is built from the tool's
        argument schema and validated by it (without, from the arguments the
        model wrote).""",
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
        if user is not None:
            params["user"] = user
        if avatar is not None:
            params["avatar"] = avatar
        super().__init__(**params)
        self.trace = Trace()
        self._logged: set[tuple[str, str]] = set()
        self._halted: dict[Any, None] = {}
        self._followed: set[Any] = set()  # the remote runs `follow` is recording (remote.py)
        self._view = StepsView(self.trace, target, report=self._report, **self._view_options())
        self.layout: ListLike = self._view.layout
        self._feed = target if isinstance(target, ChatFeed) else None
        if self._feed is not None:
            # The stop button cancels the feed's callback: stop the runs too.
            watch_callback_state(self._feed, self._feed_state_changed)
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

    def _view_options(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in StepsView.OPTIONS}

    @param.depends(*StepsView.OPTIONS, watch=True)
    def _configure(self) -> None:
        self._view.configure(**self._view_options())

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
        run = self.trace.start(
            run_id,
            parent_run_id,
            kind,
            name=capture.run_name(kind, serialized, kwargs),
            run_type=kwargs.get("run_type"),
            tags=kwargs.get("tags"),
            metadata=kwargs.get("metadata"),
            inputs=inputs,
            model=capture.model_name(kwargs) if kind == "llm" else None,
        )
        if run is not None and parent_run_id is None:
            self.trace.sweep()

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
            self.trace.end(run, status, exception=error)

    # -- containment ---------------------------------------------------------

    def _contain(self, callback: str, run_id: UUID | None, error: Exception) -> None:
        run = self.trace.live(run_id) if run_id is not None else None
        self._report(run, callback, error)
        if run is not None and callback.endswith(("_end", "_error")):
            # Whatever failed while ending the run, it still ends.
            failed = run.exception is not None or callback.endswith("_error")
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

    def _feed_state_changed(self, state: str) -> None:
        if state == "stopped":
            self.stop()

    def _session_destroyed(self, session_context: Any) -> None:
        """The page's session ended (its tab was closed): draw nothing more, and stop its runs."""
        self._view.close()
        # Bokeh calls this once the document is gone; by the next turn Panel has let go of its
        # models too, so stopping the feed's callback changes no document.
        soon(self._stop_session)

    def _stop_session(self) -> None:
        """Stop the runs as the stop button does: cancel the feed's callback (which then stops them)."""
        if self._feed is None or not self._feed.stop():
            self.stop()

    # -- remote runs (issue 25: the stream's parts are turned into callbacks in remote.py) --

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
        """Show every recorded change now (scripts and tests; a served page updates by itself)."""
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
