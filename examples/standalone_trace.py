"""A standalone trace: no chat, just an agent's steps in a Column next to ordinary widgets.

The handler's target is a plain ``pn.Column``: each run's steps go there,
live, while the rest of the page (a question box, a button, the answer) is
yours to lay out. Here a unit-conversion agent answers the question on the
left while its trace grows on the right.

Run ``panel serve examples/standalone_trace.py``. Offline it uses a scripted
model; set OPENAI_API_KEY, ANTHROPIC_API_KEY or OLLAMA_MODEL for a real one.
"""

from __future__ import annotations

import re

import panel as pn
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import tool
from shared import example_model, header, question, tool_call, tool_results

from panel_langchain_steps import ChatStepCallbackHandler

#: Units to metres or grams.
UNITS = {"km": 1000.0, "m": 1.0, "mi": 1609.344, "ft": 0.3048, "kg": 1000.0, "g": 1.0, "lb": 453.59237}
#: Unit names a question may use.
NAMES = {
    "miles": "mi",
    "feet": "ft",
    "pounds": "lb",
    "kilos": "kg",
    "grams": "g",
    "metres": "m",
    "meters": "m",
}


@tool
def convert(value: float, unit: str, to: str) -> str:
    """Convert a length (km, m, mi, ft) or a mass (kg, g, lb) to another unit."""
    return f"{value} {unit} = {value * UNITS[unit] / UNITS[to]:.4g} {to}"


def script(messages: list[BaseMessage]) -> AIMessage | str:
    """The scripted model: convert the amount asked about, then state the result."""
    results = tool_results(messages)
    if results:
        return f"**{results[-1].text}**"
    text = question(messages)
    amount = re.search(r"([\d.]+)\s*(km|mi|ft|kg|lb|m|g)\b", text)
    value, unit = (float(amount[1]), amount[2]) if amount else (10.0, "km")
    mentioned = [NAMES.get(word, word) for word in re.findall(r"[a-z]+", text.lower())]
    to = next((u for u in mentioned if u in UNITS and u != unit), "mi" if unit != "mi" else "km")
    return AIMessage(
        content="I'll use the converter.", tool_calls=[tool_call("convert", value=value, unit=unit, to=to)]
    )


model = example_model(script)
agent = create_agent(model, [convert], system_prompt="Convert units with the convert tool.")


class TracePage(pn.viewable.Viewer):
    """A question box, an answer, and the trace of the run beside them."""

    def __init__(self) -> None:
        super().__init__()
        self.question = pn.widgets.TextInput(value="How many miles is 42.195 km?", label="Question")
        self.button = pn.widgets.Button(label="Convert", color="primary")
        self.answer = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.trace = pn.Column(sizing_mode="stretch_width")
        self.handler = ChatStepCallbackHandler(self.trace, collapsed_on_success=False)
        self.button.on_click(self._clicked)
        controls = pn.Column(self.question, self.button, self.answer, width=320)
        trace = pn.Column("### Trace", self.trace, sizing_mode="stretch_width", margin=(5, 20, 5, 10))
        about = "Ask for a conversion; the agent's steps appear on the right as they run."
        self._page = pn.Column(
            header("Standalone trace", about, model),
            pn.Row(controls, trace, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    async def ask(self, text: str) -> str:
        """Run the agent on ``text``, its steps in the trace; show and return its answer."""
        self.trace.clear()
        state = {}
        async for mode, data in agent.astream(
            {"messages": [("user", text)]}, {"callbacks": [self.handler]}, stream_mode=["messages", "values"]
        ):
            if mode == "values":
                state = data
        self.answer.object = state["messages"][-1].text
        return self.answer.object

    async def _clicked(self, event: object) -> None:
        self.button.disabled = True
        try:
            await self.ask(self.question.value)
        finally:
            self.button.disabled = False

    def __panel__(self) -> pn.Column:
        return self._page


def create_app() -> TracePage:
    """A new page, for one browser session."""
    return TracePage()


if pn.state.served:
    create_app().servable(title="Standalone trace")
