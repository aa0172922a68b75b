"""Streamed text shown as it grows, in bounded Markdown blocks.

Calling ``ChatStep.stream(token)`` per token re-renders the whole text for
every token: O(length) per token. Here tokens only land in the run record,
and a view shows the text at its own rate (`schedule.Ticker`). Shown text
goes into successive Markdown blocks of about `BLOCK_CHARS` characters
(`StepText`), cut at blank lines outside code fences, so each refresh
re-renders one bounded block and sends only the new suffix to the browser.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from panel.viewable import Viewable

#: A block is closed at the first safe cut after it holds this many characters.
BLOCK_CHARS = 32000

_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})")
_FENCE_CLOSE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*\r?")


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
