"""The bar that moves through a long list of steps: one window of them on the page at a time.

A step (or a reply) with more child steps than ``max_steps`` shows one
window of them and this bar: which steps show ("Steps 21–40 of 1,002"), the
first and latest windows, the one before and after, a step by its number,
and a step by its text. Moving replaces the window: the page never holds
more than one window of a list, wherever the user goes.
"""

from __future__ import annotations

from collections.abc import Callable

import panel as pn

#: Where a window starts: a child's index, or None for the newest window (it follows the run).
Start = int | None


class Navigator:
    """The window bar of one list of steps; ``move(start)`` and ``find(text)`` act on it."""

    def __init__(self, move: Callable[[Start], None], find: Callable[[str], None]) -> None:
        self._start = 0
        self._window = 1
        self._count = 0
        self.label = pn.pane.HTML("", css_classes=["steps-window"], margin=(8, 8))
        self.first = pn.widgets.Button(label="First steps", css_classes=["steps-first"], margin=(2, 4))
        self.earlier = pn.widgets.Button(label="◀ Earlier", css_classes=["steps-earlier"], margin=(2, 4))
        self.later = pn.widgets.Button(label="Later ▶", css_classes=["steps-later"], margin=(2, 4))
        self.latest = pn.widgets.Button(label="Latest steps", css_classes=["steps-latest"], margin=(2, 4))
        self.number = pn.widgets.IntInput(
            placeholder="Go to step", value=None, width=110, css_classes=["steps-goto"], margin=(2, 4)
        )
        self.search = pn.widgets.TextInput(
            placeholder="Find a step", width=170, css_classes=["steps-find"], margin=(2, 4)
        )
        self.first.on_click(lambda _: move(0))
        self.earlier.on_click(lambda _: move(max(0, self._start - self._window)))
        self.later.on_click(lambda _: move(self._later()))
        self.latest.on_click(lambda _: move(None))
        self.number.param.watch(lambda event: event.new and move(max(0, event.new - 1)), "value")
        # Enter finds the next step that matches (again: the one after it).
        self.search.param.watch(
            lambda _: self.search.value_input and find(self.search.value_input), "enter_pressed"
        )
        self.layout = pn.Row(
            self.first,
            self.earlier,
            self.label,
            self.later,
            self.latest,
            self.number,
            self.search,
            css_classes=["steps-navigator"],
            margin=(2, 8),
        )

    def show(self, start: int, window: int, count: int, note: str = "") -> None:
        """Say which steps show: ``window`` of ``count`` from ``start`` (and ``note``, e.g. "not found")."""
        self._start, self._window, self._count = start, window, count
        shown = min(window, count - start)
        text = f"Steps {start + 1:,}–{start + shown:,} of {count:,}" + (f" · {note}" if note else "")
        if self.label.object != text:
            self.label.object = text
        at_start, at_end = start == 0, start + shown >= count
        for button, disabled in (
            (self.first, at_start),
            (self.earlier, at_start),
            (self.later, at_end),
            (self.latest, at_end),
        ):
            if button.disabled != disabled:
                button.disabled = disabled

    def _later(self) -> Start:
        start = self._start + self._window
        return None if start + self._window >= self._count else start
