"""The chat stays a chat: what a reply is as history for the next model call.

Panel builds a chat's history with ``ChatFeed.serialize()``, which asks each
message for its text. A reply holding steps serializes to the turn's answer as
it was written (see `answer.py`), then any text the app added to the reply,
and (with the handler's ``serialize_steps``) a short readable summary of the
steps before them: never the layout or the trace.
"""

from __future__ import annotations

from .render import calls_text, format_duration
from .safety import redact, shorten, to_json
from .trace import FAILED, RunRecord, Trace
from .usage import summary

#: Longest tool input or output quoted in a step summary.
SUMMARY_CHARS = 200


def steps_summary(runs: list[RunRecord]) -> str:
    """The steps of a turn as readable lines: counts and time, then each tool call and its result."""
    numbers = summary(runs)
    starts = [run.start_time for run in runs if run.start_time]
    ends = [run.end_time for run in runs if run.end_time]
    head = calls_text(numbers)
    if starts and ends:
        head += f", {format_duration(max(ends) - min(starts))}"
    lines = [f"Steps: {head}"]
    for run in runs:
        if run.kind not in ("tool", "retriever"):
            continue
        if run.status == FAILED and run.error:
            result = f"failed: {run.error.get('type', 'Error')}: {run.error.get('message', '')}"
        else:
            result = _quoted(run.outputs) if run.ended else run.status
        lines.append(
            f"- {shorten(run.name or run.kind)} {_quoted(run.inputs)} → {shorten(result, SUMMARY_CHARS)}"
        )
    return "\n".join(lines)


def history_text(trace: Trace, root_ids: list[str], answer: str, steps: bool) -> str:
    """A reply as chat history: its answer (see `answer.py`), with a summary of its steps before it
    when ``steps``."""
    if not steps:
        return answer
    runs = [run for root_id in root_ids for run in trace.runs_of(root_id)]
    return "\n\n".join(filter(None, [steps_summary(runs), answer]))


def count(number: int, noun: str) -> str:
    """ "1 tool call", "3 tool calls"."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _quoted(value: object) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else to_json(redact(value)).replace("\n", " ")
    return shorten(" ".join(str(text).split()), SUMMARY_CHARS)
