"""The steps view's Panel side: the steps, bodies, buttons and replies its model asks for.

`StepsDrawing.draw` makes the Panel changes that the model's dirty sets call
for, within a slice's time: status and text changes first (cheap patches),
then new steps, as many as the slice's `StepBudget` allows. A finished,
collapsed step holds its header only; its body is built from the record when
the user opens it, and let go when it is closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import panel as pn
from panel.viewable import Viewable

from .approval import ApprovalPrompt, Resumption
from .material import step_type
from .navigator import Navigator
from .placement import Placement
from .render import PAUSE_TEXT, STEP_STATUS, Renderer, markdown, status_text, turn_summary
from .schedule import StepBudget
from .steps_model import LayoutNode, Node, Slot, StepsModel, Turn
from .stream import StepText
from .trace import FAILED, PAUSED, STOPPED, SUCCESS
from .visibility import GENERIC_NODES


class StepsDrawing:
    """Makes and changes a model's steps in Panel, in slices of bounded time.

    ``events`` are the view's answers to what the user does on the page:
    ``opened(slot, collapsed)``, ``move(node, start)`` and ``find(node, text)``
    (the window bar of a long list), ``open_trace(reply)``, ``added(turn)`` (the
    app wrote into a reply) and ``history(reply)`` (a reply as chat history).
    """

    def __init__(
        self,
        model: StepsModel,
        placement: Placement,
        target: Any,
        report: Callable[..., None],
        events: Any,
    ) -> None:
        self.model = model
        self.placement = placement
        self.renderer = Renderer(model.options, report)
        self.budget = StepBudget()
        self._step_type = step_type(target)
        self._report = report
        self._events = events
        #: Tools the user chose to always allow, for as long as the view lives (a chat session).
        self.always_allowed: set[str] = set()

    @property
    def options(self) -> Any:
        return self.model.options

    def draw(self, deadline: float | None) -> float | None:
        """Make the Panel changes; how long until more is due (None: nothing left).

        Changes that add components to the page (new steps) make Bokeh walk
        the whole page, so they are held back as the budget says (see
        `StepBudget.adding_due`): the steps of a busy agent are added in
        batches, and those that have left the window by then cost nothing.
        Status and text changes are cheap patches and are never held back.
        """
        model, budget = self.model, self.budget
        started = time.monotonic()
        for turn in list(model.dirty_turns):
            self._draw_turn(turn)
            del model.dirty_turns[turn]
        for slot in list(model.dirty_slots):
            if _late(deadline):
                return 0
            del model.dirty_slots[slot]
            if slot.step is not None:
                self._contained(self._draw_slot, slot)
        if model.dirty_nodes and (deadline is None or budget.adding_due(started) or model.settled()):
            for node in sorted(model.dirty_nodes, key=lambda node: node.depth):
                if node.layout is not None and not self._contained(self.draw_node, node):
                    break
                model.dirty_nodes.pop(node, None)
                if _late(deadline):
                    break
            budget.added(started)
        drawing = {node.turn for node in model.dirty_nodes if isinstance(node, Slot)}
        drawing.update(turn for turn in model.turns.values() if turn.node in model.dirty_nodes)
        for turn in list(model.turns.values()):
            # A turn's summary says it is over once its steps are all on the page.
            if turn.root is not None and turn.root.ended and not turn.finished and turn not in drawing:
                self._finish(turn)
        if model.dirty_slots or model.dirty_turns:
            return 0
        if not model.dirty_nodes:
            return None
        return 0 if model.settled() else budget.until_adding()

    def _contained(self, draw: Callable[..., Any], node: Node, *args: Any) -> Any:
        """Draw one node; a fault is reported and costs only that node."""
        try:
            return draw(node, *args)
        except Exception as error:
            self._report(getattr(node, "run", None), "drawing", error)
            return True

    # -- replies -----------------------------------------------------------------------

    def _draw_turn(self, turn: Turn) -> None:
        node = turn.node
        if self.placement.open_reply(turn):  # a new message is a slice's worth of work
            node.reply.history = lambda reply=node.reply: self._events.history(reply)
            node.reply.added.param.watch(lambda _: self._events.added(turn), "object")
            node.reply.trace_button.on_click(lambda _, reply=node.reply: self._events.open_trace(reply))
            self.budget.stop_adding()  # its steps come next
            self.model.dirty_nodes[node] = None
        turn.reply = node.reply
        if turn.reply is not None:
            self._draw_answer(turn)

    def _draw_answer(self, turn: Turn) -> None:
        """The reply's answer (what its turns produced, see `answer.py`), then the app's own text."""
        reply = turn.reply
        answer = self.model.answer(turn.node) if self.options.answer_in_reply else None
        owner = answer.run if answer is not None else None
        if owner is not reply.owner:
            previous, reply.owner = reply.owner, owner
            reply.clear_answer()
            for run in (previous, owner):
                if run is not None and run.id in self.model.slots:
                    self.rebuild(self.model.slots[run.id])
                    self.model.dirty_slots[self.model.slots[run.id]] = None  # its title says where
        if answer is not None:
            if reply.text is None:
                reply.text = StepText(lambda source: _appended(reply.answer, markdown(source)))
            reply.text.show(answer.text)
            if owner.status == STOPPED:
                reply.mark_stopped()
        reply.show_added(answer.text if answer is not None else "")

    def _finish(self, turn: Turn) -> None:
        model = self.model
        if self.placement.reply_goes_on(turn, model.turns_of(turn.node)):
            return
        turn.finished = True
        root = turn.root
        if turn.paused and not turn.resumed:
            if turn not in model.paused:
                model.paused.append(turn)  # its resumed run continues in its reply
            if turn.resumption is not None:
                # From the record, not from what the view has followed so far: the whole turn has ended.
                paused = [run for run in model.trace.runs_of(turn.root_id) if run.status == PAUSED]
                turn.resumption.complete(i for run in paused for i in run.interrupts)
        self.placement.await_decision(bool(model.paused) and self.options.resume is not None)
        if turn.reply is None:
            return
        self.placement.keep_in_view(turn.reply)
        turns = [t for t in model.turns.values() if t.reply is turn.reply]
        shown = [slot for slot in model.slots.values() if slot.turn in turns and model.action(slot) is slot]
        runs = [run for t in turns for run in model.trace.runs_of(t.root_id)]
        summary = (
            f"{PAUSE_TEXT if turn.paused else status_text(root)} · {turn_summary(runs, self.options.prices)}"
        )
        # Steps that failed of their own accord (not by a shown child's failure).
        failed = [slot for slot in shown if slot.run.status == FAILED and not model.shown_below(slot.run)]
        turn.reply.finish(
            len(shown),
            summary,
            collapse=root.status == SUCCESS and not turn.paused,
            failed=0 if root.status == FAILED else len(failed),
        )

    # -- steps -------------------------------------------------------------------------

    def draw_node(self, node: Node, create: bool = True) -> bool:
        """Put the node's visible child steps in its layout; False if some are still to be made.

        Missing steps are made newest first, as many as the budget allows (none
        with ``create=False``).
        """
        if isinstance(node, Slot) and node.asks and not node.prompts:
            self._ask(node)
        window, count = self.options.max_steps, len(node.children)
        start = max(0, count - window) if node.start is None else min(node.start, max(0, count - window))
        visible = node.children[start : start + window]
        for index in node.shown:  # the window moved: what left it leaves the page
            if index < count and not start <= index < start + window:
                self._drop(node.children[index])
        node.shown = range(start, start + len(visible))
        actions = [self.model.action(child) for child in visible]
        done = True
        for child, action in zip(reversed(visible), reversed(actions), strict=True):
            if action is not child:
                self._drop_step(child)
            if action.step is None:
                if not create or not self.budget.may_add():
                    done = False
                    continue
                self._create(action)
        shown = [action.step for action in actions if action.step is not None]
        managed = ([self._navigator(node, start, count)] if count > window else []) + shown
        objects = node.own_objects() + managed
        if isinstance(node, LayoutNode):
            node.managed = managed
        layout = node.layout
        if not _same(objects, layout.objects):
            layout.objects = objects
        return done

    def _ask(self, slot: Slot) -> None:
        """A paused run's approval prompts, one per interrupt it waits on."""
        turn = slot.turn
        if turn.resumption is None:
            turn.resumption = Resumption(self.options.resume)
        for interrupt_id, request in slot.run.interrupts.items():
            prompt = ApprovalPrompt(
                request=request, tools=self.options.tools, always_allowed=self.always_allowed
            )
            turn.resumption.add(interrupt_id, prompt)
            slot.prompts.append(prompt)
        if turn.reply is not None:
            self.placement.keep_in_view(turn.reply)  # the decision to make

    def _title(self, slot: Slot) -> str:
        node = slot.parent
        within = None
        if isinstance(node, Slot) and node.run.name not in GENERIC_NODES and self.model.action(node) is slot:
            within = node.run.name
        return self.renderer.title(slot.run, within, slot.answered)

    def _navigator(self, node: Node, start: int, count: int) -> pn.Row:
        if node.navigator is None:
            node.navigator = Navigator(
                move=lambda start: self._events.move(node, start),
                find=lambda text: self._events.find(node, text),
            )
        node.navigator.show(start, self.options.max_steps, count, node.note)
        return node.navigator.layout

    def find(self, node: Node, text: str) -> int | None:
        """The next child whose step's title holds ``text``: after the last one found, else from
        the window's first (wrapping around); None if none does."""
        wanted, children = text.casefold(), node.children
        first = node.found + 1 if node.found is not None else node.shown.start
        for index in [*range(first, len(children)), *range(first)]:
            if wanted in self._title(self.model.action(children[index])).casefold():
                return index
        return None

    def _create(self, slot: Slot) -> None:
        self.budget.adding()
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
        slot.step.param.watch(lambda event: self._events.opened(slot, event.new), "collapsed")
        if not collapsed:
            self.build(slot)
        # Its own steps are made in this pass while it allows (before it joins the page).
        if not self.draw_node(slot):
            self.model.dirty_nodes[slot] = None

    def _collapsed(self, slot: Slot) -> bool:
        if slot.asks:
            return False
        run = slot.run
        return self.options.collapsed_on_success and run.kind != "chain" and run.status in (SUCCESS, PAUSED)

    def _drop(self, slot: Slot) -> None:
        """The slot leaves the page: free its step and everything in it."""
        if slot.step is None and self.model.action(slot) is slot:
            return  # nothing of it is on the page
        self._drop_step(slot)
        for child in slot.children:
            self._drop(child)

    def _drop_step(self, slot: Slot) -> None:
        """Free the slot's own step (its child steps stay)."""
        slot.step, slot.body, slot.built, slot.navigator = None, [], False, None

    # -- bodies --------------------------------------------------------------------------

    def _parts(self, slot: Slot, plain: bool = False) -> list[tuple[str, str]]:
        run = slot.run
        return self.renderer.body(
            run,
            shows_error=run.status == FAILED and not self.model.shown_below(run),
            answer_below=slot.answered,
            plain=plain,
            events=slot.events,
        )

    def build(self, slot: Slot) -> None:
        """Build the slot's body (it was opened, or drawn open)."""
        slot.built = True
        slot.body = []
        self._update_body(slot)

    def rebuild(self, slot: Slot) -> None:
        if slot.built:
            self.build(slot)
            self.model.dirty_nodes[slot] = None

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
        dirty_nodes = self.model.dirty_nodes
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
            dirty_nodes[slot] = None
        if changes:
            step.param.update(**changes)
        if slot.built and not step.collapsed and self._update_body(slot):
            dirty_nodes[slot] = None
        elif slot.built and step.collapsed and run.ended:
            slot.body, slot.built = [], False
            dirty_nodes[slot] = None
        if slot in dirty_nodes and self.draw_node(slot, create=False):
            del dirty_nodes[slot]  # its own parts changed; new child steps wait for their pass

    def opened(self, slot: Slot, collapsed: bool) -> bool:
        """A step was opened or closed: build its body, or let a finished one's go; False if
        nothing changed."""
        if not collapsed and not slot.built:
            self.build(slot)
        elif collapsed and slot.built and slot.run.ended:
            slot.body, slot.built = [], False
        else:
            return False
        return True

    def draw_now(self, node: Node, create: bool) -> None:
        """Draw one node now (a step the user opened, a window they moved)."""
        if node.layout is not None and self._contained(self.draw_node, node, create):
            self.model.dirty_nodes.pop(node, None)


def _same(new: list[Viewable], old: list[Viewable]) -> bool:
    return len(new) == len(old) and all(a is b for a, b in zip(new, old, strict=True))


def _late(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() > deadline


def _appended(layout: Any, pane: Viewable) -> Viewable:
    layout.append(pane)
    return pane
