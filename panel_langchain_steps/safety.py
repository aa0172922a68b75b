"""Untrusted text made inert: Markdown without raw HTML, escaped titles,
redacted secrets and bounded sizes.

Text from models, tools, documents, errors and run names is written by
whoever can put text in front of an agent. Nothing here lets it become markup
that runs, restyles or covers the page: `SafeMarkdown` renders Markdown with
raw HTML escaped, only http(s) and mailto links, images as links (so nothing
is fetched), no math, and an allowlist sanitizer (nh3) over the result.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import nh3
import panel as pn
import param
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token

REDACTED = "[redacted]"

#: Longest title shown; longer titles end in "…".
TITLE_CHARS = 200

# Key names that hold secrets, matched on whole words of the normalised key
# ("openaiApiKey" -> "openai_api_key"), so "max_tokens" or "author" are kept.
_SECRET_KEY = re.compile(
    r"(?:^|_)(?:api_?key|access_?key|private_?key|signing_?key|secrets?|client_secret|secret_?key"
    r"|password|passwd|pwd|passphrase|token|access_token|refresh_token|id_token|auth|authorization"
    r"|credentials?|cookie|set_cookie|session_?id|session_?key|bearer)(?:_|$)"
)
_SECRET_VALUE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
    r"|sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}"
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,}"
    r"|glpat-[A-Za-z0-9_\-]{20,}"
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|AIza[0-9A-Za-z_\-]{30,}"
    r"|hf_[A-Za-z0-9]{20,}"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]{16,}=*"
    r"|Basic\s+[A-Za-z0-9+/]{16,}={0,2}"
)
# "password=hunter2", '"api_key": "abc"', "Authorization: xyz": the value after a secret's name.
_SECRET_ASSIGNMENT = re.compile(
    r"""(?i)(\b(?:api[_-]?key|access[_-]?token|refresh[_-]?token|auth[_-]?token|client[_-]?secret"""
    r"""|secret[_-]?key|secret|password|passwd|pwd|token|authorization)["']?\s*[:=]\s*["']?)"""
    r"""(?!\[redacted\])((?:(?:Bearer|Basic|Token)\s+)?[^\s"',;&]+)"""
)
# The password in "scheme://user:password@host".
_URL_PASSWORD = re.compile(r"(?<=://)([^/\s:@]+:)[^/\s@]+(?=@)")
# Room kept beyond a clip's limit so a secret across the cut is still recognised.
_REDACT_MARGIN = 4096

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~&=$^:])")
_WEB_LINK = re.compile(r"(?:https?|mailto):", re.IGNORECASE)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def escape_html(text: object) -> str:
    """Text for an HTML context (titles): every markup character escaped."""
    return html.escape(str(text), quote=True)


def escape_markdown(text: str) -> str:
    """Text that Markdown shows literally, with no formatting of its own."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (``api_key``, ``Authorization``, ``userPassword``, ...)."""
    words = _CAMEL.sub("_", key).lower().replace("-", "_").replace(" ", "_")
    return _SECRET_KEY.search(words) is not None


def redact_text(text: str) -> str:
    """Replace secrets in free text: well-known key formats, bearer tokens,
    ``password=...``-style values and passwords in URLs."""
    text = _SECRET_VALUE.sub(REDACTED, text)
    text = _SECRET_ASSIGNMENT.sub(lambda match: match.group(1) + REDACTED, text)
    return _URL_PASSWORD.sub(lambda match: match.group(1) + REDACTED, text)


def redact(value: Any) -> Any:
    """A copy of ``value`` with secret-named keys and secret-shaped strings redacted."""
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and is_secret_key(key) else redact(item)
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


