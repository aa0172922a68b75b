"""Pick a chat model from the environment: a hosted or local provider, else an offline one.

The examples call ``chat_model(offline)``: with ``OPENAI_API_KEY`` set they
run on OpenAI (``OPENAI_MODEL``), with ``ANTHROPIC_API_KEY`` on Anthropic
(``ANTHROPIC_MODEL``), with ``OLLAMA_MODEL`` on a local Ollama server
(``OLLAMA_HOST``), and otherwise on the scripted model they pass in. Each
provider's LangChain package is an optional extra, imported only when chosen.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel


@dataclass(frozen=True)
class Provider:
    """A chat model provider chosen by an environment variable."""

    name: str
    variable: str  # set: use this provider
    extra: str  # the optional dependency group that installs its package
    module: str
    cls: str
    model_variable: str
    default_model: str | None = None

    def model(self) -> BaseChatModel:
        """The provider's chat model, configured from the environment."""
        try:
            module = importlib.import_module(self.module)
        except ImportError as error:
            raise ImportError(
                f"{self.variable} is set, so the chat model is {self.name}'s, which needs "
                f"{self.module.replace('_', '-')}: pip install panel-langchain-steps[{self.extra}]"
            ) from error
        params: dict[str, Any] = {"model": os.environ.get(self.model_variable) or self.default_model}
        if self.extra == "ollama" and os.environ.get("OLLAMA_HOST"):
            params["base_url"] = os.environ["OLLAMA_HOST"]
        return getattr(module, self.cls)(**params)


#: In order of precedence: the first whose variable is set is used.
PROVIDERS = (
    Provider(
        "OpenAI", "OPENAI_API_KEY", "openai", "langchain_openai", "ChatOpenAI", "OPENAI_MODEL", "gpt-4.1-mini"
    ),
    Provider(
        "Anthropic",
        "ANTHROPIC_API_KEY",
        "anthropic",
        "langchain_anthropic",
        "ChatAnthropic",
        "ANTHROPIC_MODEL",
        "claude-haiku-4-5",
    ),
    Provider("Ollama", "OLLAMA_MODEL", "ollama", "langchain_ollama", "ChatOllama", "OLLAMA_MODEL"),
)


def provider() -> Provider | None:
    """The provider the environment selects, or None (offline)."""
    return next((p for p in PROVIDERS if os.environ.get(p.variable)), None)


def chat_model(offline: BaseChatModel) -> BaseChatModel:
    """The environment's provider model, or ``offline`` when no provider is configured.

    Raises `ImportError`, naming the extra to install, when the chosen
    provider's package is missing.
    """
    chosen = provider()
    return offline if chosen is None else chosen.model()


def model_label(model: BaseChatModel) -> str:
    """A short description of the model in use, e.g. "OpenAI gpt-4.1-mini" or "scripted (offline)"."""
    chosen = provider()
    name = getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__
    return f"{chosen.name} {name}" if chosen is not None else f"{name} (offline)"
