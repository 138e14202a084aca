"""`bench --rows N`: preload N runs and N thread messages before the timed phases.

So that list and window costs can be compared at 1k, 100k and 1M stored rows, each backend
is filled the fastest honest way, and the report names the way:

- PostgreSQL: one `INSERT … SELECT … FROM generate_series` per table, server-side, into the
  backend's own tables (then the thread's message counter is moved past the rows);
- SQLite and other SQLAlchemy URLs: multi-row `INSERT`s of 10,000 rows per transaction into
  the tables of the public `make_tables()` (the backend's own `MetaData`);
- Redis: the backend's `wf_create_run` script pipelined 1,000 calls per round trip;
  messages through the public `save_messages`, 1,000 per call;
- memory: the public API (concurrent `create_run`, `save_messages` of 1,000).

Preloaded runs are older than every timed run (created before them, one millisecond apart).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Final

from rich.progress import Progress, TaskID

from pikku_storage._cli._bench_ops import BenchState
from pikku_storage._cli._namespaces import NamespaceSpec, Target
from pikku_storage.records import Message, MessageRole
from pikku_storage.storage import Storage

__all__ = ["preload"]

MESSAGE_BATCH: Final = 1000
SQL_BATCH: Final = 10_000
PIPELINE: Final = 1000
RUN_CONCURRENCY: Final = 500
_WIRE: Final = json.dumps({"type": "unknown", "id": None, "parent_run_id": None})


def _start(rows: int) -> datetime:
    """When preloaded row 0 was written: far enough back that row `rows` is in the past."""
    return datetime.now(UTC) - timedelta(milliseconds=rows + 60_000)


async def preload(
    target: Target,
    spec: NamespaceSpec,
    storage: Storage,
    state: BenchState,
    rows: int,
    progress: Progress,
) -> str:
    """Store `rows` runs and `rows` messages in the bench thread; how it was done."""
    task = progress.add_task(f"{target.kind}: preload {rows:,} runs + messages", total=2 * rows)
    try:
        if target.kind == "postgres":
            await _postgres(spec, state, rows)
            progress.advance(task, 2 * rows)
            return "INSERT … SELECT generate_series"
        if target.kind in ("sqlite", "sqlalchemy-sqlite") or target.kind.startswith("sqlalchemy"):
            await _sqlalchemy(target.kind, spec, state, rows, progress, task)
            return f"multi-row INSERT, {SQL_BATCH:,} rows per transaction"
        if target.kind == "redis":
            await _redis(spec, state, rows, progress, task)
            await _messages(storage, state, rows, progress, task)
            return f"runs: pipelined scripts x{PIPELINE}; messages: save_messages x{MESSAGE_BATCH}"
        await _memory_runs(storage, rows, progress, task)
        await _messages(storage, state, rows, progress, task)
        return f"public API, save_messages x{MESSAGE_BATCH}"
    finally:
        progress.remove_task(task)


async def _memory_runs(storage: Storage, rows: int, progress: Progress, task: TaskID) -> None:
    wf = storage.workflows
    for start in range(0, rows, RUN_CONCURRENCY):
        n = min(RUN_CONCURRENCY, rows - start)
        await asyncio.gather(*(wf.create_run("bench-preload", {"i": start + j}) for j in range(n)))
        progress.advance(task, n)


async def _messages(
    storage: Storage, state: BenchState, rows: int, progress: Progress, task: TaskID
) -> None:
    for start in range(0, rows, MESSAGE_BATCH):
        n = min(MESSAGE_BATCH, rows - start)
        batch = [
            Message(
                id=f"p{start + j}",
                role=MessageRole.USER if (start + j) % 2 == 0 else MessageRole.ASSISTANT,
                content=f"preloaded message {start + j}",
            )
            for j in range(n)
        ]
        await storage.ai_storage.save_messages(state.thread_id, batch)
        progress.advance(task, n)


async def _postgres(spec: NamespaceSpec, state: BenchState, rows: int) -> None:
    import psycopg
    from psycopg import sql

    schema = str(spec.options["schema"])

    def table(name: str) -> sql.Identifier:
        return sql.Identifier(schema, name)

    params = {"n": rows, "t0": _start(rows), "thread": state.thread_id, "wire": _WIRE}
    async with await psycopg.AsyncConnection.connect(spec.url, autocommit=True) as conn:
        await conn.execute(
            sql.SQL(
                "INSERT INTO {runs} (workflow_run_id, workflow, status, input, inline, wire,"
                " created_at, updated_at)"
                " SELECT gen_random_uuid(), 'bench-preload', 'completed',"
                " format('{{\"i\":%%s}}', g)::json, false, %(wire)s::json,"
                " %(t0)s + g * interval '1 millisecond', %(t0)s + g * interval '1 millisecond'"
                " FROM generate_series(1, %(n)s) AS g"
            ).format(runs=table("workflow_runs")),
            params,
        )
        async with conn.transaction():
            await conn.execute(
                sql.SQL(
                    "INSERT INTO {messages} (thread_id, seq, id, role, content_text, created_at)"
                    " SELECT %(thread)s, g, 'p' || g,"
                    " CASE WHEN g %% 2 = 0 THEN 'user' ELSE 'assistant' END,"
                    " 'preloaded message ' || g, %(t0)s + g * interval '1 millisecond'"
                    " FROM generate_series(1, %(n)s) AS g"
                ).format(messages=table("ai_messages")),
                params,
            )
            await conn.execute(
                sql.SQL("UPDATE {threads} SET message_seq = %(n)s WHERE id = %(thread)s").format(
                    threads=table("ai_threads")
                ),
                params,
            )
        await conn.execute(sql.SQL("ANALYZE {}").format(table("workflow_runs")))
        await conn.execute(sql.SQL("ANALYZE {}").format(table("ai_messages")))


async def _sqlalchemy(
    kind: str,
    spec: NamespaceSpec,
    state: BenchState,
    rows: int,
    progress: Progress,
    task: TaskID,
) -> None:
    import uuid

    from sqlalchemy import insert, update
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    from pikku_storage.sqlalchemy import make_tables

    url: URL
    if kind == "sqlite":
        from pikku_storage.sqlite import sqlite_url

        url = sqlite_url(spec.url)
    else:
        url = make_url(spec.url)
    prefix = str(spec.options.get("table_prefix", "pikku_"))
    tables = make_tables(None, prefix).tables
    runs, messages = tables[f"{prefix}workflow_runs"], tables[f"{prefix}ai_messages"]
    threads = tables[f"{prefix}ai_threads"]
    t0 = _start(rows)
    engine = create_async_engine(url)
    try:
        for start in range(0, rows, SQL_BATCH):
            n = min(SQL_BATCH, rows - start)
            values = [
                {
                    "workflow_run_id": str(uuid.uuid4()),
                    "workflow": "bench-preload",
                    "status": "completed",
                    "input": f'{{"i":{start + j}}}',
                    "inline": False,
                    "wire": _WIRE,
                    "created_at": t0 + timedelta(milliseconds=start + j),
                    "updated_at": t0 + timedelta(milliseconds=start + j),
                }
                for j in range(n)
            ]
            async with engine.begin() as conn:
                await conn.execute(insert(runs), values)
            progress.advance(task, n)
        for start in range(0, rows, SQL_BATCH):
            n = min(SQL_BATCH, rows - start)
            values = [
                {
                    "thread_id": state.thread_id,
                    "seq": start + j + 1,
                    "id": f"p{start + j}",
                    "role": "user" if (start + j) % 2 == 0 else "assistant",
                    "content_text": f"preloaded message {start + j}",
                    "content_parts": None,
                    "created_at": t0 + timedelta(milliseconds=start + j),
                }
                for j in range(n)
            ]
            async with engine.begin() as conn:
                await conn.execute(insert(messages), values)
            progress.advance(task, n)
        async with engine.begin() as conn:
            await conn.execute(
                update(threads).where(threads.c.id == state.thread_id).values(message_seq=rows)
            )
    finally:
        await engine.dispose()


async def _redis(
    spec: NamespaceSpec, state: BenchState, rows: int, progress: Progress, task: TaskID
) -> None:
    from pikku_storage._cli._bench_raw_redis import RawRedis

    raw = RawRedis(spec, state)
    await raw.open()
    try:
        for start in range(0, rows, PIPELINE):
            n = min(PIPELINE, rows - start)
            await raw.create_runs(start, n, _start(rows))
            progress.advance(task, n)
    finally:
        await raw.close()
