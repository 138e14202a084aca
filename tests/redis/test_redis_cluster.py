"""The cluster key layout: one slot per script, keys spread over every primary, bucket count.

The whole contract runs on the `redis-cluster` backend (a real cluster rejects a script or
MULTI whose declared keys span slots); these tests add what the contract cannot see: the keys
a script derives from members stay in the slot of its declared keys (Redis 7.0 lets a script
touch another slot of the same node, so the server does not prove it), the Lua sources spell
no member width of their own, a namespace's keys land on every primary, and a namespace keeps
the bucket count it was created with. See docs/operations.md#storage-layout.
"""

from __future__ import annotations

import re
import secrets
import socket
from importlib import resources
from urllib.parse import urlsplit

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from pikku_storage import InvalidValue, open_storage
from pikku_storage.redis._admin import drop_namespace
from pikku_storage.redis._connection import seed_urls
from pikku_storage.redis._keys import (
    AIKeys,
    ChannelKeys,
    DeploymentKeys,
    WorkflowKeys,
    bucket_of,
)

ODD_IDS = ("r-1", "a:b", "{x}", "}{", "é", "x" * 255)


def _slot(key: str) -> int:
    return key_slot(key.encode())


def test_keys_a_script_derives_share_the_slot_of_its_declared_keys() -> None:
    """Every `…_prefix` a script appends a member to names keys in the declared keys' slot."""
    wf = WorkflowKeys("app", 16)
    for run_id in ("0b5e2c1e-8a4f-4c57-9d1a-3f2d6c1b7e90", *ODD_IDS):
        b = wf.bucket(run_id)
        head, tail = wf.run_prefix(b)
        assert head + run_id + tail == wf.run(run_id)
        assert _slot(wf.run(run_id)) == _slot(wf.idle(b)) == _slot(wf.runs(b))
        head, tail = wf.steps_prefix(b)
        assert head + run_id + tail == wf.steps(run_id)
        assert _slot(wf.steps(run_id)) == _slot(wf.undispatched(b))
    ai = AIKeys("app", 16)
    for thread_id in ODD_IDS:
        b = ai.bucket(thread_id)
        slots = {_slot(key) for key in ai.thread_data(thread_id)}
        slots |= {_slot(ai.threads(b)), _slot(ai.by_resource("r", b)), _slot(ai.approval("c", b))}
        assert len(slots) == 1
        run_id = ai.draw_id(b)
        assert _slot(ai.run(thread_id, run_id)) == _slot(ai.run_thread(ai.bucket(run_id)))
    ch, dep = ChannelKeys.of("app", True), DeploymentKeys.of("app", True)
    channel_slots = {_slot(ch.seen())}
    deployment_slots = {_slot(dep.deployments())}
    for some_id in ODD_IDS:
        channel_slots |= {
            _slot(ch.channel_prefix() + some_id),
            _slot(ch.channel_topics_prefix() + some_id),
            _slot(ch.topic_prefix() + some_id),
        }
        deployment_slots |= {
            _slot(dep.deployment_prefix() + some_id),
            _slot(dep.functions_of_prefix() + some_id),
            _slot(dep.function_prefix() + some_id),
        }
    assert len(channel_slots) == 1
    assert len(deployment_slots) == 1


def test_standalone_keys_are_the_layout_2_names() -> None:
    """Standalone keeps layout 2 byte for byte (no migration): bucket arguments are ignored."""
    wf, ai = WorkflowKeys("app"), AIKeys("app")
    assert wf.run("r") == "app:wf:{r}:run"
    assert wf.runs(5) == wf.runs() == "app:wf:{app}:runs"
    assert wf.run_prefix(3) == ("app:wf:{", "}:run")
    assert ai.thread("t") == "app:ai:t:{t}:thread"
    assert ai.threads(7) == "app:ai:i:{app}:threads"
    assert ChannelKeys.of("app").channel("c") == "app:channel:c"
    assert DeploymentKeys.of("app").function("f") == "app:function:f"


