"""What a run carries, as JSON-safe data: the record keeps snapshots, never the app's objects.

A snapshot is taken when an event arrives: dicts, lists, text and numbers,
with LangChain's messages and documents, pydantic models and dataclasses as
their fields, and anything else as its text. It never raises: a value whose
``str()`` raises becomes ``"<unprintable Foo>"``. Each text is kept up to
`VALUE_CHARS` characters, each list or mapping up to `VALUE_ITEMS` items,
nested up to `VALUE_DEPTH` levels, so one huge tool output cannot hold the
app's memory through the trace. The app's objects are free once the event
has returned, and a later change to them does not change the trace.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import traceback
import weakref
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

#: Longest text kept of one string in a run's inputs, outputs, metadata, events or error (characters).
VALUE_CHARS = 100_000
#: Most items kept of one list, tuple, set or mapping.
VALUE_ITEMS = 1_000
#: Deepest nesting kept.
VALUE_DEPTH = 32

_SCALARS = (bool, int, float)
_CUT = re.compile(r"… \[([\d,]+) more characters\]\Z")

# Snapshots of pydantic models (messages, documents) by object, while the object lives: a graph's
# state carries the whole conversation into every node and model call, and each message is copied once.
_models: dict[int, tuple[weakref.ref, Any]] = {}


def printable(value: Any) -> str:
    """``str(value)``, or ``"<unprintable Foo>"`` when that raises."""
    if type(value) is str:
        return value
    try:
        return str.__str__(value) if isinstance(value, str) else str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def snapshot(value: Any, depth: int = 0) -> Any:
    """``value`` as bounded JSON data (see the module's docstring); never raises."""
    try:
        return _snapshot(value, depth)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def describe_error(error: BaseException) -> dict[str, str]:
    """An exception as data: its type, message, traceback and ``id`` (the same for every run it
    passed through)."""
    try:
        stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    except Exception:
        stack = ""
    return {
        "type": type(error).__name__,
        "message": _text(printable(error)),
        "traceback": _text(stack),
        "id": f"{id(error):x}",
    }


def _snapshot(value: Any, depth: int) -> Any:
    if value is None or type(value) in _SCALARS or type(value) is str:
        return _text(value) if type(value) is str else value
    known = _models.get(id(value))  # first: a long conversation is mostly messages copied before
    if known is not None and known[0]() is value:
        return known[1]
    if depth >= VALUE_DEPTH:
        return "<nested too deep>"
    if isinstance(value, str):
        return _text(printable(value))
    if isinstance(value, bool | int | float):  # subclasses (enums): the plain value
        return next(kind(value) for kind in _SCALARS if isinstance(value, kind))
    if isinstance(value, Mapping):
        items = list(value.items())
        data = {printable(key): snapshot(item, depth + 1) for key, item in items[:VALUE_ITEMS]}
        if len(items) > VALUE_ITEMS:
            data["…"] = f"{len(items) - VALUE_ITEMS:,} more items"
        return data
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else list(value)
        data = [snapshot(item, depth + 1) for item in items[:VALUE_ITEMS]]
        if len(items) > VALUE_ITEMS:
            data.append(f"… {len(items) - VALUE_ITEMS:,} more items")
        return data
    if isinstance(value, bytes | bytearray):
        try:
            return _text(bytes(value).decode())
        except UnicodeDecodeError:
            return f"<{len(value):,} bytes>"
    if isinstance(value, BaseModel):
        return _model(value, depth)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
        return snapshot(fields, depth)
    return _text(printable(value))


def _model(value: BaseModel, depth: int) -> Any:
    key = id(value)
    data = snapshot(value.model_dump(), depth)
    with contextlib.suppress(TypeError):  # a model that takes no weak references is copied each time
        _models[key] = (weakref.ref(value, lambda _, key=key: _models.pop(key, None)), data)
    return data


def full_length(text: str) -> int:
    """How long a text was before a snapshot cut it (its own length if it was not cut)."""
    found = _CUT.match(text, VALUE_CHARS) if len(text) > VALUE_CHARS else None
    return VALUE_CHARS + int(found[1].replace(",", "")) if found else len(text)


def _text(text: str) -> str:
    if len(text) > VALUE_CHARS:
        text = f"{text[:VALUE_CHARS]}… [{len(text) - VALUE_CHARS:,} more characters]"
    return text
