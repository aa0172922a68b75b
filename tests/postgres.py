"""A real Postgres server for the tests: Debian's ``postgresql``, in a temporary directory.

Postgres refuses to run as root, so when the tests run as root the data
directory belongs to the ``postgres`` user and the server runs as that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: Where Debian's ``postgresql`` package puts the server's programs (one folder per major version).
BINARIES = Path("/usr/lib/postgresql")


def binaries() -> Path | None:
    """The newest installed server's ``bin`` folder, if any."""
    found = sorted(BINARIES.glob("*/bin/pg_ctl"), key=lambda path: int(path.parts[-3]))
    return found[-1].parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server() -> Iterator[str]:
    """Start a Postgres server on a free port of 127.0.0.1; yields its URL (user ``postgres``, trusted)."""
    bin_dir = binaries()
    if bin_dir is None:
        raise FileNotFoundError(f"no Postgres server under {BINARIES} (Debian's postgresql package)")
    root = Path(tempfile.mkdtemp(prefix="pls-postgres-"))
    as_user: list[str] = []
    if os.getuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()

    def run(*command: str) -> None:
        result = subprocess.run([*as_user, *command], capture_output=True, text=True, timeout=120)
        if result.returncode:
            log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
            raise RuntimeError(
                f"{Path(command[0]).name} failed ({result.returncode}): {result.stderr.strip()} {log[-2000:]}"
            )

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "server.log"),
            "-w",
            "start",
        )
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
