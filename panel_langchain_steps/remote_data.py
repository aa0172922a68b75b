"""What a LangGraph server's run stream carries, as LangChain's own objects.

The server sends JSON: messages, documents and generations are rebuilt as the
objects a local run's callbacks get, and an error as a `RemoteError` of the
server's exception's name, so the handler records a remote run as it records
a local one.
"""

from __future__ import annotations

from typing import Any


class RemoteError(Exception):
    """An exception raised on the LangGraph server, as the stream reported it.

    Instances are of a subclass named as the server's exception (``ValueError``,
    ``GraphInterrupt``, ...), so a step says what was raised and a pause or a
    cancellation ends its run as ``paused`` or ``stopped``, as a local one does.
    """


_ERROR_TYPES: dict[str, type[RemoteError]] = {}


def remote_error(name: Any, *args: Any) -> RemoteError:
    """A `RemoteError` of the subclass named ``name`` (``RemoteError`` itself for odd names)."""
    name = str(name or "")
    if not name.isidentifier():
        return RemoteError(*args)
    cls = _ERROR_TYPES.get(name)
    if cls is None:
        cls = _ERROR_TYPES.setdefault(name, type(name, (RemoteError,), {"__module__": "langgraph server"}))
    return cls(*args)


def _message_classes() -> dict[str, type]:
    from langchain_core import messages

    return {
        "ai": messages.AIMessage,
        "AIMessageChunk": messages.AIMessageChunk,
        "human": messages.HumanMessage,
        "HumanMessageChunk": messages.HumanMessageChunk,
        "system": messages.SystemMessage,
        "SystemMessageChunk": messages.SystemMessageChunk,
        "tool": messages.ToolMessage,
        "ToolMessageChunk": messages.ToolMessageChunk,
        "function": messages.FunctionMessage,
        "chat": messages.ChatMessage,
        "remove": messages.RemoveMessage,
    }


_MESSAGES: dict[str, type] = {}


def revive(value: Any) -> Any:
    """``value`` with the messages and documents in it (as the server's JSON) rebuilt as objects."""
    if isinstance(value, list):
        return [revive(item) for item in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("type")
    if isinstance(kind, str):
        if not _MESSAGES:
            _MESSAGES.update(_message_classes())
        cls = _MESSAGES.get(kind)
        if cls is not None and "content" in value:
            try:
                return cls(**value)
            except Exception:  # not a message after all: kept as data
                return value
        if kind == "Document" and "page_content" in value:
            from langchain_core.documents import Document

            return Document(**{key: value[key] for key in ("page_content", "metadata", "id") if key in value})
    return {key: revive(item) for key, item in value.items()}


def generation(chunk: Any) -> Any:
    from langchain_core.messages import BaseMessageChunk
    from langchain_core.outputs import ChatGenerationChunk

    return ChatGenerationChunk(message=chunk) if isinstance(chunk, BaseMessageChunk) else None


def llm_result(output: Any) -> Any:
    """An ``LLMResult`` of a model's end (a message for chat models, generations for LLMs)."""
    from langchain_core.messages import BaseMessage
    from langchain_core.outputs import ChatGeneration, Generation, LLMResult

    message = revive(output)
    if isinstance(message, BaseMessage):
        return LLMResult(generations=[[ChatGeneration(message=message)]])
    generations = output.get("generations") if isinstance(output, dict) else None
    if generations:
        texts = [[Generation(text=str(g.get("text", ""))) for g in batch] for batch in generations]
        return LLMResult(generations=texts)
    return LLMResult(generations=[])


def part_error(found: Any) -> RemoteError:
    """The exception an ``error`` part (or an errored run's data) reports."""
    if isinstance(found, dict):
        return remote_error(
            found.get("error") or found.get("type") or "RemoteError", str(found.get("message"))
        )
    return remote_error("RemoteError", str(found))


def plain_text(chunk: Any) -> bool:
    """Whether a streamed chunk is text and nothing else (no tool-call pieces, usage or blocks)."""
    return (
        isinstance(chunk, dict)
        and isinstance(chunk.get("content"), str)
        and not chunk.get("tool_call_chunks")
        and not chunk.get("usage_metadata")
    )
