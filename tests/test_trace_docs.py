"""The trace view's parameters and the trace file's fields are all documented."""

from __future__ import annotations

from pathlib import Path

from panel_langchain_steps.trace import Trace
from panel_langchain_steps.trace_view import TraceView

DOCS = Path(__file__).parent.parent / "docs"


def test_every_trace_view_parameter_is_documented():
    text = (DOCS / "trace-view.md").read_text()
    missing = [name for name in TraceView.param if name != "name" and f"| `{name}` |" not in text]
    assert not missing, f"docs/trace-view.md does not document {missing}"


def test_every_saved_field_is_documented():
    trace = Trace()
    trace.start("r1", None, "chain", name="root")
    data = trace.to_dict()
    text = (DOCS / "trace-format.md").read_text()
    fields = [*data, *data["runs"][0]]
    missing = [field for field in fields if f"| `{field}` |" not in text]
    assert not missing, f"docs/trace-format.md does not document {missing}"
