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

ACCEPTED = "a ChatFeed or ChatInterface, a ChatMessage, a list-like Panel layout (e.g. Column), or None"


def documents_of(viewable: Viewable) -> list[Document]:
    """The Bokeh documents ``viewable`` is currently rendered in."""
    return [state._views[ref][2] for ref in list(viewable._models) if ref in state._views]


class Placement:
    """Appends top-level steps to a layout."""

    def __init__(self, layout: ListLike):
        self.layout = layout

    def attach(self, root_id: UUID, step: ChatStep) -> None:
        self.layout.append(step)

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


class FeedPlacement(Placement):
    """Gives each root run a message of its own in a chat feed."""

    def __init__(self, feed: ChatFeed, user: str | None, avatar: Any):
        super().__init__(feed)
        self.feed = feed
        self.user = user
        self.avatar = avatar
        self._messages: dict[UUID, ListLike] = {}

    def attach(self, root_id: UUID, step: ChatStep) -> None:
        steps = self._messages.get(root_id)
        if steps is not None:
            steps.append(step)
            return
        steps = self._messages[root_id] = pn.Column(step, sizing_mode="stretch_width", margin=0)
        self.feed.send(
            steps,
            user=self.user or self.feed.callback_user,
            avatar=self.avatar,
            respond=False,
            trigger_post_hook=False,
        )

    def release(self, root_id: UUID) -> None:
        self._messages.pop(root_id, None)


def placement_for(target: Any, user: str | None = None, avatar: Any = None) -> Placement:
    """The placement for a handler's ``target``; a `TypeError` for anything else."""
    if target is None:
        return Placement(pn.Column(sizing_mode="stretch_width"))
    if isinstance(target, ChatFeed):
        return FeedPlacement(target, user, avatar)
    if isinstance(target, ChatMessage):
        return MessagePlacement(target)
    if isinstance(target, ListLike):
        return Placement(target)
    raise TypeError(f"target must be {ACCEPTED}; got {type(target).__name__}.")
