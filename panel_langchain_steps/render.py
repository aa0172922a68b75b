"""Rendering: what a run record looks like as a step.

Titles say what the run is and how it stands; a step's body is a list of
Markdown parts (tool input and output, model text, reasoning, tool calls,
token usage, documents, progress events, errors) computed from the record,
so it can be built when the step is opened and serialized when it never
was. Every piece of run data goes through `safety` on its way to the page.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import param

from .compat import PatchingChatStep
from .safety import (
    REDACTED,
    SafeMarkdown,
    code_text,
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
    def body_text(self) -> str:
        """The body as Markdown, whether or not it was ever built."""
        return "\n".join(self.body()) if self.body is not None else ""

    def serialize(self, *args: Any, **kwargs: Any) -> str:
        """The step as readable text: its title, then its body."""
        return "\n".join(filter(None, [html.unescape(self.title), self.body_text]))


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s"


def label(run: RunRecord) -> str:
    """The run's display name, e.g. "Tool search", "Tool get_weather · Paris" or "Model gpt-4o"."""
    kind = _KIND_LABELS.get(run.kind)
    name = run.name or {"llm": "model", "tool": "tool", "retriever": "retriever"}.get(run.kind, "step")
    shown = f"{kind} {name}" if kind else name
    argument = key_argument(run.inputs) if run.kind == "tool" else ""
    return f"{shown} · {argument}" if argument else shown


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
    "state": 'how it stands, e.g. "running…" or "done in 1.2 s"',
    "elapsed": 'its time so far, e.g. "1.2 s"',
    "model": "the model's name (model runs), else empty",
}

DEFAULT_TITLE = "{label} · {state}"


def title_fields(run: RunRecord, within: str | None = None) -> dict[str, str]:
    """The values of a title template's fields for ``run``; ``within``: the graph node it stands for."""
    return {
        "label": f"{within} › {label(run)}" if within else label(run),
        "node": within or "",
        "name": run.name or "",
        "kind": run.kind,
        "status": run.status,
        "state": status_text(run),
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


def default_title(run: RunRecord, within: str | None = None, template: str | None = None) -> str:
    """The title for the run's current status, from ``template`` (None: the built-in one);
    ``within``: the graph node the run's step also stands for."""
    return (template or DEFAULT_TITLE).format_map(title_fields(run, within))


class Renderer(param.Parameterized):
    """Turns run records into step titles and body parts, as the handler's options say."""

    context_exception = param.String(default="summary")
    title_function = param.Callable(default=None)
    title_template = param.String(default=None, allow_None=True)
    max_chars = param.Integer(default=20_000, allow_None=True)

    def __init__(self, report: Callable[[RunRecord, str, BaseException], None], **params: Any):
        super().__init__(**params)
        self._report = report

    def title(self, run: RunRecord, within: str | None = None) -> str:
        """The title for the run's status: the user's title function, else ours; always inert.

        ``within``: the LangGraph node the run's step also stands for.
        """
        if self.title_function is not None:
            try:
                custom = self.title_function(run)
            except Exception as error:
                self._report(run, "title function", error)
            else:
                if custom is not None:
                    return title_text(str(custom))
        try:
            return title_text(default_title(run, within, self.title_template))
        except Exception as error:
            self._report(run, "title template", error)
            return title_text(default_title(run, within))

    def body(self, run: RunRecord, *, shows_error: bool, answer_below: bool) -> list[tuple[str, str]]:
        """The step's body as ``(key, markdown)`` parts, in order.

        Keys starting with ``"text:"`` are streamed sections (they only grow);
        ``answer_below``: the run's text is the reply's answer, shown there.
        """
        parts: list[tuple[str, str]] = []
        if run.kind == "tool":
            parts += self._data("input", run.inputs, "Input")
        elif run.kind == "retriever":
            parts += self._data("query", run.inputs, "Query")
        for section in ("reasoning", "text"):
            text = run.text_of(section)
            if text and section == "text" and answer_below:
                parts.append(("answered", "*The answer is shown below the steps.*"))
            elif text:
                parts.append((f"text:{section}", text))
        for number, event in enumerate(run.events):
            parts += self._data(f"event:{number}", event.get("data"), inline_text(str(event.get("name"))))
        for number, call in enumerate(run.tool_calls):
            parts += self._data(
                f"call:{number}", call.get("args"), f"Calls {inline_text(str(call.get('name')))}"
            )
        if run.usage:
            tokens = (
                f"*Tokens: {run.usage.get('input_tokens', 0)} in · {run.usage.get('output_tokens', 0)} out*"
            )
            parts.append(("usage", tokens))
        if run.ended:
            if run.kind == "tool" and run.status == SUCCESS:
                parts += self._data("output", run.outputs, "Output")
            elif run.kind == "retriever" and run.status == SUCCESS:
                parts += self._documents((run.outputs or {}).get("documents", []))
        if shows_error and run.error and self.context_exception != "ignore":
            parts.append(("error", self._error(run.error)))
        return parts

    def _data(self, key: str, value: Any, heading: str) -> list[tuple[str, str]]:
        """Structured data as a JSON block, text as text, under a heading."""
        if value is None or value == "":
            return []
        if isinstance(value, str):
            body = plain_text(value, self.max_chars)
        else:
            body = code_text(to_json(redact(value)), self.max_chars, "json")
        return [(key, f"**{heading}**\n\n{body}")]

    def _documents(self, documents: list[dict[str, Any]]) -> list[tuple[str, str]]:
        if not documents:
            return [("documents", "*No documents found.*")]
        parts = []
        limit = min(DOCUMENT_CHARS, self.max_chars or DOCUMENT_CHARS)
        for number, document in enumerate(documents, 1):
            metadata = redact(document.get("metadata") or {})
            source = metadata.get("source") or metadata.get("title") or f"Document {number}"
            snippet = plain_text(str(document.get("page_content", "")), limit)
            parts.append((f"document:{number}", f"**{number}. {inline_text(str(source))}**\n\n{snippet}"))
        return parts

    def _error(self, error: dict[str, str]) -> str:
        if self.context_exception == "verbose" and error.get("traceback"):
            return code_text(error["traceback"].rstrip(), self.max_chars, "python")
        name = inline_text(error.get("type", "Error"))
        return f"**{name}**: {plain_text(error.get('message', ''), self.max_chars)}"
