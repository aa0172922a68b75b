"""A chat reply as a user meets it in Chromium: at once, in view, and owned by its turn."""

from __future__ import annotations

import threading
from typing import Any

import panel as pn
import pytest
from conftest import QUESTION, adding_agent
from playwright.sync_api import expect
from test_examples import load
from test_migration import RESULT, math_assistant

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.placement import DECIDE_FIRST

pytestmark = pytest.mark.browser


def send(page: Any, text: str) -> None:
    page.locator("textarea").fill(text)
    page.get_by_role("button", name="Send").click()


def test_the_reply_shows_running_before_the_first_run(open_app):
    gate = threading.Event()
    agent = adding_agent()

    def app() -> pn.chat.ChatInterface:
        def respond(contents: str, user: str, instance: Any) -> None:
            gate.wait(60)  # the agent has not started until the test opens the gate
            agent.invoke(QUESTION, config={"callbacks": [handler]})

        chat = pn.chat.ChatInterface(callback=respond, height=600)
        handler = ChatStepCallbackHandler(chat)
        return chat

    with open_app(app, viewport={"width": 900, "height": 700}) as (page, log, _):
        send(page, "What is 1 + 2?")
        card = page.locator(".chat-steps .card-title")
        expect(page.get_by_text("What is 1 + 2?")).to_be_visible()
        expect(card).to_have_text("Steps · running…")
        assert not gate.is_set()
        gate.set()
        expect(page.locator(".reply-answer")).to_have_text("The sum is 3.")
        expect(card).to_contain_text("Steps · 4 steps · done in")
        expect(page.locator(".chat-steps")).to_have_count(1)  # the turn went into the reply shown ahead
        assert log.errors == []


@pytest.fixture(scope="module")
def tool_approval() -> Any:
    return load("tool_approval")


def test_a_pending_approval_is_in_view_and_holds_new_messages(open_app, tool_approval):
    """Approve and Reject are scrolled into view; until the user decides, nothing else can be sent;
    a follow-up turn gets a reply of its own, in view too."""
    with open_app(tool_approval.create_app, viewport={"width": 900, "height": 650}) as (page, log, _):
        textarea, send_button = page.locator("textarea"), page.get_by_role("button", name="Send")
        for number, name in enumerate(["Bob", "Alice"], 1):
            send(page, f"Email {name} about lunch")
            expect(page.locator(".chat-steps")).to_have_count(number)  # each turn has its own reply
            approve = page.locator(".chat-steps").last.locator(".approve button")
            expect(approve).to_be_visible()
            expect(approve).to_be_in_viewport()
            expect(textarea).to_have_attribute("placeholder", DECIDE_FIRST)
            expect(send_button).to_be_disabled()
            approve.click()
            answer = page.locator(".reply-answer").last
            expect(answer).to_have_text(f"Done: Email to {name.lower()}@example.com sent.")
            expect(answer).to_be_in_viewport()
            expect(send_button).to_be_enabled()
            expect(textarea).to_have_attribute("placeholder", "Send a message")
        expect(page.locator(".reply-answer").first).to_have_text("Done: Email to bob@example.com sent.")
        assert tool_approval.CALLS.count("send_email") == 2
        assert log.errors == []


@pytest.mark.parametrize(
    ("attached", "gives"), [("run time", "stream"), ("run time", "send"), ("constructor", "stream")]
)
def test_the_math_assistant_shows_its_result_once_on_its_own(open_app, attached, gives):
    """panel-chat-examples' math assistant (LLMMathChain; its callback streams the chain's answer into
    the reply, or sends it): the result shows once, as a paragraph of its own; the model's expression
    stays in its step. With the handler on the model's constructor it sees no chain: the app's text
    is the result."""

    def app() -> pn.chat.ChatInterface:
        chat = pn.chat.ChatInterface(height=600)
        # A model that takes a moment, as a real one does: the reply is in the feed (sent ahead a
        # loop turn after the callback started) by the time the app streams into the feed's last message.
        chat.callback = math_assistant(ChatStepCallbackHandler(chat), attached, gives, token_delay=0.02)
        return chat

    with open_app(app, viewport={"width": 900, "height": 700}) as (page, log, _):
        send(page, "What is 37593 * 67?")
        card = page.locator(".chat-steps .card-title")
        expect(card).to_contain_text("done in")
        answer, added = page.locator(".reply-answer"), page.locator(".reply-added")
        if attached == "run time":
            expect(answer).to_have_text(RESULT)
            expect(added).to_be_hidden()
        else:
            expect(added).to_have_text(RESULT)
            expect(answer).to_have_text("")
        expect(page.locator("p", has_text=RESULT).filter(visible=True)).to_have_count(1)
        # Never glued into another block (the expression's code block, say).
        expect(page.locator("pre, code").filter(has_text="Answer:")).to_have_count(0)
        page.locator(".chat-steps .card-header").first.click()  # the steps, as the user opens them
        model = page.locator(".step-llm").first
        model.locator(".card-header").first.click()
        expect(model.locator("code", has_text="37593 * 67")).to_be_visible()
        assert log.errors == []


