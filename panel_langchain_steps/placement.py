"""Where top-level steps go: a chat feed, a chat message, or any list-like layout."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import panel as pn
from bokeh.document import Document
from panel.chat import ChatFeed, ChatMessage, ChatStep
from panel.io.state import state
from panel.layout.base import ListLike
from panel.viewable import Viewable

from .safety import title_text

ACCEPTED = "a ChatFeed or ChatInterface, a ChatMessage, a list-like Panel layout (e.g. Column), or None"


def documents_of(viewable: Viewable) -> list[Document]:
    """The Bokeh documents ``viewable`` is currently rendered in."""
    return [state._views[ref][2] for ref in list(viewable._models) if ref in state._views]


class Placement:
    """Appends top-level steps to a layout."""

    def __init__(self, layout: ListLike):
        self.layout = layout

    def configure(self, **options: Any) -> None:
        """Take the handler's feed options (``user``, ``avatar``, ``answer_in_reply``)."""

    def steps_layout(self, root_id: UUID) -> ListLike:
        """Where a root run's top-level steps go."""
        return self.layout

    def answer(self, root_id: UUID) -> Reply | None:
        """The reply whose answer area a root run's final text goes to, if any."""
        return None

    def finish(self, root_id: UUID, summary: str, collapse: bool, paused: bool) -> None:
        """The root run ended: ``summary`` says how; ``paused`` at a LangGraph interrupt."""

    def release(self, root_id: UUID) -> None:
        """The root run ended: forget anything kept for it."""

    def documents(self) -> list[Document]:
        return documents_of(self.layout)


class MessagePlacement(Placement):
    """Appends top-level steps to a chat message's content."""

    def __init__(self, message: ChatMessage):
        if not isinstance(message.object, ListLike):
            contents = [] if message.object in (None, "") else [message.object]
            message.object = pn.Column(*contents, sizing_mode="stretch_width")
        super().__init__(message.object)
        self.message = message

    def documents(self) -> list[Document]:
        return documents_of(self.message)


class Reply:
    """One turn's reply in a chat feed: a card of steps, then the answer.

    The card is collapsed once the turn succeeded (it stays open when it
    failed, was stopped or paused, to show why); the answer (the text of the
    model call that ended the turn) streams below it as the reply's own text.
    """

    def __init__(self) -> None:
        self.steps = pn.Card(
            title="Steps",
            collapsed=False,
            sizing_mode="stretch_width",
            margin=(0, 0, 5, 0),
            css_classes=["chat-steps"],
        )
        self.answer = pn.Column(sizing_mode="stretch_width", margin=0, css_classes=["reply-answer"])
        self.layout = pn.Column(self.steps, self.answer, sizing_mode="stretch_width", margin=0)
        #: The run whose text is the answer now (its blocks sit in ``answer``).
        self.owner: Any = None

    def finish(self, summary: str, collapse: bool) -> None:
        count = _count_steps(self.steps)
        noun = "step" if count == 1 else "steps"
        self.steps.param.update(title=title_text(f"Steps · {count} {noun} · {summary}"), collapsed=collapse)


def _count_steps(layout: ListLike) -> int:
    steps = [obj for obj in layout.objects if isinstance(obj, ChatStep)]
    return len(steps) + sum(_count_steps(step) for step in steps)


class FeedPlacement(Placement):
    """Gives each turn (root run) a reply message of its own in a chat feed.

    A run that starts after a turn paused (a LangGraph interrupt, resumed)
    continues in the paused turn's reply.
    """

    def __init__(self, feed: ChatFeed):
        super().__init__(feed)
        self.feed = feed
        self.user: str | None = None
        self.avatar: Any = None
        self.answer_in_reply = True
        self._replies: dict[UUID, Reply] = {}
        self._paused: Reply | None = None

    def configure(self, user: str | None, avatar: Any, answer_in_reply: bool) -> None:
        self.user, self.avatar, self.answer_in_reply = user, avatar, answer_in_reply

    def reply(self, root_id: UUID) -> Reply:
        reply = self._replies.get(root_id)
        if reply is None:
            reply, self._paused = self._paused, None
            if reply is None:
                reply = Reply()
                self.feed.send(
                    reply.layout,
                    user=self.user or self.feed.callback_user,
                    avatar=self.avatar,
                    respond=False,
                    trigger_post_hook=False,
                )
            else:
                reply.steps.collapsed = False
            self._replies[root_id] = reply
        return reply

    def steps_layout(self, root_id: UUID) -> ListLike:
        return self.reply(root_id).steps

    def answer(self, root_id: UUID) -> Reply | None:
        return self.reply(root_id) if self.answer_in_reply else None

    def finish(self, root_id: UUID, summary: str, collapse: bool, paused: bool) -> None:
        reply = self._replies.get(root_id)
        if reply is not None:
            reply.finish(summary, collapse)
            if paused:
                self._paused = reply

    def release(self, root_id: UUID) -> None:
        self._replies.pop(root_id, None)


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
