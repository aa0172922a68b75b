"""Provider selection from the environment: offline by default, a clear error when an extra is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from panel_langchain_steps.testing import ScriptedChatModel

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
