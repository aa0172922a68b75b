"""Run bookkeeping: one map of live runs, keyed by run id, under one lock.

LangChain reports a run as a start, any number of tokens, and an end or an
error, from whatever thread the runnable is on. `RunTree` keeps what the
handler needs to know about each live run and frees it when the run's root
ends. Events may arrive out of order, twice, or not at all: a run first seen
through a token or an end is created on the spot, and late events for runs
that already ended are recognised and dropped.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from panel.chat import ChatStep

    from .stream import StepText

PENDING, RUNNING, SUCCESS, FAILED = "pending", "running", "success", "failed"
TERMINAL = frozenset({SUCCESS, FAILED})

#: How many ended run ids are remembered to recognise late or duplicate events.
ENDED_MEMORY = 4096


class BoundedSet(OrderedDict[UUID, None]):
    """A set (of run ids) that forgets its oldest members beyond ``limit``.

    A dict underneath, so membership and emptiness are checked at C speed, once per token.
    """

    def __init__(self, limit: int = ENDED_MEMORY):
        super().__init__()
        self._limit = limit

    def add(self, item: UUID) -> None:
        self[item] = None
        if len(self) > self._limit:
            self.popitem(last=False)


@dataclass(eq=False)
class Run:
    """What the handler knows about one LangChain run.

    The attributes are read by title functions (see the ``title`` option):
    ``kind`` is one of "chain", "tool", "llm", "retriever"; ``name`` the
    run's display name; ``status`` the step status; ``elapsed`` seconds since
    the start; ``error`` the exception a failed run raised.
    """

    id: UUID
    parent_id: UUID | None
    kind: str
    name: str = ""
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    run_type: str | None = None
    status: str = PENDING
    started_at: float = field(default_factory=time.monotonic)
    ended_at: float | None = None
    error: BaseException | None = None
    #: The exception a descendant already showed, so ancestors don't repeat it.
    child_error: BaseException | None = None
    #: How the run ended without error: "" or a LangGraph pause or hand-off.
    outcome: str = ""
    #: A root run one of whose descendants paused at a LangGraph interrupt.
    paused: bool = False
    root_id: UUID | None = None
    depth: int = 0
    step: ChatStep | None = None
    #: The nearest shown ancestor (or this run when shown): where children go.
    anchor: Run | None = None
    texts: dict[str, StepText] = field(default_factory=dict)
    streamed: bool = False

    @property
    def shown(self) -> bool:
        """Whether the run has a step of its own."""
        return self.anchor is self

    @property
    def elapsed(self) -> float:
        end = self.ended_at if self.ended_at is not None else time.monotonic()
        return end - self.started_at

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL


class RunTree:
    """Live runs by id, their roots, and a bounded memory of ended ids."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._runs: dict[UUID, Run] = {}
        self._by_root: dict[UUID, list[Run]] = {}
        self._ended = BoundedSet()

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, run_id: UUID) -> Run | None:
        return self._runs.get(run_id)

    def has_ended(self, run_id: UUID) -> bool:
        """Whether the run ended and was freed: its late events are dropped."""
        return run_id in self._ended

    def add(self, run: Run) -> Run:
        """Register a new run under its parent's root (or as a root)."""
        parent = self._runs.get(run.parent_id) if run.parent_id else None
        run.root_id = parent.root_id if parent else run.id
        self._runs[run.id] = run
        self._by_root.setdefault(run.root_id, []).append(run)
        return run

    def parent(self, run: Run) -> Run | None:
        return self._runs.get(run.parent_id) if run.parent_id else None

    def ancestors(self, run: Run):
        """The run's known ancestors, nearest first."""
        parent = self.parent(run)
        while parent is not None:
            yield parent
            parent = self.parent(parent)

    def open_runs(self, root_id: UUID) -> list[Run]:
        """Runs under the root that have not ended, deepest last."""
        return [run for run in self._by_root.get(root_id, []) if not run.ended]

    def is_root(self, run: Run) -> bool:
        return run.root_id == run.id

    def release(self, root_id: UUID) -> list[Run]:
        """Forget every run under an ended root; return them."""
        runs = self._by_root.pop(root_id, [])
        for run in runs:
            self._runs.pop(run.id, None)
            self._ended.add(run.id)
        return runs

    def all_runs(self) -> list[Run]:
        return list(self._runs.values())
