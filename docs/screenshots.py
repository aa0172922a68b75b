"""Screenshots of the examples for the docs: each served, driven in Chromium, saved to docs/images/.

Run with ``.venv/bin/python docs/screenshots.py [NAME ...]`` (offline: the scripted models).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))  # the browser harness lives with the tests, not in the package
from tests.browser.harness import launch_chromium, served  # noqa: E402

IMAGES = ROOT / "docs" / "images"
TIMEOUT = 30_000


def load(name: str) -> Any:
    sys.path.insert(0, str(ROOT / "examples"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chat_turn(question: str, done: str, expand: bool = False) -> Callable[[Any], None]:
    """Ask ``question``, wait for ``done`` on the page, optionally open the steps card."""

    def drive(page: Any) -> None:
        page.locator("textarea").fill(question)
        page.get_by_role("button", name="Send").click()
        expect(page.get_by_text(done).first).to_be_visible(timeout=TIMEOUT)
        if expand:  # once the turn is over, open its steps card
            expect(page.locator(".chat-steps .card-title").last).to_contain_text("· done in", timeout=TIMEOUT)
            page.locator(".chat-steps").last.locator(".card-header").first.click()
        page.get_by_text(done).last.scroll_into_view_if_needed()

    return drive


def long_run(page: Any) -> None:
    chat_turn("Check 40 servers", "Checked 40 servers", expand=True)(page)
    page.locator(".steps-navigator").first.evaluate("(bar) => bar.scrollIntoView()")


def standalone(page: Any) -> None:
    page.get_by_role("button", name="Convert").click()
    expect(page.get_by_text("26.22 mi").first).to_be_visible(timeout=TIMEOUT)


#: The recipes of chat-interface.md: the agent chat with these handler options.
RECIPES: dict[str, dict[str, Any]] = {
    "recipe_tools": {"verbosity": "tools", "collapsed_on_success": False},
    "recipe_answer": {"verbosity": "answer"},
    "recipe_everything": {"collapsed_on_success": False},
    "recipe_all": {"verbosity": "all", "collapsed_on_success": False},
}

SHOTS: dict[str, Callable[[Any], None]] = {
    "agent_chat": chat_turn("What is LangGraph persistence?", "Here is what I found", expand=True),
    "rag_chat": chat_turn("What does a checkpointer do?", "Source:", expand=True),
    "lcel_chain": chat_turn("Callbacks", "in three points", expand=True),
    "parallel_tools": chat_turn(
        "Compare the weather in Oslo, Cairo and Quito", "today's weather", expand=True
    ),
    "tool_approval": chat_turn("Email Bob about lunch", "Approve call to"),
    "research_team": chat_turn("Report on solar power", "Each topic was researched", expand=True),
    "standalone_trace": standalone,
    "long_run": long_run,
    "agent_trace": chat_turn("Check 12 servers", "Checked 12 servers"),
    **{
        name: chat_turn("What is 12 * 7?", "The result is", expand=name != "recipe_answer")
        for name in RECIPES
    },
}


def app(name: str) -> Callable[[], Any]:
    """The example app a screenshot shows."""
    if name in RECIPES:
        example = load("agent_chat")
        return lambda: example.create_app(**RECIPES[name])
    return load("long_agent" if name == "long_run" else name).create_app


def main(names: list[str]) -> None:
    """Take the named screenshots (all without names)."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for name, drive in SHOTS.items():
            if names and name not in names:
                continue
            with served(app(name)) as url:
                width = 1600 if name == "agent_trace" else 1000
                page = browser.new_page(viewport={"width": width, "height": 1000})
                page.goto(url)
                drive(page)
                page.wait_for_timeout(500)  # the last refresh reaches the page
                page.screenshot(path=str(IMAGES / f"{name}.png"))
                page.close()
            print(f"saved docs/images/{name}.png")
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1:])
