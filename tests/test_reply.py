"""A turn's reply in a chat feed: its answer whatever is shown as steps, its summary, its titles."""

from __future__ import annotations

import asyncio

import pytest
from conftest import QUESTION, adding_agent, call, until
from langchain.agents import create_agent
from langchain.agents.middleware import wrap_tool_call
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from panel.chat import ChatInterface

from panel_langchain_steps.testing import ScriptedChatModel, answer_text, iter_steps, outline, step_tree


def steps_card(message):
    return message.object.objects[0]


# The recipes of docs/chat-interface.md: what is shown as steps never decides whether the answer is.
RECIPES = {
    "only tools": ({"include_types": ["tool"]}, ["Tool add"]),
    "only the answer": ({"include_types": []}, []),
    "everything": ({}, ["LangGraph", "Model scripted-model", "Tool add", "Model scripted-model"]),
    "no model calls": ({"exclude_names": ["scripted-model"]}, ["LangGraph", "model", "Tool add", "model"]),
    "top level only": ({"max_depth": 1}, ["LangGraph"]),
}


@pytest.mark.parametrize("streamed", [True, False])
@pytest.mark.parametrize("recipe", RECIPES)
def test_the_answer_is_shown_whatever_the_steps(make_handler, recipe, streamed):
    options, shown = RECIPES[recipe]
    chat = ChatInterface()
    handler = make_handler(chat, **options)
    adding_agent(streaming=streamed).invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    (reply,) = chat.objects
    assert answer_text(reply) == "The sum is 3."
    names = outline(step_tree(reply))
    assert [name.strip() for name in names] == shown
    card = steps_card(reply)
    assert card.visible == bool(shown)  # a turn without steps is its answer alone
    if shown:
        assert card.title.startswith(f"Steps · {len(list(iter_steps(step_tree(reply))))} step")


async def test_only_tools_with_an_async_stream(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat, include_types=["tool"])
    async for _ in adding_agent().astream(QUESTION, {"callbacks": [handler]}, stream_mode="messages"):
        pass
    handler.flush()
    (reply,) = chat.objects
    assert answer_text(reply) == "The sum is 3."
    assert outline(step_tree(reply)) == ["Tool add"]


# -- a chain's result: the answer is what the turn produced -------------------------------------

MODEL_TEXT = "The model's text."


@pytest.mark.parametrize(
    ("result", "answer"),
    [
        ("Done: 42", "Done: 42"),
        ({"answer": "Done: 42"}, "Done: 42"),
        ({"question": "q", "result": "Done: 42", "sources": ["a.md"]}, "Done: 42"),  # the named field
        ("The key is sk-abcdefghijklmnopqrstuvwx", "The key is [redacted]"),
        (f"  {MODEL_TEXT}\n", MODEL_TEXT),  # the model's text: the model answered, live
        ({"first": "a", "second": "b"}, MODEL_TEXT),  # no one text field
        ({"messages": ["a"]}, MODEL_TEXT),  # an agent's state
        (42, MODEL_TEXT),
        ({"answer": " "}, MODEL_TEXT),
    ],
)
def test_a_chains_text_result_is_the_answer(make_handler, result, answer):
    chat = ChatInterface()
    handler = make_handler(chat)
    model = ScriptedChatModel(responses=[MODEL_TEXT], streaming=True)
    prompt = ChatPromptTemplate.from_messages([("user", "{question}")])
    chain = prompt | model | RunnableLambda(lambda _: result)
    chain.invoke({"question": "Why?"}, config={"callbacks": [handler]})
    handler.flush()
    (reply,) = chat.objects
    assert answer_text(reply) == answer
    assert reply.serialize() == answer
    (step,) = (s for s in iter_steps(step_tree(reply)) if s["title"].startswith("Model"))
    if answer == MODEL_TEXT:
        assert " · answer below · " in step["title"]
    else:  # its text stays in its step
        assert " · answer below · " not in step["title"] and MODEL_TEXT in step["text"]


def test_a_failed_chain_has_no_result(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat)

    def fail(_):
        raise ValueError("no result")

    chain = ScriptedChatModel(responses=[MODEL_TEXT]) | RunnableLambda(fail)
    with pytest.raises(ValueError):
        chain.invoke("Why?", config={"callbacks": [handler]})
    handler.flush()
    assert answer_text(chat.objects[0]) == MODEL_TEXT


