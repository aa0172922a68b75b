"""The agent the remote example talks to, served by a LangGraph server (``examples/langgraph.json``).

The tool approval example's agent (look up a contact, then send an email once
you approve), made to be served: the server gives it its checkpointer. Offline
it runs on the package's scripted model, as the other examples do. Start it with

    LANGSMITH_TRACING=false langgraph dev --no-browser --config examples/langgraph.json

(``pip install 'langgraph-cli[inmem]'``; it listens on http://127.0.0.1:2024).
"""

from __future__ import annotations

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from shared import example_model
from tool_approval import lookup_contact, script, send_email

agent = create_agent(
    example_model(script),
    [lookup_contact, send_email],
    system_prompt="You help the user write and send short emails.",
    middleware=[HumanInTheLoopMiddleware(interrupt_on={"send_email": True})],
    name="email_agent",
)
