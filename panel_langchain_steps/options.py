"""The handler's display options: declared, documented and validated once, frozen for the views.

`StepOptions` declares every option the handler takes about what its steps
show (the handler is one); `ViewOptions` is the same options as one frozen
value, taken whenever one changes and passed from the handler to its view,
like `Visibility` for the per-event path. The names are the same in both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import param
from panel.layout.base import ListLike

from .render import check_title
from .trace import KINDS
from .usage import context_windows
from .visibility import VERBOSITY, Visibility


class TitleTemplate(param.String):
    """A title template: a string whose fields are checked when it is set."""

    def _validate_value(self, val: Any, allow_None: bool) -> None:
        if callable(val):
            raise ValueError("title is a template string; a function goes in title_function")
        super()._validate_value(val, allow_None)
        check_title(val)


class StepOptions(param.Parameterized):
    """What the steps show and how: the options of `ChatStepCallbackHandler`."""

    #: The names of the options (every parameter but ``name``).
    NAMES: tuple[str, ...] = ()

    context_exception = param.Selector(
        default="summary",
        objects=["raise", "summary", "verbose", "ignore"],
        doc="""
        How a failed run's error is shown in its step: "summary" the exception
        type and message, "verbose" the full traceback, "ignore" no error
        text, "raise" like "summary". The step is "failed" in every mode, and
        the exception always reaches the caller unchanged.""",
    )

    verbosity = param.Selector(
        default="steps",
        objects=list(VERBOSITY),
        doc="""
        How much of each turn is shown, least to most: "answer" no steps (in
        a chat the reply is its answer; a failure or a pending decision still
        gets a step), "tools" tool and retriever calls only, "steps" the runs
        the options below choose, "all" every run (glue and every LangGraph
        node, at any depth). The ``exclude_*`` options hold at every level.
        It may change while the chat runs: every turn shown is redrawn from
        its record.""",
    )

    include_types = param.ListSelector(
        default=list(KINDS),
        objects=list(KINDS),
        doc="""
        Kinds of runs shown as steps: "chain" (LangGraph graphs and nodes,
        named chains), "tool", "llm" (chat models and LLMs), "retriever".""",
    )

    exclude_types = param.ListSelector(
        default=[],
        objects=list(KINDS),
        doc="""
        Kinds of runs never shown as steps (their children attach to the
        nearest shown ancestor).""",
    )

    include_names = param.List(
        default=[],
        item_type=str,
        doc="""
        Run names always shown, even glue or a kind not in ``run_types``.""",
    )

    exclude_names = param.List(
        default=[],
        item_type=str,
        doc="""
        Run names never shown; their children attach to the nearest shown ancestor.""",
    )

    include_tags = param.List(
        default=[],
        item_type=str,
        doc="""
        Runs with any of these tags are always shown.""",
    )

    exclude_tags = param.List(
        default=["langsmith:hidden"],
        item_type=str,
        doc="""
        Runs with any of these tags are never shown (LangGraph tags its
        internal runs ``langsmith:hidden``).""",
    )

    max_depth = param.Integer(
        default=None,
        bounds=(1, None),
        allow_None=True,
        doc="""
        Deepest nesting of shown steps; deeper runs are hidden. None: no limit.""",
    )

    show_glue = param.Boolean(
        default=False,
        doc="""
        Show composition runs (RunnableSequence, RunnableLambda, prompts,
        parsers, ...) as steps too, and every LangGraph node as a step of its
        own (by default a node that does one action is shown as that action).""",
    )

    title = TitleTemplate(
        default=None,
        allow_None=True,
        doc="""
        A template for every step's title, e.g. ``"{label} ({status})"``, with
        the fields ``label`` ("Tool search"), ``node`` (the LangGraph node the
        step also stands for, else empty), ``name``, ``kind``, ``status``
        ("success"), ``state`` ("done in 1.2 s"), ``elapsed`` ("1.2 s") and
        ``model``. None: the built-in title, ``"{label} · {state}"``. Shown as
        text, not HTML.""",
    )

    title_function = param.Callable(
        default=None,
        doc="""
        A function ``title_function(run) -> str | None`` that gives a step's
        title; it is called whenever the step is drawn with the run's
        `RunRecord` (``name``, ``kind``, ``status``, ``elapsed``, ``error``,
        ``tags``, ``metadata``, ...). Return None to keep the ``title``
        template's (or the built-in) title. Shown as text, not HTML.""",
    )

    collapsed_on_success = param.Boolean(
        default=True,
        doc="""
        Collapse a tool, model or retriever step when its run succeeds
        (chain steps stay open: their content is their child steps).""",
    )

    flush_interval = param.Number(
        default=0.08,
        bounds=(0.001, 5.0),
        doc="""
        Seconds of rest between updates of the steps: changes are recorded at
        once and shown at most this often (at once after a quiet spell), in
        slices that never hold the server's event loop for long.""",
    )

    max_steps = param.Integer(
        default=20,
        bounds=(1, None),
        doc="""
        Most child steps shown at once inside one step (or one reply); older
        ones are reached through a bar above them (first, earlier, later and
        latest steps, a step by number, a step by text), so long agent runs
        stay light and navigable.""",
    )

    max_chars = param.Integer(
        default=20_000,
        bounds=(100, None),
        allow_None=True,
        doc="""
        Longest text shown for one tool input, output, document or error;
        longer text is cut with a note of how much was left out. None: no limit.""",
    )

    user = param.String(
        default=None,
        allow_None=True,
        doc="""
        With a chat feed target, the user the step messages are sent as
        (default: the feed's ``callback_user``).""",
    )

    avatar = param.Parameter(
        default=None,
        doc="""
        With a chat feed target, the avatar of the step messages.""",
    )

    answer_in_reply = param.Boolean(
        default=True,
        doc="""
        With a chat feed target, show the turn's final answer (the text of the
        model call that ended it without calling tools) as the reply's own
        text below the steps card. False: keep all text in the steps.""",
    )

    prices = param.Dict(
        default={},
        doc="""
        Model prices, ``{model: (input_per_1M_tokens, output_per_1M_tokens)}``
        (as `TraceView`'s): each model step's footer and each turn's summary
        show the cost. Models not listed show no cost.""",
    )

    models = param.List(
        default=[],
        doc="""
        The chat models in use: a model whose LangChain profile gives
        ``max_input_tokens`` gets a context-window gauge in its steps' footers.""",
    )

    serialize_steps = param.Boolean(
        default=False,
        doc="""
        With a chat feed target, what a reply is as chat history
        (``ChatFeed.serialize()``, the history for the next model call): the
        answer as the model wrote it, and with True a short readable summary
        of the turn's steps before it.""",
    )

    trace_target = param.ClassSelector(
        class_=ListLike,
        default=None,
        allow_None=True,
        doc="""
        With a chat feed target, where a reply's "Trace view" button opens its
        turn in a `TraceView` (a tree, a waterfall, totals and details of every
        run, however long): a list-like layout beside the chat, such as a
        sidebar ``Column``, whose contents it replaces. None: inside the
        reply, below its steps.""",
    )

    resume = param.Callable(
        default=None,
        doc="""
        A function ``resume(value)`` (sync or async) that resumes a paused
        LangGraph run, e.g. ``agent.invoke(Command(resume=value), config)``.
        When set, a step paused at ``interrupt()`` shows the request and its
        decisions: for ``HumanInTheLoopMiddleware``, Approve, Edit and Reject
        per tool call (those its ``allowed_decisions`` allow); for any other
        interrupt, Approve and Reject. Once decided, it is called with the
        value to resume with: the decision itself when the run paused at
        one interrupt; when it paused at several at once (parallel
        branches), once every one is decided, with ``{interrupt_id:
        value, ...}``, as LangGraph requires.""",
    )

    tools = param.List(
        default=[],
        doc="""
        The agent's tools: an Edit decision's form is built from the tool's
        argument schema and validated by it (without, from the arguments the
        model wrote).""",
    )


