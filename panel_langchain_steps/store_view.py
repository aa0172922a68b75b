"""A browser of a `TraceStore`: its turns newest first, paged on the server, with search and
filters; a turn opens in a `TraceView`, and two turns are compared step by step.

Only the page shown is read from the store. Everything a turn says (its question,
names, errors) is untrusted: table cells use Tabulator's escaping ``plaintext``
formatter and the comparison's summary is escaped Markdown.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from .compare import Comparison, compare
from .safety import SafeMarkdown, code_span, inline_text
from .store import TraceStore, TurnSummary
from .trace import TERMINAL
from .trace_view import TraceView
from .usage import format_cost

#: The time filter's choices: how far back a turn may have started, in seconds.
WITHIN = {
    "any time": None,
    "last hour": 3600,
    "last day": 86_400,
    "last week": 7 * 86_400,
    "last 30 days": 30 * 86_400,
}
_COLUMNS = ("started", "name", "status", "question", "seconds", "tokens", "cost", "thread", "id")
_STEP_COLUMNS = ("step", "kind", "change", "what changed", "seconds", "tokens", "cost")


class StoreView(Viewer):
    """The turns of a `TraceStore`, a page at a time: search, filter, open one, compare two.

    >>> StoreView(TraceStore("traces.db"), prices={"gpt-4o": (2.5, 10.0)}).servable()

    Click a turn to open it in a `TraceView`; tick two and press **Compare** to
    see their steps aligned (added, removed, changed), the change in time,
    tokens and cost, and where they diverged.
    """

    search = param.String(default="", doc="Words every turn shown carried (see `TraceStore.search`).")
    status = param.Selector(
        default="any", objects=["any", *sorted(TERMINAL)], doc="Only turns that ended so."
    )
    model = param.String(default="", doc="Only turns that called this model.")
    tool = param.String(default="", doc="Only turns that called this tool.")
    thread = param.String(
        default="",
        doc="Only the turns of this thread (session); their totals (turns, tokens, cost) are shown.",
    )
    within = param.Selector(
        default="any time", objects=list(WITHIN), doc="Only turns that started this recently."
    )
    page = param.Integer(default=0, bounds=(0, None), doc="The page shown, from 0 (the newest turns).")
    page_size = param.Integer(default=50, bounds=(1, 500), doc="Turns on a page.")
    prices = param.Dict(
        default={}, doc="Model prices for the opened turn's and the comparison's costs (as `TraceView`'s)."
    )

    def __init__(self, store: TraceStore, **params: Any):
        super().__init__(**params)
        self.store = store
        self._turns: list[TurnSummary] = []
        self._more = False
        self._table = pn.widgets.Tabulator(
            _frame([]),
            show_index=False,
            disabled=True,
            selectable="checkbox",
            sortable=False,
            hidden_columns=["id"],
            formatters={column: {"type": "plaintext"} for column in _COLUMNS},
            layout="fit_data_stretch",
            height=420,
            sizing_mode="stretch_width",
        )
        self._table.on_click(self._on_click)
        self._previous = pn.widgets.Button(label="◀ Newer", disabled=True)
        self._next = pn.widgets.Button(label="Older ▶", disabled=True)
        self._place = pn.pane.Str("", css_classes=["store-page"])
        self._totals = pn.pane.Str("", css_classes=["store-totals"])
        self._compare = pn.widgets.Button(label="Compare", color="primary", disabled=True)
        self._previous.on_click(lambda _: self.param.update(page=self.page - 1))
        self._next.on_click(lambda _: self.param.update(page=self.page + 1))
        self._compare.on_click(lambda _: self._compare_selected())
        self._table.param.watch(self._on_selection, "selection")
        self._shown = pn.Column(sizing_mode="stretch_width")
        self._content: TraceView | Comparison | None = None
        self._layout = pn.Column(
            pn.Row(
                pn.widgets.TextInput.from_param(self.param.search, placeholder="Search turns", label=""),
                pn.widgets.Select.from_param(self.param.status, label="", width=110),
                pn.widgets.TextInput.from_param(self.param.model, placeholder="Model", label="", width=140),
                pn.widgets.TextInput.from_param(self.param.tool, placeholder="Tool", label="", width=140),
                pn.widgets.TextInput.from_param(self.param.thread, placeholder="Thread", label="", width=140),
                pn.widgets.Select.from_param(self.param.within, label="", width=130),
            ),
            self._table,
            pn.Row(self._previous, self._place, self._next, self._compare, self._totals),
            self._shown,
            sizing_mode="stretch_width",
        )
        self.refresh()

    def __panel__(self) -> pn.Column:
        return self._layout

    # -- public ------------------------------------------------------------------

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The page's rows as shown, newest first."""
        frame = self._table.value
        return frame.to_dict("records") if len(frame) else []

    @property
    def shown(self) -> TraceView | Comparison | None:
        """What is open below the list: a turn's `TraceView`, a `Comparison`, or None."""
        return self._content

    @param.depends("search", "status", "model", "tool", "thread", "within", "page_size", watch=True)
    def _first_page(self) -> None:
        if self.page:
            self.page = 0  # which refreshes
        else:
            self.refresh()

    @param.depends("page", watch=True)
    def refresh(self) -> None:
        """Read the page shown from the store again."""
        filters: dict[str, Any] = {
            "status": None if self.status == "any" else self.status,
            "model": self.model.strip() or None,
            "tool": self.tool.strip() or None,
            "thread_id": self.thread.strip() or None,
        }
        if WITHIN[self.within] is not None:
            filters["since"] = time.time() - WITHIN[self.within]
        paging = {"limit": self.page_size + 1, "offset": self.page * self.page_size}
        turns = self.store.search(self.search, **filters, **paging)
        self._more, self._turns = len(turns) > self.page_size, turns[: self.page_size]
        self._table.selection = []
        self._table.value = _frame(self._turns)
        first = self.page * self.page_size
        self._place.object = (
            f"turns {first + 1:,}-{first + len(self._turns):,}" if self._turns else "no turns"
        )
        self._previous.disabled, self._next.disabled = self.page == 0, not self._more
        self._totals.object = (
            _totals_line(self.store.totals(self.search, **filters)) if self.thread.strip() else ""
        )

    @property
    def totals(self) -> str:
        """The thread's totals as shown (empty unless a thread is chosen)."""
        return self._totals.object

    def open(self, turn_id: str) -> TraceView:
        """Show a stored turn in a `TraceView` below the list."""
        view = TraceView(self.store.load(turn_id), prices=self.prices)
        self._show(view, pn.Column(pn.pane.Markdown(f"#### Turn {code_span(turn_id)}"), view))
        return view

    def compare(self, before_id: str, after_id: str) -> Comparison:
        """Show two stored turns' steps aligned below the list: what changed from ``before`` to ``after``."""
        result = compare(self.store.load(before_id), self.store.load(after_id), self.prices)
        self._show(result, comparison_panel(result))
        return result

    # -- events ------------------------------------------------------------------

    def _show(self, content: Any, panel: Any) -> None:
        if isinstance(self._content, TraceView):
            self._content.close()
        self._content = content
        self._shown[:] = [panel]

    def _on_click(self, event: Any) -> None:
        if event.column != "_selection" and 0 <= event.row < len(self._turns):
            self.open(self._turns[event.row].id)

    def _on_selection(self, _event: Any) -> None:
        self._compare.disabled = len(self._table.selection) != 2

    def _compare_selected(self) -> None:
        if len(self._table.selection) == 2:
            newer, older = sorted(self._table.selection)  # newest first: the older turn is "before"
            self.compare(self._turns[older].id, self._turns[newer].id)


