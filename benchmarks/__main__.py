"""Run the benchmarks and print Markdown tables: ``python -m benchmarks [--quick] [--only NAMES]``."""

from __future__ import annotations

import argparse
import os
import platform
import time
from importlib.metadata import version

from . import agent, browser, freshness, memory, navigation, patches, record, remote, sessions, store, tokens
from .common import verdict


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


def token_streaming(args: argparse.Namespace) -> None:
    quick = args.quick
    sizes = [1000, 5000] if quick else [1000, 10_000, 50_000]
    budget = 1.0 if quick else 5.0
    results = tokens.run(sizes, repeats=1 if quick else 5, naive_budget=budget)
    best = "best of 5" if not quick else "one run"
    print(f"### 1. Token streaming (us per token; {best} for (a) and (c))\n")
    print(
        "| tokens | (a) no handler | (b) naive step.stream | (c) this handler, until shown | (c)/(a) "
        "| target <= 1.3 "
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


def patch_bytes(args: argparse.Namespace) -> None:
    answer = 600 if args.quick else 3000
    p = patches.run(answer, naive_budget=1.0 if args.quick else 5.0)
    rate = 1 / patches.TOKEN_DELAY
    print(
        f"### 2. Bytes to the browser ({answer:,}-token answer at {rate:.0f} tokens/s, "
        f"{p.chars:,} characters)\n"
    )
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


def token_freshness(args: argparse.Namespace) -> None:
    count = 100 if args.quick else 300
    f = freshness.run(count, token_delay=0.02)
    print(f"### 4. Freshness in headless Chromium ({count} tokens at 50 tokens/s)\n")
    print("| median | p95 | max | target median < 150 ms, max < 500 ms |")
    print("|---:|---:|---:|:---:|")
    ok = f.median_ms < 150 and f.max_ms < 500
    print(f"| {f.median_ms:.0f} ms | {f.p95_ms:.0f} ms | {f.max_ms:.0f} ms | {verdict(ok)} |\n")


#: name: (section, uses Chromium)
SECTIONS = {
    "tokens": (token_streaming, False),
    "patches": (patch_bytes, False),
    "freshness": (token_freshness, True),
    "agent": (agent.report, False),
    "browser": (browser.report, True),
    "navigation": (navigation.report, True),
    "sessions": (sessions.report, True),
    "memory": (memory.report, False),
    "record": (record.report, False),
    "store": (store.report, False),
    # Starts a LangGraph server; its freshness part uses Chromium (left out with --no-browser).
    "remote": (remote.report, False),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--no-browser", action="store_true", help="skip the benchmarks that use Chromium")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated, of: {', '.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--steps", help="browser: comma-separated trace sizes in steps (default 1000; quick 40)"
    )
    parser.add_argument(
        "--agent-calls",
        help="sessions: tool calls of the agent next to 5 sessions, and next to 10 (default 60,100)",
    )
    args = parser.parse_args()
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(names) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    print(f"Machine: {machine()}\n")
    for name in names:
        section, chromium = SECTIONS[name]
        if not (chromium and args.no_browser):
            section(args)
    print(f"Total time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
