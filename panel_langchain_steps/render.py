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
from typing import Any

from . import usage
from .compat import PatchingChatStep
from .progress import PROGRESS
from .safety import (
    REDACTED,
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

#: Progress events shown in a step (the newest), and the longest text shown of one.
EVENTS_SHOWN = 20
EVENT_CHARS = 500

#: What a step says when its text (a model's, or a chain's result) is the reply's answer.
ANSWERED = "The answer is shown below the steps."

_KIND_LABELS = {"tool": "Tool", "llm": "Model", "retriever": "Retriever"}
#: Longest key argument shown in a tool's title.
ARGUMENT_CHARS = 40
#: Text inside a step is the size of the reply's own text (ChatStep makes it 1.25 times larger).
STEP_CSS = ".step-message { font-size: inherit; }"
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


class Step(PatchingChatStep):
    """A run's step: a `ChatStep` with a light header, one title pane patched in place.

    A step's body may not be built (it is built when the step is opened):
    ``body_text`` and ``serialize()`` give its full text either way.
    """

    def __init__(self, *objects: Any, **params: Any) -> None:
        # After ChatStep's default stylesheets (an app may set them), not instead of them.
        params["stylesheets"] = [*params.get("stylesheets", type(self).param.stylesheets.default), STEP_CSS]
        super().__init__(*objects, **params)

    @property
    def content(self) -> Step:
        """The layout that its body and child steps go into: the step itself."""
        return self

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
    """The run's display name, e.g. "Tool search", "Tool get_weather · Paris", "Model gpt-4o" or
    "Agent math_agent"."""
    if run.kind == "chain" and run.name and run.metadata.get("lc_agent_name") == run.name:
        return f"Agent {run.name}"  # an agent made with create_agent(..., name=...)
    kind = _KIND_LABELS.get(run.kind)
    return f"{kind} {shown_name(run)}" if kind else shown_name(run)


def shown_name(run: RunRecord) -> str:
    """The run's name as every view shows it: a tool's with its key arguments ("get_weather · Paris")."""
    name = run.name or {"llm": "model", "tool": "tool", "retriever": "retriever"}.get(run.kind, "step")
    argument = key_argument(run.inputs) if run.kind == "tool" else ""
    return f"{name} · {argument}" if argument else name


def key_argument(inputs: Any) -> str:
    """A tool call's plain arguments as one short line ("Paris", "USD, JPY"), or "".

    Only text and numbers are shown; secret-named arguments and secret-shaped
    values never are.
    """
    if isinstance(inputs, dict):
        values = [
            str(value)
            for value in redact(inputs).values()
            if isinstance(value, str | int | float) and not isinstance(value, bool)
        ]
        inputs = ", ".join(value for value in values if value and REDACTED not in value)
    if not isinstance(inputs, str) or REDACTED in redact_text(inputs):
        return ""
    return shorten(inputs, ARGUMENT_CHARS)


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


#: The fields a ``title`` template may use, with what each says.
TITLE_FIELDS = {
    "label": (
        "the run's kind and name, and a tool's arguments, e.g. \"Tool get_weather · Paris\" "
        '(after its graph node\'s: "agent › Tool search")'
    ),
    "node": "the LangGraph node the step also stands for, else empty",
    "name": "the run's name",
    "kind": '"chain", "tool", "llm" or "retriever"',
    "status": '"pending", "running", "success", "failed", "stopped" or "paused"',
    "state": 'how it stands, e.g. "running…" or "done in 1.2 s" ("answer below · done in 1.2 s" for '
    "the step whose text became the reply's answer)",
    "elapsed": 'its time so far, e.g. "1.2 s"',
    "model": "the model's name (model runs), else empty",
}

DEFAULT_TITLE = "{label} · {state}"


def title_fields(run: RunRecord, within: str | None = None, answered: bool = False) -> dict[str, str]:
    """The values of a title template's fields for ``run``; ``within``: the graph node it stands for;
    ``answered``: its text is the reply's answer."""
    return {
        "label": f"{within} › {label(run)}" if within else label(run),
        "node": within or "",
        "name": run.name or "",
        "kind": run.kind,
        "status": run.status,
        "state": ("answer below · " if answered else "") + status_text(run),
        "elapsed": format_duration(run.elapsed),
        "model": run.model or "",
    }


def check_title(template: str | None) -> None:
    """A `ValueError` naming ``title`` if ``template`` is not a valid title template."""
    if template is None:
        return
    sample = dict.fromkeys(TITLE_FIELDS, "x")
    try:
        template.format_map(sample)
    except (KeyError, IndexError, ValueError, AttributeError) as error:
        fields = ", ".join("{" + name + "}" for name in TITLE_FIELDS)
        raise ValueError(
            f"title: {template!r} is not a title template ({error!r}); it may use {fields}, "
            "or pass a function as title_function"
        ) from None


def default_title(
    run: RunRecord, within: str | None = None, template: str | None = None, answered: bool = False
) -> str:
    """The title for the run's current status, from ``template`` (None: the built-in one);
    ``within``: the graph node the run's step also stands for; ``answered``: its text is the
    reply's answer."""
    return (template or DEFAULT_TITLE).format_map(title_fields(run, within, answered))


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


class Renderer:
    """Turns run records into step titles and body parts, as the handler's options say
    (``options``: an `options.ViewOptions`)."""

    def __init__(self, options: Any, report: Callable[[RunRecord, str, BaseException], None]):
        self.options = options
        self._report = report

    def title(self, run: RunRecord, within: str | None = None, answered: bool = False) -> str:
        """The title for the run's status: the user's title function, else ours; always inert.

        ``within``: the LangGraph node the run's step also stands for; ``answered``: its text
        is the reply's answer.
        """
        if self.options.title_function is not None:
            try:
                custom = self.options.title_function(run)
            except Exception as error:
                self._report(run, "title function", error)
            else:
                if custom is not None:
                    return title_text(str(custom))
        try:
            return title_text(default_title(run, within, self.options.title, answered))
        except Exception as error:
            self._report(run, "title template", error)
            return title_text(default_title(run, within, answered=answered))

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
            if section == "text" and answer_below:  # its text, or a chain's result
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
                parts.append(
                    (f"call:{number}", f"{heading}\n\n{code_text(args, self.options.max_chars, 'json')}")
                )
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
        if shows_error and run.error and self.options.context_exception != "ignore":
            parts.append(("error", self._error(run.error, plain)))
        return parts

    def footer(self, run: RunRecord, markdown: bool = False) -> str:
        """A model run's numbers as one line: tokens, model, speed, cost and context window."""
        if run.kind != "llm" or not (run.usage or (run.model and run.ended)):
            return ""
        counts = usage.tokens(run.usage)
        facts = [f"Tokens: {counts['input']:,} in · {counts['output']:,} out"] if run.usage else []
        for key, name in usage.DETAILS:
            if counts[key]:
                facts.append(f"{counts[key]:,} {name}")
        if run.model:
            facts.append(inline_text(run.model) if markdown else shorten(run.model))
        first, rate = usage.speed(run) if run.streamed else (None, None)
        if first is not None:
            facts.append(f"first token {format_duration(first)}")
        if rate is not None and run.ended:
            facts.append(f"{rate:,.0f} tokens/s")
        priced = usage.cost(run, self.options.prices)
        if priced is not None:
            facts.append(usage.format_cost(priced))
        window = self.options.context_windows.get(run.model or "")
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
            body = plain_text(value, self.options.max_chars)
        else:
            body = code_text(to_json(redact(value)), self.options.max_chars, "json")
        return [(key, f"**{inline_text(heading)}**\n\n{body}")]

    def _plain(self, key: str, value: Any, heading: str) -> list[tuple[str, str]]:
        """Data as readable text under a heading: text as written, structures as JSON (redacted)."""
        if value is None or value == "":
            return []
        text = redact_text(value) if isinstance(value, str) else to_json(redact(value))
        shown, note = clip(text, self.options.max_chars)
        return [(key, f"{shorten(heading)}:\n{shown}{note}")]

    def _documents(self, documents: list[dict[str, Any]], plain: bool = False) -> list[tuple[str, str]]:
        if not documents:
            return [("documents", "No documents found." if plain else "*No documents found.*")]
        parts = []
        limit = min(DOCUMENT_CHARS, self.options.max_chars or DOCUMENT_CHARS)
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
        if self.options.context_exception == "verbose" and error.get("traceback"):
            if plain:
                return clip(redact_text(error["traceback"].rstrip()), self.options.max_chars)[0]
            return code_text(error["traceback"].rstrip(), self.options.max_chars, "python")
        if plain:
            message = clip(redact_text(error.get("message", "")), self.options.max_chars)[0]
            return f"{shorten(error.get('type', 'Error'))}: {message}"
        name = inline_text(error.get("type", "Error"))
        return f"**{name}**: {plain_text(error.get('message', ''), self.options.max_chars)}"