def comparison_panel(result: Comparison) -> pn.Column:
    """A comparison's summary (inert Markdown) above its aligned steps (a plain-text table)."""
    delta = result.delta
    parts = [
        f"time {delta['duration']:+.3f} s",
        f"tokens {delta['total_tokens']:+,}",
    ]
    if delta["cost"] is not None:
        parts.append(f"cost {'+' if delta['cost'] >= 0 else '-'}{format_cost(abs(delta['cost']))}")
    counts = ", ".join(
        f"{len(result.changes(change))} {change}" for change in ("added", "removed", "changed")
    )
    diverged = result.diverged
    where = (
        f"**Diverged at** {inline_text(diverged.path)} ({diverged.change}"
        + (f": {', '.join(diverged.fields)}" if diverged.fields else "")
        + ")"
        if diverged is not None
        else "**No divergence**: the same steps carried the same things"
    )
    summary = SafeMarkdown(
        f"{where}\n\n{' · '.join(parts)} · steps: {counts}", css_classes=["store-comparison"]
    )
    rows = [
        {
            "step": "  " * step.depth + step.path.rsplit(" / ", 1)[-1],
            "kind": step.kind,
            "change": step.change,
            "what changed": ", ".join(step.fields),
            "seconds": step.duration,
            "tokens": step.tokens,
            "cost": step.cost,
        }
        for step in result.steps
    ]
    table = pn.widgets.Tabulator(
        pd.DataFrame(rows, columns=list(_STEP_COLUMNS)),
        show_index=False,
        disabled=True,
        sortable=False,
        formatters={column: {"type": "plaintext"} for column in _STEP_COLUMNS},
        layout="fit_data_stretch",
        sizing_mode="stretch_width",
        height=420,
    )
    return pn.Column(summary, table, sizing_mode="stretch_width")


def _totals_line(totals: dict[str, Any]) -> str:
    cost = "" if totals["cost"] is None else f", {format_cost(totals['cost'])}"
    tokens = f"{totals['total_tokens']:,} tokens"
    return f"thread: {totals['turns']:,} turns, {tokens}{cost}, {totals['duration']:.1f} s"


def _frame(turns: list[TurnSummary]) -> pd.DataFrame:
    rows = [
        {
            "started": datetime.fromtimestamp(turn.start_time).strftime("%Y-%m-%d %H:%M:%S"),
            "name": turn.name,
            "status": turn.status,
            "question": turn.preview,
            "seconds": None if turn.duration is None else round(turn.duration, 3),
            "tokens": turn.total_tokens,
            "cost": "" if turn.cost is None else format_cost(turn.cost),
            "thread": turn.thread_id or "",
            "id": turn.id,
        }
        for turn in turns
    ]
    return pd.DataFrame(rows, columns=list(_COLUMNS))
