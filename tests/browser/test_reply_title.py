"""The reply card's title: an exception's class name with markup in it shows as text."""

from __future__ import annotations

import time
from typing import Any

import panel as pn
import pytest
from langchain_core.runnables import RunnableLambda

from panel_langchain_steps import ChatStepCallbackHandler

from .conftest import deep_text, run_in_session

pytestmark = pytest.mark.browser


def card_control(name: str) -> str:
    return f"<img src=x onerror=\"alert('{name}')\">"


def test_reply_title_shows_an_exception_name_as_text(open_app):
    """A failed turn's reply card is titled with the exception's class name: markup in it is text.

    A card titled with the raw name runs it (the control, before and after the run),
    so the detector works and anything the title ran has had time to run."""
    hostile = type("<img src=x onerror=alert('title')>", (Exception,), {})

    def boom(_: Any) -> str:
        raise hostile("failed on purpose")

    def app() -> pn.Column:
        return pn.Column(
            pn.Card(title=card_control("before")),
            pn.chat.ChatInterface(height=600),
            sizing_mode="stretch_width",
        )

    with open_app(app) as (page, log, view):
        chat = view.objects[1]

        async def run() -> None:
            handler = ChatStepCallbackHandler(chat)
            with pytest.raises(hostile):
                await RunnableLambda(boom).ainvoke("x", {"callbacks": [handler]})
            handler.flush()

        run_in_session(view, run)
        deadline = time.monotonic() + 30
        while "failed:" not in (shown := deep_text(page, ".chat-steps")):
            assert time.monotonic() < deadline, f"the reply card did not say the turn failed: {shown!r}"
            page.wait_for_timeout(100)
        assert f"failed: {hostile.__name__} after" in shown

        async def add_control() -> None:
            view.append(pn.Card(title=card_control("after")))

        run_in_session(view, add_control)
        deadline = time.monotonic() + 30
        while "after" not in log.dialogs:
            assert time.monotonic() < deadline, f"the control did not run: {log.dialogs}"
            page.wait_for_timeout(100)
        assert log.dialogs == ["before", "after"]
