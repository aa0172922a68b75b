"""Token usage, cost and speed of model runs: the one place these numbers are computed.

The step footers, the turn summary and the `TraceView` totals all read a
run's usage through `tokens` and price it through `cost`, from one price
table format: ``{model: (input_per_1M_tokens, output_per_1M_tokens)}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .trace import RunRecord

#: ``{model: (input_per_1M_tokens, output_per_1M_tokens)}``.
Prices = Mapping[str, tuple[float, float]]

#: The token details a model may report besides input and output, and how they are named.
DETAILS = (("cache_read", "cache read"), ("cache_creation", "cache write"), ("reasoning", "reasoning"))
_COUNTS = ("input", "output", *(key for key, _ in DETAILS))


def tokens(usage: Any) -> dict[str, int]:
    """Token counts from LangChain's usage metadata (``input_tokens``, ``output_tokens``, details)."""
    usage = usage if isinstance(usage, dict) else {}
    input_details = usage.get("input_token_details") or {}
    output_details = usage.get("output_token_details") or {}
    counts = {
        "input": usage.get("input_tokens") or 0,
        "output": usage.get("output_tokens") or 0,
        "cache_read": input_details.get("cache_read") or 0,
        "cache_creation": input_details.get("cache_creation") or 0,
        "reasoning": output_details.get("reasoning") or 0,
    }
    counts = {key: int(value) if isinstance(value, int | float) else 0 for key, value in counts.items()}
    counts["total"] = int(usage.get("total_tokens") or counts["input"] + counts["output"])
    return counts


def cost(run: RunRecord, prices: Prices | None) -> float | None:
    """What a model run cost by ``prices``; None when its model has no price (or no usage)."""
    price = (prices or {}).get(run.model or "")
    if price is None or not run.usage:
        return None
    counts = tokens(run.usage)
    return (counts["input"] * price[0] + counts["output"] * price[1]) / 1_000_000


def speed(run: RunRecord) -> tuple[float | None, float | None]:
    """A model run's time to first token and output tokens per second after it, when known."""
    first = run.first_token_time - run.start_time if run.first_token_time and run.start_time else None
    first = first if first is None or first >= 0 else None  # a token before the start was recorded
    output = tokens(run.usage)["output"]
    streaming = (run.end_time - run.first_token_time) if run.end_time and run.first_token_time else None
    rate = output / streaming if output and streaming and streaming > 0 else None
    return first, rate


def summary(runs: Iterable[RunRecord], prices: Prices | None = None) -> dict[str, Any]:
    """Counts over runs: model and tool calls, errors, tokens by kind and the priced cost (or None)."""
    result: dict[str, Any] = {"model_calls": 0, "tool_calls": 0, "errors": 0, "cost": None}
    for key in (*_COUNTS, "total"):
        result[f"{key}_tokens"] = 0
    for run in runs:
        result["tool_calls"] += run.kind == "tool"
        result["errors"] += run.status == "failed"
        if run.kind != "llm":
            continue
        result["model_calls"] += 1
        for key, value in tokens(run.usage).items():
            result[f"{key}_tokens"] += value
        priced = cost(run, prices)
        if priced is not None:
            result["cost"] = (result["cost"] or 0.0) + priced
    return result


def context_windows(models: Iterable[Any]) -> dict[str, int]:
    """``{model name: max_input_tokens}`` for the chat models whose ``profile`` gives it."""
    windows = {}
    for model in models:
        window = (getattr(model, "profile", None) or {}).get("max_input_tokens")
        try:
            name = model._get_ls_params().get("ls_model_name")
        except Exception:
            name = None
        name = name or getattr(model, "model_name", None) or getattr(model, "model", None)
        if name and isinstance(window, int) and window > 0:
            windows[str(name)] = window
    return windows


def format_cost(value: float) -> str:
    """A cost in the price table's currency, with enough digits to be more than zero."""
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"