# -- the summary of a collapsed card ----------------------------------------------------


@tool
def flaky_weather(city: str) -> str:
    """The weather; fails for Atlantis."""
    if city == "Atlantis":
        raise LookupError(f"no weather station in {city}")
    return f"{city}: sunny"


@wrap_tool_call
def tell_the_model(request, handler):
    """A failed tool's error goes back to the model; the agent goes on."""
    try:
        return handler(request)
    except LookupError as error:
        return ToolMessage(content=f"Error: {error}", tool_call_id=request.tool_call["id"], status="error")


def weather_agent(cities):
    calls = [call("flaky_weather", {"city": city}, f"c{n}") for n, city in enumerate(cities)]
    model = ScriptedChatModel(responses=[AIMessage(content="", tool_calls=calls), "Here is the weather."])
    return create_agent(model, [flaky_weather], middleware=[tell_the_model])


def test_the_summary_says_how_many_steps_failed(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat)
    weather_agent(["Paris", "Atlantis", "Lima"]).invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    (reply,) = chat.objects
    card = steps_card(reply)
    assert card.collapsed  # the turn succeeded
    assert " · 1 failed · done in " in card.title
    failed = [s["title"] for s in iter_steps(step_tree(reply)) if s["status"] == "failed"]
    assert failed == [failed[0]] and failed[0].startswith(
        "Tool flaky_weather · Atlantis · failed: LookupError"
    )


def test_a_turn_without_failures_says_none(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat)
    weather_agent(["Paris"]).invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    assert "failed" not in steps_card(chat.objects[0]).title


def test_a_failed_turn_says_how_it_failed_once(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat)
    model = ScriptedChatModel(
        responses=[AIMessage(content="", tool_calls=[call("flaky_weather", {"city": "Atlantis"}, "c1")])]
    )
    with pytest.raises(LookupError):
        create_agent(model, [flaky_weather]).invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    card = steps_card(chat.objects[0])
    assert not card.collapsed
    assert " · failed: LookupError" in card.title
    assert " failed" not in card.title.split(" · failed: ")[0]  # not "1 failed · failed: ..."


# -- titles of tool steps ----------------------------------------------------------------


def test_repeated_tools_are_told_apart_by_their_arguments(make_handler):
    chat = ChatInterface()
    handler = make_handler(chat)
    weather_agent(["Paris", "Tokyo", "Lima"]).invoke(QUESTION, config={"callbacks": [handler]})
    handler.flush()
    tools = [s["title"] for s in iter_steps(step_tree(chat.objects[0])) if s["title"].startswith("Tool")]
    assert sorted(title.split(" · done")[0] for title in tools) == [
        "Tool flaky_weather · Lima",
        "Tool flaky_weather · Paris",
        "Tool flaky_weather · Tokyo",
    ]


@tool
def call_api(api_key: str, query: str) -> str:
    """Call a service."""
    return "ok"


@pytest.mark.parametrize(
    ("args", "title"),
    [
        ({"api_key": "sk-live-0123456789abcdef0123456789", "query": "news"}, "Tool call_api · news"),
        ({"api_key": "x", "query": "Bearer abcdefghijklmnopqrstuvwxyz0123456789"}, "Tool call_api"),
        (
            {"api_key": "x", "query": "<img src=x onerror=alert(1)>"},
            "Tool call_api · &lt;img src=x onerror=alert(1)&gt;",
        ),
        (
            {"api_key": "x", "query": "a long question " * 10},
            "Tool call_api · a long question a long question a long …",
        ),
    ],
)
def test_a_tool_title_shows_its_arguments_safely(make_handler, args, title):
    handler = make_handler()
    call_api.invoke(args, config={"callbacks": [handler]})
    handler.flush()
    (step,) = step_tree(handler.layout)
    assert step["title"].split(" · done in")[0] == title


# -- the reply shows at once ---------------------------------------------------------------


