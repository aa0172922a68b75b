"""Untrusted text made inert: Markdown without raw HTML, escaped titles,
redacted secrets and bounded sizes.

Text from models, tools, documents, errors and run names is written by
whoever can put text in front of an agent. Nothing here lets it become markup
that runs, restyles or covers the page.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

_SECRET_KEY = re.compile(
    r"(api[-_]?key|apikey|token|secret|password|passwd|authorization|auth|credential|"
    r"private[-_]?key|session[-_]?id|cookie)",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"(sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,}"
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|AIza[0-9A-Za-z_\-]{30,}"
    r"|hf_[A-Za-z0-9]{20,}"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]{16,}=*)"
)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~])")


def escape_html(text: object) -> str:
    """Text for an HTML context (titles): every markup character escaped."""
    return html.escape(str(text), quote=True)


def escape_markdown(text: str) -> str:
    """Text that Markdown shows literally, with no formatting of its own."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def redact_text(text: str) -> str:
    """Replace values shaped like well-known API keys and bearer tokens."""
    return _SECRET_VALUE.sub(REDACTED, text)


def redact(value: Any) -> Any:
    """A copy of ``value`` with secret-named keys and secret-shaped strings redacted."""
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and _SECRET_KEY.search(key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def clip(text: str, limit: int | None) -> tuple[str, str]:
    """``text`` cut to ``limit`` characters, and a Markdown note of what was left out."""
    if limit is None or len(text) <= limit:
        return text, ""
    return text[:limit], f"\n\n*… {len(text) - limit:,} more characters not shown*"


def truncate(text: str, limit: int | None) -> str:
    """Cut ``text`` to ``limit`` characters with a visible note of what was left out."""
    shown, note = clip(text, limit)
    return shown + note


def code_block(text: str, language: str = "") -> str:
    """A fenced code block that the text cannot close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def to_json(value: Any) -> str:
    """Readable JSON for structured data, falling back to ``str`` for the rest."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
