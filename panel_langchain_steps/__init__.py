"""Live LangChain and LangGraph steps in Panel chat apps.

>>> from panel_langchain_steps import ChatStepCallbackHandler
>>> handler = ChatStepCallbackHandler(chat_feed)
>>> agent.invoke(inputs, config={"callbacks": [handler]})
"""

from .capture import StopRun
from .handler import ChatStepCallbackHandler
from .imports import from_langsmith, from_otel
from .progress import get_stream_writer
from .replay import replay
from .step_headers import StepHeader, StepHeaders, steps_in
from .store import TraceStore
from .testing import ScriptedChatModel
from .trace import RunRecord, Trace
from .trace_view import TraceView, totals

__all__ = [
    "ChatStepCallbackHandler",
    "RunRecord",
    "ScriptedChatModel",
    "StepHeader",
    "StepHeaders",
    "StopRun",
    "Trace",
    "TraceStore",
    "TraceView",
    "from_langsmith",
    "from_otel",
    "get_stream_writer",
    "replay",
    "steps_in",
    "totals",
]
__version__ = "0.1.0"
