"""Where a turn's top-level steps go: a chat feed, a chat message, or any list-like layout.

A `Placement` gives each new turn its `LayoutNode` and says when a turn's
reply goes on; a `FeedPlacement` also makes each turn's `Reply` message and
tells its listener (the view) what the feed does: its callback starting,
ending or stopped, and messages added or removed.
"""

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

from .answer import repeats
from .compat import BUSY_STATES, callback_state, documents_of, scroll_to_latest, watch_callback_state
from .material import card_type
from .render import markdown
from .safety import title_text
from .steps_model import LayoutNode, Turn

#: What the chat input says while a paused run waits for the user's decision.
DECIDE_FIRST = "Approve or reject the pending call above to continue"

#: Below an answer whose run was stopped.
STOPPED_NOTE = "*⏹ Stopped: this answer is incomplete.*"

#: The steps card's title while its turn runs.
RUNNING_TITLE = "Steps · running…"

ACCEPTED = "a ChatFeed or ChatInterface, a ChatMessage, a list-like Panel layout (e.g. Column), or None"


class Reply:
    """One turn's reply in a chat feed: a card of steps, the answer, then the app's own text.

    The card is collapsed once the turn succeeded (it stays open when it
    failed, was stopped or paused, to show why); the answer (what the turn
    produced, see `answer.py`) streams below it as the reply's own text.
    The steps go into a column that the card holds from the start (see
    `material.py`: a React card can miss a change of its children).

    Text the app streams into the reply itself (``chat.stream(text,
    message=reply_message)``, as apps written for Panel's former handler do)
    goes into a Markdown block of its own, last: Panel streams into a
    message's last text pane. It is shown unless it repeats the answer.
    """

    def __init__(self, card: type[pn.Card] = pn.Card) -> None:
        self.steps = pn.Column(sizing_mode="stretch_width", margin=0)
        self.card = card(
            self.steps,
            title=RUNNING_TITLE,
            collapsed=False,
            sizing_mode="stretch_width",
            margin=(0, 0, 5, 0),
            css_classes=["chat-steps"],
        )
        self.answer = pn.Column(sizing_mode="stretch_width", margin=0, css_classes=["reply-answer"])
        #: What the app streams into the reply message itself, hidden until the view shows it.
        self.added = markdown("", "reply-added")
        self.added.visible = False
        #: Opens the turn in a `TraceView` (shown once the turn ended with steps).
        self.trace_button = pn.widgets.Button(
            label="Trace view", css_classes=["reply-trace"], visible=False, margin=(0, 0, 5, 0)
        )
        #: Where the trace view opens when the handler has no ``trace_target``.
        self.trace_area = pn.Column(sizing_mode="stretch_width", margin=0, visible=False)
        self.layout = pn.Column(
            self.card,
            self.trace_button,
            self.trace_area,
            self.answer,
            self.added,
            sizing_mode="stretch_width",
            margin=0,
        )
        self.message: ChatMessage | None = None
        #: The run whose text is the answer now, and the text shown for it.
        self.owner: Any = None
        self.text: Any = None
        self.ended = False
        self.stopped = False
        #: A function giving the reply as chat history (set by the view).
        self.history: Callable[[], str] | None = None

    def serialize(self, *args: Any, **kwargs: Any) -> str:
        """The reply as chat history: the turn's answer as the model wrote it (and, with the
        handler's ``serialize_steps``, a summary of the steps), never the layout of steps.
        Panel's label options do not apply."""
        return self.history() if self.history is not None else self.added_text("")

    def added_text(self, answer: str) -> str:
        """The app's own text that the reply shows after ``answer``: "" when it repeats it."""
        added = self.added.object or ""
        return "" if repeats(answer, added) else added.strip()

    def show_added(self, answer: str) -> None:
        """Show the app's own text, unless it repeats ``answer`` (the answer shows it already)."""
        shown = bool(self.added_text(answer))
        if self.added.visible != shown:
            self.added.visible = shown

    def clear_answer(self) -> None:
        """Take the answer away (its run turned out to call tools)."""
        self.answer.objects = []
        self.text, self.stopped = None, False

    def mark_stopped(self) -> None:
        """Say that the answer was cut short: the user stopped its run."""
        if not self.stopped:
            self.stopped = True
            self.answer.append(markdown(STOPPED_NOTE, "answer-stopped"))

    def running(self) -> None:
        """The reply's turn goes on again (a paused turn continues): open, and say so."""
        if self.ended:
            self.ended = False
            self.card.param.update(title=RUNNING_TITLE, collapsed=False, visible=True)

    def finish(self, count: int, summary: str, collapse: bool, failed: int = 0) -> None:
        """The turn ended: say how many steps it took, how many failed, and how it ended.

        A turn without steps (nothing it ran is shown) has no card: its answer is the reply.
        """
        self.ended = True
        noun = "step" if count == 1 else "steps"
        parts = [f"{count} {noun}", *([f"{failed} failed"] if failed else []), summary]
        self.card.param.update(
            title=title_text(" · ".join(["Steps", *parts])), collapsed=collapse, visible=count > 0
        )
        if self.trace_button.visible != (count > 0):
            self.trace_button.visible = count > 0

    def show_trace(self, view: Any) -> None:
        """Show ``view`` (the turn's `TraceView`) in the reply, or take it away if it shows one."""
        shown = not self.trace_area.visible
        self.trace_area.param.update(objects=[view] if shown else [], visible=shown)
        self.trace_button.label = "Close trace view" if shown else "Trace view"


