"""Every use of Panel's and Bokeh's private attributes, in one place.

Panel does not offer these as public API; each is read here, and nowhere else
in the package, so a Panel release that changes one breaks one small module.
`tests/test_compat.py` checks each on the oldest (1.9) and the newest
supported Panel.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import param
from bokeh.document import Document
from panel.chat import ChatFeed, ChatStep
from panel.io.state import state
from panel.layout import Card
from panel.pane import HTML
from panel.viewable import Viewable

#: A feed's callback states (``panel.chat.feed.CallbackState`` values) while its callback runs.
BUSY_STATES = frozenset({"running", "generating", "stopping"})


def documents_of(viewable: Viewable) -> list[Document]:
    """The Bokeh documents ``viewable`` is currently rendered in."""
    return [state._views[ref][2] for ref in list(viewable._models) if ref in state._views]


@contextmanager
def models_found_once(doc: Document) -> Iterator[None]:
    """Within this, Bokeh finds the document's models once, at the end, and only if a change
    asked it to (one that added or removed a model).

    Bokeh walks the whole document to find its models (``doc.models.recompute``) after
    each change that adds or removes one, and Panel's own ``freeze_doc`` walks at the end
    of each such change. ``doc.models.freeze()`` defers them to one walk at its end, but
    walks then even when nothing was added: for a tick that only streams text into a
    page, that walk was most of the tick's cost.
    """
    models = doc.models
    asked = False

    def recompute() -> None:
        nonlocal asked
        asked = True

    shadowed = vars(models).get("recompute")  # an enclosing call's
    models.recompute = recompute
    try:
        yield
    finally:
        if shadowed is None:
            del models.recompute
        else:
            models.recompute = shadowed
        if asked:
            models.recompute()


def session_locked(doc: Document) -> bool:
    """Whether a served document's session lock is held (by the loop handling a message or a
    locked callback, which Bokeh may run on another thread).

    Reads Bokeh's private ``ServerSession._lock`` (Panel's ``_document_lock_held`` reads it too):
    an ``asyncio.Lock`` from Bokeh 3.10, a ``tornado.locks.Lock`` (its semaphore at 0) before.
    """
    lock = getattr(doc.session_context.session, "_lock", None)
    if lock is None:
        return False
    if hasattr(lock, "locked"):
        return lock.locked()
    return getattr(getattr(lock, "_block", None), "_value", 1) == 0


def callback_state(feed: ChatFeed) -> str:
    """The state of a feed's callback: "idle", "running", "generating", "stopping" or "stopped"."""
    current = feed._callback_state
    return str(getattr(current, "value", current))


def watch_callback_state(feed: ChatFeed, callback: Callable[[str], None]) -> None:
    """Call ``callback(state)`` whenever the feed's callback state changes (see `callback_state`)."""

    def changed(event: param.parameterized.Event) -> None:
        callback(str(getattr(event.new, "value", event.new)))

    feed.param.watch(changed, "_callback_state")


def scroll_to_latest(feed: ChatFeed) -> None:
    """Scroll a feed to its end, however far from it the user is."""
    feed._chat_log.scroll_to_latest()


#: The status badge in a step's header: a dot coloured like `ChatStep`'s default badges.
_BADGE = (
    '<span class="step-badge step-badge-{status}" style="display:inline-block;width:12px;height:12px;'
    'border-radius:50%;margin-right:6px;vertical-align:-1px;box-sizing:border-box;{look}"></span>'
)
BADGE_LOOKS = {
    "pending": "border:2px solid #0072b5",
    "running": "background:#ffc107",
    "success": "background:#198754",
    "failed": "background:#dc3545",
}


#: Panel acts on a property changed in the browser 50 ms later (``_debounce``), to merge
#: bursts of changes, unless it is one of the class's ``_priority_changes``. A step the user
#: opens builds its body then, so "collapsed" is acted on at once.
OPENED_AT_ONCE = ["collapsed"]


class ServerBody(param.Parameterized):
    """A step's body, kept on the server (never synced to the browser): built when it is opened."""

    body = param.Callable(
        default=None,
        doc="""
        A function returning the body's Markdown parts, built or not.""",
    )

    text = param.Callable(
        default=None,
        doc="""
        A function returning the body as readable text parts (what ``serialize`` gives).""",
    )

    #: What the step classes add to their ``_rename``: these parameters are not the browser's.
    NOT_SYNCED: ClassVar[dict[str, str | None]] = {"body": None, "text": None}


class PatchingChatStep(ChatStep, ServerBody):
    """A `ChatStep` with a light header: one title pane, patched in place.

    `ChatStep`'s header is a row of a status badge widget and a title pane,
    five Bokeh models a step that make each new step several times dearer to
    build and send. Here the Card's own title pane shows the badge and the
    title, and a status or title change is one property patch.
    """

    title_css_classes = param.List(default=["step-title"])

    _rename: ClassVar[dict[str, str | None]] = {**ChatStep._rename, **ServerBody.NOT_SYNCED}
    _priority_changes: ClassVar[list[str]] = [*ChatStep._priority_changes, *OPENED_AT_ONCE]

    def __init__(self, *objects: Any, **params: Any) -> None:
        # Card's initialisation, without ChatStep's header row (the attributes ChatStep's
        # methods read are set here).
        self._instance = None
        self._failed_title = ""
        Card.__init__(self, *objects, **params)

    @param.depends("status", watch=True)
    def _render_avatar(self) -> None:
        self._update_header()

    def _update_header(self, *events: param.parameterized.Event) -> None:
        badge = _BADGE.format(status=self.status, look=BADGE_LOOKS.get(self.status, ""))
        header = f'<h3 style="margin:0;font-size:1.1em;font-weight:normal">{badge}{self.title}</h3>'
        if self._header is None:
            self._header = HTML(header, css_classes=self.title_css_classes, margin=(5, 0))
            self._header_layout[:] = [self._header]
        elif self._header.object != header:
            self._header.object = header


@functools.cache
def material_chat_step() -> type:
    """panel-material-ui's ``ChatStep`` with a ``body`` parameter that stays on the server."""
    from panel_material_ui.chat import ChatStep as MaterialChatStep

    class MaterialBodyStep(MaterialChatStep, ServerBody):
        _rename: ClassVar[dict[str, str | None]] = {**MaterialChatStep._rename, **ServerBody.NOT_SYNCED}
        _priority_changes: ClassVar[list[str]] = [*MaterialChatStep._priority_changes, *OPENED_AT_ONCE]

    return MaterialBodyStep


__all__ = [
    "BUSY_STATES",
    "PatchingChatStep",
    "callback_state",
    "documents_of",
    "material_chat_step",
    "watch_callback_state",
]
