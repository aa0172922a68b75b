"""The examples in Chromium: a turn streams its steps and answer, stop stops, approval resumes."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Any

import pytest
from conftest import WAIT_SECONDS
from playwright.sync_api import expect
from test_examples import load

from .conftest import deep_text

pytestmark = pytest.mark.browser

QUESTION = "What is LangGraph persistence?"


@pytest.fixture(scope="module")
def agent_chat() -> Any:
    return load("agent_chat")


@pytest.fixture(scope="module")
def tool_approval() -> Any:
    return load("tool_approval")


class HeldSearch:
    """The example's ``web_search`` held running until the test releases it (no race with the page)."""

    def __init__(self, tool: Any) -> None:
        self.original = tool.coroutine
        self.released = threading.Event()
        self.outcome: list[str] = []  # "returned" or "cancelled"

    async def __call__(self, *args: Any, **kwargs: Any) -> str:
        deadline = time.monotonic() + WAIT_SECONDS
        try:
            while not self.released.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            result = await self.original(*args, **kwargs)
        except asyncio.CancelledError:
            self.outcome.append("cancelled")
            raise
        self.outcome.append("returned")
        return result


@pytest.fixture
def held_search(agent_chat: Any, monkeypatch: pytest.MonkeyPatch) -> HeldSearch:
    monkeypatch.setattr(agent_chat, "SLOW_SECONDS", 0.5)
    held = HeldSearch(agent_chat.web_search)
    monkeypatch.setattr(agent_chat.web_search, "coroutine", held)
    return held


def send(page: Any, text: str) -> None:
    page.locator("textarea").fill(text)
    page.get_by_role("button", name="Send").click()


def expand_steps(page: Any) -> None:
    """Open the newest reply's steps card, once the turn has ended and collapsed it."""
    expect(page.locator(".chat-steps .card-title").last).to_contain_text(" steps · done in ")
    page.locator(".chat-steps").last.locator(".card-header").first.click()


def test_a_turn_streams_steps_then_the_answer(open_app, agent_chat, held_search, monkeypatch):
    monkeypatch.setattr(agent_chat.model, "token_delay", 0.03)  # the demo's pace: streaming is seen
    with open_app(agent_chat.create_app, viewport={"width": 1000, "height": 900}) as (page, log, _):
        send(page, QUESTION)
        expect(page.get_by_role("button", name="Stop")).to_be_visible()
        expect(
            page.locator(".step-title", has_text=f"Tool web_search · {QUESTION} · running…")
        ).to_be_visible()
        held_search.released.set()
        answer = page.locator(".reply-answer")
        seen = set()  # the answer's text as it grows
        deadline = time.monotonic() + WAIT_SECONDS
        while "conversation memory" not in (text := deep_text(page, ".reply-answer")) and (
            time.monotonic() < deadline
        ):
            seen.add(text)
            page.wait_for_timeout(30)
        assert len({t for t in seen if t.strip()}) >= 2, "the answer did not stream"
        expect(answer).to_contain_text("A checkpointer saves the graph state")
        expect(page.locator(".chat-steps .card-title")).to_contain_text("Steps · ")
        expect(page.locator(".chat-steps .card-title")).to_contain_text(" steps · done in ")
        for title in page.locator(".step-title").all():
            expect(title).to_be_hidden()  # the card collapsed
        expect(page.get_by_role("button", name="Send")).to_be_visible()
        expand_steps(page)
        expect(
            page.locator(".step-title", has_text=f"Tool web_search · {QUESTION} · done in")
        ).to_be_visible()
        expect(
            page.locator(".step-title", has_text=re.compile(r"Tool fetch_page · .+ · done in"))
        ).to_be_visible()
        expect(page.locator(".step-title", has_text="running…")).to_have_count(0)
        assert log.errors == []


