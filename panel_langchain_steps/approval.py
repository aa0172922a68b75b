"""Human in the loop: a paused LangGraph run's request, decided in its step.

When a graph pauses at ``interrupt()`` (for example LangChain's
``HumanInTheLoopMiddleware`` before a sensitive tool), the paused step shows
the pending request with an `ApprovalPrompt`. A ``HumanInTheLoopMiddleware``
request gets one `ActionReview` per tool call in the batch, offering only the
decisions its ``allowed_decisions`` allow: **Approve**, **Edit** (a form built
from the tool's argument schema, validated before it is sent) and **Reject**
(with an optional message for the model). When every call is decided, the
prompt's value is ``{"decisions": [...]}`` in the calls' order. Any other
interrupt gets Approve and Reject, with the value True or False.

A run paused at several interrupts at once (parallel branches) is resumed
once, when all are decided (`Resumption`); the resumed run continues in the
same reply.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import panel as pn
import param
from panel.viewable import Viewer

from .render import markdown
from .safety import code_block, inline_text, plain_text, redact, shorten, to_json
from .schedule import in_background

REJECTION = "The user rejected this call."

#: Decisions offered when a request does not say which are allowed.
DECISIONS = ("approve", "edit", "reject")
_OUTCOMES = {"approve": "✅ **Approved**", "edit": "✏️ **Edited**", "reject": "❌ **Rejected**"}


def resume_value(request: Any, approved: bool) -> Any:
    """What to resume an interrupt with when every call gets the same yes or no.

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
    return "\n\n".join(describe_action(action) for action in actions)


def describe_action(action: Mapping[str, Any]) -> str:
    name = inline_text(str(action.get("name", "tool")))
    return f"**Approve call to {name}?**\n\n" + code_block(to_json(redact(action.get("args"))), "json")


def allowed_decisions(request: Mapping[str, Any], action: Mapping[str, Any]) -> list[str]:
    """The decisions the request's review config allows for ``action`` (all three when it says none)."""
    for config in request.get("review_configs") or []:
        if isinstance(config, Mapping) and config.get("action_name") == action.get("name"):
            allowed = [d for d in config.get("allowed_decisions") or [] if d in DECISIONS]
            return allowed or list(DECISIONS)
    return list(DECISIONS)


