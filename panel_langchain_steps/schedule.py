"""When and where the views' work runs: on a served page's event loop, at a bounded rate.

A served page's Bokeh models may only change on that page's event loop, while
runs report from any thread. Everything the views and the approval flow do
later goes through here:

- `call_soon`: a change for a page, on its loop (or in the running loop's
  next turn, or now, when the page is not served);
- `Ticker`: a view's drawing, woken by changes and done at most every
  ``interval`` seconds, in slices that leave the loop free in between (like
  ``rich.live.Live``: updates only mark state, the refresh draws);
- `in_background`: the app's own work (resuming a paused graph), started
  without holding up the caller's loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from bokeh.document import Document
from panel.io.state import set_curdoc

log = logging.getLogger("panel_langchain_steps")

#: Longest time one slice of drawing may hold the event loop (seconds).
SLICE_SECONDS = 0.02

#: A first guess at what one new step costs the event loop, all told: made, joined to the page
#: and sent. A `StepBudget` then learns it from its own slices.
FIRST_STEP_COST = 0.02


def served(documents: Iterable[Document]) -> Document | None:
    """The served document among ``documents`` (the one with a session), if any."""
    return next((document for document in documents if document.session_context), None)


def on_loop_of(document: Document) -> bool:
    """Whether the calling code runs on the served document's event loop."""
    loop = document.session_context.server_context.application_context.io_loop.asyncio_loop
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def on_page_loop(
    document: Document, function: Callable[[], object], gone: Callable[[], None] | None = None
) -> None:
    """Call ``function`` on a served document's event loop, from any thread, as the document's
    next-tick callback (so Bokeh runs it as the session's own, with the document as Panel's
    current one), awaiting what it returns if that is awaitable; ``gone`` if the session is closing.

    The loop adds the callback itself: Bokeh's ``add_next_tick_callback`` called from another
    thread is lost when the loop ends a document hold at that moment (``Document.unhold`` swaps
    the held events): 11-23 lost in 20,000 calls against a loop holding and releasing it.
    """

    async def run() -> None:  # a coroutine, so Bokeh runs it on the loop itself (not in an executor)
        with set_curdoc(document):
            result = function()
        if inspect.isawaitable(result):
            await result

    def add() -> None:
        try:
            document.add_next_tick_callback(run)
        except Exception:  # the session is closing
            if gone is not None:
                gone()

    document.session_context.server_context.application_context.io_loop.add_callback(add)


def call_soon(function: Callable[[], None], documents: Iterable[Document] = ()) -> None:
    """Call ``function`` soon: on the served page's loop if one of ``documents`` is served, else
    in the running event loop's next turn, else now."""
    document = served(documents)
    if document is not None:
        on_page_loop(document, function)
        return
    try:
        asyncio.get_running_loop().call_soon(function)
    except RuntimeError:
        function()


