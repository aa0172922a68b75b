"""Browser fixtures: Debian's Chromium through Playwright, and Panel apps served on 127.0.0.1.

Without /usr/bin/chromium the browser tests are skipped, except in CI
(``CI=true``), where a missing browser fails the run: ``.ci/run`` installs it
(the Makefile's ``browser`` target).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import panel as pn
import pytest
from packaging.version import Version

from panel_langchain_steps.compat import documents_of
from panel_langchain_steps.schedule import on_page_loop

from .harness import CHROMIUM, launch_chromium, served


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium for the whole session; assertions on the page wait up to 30 s
    (a busy 2-core machine), and pass as soon as the page shows what they expect."""
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing: `make browser` installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


#: What Panel itself loads from elsewhere: the icon font of its chat components.
PANEL_EXTERNAL = ("https://cdn.jsdelivr.net/npm/@tabler/icons-webfont@",)

#: Panel 1.9's layouts read a child's view before its asynchronous build ends, when children
#: change while the page lays out (seen under load in CI; the page recovers at the next
#: layout). Panel 1.10 reworked these views; this package has no browser code of its own.
OLD_PANEL = Version(pn.__version__) < Version("1.10")
PANEL_19_VIEW_RACE = "Cannot read properties of undefined (reading 'el')"


@dataclass
class PageLog:
    """What a page did besides rendering: dialogs, requests and uncaught errors (with their stacks)."""

    url: str
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    panel_faults: list[str] = field(default_factory=list)  # PANEL_19_VIEW_RACE, kept apart
    console_errors: list[str] = field(default_factory=list)

    def record_error(self, error: Any) -> None:
        """Keep an uncaught page error with its stack (Panel 1.9's known view race apart)."""
        known = OLD_PANEL and error.message == PANEL_19_VIEW_RACE
        (self.panel_faults if known else self.errors).append(error.stack or str(error))

    def report(self) -> str:
        """What the page did, for a failed test's report."""
        parts = {
            "page errors": self.errors,
            "Panel 1.9 view races": self.panel_faults,
            "console errors": self.console_errors,
            "dialogs": self.dialogs,
        }
        return "\n".join(f"{name}: {len(found)}\n" + "\n".join(found) for name, found in parts.items())

    def unexpected_requests(self) -> list[str]:
        """Requests other than the page, its static files, its blobs and Panel's icon font."""
        expected = (self.url + "static/", "blob:" + self.url, *PANEL_EXTERNAL)
        return [url for url in self.requests if url != self.url and not url.startswith(expected)]


@pytest.fixture(scope="module")
def open_app(browser: Any) -> Callable[..., Any]:
    """``with open_app(app) as (page, log, view):`` serves ``app`` and opens it in a new page,
    loaded (Panel's ``onload`` ran); ``view`` is what ``app`` returned for that page's session."""

    @contextmanager
    def open_app(app: Callable[[], Any], **context: Any) -> Iterator[tuple[Any, PageLog, Any]]:
        views: list[Any] = []
        loaded = threading.Event()

        def session() -> Any:
            views.append(app())
            pn.state.onload(loaded.set)
            return views[-1]

        with served(session) as url:
            log = PageLog(url)
            page = browser.new_page(**context)
            page.on("dialog", lambda dialog: (log.dialogs.append(dialog.message), dialog.dismiss()))
            page.on("request", lambda request: log.requests.append(request.url))
            page.on("pageerror", lambda error: log.record_error(error))
            page.on(
                "console", lambda message: message.type == "error" and log.console_errors.append(message.text)
            )
            try:
                page.goto(url)
                # Runs start on a connected page, as docs/serving.md advises.
                assert loaded.wait(30), "the page did not load its session within 30 s"
                yield page, log, views[-1]
            except BaseException:
                print(log.report())  # shown with the failure
                raise
            finally:
                page.close()

    return open_app


def run_in_session(view: Any, work: Callable[[], Awaitable[None]], timeout: float = 120) -> None:
    """Await ``work`` on the event loop of the served session showing ``view``,
    as an async Panel callback (e.g. a ``ChatInterface``'s) runs; re-raise its error."""
    (document,) = documents_of(view)
    done = threading.Event()
    errors: list[BaseException] = []

    async def run() -> None:
        try:
            await work()
        except BaseException as error:
            errors.append(error)
        finally:
            done.set()

    on_page_loop(document, run)
    assert done.wait(timeout), f"the session did not finish within {timeout} s"
    if errors:
        raise errors[0]


DEEP_TEXT = """(selector) => {
  const find = (root) => {
    const hit = root.querySelector(selector);
    if (hit) return hit;
    for (const node of root.querySelectorAll("*")) {
      const found = node.shadowRoot && find(node.shadowRoot);
      if (found) return found;
    }
    return null;
  };
  const text = (node) => {
    if (node.nodeType === 3) return node.textContent;
    if (node.tagName === "STYLE" || node.tagName === "SCRIPT") return "";
    const children = [...(node.shadowRoot ? node.shadowRoot.childNodes : []), ...node.childNodes];
    return children.map(text).join("");
  };
  const element = find(document);
  return element ? text(element) : null;
}"""


def deep_text(page: Any, selector: str) -> str:
    """The text of the first element matching ``selector``, including its shadow DOM."""
    return page.evaluate(DEEP_TEXT, selector) or ""
