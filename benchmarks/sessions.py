"""Sessions sharing one server (issue 16): token freshness next to a long agent, loop stalls."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import panel as pn

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.testing import ScriptedChatModel
from tests.browser.harness import launch_chromium, served

from .common import DEEP_JS, ScriptedAgent, live_chat, percentile, verdict
from .freshness import WATCHER, Stamps, answer

TOKENS = 300
TOKEN_DELAY = 0.02  # 50 tokens/s

#: The agent's page is complete: its answer and its reply's summary (once its steps are drawn).
AGENT_DRAWN = (
    "(() => { const text = deepText(document); "
    "return text.includes('Done: looked up') && /Steps · [0-9,]+ steps · done in/.test(text); })()"
)


class LoopProbe:
    """Wakes every 10 ms on the server's event loop and notes when (epoch ms) and how late (ms)."""

    def __init__(self) -> None:
        self.late: list[tuple[float, float]] = []
        self.running = False
        self.settled = True  # False when a stall was still going at the end of `settle`
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start on the event loop of the current session's server."""
        self.running = True
        pn.state.curdoc.add_next_tick_callback(self._start)

    async def _start(self) -> None:
        # A task of its own: a document's callback holds the document's lock while it runs.
        self._task = asyncio.get_running_loop().create_task(self._probe())

    async def _probe(self) -> None:
        while self.running:
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            self.late.append((time.time() * 1e3, (time.perf_counter() - start - 0.01) * 1e3))

    def settle(self, timeout: float) -> None:
        """Wait until the loop is free again (a wake-up after now), up to ``timeout`` s; a stall
        still going then is noted as long as it has lasted."""
        since = time.time() * 1e3
        deadline = time.monotonic() + timeout
        while self.late[-1][0] <= since and time.monotonic() < deadline:
            time.sleep(0.05)
        now = time.time() * 1e3
        if self.late[-1][0] <= since:
            self.settled = False
            self.late.append((now, now - self.late[-1][0]))


@dataclass
class SessionsResult:
    sessions: int
    agent_calls: int  # asked for
    agent_done: int  # tool calls made within the time budget
    delays: list[list[float]]  # ms from the model to the page, per streaming session
    lost: int  # tokens never shown, over all sessions
    stalls: list[float] = field(repr=False)  # ms late, per probe wake-up once all sessions start
    settled: bool  # False when the loop was still stalled at the end: the max is a lower bound

    @property
    def median_ms(self) -> float:
        return statistics.median(d for delays in self.delays for d in delays)

    @property
    def worst_median_ms(self) -> float:
        """Of the sessions that showed any token (see ``lost``)."""
        return max(statistics.median(delays) for delays in self.delays if delays)

    @property
    def max_ms(self) -> float:
        return max(d for delays in self.delays for d in delays)

    @property
    def stall_max_ms(self) -> float:
        return max(self.stalls)

    @property
    def stall_p99_ms(self) -> float:
        return percentile(self.stalls, 0.99)


class Together:
    """Holds every session's work until all of them have loaded, then starts them at once."""

    def __init__(self) -> None:
        self.loaded = 0
        self._lock = threading.Lock()
        self.at = 0.0  # epoch ms of the start
        self._go = threading.Event()

    def on_load(self, work: Callable[[], None], done: threading.Event) -> None:
        """Run ``work`` in a thread once the current session has loaded and all may start."""

        def wait_then_work() -> None:
            with self._lock:
                self.loaded += 1
            if self._go.wait(timeout=120):
                work()
            done.set()

        pn.state.onload(lambda: threading.Thread(target=wait_then_work, daemon=True).start())

    def start(self, sessions: int, timeout: float) -> None:
        """Let all work start, once ``sessions`` have loaded (or after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while self.loaded < sessions and time.monotonic() < deadline:
            time.sleep(0.05)
        self.at = time.time() * 1e3
        self._go.set()


def streaming_session(stamps: Stamps) -> tuple[pn.chat.ChatInterface, Callable[[], None]]:
    """A ChatInterface, and the work that streams the numbered answer into it."""
    chat = pn.chat.ChatInterface()
    handler = ChatStepCallbackHandler(chat)
    model = ScriptedChatModel(responses=[answer(TOKENS)], token_delay=TOKEN_DELAY)

    def work() -> None:
        for _ in model.stream("question", config={"callbacks": [stamps, handler]}):
            pass

    return chat, work


def agent_session(agent: ScriptedAgent) -> tuple[pn.chat.ChatInterface, Callable[[], None]]:
    """A ChatInterface, and the work that runs ``agent`` into it."""
    chat = pn.chat.ChatInterface()
    handler = ChatStepCallbackHandler(chat)
    return chat, lambda: agent.invoke([handler])


def run(sessions: int, agent_calls: int, budget: float = 60.0) -> SessionsResult:
    """Serve ``sessions`` streaming pages, plus one running an agent making ``agent_calls``
    tool calls (none for 0; it answers instead after ``budget`` s), all in one server, all
    starting together once every page has loaded."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    probe = LoopProbe()
    together = Together()
    agent = ScriptedAgent(agent_calls, budget)
    stamps = [Stamps() for _ in range(sessions)]
    roles = [functools.partial(streaming_session, s) for s in stamps]
    if agent_calls:
        roles.append(functools.partial(agent_session, agent))
    finished = [threading.Event() for _ in roles]
    pending = list(zip(roles, finished, strict=True))

    def app() -> pn.viewable.Viewable:
        if not probe.running:
            probe.start()
        if not pending:  # a page that loaded again (its first session's tokens count as lost)
            return pn.pane.Markdown("This page loaded twice.")
        role, done = pending.pop(0)
        chat, work = role()
        together.on_load(work, done)
        return chat

    with sync_playwright() as playwright, served(app) as url:
        browser = launch_chromium(playwright)
        try:
            pages = [browser.new_page() for _ in roles]
            for page in pages[:sessions]:
                page.add_init_script(WATCHER)
            for page in pages[sessions:]:
                page.add_init_script(DEEP_JS)
            for page in pages:
                page.goto(url, wait_until="commit", timeout=120_000)
            together.start(len(roles), timeout=120)
            for done in finished:
                done.wait(timeout=budget + 60)
            for page in pages[sessions:]:  # the stalls go on until the agent's page is drawn
                page.wait_for_function(AGENT_DRAWN, timeout=(budget + 120) * 1000, polling=100)
            probe.settle(timeout=budget + 60)
            seen = []
            for page in pages[:sessions]:
                with contextlib.suppress(PlaywrightTimeout):  # a token never shown counts as lost
                    page.wait_for_function(f"window.__seen[{TOKENS - 1}] !== undefined", timeout=10_000)
                seen.append(page.evaluate("window.__seen"))
        finally:
            probe.running = False
            browser.close()
    delays = [
        [shown[str(i)] - sent for i, sent in enumerate(s.times[:TOKENS]) if str(i) in shown]
        for s, shown in zip(stamps, seen, strict=True)
    ]
    lost = sum(TOKENS - len(d) for d in delays)
    stalls = [late for when, late in probe.late if when >= together.at]
    return SessionsResult(sessions, agent_calls, len(agent.stamps), delays, lost, stalls, probe.settled)


