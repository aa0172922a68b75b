"""A step's body: Markdown panes made from its run's record while the step is open.

The parts (input, output, text, tool calls, usage, events, the error) come
from the `Renderer`, so a body can be built when its step is opened, brought
up to date part by part while its run goes on, and let go when it is closed.
"""

from __future__ import annotations

from .render import Renderer, markdown
from .steps_model import Slot, StepsModel
from .stream import StepText
from .trace import FAILED


class StepBodies:
    """Builds and updates steps' bodies (a slot's ``body``) from their runs' records."""

    def __init__(self, model: StepsModel, renderer: Renderer) -> None:
        self.model = model
        self.renderer = renderer

    def sources(self, slot: Slot, plain: bool = False) -> list[str]:
        """The body's Markdown parts (or, ``plain``, its readable text), built or not."""
        return [source for _, source in self._parts(slot, plain)]

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
        self.update(slot)

    def let_go(self, slot: Slot) -> None:
        """Let the slot's body go (its step closed, or left the page): it is built again when opened."""
        slot.body, slot.built = [], False

    def update(self, slot: Slot) -> bool:
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
