"""Where a turn's top-level steps go: a chat feed, a chat message, or any list-like layout."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import panel as pn
from bokeh.document import Document
from panel.chat import ChatFeed, ChatMessage
from panel.layout.base import ListLike

from .compat import BUSY_STATES, callback_state, documents_of, watch_callback_state
from .material import card_type
from .safety import title_text

ACCEPTED = "a ChatFeed or ChatInterface, a ChatMessage, a list-like Panel layout (e.g. Column), or None"


class Reply:
    """One turn's reply in a chat feed: a card of steps, then the answer.

    The card is collapsed once the turn succeeded (it stays open when it
    failed, was stopped or paused, to show why); the answer (the text of the
    model call that ended the turn) streams below it as the reply's own text.
    """

    def __init__(self, card: type[pn.Card] = pn.Card) -> None:
        self.steps = card(
            title="Steps",
            collapsed=False,
            sizing_mode="stretch_width",
            margin=(0, 0, 5, 0),
            css_classes=["chat-steps"],
        )
        self.answer = pn.Column(sizing_mode="stretch_width", margin=0, css_classes=["reply-answer"])
        self.layout = pn.Column(self.steps, self.answer, sizing_mode="stretch_width", margin=0)
        self.message: ChatMessage | None = None
        #: The run whose text is the answer now, and the text shown for it.
        self.owner: Any = None
        self.text: Any = None
        #: A function giving the reply as chat history (set by the view).
        self.history: Callable[[], str] | None = None

    def serialize(self, *args: Any, **kwargs: Any) -> str:
        """The reply as chat history: the turn's answer as the model wrote it (and, with the
        handler's ``serialize_steps``, a summary of the steps), never the layout of steps.
        Panel's label options do not apply."""
        return self.history() if self.history is not None else ""

    def finish(self, count: int, summary: str, collapse: bool) -> None:
        noun = "step" if count == 1 else "steps"
        self.steps.param.update(title=title_text(f"Steps · {count} {noun} · {summary}"), collapsed=collapse)


class Placement:
    """Top-level steps of every turn go into one layout."""

    def __init__(self, layout: ListLike):
        self.layout = layout

    def configure(self, user: str | None, avatar: Any) -> None:
        """Take the handler's feed options."""

    def documents(self) -> list[Document]:
        return documents_of(self.layout)


class MessagePlacement(Placement):
    """Top-level steps go into a chat message's content."""

    def __init__(self, message: ChatMessage):
        if not isinstance(message.object, ListLike):
            contents = [] if message.object in (None, "") else [message.object]
            message.object = pn.Column(*contents, sizing_mode="stretch_width")
        super().__init__(message.object)
        self.message = message

    def documents(self) -> list[Document]:
        return documents_of(self.message)


class FeedPlacement(Placement):
    """Each turn gets a reply message of its own in a chat feed.

    A run that starts after a turn paused (a LangGraph interrupt, resumed)
    continues in the paused turn's reply. A turn is one call of the feed's
    callback: top-level runs that start during the same call share its reply
    (a handler given only to a model's or a tool's constructor sees each of
    their runs as a top-level run).
    """

    #: How many of the feed's latest callback calls are remembered.
    CALLS_KEPT = 32

    def __init__(self, feed: ChatFeed):
        super().__init__(feed)
        self.feed = feed
        self.user: str | None = None
        self.avatar: Any = None
        self._numbers = itertools.count(1)
        #: The feed's latest callback calls: (number, started, ended or None while running).
        self._calls: deque[list[Any]] = deque(maxlen=self.CALLS_KEPT)
        self._on_call_end: list[Any] = []
        if callback_state(feed) in BUSY_STATES:
            self._calls.append([next(self._numbers), time.time(), None])
        watch_callback_state(feed, self._callback_state_changed)

    def _callback_state_changed(self, state: str) -> None:
        running = bool(self._calls) and self._calls[-1][2] is None
        if state in BUSY_STATES and not running:
            self._calls.append([next(self._numbers), time.time(), None])
        elif state not in BUSY_STATES and running:
            self._calls[-1][2] = time.time()
            for listener in self._on_call_end:
                listener()

    def on_call_end(self, listener: Any) -> None:
        """Call ``listener()`` whenever a call of the feed's callback ends."""
        self._on_call_end.append(listener)

    def call_at(self, moment: float) -> int | None:
        """The number of the feed's callback call that was running at ``moment`` (None: none was)."""
        for number, started, ended in reversed(self._calls):
            if started <= moment and (ended is None or moment <= ended):
                return number
        return None

    def calling(self, number: int | None) -> bool:
        """Whether callback call ``number`` is still running."""
        if number is None or not self._calls:
            return False
        latest, _, ended = self._calls[-1]
        return latest == number and ended is None

    def configure(self, user: str | None, avatar: Any) -> None:
        self.user, self.avatar = user, avatar

    def reply(self) -> Reply:
        """A new turn's reply, sent to the feed (a turn that continues a paused one keeps its reply)."""
        reply = Reply(card_type(self.feed))
        reply.message = self.feed.send(
            reply.layout,
            user=self.user or self.feed.callback_user,
            avatar=self.avatar,
            respond=False,
            trigger_post_hook=False,
        )
        # As chat history (ChatFeed.serialize(), str(message)) the reply is its answer, whatever
        # the feed's message type (Panel's or panel-material-ui's).
        reply.message.serialize = reply.serialize
        return reply


def placement_for(target: Any) -> Placement:
    """The placement for a handler's ``target``; a `TypeError` for anything else."""
    if target is None:
        return Placement(pn.Column(sizing_mode="stretch_width"))
    if isinstance(target, ChatFeed):
        return FeedPlacement(target)
    if isinstance(target, ChatMessage):
        return MessagePlacement(target)
    if isinstance(target, ListLike):
        return Placement(target)
    raise TypeError(f"target must be {ACCEPTED}; got {type(target).__name__}.")
