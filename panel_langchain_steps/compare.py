"""Two traces side by side: their steps aligned by path and name, what was added, removed or
changed, the change in time, tokens and cost, and the first point where they diverge.

A step's path is the names of its ancestors and its own, each with its place among the
siblings of that name (``LangGraph / tools / add #2``), so the same agent run twice aligns
step for step. What a run carried is compared without the values that differ on every run
(ids of messages, runs and tool calls, even inside text, and provider metadata).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import usage
from .trace import RunRecord, Trace

SAME, CHANGED, ADDED, REMOVED = "same", "changed", "added", "removed"

#: The fields compared, in the order a change is listed.
FIELDS = ("status", "model", "inputs", "outputs", "text", "tool_calls", "error")
#: Keys whose values differ on every run of the same thing; left out of the comparison.
_VOLATILE_KEYS = frozenset({"id", "ids", "run_id", "tool_call_id", "response_metadata", "usage_metadata"})
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class StepChange:
    """One aligned step: the run ``before`` and ``after`` (None where it is missing).

    ``fields`` are the fields that differ; ``duration``, ``tokens`` and ``cost`` are the changes
    (after minus before), None where a side or a value is missing.
    """

    path: str
    depth: int
    change: str
    fields: tuple[str, ...]
    before: RunRecord | None
    after: RunRecord | None
    duration: float | None
    tokens: int | None
    cost: float | None

    @property
    def kind(self) -> str:
        return (self.after or self.before).kind  # type: ignore[union-attr]


@dataclass(frozen=True, slots=True)
class Comparison:
    """`compare`'s result: every step in the order the runs went, and the totals of each side."""

    steps: list[StepChange]
    #: `usage.summary` of each side, with ``duration`` (the turns' seconds, summed).
    before: dict[str, Any]
    after: dict[str, Any]

    @property
    def diverged(self) -> StepChange | None:
        """The first step, in the order the runs went, where the two went different ways.

        A step added or removed, or one whose own content differs: for a step with
        child steps its input, name or model (its output follows from its children's).
        """
        for step in self.steps:
            if step.change in (ADDED, REMOVED):
                return step
            own = step.fields if _leaf(step) else tuple(f for f in step.fields if f in ("inputs", "model"))
            if own:
                return step
        return None

    def changes(self, change: str) -> list[StepChange]:
        """The steps with this change: ``"same"``, ``"changed"``, ``"added"`` or ``"removed"``."""
        return [step for step in self.steps if step.change == change]

    @property
    def delta(self) -> dict[str, Any]:
        """After minus before: ``duration`` (s), ``total_tokens`` and ``cost`` (None unless both priced)."""
        cost = None
        if self.before["cost"] is not None and self.after["cost"] is not None:
            cost = self.after["cost"] - self.before["cost"]
        return {
            "duration": self.after["duration"] - self.before["duration"],
            "total_tokens": self.after["total_tokens"] - self.before["total_tokens"],
            "cost": cost,
        }


def compare(before: Trace, after: Trace, prices: usage.Prices | None = None) -> Comparison:
    """Align the steps of two traces (e.g. two turns from a `TraceStore`) and say what changed.

    ``prices`` (``{model: (input_per_1M, output_per_1M)}``) gives the costs.
    """
    steps = list(_aligned(before.roots, after.roots, (), 0, prices))
    return Comparison(steps, _totals(before, prices), _totals(after, prices))


def _aligned(
    before: list[RunRecord],
    after: list[RunRecord],
    parent: tuple[str, ...],
    depth: int,
    prices: usage.Prices | None,
) -> Iterator[StepChange]:
    """The steps of two lists of sibling runs, aligned by name and place, each followed by its children."""
    keyed_before, keyed_after = _keyed(before), _keyed(after)
    order = difflib.SequenceMatcher(None, list(keyed_before), list(keyed_after), autojunk=False)
    seen: set[str] = set()
    keys: list[str] = []
    for tag, a1, a2, b1, b2 in order.get_opcodes():
        block = list(keyed_before)[a1:a2] if tag == "delete" else list(keyed_after)[b1:b2]
        if tag == "replace":
            block = list(keyed_before)[a1:a2] + block
        keys += [key for key in block if not (key in seen or seen.add(key))]
    for key in keys:
        old, new = keyed_before.get(key), keyed_after.get(key)
        path = (*parent, key)
        yield _step(" / ".join(path), depth, old, new, prices)
        yield from _aligned(_children(old), _children(new), path, depth + 1, prices)


def _keyed(runs: list[RunRecord]) -> dict[str, RunRecord]:
    """Runs by name and place among the runs of that name (``add``, ``add #2``), in start order."""
    counts: dict[str, int] = {}
    keyed = {}
    for run in sorted(runs, key=lambda run: run.start_time):
        counts[run.name] = counts.get(run.name, 0) + 1
        keyed[run.name if counts[run.name] == 1 else f"{run.name} #{counts[run.name]}"] = run
    return keyed


def _children(run: RunRecord | None) -> list[RunRecord]:
    return list(run.children) if run is not None else []


def _step(
    path: str, depth: int, before: RunRecord | None, after: RunRecord | None, prices: usage.Prices | None
) -> StepChange:
    if before is None or after is None:
        change, fields = (ADDED if before is None else REMOVED), ()
    else:
        old, new = before.to_dict(), after.to_dict()
        fields = tuple(
            name for name in FIELDS if _comparable(name, old[name]) != _comparable(name, new[name])
        )
        change = CHANGED if fields else SAME
    duration = tokens = cost = None
    if before is not None and after is not None:
        if before.duration is not None and after.duration is not None:
            duration = after.duration - before.duration
        if before.kind == "llm" or after.kind == "llm":
            tokens = usage.tokens(after.usage)["total"] - usage.tokens(before.usage)["total"]
            old_cost, new_cost = usage.cost(before, prices), usage.cost(after, prices)
            if old_cost is not None and new_cost is not None:
                cost = new_cost - old_cost
    return StepChange(path, depth, change, fields, before, after, duration, tokens, cost)


def _comparable(name: str, value: Any) -> Any:
    if name == "error" and value:
        return (value.get("type"), value.get("message"))  # not the traceback's paths and lines
    return _stable(value)


def _stable(value: Any) -> Any:
    """JSON data without the values that differ on every run."""
    if isinstance(value, dict):
        return {key: _stable(item) for key, item in value.items() if key not in _VOLATILE_KEYS}
    if isinstance(value, list):
        return [_stable(item) for item in value]
    if isinstance(value, str):
        return _UUID.sub("<id>", value)  # ids inside text (a LangGraph Command's repr)
    return value


def _leaf(step: StepChange) -> bool:
    return not _children(step.before) and not _children(step.after)


def _totals(trace: Trace, prices: usage.Prices | None) -> dict[str, Any]:
    roots = trace.roots
    return {**usage.summary(trace.runs, prices), "duration": sum(root.duration or 0.0 for root in roots)}
