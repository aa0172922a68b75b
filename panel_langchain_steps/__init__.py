"""Live LangChain and LangGraph steps in Panel chat apps.

>>> from panel_langchain_steps import ChatStepCallbackHandler
>>> handler = ChatStepCallbackHandler(chat_feed)
>>> agent.invoke(inputs, config={"callbacks": [handler]})
"""

from .handler import ChatStepCallbackHandler, StopRun
from .progress import get_stream_writer
from .replay import replay
from .trace import RunRecord, Trace
from .trace_view import TraceView

__all__ = [
    "ChatStepCallbackHandler",
    "RunRecord",
    "StopRun",
    "Trace",
    "TraceView",
    "get_stream_writer",
    "replay",
]
__version__ = "0.1.0"
