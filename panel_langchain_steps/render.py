"""Rendering: what a run record looks like as a step.

Titles say what the run is and how it stands; a step's body is a list of
Markdown parts (tool input and output, model text, reasoning, tool calls,
token usage, documents, progress events, errors) computed from the record,
so it can be built when the step is opened and serialized when it never
was. Every piece of run data goes through `safety` on its way to the page.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any, ClassVar

import param
from panel.chat import ChatStep
from panel.layout import Card
from panel.pane import HTML

from . import usage
from .progress import PROGRESS
from .safety import (
    SafeMarkdown,
    clip,
    code_span,
    code_text,
    escape_markdown,
    inline_text,
    plain_text,
    redact,
    redact_text,
    shorten,
    title_text,
    to_json,
)
from .trace import FAILED, PAUSED, PENDING, RUNNING, STOPPED, SUCCESS, RunRecord

TitleFunction = Callable[[RunRecord], "str | None"]

#: Longest document text shown (``max_chars`` when that is lower).
DOCUMENT_CHARS = 500

#: The ChatStep status that shows each run status.
STEP_STATUS = {
    PENDING: "pending",
    RUNNING: "running",
    SUCCESS: "success",
    PAUSED: "success",
    FAILED: "failed",
    STOPPED: "failed",
}

PAUSE_TEXT = "paused, waiting for input"

_DETAILS = (("cache_read", "cache read"), ("cache_creation", "cache write"), ("reasoning", "reasoning"))

#: Progress events shown in a step (the newest), and the longest text shown of one.
EVENTS_SHOWN = 20
EVENT_CHARS = 500

#: What a model step says when its text is the reply's answer.
ANSWERED = "The answer is shown below the steps."

_KIND_LABELS = {"tool": "Tool", "llm": "Model", "retriever": "Retriever"}
_REASONING_STYLE = {"opacity": "0.75", "font-style": "italic", "border-left": "3px solid #ccc"}


def markdown(text: str = "", css_class: str = "step-message") -> SafeMarkdown:
    """A Markdown pane for untrusted text: it formats, but no markup in it is live."""
    return SafeMarkdown(
        text,
        dedent=False,
        enable_streaming=True,
        css_classes=[css_class],
        styles=_REASONING_STYLE if css_class == "step-reasoning" else {},
        sizing_mode="stretch_width",
        margin=(0, 10),
    )


#: The status badge in a step's header: a dot coloured like `ChatStep`'s default badges.
_BADGE = (
    '<span class="step-badge step-badge-{status}" style="display:inline-block;width:12px;height:12px;'
    'border-radius:50%;margin-right:6px;vertical-align:-1px;box-sizing:border-box;{look}"></span>'
)
_BADGE_LOOKS = {
    "pending": "border:2px solid #0072b5",
    "running": "background:#ffc107",
    "success": "background:#198754",
    "failed": "background:#dc3545",
}


class Step(ChatStep):
    """A `ChatStep` with a light header: one title pane, patched in place.

    `ChatStep`'s header is a row of a status badge widget and a title pane,
    five Bokeh models a step that make each new step several times dearer to
    build and send. Here the Card's own title pane shows the badge and the
    title, and a status or title change is one property patch.

    A step's body may not be built (it is built when the step is opened):
    ``body_text`` and ``serialize()`` give its full text either way.
    """

    body = param.Callable(
        default=None,
        doc="""
        A function returning the body's Markdown parts, built or not.""",
    )

    text = param.Callable(
        default=None,
        doc="""
        A function returning the body as readable text parts (what `serialize` gives).""",
    )

    title_css_classes = param.List(default=["step-title"])

    _rename: ClassVar[dict[str, str | None]] = {**ChatStep._rename, "body": None, "text": None}

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
        badge = _BADGE.format(status=self.status, look=_BADGE_LOOKS.get(self.status, ""))
        header = f'<h3 style="margin:0;font-size:1.1em;font-weight:normal">{badge}{self.title}</h3>'
        if self._header is None:
            self._header = HTML(header, css_classes=self.title_css_classes, margin=(5, 0))
            self._header_layout[:] = [self._header]
        elif self._header.object != header:
            self._header.object = header

    @property
    def body_text(self) -> str:
        """The body as Markdown, whether or not it was ever built."""
        return "\n".join(self.body()) if self.body is not None else ""

    def serialize(self, *args: Any, **kwargs: Any) -> str:
        """The step as readable text: its title, then its body, every value as written."""
        body = "\n\n".join(self.text()) if self.text is not None else self.body_text
        return "\n".join(filter(None, [html.unescape(self.title), body]))


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s"


def label(run: RunRecord) -> str:
    """The run's display name, e.g. "Tool search", "Model gpt-4o" or "Agent math_agent"."""
    if run.kind == "chain" and run.name and run.metadata.get("lc_agent_name") == run.name:
        return f"Agent {run.name}"  # an agent made with create_agent(..., name=...)
    kind = _KIND_LABELS.get(run.kind)
    name = run.name or {"llm": "model", "tool": "tool", "retriever": "retriever"}.get(run.kind, "step")
    return f"{kind} {name}" if kind else name


