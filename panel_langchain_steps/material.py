"""panel-material-ui chats: steps and reply cards that look like that library's own.

Panel is moving its chat components to ``panel-material-ui`` (holoviz/panel#8342).
When the handler's target is one of that library's ``ChatFeed``, ``ChatInterface``
or ``ChatMessage``, each step is a ``panel_material_ui.ChatStep`` and a reply's
card of steps a ``panel_material_ui.Card``; with Panel's own chat components
(or without panel-material-ui installed), Panel's.

Those two are React components, and Panel's React components can miss a change
of their children made while they mount: the browser keeps showing the
children they mounted with (none), though the server and the browser's models
have the new ones (a reply's card opened empty in 5 of 25 served turns). So
neither's children ever change: each holds one column from the start, and
what it shows goes into that column.
"""

from __future__ import annotations

import functools
from typing import Any

import panel as pn

from .compat import material_chat_step
from .render import Step


def is_material(target: Any) -> bool:
    """Whether ``target`` is a panel-material-ui component."""
    return any(cls.__module__.startswith("panel_material_ui") for cls in type(target).__mro__)


def step_type(target: Any) -> type:
    """The step class for a handler's target: panel-material-ui's look for its chats."""
    return material_step() if is_material(target) else Step


def card_type(target: Any) -> type:
    """The card class for a reply's steps in ``target``."""
    if is_material(target):
        import panel_material_ui

        return panel_material_ui.Card
    return pn.Card


@functools.cache
def material_step() -> type:
    """`Step`'s counterpart built on ``panel_material_ui.ChatStep`` (made on first use)."""

    class MaterialStep(material_chat_step()):
        """A run's step drawn as panel-material-ui's ``ChatStep``; its body is built when opened."""

        body_text = Step.body_text
        serialize = Step.serialize

        def __init__(self, **params: Any) -> None:
            #: What the step shows (its body and child steps) goes here, never into the step itself.
            self.content = pn.Column(sizing_mode="stretch_width", margin=0)
            super().__init__(self.content, **params)

    return MaterialStep
