"""Traces from elsewhere: LangSmith run exports and OpenTelemetry (OTLP JSON) spans.

`from_langsmith` reads the runs LangSmith exports (and LangChain's own tracers
produce): a list of run objects with ``id``, ``parent_run_id``, ``run_type``,
``start_time``/``end_time`` as ISO strings, ``inputs``, ``outputs``,
``error``, ``extra.metadata``, ``tags``, ``events`` (nested ``child_runs``
are read too). `from_otel` reads OTLP JSON (``resourceSpans`` →
``scopeSpans`` → ``spans``) with OpenInference (``openinference.span.kind``,
``llm.token_count.*``, ``input.value``) or OpenTelemetry GenAI
(``gen_ai.*``) attributes. Both return a `Trace` whose runs have ended; data
that does not fit raises `ValueError` naming the item and field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from .trace import FAILED, KINDS, RUNNING, SUCCESS, RunRecord, Trace

_OPENINFERENCE_KINDS = {"LLM": "llm", "TOOL": "tool", "RETRIEVER": "retriever"}
_GEN_AI_KINDS = {"chat": "llm", "text_completion": "llm", "generate_content": "llm", "execute_tool": "tool"}
_OTEL_ERROR = ("STATUS_CODE_ERROR", 2)
# "ValueError('boom: x')" at the start of LangChain's error text, the traceback after it.
_ERROR_HEAD = re.compile(r"([A-Za-z_][\w.]*)\((.*?)\)(?=Traceback|\s*$)", re.DOTALL)


# -- LangSmith -------------------------------------------------------------------


def from_langsmith(runs: Any, source: str = "runs") -> Trace:
    """A trace from LangSmith's run export: a list of run objects (or ``{"runs": [...]}``)."""
    if isinstance(runs, dict) and isinstance(runs.get("runs"), list):
        runs = runs["runs"]
    if not isinstance(runs, list):
        raise ValueError(f"{source}: expected a list of runs, got {type(runs).__name__}")
    records = [_langsmith_run(item, where) for item, where in _flatten(runs, source)]
    return _trace(records)


def _flatten(runs: list[Any], source: str, parent: str | None = None) -> Iterator[tuple[Any, str]]:
    """Every run with where it is, nested ``child_runs`` included (their parent filled in)."""
    for index, item in enumerate(runs):
        where = f"{source}[{index}]"
        if isinstance(item, dict) and parent is not None and not item.get("parent_run_id"):
            item = {**item, "parent_run_id": parent}
        yield item, where
        children = item.get("child_runs") if isinstance(item, dict) else None
        if children:
            yield from _flatten(children, f"{where}.child_runs", str(item.get("id")))


def _langsmith_run(item: Any, where: str) -> RunRecord:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected a run object, got {type(item).__name__}")
    run_id = _required_str(item, "id", where)
    run_type = _required_str(item, "run_type", where)
    extra = item.get("extra") or {}
    if not isinstance(extra, dict):
        raise ValueError(f"{where}.extra: expected an object, got {type(extra).__name__}")
    metadata = dict(extra.get("metadata") or {})
    invocation = extra.get("invocation_params") or {}
    start = _iso_time(item.get("start_time"), f"{where}.start_time")
    end = _iso_time(item.get("end_time"), f"{where}.end_time") if item.get("end_time") else None
    error = item.get("error")
    status = FAILED if error or item.get("status") == "error" else SUCCESS if end is not None else RUNNING
    outputs = item.get("outputs")
    message = _generated_message(outputs) if run_type == "llm" else {}
    run = RunRecord(
        run_id,
        str(item["parent_run_id"]) if item.get("parent_run_id") else None,
        run_type if run_type in KINDS else "chain",
        name=str(item.get("name") or run_type),
        run_type=run_type,
        tags=[str(tag) for tag in item.get("tags") or []],
        metadata=metadata,
        status=status,
        start_time=start,
        end_time=end,
        first_token_time=_first_token(item.get("events"), where),
        inputs=item.get("inputs"),
        outputs=outputs,
        tool_calls=list(message.get("tool_calls") or []),
        usage=message.get("usage_metadata") or _langsmith_usage(item),
        model=metadata.get("ls_model_name") or invocation.get("model_name") or invocation.get("model"),
        error=_error_text(str(error)) if error else None,
    )
    text = message.get("content")
    if isinstance(text, str) and text:
        run.append_text("text", text)
    return run


