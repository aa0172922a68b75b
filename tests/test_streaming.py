"""Streaming: buffered tokens, bounded Markdown blocks, timer flushes, threads.

Everything here checks what the user ends up seeing; timings live in
``benchmarks/``, never in assertions.
"""

from __future__ import annotations

import html
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import panel as pn
import param
import pytest
from bokeh.document import Document
from conftest import opened, until
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.runnables import RunnableLambda
from markdown_it import MarkdownIt
from panel.pane import Markdown
from pydantic import PrivateAttr

from panel_langchain_steps import ChatStepCallbackHandler, steps_in
from panel_langchain_steps.render import Step
from panel_langchain_steps.stream import BLOCK_CHARS, StepText
from panel_langchain_steps.testing import ScriptedChatModel

LONG_ANSWER = "".join(
    f"Paragraph {n} explains a step in plain words, with `code` and **bold** text.\n\n"
    f"1. first item {n}\n2. second item\n   continued on an indented line\n\n"
    f"- bullet {n}\n- another bullet\n\n"
    f"```python\ndef step_{n}():\n    x = {n}\n\n\n    return x\n```\n\n"
    f"~~~\nplain fence with a blank line\n\nstill inside\n~~~\n\n"
    for n in range(BLOCK_CHARS // 250)  # a little over one block
)
NO_BLANK_LINES = "".join(f"line {n} of one long paragraph without a break\n" for n in range(400))
UNCLOSED_FENCE = "Intro.\n\n```\n" + "".join(f"code line {n}\n\n" for n in range(300))


def model_text(step: Step) -> str:
    """The text of a model step, as it shows when opened: without the token usage line."""
    return step.body_text.split("\n*Tokens:")[0]


def stream(model, handler) -> str:
    return "".join(chunk.content for chunk in model.stream("question", config={"callbacks": [handler]}))


@pytest.mark.parametrize("text", [LONG_ANSWER, NO_BLANK_LINES, UNCLOSED_FENCE])
def test_long_answer_is_shown_exactly(make_handler, text):
    handler = make_handler()
    assert stream(ScriptedChatModel(responses=[text]), handler) == text
    (step,) = opened(handler, handler.layout)
    assert model_text(step) == text
    blocks = [pane for pane in step.objects if isinstance(pane, Markdown)][:-1]
    if text is LONG_ANSWER:
        assert len(blocks) > 1
        assert max(len(block.object) for block in blocks) < BLOCK_CHARS + 200


def test_text_shown_at_run_end_without_the_timer(make_handler):
    handler = make_handler(flush_interval=5.0)
    text = "Short answer, shown the moment the run ends."
    stream(ScriptedChatModel(responses=[text]), handler)
    handler.flush()
    assert model_text(steps_in(handler.layout)[0]) == text


class StallingModel(ScriptedChatModel):
    """Streams ``stall_after`` tokens, then waits for ``resume`` before the rest."""

    stall_after: int = 5  # chunks: the input's usage, then "one", " two", " three", " four"
    _resume: threading.Event = PrivateAttr(default_factory=threading.Event)

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        for number, chunk in enumerate(super()._stream(messages, stop, run_manager, **kwargs)):
            if number == self.stall_after:
                self._resume.wait(timeout=30)
            yield chunk


async def test_stalled_stream_is_flushed_by_the_timer(make_handler):
    handler = make_handler(flush_interval=0.02)
    model = StallingModel(responses=["one two three four five six"])
    worker = threading.Thread(target=stream, args=(model, handler))
    worker.start()
    try:
        # The model is stalled mid-answer; only the timer can show what it sent (all but the word
        # still open: the next token tells whether it is part of a secret, see security.md).
        await until(
            lambda: steps_in(handler.layout) and model_text(steps_in(handler.layout)[0]) == "one two three ",
            "text shown",
        )
    finally:
        model._resume.set()
        worker.join()
    assert model_text(steps_in(handler.layout)[0]) == "one two three four five six"


def numbered(run: int, tokens: int = 400) -> str:
    return "".join(f"r{run}t{n}" + ("\n\n" if n % 25 == 24 else " ") for n in range(tokens))


def test_concurrent_runs_lose_nothing(make_handler):
    handler = make_handler(flush_interval=0.001)
    models = [ScriptedChatModel(responses=[numbered(run)], model_name=f"model-{run}") for run in range(16)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda model: stream(model, handler), models))
    handler.flush()
    shown = {step.title.split(" · ")[0]: model_text(step) for step in steps_in(handler.layout)}
    assert shown == {f"Model model-{run}": numbered(run) for run in range(16)}


