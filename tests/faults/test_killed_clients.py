"""A client process killed with SIGKILL in the middle of a large write: all or nothing.

The child opens the private server with `open_storage` and runs one large call: a
`save_messages` of 2,000 messages (about 4 MB), or a `prune_runs` of 60 runs with their steps
in one batch. The parent kills it while the call is in flight: on PostgreSQL once its session
is inside a transaction (`pg_stat_activity`), on Redis once the server holds part of its
command (`CLIENT LIST` shows a query buffer). Afterwards the batch is stored whole or not at
all, every run is whole, and deleting everything leaves no orphan. Spec: 00 §6, 01 §4 (an
interrupted prune leaves whole runs), 02 §2.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import psycopg
import pytest
import redis.asyncio
from psycopg import sql

from pikku_storage import Message, MessageRole, Storage
from tests.faults._targets import Target
from tests.faults._workload import check_consistent, delete_everything

pytestmark = [pytest.mark.faults, pytest.mark.real_time]

MESSAGES: Final = 2000
RUNS: Final = 60
APP: Final = "pikku-faults-child"
POLL: Final = 0.001

# Argument: [url, options, op, thread_id, messages]. Prints "go" just before the call and
# "done" after it.
_CHILD: Final = """
import asyncio, json, sys
from datetime import datetime, UTC
from pikku_storage import Message, open_storage
from pikku_storage.clock import ManualClock

async def main():
    url, options, op, thread_id, messages = json.loads(sys.argv[1])
    async with open_storage(url, clock=ManualClock(), **options) as storage:
        if op == "save":
            batch = [
                Message(id=f"big{n}", role="user", content="x" * 2000) for n in range(messages)
            ]
            print("go", flush=True)
            await storage.ai_storage.save_messages(thread_id, batch)
        else:
            print("go", flush=True)
            await storage.workflow_runs.prune_runs(
                finished_before=datetime(2100, 1, 1, tzinfo=UTC), batch_size=10000
            )
        print("done", flush=True)

asyncio.run(main())
"""


def _options(target: Target, namespace: str) -> dict[str, object]:
    if target.url.startswith("postgresql"):
        return {"schema": namespace, "application_name": APP}
    return {"key_prefix": namespace, "client_name": APP}


class _Watch:
    """Tells whether the child's call is under way on the server, from a connection of its own:
    PostgreSQL, its session is between two statements of a transaction or waits for a row
    lock inside one; Redis, the server
    holds part of its command, or it has read the prune's selection."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._pg: psycopg.AsyncConnection[tuple[int]] | None = None
        self._redis: redis.asyncio.Redis | None = None

    async def __aenter__(self) -> _Watch:
        if self._target.url.startswith("postgresql"):
            self._pg = await psycopg.AsyncConnection.connect(self._target.url, autocommit=True)
        else:
            self._redis = redis.asyncio.Redis.from_url(self._target.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pg is not None:
            await self._pg.close()
        if self._redis is not None:
            await self._redis.aclose()

    async def in_flight(self) -> bool:
        if self._pg is not None:
            cur = await self._pg.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = %s"
                " AND (state = 'idle in transaction' OR wait_event_type = 'Lock')",
                (APP,),
            )
            row = await cur.fetchone()
            return row is not None and row[0] > 0
        assert self._redis is not None
        return any(
            c.get("name") == APP and (int(c.get("qbuf", 0)) > 0 or c.get("cmd") == "zrangebyscore")
            for c in await self._redis.client_list()
        )

    async def gone(self) -> None:
        """Wait until the server has dropped every session of the killed child."""
        while True:
            if self._pg is not None:
                cur = await self._pg.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (APP,)
                )
                row = await cur.fetchone()
                left = 0 if row is None else row[0]
            else:
                assert self._redis is not None
                left = sum(c.get("name") == APP for c in await self._redis.client_list())
            if not left:
                return
            await asyncio.sleep(POLL)


async def _kill_mid_call(
    target: Target, watch: _Watch, options: dict[str, object], op: str, arg: str
) -> str:
    """Run the child and SIGKILL it while its call is in flight; how it ended."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        json.dumps([target.url, options, op, arg, MESSAGES]),
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    try:
        assert (await asyncio.wait_for(child.stdout.readline(), 60)).strip() == b"go"
        done = asyncio.create_task(child.stdout.readline())
        while not done.done():
            if await watch.in_flight():
                child.send_signal(signal.SIGKILL)
                break
            await asyncio.sleep(POLL)
        finished = (await done).strip() == b"done"
        return "finished before the kill" if finished else "killed mid-call"
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()


@asynccontextmanager
async def _row_locked_midway(target: Target, storage: Storage) -> AsyncIterator[None]:
    """PostgreSQL: hold a row lock on the history of a run in the middle of the prune's batch,
    so the prune's transaction is stopped there (deleted some, not all) when the kill lands."""
    if not target.url.startswith("postgresql"):
        yield
        return
    schema: str = storage.workflows._db.schema  # type: ignore[attr-defined]  # white-box
    runs = await storage.workflow_runs.list_runs(limit=RUNS)
    middle = runs[len(runs) // 2].id
    history = sql.Identifier(schema, "workflow_step_history")
    async with await psycopg.AsyncConnection.connect(target.url) as conn, conn.transaction():
        await conn.execute(
            sql.SQL("SELECT 1 FROM {} WHERE workflow_run_id = %s FOR UPDATE").format(history),
            (middle,),
        )
        yield


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


async def _prepare_runs(storage: Storage) -> None:
    wf = storage.workflows
    for n in range(RUNS):
        run_id = await wf.create_run("flow", n)
        step = await wf.insert_step_state(run_id, "a", None, None)
        await wf.set_step_result(step.step_id, n)
        await wf.update_run_state(run_id, "n", n)
        await wf.update_run_status(run_id, "completed", output=n)


@pytest.mark.parametrize("target", ["postgres-fast", "redis-shutdown"], indirect=True)
@pytest.mark.parametrize("op", ["save_messages", "prune_runs"])
async def test_a_client_killed_in_a_large_write_leaves_all_or_nothing(
    target: Target, op: str
) -> None:
    """00 §6, 02 §2, 01 §4: the batch, and the prune's one batch, are whole or absent."""
    namespace = f"faults_{secrets.token_hex(4)}"
    async with target.open(namespace) as storage:
        thread_id = "t"
        await storage.ai_storage.create_thread("res", thread_id=thread_id)
        await storage.ai_storage.save_messages(thread_id, [Message(id="m0", role=MessageRole.USER)])
        if op == "prune_runs":
            await _prepare_runs(storage)
        async with _Watch(target) as watch:
            async with _row_locked_midway(target, storage) if op == "prune_runs" else _nothing():
                options = _options(target, namespace)
                how = await _kill_mid_call(target, watch, options, op[:4], thread_id)
            await watch.gone()
        held = await check_consistent(storage)
        if op == "save_messages":
            ids = [m.id for m in await storage.ai_storage.get_messages(thread_id)]
            assert ids in (["m0"], ["m0", *(f"big{n}" for n in range(MESSAGES))])
            outcome = "stored all" if len(ids) > 1 else "stored nothing"
        else:
            remaining = held.get("runs completed", 0)
            assert remaining in (0, RUNS)
            outcome = "pruned none" if remaining == RUNS else "pruned all"
        await delete_everything(storage)
        left = await target.leftovers(storage)
        print(f"\n[faults] {target.name} {op}: {how}, {outcome}, orphans={len(left)}")
        assert left == {}
