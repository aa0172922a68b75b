"""Human in the loop, complete: per tool call in a batch, approve, edit (a validated form from the
tool's argument schema) or reject with a message, only as ``allowed_decisions`` allow; several
interrupts at once (parallel branches) decided in any order and resumed once, by interrupt id."""

from __future__ import annotations

import asyncio
import operator
import threading
from typing import Annotated, TypedDict

from conftest import QUESTION, WAIT_SECONDS, call, until
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt
from panel import Column
from panel.chat import ChatInterface
from panel.widgets import Button
from pydantic import BaseModel, Field

from panel_langchain_steps.testing import ScriptedChatModel, answer_text, iter_steps, step_tree

RAN: list[str] = []


@tool
def send_email(to: str, subject: str) -> str:
    """Send an email."""
    RAN.append(f"send_email to={to} subject={subject}")
    return f"sent to {to}"


@tool
def delete_file(path: str) -> str:
    """Delete a file."""
    RAN.append(f"delete_file {path}")
    return f"deleted {path}"


class Budget(BaseModel):
    amount: int = Field(ge=0, le=1000, description="Dollars, at most 1,000.")
    note: str = ""


@tool(args_schema=Budget)
def set_budget(amount: int, note: str = "") -> str:
    """Set the budget."""
    RAN.append(f"set_budget {amount}")
    return f"budget {amount}"


def results(messages) -> str:
    return " | ".join(m.content for m in messages if isinstance(m, ToolMessage))


def hitl_agent(calls, interrupt_on):
    model = ScriptedChatModel(
        responses=lambda messages: (
            AIMessage(content="On it.", tool_calls=calls)
            if messages[-1].type == "human"
            else f"Results: {results(messages)}"
        )
    )
    tools = [send_email, delete_file, set_budget]
    middleware = [HumanInTheLoopMiddleware(interrupt_on=interrupt_on)]
    return create_agent(model, tools, middleware=middleware, checkpointer=InMemorySaver()), tools


def paused_chat(make_handler, agent, tools):
    chat = ChatInterface()
    config = {"configurable": {"thread_id": "t"}}
    handler = make_handler(
        chat, resume=lambda value: agent.invoke(Command(resume=value), config), tools=tools
    )
    config["callbacks"] = [handler]
    agent.invoke(QUESTION, config)
    handler.flush()
    return chat, handler


def reviews(layout):
    return [obj for obj in layout.select(Column) if "action-review" in obj.css_classes]


def shown_buttons(review) -> list[str]:
    return [b.label for b in review.select(Button) if b.visible]


def click(review, label):
    (button,) = [b for b in review.select(Button) if b.label == label and b.visible]
    button.clicks += 1


def field(review, label):
    (widget,) = [w for w in review.select() if getattr(w, "label", None) == label and hasattr(w, "value")]
    return widget


def test_each_call_of_a_batch_gets_its_own_decision(make_handler):
    RAN.clear()
    agent, tools = hitl_agent(
        [
            call("send_email", {"to": "bob@x.org", "subject": "Hi"}, "e1"),
            call("delete_file", {"path": "/a"}, "d1"),
        ],
        {"send_email": True, "delete_file": {"allowed_decisions": ["approve", "reject"]}},
    )
    chat, handler = paused_chat(make_handler, agent, tools)
    reply = chat.objects[-1]
    email, delete = reviews(reply.object)
    assert shown_buttons(email) == ["Approve", "Edit", "Reject"]
    assert shown_buttons(delete) == ["Approve", "Reject"]  # allowed_decisions honoured

    click(email, "Edit")  # a form from the tool's arguments, filled with the model's values
    assert field(email, "to").value == "bob@x.org" and field(email, "subject").value == "Hi"
    field(email, "to").value = "alice@x.org"
    click(email, "Send")
    handler.flush()
    assert RAN == []  # the other call is still to be decided: nothing resumed yet

    click(delete, "Reject")
    field(delete, "Reason for the model (optional)").value = "Keep that file."
    click(delete, "Send")
    handler.flush()

    assert RAN == ["send_email to=alice@x.org subject=Hi"]  # edited, and only it ran
    answer = answer_text(reply)
    assert "sent to alice@x.org" in answer and "Keep that file." in answer
    assert email.objects[-1].object == "✏️ **Edited**" and delete.objects[-1].object == "❌ **Rejected**"


