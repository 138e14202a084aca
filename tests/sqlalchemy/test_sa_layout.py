"""White-box layout checks of the SQLAlchemy backend: removals leave no rows behind (also with
SQLite foreign keys off), SQLite connection settings, binary collation (01 §6 item 55,
03 §7 backend checks, 02 §5.3)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from pikku_storage import ManualClock, Storage
from pikku_storage.records import Channel, Message, MessageRole, ToolCall, ToolCallApproval
from pikku_storage.sqlalchemy import storage_from_engine
from pikku_storage.sqlalchemy._connection import Database
from tests.sqlalchemy.sa_helpers import connect, database

SQL_BACKENDS = ("sqlite", "sqlalchemy-sqlite", "sqlalchemy-postgres", "sqlalchemy-mysql")


async def _count(db: Database, table: Table) -> int:
    async with connect(db) as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def _fill(storage: Storage, clock: ManualClock) -> dict[str, str]:
    """One of everything: a run with steps, history and state; a thread with messages, calls,
    a run, approvals, decisions and memory; a channel with subscriptions; a deployment."""
    wf = storage.workflows
    run_id = await wf.create_run("wf", {"a": 1})
    step = await wf.insert_step_state(run_id, "s1", None, None)
    await wf.set_step_error(step.step_id, {"message": "boom"})
    await wf.create_retry_attempt(step.step_id, "running")
    await wf.insert_step_state(run_id, "s2", "rpc", [1])
    await wf.update_run_state(run_id, "k", 1)
    await wf.update_run_status(run_id, "completed")
    ai = storage.ai_storage
    thread = await ai.create_thread("res", thread_id="thread-1")
    await ai.save_messages(
        thread.id,
        [
            Message(id="m1", role=MessageRole.USER, content="hi"),
            Message(
                id="m2",
                role=MessageRole.ASSISTANT,
                content=None,
                tool_calls=[ToolCall(id="c1", name="t"), ToolCall(id="c2", name="t")],
            ),
        ],
    )
    await ai.save_working_memory(thread.id, "thread", {"x": 1})
    await ai.save_working_memory("res", "resource", {"y": 1})
    agent_run = await storage.ai_run_state.create_run(
        agent_name="agent",
        thread_id=thread.id,
        resource_id="res",
        pending_approvals=[
            ToolCallApproval(tool_call_id="c1", tool_name="t", args={}),
            ToolCallApproval(tool_call_id="c2", tool_name="t", args={}),
        ],
    )
    await storage.ai_run_state.resolve_approval("c1", "approved")
    await storage.channels.add_channel(Channel(channel_id="ch", channel_name="chat"))
    await storage.eventhub.subscribe("topic-a", "ch")
    await storage.eventhub.subscribe("topic-b", "ch")
    return {"run": run_id, "thread": thread.id, "agent_run": agent_run}


async def _assert_empty(db: Database, *, keep_resource_memory: bool = True) -> None:
    t = db.tables
    for table in (
        t.workflow_runs,
        t.workflow_steps,
        t.workflow_history,
        t.workflow_state,
        t.ai_threads,
        t.ai_messages,
        t.ai_tool_calls,
        t.ai_thread_memory,
        t.ai_runs,
        t.ai_pending_approvals,
        t.ai_approval_decisions,
        t.channels,
        t.channel_subscriptions,
    ):
        assert await _count(db, table) == 0, table.name
    assert await _count(db, t.ai_resource_memory) == (1 if keep_resource_memory else 0)


@pytest.mark.pikku_backends(*SQL_BACKENDS)
async def test_deletes_leave_no_row_of_what_they_removed(
    pikku_storage: Storage, pikku_clock: ManualClock
) -> None:
    """01 §6 item 55 (and 02 §2, 03 §2 cascades): `delete_run`, `delete_thread` and
    `remove_channels` leave no child row."""
    ids = await _fill(pikku_storage, pikku_clock)
    assert await pikku_storage.workflow_runs.delete_run(ids["run"])
    assert await pikku_storage.agent_runs.delete_thread(ids["thread"])
    await pikku_storage.channels.remove_channels(["ch"])
    await _assert_empty(database(pikku_storage))


@pytest.mark.pikku_backends(*SQL_BACKENDS)
async def test_prunes_leave_no_row_of_what_they_removed(
    pikku_storage: Storage, pikku_clock: ManualClock
) -> None:
    """01 §6 item 55: after `prune_runs` (and the thread and channel prunes) nothing remains."""
    await _fill(pikku_storage, pikku_clock)
    pikku_clock.advance(60)
    cutoff = pikku_clock.now()
    assert await pikku_storage.workflow_runs.prune_runs(finished_before=cutoff) == 1
    assert await pikku_storage.agent_runs.prune_threads(updated_before=cutoff) == 1
    assert await pikku_storage.channels.prune_channels(last_seen_before=cutoff) == ["ch"]
    await _assert_empty(database(pikku_storage))


@pytest.mark.pikku_backends("sqlite", "sqlalchemy-sqlite")
async def test_sqlite_connections_enforce_foreign_keys(pikku_storage: Storage) -> None:
    """01 §6 item 55: SQLite connections report `PRAGMA foreign_keys` = 1 (and a busy timeout;
    WAL for a file)."""
    db = database(pikku_storage)
    async with connect(db) as conn:
        assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() == 1
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one() > 0
        mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
    assert mode == ("memory" if db.memory else "wal")


async def test_removals_are_complete_on_sqlite_with_foreign_keys_off(tmp_path: Path) -> None:
    """03 §7 backend check, 02 §5.3: a borrowed SQLite engine without `foreign_keys = ON`
    still loses every child row, since removals delete children explicitly."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'nofk.db'}")
    clock = ManualClock()
    try:
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() == 0
        async with storage_from_engine(engine, clock=clock) as storage:
            ids = await _fill(storage, clock)
            await storage.channels.remove_channels(["ch"])
            assert await storage.workflow_runs.delete_run(ids["run"])
            await storage.ai_storage.delete_thread(ids["thread"])
            await _assert_empty(database(storage))
            ids = await _fill(storage, clock)
            clock.advance(60)
            cutoff = clock.now()
            assert await storage.workflow_runs.prune_runs(finished_before=cutoff) == 1
            assert await storage.agent_runs.prune_threads(updated_before=cutoff) == 1
            assert await storage.channels.prune_channels(last_seen_before=cutoff) == ["ch"]
            await _assert_empty(database(storage))
            assert await storage.eventhub.subscribe("topic", "gone") is False
    finally:
        await engine.dispose()


