"""The steps view: a `Trace` shown as nested `ChatStep`s, drawn on its own tick.

The view subscribes to the trace and, at each tick (`schedule.Ticker`),
first brings its model up to date with every run that changed (plain Python,
cheap: `steps_model`), then makes the Panel changes that the page needs, in
slices of bounded time (`steps_draw`): a run that started and ended between
two ticks costs one step in its final state, not a replay of its history.
Where the steps go, and what a chat feed adds (one reply per turn), is the
`placement`'s.

Long runs stay light: a step (or a reply) shows its newest ``max_steps``
child steps and a bar to move through the rest (`navigator`), so the work per
tick, the page and the memory follow what is shown, not the trace's length.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from panel.io.document import hold
from panel.io.state import set_curdoc
from panel.layout.base import ListLike

from .compat import models_found_once, session_locked
from .history import history_text
from .options import ViewOptions
from .placement import Placement, Reply, placement_for
from .schedule import Ticker, call_soon, on_loop_of, on_page_loop, served
from .steps_draw import StepsDrawing
from .steps_model import Node, Slot, StepsModel, Turn
from .trace import Trace
from .trace_view import TraceView

#: Longest `StepsView.flush` waits for a served page's event loop to draw (seconds).
FLUSH_WAIT = 10.0


class StepsView:
    """Shows a `Trace` as live, nested steps in a target layout or chat feed.

    ``stopped`` is called when a chat feed's callback is stopped (its stop button).
    """

    def __init__(
        self,
        trace: Trace,
        target: Any,
        options: ViewOptions,
        report: Callable[..., None],
        stopped: Callable[[], None] | None = None,
    ):
        self.trace = trace
        self._placement: Placement = placement_for(target)
        self.layout: ListLike = self._placement.layout
        self._model = StepsModel(trace, options, self._placement.new_turn)
        self._drawing = StepsDrawing(self._model, self._placement, target, report, events=self)
        self._ticker = Ticker(
            options.flush_interval,
            self._placement.documents,
            self._render,
            report=lambda error: report(None, "refresh", error),
        )
        self._stopped = stopped
        self._lock = threading.RLock()
        self._rendering = False
        self._closed = False  # its page is gone
        self._placement.configure(user=options.user, avatar=options.avatar)
        self._subscription = trace.subscribe(self._ticker.wake)
        self._placement.notify(self)

    @property
    def always_allowed(self) -> set[str]:
        """Tools the user chose to always allow, for as long as the view lives (a chat session)."""
        return self._drawing.always_allowed

    def configure(self, options: ViewOptions) -> None:
        """Take the handler's options; they apply from the next tick."""
        with self._lock:
            reshown = self._model.configure(options)
            self._drawing.renderer.options = options
            self._ticker.interval = options.flush_interval
            self._placement.configure(user=options.user, avatar=options.avatar)
        if reshown:
            self._ticker.wake()

    # -- the tick ------------------------------------------------------------------

    def flush(self) -> None:
        """Render everything that changed, now.

        On a served page the drawing happens on the page's event loop: called
        from another thread, it hands the drawing to the loop and waits for it
        (at most `FLUSH_WAIT` seconds; the drawing still happens after), unless
        the session's lock is held: then the caller may be the locked callback
        the loop waits for (Bokeh runs those on other threads), and it returns
        at once.
        """
        self._ticker.cancel()
        document = served(self._placement.documents())
        if document is None or on_loop_of(document):
            self._render_all()
            return
        drawn = threading.Event()

        def render_all() -> None:
            try:
                self._render_all()
            finally:
                drawn.set()

        on_page_loop(document, render_all, gone=drawn.set)
        if not session_locked(document):
            drawn.wait(FLUSH_WAIT)

    def _render_all(self) -> None:
        while (due := self._render(None)) == 0:
            pass
        if due is not None:  # something is due later (a run that may be swept): the ticker sees to it
            self._ticker.wake()

    def close(self) -> None:
        """The page is gone (its session ended): render nothing more, whatever the trace records."""
        with self._lock:
            self._closed = True
            self._subscription.close()
        self._ticker.cancel()

    def _render(self, deadline: float | None) -> float | None:
        """Bring the view up to date; stop at ``deadline``. Seconds until more is due, or None."""
        with self._lock:
            if self._closed:
                return None
            orphans_due = self.trace.sweep()  # runs whose parent never came end, whatever the app does
            self._follow()
            if not self._model.dirty:
                return orphans_due
            budget = self._drawing.budget
            budget.start(deadline)
            self._rendering = True
            try:
                with self._batch():
                    due = self._drawing.draw(deadline)
            finally:
                self._rendering = False
            budget.end(deadline)
            return _sooner(due, orphans_due)

    def _follow(self) -> None:
        for run in self._subscription.take():
            self._model.follow(run)

    @contextmanager
    def _batch(self) -> Iterator[None]:
        """All changes in one document update, as the served session's document."""
        docs = self._placement.documents()
        if len(docs) != 1:
            yield
            return
        doc = docs[0]
        with (
            set_curdoc(doc) if doc.session_context is not None else nullcontext(),
            hold(doc),
            models_found_once(doc),
        ):
            yield

    # -- what the user does on the page (the drawing's events) ---------------------------

    def opened(self, slot: Slot, collapsed: bool) -> None:
        """A step (or a line of steps) was opened or closed: drawn at once (see `StepsDrawing.opened`)."""
        with self._lock:
            node = self._drawing.opened(slot, collapsed)
            if node is not None:
                self._draw_now(node, create=node is not slot)

    def move(self, node: Node, start: int | None) -> None:
        """Show the window of ``node``'s steps from ``start`` (None: the newest, following the run)."""
        with self._lock:
            node.start, node.note, node.found = start, "", None
            self._draw_now(node, create=True)

    def find(self, node: Node, text: str) -> None:
        """Show the window that starts with the next of ``node``'s steps whose title holds ``text``."""
        with self._lock:
            node.found = self._drawing.find(node, text)
            if node.found is None:
                node.note = "no step matches"
            else:
                node.start, node.note = node.found, ""
            self._draw_now(node, create=True)

    def _draw_now(self, node: Node, create: bool) -> None:
        """Draw the node the user acted on, now, in the callback of the action (what else is
        pending waits for its tick): a quick answer."""
        self._model.dirty_nodes[node] = None
        if not self._rendering:
            self._drawing.budget.start(None)
            with self._batch():
                self._drawing.draw_now(node, create)

    def open_trace(self, reply: Reply) -> None:
        """Open the reply's turns in a `TraceView`: in the handler's ``trace_target``, else in the reply."""
        with self._lock:
            roots = [turn.root_id for turn in self._model.turns.values() if turn.reply is reply]
            options = self._model.options
        view = TraceView(self.trace.copy(roots), prices=dict(options.prices))
        if options.trace_target is not None:
            options.trace_target.objects = [view]
        else:
            reply.show_trace(view)

    def added(self, turn: Turn) -> None:
        """The app streamed text into the turn's reply itself: show it (or not) at the next tick."""
        with self._lock:
            if turn.root_id in self._model.turns:
                self._model.dirty_turns[turn] = None
        self._ticker.wake()

    def history(self, reply: Reply) -> str:
        """A reply as chat history: its answer as written, then the app's own text in it (and a
        summary of its steps before them, if asked)."""
        with self._lock:
            turns = [turn for turn in self._model.turns.values() if turn.reply is reply]
            answer = self._model.answer(turns[0].node) if turns else None
            said = answer.text if answer is not None else ""
            text = "\n\n".join(filter(None, [said, reply.added_text(said)]))
            steps = self._model.options.serialize_steps
            return history_text(self.trace, [turn.root_id for turn in turns], text, steps)

    # -- what a chat feed does (its placement's events) ----------------------------------

    def call_started(self) -> None:
        self._next_turn(self._send_ahead)

    def call_ended(self) -> None:
        """The feed's callback returned: its reply may be finished now, or was never needed."""
        with self._lock:
            if self._placement.last_turn is not None:
                self._model.dirty_turns[self._placement.last_turn] = None
        self._ticker.wake()
        self._next_turn(self._withdraw)

    def call_stopped(self) -> None:
        if self._stopped is not None:
            self._stopped()

    def messages_removed(self, present: set[int]) -> None:
        """Messages left the feed (or it was cleared): forget their finished turns."""
        with self._lock:
            if self._closed:
                return
            for turn in list(self._model.turns.values()):
                message = turn.reply.message if turn.reply is not None else None
                if message is not None and id(message) not in present and turn.finished:
                    self._model.forget(turn, turn.root)
                    self.trace.forget(turn.root_id)

    def messages_added(self, added: list[Any]) -> None:
        """A message the feed's callback returned that repeats the reply's answer is removed: the
        answer is shown once, in the reply."""
        with self._lock:
            if self._closed or not self._model.options.answer_in_reply:
                return
            self._follow()
            turn = self._placement.last_turn
            if turn is None or not self._placement.calling(turn.call):
                return
            answer = self._model.answer(turn.node)
            if answer is not None and answer.run.ended:
                self._placement.drop_repeats(added, answer.text)

    def _send_ahead(self) -> None:
        with self._lock, self._batch():
            self._placement.send_ahead()

    def _withdraw(self) -> None:
        self.flush()  # the callback's runs take the reply sent ahead, if any started
        with self._lock, self._batch():
            self._placement.withdraw()

    def _next_turn(self, change: Callable[[], None]) -> None:
        """Call ``change`` in the event loop's next turn (on a served page, with its session's lock)."""
        if not self._closed:
            call_soon(change, self._placement.documents())


def _sooner(due: float | None, other: float | None) -> float | None:
    """The sooner of two delays, where None is never."""
    return other if due is None else due if other is None else min(due, other)
