"""The steps view's Panel side: the steps, bodies, buttons and replies its model asks for.

`StepsDrawing.draw` makes the Panel changes that the model's dirty sets call
for, within a slice's time: status and text changes first (cheap patches),
then new steps, as many as the slice's `StepBudget` allows. Finished,
collapsed steps with nothing inside them on the page are lines of a light
`StepHeaders`, not steps; a line the user opens becomes a step, open. A
step's body is built from the record when it is opened, and let go when it is
closed.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable
from typing import Any

import panel as pn
from panel.viewable import Viewable

from .approval import ApprovalPrompt, Resumption
from .material import step_type
from .navigator import Navigator
from .placement import Placement
from .render import PAUSE_TEXT, STEP_STATUS, Renderer, Step, markdown, status_text, turn_summary
from .schedule import StepBudget
from .step_bodies import StepBodies
from .step_headers import StepHeader, StepHeaders
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
        self.bodies = StepBodies(model, self.renderer)
        self.budget = StepBudget()
        self._step_type = step_type(target)
        #: Finished, collapsed steps are lines of a `StepHeaders`, which looks like Panel's own
        #: steps (a panel-material-ui chat's steps keep their own look).
        self._lines = self._step_type is Step
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
            elif slot.header is not None:
                self._contained(self._draw_header, slot)
        if model.dirty_nodes and (deadline is None or budget.adding_due(started) or model.settled()):
            for node in sorted(model.dirty_nodes, key=lambda node: node.depth):
                if isinstance(node, Slot) and node.header is not None:
                    self._contained(self._draw_header, node)  # a line that gained child steps
                elif node.layout is not None and not self._contained(self.draw_node, node):
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
            if self._light(action):
                if action.header is None:
                    self._drop_step(action)  # the step it had, if any, makes way for its line
                    action.header = self._header(action)
                continue
            action.header = None
            if action.step is None:
                if not create or not self.budget.may_add():
                    done = False
                    continue
                self._create(action)
        shown = self._grouped(node, actions)
        managed = ([self._navigator(node, start, count)] if count > window else []) + shown
        objects = node.own_objects() + managed
        if isinstance(node, LayoutNode):
            node.managed = managed
        layout = node.layout
        if not _same(objects, layout.objects):
            layout.objects = objects
        return done

    def _grouped(self, node: Node, actions: list[Slot]) -> list[Viewable]:
        """The steps on the page, in order: each run of lines in one `StepHeaders` (the node's
        own, reused in order)."""
        objects: list[Viewable] = []
        groups, node.groups = node.groups, []
        for lines, run in itertools.groupby(actions, key=lambda action: action.header is not None):
            if lines:
                group = groups.pop(0) if groups else self._group()
                group.show([action.header for action in run])
                node.groups.append(group)
                objects.append(group)
            else:
                objects.extend(action.step for action in run if action.step is not None)
        for group in groups:
            group.release()  # no longer on the page
        return objects

    def _group(self) -> StepHeaders:
        # The app's stylesheets for steps (see first-questions.md) style the lines too.
        return StepHeaders(line_css=[str(css) for css in Step.param.stylesheets.default])

    def _light(self, slot: Slot) -> bool:
        """Whether the step is a line of a `StepHeaders`: finished and drawn collapsed, nothing
        inside it on the page (no child steps, no prompts), not opened by the user."""
        return (
            self._lines
            and slot.run.ended
            and not slot.opened
            and not slot.children
            and not slot.prompts
            and self._collapsed(slot)
        )

    def _header(self, slot: Slot) -> StepHeader:
        run = slot.run
        return StepHeader(
            run.id,
            run.kind,
            self._title(slot),
            STEP_STATUS[run.status],
            body=functools.partial(self.bodies.sources, slot),
            text=functools.partial(self.bodies.sources, slot, plain=True),
            open=lambda: self._events.opened(slot, False),
        )

    def _draw_header(self, slot: Slot) -> None:
        if self._light(slot):
            slot.header.show(self._title(slot), STEP_STATUS[slot.run.status])
        else:  # it is a step again (it gained child steps, or asks for a decision)
            self.model.dirty_nodes[self.model.holder(slot)] = None

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
        collapsed = self._collapsed(slot) and not slot.opened
        slot.step = self._step_type(
            status=STEP_STATUS[run.status],
            default_title=self._title(slot),
            collapsed=collapsed,
            collapsed_on_success=False,
            body=functools.partial(self.bodies.sources, slot),
            text=functools.partial(self.bodies.sources, slot, plain=True),
            sizing_mode="stretch_width",
            margin=(4, 0, 4, 8),
            css_classes=[f"step-{run.kind}"],
        )
        slot.step.param.watch(lambda event: self._events.opened(slot, event.new), "collapsed")
        if not collapsed:
            self.bodies.build(slot)
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
        if not slot.drawn and self.model.action(slot) is slot:
            return  # nothing of it is on the page
        self._drop_step(slot)
        for child in slot.children:
            self._drop(child)

    def _drop_step(self, slot: Slot) -> None:
        """Free the slot's own step or line (its child steps stay)."""
        slot.step, slot.header, slot.navigator, slot.opened = None, None, None, False
        self.bodies.let_go(slot)

    def rebuild(self, slot: Slot) -> None:
        if slot.built:
            self.bodies.build(slot)
            self.model.dirty_nodes[slot] = None

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
        if slot.built and not step.collapsed and self.bodies.update(slot):
            dirty_nodes[slot] = None
        elif slot.built and step.collapsed and run.ended:
            self.bodies.let_go(slot)
            dirty_nodes[slot] = None
        if slot in dirty_nodes and self.draw_node(slot, create=False):
            del dirty_nodes[slot]  # its own parts changed; new child steps wait for their pass
        if self._light(slot):
            dirty_nodes[self.model.holder(slot)] = None  # its step makes way for a line

    def opened(self, slot: Slot, collapsed: bool) -> Node | None:
        """A step was opened or closed (by the user, or as its run ended): the node to draw now,
        or None if nothing changed.

        An opened line becomes a step, open, and an opened step builds its body;
        a finished step closed lets its body go, and may become a line again.
        """
        slot.opened = not collapsed
        if not collapsed and slot.header is not None:
            return self.model.holder(slot)
        if not collapsed and not slot.built:
            self.bodies.build(slot)
            return slot
        if collapsed and slot.built and slot.run.ended:
            self.bodies.let_go(slot)
            return self.model.holder(slot) if self._light(slot) else slot
        return None

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
