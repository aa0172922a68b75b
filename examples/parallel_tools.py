"""Parallel tool calls: the agent asks for several tools at once, and their steps run side by side.

Ask for the weather in a few cities: the model calls ``get_weather`` once per
city in a single turn, the calls run concurrently (each takes its own time),
and each gets a step that finishes when its call does. The answer compares
the results. The conversation is kept per browser session.

Run ``panel serve examples/parallel_tools.py``. Offline it uses a scripted
model; set OPENAI_API_KEY, ANTHROPIC_API_KEY or OLLAMA_MODEL for a real one.
"""

from __future__ import annotations

import asyncio
import re
import zlib

import panel as pn
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from shared import ChatSession, example_model, graph_turn, question, tool_call, tool_results

DEFAULT_CITIES = ["Paris", "Tokyo", "Lima"]
SKIES = ["sunny", "cloudy", "rainy", "windy"]


@tool
async def get_weather(city: str) -> str:
    """Today's weather in a city."""
    seed = zlib.crc32(city.lower().encode())
    await asyncio.sleep(0.5 + seed % 15 / 10)  # 0.5 to 1.9 s, so the calls finish in their own order
    return f"{city}: {seed % 30 + 5} °C, {SKIES[seed % len(SKIES)]}"


def script(messages: list[BaseMessage]) -> AIMessage | str:
    """The scripted model: one weather call per city named (or three), all at once; then a table."""
    results = tool_results(messages)
    if results:
        rows = "\n".join(
            f"| {city} | {report} |" for city, report in (r.text.split(": ", 1) for r in results)
        )
        return f"Here is today's weather:\n\n| city | weather |\n|---|---|\n{rows}"
    cities = re.findall(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)?\b", question(messages)[1:]) or DEFAULT_CITIES
    calls = [tool_call("get_weather", city=city) for city in cities]
    return AIMessage(content=f"Checking {len(calls)} cities at once.", tool_calls=calls)


model = example_model(script)
agent = create_agent(
    model,
    [get_weather],
    system_prompt="Answer weather questions. For several cities, call the tools in parallel.",
    checkpointer=InMemorySaver(),
)


def create_app() -> ChatSession:
    """A new chat page, for one browser session."""
    return ChatSession(
        graph_turn(agent),
        title="Parallel tool calls",
        about="Try *Compare the weather in Oslo, Cairo, Sydney and Quito*.",
        model=model,
    )


if pn.state.served:
    create_app().servable(title="Parallel tool calls")
