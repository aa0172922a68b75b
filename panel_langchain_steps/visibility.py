"""Which runs become steps: meaningful work is shown, glue is hidden.

A hidden run's children are re-attached to its nearest shown ancestor, so
hiding never loses a step below it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .trace import KINDS
from .trace import RunRecord as Run

#: How much of each turn is shown, least to most (the handler's ``verbosity``).
VERBOSITY = ("answer", "tools", "steps", "all")

#: The kinds of runs that act on the world or fetch from it: what ``verbosity="tools"`` shows.
ACTION_TYPES = frozenset({"tool", "retriever"})

#: Names of LangChain's composition runnables: plumbing, not steps.
GLUE_NAMES = frozenset({"<lambda>", "__start__", "__end__", "ChannelWrite", "RunnableCallable"})
GLUE_PREFIXES = ("Runnable", "ChannelWrite<", "Branch<")
GLUE_SUFFIXES = ("OutputParser", "PromptTemplate", "Parser")
GLUE_RUN_TYPES = frozenset({"prompt", "parser"})

#: Names LangChain's and LangGraph's prebuilt agents give their nodes: a node of these names
#: that stands in for its one action (see `is_graph_node`) adds nothing to the action's title.
GENERIC_NODES = frozenset({"model", "tools", "agent", "call_model"})


@dataclass(frozen=True)
class Visibility:
    """The handler's display options, frozen for the per-event path."""

    run_types: frozenset[str]
    include_names: frozenset[str]
    exclude_names: frozenset[str]
    include_tags: frozenset[str]
    exclude_tags: frozenset[str]
    max_depth: int | None
    show_glue: bool

    #: The handler options `of` takes besides ``verbosity``.
    FILTERS = (
        "include_types",
        "exclude_types",
        "include_names",
        "exclude_names",
        "include_tags",
        "exclude_tags",
        "max_depth",
        "show_glue",
    )

    @classmethod
    def of(
        cls,
        verbosity: str,
        include_types: list[str],
        exclude_types: list[str],
        include_names: list[str],
        exclude_names: list[str],
        include_tags: list[str],
        exclude_tags: list[str],
        max_depth: int | None,
        show_glue: bool,
    ) -> Visibility:
        """The rules for a ``verbosity`` level; the ``exclude_*`` filters hold at every level.

        ``"steps"`` is the filters as given; ``"tools"`` keeps only tool and
        retriever runs of them; ``"answer"`` shows no run; ``"all"`` shows
        every kind, glue and every node, at any depth.
        """
        types = frozenset(KINDS if verbosity == "all" else include_types).difference(exclude_types)
        if verbosity == "tools":
            types &= ACTION_TYPES
        any_shown = verbosity != "answer"
        return cls(
            run_types=types if any_shown else frozenset(),
            include_names=frozenset(include_names if any_shown else ()),
            exclude_names=frozenset(exclude_names),
            include_tags=frozenset(include_tags if any_shown else ()),
            exclude_tags=frozenset(exclude_tags),
            max_depth=None if verbosity == "all" else max_depth,
            show_glue=show_glue or verbosity == "all",
        )

    def shows(self, run: Run, depth: int, inherited_tags: list[str]) -> bool:
        """Whether ``run``, ``depth`` shown steps deep, gets a step of its own.

        Tags are inherited by child runs in LangChain, so only the run's own
        tags (not its parent's, ``inherited_tags``) decide: tagging a run
        hides or shows that run, not its whole subtree.
        """
        if self.max_depth is not None and depth > self.max_depth:
            return False
        own_tags = set(run.tags).difference(inherited_tags)
        if run.name in self.exclude_names or not self.exclude_tags.isdisjoint(own_tags):
            return False
        if run.name in self.include_names or not self.include_tags.isdisjoint(own_tags):
            return True
        if run.kind not in self.run_types:
            return False
        return self.show_glue or not is_glue(run)


def is_glue(run: Run) -> bool:
    """Whether a run is composition plumbing rather than a step a user cares about."""
    if run.kind != "chain":
        return False
    name = run.name
    return (
        not name
        or run.run_type in GLUE_RUN_TYPES
        or name in GLUE_NAMES
        or name.startswith(GLUE_PREFIXES)
        or name.endswith(GLUE_SUFFIXES)
        or _is_node_internal(run)
    )


def is_graph_node(run: Run) -> bool:
    """Whether a run is a LangGraph node (tagged ``graph:step:N``).

    A node that does one action (one model call, one tool call, ...) is shown
    as that action; it gets a step of its own only when it holds several.
    """
    return run.kind == "chain" and "langgraph_node" in run.metadata and _has_tag(run, "graph:step:")


def _has_tag(run: Run, prefix: str) -> bool:
    return any(tag.startswith(prefix) for tag in run.tags)


def _is_node_internal(run: Run) -> bool:
    """A part of a LangGraph node's own sequence, such as a routing function.

    Nodes are tagged ``graph:step:N``; the runnables a node is composed of
    carry the node's metadata and a ``seq:step:N`` tag instead.
    """
    if "langgraph_node" not in run.metadata or is_subgraph(run):
        return False
    return _has_tag(run, "seq:step:") and not _has_tag(run, "graph:step:")


def is_subgraph(run: Run) -> bool:
    """Whether a run is a LangGraph graph running inside another graph (a subgraph or an agent).

    A graph run as a node takes the node's checkpoint namespace as its own
    ``checkpoint_ns``; the runs inside it are in deeper namespaces.
    """
    namespace = run.metadata.get("checkpoint_ns")
    return bool(namespace) and namespace == run.metadata.get("langgraph_checkpoint_ns")
