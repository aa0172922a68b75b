"""Remote agent: the steps of an agent that runs on a LangGraph server, live, in a chat.

The agent runs on a LangGraph server; the app talks to it through the SDK
(``client.runs.stream``) and ``handler.follow`` records the run's stream as
it arrives: the same steps as the agent run in-process, tokens streaming, the
approval prompt before ``send_email`` (the decision resumes the remote run
with ``command={"resume": ...}``), and the stop button cancels the run on the
server.

Start the server beside it (offline, the scripted agent of ``remote_graph.py``)::

    LANGSMITH_TRACING=false langgraph dev --no-browser --config examples/langgraph.json

then ``panel serve examples/remote_agent.py``. ``LANGGRAPH_URL`` is the
server's address (default http://127.0.0.1:2024) and ``LANGGRAPH_ASSISTANT``
the graph or assistant to run (default ``email_agent``).
"""

from __future__ import annotations

import os
from typing import Any
from uuid import UUID

import panel as pn
from langgraph_sdk import get_client
from shared import ChatSession
from tool_approval import send_email

URL = os.environ.get("LANGGRAPH_URL", "http://127.0.0.1:2024")
ASSISTANT = os.environ.get("LANGGRAPH_ASSISTANT", "email_agent")
#: "events" carries every step (as in-process callbacks would), "updates" the approval requests.
STREAM_MODE = ["events", "updates"]


def create_app() -> ChatSession:
    """A new chat page, for one browser session (one thread on the server)."""
    client = get_client(url=URL)

    async def run(**options: Any) -> None:
        thread_id = str(UUID(session.thread_id))
        stream = client.runs.stream(
            thread_id,
            ASSISTANT,
            stream_mode=STREAM_MODE,
            stream_subgraphs=True,
            if_not_exists="create",
            **options,
        )
        async for _part in session.handler.follow(stream, client=client, thread_id=thread_id):
            pass  # each part is recorded as it arrives; use it here as your app needs

    async def turn(text: str, config: Any) -> None:
        await run(input={"messages": [{"role": "user", "content": text}]})

    async def resume(value: Any, config: Any) -> None:
        await run(command={"resume": value})

    session = ChatSession(
        turn,
        title="Remote agent",
        about="Try *Email Alice about lunch*: the agent runs on the LangGraph server; sending waits "
        "for you to **Approve**, **Edit** or **Reject**.",
        model=f"the agent at {URL}",
        resume=resume,
        tools=[send_email],
    )
    return session


if pn.state.served:
    create_app().servable(title="Remote agent")