def test_an_edit_is_validated_by_the_tools_schema(make_handler):
    RAN.clear()
    agent, tools = hitl_agent([call("set_budget", {"amount": 50}, "b1")], {"set_budget": True})
    chat, handler = paused_chat(make_handler, agent, tools)
    (review,) = reviews(chat.objects[-1].object)
    click(review, "Edit")
    field(review, "amount").value = 5000  # the schema allows at most 1,000
    click(review, "Send")
    handler.flush()
    problems = next(p for p in review.objects if "approval-problems" in p.css_classes)
    assert "Not sent" in problems.object and "Input should be less than or equal to 1000" in problems.object
    assert RAN == [] and not any(b.disabled for b in review.select(Button))  # still to decide

    field(review, "amount").value = 900
    click(review, "Send")
    handler.flush()
    assert RAN == ["set_budget 900"]
    assert problems.object == ""


def test_a_rejection_without_a_reason_tells_the_model_it_was_rejected(make_handler):
    RAN.clear()
    agent, tools = hitl_agent([call("delete_file", {"path": "/b"}, "d2")], {"delete_file": True})
    chat, handler = paused_chat(make_handler, agent, tools)
    (review,) = reviews(chat.objects[-1].object)
    click(review, "Reject")
    click(review, "Send")
    handler.flush()
    assert RAN == []
    assert "rejected" in answer_text(chat.objects[-1]).lower()


def test_always_allow_a_tool_for_the_rest_of_the_chat(make_handler):
    RAN.clear()
    agent, tools = hitl_agent([call("delete_file", {"path": "/c"}, "d3")], {"delete_file": True})
    chat, handler = paused_chat(make_handler, agent, tools)
    (review,) = reviews(chat.objects[-1].object)
    (always,) = [
        w for w in review.select() if getattr(w, "label", "") == "Always allow delete_file in this chat"
    ]
    always.value = True
    click(review, "Approve")
    handler.flush()
    assert RAN == ["delete_file /c"] and handler.always_allowed == {"delete_file"}

    # The next turn's call to the same tool is approved without asking.
    config = {"callbacks": [handler], "configurable": {"thread_id": "t"}}
    agent.invoke({"messages": [("user", "And again?")]}, config)
    handler.flush()
    for _ in range(1000):  # a bounded wait: the graph resumes in a thread of its own
        if len(RAN) == 2 and handler.open_runs == 0:
            break
        threading.Event().wait(0.01)
    handler.flush()
    assert RAN == ["delete_file /c", "delete_file /c"]
    second = reviews(chat.objects[-1].object)[-1]
    assert second.objects[-1].object == "✅ **Approved** (always allowed in this chat)"
    assert not any(b.visible and not b.disabled for b in second.select(Button))


def test_an_edit_form_shows_secrets_redacted_and_keeps_them_unless_changed():
    from panel_langchain_steps.approval import ArgumentsForm, argument_schema

    key = "sk-proj-" + "a1B2" * 8
    args = {"url": "https://api.example.com", "api_key": key}
    form = ArgumentsForm(argument_schema(None, args), args)
    assert form.inputs["api_key"].value == "[redacted]"
    form.inputs["url"].value = "https://other.example.com"
    assert form.values() == ({"url": "https://other.example.com", "api_key": key}, [])
    form.inputs["api_key"].value = "new-key"
    assert form.values()[0]["api_key"] == "new-key"


