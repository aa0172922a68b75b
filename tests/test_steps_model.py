"""The steps view's model is plain Python: which runs of a real agent become which steps, no Panel."""

from __future__ import annotations

from conftest import QUESTION, adding_agent

from panel_langchain_steps import ChatStepCallbackHandler
from panel_langchain_steps.options import StepOptions, ViewOptions
from panel_langchain_steps.steps_model import LayoutNode, StepsModel, Turn


def model_of(trace, **options):
    node = LayoutNode(None)
    model = StepsModel(trace, ViewOptions.of(StepOptions(**options)), lambda root_id, _: Turn(root_id, node))
    for run in trace.runs:
        model.follow(run)
    return model, node


def test_an_agents_runs_become_its_actions():
    recorder = ChatStepCallbackHandler()
    adding_agent().invoke(QUESTION, config={"callbacks": [recorder]})
    model, node = model_of(recorder.trace)
    (graph,) = node.children
    assert (graph.run.kind, graph.run.name) == ("chain", "LangGraph")
    # Each LangGraph node that did one thing is that thing: two model calls around the tool.
    actions = [model.action(slot).run.kind for slot in graph.children]
    assert actions == ["llm", "tool", "llm"]
    assert (model.dirty, model.settled()) == (True, True)


def test_new_options_show_the_turn_anew():
    recorder = ChatStepCallbackHandler()
    adding_agent().invoke(QUESTION, config={"callbacks": [recorder]})
    model, node = model_of(recorder.trace)
    assert model.configure(ViewOptions.of(StepOptions(verbosity="tools")))
    assert [(slot.run.kind, slot.run.name) for slot in node.children] == [("tool", "add")]


def test_a_forgotten_turn_leaves_the_model():
    recorder = ChatStepCallbackHandler()
    adding_agent().invoke(QUESTION, config={"callbacks": [recorder]})
    model, node = model_of(recorder.trace)
    (root,) = recorder.trace.roots
    recorder.trace.forget(root.id)
    model.follow(root)
    assert (model.turns, model.slots, node.children) == ({}, {}, [])
