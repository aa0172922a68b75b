"""Human in the loop: Approve and Reject buttons for a paused LangGraph run.

When a graph pauses at ``interrupt()`` (for example LangChain's
``HumanInTheLoopMiddleware`` before a sensitive tool), the paused step shows
the pending request with an `ApprovalPrompt`. A click calls the handler's
``resume`` function with the value to resume the graph with; the resumed run
continues in the same reply.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

import panel as pn
import param
from panel.viewable import Viewer

from .render import markdown
from .safety import code_block, inline_text, redact, to_json

log = logging.getLogger("panel_langchain_steps")

REJECTION = "The user rejected this call."


def resume_value(request: Any, approved: bool) -> Any:
    """What to resume an interrupt with.

    A ``HumanInTheLoopMiddleware`` request (``{"action_requests": [...]}``)
    gets one decision per action; any other interrupt gets ``approved``.
    """
    if isinstance(request, dict) and isinstance(request.get("action_requests"), list):
        decision = {"type": "approve"} if approved else {"type": "reject", "message": REJECTION}
        return {"decisions": [dict(decision) for _ in request["action_requests"]]}
    return approved


def describe(request: Any) -> str:
    """The pending request as safe Markdown: each tool call and its arguments."""
    actions = request.get("action_requests") if isinstance(request, dict) else None
    if not isinstance(actions, list):
        return "**Approval needed**\n\n" + code_block(to_json(redact(request)), "json")
    parts = []
    for action in actions:
        name = inline_text(str(action.get("name", "tool")))
        parts.append(
            f"**Approve call to {name}?**\n\n" + code_block(to_json(redact(action.get("args"))), "json")
        )
    return "\n\n".join(parts)


class ApprovalPrompt(Viewer):
    """A pending interrupt with Approve and Reject buttons."""

    request = param.Parameter(doc="The interrupt's value (what the graph asks about).")

    decision = param.Selector(
        default=None, objects=[None, "approved", "rejected"], doc="The user's decision, once made."
    )

    resume = param.Callable(doc="Called with the value to resume the graph with.")

    def __init__(self, **params: Any):
        super().__init__(**params)
        self._approve = pn.widgets.Button(label="Approve", color="success", css_classes=["approve"])
        self._reject = pn.widgets.Button(label="Reject", color="danger", css_classes=["reject"])
        self._approve.on_click(lambda _: self.decide(True))
        self._reject.on_click(lambda _: self.decide(False))
        self._outcome = markdown("", "approval-outcome")
        self._layout = pn.Column(
            markdown(describe(self.request)),
            pn.Row(self._approve, self._reject),
            self._outcome,
            sizing_mode="stretch_width",
            css_classes=["approval"],
        )

    def __panel__(self) -> pn.Column:
        return self._layout

    def decide(self, approved: bool) -> None:
        """Record the decision (once) and resume the graph with it."""
        if self.decision is not None:
            return
        self.decision = "approved" if approved else "rejected"
        self._approve.disabled = self._reject.disabled = True
        self._outcome.object = "✅ **Approved**" if approved else "❌ **Rejected**"
        _call_soon(self.resume, resume_value(self.request, approved))


def _call_soon(function: Callable[[Any], Any], value: Any) -> None:
    """Run ``function(value)`` without blocking the caller's event loop.

    A coroutine function runs as a task on the running loop; a plain function
    in a thread when a loop is running (so the page keeps updating), else now.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if inspect.iscoroutinefunction(function):
        if loop is None:
            asyncio.run(function(value))
        else:
            loop.create_task(function(value))
    elif loop is None:
        function(value)
    else:
        threading.Thread(target=_logged, args=(function, value), daemon=True).start()


def _logged(function: Callable[[Any], Any], value: Any) -> None:
    try:
        function(value)
    except BaseException:
        log.exception("panel-langchain-steps: resuming the graph failed")
