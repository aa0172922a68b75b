"""A whole trace at a glance: a tree of runs, a waterfall, totals and the selected run's detail.

`TraceView` shows one `Trace`, live while runs stream into it or after it
ended (say, from `Trace.load`). Every row lives in one `Tabulator` and every
bar in one Bokeh `ColumnDataSource`: a refresh sends only the rows that
changed (patches) and the rows that are new (streams), so a 10,000-run trace
stays responsive. Refreshes are batched: the view follows the trace through a
subscription and renders at most once per ``interval``.

Everything a run says (names, inputs, outputs, errors) is untrusted: table
cells use Tabulator's escaping ``plaintext`` formatter, tooltips show plain
fields, and the detail panel is a `SafeMarkdown` of redacted, escaped text.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, HoverTool, Range1d
from bokeh.plotting import figure
from panel.viewable import Viewer

from . import usage
from .render import shown_name
from .safety import SafeMarkdown, code_text, inline_text, plain_text, redact, to_json
from .schedule import Ticker, call_soon
from .trace import FAILED, KINDS, RUNNING, STATUSES, RunRecord, Trace

log = logging.getLogger("panel_langchain_steps")

#: Bar colours by kind (colour-blind safe, Tableau 10).
KIND_COLORS = {"chain": "#8c8c8c", "llm": "#4c78a8", "tool": "#f58518", "retriever": "#54a24b"}
KIND_ICONS = {"chain": "◇", "llm": "✦", "tool": "⚙", "retriever": "⌕"}
STATUS_ICONS = {"pending": "…", "running": "⏳", "success": "✓", "failed": "✗", "stopped": "■", "paused": "⏸"}
FAILED_COLOR = "#d62728"
_COLUMNS = ("toggle", "run", "kind", "status", "duration", "tokens", "id")
#: The numeric columns' types, kept while the table is empty: a column whose type changes
#: changes the table's configuration, and the browser then builds its table anew, a build
#: during which Panel 1.9 drops the rows sent to it (docs/trace-view.md, Live).
_TYPES = {"duration": "float64", "tokens": "int64"}
_ROWS_SHOWN = 40  # waterfall rows in view at first; pan or zoom for the rest
#: The error button's labels: with failed runs to go to, and without.
NEXT_ERROR, NO_ERRORS = "Next error", "No errors"


class TraceView(Viewer):
    """A trace as a tree of runs, a waterfall timeline, totals and a detail panel.

    >>> TraceView(Trace.load("run.json"), prices={"gpt-4o": (2.5, 10.0)}).servable()
    """

    trace = param.ClassSelector(
        class_=Trace,
        constant=True,
        doc="""
        The runs shown; followed live while it is written to.""",
    )

    prices = param.Dict(
        default={},
        doc="""
        Model prices for the cost total: ``{model: (input_per_1M_tokens, output_per_1M_tokens)}``.
        Models not listed add nothing to the cost.""",
    )

    interval = param.Number(
        default=0.5,
        bounds=(0.05, None),
        doc="""
        Seconds between live refreshes; changes in between are sent as one batch.""",
    )

    search = param.String(
        default="",
        doc="""
        Show only runs whose name, kind, status, model or error contains this text (any case).""",
    )

    kinds = param.ListSelector(
        default=list(KINDS),
        objects=list(KINDS),
        doc="""
        Show only runs of these kinds.""",
    )

    statuses = param.ListSelector(
        default=list(STATUSES),
        objects=list(STATUSES),
        doc="""
        Show only runs with these statuses.""",
    )

    collapsed = param.List(
        default=[],
        item_type=str,
        doc="""
        Ids of the runs whose children are hidden in the tree.""",
    )

    selected = param.String(
        default=None,
        allow_None=True,
        doc="""
        Id of the run shown in the detail panel.""",
    )

    text_limit = param.Integer(
        default=20_000,
        bounds=(100, None),
        doc="""
        Most characters shown of any one input, output or text in the detail panel.""",
    )

    def __init__(self, trace: Trace, **params: Any):
        super().__init__(trace=trace, **params)
        self._order: list[str] = []  # run ids in tree order: the row of each run
        self._row: dict[str, int] = {}
        self._depth: dict[str, int] = {}
        #: Each row's run name as shown (`shown_name`: a tool's key arguments take redaction to find).
        self._names: dict[str, str] = {}
        self._running: set[str] = set()  # rows whose durations grow at each refresh
        self._origin = 0.0  # the earliest start: time zero of the waterfall
        self._frame = _table_frame([])
        self._table = _tree_table(self._frame)
        self._table.on_click(self._on_toggle, column="toggle")
        self._table.param.watch(self._on_selection, "selection")
        self._source = ColumnDataSource(_bar_data([]))
        self._figure = _waterfall(self._source)
        self._source.selected.on_change("indices", self._on_tap)
        self._totals = SafeMarkdown("", sizing_mode="stretch_width", css_classes=["trace-totals"])
        self._detail = SafeMarkdown(
            "*Select a run to see its inputs, outputs and errors.*",
            min_height=200,
            css_classes=["trace-detail"],
        )
        self._next_error = pn.widgets.Button(label=NO_ERRORS, color="danger", disabled=True)
        self._next_error.on_click(lambda _: self.next_error())
        self._layout = pn.Column(
            pn.Row(
                pn.widgets.TextInput.from_param(self.param.search, placeholder="Search runs", label=""),
                pn.widgets.CheckButtonGroup.from_param(self.param.kinds, label=""),
                pn.widgets.CheckButtonGroup.from_param(self.param.statuses, label=""),
                self._next_error,
            ),
            self._totals,
            pn.Row(self._table, pn.Column(self._detail, width=420, scroll=True, height=420)),
            pn.pane.Bokeh(self._figure, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
        document = pn.state.curdoc
        # Served: refresh on the session's loop, holding its document lock, as its models require.
        self._documents = [document] if document is not None and document.session_context else []
        self._ticker = Ticker(self.interval, lambda: self._documents, self._tick, report=self._report)
        self._subscription = trace.subscribe(self._ticker.wake)
        self._subscription.take()
        self._rebuild()
        if self._documents:
            pn.state.on_session_destroyed(lambda _context: self.close())

    def __panel__(self) -> pn.Column:
        return self._layout

    # -- public ------------------------------------------------------------------

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The tree's rows as shown (after search, filters and collapsing), top to bottom."""
        frame = self._table.value
        return frame.to_dict("records") if len(frame) else []

    @property
    def summary(self) -> str:
        """The totals line as shown (Markdown)."""
        return self._totals.object

    @property
    def detail(self) -> str:
        """The selected run's detail as shown (inert Markdown)."""
        return self._detail.object

    def refresh(self) -> None:
        """Show what changed in the trace since the last refresh (live views do this every ``interval``)."""
        changed = self._subscription.take()
        updated = {run.id: run for run in changed}
        running = (self.trace.get(run_id) for run_id in list(self._running))
        updated.update((run.id, run) for run in running if run is not None)
        self._apply(updated)

    def next_error(self) -> str | None:
        """Select the next failed run after the selected one (wrapping around); its id, or None."""
        failed = [run_id for run_id in self._order if self._status(run_id) == FAILED]
        if not failed:
            return None
        current = self._row.get(self.selected or "", -1)
        run_id = next((run_id for run_id in failed if self._row[run_id] > current), failed[0])
        self._show_path(run_id)
        self.selected = run_id
        return run_id

    def close(self) -> None:
        """Stop following the trace."""
        self._subscription.close()
        self._ticker.cancel()

    # -- refreshing --------------------------------------------------------------

    def _tick(self, deadline: float | None) -> float | None:
        """A live view's refresh; again in ``interval`` seconds while runs are open (their bars grow)."""
        if self._subscription.closed:
            return None
        self.refresh()
        return self.interval if self.trace.open_runs else None

    @param.depends("interval", watch=True)
    def _new_interval(self) -> None:
        self._ticker.interval = self.interval

    def _report(self, error: Exception) -> None:
        log.warning("panel-langchain-steps: the trace view's refresh failed: %r", error, exc_info=error)

    def _status(self, run_id: str) -> str | None:
        run = self.trace.get(run_id)
        return run.status if run is not None else None

    def _apply(self, updated: dict[str, RunRecord]) -> None:
        if not updated:
            return
        streamed: set[str] = set()
        if any(run_id not in self._row for run_id in updated):
            order = [run.id for run in self.trace.runs]
            if not self._order or order[: len(self._order)] != self._order:
                self._rebuild(order)
                return
            streamed.update(order[len(self._order) :])
            self._extend(order[len(self._order) :])
        # Rows streamed just now are current: patching them too would make the browser's table
        # set its data twice at once, and the older of the two could land last.
        with self.trace.lock:
            rows = {
                self._row[run_id]: run
                for run_id, run in updated.items()
                if run_id in self._row and run_id not in streamed
            }
        if rows:
            self._patch(rows)
        self._refresh_summary()

    def _rebuild(self, order: list[str] | None = None) -> None:
        """Every row anew (the first render, or runs that did not arrive in tree order)."""
        with self.trace.lock:
            runs = list(self.trace.runs)
            self._order = order if order is not None and len(order) == len(runs) else [run.id for run in runs]
            self._row = {run.id: index for index, run in enumerate(runs)}
            self._depth, self._running, self._names = {}, set(), {}
            self._origin = min((run.start_time for run in runs if run.start_time), default=0.0)
            rows = [self._table_row(run) for run in runs]
            bars = _bar_data([self._bar(index, run) for index, run in enumerate(runs)])
        self._frame = _table_frame(rows)
        self._show_table()
        self._source.data = bars
        self._figure.y_range.update(start=min(len(runs), _ROWS_SHOWN) - 0.5, end=-0.5)
        self._refresh_summary()

    def _extend(self, new_ids: list[str]) -> None:
        """Runs that start after every shown row in tree order: streamed, not resent."""
        start = len(self._order)
        with self.trace.lock:
            runs = [self.trace.get(run_id) for run_id in new_ids]
            rows = [self._table_row(run) for run in runs]
            bars = _bar_data([self._bar(start + offset, run) for offset, run in enumerate(runs)])
        self._order.extend(new_ids)
        self._row.update((run_id, start + offset) for offset, run_id in enumerate(new_ids))
        new = _table_frame(rows, index=range(start, start + len(rows)))
        if self._filtering:
            self._frame = pd.concat([self._frame, new])
            self._show_table()
        else:
            self._table.stream(new, reset_index=False)
            self._frame = self._table.value
        self._source.stream(bars)
        if len(self._order) <= _ROWS_SHOWN:
            self._figure.y_range.start = len(self._order) - 0.5

    def _patch(self, rows: dict[int, RunRecord]) -> None:
        with self.trace.lock:
            table = {index: self._table_row(run) for index, run in rows.items()}
            bars = {index: self._bar(index, run) for index, run in rows.items()}
        if self._filtering:
            for index, row in table.items():
                self._frame.loc[index, list(_COLUMNS)] = [row[column] for column in _COLUMNS]
            self._show_table()
        else:
            self._table.patch({column: [(i, row[column]) for i, row in table.items()] for column in _COLUMNS})
        self._source.patch({key: [(i, bar[key]) for i, bar in bars.items()] for key in self._source.data})
        if self.selected is not None and self.selected in {run.id for run in rows.values()}:
            self._show_detail()

    # -- rows, bars and text ----------------------------------------------------------

    def _table_row(self, run: RunRecord) -> dict[str, Any]:
        parent = self.trace.parent(run)
        depth = self._depth[run.id] = (self._depth.get(parent.id, 0) + 1) if parent is not None else 0
        toggle = ("▸" if run.id in self.collapsed else "▾") if run.children else ""
        if run.status == RUNNING:
            self._running.add(run.id)
        else:
            self._running.discard(run.id)
        name = self._names[run.id] = shown_name(run)
        return {
            "toggle": toggle,
            "run": "\u00a0\u00a0" * depth + f"{KIND_ICONS.get(run.kind, '•')} {name}",
            "kind": run.kind,
            "status": f"{STATUS_ICONS.get(run.status, '')} {run.status}",
            "duration": round(run.elapsed, 3),
            "tokens": usage.tokens(run.usage)["total"],
            "id": run.id,
        }

    def _name(self, run: RunRecord) -> str:
        """The run's name as its row shows it."""
        return self._names.get(run.id) or shown_name(run)

    def _bar(self, index: int, run: RunRecord) -> dict[str, Any]:
        start = (run.start_time - self._origin) if run.start_time else 0.0
        failed = run.status == FAILED
        return {
            "y": index,
            "left": start,
            "right": start + run.elapsed,
            "color": KIND_COLORS.get(run.kind, "#bab0ac"),
            "line": FAILED_COLOR if failed else KIND_COLORS.get(run.kind, "#bab0ac"),
            "alpha": 0.45 if run.status == RUNNING else 0.9,
            "name": self._name(run),
            "kind": run.kind,
            "status": run.status,
            "duration": f"{run.elapsed:.3f} s",
            "tokens": str(usage.tokens(run.usage)["total"]),
            "error": _error_line(run),
        }

    @param.depends("prices", "text_limit", watch=True)
    def _refresh_summary(self) -> None:
        numbers = totals(self.trace, self.prices)
        self._totals.object = totals_text(numbers)
        # Next error only while there is one to go to.
        label = NEXT_ERROR if numbers["errors"] else NO_ERRORS
        if self._next_error.label != label:
            self._next_error.param.update(label=label, disabled=not numbers["errors"])
        self._show_detail()

    def _show_detail(self) -> None:
        run = self.trace.get(self.selected) if self.selected else None
        if run is not None:
            with self.trace.lock:
                self._detail.object = detail_text(run, self.text_limit)

    # -- filtering and selection ---------------------------------------------------------

    @property
    def _filtering(self) -> bool:
        return bool(
            self.search
            or self.collapsed
            or set(self.kinds) != set(KINDS)
            or set(self.statuses) != set(STATUSES)
        )

    def _show_table(self) -> None:
        """Give the table the rows that pass the search, filters and collapsing."""
        frame = self._frame
        if self._filtering and len(frame):
            frame = frame[[self._shown(run_id) for run_id in frame["id"]]]
        selected = self._row_in(frame, self.selected)
        self._table.value = frame
        self._table.selection = [] if selected is None else [selected]

    def _shown(self, run_id: str) -> bool:
        run = self.trace.get(run_id)
        if run is None or run.kind not in self.kinds or run.status not in self.statuses:
            return False
        if any(ancestor.id in self.collapsed for ancestor in self.trace.ancestors(run)):
            return False
        needle = self.search.casefold()
        return not needle or needle in _haystack(run, self._name(run))

    @param.depends("search", "kinds", "statuses", "collapsed", watch=True)
    def _on_filters(self) -> None:
        for run_id in self.collapsed:
            run = self.trace.get(run_id)
            if run is not None and run_id in self._row:
                self._frame.loc[self._row[run_id], "toggle"] = "▸"
        expanded = self._frame["toggle"] == "▸"
        for index in self._frame.index[expanded]:
            if self._frame.at[index, "id"] not in self.collapsed:
                self._frame.loc[index, "toggle"] = "▾"
        self._show_table()

    def _on_toggle(self, event: Any) -> None:
        run_id = self._table.value.iloc[event.row]["id"]
        run = self.trace.get(run_id)
        if run is None or not run.children:
            return
        self.collapsed = (
            [other for other in self.collapsed if other != run_id]
            if run_id in self.collapsed
            else [*self.collapsed, run_id]
        )

    def _on_tap(self, _attr: str, _old: list[int], new: list[int]) -> None:
        if new and new[0] < len(self._order):
            self.selected = self._order[new[0]]

    def _on_selection(self, event: Any) -> None:
        if event.new:
            self.selected = self._table.value.iloc[event.new[0]]["id"]

    @param.depends("selected", watch=True)
    def _on_selected(self) -> None:
        position = self._row_in(self._table.value, self.selected)
        if position is not None and self._table.selection != [position]:
            self._table.selection = [position]
        call_soon(self._highlight, self._documents)
        self._show_detail()

    def _highlight(self) -> None:
        self._source.selected.indices = [self._row[self.selected]] if self.selected in self._row else []

    def _show_path(self, run_id: str) -> None:
        """Expand the run's ancestors and clear filters that would hide it."""
        run = self.trace.get(run_id)
        hidden = {ancestor.id for ancestor in self.trace.ancestors(run)} if run is not None else set()
        if hidden & set(self.collapsed):
            self.collapsed = [other for other in self.collapsed if other not in hidden]
        if run is not None and not self._shown(run_id):
            self.param.update(search="", kinds=list(KINDS), statuses=list(STATUSES))

    @staticmethod
    def _row_in(frame: pd.DataFrame, run_id: str | None) -> int | None:
        if run_id is None or not len(frame):
            return None
        hits = (frame["id"] == run_id).to_numpy().nonzero()[0]
        return int(hits[0]) if len(hits) else None


