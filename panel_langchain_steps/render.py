"""Rendering: what a run looks like as a `ChatStep`.

Titles say what the run is and how it stands; bodies show tool input and
output, model text, reasoning, tool calls, token usage, documents and errors.
Every piece of run data goes through `safety` on its way to the page.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from typing import Any

import panel as pn
import param
from panel.chat import ChatStep
from panel.chat.step import DEFAULT_STATUS_BADGES
from panel.chat.utils import avatar_lookup, build_avatar_pane
from panel.layout.base import ListLike
from panel.viewable import Viewable
from panel.widgets.indicators import BooleanStatus

from .runs import PENDING, RUNNING, SUCCESS, Run
from .safety import (
    SafeMarkdown,
    code_text,
    inline_text,
    plain_text,
    redact,
    title_text,
    to_json,
)
from .stream import StepText

TitleFunction = Callable[[Run], "str | None"]

#: Exceptions that mean the run was stopped, not that it went wrong.
CANCELLATIONS = ("CancelledError", "KeyboardInterrupt", "GeneratorExit", "StopRun")
#: LangGraph's pauses and hand-offs (subclasses of ``GraphBubbleUp``).
PAUSES = {"GraphInterrupt": "paused, waiting for input", "ParentCommand": "handed off"}

#: Longest document text shown (``max_chars`` when that is lower).
DOCUMENT_CHARS = 500

_KIND_LABELS = {"tool": "Tool", "llm": "Model", "retriever": "Retriever"}


def exception_names(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__}


def markdown(text: str = "", css_class: str = "step-message") -> pn.pane.Markdown:
    """A Markdown pane for untrusted text: it formats, but no markup in it is live."""
    return SafeMarkdown(
        text,
        dedent=False,
        enable_streaming=True,
        css_classes=[css_class],
        sizing_mode="stretch_width",
        margin=(0, 10),
    )


class Step(ChatStep):
    """A `ChatStep` whose status and title changes patch the page in place.

    `ChatStep` builds a new status badge for every status and re-sets its
    header for every title, and each of those makes Panel and Bokeh walk the
    whole document. Here the badge is recoloured and the title pane (bound to
    ``title``) updates itself: a run's end costs a couple of property patches.
    """

    @param.depends("status", "default_badges", watch=True)
    def _render_avatar(self) -> None:
        badge = avatar_lookup(self.status, None, self.default_badges, DEFAULT_STATUS_BADGES)
        new = build_avatar_pane(badge, ["step-avatar"])
        current = self._avatar_placeholder.object
        if isinstance(new, BooleanStatus) and type(current) is type(new):
            current.param.update(value=new.value, color=new.color)
        else:
            self._avatar_placeholder.update(new)

    def _update_header(self, *events: param.parameterized.Event) -> None:
        if self.header is None or self._header_layout.objects != [self.header]:
            super()._update_header(*events)


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s"


def label(run: Run) -> str:
    """The run's display name, e.g. "Tool search" or "Model gpt-4o"."""
    kind = _KIND_LABELS.get(run.kind)
    name = run.name or {"llm": "model", "tool": "tool", "retriever": "retriever"}.get(run.kind, "step")
    return f"{kind} {name}" if kind else name


def status_text(run: Run) -> str:
    """How the run stands, e.g. "running…", "done in 1.2 s", "stopped after 3.0 s"."""
    took = format_duration(run.elapsed)
    if run.status == PENDING:
        return "waiting"
    if run.status == RUNNING:
        return "running…"
    if run.status == SUCCESS:
        return run.outcome or f"done in {took}"
    if run.error is not None and not exception_names(run.error) & set(CANCELLATIONS):
        return f"failed: {type(run.error).__name__} after {took}"
    return f"stopped after {took}"


def default_title(run: Run) -> str:
    """The built-in title for the run's current status."""
    return f"{label(run)} · {status_text(run)}"


