"""A plain Redis client that reaches a Redis Cluster node (issue 15, item 1).

Two private `redis-server --cluster-enabled yes` nodes on free loopback ports share the 16384
slots (met with `CLUSTER MEET`); they are killed and their directories removed afterwards. A
plain `redis://` URL to one of them is refused at `init()`, and the cluster replies a client can
meet there (MOVED, ASK, CROSSSLOT, CLUSTERDOWN) become `StorageUnavailable`, never raw.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis import exceptions as rex
from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pikku_storage import InvalidValue, StorageUnavailable, open_storage
from pikku_storage.redis._errors import translate_errors
from tests.faults._servers import free_port


def _cmd(client: redis.Redis, *args: object) -> Any:
    """A raw command on a sync client (redis-py leaves `execute_command` untyped)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]  # redis-py stub gap


pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed"
)

HALF = 8191  # node A serves slots 0..HALF, node B the rest


class _Node:
    """One cluster-enabled `redis-server` in its own directory."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir()
        self.port = free_port()
        self.bus = bus = free_port()  # else port + 10000, which may pass 65535 or be taken
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                str(bus),
                "--cluster-config-file",
                str(directory / "nodes.conf"),
                "--cluster-require-full-coverage",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis(
            port=self.port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )
        for _ in range(200):
            if self.process.poll() is not None:
                raise RuntimeError(f"cluster node exited with {self.process.returncode}")
            try:
                if self.client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("cluster node did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.client.close()
        self.process.kill()
        self.process.wait()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[_Node, _Node]]:
    """Nodes A (slots 0..8191) and B (8192..16383), one cluster; removed afterwards."""
    root = tmp_path_factory.mktemp("cluster")
    a = _Node(root / "a")
    b = _Node(root / "b")
    try:
        _cmd(a.client, "CLUSTER", "ADDSLOTSRANGE", 0, HALF)
        _cmd(b.client, "CLUSTER", "ADDSLOTSRANGE", HALF + 1, 16383)
        _cmd(a.client, "CLUSTER", "MEET", "127.0.0.1", b.port, b.bus)
        for _ in range(500):  # until both know every slot's node and the cluster is up
            ready = [
                len(_cmd(n.client, "CLUSTER", "SLOTS")) == 2
                and "cluster_state:ok" in str(_cmd(n.client, "CLUSTER", "INFO"))
                for n in (a, b)
            ]
            if all(ready):
                break
            time.sleep(0.02)
        else:
            raise RuntimeError("cluster nodes did not meet")
        yield a, b
    finally:
        a.stop()
        b.stop()
        shutil.rmtree(root, ignore_errors=True)


def _key_on(node_slots: range, client: redis.Redis) -> str:
    """A key whose hash slot lies in `node_slots`."""
    for i in range(10_000):
        key = f"k{i}"
        if _cmd(client, "CLUSTER", "KEYSLOT", key) in node_slots:
            return key
    raise AssertionError("no key found")


async def test_init_refuses_a_plain_url_that_reaches_a_cluster_node(
    nodes: tuple[_Node, _Node],
) -> None:
    """Issue 15: `init()` refuses, naming the redis+cluster:// URL to use instead."""
    a, _ = nodes
    storage = open_storage(a.url, key_prefix="pikku_cluster_probe")
    with pytest.raises(InvalidValue, match=r"Use a redis\+cluster:// URL"):
        await storage.init()
    await storage.close()
    assert a.client.dbsize() == 0  # refused before any write


async def test_moved_crossslot_and_clusterdown_replies_become_storage_unavailable(
    nodes: tuple[_Node, _Node],
) -> None:
    """Issue 15: cluster errors from a real node are translated, never leaked."""
    a, _ = nodes
    mine = _key_on(range(HALF + 1), a.client)
    theirs = _key_on(range(HALF + 1, 16384), a.client)
    client = Redis(port=a.port)
    try:
        for command, raw in (
            (("GET", theirs), rex.MovedError),
            (("MGET", mine, theirs), rex.ClusterCrossSlotError),
        ):
            with pytest.raises(StorageUnavailable) as info:
                async with translate_errors():
                    await client.execute_command(*command)  # type: ignore[no-untyped-call]  # redis-py stub gap
            assert isinstance(info.value.__cause__, raw)
    finally:
        await client.aclose()


async def test_a_node_without_slots_answers_clusterdown_which_becomes_storage_unavailable(
    tmp_path: Path,
) -> None:
    """Issue 15: CLUSTERDOWN (no slot served) is `StorageUnavailable` too."""
    node = _Node(tmp_path / "lonely")
    client = Redis(port=node.port)
    try:
        with pytest.raises(StorageUnavailable) as info:
            async with translate_errors():
                await client.get("x")
        assert isinstance(info.value.__cause__, rex.ClusterDownError)
    finally:
        await client.aclose()
        node.stop()


@pytest.mark.parametrize(
    "error",
    [rex.AskError("3999 127.0.0.1:7001"), rex.SlotNotCoveredError("slot 5 not covered")],
    ids=["ask", "slot-not-covered"],
)
async def test_ask_and_uncovered_slot_errors_become_storage_unavailable(
    error: Exception,
) -> None:
    """Issue 15: an ASK redirect (a slot in migration) is translated as MOVED is."""
    with pytest.raises(StorageUnavailable) as info:
        async with translate_errors():
            raise error
    assert info.value.__cause__ is error
