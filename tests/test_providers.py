"""Provider selection from the environment (offline by default, a clear error when an extra is
missing), and a real provider's message format, recorded from its LangChain integration."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessageChunk

from panel_langchain_steps.testing import ScriptedChatModel, step_tree

sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))  # the examples' own helper
from providers import PROVIDERS, chat_model, model_label


@pytest.fixture
def clean_env(monkeypatch):
    for provider in PROVIDERS:
        monkeypatch.delenv(provider.variable, raising=False)
    return monkeypatch


def test_offline_without_provider_variables(clean_env):
    offline = ScriptedChatModel(responses=["hi"], model_name="scripted")
    assert chat_model(offline) is offline
    assert model_label(offline) == "scripted (offline)"


@pytest.mark.parametrize(
    ("variable", "extra", "package"),
    [
        ("OPENAI_API_KEY", "openai", "langchain_openai"),
        ("ANTHROPIC_API_KEY", "anthropic", "langchain_anthropic"),
        ("OLLAMA_MODEL", "ollama", "langchain_ollama"),
    ],
)
def test_missing_extra_names_what_to_install(clean_env, variable, extra, package):
    clean_env.setenv(variable, "set")
    clean_env.setitem(sys.modules, package, None)  # the package is not installed
    with pytest.raises(
        ImportError, match=rf"{variable} is set.*pip install panel-langchain-steps\[{extra}\]"
    ):
        chat_model(ScriptedChatModel(responses=["hi"]))


def test_first_configured_provider_wins(clean_env):
    clean_env.setenv("ANTHROPIC_API_KEY", "set")
    clean_env.setenv("OLLAMA_MODEL", "llama3.2")
    clean_env.setitem(sys.modules, "langchain_anthropic", None)
    with pytest.raises(ImportError, match=r"\[anthropic\]"):
        chat_model(ScriptedChatModel(responses=["hi"]))


# -- a real provider's message format ---------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures"


def recorded(name: str) -> list[AIMessageChunk]:
    """Message chunks recorded from a provider's LangChain integration (see tests/fixtures/record_*.py)."""
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return [AIMessageChunk(**chunk) for chunk in data["chunks"]]


class Shown(BaseCallbackHandler):
    """After each token our handler recorded, what the model's step showed (a real callback)."""

    run_inline = True

    def __init__(self, handler):
        self.handler = handler
        self.texts: list[str] = []

    def on_llm_new_token(self, token, **kwargs):
        self.handler.flush()
        self.texts.append(step_tree(self.handler.layout)[0]["text"])


def test_anthropic_thinking_tool_use_and_usage(make_handler):
    """Anthropic streams thinking blocks, tool_use input as partial JSON, and cache usage:
    chunks as langchain-anthropic makes them from the API's events."""
    handler = make_handler()
    shown = Shown(handler)
    model = ScriptedChatModel(responses=[recorded("anthropic_stream.json")], model_name="claude-sonnet-4-5")
    message = None
    for chunk in model.stream("Weather in Paris?", config={"callbacks": [handler, shown]}):
        message = chunk if message is None else message + chunk
    assert message.tool_calls[0]["args"] == {"city": "Paris", "unit": "celsius"}
    handler.flush()
    (step,) = step_tree(handler.layout)
    text = step["text"]
    # Thinking is reasoning, apart from the text; the text is as written.
    reasoning, _, rest = text.partition("\nLet me check the **weather**.")
    assert reasoning == "The user wants the weather in Paris. I should call get_weather."
    # The call's arguments showed while the model wrote them, then parsed.
    assert any('{"city": "Par' in seen and "celsius" not in seen for seen in shown.texts)
    assert '"city": "Paris",\n  "unit": "celsius"' in rest
    assert "*Tokens: 2,460 in · 96 out · 2,048 cache read · claude\\-sonnet\\-4\\-5" in rest