class Placement:
    """Top-level steps of every turn go into one layout."""

    def __init__(self, layout: ListLike):
        self.layout = layout
        self._node = LayoutNode(layout)

    def notify(self, listener: Any) -> None:
        """Tell ``listener`` what the target does (a feed's calls and messages; nothing here)."""

    def configure(self, user: str | None, avatar: Any) -> None:
        """Take the handler's feed options."""

    def new_turn(self, root_id: str, started: float) -> Turn:
        """The turn of a new root run that started at ``started``: here, in the one layout."""
        return Turn(root_id, self._node)

    def open_reply(self, turn: Turn) -> bool:
        """Make the turn's reply message if it has none yet; True if one was made."""
        return False

    def reply_goes_on(self, turn: Turn, turns: list[Turn]) -> bool:
        """Whether the ended ``turn``'s reply, which shows ``turns``, is still going on."""
        return False

    def await_decision(self, waiting: bool) -> None:
        """Whether a paused run waits for the user's Approve or Reject (a feed holds new messages)."""

    def keep_in_view(self, reply: Reply) -> None:
        """Scroll the newest reply's end into view (it started, ended, or asks for a decision)."""

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
        self._listener: Any = None
        #: The latest turn that started in a callback call: the next turn of that call shares its reply.
        self.last_turn: Turn | None = None
        #: A reply sent when the feed's callback started, before its turn's first run.
        self.waiting: Reply | None = None
        self.deciding = False
        self._placeholder: str | None = None
        feed.param.watch(self._keep_held, "disabled")
        if callback_state(feed) in BUSY_STATES:
            self._calls.append([next(self._numbers), time.time(), None])
        watch_callback_state(feed, self._callback_state_changed)
        feed.param.watch(self._objects_changed, "objects")

    def notify(self, listener: Any) -> None:
        """Tell ``listener`` when the feed's callback starts (``call_started()``), ends
        (``call_ended()``) or was stopped (``call_stopped()``), and when messages are removed
        (``messages_removed(present)``, the ids of those left) or added (``messages_added(added)``)."""
        self._listener = listener

    def _callback_state_changed(self, state: str) -> None:
        running = bool(self._calls) and self._calls[-1][2] is None
        listener = self._listener
        if state in BUSY_STATES and not running:
            self._calls.append([next(self._numbers), time.time(), None])
            if listener is not None:
                listener.call_started()
        elif state not in BUSY_STATES and running:
            self._calls[-1][2] = time.time()
            if listener is not None:
                listener.call_ended()
        if state == "stopped" and listener is not None:  # the stop button: stop the runs too
            listener.call_stopped()

    def _objects_changed(self, event: Any) -> None:
        if self._listener is None:
            return
        self._listener.messages_removed({id(obj) for obj in event.new})
        before = {id(obj) for obj in event.old}
        added = [obj for obj in event.new if id(obj) not in before]
        if added:
            self._listener.messages_added(added)

    def new_turn(self, root_id: str, started: float) -> Turn:
        """A new turn: one that starts in the same callback call as the last shares its reply."""
        call = self.call_at(started or time.time())
        last = self.last_turn
        if call is not None and last is not None and last.call == call:
            turn = Turn(root_id, last.node, last.reply, call)
        else:
            turn = Turn(root_id, LayoutNode(None), call=call)
        if call is not None:
            self.last_turn = turn
        return turn

    def open_reply(self, turn: Turn) -> bool:
        node = turn.node
        if node.target is None:
            node.reply = self.reply()
            node.target = node.reply.steps
            return True
        if turn.root is not None and not turn.root.ended:
            node.reply.running()  # a paused turn's reply, continued
        return False

    def reply_goes_on(self, turn: Turn, turns: list[Turn]) -> bool:
        """Its callback call, or another of its turns, is still running."""
        return self.calling(turn.call) or any(t.root is None or not t.root.ended for t in turns)

    def drop_repeats(self, messages: list[Any], answer: str) -> None:
        """Remove messages that only repeat ``answer`` (apps written for Panel's former
        ``PanelCallbackHandler`` often return the answer from the callback too)."""
        for message in messages:
            shown = getattr(message, "object", None)
            shown = getattr(shown, "content", shown)
            if isinstance(shown, str) and repeats(answer, shown):
                self.feed.remove(message)

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
        """A new turn's reply: the one sent ahead for it, else a new one in the feed."""
        reply, self.waiting = self.waiting, None
        if reply is not None and reply.message in self.feed.objects:
            return reply
        reply = Reply(card_type(self.feed))
        reply.message = self.feed.send(
            reply.layout,
            user=self.user or self.feed.callback_user,
            avatar=self.avatar,
            respond=False,
            trigger_post_hook=False,
        )
        scroll_to_latest(self.feed)
        # As chat history (ChatFeed.serialize(), str(message)) the reply is its answer, whatever
        # the feed's message type (Panel's or panel-material-ui's).
        reply.message.serialize = reply.serialize
        return reply

    def send_ahead(self) -> None:
        """The feed's callback started: show its reply, running, before the first run starts."""
        if self.waiting is None:
            self.waiting = self.reply()

    def withdraw(self) -> None:
        """The callback ended without a turn: take back the reply sent ahead for it (unless the app
        wrote into it: then it is that text alone)."""
        reply, self.waiting = self.waiting, None
        if reply is None or reply.message not in self.feed.objects:
            return
        if reply.added_text(""):
            reply.finish(0, "", collapse=True)
            reply.show_added("")
        else:
            self.feed.remove(reply.message)

    def await_decision(self, waiting: bool) -> None:
        """While a decision is pending (and its resumed run goes on), no new message can be sent:
        a new turn on the same conversation would leave the paused one unanswerable."""
        if waiting == self.deciding:
            return
        self.deciding = waiting
        widget = getattr(self.feed, "active_widget", None)
        if widget is not None and hasattr(widget, "placeholder"):
            if waiting:
                self._placeholder, widget.placeholder = widget.placeholder, DECIDE_FIRST
            elif self._placeholder is not None:
                widget.placeholder, self._placeholder = self._placeholder, None
        self.feed.disabled = waiting

    def _keep_held(self, event: Any) -> None:
        # The feed enables itself when its callback ends, which may be after the pause.
        if self.deciding and not event.new:
            self.feed.disabled = True

    def keep_in_view(self, reply: Reply) -> None:
        if self.feed.objects and self.feed.objects[-1] is reply.message:
            scroll_to_latest(self.feed)


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
