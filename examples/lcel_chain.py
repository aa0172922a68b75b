"""A plain LCEL chain (prompt | model | parser) in a chat, with each link of the chain as a step.

No agent and no graph: ``ChatPromptTemplate | model | StrOutputParser``. The
handler shows composition steps too (``show_glue=True``), so the trace is the
chain itself: the prompt, the model streaming, the parser. The conversation
history is kept per browser session and passed to the prompt.

Run ``panel serve examples/lcel_chain.py``. Offline it uses a scripted model;
set OPENAI_API_KEY, ANTHROPIC_API_KEY or OLLAMA_MODEL for a real one.
"""

from __future__ import annotations

from collections import defaultdict

import panel as pn
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableConfig
from shared import ChatSession, example_model, question

#: Each session's conversation, by thread id.
HISTORY: defaultdict[str, list[BaseMessage]] = defaultdict(list)


def script(messages: list[BaseMessage]) -> str:
    """The scripted model: three bullet points about the topic."""
    topic = question(messages).rstrip("?.! ") or "that"
    earlier = sum(m.type == "human" for m in messages) - 1
    follow_up = f"\n\n*(We have talked about {earlier} other topic(s) so far.)*" if earlier else ""
    return (
        f"**{topic}** in three points:\n\n"
        f"- **What:** {topic} is the thing you asked about.\n"
        "- **Why:** it helps to see each step of a chain as it runs.\n"
        "- **How:** prompt, then model, then parser, each a step above." + follow_up
    )


prompt = ChatPromptTemplate.from_messages(
    [
        ("system", "Explain the user's topic in three short bullet points, in Markdown."),
        MessagesPlaceholder("history"),
        ("human", "{topic}"),
    ]
)
model = example_model(script)
chain = (prompt | model | StrOutputParser()).with_config(run_name="explain")


async def turn(text: str, config: RunnableConfig) -> None:
    """Stream the chain's answer, then add the exchange to the session's history."""
    history = HISTORY[config["configurable"]["thread_id"]]
    parts = [part async for part in chain.astream({"history": history, "topic": text}, config)]
    history.extend([HumanMessage(text), AIMessage("".join(parts))])


def create_app() -> ChatSession:
    """A new chat page, for one browser session."""
    return ChatSession(
        turn,
        title="LCEL chain",
        about="Name a topic, e.g. *Callbacks* or *Streaming*: the chain explains it in three points.",
        model=model,
        show_glue=True,
        collapsed_on_success=False,
    )


if pn.state.served:
    create_app().servable(title="LCEL chain")
