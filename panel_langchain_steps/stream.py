"""Streaming: text shown as it grows, and a refresh loop that renders in slices.

Calling ``ChatStep.stream(token)`` per token re-renders the whole text for
every token: O(length) per token. Here tokens only land in the run record;
a `Ticker` renders what changed at most every ``interval`` seconds, on the
document's event loop when the steps are served, in slices of bounded time
so that one long trace never holds the server's loop (and every other
session on it). Shown text goes into successive Markdown blocks of about
`BLOCK_CHARS` characters (`StepText`), cut at blank lines outside code
fences, so each refresh re-renders one bounded block and sends only the new
suffix to the browser.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import re
import threading
import time
from collections.abc import Callable, Iterable

from bokeh.document import Document
from panel.viewable import Viewable

#: A block is closed at the first safe cut after it holds this many characters.
BLOCK_CHARS = 32000
#: Longest time one slice of rendering may hold the event loop (seconds).
SLICE_SECONDS = 0.02

_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})")
_FENCE_CLOSE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*\r?")


def soon(function: Callable[[], None]) -> None:
    """Call ``function`` in the running event loop's next turn (now when no loop runs)."""
    try:
        asyncio.get_running_loop().call_soon(function)
    except RuntimeError:
        function()


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
    next-tick callback (so Bokeh runs it as the session's own), awaiting what it returns if that
    is awaitable; ``gone`` if the session is closing.

    The loop adds the callback itself: Bokeh's ``add_next_tick_callback`` called from another
    thread is lost when the loop ends a document hold at that moment (``Document.unhold`` swaps
    the held events): 11-23 lost in 20,000 calls against a loop holding and releasing it.
    """

    async def run() -> None:  # a coroutine, so Bokeh runs it on the loop itself (not in an executor)
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


class StepText:
    """One streamed text section of a step, shown as successive Markdown blocks.

    ``show(text)`` takes the whole text so far (it only grows) and shows
    what is new.

    A block is cut only at a *safe* boundary: after a blank line, outside a
    code fence, before a line that starts at column 0 (so it cannot continue
    a list item or an indented code block). Joined, the blocks are exactly
    the text written.
    """

    def __init__(self, new_block: Callable[[str], Viewable], block_chars: int = BLOCK_CHARS):
        self._new_block = new_block
        self._block_chars = block_chars
        self.length = 0  # characters shown
        self._block: Viewable | None = None
        self._source = ""  # the open block's text
        self._scanned = 0  # where the first line not yet scanned starts in _source
        self._fence: str | None = None  # the open code fence's marker, if any
        self.blocks: list[Viewable] = []

    @property
    def text(self) -> str:
        """Everything shown so far."""
        return "".join(block.object for block in self.blocks[:-1]) + self._source

    def show(self, text: str) -> None:
        """Show ``text``, the section's whole text so far, of which the first ``length`` are shown."""
        new = text[self.length :]
        if not new:
            return
        self.length = len(text)
        self._source += new
        while (cut := self._next_cut()) is not None:
            head, self._source = self._source[:cut], self._source[cut:]
            self._scanned -= cut
            self._set_block(head)
            self._block = None
        if self._source or self._block is None:
            self._set_block(self._source)

    def _set_block(self, text: str) -> None:
        if self._block is None:
            self._block = self._new_block(text)
            self.blocks.append(self._block)
        elif self._block.object != text:
            self._block.object = text

    def _next_cut(self) -> int | None:
        """The first safe cut at or after `_block_chars` in the lines not yet scanned."""
        source = self._source
        while True:
            end = source.find("\n", self._scanned)
            if end < 0:
                return None
            line = source[self._scanned : end]
            if self._fence is None:
                if not line.strip() and end + 1 >= self._block_chars:
                    if end + 1 == len(source):
                        return None  # the next line is not known yet: look again later
                    if not source[end + 1].isspace():
                        self._scanned = end + 1
                        return end + 1
                match = _FENCE_OPEN.match(line)
                if match and not (match.group(1)[0] == "`" and "`" in line[match.end() :]):
                    self._fence = match.group(1)
            else:
                match = _FENCE_CLOSE.fullmatch(line)
                if match and match.group(1)[0] == self._fence[0] and len(match.group(1)) >= len(self._fence):
                    self._fence = None
            self._scanned = end + 1


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

    def served_document(self) -> Document | None:
        return next((doc for doc in self._documents() if doc.session_context), None)

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
        document = self.served_document()
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