class StepRenderer:
    """Turns runs into steps and run data into step content."""

    def __init__(
        self,
        *,
        context_exception: str,
        title: TitleFunction | None,
        collapsed_on_success: bool,
        max_chars: int | None,
        report: Callable[[Run, str, BaseException], None],
        append: Callable[[ListLike, Viewable], None] | None = None,
    ):
        self.context_exception = context_exception
        self.title_function = title
        self.collapsed_on_success = collapsed_on_success
        self.max_chars = max_chars
        self._report = report
        # How content joins a layout (the handler batches additions to steps on a page).
        self._append = append or ListLike.append

    # -- the step and its status ------------------------------------------

    def create(self, run: Run) -> Step:
        """A new step for the run. Chains (graphs, nodes) stay open when done:
        their content is their child steps, whose titles are the outline."""
        return Step(
            status=run.status,
            default_title=self.title(run),
            collapsed_on_success=self.collapsed_on_success and run.kind != "chain",
            sizing_mode="stretch_width",
            margin=(4, 0, 4, 8),
        )

    def title(self, run: Run) -> str:
        """The title for the run's status: the user's title function, else ours."""
        if self.title_function is not None:
            try:
                custom = self.title_function(run)
            except Exception as error:
                self._report(run, "title function", error)
            else:
                if custom is not None:
                    return title_text(str(custom))
        return title_text(default_title(run))

    def show_status(self, run: Run) -> None:
        """Set the step's status and its title for that status in one update."""
        if run.step is not None:
            run.step.param.update(status=run.status, **{f"{run.status}_title": self.title(run)})

    # -- content ----------------------------------------------------------

    def add(self, run: Run, text: str) -> None:
        """Append Markdown to the run's step (already made safe by the caller)."""
        if run.step is not None and text:
            self._append(run.step, markdown(text))

    def add_data(self, run: Run, value: Any, heading: str) -> None:
        """Structured data as a JSON block, text as text, under a heading."""
        if value is None or value == "":
            return
        if isinstance(value, str):
            body = plain_text(value, self.max_chars)
        else:
            body = code_text(to_json(redact(value)), self.max_chars, "json")
        self.add(run, f"**{heading}**\n\n{body}")

    def text(self, run: Run, section: str, into: ListLike | None = None) -> StepText | None:
        """The run's streamed text section (``"text"`` or ``"reasoning"``).

        Its blocks go into the run's step, or into ``into`` (a reply's answer).
        """
        text = run.texts.get(section)
        step = into if into is not None else run.step
        if text is None and step is not None:
            css = "step-reasoning" if section == "reasoning" else "step-message"

            def new_block(source: str) -> pn.pane.Markdown:
                pane = markdown(source, css)
                if section == "reasoning":
                    pane.styles = {"opacity": "0.75", "font-style": "italic", "border-left": "3px solid #ccc"}
                self._append(step, pane)
                return pane

            text = run.texts[section] = StepText(new_block)
        return text

    def tool_output(self, run: Run, output: Any) -> None:
        content = getattr(output, "content", output)
        if isinstance(content, list) and all(isinstance(part, str | dict) for part in content):
            content = (
                "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in content)
                or content
            )
        self.add_data(run, content, "Output")

    def llm_result(self, run: Run, response: Any) -> None:
        """Tool calls the model asked for, and token usage."""
        message = final_message(response)
        for call in getattr(message, "tool_calls", None) or []:
            self.add_data(run, call.get("args"), f"Calls {inline_text(str(call.get('name')))}")
        usage = getattr(message, "usage_metadata", None)
        if usage:
            self.add(
                run,
                f"*Tokens: {usage.get('input_tokens', 0)} in · {usage.get('output_tokens', 0)} out*",
            )

    def documents(self, run: Run, documents: Sequence[Any]) -> None:
        if not documents:
            self.add(run, "*No documents found.*")
        for number, document in enumerate(documents, 1):
            metadata = redact(getattr(document, "metadata", {}) or {})
            source = metadata.get("source") or metadata.get("title") or f"Document {number}"
            snippet = str(getattr(document, "page_content", document))
            limit = min(DOCUMENT_CHARS, self.max_chars or DOCUMENT_CHARS)
            self.add(run, f"**{number}. {inline_text(str(source))}**\n\n{plain_text(snippet, limit)}")

    def error(self, run: Run, error: BaseException) -> None:
        """Show the error as the ``context_exception`` mode says."""
        mode = self.context_exception
        if mode == "ignore":
            return
        if mode == "verbose":
            lines = traceback.format_exception(type(error), error, error.__traceback__)
            self.add(run, code_text("".join(lines).rstrip(), self.max_chars, "python"))
        else:
            name = inline_text(type(error).__name__)
            self.add(run, f"**{name}**: {plain_text(str(error), self.max_chars)}")


def final_message(response: Any) -> Any:
    """The message of an ``LLMResult``'s first generation (its text for plain LLMs)."""
    try:
        generation = response.generations[0][0]
    except (AttributeError, IndexError, TypeError):
        return None
    return getattr(generation, "message", None) or generation.text


def text_pieces(message: Any) -> list[tuple[str, str]]:
    """``(section, text)`` pieces of a message or chunk: "text" and "reasoning"."""
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return [("text", content)] if content else []
    blocks = getattr(message, "content_blocks", None) or content or []
    return [
        (kind, block[kind])
        for block in blocks
        if isinstance(block, dict)
        and (kind := block.get("type")) in ("text", "reasoning")
        and block.get(kind)
    ]
