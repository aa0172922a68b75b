"""Served by test_closing_tab.py: a chat whose agent checks one server after another until stopped.

``panel serve closing_tab_app.py --args FOLDER``; the page's ``?callback=async`` runs the
agent on the event loop, ``?callback=sync`` in Panel's worker thread. ``FOLDER/<callback>/``
gets ``trace.json``, the handler's trace once no run is open, and ``ended`` once the chat's
callback has returned. What runs after the session ends uses local names only: Panel
clears a served script's module when its session is destroyed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import panel as pn
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.testing import ScriptedChatModel

#: More servers than a test ever waits for: the agent runs until it is stopped.
SERVERS = 1000


@tool
def check(server: str) -> str:
    """Check whether a server answers."""
    return server + ": up"


def create_app(folder: Path, kind: str) -> pn.chat.ChatInterface:
    """One session's chat, with an ``async`` or ``sync`` callback; its turns record into ``folder``."""
    folder.mkdir(exist_ok=True)  # a session ended before its page connected is made again
    calls = [
        AIMessage(
            content="Checking the next server.",
            tool_calls=[
                {"name": "check", "args": {"server": f"web-{n}"}, "id": f"call_{n}", "type": "tool_call"}
            ],
        )
        for n in range(SERVERS)
    ]
    agent = create_agent(ScriptedChatModel(responses=calls, token_delay=0.02, streaming=True), [check])
    ended, saved, saving = folder / "ended", folder / "trace.json", folder / "trace.json.part"

    def save() -> None:
        changes.take()
        if not handler.open_runs:  # the turn is over
            handler.trace.save(saving)
            saving.replace(saved)  # whole, for the test to read at any moment

    if kind == "async":

        async def respond(contents: str, user: str, instance: pn.chat.ChatInterface) -> None:
            try:
                await agent.ainvoke({"messages": [("user", contents)]}, config)
            finally:
                ended.touch()

    else:

        def respond(contents: str, user: str, instance: pn.chat.ChatInterface) -> None:
            try:
                agent.invoke({"messages": [("user", contents)]}, config)
            finally:
                ended.touch()

    chat = pn.chat.ChatInterface(callback=respond, callback_user="Assistant", show_rerun=False)
    handler = ChatStepCallbackHandler(chat)
    config = {"callbacks": [handler], "recursion_limit": 2 * SERVERS + 10}
    changes = handler.trace.subscribe(save)
    return chat


if pn.state.served:
    kind = pn.state.session_args["callback"][0].decode()
    create_app(Path(sys.argv[1]) / kind, kind).servable()
