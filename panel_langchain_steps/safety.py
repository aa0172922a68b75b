"""Untrusted text made inert: Markdown without raw HTML, escaped titles,
redacted secrets and bounded sizes.

Text from models, tools, documents, errors and run names is written by
whoever can put text in front of an agent. Nothing here lets it become markup
that runs, restyles or covers the page: `SafeMarkdown` renders Markdown with
raw HTML escaped, only http(s) and mailto links, images as links (so nothing
is fetched), no math, and an allowlist sanitizer (nh3) over the result.
Secrets are redacted in text and structured values (`redact_text`, `redact`),
and in streamed text however the tokens split them (`StreamRedactor`).
"""

from __future__ import annotations

import functools
import html
import json
import re
import textwrap
from collections.abc import Mapping
from typing import Any, ClassVar

import nh3
import panel as pn
import param
import pygments
from cmarkgfm import cmark
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from .snapshot import full_length, snapshot

REDACTED = "[redacted]"

#: Longest title shown; longer titles end in "…".
TITLE_CHARS = 200

# Words of a key name that hold secrets, matched on whole words of the normalised key
# ("openaiApiKey" -> "openai_api_key", "DB.Password" -> "db_password"), so "max_tokens" or
# "author" are kept. A word that only qualifies the secret ("token_count", "password_hint") is kept too.
_SECRET_WORDS = (
    r"api_?key|access_?key|private_?key|signing_?key|secrets?|client_secret|secret_?key"
    r"|password|passwd|pwd|passphrase|token|access_token|refresh_token|id_token|auth|authorization"
    r"|credentials?|cookie|set_cookie|session_?id|session_?key|bearer"
)
_NOT_SECRET_AFTER = r"count|limit|limits|usage|type|length|budget|hint|url|uri|name|path|file|expiry|expires"
_SECRET_KEY = re.compile(rf"(?:^|_)(?:{_SECRET_WORDS})(?:$|_(?!(?:{_NOT_SECRET_AFTER})(?:_|$)))")
_KEY_SEPARATOR = re.compile(r"[^a-z0-9]+")
_KEY_HEADER = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_KEY_FOOTER = re.compile(r"-----END [A-Z ]*PRIVATE KEY-----")
# Private keys are found first: a token written right before one would take its dashes.
_PRIVATE_KEY = re.compile(rf"{_KEY_HEADER.pattern}[\s\S]*?(?:{_KEY_FOOTER.pattern}|\Z)")
_SECRET_VALUE = re.compile(
    r"sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}"
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
# "password=hunter2", '"api_key": "abc"', "DB_PASSWORD=...", "Authorization: xyz": a name, its
# separator and its value. The value is redacted when `is_secret_key` says the name is a secret's.
_SECRET_ASSIGNMENT = re.compile(
    r"""(?<![\w.])([A-Za-z_][\w\-.]*)(["']?\s*[:=]\s*["']?)"""
    r"""(?!\[redacted\])((?:(?:Bearer|Basic|Token)\s+)?[^\s"',;&]+)"""
)
# The password in "scheme://user:password@host".
_URL_PASSWORD = re.compile(r"(?<=://)([^/\s:@]+:)[^/\s@]+@")
# Room kept beyond a clip's limit so a secret across the cut is still recognised.
_REDACT_MARGIN = 4096

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~&=$^:])")
_WEB_LINK = re.compile(r"(?:https?|mailto):", re.IGNORECASE)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_LINE_ENDING = re.compile(r"\r\n?")
# A line break inside a paragraph; a backslash before it makes it a hard break.
_INNER_LINE_BREAK = re.compile(r"(?<=[^\n])\n(?=[^\n])")


def escape_html(text: object) -> str:
    """Text for an HTML context (titles): every markup character escaped."""
    return html.escape(str(text), quote=True)


def escape_markdown(text: str) -> str:
    """Text that Markdown shows literally, with no formatting of its own."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (``api_key``, ``Authorization``, ``userPassword``, ...)."""
    words = _KEY_SEPARATOR.sub("_", _CAMEL.sub("_", key).lower()).strip("_")
    return _SECRET_KEY.search(words) is not None