def test_stop_halts_the_run(open_app, agent_chat, held_search):
    agent_chat.CALLS.clear()
    with open_app(agent_chat.create_app, viewport={"width": 1000, "height": 900}) as (page, log, _):
        send(page, QUESTION)
        expect(
            page.locator(".step-title", has_text=f"Tool web_search · {QUESTION} · running…")
        ).to_be_visible()
        page.get_by_role("button", name="Stop").click()
        expect(page.get_by_role("button", name="Send")).to_be_visible()
        expect(page.locator(".chat-steps .card-title")).to_contain_text(" · stopped after ")
        expect(
            page.locator(".step-title", has_text=f"Tool web_search · {QUESTION} · stopped after")
        ).to_be_visible()
        expect(page.locator(".step-title", has_text="LangGraph · stopped after")).to_be_visible()
        # The search was cancelled where it stood: released now, it cannot return, nothing else runs.
        held_search.released.set()
        deadline = time.monotonic() + WAIT_SECONDS
        while not held_search.outcome and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        assert held_search.outcome == ["cancelled"]
        assert agent_chat.CALLS == []  # neither the search's own work nor any later tool ran
        expect(page.locator(".step-title", has_text="running…")).to_have_count(0)
        expect(page.locator(".step-title", has_text="fetch_page")).to_have_count(0)
        assert deep_text(page, ".reply-answer").strip() == ""
        assert log.errors == []


def test_the_verbosity_switch_redraws_the_running_turn(open_app, agent_chat, held_search):
    with open_app(agent_chat.create_app, viewport={"width": 1000, "height": 900}) as (page, log, _):
        send(page, QUESTION)
        search = page.locator(".step-title", has_text=f"Tool web_search · {QUESTION} · running…")
        expect(search).to_be_visible()
        expect(page.locator(".step-title", has_text="LangGraph · running…")).to_be_visible()
        page.get_by_role("button", name="tools", exact=True).click()
        expect(page.locator(".step-title", has_text=re.compile("^LangGraph"))).to_have_count(0)
        expect(search).to_be_visible()
        page.get_by_role("button", name="answer", exact=True).click()
        expect(page.locator(".step-title")).to_have_count(0)
        expect(page.locator(".chat-steps .card-title")).to_have_text("Steps · running…")
        page.get_by_role("button", name="all", exact=True).click()
        expect(page.locator(".step-title", has_text="tools · running…")).to_be_visible()
        held_search.released.set()
        expect(page.locator(".reply-answer")).to_contain_text("A checkpointer saves the graph state")
        expect(page.locator(".chat-steps .card-title")).to_contain_text(" steps · done in ")
        expect(page.locator(".step-title", has_text="running…")).to_have_count(0)
        assert log.errors == []


@pytest.mark.parametrize("decision", ["approve", "edit", "reject"])
def test_approve_edit_or_reject_a_tool_call(open_app, tool_approval, decision):
    tool_approval.CALLS.clear()
    with open_app(tool_approval.create_app, viewport={"width": 1000, "height": 900}) as (page, log, _):
        send(page, "Email Bob about lunch")
        expect(page.locator(".chat-steps .card-title")).to_contain_text("paused, waiting for input")
        expect(page.locator(".approval")).to_contain_text("Approve call to send_email?")
        expect(page.locator(".approval")).to_contain_text("bob@example.com")
        assert tool_approval.CALLS == ["lookup_contact"]
        page.locator(f".{decision} button").click()
        if decision == "edit":  # a form from send_email's arguments, filled with the model's
            to = page.locator(".edit-form input").first
            expect(to).to_have_value("bob@example.com")
            to.fill("carol@example.com")
            page.locator(".send button").click()
        elif decision == "reject":
            page.get_by_label("Reason for the model (optional)").fill("Not today.")
            page.locator(".send button").click()
        answer = page.locator(".reply-answer")
        if decision == "approve":
            expect(answer).to_contain_text("Done: Email to bob@example.com sent.")
            assert tool_approval.CALLS == ["lookup_contact", "send_email"]
        elif decision == "edit":
            expect(answer).to_contain_text("Email to carol@example.com sent.")
            assert tool_approval.CALLS == ["lookup_contact", "send_email"]
        else:
            expect(answer).to_contain_text("OK, I did not send the email. You said: Not today.")
            assert tool_approval.CALLS == ["lookup_contact"]
        expect(page.locator(".chat-steps .card-title")).to_contain_text(" steps · done in ")
        expect(page.locator(".chat-steps")).to_have_count(1)  # the run went on in the same reply
        assert log.errors == []