def _tree_table(frame: pd.DataFrame) -> pn.widgets.Tabulator:
    """The tree of runs: one row a run; untrusted cells as plain text."""
    return pn.widgets.Tabulator(
        frame,
        show_index=False,
        disabled=True,
        selectable=1,
        sortable=False,
        hidden_columns=["id"],
        titles={"toggle": "", "run": "Run", "duration": "Seconds"},
        formatters={column: {"type": "plaintext"} for column in ("toggle", "run", "kind", "status", "id")}
        | {"duration": {"type": "money", "params": {"precision": 3, "symbol": ""}}},
        widths={"toggle": 30},
        layout="fit_data_stretch",
        height=420,
        sizing_mode="stretch_width",
    )


def _waterfall(source: ColumnDataSource) -> Any:
    """The waterfall: one bar a row, from one data source."""
    plot = figure(
        height=320,
        sizing_mode="stretch_width",
        y_range=Range1d(0.5, -0.5),
        x_axis_label="seconds since the trace started",
        tools="xpan,ypan,xwheel_zoom,ywheel_zoom,tap,reset",
        active_scroll="ywheel_zoom",
        toolbar_location="right",
    )
    bars = plot.hbar(
        y="y",
        left="left",
        right="right",
        height=0.7,
        source=source,
        fill_color="color",
        fill_alpha="alpha",
        line_color="line",
        line_width=2,
    )
    # Tuple tooltips insert field values as escaped text: a run's name cannot become markup.
    plot.add_tools(
        HoverTool(
            renderers=[bars],
            tooltips=[
                ("run", "@name"),
                ("kind", "@kind"),
                ("status", "@status"),
                ("duration", "@duration"),
                ("tokens", "@tokens"),
                ("error", "@error"),
            ],
        )
    )
    plot.yaxis.visible = False
    plot.ygrid.grid_line_color = None
    return plot


