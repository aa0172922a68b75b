"""``panel-langchain-steps view traces.db`` serves a trace store; Chromium lists, searches,
opens and compares its turns."""

from __future__ import annotations

import pytest
from conftest import adding_agent
from playwright.sync_api import expect

from panel_langchain_steps import ChatStepCallbackHandler, TraceStore

from .test_cli_browser import served_view

pytestmark = pytest.mark.browser


def test_view_serves_a_store_to_search_open_and_compare(browser, tmp_path):
    store = TraceStore(tmp_path / "traces.db")
    handler = ChatStepCallbackHandler(store=store)
    for index, answer in enumerate(["The sum is 3.", "Three, <img src=x onerror=alert(1)>"]):
        question = {"messages": [("user", f"Question {index}: what is 1 + 2?")]}
        adding_agent(answer).invoke(question, config={"callbacks": [handler]})
    assert store.flush(60)
    store.close()
    with served_view(tmp_path / "traces.db") as (line, url):
        assert f"(2 turns) at {url}" in line
        page = browser.new_page()
        errors: list[str] = []
        dialogs: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(url)
        rows = page.locator(".tabulator-row")
        expect(rows.filter(has_text="Question 1")).to_have_count(1)
        expect(rows.filter(has_text="Question 0")).to_have_count(1)

        search = page.get_by_placeholder("Search turns")
        search.fill("onerror")  # in the second answer only
        search.press("Enter")
        expect(rows.filter(has_text="Question 0")).to_have_count(0)
        expect(rows.filter(has_text="Question 1")).to_have_count(1)
        search.fill("")
        search.press("Enter")
        expect(rows.filter(has_text="Question 0")).to_have_count(1)

        # A click on a turn opens it in a trace view below the list.
        rows.filter(has_text="Question 0").locator(".tabulator-cell[tabulator-field='question']").click()
        expect(page.locator(".tabulator-row", has_text="scripted-model").first).to_be_visible()

        # Tick both turns and compare them.
        for question in ("Question 0", "Question 1"):
            rows.filter(has_text=question).get_by_label("Select Row").check()
        page.get_by_role("button", name="Compare").click()
        expect(page.locator(".store-comparison")).to_contain_text("Diverged at LangGraph")
        expect(page.locator(".tabulator-row", has_text="changed").first).to_be_visible()
        assert errors == [] and dialogs == []
        page.close()
