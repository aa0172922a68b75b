"""A test-only LangChain callback handler that records real runs into a `Trace`.

The package's handler will write `handler.trace` itself; until then the trace
view, replay and import tests fill their traces through this small recorder.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

from panel_langchain_steps.trace import FAILED, SUCCESS, Trace


class TraceRecorder(BaseCallbackHandler):
    """Writes every run's start, tokens, end and error into ``trace``."""

    def __init__(self, trace: Trace | None = None):
        self.trace = trace if trace is not None else Trace()

    def _start(self, kind: str, serialized: Any, run_id: Any, parent_run_id: Any, inputs: Any, **kwargs: Any):
        name = kwargs.get("name") or (serialized or {}).get("name") or kind
        metadata = kwargs.get("metadata") or {}
        self.trace.start(
            run_id,
            parent_run_id,
            kind,
            name=name,
            tags=kwargs.get("tags"),
            metadata=metadata,
            inputs=inputs,
            model=metadata.get("ls_model_name"),
        )

    def _end(self, run_id: Any, outputs: Any = None, error: BaseException | None = None) -> None:
        run = self.trace.live(run_id)
        if run is not None:
            self.trace.end(run, FAILED if error else SUCCESS, outputs=outputs, exception=error)

    def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, **kwargs):
        self._start("chain", serialized, run_id, parent_run_id, inputs, **kwargs)

    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, **kwargs):
        self._start("llm", serialized, run_id, parent_run_id, messages, **kwargs)

    def on_tool_start(self, serialized, input_str, *, run_id, parent_run_id=None, inputs=None, **kwargs):
        self._start("tool", serialized, run_id, parent_run_id, inputs or input_str, **kwargs)

    def on_retriever_start(self, serialized, query, *, run_id, parent_run_id=None, **kwargs):
        self._start("retriever", serialized, run_id, parent_run_id, query, **kwargs)

    def on_llm_new_token(self, token, *, run_id, **kwargs):
        run = self.trace.live(run_id)
        if run is not None and isinstance(token, str):
            self.trace.write(run, "text", token)

    def on_llm_end(self, response, *, run_id, **kwargs):
        run = self.trace.live(run_id)
        if run is None:
            return
        message = getattr(response.generations[0][0], "message", None)
        if message is not None:
            self.trace.update(
                run, usage=getattr(message, "usage_metadata", None), tool_calls=message.tool_calls
            )
            if not run.streamed and message.text:
                self.trace.write(run, "text", message.text, streamed=False)
        self._end(run_id, message)

    def on_chain_end(self, outputs, *, run_id, **kwargs):
        self._end(run_id, outputs)

    def on_tool_end(self, output, *, run_id, **kwargs):
        self._end(run_id, output)

    def on_retriever_end(self, documents, *, run_id, **kwargs):
        self._end(run_id, documents)

    def on_chain_error(self, error, *, run_id, **kwargs):
        self._end(run_id, error=error)

    on_tool_error = on_llm_error = on_retriever_error = on_chain_error