def _table_frame(rows: list[dict[str, Any]], index: range | None = None) -> pd.DataFrame:
    """Table rows as a frame, its numeric columns typed even when it has no rows."""
    return pd.DataFrame(rows, columns=list(_COLUMNS), index=index).astype(_TYPES)


def _bar_data(bars: list[dict[str, Any]]) -> dict[str, list[Any]]:
    keys = (
        "y",
        "left",
        "right",
        "color",
        "line",
        "alpha",
        "name",
        "kind",
        "status",
        "duration",
        "tokens",
        "error",
    )
    return {key: [bar[key] for bar in bars] for key in keys}


def _haystack(run: RunRecord, name: str) -> str:
    error = run.error or {}
    fields = (name, run.kind, run.status, run.model or "", error.get("message", ""))
    return " ".join(fields).casefold()


def _error_line(run: RunRecord) -> str:
    if not run.error:
        return ""
    return f"{run.error.get('type', 'Error')}: {run.error.get('message', '')}"[:200]


def totals(trace: Trace, prices: dict[str, tuple[float, float]] | None = None) -> dict[str, Any]:
    """The trace's totals: wall time, time to first token, tokens, cost, model and tool calls, errors.

    ``cost`` is None when no model run has a price in ``prices``.
    """
    with trace.lock:
        runs = list(trace.runs)
    starts = [run.start_time for run in runs if run.start_time]
    origin = min(starts, default=None)
    now = time.time()
    ends = [run.end_time if run.end_time is not None else now for run in runs if run.start_time]
    first_tokens = [run.first_token_time for run in runs if run.first_token_time is not None]
    return {
        "runs": len(runs),
        "wall_time": (max(ends) - origin) if origin is not None and ends else 0.0,
        "time_to_first_token": (min(first_tokens) - origin) if origin is not None and first_tokens else None,
        **usage.summary(runs, prices),
    }


