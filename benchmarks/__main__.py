"""Run every benchmark and print one Markdown table: ``python -m benchmarks [--quick]``."""

from __future__ import annotations

import argparse
import os
import platform
import time
from importlib.metadata import version

from . import freshness, patches, steps, tokens


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    packages = ", ".join(f"{name} {version(name)}" for name in ("panel", "bokeh", "langchain-core"))
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; {packages}"
    )


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run (~30 s)")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium freshness benchmark")
    args = parser.parse_args()
    quick = args.quick
    started = time.perf_counter()
    print(f"Machine: {machine()}\n")

    sizes = [1000, 5000] if quick else [1000, 10_000, 50_000]
    budget = 1.0 if quick else 5.0
    results = tokens.run(sizes, repeats=1 if quick else 5, naive_budget=budget)
    best = "best of 5" if not quick else "one run"
    print(f"### 1. Token streaming (us per token; {best} for (a) and (c))\n")
    print(
        "| tokens | (a) no handler | (b) naive step.stream | (c) this handler | (c)/(a) | target <= 1.3 "
        "| Markdown rendering alone | one empty step |"
    )
    print("|---:|---:|---:|---:|---:|:---:|---:|---:|")
    for r in results:
        naive = f"{r.naive_us:,.0f}" + (f" (first {r.naive_tokens:,} only)" if r.naive_tokens else "")
        print(
            f"| {r.tokens:,} | {r.bare_us:.1f} | {naive} | {r.handler_us:.1f} | {r.ratio:.2f} "
            f"| {verdict(r.ratio <= 1.3)} | {r.render_us:.1f} | {r.step_us:.1f} |"
        )
    growth = results[-1].handler_us / results[0].handler_us
    print(
        f"\n(c) at {results[-1].tokens:,} tokens / at {results[0].tokens:,}: {growth:.2f} "
        f"(target <= 1.5: {verdict(growth <= 1.5)}). The naive handler stops after {budget:.0f} s: "
        "it is quadratic. The last two columns are parts of (c) measured alone: rendering the "
        "answer's Markdown once, in blocks, without streaming; and creating, placing and finishing "
        "one step with no text (a cost per run, spread over its tokens).\n"
    )

    answer = 2000 if quick else 10_000
    p = patches.run(answer, naive_budget=budget)
    print(f"### 2. Bytes to the browser ({answer:,}-token answer, {p.chars:,} characters)\n")
    print("| handler | patch messages | bytes | bytes per character | target <= 20 |")
    print("|---|---:|---:|---:|:---:|")
    print(
        f"| this handler | {p.handler_messages:,} | {p.handler_bytes:,} | {p.handler_per_char:.1f} "
        f"| {verdict(p.handler_per_char <= 20)} |"
    )
    print(
        f"| naive (first {p.naive_chars:,} characters) | | {p.naive_bytes:,} | {p.naive_per_char:,.0f} "
        f"| {verdict(p.naive_per_char <= 20)} |\n"
    )

    tool_counts = [10, 100] if quick else [10, 100, 1000]
    step_budget = 5.0 if quick else 40.0
    rows = steps.run(tool_counts, budget=step_budget)
    print("### 3. Steps (ms per tool run in one agent trace)\n")
    print("| tool runs | no handler | this handler | ratio |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        done = f" (first {r.handler_tools:,} only)" if r.handler_tools < r.tools else ""
        print(f"| {r.tools:,} | {r.bare_ms:.2f} | {r.handler_ms:.1f}{done} | {r.ratio:,.0f} |")
    flat = rows[-1].handler_ms / rows[0].handler_ms
    print(
        f"\nThis handler at {rows[-1].tools:,} / at {rows[0].tools:,}: {flat:.2f} per step "
        f"(target <= 1.5: {verdict(flat <= 1.5)}); runs stop after {step_budget:.0f} s.\n"
    )

    if not args.no_browser:
        count = 100 if quick else 300
        f = freshness.run(count, token_delay=0.02)
        print(f"### 4. Freshness in headless Chromium ({count} tokens at 50 tokens/s)\n")
        print("| median | p95 | max | target median < 150 ms, max < 500 ms |")
        print("|---:|---:|---:|:---:|")
        ok = f.median_ms < 150 and f.max_ms < 500
        print(f"| {f.median_ms:.0f} ms | {f.p95_ms:.0f} ms | {f.max_ms:.0f} ms | {verdict(ok)} |\n")

    print(f"Total time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