def test_lua_sources_spell_no_member_width_of_their_own() -> None:
    """The member formats' widths come from `_keys.py` (the generated `WF_SEQ`/`AI_SEQ`)."""
    folder = resources.files("pikku_storage.redis").joinpath("_lua")
    for path in folder.iterdir():
        if not path.name.endswith(".lua"):
            continue
        source = path.read_text("utf-8")
        assert not re.search(r"pad\([^)]*,\s*\d+\)", source), path.name
        assert not re.search(r"string\.sub\(m, \d+\)", source), path.name


def test_bucket_ids_are_stable_and_drawn_ids_land_in_their_bucket() -> None:
    assert bucket_of("thread-1", 16) == bucket_of("thread-1", 16)
    assert bucket_of("thread-1", 1) == 0
    keys = WorkflowKeys("app", 16)
    for b in range(16):
        assert keys.bucket(keys.draw_id(b)) == b


async def _keys_per_primary(url: str, prefix: str) -> dict[str, int]:
    client = RedisCluster.from_url(url.replace("redis+cluster://", "redis://"))
    try:
        await client.initialize()
        counts: dict[str, int] = {}
        for node in client.get_primaries():
            found = 0
            async for _ in client.scan_iter(match=f"{prefix}:*", count=1000, target_nodes=node):
                found += 1
            counts[f"{node.host}:{node.port}"] = found
        return counts
    finally:
        await client.aclose()


@pytest.fixture
def cluster_prefix() -> str:
    return f"pikku_t_spread_{secrets.token_hex(4)}"


async def test_a_namespace_spreads_over_every_primary(
    pikku_redis_cluster_url: str, cluster_prefix: str
) -> None:
    """200 runs and 50 threads of one namespace leave keys on each of the 3 primaries."""
    url = pikku_redis_cluster_url
    try:
        async with open_storage(url, key_prefix=cluster_prefix) as storage:
            for i in range(200):
                run_id = await storage.workflows.create_run(f"wf-{i % 5}", {"i": i})
                if i % 4 == 0:
                    await storage.workflows.insert_step_state(run_id, "s", None, None)
            for i in range(50):
                await storage.ai_storage.create_thread(resource_id=f"user-{i % 7}")
            assert len(await storage.workflow_runs.list_runs(limit=250)) == 200
        counts = await _keys_per_primary(url, cluster_prefix)
        print(f"keys per primary of {cluster_prefix}: {counts}")  # the figure in the notes (-s)
        assert len(counts) >= 3
        assert all(n > 0 for n in counts.values()), counts
    finally:
        await drop_namespace(url, key_prefix=cluster_prefix)


async def test_a_namespace_keeps_its_bucket_count(
    pikku_redis_cluster_url: str, cluster_prefix: str
) -> None:
    """Ids are placed by the bucket count, so opening with another one is refused."""
    url = pikku_redis_cluster_url
    try:
        async with open_storage(url, key_prefix=cluster_prefix, cluster_buckets=8):
            pass
        with pytest.raises(InvalidValue, match="cluster_buckets=8"):
            async with open_storage(url, key_prefix=cluster_prefix, cluster_buckets=16):
                pass
        async with open_storage(f"{url}?cluster_buckets=8", key_prefix=cluster_prefix):
            pass
    finally:
        await drop_namespace(url, key_prefix=cluster_prefix)