def totals_text(numbers: dict[str, Any]) -> str:
    """`totals` as one line of Markdown (numbers only)."""
    parts = [
        f"**{numbers['runs']:,}** runs",
        f"wall **{numbers['wall_time']:.2f} s**",
    ]
    if numbers["time_to_first_token"] is not None:
        parts.append(f"first token **{numbers['time_to_first_token']:.2f} s**")
    parts.append(f"tokens in **{numbers['input_tokens']:,}** / out **{numbers['output_tokens']:,}**")
    for key, label in usage.DETAILS:
        if numbers[f"{key}_tokens"]:
            parts.append(f"{label} **{numbers[f'{key}_tokens']:,}**")
    if numbers["cost"] is not None:
        parts.append(f"cost **{numbers['cost']:.4f}**")
    parts.append(f"**{numbers['model_calls']:,}** model calls, **{numbers['tool_calls']:,}** tool calls")
    parts.append(f"**{numbers['errors']:,}** errors")
    return " · ".join(parts)


def detail_text(run: RunRecord, limit: int | None = 20_000) -> str:
    """One run's detail as inert Markdown: every untrusted value redacted and escaped."""
    lines = [f"### {KIND_ICONS.get(run.kind, '•')} {inline_text(shown_name(run))}", ""]
    facts = [f"{run.kind}", f"{run.status}", f"{run.elapsed:.3f} s"]
    if run.model:
        facts.append(inline_text(run.model))
    counts = usage.tokens(run.usage)
    if counts["total"]:
        facts.append(f"{counts['input']:,} in / {counts['output']:,} out tokens")
    lines += [" · ".join(facts), ""]
    if run.note:
        lines += [plain_text(run.note, limit), ""]
    if run.error:
        title = f"{run.error.get('type', 'Error')}: {run.error.get('message', '')}"
        lines += ["**Error**", "", plain_text(title, limit), ""]
        if run.error.get("traceback"):
            lines += [code_text(run.error["traceback"], limit, "pytb"), ""]
    documents = _documents(run.outputs)
    outputs = None if documents else run.outputs  # documents are shown one by one instead
    for title, value in (("Inputs", run.inputs), ("Outputs", outputs), ("Tool calls", run.tool_calls)):
        if value not in (None, {}, []):
            lines += [f"**{title}**", "", _value_text(value, limit), ""]
    for number, document in enumerate(documents, 1):
        lines += [f"**Document {number}**", "", plain_text(str(document.get("page_content", "")), limit), ""]
        if document.get("metadata"):
            lines += [code_text(to_json(redact(document["metadata"])), limit, "json"), ""]
    for section, text in run.text.items():
        if text:
            lines += [f"**Streamed {inline_text(section)}**", "", plain_text(text, limit), ""]
    if run.events:
        lines += ["**Events**", "", code_text(to_json(redact(run.events)), limit, "json"), ""]
    if run.tags or run.metadata:
        lines += [
            "**Metadata**",
            "",
            code_text(to_json(redact({"tags": run.tags, **run.metadata})), limit, "json"),
        ]
    return "\n".join(lines)


def _documents(outputs: Any) -> list[dict[str, Any]]:
    """A retriever's documents (as its record keeps them: ``{"page_content", "metadata"}``), or []."""
    items = outputs.get("documents") if isinstance(outputs, dict) else outputs
    if not isinstance(items, list) or not items:
        return []
    return items if all(isinstance(item, dict) and "page_content" in item for item in items) else []


def _value_text(value: Any, limit: int | None) -> str:
    if isinstance(value, str):
        return plain_text(value, limit)
    return code_text(to_json(redact(value)), limit, "json")