def _generated_message(outputs: Any) -> dict[str, Any]:
    """The message of an LLM run's first generation (as LangChain serializes it), or {}."""
    try:
        message = outputs["generations"][0][0]["message"]
    except (KeyError, IndexError, TypeError):
        return {}
    if isinstance(message, dict) and isinstance(message.get("kwargs"), dict):
        return message["kwargs"]
    return message if isinstance(message, dict) else {}


def _langsmith_usage(item: dict[str, Any]) -> dict[str, int] | None:
    """Token counts LangSmith's API puts on the run itself."""
    if item.get("prompt_tokens") is None and item.get("completion_tokens") is None:
        return None
    input_tokens, output_tokens = int(item.get("prompt_tokens") or 0), int(item.get("completion_tokens") or 0)
    total = int(item.get("total_tokens") or input_tokens + output_tokens)
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": total}


def _first_token(events: Any, where: str) -> float | None:
    for index, event in enumerate(events or []):
        if isinstance(event, dict) and event.get("name") == "new_token":
            return _iso_time(event.get("time"), f"{where}.events[{index}].time")
    return None


def _iso_time(value: Any, where: str) -> float:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected an ISO 8601 time, got {value!r}")
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise ValueError(f"{where}: not an ISO 8601 time: {value!r}") from None


def _error_text(text: str) -> dict[str, str]:
    """LangChain's error text (``ValueError('boom')`` then the traceback) as the trace's error object."""
    found = _ERROR_HEAD.match(text)
    if found is None:
        return {"type": "Error", "message": text.strip().split("\n", 1)[0], "traceback": text}
    return {"type": found[1], "message": found[2].strip("'\""), "traceback": text[found.end() :].strip()}


# -- OpenTelemetry ---------------------------------------------------------------


def from_otel(data: Any, source: str = "spans") -> Trace:
    """A trace from OTLP JSON: ``{"resourceSpans": [{"scopeSpans": [{"spans": [...]}]}]}``."""
    if not isinstance(data, dict) or not isinstance(data.get("resourceSpans"), list):
        raise ValueError(f"{source}: expected an OTLP JSON object with a 'resourceSpans' list")
    records = []
    for r, resource in enumerate(data["resourceSpans"]):
        for s, scope in enumerate(_list(resource, "scopeSpans", f"{source}.resourceSpans[{r}]")):
            where = f"{source}.resourceSpans[{r}].scopeSpans[{s}]"
            for index, span in enumerate(_list(scope, "spans", where)):
                records.append(_otel_span(span, f"{where}.spans[{index}]"))
    return _trace(records)


def _list(parent: Any, key: str, where: str) -> list[Any]:
    value = parent.get(key, []) if isinstance(parent, dict) else None
    if not isinstance(value, list):
        raise ValueError(f"{where}.{key}: expected a list")
    return value


def _otel_span(span: Any, where: str) -> RunRecord:
    if not isinstance(span, dict):
        raise ValueError(f"{where}: expected a span object, got {type(span).__name__}")
    span_id = _required_str(span, "spanId", where)
    attributes = _attributes(span.get("attributes") or [], f"{where}.attributes")
    kind = _OPENINFERENCE_KINDS.get(str(attributes.get("openinference.span.kind", "")).upper()) or (
        _GEN_AI_KINDS.get(str(attributes.get("gen_ai.operation.name", "")), "chain")
    )
    start = _nanos(span.get("startTimeUnixNano"), f"{where}.startTimeUnixNano")
    end = (
        _nanos(span.get("endTimeUnixNano"), f"{where}.endTimeUnixNano")
        if span.get("endTimeUnixNano")
        else None
    )
    status = span.get("status") or {}
    failed = status.get("code") in _OTEL_ERROR
    metadata = _json_value(attributes.get("metadata"))
    model = attributes.get("llm.model_name") or attributes.get("gen_ai.response.model")
    run = RunRecord(
        span_id,
        span.get("parentSpanId") or None,
        kind,
        name=str(span.get("name") or kind),
        run_type=kind,
        metadata=metadata if isinstance(metadata, dict) else {},
        status=FAILED if failed else SUCCESS if end is not None else RUNNING,
        start_time=start,
        end_time=end,
        inputs=_json_value(attributes.get("input.value")),
        outputs=_json_value(attributes.get("output.value")),
        usage=_otel_usage(attributes),
        model=str(model or attributes.get("gen_ai.request.model") or "") or None,
        error=_otel_error(span, status) if failed else None,
    )
    text = attributes.get("llm.output_messages.0.message.content")
    if isinstance(text, str) and text:
        run.append_text("text", text)
    return run