def status_text(run: RunRecord) -> str:
    """How the run stands, e.g. "running…", "done in 1.2 s", "stopped after 3.0 s"."""
    took = format_duration(run.elapsed)
    if run.status == PENDING:
        return "waiting"
    if run.status == RUNNING:
        return "running…"
    if run.status == PAUSED:
        return PAUSE_TEXT
    if run.note:
        return run.note
    if run.status == SUCCESS:
        return f"done in {took}"
    if run.status == FAILED and run.error:
        return f"failed: {run.error.get('type', 'error')} after {took}"
    if run.status == FAILED:
        return f"failed after {took}"
    return f"stopped after {took}"


def default_title(run: RunRecord, within: str | None = None, answered: bool = False) -> str:
    """The built-in title for the run's current status; ``within``: the graph node it stands for;
    ``answered``: its text is the reply's answer."""
    name = f"{within} › {label(run)}" if within else label(run)
    where = " · answer below" if answered else ""
    return f"{name}{where} · {status_text(run)}"


def count(number: int, noun: str) -> str:
    """ "1 tool call", "3 tool calls"."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def calls_text(numbers: dict[str, Any]) -> str:
    """ "3 tool calls, 2 model calls" from `usage.summary` numbers."""
    return f"{count(numbers['tool_calls'], 'tool call')}, {count(numbers['model_calls'], 'model call')}"


def turn_summary(runs: list[RunRecord], prices: usage.Prices | None = None) -> str:
    """A turn's numbers for its header: calls, tokens and (priced) cost."""
    numbers = usage.summary(runs, prices)
    parts = [calls_text(numbers)]
    if numbers["total_tokens"]:
        parts.append(f"{numbers['total_tokens']:,} tokens")
    if numbers["cost"] is not None:
        parts.append(usage.format_cost(numbers["cost"]))
    return " · ".join(parts)


