"""Live LangChain and LangGraph steps in Panel chat apps.

>>> from panel_langchain_steps import ChatStepCallbackHandler
>>> handler = ChatStepCallbackHandler(chat_feed)
>>> agent.invoke(inputs, config={"callbacks": [handler]})
"""

from .handler import ChatStepCallbackHandler
from .replay import replay
from .runs import Run
from .trace_view import TraceView

__all__ = ["ChatStepCallbackHandler", "Run", "TraceView", "replay"]
__version__ = "0.1.0"
