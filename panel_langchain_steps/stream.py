"""Streaming: tokens are buffered per step and shown at a bounded refresh rate.

Calling ``ChatStep.stream(token)`` per token re-renders the whole text for
every token: O(length) per token. Here a token only lands in a `StepText`
buffer (a list append under a lock). A `Refresher` shows what was buffered at
most every ``interval`` seconds, on the document's event loop when the steps
are served, as one batched document update. Shown text goes into successive
Markdown blocks, cut at blank lines outside code fences, so each refresh
re-renders one bounded block and sends only the new suffix to the browser.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from contextlib import nullcontext

from bokeh.document import Document
from panel.io.document import hold
from panel.io.state import state
from panel.viewable import Viewable

#: A block is closed at the first safe boundary once it holds this many chars.
BLOCK_CHARS = 2000

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


class StepText:
    """One streamed text section of a step, shown as successive Markdown blocks.

    ``write`` may be called from any thread; ``show`` moves what was written
    into the blocks and must only be called by the `Refresher` (or at the
    run's end), which serialises it.
    """

    def __init__(self, new_block: Callable[[str], Viewable], block_chars: int = BLOCK_CHARS):
        self._new_block = new_block
        self._block_chars = block_chars
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._block: Viewable | None = None
        self._source = ""
        self._scanned = 0
        self._in_fence: str | None = None
        self._cut = 0
        self.blocks: list[Viewable] = []

    def write(self, text: str) -> None:
        with self._lock:
            self._pending.append(text)

    @property
    def text(self) -> str:
        """Everything written so far, shown or not."""
        with self._lock:
            pending = "".join(self._pending)
        return "".join(block.object for block in self.blocks[:-1]) + self._source + pending

    def show(self) -> bool:
        """Move buffered text into the blocks; return whether anything changed."""
        with self._lock:
            if not self._pending:
                return False
            new = "".join(self._pending)
            self._pending.clear()
        self._source += new
        self._scan()
        if self._cut and len(self._source) >= self._block_chars:
            head, self._source = self._source[: self._cut], self._source[self._cut :]
            self._scanned -= self._cut
            self._cut = 0
            if self._block is None:
                self._open_block(head)
            else:
                self._block.object = head
            self._block = None
        if self._block is None:
            self._open_block(self._source)
        else:
            self._block.object = self._source
        return True

    def _open_block(self, text: str) -> None:
        self._block = self._new_block(text)
        self.blocks.append(self._block)

    def _scan(self) -> None:
        """Find the last safe cut in the complete lines not yet scanned.

        A cut is safe after a blank line, outside a code fence, when the next
        line starts at column 0 (so it cannot be a list item's continuation).
        """
        source = self._source
        while True:
            end = source.find("\n", self._scanned)
            if end < 0:
                return
            line = source[self._scanned : end]
            if self._in_fence is None:
                if not line.strip() and end + 1 < len(source) and not source[end + 1].isspace():
                    self._cut = end + 1
                match = _FENCE.match(line)
                if match:
                    self._in_fence = match.group(1)[0] * 3
            elif line.strip().startswith(self._in_fence):
                self._in_fence = None
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
        self._dirty: dict[StepText, None] = {}
        self._lock = threading.Lock()
        # Held while showing: the same lock that guards changes to the steps.
        self._show_lock = lock
        self._timer: threading.Timer | None = None

    def mark(self, text: StepText) -> None:
        """Note that ``text`` has new content; schedule a refresh if none is due."""
        with self._lock:
            self._dirty[text] = None
            if self._timer is not None:
                return
            self._timer = threading.Timer(self.interval, self._fire)
            self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        docs = [doc for doc in self._documents() if doc.session_context]
        if docs:
            docs[0].add_next_tick_callback(state._handle_exception_wrapper(self.refresh, docs[0]))
        else:
            self.refresh()

    def refresh(self) -> None:
        """Show every dirty section now, as one document update."""
        with self._lock:
            dirty, self._dirty = list(self._dirty), {}
            self._timer = None
        if dirty:
            self.show(dirty)

    def show(self, texts: Iterable[StepText]) -> None:
        """Show the given sections now, from any thread."""
        docs = list(self._documents())
        with self._show_lock, hold(docs[0]) if len(docs) == 1 else nullcontext():
            for text in texts:
                text.show()

    def cancel(self) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