FONT_SIZE = "(element) => getComputedStyle(element).fontSize"


def test_text_in_steps_is_the_size_of_the_answer(open_app):
    agent_chat = load("agent_chat")
    app = lambda: agent_chat.create_app(collapsed_on_success=False)  # noqa: E731
    with open_app(app, viewport={"width": 900, "height": 900}) as (page, log, _):
        send(page, "What is 12 * 7?")
        expect(page.locator(".reply-answer")).to_contain_text("The result is 84.")
        expect(page.locator(".chat-steps .card-title")).to_contain_text("done in")  # and collapsed
        page.locator(".chat-steps").last.locator(".card-header").first.click()
        step_text = page.locator(".step-message p", has_text="Let me calculate that.")
        expect(step_text).to_be_visible()
        answer = page.locator(".reply-answer p").first.evaluate(FONT_SIZE)
        user = page.locator("p", has_text="What is 12 * 7?").first.evaluate(FONT_SIZE)
        assert step_text.evaluate(FONT_SIZE) == answer == user
        assert log.errors == []


def test_the_standalone_trace_keeps_off_the_window_edge(open_app):
    standalone = load("standalone_trace")
    with open_app(standalone.create_app, viewport={"width": 1000, "height": 700}) as (page, log, _):
        page.get_by_role("button", name="Convert").click()
        expect(page.get_by_text("26.22 mi").first).to_be_visible()
        step = page.locator(".step-chain").first  # the graph's step, as wide as the trace
        box = step.bounding_box()
        assert box["x"] + box["width"] <= 1000 - 15, box  # a margin like the page's left one
        assert log.errors == []


def test_steps_take_an_apps_default_stylesheet(open_app, monkeypatch):
    """The styling recipe of docs/first-questions.md: ChatStep's default stylesheets reach every step."""
    from conftest import shout

    edge = ":host(.step-tool) { border-left: 3px solid rgb(0, 114, 181); }"
    monkeypatch.setattr(pn.chat.ChatStep.param.stylesheets, "default", [edge])

    def app() -> pn.Column:
        handler = ChatStepCallbackHandler()
        shout.invoke("styled", config={"callbacks": [handler]})
        handler.flush()
        return handler.layout

    with open_app(app, viewport={"width": 900, "height": 500}) as (page, log, _):
        step = page.locator(".step-tool").first
        expect(step).to_be_visible()
        expect(step).to_have_css("border-left-color", "rgb(0, 114, 181)")
        assert log.errors == []


def test_a_finished_step_opens_from_its_line_and_closes_back_to_it(open_app):
    """Finished, collapsed steps are lines of one component; a click makes one a step, open."""

    def app() -> pn.Column:
        handler = ChatStepCallbackHandler()
        adding_agent().invoke(QUESTION, config={"callbacks": [handler]})
        handler.flush()
        return handler.layout

    with open_app(app, viewport={"width": 900, "height": 500}) as (page, log, _):
        line = page.locator(".step-line.step-tool")
        expect(line).to_contain_text("Tool add · 1, 2 · done in")
        expect(page.locator(".step-line")).to_have_count(3)
        line.locator(".card-header").click()
        step = page.locator(".bk-panel-models-layout-Card.step-tool")
        expect(step.get_by_text("Output")).to_be_visible()
        expect(page.locator(".step-line")).to_have_count(2)  # the lines around it stay
        step.locator(".card-header").first.click()  # closed: a line again, among the others
        expect(page.locator(".step-line")).to_have_count(3)
        expect(page.get_by_text("Output")).to_have_count(0)
        assert log.errors == []
