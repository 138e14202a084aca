"""Advisory locks across OS processes, process death, hash collisions, cancellation (01 §5.2).

Children are separate Python processes opening the test's namespace with `open_storage`; they
record when they held a lock or a claim (`time.monotonic_ns`, one clock for every process on
Linux), and the parent checks that no two recorded intervals overlap.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import psycopg
import pytest
from psycopg.rows import TupleRow

from pikku_storage import Storage
from pikku_storage._locks import LockName
from pikku_storage.errors import LockTimeout
from pikku_storage.interfaces import WorkflowService
from pikku_storage.postgres import _locks
from pikku_testing._types import StorageFactory

pytestmark = [pytest.mark.pikku_backend("postgres"), pytest.mark.real_time]

Conn = psycopg.AsyncConnection[TupleRow]
ROUNDS: Final = 15

# Argument: [url, options, mode, run_id, step_id, rounds]. Prints "ready", waits for a line on
# stdin, then records `rounds` intervals of holding the run lock ("lock") or a claim of the step
# ("claim", released again with a pending retry), and prints them as JSON.
_CONTENDER: Final = """
import asyncio, json, sys, time
from pikku_storage import open_storage
from pikku_storage.clock import ManualClock

async def main():
    url, options, mode, run_id, step_id, rounds = json.loads(sys.argv[1])
    async with open_storage(url, clock=ManualClock(), **options) as storage:
        wf = storage.workflows
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        intervals = []
        while len(intervals) < rounds:
            if mode == "lock":
                async with wf.run_lock(run_id, timeout=30):
                    start = time.monotonic_ns()
                    await asyncio.sleep(0.003)
                    intervals.append((start, time.monotonic_ns()))
            elif await wf.claim_step(step_id) is not None:
                start = time.monotonic_ns()
                await asyncio.sleep(0.003)
                intervals.append((start, time.monotonic_ns()))
                await wf.create_retry_attempt(step_id, "pending")
        print(json.dumps(intervals), flush=True)

asyncio.run(main())
"""

# Argument: [url, options, run_id]. Takes the run lock, prints "locked", then waits forever.
_HOLDER: Final = """
import asyncio, json, sys
from pikku_storage import open_storage
from pikku_storage.clock import ManualClock

async def main():
    url, options, run_id = json.loads(sys.argv[1])
    async with open_storage(url, clock=ManualClock(), **options) as storage:
        async with storage.workflows.run_lock(run_id, timeout=30):
            print("locked", flush=True)
            await asyncio.Event().wait()

asyncio.run(main())
"""


@asynccontextmanager
async def _child(script: str, *args: object) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        json.dumps(list(args)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _expect_line(process: asyncio.subprocess.Process, expected: bytes) -> None:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    if line.strip() != expected:
        assert process.stderr is not None
        stderr = await process.stderr.read()
        pytest.fail(f"child said {line!r}: {stderr.decode(errors='replace')}")


async def _contend(
    open_args: tuple[str, dict[str, object]], mode: str, run_id: str, step_id: str | None
) -> list[tuple[int, int]]:
    """Two processes record ROUNDS intervals each; all intervals, sorted by start."""
    url, options = open_args
    args = (url, options, mode, run_id, step_id, ROUNDS)
    async with _child(_CONTENDER, *args) as first, _child(_CONTENDER, *args) as second:
        for process in (first, second):
            await _expect_line(process, b"ready")
        for process in (first, second):
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        results = await asyncio.wait_for(
            asyncio.gather(first.communicate(), second.communicate()), 120
        )
    intervals: list[tuple[int, int]] = []
    for process, (stdout, stderr) in zip((first, second), results, strict=True):
        assert process.returncode == 0, stderr.decode(errors="replace")
        intervals.extend((start, end) for start, end in json.loads(stdout.splitlines()[-1]))
    return sorted(intervals)


def _assert_disjoint(intervals: list[tuple[int, int]]) -> None:
    assert len(intervals) == 2 * ROUNDS
    for (_, previous_end), (start, _) in itertools.pairwise(intervals):
        assert start >= previous_end, "two processes held it at the same time"


async def test_run_lock_excludes_another_process_at_every_moment(
    storage: Storage, pikku_storage_open_args: tuple[str, dict[str, object]]
) -> None:
    """01 §3.8: across processes exactly one holder at a time (recorded intervals)."""
    run_id = await storage.workflows.create_run("wf", None)
    _assert_disjoint(await _contend(pikku_storage_open_args, "lock", run_id, None))


async def test_claim_step_has_one_holder_at_a_time_across_processes(
    storage: Storage, pikku_storage_open_args: tuple[str, dict[str, object]]
) -> None:
    """01 §3.5: of concurrent claims from any processes exactly one wins, every round."""
    wf = storage.workflows
    run_id = await wf.create_run("wf", None)
    step = await wf.insert_step_state(run_id, "s", None, None)
    _assert_disjoint(await _contend(pikku_storage_open_args, "claim", run_id, step.step_id))
    history = await storage.workflow_runs.get_run_history(run_id)
    assert len(history) == 2 * ROUNDS + 1  # one pending retry after every claim
    assert [entry.status.value for entry in history[:-1]] == ["running"] * (2 * ROUNDS)


COLLIDING_KEY: Final = 0x5EED_0000_0000_0042


def _key_of(storage: Storage, name: LockName) -> int:
    schema = storage.workflows._db.schema  # type: ignore[attr-defined]  # white-box
    return _locks.lock_key(schema, name)


async def _advisory_holders(admin: Conn, key: int) -> list[tuple[int, bool]]:
    """(pid, granted) of the sessions holding or awaiting the bigint advisory lock `key`."""
    cur = await admin.execute(
        "SELECT pid, granted FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1"
        " AND classid = %(high)s::bigint::oid AND objid = %(low)s::bigint::oid"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
    )
    return [(int(pid), bool(granted)) for pid, granted in await cur.fetchall()]


async def test_a_holder_killed_with_sigkill_frees_the_lock_at_once(
    storage: Storage, pikku_storage_open_args: tuple[str, dict[str, object]], admin: Conn
) -> None:
    """01 §6 38: the session's end frees its advisory lock; nothing of it stays."""
    wf = storage.workflows
    run_id = await wf.create_run("wf", None)
    url, options = pikku_storage_open_args
    async with _child(_HOLDER, url, options, run_id) as holder:
        await _expect_line(holder, b"locked")
        with pytest.raises(LockTimeout):
            async with wf.run_lock(run_id, timeout=0):
                pass
        holder.send_signal(signal.SIGKILL)
        assert await holder.wait() == -signal.SIGKILL
    key = _key_of(storage, LockName(run_id))
    async with wf.run_lock(run_id, timeout=5):
        holders = await _advisory_holders(admin, key)
    assert [granted for _, granted in holders] == [True]  # ours: the dead session left nothing
    assert await _advisory_holders(admin, key) == []


