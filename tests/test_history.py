"""The chat stays a chat: a reply serializes to the answer as written, steps to readable text."""

from __future__ import annotations

from conftest import QUESTION, call
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from panel.chat import ChatInterface

from panel_langchain_steps import steps_in
from panel_langchain_steps.testing import ScriptedChatModel, iter_steps, step_tree

#: Markdown specials, a code fence and HTML-looking text: they must come back exactly as written.
ANSWER = "The **sum** is `3`_ [see](https://example.com) <b>x</b>\n\n```py\nprint(1 + 2)\n```\n# done!"


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def agent(final: str = ANSWER):
    model = ScriptedChatModel(
        responses=[
            AIMessage(content="Let me *add*.", tool_calls=[call("add", {"a": 1, "b": 2}, "c1")]),
            final,
        ]
    )
    return create_agent(model, [add])


def test_chat_history_is_the_answer_as_written(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat)
    chat.send("What is 1 + 2?", respond=False)
    agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    assert chat.serialize() == [
        {"role": "user", "content": "What is 1 + 2?"},
        {"role": "assistant", "content": ANSWER},
    ]
    assert str(chat.objects[-1]) == ANSWER


def test_history_can_include_a_summary_of_the_steps(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat, serialize_steps=True)
    agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    (message,) = chat.serialize()
    summary, answer = message["content"].split("\n\n", 1)
    assert answer == ANSWER
    lines = summary.splitlines()
    assert lines[0].startswith("Steps: 1 tool call, 2 model calls, ")
    assert lines[1] == '- add { "a": 1, "b": 2 } → 3'


def test_history_without_the_answer_in_the_reply(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat, answer_in_reply=False)
    agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    assert chat.serialize()[0]["content"] == ANSWER


def test_a_second_turn_gets_the_first_turns_answer_as_history(make_handler):
    """Multi-turn: what the model sees on the next turn is the previous answer, not the trace."""
    seen = []

    def respond(messages):
        seen.append([(m.type, m.content) for m in messages])
        return "second" if len(seen) > 1 else "first"

    chat = ChatInterface()
    handler = make_handler(chat)
    model = ScriptedChatModel(responses=respond)
    chain_config = {"callbacks": [handler]}
    model.invoke("hi", config=chain_config)
    handler.flush()
    chat.send("again", respond=False)
    model.invoke([(m["role"], m["content"]) for m in chat.serialize()], config=chain_config)
    assert seen[1] == [("ai", "first"), ("human", "again")]


def test_step_serializes_to_readable_text(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat)
    agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    (graph,) = steps_in(chat.objects[-1])
    first_model = next(s for s in steps_in(graph) if s.title.startswith("Model"))
    text = first_model.serialize()
    assert "Let me *add*." in text and "\\" not in text  # Markdown as written, nothing escaped
    assert 'Calls add:\n{\n  "a": 1,\n  "b": 2\n}' in text


def test_the_answering_step_says_where_its_text_went(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat)
    agent().invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    models = [s for s in iter_steps(step_tree(chat.objects[-1])) if s["title"].startswith("Model")]
    assert "answer below" not in models[0]["title"]
    assert models[1]["title"].startswith("Model scripted-model · answer below · done in ")
    assert "The answer is shown below the steps." in models[1]["text"]
