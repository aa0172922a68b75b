"""A panel-material-ui chat gets panel-material-ui's steps: Material cards, not Panel's own."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import QUESTION, adding_agent
from playwright.sync_api import expect

from panel_langchain_steps import ChatStepCallbackHandler

pmui = pytest.importorskip("panel_material_ui")

pytestmark = pytest.mark.browser


def test_material_chat_shows_material_steps(open_app):
    def app() -> Any:
        agent = adding_agent()

        async def respond(contents: str, user: str, instance: Any) -> None:
            await agent.ainvoke({"messages": [("user", contents)]}, config={"callbacks": [handler]})

        chat = pmui.ChatInterface(callback=respond, sizing_mode="stretch_width", height=700)
        handler = ChatStepCallbackHandler(chat, collapsed_on_success=False)
        return chat

    with open_app(app, viewport={"width": 1000, "height": 800}) as (page, log, _):
        page.locator("textarea").first.fill(QUESTION["messages"][0][1])
        page.keyboard.press("Enter")
        expect(page.get_by_text("The sum is 3.")).to_be_visible()
        # Once the turn is over its card collapses: open it then (a click before would be undone).
        card = page.locator(".MuiCard-root", has_text=re.compile(r"Steps · \d+ steps · done in"))
        expect(card.first).to_be_visible()
        # ... and once its collapse has played out (no step still shows): a click during
        # Material's transition can leave the card open and empty.
        expect(page.get_by_role("button", name="show more").first).to_have_attribute("aria-expanded", "false")
        expect(page.get_by_text("Tool add · 1, 2").filter(visible=True)).to_have_count(0)
        page.get_by_role("button", name="show more").first.click()  # open the reply's card of steps
        expect(page.locator(".MuiCard-root", has_text="Tool add · 1, 2 · done in").last).to_be_visible()
        # Every step is a Material card: the reply's card and its 4 steps (at least 5 cards).
        expect(page.locator(".MuiCard-root", has_text="· done in").nth(4)).to_be_visible()
        assert log.errors == []
