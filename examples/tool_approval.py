"""Tool approval: the agent pauses before a sensitive tool until you approve, edit or reject the call.

The agent may look up contacts freely, but sending an email needs your
approval (LangChain's ``HumanInTheLoopMiddleware``). The paused step shows
the call and its arguments with Approve, Edit and Reject buttons: Edit opens
a form built from ``send_email``'s arguments (checked against its schema
before it is sent), Reject takes a reason for the model. The decision
resumes the agent (``Command(resume=...)``, same thread and callbacks) and
the trace continues in the same reply.

Run ``panel serve examples/tool_approval.py``. Offline it uses a scripted
model; set OPENAI_API_KEY, ANTHROPIC_API_KEY or OLLAMA_MODEL for a real one.
"""

from __future__ import annotations

from typing import Any

import panel as pn
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from shared import ChatSession, example_model, graph_turn, question, stream_graph, tool_call, tool_results

CONTACTS = {"alice": "alice@example.com", "bob": "bob@example.com"}
#: Every tool call, in order, as "name" (read by the browser tests).
CALLS: list[str] = []


@tool
def lookup_contact(name: str) -> str:
    """A contact's email address."""
    CALLS.append("lookup_contact")
    return CONTACTS.get(name.lower(), f"{name.lower()}@example.com")


@tool
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email."""
    CALLS.append("send_email")
    return f"Email to {to} sent."


def script(messages: list[BaseMessage]) -> AIMessage | str:
    """The scripted model: look up the contact, write the email, then report what happened."""
    results = tool_results(messages)
    if not results:
        name = next((n for n in CONTACTS if n in question(messages).lower()), "alice")
        return AIMessage(
            content=f"First I'll find {name.title()}'s address.",
            tool_calls=[tool_call("lookup_contact", name=name)],
        )
    result = results[-1]
    if result.name == "lookup_contact":
        email = tool_call(
            "send_email", to=result.text, subject="Hello", body=f"Hi! About: {question(messages)}"
        )
        return AIMessage(content="Now I'll send the email.", tool_calls=[email])
    if result.status == "error" or "rejected" in result.text:
        # LangChain frames the reason ("... with reason: X"); 1.0 sent the reason as it is.
        text = result.text
        reason = text.partition("with reason: ")[2] if text.startswith("User rejected") else text
        return "OK, I did **not** send the email." + (f" You said: {reason}" if reason else "")
    return f"Done: {result.text}"


model = example_model(script)
agent = create_agent(
    model,
    [lookup_contact, send_email],
    system_prompt="You help the user write and send short emails.",
    middleware=[HumanInTheLoopMiddleware(interrupt_on={"send_email": True})],
    checkpointer=InMemorySaver(),
)


async def resume(value: Any, config: RunnableConfig) -> None:
    """Resume the paused agent with the user's decision, on the same thread and callbacks."""
    await stream_graph(agent, Command(resume=value), config)


def create_app() -> ChatSession:
    """A new chat page, for one browser session."""
    return ChatSession(
        graph_turn(agent),
        title="Tool approval",
        about="Try *Email Alice about lunch*: sending waits for you to **Approve**, **Edit** or **Reject**.",
        model=model,
        resume=resume,
        tools=[send_email],
    )


if pn.state.served:
    create_app().servable(title="Tool approval")
