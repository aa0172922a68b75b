"""Live LangChain and LangGraph steps in Panel chat apps.

>>> from panel_langchain_steps import ChatStepCallbackHandler
>>> handler = ChatStepCallbackHandler(chat_feed)
>>> agent.invoke(inputs, config={"callbacks": [handler]})
"""

from .handler import ChatStepCallbackHandler
from .runs import Run

__all__ = ["ChatStepCallbackHandler", "Run"]
__version__ = "0.1.0"