def test_batched_runs_in_one_trace_lose_nothing(make_handler):
    handler = make_handler(flush_interval=0.001)
    model = ScriptedChatModel(responses=lambda messages: numbered(int(messages[-1].content)))
    chain = RunnableLambda(lambda n: model.invoke(str(n))).with_config(run_name="ask")
    chain.batch(list(range(8)), config={"callbacks": [handler], "max_concurrency": 8})
    handler.flush()
    # Each model run is shown; ``invoke`` does not stream, so each text arrives whole at the end.
    texts = sorted(model_text(steps_in(step)[0]) for step in steps_in(handler.layout))
    assert texts == sorted(numbered(run) for run in range(8))


class Block:
    """A stand-in for a Markdown pane."""

    def __init__(self, text: str):
        self.object = text


def test_tokens_from_a_thread_keep_their_order_while_the_view_draws(make_handler):
    handler = make_handler(flush_interval=0.001)
    text = "".join(f"{n} " + ("\n\n" if n % 7 == 0 else "") for n in range(20_000))
    worker = threading.Thread(target=stream, args=(ScriptedChatModel(responses=[text]), handler))
    worker.start()
    while worker.is_alive():
        handler.flush()  # drawing on this thread while tokens arrive on the other
    worker.join()
    handler.flush()
    assert model_text(steps_in(handler.layout)[0]) == text


async def test_a_fault_in_a_timed_refresh_is_reported(make_handler, caplog):
    handler = make_handler(RefusingColumn(), flush_interval=0.001)
    with caplog.at_level(logging.WARNING, "panel_langchain_steps"):
        assert stream(ScriptedChatModel(responses=["fine"]), handler) == "fine"  # the run is unharmed
        await until(lambda: any("layout refused" in r.getMessage() for r in caplog.records), "a report")


class RefusingColumn(pn.Column):
    """A real Column that refuses steps, as a fault inside rendering."""

    @param.depends("objects", watch=True)
    def _refuse(self):
        if self.objects:
            raise RuntimeError("layout refused")


def test_a_long_list_of_steps_shows_one_window_and_reaches_any_step(make_handler):
    handler = make_handler(max_steps=20)

    def agent(count: int, config) -> int:
        for number in range(count):
            RunnableLambda(lambda x: x).with_config(run_name=f"tool-{number}").invoke(0, config)
        return count

    RunnableLambda(agent).with_config(run_name="agent").invoke(150, {"callbacks": [handler]})
    handler.flush()
    (root,) = handler.layout
    (bar,) = [item for item in root if "steps-navigator" in item.css_classes]
    first, earlier, label, later, latest, number, search = bar

    def shown() -> tuple[str, list[int]]:
        steps = [step.title.split(" · ")[0] for step in steps_in(root)]
        return label.object, [int(name.removeprefix("tool-")) for name in steps]

    assert shown() == ("Steps 131–150 of 150", list(range(130, 150)))
    assert (later.disabled, latest.disabled, first.disabled) == (True, True, False)
    first.clicks += 1  # a click, as the browser sends it
    assert shown() == ("Steps 1–20 of 150", list(range(20)))
    later.clicks += 1
    assert shown() == ("Steps 21–40 of 150", list(range(20, 40)))  # the window moved: 20 steps, not 40
    earlier.clicks += 1
    assert shown() == ("Steps 1–20 of 150", list(range(20)))
    number.value = 75
    assert shown() == ("Steps 75–94 of 150", list(range(74, 94)))
    search.value_input = "tool-42"
    search.enter_pressed = True
    assert shown() == ("Steps 43–62 of 150", list(range(42, 62)))
    search.value_input = "no such tool"
    search.enter_pressed = True
    assert shown()[0] == "Steps 43–62 of 150 · no step matches"
    latest.clicks += 1
    assert shown() == ("Steps 131–150 of 150", list(range(130, 150)))
    assert len(handler.trace) == 151  # every run stays in the record


