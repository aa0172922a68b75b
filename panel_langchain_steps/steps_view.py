"""The steps view: a `Trace` shown as nested `ChatStep`s, rendered on its own tick.

The view subscribes to the trace and, at each tick (`schedule.Ticker`), first
brings its own model up to date with every run that changed (pure Python,
cheap), then makes the Panel changes that the page needs, in slices of
bounded time: a run that started and ended between two ticks costs one step
in its final state, not a replay of its history.

Long runs stay light: a step (or a reply) shows its newest ``max_steps``
child steps and a "Show N earlier steps" button for the rest, so the work per
tick, the page and the memory follow what is shown, not the trace's length.
A finished, collapsed step has a header only; its body is built from the run
record when the user opens it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import panel as pn
from panel.chat import ChatFeed
from panel.io.document import hold
from panel.io.state import set_curdoc
from panel.layout.base import ListLike
from panel.viewable import Viewable

from .answer import Answer, answer_of, may_answer, repeats
from .approval import ApprovalPrompt, Resumption
from .compat import models_found_once
from .history import history_text
from .material import step_type
from .placement import FeedPlacement, Placement, Reply, placement_for
from .render import PAUSE_TEXT, STEP_STATUS, Renderer, Step, markdown, status_text, turn_summary
from .schedule import Ticker, call_soon, on_loop_of, on_page_loop, served
from .stream import StepText
from .trace import FAILED, PAUSED, STOPPED, SUCCESS, RunRecord, Trace
from .usage import context_windows
from .visibility import GENERIC_NODES, Visibility, is_graph_node

#: While runs go on, new steps join the page after a pause this many times as long as the
#: last such pass took: drawing takes at most half of the event loop from the runs.
STEP_BACKOFF = 1

#: Longest `StepsView.flush` waits for a served page's event loop to draw (seconds).
FLUSH_WAIT = 10.0

#: A first guess at what one new step costs the event loop, all told: made, joined to the page
#: and sent. The view then learns it from its own passes.
FIRST_STEP_COST = 0.02


class Node:
    """Something that holds child steps: a layout (a turn's top level) or a shown run's step."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.children: list[Slot] = []
        self.extra = 0  # earlier steps the user asked to see beyond the window
        self.first = 0  # children before this one have no step: they left the window before
        self.button: pn.widgets.Button | None = None

    @property
    def layout(self) -> ListLike | None:
        raise NotImplementedError

    def own_objects(self) -> list[Viewable]:
        """What the layout holds before the child steps."""
        return []


class LayoutNode(Node):
    """The layout a turn's top-level steps go into; whatever else it holds stays first."""

    def __init__(self, layout: ListLike | None) -> None:
        super().__init__(0)
        self.target = layout  # None until the turn's reply exists
        self.managed: list[Viewable] = []
        self.reply: Reply | None = None  # in a feed, once drawn: shared by the turns it shows

    @property
    def layout(self) -> ListLike | None:
        return self.target

    def own_objects(self) -> list[Viewable]:
        return [obj for obj in self.target.objects if not any(obj is m for m in self.managed)]


class Slot(Node):
    """A shown run: its step (while on the page), its body and its child steps."""

    def __init__(self, run: RunRecord, parent: Node, turn: Turn) -> None:
        super().__init__(parent.depth + 1)
        self.run = run
        self.parent = parent
        self.turn = turn
        self.step: Step | None = None
        self.body: list[tuple[str, Any]] = []  # (key, pane or StepText) while built
        self.built = False
        #: The approval prompts of a paused run (made when the step is first drawn).
        self.prompts: list[ApprovalPrompt] = []
        self.asks = False
        #: Hidden runs below it whose progress events it shows.
        self.borrowed: list[RunRecord] = []

    @property
    def layout(self) -> ListLike | None:
        return self.step.content if self.step is not None else None

    def own_objects(self) -> list[Viewable]:
        panes: list[Viewable] = []
        for _, part in self.body:
            panes.extend(part.blocks if isinstance(part, StepText) else [part])
        return panes + list(self.prompts)


class Turn:
    """One root run (a turn of the chat) and where it is shown."""

    def __init__(self, root_id: str, node: LayoutNode, reply: Reply | None = None) -> None:
        self.root_id = root_id
        self.node = node
        self.reply = reply
        self.root: RunRecord | None = None
        #: The latest model run whose text may be the turn's answer.
        self.candidate: RunRecord | None = None
        self.paused = False  # a run of the turn paused at a LangGraph interrupt
        #: Its interrupts that ask for a decision, resumed together once all are decided.
        self.resumption: Resumption | None = None
        self.resumed = False  # a later run resumed it
        self.finished = False
        self.call: int | None = None  # the feed's callback call it started in


class StepsView:
    """Shows a `Trace` as live, nested steps in a target layout or chat feed."""

    #: The handler options the view takes (see `ChatStepCallbackHandler` for their docs).
    OPTIONS = (
        "context_exception",
        "verbosity",
        *Visibility.FILTERS,
        "title",
        "title_function",
        "collapsed_on_success",
        "flush_interval",
        "max_steps",
        "max_chars",
        "user",
        "avatar",
        "answer_in_reply",
        "resume",
        "serialize_steps",
        "prices",
        "models",
        "tools",
    )

    def __init__(self, trace: Trace, target: Any, report: Callable[..., None], **options: Any):
        self.trace = trace
        self._placement: Placement = placement_for(target)
        self._step_type = step_type(target)
        self.layout: ListLike = self._placement.layout
        self._report = report
        self._renderer = Renderer(report)
        self._ticker = Ticker(
            options["flush_interval"],
            self._placement.documents,
            self._render,
            report=lambda error: report(None, "refresh", error),
        )
        self._lock = threading.RLock()
        self._drawing = False
        self._closed = False  # its page is gone
        self._steps_due = 0.0
        self._step_cost = FIRST_STEP_COST
        self._allowance = math.inf  # steps this pass may make
        self._made = 0  # steps this pass made
        self._turns: dict[str, Turn] = {}
        self._anchors: dict[str, Slot | None] = {}
        self._slots: dict[str, Slot] = {}
        self._dirty_turns: dict[Turn, None] = {}
        self._dirty_nodes: dict[Node, None] = {}
        self._dirty_slots: dict[Slot, None] = {}
        #: Turns paused at an interrupt, waiting to be resumed (oldest first).
        self._paused: list[Turn] = []
        self._shared: LayoutNode | None = None
        self._visibility: Visibility | None = None
        self._last_call_turn: Turn | None = None
        #: Tools the user chose to always allow, for as long as the view lives (a chat session).
        self.always_allowed: set[str] = set()
        self.configure(**options)
        self._subscription = trace.subscribe(self._ticker.wake)
        if isinstance(target, ChatFeed):
            target.param.watch(self._feed_changed, "objects")
            self._placement.on_call_end(self._call_ended)
            self._placement.on_call_start(lambda: self._next_turn(self._send_ahead))
            self._placement.on_call_end(lambda: self._next_turn(self._withdraw))

    def configure(self, **options: Any) -> None:
        """Take the handler's options; they apply from the next tick."""
        with self._lock:
            visibility = Visibility.of(
                options["verbosity"],
                **{name: options[name] for name in Visibility.FILTERS},
            )
            self._renderer.param.update(
                context_exception=options["context_exception"],
                title_function=options["title_function"],
                title_template=options["title"],
                max_chars=options["max_chars"],
                prices=dict(options["prices"]),
                context_windows=context_windows(options["models"]),
            )
            self._collapse = options["collapsed_on_success"]
            self._window = options["max_steps"]
            self._answers = options["answer_in_reply"]
            self._serialize_steps = options["serialize_steps"]
            self._resume = options["resume"]
            self._tools = {getattr(tool, "name", str(tool)): tool for tool in options["tools"]}
            self._ticker.interval = options["flush_interval"]
            self._placement.configure(user=options["user"], avatar=options["avatar"])
            reshown = visibility != self._visibility and bool(self._turns)
            self._visibility = visibility
            if reshown:
                self._reshow()
        if reshown:
            self._ticker.wake()

    # -- the tick ------------------------------------------------------------------

    def flush(self) -> None:
        """Render everything that changed, now.

        On a served page the drawing happens on the page's event loop: called
        from another thread, it waits for the loop to draw (at most
        `FLUSH_WAIT` seconds; the drawing still happens after).
        """
        self._ticker.cancel()
        document = served(self._placement.documents())
        if document is None or on_loop_of(document):
            self._render_all()
            return
        drawn = threading.Event()

        def render_all() -> None:
            try:
                self._render_all()
            finally:
                drawn.set()

        on_page_loop(document, render_all, gone=drawn.set)
        drawn.wait(FLUSH_WAIT)

    def _render_all(self) -> None:
        while (due := self._render(None)) == 0:
            pass
        if due is not None:  # something is due later (a run that may be swept): the ticker sees to it
            self._ticker.wake()

    def close(self) -> None:
        """The page is gone (its session ended): render nothing more, whatever the trace records."""
        with self._lock:
            self._closed = True
            self._subscription.close()
        self._ticker.cancel()

    def _render(self, deadline: float | None) -> float | None:
        """Bring the view up to date; stop at ``deadline``. Seconds until more is due, or None."""
        with self._lock:
            if self._closed:
                return None
            orphans_due = self.trace.sweep()  # runs whose parent never came end, whatever the app does
            for run in self._subscription.take():
                if run.id in self.trace:
                    self._follow(run)
                elif run.id in self._turns:  # the trace forgot the turn
                    self._forget(self._turns[run.id], run)
            if not (self._dirty_turns or self._dirty_nodes or self._dirty_slots):
                return orphans_due
            started = time.monotonic()
            # A new step costs far more than the 20 ms check between steps can see (its models
            # are built and sent when the batch ends): a pass makes as many as its time allows.
            self._allowance = (
                math.inf if deadline is None else max(1, (deadline - started) // self._step_cost)
            )
            self._made = 0
            self._drawing = True
            try:
                with self._batch():
                    due = self._draw(deadline)
            finally:
                self._drawing = False
            if self._made and deadline is not None:
                cost = (time.monotonic() - started) / self._made
                self._step_cost = (self._step_cost + cost) / 2
            return _sooner(due, orphans_due)

    @contextmanager
    def _batch(self) -> Iterator[None]:
        """All changes in one document update, as the served session's document."""
        docs = self._placement.documents()
        if len(docs) != 1:
            yield
            return
        doc = docs[0]
        with (
            set_curdoc(doc) if doc.session_context is not None else nullcontext(),
            hold(doc),
            models_found_once(doc),
        ):
            yield

    # -- phase 1: the view's model ---------------------------------------------------

    def _follow(self, run: RunRecord) -> None:
        """Note what a changed run means for the view (no Panel work)."""
        turn = self._turn_of(run)
        if run.id not in self._anchors:
            self._place(run, turn)
        slot = self._slots.get(run.id)
        asks = run.status == PAUSED and self._resume is not None
        if (
            slot is None
            and (run.status == FAILED or asks)
            and self._anchors.get(run.id) is None
            and not self._shown_below(run)
        ):
            # A hidden run failed or asks for a decision, and no step shows it: give it a step,
            # so the error is not lost and the run can go on.
            slot = self._add_slot(run, turn, None)
        if slot is None and run.events:
            # A hidden run's progress shows in the nearest shown step above it.
            anchor = self._anchors.get(run.id)
            if isinstance(anchor, Slot):
                if run not in anchor.borrowed:
                    anchor.borrowed.append(run)
                    self._dirty_nodes[anchor.parent] = None  # a node with progress shows as itself
                self._dirty_slots[anchor] = None
        if slot is not None:
            self._dirty_slots[slot] = None
            if (run.ended or len(run.events) == 1) and is_graph_node(run):
                self._dirty_nodes[slot.parent] = None  # a failed node, or one with progress, shows as itself
            if asks and not self._shown_below(run):
                slot.asks = True
                if turn.resumption is None:
                    turn.resumption = Resumption(self._resume)
                # Steps above it that took its interrupt for their own (followed first, in the
                # same tick, before this step existed) leave the asking to it.
                above = slot.parent
                while isinstance(above, Slot) and _same_error(above.run, run):
                    above.asks = False
                    above = above.parent
        if may_answer(self.trace, run):
            if turn.candidate is None or run.start_time >= turn.candidate.start_time:
                turn.candidate = run
            if self._answers:
                self._dirty_turns[turn] = None
        if run.status == PAUSED:
            turn.paused = True
        turn.finished = False  # events may come after the root's end: its summary is redone
        if run.id == turn.root_id:
            turn.root = run
            if run.ended:
                self._dirty_turns[turn] = None

    def _turn_of(self, run: RunRecord) -> Turn:
        turn = self._turns.get(run.root_id)
        if turn is None:
            paused = self._resumed(run)
            if paused is not None:
                self._paused.remove(paused)
                paused.resumed = True
                turn = Turn(run.root_id, paused.node, paused.reply)
            elif isinstance(self._placement, FeedPlacement):
                turn = self._feed_turn(run)
            else:
                if self._shared is None:
                    self._shared = LayoutNode(self._placement.layout)
                turn = Turn(run.root_id, self._shared)
            self._turns[run.root_id] = turn
            self._dirty_turns[turn] = None
        return turn

    def _resumed(self, run: RunRecord) -> Turn | None:
        """The paused turn a new root run resumes (a LangGraph ``Command(resume=...)`` on its thread).

        Any other new run is a turn of its own, with its own reply, even while a turn is paused.
        """
        root = self.trace.get(run.root_id) or run
        if not self._paused or not root.resumes:
            return None
        thread = root.metadata.get("thread_id")
        same = [
            turn
            for turn in self._paused
            if turn.root is not None and turn.root.metadata.get("thread_id") == thread
        ]
        return (same or self._paused)[-1]

    def _feed_turn(self, run: RunRecord) -> Turn:
        """A new turn in a feed: one that starts in the same callback call as the last shares its reply."""
        root = self.trace.get(run.root_id) or run
        call = self._placement.call_at(root.start_time or run.start_time or time.time())
        last = self._last_call_turn
        if call is not None and last is not None and last.call == call:
            turn = Turn(run.root_id, last.node, last.reply)
        else:
            turn = Turn(run.root_id, LayoutNode(None))
        turn.call = call
        if call is not None:
            self._last_call_turn = turn
        return turn

    def _call_ended(self) -> None:
        """The feed's callback returned: its reply may be finished now."""
        with self._lock:
            if self._last_call_turn is not None:
                self._dirty_turns[self._last_call_turn] = None
        self._ticker.wake()

    def _place(self, run: RunRecord, turn: Turn) -> None:
        parent = self.trace.parent(run)
        if parent is not None and parent.id not in self._anchors:
            self._place(parent, self._turn_of(parent))
        anchor = self._anchors.get(parent.id) if parent is not None else None
        depth = anchor.depth + 1 if anchor is not None else 1
        if self._visibility.shows(run, depth, parent.tags if parent is not None else []):
            self._add_slot(run, turn, anchor)
        else:
            self._anchors[run.id] = anchor

    def _add_slot(self, run: RunRecord, turn: Turn, anchor: Slot | None) -> Slot:
        node: Node = anchor if anchor is not None else turn.node
        slot = Slot(run, node, turn)
        node.children.append(slot)
        self._anchors[run.id] = self._slots[run.id] = slot
        self._dirty_nodes[node] = None
        if isinstance(node, Slot):
            self._dirty_nodes[node.parent] = None  # it may have stood in for its one action
        return slot

    def _shown_below(self, run: RunRecord) -> bool:
        """Whether a shown descendant already shows the exception ``run`` ended with."""
        if run.error is None:
            return False
        stack = list(run.children)
        while stack:
            child = stack.pop()
            if _same_error(child, run) and child.id in self._slots:
                return True
            stack.extend(child.children)
        return False

    def _answer(self, node: LayoutNode) -> Answer | None:
        """The answer of the reply (or layout) that ``node`` is: the rule is `answer.answer_of`."""
        added = node.reply.added.object if node.reply is not None else ""
        turns = [(turn.root, turn.candidate) for turn in self._turns.values() if turn.node is node]
        return answer_of(turns, added or "")

    def _history(self, reply: Reply) -> str:
        """A reply as chat history: its answer as written, then the app's own text in it (and a
        summary of its steps before them, if asked)."""
        with self._lock:
            turns = [turn for turn in self._turns.values() if turn.reply is reply]
            answer = self._answer(turns[0].node) if turns else None
            said = answer.text if answer is not None else ""
            text = "\n\n".join(filter(None, [said, reply.added_text(said)]))
            return history_text(self.trace, [turn.root_id for turn in turns], text, self._serialize_steps)

    def _reshow(self) -> None:
        """Show every turn again under new display options, from its record (no Panel work here).

        Decisions already made in approval prompts are kept.
        """
        prompts = {run_id: slot.prompts for run_id, slot in self._slots.items() if slot.prompts}
        nodes = {turn.node: None for turn in self._turns.values()}
        for node in nodes:
            node.children, node.first, node.extra = [], 0, 0
        self._anchors.clear()
        self._slots.clear()
        self._dirty_slots.clear()
        self._dirty_nodes = nodes
        runs = [run for root_id in list(self._turns) for run in self.trace.runs_of(root_id)]
        for run in sorted(runs, key=lambda run: run.start_time or 0):
            self._follow(run)
        for run_id, kept in prompts.items():
            if run_id in self._slots:
                self._slots[run_id].prompts = kept

    # -- phase 2: Panel ----------------------------------------------------------

    def _draw(self, deadline: float | None) -> float | None:
        """Make the Panel changes; how long until more is due (None: nothing left).

        Changes that add components to the page (new steps) make Bokeh walk
        the whole page, so they are made at most once per `STEP_BACKOFF` times
        the last such pass took: the steps of a busy agent are added in
        batches, and those that have left the window by then cost nothing.
        Status and text changes are cheap patches and are never held back.
        """
        started = time.monotonic()
        for turn in list(self._dirty_turns):
            self._draw_turn(turn)
            del self._dirty_turns[turn]
        for slot in list(self._dirty_slots):
            if _late(deadline):
                return 0
            del self._dirty_slots[slot]
            if slot.step is not None:
                self._contained(self._draw_slot, slot)
        if self._dirty_nodes and (deadline is None or started >= self._steps_due or self._settled()):
            for node in sorted(self._dirty_nodes, key=lambda node: node.depth):
                if node.layout is not None and not self._contained(self._draw_node, node):
                    break
                self._dirty_nodes.pop(node, None)
                if _late(deadline):
                    break
            now = time.monotonic()
            self._steps_due = now + STEP_BACKOFF * (now - started)
        drawing = {node.turn for node in self._dirty_nodes if isinstance(node, Slot)}
        drawing.update(turn for turn in self._turns.values() if turn.node in self._dirty_nodes)
        for turn in self._turns.values():
            # A turn's summary says it is over once its steps are all on the page.
            if turn.root is not None and turn.root.ended and not turn.finished and turn not in drawing:
                self._finish(turn)
        if self._dirty_slots or self._dirty_turns:
            return 0
        if not self._dirty_nodes:
            return None
        return 0 if self._settled() else max(0.0, self._steps_due - time.monotonic())

    def _settled(self) -> bool:
        """Whether every turn has ended: nothing else is coming, so nothing is held back."""
        return all(turn.root is not None and turn.root.ended for turn in self._turns.values())

    def _contained(self, draw: Callable[..., Any], node: Node, *args: Any) -> Any:
        """Draw one node; a fault is reported and costs only that node."""
        try:
            return draw(node, *args)
        except Exception as error:
            self._report(getattr(node, "run", None), "drawing", error)
            return True

    def _draw_turn(self, turn: Turn) -> None:
        if not isinstance(self._placement, FeedPlacement):
            return
        node = turn.node
        if node.target is None:
            node.reply = self._placement.reply()
            node.reply.history = lambda reply=node.reply: self._history(reply)
            node.reply.added.param.watch(lambda _: self._added(turn), "object")
            node.target = node.reply.steps
            self._allowance = 0  # a new message is a pass's worth of work: its steps come next
            self._dirty_nodes[node] = None
        elif turn.root is not None and not turn.root.ended:
            node.reply.running()  # a paused turn's reply, continued
        turn.reply = node.reply
        self._draw_answer(turn)

    def _draw_answer(self, turn: Turn) -> None:
        """The reply's answer (what its turns produced, see `answer.py`), then the app's own text."""
        reply = turn.reply
        answer = self._answer(turn.node) if self._answers else None
        owner = answer.run if answer is not None else None
        if owner is not reply.owner:
            previous, reply.owner = reply.owner, owner
            reply.clear_answer()
            for run in (previous, owner):
                if run is not None and run.id in self._slots:
                    self._rebuild(self._slots[run.id])
                    self._dirty_slots[self._slots[run.id]] = None  # its title says where its text went
        if answer is not None:
            if reply.text is None:
                reply.text = StepText(lambda source: _appended(reply.answer, markdown(source)))
            reply.text.show(answer.text)
            if owner.status == STOPPED:
                reply.mark_stopped()
        reply.show_added(answer.text if answer is not None else "")

    def _added(self, turn: Turn) -> None:
        """The app streamed text into the turn's reply itself: show it (or not) at the next tick."""
        with self._lock:
            if turn.root_id in self._turns:
                self._dirty_turns[turn] = None
        self._ticker.wake()

    def _finish(self, turn: Turn) -> None:
        if isinstance(self._placement, FeedPlacement) and (
            self._placement.calling(turn.call)
            or any(t.node is turn.node and (t.root is None or not t.root.ended) for t in self._turns.values())
        ):
            return  # the reply goes on: its callback call or another of its turns is still running
        turn.finished = True
        root = turn.root
        if turn.paused and not turn.resumed:
            if turn not in self._paused:
                self._paused.append(turn)  # its resumed run continues in its reply
            if turn.resumption is not None:
                # From the record, not from what the view has followed so far: the whole turn has ended.
                paused = [run for run in self.trace.runs_of(turn.root_id) if run.status == PAUSED]
                turn.resumption.complete(i for run in paused for i in run.interrupts)
        self._placement.await_decision(bool(self._paused) and self._resume is not None)
        if turn.reply is not None:
            self._placement.keep_in_view(turn.reply)
            shown = [
                slot
                for slot in self._slots.values()
                if slot.turn.reply is turn.reply and self._action(slot) is slot
            ]
            runs = [
                run
                for t in self._turns.values()
                if t.reply is turn.reply
                for run in self.trace.runs_of(t.root_id)
            ]
            numbers = turn_summary(runs, self._renderer.prices)
            summary = f"{PAUSE_TEXT if turn.paused else status_text(root)} · {numbers}"
            # Steps that failed of their own accord (not by a shown child's failure).
            failed = [slot for slot in shown if slot.run.status == FAILED and not self._shown_below(slot.run)]
            turn.reply.finish(
                len(shown),
                summary,
                collapse=root.status == SUCCESS and not turn.paused,
                failed=0 if root.status == FAILED else len(failed),
            )

    def _draw_node(self, node: Node, create: bool = True) -> bool:
        """Put the node's visible child steps in its layout; False if some are still to be made.

        Missing steps are made newest first, as many as the pass allows (none
        with ``create=False``).
        """
        if isinstance(node, Slot) and node.asks and not node.prompts:
            for interrupt_id, request in node.run.interrupts.items():
                prompt = ApprovalPrompt(
                    request=request, tools=self._tools, always_allowed=self.always_allowed
                )
                node.turn.resumption.add(interrupt_id, prompt)
                node.prompts.append(prompt)
            if node.turn.reply is not None:
                self._placement.keep_in_view(node.turn.reply)  # the decision to make
        window = self._window + node.extra
        visible = node.children[-window:]
        start = len(node.children) - len(visible)
        for child in node.children[node.first : start]:
            self._drop(child)
        node.first = start
        actions = [self._action(child) for child in visible]
        done = True
        for child, action in zip(reversed(visible), reversed(actions), strict=True):
            if action is not child:
                self._drop_step(child)
            if action.step is None:
                if not create or self._made >= self._allowance:
                    done = False
                    continue
                self._create(action)
        shown = [action.step for action in actions if action.step is not None]
        hidden = len(node.children) - len(visible)
        managed = ([self._button(node, hidden)] if hidden else []) + shown
        objects = node.own_objects() + managed
        if isinstance(node, LayoutNode):
            node.managed = managed
        layout = node.layout
        if not _same(objects, layout.objects):
            layout.objects = objects
        return done

    def _action(self, slot: Slot) -> Slot:
        """The slot whose step shows ``slot``: a LangGraph node doing one action is that action.

        A node keeps a step of its own when it holds several steps, when it
        failed and its action did not, when it asks for approval, or when it
        reports progress of its own.
        """
        while (
            not self._visibility.show_glue
            and is_graph_node(slot.run)
            and len(slot.children) == 1
            and not slot.asks
            and not (slot.run.events or slot.borrowed)
            and (slot.run.status != FAILED or slot.children[0].run.status == FAILED)
        ):
            slot = slot.children[0]
        return slot

    def _title(self, slot: Slot) -> str:
        node = slot.parent
        within = None
        if isinstance(node, Slot) and node.run.name not in GENERIC_NODES and self._action(node) is slot:
            within = node.run.name
        return self._renderer.title(slot.run, within, _answered(slot))

    def _button(self, node: Node, hidden: int) -> pn.widgets.Button:
        more = min(hidden, self._window)
        label = f"Show {more} earlier step{'s' if more != 1 else ''} ({hidden:,} not shown)"
        if node.button is None:
            node.button = pn.widgets.Button(label=label, css_classes=["earlier-steps"], margin=(2, 8))
            node.button.on_click(lambda _: self._show_earlier(node))
        else:
            node.button.label = label
        return node.button

    def _show_earlier(self, node: Node) -> None:
        with self._lock:
            node.extra += self._window
            self._dirty_nodes[node] = None
        self.flush()

    def _create(self, slot: Slot) -> None:
        self._made += 1
        run = slot.run
        collapsed = self._collapsed(slot)
        slot.step = self._step_type(
            status=STEP_STATUS[run.status],
            default_title=self._title(slot),
            collapsed=collapsed,
            collapsed_on_success=False,
            body=lambda: [source for _, source in self._parts(slot)],
            text=lambda: [source for _, source in self._parts(slot, plain=True)],
            sizing_mode="stretch_width",
            margin=(4, 0, 4, 8),
            css_classes=[f"step-{run.kind}"],
        )
        slot.step.param.watch(lambda event: self._opened(slot, event.new), "collapsed")
        if not collapsed:
            self._build(slot)
        # Its own steps are made in this pass while it allows (before it joins the page).
        if not self._draw_node(slot):
            self._dirty_nodes[slot] = None

    def _collapsed(self, slot: Slot) -> bool:
        run = slot.run
        if slot.asks:
            return False
        return self._collapse and run.kind != "chain" and run.status in (SUCCESS, PAUSED)

    def _opened(self, slot: Slot, collapsed: bool) -> None:
        """A step was opened or closed: build its body, or let a finished one's go."""
        with self._lock:
            if not collapsed and not slot.built:
                self._build(slot)
            elif collapsed and slot.built and slot.run.ended:
                slot.body, slot.built = [], False
            else:
                return
            self._dirty_nodes[slot] = None
            if self._drawing or slot.step is None:
                return
            # Only this step changes now (what else is pending waits for its tick): a quick answer.
            with self._batch():
                if self._contained(self._draw_node, slot, False):
                    self._dirty_nodes.pop(slot, None)

    def _drop(self, slot: Slot) -> None:
        """The slot leaves the page: free its step and everything in it."""
        if slot.step is None and self._action(slot) is slot:
            return  # nothing of it is on the page
        self._drop_step(slot)
        for child in slot.children:
            self._drop(child)

    def _drop_step(self, slot: Slot) -> None:
        """Free the slot's own step (its child steps stay)."""
        slot.step, slot.body, slot.built, slot.button = None, [], False, None

    def _parts(self, slot: Slot, plain: bool = False) -> list[tuple[str, str]]:
        run = slot.run
        return self._renderer.body(
            run,
            shows_error=run.status == FAILED and not self._shown_below(run),
            answer_below=_answered(slot),
            plain=plain,
            events=_events(slot),
        )

    def _build(self, slot: Slot) -> None:
        slot.built = True
        slot.body = []
        self._update_body(slot)

    def _rebuild(self, slot: Slot) -> None:
        if slot.built:
            self._build(slot)
            self._dirty_nodes[slot] = None

    def _update_body(self, slot: Slot) -> bool:
        """Bring a built body up to date; True if panes were added or replaced."""
        parts = self._parts(slot)
        keys = [key for key, _ in slot.body]
        if keys != [key for key, _ in parts[: len(keys)]]:
            slot.body = []  # a part changed place (e.g. the text became the answer): start over
            keys = []
        before = len(slot.own_objects())
        for index, (key, source) in enumerate(parts):
            if index < len(keys):
                part = slot.body[index][1]
                if isinstance(part, StepText):
                    part.show(source)
                elif part.object != source:  # e.g. a tool call's arguments, still streaming
                    part.object = source
                continue
            if key.startswith("text:"):
                css = "step-reasoning" if key == "text:reasoning" else "step-message"
                part = StepText(lambda text, css=css: markdown(text, css))
                part.show(source)
            else:
                part = markdown(source)
            slot.body.append((key, part))
        return len(slot.own_objects()) != before or not keys

    def _draw_slot(self, slot: Slot) -> None:
        run = slot.run
        step = slot.step
        status = STEP_STATUS[run.status]
        title = self._title(slot)
        changes: dict[str, Any] = {}
        if step.status != status:
            changes["status"] = status
        if getattr(step, f"{status}_title") != title:
            changes[f"{status}_title"] = title
        if run.ended and step.status != status and self._collapsed(slot):
            changes["collapsed"] = True
        if slot.asks and not slot.prompts:
            changes["collapsed"] = False
            self._dirty_nodes[slot] = None
        if changes:
            step.param.update(**changes)
        if slot.built and not step.collapsed and self._update_body(slot):
            self._dirty_nodes[slot] = None
        elif slot.built and step.collapsed and run.ended:
            slot.body, slot.built = [], False
            self._dirty_nodes[slot] = None
        if slot in self._dirty_nodes and self._draw_node(slot, create=False):
            del self._dirty_nodes[slot]  # its own parts changed; new child steps wait for their pass

    # -- the feed ------------------------------------------------------------------

    def _feed_changed(self, event: Any) -> None:
        """Messages removed from the feed (or the feed cleared): forget their turns."""
        present = {id(obj) for obj in event.new}
        with self._lock:
            if self._closed:
                return
            for turn in list(self._turns.values()):
                message = turn.reply.message if turn.reply is not None else None
                if message is not None and id(message) not in present and turn.finished:
                    self._forget(turn, turn.root)
                    self.trace.forget(turn.root_id)
            before = {id(obj) for obj in event.old}
            added = [obj for obj in event.new if id(obj) not in before]
            if added and self._answers:
                self._drop_repeated_answer(added)

    def _drop_repeated_answer(self, added: list[Any]) -> None:
        """A message that the feed's callback returned and that repeats the reply's answer is removed.

        Apps written for Panel's former ``PanelCallbackHandler`` often return
        the answer from the callback too; it is shown once, in the reply.
        """
        for run in self._subscription.take():
            self._follow(run)
        turn = self._last_call_turn
        if turn is None or not self._placement.calling(turn.call):
            return
        answer = self._answer(turn.node)
        if answer is None or not answer.run.ended:
            return
        for message in added:
            shown = getattr(message, "object", None)
            shown = getattr(shown, "content", shown)
            if isinstance(shown, str) and repeats(answer.text, shown):
                self._placement.feed.remove(message)

    def _send_ahead(self) -> None:
        with self._lock, self._batch():
            self._placement.send_ahead()

    def _withdraw(self) -> None:
        self.flush()  # the callback's runs take the reply sent ahead, if any started
        with self._lock, self._batch():
            self._placement.withdraw()

    def _next_turn(self, change: Callable[[], None]) -> None:
        """Call ``change`` in the event loop's next turn (on a served page, with its session's lock)."""
        if not self._closed:
            call_soon(change, self._placement.documents())

    def _forget(self, turn: Turn, root: RunRecord | None) -> None:
        """Let a turn go (its message left the feed, or the trace forgot it): its steps leave the page."""
        del self._turns[turn.root_id]
        self._dirty_turns.pop(turn, None)
        for run in root.walk() if root is not None else ():
            self._anchors.pop(run.id, None)
            slot = self._slots.pop(run.id, None)
            if slot is not None:
                self._dirty_slots.pop(slot, None)
                self._dirty_nodes.pop(slot, None)
        if turn in self._paused:
            self._paused.remove(turn)
        if self._last_call_turn is turn:
            self._last_call_turn = None
        node = turn.node
        if node is self._shared:  # shared with the target's other turns: drawn again without it
            node.first = sum(1 for slot in node.children[: node.first] if slot.turn is not turn)
            node.children = [slot for slot in node.children if slot.turn is not turn]
            self._dirty_nodes[node] = None
        else:
            self._dirty_nodes.pop(node, None)


def _events(slot: Slot) -> list[dict[str, Any]]:
    """The progress events a step shows: its run's and those of hidden runs below it, in time order."""
    if not slot.borrowed:
        return slot.run.events
    return sorted(
        [*slot.run.events, *(e for run in slot.borrowed for e in run.events)], key=lambda e: e["time"]
    )


def _answered(slot: Slot) -> bool:
    """Whether the slot's run's text is its reply's answer (shown below the steps)."""
    reply = slot.turn.reply
    return reply is not None and reply.owner is slot.run


def _same(new: list[Viewable], old: list[Viewable]) -> bool:
    return len(new) == len(old) and all(a is b for a, b in zip(new, old, strict=True))


def _late(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() > deadline


def _appended(layout: ListLike, pane: Viewable) -> Viewable:
    layout.append(pane)
    return pane


def _sooner(due: float | None, other: float | None) -> float | None:
    """The sooner of two delays, where None is never."""
    return other if due is None else due if other is None else min(due, other)


def _same_error(run: RunRecord, other: RunRecord) -> bool:
    """Whether two runs ended with the same exception (it passed through both)."""
    if run.error is None or other.error is None:
        return False
    if "id" in run.error and "id" in other.error:
        return run.error["id"] == other.error["id"]
    return run.error == other.error
