"""An offline, scripted chat model that streams like a real provider.

`ScriptedChatModel` drives real LangChain runnables and real LangGraph agents
without an API key: it streams its text token by token, then its tool calls as
JSON-argument fragments, then a last chunk with token usage, the way hosted
providers do. Tests, examples and benchmarks all use it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

_TOKEN = re.compile(r"\s*\S+|\s+")
_NUMBER = r"-?\d+(?:\.\d+)?"
_ARITHMETIC = re.compile(rf"{_NUMBER}(?:\s*[-+*/]\s*{_NUMBER})+")
_OPERATOR_WORDS = {"plus": "+", "minus": "-", "times": "*", "multiplied by": "*", "divided by": "/"}
_EARLIER_RESULT = re.compile(r"\b(?:that|it|this|the result|the answer)\b")


def split_tokens(text: str) -> list[str]:
    """Split text into word-sized tokens that join back to exactly ``text``."""
    return _TOKEN.findall(text)


def arithmetic(question: str, previous_answer: str = "") -> str | None:
    """The arithmetic a question asks for, as an expression ("12 * 7"), or None: for scripts.

    Operator words count ("3 plus 4"), and "that", "it" or "the result" stand
    for the last number of the previous answer, so "And what is that times 2?"
    after "The result is **84**." is ``"84 * 2"``.
    """
    text = f" {question.lower()} "
    for word, symbol in _OPERATOR_WORDS.items():
        text = text.replace(f" {word} ", f" {symbol} ")
    earlier = re.findall(_NUMBER, previous_answer)
    if earlier:
        text = _EARLIER_RESULT.sub(earlier[-1], text)
    found = _ARITHMETIC.search(text)
    return found[0] if found else None


#: Characters of a tool call's JSON arguments per streamed piece (providers send a few at a time).
ARGS_PIECE = 6


def json_pieces(text: str, size: int = ARGS_PIECE) -> list[str]:
    """JSON text cut into pieces of ``size`` characters, as providers stream tool-call arguments."""
    return [text[start : start + size] for start in range(0, len(text), size)]


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers from a script instead of a provider.

    ``responses`` is either a list of replies used in order (a ``str``, an
    ``AIMessage`` that may carry ``tool_calls`` and ``usage_metadata``, or a
    list of ``AIMessageChunk`` recorded from a provider, streamed as they
    are), or a function from the conversation so far to the next reply. ``token_delay`` seconds pass between
    streamed tokens, to look like a live model in demos.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    # A list of replies or a function of the conversation (see the class doc);
    # not validated by pydantic, which would rebuild the messages.
    responses: Any
    token_delay: float = 0.0
    model_name: str = "scripted-model"
    streaming: bool = False
    """Stream tokens even from ``invoke``, like a provider model made with ``streaming=True``."""

    _cursor: Iterator[int] = PrivateAttr(default_factory=itertools.count)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> dict:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "scripted"
        params["ls_model_name"] = self.model_name
        return params

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        """Accept any tools: the script already says which calls to make."""
        return self

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        if callable(self.responses):
            reply = self.responses(messages)
        else:
            with self._lock:
                index = next(self._cursor)
            if index >= len(self.responses):
                raise IndexError(f"ScriptedChatModel ran out of responses after {len(self.responses)}")
            reply = self.responses[index]
        return AIMessage(content=reply) if isinstance(reply, str) else reply

    def _chunks(self, reply: AIMessage | list[AIMessageChunk]) -> Iterator[AIMessageChunk]:
        if isinstance(reply, list):  # chunks recorded from a provider's integration: as they are
            yield from reply
            return
        # Like Anthropic: the input's usage comes first, the output's last (a stopped run keeps the first).
        usage = self._usage(reply)
        yield AIMessageChunk(content="", usage_metadata=_input_usage(usage))
        content = reply.content
        if isinstance(content, str):
            for token in split_tokens(content):
                yield AIMessageChunk(content=token)
        else:
            for index, block in enumerate(content):
                kind = block.get("type", "text")
                for token in split_tokens(block.get(kind, "")):
                    yield AIMessageChunk(content=[{"type": kind, kind: token, "index": index}])
        for index, call in enumerate(reply.tool_calls):
            # Like OpenAI: the name and id first, then the JSON arguments in small pieces.
            pieces = ["", *json_pieces(json.dumps(call["args"]))]
            for n, fragment in enumerate(pieces):
                first = n == 0
                yield AIMessageChunk(
                    content="",
                    tool_call_chunks=[
                        {
                            "name": call["name"] if first else None,
                            "args": fragment,
                            "id": call["id"] if first else None,
                            "index": index,
                        }
                    ],
                )
        yield AIMessageChunk(content="", usage_metadata=_output_usage(usage), chunk_position="last")

    def _usage(self, reply: AIMessage) -> dict[str, Any]:
        """The reply's own ``usage_metadata`` when the script gives one (cache and reasoning
        details too), else 10 tokens in and one out per word."""
        if reply.usage_metadata:
            return dict(reply.usage_metadata)
        output_tokens = max(len(split_tokens(reply.text)), 1)
        return {"input_tokens": 10, "output_tokens": output_tokens, "total_tokens": 10 + output_tokens}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        merged = None
        for chunk in self._chunks(self._next(messages)):
            merged = chunk if merged is None else merged + chunk
        message = AIMessage(**merged.model_dump(exclude={"type", "tool_call_chunks", "chunk_position"}))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(self._next(messages)):
            if self.token_delay and _written(chunk):
                time.sleep(self.token_delay)
            yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(self._next(messages)):
            await asyncio.sleep(self.token_delay if _written(chunk) else 0)
            yield ChatGenerationChunk(message=chunk)


def _written(chunk: AIMessageChunk) -> bool:
    """Whether a chunk carries something the model wrote (the usage-only ones come at once)."""
    return bool(chunk.content or chunk.tool_call_chunks)


def _input_usage(usage: dict[str, Any]) -> dict[str, Any]:
    input_ = usage["input_tokens"]
    part = {"input_tokens": input_, "output_tokens": 0, "total_tokens": input_}
    if usage.get("input_token_details"):
        part["input_token_details"] = dict(usage["input_token_details"])
    return part


def _output_usage(usage: dict[str, Any]) -> dict[str, Any]:
    output = usage["output_tokens"]
    part = {"input_tokens": 0, "output_tokens": output, "total_tokens": output}
    if usage.get("output_token_details"):
        part["output_token_details"] = dict(usage["output_token_details"])
    return part


def step_tree(layout: Any) -> list[dict[str, Any]]:
    """What a layout of steps shows, as data: for asserting on in tests.

    Each step (see `steps_in`) is ``{"title", "status", "collapsed", "text",
    "steps"}``, where ``text`` is the step's body as Markdown (built or not;
    see `Step.body_text`) and ``steps`` holds its child steps on the page.
    Changes not drawn yet are not included: call ``handler.flush()``.
    """
    from panel.pane import Markdown

    from .step_headers import steps_in

    found = []
    for step in steps_in(layout):
        if isinstance(getattr(type(step), "body_text", None), property):  # a run's step
            text = step.body_text
        else:
            text = "\n".join(o.object for o in step.objects if isinstance(o, Markdown))
        found.append(
            {
                "title": step.title,
                "status": step.status,
                "collapsed": step.collapsed,
                "text": text,
                "steps": step_tree(step),
            }
        )
    return found


def answer_text(message: Any) -> str:
    """The answer a reply message shows below its steps (a feed target's reply)."""
    from panel.pane import Markdown

    (answer,) = (item for item in message.object.objects if "reply-answer" in item.css_classes)
    return "".join(pane.object for pane in answer.objects if isinstance(pane, Markdown))


def outline(tree: list[dict[str, Any]], depth: int = 0) -> list[str]:
    """A `step_tree` as lines of step names (titles without their status), indented by nesting."""
    lines = []
    for step in tree:
        lines.append("  " * depth + step["title"].split(" · ")[0])
        lines.extend(outline(step["steps"], depth + 1))
    return lines


def iter_steps(tree: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every step of a `step_tree`, depth first."""
    for step in tree:
        yield step
        yield from iter_steps(step["steps"])
