"""A long agent run: one tool call after another, dozens of them, in one turn.

Ask it to check a number of servers: the model calls ``ping`` once per server,
one call at a time, then sums up. The reply shows the newest steps, with a
bar that reaches the others (first, earlier, later, latest, by number or by
text), so the page stays light however long the run grows; open any step to
see its input and output, or the whole turn in its trace view.

Run ``panel serve examples/long_agent.py``. Offline it uses a scripted model;
set OPENAI_API_KEY, ANTHROPIC_API_KEY or OLLAMA_MODEL for a real one.
"""

from __future__ import annotations

import re
import zlib

import panel as pn
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from shared import ChatSession, example_model, graph_turn, question, this_turn, tool_call

DEFAULT_SERVERS = 40


@tool
def ping(server: str) -> str:
    """Check whether a server answers, and how fast."""
    seed = zlib.crc32(server.encode())
    return f"{server}: down" if seed % 17 == 0 else f"{server}: up, {seed % 90 + 10} ms"


def servers(messages: list[BaseMessage]) -> list[str]:
    found = re.search(r"\d+", question(messages))
    count = min(int(found[0]), 500) if found else DEFAULT_SERVERS
    return [f"web-{number:03d}" for number in range(1, count + 1)]


def script(messages: list[BaseMessage]) -> AIMessage | str:
    """The scripted model: ping each server in turn, then report the ones that are down."""
    results = [m.text for m in this_turn(messages) if m.type == "tool"]
    names = servers(messages)
    if len(results) < len(names):
        server = names[len(results)]
        return AIMessage(content=f"Checking {server}.", tool_calls=[tool_call("ping", server=server)])
    down = [result.split(":")[0] for result in results if result.endswith("down")]
    summary = ", ".join(down) if down else "none"
    return f"Checked {len(results)} servers: {len(results) - len(down)} up, {len(down)} down ({summary})."


model = example_model(script)
agent = create_agent(
    model,
    [ping],
    system_prompt="Check each server the user names with the ping tool, one at a time.",
    checkpointer=InMemorySaver(),
).with_config(recursion_limit=2 * 500 + 10)  # two graph steps per server


def create_app() -> ChatSession:
    """A new chat page, for one browser session."""
    return ChatSession(
        graph_turn(agent),
        title="A long agent run",
        about="Try *Check 40 servers* (up to 500): one tool call per server, in one turn.",
        model=model,
    )


if pn.state.served:
    create_app().servable(title="A long agent run")