@pytest.mark.pikku_backends(*SQL_BACKENDS)
async def test_trailing_spaces_and_case_make_distinct_ids(pikku_storage: Storage) -> None:
    """01 §5.4, 03 §6.2: binary, NO PAD collation: "a", "a " and "A" are three ids (MariaDB's
    `utf8mb4_bin` would merge the first two), and names sort by code point."""
    for channel_id in ("a", "a ", "A"):
        await pikku_storage.channels.add_channel(Channel(channel_id=channel_id, channel_name="n"))
        await pikku_storage.eventhub.subscribe("t", channel_id)
    assert await pikku_storage.eventhub.get_channel_ids_for_topic("t") == ["A", "a", "a "]
    for thread_id in ("a", "a "):
        await pikku_storage.ai_storage.create_thread("r", thread_id=thread_id)
    assert sorted(t.id for t in await pikku_storage.ai_storage.get_threads("r")) == ["a", "a "]
    for name in ("a ", "a", "B", "é"):
        await pikku_storage.workflows.create_run(name, None)
    names = await pikku_storage.workflow_runs.get_distinct_workflow_names()
    assert names == ["B", "a", "a ", "é"]
    db = database(pikku_storage)
    async with connect(db) as conn:
        channels = db.tables.channels
        query = select(channels.c.channel_id).order_by(channels.c.channel_id)
        assert list((await conn.execute(query)).scalars()) == ["A", "a", "a "]


@pytest.mark.pikku_backends("sqlalchemy-mysql")
async def test_mysql_identifier_columns_use_a_no_pad_binary_collation(
    pikku_storage: Storage,
) -> None:
    """01 §5.4: MariaDB `utf8mb4_nopad_bin` (MySQL 8 `utf8mb4_0900_bin`) on every id column."""
    db = database(pikku_storage)
    async with connect(db) as conn:
        rows = await conn.execute(
            text(
                "SELECT table_name, column_name, collation_name FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND table_name LIKE :prefix "
                "AND data_type = 'varchar'"
            ),
            {"prefix": db.table_prefix.replace("_", "\\_") + "%"},
        )
        collations = {(row[0], row[1]): row[2] for row in rows}
    assert collations
    expected = {"utf8mb4_nopad_bin", "utf8mb4_0900_bin"}
    plain = {"status", "role", "kind", "suspend_reason", "checksum", "endpoint"}
    wrong = {
        key: value
        for key, value in collations.items()
        if key[1] not in plain and value not in expected
    }
    assert wrong == {}