def test_a_per_call_request_is_answered_with_its_decision(make_handler):
    """LangChain 1.5's interrupt_mode="per_call": one interrupt per call, resumed with one decision."""
    import inspect

    if "interrupt_mode" not in inspect.signature(HumanInTheLoopMiddleware).parameters:
        import pytest

        pytest.skip("HumanInTheLoopMiddleware has no per_call mode before LangChain 1.5")
    RAN.clear()
    model = ScriptedChatModel(
        responses=lambda messages: (
            AIMessage(content="", tool_calls=[call("delete_file", {"path": "/p"}, "p1")])
            if messages[-1].type == "human"
            else f"Results: {results(messages)}"
        )
    )
    middleware = [HumanInTheLoopMiddleware(interrupt_on={"delete_file": True}, interrupt_mode="per_call")]
    agent = create_agent(model, [delete_file], middleware=middleware, checkpointer=InMemorySaver())
    chat, handler = paused_chat(make_handler, agent, [delete_file])
    (review,) = reviews(chat.objects[-1].object)
    click(review, "Edit")
    field(review, "path").value = "/q"
    click(review, "Send")
    handler.flush()
    assert RAN == ["delete_file /q"]
    assert "deleted /q" in answer_text(chat.objects[-1])


class Branches(TypedDict):
    done: Annotated[list[str], operator.add]


def asking(name: str, ready: threading.Event | None = None):
    """A graph node that asks the user whether to go on (after ``ready``, when given)."""

    def node(state: Branches) -> dict:
        if ready is not None:
            ready.wait(WAIT_SECONDS)
        return {"done": [f"{name}={interrupt({'question': f'Run {name}?'})}"]}

    return node


def parallel_graph(ready: threading.Event | None = None):
    """A real graph whose two branches run in one superstep, each pausing at ``interrupt()``."""
    graph = StateGraph(Branches)
    graph.add_node("left", asking("left"))
    graph.add_node("right", asking("right", ready))
    graph.add_edge(START, "left")
    graph.add_edge(START, "right")
    return graph.compile(checkpointer=InMemorySaver())


def prompts(layout):
    """The approval prompts anywhere in a layout, as shown."""
    return [obj for obj in layout.select(Column) if "approval" in obj.css_classes]


def prompt(layout, asking: str):
    """The one shown prompt whose request mentions ``asking`` (parallel branches start in any order)."""
    (found,) = [p for p in prompts(layout) if asking in p.objects[0].object]
    return found


def shown(reply) -> list[tuple[str, str]]:
    """Each step of a reply as its name and what its title says of it (without timings)."""
    steps = iter_steps(step_tree(reply))
    return [(s["title"].split(" · ")[0], s["title"].split(" · ")[-1].split(" in ")[0]) for s in steps]


def resumable_chat(make_handler, graph, thread_id: str):
    """A chat whose handler resumes ``graph`` on its thread; the values it resumed with, in order."""
    chat = ChatInterface()
    config = {"configurable": {"thread_id": thread_id}}
    resumed = []

    def resume(value):
        resumed.append(value)
        graph.invoke(Command(resume=value), config)

    handler = make_handler(chat, resume=resume)
    config["callbacks"] = [handler]
    return chat, handler, config, resumed


