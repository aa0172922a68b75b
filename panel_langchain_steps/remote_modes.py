"""A remote run's stream without the ``events`` mode: steps from what the other modes carry.

The ``events`` mode gives every run of the graph (see `remote`). Without it,
the other modes still say a good deal, and each becomes the handler's
callbacks as a local run's events do, under one run for the whole graph run
(named ``LangGraph``, as an unnamed local graph's run is):

- ``tasks`` and ``debug``: each node's start and result, nested in its
  subgraph (a node that failed fails, one that paused asks for the decision);
- ``updates``: each node, once it has run (when neither of those is asked for);
- ``messages-tuple``: each model call, its tokens, tool-call arguments and
  usage as they stream, and each tool's result;
- ``custom``: the writer's chunks, as progress in the newest open step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, uuid5

from langchain_core.messages import AIMessage

from .remote_data import generation, llm_result, plain_text, remote_error, revive

if TYPE_CHECKING:
    from .remote import RemoteRun

#: The name of the run standing for the whole graph run (the stream does not say the graph's).
GRAPH_RUN = "LangGraph"


class ModesRecorder:
    """The steps of one followed stream, from its ``tasks``, ``debug``, ``updates``,
    ``messages-tuple`` and ``custom`` parts."""

    def __init__(self, run: RemoteRun):
        self.run = run
        self.handler = run.handler
        self._root_key: Any = None
        self._tasks = False  # node starts and ends come from tasks or debug (not from updates)
        self._models: dict[Any, Any] = {}  # open model runs: what they streamed beyond text
        self._nodes = 0  # node runs made from updates
        # Node runs the messages mode showed (their models and tools), by (namespace, node): the
        # update each of them sends later is not shown again.
        self._shown: dict[tuple[str, str], set[str]] = {}
        self._updated: dict[tuple[str, str], int] = {}

    def record(self, mode: str, namespace: str, data: Any) -> None:
        if mode == "tasks":
            self._task(namespace, data)
        elif mode == "debug" and isinstance(data, dict) and data.get("type") in ("task", "task_result"):
            self._task(namespace, data.get("payload") or {}, step=data.get("step"))
        elif mode == "updates" and isinstance(data, dict) and not self._tasks:
            self._updates(namespace, data)
        elif mode == "messages" and isinstance(data, list | tuple) and len(data) == 2:
            self._message(*data)
        elif mode == "custom":
            runs = self.run.open_runs()
            self.handler.on_custom_event("progress", data, run_id=runs[0].key if runs else self.root())

    def finish(self) -> None:
        """The stream ended without an error: the graph run succeeded (its models ended with it)."""
        for key in list(self._models):
            self._end_model(key)
        if self._root_key is not None:
            self.handler.on_chain_end(None, run_id=self._root_key)

    # -- the graph run and its nodes ----------------------------------------------------

    def root(self) -> Any:
        """The run standing for the whole graph run, started when first needed."""
        if self._root_key is None:
            self._root_key = self.run.key(self.run.run_id or _derived("run", id(self)))
            self.run.started(self._root_key)
            self.handler.on_chain_start(None, None, run_id=self._root_key, name=GRAPH_RUN)
        return self._root_key

    def paused_step(self) -> Any:
        """A step for an interrupt no open node stands for (the updates mode says no more)."""
        key = self.run.key(_derived("interrupt", self.root(), len(self.run.open_runs()), self._nodes))
        self.run.started(key)
        self._nodes += 1
        self.handler.on_chain_start(
            None, None, run_id=key, parent_run_id=self.root(), name="interrupt", tags=["graph:step:0"]
        )
        return self.handler.trace.live(key)

    def _parent(self, namespace: str) -> Any:
        """The run of the innermost task a namespace (``node:task_id|...``) names, else the graph's."""
        task = namespace.rpartition("|")[2].partition(":")[2]
        key = self.run.key(task) if task else None
        return key if key is not None and self.handler.trace.live(key) is not None else self.root()

    def _task(self, namespace: str, task: dict[str, Any], step: Any = None) -> None:
        self._tasks = True
        key = self.run.key(task.get("id"))
        if "result" not in task and "error" not in task and "interrupts" not in task:
            self.run.started(key)
            name = str(task.get("name") or "")
            self.handler.on_chain_start(
                None,
                revive(task.get("input")),
                run_id=key,
                parent_run_id=self._parent(namespace),
                name=name,
                tags=[f"graph:step:{step if step is not None else 0}"],
                metadata={"langgraph_node": name},
            )
            return
        interrupts = task.get("interrupts")
        if task.get("error"):
            error = task["error"]
            if isinstance(error, dict):
                error = remote_error(error.get("error") or "RemoteError", str(error.get("message")))
            else:
                error = remote_error("RemoteError", str(error))
            self.handler.on_chain_error(error, run_id=key)
        elif interrupts:
            run = self.handler.trace.live(key)
            self.run.pause([run] if run is not None else [], interrupts)
        else:
            self.handler.on_chain_end(revive(task.get("result")), run_id=key)

    def _updates(self, namespace: str, data: dict[str, Any]) -> None:
        for node, update in data.items():
            if node.startswith("__"):
                continue  # __interrupt__ (see RemoteRun), __metadata__
            where = (namespace, node)
            if len(self._shown.get(where, ())) > self._updated.get(where, 0):
                self._updated[where] = self._updated.get(where, 0) + 1
                continue  # its model and tool steps show it already
            self._nodes += 1
            key = self.run.key(_derived(self.root(), namespace, node, self._nodes))
            self.run.started(key)
            self.handler.on_chain_start(
                None,
                None,
                run_id=key,
                parent_run_id=self._parent(namespace),
                name=node,
                tags=["graph:step:0"],
                metadata={"langgraph_node": node},
            )
            self.handler.on_chain_end(revive(update), run_id=key)

    # -- models and tools ---------------------------------------------------------------

    def _message(self, message: Any, metadata: Any) -> None:
        metadata = metadata if isinstance(metadata, dict) else {}
        if not isinstance(message, dict):
            return
        checkpoint = str(metadata.get("langgraph_checkpoint_ns") or "")
        namespace, _, task = checkpoint.rpartition("|")
        node = str(metadata.get("langgraph_node") or task.partition(":")[0])
        self._shown.setdefault((namespace, node), set()).add(task)
        parent = self._parent(checkpoint)
        if message.get("type") == "tool":
            self._tool(revive(message), parent)
            return
        if message.get("type") not in ("AIMessageChunk", "ai"):
            return
        key = self.run.key(
            str(message.get("id") or "").removeprefix("lc_run--") or _derived("message", parent)
        )
        if key not in self._models:
            self._models[key] = None
            self.run.started(key)
            self.handler.on_chat_model_start(
                None, [], run_id=key, parent_run_id=parent, metadata=metadata, name="model"
            )
        if plain_text(message):
            self.handler.on_llm_new_token(message["content"], run_id=key)
        else:
            chunk = revive(message)
            merged = self._models[key]
            self._models[key] = chunk if merged is None else merged + chunk
            self.handler.on_llm_new_token(getattr(chunk, "content", ""), chunk=generation(chunk), run_id=key)
        if message.get("chunk_position") == "last" or message.get("type") == "ai":
            self._end_model(key)

    def _end_model(self, key: Any) -> None:
        merged = self._models.pop(key, None)
        run = self.handler.trace.live(key)
        if run is None:
            return
        fields = {"content": run.text_of("text")}
        if merged is not None:
            fields.update(tool_calls=merged.tool_calls, usage_metadata=merged.usage_metadata)
        self.handler.on_llm_end(llm_result(AIMessage(**fields)), run_id=key)

    def _tool(self, message: Any, parent: Any) -> None:
        """A tool's result (its call's arguments are in the model's run that asked for it)."""
        call_id = getattr(message, "tool_call_id", "")
        key = self.run.key(_derived("tool", call_id or getattr(message, "id", "")))
        args = next(
            (
                call.get("args")
                for run in self.handler.trace.runs
                if run.kind == "llm"
                for call in run.tool_calls
                if call.get("id") == call_id
            ),
            None,
        )
        self.run.started(key)
        name = getattr(message, "name", None) or "tool"
        self.handler.on_tool_start(None, str(args), inputs=args, run_id=key, parent_run_id=parent, name=name)
        if getattr(message, "status", "success") == "error":
            self.handler.on_tool_error(remote_error("ToolException", str(message.content)), run_id=key)
        else:
            self.handler.on_tool_end(message, run_id=key)


def _derived(*parts: Any) -> str:
    """A stable run id for something the stream names without one."""
    return str(uuid5(NAMESPACE_URL, "/".join(map(str, parts))))
