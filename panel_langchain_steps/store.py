"""The trace store: every turn kept in a database, listed, searched, loaded and deleted.

A turn (a root run and everything under it) is stored as one row: its summary
in columns (for lists and filters), its saved runs as trace JSON (redacted as
`Trace.save` redacts), the names of its models and tools (for filters) and its
text in a full-text index (for search). A file path is a SQLite database (WAL,
FTS5); a SQLAlchemy URL such as ``postgresql+psycopg://...`` is Postgres
(``tsvector``). The schema carries a version and upgrades itself.

`TraceStore.follow` saves each turn of a live `Trace` when it ends, on the
store's own writer thread, so the thread that ended the turn (a page's event
loop) never waits for the disk.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import queue
import re
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from . import usage
from .trace import ENDED_MEMORY, FORMAT, PAUSED, SCHEMA_VERSION, SUCCESS, RunRecord, Trace, redacted

try:
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc
except ImportError:  # the `store` extra
    sa = None

log = logging.getLogger("panel_langchain_steps")

#: The version of the store's schema; a store of an older version is upgraded when opened.
STORE_VERSION = 1
STORE_FORMAT = "panel-langchain-steps/store"

#: Characters of a turn's text the search index keeps (Postgres limits a tsvector to 1 MB).
SEARCH_CHARS = 200_000

#: Seconds between the tries of a database operation that found the database locked or unreachable.
RETRY_DELAYS = (0.2, 1.0)

#: Seconds the writer waits after a turn ends for the other turns that end with it (one transaction).
_GATHER = 0.05

_THREAD_KEYS = ("thread_id", "session_id", "conversation_id")
_WORD = re.compile(r"[^\W_]+")
_SQLITE_HEADER = b"SQLite format 3\x00"
_OUR_TABLES = {"store_meta", "turns", "turn_names", "turn_text"}

T = TypeVar("T")


class StoreError(RuntimeError):
    """The store's database stayed locked or unreachable after the retries (one line: what and why)."""


@dataclass(frozen=True, slots=True)
class TurnSummary:
    """One stored turn, as `TraceStore.list` and `TraceStore.search` give it (newest first).

    Times are seconds since the epoch; ``cost`` is None when none of the turn's
    models had a price when it was saved.
    """

    id: str
    name: str
    status: str
    start_time: float
    end_time: float | None
    duration: float | None
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost: float | None
    model_calls: int
    tool_calls: int
    errors: int
    runs: int
    thread_id: str | None
    preview: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_SUMMARY_COLUMNS = [name for name in TurnSummary.__dataclass_fields__]