def argument_schema(tool: Any, args: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON schema of a tool's arguments: the tool's own (what the model sees), else inferred
    from the arguments the model wrote."""
    schema = getattr(tool, "tool_call_schema", None)
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        return schema.model_json_schema()
    if isinstance(schema, Mapping):
        return dict(schema)
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string"}
    properties = {
        name: {"type": kinds.get(type(value), "object" if isinstance(value, dict) else "array")}
        if isinstance(value, bool | int | float | str | dict | list)
        else {}
        for name, value in args.items()
    }
    return {"type": "object", "properties": properties, "required": list(args)}


def validate_arguments(tool: Any, args: dict[str, Any]) -> list[str]:
    """What is wrong with edited arguments by the tool's schema (empty when they are valid)."""
    schema = getattr(tool, "tool_call_schema", None)
    if isinstance(schema, type) and hasattr(schema, "model_validate"):
        from pydantic import ValidationError

        try:
            schema.model_validate(args)
        except ValidationError as error:
            return [
                f"{'.'.join(str(part) for part in item['loc']) or 'arguments'}: {item['msg']}"
                for item in error.errors()
            ]
    return []


class ArgumentsForm(Viewer):
    """A form for a tool call's arguments, one input per argument of its schema."""

    def __init__(self, schema: Mapping[str, Any], args: Mapping[str, Any], **params: Any):
        super().__init__(**params)
        properties = schema.get("properties") or {}
        self._required = set(schema.get("required") or [])
        self._kinds: dict[str, str] = {}
        self.inputs: dict[str, pn.widgets.Widget] = {}
        # Secrets are shown redacted; an input left as shown sends the model's value unchanged.
        self._kept: dict[str, tuple[Any, Any]] = {}
        for name in list(properties) + [name for name in args if name not in properties]:
            kind = str((properties.get(name) or {}).get("type", "object"))
            self._kinds[name] = kind
            value = args.get(name)
            shown = redact(value)
            self.inputs[name] = _input(shorten(name, 60), kind, shown)
            if shown != value:
                self._kept[name] = (self.inputs[name].value, value)
        self._layout = pn.Column(
            *self.inputs.values(), sizing_mode="stretch_width", css_classes=["edit-form"]
        )

    def __panel__(self) -> pn.Column:
        return self._layout

    def values(self) -> tuple[dict[str, Any], list[str]]:
        """The arguments as entered, and what is wrong with them (empty when nothing is)."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for name, widget in self.inputs.items():
            value = widget.value
            if name in self._kept and value == self._kept[name][0]:
                values[name] = self._kept[name][1]
                continue
            if self._kinds[name] in ("object", "array"):
                if not str(value or "").strip():
                    value = None
                else:
                    try:
                        value = json.loads(value)
                    except json.JSONDecodeError as error:
                        problems.append(f"{name}: not valid JSON ({error.msg})")
                        continue
            if value is None or value == "":
                if name in self._required and self._kinds[name] != "string":
                    problems.append(f"{name}: a value is required")
                elif name in self._required:
                    values[name] = ""
                continue
            values[name] = value
        return values, problems


def _input(label: str, kind: str, value: Any) -> pn.widgets.Widget:
    if kind == "boolean":
        return pn.widgets.Checkbox(label=label, value=bool(value))
    if kind == "integer" and (value is None or isinstance(value, int)):
        return pn.widgets.IntInput(label=label, value=value)
    if kind == "number" and (value is None or isinstance(value, int | float)):
        return pn.widgets.FloatInput(label=label, value=value)
    if kind == "string" and (value is None or isinstance(value, str)):
        text = value or ""
        widget = pn.widgets.TextAreaInput if "\n" in text or len(text) > 80 else pn.widgets.TextInput
        return widget(label=label, value=text, sizing_mode="stretch_width")
    return pn.widgets.TextAreaInput(
        label=label, value="" if value is None else to_json(value), sizing_mode="stretch_width"
    )


class ActionReview(Viewer):
    """One tool call of a request: its arguments and the decisions allowed for it."""

    action = param.Dict(doc="The call under review: ``{'name', 'args', 'description'}``.")

    allowed = param.List(default=list(DECISIONS), doc="The decisions offered.")

    decision = param.Dict(default=None, allow_None=True, doc="The decision made, once made.")

    always = param.Boolean(default=False, doc="Whether the user chose to always allow this tool.")

    def __init__(self, tool: Any = None, **params: Any):
        super().__init__(**params)
        self._tool = tool
        args = self.action.get("args") if isinstance(self.action.get("args"), dict) else {}
        self._buttons: dict[str, pn.widgets.Button] = {}
        for kind, label, color in (
            ("approve", "Approve", "success"),
            ("edit", "Edit", "primary"),
            ("reject", "Reject", "danger"),
        ):
            if kind in self.allowed:
                button = pn.widgets.Button(label=label, color=color, css_classes=[kind])
                button.on_click(lambda _, kind=kind: self._choose(kind))
                self._buttons[kind] = button
        self.always_box = pn.widgets.Checkbox(
            label=f"Always allow {shorten(str(self.action.get('name', 'this tool')), 60)} in this chat",
            visible="approve" in self.allowed,
            css_classes=["always-allow"],
        )
        self.reason = pn.widgets.TextInput(
            label="Reason for the model (optional)", visible=False, sizing_mode="stretch_width"
        )
        self.form = ArgumentsForm(argument_schema(tool, args), args) if "edit" in self.allowed else None
        self.send = pn.widgets.Button(label="Send", color="primary", visible=False, css_classes=["send"])
        self.send.on_click(lambda _: self._send())
        self._editing = pn.Column(visible=False, sizing_mode="stretch_width")
        if self.form is not None:
            self._editing.objects = [self.form]
        self._problems = markdown("", "approval-problems")
        self._outcome = markdown("", "approval-outcome")
        self._mode: str | None = None
        self._layout = pn.Column(
            markdown(describe_action(self.action)),
            pn.Row(*self._buttons.values()),
            self.always_box,
            self._editing,
            self.reason,
            self.send,
            self._problems,
            self._outcome,
            sizing_mode="stretch_width",
            css_classes=["action-review"],
        )

    def __panel__(self) -> pn.Column:
        return self._layout

    @property
    def buttons(self) -> dict[str, pn.widgets.Button]:
        """The decision buttons shown, by decision: "approve", "edit", "reject"."""
        return dict(self._buttons)

    def _choose(self, kind: str) -> None:
        if self.decision is not None:
            return
        if kind == "approve":
            self.always = self.always_box.value
            self._decide({"type": "approve"})
            return
        self._mode = kind
        self._editing.visible = kind == "edit"
        self.reason.visible = kind == "reject"
        self.send.visible = True

    def _send(self) -> None:
        if self.decision is not None or self._mode is None:
            return
        if self._mode == "reject":
            message = self.reason.value.strip()
            self._decide({"type": "reject", "message": message or REJECTION})
            return
        values, problems = self.form.values()
        problems = problems or validate_arguments(self._tool, values)
        if problems:
            self._problems.object = "**Not sent:**\n\n" + "\n\n".join(
                plain_text(problem, 500) for problem in problems
            )
            return
        self._problems.object = ""
        self._decide({"type": "edit", "edited_action": {"name": self.action.get("name"), "args": values}})

    def _decide(self, decision: dict[str, Any], note: str = "") -> None:
        for widget in [*self._buttons.values(), self.send, self.reason, self.always_box]:
            widget.disabled = True
        if self.form is not None:
            for widget in self.form.inputs.values():
                widget.disabled = True
        self._outcome.object = _OUTCOMES[decision["type"]] + note
        self.decision = decision


class ApprovalPrompt(Viewer):
    """A pending interrupt and its decisions: per tool call for ``HumanInTheLoopMiddleware``."""

    request = param.Parameter(doc="The interrupt's value (what the graph asks about).")

    decision = param.Selector(
        default=None,
        objects=[None, "approved", "rejected", "decided"],
        doc="""
        The outcome once everything is decided: "approved" or "rejected" when
        every call got that, else "decided".""",
    )

    value = param.Parameter(
        default=None, doc="The value to resume the interrupt with, once everything is decided."
    )

    tools = param.Dict(default={}, doc="Tools by name: their argument schemas build the edit forms.")

    always_allowed = param.Parameter(
        default=None,
        doc="""
        A set of tool names the user chose to always allow (shared by a
        chat's prompts): their calls are approved without asking, and a
        call approved with "Always allow" adds its tool.""",
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        request = self.request
        self.reviews: list[ActionReview] = []
        self._outcome = markdown("", "approval-outcome")
        actions = request.get("action_requests") if isinstance(request, dict) else None
        # HumanInTheLoopMiddleware(interrupt_mode="per_call"): one call, answered with one decision.
        self._per_call = isinstance(request, dict) and request.get("type") == "tool_approval"
        if self._per_call:
            actions = [request]
        if isinstance(actions, list):
            for action in actions:
                action = action if isinstance(action, dict) else {"name": str(action), "args": {}}
                review = ActionReview(
                    tool=self.tools.get(str(action.get("name"))),
                    action=action,
                    allowed=allowed_decisions(request, action),
                )
                review.param.watch(self._reviewed, "decision")
                self.reviews.append(review)
            self._layout = pn.Column(*self.reviews, sizing_mode="stretch_width", css_classes=["approval"])
            allowed = self.always_allowed if self.always_allowed is not None else set()
            for review in self.reviews:
                if review.action.get("name") in allowed and "approve" in review.allowed:
                    review._decide({"type": "approve"}, " (always allowed in this chat)")
            return
        self._approve = pn.widgets.Button(label="Approve", color="success", css_classes=["approve"])
        self._reject = pn.widgets.Button(label="Reject", color="danger", css_classes=["reject"])
        self._approve.on_click(lambda _: self.decide(True))
        self._reject.on_click(lambda _: self.decide(False))
        self._layout = pn.Column(
            markdown(describe(request)),
            pn.Row(self._approve, self._reject),
            self._outcome,
            sizing_mode="stretch_width",
            css_classes=["approval"],
        )

    def __panel__(self) -> pn.Column:
        return self._layout

    def decide(self, approved: bool) -> None:
        """Approve (or reject) everything pending at once."""
        if self.decision is not None:
            return
        if self.reviews:
            decision = {"type": "approve"} if approved else {"type": "reject", "message": REJECTION}
            for review in self.reviews:
                if review.decision is None:
                    review._decide(dict(decision))
            return
        self.decision = "approved" if approved else "rejected"
        self._approve.disabled = self._reject.disabled = True
        self._outcome.object = "✅ **Approved**" if approved else "❌ **Rejected**"
        self.value = approved

    def _reviewed(self, event: Any) -> None:
        """A call was decided: once all are, the value is every decision in the calls' order."""
        review = event.obj
        if review.always and self.always_allowed is not None:
            self.always_allowed.add(review.action.get("name"))
        if self.decision is not None or any(review.decision is None for review in self.reviews):
            return
        decisions = [review.decision for review in self.reviews]
        kinds = {decision["type"] for decision in decisions}
        outcome = {frozenset({"approve"}): "approved", frozenset({"reject"}): "rejected"}
        self.decision = outcome.get(frozenset(kinds), "decided")
        self.value = decisions[0] if self._per_call else {"decisions": decisions}


class Resumption:
    """The interrupts a graph run paused at, resumed together once each is decided.

    LangGraph takes one ``Command(resume=...)`` for all of a run's pending
    interrupts. Each interrupt's prompt is decided on its own, in any order;
    once the run has ended and every interrupt it paused at is decided,
    ``resume`` is called once: with the prompt's value when there is one
    interrupt, else with ``{interrupt_id: value, ...}``.
    """

    def __init__(self, resume: Callable[[Any], Any]) -> None:
        self.resume = resume
        self._values: dict[str, Any] = {}  # by interrupt id, once decided
        self._pending: dict[str, None] = {}  # every interrupt, in order, once the run has ended
        self._sent = False
        self._lock = threading.Lock()

    def add(self, interrupt_id: str, prompt: ApprovalPrompt) -> None:
        """The prompt that decides an interrupt: its value is taken once decided."""
        prompt.param.watch(lambda event: self._decided(interrupt_id, event.new), "value")
        if prompt.value is not None:
            # Decided as the prompt was made (always allowed): never resume inside the view's drawing.
            self._decided(interrupt_id, prompt.value, defer=True)

    def complete(self, interrupt_ids: Iterable[str]) -> None:
        """The run has ended, paused at these interrupts: resume if every one is decided.

        Called while the view draws, so a resume starts later, not inside it.
        """
        with self._lock:
            self._pending.update(dict.fromkeys(interrupt_ids))
        self._send(defer=True)

    def _decided(self, interrupt_id: str, value: Any, defer: bool = False) -> None:
        with self._lock:
            self._values[interrupt_id] = value
        self._send(defer)

    def _send(self, defer: bool) -> None:
        with self._lock:
            if self._sent or not self._pending or not self._pending.keys() <= self._values.keys():
                return
            self._sent = True
            values = {interrupt_id: self._values[interrupt_id] for interrupt_id in self._pending}
        value = next(iter(values.values())) if len(values) == 1 else values
        in_background(self.resume, value, defer=defer)
