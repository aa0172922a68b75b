"""The browser test harness: serve a Panel app on 127.0.0.1 and drive Debian's Chromium.

Used by the browser tests, the benchmarks and ``docs/screenshots.py``; not part of the
installed package.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class served:
    """Serve a Panel app on 127.0.0.1 in a background thread, for as long as the block runs.

    ``app`` is a function returning the page's root component, called per
    session. ``url`` is where the page is.

    >>> with served(lambda: pn.Column("hi")) as url:
    ...     page.goto(url)
    """

    def __init__(self, app: Callable[[], Any]):
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self._server: Any = None

    def __enter__(self) -> str:
        import panel as pn

        self._server = pn.serve(
            {"/": self.app},
            port=self.port,
            address="127.0.0.1",
            websocket_origin=[f"127.0.0.1:{self.port}"],
            threaded=True,
            show=False,
            start=True,
            verbose=False,
        )
        wait_until_listening(self.port, 30)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
        self._server.join(10)  # Panel 1.9 stops in the background


def wait_until_listening(port: int, timeout: float) -> None:
    """Wait until a server accepts connections on ``port`` of 127.0.0.1 (a plain connection:
    no session is opened); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not _accepts(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no server started on port {port} within {timeout} s")
        time.sleep(0.05)


def _accepts(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless, through Playwright (which never downloads one here)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
