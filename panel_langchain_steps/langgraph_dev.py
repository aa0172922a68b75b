"""A LangGraph development server for tests, benchmarks and demos: ``langgraph dev`` on a free port.

The in-memory server of ``langgraph-cli[inmem]`` runs offline with no key; with
LangSmith tracing off it sends nothing anywhere. `langgraph_dev` starts it on a
directory holding a ``langgraph.json``, waits (bounded) until it answers, yields
its URL and stops it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NamedTuple

_BASE_URL = re.compile(r"baseUrl=(http://[\w.:\-]+)")


def langgraph_command() -> str:
    """The ``langgraph`` command of this Python environment (else the one on PATH)."""
    beside = Path(sys.executable).with_name("langgraph")
    found = str(beside) if beside.exists() else shutil.which("langgraph")
    if found is None:
        raise RuntimeError(
            "the LangGraph development server is not installed: pip install 'langgraph-cli[inmem]' "
            "(panel-langchain-steps[test] installs it)"
        )
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DevServer(NamedTuple):
    """A running ``langgraph dev``: its ``url``, and its process."""

    url: str
    process: subprocess.Popen

    def kill(self) -> None:
        """End the server at once, as a crash would (its runs do not finish)."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=15)


@contextmanager
def langgraph_dev(
    directory: str | Path, *, port: int | None = None, timeout: float = 120.0
) -> Iterator[DevServer]:
    """Serve the graphs of ``directory/langgraph.json`` with ``langgraph dev``; yields the server.

    The server imports this checkout of panel-langchain-steps (its directory
    comes first on ``PYTHONPATH``). `RuntimeError`, with the end of the
    server's log, if it does not answer within ``timeout`` seconds.
    """
    directory = Path(directory)
    if not (directory / "langgraph.json").exists():
        raise FileNotFoundError(f"{directory}: no langgraph.json")
    port = port or free_port()
    env = dict(os.environ, LANGSMITH_TRACING="false", LANGCHAIN_TRACING_V2="false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parents[1]), env.get("PYTHONPATH")]))
    command = [langgraph_command(), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1"]
    # The log is kept outside the project directory: a file written there would make it reload.
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=directory,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            yield DevServer(_wait_until_up(process, log, f"http://127.0.0.1:{port}", timeout), process)
        finally:
            _stop(process)


def _wait_until_up(process: subprocess.Popen, log, url: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        log.seek(0)
        found = _BASE_URL.search(log.read())
        if found:  # with its port taken, the server picks another and says which
            url = found[1]
        try:
            with urllib.request.urlopen(f"{url}/ok", timeout=2) as response:
                if response.status == 200:
                    return url
        except OSError:
            pass
        time.sleep(0.2)
    log.seek(0)
    tail = log.read()[-3000:]
    _stop(process)
    raise RuntimeError(
        f"langgraph dev did not answer at {url}/ok within {timeout:.0f} s; its log ends:\n{tail}"
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)  # the server and the workers it started
        process.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
