"""Every use of Panel's and Bokeh's private attributes, in one place.

Panel does not offer these as public API; each is read here, and nowhere else
in the package, so a Panel release that changes one breaks one small module.
`tests/test_compat.py` checks each on the oldest (1.9) and the newest
supported Panel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import param
from bokeh.document import Document
from panel.chat import ChatFeed, ChatStep
from panel.chat.step import DEFAULT_STATUS_BADGES
from panel.chat.utils import avatar_lookup, build_avatar_pane
from panel.io.state import state
from panel.viewable import Viewable
from panel.widgets.indicators import BooleanStatus

#: A feed's callback states (``panel.chat.feed.CallbackState`` values) while its callback runs.
BUSY_STATES = frozenset({"running", "generating", "stopping"})


def documents_of(viewable: Viewable) -> list[Document]:
    """The Bokeh documents ``viewable`` is currently rendered in."""
    return [state._views[ref][2] for ref in list(viewable._models) if ref in state._views]


def callback_state(feed: ChatFeed) -> str:
    """The state of a feed's callback: "idle", "running", "generating", "stopping" or "stopped"."""
    current = feed._callback_state
    return str(getattr(current, "value", current))


def watch_callback_state(feed: ChatFeed, callback: Callable[[str], None]) -> None:
    """Call ``callback(state)`` whenever the feed's callback state changes (see `callback_state`)."""

    def changed(event: param.parameterized.Event) -> None:
        callback(str(getattr(event.new, "value", event.new)))

    feed.param.watch(changed, "_callback_state")


class PatchingChatStep(ChatStep):
    """A `ChatStep` whose status and title changes patch the page in place.

    `ChatStep` builds a new status badge for every status and re-sets its
    header for every title, and each of those makes Panel and Bokeh walk the
    whole document. Here the badge is recoloured and the title pane (bound to
    ``title``) updates itself: a run's end costs a couple of property patches.
    """

    body = param.Callable(
        default=None,
        doc="""
        A function returning the body's Markdown parts, built or not.""",
    )

    _rename: ClassVar[dict[str, str | None]] = {**ChatStep._rename, "body": None}

    @param.depends("status", "default_badges", watch=True)
    def _render_avatar(self) -> None:
        badge = avatar_lookup(self.status, None, self.default_badges, DEFAULT_STATUS_BADGES)
        new = build_avatar_pane(badge, ["step-avatar"])
        current = self._avatar_placeholder.object
        if isinstance(new, BooleanStatus) and type(current) is type(new):
            current.param.update(value=new.value, color=new.color)
        else:
            self._avatar_placeholder.update(new)

    def _update_header(self, *events: param.parameterized.Event) -> None:
        if self.header is None or self._header_layout.objects != [self.header]:
            super()._update_header(*events)


__all__ = [
    "BUSY_STATES",
    "PatchingChatStep",
    "callback_state",
    "documents_of",
    "watch_callback_state",
]
