"""Play a recorded trace again, live, into a new `Trace`, so views show it as they did the first time.

Each run's start, its streamed text and its end are written into the target
trace in the order they first happened, with the original gaps between them
divided by ``speed`` (``speed=None`` writes everything at once, keeping the
original timestamps). Views following the target (`TraceView`, a chat view)
update as the events arrive.
"""

from __future__ import annotations

import time
from typing import Any

from .trace import TERMINAL, RunRecord, Trace

#: Pieces a run's saved text is streamed back in (saved traces keep the text, not each token).
TEXT_PIECES = 8


def replay(trace: Trace, target: Trace | None = None, speed: float | None = 1.0) -> Trace:
    """Write ``trace``'s runs into ``target`` (a new `Trace` if None) as they happened; returns ``target``.

    Blocks until the last event: run it in a thread (or ``asyncio.to_thread``)
    next to a served view. ``speed=2`` plays twice as fast.
    """
    if speed is not None and speed <= 0:
        raise ValueError(f"speed must be positive or None, got {speed!r}")
    target = target if target is not None else Trace()
    events = _events(trace)
    if not events:
        return target
    origin = events[0][0]
    began = time.time()
    for at, _order, action, run in events:
        if speed is None:
            when = at
        else:
            when = began + (at - origin) / speed
            delay = when - time.time()
            if delay > 0:
                time.sleep(delay)
        action(target, run, when)
    return target


def _events(trace: Trace) -> list[tuple[float, int, Any, RunRecord]]:
    """(time, tie-break, action, run) for every start, text piece and end, in time order.

    At equal times parents start before their children and end after them.
    """
    with trace.lock:
        runs = list(trace.runs)
    events: list[tuple[float, int, Any, RunRecord]] = []
    count = len(runs)
    for index, run in enumerate(runs):
        start = run.start_time or 0.0
        events.append((start, index, _start, run))
        text = run.text
        if any(text.values()):
            first = run.first_token_time or start
            last = run.end_time if run.end_time is not None else first
            for piece in range(TEXT_PIECES):
                at = first + (last - first) * piece / TEXT_PIECES
                events.append((at, count + index, _writer(text, piece), run))
        if run.status in TERMINAL:
            end = run.end_time if run.end_time is not None else start
            events.append((end, 3 * count - index, _end, run))
    events.sort(key=lambda event: (event[0], event[1]))
    return events


def _start(target: Trace, run: RunRecord, at: float) -> None:
    target.start(
        run.id,
        run.parent_id,
        run.kind,
        name=run.name,
        run_type=run.run_type,
        tags=run.tags,
        metadata=run.metadata,
        inputs=run.inputs,
        model=run.model,
        at=at,
    )


def _writer(text: dict[str, str], piece: int) -> Any:
    def write(target: Trace, run: RunRecord, at: float) -> None:
        live = target.live(run.id)
        if live is None:
            return
        for section, whole in text.items():
            size = -(-len(whole) // TEXT_PIECES)
            target.write(live, section, whole[piece * size : (piece + 1) * size], streamed=run.streamed)
        if piece == 0:
            target.update(live, first_token_time=at)

    return write


def _end(target: Trace, run: RunRecord, at: float) -> None:
    live = target.live(run.id)
    if live is None:
        return
    target.update(live, usage=run.usage, tool_calls=list(run.tool_calls))
    target.end(live, run.status, outputs=run.outputs, error=run.error, note=run.note, at=at)
