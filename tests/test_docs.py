"""The README's quick start runs as written, and every option is documented."""

from __future__ import annotations

import re
from pathlib import Path

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.testing import answer_text, iter_steps, step_tree

ROOT = Path(__file__).parent.parent


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def ask_quick_start(page: Path, question: str, document):
    """Run a page's first Python block (a chat app), ask one question as the user; its reply."""
    namespace: dict = {}
    exec(compile(python_blocks(page)[0], str(page.relative_to(ROOT)), "exec"), namespace)
    chat, handler = namespace["chat"], namespace["handler"]
    chat.get_root(document)
    namespace["respond"](question, "User", chat)
    handler.flush()
    (reply,) = chat.objects
    assert handler.open_runs == 0
    return reply


def test_readme_quick_start_runs(document):
    reply = ask_quick_start(ROOT / "README.md", "What is 1 + 2?", document)
    assert answer_text(reply) == "The sum is 3."
    steps = list(iter_steps(step_tree(reply)))
    names = [s["title"].split(" · done")[0] for s in steps]
    assert names == [
        "LangGraph",
        "Model scripted-model",
        "Tool add · 1, 2",
        "Model scripted-model · answer below",
    ]
    assert all(s["status"] == "success" for s in steps)


def test_docs_home_page_example_runs(document):
    reply = ask_quick_start(ROOT / "docs" / "index.md", "Hi", document)
    assert answer_text(reply) == "Hello!"


def test_every_option_is_documented():
    options = (ROOT / "docs" / "options.md").read_text()
    names = [name for name in ChatStepCallbackHandler.param if name != "name"]
    assert names
    missing = [name for name in names if f"`{name}`" not in options]
    assert not missing, f"docs/options.md does not document {missing}"


def test_docs_links_resolve():
    for page in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        for target in re.findall(r"\]\(([^)#]+?)\)", page.read_text()):
            if not target.startswith(("http://", "https://")):
                assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


async def test_notebook_quick_start_runs(document):
    (block,) = [b for b in python_blocks(ROOT / "docs" / "first-questions.md") if "pn.extension()" in b]
    namespace: dict = {}
    exec(compile(block, "first-questions.md", "exec"), namespace)
    chat, handler = namespace["chat"], namespace["handler"]
    chat.get_root(document)
    await namespace["respond"]("Hi", "User", chat)
    handler.flush()
    (reply,) = chat.objects
    assert answer_text(reply) == "Hello from a notebook."
