"""A private 6-node Redis Cluster on free loopback ports, made with `scripts/redis-cluster`.

Used by the failover bench (`python -m benchmarks failover`) and its fault test
(tests/faults/test_redis_cluster_failover.py): both kill one primary with SIGKILL, so neither
may ever run on a shared cluster. A base port is taken only when base..base+5 and their cluster
bus ports (+10000) are all free; `remove()` stops every node and deletes the directory.
"""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.exceptions import RedisError

__all__ = [
    "ClusterNode",
    "PrivateCluster",
    "cluster_nodes",
    "keys_per_primary",
    "private_cluster",
    "redis_server_missing",
]

SCRIPT: Final = Path(__file__).resolve().parent.parent / "scripts" / "redis-cluster"
NODES: Final = 6
BUS_OFFSET: Final = 10000
_LOW, _HIGH = 20000, 22700  # bus ports 30000-32705: below Linux's ephemeral range (32768-)


def redis_server_missing() -> str | None:
    """The tool a private cluster needs that is not installed (`None` when both are)."""
    for tool in ("redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            return tool
    return None


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(attempts: int = 200) -> int:
    """A base port with base..base+5 and base+10000..base+10005 free on 127.0.0.1."""
    for _ in range(attempts):
        base = random.randrange(_LOW, _HIGH)
        ports = [base + n for n in range(NODES)]
        if all(_free(p) and _free(p + BUS_OFFSET) for p in ports):
            return base
    raise RuntimeError("no free range of 6 loopback ports (and bus ports) found")


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """One line of `CLUSTER NODES`: who, which role, and whether the cluster thinks it failed."""

    node_id: str
    port: int
    primary: bool
    failed: bool
    slots: int  # how many hash slots it serves
    primary_id: str  # a replica's primary ("-" for a primary)


def cluster_nodes(port: int) -> list[ClusterNode]:
    """The cluster as node `port` sees it."""
    client = Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2)
    try:
        raw = client.execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]
    finally:
        client.close()
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    nodes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        flags = fields[2].split(",")
        slots = 0
        for part in fields[8:]:
            if part.startswith("["):
                continue  # a slot being migrated
            low, _, high = part.partition("-")
            slots += int(high or low) - int(low) + 1
        nodes.append(
            ClusterNode(
                node_id=fields[0],
                port=int(fields[1].split("@")[0].rsplit(":", 1)[1]),
                primary="master" in flags,
                failed="fail" in flags,
                slots=slots,
                primary_id=fields[3],
            )
        )
    return nodes


class PrivateCluster:
    """3 primaries + 3 replicas of `scripts/redis-cluster` on a free base port, in a temp dir."""

    def __init__(self, base_port: int | None = None) -> None:
        if base_port is not None and not all(
            _free(p) and _free(p + BUS_OFFSET) for p in range(base_port, base_port + NODES)
        ):
            raise RuntimeError(f"ports {base_port}..{base_port + NODES - 1} (or +10000) are taken")
        self.base = base_port if base_port is not None else free_base_port()
        self.root = Path(tempfile.mkdtemp(prefix="pikku-cluster-"))
        self.killed: set[int] = set()

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.base}/0"

    @property
    def ports(self) -> list[int]:
        return [self.base + n for n in range(NODES)]

    def start(self) -> None:
        """Start the six nodes and wait until the cluster is up (`scripts/redis-cluster`)."""
        subprocess.run(
            [str(SCRIPT), "start", str(self.root), str(self.base)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=120,
        )

    def remove(self) -> None:
        """Stop every node and delete the directory (also after a failed start)."""
        for port in self.killed:  # a frozen (SIGSTOP) node would never act on SIGTERM
            with suppress(OSError, ValueError):
                os.kill(self._pid(port), signal.SIGKILL)
        try:
            subprocess.run(
                [str(SCRIPT), "stop", str(self.root)],
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def alive_port(self) -> int:
        """A node that was not killed."""
        return next(p for p in self.ports if p not in self.killed)

    def nodes(self) -> list[ClusterNode]:
        return cluster_nodes(self.alive_port())

    def primaries(self) -> list[int]:
        """The ports of the serving primaries."""
        return sorted(n.port for n in self.nodes() if n.primary and not n.failed and n.slots)

    def replica_of(self, port: int) -> int:
        """The port of a replica of primary `port`."""
        nodes = self.nodes()
        primary = next(n.node_id for n in nodes if n.port == port)
        return next(n.port for n in nodes if n.primary_id == primary)

    def resume(self, port: int) -> None:
        """SIGCONT a node frozen with SIGSTOP."""
        os.kill(self._pid(port), signal.SIGCONT)
        self.killed.discard(port)

    def _pid(self, port: int) -> int:
        return int((self.root / str(port) / "redis.pid").read_text().strip())

    def kill(self, port: int, sig: signal.Signals = signal.SIGKILL) -> float:
        """Send `sig` to node `port` (SIGKILL: dead, its sockets reset; SIGSTOP: frozen, its
        sockets silent); the monotonic time it was sent."""
        self.killed.add(port)
        os.kill(self._pid(port), sig)
        return time.monotonic()

    def wait_promoted(self, port: int, timeout: float) -> float | None:
        """Wait until every live node sees `port` failed and another primary serves all 16384
        slots with `cluster_state:ok`; the monotonic time it was seen, `None` after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._promoted(port):
                return time.monotonic()
            time.sleep(0.02)
        return None

    def _promoted(self, port: int) -> bool:
        for live in (p for p in self.ports if p not in self.killed):
            try:
                nodes = cluster_nodes(live)
                client = Redis(host="127.0.0.1", port=live, socket_timeout=2)
                try:
                    info = client.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
                finally:
                    client.close()
            except (OSError, RedisError):
                return False
            dead = [n for n in nodes if n.port == port]
            served = sum(n.slots for n in nodes if n.primary and not n.failed and n.port != port)
            if not (dead and dead[0].failed and served == 16384):
                return False
            if b"cluster_state:ok" not in info:
                return False
        return True


@contextmanager
def private_cluster(base_port: int | None = None, attempts: int = 3) -> Iterator[PrivateCluster]:
    """A started private cluster, removed afterwards; one at a time on this machine.

    A file lock in the temp directory serialises every user (the fault test under any xdist
    layout, the failover bench): each kills a primary and times the takeover, which a second
    cluster starting beside it on two cores would distort. A start that fails because a port
    was taken meanwhile is retried on another free base port.
    """
    lock_path = Path(tempfile.gettempdir()) / "pikku-private-cluster.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for attempt in range(attempts):
            cluster = PrivateCluster(base_port)
            try:
                cluster.start()
            except subprocess.CalledProcessError:
                cluster.remove()
                if base_port is not None or attempt == attempts - 1:
                    raise
                continue
            try:
                yield cluster
            finally:
                cluster.remove()
            return


async def keys_per_primary(url: str, marker: str) -> dict[str, int]:
    """How many keys containing `marker` each primary of the cluster at `url` holds."""
    parts = urlsplit(url)
    cluster = AsyncRedisCluster(host=parts.hostname or "127.0.0.1", port=parts.port or 6379)
    try:
        await cluster.initialize()
        primaries = [(node.host, int(node.port)) for node in cluster.get_primaries()]
    finally:
        await cluster.aclose()
    out: dict[str, int] = {}
    for host, port in sorted(primaries, key=lambda hp: hp[1]):
        client = AsyncRedis(host=host, port=port)
        try:
            out[f"{host}:{port}"] = len(
                [k async for k in client.scan_iter(match=f"*{marker}*", count=1000)]
            )
        finally:
            await client.aclose()
    return out
