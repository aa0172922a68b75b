"""What `compat` reads of Panel's private attributes still means what the package needs, on the
oldest (Python 3.11 run) and the newest (Python 3.12 run) supported Panel; and nothing outside
`compat` touches a private attribute of Panel or Bokeh."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import panel as pn
import pytest
from conftest import until
from packaging.version import Version
from panel.chat import ChatInterface, ChatStep

from panel_langchain_steps import compat

PACKAGE = Path(compat.__file__).parent
#: Panel and Bokeh classes whose private attributes (their instances') only `compat` may touch.
PANEL_CLASSES = (pn.chat.ChatFeed, pn.chat.ChatInterface, pn.chat.ChatMessage, ChatStep, pn.Card, pn.Column)


def test_documents_of_a_rendered_component(document):
    column = pn.Column("hi")
    assert compat.documents_of(column) == []
    column.get_root(document)
    assert compat.documents_of(column) == [document]


async def test_callback_states_of_a_feed_while_its_callback_runs(document):
    release = asyncio.Event()
    seen: list[str] = []

    async def respond(contents, user, instance):
        seen.append(compat.callback_state(instance))
        await release.wait()

    chat = ChatInterface(callback=respond)
    chat.get_root(document)
    changes: list[str] = []
    compat.watch_callback_state(chat, changes.append)
    assert compat.callback_state(chat) == "idle"
    chat.send("hi")
    await until(lambda: seen, "the callback ran")
    assert seen == ["running"] and seen[0] in compat.BUSY_STATES
    release.set()
    await until(lambda: changes and changes[-1] == "idle", "the callback ended")
    assert changes[0] == "running"


async def test_a_stopped_callback_says_stopped(document):
    async def respond(contents, user, instance):
        await asyncio.sleep(60)

    chat = ChatInterface(callback=respond)
    chat.get_root(document)
    changes: list[str] = []
    compat.watch_callback_state(chat, changes.append)
    chat.send("hi")
    await until(lambda: "running" in changes, "the callback ran")
    chat.stop()
    await until(lambda: "stopped" in changes, "the feed said the callback stopped")


def test_models_are_found_once_at_the_end_of_a_batch(document):
    column = pn.Column("first")
    root = column.get_root(document)
    document.add_root(root)
    with compat.models_found_once(document):
        column.append("second")
        with compat.models_found_once(document):  # nested: still deferred to the outer end
            column.append("third")
        column.append("fourth")
        added = root.children[1:]
        assert len(added) == 3
        assert all(document.get_model_by_id(model.id) is None for model in added)
    assert all(document.get_model_by_id(model.id) is model for model in added)
    column.append("fifth")  # outside a batch, Bokeh finds it at once again
    assert document.get_model_by_id(root.children[-1].id) is root.children[-1]


@pytest.mark.parametrize("step_type", [compat.PatchingChatStep, ChatStep])
def test_a_patching_step_changes_status_and_title_by_patches(document, step_type):
    step = step_type(running_title="Tool add · running…", success_title="Tool add · done", status="running")
    document.add_root(step.get_root(document))
    changed: list[str] = []
    document.on_change(lambda event: changed.append(getattr(event, "attr", type(event).__name__)))
    step.status = "success"
    step.success_title = "Tool add · done in 1.0 s"
    assert step.title == "Tool add · done in 1.0 s"
    assert changed
    rebuilt = {"children", "objects", "object"} & set(changed)  # new Bokeh models, not patches
    if step_type is compat.PatchingChatStep:
        assert not rebuilt
    else:  # the control: Panel's own step builds a new badge (on Panel 1.9 its badge is text)
        assert bool(rebuilt) == (Version(pn.__version__) >= Version("1.10"))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_panel_or_bokeh_attribute_outside_compat():
    """Outside `compat`, no private name that Panel or Bokeh defines and the package does not is
    read, imported or named as a string (``feed._chat_log``, ``watch(..., "_callback_state")``)."""
    from bokeh.document import Document
    from panel.io.state import state

    modules = {path.name: ast.parse(path.read_text()) for path in sorted(PACKAGE.glob("*.py"))}
    own = set()  # private names the package's own classes and modules define
    for name, tree in modules.items():
        if name == "compat.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and _private(node.name):
                own.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                own.add(node.target.id)
    theirs = {
        name
        for owner in (*(cls() for cls in PANEL_CLASSES), Document(), state, pn, pn.io)
        for name in dir(owner)
        if _private(name) and name not in own
    }
    offenders = []
    for name, tree in modules.items():
        if name == "compat.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("panel", "bokeh")):
                offenders += [
                    f"{name}: from {node.module} import {a.name}" for a in node.names if _private(a.name)
                ]
            if isinstance(node, ast.Attribute) and node.attr in theirs:
                offenders.append(f"{name}:{node.lineno}: .{node.attr}")
            if isinstance(node, ast.Constant) and node.value in theirs:
                offenders.append(f"{name}:{node.lineno}: {node.value!r}")
    assert offenders == []
    # The guard sees what it is for: compat's own reads are Panel's privates.
    assert {"_callback_state", "_chat_log"} <= theirs
