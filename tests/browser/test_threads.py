"""Runs in worker threads (sync Panel callbacks) reach the page intact, and stop halts them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import panel as pn
import pytest
from bokeh.document.events import DocumentPatchedEvent
from conftest import WAIT_SECONDS
from playwright.sync_api import expect
from test_chat import RAN, SEARCH_DONE, two_tool_agent
from tornado.websocket import WebSocketHandler

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.compat import documents_of, session_locked
from panel_langchain_steps.schedule import on_page_loop
from panel_langchain_steps.testing import ScriptedChatModel

from .conftest import deep_text, run_in_session

pytestmark = pytest.mark.browser


def handler_page(**params: Any) -> tuple[Callable[[], pn.Column], list[ChatStepCallbackHandler]]:
    """An app showing a handler's steps in a column, and the handlers its sessions made."""
    handlers: list[ChatStepCallbackHandler] = []

    def app() -> pn.Column:
        handlers.append(ChatStepCallbackHandler(collapsed_on_success=False, **params))
        return pn.Column(handlers[-1], sizing_mode="stretch_width")

    return app, handlers


def test_steps_from_a_worker_thread_all_arrive(open_app):
    app, handlers = handler_page(flush_interval=0.02)
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
        expect(page.locator(".step-title", has_text="Tool slow_search · x · running…")).to_be_visible()
        page.get_by_role("button", name="Stop").click()
        expect(page.locator(".step-title", has_text="Tool slow_search · x · stopped after")).to_be_visible()
        expect(page.get_by_role("button", name="Send")).to_be_visible()
        SEARCH_DONE.set()  # the search returns, in the worker thread
        assert finished.wait(WAIT_SECONDS), "the worker thread did not end"
        assert RAN == ["search x"]  # the sync run halted before its next tool
        expect(page.locator(".step-title", has_text="running…")).to_have_count(0)
        assert log.errors == []


def test_flush_from_a_worker_thread_changes_the_page_on_its_loop(open_app, monkeypatch):
    """A worker thread's `flush()` hands the drawing to the page's loop and waits, even while the loop
    holds the session's lock (when Panel would let any thread change the page at once)."""
    app, handlers = handler_page(flush_interval=5.0)  # the view's own tick rests: flush() draws
    with open_app(app, viewport={"width": 900, "height": 700}) as (page, log, view):
        (handler,) = handlers
        (document,) = documents_of(view)
        loop: set[int] = set()
        changed_on: set[int] = set()  # threads that changed the page's models, or wrote to its socket
        write = WebSocketHandler.write_message  # what Bokeh and Panel both write with

        def recorded_write(self: WebSocketHandler, *args: Any, **kwargs: Any) -> Any:
            changed_on.add(threading.get_ident())
            return write(self, *args, **kwargs)

        monkeypatch.setattr(WebSocketHandler, "write_message", recorded_write)

        async def watch() -> None:
            loop.add(threading.get_ident())
            document.on_change(
                lambda event: (
                    isinstance(event, DocumentPatchedEvent) and changed_on.add(threading.get_ident())
                )
            )

        run_in_session(view, watch)
        holding, flushed = threading.Event(), threading.Event()

        async def hold_the_session_lock() -> None:  # as while the loop handles a browser message
            holding.set()
            await asyncio.to_thread(flushed.wait, 2)

        def work() -> None:
            for i in range(5):
                model = ScriptedChatModel(responses=[f"answer number {i} is here"], streaming=True)
                model.invoke("hi", config={"callbacks": [handler]})
            on_page_loop(document, hold_the_session_lock)
            assert holding.wait(WAIT_SECONDS)
            handler.flush()
            flushed.set()

        thread = threading.Thread(target=work)
        thread.start()
        thread.join(WAIT_SECONDS)
        assert flushed.is_set(), "flush() did not return"
        for i in range(5):
            expect(page.get_by_text(f"answer number {i} is here")).to_be_visible()
        assert changed_on == loop, "the page changed (or its socket was written) off its loop"
        assert log.errors == []


def _patched(event: object) -> bool:
    """Whether a document event changes the page (not Bokeh's own bookkeeping of callbacks)."""
    return isinstance(event, DocumentPatchedEvent)


def test_a_served_sessions_lock_is_seen_held_inside_its_callbacks(open_app):
    app, _ = handler_page()
    with open_app(app) as (page, log, view):
        (document,) = documents_of(view)
        seen: list[bool] = []

        async def inside() -> None:
            seen.append(session_locked(document))

        run_in_session(view, inside)
        assert seen == [True]
        deadline = time.monotonic() + WAIT_SECONDS
        while session_locked(document):  # free again once the loop is idle
            assert time.monotonic() < deadline, "the session's lock stayed held"
            page.wait_for_timeout(10)
        assert log.errors == []
