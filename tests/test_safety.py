"""Untrusted text is made inert: redaction, clipping, escaping, and Markdown
rendered by real Panel panes with no live markup in the HTML."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from html.parser import HTMLParser

import panel as pn
import pytest
from bokeh.document import Document
from browser.test_xss import PAYLOADS, SAFE_MARKDOWN, live_markup
from hypothesis import example, given, settings
from hypothesis import strategies as st
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware, wrap_model_call
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import BaseModel

from panel_langchain_steps.approval import ApprovalPrompt
from panel_langchain_steps.safety import (
    HOLD_CHARS,
    REDACTED,
    TITLE_CHARS,
    SafeMarkdown,
    StreamRedactor,
    code_text,
    escape_markdown,
    inline_text,
    is_secret_key,
    plain_text,
    redact,
    redact_text,
    title_text,
    to_json,
)
from panel_langchain_steps.testing import ScriptedChatModel, iter_steps, split_tokens, step_tree


class Elements(HTMLParser):
    """An HTML fragment's elements as ``{"tag", "attrs", "text"}``, and its text."""

    VOID = frozenset({"br", "hr", "img", "input"})

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[dict] = []
        self.text = ""
        self._open: list[dict] = []
        self.feed(source)
        self.close()

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": [(name, value or "") for name, value in attrs], "text": ""}
        self.elements.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        self.text += data
        for element in self._open:
            element["text"] += data


def rendered(text: str, **params) -> str:
    """The HTML a real `SafeMarkdown` pane sends to the browser for ``text``."""
    return html.unescape(SafeMarkdown(text, **params).get_root().text)


def assert_inert(source: str) -> Elements:
    parsed = Elements(source)
    for element in parsed.elements:
        assert live_markup(element) == [], source
    return parsed


# -- redaction -------------------------------------------------------------------

SECRET_VALUES = [
    "sk-abcdefghijklmnopqrstuvwx",
    "sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2",
    "sk-ant-api03-abcdefghijklmnopqrstuv",
    "sk_live_abcdefghijklmnop1234",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
    "glpat-abcdefghijklmnopqrst",
    "xoxb-1234567890-abcdefghij",
    "AKIAIOSFODNN7EXAMPLE",
    "AIzaSyA-abcdefghijklmnopqrstuvwxyz01234",
    "hf_abcdefghijklmnopqrstuvwxyz",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "Bearer abcdefghijklmnopqrstuvwxyz",
    "Basic dXNlcjpwYXNzd29yZDEyMzQ1Ng==",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
]


@pytest.mark.parametrize("secret", SECRET_VALUES)
def test_well_known_key_formats_are_redacted(secret):
    shown = redact_text(f"calling with {secret} now")
    assert shown == f"calling with {REDACTED} now"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("password=hunter2 user=bob", f"password={REDACTED} user=bob"),
        ('{"api_key": "abc123"}', f'{{"api_key": "{REDACTED}"}}'),
        ("Authorization: Token abc123", f"Authorization: {REDACTED}"),
        ("postgres://bob:hunter2@db:5432/app", f"postgres://bob:{REDACTED}@db:5432/app"),
        ("max_tokens=512, temperature=0.2", "max_tokens=512, temperature=0.2"),
        ("The author wrote a tokenizer.", "The author wrote a tokenizer."),
    ],
)
def test_secrets_in_free_text_are_redacted(text, shown):
    assert redact_text(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("DB_PASSWORD=hunter2 next", f"DB_PASSWORD={REDACTED} next"),
        ("export OPENAI_API_KEY='abc123'", f"export OPENAI_API_KEY='{REDACTED}'"),
        ("private_key=zzz9", f"private_key={REDACTED}"),
        ('{"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI"}', f'{{"AWS_SECRET_ACCESS_KEY": "{REDACTED}"}}'),
        ("openaiApiKey: abc123", f"openaiApiKey: {REDACTED}"),
        ("db.password = hunter2", f"db.password = {REDACTED}"),
        ("run --password=hunter2", f"run --password={REDACTED}"),
        (
            "url=https://x.example/?password=hunter2&page=2",
            f"url=https://x.example/?password={REDACTED}&page=2",
        ),
    ],
)
def test_secret_names_with_a_prefix_are_redacted(text, shown):
    assert redact_text(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=5, author=bob",
        "passwords are hashed; the token is rotated",
        "token_count: 3, token_type: Bearer, password_hint: pet",
        "Note: keys=3, monkey=1",
    ],
)
def test_ordinary_names_and_prose_are_kept(text):
    assert redact_text(text) == text


