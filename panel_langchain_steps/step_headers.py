"""Finished, collapsed steps drawn as lines of one light component.

A `Step` is a Panel `Card`: about 85 KB of Python objects and Bokeh models on
the page, even collapsed with nothing inside. Most steps of a long run are
just that, finished and collapsed, so a run of them in a list of steps is one
`StepHeaders` (one component, two Bokeh models) with a `StepHeader` line
each, drawn like a collapsed step's header. Clicking a line opens the step:
the drawing makes it a real `Step` then, open, in the line's place.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any, ClassVar

import param
from panel.chat import ChatStep
from panel.layout.base import ListLike
from panel.reactive import ReactiveHTML

from .compat import BADGE_LOOKS
from .render import Step


class StepHeader:
    """One finished, collapsed step, shown as a line of a `StepHeaders`.

    It answers as a collapsed `Step` does: ``title``, ``status``,
    ``collapsed``, ``body_text`` and ``serialize()``. Setting ``collapsed`` to
    False opens it, as a click on its line does: a `Step`, open, takes the
    line's place.
    """

    def __init__(
        self,
        key: str,
        kind: str,
        title: str,
        status: str,
        body: Callable[[], list[str]],
        text: Callable[[], list[str]],
        open: Callable[[], None],
    ) -> None:
        self.key = key
        self.kind = kind  # the run's: "tool", "llm", "retriever" or "chain"
        self.title = title  # HTML-escaped, as a `Step`'s
        self.status = status
        self.body = body
        self.text = text
        self._open = open
        self.group: StepHeaders | None = None  # the component it is a line of

    body_text = Step.body_text
    serialize = Step.serialize

    @property
    def collapsed(self) -> bool:
        return True

    @collapsed.setter
    def collapsed(self, collapsed: bool) -> None:
        if not collapsed:
            self._open()

    def show(self, title: str, status: str) -> None:
        """Show a new title or status (the run's record changed)."""
        if (title, status) != (self.title, self.status):
            self.title, self.status = title, status
            if self.group is not None:
                self.group.redraw()


#: A line's own look: a collapsed `Step`'s header (Panel's card header and chevron, the badge dot,
#: the title's size and margins).
LINE_CSS = """
:host { display: block; margin: 4px 0 4px 8px; }
.card-header {
  display: flex; align-items: center; box-sizing: border-box; width: 100%; padding: 1px 0.5em;
  background-color: rgba(0, 0, 0, 0.03); border: unset; border-radius: 0.25rem;
  color: inherit; font: inherit; text-align: left; cursor: pointer;
}
.card-header:hover { box-shadow: 0 0 3px rgba(0, 0, 0, 0.3); }
.card-header svg { flex: none; margin-right: 0.25em; }
.step-title { min-width: 0; }
h3 { margin: 5px 0; font-size: 1.1em; font-weight: normal; overflow-wrap: anywhere; }
.step-badge {
  display: inline-block; width: 12px; height: 12px; border-radius: 50%; margin-right: 6px;
  vertical-align: -1px; box-sizing: border-box;
}
""" + "".join(f".step-badge-{status} {{ {look} }}\n" for status, look in BADGE_LOOKS.items())

_CHEVRON = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="12" height="12" viewBox="0 0 24 24" fill="none" '
    'stroke="currentColor" stroke-width="3" stroke-linecap="round" stroke-linejoin="round">'
    '<path d="M9 6l6 6l-6 6"></path></svg>'
)