async def test_a_create_killed_after_taking_its_sequence_number_leaves_no_trace(
    pikku_redis_cluster_url: str, cluster_prefix: str
) -> None:
    """The one write outside a run's or thread's slot is the insertion sequence, taken first.
    A process killed right after it (the `INCR` alone, here done by hand) leaves a gap only:
    nothing is listed, and later creates still list in insertion order."""
    url = pikku_redis_cluster_url
    wf, ai = WorkflowKeys(cluster_prefix, 16), AIKeys(cluster_prefix, 16)
    try:
        async with open_storage(url, key_prefix=cluster_prefix) as storage:
            first = await storage.workflows.create_run("wf", None)
            thread = await storage.ai_storage.create_thread(resource_id="r")
            client = RedisCluster.from_url(url.replace("redis+cluster://", "redis://"))
            try:
                await client.incr(wf.seq())  # the first write of a killed create_run
                await client.incr(ai.seq())  # ... of a killed create_thread
            finally:
                await client.aclose()
            later = [await storage.workflows.create_run("wf", None) for _ in range(3)]
            runs = await storage.workflow_runs.list_runs(limit=10)
            assert [r.id for r in runs] == [*reversed(later), first]
            second = await storage.ai_storage.create_thread(resource_id="r")
            threads = await storage.agent_runs.list_threads(limit=10)
            assert [t.id for t in threads] == [second.id, thread.id]
    finally:
        await drop_namespace(url, key_prefix=cluster_prefix)


async def test_pages_merged_over_buckets_are_the_slices_of_one_order(
    pikku_redis_cluster_url: str, cluster_prefix: str
) -> None:
    """Every (offset, limit) page equals the slice of the newest-first order, also when a
    bucket holds more of a page than its first share (the merge reads it again)."""
    url = pikku_redis_cluster_url
    try:
        async with open_storage(url, key_prefix=cluster_prefix) as storage:
            created = [await storage.workflows.create_run("wf", {"i": i}) for i in range(120)]
            await storage.workflows.update_run_status(created[5], "completed")
            await storage.workflow_runs.delete_run(created[7])
            newest_first = [r for r in reversed(created) if r != created[7]]
            runs = storage.workflow_runs
            assert [r.id for r in await runs.list_runs(limit=500)] == newest_first
            for limit in (1, 2, 3, 16, 50):
                for offset in (0, 1, 7, 40, 118):
                    page = await runs.list_runs(limit=limit, offset=offset)
                    assert [r.id for r in page] == newest_first[offset : offset + limit]
            done = await runs.list_runs(status="completed", limit=5)
            assert [r.id for r in done] == [created[5]]
            threads = [await storage.ai_storage.create_thread(resource_id="r") for _ in range(40)]
            listed = await storage.agent_runs.list_threads(limit=7, offset=3)
            assert [t.id for t in listed] == [t.id for t in reversed(threads)][3:10]
    finally:
        await drop_namespace(url, key_prefix=cluster_prefix)


def _dead_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_cluster_url_names_each_seed_node_and_refuses_a_bad_one() -> None:
    """`h1:p1,h2:p2` gives one plain URL per seed (user kept, options dropped); a seed that is
    not host:port is refused before any connection."""
    assert seed_urls(
        "redis+cluster://u:pw@127.0.0.1:7000,[::1]:7001,other/0?cluster_buckets=4"
    ) == [
        "redis://u:pw@127.0.0.1:7000/0",
        "redis://u:pw@[::1]:7001/0",
        "redis://u:pw@other:6379/0",
    ]
    for bad in ("127.0.0.1:7000,", "127.0.0.1:x", ",127.0.0.1:7000", "127.0.0.1:7000,h:99999"):
        with pytest.raises(InvalidValue, match="seed node"):
            open_storage(f"redis+cluster://{bad}/0")


async def test_a_dead_first_seed_node_is_passed_over(
    pikku_redis_cluster_url: str, cluster_prefix: str
) -> None:
    """A URL whose first seed node is down opens through the next one, and its namespace
    drops through it too."""
    live = urlsplit(pikku_redis_cluster_url)
    url = pikku_redis_cluster_url.replace(live.netloc, f"127.0.0.1:{_dead_port()},{live.netloc}")
    try:
        async with open_storage(url, key_prefix=cluster_prefix) as storage:
            run_id = await storage.workflows.create_run("wf", {"n": 1})
            run = await storage.workflow_runs.get_run(run_id)
            assert run is not None
            assert run.input == {"n": 1}
    finally:
        await drop_namespace(url, key_prefix=cluster_prefix)
    async with open_storage(pikku_redis_cluster_url, key_prefix=cluster_prefix) as storage:
        assert await storage.workflow_runs.get_run(run_id) is None