def test_a_long_run_shows_one_window_of_steps_and_reaches_any(open_app):
    long_agent = load("long_agent")
    with open_app(long_agent.create_app, viewport={"width": 1200, "height": 900}) as (page, log, _):
        send(page, "Check 30 servers")
        expect(page.locator(".reply-answer")).to_contain_text("Checked 30 servers: ")
        expand_steps(page)
        # LangGraph's 61 node steps: the newest 20 on the page, and a bar to the rest.
        window = page.locator(".steps-window")
        pings = page.locator(".step-title", has_text="Tool ping")
        expect(window).to_have_text("Steps 42–61 of 61")  # everything, once drawn
        expect(pings).to_have_count(10)
        page.locator(".steps-first button").click()
        expect(window).to_have_text("Steps 1–20 of 61")
        expect(pings).to_have_count(10)  # the window moved: it did not grow
        expect(pings.first).to_contain_text("web-001")
        page.locator(".steps-find input").fill("web-017")
        page.locator(".steps-find input").press("Enter")
        expect(window).to_have_text("Steps 34–53 of 61")
        # A finished step's body is built when it is opened.
        found = page.locator(".step-title", has_text="web-017")
        expect(page.get_by_text("web-017: up,")).to_have_count(0)
        found.click()
        expect(page.get_by_text('"server": "web-017"')).to_be_visible()
        expect(page.get_by_text("web-017: up,")).to_be_visible()
        assert log.errors == []


def test_research_team_progress_in_running_branches_then_stop(open_app, monkeypatch):
    research_team = load("research_team")
    monkeypatch.setattr(research_team, "READ_SECONDS", 60)  # the branches stay on their first source
    with open_app(research_team.create_app, viewport={"width": 1000, "height": 900}) as (page, log, _):
        send(page, "Report on solar power")
        running = page.locator(".step-title", has_text="research · running…")
        expect(running).to_have_count(2)  # two parallel branches, each a step of its own
        # Each shows its own progress while it runs (the page holds one line per branch).
        expect(page.get_by_text("↳ Reading the encyclopedia (1 of 3)")).to_have_count(2)
        expect(running).to_have_count(2)
        page.get_by_role("button", name="Stop").click()
        expect(page.locator(".step-title", has_text="research · stopped after")).to_have_count(2)
        expect(page.locator(".chat-steps .card-title")).to_contain_text(" · stopped after ")
        expect(page.locator(".step-title", has_text="running…")).to_have_count(0)
        assert log.errors == []


def test_research_team_footer_and_answer(open_app, monkeypatch):
    research_team = load("research_team")
    monkeypatch.setattr(research_team, "READ_SECONDS", 0)
    with open_app(research_team.create_app, viewport={"width": 1000, "height": 900}) as (page, log, _):
        send(page, "Report on solar power")
        expect(page.locator(".reply-answer")).to_contain_text("Each topic was researched in parallel")
        title = page.locator(".chat-steps .card-title")
        expect(title).to_contain_text("1 tool call, 4 model calls")
        expand_steps(page)
        answered = page.locator(".step-title", has_text="answer below")
        expect(answered).to_have_count(1)
        # LangChain 1.0 does not mark agents: the agent's step is named after its node there.
        expect(page.locator(".step-title", has_text=re.compile(r"Agent writer|› writer"))).to_be_visible()
        answered.click()  # open the step whose text went to the answer: it says so, and its numbers
        step = page.locator(".step-llm", has=answered).last
        expect(step).to_contain_text("The answer is shown below the steps.")
        expect(step).to_contain_text("Tokens: ")
        expect(step).to_contain_text("$")
        assert log.errors == []