@pytest.mark.parametrize(
    "key",
    [
        *("api_key", "OPENAI_API_KEY", "apiKey", "x-api-key", "Authorization", "password", "client_secret"),
        *("access_token", "token", "session_id", "Cookie", "private_key", "credentials", "secrets"),
        *("DB_PASSWORD", "AWS_SECRET_ACCESS_KEY", "db.password", "github_token"),
    ],
)
def test_secret_key_names(key):
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    ["max_tokens", "input_tokens", "author", "tokenizer", "keyword", "query", "token_count", "token_type"],
)
def test_ordinary_key_names(key):
    assert not is_secret_key(key)


def test_redact_walks_structures():
    params = {
        "model": "gpt-4o",
        "max_tokens": 512,
        "openai_api_key": "whatever-it-is",
        "headers": {"Authorization": "Bearer xyz", "Accept": "application/json"},
        "messages": [("user", "my key is sk-abcdefghijklmnopqrstuvwx")],
    }
    assert redact(params) == {
        "model": "gpt-4o",
        "max_tokens": 512,
        "openai_api_key": REDACTED,
        "headers": {"Authorization": REDACTED, "Accept": "application/json"},
        "messages": [["user", f"my key is {REDACTED}"]],
    }


@dataclass
class Login:
    user: str
    token: str


class Account(BaseModel):
    name: str
    password: str


def test_redact_and_to_json_show_dataclasses_models_sets_and_bytes():
    value = {
        "login": Login("bob", SECRET_VALUES[0]),
        "account": Account(name="bob", password="hunter2"),
        "scopes": frozenset({"write", "read"}),
        "blob": b"password=hunter2",
        "binary": b"\xff\xfe\x00",
    }
    shown = {
        "login": {"user": "bob", "token": REDACTED},
        "account": {"name": "bob", "password": REDACTED},
        "scopes": ["read", "write"],
        "blob": f"password={REDACTED}",
        "binary": "<3 bytes>",
    }
    assert redact(value) == shown
    assert json.loads(to_json(redact(value))) == shown


def test_to_json_redacts_what_it_shows_with_str():
    class Opaque:
        def __str__(self):
            return f"Opaque(key={SECRET_VALUES[0]})"

    assert to_json({"x": Opaque()}) == f'{{\n  "x": "Opaque(key={REDACTED})"\n}}'


#: Typed tool arguments, as a middleware that parses a model's arguments into objects leaves them.
TYPED_ARGS = {
    "login": Login("bob", SECRET_VALUES[0]),
    "scopes": {"write", "read", SECRET_VALUES[4]},
    "blob": b"password=hunter2",
}


@wrap_model_call
def typed_args(request, handler):
    response = handler(request)
    for message in response.result:
        for tool_call in getattr(message, "tool_calls", []):
            tool_call["args"] = TYPED_ARGS
    return response


@tool
def connect(login: object, scopes: object, blob: object) -> str:
    """Connect with a login."""
    return "connected"


def test_approval_prompt_shows_typed_arguments_redacted():
    model = ScriptedChatModel(
        responses=[AIMessage(content="", tool_calls=[{"name": "connect", "args": {}, "id": "c1"}]), "done"]
    )
    agent = create_agent(
        model,
        [connect],
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"connect": True}), typed_args],
        checkpointer=InMemorySaver(),
    )
    result = agent.invoke({"messages": [("user", "connect")]}, {"configurable": {"thread_id": "t1"}})
    (interrupt,) = result["__interrupt__"]
    prompt = ApprovalPrompt(request=interrupt.value).__panel__()
    (review,) = prompt.objects  # the one tool call's review
    text = review.objects[0].object
    # Neither the request nor the edit form's inputs show the secrets.
    inputs = [str(widget.value) for widget in review.select() if hasattr(widget, "value")]
    for secret in (SECRET_VALUES[0], SECRET_VALUES[4], "hunter2"):
        assert secret not in text
        assert not any(secret in value for value in inputs)
    shown = json.loads(text.split("```json\n")[1].split("\n```")[0])
    assert shown == {
        "login": {"user": "bob", "token": REDACTED},
        "scopes": [REDACTED, "read", "write"],
        "blob": f"password={REDACTED}",
    }


