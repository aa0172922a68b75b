"""Custom progress inside the running step: LangGraph's stream writer, shown as it writes.

``dispatch_custom_event(name, data)`` (LangChain) reaches the handler as a
callback and shows in the step of the run that dispatched it. LangGraph's
``get_stream_writer()`` writes only to the graph's stream (``stream_mode=
"custom"``), which callbacks never see: use this module's `get_stream_writer`
in its place, and each chunk goes to the stream as before *and* shows in the
running step.

>>> from panel_langchain_steps import get_stream_writer
>>> def search(state):
...     write = get_stream_writer()
...     write({"progress": "fetching page 1 of 3"})
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: The name a stream writer's chunks are recorded under (a run's ``events``).
PROGRESS = "progress"


def get_stream_writer(name: str = PROGRESS) -> Callable[[Any], None]:
    """LangGraph's stream writer for the running node or task, whose chunks also show in its step.

    Call it where you would call ``langgraph.config.get_stream_writer()``. Each
    chunk is written to the graph's ``custom`` stream as usual and dispatched
    as a LangChain custom event named ``name``, which the handler records in
    the running step's ``events``.
    """
    from langchain_core.callbacks.manager import dispatch_custom_event
    from langgraph.config import get_stream_writer as langgraph_writer

    stream = langgraph_writer()

    def write(chunk: Any) -> None:
        stream(chunk)
        dispatch_custom_event(name, chunk)

    return write
