"""Streaming: tokens are buffered per step and shown at a bounded refresh rate.

Calling ``ChatStep.stream(token)`` per token re-renders the whole text for
every token: O(length) per token. Here a token only lands in a `StepText`
buffer (a list append, no lock). A `Refresher` shows what was buffered at
most every ``interval`` seconds, on the document's event loop when the steps
are served, as one batched document update. Shown text goes into successive
Markdown blocks of about `BLOCK_CHARS` characters, cut at blank lines outside
code fences, so each refresh re-renders one bounded block and sends only the
new suffix to the browser. New steps and content for steps already on the
page are queued and added by the refresh too, since each addition to a page
costs a walk over the whole document.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext

from bokeh.document import Document
from panel.chat import ChatStep
from panel.io.document import hold
from panel.io.state import state
from panel.layout.base import ListLike
from panel.viewable import Viewable

#: A block is closed at the first safe cut after it holds this many characters.
BLOCK_CHARS = 32000
#: New steps wait between refreshes this many times as long as the last refresh took.
STEP_BACKOFF = 4

_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})")
_FENCE_CLOSE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*\r?")


class StepText:
    """One streamed text section of a step, shown as successive Markdown blocks.

    ``write`` may be called from any thread, without a lock: writers only
    append to ``_pending``, and ``show`` takes a counted prefix of it, so a
    token appended meanwhile stays for the next ``show``. ``show`` must only be
    called by the `Refresher` (or at the run's end), which serialises it.

    A block is cut only at a *safe* boundary: after a blank line, outside a
    code fence, before a line that starts at column 0 (so it cannot continue
    a list item or an indented code block). Joined, the blocks are exactly
    the text written.
    """

    def __init__(self, new_block: Callable[[str], Viewable], block_chars: int = BLOCK_CHARS):
        self._new_block = new_block
        self._block_chars = block_chars
        self._pending: list[str] = []
        #: Set while the section waits in a `Refresher`; read without a lock by writers.
        self.marked = False
        self._block: Viewable | None = None
        self._source = ""  # the open block's text
        self._scanned = 0  # where the first line not yet scanned starts in _source
        self._fence: str | None = None  # the open code fence's marker, if any
        self.blocks: list[Viewable] = []

    def write(self, text: str) -> None:
        self._pending.append(text)

    @property
    def has_pending(self) -> bool:
        """Whether text was written that is not shown yet."""
        return bool(self._pending)

    @property
    def text(self) -> str:
        """Everything written so far, shown or not."""
        pending = "".join(self._pending[:])
        return "".join(block.object for block in self.blocks[:-1]) + self._source + pending

    def show(self) -> None:
        """Move buffered text into the blocks."""
        count = len(self._pending)
        if not count:
            return
        new = "".join(self._pending[:count])
        del self._pending[:count]
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


class Refresher:
    """Shows dirty `StepText` sections, and new parts of steps, at most every ``interval`` seconds.

    Like ``rich.live.Live``: writers only mark a section dirty, and one timer
    does the rendering. When the steps are served, the refresh runs on the
    document's own event loop, holding the document so all changes go out
    as one update.

    Adding anything to a layout that is on a page makes Panel and Bokeh walk
    the whole document (O(all steps)), so `append` queues additions to such
    layouts, in order, and a refresh makes them all at once. Additions to a
    layout not on a page (a step still being built) are made at once. As
    the document grows, each refresh costs more, so new steps are added at
    most once per `STEP_BACKOFF` times the last refresh's duration: their
    cost per step stays flat. Text is never held back.
    """

    def __init__(
        self,
        interval: float,
        documents: Callable[[], Iterable[Document]],
        lock: threading.RLock,
        report: Callable[[Exception], None],
    ):
        self.interval = interval
        self._documents = documents
        self._report = report
        self._dirty: list[StepText] = []
        self._queued: dict[int, tuple[ListLike, list[Viewable]]] = {}
        self._lock = threading.Lock()
        # Held while showing: the same lock that guards changes to the steps.
        self._show_lock = lock
        self._timer: threading.Timer | None = None
        self._steps_due = 0.0

    def mark(self, text: StepText) -> None:
        """Note that ``text`` has new content; schedule a refresh if none is due.

        The common case (already marked) takes no lock: ``refresh`` clears the
        mark before it shows the section, so a write seen as marked is shown.
        """
        if text.marked:
            return
        with self._lock:
            if text.marked:
                return
            text.marked = True
            self._dirty.append(text)
            timer = self._schedule()
        if timer is not None:
            timer.start()

    def append(self, layout: ListLike, item: Viewable) -> None:
        """Add ``item`` to ``layout``: now if the layout is not on a page, else at the next refresh."""
        with self._lock:
            queued = self._queued.get(id(layout))
            if queued is None and not layout._models:
                timer = None
            else:
                if queued is None:
                    queued = self._queued[id(layout)] = (layout, [])
                queued[1].append(item)
                timer = self._schedule()
        if queued is None:
            layout.append(item)
        elif timer is not None:
            timer.start()

    def _schedule(self) -> threading.Timer | None:
        """A new timer to start (outside the lock), unless one is due already."""
        if self._timer is not None:
            return None
        timer = self._timer = threading.Timer(self.interval, self._fire)
        timer.daemon = True
        return timer

    def _fire(self) -> None:
        docs = [doc for doc in self._documents() if doc.session_context]
        if docs:
            docs[0].add_next_tick_callback(state._handle_exception_wrapper(self._refresh_due, docs[0]))
        else:
            self._refresh_due()

    def _refresh_due(self) -> None:
        try:
            self.refresh(all_steps=False)
        except Exception as error:  # on the timer's thread or the loop: nobody else would see it
            self._report(error)

    def refresh(self, all_steps: bool = True) -> None:
        """Show every dirty section and queued addition now, as one document update.

        With ``all_steps=False`` (the timer), queued steps wait if steps were added too recently.
        """
        with self._lock:
            dirty, self._dirty = self._dirty, []
            self._timer = None
            for text in dirty:
                text.marked = False
        self._apply(dirty, all_steps)

    def show(self, texts: Iterable[StepText]) -> None:
        """Show the given sections now, from any thread, as one update (with any queued additions)."""
        texts = [text for text in texts if text.has_pending]
        if texts:
            self._apply(texts)

    def _apply(self, texts: list[StepText], all_steps: bool = True) -> None:
        failure = None
        with self._show_lock:
            start = time.monotonic()
            steps_due = all_steps or start >= self._steps_due
            if texts or self._any_due(steps_due):
                with self.batch():
                    for text in texts:
                        text.show()  # may queue new blocks: the queue is taken after
                    queued = self._take_due(steps_due)
                    failure = self._extend(queued)
                if steps_due and queued:
                    self._steps_due = time.monotonic() + STEP_BACKOFF * (time.monotonic() - start)
            if self._queued:
                self._retry()
        if failure is not None:
            raise failure

    def _any_due(self, steps_due: bool) -> bool:
        with self._lock:
            return any(self._due(items, steps_due) for _, items in self._queued.values())

    def _take_due(self, steps_due: bool) -> list[tuple[ListLike, list[Viewable]]]:
        with self._lock:
            due = [key for key, (_, items) in self._queued.items() if self._due(items, steps_due)]
            return [self._queued.pop(key) for key in due]

    @staticmethod
    def _extend(queued: list[tuple[ListLike, list[Viewable]]]) -> Exception | None:
        """Add each layout's queued items; one layout's fault must not cost the others theirs."""
        failure = None
        for layout, items in queued:
            try:
                layout.extend(items)
            except Exception as error:
                failure = failure or error
        return failure

    @staticmethod
    def _due(items: list[Viewable], steps_due: bool) -> bool:
        """Whether a layout's queue goes now: only queues of nothing but new steps may wait."""
        return steps_due or not all(isinstance(item, ChatStep) for item in items)

    def _retry(self) -> None:
        with self._lock:
            timer = self._schedule()
        if timer is not None:
            timer.start()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Make the changes in the block one document update.

        The document is held, so its events go out together; and when it is
        not served, Bokeh finds the document's models once at the end instead
        of after every change, which costs O(all models) each time.
        """
        docs = list(self._documents())
        if len(docs) != 1:
            yield
            return
        doc = docs[0]
        with (
            hold(doc),
            # Not on a served document: freezing there skips Panel's hooks that
            # point new components' stylesheets at the server instead of a CDN.
            doc.models.freeze() if not doc.session_context else nullcontext(),
        ):
            yield

    def cancel(self) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
