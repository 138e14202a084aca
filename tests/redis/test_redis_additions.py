"""Spec 05 on Redis, white-box: command counts of owner listing and sweepers, the markers.

Spec: 05 §5 items 11 and 33 (the same commands whatever else is stored, no SCAN/KEYS; on a
private server also the commands run inside the scripts), 34 (markers equal values recomputed
from the steps).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from datetime import timedelta

import pytest

from pikku_storage import ManualClock, StalledRun, StepStatus, Storage
from pikku_storage.errors import StepNotFound
from pikku_storage.redis import open_storage
from pikku_storage.redis._keys import WorkflowKeys
from pikku_testing._types import StorageFactory
from tests.redis._redis_support import CommandSpy, PrivateRedis, client_of, prefix_of
from tests.redis.test_redis_commands import _server_calls

BACKENDS = pytest.mark.pikku_backends("redis", "fakeredis")

_ACTIVE = {StepStatus.RUNNING, StepStatus.SCHEDULED, StepStatus.SUSPENDED}


async def _spied(storage: Storage, call: object) -> tuple[list[str], object]:
    spy = CommandSpy(client_of(storage))
    with spy.recording():
        result = await call  # type: ignore[misc]  # an awaitable made by the caller
    assert spy.forbidden() == []
    return spy.names, result


async def _threads(storage: Storage, resources: list[str], start: int) -> None:
    ai = storage.ai_storage
    for first in range(0, len(resources), 200):
        await asyncio.gather(
            *(
                ai.create_thread(r, thread_id=f"t{start + first + i}")
                for i, r in enumerate(resources[first : first + 200])
            )
        )


def _other_owners(count: int) -> list[str]:
    """Resource ids of other owners, many sorting right next to `owner-alice`'s range."""
    shapes = ("owner-alicf:{}", "owner-alice-{}", "owner-alic:{}", "owner-bob:{}", "owner-al{}")
    return [shapes[i % len(shapes)].format(i) for i in range(count)]


@BACKENDS
async def test_owner_listing_sends_the_same_commands_with_5000_other_threads_as_with_10(
    pikku_storage: Storage, pikku_backend_name: str, record_property: Callable[[str, object], None]
) -> None:
    """05 §5 item 11 [Redis]: no SCAN/KEYS; the command count is the same with 5000 threads of
    other owners as with 10 (600 on the in-process fake, whose scripts run far slower)."""
    console = pikku_storage.agent_runs
    await _threads(pikku_storage, ["owner-alice", "owner-alice:p1", "owner-alice:a:b"], 0)
    await _threads(pikku_storage, _other_owners(10), 100)
    await console.list_threads(owners=["owner-alice"], limit=1)  # scripts loaded from here on
    small, few = await _spied(pikku_storage, console.list_threads(owners=["owner-alice"]))
    small_agent, _ = await _spied(
        pikku_storage, console.list_threads(owners=["owner-alice", "x"], agent_name="a")
    )
    others = 5000 if pikku_backend_name == "redis" else 600
    await _threads(pikku_storage, _other_owners(others), 1000)
    large, many = await _spied(pikku_storage, console.list_threads(owners=["owner-alice"]))
    large_agent, _ = await _spied(
        pikku_storage, console.list_threads(owners=["owner-alice", "x"], agent_name="a")
    )
    record_property("owners_commands", f"10 others: {small}; {others} others: {large}")
    assert (
        small
        == large
        == [
            "EVALSHA:ai_owner_resources",
            "EVALSHA:ai_owner_threads",
            "EVALSHA:hgetall_many",
        ]
    )
    assert small_agent == large_agent == ["EVALSHA:ai_owner_resources", "EVALSHA:ai_owner_threads"]
    assert few == many
    assert sorted(t.resource_id for t in many) == [  # type: ignore[attr-defined]
        "owner-alice",
        "owner-alice:a:b",
        "owner-alice:p1",
    ]


