"""`wait_replicas`: every write acknowledged by N replicas (`WAIT` on the write's connection).

A write that fewer replicas acknowledge in `wait_timeout` ms raises `StorageUnavailable` and
stays applied on the primary; reads send no `WAIT`. Shown on a primary without replicas (the
shared server), a private primary + replica, and the cluster (one replica per primary). See
docs/operations.md#replica-acknowledged-writes.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
from redis.asyncio import Redis

from pikku_storage import InvalidValue, StorageUnavailable, open_storage
from pikku_storage.redis._admin import drop_namespace
from pikku_storage.redis._scripts import SCRIPT_NAMES, writes
from tests.redis._redis_support import PrivateRedis


@pytest.fixture
def prefix() -> str:
    return f"pikku_t_wait_{secrets.token_hex(4)}"


def test_scripts_that_write_are_told_from_those_that_only_read() -> None:
    """Writes (directly or through a prelude helper) get a `WAIT`; pure reads do not."""
    for name in ("wf_create_run", "wf_set_step", "ai_save_messages", "ch_subscribe", "lock_renew"):
        assert writes(name), name
    for name in ("wf_list_runs", "wf_get_step", "ai_get_messages", "dep_find_function"):
        assert not writes(name), name
    assert {n for n in SCRIPT_NAMES if writes(n)} < SCRIPT_NAMES


@pytest.mark.parametrize(
    "query",
    [
        "wait_replicas=x",
        "wait_replicas=-1",
        "wait_replicas=1&wait_timeout=0",
        "wait_timeout=100",
        "wait_replicas=1&wait_timeout=1.5",
    ],
)
def test_bad_wait_options_are_refused_before_any_connection(query: str) -> None:
    with pytest.raises(InvalidValue, match="wait_"):
        open_storage(f"redis://127.0.0.1:6379/0?{query}")
    with pytest.raises(InvalidValue, match="wait_"):
        open_storage(f"redis+cluster://127.0.0.1:7000/0?{query}")


def test_the_keyword_is_checked_like_the_query() -> None:
    with pytest.raises(InvalidValue, match="wait_replicas"):
        open_storage("redis://127.0.0.1:6379/0", wait_replicas=True)
    with pytest.raises(InvalidValue, match="wait_timeout"):
        open_storage("redis://127.0.0.1:6379/0", wait_replicas=1, wait_timeout=0)


async def test_a_write_no_replica_acknowledges_raises_and_stays_applied(
    pikku_redis_url: str, prefix: str
) -> None:
    """The shared server has no replica: `WAIT 1 20` answers 0, so the write raises
    `StorageUnavailable` naming the count; the run is there all the same, and reads work."""
    async with Redis.from_url(pikku_redis_url) as client:
        info = await client.info("replication")
    if int(info.get("connected_slaves", 0)) > 0:
        pytest.skip("the Redis server under test has replicas")
    url = f"{pikku_redis_url}?wait_replicas=1&wait_timeout=20"
    try:
        async with open_storage(pikku_redis_url, key_prefix=prefix):
            pass  # the namespace exists
        storage = open_storage(url, key_prefix=prefix)
        try:
            with pytest.raises(StorageUnavailable, match="0 of 1 replicas"):
                await storage.init()  # its layout script is a write: the unmet wait shows here
            with pytest.raises(StorageUnavailable, match="0 of 1 replicas"):
                await storage.workflows.create_run("wf", {"n": 1})
            runs = await storage.workflow_runs.list_runs(limit=10)  # a read: no WAIT
            assert [run.input for run in runs] == [{"n": 1}]
        finally:
            await storage.close()
    finally:
        await drop_namespace(pikku_redis_url, key_prefix=prefix)


async def test_writes_wait_for_a_replica_that_has_them(tmp_path: Path, prefix: str) -> None:
    """Primary + replica of our own: each acknowledged write is already on the replica."""
    primary = PrivateRedis(tmp_path / "primary", append_only=False)
    replica = PrivateRedis(tmp_path / "replica", append_only=False)
    (tmp_path / "primary").mkdir()
    (tmp_path / "replica").mkdir()
    primary.start()
    replica.start()
    try:
        async with Redis.from_url(replica.url) as follower:
            await follower.replicaof("127.0.0.1", primary.port)
            for _ in range(200):
                info = await follower.info("replication")
                if info.get("master_link_status") == "up":
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the replica did not link up")
            async with open_storage(
                primary.url, key_prefix=prefix, wait_replicas=1, wait_timeout=2000
            ) as storage:
                run_id = await storage.workflows.create_run("wf", {"n": 2})
                keys = await follower.keys(f"{prefix}*{run_id}*")
                assert keys, "the run's hash reached the replica before create_run returned"
                thread = await storage.ai_storage.create_thread(resource_id="user-1")
                assert await follower.keys(f"{prefix}*{thread.id}*")
    finally:
        replica.kill()
        primary.kill()


async def test_cluster_writes_wait_on_the_primary_of_their_slot(
    pikku_redis_cluster_url: str, prefix: str
) -> None:
    """Each primary has one replica: `wait_replicas=1` writes succeed; 2 cannot be met."""
    try:
        async with open_storage(
            f"{pikku_redis_cluster_url}?wait_replicas=1", key_prefix=prefix
        ) as storage:
            run_id = await storage.workflows.create_run("wf", {"n": 3})
            await storage.workflows.insert_step_state(run_id, "s", None, None)
            run = await storage.workflow_runs.get_run(run_id)
            assert run is not None
        storage = open_storage(
            pikku_redis_cluster_url, key_prefix=prefix, wait_replicas=2, wait_timeout=20
        )
        try:
            with pytest.raises(StorageUnavailable, match="1 of 2 replicas"):
                await storage.workflows.create_run("wf", {"n": 4})
            assert len(await storage.workflow_runs.list_runs(limit=10)) == 2
        finally:
            await storage.close()
    finally:
        await drop_namespace(pikku_redis_cluster_url, key_prefix=prefix)
