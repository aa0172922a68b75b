"""Event intake: the LangChain callback handler that turns runs into steps.

Every callback goes through `_intake`: a stopped run is halted there, and a
fault in the handler (or in a user's title function) is logged once and never
reaches the user's run. Each event is applied under the run tree's lock, at
once or, when the steps are on a served page, on that page's event loop (the
only place Bokeh models may change). Tokens only land in a buffer that the
`Refresher` shows at a bounded rate.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import param
from bokeh.document import Document
from langchain_core.callbacks import BaseCallbackHandler
from panel.chat import ChatFeed
from panel.io.state import set_curdoc, state
from panel.layout.base import ListLike

from .approval import ApprovalPrompt
from .placement import Reply, placement_for
from .render import (
    CANCELLATIONS,
    PAUSES,
    StepRenderer,
    exception_names,
    final_message,
    status_text,
    text_pieces,
)
from .runs import FAILED, PENDING, RUNNING, SUCCESS, BoundedSet, Run, RunTree
from .stream import Refresher, StepText
from .visibility import RUN_TYPES, Visibility

log = logging.getLogger("panel_langchain_steps")

_LOGGED_LIMIT = 256


class StopRun(BaseException):
    """Raised into a run the user stopped, at its next callback event.

    A ``BaseException`` (like ``KeyboardInterrupt``), so neither LangChain's
    callback dispatch nor a tool's error handling turns it into a result.
    """


def _intake(method: Callable[..., Any]) -> Callable[..., Any]:
    """Take a LangChain callback in: halt it if stopped, apply it (now or on the page's loop), contained."""
    halts = method.__name__.endswith(("_start", "_new_token"))

    @functools.wraps(method)
    def wrapper(self: ChatStepCallbackHandler, *args: Any, **kwargs: Any) -> None:
        if halts and self._halted:
            self._check_halted(kwargs.get("run_id"), kwargs.get("parent_run_id"))
        self._take(method, args, kwargs)

    return wrapper


class ChatStepCallbackHandler(BaseCallbackHandler, param.Parameterized):
    """Shows every step of a LangChain or LangGraph run as a live, nested `ChatStep`.

    Attach it to any runnable with ``config={"callbacks": [handler]}``. Each
    chain, tool, model and retriever run gets a step inside its parent's step;
    tokens stream in; errors fail the step as ``context_exception`` says.

    ``target`` is where top-level steps go: a ``ChatFeed`` or
    ``ChatInterface`` (one message per top-level run), a ``ChatMessage``, any
    list-like layout such as a ``Column``, or ``None`` for a new ``Column``
    available as ``handler.layout``.
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

    run_types = param.ListSelector(
        default=list(RUN_TYPES),
        objects=list(RUN_TYPES),
        doc="""
        Kinds of runs shown as steps: "chain" (LangGraph graphs and nodes,
        named chains), "tool", "llm" (chat models and LLMs), "retriever".""",
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
        parsers, ...) as steps too.""",
    )

    title = param.Callable(
        default=None,
        doc="""
        A function ``title(run) -> str | None`` that overrides a step's title;
        it is called on every status change with a `Run` (``name``, ``kind``,
        ``status``, ``elapsed``, ``error``, ``tags``, ``metadata``). Return
        None to keep the built-in title. Text is shown as text, not HTML.""",
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
        Seconds between updates of streamed text: tokens are buffered and
        shown at most this often, and always when the run ends.""",
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

    resume = param.Callable(
        default=None,
        doc="""
        A function ``resume(value)`` (sync or async) that resumes a paused
        LangGraph run, e.g. ``agent.invoke(Command(resume=value), config)``.
        When set, a step paused at ``interrupt()`` shows Approve and Reject
        buttons; a click calls it with the value to resume with.""",
    )

    # Called on the event loop's thread in async runs, in order, instead of in
    # an executor: each callback is short and must keep token order.
    run_inline = True

    def __init__(self, target: Any = None, **params: Any):
        super().__init__(**params)
        self._placement = placement_for(target)
        self.layout: ListLike = self._placement.layout
        self._runs = RunTree()
        self._refresher = Refresher(
            self.flush_interval,
            self._placement.documents,
            self._runs.lock,
            report=lambda error: self._report(None, "refresh", error),
        )
        self._configure()
        self._logged: set[tuple[str, str]] = set()
        self._halted = BoundedSet()
        self._queue: list[tuple[Callable[..., Any], tuple, dict]] = []
        self._queue_lock = threading.Lock()
        self._queued = 0
        self._drain_due = False
        if isinstance(target, ChatFeed):
            # The stop button cancels the feed's callback: stop the runs too.
            target.param.watch(self._feed_state_changed, "_callback_state")

    def __panel__(self) -> ListLike:
        return self.layout

    @param.depends(
        "context_exception",
        "run_types",
        "include_names",
        "exclude_names",
        "include_tags",
        "exclude_tags",
        "max_depth",
        "show_glue",
        "title",
        "collapsed_on_success",
        "max_chars",
        "flush_interval",
        "user",
        "avatar",
        "answer_in_reply",
        watch=True,
    )
    def _configure(self) -> None:
        """Freeze the options for the per-event path; runs after any option changes."""
        with self._runs.lock:
            self._visibility = Visibility(
                run_types=frozenset(self.run_types),
                include_names=frozenset(self.include_names),
                exclude_names=frozenset(self.exclude_names),
                include_tags=frozenset(self.include_tags),
                exclude_tags=frozenset(self.exclude_tags),
                max_depth=self.max_depth,
                show_glue=self.show_glue,
            )
            self._renderer = StepRenderer(
                context_exception=self.context_exception,
                title=self.title,
                collapsed_on_success=self.collapsed_on_success,
                max_chars=self.max_chars,
                report=self._report,
                append=self._refresher.append,
            )
            self._refresher.interval = self.flush_interval
            self._placement.configure(
                user=self.user, avatar=self.avatar, answer_in_reply=self.answer_in_reply
            )

    # -- LangChain callbacks ------------------------------------------------

    @_intake
    def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, **kwargs):
        self._start("chain", run_id, parent_run_id, serialized, kwargs)

    @_intake
    def on_chain_end(self, outputs, *, run_id, parent_run_id=None, **kwargs):
        self._end("chain", run_id, parent_run_id)

    @_intake
    def on_chain_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        self._fail("chain", run_id, parent_run_id, error)

    @_intake
    def on_tool_start(self, serialized, input_str, *, run_id, parent_run_id=None, inputs=None, **kwargs):
        run = self._start("tool", run_id, parent_run_id, serialized, kwargs)
        if run is not None:
            self._renderer.add_data(run, inputs if inputs is not None else input_str, "Input")

    @_intake
    def on_tool_end(self, output, *, run_id, parent_run_id=None, **kwargs):
        self._end("tool", run_id, parent_run_id, lambda run: self._renderer.tool_output(run, output))

    @_intake
    def on_tool_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        self._fail("tool", run_id, parent_run_id, error)

    @_intake
    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, **kwargs):
        self._start("llm", run_id, parent_run_id, serialized, kwargs)

    @_intake
    def on_llm_start(self, serialized, prompts, *, run_id, parent_run_id=None, **kwargs):
        self._start("llm", run_id, parent_run_id, serialized, kwargs)

    @_intake
    def on_llm_new_token(self, token, *, chunk=None, run_id, parent_run_id=None, **kwargs):
        with self._runs.lock:
            run = self._touch("llm", run_id, parent_run_id)
            if run is None or run.anchor is not run:
                return
            run.streamed = True
            if isinstance(token, str):
                if token:
                    self._write(run, "text", token)
                return
            for section, text in text_pieces(getattr(chunk, "message", token)):
                self._write(run, section, text)

    @_intake
    def on_llm_end(self, response, *, run_id, parent_run_id=None, **kwargs):
        self._end("llm", run_id, parent_run_id, lambda run: self._show_llm_result(run, response))

    @_intake
    def on_llm_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        self._fail("llm", run_id, parent_run_id, error)

    @_intake
    def on_retriever_start(self, serialized, query, *, run_id, parent_run_id=None, **kwargs):
        run = self._start("retriever", run_id, parent_run_id, serialized, kwargs)
        if run is not None:
            self._renderer.add_data(run, query, "Query")

    @_intake
    def on_retriever_end(self, documents, *, run_id, parent_run_id=None, **kwargs):
        self._end("retriever", run_id, parent_run_id, lambda run: self._renderer.documents(run, documents))

    @_intake
    def on_retriever_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        self._fail("retriever", run_id, parent_run_id, error)

    # -- intake --------------------------------------------------------------

    def _take(self, method: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        """Apply an event now, or queue it for the page's event loop.

        When the steps are on a served page, Bokeh models may only be changed
        on the server's loop: events are queued, in order, and applied there
        in one batch per tick. A token for a section that already exists is
        the exception: it only joins a buffer, so it is taken at once, from
        any thread, as long as no earlier event is still queued.
        """
        if method is _TOKEN and not self._queued and self._buffer_token(kwargs, args):
            return
        document = self._served_document()
        if document is None:
            self._apply(method, args, kwargs)
            return
        with self._queue_lock:
            self._queue.append((method, args, kwargs))
            self._queued += 1
            if self._drain_due:
                return
            self._drain_due = True
        document.add_next_tick_callback(self._drain_on_loop)

    def _buffer_token(self, kwargs: dict, args: tuple) -> bool:
        token = args[0] if args else kwargs.get("token")
        run = self._runs.get(kwargs.get("run_id"))
        if run is None or "text" not in run.texts or not isinstance(token, str):
            return False
        if token:
            self._write(run, "text", token)
        return True

    def _apply(self, method: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        try:
            method(self, *args, **kwargs)
        except Exception as error:
            self._contain(method.__name__, kwargs.get("run_id"), error)

    def _served_document(self) -> Document | None:
        return next((doc for doc in self._placement.documents() if doc.session_context), None)

    async def _drain_on_loop(self) -> None:
        # A coroutine, so Bokeh runs it on the loop itself (not in an executor).
        self._drain()

    def _drain(self) -> None:
        """Apply every queued event, in order, as one document update.

        As the served session's document, so that new components load their
        resources from the server, not a CDN.
        """
        document = self._served_document()
        with self._runs.lock, set_curdoc(document or state.curdoc), self._refresher.batch():
            while True:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                    if not batch:
                        self._drain_due = False
                        return
                for method, args, kwargs in batch:
                    self._apply(method, args, kwargs)
                    with self._queue_lock:
                        self._queued -= 1

    # -- run lifecycle -------------------------------------------------------

    def _start(
        self, kind: str, run_id: UUID, parent_run_id: UUID | None, serialized: Any, kwargs: dict
    ) -> Run | None:
        """Open (or complete a placeholder for) a run; return it if it is shown."""
        with self._runs.lock:
            if self._runs.has_ended(run_id):
                return None
            run = self._runs.get(run_id)
            if run is not None and run.status != PENDING:
                return None  # a duplicate start
            fresh = run is None
            if fresh:
                run = Run(run_id, parent_run_id, kind)
            run.tags = list(kwargs.get("tags") or [])
            run.metadata = dict(kwargs.get("metadata") or {})
            run.run_type = kwargs.get("run_type")
            run.name = _run_name(kind, serialized, kwargs, run.metadata)
            if fresh:
                self._open(run)
            run.status = RUNNING
            run.started_at = time.monotonic()
            self._renderer.show_status(run)
            return run if run.shown else None

    def _touch(self, kind: str, run_id: UUID, parent_run_id: UUID | None) -> Run | None:
        """The live run, created as a pending placeholder when first seen here."""
        run = self._runs.get(run_id)
        if run is None and not self._runs.has_ended(run_id):
            run = self._open(Run(run_id, parent_run_id, kind))
        return run

    def _open(self, run: Run) -> Run:
        """Register a new run and give it a step if it is shown."""
        self._runs.add(run)
        parent = self._runs.parent(run)
        anchor = parent.anchor if parent is not None else None
        depth = anchor.depth + 1 if anchor is not None else 1
        run.anchor = anchor
        if self._visibility.shows(run, depth, parent.tags if parent is not None else []):
            self._show(run, depth)
        else:
            run.depth = depth - 1
        return run

    def _show(self, run: Run, depth: int) -> None:
        """Give the run a step, inside its nearest shown ancestor's (``run.anchor``) step."""
        anchor = run.anchor
        run.depth, run.anchor = depth, run
        run.step = self._renderer.create(run)
        layout = anchor.step if anchor is not None else self._placement.steps_layout(run.root_id)
        self._refresher.append(layout, run.step)

    def _write(self, run: Run, section: str, token: str) -> None:
        text = run.texts.get(section) or self._new_text(run, section)
        if text is not None:
            text.write(token)
            self._refresher.mark(text)

    def _new_text(self, run: Run, section: str) -> StepText | None:
        """A text section for the run: the reply's answer area when the run may be the answer."""
        reply = self._placement.answer(run.root_id) if section == "text" else None
        if reply is None or not self._may_answer(run):
            return self._renderer.text(run, section)
        if reply.owner is not None and reply.owner is not run:
            self._evict(reply)
        reply.owner = run
        return self._renderer.text(run, section, into=reply.answer)

    def _may_answer(self, run: Run) -> bool:
        """Whether a model run speaks for the whole turn (not inside a tool or a subgraph)."""
        if run.kind != "llm" or "nostream" in run.tags:
            return False
        if "|" in str(run.metadata.get("langgraph_checkpoint_ns", "")):
            return False
        return all(ancestor.kind == "chain" for ancestor in self._runs.ancestors(run))

    def _evict(self, reply: Reply) -> None:
        """Move the answer's text back into its model step: it was not the final answer."""
        owner, reply.owner = reply.owner, None
        text = owner.texts.pop("text", None)
        if text is None:
            return
        self._refresher.refresh()  # the blocks are all in place before they move
        reply.answer.objects = [pane for pane in reply.answer.objects if pane not in text.blocks]
        if owner.step is not None:
            owner.step.extend(text.blocks)

    def _show_llm_result(self, run: Run, response: Any) -> None:
        message = final_message(response)
        if not run.streamed:
            # Nothing streamed (a plain invoke): the text comes from the run's end.
            for section, text in text_pieces(message):
                self._write(run, section, text)
            self._refresher.show(run.texts.values())
        reply = self._placement.answer(run.root_id)
        if reply is not None and reply.owner is run and getattr(message, "tool_calls", None):
            self._evict(reply)
        self._renderer.llm_result(run, response)

    def _end(
        self, kind: str, run_id: UUID, parent_run_id: UUID | None, show: Callable[[Run], None] | None = None
    ) -> None:
        with self._runs.lock:
            run = self._touch(kind, run_id, parent_run_id)
            if run is None or run.ended:
                return
            self._refresher.show(run.texts.values())
            if show is not None and run.shown:
                show(run)
            self._finish(run, SUCCESS)

    def _fail(self, kind: str, run_id: UUID, parent_run_id: UUID | None, error: BaseException) -> None:
        with self._runs.lock:
            run = self._touch(kind, run_id, parent_run_id)
            if run is None or run.ended:
                return
            self._refresher.show(run.texts.values())
            names = exception_names(error)
            pause = next((PAUSES[name] for name in PAUSES if name in names), None)
            if pause is not None:
                run.outcome = pause
                if "GraphInterrupt" in names:
                    self._pause(run, error)
                self._finish(run, SUCCESS)
                return
            run.error = error
            if run.child_error is not error and not names & set(CANCELLATIONS):
                if run.anchor is None:
                    # A hidden root (a glue chain) failed and no step said why:
                    # give it a step so the error is not lost.
                    self._show(run, run.depth + 1)
                if run.shown:
                    self._renderer.error(run, error)
                    self._claim(run, error)
            self._finish(run, FAILED)

    def _pause(self, run: Run, interrupt: BaseException) -> None:
        """A run paused at ``interrupt()``: offer the decision where it happened."""
        root = self._runs.get(run.root_id)
        if root is not None:
            root.paused = True
        if run.child_error is interrupt:
            return
        self._claim(run, interrupt)
        if self.resume is not None and run.anchor is not None and run.anchor.step is not None:
            for request in interrupt.args[0] if interrupt.args else ():
                prompt = ApprovalPrompt(request=getattr(request, "value", request), resume=self.resume)
                run.anchor.step.param.update(collapsed=False, collapsed_on_success=False)
                self._refresher.append(run.anchor.step, prompt)

    def _claim(self, run: Run, error: BaseException) -> None:
        """``run`` shows ``error``: the ancestors it propagates to will not repeat it."""
        for ancestor in self._runs.ancestors(run):
            ancestor.child_error = error

    def _finish(self, run: Run, status: str) -> None:
        self._settle(run, status)
        if self._runs.is_root(run):
            self._close_root(run)

    def _settle(self, run: Run, status: str, error: BaseException | None = None) -> None:
        """Give the run its final status: its text shown, its step's status and title set."""
        self._refresher.show(run.texts.values())
        if error is not None:
            run.error = error
        run.ended_at = time.monotonic()
        run.status = status
        if run.paused and status == SUCCESS:
            run.outcome = PAUSES["GraphInterrupt"]
        self._renderer.show_status(run)

    def _close_root(self, root: Run) -> None:
        """End whatever the root left open (events that never came), then forget the tree."""
        for run in self._runs.open_runs(root.id):
            self._settle(run, root.status, root.error)
        self._refresher.refresh()
        self._placement.finish(
            root.id,
            status_text(root),
            collapse=root.status == SUCCESS and not root.paused,
            paused=root.paused,
        )
        self._runs.release(root.id)
        self._placement.release(root.id)

    # -- containment ---------------------------------------------------------

    def _contain(self, callback: str, run_id: UUID | None, error: Exception) -> None:
        run = self._runs.get(run_id) if run_id is not None else None
        self._report(run, callback, error)
        if run is not None and callback.endswith(("_end", "_error")):
            self._salvage(run)

    def _salvage(self, run: Run) -> None:
        """After a fault while ending a run, still give its step a final status."""
        try:
            with self._runs.lock:
                if not run.ended:
                    self._settle(run, FAILED if run.error is not None else SUCCESS)
                if self._runs.is_root(run):
                    self._close_root(run)
        except Exception as error:
            self._report(run, "salvage", error)

    def _report(self, run: Run | None, where: str, error: BaseException) -> None:
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
        stopped = StopRun("stopped by the user")
        self._drain()
        with self._runs.lock:
            for run in self._runs.all_runs():
                self._halted.add(run.id)
                if not run.ended:
                    self._settle(run, FAILED, stopped)
            for run in self._runs.all_runs():
                if self._runs.is_root(run):
                    self._close_root(run)

    def _check_halted(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        """Raise `StopRun` into a run that was stopped (or started below a stopped run)."""
        if run_id in self._halted or (parent_run_id is not None and parent_run_id in self._halted):
            self._halted.add(run_id)
            raise StopRun("stopped by the user")

    def _feed_state_changed(self, event: param.parameterized.Event) -> None:
        if getattr(event.new, "value", event.new) == "stopped":
            self.stop()

    # -- public --------------------------------------------------------------

    def flush(self) -> None:
        """Apply queued events and show all buffered tokens now."""
        self._drain()
        with self._runs.lock:
            self._refresher.refresh()

    @property
    def open_runs(self) -> int:
        """How many runs the handler is tracking (zero once every root has ended)."""
        return len(self._runs)


def _run_name(kind: str, serialized: Any, kwargs: dict, metadata: dict) -> str:
    serialized = serialized if isinstance(serialized, dict) else {}
    if kind == "llm":
        params = kwargs.get("invocation_params") or {}
        name = metadata.get("ls_model_name") or params.get("model") or params.get("model_name")
        if name:
            return str(name)
    name = kwargs.get("name") or serialized.get("name")
    if not name and serialized.get("id"):
        name = serialized["id"][-1]
    return str(name or "")


_TOKEN = ChatStepCallbackHandler.on_llm_new_token.__wrapped__