class TraceStore:
    """Every turn kept, newest first: list, search, load, delete, and a retention rule.

    ``target`` is a file path (SQLite, created if missing) or a SQLAlchemy URL
    (``sqlite:///traces.db``, ``postgresql+psycopg://user@host/db``). Retention:
    turns that started more than ``max_age`` seconds ago, and all but the newest
    ``max_turns``, are deleted after each write (and by `prune`). ``timeout`` is
    how long one try waits for a locked or unreachable database.

    A SQLite file is opened (and checked) at once: a file that is not a store
    raises `ValueError` naming it. A server is first reached when the store is
    first used. An operation that finds the database locked or unreachable is
    tried again (`RETRY_DELAYS`), then raises `StoreError`.
    """

    def __init__(
        self,
        target: str | Path,
        *,
        max_age: float | None = None,
        max_turns: int | None = None,
        timeout: float = 5.0,
    ):
        if sa is None:
            raise ImportError("TraceStore needs SQLAlchemy: pip install 'panel-langchain-steps[store]'")
        for name, value in (("max_age", max_age), ("max_turns", max_turns), ("timeout", timeout)):
            if value is not None and (not isinstance(value, int | float) or value <= 0):
                raise ValueError(f"TraceStore: {name} must be a positive number, got {value!r}")
        self.max_age, self.max_turns = max_age, max_turns
        self._engine, self._dialect, self._file = _engine(target, timeout)
        self.url = self._engine.url.render_as_string(hide_password=True)
        self._ready = False
        self._ready_lock = threading.Lock()
        self._writer: _Writer | None = None
        if self._file is not None:
            self._check_file(self._file)
            self._retrying("open", lambda connection: None)

    def __repr__(self) -> str:
        return f"TraceStore({self.url!r})"

    # -- writing ---------------------------------------------------------------

    def save(self, trace: Trace, prices: usage.Prices | None = None) -> list[str]:
        """Store every turn of ``trace`` (replacing a stored turn of the same id); their ids.

        ``prices`` (``{model: (input_per_1M, output_per_1M)}``) gives each turn's cost.
        """
        turns = [_Turn.of(trace.runs_of(root.id), prices) for root in trace.roots]
        self._write_turns(turns)
        return [turn.summary["id"] for turn in turns]

    def _write_turns(self, turns: Sequence[_Turn]) -> None:
        """Write prepared turns in one transaction, then apply the retention rule."""
        if turns:
            self._retrying("save", lambda connection: self._write(connection, turns))

    def follow(
        self, trace: Trace, prices: usage.Prices | Callable[[], usage.Prices | None] | None = None
    ) -> None:
        """Save each turn of a live ``trace`` when it ends (succeeds, fails, stops or pauses).

        The turn is written by the store's writer thread: the thread that ended
        it only wakes the writer. A write that fails after the retries is
        reported in one log line and the trace goes on. ``prices`` may be a
        function that gives the current prices.
        """
        with self._ready_lock:
            if self._writer is None:
                self._writer = _Writer(self)
        self._writer.follow(trace, prices)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every turn that ended so far is written (or failed); False on timeout."""
        return self._writer.flush(timeout) if self._writer is not None else True

    def delete(self, *ids: str) -> int:
        """Delete turns by id; how many were stored."""
        if not ids:
            return 0
        return self._retrying(
            "delete", lambda connection: self._delete(connection, "id IN :ids", ids=list(ids))
        )

    def prune(self) -> int:
        """Apply the retention rule (``max_age``, ``max_turns``) now; how many turns it deleted."""
        return self._retrying("prune", self._prune)

    # -- reading ---------------------------------------------------------------

    def list(
        self,
        *,
        status: str | Iterable[str] | None = None,
        model: str | None = None,
        tool: str | None = None,
        thread_id: str | None = None,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[TurnSummary]:
        """Summaries of stored turns, newest first, that match every filter given.

        ``status`` is one status or several; ``model`` and ``tool`` a model or
        tool a turn used; ``since`` and ``until`` bound its start time (epoch
        seconds or datetimes). ``limit`` and ``offset`` page.
        """
        chosen = self._filters(
            None, status=status, model=model, tool=tool, thread_id=thread_id, since=since, until=until
        )
        return self._page(chosen, limit, offset)

    def search(self, text: str, *, limit: int = 50, offset: int = 0, **filters: Any) -> list[TurnSummary]:
        """Turns that carried every word of ``text`` (as a word or the start of one), newest first.

        Searched: run names, models, tags, metadata, inputs, outputs, streamed
        text, tool calls, errors and events. ``filters`` and paging as `list`.
        """
        return self._page(self._filters(text, **filters), limit, offset)

    def totals(self, text: str | None = None, **filters: Any) -> dict[str, Any]:
        """Sums over the turns that match ``text`` and ``filters`` (as `search`), e.g. a session's cost:
        ``totals(thread_id=...)``.

        ``{"turns", "input_tokens", "output_tokens", "total_tokens", "cost", "duration"}``;
        ``cost`` is None when no matching turn had a cost.
        """
        chosen = self._filters(text, **filters)
        query = (
            "SELECT count(*), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), "
            "coalesce(sum(total_tokens), 0), sum(cost), coalesce(sum(duration), 0) "
            f"FROM {chosen.source} WHERE {chosen.where}"
        )
        row = self._retrying("read", lambda connection: connection.execute(_sql(query), chosen.params).one())
        keys = ("turns", "input_tokens", "output_tokens", "total_tokens", "cost", "duration")
        return dict(zip(keys, row, strict=True))

    def load(self, turn_id: str) -> Trace:
        """The stored turn as a `Trace`; `KeyError` if the store has no such turn."""
        query = _sql("SELECT data FROM turns WHERE id = :id")
        data = self._retrying("read", lambda connection: connection.execute(query, {"id": turn_id}).scalar())
        if data is None:
            raise KeyError(f"no turn {turn_id!r} in the trace store {self.url}")
        return Trace.from_dict(json.loads(zlib.decompress(data)), f"{self.url}: turn {turn_id}")

    def __len__(self) -> int:
        return self._retrying(
            "read", lambda connection: connection.execute(_sql("SELECT count(*) FROM turns")).scalar()
        )

    def close(self) -> None:
        """Write what is pending, stop the writer and close the connections."""
        if self._writer is not None:
            self._writer.close()
        self._engine.dispose()

    # -- the database ------------------------------------------------------------

    def _retrying(self, action: str, work: Callable[[Any], T]) -> T:
        """Run ``work(connection)`` in a transaction, trying again while the database is locked or away."""
        for attempt in range(len(RETRY_DELAYS) + 1):
            try:
                if not self._ready:
                    self._open()
                with self._engine.begin() as connection:
                    return work(connection)
            # Unique keys too: two processes saving the same turn, or turns that started the same microsecond.
            except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.IntegrityError) as error:
                if attempt == len(RETRY_DELAYS):
                    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
                    raise StoreError(
                        f"trace store {self.url}: could not {action} after {attempt + 1} tries: {reason}"
                    ) from error
                time.sleep(RETRY_DELAYS[attempt])
        raise AssertionError("unreachable")

    def _open(self) -> None:
        """Create the schema, or check it and upgrade it, once (under the database's own lock)."""
        with self._ready_lock:
            if self._ready:
                return
            try:
                with self._engine.begin() as connection:
                    connection.exec_driver_sql(self._dialect.setup_lock)
                    self._upgrade(connection)
            except sa_exc.DatabaseError as error:
                if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
                    raise
                reason = str(error.orig).strip().splitlines()[0]
                if self._file is None:  # a server: its database, its rights
                    raise ValueError(f"{self._where}: could not set up the trace store ({reason})") from None
                raise ValueError(f"{self._where}: not a trace store ({reason})") from None
            self._ready = True

    @property
    def _where(self) -> str:
        return str(self._file) if self._file is not None else self.url

    def _check_file(self, path: Path) -> None:
        if path.is_dir():
            raise ValueError(f"{path}: is a directory, not a trace store")
        if not path.parent.is_dir():
            raise ValueError(f"{path}: its folder does not exist")
        if path.exists() and path.stat().st_size:
            with path.open("rb") as file:
                if file.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
                    raise ValueError(f"{path}: not a trace store (not a SQLite database)")

    def _upgrade(self, connection: Any) -> None:
        tables = set(sa.inspect(connection).get_table_names())
        version = 0
        if "store_meta" in tables:
            rows = dict(connection.execute(_sql("SELECT key, value FROM store_meta")).all())
            if rows.get("format") != STORE_FORMAT:
                raise ValueError(f"{self._where}: not a trace store (format {rows.get('format')!r})")
            version = int(rows.get("version", 0))
        elif self._file is not None and {table for table in tables if not table.startswith("turn_text")}:
            others = ", ".join(sorted(tables))
            raise ValueError(f"{self._where}: not a trace store (it holds other tables: {others})")
        if version > STORE_VERSION:
            raise ValueError(
                f"{self._where}: a trace store of version {version}, made by a newer "
                f"panel-langchain-steps; this version reads version {STORE_VERSION}"
            )
        for step in range(version, STORE_VERSION):
            for statement in _UPGRADES[step]:
                for part in statement.format(**self._dialect.types).split("; "):
                    connection.exec_driver_sql(part)
        if version < STORE_VERSION:
            upsert = (
                "INSERT INTO store_meta (key, value) VALUES (:key, :value) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            )
            connection.execute(
                _sql(upsert),
                [{"key": "format", "value": STORE_FORMAT}, {"key": "version", "value": str(STORE_VERSION)}],
            )

    def _write(self, connection: Any, turns: Sequence[_Turn]) -> None:
        columns = ["seq", *_SUMMARY_COLUMNS, "saved_at", "data"]
        insert = _sql(
            f"INSERT INTO turns ({', '.join(columns)}) VALUES ({', '.join(':' + name for name in columns)})"
        )
        dialect = self._dialect
        now = time.time()
        turns = list({turn.summary["id"]: turn for turn in turns}.values())
        self._delete(connection, "id IN :ids", ids=[turn.summary["id"] for turn in turns])  # saved before
        seqs = []
        for turn in turns:
            seq = _free_seq(connection, turn.summary["start_time"])
            connection.execute(insert, {"seq": seq, **turn.summary, "saved_at": now, "data": turn.data})
            seqs.append(seq)
        names = [
            {"turn": seq, "kind": kind, "name": name}
            for seq, turn in zip(seqs, turns, strict=True)
            for kind, name in turn.names
        ]
        texts = [{"seq": seq, "body": dialect.body(turn.body)} for seq, turn in zip(seqs, turns, strict=True)]
        if names:
            connection.execute(
                _sql("INSERT INTO turn_names (turn, kind, name) VALUES (:turn, :kind, :name)"), names
            )
        connection.execute(_sql(dialect.insert_text), texts)
        if self.max_age or self.max_turns:
            self._prune(connection)

    def _prune(self, connection: Any) -> int:
        deleted = 0
        if self.max_age:
            cutoff = time.time() - self.max_age
            deleted += self._delete(connection, "seq < :key", key=_seq_key(cutoff))
        if self.max_turns:
            oldest_kept = connection.execute(
                _sql("SELECT seq FROM turns ORDER BY seq DESC LIMIT 1 OFFSET :n"), {"n": self.max_turns - 1}
            ).scalar()
            if oldest_kept is not None:
                deleted += self._delete(connection, "seq < :seq", seq=oldest_kept)
        return deleted

    def _delete(self, connection: Any, where: str, **params: Any) -> int:
        """Delete the turns ``where`` holds, with their names and text; how many."""
        seqs = list(
            connection.execute(_sql(f"SELECT seq FROM turns WHERE {where}", **params), params).scalars()
        )
        self._drop(connection, seqs, ("turn_names", "turn_text", "turns"))
        return len(seqs)

    def _drop(self, connection: Any, seqs: list[int], tables: Sequence[str]) -> None:
        """Delete the rows of turns (by ``seq``) from ``tables``."""
        keys = {"turn_names": "turn", "turn_text": self._dialect.key, "turns": "seq"}
        for start in range(0, len(seqs), 500):
            chunk = {"seqs": seqs[start : start + 500]}
            for table in tables:
                connection.execute(_sql(f"DELETE FROM {table} WHERE {keys[table]} IN :seqs", **chunk), chunk)

    def _filters(
        self,
        text: str | None,
        *,
        status: str | Iterable[str] | None = None,
        model: str | None = None,
        tool: str | None = None,
        thread_id: str | None = None,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
    ) -> _Selection:
        conditions, params = ["1 = 1"], {}
        source, order = "turns", "seq DESC"
        words = _WORD.findall((text or "").lower())
        if words:
            source, order = self._dialect.search_source, self._dialect.search_order
            conditions.append(self._dialect.matches)
            params["query"] = self._dialect.query(words)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            conditions.append("status IN (" + ", ".join(f":status{i}" for i in range(len(statuses))) + ")")
            params.update({f"status{i}": value for i, value in enumerate(statuses)})
        for kind, name in (("model", model), ("tool", tool)):
            if name:
                conditions.append(
                    f"EXISTS (SELECT 1 FROM turn_names WHERE kind = '{kind}' AND name = :{kind} "
                    "AND turn_names.turn = turns.seq)"
                )
                params[kind] = name
        if thread_id is not None:
            conditions.append("thread_id = :thread_id")
            params["thread_id"] = thread_id
        if since is not None:
            conditions.append("seq >= :since")  # the start time's key: the primary key's order
            params["since"] = _seq_key(_epoch(since))
        if until is not None:
            conditions.append("seq < :until")
            params["until"] = _seq_key(_epoch(until))
        return _Selection(source, " AND ".join(conditions), params, order)

    def _page(self, chosen: _Selection, limit: int, offset: int) -> list[TurnSummary]:
        if not (isinstance(limit, int) and limit > 0 and isinstance(offset, int) and offset >= 0):
            raise ValueError(
                f"limit must be a positive int and offset a non-negative one, got {limit}, {offset}"
            )
        query = _sql(
            f"SELECT {', '.join(_SUMMARY_COLUMNS)} FROM {chosen.source} WHERE {chosen.where} "
            f"ORDER BY {chosen.order} LIMIT :limit OFFSET :offset"
        )
        paging = {**chosen.params, "limit": limit, "offset": offset}
        rows = self._retrying("read", lambda connection: connection.execute(query, paging).all())
        return [TurnSummary(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class _Selection:
    """The turns a query reads: its FROM, WHERE (and their parameters) and ORDER BY."""

    source: str
    where: str
    params: dict[str, Any]
    order: str


def _seq_key(start_time: float) -> int:
    """A turn's key in the store: its start time in microseconds, so the key's order is the time's."""
    return max(0, int(start_time * 1_000_000))


def _free_seq(connection: Any, start_time: float) -> int:
    """The key for a turn that started at ``start_time``: its time's, or the first free one after it."""
    key = _seq_key(start_time)
    if connection.execute(_sql("SELECT 1 FROM turns WHERE seq = :key"), {"key": key}).first() is None:
        return key
    gap = (
        "SELECT min(seq) + 1 FROM turns WHERE seq >= :key "
        "AND NOT EXISTS (SELECT 1 FROM turns AS later WHERE later.seq = turns.seq + 1)"
    )
    return connection.execute(_sql(gap), {"key": key}).scalar()


# -- a turn, prepared for writing ----------------------------------------------------


@dataclass(slots=True)
class _Turn:
    summary: dict[str, Any]
    data: bytes
    names: list[tuple[str, str]]
    body: str

    @classmethod
    def of(cls, runs: list[RunRecord], prices: usage.Prices | None) -> _Turn:
        """A turn (its root first, then every run under it) as the store keeps it."""
        root = runs[0]
        saved = [redacted(run.to_dict()) for run in runs]
        numbers = usage.summary(runs, prices)
        summary = {
            "id": root.id,
            "name": root.name,
            # A graph that stopped at an interrupt() ends its root run well: the turn is paused.
            "status": PAUSED
            if root.status == SUCCESS and any(run.status == PAUSED for run in runs)
            else root.status,
            "start_time": root.start_time,
            "end_time": root.end_time,
            "duration": root.duration if root.end_time is not None else None,
            "input_tokens": numbers["input_tokens"],
            "output_tokens": numbers["output_tokens"],
            "total_tokens": numbers["total_tokens"],
            "cost": numbers["cost"],
            "model_calls": numbers["model_calls"],
            "tool_calls": numbers["tool_calls"],
            "errors": numbers["errors"],
            "runs": len(runs),
            "thread_id": _thread_id(saved),
            "preview": _preview(saved[0]["inputs"]),
        }
        names = {("model", run.model) for run in runs if run.kind == "llm" and run.model}
        names |= {("tool", run.name) for run in runs if run.kind == "tool" and run.name}
        data = json.dumps({"format": FORMAT, "version": SCHEMA_VERSION, "runs": saved}, ensure_ascii=False)
        data = zlib.compress(data.encode("utf-8"), 1)
        return cls(summary, data, sorted(names), _search_text(saved))


_SHARED: weakref.WeakValueDictionary[str, TraceStore] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


def shared(target: str | Path) -> TraceStore:
    """The process's one `TraceStore` for ``target`` (a path or URL), opened on first use.

    Handlers given ``store="traces.db"`` share it, so the sessions of an app share one writer
    thread and one pool of connections.
    """
    key = str(Path(target).resolve()) if "://" not in str(target) else str(target)
    with _SHARED_LOCK:
        store = _SHARED.get(key)
        if store is None:
            store = _SHARED[key] = TraceStore(target)
        return store


def is_store(target: str | Path) -> bool:
    """Whether ``target`` names a store rather than a trace file: a database URL, or a SQLite file."""
    if "://" in str(target):
        return True
    try:
        with open(target, "rb") as file:
            return file.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER
    except OSError:
        return False


def _thread_id(saved: list[dict[str, Any]]) -> str | None:
    for run in saved:
        for key in _THREAD_KEYS:
            value = run["metadata"].get(key)
            if isinstance(value, str | int) and value != "":
                return str(value)
    return None


def _preview(inputs: Any) -> str:
    """The turn's question: the last ``content`` text in its input, or its first text."""
    contents = [text for key, text in _leaves(inputs) if key == "content" and text.strip()]
    texts = contents or [text for _, text in _leaves(inputs) if text.strip()]
    preview = " ".join(texts[-1].split()) if texts else ""
    return preview[:200]


def _search_text(saved: list[dict[str, Any]]) -> str:
    """Everything the turn carried, each distinct text once, up to `SEARCH_CHARS`."""
    seen: dict[str, None] = {}
    for run in saved:
        for key in (
            "name",
            "model",
            "status",
            "tags",
            "metadata",
            "inputs",
            "outputs",
            "text",
            "tool_calls",
            "error",
            "events",
            "note",
        ):
            for _, text in _leaves(run[key]):
                seen.setdefault(text, None)
    return "\n".join(seen)[:SEARCH_CHARS]


def _leaves(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """The texts in JSON data (strings, and numbers as text), with the key each is under."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _leaves(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, key)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield key, str(value)


def _epoch(value: float | datetime) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _sql(query: str, **params: Any) -> Any:
    """A SQL statement; a list among ``params`` fills an ``IN :name`` with its items."""
    lists = [sa.bindparam(name, expanding=True) for name, value in params.items() if isinstance(value, list)]
    return sa.text(query).bindparams(*lists)


# -- the two databases ----------------------------------------------------------------


#: The statements that bring a store from version ``n`` to ``n + 1``, at index ``n``; the types
#: ({seq}, {real}, {int}, {blob}) and the text index ({text_index}) are the dialect's. A turn's
#: ``data`` is its saved runs as trace JSON, compressed with zlib.
_UPGRADES = [
    [
        "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE IF NOT EXISTS turns (
            seq {seq}, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, status TEXT NOT NULL,
            start_time {real} NOT NULL, end_time {real}, duration {real},
            input_tokens {int} NOT NULL, output_tokens {int} NOT NULL, total_tokens {int} NOT NULL,
            cost {real}, model_calls {int} NOT NULL, tool_calls {int} NOT NULL, errors {int} NOT NULL,
            runs {int} NOT NULL, thread_id TEXT, preview TEXT NOT NULL, saved_at {real} NOT NULL,
            data {blob} NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS turns_by_status ON turns (status, seq)",
        "CREATE INDEX IF NOT EXISTS turns_by_thread ON turns (thread_id, seq)",
        """CREATE TABLE IF NOT EXISTS turn_names (
            turn {int} NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (kind, name, turn))""",
        "CREATE INDEX IF NOT EXISTS turn_names_by_turn ON turn_names (turn)",
        "{text_index}",
    ]
]


@dataclass(frozen=True)
class _Dialect:
    """What differs between SQLite and Postgres: types, the text index, and a lock for the schema."""

    setup_lock: str
    #: The schema's types and text index (see `_UPGRADES`).
    types: dict[str, str]
    #: The text index's column that holds the turn's ``seq``.
    key: str
    #: The text index's value for the parameter ``:body``, and the condition for ``:query``.
    vector: str
    matches: str
    #: A search's FROM and ORDER BY (newest first): SQLite reads its text index in the key's order,
    #: and stops at the page's end.
    search_source: str
    search_order: str
    #: The search words (letters and digits) as the text index's query: each word, or a word it starts.
    query: Callable[[list[str]], str]
    #: A turn's text as the text index is given it.
    body: Callable[[str], str]

    @property
    def insert_text(self) -> str:
        return f"INSERT INTO turn_text ({self.key}, body) VALUES (:seq, {self.vector})"


_SQLITE = _Dialect(
    setup_lock="BEGIN IMMEDIATE",
    types={
        "seq": "INTEGER PRIMARY KEY",
        "real": "REAL",
        "int": "INTEGER",
        "blob": "BLOB",
        "text_index": "CREATE VIRTUAL TABLE IF NOT EXISTS turn_text "
        "USING fts5(body, tokenize = 'unicode61 remove_diacritics 2')",
    },
    key="rowid",
    vector=":body",
    matches="turn_text MATCH :query",
    search_source="turn_text JOIN turns ON turns.seq = turn_text.rowid",
    search_order="turn_text.rowid DESC",
    query=lambda words: " ".join(f'"{word}"*' for word in words),
    body=lambda text: text,
)

_POSTGRES = _Dialect(
    setup_lock="SELECT pg_advisory_xact_lock(7265031)",
    types={
        "seq": "BIGINT PRIMARY KEY",
        "real": "DOUBLE PRECISION",
        "int": "BIGINT",
        "blob": "BYTEA",
        "text_index": "CREATE TABLE IF NOT EXISTS turn_text (turn BIGINT PRIMARY KEY, body TSVECTOR NOT NULL)"
        "; CREATE INDEX IF NOT EXISTS turn_text_search ON turn_text USING GIN (body)",
    },
    key="turn",
    vector="to_tsvector('simple', :body)",
    matches="turn_text.body @@ to_tsquery('simple', :query)",
    search_source="turns JOIN turn_text ON turn_text.turn = turns.seq",
    search_order="turns.seq DESC",
    query=lambda words: " & ".join(f"{word}:*" for word in words),
    # Words only, as SQLite's tokenizer sees them (Postgres's parser would keep e-mails and URLs whole).
    body=lambda text: " ".join(_WORD.findall(text)),
)


def _engine(target: str | Path, timeout: float) -> tuple[Any, _Dialect, Path | None]:
    """The engine for a path or URL, its dialect's SQL, and the SQLite file (None for a server)."""
    text = str(target)
    if "://" not in text:
        url = sa.engine.URL.create("sqlite", database=str(Path(text)))
    else:
        try:
            url = sa.engine.make_url(text)
        except sa_exc.ArgumentError:
            raise ValueError(f"{text!r}: not a database URL") from None
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError(f"{text!r}: a trace store needs a file (or a Postgres URL)")
        engine = sa.create_engine(url, connect_args={"timeout": timeout})
        sa.event.listen(engine, "connect", _sqlite_connected)
        return engine, _SQLITE, Path(url.database)
    if url.get_backend_name() == "postgresql":
        try:
            engine = sa.create_engine(
                url, pool_pre_ping=True, connect_args={"connect_timeout": max(2, round(timeout))}
            )
        except ImportError as error:
            raise ImportError(
                f"a Postgres trace store needs a driver ({error}): "
                "pip install 'panel-langchain-steps[postgres]'"
            ) from None
        return engine, _POSTGRES, None
    raise ValueError(f"{url.render_as_string(hide_password=True)!r}: a trace store is SQLite or Postgres")


def _sqlite_connected(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


# -- the writer thread ---------------------------------------------------------------------


class _Follower:
    """One followed trace: its subscription, its prices, and the turns already saved."""

    def __init__(self, writer: _Writer, trace: Trace, prices: Any):
        self.trace = trace
        self.prices = prices
        self.saved: dict[str, None] = {}
        self.subscription = trace.subscribe(lambda: writer.wake(self))

    def ended_turns(self) -> list[_Turn]:
        turns = []
        for run in self.subscription.take():
            if run.id == run.root_id and run.ended and run.id not in self.saved:
                self.saved[run.id] = None
                if len(self.saved) > ENDED_MEMORY:
                    del self.saved[next(iter(self.saved))]
                prices = self.prices() if callable(self.prices) else self.prices
                turns.append(_Turn.of(list(run.walk()), prices))
        return turns


class _Writer:
    """The store's writer thread: wakes when a followed trace changes, writes the turns that ended."""

    def __init__(self, store: TraceStore):
        self._store = store
        self._queue: queue.SimpleQueue[_Follower | None] = queue.SimpleQueue()
        self._pending = 0
        self._done = threading.Condition()
        self._failing = False
        self._thread = threading.Thread(
            target=self._run, name="panel-langchain-steps store writer", daemon=True
        )
        self._thread.start()
        _WRITERS.add(self)

    def follow(self, trace: Trace, prices: Any) -> None:
        _Follower(self, trace, prices)

    def wake(self, follower: _Follower) -> None:
        # Called by the thread that changed the trace (a page's loop): a counter and a queue, no more.
        with self._done:
            self._pending += 1
        self._queue.put(follower)

    def flush(self, timeout: float | None) -> bool:
        with self._done:
            return self._done.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        self.flush(30)
        self._queue.put(None)
        self._thread.join(30)

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            if items[0] is not None:
                time.sleep(_GATHER)  # the changes that come with this one join its transaction
                with contextlib.suppress(queue.Empty):
                    while True:
                        items.append(self._queue.get_nowait())
            followers = [item for item in dict.fromkeys(items) if item is not None]
            try:
                self._save(followers)
            finally:
                with self._done:
                    self._pending -= len(followers) and sum(item is not None for item in items)
                    self._done.notify_all()
            if None in items:
                return

    def _save(self, followers: list[_Follower]) -> None:
        try:
            turns = [turn for follower in followers for turn in follower.ended_turns()]
            if not turns:
                return  # a change inside a turn: nothing was written, nothing was found working again
            self._store._write_turns(turns)
        except (StoreError, ValueError) as error:
            if not self._failing:
                log.warning("panel-langchain-steps: %s; the chat goes on without saving it", error)
            self._failing = True
        except Exception as error:
            log.warning(
                "panel-langchain-steps: saving turns to %s failed: %r", self._store.url, error, exc_info=error
            )
        else:
            self._failing = False


_WRITERS: weakref.WeakSet[_Writer] = weakref.WeakSet()


@atexit.register
def _write_pending() -> None:
    """At exit, write the turns that ended and wait in the writers' queues."""
    for writer in list(_WRITERS):
        writer.flush(30)