async def test_the_reply_shows_at_once_running(make_handler):
    waiting, go, done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    agent = adding_agent()

    async def respond(contents, user, instance):
        waiting.set()
        await go.wait()  # the model has not been called yet
        await agent.ainvoke({"messages": [("user", contents)]}, config={"callbacks": [handler]})
        done.set()

    chat = ChatInterface(callback=respond)
    handler = make_handler(chat)
    chat.send("What is 1 + 2?")
    await asyncio.wait_for(waiting.wait(), 10)
    question, reply = chat.objects
    assert reply.user == "Assistant" and steps_card(reply).title == "Steps · running…"
    assert handler.trace.roots == [] and answer_text(reply) == ""
    go.set()
    await asyncio.wait_for(done.wait(), 10)
    await until(lambda: "done in" in steps_card(reply).title)
    assert chat.objects == [question, reply]  # the turn went into the reply shown ahead
    assert answer_text(reply) == "The sum is 3." and steps_card(reply).title.startswith("Steps · 4 steps")


async def test_a_callback_that_runs_nothing_leaves_no_reply(make_handler):
    async def respond(contents, user, instance):
        return f"Echo: {contents}"

    chat = ChatInterface(callback=respond)
    make_handler(chat)
    chat.send("hi")
    await until(lambda: len(chat.objects) == 2 and not chat.disabled)
    await until(lambda: [m.object for m in chat.objects] == ["hi", "Echo: hi"])


# -- a pending approval ----------------------------------------------------------------------


def test_a_pending_approval_holds_new_messages_and_each_turn_keeps_its_reply(make_handler):
    from test_chat import RAN, click, paused_turn, reviews

    from panel_langchain_steps.placement import DECIDE_FIRST

    placeholder = ChatInterface().active_widget.placeholder
    chat, handler, paused = paused_turn(make_handler)
    assert chat.disabled and chat.active_widget.placeholder == DECIDE_FIRST  # held, and it says why

    # Another turn meanwhile (another conversation, or the app's own code) gets a reply of its own.
    adding_agent().invoke(QUESTION, {"callbacks": [handler]})
    handler.flush()
    assert len(chat.objects) == 2 and answer_text(chat.objects[1]) == "The sum is 3."
    assert chat.disabled  # the decision is still pending
    assert len(reviews(paused.object)) == 1 and reviews(chat.objects[1].object) == []

    (review,) = reviews(paused.object)
    click(review, "Approve")
    handler.flush()
    assert RAN == ["delete /tmp/x"]
    assert answer_text(paused) == "Result: deleted /tmp/x"  # the resumed run went on in its own reply
    assert answer_text(chat.objects[1]) == "The sum is 3."
    assert "done in" in steps_card(paused).title
    assert not chat.disabled and chat.active_widget.placeholder == placeholder


async def test_a_stopped_answer_says_it_was_stopped(make_handler):
    from panel_langchain_steps.placement import STOPPED_NOTE

    model = ScriptedChatModel(
        responses=["Let me search the web for that, and then " * 20], token_delay=0.02, streaming=True
    )

    async def respond(contents, user, instance):
        await model.ainvoke(contents, config={"callbacks": [handler]})

    chat = ChatInterface(callback=respond)
    handler = make_handler(chat)
    chat.send("What is LangGraph?")
    await until(lambda: len(chat.objects) == 2 and answer_text(chat.objects[1]).startswith("Let me search"))
    chat.stop()
    reply = chat.objects[1]
    await until(lambda: answer_text(reply).endswith(STOPPED_NOTE))
    assert answer_text(reply).startswith("Let me search")  # what it had said, then the note
    assert "stopped after" in steps_card(reply).title


@pytest.mark.parametrize(
    ("question", "previous", "expression"),
    [
        ("What is 12 * 7?", "", "12 * 7"),
        ("what is 3 plus 4.5", "", "3 + 4.5"),
        ("And what is that times 2?", "The result is **84**.", "84 * 2"),
        ("Divide it by 4", "It is 10.", None),  # no operator between two numbers
        ("it divided by 4", "It is 10.", "10 / 4"),
        ("Convert USD to JPY", "The result is **84**.", None),
    ],
)
def test_the_scripted_model_finds_arithmetic(question, previous, expression):
    from panel_langchain_steps.testing import arithmetic

    assert arithmetic(question, previous) == expression
