"""A Redis namespace written at layout 1 (the library of commit 6c7f177) opens at layout 2.

The fixture `fixtures/redis/layout1.json` was written by `make_redis_fixture.py` with the old
library; it is loaded under a fresh prefix, then `init()` migrates it. Spec: 05 D14, §4, §5
item 36.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import fakeredis
import pytest
from redis.asyncio import Redis

from pikku_storage import (
    SchemaMismatch,
    StalledRun,
    Storage,
    WorkflowVersion,
    WorkflowVersionStatus,
)
from pikku_storage.redis import LATEST_VERSION, storage_from_client
from pikku_storage.redis._keys import layout_key
from tests.redis._redis_support import PrivateRedis

FIXTURE: Final = Path(__file__).parent / "fixtures" / "redis" / "layout1.json"
OLD_COMMIT: Final = "6c7f177"
ROOT: Final = Path(__file__).resolve().parents[2]


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


async def _check_migrated(storage: Storage) -> None:
    wf, runs, console = storage.workflows, storage.workflow_runs, storage.agent_runs
    listed = await runs.list_runs()
    assert len(listed) == 3
    by_workflow = {(r.workflow, r.status.value): r for r in listed}
    for run in listed:  # 05 §1 defaults on old records
        assert run.deterministic is False
        assert run.planned_steps == []
        assert run.wire.parent_step_id is None
        assert run.wire.pikku_user_id is None
    waiting = next(r for r in listed if r.workflow == "flow" and r.input == {"n": 1})
    idle = next(r for r in listed if r.workflow == "flow" and r.input is None)
    step = await wf.get_step_state(waiting.id, "queued")
    assert (step.rpc_name, step.from_step_name, step.child_run_id) == ("rpc.queued", None, None)
    history = await runs.get_run_history(idle.id)
    assert [(h.rpc_name, h.from_step_name, h.child_run_id) for h in history] == [
        ("rpc.done", None, None)
    ]
    assert await wf.get_workflow_version("flow", "g1") == WorkflowVersion(
        graph={"nodes": [1.5]}, source="dsl", status=WorkflowVersionStatus.ACTIVE
    )
    later = datetime(2027, 1, 1, tzinfo=UTC)
    # the sweepers find the old running work: both running runs have no step in flight
    # (a pending step is not), and the waiting run's pending step is undispatched
    done = (await runs.get_run_steps(idle.id))[0]
    assert await wf.find_stalled_runs(older_than=later) == [
        StalledRun(run_id=waiting.id, workflow="flow", idle_since=step.updated_at),
        StalledRun(run_id=idle.id, workflow="flow", idle_since=done.updated_at),
    ]
    pending = await wf.find_undispatched_steps(older_than=later)
    assert [(p.run_id, p.step_name, p.rpc_name, p.pending_since) for p in pending] == [
        (waiting.id, "queued", "rpc.queued", step.updated_at)
    ]
    assert ("other", "completed") in by_workflow  # its pending step is not work
    # the owners listing finds the old threads
    owned = await console.list_threads(owners=["owner-alice"])
    assert [t.id for t in owned] == ["t2", "t1"]
    assert [t.id for t in await console.list_threads(owners=["bob"])] == ["t3"]
    messages = await storage.ai_storage.get_messages("t1")
    assert [(m.reasoning_content, m.interrupted, m.undelivered) for m in messages] == [
        (None, False, False)
    ] * 3
    agent_runs = await console.get_thread_runs("t1")
    assert await storage.ai_run_state.get_scores(agent_runs[0].run_id) == []
    # the migrated store keeps working: a claim un-stalls the run and dispatches the step
    await wf.claim_step(step.step_id)
    assert await wf.find_undispatched_steps(older_than=later) == []
    assert await wf.find_stalled_runs(older_than=later + timedelta(days=1)) == [
        StalledRun(run_id=idle.id, workflow="flow", idle_since=done.updated_at)
    ]


async def test_a_layout_1_namespace_migrates_on_init_on_fakeredis() -> None:
    """05 §5 item 36 [Redis] on the in-process fake: old records read 05 §1's defaults, the
    sweepers find the old running runs and pending steps, `owners` finds the old threads."""
    client = fakeredis.FakeAsyncRedis()
    prefix = "upgrade"
    await _load(client, prefix)
    assert await client.get(layout_key(prefix)) == b"1"
    async with storage_from_client(client, key_prefix=prefix) as storage:
        assert await client.get(layout_key(prefix)) == str(LATEST_VERSION).encode()
        await _check_migrated(storage)
    async with storage_from_client(client, key_prefix=prefix) as storage:  # a second init
        assert len(await storage.workflow_runs.list_runs()) == 3


def _old_library(tmp_path: Path) -> Path:
    """The library of the previous layout, from git (skipped where history is missing)."""
    git = shutil.which("git")
    if (
        git is None
        or subprocess.run(
            [git, "-C", str(ROOT), "cat-file", "-e", f"{OLD_COMMIT}^{{commit}}"], check=False
        ).returncode
    ):
        pytest.skip(f"commit {OLD_COMMIT} (the layout-1 library) is not in this checkout")
    target = tmp_path / "old"
    target.mkdir()
    archive = subprocess.run(
        [git, "-C", str(ROOT), "archive", OLD_COMMIT, "pikku_storage"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


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
            await _check_migrated(storage)
        old = _old_library(tmp_path)
        script = textwrap.dedent(
            f"""
            import asyncio
            from pikku_storage import SchemaMismatch
            from pikku_storage.redis import open_storage

            async def main():
                try:
                    async with open_storage({private_redis.url!r}, key_prefix={prefix!r}):
                        print("opened")
                except SchemaMismatch as exc:
                    print("SchemaMismatch", exc)

            asyncio.run(main())
            """
        )
        result = subprocess.run(  # noqa: ASYNC221  # the old library in its own interpreter
            [sys.executable, "-c", script],
            env={"PYTHONPATH": str(old), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )
        assert result.stdout.startswith("SchemaMismatch"), result.stdout + result.stderr
        assert SchemaMismatch.__name__ in result.stdout
    finally:
        await client.aclose()