def send_ms(repeats: int = 5) -> float:
    """Median ms of Panel's own ``ChatFeed.send`` of one short message into a live chat: what
    any reply costs the event loop, with or without this handler."""
    chat, _ = live_chat()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        chat.send("A message.", respond=False)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def report(args: argparse.Namespace) -> None:
    quick = args.quick
    budget = 15.0 if quick else 60.0
    few, many = (2, 3) if quick else (5, 10)
    calls, more_calls = (
        [int(n) for n in args.agent_calls.split(",")]
        if args.agent_calls
        else ((10, 20) if quick else (60, 100))
    )
    with_agent, alone, crowded, crowd_alone, agent_only = (
        run(few, calls, budget),
        run(few, 0, budget),
        run(many, more_calls, budget),
        run(many, 0, budget),
        run(0, more_calls, budget),
    )
    print(
        f"### 7. Sessions in one server ({TOKENS} tokens at {1 / TOKEN_DELAY:.0f} tokens/s per streaming "
        "session, in headless Chromium)\n"
    )
    print(
        "| streaming sessions | agent tool calls | median | worst session's median | max | tokens lost "
        "| loop stall max | loop stall p99 |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in (with_agent, alone, crowded, crowd_alone, agent_only):
        cut = f" of {r.agent_calls}" if r.agent_done < r.agent_calls else ""
        fresh = (
            f"{r.median_ms:,.0f} ms | {r.worst_median_ms:,.0f} ms | {r.max_ms:,.0f} ms | {r.lost}"
            if r.sessions
            else "– | – | – | –"
        )
        stall = f"{'' if r.settled else '>= '}{r.stall_max_ms:,.0f} ms"
        print(f"| {r.sessions} | {r.agent_done}{cut} | {fresh} | {stall} | {r.stall_p99_ms:,.0f} ms |")
    ratio = with_agent.median_ms / alone.median_ms
    ok = ratio <= 2 and with_agent.median_ms <= 300 and not with_agent.lost
    print(
        f"\n{few} sessions with the agent / without: median {ratio:.1f}x (target <= 2x, <= 300 ms, no token "
        f"lost: {verdict(ok)}). {many} sessions with the agent: median {crowded.median_ms:,.0f} ms (target "
        f"<= 150 ms: {verdict(crowded.median_ms <= 150)}; the same {many} without the agent, its floor: "
        f"{crowd_alone.median_ms:,.0f} ms). The agent alone: worst stall "
        f"{agent_only.stall_max_ms:,.0f} ms (target < 50 ms: {verdict(agent_only.stall_max_ms < 50)}). "
        "Freshness: from `on_llm_new_token` to the token showing in its page (polled every 4 ms). Loop "
        "stall: how late a 10 ms sleep on the server's event loop wakes, once all sessions start. The "
        f"agent stops calling tools {budget:.0f} s after its first call. The floor of a stall: Panel's "
        f"own `ChatFeed.send` of one short message takes {send_ms():,.0f} ms here (a turn's reply is "
        "one such message).\n"
    )
