"""Runs in worker threads (sync Panel callbacks) reach the page intact, and stop halts them."""

from __future__ import annotations

import threading
import time
from typing import Any

import panel as pn
import pytest
from conftest import WAIT_SECONDS
from playwright.sync_api import expect
from test_chat import RAN, SEARCH_DONE, two_tool_agent

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.testing import ScriptedChatModel

from .conftest import deep_text

pytestmark = pytest.mark.browser


def test_steps_from_a_worker_thread_all_arrive(open_app):
    handlers: list[ChatStepCallbackHandler] = []

    def app() -> pn.Column:
        handler = ChatStepCallbackHandler(collapsed_on_success=False, flush_interval=0.02)
        handlers.append(handler)
        return pn.Column(handler, sizing_mode="stretch_width")

    with open_app(app, viewport={"width": 900, "height": 700}) as (page, log, _):
        (handler,) = handlers

        def work() -> None:  # what Panel does with a sync callback: run it in a thread
            for i in range(20):
                model = ScriptedChatModel(responses=[f"answer number {i} is here"], streaming=True)
                model.invoke("hi", config={"callbacks": [handler]})

        thread = threading.Thread(target=work)
        thread.start()
        thread.join(60)
        deadline = time.monotonic() + WAIT_SECONDS
        while (text := deep_text(page, "body")).count("answer number") < 20 and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert [f"answer number {i} is here" in text for i in range(20)] == [True] * 20
        expect(page.locator(".step-title", has_text="running…")).to_have_count(0)
        assert log.errors == []


def test_stop_button_halts_a_sync_callback(open_app):
    RAN.clear()
    SEARCH_DONE.clear()

    finished = threading.Event()

    def app() -> pn.chat.ChatInterface:
        agent = two_tool_agent()

        def respond(contents: str, user: str, instance: Any) -> None:  # sync: Panel runs it in a thread
            try:
                agent.invoke({"messages": [("user", contents)]}, config={"callbacks": [handler]})
            finally:
                finished.set()

        chat = pn.chat.ChatInterface(callback=respond, sizing_mode="stretch_width", height=600)
        handler = ChatStepCallbackHandler(chat)
        return chat

    with open_app(app, viewport={"width": 900, "height": 700}) as (page, log, _):
        page.locator("textarea").fill("go")
        page.get_by_role("button", name="Send").click()
        expect(page.locator(".step-title", has_text="Tool slow_search · running…")).to_be_visible()
        page.get_by_role("button", name="Stop").click()
        expect(page.locator(".step-title", has_text="Tool slow_search · stopped after")).to_be_visible()
        expect(page.get_by_role("button", name="Send")).to_be_visible()
        SEARCH_DONE.set()  # the search returns, in the worker thread
        assert finished.wait(WAIT_SECONDS), "the worker thread did not end"
        assert RAN == ["search x"]  # the sync run halted before its next tool
        expect(page.locator(".step-title", has_text="running…")).to_have_count(0)
        assert log.errors == []