# -- streamed text ----------------------------------------------------------------

#: Secrets in free text beyond the well-known formats: assignments and URL passwords.
SECRET_ASSIGNMENTS = [
    "password=hunter2",
    '{"api_key": "abc123"}',
    "Authorization: Token abc123",
    "Authorization: Bearer abcdefghijklmnopqrstuvwxyz",
    "postgres://bob:hunter2@db:5432/app",
    "DB_PASSWORD=hunter2",
    "export OPENAI_API_KEY='abc123'",
    '"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI"',
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg",  # no end line: redacted to the end
]


def streamed(chunks: list[str]) -> list[str]:
    """What a `StreamRedactor` shows for each chunk, then at the end."""
    redactor = StreamRedactor()
    return [redactor.feed(chunk) for chunk in chunks] + [redactor.finish()]


@pytest.mark.parametrize("secret", SECRET_VALUES + SECRET_ASSIGNMENTS)
def test_streamed_secrets_are_redacted_wherever_the_tokens_split(secret):
    text = f"calling with {secret} now"
    expected = redact_text(text)
    assert REDACTED in expected
    for first in range(len(text) + 1):
        assert "".join(streamed([text[:first], text[first:]])) == expected
        for second in range(first, len(text) + 1):
            chunks = [text[:first], text[first:second], text[second:]]
            assert "".join(streamed(chunks)) == expected, chunks


def test_streamed_secrets_are_redacted_token_by_token():
    text = "\n".join(f"line {number}: {secret}, done" for number, secret in enumerate(SECRET_VALUES))
    text += "\n" + "\n".join(SECRET_ASSIGNMENTS)
    for chunks in (split_tokens(text), list(text)):
        assert "".join(streamed(chunks)) == redact_text(text)


KEY_LINES = ("-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----")


def test_a_private_key_right_after_a_token_is_hidden_whole():
    text = f"sk-abcdefghijklmnopqrstuvwx{KEY_LINES[0]}\nMIIBOgIBAAJBAK\n{KEY_LINES[1]}"
    assert "MIIB" not in redact_text(text)
    assert "MIIB" not in "".join(streamed([text]))