class Renderer(param.Parameterized):
    """Turns run records into step titles and body parts, as the handler's options say."""

    context_exception = param.String(default="summary")
    title_function = param.Callable(default=None)
    max_chars = param.Integer(default=20_000, allow_None=True)
    prices = param.Dict(default={})
    context_windows = param.Dict(default={})

    def __init__(self, report: Callable[[RunRecord, str, BaseException], None], **params: Any):
        super().__init__(**params)
        self._report = report

    def title(self, run: RunRecord, within: str | None = None, answered: bool = False) -> str:
        """The title for the run's status: the user's title function, else ours; always inert.

        ``within``: the LangGraph node the run's step also stands for; ``answered``: its text
        is the reply's answer.
        """
        if self.title_function is not None:
            try:
                custom = self.title_function(run)
            except Exception as error:
                self._report(run, "title function", error)
            else:
                if custom is not None:
                    return title_text(str(custom))
        return title_text(default_title(run, within, answered))

    def body(
        self,
        run: RunRecord,
        *,
        shows_error: bool,
        answer_below: bool,
        plain: bool = False,
        events: list[dict[str, Any]] | None = None,
    ) -> list[tuple[str, str]]:
        """The step's body as ``(key, markdown)`` parts, in order.

        Keys starting with ``"text:"`` are streamed sections (they only grow);
        ``answer_below``: the run's text is the reply's answer, shown there.
        ``plain``: readable text instead of Markdown (`Step.serialize`), every
        value as written (redacted, never escaped). ``events``: the progress
        shown (default: the run's own).
        """
        data = self._plain if plain else self._data
        parts: list[tuple[str, str]] = []
        if run.kind == "tool":
            parts += data("input", run.inputs, "Input")
        elif run.kind == "retriever":
            parts += data("query", run.inputs, "Query")
        for section in ("reasoning", "text"):
            text = run.text_of(section)
            if text and section == "text" and answer_below:
                parts.append(("answered", ANSWERED if plain else f"*{ANSWERED}*"))
            elif text:
                parts.append((f"text:{section}", text))
        events = run.events if events is None else events
        if events:
            parts.append(("events", self._events(events, plain)))
        for number, call in enumerate(run.tool_calls):
            args = call.get("args")
            if isinstance(args, str) and not plain:  # still streaming: the JSON so far
                heading = f"**Calls {inline_text(str(call.get('name')))}**"
                parts.append((f"call:{number}", f"{heading}\n\n{code_text(args, self.max_chars, 'json')}"))
            else:
                parts += data(f"call:{number}", args, f"Calls {call.get('name')}")
        footer = self.footer(run, markdown=not plain)
        if footer:
            parts.append(("usage", footer if plain else f"*{footer}*"))
        if run.ended:
            if run.kind == "tool" and run.status == SUCCESS:
                parts += data("output", run.outputs, "Output")
            elif run.kind == "retriever" and run.status == SUCCESS:
                parts += self._documents((run.outputs or {}).get("documents", []), plain)
        if shows_error and run.error and self.context_exception != "ignore":
            parts.append(("error", self._error(run.error, plain)))
        return parts

    def footer(self, run: RunRecord, markdown: bool = False) -> str:
        """A model run's numbers as one line: tokens, model, speed, cost and context window."""
        if run.kind != "llm" or not (run.usage or (run.model and run.ended)):
            return ""
        counts = usage.tokens(run.usage)
        facts = [f"Tokens: {counts['input']:,} in · {counts['output']:,} out"] if run.usage else []
        for key, name in (
            ("cache_read", "cache read"),
            ("cache_creation", "cache write"),
            ("reasoning", "reasoning"),
        ):
            if counts[key]:
                facts.append(f"{counts[key]:,} {name}")
        if run.model:
            facts.append(inline_text(run.model) if markdown else shorten(run.model))
        first, rate = usage.speed(run) if run.streamed else (None, None)
        if first is not None:
            facts.append(f"first token {format_duration(first)}")
        if rate is not None and run.ended:
            facts.append(f"{rate:,.0f} tokens/s")
        priced = usage.cost(run, self.prices)
        if priced is not None:
            facts.append(usage.format_cost(priced))
        window = self.context_windows.get(run.model or "")
        if window and counts["input"]:
            facts.append(f"context {counts['input'] / window:.0%} of {window:,}")
        return " · ".join(facts)

    def _events(self, events: list[dict[str, Any]], plain: bool) -> str:
        """Progress events as one line each, the newest `EVENTS_SHOWN`: text as text, data as JSON."""
        lines = [
            f"{len(events) - EVENTS_SHOWN:,} earlier"
            if plain
            else f"*{len(events) - EVENTS_SHOWN:,} earlier*"
        ]
        lines = lines if len(events) > EVENTS_SHOWN else []
        for event in events[-EVENTS_SHOWN:]:
            name, value = str(event.get("name")), event.get("data")
            text = (
                value
                if isinstance(value, str)
                else json.dumps(redact(value), ensure_ascii=False, default=str)
            )
            text = shorten(text, EVENT_CHARS)
            if plain:
                lines.append(text if name == PROGRESS else f"{shorten(name)}: {text}")
                continue
            shown = escape_markdown(text) if isinstance(value, str) else code_span(text)
            lines.append(f"↳ {shown}" if name == PROGRESS else f"**{inline_text(name)}**: {shown}")
        return "\n".join(lines) if plain else "\n\n".join(lines)

    def _data(self, key: str, value: Any, heading: str) -> list[tuple[str, str]]:
        """Structured data as a JSON block, text as text, under a heading."""
        if value is None or value == "":
            return []
        if isinstance(value, str):
            body = plain_text(value, self.max_chars)
        else:
            body = code_text(to_json(redact(value)), self.max_chars, "json")
        return [(key, f"**{inline_text(heading)}**\n\n{body}")]

    def _plain(self, key: str, value: Any, heading: str) -> list[tuple[str, str]]:
        """Data as readable text under a heading: text as written, structures as JSON (redacted)."""
        if value is None or value == "":
            return []
        text = redact_text(value) if isinstance(value, str) else to_json(redact(value))
        shown, note = clip(text, self.max_chars)
        return [(key, f"{shorten(heading)}:\n{shown}{note}")]

    def _documents(self, documents: list[dict[str, Any]], plain: bool = False) -> list[tuple[str, str]]:
        if not documents:
            return [("documents", "No documents found." if plain else "*No documents found.*")]
        parts = []
        limit = min(DOCUMENT_CHARS, self.max_chars or DOCUMENT_CHARS)
        for number, document in enumerate(documents, 1):
            metadata = redact(document.get("metadata") or {})
            source = metadata.get("source") or metadata.get("title") or f"Document {number}"
            content = str(document.get("page_content", ""))
            if plain:
                shown, note = clip(redact_text(content), limit)
                parts.append((f"document:{number}", f"{number}. {shorten(str(source))}:\n{shown}{note}"))
            else:
                snippet = plain_text(content, limit)
                parts.append((f"document:{number}", f"**{number}. {inline_text(str(source))}**\n\n{snippet}"))
        return parts

    def _error(self, error: dict[str, str], plain: bool = False) -> str:
        if self.context_exception == "verbose" and error.get("traceback"):
            if plain:
                return clip(redact_text(error["traceback"].rstrip()), self.max_chars)[0]
            return code_text(error["traceback"].rstrip(), self.max_chars, "python")
        if plain:
            message = clip(redact_text(error.get("message", "")), self.max_chars)[0]
            return f"{shorten(error.get('type', 'Error'))}: {message}"
        name = inline_text(error.get("type", "Error"))
        return f"**{name}**: {plain_text(error.get('message', ''), self.max_chars)}"