def shorten(text: str, limit: int = TITLE_CHARS) -> str:
    """One redacted line of at most ``limit`` characters, ending in "…" when cut."""
    line = " ".join(redact_text(text[: limit + _REDACT_MARGIN]).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _redact_clip(text: str, limit: int | None) -> tuple[str, str]:
    """Redacted, clipped text and the note; only a little past the limit is scanned."""
    if limit is not None and len(text) > limit:
        shown, _ = clip(redact_text(text[: limit + _REDACT_MARGIN]), limit)
        return shown, clip(text, limit)[1]
    return redact_text(text), ""


def plain_text(text: str, limit: int | None) -> str:
    """Untrusted text for a Markdown body, shown literally: redacted, clipped with a note, escaped."""
    shown, note = _redact_clip(text, limit)
    return escape_markdown(shown) + note


def code_text(text: str, limit: int | None, language: str = "") -> str:
    """Untrusted text as a fenced code block: redacted, clipped with a note after the block."""
    shown, note = _redact_clip(text, limit)
    return code_block(shown, language) + note


def title_text(text: str) -> str:
    """A step title (an HTML context) from untrusted text: one short redacted line, escaped."""
    return escape_html(shorten(text))


def inline_text(text: str) -> str:
    """Untrusted text inside one line of Markdown (a heading): one short redacted line, escaped."""
    return escape_markdown(shorten(text))


def code_block(text: str, language: str = "") -> str:
    """A fenced code block that the text cannot close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def to_json(value: Any) -> str:
    """Readable JSON for structured data, falling back to ``str`` for the rest."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


# -- Markdown ------------------------------------------------------------------

#: What the renderer may emit: the tags and attributes of Markdown's own output.
_sanitize = functools.partial(
    nh3.clean,
    tags={
        *("a", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em", "hr", "input", "li"),
        *("ol", "p", "pre", "s", "section", "span", "strong", "sup", "table", "tbody", "td", "th"),
        *("thead", "tr", "ul", "h1", "h2", "h3", "h4", "h5", "h6"),
    },
    attributes={
        **{tag: {"class"} for tag in ("code", "div", "hr", "li", "pre", "section", "span", "sup", "ul")},
        "a": {"href", "title"},
        "input": {"class", "checked", "disabled"},
        "ol": {"class", "start"},
        "td": {"style"},
        "th": {"style"},
    },
    tag_attribute_values={"a": {"target": {"_blank"}}, "input": {"type": {"checkbox"}}},
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
    filter_style_properties={"text-align"},
)


def _is_web_link(url: str) -> bool:
    """markdown-it's link check: only http(s) and mailto URLs become links."""
    return _WEB_LINK.match(url) is not None


class _InertRenderer(RendererHTML):
    """markdown-it's HTML renderer with images as links, links opening a new
    tab, and the allowlist sanitizer over everything it renders."""

    def __init__(self, parser: MarkdownIt, plugin_rules: Mapping[str, Any]):
        super().__init__(parser)
        # Keep what plugins (footnotes, ...) added; the built-in rules are ours.
        self.rules = {**plugin_rules, **self.rules}

    def render(self, tokens: Sequence[Token], options: Any, env: Any) -> str:
        return _sanitize(super().render(tokens, options, env))

    def link_open(self, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("target", "_blank")
        return self.renderToken(tokens, idx, options, env)

    def image(self, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        """A link to the image instead of the image: the page fetches nothing."""
        src = str(tokens[idx].attrGet("src"))
        alt = self.renderInlineAsText(tokens[idx].children or [], options, env) or src
        return f'<a href="{escapeHtml(src)}" target="_blank">image: {escapeHtml(alt)}</a>'


class SafeMarkdown(pn.pane.Markdown):
    """A Markdown pane for untrusted text.

    Headings, emphasis, lists, tables, code blocks and http(s) links render
    as usual. Raw HTML shows as text; other links (``javascript:``,
    ``data:``, relative) stay plain text; images become links; math is not
    typeset. Panel's incremental rendering of streamed text still applies.
    """

    renderer = param.Selector(
        default="markdown-it",
        objects=["markdown-it"],
        readonly=True,
        doc="""
        Always markdown-it, the renderer made safe here.""",
    )

    disable_anchors = param.Boolean(
        default=True,
        readonly=True,
        doc="""
        No heading anchors (ids an untrusted heading could choose).""",
    )

    disable_math = param.Boolean(
        default=True,
        readonly=True,
        doc="""
        No math typesetting (it can draw over the page).""",
    )

    # Never picked by `pn.panel` for a plain string.
    priority: ClassVar[float | bool | None] = False

    @classmethod
    @functools.cache
    def _get_parser(
        cls,
        renderer: str,
        plugins: tuple,
        hard_line_break: bool = False,
        disable_anchors: bool = True,
        **renderer_options: Any,
    ) -> MarkdownIt:
        options = {**renderer_options, "html": False}
        parser = super()._get_parser(renderer, plugins, hard_line_break, disable_anchors, **options)
        parser.validateLink = _is_web_link
        parser.renderer = _InertRenderer(parser, parser.renderer.rules)
        return parser
