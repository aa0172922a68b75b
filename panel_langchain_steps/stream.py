"""Streaming: tokens are buffered per step and shown at a bounded refresh rate.

Calling ``ChatStep.stream(token)`` per token re-renders the whole text for
every token: O(length) per token. Here a token only lands in a `StepText`
buffer (a list append, no lock). A `Refresher` shows what was buffered at
most every ``interval`` seconds, on the document's event loop when the steps
are served, as one batched document update. Shown text goes into successive
Markdown blocks of about `BLOCK_CHARS` characters, cut at blank lines outside
code fences, so each refresh re-renders one bounded block and sends only the
new suffix to the browser.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from contextlib import ExitStack

from bokeh.document import Document
from panel.io.document import hold
from panel.io.state import state
from panel.viewable import Viewable

#: A block is closed at the first safe cut after it holds this many characters.
BLOCK_CHARS = 2000

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
    def text(self) -> str:
        """Everything written so far, shown or not."""
        pending = "".join(self._pending[:])
        return "".join(block.object for block in self.blocks[:-1]) + self._source + pending

    def show(self) -> bool:
        """Move buffered text into the blocks; return whether anything changed."""
        count = len(self._pending)
        if not count:
            return False
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
        return True

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
    """Shows dirty `StepText` sections at most every ``interval`` seconds.

    Like ``rich.live.Live``: writers only mark a section dirty, and one timer
    does the rendering. When the steps are served, the refresh runs on the
    document's own event loop, holding the document so all changes go out
    as one update.
    """

    def __init__(
        self,
        interval: float,
        documents: Callable[[], Iterable[Document]],
        lock: threading.RLock,
    ):
        self.interval = interval
        self._documents = documents
        self._dirty: list[StepText] = []
        self._lock = threading.Lock()
        # Held while showing: the same lock that guards changes to the steps.
        self._show_lock = lock
        self._timer: threading.Timer | None = None

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
            if self._timer is not None:
                return
            timer = self._timer = threading.Timer(self.interval, self._fire)
            timer.daemon = True
        timer.start()

    def _fire(self) -> None:
        docs = [doc for doc in self._documents() if doc.session_context]
        if docs:
            docs[0].add_next_tick_callback(state._handle_exception_wrapper(self.refresh, docs[0]))
        else:
            self.refresh()

    def refresh(self) -> None:
        """Show every dirty section now, as one document update."""
        with self._lock:
            dirty, self._dirty = self._dirty, []
            self._timer = None
            for text in dirty:
                text.marked = False
        if dirty:
            self.show(dirty)

    def show(self, texts: Iterable[StepText]) -> None:
        """Show the given sections now, from any thread, as one document update."""
        with self._show_lock, ExitStack() as stack:
            docs = list(self._documents())
            if len(docs) == 1:
                stack.enter_context(hold(docs[0]))
                stack.enter_context(docs[0].models.freeze())
            for text in texts:
                text.show()

    def cancel(self) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