async def test_colliding_keys_nest_in_one_task_and_exclude_another_instance(
    storage: Storage,
    pikku_storage_factory: StorageFactory,
    admin: Conn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """01 §6 40: with every name mapped to one key, a run lock and a nested step lock complete
    in one task (one session lock, counted twice); another instance stays excluded."""
    monkeypatch.setattr(_locks, "lock_key", lambda schema, name: COLLIDING_KEY)
    other = (await pikku_storage_factory()).workflows
    wf = storage.workflows
    run_id = await wf.create_run("wf", None)
    async with wf.run_lock(run_id, timeout=1), wf.step_lock(run_id, "s", timeout=1):
        assert [granted for _, granted in await _advisory_holders(admin, COLLIDING_KEY)] == [True]
        for lock in (
            other.run_lock(run_id, timeout=0),
            other.step_lock(run_id, "s", timeout=0),
            other.step_lock(run_id, "unrelated", timeout=0.1),
        ):
            with pytest.raises(LockTimeout):
                async with lock:
                    pass
    async with other.run_lock(run_id, timeout=0), other.step_lock(run_id, "s", timeout=0):
        pass
    assert await _advisory_holders(admin, COLLIDING_KEY) == []


async def test_a_waiter_cancelled_inside_pg_advisory_lock_leaves_no_session_waiting(
    storage: Storage, pikku_storage_factory: StorageFactory, admin: Conn
) -> None:
    """01 §5.2: acquire cancelled midway closes its connection; the pool keeps serving."""
    wf = storage.workflows
    other = (await pikku_storage_factory()).workflows
    run_id = await wf.create_run("wf", None)
    key = _key_of(storage, LockName(run_id))
    async with wf.run_lock(run_id, timeout=1):
        waiter = asyncio.create_task(_enter(other, run_id))
        for _ in range(500):  # until the waiter sits in pg_advisory_lock
            if len(await _advisory_holders(admin, key)) == 2:
                break
            await asyncio.sleep(0.01)
        assert sorted(granted for _, granted in await _advisory_holders(admin, key)) == [
            False,
            True,
        ]
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert [granted for _, granted in await _advisory_holders(admin, key)] == [True]
    async with other.run_lock(run_id, timeout=0):
        assert await other.get_run(run_id) is not None


async def _enter(wf: WorkflowService, run_id: str) -> None:
    async with wf.run_lock(run_id, timeout=None):
        pass


def test_lock_key_is_the_first_eight_bytes_of_the_digest_as_a_signed_int64() -> None:
    """01 §5.2: SHA-256 over schema, U+0000 and the name, big-endian, signed."""
    name = LockName("run-1", "step")
    digest = name.digest("pikku")
    assert _locks.lock_key("pikku", name) == int.from_bytes(digest[:8], "big", signed=True)
    assert _locks.lock_key("pikku", name) != _locks.lock_key("other", name)
    assert -(2**63) <= _locks.lock_key("pikku", LockName("x")) < 2**63
