"""Where a turn's top-level steps go: a chat feed, a chat message, or any list-like layout."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import panel as pn
from bokeh.document import Document
from panel.chat import ChatFeed, ChatMessage
from panel.io.state import state
from panel.layout.base import ListLike
from panel.viewable import Viewable

from .safety import title_text

ACCEPTED = "a ChatFeed or ChatInterface, a ChatMessage, a list-like Panel layout (e.g. Column), or None"


def documents_of(viewable: Viewable) -> list[Document]:
    """The Bokeh documents ``viewable`` is currently rendered in."""
    return [state._views[ref][2] for ref in list(viewable._models) if ref in state._views]


class ReplyMessage(ChatMessage):
    """A reply's chat message: as chat history (``serialize()``, ``str()``) it is the turn's answer.

    ``ChatFeed.serialize()`` builds the history for the next model call from
    each message's ``serialize()``: a reply gives the answer text as the model
    wrote it (and, with the handler's ``serialize_steps``, a summary of the
    steps), not the layout of steps.
    """

    def __init__(self, reply: Reply, **params: Any):
        super().__init__(reply.layout, **params)
        self._reply = reply

    def serialize(
        self, prefix_with_viewable_label: bool = True, prefix_with_container_label: bool = True
    ) -> str:
        history = self._reply.history
        return history() if history is not None else ""


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
        self.message: ChatMessage | None = None
        #: The run whose text is the answer now, and the text shown for it.
        self.owner: Any = None
        self.text: Any = None
        #: A function giving the reply as chat history (set by the view).
        self.history: Callable[[], str] | None = None

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
    continues in the paused turn's reply.
    """

    def __init__(self, feed: ChatFeed):
        super().__init__(feed)
        self.feed = feed
        self.user: str | None = None
        self.avatar: Any = None

    def configure(self, user: str | None, avatar: Any) -> None:
        self.user, self.avatar = user, avatar

    def reply(self) -> Reply:
        """A new turn's reply, sent to the feed (a turn that continues a paused one keeps its reply)."""
        reply = Reply()
        feed = self.feed
        params: dict[str, Any] = {"renderers": feed.renderers, **feed.message_params}
        params.update(user=self.user or feed.callback_user, show_edit_icon=False)
        if self.avatar:
            params["avatar"] = self.avatar
        if feed.width:
            params["width"] = int(feed.width - 80)
        reply.message = feed.send(ReplyMessage(reply, **params), respond=False, trigger_post_hook=False)
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
