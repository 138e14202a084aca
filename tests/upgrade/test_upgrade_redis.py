"""A Redis namespace written at layout 1 (the library of commit 6c7f177) opens at layout 2.

The fixture `fixtures/redis/layout1.json` was written by `make_redis_fixture.py` with the old
library; it is loaded under a fresh prefix, then `init()` migrates it. Spec: 05 D14, §4, §5
item 36.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import fakeredis
import pytest
from redis.asyncio import Redis

from pikku_storage.redis import LATEST_VERSION, storage_from_client
from pikku_storage.redis._keys import layout_key
from tests.redis._redis_support import PrivateRedis
from tests.upgrade._old import check_scenario_migrated, old_library, open_with_old_library

FIXTURE: Final = Path(__file__).parent / "fixtures" / "redis" / "layout1.json"


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A `redis-server` of this test alone (the old library runs against it too)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def _load(client: Redis, prefix: str) -> None:
    """Write every fixture key under `prefix`."""
    dump = json.loads(FIXTURE.read_text("utf-8").replace("PREFIX", prefix))
    async with client.pipeline(transaction=False) as pipe:
        for key, entry in dump.items():
            kind, value = entry["type"], entry["value"]
            if kind == "hash":
                pipe.hset(key, mapping=value)
            elif kind == "zset":
                pipe.zadd(key, {member: score for member, score in value})
            elif kind == "set":
                pipe.sadd(key, *value)
            elif kind == "list":
                pipe.rpush(key, *value)
            else:
                pipe.set(key, value)
        await pipe.execute()


async def test_a_layout_1_namespace_migrates_on_init_on_fakeredis() -> None:
    """05 §5 item 36 [Redis] on the in-process fake: old records read 05 §1's defaults, the
    sweepers find the old running runs and pending steps, `owners` finds the old threads."""
    client = fakeredis.FakeAsyncRedis()
    prefix = "upgrade"
    await _load(client, prefix)
    assert await client.get(layout_key(prefix)) == b"1"
    async with storage_from_client(client, key_prefix=prefix) as storage:
        assert await client.get(layout_key(prefix)) == str(LATEST_VERSION).encode()
        await check_scenario_migrated(storage)
    async with storage_from_client(client, key_prefix=prefix) as storage:  # a second init
        assert len(await storage.workflow_runs.list_runs()) == 3


async def test_a_layout_1_namespace_migrates_on_a_server_and_the_old_library_refuses_it(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    """05 §5 item 36 [Redis] on a server; then the old library's `init()` raises
    `SchemaMismatch` on the migrated namespace (00 §5)."""
    client = Redis.from_url(private_redis.url)
    prefix = f"upgrade{uuid.uuid4().hex[:8]}"
    try:
        await _load(client, prefix)
        async with storage_from_client(client, key_prefix=prefix) as storage:
            await check_scenario_migrated(storage)
        opener = f"open_storage({private_redis.url!r}, key_prefix={prefix!r})"
        verdict = await asyncio.to_thread(
            open_with_old_library, old_library(tmp_path), "pikku_storage.redis", opener, version=1
        )
        assert verdict.startswith("SchemaMismatch"), verdict
    finally:
        await client.aclose()
