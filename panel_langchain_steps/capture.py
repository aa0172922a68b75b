"""What a LangChain callback event says, as plain data for the `Trace`.

Pure functions: they read LangChain's objects (serialized runnables,
``LLMResult``, message chunks, documents, exceptions) and return the names,
texts, usage and outcomes the run record keeps. Nothing here renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .snapshot import printable
from .trace import FAILED, PAUSED, STOPPED, SUCCESS

#: Exceptions that mean the run was stopped, not that it went wrong.
CANCELLATIONS = frozenset({"CancelledError", "KeyboardInterrupt", "GeneratorExit", "StopRun"})
#: LangGraph's pause (``interrupt()``) and hand-off (``Command(graph=PARENT)``).
PAUSE, HAND_OFF = "GraphInterrupt", "ParentCommand"


class StopRun(BaseException):
    """Raised into a run the user stopped, at its next callback event.

    A ``BaseException`` (like ``KeyboardInterrupt``), so neither LangChain's
    callback dispatch nor a tool's error handling turns it into a result.
    """


def exception_names(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__}


def error_status(error: BaseException) -> str:
    """The status a run that raised ``error`` ends with."""
    names = exception_names(error)
    if PAUSE in names:
        return PAUSED
    if HAND_OFF in names:
        return SUCCESS
    if names & CANCELLATIONS:
        return STOPPED
    return FAILED


def run_name(kind: str, serialized: Any, kwargs: dict[str, Any]) -> str:
    """The run's display name: the model for model runs, else the runnable's name."""
    serialized = serialized if isinstance(serialized, dict) else {}
    if kind == "llm":
        model = model_name(kwargs)
        if model:
            return model
    name = kwargs.get("name") or serialized.get("name")
    if not name and serialized.get("id"):
        name = serialized["id"][-1]
    return printable(name or "")


def model_name(kwargs: dict[str, Any]) -> str | None:
    metadata = kwargs.get("metadata") or {}
    params = kwargs.get("invocation_params") or {}
    name = metadata.get("ls_model_name") or params.get("model") or params.get("model_name")
    return printable(name) if name else None


def interrupts(error: BaseException) -> dict[str, Any]:
    """The pending requests of a LangGraph ``GraphInterrupt``, by interrupt id (empty for other errors)."""
    if PAUSE not in exception_names(error) or not error.args:
        return {}
    found = error.args[0]
    found = list(found) if isinstance(found, list | tuple) else [found]
    return {printable(getattr(i, "id", None) or id(i)): getattr(i, "value", i) for i in found}


def resumes(inputs: Any) -> bool:
    """Whether a run's input resumes a paused graph (a LangGraph ``Command(resume=...)``)."""
    return getattr(inputs, "resume", None) is not None


def final_message(response: Any) -> Any:
    """The message of an ``LLMResult``'s first generation (its text for plain LLMs)."""
    try:
        generation = response.generations[0][0]
    except (AttributeError, IndexError, TypeError):
        return None
    return getattr(generation, "message", None) or generation.text


def text_pieces(message: Any) -> list[tuple[str, str]]:
    """``(section, text)`` pieces of a message or chunk: "text" and "reasoning"."""
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return [("text", content)] if content else []
    blocks = getattr(message, "content_blocks", None) or content or []
    return [
        (kind, block[kind])
        for block in blocks
        if isinstance(block, dict)
        and (kind := block.get("type")) in ("text", "reasoning")
        and block.get(kind)
    ]


def tool_calls(message: Any) -> list[dict[str, Any]]:
    return [
        {"name": call.get("name"), "args": call.get("args"), "id": call.get("id")}
        for call in getattr(message, "tool_calls", None) or []
    ]


def usage(message: Any) -> dict[str, Any] | None:
    found = getattr(message, "usage_metadata", None)
    return dict(found) if found else None


def added_usage(known: dict[str, Any] | None, chunk: Any) -> dict[str, Any] | None:
    """Usage so far, with a streamed chunk's usage added (providers report it in pieces: Anthropic
    the input at the start, the output at the end); None when the chunk reports none."""
    found = getattr(chunk, "usage_metadata", None)
    if not found:
        return None
    from langchain_core.messages.ai import add_usage

    return dict(add_usage(known, found)) if known else dict(found)  # type: ignore[arg-type]


def streamed_tool_calls(known: list[dict[str, Any]], chunk: Any) -> list[dict[str, Any]] | None:
    """The tool calls so far with a chunk's ``tool_call_chunks`` added, as the model writes them.

    A call still being written has its arguments as the JSON text so far (a
    string); the run's end replaces them with the parsed calls. None when the
    chunk has no tool-call pieces. A new list: readers never see one change.
    """
    pieces = getattr(chunk, "tool_call_chunks", None)
    if not pieces:
        return None
    calls = [dict(call) for call in known]
    for piece in pieces:
        index, call_id = piece.get("index"), piece.get("id")
        same = next(
            (
                call
                for call in calls
                if (index is not None and call.get("index") == index)
                or (call_id and call.get("id") == call_id)
            ),
            None,
        )
        if same is None:
            calls.append({"name": piece.get("name") or "", "args": "", "id": call_id, "index": index})
            same = calls[-1]
        same["args"] = (same["args"] if isinstance(same["args"], str) else "") + (piece.get("args") or "")
        same["name"] = same["name"] or piece.get("name") or ""
        same["id"] = same["id"] or call_id
    return calls


def tool_output(output: Any) -> Any:
    """A tool's result: a ``ToolMessage``'s content, its text parts joined."""
    content = getattr(output, "content", output)
    if isinstance(content, list) and all(isinstance(part, str | dict) for part in content):
        joined = "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in content)
        return joined or content
    return content


def documents(found: Sequence[Any]) -> list[dict[str, Any]]:
    """Retrieved documents as ``{"page_content", "metadata"}``."""
    return [
        {
            "page_content": printable(getattr(document, "page_content", document)),
            "metadata": getattr(document, "metadata", None) or {},
        }
        for document in found or []
    ]
