"""What a turn's answer is: the one rule behind the reply's answer, its chat history and its repeats.

The answer is what the turn produced:

- the text result of the turn's root run, when the root is a chain whose
  output is text (a string, or one text field such as ``answer``,
  ``output``, ``text`` or ``result``) that differs from its last model's
  text: a math chain's ``Answer: 2518731`` after its model wrote the
  expression, an ``AgentExecutor``'s ``output``;
- else the text of the turn's last model call that speaks for the turn (not
  inside a tool), unless that call asked for tools: an agent's answer;
- but when the handler saw only part of the turn (it was given to a model's
  constructor) and the app streamed text of its own into the reply, that
  text is the result, and no run's text is the answer.

Text the app adds to the reply, or returns, that `repeats` the answer is not
shown again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .safety import redact_text
from .trace import SUCCESS, RunRecord, Trace

#: Output fields that hold a chain's text result when its output has other text fields too.
TEXT_FIELDS = ("answer", "output", "text", "result")


@dataclass(frozen=True)
class Answer:
    """A turn's answer: the run it comes from and its text (redacted)."""

    run: RunRecord
    text: str


def speaks_for_turn(trace: Trace, run: RunRecord) -> bool:
    """Whether a model run may speak for the whole turn: not inside a tool (a subagent called as a
    tool answers the agent, not the user). An agent used as a graph's node may: when its model call
    is the turn's last, its text is the answer."""
    if "nostream" in run.tags:
        return False
    return all(ancestor.kind == "chain" for ancestor in trace.ancestors(run))


def may_answer(trace: Trace, run: RunRecord) -> bool:
    """Whether a run's text may be its turn's answer: a model call with text that speaks for the turn."""
    return run.kind == "llm" and bool(run.text_length("text")) and speaks_for_turn(trace, run)


def text_result(root: RunRecord | None) -> str | None:
    """The text a root chain produced, or None: its output if a string, else its one text field
    (or, among several, its one field named in `TEXT_FIELDS`)."""
    if root is None or root.kind != "chain" or root.status != SUCCESS:
        return None
    output = root.outputs
    if isinstance(output, Mapping):
        texts = [(key, value) for key, value in output.items() if isinstance(value, str)]
        if len(texts) > 1:
            texts = [(key, value) for key, value in texts if key in TEXT_FIELDS]
        output = texts[0][1] if len(texts) == 1 else None
    if not isinstance(output, str) or not output.strip():
        return None
    return redact_text(output)


def answer_of(turns: Iterable[tuple[RunRecord | None, RunRecord | None]], added: str = "") -> Answer | None:
    """The answer of a reply that shows ``turns``, each given as its root run and its latest model
    run that `may_answer` (either may be None), oldest first; ``added``: the text the app streamed
    into the reply itself.

    The last turn that said anything decides: a turn without text leaves the
    answer of the turn it continues alone. When the handler saw only part of
    that turn (its root has a parent it never saw: the handler was given to
    a model's constructor, not to the run) and the app added text of its own
    that does not repeat the answer, the app's text is the turn's result:
    there is no answer from the runs.
    """
    for root, model in reversed(list(turns)):
        result = text_result(root)
        if model is None and result is None:
            continue
        if model is not None and model.ended and model.tool_calls:
            model = None  # it asked for tools: its text was not the answer
        text = model.text_of("text") if model is not None else ""
        if result is not None and result.strip() != text.strip():
            found = Answer(root, result)
        elif model is not None:
            found = Answer(model, text)
        else:
            return None
        partial = root is not None and root.parent_id is not None
        return None if partial and added.strip() and not repeats(found.text, added) else found
    return None


def repeats(answer: str, text: str) -> bool:
    """Whether ``text`` (what an app sent or streamed itself) only repeats ``answer``: it is all at
    the answer's beginning (an app streaming the answer again shows nothing new while it does)."""
    text = text.strip()
    return bool(text) and answer.strip().startswith(text)
