"""Research team: agents inside a LangGraph graph, parallel branches, live progress and cost.

A planner splits the question into topics and sends each to a researcher
node in parallel (``Send`` fan-out); each researcher reports its progress with
``get_stream_writer`` while it "reads" its sources. Then a writer agent, made
with ``create_agent(..., name="writer")`` and used as a node, calls a
``word_count`` tool and writes the answer. The steps follow the graph: one
step per branch, the writer agent named in its step with its model and tool
steps under it, tool-call arguments streaming as the model writes them, a
footer of tokens, speed and cost under every model step, and the turn's
totals in the Steps card's title. As chat history, each reply is its answer.

Run ``panel serve examples/research_team.py``. Offline it uses a scripted
model; set OPENAI_API_KEY, ANTHROPIC_API_KEY or OLLAMA_MODEL for a real one.
"""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any

import panel as pn
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Send
from shared import ChatSession, example_model, question, tool_call, tool_results

from panel_langchain_steps import get_stream_writer

#: Seconds each source takes to "read".
READ_SECONDS = 0.4
#: Example prices per million tokens (input, output), by model name.
PRICES = {"scripted": (2.5, 10.0), "gpt-4.1-mini": (0.4, 1.6), "claude-haiku-4-5": (1.0, 5.0)}
SOURCES = ("encyclopedia", "news archive", "journal")


@tool
def word_count(text: str) -> int:
    """How many words a text has."""
    return len(text.split())


def script(messages: list[BaseMessage]) -> AIMessage | str:
    """The scripted model, for each role: researcher notes, then the writer's tool call and answer."""
    last = messages[-1]
    if isinstance(last, HumanMessage) and last.text.startswith("Research: "):
        topic = last.text.removeprefix("Research: ")
        return f"Notes on *{topic}*: three sources agree it matters."
    results = tool_results(messages)
    if not results:
        draft = f"A short report on {question(messages)}."
        return AIMessage(content="Let me check the length.", tool_calls=[tool_call("word_count", text=draft)])
    return f"**Report.** Each topic was researched in parallel; the draft has {results[-1].text} words."


class Team(MessagesState):
    notes: Annotated[list[str], operator.add]


model = example_model(script)
writer = create_agent(model, [word_count], name="writer", system_prompt="Write the final report.")


def plan(state: Team) -> list[Send]:
    """One researcher per topic, in parallel."""
    subject = state["messages"][-1].text
    return [Send("research", {"topic": f"{subject} ({angle})"}) for angle in ("history", "today")]


async def research(state: dict[str, Any]) -> dict[str, Any]:
    """Read each source (reporting progress), then ask the model for notes."""
    write = get_stream_writer()
    for number, source in enumerate(SOURCES, 1):
        write(f"Reading the {source} ({number} of {len(SOURCES)})")
        await asyncio.sleep(READ_SECONDS)
    notes = await model.ainvoke([HumanMessage(f"Research: {state['topic']}")])
    return {"notes": [notes.text]}


graph = StateGraph(Team)
graph.add_node("research", research)
graph.add_node("write", writer)
graph.add_conditional_edges(START, plan, ["research"])
graph.add_edge("research", "write")
graph.add_edge("write", END)
team = graph.compile()


async def turn(text: str, config: Any) -> None:
    """One question: the whole team runs, streaming."""
    async for _ in team.astream({"messages": [("user", text)]}, config, stream_mode=["messages", "custom"]):
        pass


def create_app() -> ChatSession:
    """A new chat page, for one browser session."""
    return ChatSession(
        turn,
        title="Research team",
        about="Ask for a report, e.g. *Report on solar power*: two researchers work in parallel, "
        "then the writer agent.",
        model=model,
        prices=PRICES,
        models=[model],
    )


if pn.state.served:
    create_app().servable(title="Research team")
