"""The command line: ``panel-langchain-steps view FILE [--port N]`` serves a trace file in a `TraceView`,
or a trace store (a SQLite file or a database URL) in a `StoreView`."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence

DESCRIPTION = """\
Show a trace file in the browser: a tree of runs, a waterfall, totals and each run's detail.
FILE is a trace saved with Trace.save, a LangSmith runs export (a JSON list of runs), or
OpenTelemetry spans as OTLP JSON; or a trace store (a TraceStore's SQLite file, or a database
URL such as postgresql+psycopg://user@host/db), shown as a list of its turns to search, open and
compare. The page is served on 127.0.0.1 only."""


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="panel-langchain-steps", description="Tools for panel-langchain-steps."
    )
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    view = commands.add_parser(
        "view", help="serve a trace file or a trace store in the browser", description=DESCRIPTION
    )
    view.add_argument(
        "file",
        metavar="FILE",
        help="the trace file (saved trace, LangSmith runs or OTLP JSON), or a trace store (file or URL)",
    )
    view.add_argument("--port", type=int, default=5006, help="port on 127.0.0.1 (default: %(default)s)")
    view.add_argument(
        "--prices",
        metavar="JSON",
        help="model prices for the cost total, e.g. '{\"gpt-4o\": [2.5, 10]}' (per 1M input, output tokens)",
    )
    view.add_argument("--show", action="store_true", help="open the page in a web browser")
    return main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status."""
    args = parser().parse_args(argv)
    from .imports import load
    from .store import StoreError, TraceStore, is_store

    as_store = is_store(args.file)
    try:
        prices = (
            {model: tuple(price) for model, price in json.loads(args.prices).items()} if args.prices else {}
        )
        if as_store:
            try:
                store = TraceStore(args.file)
                what = f"{len(store):,} turns"
            except StoreError as error:
                raise ValueError(str(error)) from None
        else:
            trace = load(args.file)
            what = f"{len(trace):,} runs"
    except (OSError, ValueError, AttributeError, TypeError, ImportError) as error:
        print(f"panel-langchain-steps: {error}", file=sys.stderr)
        return 2
    import panel as pn

    if as_store:
        from .store_view import StoreView

        page, title = (lambda: StoreView(store, prices=prices)), f"Traces: {store.url}"
    else:
        from .trace_view import TraceView

        page, title = (lambda: TraceView(trace, prices=prices)), f"Trace: {args.file}"
    url = f"http://127.0.0.1:{args.port}/"
    print(f"Serving {args.file} ({what}) at {url}  (Ctrl+C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        pn.serve(  # blocks until stopped
            {"/": page},
            port=args.port,
            address="127.0.0.1",
            websocket_origin=[f"127.0.0.1:{args.port}"],
            show=args.show,
            title=title,
        )
    return 0