def test_parallel_interrupts_are_decided_in_any_order_and_resumed_once(make_handler):
    graph = parallel_graph()
    chat, handler, config, resumed = resumable_chat(make_handler, graph, "p")
    pending = {i.value["question"]: i.id for i in graph.invoke({"done": []}, config)["__interrupt__"]}
    handler.flush()
    (reply,) = chat.objects
    assert shown(reply)[0] == ("LangGraph", "done")
    assert sorted(shown(reply)[1:]) == [
        ("left", "paused, waiting for input"),
        ("right", "paused, waiting for input"),
    ]
    left, right = prompt(reply, "Run left?"), prompt(reply, "Run right?")

    click(right, "Reject")  # the second branch first
    handler.flush()
    assert resumed == [] and graph.get_state(config).next == ("left", "right")
    click(left, "Approve")
    handler.flush()

    assert resumed == [{pending["Run left?"]: True, pending["Run right?"]: False}]
    assert graph.get_state(config).values == {"done": ["left=True", "right=False"]}
    assert len(chat.objects) == 1 and handler.open_runs == 0
    assert shown(reply)[3] == ("LangGraph", "done")
    assert sorted(shown(reply)[4:]) == [("left", "done"), ("right", "done")]
    assert all(step["status"] == "success" for step in iter_steps(step_tree(reply)))
    assert left.objects[-1].object == "✅ **Approved**" and right.objects[-1].object == "❌ **Rejected**"


@tool
def confirm(action: str) -> str:
    """Ask the user before doing something."""
    return f"{action}: {'yes' if interrupt({'action': action}) else 'no'}"


async def test_an_agents_parallel_tool_interrupts_resume_it_once(make_handler):
    """Two tool calls of one model turn run as parallel tasks; each pauses at ``interrupt()``."""
    model = ScriptedChatModel(
        responses=lambda messages: (
            AIMessage(
                content="Asking.",
                tool_calls=[
                    call("confirm", {"action": "deploy"}, "c1"),
                    call("confirm", {"action": "notify"}, "c2"),
                ],
            )
            if messages[-1].type == "human"
            else f"Results: {results(messages)}"
        )
    )
    agent = create_agent(model, [confirm], checkpointer=InMemorySaver())
    chat = ChatInterface()
    config = {"configurable": {"thread_id": "a"}}
    resumed = []

    async def resume(value):
        resumed.append(value)
        await agent.ainvoke(Command(resume=value), config)

    handler = make_handler(chat, resume=resume)
    config["callbacks"] = [handler]
    await agent.ainvoke(QUESTION, config)
    handler.flush()
    (reply,) = chat.objects
    click(prompt(reply, "notify"), "Approve")
    click(prompt(reply, "deploy"), "Reject")
    await until(lambda: handler.open_runs == 0 and answer_text(reply), "the resumed agent's answer")
    handler.flush()
    assert shown(reply) == [
        ("LangGraph", "done"),
        ("Model scripted-model", "done"),
        ("Tool confirm", "paused, waiting for input"),
        ("Tool confirm", "paused, waiting for input"),
        ("LangGraph", "done"),
        ("Tool confirm", "done"),
        ("Tool confirm", "done"),
        ("Model scripted-model", "done"),
    ]
    assert len(resumed) == 1 and sorted(resumed[0].values()) == [False, True]
    assert answer_text(reply) == "Results: deploy: no | notify: yes"
    assert len(chat.objects) == 1


async def test_a_decision_waits_for_the_branches_still_running(make_handler):
    """The user may decide one branch's interrupt while another branch has yet to pause."""
    ready = threading.Event()
    graph = parallel_graph(ready)
    chat, handler, config, resumed = resumable_chat(make_handler, graph, "w")
    first = asyncio.create_task(asyncio.to_thread(graph.invoke, {"done": []}, config))
    await until(lambda: handler.flush() or prompts(chat), "the left branch's prompt")
    click(prompt(chat, "Run left?"), "Approve")
    ready.set()  # the right branch pauses only now
    pending = [i.id for i in (await first)["__interrupt__"]]
    handler.flush()
    assert resumed == []
    click(prompt(chat, "Run right?"), "Approve")
    await until(lambda: not graph.get_state(config).next and handler.open_runs == 0, "the resumed run")
    handler.flush()
    assert resumed == [dict.fromkeys(pending, True)]
    assert graph.get_state(config).values == {"done": ["left=True", "right=True"]}
    assert sorted(shown(chat.objects[0])[-2:]) == [("left", "done"), ("right", "done")]
