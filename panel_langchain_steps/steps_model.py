"""The steps view's model: which runs become which steps, in which turn, and what changed.

Plain Python, no Panel: `StepsModel.follow` takes a changed run record and
notes what it means for the page (a new slot for a shown run, a hidden run
anchored to its nearest shown ancestor, a turn's answer candidate, a paused
turn) in its dirty sets; the drawing (`steps_draw`) then makes the Panel
changes. A `Node` holds child slots (a turn's layout, or a shown run's
step); a `Slot` is a shown run; a `Turn` is a root run and where it shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .answer import Answer, answer_of, may_answer
from .options import ViewOptions
from .trace import FAILED, PAUSED, RunRecord, Trace
from .visibility import is_graph_node


class Node:
    """Something that holds child steps: a layout (a turn's top level) or a shown run's step."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.children: list[Slot] = []
        #: The first child of the window shown; None: the newest window (it follows the run).
        self.start: int | None = None
        #: The children whose steps may be on the page (the window last drawn).
        self.shown = range(0)
        self.navigator: Any = None  # the window bar, while shown
        self.note = ""  # what the window bar says besides its position ("no step matches")
        self.found: int | None = None  # the child the last search found: the next one looks after it
        #: The components that show its finished, collapsed child steps as lines, in order.
        self.groups: list[Any] = []

    @property
    def layout(self) -> Any:
        raise NotImplementedError

    def own_objects(self) -> list[Any]:
        """What the layout holds before the child steps."""
        return []


class LayoutNode(Node):
    """The layout a turn's top-level steps go into; whatever else it holds stays first."""

    def __init__(self, layout: Any) -> None:
        super().__init__(0)
        self.target = layout  # None until the turn's reply exists
        self.managed: list[Any] = []
        self.reply: Any = None  # in a feed, once drawn: shared by the turns it shows

    @property
    def layout(self) -> Any:
        return self.target

    def own_objects(self) -> list[Any]:
        return [obj for obj in self.target.objects if not any(obj is m for m in self.managed)]


class Slot(Node):
    """A shown run: its step (while on the page), its body and its child steps."""

    def __init__(self, run: RunRecord, parent: Node, turn: Turn) -> None:
        super().__init__(parent.depth + 1)
        self.run = run
        self.parent = parent
        self.turn = turn
        self.step: Any = None
        #: Its line in a `StepHeaders`, while it is shown as one instead of as a step.
        self.header: Any = None
        #: The user opened it (and has not closed it since).
        self.opened = False
        self.body: list[tuple[str, Any]] = []  # (key, pane or StepText) while built
        self.built = False
        #: The approval prompts of a paused run (made when the step is first drawn).
        self.prompts: list[Any] = []
        self.asks = False
        #: Hidden runs below it whose progress events it shows.
        self.borrowed: list[RunRecord] = []

    @property
    def layout(self) -> Any:
        return self.step.content if self.step is not None else None

    @property
    def drawn(self) -> bool:
        """Whether its step is on the page: as a step, or as a line of a `StepHeaders`."""
        return self.step is not None or self.header is not None

    def own_objects(self) -> list[Any]:
        panes: list[Any] = []
        for _, part in self.body:
            panes.extend(getattr(part, "blocks", None) or [part])
        return panes + list(self.prompts)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The progress events it shows: its run's and those of hidden runs below it, in time order."""
        if not self.borrowed:
            return self.run.events
        borrowed = (event for run in self.borrowed for event in run.events)
        return sorted([*self.run.events, *borrowed], key=lambda event: event["time"])

    @property
    def answered(self) -> bool:
        """Whether its run's text is its reply's answer (shown below the steps)."""
        reply = self.turn.reply
        return reply is not None and reply.owner is self.run


class Turn:
    """One root run (a turn of the chat) and where it is shown."""

    def __init__(self, root_id: str, node: LayoutNode, reply: Any = None, call: int | None = None) -> None:
        self.root_id = root_id
        self.node = node
        self.reply = reply
        self.call = call  # the feed's callback call it started in
        self.root: RunRecord | None = None
        #: The latest model run whose text may be the turn's answer.
        self.candidate: RunRecord | None = None
        self.paused = False  # a run of the turn paused at a LangGraph interrupt
        #: Its interrupts that ask for a decision, resumed together once all are decided.
        self.resumption: Any = None
        self.resumed = False  # a later run resumed it
        self.finished = False


#: Makes the turn of a new root run: ``new_turn(root_id, started)`` (see `placement`).
NewTurn = Callable[[str, float], Turn]


class StepsModel:
    """The steps a trace's runs become, and which of them changed since the last drawing."""

    def __init__(self, trace: Trace, options: ViewOptions, new_turn: NewTurn) -> None:
        self.trace = trace
        self.options = options
        self._new_turn = new_turn
        self.turns: dict[str, Turn] = {}
        self.slots: dict[str, Slot] = {}
        #: The nearest shown slot of every followed run (None: it stands at its turn's top level).
        self.anchors: dict[str, Slot | None] = {}
        self.dirty_turns: dict[Turn, None] = {}
        self.dirty_nodes: dict[Node, None] = {}
        self.dirty_slots: dict[Slot, None] = {}
        #: Turns paused at an interrupt, waiting to be resumed (oldest first).
        self.paused: list[Turn] = []

    @property
    def dirty(self) -> bool:
        return bool(self.dirty_turns or self.dirty_nodes or self.dirty_slots)

    def configure(self, options: ViewOptions) -> bool:
        """Take new options; True if every turn is shown anew (what is shown changed)."""
        reshown = options.visibility != self.options.visibility and bool(self.turns)
        self.options = options
        if reshown:
            self._reshow()
        return reshown

    # -- following the trace ---------------------------------------------------------

    def follow(self, run: RunRecord) -> None:
        """Note what a changed run means for the page; a run the trace forgot lets its turn go."""
        if run.id not in self.trace:
            if run.id in self.turns:
                self.forget(self.turns[run.id], run)
            return
        turn = self._turn_of(run)
        if run.id not in self.anchors:
            self._place(run, turn)
        slot = self.slots.get(run.id)
        asks = run.status == PAUSED and self.options.resume is not None
        if (
            slot is None
            and (run.status == FAILED or asks)
            and self.anchors.get(run.id) is None
            and not self.shown_below(run)
        ):
            # A hidden run failed or asks for a decision, and no step shows it: give it a step,
            # so the error is not lost and the run can go on.
            slot = self._add_slot(run, turn, None)
        if slot is None and run.events:
            # A hidden run's progress shows in the nearest shown step above it.
            anchor = self.anchors.get(run.id)
            if isinstance(anchor, Slot):
                if run not in anchor.borrowed:
                    anchor.borrowed.append(run)
                    self._stands_anew(anchor)  # a node with progress shows as itself
                self.dirty_slots[anchor] = None
        if slot is not None:
            self.dirty_slots[slot] = None
            if (run.ended or len(run.events) == 1) and is_graph_node(run):
                self._stands_anew(slot)  # a failed node, or one with progress, shows as itself
            if asks and not self.shown_below(run):
                slot.asks = True
                # Steps above it that took its interrupt for their own (followed first, in the
                # same tick, before this step existed) leave the asking to it.
                above = slot.parent
                while isinstance(above, Slot) and same_error(above.run, run):
                    above.asks = False
                    above = above.parent
        if may_answer(self.trace, run):
            if turn.candidate is None or run.start_time >= turn.candidate.start_time:
                turn.candidate = run
            if self.options.answer_in_reply:
                self.dirty_turns[turn] = None
        if run.status == PAUSED:
            turn.paused = True
        turn.finished = False  # events may come after the root's end: its summary is redone
        if run.id == turn.root_id:
            turn.root = run
            if run.ended:
                self.dirty_turns[turn] = None

    def forget(self, turn: Turn, root: RunRecord | None) -> None:
        """Let a turn go (its message left the feed, or the trace forgot it): its slots leave the page."""
        del self.turns[turn.root_id]
        self.dirty_turns.pop(turn, None)
        for run in root.walk() if root is not None else ():
            self.anchors.pop(run.id, None)
            slot = self.slots.pop(run.id, None)
            if slot is not None:
                self.dirty_slots.pop(slot, None)
                self.dirty_nodes.pop(slot, None)
        if turn in self.paused:
            self.paused.remove(turn)
        node = turn.node  # drawn again without the turn's steps
        node.children = [slot for slot in node.children if slot.turn is not turn]
        node.shown = range(len(node.children))  # positions moved: look at every child once
        self.dirty_nodes[node] = None

    def _turn_of(self, run: RunRecord) -> Turn:
        turn = self.turns.get(run.root_id)
        if turn is None:
            paused = self._resumed(run)
            if paused is not None:
                self.paused.remove(paused)
                paused.resumed = True
                turn = Turn(run.root_id, paused.node, paused.reply)
            else:
                root = self.trace.get(run.root_id) or run
                turn = self._new_turn(run.root_id, root.start_time or run.start_time)
            self.turns[run.root_id] = turn
            self.dirty_turns[turn] = None
        return turn

    def _resumed(self, run: RunRecord) -> Turn | None:
        """The paused turn a new root run resumes (a LangGraph ``Command(resume=...)`` on its thread).

        Any other new run is a turn of its own, with its own reply, even while a turn is paused.
        """
        root = self.trace.get(run.root_id) or run
        if not self.paused or not root.resumes:
            return None
        thread = root.metadata.get("thread_id")
        same = [
            turn
            for turn in self.paused
            if turn.root is not None and turn.root.metadata.get("thread_id") == thread
        ]
        return (same or self.paused)[-1]

    def _place(self, run: RunRecord, turn: Turn) -> None:
        parent = self.trace.parent(run)
        if parent is not None and parent.id not in self.anchors:
            self._place(parent, self._turn_of(parent))
        anchor = self.anchors.get(parent.id) if parent is not None else None
        depth = anchor.depth + 1 if anchor is not None else 1
        if self.options.visibility.shows(run, depth, parent.tags if parent is not None else []):
            self._add_slot(run, turn, anchor)
        else:
            self.anchors[run.id] = anchor

    def _add_slot(self, run: RunRecord, turn: Turn, anchor: Slot | None) -> Slot:
        node: Node = anchor if anchor is not None else turn.node
        slot = Slot(run, node, turn)
        node.children.append(slot)
        self.anchors[run.id] = self.slots[run.id] = slot
        self.dirty_nodes[node] = None
        if isinstance(node, Slot):
            self._stands_anew(node)  # it may have stood in for its one action
        return slot

    def _stands_anew(self, slot: Slot) -> None:
        """The slot may now show as itself, not as its one action (see `action`): its parent shows
        it anew, and its children's titles no longer say that they stand for it.

        Only children on the page are redrawn: its first (which may have stood for it) and those
        of its window, so a long list is not walked for each new child.
        """
        self.dirty_nodes[slot.parent] = None
        children = [slot.children[i] for i in sorted({0, *slot.shown}) if i < len(slot.children)]
        self.dirty_slots.update(dict.fromkeys(child for child in children if child.drawn))

    def _reshow(self) -> None:
        """Show every turn again under new display options, from its record.

        Decisions already made in approval prompts are kept.
        """
        prompts = {run_id: slot.prompts for run_id, slot in self.slots.items() if slot.prompts}
        nodes = {turn.node: None for turn in self.turns.values()}
        for node in nodes:
            node.children, node.start, node.shown = [], None, range(0)
        self.anchors.clear()
        self.slots.clear()
        self.dirty_slots.clear()
        self.dirty_nodes = nodes
        runs = [run for root_id in list(self.turns) for run in self.trace.runs_of(root_id)]
        for run in sorted(runs, key=lambda run: run.start_time or 0):
            self.follow(run)
        for run_id, kept in prompts.items():
            if run_id in self.slots:
                self.slots[run_id].prompts = kept

    # -- what the page shows -------------------------------------------------------------

    def shown_below(self, run: RunRecord) -> bool:
        """Whether a shown descendant already shows the exception ``run`` ended with."""
        if run.error is None:
            return False
        stack = list(run.children)
        while stack:
            child = stack.pop()
            if same_error(child, run) and child.id in self.slots:
                return True
            stack.extend(child.children)
        return False

    def action(self, slot: Slot) -> Slot:
        """The slot whose step shows ``slot``: a LangGraph node doing one action is that action.

        A node keeps a step of its own when it holds several steps, when it
        failed and its action did not, when it asks for approval, or when it
        reports progress of its own.
        """
        while (
            not self.options.visibility.show_glue
            and is_graph_node(slot.run)
            and len(slot.children) == 1
            and not slot.asks
            and not (slot.run.events or slot.borrowed)
            and (slot.run.status != FAILED or slot.children[0].run.status == FAILED)
        ):
            slot = slot.children[0]
        return slot

    def holder(self, slot: Slot) -> Node:
        """The node whose list of steps shows ``slot``'s step (it may stand for nodes above it)."""
        shown = slot
        while isinstance(shown.parent, Slot) and self.action(shown.parent) is slot:
            shown = shown.parent
        return shown.parent

    def turns_of(self, node: LayoutNode) -> list[Turn]:
        """The turns a layout (a reply) shows, oldest first."""
        return [turn for turn in self.turns.values() if turn.node is node]

    def answer(self, node: LayoutNode) -> Answer | None:
        """The answer of the reply (or layout) that ``node`` is: the rule is `answer.answer_of`."""
        added = node.reply.added.object if node.reply is not None else ""
        return answer_of([(turn.root, turn.candidate) for turn in self.turns_of(node)], added or "")

    def settled(self) -> bool:
        """Whether every turn has ended: nothing else is coming, so nothing is held back."""
        return all(turn.root is not None and turn.root.ended for turn in self.turns.values())


def same_error(run: RunRecord, other: RunRecord) -> bool:
    """Whether two runs ended with the same exception (it passed through both)."""
    if run.error is None or other.error is None:
        return False
    if "id" in run.error and "id" in other.error:
        return run.error["id"] == other.error["id"]
    return run.error == other.error
