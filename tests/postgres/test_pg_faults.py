"""Broken connections and deadlocks (00 §6, 01 §6 61, 02 §5.2).

A multi-row write is stopped midway by a row lock another session holds, its backend is killed
with `pg_terminate_backend`, and the store is checked for leftovers. A server that goes away
and comes back (a restart, a crash) is in tests/faults, on a private cluster.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Final

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from pikku_storage import ManualClock, Storage
from pikku_storage.errors import StorageUnavailable
from pikku_storage.postgres._connection import Conn as PoolConn
from pikku_storage.postgres._connection import PgDatabase, execute
from pikku_storage.records import (
    Message,
    MessageRole,
    ToolCall,
    ToolCallApproval,
    ToolResult,
)
from pikku_testing._types import StorageFactory

pytestmark = [pytest.mark.pikku_backend("postgres"), pytest.mark.real_time]

Conn = psycopg.AsyncConnection[TupleRow]
POLLS: Final = 500


def _schema(storage: Storage) -> str:
    db: PgDatabase = storage.workflows._db  # type: ignore[attr-defined]  # white-box
    return db.schema


@pytest.fixture
def app_name() -> str:
    return f"pikku-fault-{secrets.token_hex(4)}"


@pytest.fixture
async def victim(pikku_storage_factory: StorageFactory, app_name: str) -> Storage:
    """A second instance whose connections carry `app_name`, so the test can find them."""
    return await pikku_storage_factory(application_name=app_name)


@pytest.fixture
async def locker(pg_url: str) -> AsyncIterator[Conn]:
    """A session that holds row locks inside a transaction the test opens."""
    conn = await psycopg.AsyncConnection.connect(pg_url)
    try:
        yield conn
    finally:
        await conn.close()


async def _kill_when_blocked(admin: Conn, app_name: str) -> int:
    """Wait until a backend of `app_name` waits for a lock, then terminate it; its pid."""
    for _ in range(POLLS):
        cur = await admin.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE application_name = %(app)s AND wait_event_type = 'Lock'",
            {"app": app_name},
        )
        row = await cur.fetchone()
        if row is not None:
            await admin.execute("SELECT pg_terminate_backend(%(pid)s)", {"pid": row[0]})
            return int(row[0])
        await asyncio.sleep(0.01)
    pytest.fail("the write never blocked on the held row lock")


async def _interrupted(
    admin: Conn,
    locker: Conn,
    app_name: str,
    lock_rows: sql.Composed,
    params: dict[str, object],
    write: Callable[[], Coroutine[Any, Any, object]],
) -> None:
    """Hold `lock_rows` (SELECT … FOR UPDATE), start `write`, kill it once it blocks there, and
    check that the caller saw `StorageUnavailable`."""
    async with locker.transaction():
        await locker.execute(lock_rows, params)
        task = asyncio.create_task(write())
        await _kill_when_blocked(admin, app_name)
        with pytest.raises(StorageUnavailable):
            await task


async def _rows(admin: Conn, query: sql.Composed, params: dict[str, object]) -> list[TupleRow]:
    cur = await admin.execute(query, params)
    return await cur.fetchall()


async def test_a_save_killed_midway_stores_none_of_the_batch(
    storage: Storage, victim: Storage, admin: Conn, locker: Conn, app_name: str
) -> None:
    """02 §2: all or nothing. Killed while setting results (messages and calls already sent)."""
    ai = storage.ai_storage
    thread = await ai.create_thread("res")
    first = Message(
        id="m1", role=MessageRole.ASSISTANT, tool_calls=[ToolCall(id="tc1", name="search")]
    )
    await ai.save_messages(thread.id, [first])
    before = await ai.get_thread(thread.id)
    batch = [
        Message(id="m2", role=MessageRole.USER, content="more"),
        Message(id="m3", role=MessageRole.ASSISTANT, tool_calls=[ToolCall(id="tc2", name="s")]),
        Message(
            id="x", role=MessageRole.TOOL, tool_results=[ToolResult(id="tc1", name="s", result="r")]
        ),
    ]
    schema = _schema(storage)
    calls = sql.Identifier(schema, "ai_tool_calls")
    await _interrupted(
        admin,
        locker,
        app_name,
        sql.SQL("SELECT 1 FROM {} WHERE thread_id = %(t)s AND id = 'tc1' FOR UPDATE").format(calls),
        {"t": thread.id},
        lambda: victim.ai_storage.save_messages(thread.id, batch),
    )
    messages = sql.Identifier(schema, "ai_messages")
    assert await _rows(
        admin,
        sql.SQL("SELECT id FROM {} WHERE thread_id = %(t)s").format(messages),
        {"t": thread.id},
    ) == [("m1",)]
    assert await _rows(
        admin,
        sql.SQL("SELECT id, result FROM {} WHERE thread_id = %(t)s").format(calls),
        {"t": thread.id},
    ) == [("tc1", None)]
    threads = sql.Identifier(schema, "ai_threads")
    assert await _rows(
        admin,
        sql.SQL("SELECT message_seq FROM {} WHERE id = %(t)s").format(threads),
        {"t": thread.id},
    ) == [(1,)]
    assert await ai.get_thread(thread.id) == before
    await victim.ai_storage.save_messages(thread.id, batch)  # the pool recovered
    assert [m.id for m in await ai.get_messages(thread.id)] == ["m1", "tool-results-m1", "m2", "m3"]


async def test_a_transition_killed_midway_leaves_step_and_attempt_as_they_were(
    storage: Storage, victim: Storage, admin: Conn, locker: Conn, app_name: str
) -> None:
    """01 §2: a step write updates the live step and its attempt together or not at all."""
    wf = storage.workflows
    run_id = await wf.create_run("wf", None)
    step = await wf.insert_step_state(run_id, "s", None, None)
    history = sql.Identifier(_schema(storage), "workflow_step_history")
    await _interrupted(
        admin,
        locker,
        app_name,
        sql.SQL("SELECT 1 FROM {} WHERE workflow_step_id = %(s)s FOR UPDATE").format(history),
        {"s": step.step_id},
        lambda: victim.workflows.set_step_result(step.step_id, {"done": True}),
    )
    assert await wf.get_step_state(run_id, "s") == step
    (entry,) = await storage.workflow_runs.get_run_history(run_id)
    assert (entry.status.value, entry.result, entry.succeeded_at) == ("pending", None, None)
    await victim.workflows.set_step_result(step.step_id, {"done": True})
    assert (await wf.get_step_state(run_id, "s")).result == {"done": True}


async def test_an_update_run_killed_midway_keeps_status_and_pending_set(
    storage: Storage, victim: Storage, admin: Conn, locker: Conn, app_name: str
) -> None:
    """02 §3: all fields of one call change atomically (pending set replaced by difference)."""
    thread = await storage.ai_storage.create_thread("res")
    pending = [ToolCallApproval(tool_call_id=f"tc{i}", tool_name="t", args=i) for i in range(3)]
    runs = storage.ai_run_state
    run_id = await runs.create_run(
        agent_name="a", thread_id=thread.id, resource_id="res", pending_approvals=pending
    )
    before = await runs.get_run(run_id)
    table = sql.Identifier(_schema(storage), "ai_pending_approvals")
    await _interrupted(
        admin,
        locker,
        app_name,
        sql.SQL("SELECT 1 FROM {} WHERE run_id = %(r)s AND tool_call_id = 'tc0' FOR UPDATE").format(
            table
        ),
        {"r": run_id},
        lambda: victim.ai_run_state.update_run(
            run_id, status="suspended", pending_approvals=pending[1:]
        ),
    )
    assert await runs.get_run(run_id) == before


async def test_a_prune_killed_midway_leaves_whole_runs(
    storage: Storage,
    victim: Storage,
    admin: Conn,
    locker: Conn,
    app_name: str,
    pikku_clock: ManualClock,
) -> None:
    """01 §4: an interrupted prune leaves whole runs, never partial ones."""
    wf = storage.workflows
    run_ids = [await wf.create_run("wf", i) for i in range(3)]
    for run_id in run_ids:
        await wf.insert_step_state(run_id, "s", None, None)
        await wf.update_run_state(run_id, "k", 1)
        await wf.update_run_status(run_id, "completed")
    pikku_clock.advance(60)
    history = sql.Identifier(_schema(storage), "workflow_step_history")
    await _interrupted(
        admin,
        locker,
        app_name,
        sql.SQL("SELECT 1 FROM {} WHERE workflow_run_id = %(r)s FOR UPDATE").format(history),
        {"r": run_ids[1]},
        lambda: victim.workflow_runs.prune_runs(finished_before=pikku_clock.now()),
    )
    for run_id in run_ids:
        assert await wf.get_run(run_id) is not None
        assert len(await storage.workflow_runs.get_run_history(run_id)) == 1
        assert await wf.get_run_state(run_id) == {"k": 1}
    assert await victim.workflow_runs.prune_runs(finished_before=pikku_clock.now()) == 3
    for table in ("workflow_step", "workflow_step_history", "workflow_run_state"):
        query = sql.SQL("SELECT count(*) FROM {} WHERE workflow_run_id = ANY(%(ids)s::uuid[])")
        rows = await _rows(
            admin, query.format(sql.Identifier(_schema(storage), table)), {"ids": run_ids}
        )
        assert rows == [(0,)], table


async def test_a_call_on_killed_connections_raises_storage_unavailable_then_the_pool_recovers(
    victim: Storage, admin: Conn, app_name: str
) -> None:
    """01 §6 61: the broken call fails cleanly; the next one succeeds, no restart needed."""
    wf = victim.workflows
    run_ids = await asyncio.gather(*(wf.create_run("wf", i) for i in range(4)))
    cur = await admin.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = %(app)s",
        {"app": app_name},
    )
    assert (await cur.fetchone()) != (0,)
    with pytest.raises(StorageUnavailable):
        await wf.get_run(run_ids[0])
    assert [r.id for r in await asyncio.gather(*(wf.get_run(i) for i in run_ids)) if r] == list(
        run_ids
    )


async def test_a_deadlock_is_retried_inside_the_call(
    storage: Storage, admin: Conn, pg_url: str
) -> None:
    """02 §5.2: deadlock and serialization failures are retried a bounded number of times."""
    schema = _schema(storage)
    table = sql.Identifier(schema, f"scratch_{secrets.token_hex(3)}")
    await admin.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, n int)").format(table))
    try:
        await admin.execute(sql.SQL("INSERT INTO {} VALUES (1, 0), (2, 0)").format(table))
        db = PgDatabase(pg_url, schema)
        await db.open()
        try:
            locked = {1: asyncio.Event(), 2: asyncio.Event()}
            attempts = {1: 0, 2: 0}
            update = sql.SQL("UPDATE {} SET n = n + 1 WHERE id = %(id)s").format(table)

            def body(first: int, second: int) -> Callable[[PoolConn], Awaitable[None]]:
                async def run(conn: PoolConn) -> None:
                    attempts[first] += 1
                    async with conn.transaction():
                        await execute(conn, update, {"id": first})
                        locked[first].set()
                        await locked[second].wait()
                        await execute(conn, update, {"id": second})

                return run

            await asyncio.gather(db.run(body(1, 2)), db.run(body(2, 1)))
        finally:
            await db.close()
        cur = await admin.execute(sql.SQL("SELECT n FROM {} ORDER BY id").format(table))
        assert await cur.fetchall() == [(2,), (2,)]  # both transactions landed once
        # The victim ran again (row locks are not strictly FIFO, so it may deadlock twice).
        assert sum(attempts.values()) >= 3
        assert max(attempts.values()) <= 3
    finally:
        await admin.execute(sql.SQL("DROP TABLE {}").format(table))
