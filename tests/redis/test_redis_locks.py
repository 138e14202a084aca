"""Redis leases: renewal, a stale key, a lost lease, a killed holder, two contending processes.

Spec: 01 §3.8, §5.3 and §6 items 37-39.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import sys
from pathlib import Path

import pytest

from pikku_storage import LockTimeout, Storage
from pikku_storage._locks import LockName
from pikku_storage.redis._keys import WorkflowKeys
from pikku_testing._types import StorageFactory
from tests.redis._redis_support import client_of, prefix_of

BACKENDS = pytest.mark.pikku_backends("redis", "fakeredis")
WORKER = Path(__file__).with_name("_lock_worker.py")
RUN = "11111111-1111-4111-8111-111111111111"


def _lock_key(storage: Storage, run_id: str = RUN) -> str:
    return WorkflowKeys(prefix_of(storage)).lock(LockName(run_id))


@BACKENDS
@pytest.mark.real_time
async def test_a_held_lease_is_renewed_while_a_long_body_runs(
    pikku_storage_factory: StorageFactory,
) -> None:
    """01 §6 item 39: with `lock_lease=0.5`, a 1.6 s body keeps the lock; a `timeout=0`
    contender on another instance fails throughout."""
    holder = await pikku_storage_factory(lock_lease=0.5)
    other = await pikku_storage_factory()
    async with holder.workflows.run_lock(RUN, timeout=0):
        for _ in range(8):
            with pytest.raises(LockTimeout):
                async with other.workflows.run_lock(RUN, timeout=0):
                    pass
            await asyncio.sleep(0.2)
    async with other.workflows.run_lock(RUN, timeout=0):
        pass


@BACKENDS
@pytest.mark.real_time
async def test_a_planted_stale_key_is_taken_once_its_lease_runs_out(
    pikku_storage: Storage,
) -> None:
    """01 §6 item 39: a key left by a dead holder excludes until its `PX` expires."""
    await client_of(pikku_storage).set(_lock_key(pikku_storage), "dead-holder", px=50)
    with pytest.raises(LockTimeout):
        async with pikku_storage.workflows.run_lock(RUN, timeout=0):
            pass
    async with pikku_storage.workflows.run_lock(RUN, timeout=0.2):
        assert await client_of(pikku_storage).get(_lock_key(pikku_storage)) not in (
            b"dead-holder",
            "dead-holder",
        )


@BACKENDS
@pytest.mark.real_time
async def test_a_lost_lease_is_logged_at_release_and_the_new_holders_key_stays(
    pikku_storage_factory: StorageFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """01 §6 item 39, D13: a holder whose lease ran out and was retaken exits without raising
    and without deleting the new holder's key; the loss is a WARNING."""
    storage = await pikku_storage_factory(lock_lease=0.15)
    client, key = client_of(storage), _lock_key(storage)
    with caplog.at_level(logging.WARNING, logger="pikku_storage.redis._locks"):
        async with storage.workflows.run_lock(RUN, timeout=0):
            await client.set(key, "new-holder", px=5000)  # the lease ran out and was retaken
            await asyncio.sleep(0.1)  # a renewal runs and finds the token gone
    assert await client.get(key) in (b"new-holder", "new-holder")
    assert [r.levelno for r in caplog.records if "was lost" in r.getMessage()] == [logging.WARNING]


@pytest.mark.pikku_backend("redis")
@pytest.mark.real_time
async def test_a_holder_killed_with_sigkill_frees_the_lock_when_its_lease_runs_out(
    pikku_storage: Storage, pikku_storage_open_args: tuple[str, dict[str, object]]
) -> None:
    """01 §6 item 38: a process holding a run lock (lease 0.2 s) is killed; the lock frees
    once the lease runs out, with no release ever sent."""
    url, options = pikku_storage_open_args
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        "hold",
        url,
        str(options["key_prefix"]),
        RUN,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert worker.stdout is not None
        assert await worker.stdout.readline() == b"held\n"
        with pytest.raises(LockTimeout):
            async with pikku_storage.workflows.run_lock(RUN, timeout=0):
                pass
    finally:
        worker.kill()
        await worker.wait()
    for _ in range(10):  # the lease is 0.2 s: a few 0.2 s waits cover it
        try:
            async with pikku_storage.workflows.run_lock(RUN, timeout=0.2):
                break
        except LockTimeout:
            continue
    else:
        pytest.fail("the killed holder's lock never freed")


@pytest.mark.pikku_backend("redis")
@pytest.mark.real_time
async def test_two_processes_contending_never_hold_the_lock_together_or_claim_twice(
    pikku_storage: Storage,
    pikku_storage_open_args: tuple[str, dict[str, object]],
    tmp_path: Path,
) -> None:
    """01 §6 items 37, 49: two OS processes take one run lock 30 times each (the recorded
    holding intervals never overlap, the counter they increment under it is exact) and both
    claim the same 40 steps (each is claimed by exactly one)."""
    url, options = pikku_storage_open_args
    wf = pikku_storage.workflows
    run_id = await wf.create_run("contended", None)
    steps = [(await wf.insert_step_state(run_id, f"s{i}", None, None)).step_id for i in range(40)]
    rounds = 30
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            "contend",
            url,
            str(options["key_prefix"]),
            run_id,
            str(rounds),
            ",".join(steps),
            str(tmp_path / f"out{n}.json"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for n in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert await worker.stdout.readline() == b"ready\n"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
            await worker.stdin.drain()
        codes = [await worker.wait() for worker in workers]
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
    assert codes == [0, 0]
    results = [json.loads((tmp_path / f"out{n}.json").read_text()) for n in range(2)]
    intervals = sorted(tuple(i) for r in results for i in r["intervals"])
    assert len(intervals) == 2 * rounds
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(intervals))
    assert (await wf.get_run_state(run_id))["count"] == 2 * rounds
    claimed = [step for r in results for step in r["claimed"]]
    assert sorted(claimed) == sorted(steps)
    assert len(results[0]["claimed"]) + len(results[1]["claimed"]) == len(steps)