def test_a_window_away_from_the_end_stays_while_the_run_goes_on(make_handler):
    handler = make_handler(max_steps=5)
    gate = threading.Event()

    def agent(count: int, config) -> int:
        for number in range(count):
            if number == 10:
                gate.wait(30)
            RunnableLambda(lambda x: x).with_config(run_name=f"tool-{number}").invoke(0, config)
        return count

    worker = threading.Thread(target=lambda: RunnableLambda(agent).invoke(20, {"callbacks": [handler]}))
    worker.start()
    try:
        while len(handler.trace) < 11 and worker.is_alive():
            worker.join(0.01)
        handler.flush()
        (root,) = handler.layout
        (bar,) = [item for item in root if "steps-navigator" in item.css_classes]
        bar[0].clicks += 1  # first steps
    finally:
        gate.set()
        worker.join(30)
    handler.flush()
    names = [step.title.split(" · ")[0] for step in steps_in(root)]
    assert names == [f"tool-{number}" for number in range(5)]
    assert bar[2].object == "Steps 1–5 of 20"


@pytest.mark.parametrize("interval", [0, -1, 10.0])
def test_flush_interval_is_validated(interval):
    with pytest.raises(ValueError):
        ChatStepCallbackHandler(flush_interval=interval)


# -- block splitting, as a property ------------------------------------------

FRAGMENTS = [
    "a",
    "word ",
    "\n",
    "\n\n",
    "```",
    "```py\n",
    "~~~",
    "````",
    "   ",
    "    code",
    "- item",
    "1. item",
    "> quote",
    "`",
    "\t",
]


def fenced_lines(text: str) -> list[tuple[int, int]]:
    """Line ranges of code blocks (fenced or indented), per markdown-it."""
    tokens = MarkdownIt("commonmark").parse(text)
    return [tuple(token.map) for token in tokens if token.type in ("fence", "code_block") and token.map]


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(FRAGMENTS), max_size=120),
    chunking=st.lists(st.integers(1, 12), min_size=1, max_size=40),
    block_chars=st.integers(1, 60),
)
def test_step_text_blocks_join_to_the_text_and_cut_outside_fences(pieces, chunking, block_chars):
    source = "".join(pieces)
    text = StepText(Block, block_chars=block_chars)
    start = 0
    for number, size in enumerate(chunking * (len(source) // sum(chunking) + 1)):
        if start >= len(source):
            break
        start += size
        if number % 3 == 0:
            text.show(source[:start])
    text.show(source)
    blocks = [block.object for block in text.blocks]
    assert "".join(blocks) == source
    offset = 0
    for block in blocks[:-1]:
        offset += len(block)
        assert not block.splitlines()[-1].strip()  # the cut follows a blank line
        line = source.count("\n", 0, offset)
        assert all(not first < line < end for first, end in fenced_lines(source))
        assert not source[offset].isspace()


@pytest.mark.parametrize("status", ["success", "failed"])
def test_a_status_change_patches_the_step_in_place(status):
    doc = Document()
    layout = pn.Column()
    layout.server_doc(doc)
    step = Step(status="running", default_title="Tool x")
    layout.append(step)
    models = {model.id for model in doc.models}
    step.param.update(status=status, **{f"{status}_title": f"Tool x · {status}"})
    assert {model.id for model in doc.models} == models  # nothing rebuilt
    headers = [
        html.unescape(model.text) for model in doc.models if "step-title" in getattr(model, "css_classes", [])
    ]
    assert len(headers) == 1
    assert f"step-badge-{status}" in headers[0]
    assert headers[0].endswith(f"Tool x · {status}</h3>")
