"""Retrieval chat (RAG): each answer is grounded in documents, and the retriever's step shows them.

A small LangGraph graph retrieves the handbook passages that best match the
question (a keyword retriever: no embeddings, so it runs offline), then the
model answers from them. Open the "Retriever handbook" step to see which
documents were found. The conversation is kept per browser session.

Run ``panel serve examples/rag_chat.py``. Offline it uses a scripted model;
set OPENAI_API_KEY, ANTHROPIC_API_KEY or OLLAMA_MODEL for a real one.
"""

from __future__ import annotations

import re

import panel as pn
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, SystemMessage
from langchain_core.retrievers import BaseRetriever
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from shared import ChatSession, example_model, graph_turn, question

HANDBOOK = [
    Document(
        "A ChatStep is a collapsible card for one intermediate step of an answer. Its status is "
        "pending, running, success or failed, and each status can have its own title.",
        metadata={"source": "panel/chat-step.md"},
    ),
    Document(
        "A ChatInterface is a ChatFeed with an input area and buttons. While its callback runs, "
        "a stop button replaces the send button; pressing it cancels the callback.",
        metadata={"source": "panel/chat-interface.md"},
    ),
    Document(
        "LangChain callback handlers receive an event when a chain, model, tool or retriever run "
        "starts, streams a token, ends or fails, with the run's id and its parent's id.",
        metadata={"source": "langchain/callbacks.md"},
    ),
    Document(
        "A LangGraph checkpointer saves the state after every step under a thread id. Reusing the "
        "thread id continues the conversation; a paused graph resumes with Command(resume=...).",
        metadata={"source": "langgraph/persistence.md"},
    ),
    Document(
        "A retriever returns the documents relevant to a query. Retrieval-augmented generation "
        "puts those documents in the prompt so the model answers from them.",
        metadata={"source": "langchain/retrieval.md"},
    ),
]


def words(text: str) -> set[str]:
    return {word for word in re.findall(r"[a-z]+", text.lower()) if len(word) > 2}


class KeywordRetriever(BaseRetriever):
    """The documents sharing the most words with the query."""

    documents: list[Document]
    k: int = 2

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        scored = [(len(words(query) & words(doc.page_content)), doc) for doc in self.documents]
        ranked = sorted((pair for pair in scored if pair[0]), key=lambda pair: -pair[0])
        return [doc for _, doc in ranked[: self.k]]


retriever = KeywordRetriever(documents=HANDBOOK).with_config(run_name="handbook")

PROMPT = """Answer the question from these handbook passages only, and name the source you used.
If they do not answer it, say so.

{context}"""


def script(messages: list[BaseMessage]) -> str:
    """The scripted model: answer with the sentences of the first passage that share words with the
    question, citing its source."""
    asked = words(question(messages))
    for source, text in re.findall(r"\[([^\]]+)\] ([^\n]+)", messages[0].text):
        sentences = [s for s in re.split(r"(?<=\.) ", text) if asked & words(s)]
        if sentences:
            return " ".join(sentences) + f"\n\n*Source: `{source}`*"
    return f"The handbook has nothing about *{question(messages)}*."


model = example_model(script)


class State(MessagesState):
    context: list[Document]


async def retrieve(state: State) -> dict:
    """Find the passages for the latest question."""
    return {"context": await retriever.ainvoke(question(state["messages"]))}


async def answer(state: State) -> dict:
    """Answer from the passages found."""
    context = "\n".join(f"[{doc.metadata['source']}] {doc.page_content}" for doc in state["context"])
    prompt = SystemMessage(PROMPT.format(context=context or "(no passages found)"))
    return {"messages": [await model.ainvoke([prompt, *state["messages"]])]}


graph = (
    StateGraph(State)
    .add_sequence([retrieve, answer])
    .add_edge(START, "retrieve")
    .compile(checkpointer=InMemorySaver(), name="rag")
)


def create_app() -> ChatSession:
    """A new chat page, for one browser session."""
    return ChatSession(
        graph_turn(graph),
        title="Retrieval chat",
        about="Ask about the handbook: *What does a checkpointer do?*, *How do I stop a ChatInterface?*",
        model=model,
        collapsed_on_success=False,
    )


if pn.state.served:
    create_app().servable(title="Retrieval chat")