@settings(max_examples=300, deadline=None)
# Found by this test: a private key right after a secret's value, or as a URL's user.
@example(["DB_PASSWORD", ":", "password", *KEY_LINES, "password"], [])
@example(["https://", *KEY_LINES, ":", "password", "@db"], [])
@example(["https://", *KEY_LINES, ":", '"', "@db"], [])
@example(["sk-abcdefghijklmnopqrstuvwx", *KEY_LINES, "password", ":", " ", "password"], [])
@given(
    st.lists(
        st.sampled_from(
            [
                *SECRET_VALUES[:4],
                *("password", "DB_PASSWORD", "api_key", "token_count", "Authorization", "Bearer", "Basic"),
                *(":", "=", " ", "\n", '"', "'", ",", "&", "abc123", "https://", "bob:", "@db", "."),
                *("-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----", "eyJhbGciOiJIUzI1NiJ9"),
            ]
        ),
        max_size=25,
    ),
    st.lists(st.integers(0, 1000), max_size=6),
)
def test_streaming_never_shows_what_redaction_hides(pieces, cuts):
    text = "".join(pieces)
    cuts = sorted(cut % (len(text) + 1) for cut in cuts)
    chunks = [text[start:end] for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    expected = redact_text(text)
    assert all(part in expected for part in "".join(streamed(chunks)).split(REDACTED)), chunks


def test_text_without_secrets_streams_through_at_once():
    text = "\n\n".join([*PAYLOADS, SAFE_MARKDOWN, "The author set max_tokens=5; passwords are hashed."])
    tokens = split_tokens(text)
    shown = streamed(tokens)
    assert "".join(shown) == text
    plain = split_tokens("Some *emphasis* and a table:\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nThe end.")
    for count, _ in enumerate(plain, 1):
        so_far = "".join(plain[:count])
        last_word = so_far.split()[-1] if not so_far[-1].isspace() else ""
        assert "".join(streamed(plain[:count])[:-1]) == so_far[: len(so_far) - len(last_word)]


@pytest.mark.parametrize(
    ("start", "end", "shown"),
    [
        ("", "", "x" * 2_000),
        ("see https://example.com/", " now", "see https://example.com/" + "x" * 2_000 + " now"),
        ("sk-", " now", f"{REDACTED} now"),
        ("eyJ", " now", f"{REDACTED} now"),  # may be a JWT's start: redacted when too long to wait for
        ("password=", "; next", f"password={REDACTED}; next"),
    ],
)
def test_hold_back_is_bounded(start, end, shown):
    text = start + "x" * 2_000 + end
    redactor = StreamRedactor()
    so_far = ""
    for count, character in enumerate(text, 1):
        so_far += redactor.feed(character)
        assert REDACTED in so_far or count - len(so_far) <= HOLD_CHARS
    assert so_far + redactor.finish() == shown


@pytest.mark.parametrize("stream", [True, False])
def test_model_text_reaches_the_step_redacted(make_handler, stream):
    answer = f"Use Authorization: Bearer {SECRET_VALUES[0]} with DB_PASSWORD=hunter2 now."
    handler = make_handler()
    model = ScriptedChatModel(responses=[answer], streaming=stream)
    model.invoke("hi", config={"callbacks": [handler]})
    handler.flush()
    (step,) = iter_steps(step_tree(handler.layout))
    assert step["text"].count(REDACTED) == 2
    assert SECRET_VALUES[0] not in step["text"] and "hunter2" not in step["text"]


# -- clipping --------------------------------------------------------------------


def test_long_text_is_clipped_with_a_note():
    body = plain_text("x" * 2_000, 100)
    html_ = rendered(body)
    assert "<em>… 1,900 more characters not shown</em>" in html_
    assert Elements(html_).text.count("x") == 100


def test_a_secret_across_the_cut_is_not_half_shown():
    secret = "sk-abcdefghijklmnopqrstuvwx"
    text = "a" * 90 + secret + "b" * 100
    for body in (plain_text(text, 100), code_text(text, 100)):
        assert "sk-abc" not in assert_inert(rendered(body)).text  # what the page shows


def test_several_megabytes_are_clipped_before_rendering():
    text = "<img src=x onerror=alert(1)> sk-abcdefghijklmnopqrstuvwx " * 100_000
    body = plain_text(text, 20_000)
    assert len(body) < 50_000  # what is rendered is the clip, not the megabytes
    assert f"{len(text) - 20_000:,}" in body.replace("\u202f", ",")  # says how much was left out
    parsed = assert_inert(rendered(body))
    assert "sk-abc" not in parsed.text


def test_huge_tool_output_reaches_the_step_clipped(make_handler):
    @tool
    def dump() -> str:
        """Return five megabytes."""
        return "<b>bulk</b> " * 500_000

    handler = make_handler(max_chars=1_000)
    dump.invoke({}, config={"callbacks": [handler]})
    handler.flush()
    (step,) = iter_steps(step_tree(handler.layout))
    assert len(step["text"]) < 3_000
    assert "5,999,000 more characters not shown" in step["text"]


# -- escaping --------------------------------------------------------------------


# Noncharacters and unassigned code points ("Cn") are shown as U+FFFD, by design (see
# test_text_cmark_cannot_encode_still_renders): every other character renders as itself.
@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc", "Cn"]), max_size=60))
def test_escaped_text_renders_literally(text):
    parsed = assert_inert(rendered(escape_markdown(text)))
    assert " ".join(parsed.text.split()) == " ".join(text.split())


@pytest.mark.parametrize("payload", PAYLOADS)
def test_plain_text_shows_payloads_literally(payload):
    parsed = assert_inert(rendered(plain_text(payload, None)))
    assert " ".join(parsed.text.split()) == " ".join(payload.split())


def test_code_cannot_close_its_fence():
    text = "```\n<script>alert(1)</script>\n````\n# not a heading"
    parsed = assert_inert(rendered(code_text(text, None, "python")))
    assert [e["tag"] for e in parsed.elements if e["tag"] in ("pre", "h1")] == ["pre"]
    assert "# not a heading" in parsed.text


def test_titles_are_one_escaped_redacted_line():
    title = title_text('<img src=x onerror="alert(1)">\n' + "sk-abcdefghijklmnopqrstuvwx " + "y" * 500)
    assert title.startswith("&lt;img src=x onerror=&quot;alert(1)&quot;&gt; [redacted] y")
    assert len(html.unescape(title)) == TITLE_CHARS and title.endswith("…")
    assert inline_text("**a** [b](javascript:x)") == r"\*\*a\*\* \[b\]\(javascript\:x\)"


def test_run_names_in_titles_are_text(make_handler):
    handler = make_handler()
    RunnableLambda(lambda x: x).with_config(run_name="<script>alert(1)</script>").invoke(
        1, {"callbacks": [handler]}
    )
    handler.flush()
    (step,) = iter_steps(step_tree(handler.layout))
    assert step["title"].startswith("&lt;script&gt;alert(1)&lt;/script&gt; · ")


# -- Markdown --------------------------------------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markdown_payloads_render_inert(payload):
    assert_inert(rendered(payload))


def test_model_markdown_still_formats():
    parsed = assert_inert(rendered(SAFE_MARKDOWN))
    tags = {element["tag"] for element in parsed.elements}
    assert {"h2", "em", "strong", "ul", "li", "table", "th", "td", "pre", "code", "a"} <= tags
    (link,) = [e for e in parsed.elements if e["tag"] == "a"]
    assert dict(link["attrs"]) == {
        "href": "https://example.com/docs",
        "target": "_blank",
        "rel": "noopener noreferrer nofollow",
    }


@pytest.mark.parametrize(
    ("source", "links"),
    [
        ("![chart](https://example.com/chart.png)", {"https://example.com/chart.png": "image: chart"}),
        ("![x](data:image/png;base64,AAAA)", {}),
        ("[x](javascript:alert(1)) [y](/relative) [z](data:text/html,x)", {}),
        (
            "<https://example.com> and www.example.org",
            {"https://example.com": "https://example.com"} | {"http://www.example.org": "www.example.org"},
        ),
        ("[mail](mailto:a@example.com)", {"mailto:a@example.com": "mail"}),
        ("[![logo](https://example.com/i.png)](https://example.com)", {"https://example.com": "image: logo"}),
    ],
)
def test_only_web_links_are_links_and_images_are_not_fetched(source, links):
    parsed = assert_inert(rendered(source))
    assert {dict(e["attrs"])["href"]: e["text"] for e in parsed.elements if e["tag"] == "a"} == links
    assert not any(e["tag"] == "img" for e in parsed.elements)


def test_the_pane_cannot_be_loosened():
    assert rendered("<b>x</b> $$\\rule{9in}{9in}$$") == "<p>&lt;b&gt;x&lt;/b&gt; $$\\rule{9in}{9in}$$</p>\n"
    for params in (
        {"disable_math": False},
        {"disable_anchors": False},
        {"renderer": "markdown"},
        {"renderer_options": {"html": True}},
        {"plugins": [lambda parser: parser]},
        {"extensions": ["extra"]},
    ):
        with pytest.raises((TypeError, ValueError)):
            SafeMarkdown("x", **params)


def test_plain_strings_still_get_panels_own_markdown():
    assert type(pn.panel("some text")) is pn.pane.Markdown


def test_hard_line_breaks_are_an_option():
    assert rendered("one\ntwo") == "<p>one\ntwo</p>\n"
    assert rendered("one\ntwo", hard_line_break=True) == "<p>one<br>\ntwo</p>\n"


def test_text_cmark_cannot_encode_still_renders():
    # A lone surrogate (from broken JSON) is not UTF-8; the stand-in for "<" must stay text too.
    parsed = assert_inert(rendered("broken \ud800 JSON, a \ufdd0 noncharacter, and <b>"))
    assert parsed.text.strip() == "broken \ufffd JSON, a \ufffd noncharacter, and <b>"


def test_streamed_text_goes_to_the_browser_as_diffs():
    document = Document()
    pane = SafeMarkdown("", enable_streaming=True)
    model = pane.get_root(document)  # the pane's Bokeh model, as the browser gets it
    document.add_root(model)
    changed: list[str] = []
    document.on_change(lambda event: changed.append(getattr(event, "attr", "")))
    for text in ("# A\n\nfirst block\n\n", "second <img src=x onerror=alert(1)>"):
        pane.object += text
    assert "text" not in changed  # no full-text update: only the new suffix is streamed
    assert_inert(html.unescape(model.text))
    assert "second &lt;img" in html.unescape(model.text)