async def _settled_with_pending(storage: Storage, count: int) -> None:
    wf = storage.workflows

    async def one(i: int) -> None:
        run_id = await wf.create_run("settled", None)
        await wf.insert_step_state(run_id, "left", "rpc", None)
        await wf.update_run_status(run_id, "completed" if i % 2 else "suspended")

    for first in range(0, count, 200):
        await asyncio.gather(*(one(i) for i in range(first, min(count, first + 200))))


async def _in_flight(storage: Storage, count: int) -> None:
    wf = storage.workflows

    async def one() -> None:
        run_id = await wf.create_run("busy", None)
        step = await wf.insert_step_state(run_id, "work", "rpc", None)
        await wf.claim_step(step.step_id)

    for first in range(0, count, 200):
        await asyncio.gather(*(one() for _ in range(first, min(count, first + 200))))


async def _sweepable(storage: Storage, clock: ManualClock, count: int) -> None:
    """`count` stalled runs and `count` undispatched steps, older than the sweeps' cutoff."""
    wf = storage.workflows
    for i in range(count):
        stalled = await wf.create_run("stalled", None)
        step = await wf.insert_step_state(stalled, "done", None, None)
        await wf.set_step_result(step.step_id, i)
        waiting = await wf.create_run("waiting", None)
        other = await wf.insert_step_state(waiting, "next", "rpc.next", None)
        await wf.claim_step(other.step_id)  # keeps `waiting` out of the stalled set
        await wf.insert_step_state(waiting, "queued", "rpc.q", None)
    clock.advance(1)


async def _sweeps(
    storage: Storage, clock: ManualClock
) -> tuple[list[str], list[str], list[str], int, int]:
    wf = storage.workflows
    cutoff = clock.now() - timedelta(milliseconds=500)
    stalled_cmds, stalled = await _spied(storage, wf.find_stalled_runs(older_than=cutoff, limit=5))
    assert isinstance(stalled, list)
    paged_cmds, _ = await _spied(
        storage, wf.find_stalled_runs(older_than=cutoff, limit=5, after=stalled[-1])
    )
    steps_cmds, steps = await _spied(
        storage, wf.find_undispatched_steps(older_than=cutoff, limit=5)
    )
    assert isinstance(steps, list)
    return stalled_cmds, paged_cmds, steps_cmds, len(stalled), len(steps)


@BACKENDS
async def test_sweepers_send_the_same_commands_with_7000_other_runs_as_with_10(
    pikku_storage: Storage,
    pikku_clock: ManualClock,
    pikku_backend_name: str,
    record_property: Callable[[str, object], None],
) -> None:
    """05 §5 item 33 [Redis]: the same commands with 5000 settled runs holding pending steps
    and 2000 runs with work in flight as with 10 runs (500 and 200 on the in-process fake)."""
    await _sweepable(pikku_storage, pikku_clock, 10)
    await _sweeps(pikku_storage, pikku_clock)  # scripts loaded from here on
    small = await _sweeps(pikku_storage, pikku_clock)
    settled, busy = (5000, 2000) if pikku_backend_name == "redis" else (500, 200)
    await _settled_with_pending(pikku_storage, settled)
    await _in_flight(pikku_storage, busy)
    large = await _sweeps(pikku_storage, pikku_clock)
    record_property("sweep_commands", f"10 runs: {small}; {settled}+{busy} more: {large}")
    assert small == large
    assert small[:3] == (
        ["EVALSHA:wf_find_stalled"],
        ["EVALSHA:wf_find_stalled"],
        ["EVALSHA:wf_find_undispatched"],
    )
    assert small[3:] == (5, 5)


