"""Apps written for Panel's former `PanelCallbackHandler`: its call forms, a handler given only to
constructors, and a callback that also returns the answer (docs/migration.md)."""

from __future__ import annotations

import asyncio

import pytest
from conftest import add, call
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import StructuredTool
from panel.chat import ChatFeed, ChatInterface

from panel_langchain_steps import ChatStepCallbackHandler, ScriptedChatModel
from panel_langchain_steps.testing import answer_text, iter_steps, step_tree

ANSWER = "The sum is 3."


def adding_model(**params) -> ScriptedChatModel:
    """A model that calls `add` once per question, then answers."""

    def reply(messages):
        if messages[-1].type == "tool":
            return ANSWER
        return AIMessage(content="", tool_calls=[call("add", {"a": 1, "b": 2}, f"c{len(messages)}")])

    return ScriptedChatModel(responses=reply, **params)


async def ask(chat: ChatFeed, handler: ChatStepCallbackHandler, text: str = "What is 1 + 2?") -> None:
    """Send a message as the user would; wait (bounded) until the feed is enabled again, then draw."""
    done = asyncio.Event()
    watcher = chat.param.watch(lambda event: event.old and not event.new and done.set(), "disabled")
    try:
        chat.send(text)
        await asyncio.wait_for(done.wait(), 30)
    finally:
        chat.param.unwatch(watcher)
    assert handler.open_runs == 0
    handler.flush()


def replies(chat: ChatFeed) -> list:
    """The messages after the user's first one."""
    return list(chat.objects[1:])


def step_names(message) -> list[str]:
    return [step["title"].split(" · ")[0] for step in iter_steps(step_tree(message))]


def shown_text(chat: ChatFeed) -> str:
    """All text the feed shows: plain messages and reply answers."""
    texts = []
    for message in chat.objects:
        texts.append(message.object if isinstance(message.object, str) else answer_text(message))
    return "\n".join(texts)


# -- the old call forms -------------------------------------------------------------------


def test_instance_keyword_is_the_target(make_handler):
    chat = ChatInterface()
    with pytest.deprecated_call(match="instance"):
        handler = make_handler(instance=chat)
    assert handler.layout is chat
    with pytest.raises(TypeError, match="instance"):
        ChatStepCallbackHandler(chat, instance=chat)


async def test_positional_user_and_avatar_name_the_reply(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat, "LangChain", "🦜")
    assert (handler.user, handler.avatar) == ("LangChain", "🦜")
    agent = create_agent(adding_model(), [add])

    def respond(contents, user, instance):
        agent.invoke({"messages": [("user", contents)]}, config={"callbacks": [handler]})

    chat.callback = respond
    await ask(chat, handler)
    (reply,) = replies(chat)
    assert reply.user == "LangChain"
    assert reply.avatar == "🦜"
    assert answer_text(reply) == ANSWER


# -- one reply per turn, however the handler is attached ---------------------------------------


@pytest.mark.parametrize("returns_answer", [False, True])
async def test_handler_given_to_the_model_only(make_handler, returns_answer):
    chat = ChatInterface()
    handler = make_handler(chat, flush_interval=5)  # drawn by the test, on the feed's loop
    agent = create_agent(adding_model(callbacks=[handler]), [add])

    def respond(contents, user, instance):
        result = agent.invoke({"messages": [("user", contents)]})  # no run-time callbacks
        return result["messages"][-1].content if returns_answer else None

    chat.callback = respond
    await ask(chat, handler)
    (reply,) = replies(chat)  # both model calls in one reply, the returned answer not repeated
    assert step_names(reply) == ["Model scripted-model", "Model scripted-model"]
    assert answer_text(reply) == ANSWER
    assert shown_text(chat).count(ANSWER) == 1
    card = reply.object.objects[0]
    assert card.collapsed and card.title.startswith("Steps · 2 steps · done in ")
    await ask(chat, handler, "And again?")
    assert [m.user for m in replies(chat)] == ["Assistant", "User", "Assistant"]  # a reply per turn
    assert step_names(chat.objects[-1]) == ["Model scripted-model", "Model scripted-model"]
    assert shown_text(chat).count(ANSWER) == 2


async def test_handler_given_to_the_model_and_tool_constructors(make_handler):
    chat = ChatFeed()
    handler = make_handler(chat, flush_interval=5)

    def twice(x: int) -> int:
        """Double a number."""
        return 2 * x

    double = StructuredTool.from_function(twice, name="double", callbacks=[handler])

    model = ScriptedChatModel(
        responses=[AIMessage(content="", tool_calls=[call("double", {"x": 21}, "c1")]), "It is 42."],
        callbacks=[handler],
    )
    agent = create_agent(model, [double])

    async def respond(contents, user, instance):
        result = await agent.ainvoke({"messages": [("user", contents)]})
        return result["messages"][-1].content

    chat.callback = respond
    await ask(chat, handler, "Double 21")
    (reply,) = replies(chat)
    assert step_names(reply) == ["Model scripted-model", "Tool double", "Model scripted-model"]
    assert answer_text(reply) == "It is 42."
    assert shown_text(chat).count("It is 42.") == 1


async def test_handler_configured_on_the_agent(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat, flush_interval=5)
    agent = create_agent(adding_model(), [add]).with_config(callbacks=[handler])

    def respond(contents, user, instance):
        return agent.invoke({"messages": [("user", contents)]})["messages"][-1].content

    chat.callback = respond
    await ask(chat, handler)
    (reply,) = replies(chat)
    assert step_names(reply)[0] == "LangGraph"
    assert "Tool add" in step_names(reply)
    assert answer_text(reply) == ANSWER
    assert shown_text(chat).count(ANSWER) == 1


# -- the answer, once --------------------------------------------------------------------------


async def test_a_returned_answer_is_shown_once(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat, flush_interval=5)
    chain = ChatPromptTemplate.from_messages([("user", "{question}")]) | ScriptedChatModel(responses=[ANSWER])

    async def respond(contents, user, instance):
        message = await chain.ainvoke({"question": contents}, config={"callbacks": [handler]})
        return message.content

    chat.callback = respond
    await ask(chat, handler)
    (reply,) = replies(chat)
    assert answer_text(reply) == ANSWER
    assert shown_text(chat).count(ANSWER) == 1


async def test_a_returned_message_that_is_not_the_answer_stays(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat, flush_interval=5)
    model = ScriptedChatModel(responses=[ANSWER])

    def respond(contents, user, instance):
        message = model.invoke(contents, config={"callbacks": [handler]})
        return f"In short: {message.content}"

    chat.callback = respond
    await ask(chat, handler)
    texts = [m.object if isinstance(m.object, str) else answer_text(m) for m in replies(chat)]
    assert sorted(texts) == sorted([ANSWER, f"In short: {ANSWER}"])
