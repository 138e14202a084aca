"""Fixtures of the fault-injection tests: private servers the tests stop, crash and restart.

Each module gets its own PostgreSQL cluster (`initdb` into a temporary directory, a free
loopback port) and its own `redis-server`s on free ports (for the failover test a 6-node Redis
Cluster), all removed afterwards, even when a test fails. The shared servers on 5432/6379 and
any shared cluster are never touched. Without `initdb` or `redis-server` the tests skip, or
fail when `PIKKU_TEST_REQUIRE` names that backend.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks._cluster import PrivateCluster, private_cluster, redis_server_missing
from tests.faults._servers import PrivatePostgres, find_postgres_bin
from tests.faults._targets import TARGETS, Target, make_target
from tests.redis._redis_support import PrivateRedis


def _missing(backend: str, what: str) -> None:
    required = {b.strip() for b in os.environ.get("PIKKU_TEST_REQUIRE", "").split(",")}
    if backend in required:
        pytest.fail(f"{what} is not installed, and PIKKU_TEST_REQUIRE names {backend}")
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    bindir = find_postgres_bin()
    if bindir is None:
        _missing("postgres", "PostgreSQL (initdb)")
    assert bindir is not None
    server = PrivatePostgres(bindir)
    try:
        server.create()
        yield server
    finally:
        server.remove()


def _private_redis(append_only: bool) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        _missing("redis", "redis-server")
    directory = Path(tempfile.mkdtemp(prefix="pikku-faults-redis-"))
    server = PrivateRedis(directory, append_only=append_only)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def private_redis() -> Iterator[PrivateRedis]:
    """`redis-server --save '' --appendonly no`, restarted with `SHUTDOWN SAVE`."""
    yield from _private_redis(append_only=False)


@pytest.fixture(scope="module")
def private_redis_aof() -> Iterator[PrivateRedis]:
    """A server with an append-only file, restarted by SIGKILL (a crash)."""
    yield from _private_redis(append_only=True)


@pytest.fixture(scope="module")
def private_redis_cluster() -> Iterator[PrivateCluster]:
    """A 6-node Redis Cluster of `scripts/redis-cluster` on free loopback ports (never the
    shared 6379 or a CI cluster), removed afterwards; one at a time on this machine."""
    missing = redis_server_missing()
    if missing is not None:
        _missing("redis", missing)
    with private_cluster() as cluster:
        yield cluster


@pytest.fixture(params=list(TARGETS))
def target(request: pytest.FixtureRequest) -> Target:
    """Each private server with each way of taking it down (indirect-parametrizable)."""
    name: str = request.param
    return make_target(name, request.getfixturevalue(TARGETS[name]))