def in_background(function: Callable[[Any], Any], value: Any, defer: bool = False) -> None:
    """Run the app's ``function(value)`` without holding up the caller's event loop; its errors
    are logged.

    A coroutine function runs as a task on the running loop; a plain function
    in a thread when a loop is running (so the page keeps updating) or when
    ``defer``, else now.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if inspect.iscoroutinefunction(function):
        if loop is not None:
            loop.create_task(function(value))
        elif defer:
            threading.Thread(target=asyncio.run, args=(function(value),), daemon=True).start()
        else:
            asyncio.run(function(value))
    elif loop is None and not defer:
        function(value)
    else:
        threading.Thread(target=_logged, args=(function, value), daemon=True).start()


def _logged(function: Callable[[Any], Any], value: Any) -> None:
    try:
        function(value)
    except BaseException:
        log.exception("panel-langchain-steps: %s failed", getattr(function, "__name__", "a callback"))


class Ticker:
    """Calls ``render(deadline)`` after a `wake`, with ``interval`` seconds' rest between renders, in slices.

    Like ``rich.live.Live``: updates only mark state, and the refresh renders
    at a rate. ``wake`` may be called from any thread. When the steps are on
    a served page, rendering runs on that page's event loop. ``render`` stops
    at ``deadline`` and returns how many seconds until it has more to do (0:
    at once, in the next slice, with the loop free in between; None: nothing).
    """

    def __init__(
        self,
        interval: float,
        documents: Callable[[], Iterable[Document]],
        render: Callable[[float | None], float | None],
        report: Callable[[Exception], None],
    ):
        self.interval = interval
        self._documents = documents
        self._render = render
        self._report = report
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._slicing = False
        self._woken = False  # woken while slicing: render again after
        self._served: Document | None = None  # the page's document, once served
        self._rendered = -math.inf  # when rendering last ended (time.monotonic())

    def wake(self) -> None:
        """Render ``interval`` seconds after rendering last ended: at once after a quiet spell."""
        with self._lock:
            if self._slicing:
                self._woken = True
                return
            timer = self._schedule(self._rest())
        if timer is not None:
            timer.start()

    def _rest(self) -> float:
        """Seconds until ``interval`` has passed since rendering last ended."""
        return max(0.0, self._rendered + self.interval - time.monotonic())

    def _schedule(self, delay: float) -> threading.Timer | None:
        if self._timer is not None:
            return None
        timer = self._timer = threading.Timer(delay, self._fire)
        timer.daemon = True
        return timer

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            self._slicing = True
        self._next_slice()

    def _next_slice(self) -> None:
        """Queue the next slice on the served page's event loop; render here when not served."""
        try:
            queued = self._queue_on_page()
        except Exception as error:  # never left waiting for a slice that will not come
            self._report(error)
            queued = False
        if not queued:
            self._slices()

    def _queue_on_page(self) -> bool:
        """Queue the next slice on the served page's event loop; False if the steps are not served."""
        document = served(self._documents())
        if document is None:
            if self._served is None or self._served not in self._documents():
                return False
            self._stop_slicing()  # the session ended (its tab closed): nothing left to show
            return True
        self._served = document
        on_page_loop(document, self._slice_on_loop, gone=self._stop_slicing)
        return True

    def _slice_on_loop(self) -> None:
        if self._slice():
            self._next_slice()

    def _stop_slicing(self) -> None:
        with self._lock:
            self._slicing = False

    def _slices(self) -> None:
        """Not served: every slice now, on this thread."""
        while self._slice():
            pass

    def _slice(self) -> bool:
        """One slice of rendering; True if the next slice is due at once."""
        try:
            due = self._render(time.monotonic() + SLICE_SECONDS)
        except Exception as error:  # on the timer's thread or the loop: nobody else would see it
            self._report(error)
            due = None
        if due == 0:
            return True
        with self._lock:
            self._slicing = False
            self._rendered = time.monotonic()
            if due is None and self._woken:
                due = self._rest()
            self._woken = False
            timer = self._schedule(due) if due is not None else None
        if timer is not None:
            timer.start()
        return False

    def cancel(self) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()


class StepBudget:
    """How many new steps a slice of drawing may make, and when new steps may join the page again.

    A new step costs far more than a slice's own checks can see (its Bokeh
    models are built when it joins its layout and sent when the slice's
    document hold ends), so a slice makes as many as its time allows at the
    cost learned from earlier slices, at least one. While runs go on, a slice
    that added steps is followed by a rest as long as it took: drawing takes
    at most half of the event loop from the runs.
    """

    def __init__(self) -> None:
        self.step_cost = FIRST_STEP_COST
        self._allowance = math.inf  # steps this slice may make
        self._made = 0  # steps this slice made
        self._started = 0.0
        self._due = 0.0  # when steps may be added again (time.monotonic())

    def start(self, deadline: float | None) -> None:
        """A slice starts; it ends at ``deadline`` (None: when everything is drawn)."""
        self._started = time.monotonic()
        self._made = 0
        self._allowance = (
            math.inf if deadline is None else max(1, (deadline - self._started) // self.step_cost)
        )

    def end(self, deadline: float | None) -> None:
        """The slice ended: learn what a step cost from it."""
        if self._made and deadline is not None:
            cost = (time.monotonic() - self._started) / self._made
            self.step_cost = (self.step_cost + cost) / 2

    def may_add(self) -> bool:
        return self._made < self._allowance

    def adding(self) -> None:
        self._made += 1

    def stop_adding(self) -> None:
        """This slice makes no more steps (it made a reply message, a slice's worth of work)."""
        self._allowance = 0

    def adding_due(self, now: float) -> bool:
        """Whether steps may join the page at ``now`` (time.monotonic())."""
        return now >= self._due

    def added(self, started: float) -> None:
        """Steps joined the page in a pass that started at ``started``: rest as long as it took."""
        now = time.monotonic()
        self._due = now + (now - started)

    def until_adding(self) -> float:
        """Seconds until steps may join the page again."""
        return max(0.0, self._due - time.monotonic())
