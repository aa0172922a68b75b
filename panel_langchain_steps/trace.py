"""The record of runs: what happened, as data, with no Panel objects in it.

LangChain reports each run as a start, any number of tokens, and an end or an
error, from whatever thread the runnable is on. `Trace` keeps one `RunRecord`
per run in a map under one lock, links children to their parents, and tells
its subscribers (the views) which runs changed; the views render on their own
schedule. Events may arrive out of order, twice, or not at all: a run first
seen through a token or an end is created on the spot, late events for runs
that ended are dropped, and a run still open when its turn ends is ended with
it. `Trace.end` is the one place a run ends.

A trace saves as versioned JSON (`SCHEMA_VERSION`, documented in
``docs/trace-format.md``) and loads back into the same records.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from uuid import UUID

from .safety import StreamRedactor, redact, redact_text
from .snapshot import describe_error, printable, snapshot

#: Statuses a run can have. The last four are terminal.
PENDING, RUNNING, SUCCESS, FAILED, STOPPED, PAUSED = (
    "pending",
    "running",
    "success",
    "failed",
    "stopped",
    "paused",
)
TERMINAL = frozenset({SUCCESS, FAILED, STOPPED, PAUSED})
STATUSES = (PENDING, RUNNING, SUCCESS, FAILED, STOPPED, PAUSED)
KINDS = ("chain", "tool", "llm", "retriever")

#: The fields of a saved run that hold what the run saw (redacted when saved).
_CONTENT_FIELDS = ("metadata", "inputs", "outputs", "text", "tool_calls", "error", "events")

#: The version of the saved JSON schema; `Trace.load` refuses others.
SCHEMA_VERSION = 1
FORMAT = "panel-langchain-steps/trace"

#: A section's streamed pieces are joined into one string when they reach this many.
_COMPACT_PARTS = 256

#: How many ended run ids are remembered to recognise late or duplicate events.
ENDED_MEMORY = 4096

#: The note of a run its own end never reached, ended with its turn.
ENDED_WITH_TURN = "ended with its turn"

#: Seconds a run whose parent never arrived may stay open with no event (`Trace.orphan_timeout`).
ORPHAN_TIMEOUT = 300.0


@dataclass(eq=False, slots=True)
class RunRecord:
    """One run: who it is, where it sits, what went in and out, and how it ended.

    Times are seconds since the epoch (``time.time()``), taken when the event
    arrived, so durations never include time spent rendering. ``text`` holds
    the streamed (or final) text by section: ``"text"`` and ``"reasoning"``.
    Every value is a JSON-safe snapshot taken when its event arrived
    (`snapshot.snapshot`), never the app's own object.
    """

    id: str
    parent_id: str | None
    kind: str
    name: str = ""
    run_type: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    status: str = PENDING
    start_time: float = 0.0
    end_time: float | None = None
    first_token_time: float | None = None
    inputs: Any = None
    outputs: Any = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    model: str | None = None
    #: ``{"type", "message", "traceback", "id"}`` for a failed or stopped run; runs that one
    #: exception passed through share its ``id``.
    error: dict[str, str] | None = None
    #: A paused run's pending requests (LangGraph ``interrupt()`` values), by interrupt id.
    interrupts: dict[str, Any] = field(default_factory=dict)
    #: The run resumes a paused graph (its input was a ``Command(resume=...)``).
    resumes: bool = False
    #: Custom progress events: ``{"name", "time", "data"}``.
    events: list[dict[str, Any]] = field(default_factory=list)
    #: Why an ended run ended the way it did, when its own events did not say ("ended with its turn").
    note: str = ""
    root_id: str = ""
    children: list[RunRecord] = field(default_factory=list, repr=False)
    #: The id as LangChain gave it (a UUID), while the run is live.
    key: Any = field(default=None, repr=False)
    _parts: dict[str, list[str]] = field(default_factory=dict, repr=False)
    # Streamed text is redacted as it arrives, per section (secrets may span tokens).
    _redactors: dict[str, StreamRedactor] = field(default_factory=dict, repr=False)
    _lengths: dict[str, int] = field(default_factory=dict, repr=False)
    # Whether any text was streamed in as tokens (a plain invoke only has its end's text).
    streamed: bool = field(default=False, repr=False)

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    def walk(self) -> Iterator[RunRecord]:
        """This run and every run below it, depth first in start order."""
        yield self
        for child in list(self.children):
            yield from child.walk()

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (to now while running); None before it started."""
        if not self.start_time:
            return None
        return (self.end_time if self.end_time is not None else time.time()) - self.start_time

    @property
    def elapsed(self) -> float:
        return self.duration or 0.0

    @property
    def text(self) -> dict[str, str]:
        """The run's text by section."""
        return {section: self.text_of(section) for section in self._parts}

    def text_of(self, section: str) -> str:
        # Reads never change the parts (views read without the trace's lock); a join is atomic.
        parts = self._parts.get(section)
        return "".join(parts) if parts else ""

    def text_length(self, section: str) -> int:
        return self._lengths.get(section, 0)

    def append_text(self, section: str, text: str) -> None:
        """Add ``text`` to a section as it is (`Trace.write` redacts streamed text first; this is for
        records built from saved data)."""
        parts = self._parts.get(section)
        if parts is None:
            self._parts[section] = [text]
            self._lengths[section] = len(text)
        else:
            parts.append(text)
            self._lengths[section] += len(text)
            if len(parts) >= _COMPACT_PARTS:  # by the writer, under the trace's lock
                parts[:] = ["".join(parts)]

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON-ready data (the saved schema's run object)."""
        return {
            "id": self.id,
            "parent_id": self.parent_id,
            "root_id": self.root_id,
            "kind": self.kind,
            "name": self.name,
            "run_type": self.run_type,
            "tags": list(self.tags),
            "metadata": self.metadata,
            "status": self.status,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "first_token_time": self.first_token_time,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "text": self.text,
            "tool_calls": self.tool_calls,
            "usage": self.usage,
            "model": self.model,
            "error": self.error,
            "interrupts": self.interrupts,
            "resumes": self.resumes,
            "events": self.events,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, item: Any, where: str = "run") -> RunRecord:
        """A run from `to_dict` data; `ValueError` saying ``where`` and what is wrong for anything else."""
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected an object, got {type(item).__name__}")
        for key, kind in (("id", str), ("kind", str), ("status", str)):
            if not isinstance(item.get(key), kind):
                raise ValueError(f"{where}: '{key}' must be a {kind.__name__}, got {item.get(key)!r}")
        if item["status"] not in STATUSES:
            raise ValueError(f"{where}: unknown status {item['status']!r}")
        try:
            run = cls(
                item["id"],
                item.get("parent_id"),
                item["kind"],
                name=str(item.get("name") or ""),
                run_type=item.get("run_type"),
                tags=list(item.get("tags") or []),
                metadata=dict(item.get("metadata") or {}),
                status=item["status"],
                start_time=float(item.get("start_time") or 0.0),
                end_time=_optional_float(item.get("end_time")),
                first_token_time=_optional_float(item.get("first_token_time")),
                inputs=item.get("inputs"),
                outputs=item.get("outputs"),
                tool_calls=list(item.get("tool_calls") or []),
                usage=item.get("usage"),
                model=item.get("model"),
                error=item.get("error"),
                interrupts=dict(item.get("interrupts") or {}),
                resumes=bool(item.get("resumes")),
                events=list(item.get("events") or []),
                note=str(item.get("note") or ""),
                root_id=str(item.get("root_id") or ""),
            )
            for section, text in dict(item.get("text") or {}).items():
                run.append_text(str(section), str(text))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{where}: {error}") from None
        return run


class _Ending(NamedTuple):
    """How a run ends, as data taken before the trace's lock."""

    status: str
    note: str
    at: float
    outputs: Any = None
    error: dict[str, str] | None = None
    interrupts: dict[str, Any] = {}  # noqa: RUF012 (never changed)


class Subscription:
    """A view's window on a `Trace`: the runs that changed since it last looked.

    ``wake`` is called (from the thread of the event) when the first change
    arrives after a `take`: the view schedules its next render then.
    """

    def __init__(self, trace: Trace, wake: Callable[[], None]):
        self._trace = trace
        self._wake = wake
        self._changed: dict[str, RunRecord] = {}
        self.closed = False

    def _note(self, run: RunRecord) -> None:
        if not self._changed:
            self._changed[run.id] = run
            self._wake()
        else:
            self._changed[run.id] = run

    def take(self) -> list[RunRecord]:
        """The runs that changed since the last call, in the order they first changed."""
        with self._trace.lock:
            changed, self._changed = self._changed, {}
        return list(changed.values())

    def close(self) -> None:
        self._trace._unsubscribe(self)
        self.closed = True


class Trace:
    """Run records by id, linked parent to child, under one lock.

    Thread-safe: the handler writes from any thread; views read in their own
    time through `subscribe`. ``runs`` iterates every record, parents before
    their children where both are known.
    """

    def __init__(self, orphan_timeout: float = ORPHAN_TIMEOUT) -> None:
        #: Seconds a run whose parent never arrived may stay open with no event before `sweep` ends it.
        self.orphan_timeout = orphan_timeout
        self.lock = threading.RLock()
        self._runs: dict[str, RunRecord] = {}
        self._roots: list[RunRecord] = []
        self._ended: dict[str, None] = {}
        self._subscriptions: list[Subscription] = []
        self._live: dict[Any, RunRecord] = {}  # open runs by the id LangChain gives (a UUID)
        self._waiting: dict[str, list[RunRecord]] = {}  # runs whose parent has not arrived, by its id

    # -- reading ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._runs)

    def __contains__(self, run_id: object) -> bool:
        return str(run_id) in self._runs

    def get(self, run_id: str | UUID) -> RunRecord | None:
        return self._runs.get(str(run_id))

    @property
    def runs(self) -> Iterator[RunRecord]:
        """Every run, depth first from each root in start order."""
        with self.lock:
            roots = list(self._roots)
        for root in roots:
            yield from root.walk()

    @property
    def roots(self) -> list[RunRecord]:
        with self.lock:
            return list(self._roots)

    @property
    def open_runs(self) -> int:
        """How many runs have started and not ended."""
        return len(self._live)

    def runs_of(self, root_id: str) -> list[RunRecord]:
        """The runs of one turn: its root and everything under it."""
        with self.lock:
            root = self._runs.get(root_id)
            return list(root.walk()) if root is not None else []

    def copy(self, root_ids: list[str] | None = None) -> Trace:
        """A new trace of these turns' runs as they are now (of every turn when None)."""
        return Trace.from_dict(self.to_dict(root_ids))

    def parent(self, run: RunRecord) -> RunRecord | None:
        return self._runs.get(run.parent_id) if run.parent_id else None

    def ancestors(self, run: RunRecord) -> Iterator[RunRecord]:
        """The run's known ancestors, nearest first."""
        parent = self.parent(run)
        while parent is not None:
            yield parent
            parent = self.parent(parent)

    def subscribe(self, wake: Callable[[], None]) -> Subscription:
        """Follow changes; ``wake()`` is called whenever changes start to wait."""
        subscription = Subscription(self, wake)
        with self.lock:
            self._subscriptions.append(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self.lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    # -- writing (the handler's side) ------------------------------------------

    def has_ended(self, run_id: Any) -> bool:
        """Whether the run ended: its late events are dropped."""
        return str(run_id) in self._ended

    def live(self, run_id: Any) -> RunRecord | None:
        """The open run LangChain knows as ``run_id``."""
        return self._live.get(run_id)

    def start(
        self,
        run_id: Any,
        parent_id: Any,
        kind: str,
        *,
        name: str = "",
        run_type: str | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: Any = None,
        model: str | None = None,
        resumes: bool = False,
        at: float | None = None,
    ) -> RunRecord | None:
        """A run started; None for a duplicate start or a run that already ended."""
        at = at or time.time()
        tags = [printable(tag) for tag in tags or []]
        metadata = snapshot(metadata) if isinstance(metadata, Mapping) else {}
        inputs = snapshot(inputs)
        with self.lock:
            if self.has_ended(run_id):
                return None
            run = self._live.get(run_id)
            if run is not None and run.status != PENDING:
                return None
            if run is None:
                run = self._open(run_id, parent_id, kind)
            run.name, run.run_type, run.model = printable(name), run_type, model
            run.tags, run.metadata, run.inputs, run.resumes = tags, metadata, inputs, resumes
            run.status, run.start_time = RUNNING, at
            self._changed(run)
            return run

    def touch(self, run_id: Any, parent_id: Any, kind: str) -> RunRecord | None:
        """The open run, created as a pending placeholder when first seen through a later event."""
        run = self._live.get(run_id)
        if run is None and not self.has_ended(run_id):
            with self.lock:
                run = self._live.get(run_id) or self._open(run_id, parent_id, kind)
        return run

    def write(self, run: RunRecord, section: str, text: str, streamed: bool = True) -> None:
        """Text for one of the run's sections ("text", "reasoning"), kept with its secrets redacted.

        Streamed text goes through a `StreamRedactor`, which may hold back the
        end of a word until the next token (or the run's end) shows whether it
        is a secret.
        """
        text = printable(text)
        with self.lock:
            if run.ended or not text:
                return
            if run.first_token_time is None:
                run.first_token_time = time.time()
            if streamed:
                run.streamed = True
                redactor = run._redactors.get(section) or run._redactors.setdefault(section, StreamRedactor())
                text = redactor.feed(text)
            else:
                text = redact_text(text)
            if text:
                run.append_text(section, text)
                self._changed(run)

    def update(self, run: RunRecord, **fields: Any) -> None:
        """Set data on a live run (outputs, usage, tool calls, ...), as snapshots."""
        values = {name: snapshot(value) for name, value in fields.items()}
        with self.lock:
            for name, value in values.items():
                setattr(run, name, value)
            self._changed(run)

    def event(self, run: RunRecord, name: str, data: Any) -> None:
        """A custom progress event inside a run."""
        event = {"name": printable(name), "time": time.time(), "data": snapshot(data)}
        with self.lock:
            if not run.ended:
                run.events.append(event)
                self._changed(run)

    def end(
        self,
        run: RunRecord,
        status: str,
        *,
        outputs: Any = None,
        exception: BaseException | None = None,
        error: dict[str, str] | None = None,
        interrupts: dict[str, Any] | None = None,
        note: str = "",
        at: float | None = None,
    ) -> bool:
        """End a run: the one path for success, failure, stop, pause and salvage.

        ``exception`` is kept as its description (``error``), and ``interrupts``
        are a paused run's pending requests. When a root ends, whatever it left
        open (events that never came) ends with it. False if the run had
        already ended.
        """
        ending = _Ending(
            status,
            printable(note),
            at or time.time(),
            outputs=snapshot(outputs) if outputs is not None else None,
            error=describe_error(exception) if exception is not None and error is None else snapshot(error),
            interrupts=snapshot(interrupts or {}),
        )
        with self.lock:
            if run.ended:
                return False
            self._close(run, ending)
            if run.root_id == run.id:
                self._close_turn(run)
            return True

    def end_all(self, status: str, exception: BaseException | None = None, note: str = "") -> None:
        """End every open run (the user pressed stop), children before parents."""
        with self.lock:
            for run in sorted(self._live.values(), key=_started, reverse=True):
                self.end(run, status, exception=exception, note=note)

    def forget(self, root_id: str) -> None:
        """Drop a finished turn's records, keeping its ids as ended.

        Subscribers see the root change once more: a changed run that the
        trace no longer holds was forgotten.
        """
        with self.lock:
            root = self._runs.get(root_id)
            if root is None:
                return
            for run in root.walk():
                self._runs.pop(run.id, None)
                self._remember_ended(run.id)
            if root in self._roots:
                self._roots.remove(root)
            self._changed(root)

    def clear(self) -> None:
        """Forget every ended turn."""
        with self.lock:
            for root in [root for root in self._roots if root.ended]:
                self.forget(root.id)

    def sweep(self, now: float | None = None) -> float | None:
        """End runs whose parent never arrived and that saw no event for `orphan_timeout` seconds.

        Returns the seconds until the next such run is due, or None when none waits.
        """
        now = now or time.time()
        timeout = self.orphan_timeout
        due = None
        with self.lock:
            for parent_id, runs in list(self._waiting.items()):
                for run in runs:
                    if run.ended:
                        continue
                    left = _last_seen(run) + timeout - now
                    if left < 0:
                        self.end(run, STOPPED, note=f"no event for {timeout:g} s; its parent never reported")
                    else:
                        due = left if due is None else min(due, left)
                runs[:] = [run for run in runs if not run.ended]
                if not runs:
                    del self._waiting[parent_id]
        return due

    def _open(self, run_id: Any, parent_id: Any, kind: str) -> RunRecord:
        key = str(run_id)
        parent_key = str(parent_id) if parent_id is not None else None
        run = RunRecord(key, parent_key, kind, key=run_id)
        parent = self._runs.get(parent_key) if parent_key else None
        if parent is not None:
            run.root_id = parent.root_id
            parent.children.append(run)
        else:
            # A run whose parent has not arrived stands alone until its parent comes (or it ends,
            # or `sweep` ends it).
            run.root_id = key
            self._roots.append(run)
            if parent_key is not None:
                self._wait(run)
        for orphan in self._waiting.pop(key, []):  # runs that arrived before this, their parent
            if not orphan.ended:
                self._move(orphan, run)
        self._runs[key] = run
        self._live[run_id] = run
        return run

    def _wait(self, orphan: RunRecord) -> None:
        self._waiting.setdefault(orphan.parent_id, []).append(orphan)
        if len(self._waiting) > ENDED_MEMORY:
            del self._waiting[next(iter(self._waiting))]

    def _move(self, run: RunRecord, parent: RunRecord) -> None:
        """Put a run that stood alone (with its subtree) under its ``parent``, which came later."""
        if run in self._roots:
            self._roots.remove(run)
        parent.children.append(run)
        for moved in run.walk():
            moved.root_id = parent.root_id
        self._changed(run)

    def _close(self, run: RunRecord, ending: _Ending) -> None:
        for section, redactor in run._redactors.items():
            if rest := redactor.finish():
                run.append_text(section, rest)
        run._redactors.clear()
        run.status, run.end_time, run.note = ending.status, ending.at, ending.note
        if ending.outputs is not None:
            run.outputs = ending.outputs
        if ending.error is not None:
            run.error = ending.error
        if ending.interrupts:
            run.interrupts = ending.interrupts
        self._live.pop(run.key, None)
        self._remember_ended(run.id)
        self._changed(run)

    def _close_turn(self, root: RunRecord) -> None:
        """End what the root left open: with it when it succeeded, else as stopped by its end."""
        done = root.status in (SUCCESS, PAUSED)
        ending = _Ending(*((SUCCESS, ENDED_WITH_TURN) if done else (STOPPED, "")), root.end_time)
        for run in sorted(root.walk(), key=_started, reverse=True):
            if not run.ended:
                self._close(run, ending)

    def _remember_ended(self, key: str) -> None:
        self._ended[key] = None
        if len(self._ended) > ENDED_MEMORY:
            del self._ended[next(iter(self._ended))]

    def _changed(self, run: RunRecord) -> None:
        for subscription in self._subscriptions:
            subscription._note(run)

    # -- saving and loading ------------------------------------------------------

    def to_dict(self, root_ids: list[str] | None = None) -> dict[str, Any]:
        """The trace (or these turns of it) as JSON-ready data: ``{"format", "version", "runs": [...]}``."""
        with self.lock:
            runs = self.runs if root_ids is None else (r for root in root_ids for r in self.runs_of(root))
            return {"format": FORMAT, "version": SCHEMA_VERSION, "runs": [run.to_dict() for run in runs]}

    def save(self, path: str | Path) -> None:
        """Write the trace as JSON (secrets in it redacted)."""
        data = self.to_dict()
        data["runs"] = [redacted(run) for run in data["runs"]]
        text = json.dumps(data, ensure_ascii=False, indent=1)
        # A lone surrogate (a model may stream one) cannot be written as UTF-8: it becomes "?".
        Path(path).write_text(text, encoding="utf-8", errors="replace")

    @classmethod
    def from_dict(cls, data: Any, source: str = "trace") -> Trace:
        """A trace from `to_dict` data; `ValueError` saying what is wrong for anything else."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
        version = data.get("version")
        if data.get("format") != FORMAT:
            raise ValueError(
                f"{source}: not a panel-langchain-steps trace (format is {data.get('format')!r})"
            )
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"{source}: unknown trace version {version!r}; this version of panel-langchain-steps "
                f"reads version {SCHEMA_VERSION}"
            )
        runs = data.get("runs")
        if not isinstance(runs, list):
            raise ValueError(f"{source}: 'runs' must be a list")
        trace = cls()
        for index, item in enumerate(runs):
            trace.add_record(RunRecord.from_dict(item, f"{source}: runs[{index}]"))
        return trace

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        """A trace saved with `save`; `ValueError` for an empty, truncated or unknown file."""
        text = Path(path).read_text(encoding="utf-8")
        if not text.strip():
            raise ValueError(f"{path}: the file is empty")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path}: not valid JSON (truncated?) at line {error.lineno}, "
                f"column {error.colno}: {error.msg}"
            ) from None
        return cls.from_dict(data, str(path))

    def add_record(self, run: RunRecord) -> None:
        """Add a finished record (from a file or an import), under its parent if known."""
        with self.lock:
            parent = self._runs.get(run.parent_id) if run.parent_id else None
            if parent is not None:
                parent.children.append(run)
                run.root_id = parent.root_id
            else:
                run.root_id = run.root_id or run.id
                self._roots.append(run)
            self._runs[run.id] = run
            if run.ended:
                self._remember_ended(run.id)
            self._changed(run)


def redacted(run: dict[str, Any]) -> dict[str, Any]:
    """A saved run (`RunRecord.to_dict` data) with the secrets in what it saw redacted."""
    return {key: redact(value) if key in _CONTENT_FIELDS else value for key, value in run.items()}


def _started(run: RunRecord) -> float:
    return run.start_time


def _last_seen(run: RunRecord) -> float:
    return max(run.start_time, run.first_token_time or 0.0, *(event["time"] for event in run.events[-1:]))


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
