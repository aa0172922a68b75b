"""An agent's chat and its trace view side by side, both live from one handler.

The chat on the left shows each turn's steps and answer; the trace view on the
right shows the same runs from ``handler.trace``: a tree, a waterfall on a
shared time axis, totals (time, tokens, cost) and the selected run's detail.
Both follow the run as it streams. The Save button writes the record as JSON,
which ``panel-langchain-steps view FILE`` opens again later.

Run ``panel serve examples/agent_trace.py``. Offline it uses a scripted model;
set OPENAI_API_KEY, ANTHROPIC_API_KEY or OLLAMA_MODEL for a real one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import panel as pn
from long_agent import agent, model
from shared import ChatSession, graph_turn

from panel_langchain_steps import TraceView

#: Prices per million tokens, for the cost in the totals (the scripted model's are made up).
PRICES = {"scripted": (0.15, 0.60), "gpt-4.1-mini": (0.40, 1.60), "claude-haiku-4-5": (1.00, 5.00)}


class AgentTrace(pn.viewable.Viewer):
    """One browser session: the chat, and the trace view of its handler's record."""

    def __init__(self) -> None:
        super().__init__()
        self.session = ChatSession(
            graph_turn(agent),
            title="Chat and trace",
            about="Try *Check 12 servers*: the steps stream in the chat, the runs in the trace view.",
            model=model,
        )
        self.trace_view = TraceView(self.session.handler.trace, prices=PRICES)
        self.saved = pn.pane.Markdown("", margin=(0, 10))
        save = pn.widgets.Button(label="Save trace as JSON", css_classes=["save-trace"])
        save.on_click(lambda _: self.save())
        self._layout = pn.Row(
            self.session,
            pn.Column(pn.Row(save, self.saved), self.trace_view, sizing_mode="stretch_both"),
            sizing_mode="stretch_both",
        )

    def save(self) -> Path:
        """Write the record (secrets redacted) to a temporary file and say where."""
        path = Path(tempfile.mkdtemp()) / "trace.json"
        self.session.handler.trace.save(path)
        self.saved.object = f"Saved to `{path}`: open it with `panel-langchain-steps view {path}`"
        return path

    def __panel__(self) -> pn.Row:
        return self._layout


def create_app() -> AgentTrace:
    """A new page, for one browser session."""
    return AgentTrace()


if pn.state.served:
    create_app().servable(title="Chat and trace")
