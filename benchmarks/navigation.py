"""Reaching and opening any step of a long agent turn in Chromium (issue 24).

A real ``create_agent`` run with N tool calls streams into a served
ChatInterface. Once it is done, the reply's card is opened and the last, the
first and the middle tool step are reached (the last is on the page; the
first through "First steps", one click; the middle by its number in "Go to
step", one entry) and opened. Every time is from the user's action until the
page shows what was asked for. The floor, measured in the same run, is the
quickest any server round trip can be on this page: a click on a Panel
button that changes one Markdown pane.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import panel as pn

from tests.browser.harness import launch_chromium, served

from .browser import _EXPAND, load, open_steps_card, trace_page
from .common import DEEP_JS, verdict

# Resolves with the ms until an element whose text matches ``pattern`` is visible, after ``act``
# (a JavaScript function run on the page); -1 after 10 s.
_UNTIL_SHOWN = """async ([act, pattern]) => {
  const wanted = new RegExp(pattern);
  const shown = () => window.deepElements(document).some(el =>
    (el.childElementCount === 0 || el.tagName === "H3") && wanted.test(el.textContent)
    && el.checkVisibility());
  const start = performance.now();
  await (new Function("return " + act)())();
  while (!shown()) {
    if (performance.now() - start > 10000) return -1;
    await new Promise(requestAnimationFrame);
  }
  return performance.now() - start;
}"""

#: A click on the button of the first widget with a CSS class (its button is in its shadow root).
_CLICK = """() => {{
  const host = window.deepElements(document).find(el => el.classList.contains("{css}"));
  (host.shadowRoot || host).querySelector("button").click();
}}"""

#: Types a number into the "Go to step" input and sends it (as Enter does).
_GO_TO = """() => {{
  const host = window.deepElements(document).find(el => el.classList.contains("steps-goto"));
  const input = (host.shadowRoot || host).querySelector("input");
  input.value = "{number}";
  input.dispatchEvent(new Event("input", {{bubbles: true}}));
  input.dispatchEvent(new KeyboardEvent("keyup", {{key: "Enter", bubbles: true}}));
  input.dispatchEvent(new Event("change", {{bubbles: true}}));
}}"""


@dataclass
class Reach:
    interactions: int
    reach_ms: float  # from the action until the step's title is shown (0: on the page already)
    open_ms: float  # from the click on its header until its output is shown


@dataclass
class NavigationResult:
    calls: int
    steps: int
    last: Reach
    first: Reach
    middle: Reach
    floor_ms: float  # a button click that changes one Markdown pane, until shown
    elements: tuple[int, int, int]  # DOM elements at the end, after the first, after the middle window


def floor_page() -> pn.Column:
    """A button and a Markdown pane: the quickest server round trip a click can make."""
    text = pn.pane.Markdown("not clicked")
    button = pn.widgets.Button(label="Click", css_classes=["floor-button"])
    button.on_click(lambda _: setattr(text, "object", f"clicked {button.clicks}"))
    return pn.Column(button, text)


def until(page: Any, act: str, pattern: str) -> float:
    return page.evaluate(_UNTIL_SHOWN, [act, pattern])


def open_step(page: Any, item: int, last: bool = False) -> float:
    return page.evaluate(_EXPAND, [f"lookup · item {item} ", last, f"^result for item {item}$"])


def elements(page: Any) -> int:
    return page.evaluate("() => window.deepElements(document).length")


def run(calls: int, timeout: float = 1800) -> NavigationResult:
    from playwright.sync_api import sync_playwright

    app, _ = trace_page(calls)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            with served(app) as url:
                page, _ = load(browser, url, timeout)
                open_steps_card(page)
                steps = elements(page)
                last = Reach(0, 0.0, open_step(page, calls - 1, last=True))
                first_ms = until(page, _CLICK.format(css="steps-first"), r"lookup · item 0 ")
                first = Reach(1, first_ms, open_step(page, 0))
                after_first = elements(page)
                middle = calls // 2  # the graph's children: a model node, then a tool node, per call
                go_to = _GO_TO.format(number=2 * middle + 2)
                middle_reach = Reach(
                    1, until(page, go_to, rf"lookup · item {middle} "), open_step(page, middle)
                )
                after_middle = elements(page)
                count = page.evaluate("() => window.deepText(document).match(/Steps · ([\\d,]+) steps/)[1]")
                page.close()
            with served(floor_page) as url:
                page = browser.new_page()
                page.add_init_script(DEEP_JS)
                page.goto(url)
                page.wait_for_selector(".floor-button button")
                floors = [
                    until(page, _CLICK.format(css="floor-button"), rf"^clicked {n}$") for n in range(1, 6)
                ]
                page.close()
        finally:
            browser.close()
    return NavigationResult(
        calls,
        int(count.replace(",", "")),
        last,
        first,
        middle_reach,
        sorted(floors)[len(floors) // 2],
        (steps, after_first, after_middle),
    )


def report(args: argparse.Namespace) -> None:
    sizes = [100] if args.quick else [100, 500, 5000]
    print("### 9. Reaching and opening any step of a long turn in headless Chromium (issue 24)\n")
    print(
        "| tool calls | steps | step | interactions | reach | target <= 2 and 1.5 s | open "
        "| target < 100 ms | reach / floor | DOM elements on the page |"
    )
    print("|---:|---:|---|---:|---:|:---:|---:|:---:|---:|---:|")
    for calls in sizes:
        r = run(calls)
        for name, reach, shown in (
            ("last", r.last, r.elements[0]),
            ("first", r.first, r.elements[1]),
            ("middle", r.middle, r.elements[2]),
        ):
            reached = reach.reach_ms >= 0 and reach.interactions <= 2 and reach.reach_ms <= 1500
            opened = 0 <= reach.open_ms < 100
            print(
                f"| {r.calls:,} | {r.steps:,} | {name} | {reach.interactions} | {reach.reach_ms:,.0f} ms "
                f"| {verdict(reached)} | {reach.open_ms:,.0f} ms | {verdict(opened)} "
                f"| {reach.reach_ms / r.floor_ms:.1f} | {shown:,} |"
            )
        print(f"| | | *floor: a click that changes one Markdown pane* | 1 | {r.floor_ms:,.0f} ms | | | | | |")
    print(
        "\nReach: from the click on **First steps** (first) or the number entered in **Go to step** "
        "(middle) until the step's title is shown; the last step is on the page when the turn ends. "
        "Open: from the click on a collapsed tool step's header until its output is shown. DOM "
        "elements: the whole page, shadow roots included, with the reply's card open; it stays flat "
        "wherever the window goes. -1 ms: not shown within 10 s.\n"
    )