#: Draws the lines. Each is a shadow host with the step's classes (``step-tool``...), styled by
#: its own look and by the app's stylesheets for `ChatStep` (``line_css``), as a `Step` is; its
#: title is set as text, never as HTML. A click sets ``opened`` to the line's key.
_DRAW = f"""
if (state.sheets == null) {{
  state.sheets = [{json.dumps(LINE_CSS)}, ...data.line_css].map(css => {{
    const sheet = new CSSStyleSheet()
    sheet.replaceSync(css)
    return sheet
  }})
}}
lines.replaceChildren(...data.headers.map(([key, status, kind, title]) => {{
  const host = document.createElement("div")
  host.className = `step-line step-${{kind}}`
  const root = host.attachShadow({{mode: "open"}})
  root.adoptedStyleSheets = state.sheets
  const header = document.createElement("button")
  header.className = "card-header"
  header.innerHTML = {json.dumps(_CHEVRON)}
  const badge = document.createElement("span")
  badge.className = `step-badge step-badge-${{status}}`
  const heading = document.createElement("h3")
  heading.append(badge, title)
  const box = document.createElement("div")
  box.className = "step-title"
  box.append(heading)
  header.append(box)
  header.addEventListener("click", () => {{ data.opened = key }})
  root.append(header)
  return host
}}))
"""


class StepHeaders(ReactiveHTML):
    """Finished, collapsed steps as one component: a header line each; a click opens one."""

    headers = param.List(
        default=[],
        doc="""
        Each line as ``[key, status, kind, title]``: the title is plain text, shown as text.""",
    )

    line_css = param.List(
        default=[],
        doc="""
        The app's stylesheets for steps (`ChatStep`'s default ``stylesheets``), for each line.""",
    )

    opened = param.String(
        default="",
        doc="""
        The key of the line the user clicked (set by the browser; its step opens).""",
    )

    _template = '<div id="lines" style="display: flex; flex-direction: column"></div>'

    _scripts: ClassVar[dict[str, str]] = {
        "render": "self.draw()",
        "headers": "self.draw()",
        "line_css": "state.sheets = null; self.draw()",
        "draw": _DRAW,
    }

    #: A click opens its step at once (Panel waits 50 ms before acting on other browser changes).
    _priority_changes: ClassVar[list[str]] = ["opened"]

    def __init__(self, **params: Any) -> None:
        params.setdefault("margin", 0)
        params.setdefault("sizing_mode", "stretch_width")
        super().__init__(**params)
        #: The lines, in order.
        self.steps: list[StepHeader] = []

    def show(self, steps: list[StepHeader]) -> None:
        """Show these lines, in this order (at least one)."""
        self.release()
        self.steps = steps
        for step in steps:
            step.group = self
        self.redraw()

    def release(self) -> None:
        """Let its lines go (it leaves the page; Panel cannot sync an empty ``headers``)."""
        for step in self.steps:
            if step.group is self:
                step.group = None
        self.steps = []

    def redraw(self) -> None:
        headers = [[step.key, step.status, step.kind, html.unescape(step.title)] for step in self.steps]
        if headers != self.headers:
            self.headers = headers

    def serialize(self, *args: Any, **kwargs: Any) -> str:
        """The steps as readable text, one after the other."""
        return "\n\n".join(step.serialize() for step in self.steps)

    @param.depends("opened", watch=True)
    def _open(self) -> None:
        key, self.opened = self.opened, ""  # the same line may be clicked again
        if not key:
            return
        for step in self.steps:
            if step.key == key:
                step.collapsed = False
                return


def steps_in(layout: Any) -> list[ChatStep | StepHeader]:
    """The steps that ``layout`` (a layout, a chat message, a step) shows, in order, outside
    of other steps: each a `ChatStep`, or the `StepHeader` of a step drawn as a line."""
    if isinstance(getattr(layout, "object", None), ListLike):
        layout = layout.object  # a ChatMessage
    found: list[ChatStep | StepHeader] = []
    for item in getattr(layout, "objects", []):
        if isinstance(item, StepHeaders):
            found.extend(item.steps)
        elif isinstance(item, ChatStep):
            found.append(item)
        elif isinstance(getattr(item, "objects", None), list) or isinstance(
            getattr(item, "object", None), ListLike
        ):
            found.extend(steps_in(item))
    return found
