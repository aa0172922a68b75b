"""Agent chat: a LangChain agent with tools in a ChatInterface, every step live.

Each reply shows a "Steps" card (the agent, its model calls and tool calls,
streaming as they happen) that collapses when the turn is done, and the
answer streamed below it. The tools are a slow web search (a few seconds:
time to press the stop button), a page reader, a calculator and an exchange
rate service that sometimes fails: its step fails and the agent tries again.
The conversation is kept per browser session.

Run ``panel serve examples/agent_chat.py`` (or ``make demo``). Offline it uses
a scripted model; set OPENAI_API_KEY, ANTHROPIC_API_KEY or OLLAMA_MODEL for a
real one.
"""

from __future__ import annotations

import ast
import asyncio
import operator
import random
import re
from typing import Any

import panel as pn
from langchain.agents import create_agent
from langchain.agents.middleware import wrap_tool_call
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from shared import (
    ChatSession,
    example_model,
    graph_turn,
    previous_answer,
    question,
    this_turn,
    tool_call,
    tool_results,
)

from panel_langchain_steps.testing import arithmetic

#: Seconds the web search takes.
SLOW_SECONDS = 3.0
#: Share of exchange rate calls that fail as if the service timed out.
FAILURE_RATE = 0.3
#: Every tool call, in order, as "name" (read by the browser tests).
CALLS: list[str] = []

PAGES = {
    "https://panel.holoviz.org/reference/chat/ChatStep.html": (
        "ChatStep",
        "A ChatStep is a collapsible card that shows one intermediate step of a chat answer, "
        "with a status (pending, running, success or failed) and a title for each status.",
    ),
    "https://python.langchain.com/docs/concepts/callbacks/": (
        "LangChain callbacks",
        "Callback handlers receive an event when a chain, model, tool or retriever run starts, "
        "streams a token, ends or fails, with the run's id and its parent's id.",
    ),
    "https://langchain-ai.github.io/langgraph/concepts/persistence/": (
        "LangGraph persistence",
        "A checkpointer saves the graph state after every step under a thread id, which gives "
        "a conversation memory and lets a paused graph resume after human input.",
    ),
}
RATES = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 151.3, "CHF": 0.88}


@tool
async def web_search(query: str) -> str:
    """Search the web; returns the titles and addresses of the best matching pages."""
    CALLS.append("web_search")
    await asyncio.sleep(SLOW_SECONDS)
    words = set(re.findall(r"\w+", query.lower()))
    ranked = sorted(PAGES.items(), key=lambda page: -len(words & set(re.findall(r"\w+", str(page).lower()))))
    return "\n".join(f"{n}. {title}: {url}" for n, (url, (title, _)) in enumerate(ranked, 1))


@tool
def fetch_page(url: str) -> str:
    """Read a web page's text."""
    CALLS.append("fetch_page")
    if url not in PAGES:
        raise LookupError(f"no page at {url}")
    return PAGES[url][1]


@tool
def exchange_rate(base: str, quote: str) -> float:
    """The exchange rate from currency ``base`` to currency ``quote`` (ISO codes such as USD, EUR)."""
    CALLS.append("exchange_rate")
    if random.random() < FAILURE_RATE:
        raise TimeoutError("the rates service did not answer in time")
    unknown = [code for code in (base, quote) if code.upper() not in RATES]
    if unknown:
        raise ValueError(f"unknown currency: {', '.join(unknown)}")
    return round(RATES[quote.upper()] / RATES[base.upper()], 4)


_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


@tool
def calculator(expression: str) -> float:
    """Evaluate an arithmetic expression with + - * / and parentheses."""
    CALLS.append("calculator")

    def evaluate(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](evaluate(node.left), evaluate(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -evaluate(node.operand)
        raise ValueError(f"not arithmetic: {ast.unparse(node)}")

    return round(evaluate(ast.parse(expression, mode="eval").body), 6)


@wrap_tool_call
async def report_tool_errors(request: Any, handler: Any) -> ToolMessage:
    """Tell the model that a tool failed, so the agent can go on (the tool's step still fails)."""
    try:
        return await handler(request)
    except Exception as error:
        return ToolMessage(
            content=f"Error: {type(error).__name__}: {error}",
            name=request.tool_call["name"],
            tool_call_id=request.tool_call["id"],
            status="error",
        )


# -- the offline model's script --------------------------------------------------------


def first_step(text: str, previous: str = "") -> AIMessage:
    """The first tool call for a question: an exchange rate, arithmetic (on the ``previous``
    answer too: "and that times 2?"), or else a web search."""
    codes = list(
        dict.fromkeys(
            c.upper() for c in re.findall(r"\b[A-Za-z]{3}\b", text) if c.isupper() or c.upper() in RATES
        )
    )
    if codes or re.search(r"\b(currency|exchange|rate)\b", text, re.IGNORECASE):
        base, quote = [*codes, *(code for code in ("USD", "EUR") if code not in codes)][:2]
        call = tool_call("exchange_rate", base=base, quote=quote)
        return AIMessage(content=f"I'll look up the {base} to {quote} rate.", tool_calls=[call])
    if expression := arithmetic(text, previous):
        call = tool_call("calculator", expression=expression)
        return AIMessage(content="Let me calculate that.", tool_calls=[call])
    call = tool_call("web_search", query=text)
    return AIMessage(content="Let me search the web for that.", tool_calls=[call])


def next_step(result: ToolMessage, turn: list[BaseMessage]) -> AIMessage | str:
    """After a tool's result: read the top search hit, retry a failed rate once, or answer."""
    if result.name == "web_search":
        url = result.text.splitlines()[0].rsplit(": ", 1)[1]
        return AIMessage(
            content="The first result looks right.", tool_calls=[tool_call("fetch_page", url=url)]
        )
    if result.status == "error":
        failures = sum(isinstance(m, ToolMessage) and m.status == "error" for m in turn)
        if failures == 1 and "TimeoutError" in result.text:
            retry = tool_call(result.name, **turn[-2].tool_calls[0]["args"])
            return AIMessage(content="That failed; trying once more.", tool_calls=[retry])
        return f"Sorry, I could not get an answer: `{result.name}` failed ({result.text})."
    if result.name == "fetch_page":
        return f"Here is what I found:\n\n> {result.text}\n\n*Source: the top web search result.*"
    if result.name == "exchange_rate":
        call = turn[-2].tool_calls[0]["args"]
        return f"**1 {call['base']} = {result.text} {call['quote']}** at today's (made-up) rates."
    return f"The result is **{result.text}**."


def script(messages: list[BaseMessage]) -> AIMessage | str:
    """The scripted model: any question gets a tool call, then an answer from the tool's result."""
    results = tool_results(messages)
    if results:
        return next_step(results[-1], this_turn(messages))
    return first_step(question(messages), previous_answer(messages))


# -- the app ------------------------------------------------------------------------------

model = example_model(script)
agent = create_agent(
    model,
    [web_search, fetch_page, exchange_rate, calculator],
    system_prompt="You are a helpful assistant. Use the tools to answer; cite what you read.",
    middleware=[report_tool_errors],
    checkpointer=InMemorySaver(),
)


def create_app(**options: Any) -> ChatSession:
    """A new chat page, for one browser session; ``options`` go to the handler (e.g. ``include_types``)."""
    return ChatSession(
        graph_turn(agent),
        title="Agent chat",
        about="Ask anything: *What is LangGraph persistence?*, *Convert USD to JPY*, *What is 12 * 7?*",
        model=model,
        **options,
    )


if pn.state.served:
    create_app().servable(title="Agent chat")
