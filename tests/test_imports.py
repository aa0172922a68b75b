"""Traces imported from files that LangChain's tracer and OpenTelemetry's SDK wrote from real runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import QUESTION, adding_agent
from langchain_core.runnables import RunnableLambda
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

from panel_langchain_steps import from_langsmith, from_otel, imports
from panel_langchain_steps.trace import FAILED, SUCCESS, Trace
from panel_langchain_steps.trace_view import TraceView, totals


def boom(text: str) -> str:
    raise ValueError(f"boom: {text}")


def langsmith_export(path: Path) -> Path:
    """The flat list of run objects LangSmith exports, from LangChain's own tracer on real runs."""
    collector = RunCollectorCallbackHandler()
    adding_agent().invoke(QUESTION, config={"callbacks": [collector]})
    with pytest.raises(ValueError):
        RunnableLambda(boom).invoke("x", config={"callbacks": [collector]})

    def flat(run):
        yield run.model_dump(mode="json", fallback=repr)  # LangGraph's Send objects, say
        for child in run.child_runs:
            yield from flat(child)

    runs = [item for root in collector.traced_runs for item in flat(root)]
    path.write_text(json.dumps(runs[::-1]), encoding="utf-8")  # any order: children before parents here
    return path


def otel_export(path: Path) -> Path:
    """OTLP JSON from OpenTelemetry's SDK and encoder, of OpenInference's LangChain spans."""
    pytest.importorskip("openinference.instrumentation.langchain")
    from google.protobuf.json_format import MessageToDict
    from openinference.instrumentation.langchain import LangChainInstrumentor
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        adding_agent().invoke(QUESTION)
        with pytest.raises(ValueError):
            RunnableLambda(boom).invoke("x")
    finally:
        instrumentor.uninstrument()
    path.write_text(json.dumps(MessageToDict(encode_spans(exporter.get_finished_spans()))), encoding="utf-8")
    return path


def outline(trace: Trace) -> list[tuple[int, str, str, str]]:
    depth = {}
    rows = []
    for run in trace.runs:
        depth[run.id] = depth.get(run.parent_id, -1) + 1
        rows.append((depth[run.id], run.kind, run.name, run.status))
    return rows


def check_agent_and_failure(trace: Trace) -> None:
    rows = outline(trace)
    assert rows[0] == (0, "chain", "LangGraph", SUCCESS)
    assert [row for row in rows if row[1] in ("llm", "tool")] == [
        (2, "llm", "ScriptedChatModel", SUCCESS),
        (2, "tool", "add", SUCCESS),
        (2, "llm", "ScriptedChatModel", SUCCESS),
    ]
    assert rows[-1] == (0, "chain", "boom", FAILED)
    failed = trace.roots[-1]
    assert failed.error["type"] == "ValueError" and "boom: x" in failed.error["message"]
    numbers = totals(trace, {"scripted-model": (1.0, 1.0)})
    assert (numbers["input_tokens"], numbers["output_tokens"], numbers["errors"]) == (20, 7, 1)
    assert numbers["cost"] == pytest.approx(27 / 1_000_000)
    models = [run for run in trace.runs if run.kind == "llm"]
    assert [run.text.get("text") for run in models] == ["Let me add.", "The sum is 3."]
    assert all(run.end_time >= run.start_time > 0 for run in trace.runs)


def test_langsmith_runs_from_langchains_tracer(tmp_path, document):
    path = langsmith_export(tmp_path / "runs.json")
    trace = from_langsmith(json.loads(path.read_text()))
    check_agent_and_failure(trace)
    assert "Traceback" in trace.roots[-1].error["traceback"]
    assert outline(imports.load(path)) == outline(trace)
    view = TraceView(trace)
    view.__panel__().get_root(document)
    assert len(view.rows) == len(trace)


def test_otel_spans_from_the_sdk_and_openinference(tmp_path):
    path = otel_export(tmp_path / "spans.json")
    trace = from_otel(json.loads(path.read_text()))
    check_agent_and_failure(trace)
    assert outline(imports.load(path)) == outline(trace)


def test_imported_traces_save_and_load(tmp_path):
    trace = from_langsmith(json.loads(langsmith_export(tmp_path / "runs.json").read_text()))
    trace.save(tmp_path / "trace.json")
    assert outline(imports.load(tmp_path / "trace.json")) == outline(trace)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"id": "x"}, r"runs: expected a list of runs"),
        ([42], r"runs\[0\]: expected a run object"),
        ([{"run_type": "chain"}], r"runs\[0\]\.id: expected a non-empty string"),
        ([{"id": "a", "run_type": "chain", "start_time": "yesterday"}], r"runs\[0\]\.start_time: not an ISO"),
        (
            [
                {
                    "id": "a",
                    "run_type": "chain",
                    "start_time": "2025-01-01T00:00:00Z",
                    "child_runs": [{"id": "b"}],
                }
            ],
            r"runs\[0\]\.child_runs\[0\]\.run_type",
        ),
    ],
)
def test_malformed_langsmith_runs_name_the_field(data, message):
    with pytest.raises(ValueError, match=message):
        from_langsmith(data)


SPAN = {"spanId": "s1", "name": "x", "startTimeUnixNano": "1000000000", "endTimeUnixNano": "2000000000"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], r"spans: expected an OTLP JSON object"),
        ({"resourceSpans": [{"scopeSpans": {}}]}, r"resourceSpans\[0\]\.scopeSpans: expected a list"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": [{**SPAN, "spanId": 7}]}]}]}, r"spans\[0\]\.spanId"),
        (
            {"resourceSpans": [{"scopeSpans": [{"spans": [{**SPAN, "startTimeUnixNano": "soon"}]}]}]},
            r"spans\[0\]\.startTimeUnixNano: expected nanoseconds",
        ),
        (
            {
                "resourceSpans": [
                    {"scopeSpans": [{"spans": [{**SPAN, "attributes": [{"key": "a", "value": 3}]}]}]}
                ]
            },
            r"spans\[0\]\.attributes\[0\]\.value: expected an AnyValue",
        ),
    ],
)
def test_malformed_otel_names_the_field(data, message):
    with pytest.raises(ValueError, match=message):
        from_otel(data)


def test_unreadable_files_name_the_line(tmp_path):
    (tmp_path / "cut.json").write_text('[{"id": "a",\n "run_type": ', encoding="utf-8")
    with pytest.raises(ValueError, match=r"cut\.json: not valid JSON.* at line 2"):
        imports.load(tmp_path / "cut.json")
    (tmp_path / "empty.json").write_text(" ", encoding="utf-8")
    with pytest.raises(ValueError, match="the file is empty"):
        imports.load(tmp_path / "empty.json")
