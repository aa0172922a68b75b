"""Apps written for Panel's former `PanelCallbackHandler`: its call forms, a handler given only to
constructors, a callback that also returns the answer or streams it into the reply, and
panel-chat-examples' math assistant (docs/migration.md)."""

from __future__ import annotations

import asyncio
import warnings

import pytest
from conftest import add, call
from langchain.agents import create_agent
from langchain_classic.chains import LLMMathChain
from langchain_core.language_models.fake import FakeStreamingListLLM
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import StructuredTool
from panel.chat import ChatFeed, ChatInterface

from panel_langchain_steps import ChatStepCallbackHandler, ScriptedChatModel
from panel_langchain_steps.render import ANSWERED
from panel_langchain_steps.testing import answer_text, iter_steps, split_tokens, step_tree

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


def added(message):
    """The block of a reply that holds what the app streamed into the reply itself."""
    (block,) = (item for item in message.object.objects if "reply-added" in item.css_classes)
    return block


def shown_text(chat: ChatFeed) -> str:
    """All text the feed shows: plain messages, reply answers and what apps added to replies."""
    texts = []
    for message in chat.objects:
        if isinstance(message.object, str):
            texts.append(message.object)
        else:
            texts += [answer_text(message), added(message).object if added(message).visible else ""]
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


# -- the app's own final answer, streamed into the reply ---------------------------------------


@pytest.mark.parametrize(
    "streamed, shown",
    [
        (split_tokens(ANSWER), ""),  # the answer again, token by token: shown once
        (["Sources: ", "none."], "Sources: none."),
    ],
)
async def test_text_streamed_into_the_reply_is_a_block_of_its_own(make_handler, streamed, shown):
    chat = ChatInterface()
    handler = make_handler(chat, flush_interval=5)
    agent = create_agent(adding_model(), [add])

    async def respond(contents, user, instance):
        await agent.ainvoke({"messages": [("user", contents)]}, config={"callbacks": [handler]})
        for token in streamed:
            instance.stream(token, message=instance.objects[-1])

    chat.callback = respond
    await ask(chat, handler)
    (reply,) = replies(chat)
    assert answer_text(reply) == ANSWER  # never glued to the app's text
    assert added(reply).object == "".join(streamed)
    assert added(reply).visible == bool(shown)
    assert shown_text(chat).count(ANSWER) == 1
    assert reply.serialize() == "\n\n".join(filter(None, [ANSWER, shown]))


async def test_a_reply_the_app_wrote_into_without_runs_stays(make_handler):
    """The reply is sent ahead when the callback starts; text streamed into it is kept, with no card."""
    chat = ChatInterface()
    handler = make_handler(chat, flush_interval=5)

    async def respond(contents, user, instance):
        instance.stream("Hello from the app.", message=instance.objects[-1])

    chat.callback = respond
    await ask(chat, handler)
    (reply,) = replies(chat)
    assert reply.object.objects[0].visible is False  # no steps, no card
    assert added(reply).visible and answer_text(reply) == ""
    assert chat.serialize()[-1] == {"role": "assistant", "content": "Hello from the app."}


# -- panel-chat-examples' math assistant: LangChain's classic LLMMathChain ------------------------

EXPRESSION = "```text\n37593 * 67\n```"
RESULT = "Answer: 2518731"


def math_assistant(
    handler, attached: str, gives: str = "stream", model: str = "chat", token_delay: float = 0
):
    """The math assistant's callback: LLMMathChain's model writes an expression, the chain evaluates
    it, and the callback gives the chain's answer: streamed into the reply (``instance.stream(...,
    message=instance.objects[-1])``, as the example does), sent, or returned.

    ``attached``: the handler is given at run time or to the model's constructor (as the example
    does); ``model``: a streaming chat model (``token_delay`` seconds a token), or LangChain's fake
    streaming text LLM."""
    on_model = {"callbacks": [handler]} if attached == "constructor" else {}
    if model == "chat":
        llm = ScriptedChatModel(responses=[EXPRESSION], streaming=True, token_delay=token_delay, **on_model)
    else:
        llm = FakeStreamingListLLM(responses=[EXPRESSION], **on_model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # LangChain's deprecation of the chain
        chain = LLMMathChain.from_llm(llm)
    config = {"callbacks": [handler]} if attached == "run time" else {}

    async def respond(contents, user, instance):
        final_answer = (await chain.ainvoke({"question": contents}, config=config))["answer"]
        if gives == "stream":
            instance.stream(final_answer, message=instance.objects[-1])
        elif gives == "send":
            instance.send(final_answer, respond=False)
        else:
            return final_answer

    return respond


@pytest.mark.parametrize("model", ["chat", "llm"])
@pytest.mark.parametrize("gives", ["stream", "send", "return"])
async def test_math_assistant_answers_with_the_chains_result(make_handler, gives, model):
    """Given at run time, the handler sees the chain: its result is the answer, the model's
    expression stays in its step, and the app's own copy of the result is not shown again."""
    chat = ChatInterface()
    handler = make_handler(chat, flush_interval=5)
    chat.callback = math_assistant(handler, "run time", gives, model)
    await ask(chat, handler, "What is 37593 * 67?")
    (reply,) = replies(chat)
    assert answer_text(reply) == RESULT
    assert shown_text(chat).count(RESULT) == 1
    steps = {step["title"].split(" · ")[0]: step for step in iter_steps(step_tree(reply))}
    assert " · answer below · " in steps["LLMMathChain"]["title"]
    assert ANSWERED in steps["LLMMathChain"]["text"]
    (model_step,) = (step for name, step in steps.items() if name.startswith("Model"))
    assert "37593 * 67" in model_step["text"] and "answer below" not in model_step["title"]
    assert chat.serialize()[-1] == {"role": "assistant", "content": RESULT}


@pytest.mark.parametrize("model", ["chat", "llm"])
async def test_math_assistant_with_the_handler_on_the_model(make_handler, model):
    """The example as written, with only the handler swapped: the handler sees the model's call
    alone, so the result the app streams into the reply is the turn's result."""
    chat = ChatInterface()
    handler = make_handler(chat, flush_interval=5)
    chat.callback = math_assistant(handler, "constructor", "stream", model)
    await ask(chat, handler, "What is 37593 * 67?")
    (reply,) = replies(chat)
    assert answer_text(reply) == ""
    assert added(reply).visible and added(reply).object == RESULT
    assert shown_text(chat).count(RESULT) == 1
    (step,) = iter_steps(step_tree(reply))
    assert "37593 * 67" in step["text"] and "answer below" not in step["title"]
    assert chat.serialize()[-1] == {"role": "assistant", "content": RESULT}