async def test_sweepers_read_only_their_window_on_a_server(private_redis: PrivateRedis) -> None:
    """05 §5 item 33 [Redis], inside the scripts: the server runs the same commands for a
    sweep (counted by `INFO commandstats`) with 5000 settled and 2000 busy runs as with 10."""
    clock = ManualClock()
    async with open_storage(private_redis.url, clock=clock) as storage:
        client = client_of(storage)
        wf = storage.workflows
        await _sweepable(storage, clock, 10)
        cutoff = clock.now() - timedelta(milliseconds=500)
        await wf.find_stalled_runs(older_than=cutoff, limit=5)
        await wf.find_undispatched_steps(older_than=cutoff, limit=5)
        few = (
            await _server_calls(client, wf.find_stalled_runs(older_than=cutoff, limit=5)),
            await _server_calls(client, wf.find_undispatched_steps(older_than=cutoff, limit=5)),
        )
        await _settled_with_pending(storage, 5000)
        await _in_flight(storage, 2000)
        many = (
            await _server_calls(client, wf.find_stalled_runs(older_than=cutoff, limit=5)),
            await _server_calls(client, wf.find_undispatched_steps(older_than=cutoff, limit=5)),
        )
        assert few == many
        assert few[0] == {"evalsha": 1, "zrange": 1, "hget": 5}
        assert few[1] == {"evalsha": 1, "zrange": 1, "hmget": 5}


async def _markers(storage: Storage, run_id: str) -> tuple[int, int, bool]:
    """The stored `active_steps`, `activity_at` ms and idle-set membership of a run."""
    client, k = client_of(storage), WorkflowKeys(prefix_of(storage))
    active, at = await client.hmget(k.run(run_id), ["active_steps", "activity_at"])
    assert active is not None
    assert at is not None
    idle = await client.zscore(k.idle(), run_id)
    return int(active), int(at), idle is not None


@BACKENDS
async def test_markers_equal_values_recomputed_from_steps_after_concurrent_writes(
    pikku_storage: Storage, pikku_storage_factory: StorageFactory, pikku_clock: ManualClock
) -> None:
    """05 §5 item 34 (white-box): two instances race transitions, claims and retries on
    parallel steps of one run; then `active_steps` and `activity_at` equal values recomputed
    from the steps, the idle set agrees, and `find_stalled_runs` agrees with 05 §3.5."""
    other = await pikku_storage_factory()
    wf, wf2 = pikku_storage.workflows, other.workflows
    run_id = await wf.create_run("flow", None)
    steps = [await wf.insert_step_state(run_id, f"s{i}", "rpc", None) for i in range(6)]
    rng = random.Random(34)

    async def act(n: int) -> None:
        service = wf if n % 2 else wf2
        step = steps[rng.randrange(len(steps))]
        with contextlib.suppress(StepNotFound):
            match n % 5:
                case 0:
                    await service.claim_step(step.step_id)
                case 1:
                    await service.claim_step_for_execution(run_id, f"s{n % 6}", "rpc")
                case 2:
                    await service.set_step_error(step.step_id, {"message": "x"})
                case 3:
                    await service.create_retry_attempt(step.step_id, "pending")
                case _:
                    await service.set_step_result(step.step_id, n)

    for round_ in range(3):
        pikku_clock.advance(1)
        await asyncio.gather(*(act(20 * round_ + n) for n in range(20)))
        live = [await wf.get_step_state(run_id, f"s{i}") for i in range(6)]
        run = await pikku_storage.workflow_runs.get_run(run_id)
        assert run is not None
        active = sum(1 for s in live if s.status in _ACTIVE)
        latest = max([run.updated_at, *(s.updated_at for s in live)])
        stored = await _markers(pikku_storage, run_id)
        assert stored == (active, int(latest.timestamp() * 1000), active == 0)
        stalled = await wf.find_stalled_runs(older_than=pikku_clock.now() + timedelta(seconds=1))
        expected = [StalledRun(run_id=run_id, workflow="flow", idle_since=latest)]
        assert stalled == (expected if active == 0 else [])
    for i in range(6):  # settle everything: the run becomes stalled from that instant
        step = await wf.get_step_state(run_id, f"s{i}")
        await wf2.set_step_result(step.step_id, "done")
    assert (await _markers(pikku_storage, run_id))[0::2] == (0, True)