@dataclass(frozen=True)
class ViewOptions:
    """`StepOptions` as one frozen value: what a view reads (see `StepOptions` for each)."""

    context_exception: str
    visibility: Visibility
    title: str | None
    title_function: Callable[[Any], str | None] | None
    collapsed_on_success: bool
    flush_interval: float
    max_steps: int
    max_chars: int | None
    user: str | None
    avatar: Any
    answer_in_reply: bool
    prices: Mapping[str, tuple[float, float]]
    #: ``max_input_tokens`` by model name, from ``models``' LangChain profiles.
    context_windows: Mapping[str, int]
    serialize_steps: bool
    trace_target: Any
    resume: Callable[[Any], Any] | None
    #: The ``tools`` by name.
    tools: Mapping[str, Any]

    @classmethod
    def of(cls, options: StepOptions) -> ViewOptions:
        """The options as they are now."""
        return cls(
            context_exception=options.context_exception,
            visibility=Visibility.of(
                options.verbosity, **{name: getattr(options, name) for name in Visibility.FILTERS}
            ),
            title=options.title,
            title_function=options.title_function,
            collapsed_on_success=options.collapsed_on_success,
            flush_interval=options.flush_interval,
            max_steps=options.max_steps,
            max_chars=options.max_chars,
            user=options.user,
            avatar=options.avatar,
            answer_in_reply=options.answer_in_reply,
            prices=dict(options.prices),
            context_windows=context_windows(options.models),
            serialize_steps=options.serialize_steps,
            trace_target=options.trace_target,
            resume=options.resume,
            tools={getattr(tool, "name", str(tool)): tool for tool in options.tools},
        )


StepOptions.NAMES = tuple(name for name in StepOptions.param if name != "name")
