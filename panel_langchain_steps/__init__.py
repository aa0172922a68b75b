"""Live LangChain and LangGraph steps in Panel chat apps.

>>> from panel_langchain_steps import ChatStepCallbackHandler
>>> handler = ChatStepCallbackHandler(chat_feed)
>>> agent.invoke(inputs, config={"callbacks": [handler]})
"""

from .handler import ChatStepCallbackHandler
from .trace import RunRecord, Trace

__all__ = ["ChatStepCallbackHandler", "RunRecord", "Trace"]
__version__ = "0.1.0"