def redact_text(text: str) -> str:
    """Replace secrets in free text: well-known key formats, bearer tokens,
    ``password=...``-style values and passwords in URLs."""
    text = _SECRET_VALUE.sub(REDACTED, _PRIVATE_KEY.sub(REDACTED, text))
    text = _SECRET_ASSIGNMENT.sub(_redact_assignment, text)
    return _URL_PASSWORD.sub(lambda match: match[1] + REDACTED + "@", text)


def _redact_assignment(match: re.Match[str]) -> str:
    """A secret's value redacted; any other name's value searched again ("url=...?password=...")."""
    if is_secret_key(match[1]):
        return match[1] + match[2] + REDACTED
    return match[1] + match[2] + _SECRET_ASSIGNMENT.sub(_redact_assignment, match[3])


def redact(value: Any) -> Any:
    """A JSON-ready copy of ``value`` with secret-named keys and secret-shaped strings redacted.

    Other objects become their `snapshot` first (pydantic models and
    dataclasses their fields, anything else its text).
    """
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and is_secret_key(key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(snapshot(value))


# -- streamed text ---------------------------------------------------------------

#: Most characters `StreamRedactor` holds back; a longer secret is redacted to the next separator.
HOLD_CHARS = 256
# Kept of an overlong word: more than any secret format needs to be recognised.
_KEEP_CHARS = 64
# In lower-case text, what may start a secret or name one (a trie: cheaper to search than a list).
_HINT = re.compile(
    r"k(?:ey)|t(?:oken)|s(?:ecret|ession|k[-_])|p(?:ass(?:w|phrase)|wd|k_)|a(?:uth|kia|sia|iza)"
    r"|c(?:ookie|redential)|b(?:earer|asic)|rk_|g(?:h[pousr]_|ithub_pat_|lpat-)|xox|hf_|eyj|-----begin|://"
)
# The tail that could still grow into a secret: a secret's name, separator and (partial) value,
# a "Bearer"/"Basic" credential, a private key's header, or else the last word.
_NAME_HINTS = "key|token|secret|passw|pwd|passphrase|auth|cookie|credential|session|bearer"
_HOLD = re.compile(
    rf"""(?<![\w\-.])(?=[\w\-.]*?(?i:{_NAME_HINTS}))"""
    r"""[\w\-.]+["']?\s*(?:[:=]\s*["']?(?:(?:Bearer|Basic|Token)\s*)?[^\s"',;&]*)?\Z"""
    r"|(?:(?i:bearer)|Basic)\s*\S*\Z|-----BEGIN [A-Z ]*-{0,5}\Z|(?<!\S)\S*\Z"
)
# A secret still open at the end of an overlong word: a JWT or a URL's password not yet complete.
_OPEN = re.compile(r"(?:eyJ[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]*){0,2}|(?<=://)[^/\s:@]+:[^/\s@]*)\Z")
# What continues a secret cut off at the hold-back limit (up to a separator or a private key).
_SECRET_REST = re.compile(r"""(?:(?!-----BEGIN)[^\s"',;&])*""")
# What continues a URL's user name and password (up to its "@", path or a space).
_URL_REST = re.compile(r"[^/\s@]*")
#: What ends each kind of secret being dropped (a private key ends at its footer line).
_DROP_REST = {"value": _SECRET_REST, "url": _URL_REST}


class StreamRedactor:
    """Redacts secrets in text that arrives in pieces (streamed tokens), even across pieces.

    ``feed(chunk)`` returns the text that is safe to show now; ``finish()`` the
    rest. Only a short tail is held back, at most `HOLD_CHARS` characters: the
    current partial word, or a secret's name and separator still waiting for
    its value (``password = ``), or ``Bearer`` waiting for its token. Text with
    nothing secret-like flows through as soon as its word ends. Joined, the
    output is what ``redact_text`` makes of the whole text, except that a
    secret longer than `HOLD_CHARS` is redacted up to the next space, quote or
    ``,;&``, and a private key up to its end line (and on to such a separator when
    it follows a secret's value or a URL's ``://``). One per stream; not thread-safe.
    """

    def __init__(self) -> None:
        self._held = ""
        # What is being dropped, in order: "key" (a private key), "value" (the rest of a long
        # secret) or "url" (the rest of a URL's user and password).
        self._dropping: list[str] = []

    def feed(self, chunk: str) -> str:
        """Take the next piece of text; return what can be shown now, redacted."""
        if self._dropping:
            return self._drop(chunk)
        text = self._held + chunk
        # Up to the last word: shown at once unless it may hold a secret, or too much is held.
        word = "" if not text or text[-1].isspace() else text.rsplit(None, 1)[-1]
        ready = text[: len(text) - len(word)]
        if len(word) <= HOLD_CHARS and (not ready or _HINT.search(ready.lower()) is None):
            self._held = word
            return ready
        return self._release(text)

    def finish(self) -> str:
        """The stream ended: return the rest, redacted."""
        held, dropping = self._held, self._dropping
        self._held, self._dropping = "", []
        return "" if dropping else redact_text(held)

    def _release(self, text: str) -> str:
        """Show what cannot be part of a secret still being written; hold the rest."""
        header = _KEY_HEADER.search(text)
        if header is not None:
            before = text[: header.start()]
            # A key written right after a secret's value ("password=...") or as a URL's user is
            # part of that value or of the URL's credentials, and so is what follows it.
            self._held, self._dropping = "", ["key"]
            if before.endswith("://"):
                self._dropping.append("url")
            elif any(
                match.end() == len(before) and is_secret_key(match[1])
                for match in _SECRET_ASSIGNMENT.finditer(before)
            ):
                self._dropping.append("value")
            return redact_text(before) + REDACTED + self._drop(text[header.end() :])
        cut = _HOLD.search(text).start()  # always a match: the last word may be empty
        if len(text) - cut <= HOLD_CHARS and redact_text(text) == text:  # no secret here (the usual case)
            self._held = text[cut:]
            return text[:cut]
        spans = _secret_spans(text)
        while moved := [start for start, end in spans if start < cut < end]:  # never cut through a secret
            cut = min(moved)
        if len(text) - cut > HOLD_CHARS:  # a long word: hold what may start a secret in its end
            late = _HOLD.search(text, len(text) - HOLD_CHARS)
            cut = len(text) - _KEEP_CHARS if late is None else late.start()
            if any(start < cut and end == len(text) for start, end in spans):  # a secret that goes on
                self._held, self._dropping = "", ["value"]
                return redact_text(text)
            partial = _OPEN.search(text)
            if partial is not None and partial.start() < cut:
                self._held, self._dropping = "", ["value"]
                return redact_text(text[: partial.start()]) + REDACTED
            cut = max([cut] + [end for start, end in spans if start < cut < end])
        self._held = text[cut:]
        return redact_text(text[:cut])

    def _drop(self, text: str) -> str:
        """Drop the rest of the secrets shown as redacted; go on after their end."""
        if self._dropping[0] == "key":
            text = self._held + text
            footer = _KEY_FOOTER.search(text)
            if footer is None:
                self._held = text[-_KEEP_CHARS:]  # enough to see a footer split across pieces
                return ""
            end = footer.end()
        else:
            end = _DROP_REST[self._dropping[0]].match(text).end()
            if end == len(text):
                return ""
        self._held = ""
        self._dropping.pop(0)
        if self._dropping:
            return self._drop(text[end:])
        return self.feed(text[end:]) if end < len(text) else ""


def _secret_spans(text: str) -> list[tuple[int, int]]:
    """Where `redact_text` finds secrets in ``text``, as (start, end)."""
    spans = [match.span() for pattern in (_PRIVATE_KEY, _SECRET_VALUE) for match in pattern.finditer(text)]
    spans += [(match.start() - 3, match.end()) for match in _URL_PASSWORD.finditer(text)]  # from its "://"
    for match in _SECRET_ASSIGNMENT.finditer(text):
        if is_secret_key(match[1]):
            spans.append(match.span())
        else:
            offset = match.start(3)
            spans += [(offset + start, offset + end) for start, end in _secret_spans(match[3])]
    return spans


def clip(text: str, limit: int | None) -> tuple[str, str]:
    """``text`` cut to ``limit`` characters, and a Markdown note of what was left out."""
    if limit is None or len(text) <= limit:
        return text, ""
    return text[:limit], f"\n\n*… {full_length(text) - limit:,} more characters not shown*"


def shorten(text: str, limit: int = TITLE_CHARS) -> str:
    """One redacted line of at most ``limit`` characters, ending in "…" when cut."""
    line = " ".join(redact_text(text[: limit + _REDACT_MARGIN]).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _redact_clip(text: str, limit: int | None) -> tuple[str, str]:
    """Redacted, clipped text and the note; only a little past the limit is scanned."""
    if limit is not None and len(text) > limit:
        window = text[: limit + _REDACT_MARGIN]
        redacted = redact_text(window)
        if len(text) > len(window):
            # The window's end may split a secret, too short then to be seen as one, and secrets
            # redacted before it shortened the text: its last part is never shown.
            redacted = redacted[: len(redacted) - _REDACT_MARGIN]
        shown, _ = clip(redacted, limit)
        return shown, clip(text, limit)[1]
    return redact_text(text), ""


def plain_text(text: str, limit: int | None) -> str:
    """Untrusted text for a Markdown body, shown literally, line breaks kept: redacted,
    clipped with a note, escaped."""
    shown, note = _redact_clip(text, limit)
    lines = _LINE_ENDING.sub("\n", escape_markdown(shown))
    return _INNER_LINE_BREAK.sub("\\\n", lines) + note


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


def code_span(text: str) -> str:
    """Inline code that the text cannot close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def to_json(value: Any) -> str:
    """Readable JSON for structured data (dataclasses, pydantic models, sets and bytes too),
    falling back to redacted ``str`` for other objects."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    return redact(snapshot(value))


# -- Markdown ------------------------------------------------------------------

# Stands in for every "<" that is not an autolink's, so cmark sees no raw HTML:
# it comes back as "&lt;", shown as text (in code too). A noncharacter, so
# it cannot be confused with text (any in the input becomes U+FFFD first).
_LESS_THAN = "\ufdd0"
# A backslash escape (kept: "\\<" is already text) or a "<" that does not open an autolink.
_RAW_LESS_THAN = re.compile(r"\\.|<(?!(?:https?|mailto):[^\s<>]*>)", re.IGNORECASE | re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")
# cmark's own output, whose text and attributes are escaped: these shapes are exact.
_IMAGE = re.compile(r'<img src="([^"]*)" alt="([^"]*)"(?: title="[^"]*")? />')
_LINK = re.compile(r'<a href="([^"]*)"([^>]*)>(.*?)</a>', re.DOTALL)
_CODE = re.compile(r'<pre><code class="language-([^"]*)">(.*?)</code></pre>', re.DOTALL)
_CMARK_OPTIONS = (
    cmark.Options.CMARK_OPT_VALIDATE_UTF8
    | cmark.Options.CMARK_OPT_FOOTNOTES
    | cmark.Options.CMARK_OPT_TABLE_PREFER_STYLE_ATTRIBUTES
)
_CMARK_EXTENSIONS = ["table", "strikethrough", "autolink", "tasklist"]
# The markup (and so the styles) of Panel's own highlighted code blocks.
_CODE_FORMAT = HtmlFormatter(cssclass="codehilite", wrapcode=True)

#: What the renderer may emit: the tags and attributes of Markdown's own output.
_sanitize = functools.partial(
    nh3.clean,
    tags={
        *("a", "blockquote", "br", "code", "del", "div", "em", "hr", "input", "li", "ol", "p", "pre"),
        *("section", "span", "strong", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul"),
        *("h1", "h2", "h3", "h4", "h5", "h6"),
    },
    attributes={
        **{tag: {"class"} for tag in ("code", "div", "section", "span", "sup")},
        "a": {"href", "title"},
        "input": {"checked", "disabled"},
        "ol": {"start"},
        "td": {"style"},
        "th": {"style"},
    },
    tag_attribute_values={"a": {"target": {"_blank"}}, "input": {"type": {"checkbox"}}},
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
    filter_style_properties={"text-align"},
)


def render_markdown(text: str, hard_line_break: bool = False) -> str:
    """Untrusted Markdown as inert HTML (GitHub-flavoured, by cmark-gfm).

    Raw HTML shows as text; only http(s) and mailto links are links, opening
    a new tab; images become links to the image; code is highlighted. With
    ``hard_line_break`` every line break inside a paragraph is kept.
    """
    source = _RAW_LESS_THAN.sub(_hide_less_than, text.replace(_LESS_THAN, "\ufffd"))
    options = _CMARK_OPTIONS | (cmark.Options.CMARK_OPT_HARDBREAKS if hard_line_break else 0)
    rendered = _IMAGE.sub(_image_link, _LINK.sub(_link, _cmark(source, options)))
    if '<code class="language-' in rendered:
        rendered = _CODE.sub(_highlight, rendered)
    return _sanitize(rendered.replace(_LESS_THAN, "&lt;"))


def _cmark(source: str, options: int) -> str:
    try:
        return cmark.markdown_to_html_with_extensions(source, options=options, extensions=_CMARK_EXTENSIONS)
    except UnicodeEncodeError:  # lone surrogates (broken JSON, say) are not UTF-8: shown as U+FFFD
        return _cmark(_SURROGATE.sub("\ufffd", source), options)


def _hide_less_than(match: re.Match[str]) -> str:
    return _LESS_THAN if match[0] == "<" else match[0]


def _image_label(match: re.Match[str]) -> str:
    return f"image: {match[2] or match[1]}"


def _image_link(match: re.Match[str]) -> str:
    """A link to the image instead of the image, so the page fetches nothing; plain text if not a web URL."""
    label = _image_label(match)
    return f'<a target="_blank" href="{match[1]}">{label}</a>' if _WEB_LINK.match(match[1]) else label


def _link(match: re.Match[str]) -> str:
    """Web links open in a new tab; any other URL (relative, ``javascript:``, ...) leaves plain text.
    An image inside a link becomes its label (links cannot nest)."""
    content = _IMAGE.sub(_image_label, match[3])
    if _WEB_LINK.match(match[1]):
        return f'<a target="_blank" href="{match[1]}"{match[2]}>{content}</a>'
    return content


def _highlight(match: re.Match[str]) -> str:
    """A code block in a named language, highlighted by Pygments as Panel's Markdown pane does."""
    code = html.unescape(match[2].replace(_LESS_THAN, "<"))
    return _highlighted(code, html.unescape(match[1])) or match[0]


# A streamed answer's blocks are rendered again at every refresh: finished code is highlighted once.
@functools.lru_cache(maxsize=512)
def _highlighted(code: str, language: str) -> str | None:
    lexer = _lexer(language)
    return None if lexer is None else pygments.highlight(code, lexer, _CODE_FORMAT)


@functools.lru_cache(maxsize=64)
def _lexer(language: str) -> Lexer | None:
    try:
        return get_lexer_by_name(language)
    except ClassNotFound:
        return None


def _fixed(kind: type[param.Parameter], default: Any) -> param.Parameter:
    """A read-only stand-in for a `Markdown` option this pane does not use."""
    return kind(
        default=default,
        readonly=True,
        doc="Not used: the Markdown this pane understands is fixed (GitHub-flavoured).",
    )


class SafeMarkdown(pn.pane.Markdown):
    """A Markdown pane for untrusted text.

    Headings, emphasis, lists, tables, code blocks and http(s) links render
    as usual. Raw HTML shows as text; other links (``javascript:``,
    ``data:``, relative) stay plain text; images become links; math is not
    typeset. Text streamed into it still goes to the browser as diffs.
    """

    renderer = param.Selector(
        default="cmark-gfm",
        objects=["cmark-gfm"],
        readonly=True,
        doc="""
        Always cmark-gfm (GitHub's CommonMark, in C), made safe here.""",
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

    extensions = _fixed(param.List, [])
    plugins = _fixed(param.List, [])
    renderer_options = _fixed(param.Dict, {})

    # Never picked by `pn.panel` for a plain string.
    priority: ClassVar[float | bool | None] = False

    def _transform_object(self, obj: Any) -> dict[str, Any]:
        source = "" if obj is None else obj if isinstance(obj, str) else obj._repr_markdown_()
        rendered = render_markdown(textwrap.dedent(source) if self.dedent else source, self.hard_line_break)
        # Panel >= 1.10 keeps the unescaped HTML to diff streamed updates against.
        keep = getattr(self, "_escape_html", None)
        return keep(rendered) if keep is not None else {"object": html.escape(rendered)}
