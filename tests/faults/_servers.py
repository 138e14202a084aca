"""Private PostgreSQL clusters for the fault tests: started, restarted and removed by the test.

A cluster is made with `initdb` into a fresh temporary directory (as the `postgres` user when
the tests run as root: the server refuses to run as root), listens on a free loopback port
only, and is removed with its directory afterwards, even when the test failed. The shared
servers on 5432/6379 are never touched. The Redis counterpart is `PrivateRedis` of the Redis
tests (tests/redis/_redis_support.py).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Final

__all__ = ["PrivatePostgres", "find_postgres_bin", "free_port"]

_USER: Final = "postgres"


def free_port() -> int:
    """A TCP port nothing listens on right now, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_postgres_bin() -> Path | None:
    """The directory holding `initdb` and `pg_ctl`, or `None` when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found is not None:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free loopback port (no Unix socket, trust auth)."""

    def __init__(self, bindir: Path) -> None:
        self._bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="pikku-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_user: list[str] = []
        if os.geteuid() == 0:  # the server will not run as root
            self._as_user = ["runuser", "-u", _USER, "--"]
            entry = pwd.getpwnam(_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as_user, str(self._bindir / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=120,
        )

    def create(self) -> None:
        """`initdb` the cluster and start it."""
        self._run(
            "initdb", "-D", str(self.data), "-U", _USER, "-A", "trust", "--no-sync", "-E", "UTF8"
        )
        self.start()

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                "-c unix_socket_directories=''",
                "-c fsync=off",  # the machine does not crash here, only the server
                "-c full_page_writes=off",
                "-c shared_buffers=16MB",
                "-c max_connections=40",
            ]
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` (sessions get admin_shutdown) or `immediate` (a crash:
        every backend dies at once, WAL replay on the next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        """Stop the server if it runs and delete the cluster's directory."""
        try:
            if self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