def _attributes(items: Any, where: str) -> dict[str, Any]:
    """OTLP's ``[{key, value: {stringValue | intValue | ...}}]`` as a plain dict."""
    if not isinstance(items, list):
        raise ValueError(f"{where}: expected a list of key/value objects")
    result = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise ValueError(f"{where}[{index}]: expected {{'key': str, 'value': {{...}}}}, got {item!r}")
        result[item["key"]] = _any_value(item.get("value") or {}, f"{where}[{index}].value")
    return result


def _any_value(value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an AnyValue object, got {value!r}")
    if "stringValue" in value:
        return str(value["stringValue"])
    if "intValue" in value:  # int64 is a string in OTLP JSON
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            raise ValueError(f"{where}.intValue: not an integer: {value['intValue']!r}") from None
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        values = (value["arrayValue"] or {}).get("values") or []
        return [_any_value(item, f"{where}.arrayValue.values[{i}]") for i, item in enumerate(values)]
    return None


def _nanos(value: Any, where: str) -> float:
    try:
        return int(value) / 1e9
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected nanoseconds since the epoch, got {value!r}") from None


def _json_value(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _otel_usage(attributes: dict[str, Any]) -> dict[str, Any] | None:
    input_tokens = attributes.get("llm.token_count.prompt", attributes.get("gen_ai.usage.input_tokens"))
    output_tokens = attributes.get("llm.token_count.completion", attributes.get("gen_ai.usage.output_tokens"))
    if input_tokens is None and output_tokens is None:
        return None
    usage: dict[str, Any] = {"input_tokens": int(input_tokens or 0), "output_tokens": int(output_tokens or 0)}
    usage["total_tokens"] = int(attributes.get("llm.token_count.total") or sum(usage.values()))
    cache = attributes.get("llm.token_count.prompt_details.cache_read")
    reasoning = attributes.get("llm.token_count.completion_details.reasoning")
    if cache:
        usage["input_token_details"] = {"cache_read": int(cache)}
    if reasoning:
        usage["output_token_details"] = {"reasoning": int(reasoning)}
    return usage


def _otel_error(span: dict[str, Any], status: dict[str, Any]) -> dict[str, str]:
    for event in span.get("events") or []:
        if isinstance(event, dict) and event.get("name") == "exception":
            found = _attributes(event.get("attributes") or [], "exception event")
            return {
                "type": str(found.get("exception.type") or "Error"),
                "message": str(found.get("exception.message") or status.get("message") or ""),
                "traceback": str(found.get("exception.stacktrace") or ""),
            }
    return {"type": "Error", "message": str(status.get("message") or ""), "traceback": ""}


# -- shared ----------------------------------------------------------------------


def _required_str(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}.{key}: expected a non-empty string, got {value!r}")
    return value


def _trace(records: Iterable[RunRecord]) -> Trace:
    """The records as a trace: each added after its parent (exports list them in any order)."""
    by_id = {run.id: run for run in records}
    trace = Trace()
    added: set[str] = set()

    def add(run: RunRecord) -> None:
        if run.id in added:
            return
        added.add(run.id)  # before its parent, so a cycle of parents ends
        parent = by_id.get(run.parent_id or "")
        if parent is not None:
            add(parent)
        trace.add_record(run)

    for run in sorted(by_id.values(), key=lambda run: run.start_time):
        add(run)
    return trace


def load(path: str | Path) -> Trace:
    """A trace from a file of any kind read here: a saved trace, LangSmith runs or OTLP JSON."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return Trace.load(path)  # which says what is wrong with a file that is empty or not JSON
    if isinstance(data, dict) and "resourceSpans" in data:
        return from_otel(data, str(path))
    if isinstance(data, list) or (isinstance(data, dict) and "runs" in data and "format" not in data):
        return from_langsmith(data, str(path))
    return Trace.from_dict(data, str(path))
