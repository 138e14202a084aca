"""Helpers of the SQLAlchemy backend's own tests: its `Database`, statement capture, seeding."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pikku_storage import Storage
from pikku_storage.backends import driver_url
from pikku_storage.sqlalchemy._connection import Database
from pikku_storage.sqlalchemy._schema import build_tables

SQL_BACKENDS = ("sqlite", "sqlalchemy-sqlite", "sqlalchemy-postgres", "sqlalchemy-mysql")
SEED_BASE = datetime(2025, 12, 1, tzinfo=UTC)
SEED_ROWS = 10_000


@dataclass
class Fresh:
    """An empty, never-migrated namespace: `open_storage(url, **options)` reaches it."""

    url: str
    options: dict[str, Any]


class _ThreadConnection:
    """The bits of `AsyncConnection` these tests use, on the SQLite preset's writer thread
    (its one long-lived connection): each call runs there and commits."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _call(self, fn: Any) -> Any:
        def body(conn: Any) -> Any:
            result = fn(conn)
            frozen = result.freeze() if result is not None and result.returns_rows else None
            conn.commit()
            return frozen

        frozen = await self._db.connection(body)
        return None if frozen is None else frozen()

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return await self._call(lambda conn: conn.execute(statement, parameters))

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any:
        return await self._call(lambda conn: conn.exec_driver_sql(statement, parameters))

    async def run_sync(self, fn: Any, *args: Any) -> Any:
        return await self._db.connection(lambda conn: fn(conn, *args))

    async def commit(self) -> None:
        return None

    async def rollback(self) -> None:
        return None


@asynccontextmanager
async def connect(db: Database) -> AsyncIterator[Any]:
    """A connection for white-box reads and writes: the engine's own when it is async, the
    writer thread's on the SQLite preset (each statement commits there)."""
    if isinstance(db.engine, AsyncEngine):
        async with db.engine.connect() as conn:
            yield conn
    else:
        yield _ThreadConnection(db)


@asynccontextmanager
async def begin(db: Database) -> AsyncIterator[Any]:
    """Like `connect`, committed at the end."""
    if isinstance(db.engine, AsyncEngine):
        async with db.engine.begin() as conn:
            yield conn
    else:
        yield _ThreadConnection(db)


def database(storage: Storage) -> Database:
    """The `Database` behind a SQLAlchemy `Storage` (white-box)."""
    db = storage.workflows._db  # type: ignore[attr-defined]  # white-box: the SQLAlchemy service
    assert isinstance(db, Database)
    return db


class Capture:
    """Every SELECT an engine sends while `active`, with its DBAPI parameters."""

    def __init__(self, engine: Any) -> None:
        self.statements: list[tuple[str, Any]] = []
        self.active = False
        self._engine = engine if isinstance(engine, Engine) else engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._record)

    def _record(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        head = statement.lstrip().upper()
        if self.active and not many and head.startswith(("SELECT", "WITH")):
            self.statements.append((statement, parameters))

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._record)


async def drop_namespace(url: str, options: dict[str, Any]) -> None:
    """Drop a PostgreSQL schema (`options["schema"]`) or a MySQL table prefix's tables."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            if "schema" in options:
                await conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {options['schema']} CASCADE")
            else:
                await conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
                tables = build_tables(None, str(options["table_prefix"])).metadata
                for table in tables.sorted_tables:
                    await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")
    finally:
        await engine.dispose()


@asynccontextmanager
async def server_namespace(request: pytest.FixtureRequest, server: str) -> AsyncIterator[Fresh]:
    """A fresh schema (PostgreSQL) or table prefix (MySQL) on the session's server."""
    url = driver_url(request.getfixturevalue(f"pikku_{server}_url"))
    token = secrets.token_hex(3)
    if server == "postgres":
        namespace = Fresh(url, {"schema": f"pk_sa_t_{token}"})
    else:
        namespace = Fresh(url, {"table_prefix": f"pkt{token}_"})
    try:
        yield namespace
    finally:
        await drop_namespace(namespace.url, namespace.options)


def _at(offset_ms: int) -> datetime:
    return SEED_BASE + timedelta(milliseconds=offset_ms)


async def seed(db: Database) -> dict[str, Any]:
    """At least 10,000 rows in every table a list or window query reads, written in bulk."""
    t = db.tables
    n = SEED_ROWS
    statuses = ("running", "suspended", "completed", "failed", "cancelled")
    run_ids = [str(uuid.UUID(int=i + 1, version=4)) for i in range(n)]
    wire = '{"type":"unknown","id":null,"parent_run_id":null}'
    runs = [
        {
            "workflow_run_id": run_ids[i],
            "workflow": f"wf-{i % 20}",
            "status": statuses[i % 5],
            "input": "null",
            "output": None,
            "error": None,
            "inline": False,
            "graph_hash": None,
            "wire": wire,
            "created_at": _at(i),
            "updated_at": _at(i),
            # Markers: a fifth of the runs are running and idle (stalled candidates).
            "active_steps": 0 if statuses[i % 5] == "running" else 1,
            "activity_at": _at(i),
        }
        for i in range(n)
    ]
    steps, history = [], []
    for i in range(n):
        run_id, step_id = run_ids[i // 50], str(uuid.UUID(int=n + i + 1, version=4))
        common = {"status": "succeeded", "result": "1", "error": None, "created_at": _at(i)}
        stamps = {"updated_at": _at(i), "running_at": None, "scheduled_at": None}
        stamps |= {"succeeded_at": _at(i), "failed_at": None}
        steps.append(
            {
                "workflow_step_id": step_id,
                "workflow_run_id": run_id,
                "step_name": f"s{i % 50}",
                "rpc_name": None,
                "data": None,
                "attempt_count": 1,
                "retries": None,
                "retry_delay": None,
                "branch_taken": None,
                # A tenth carry the undispatched marker (only the plans read it).
                "dispatch_since": _at(i) if i % 10 == 0 else None,
                **common,
                **stamps,
            }
        )
        history.append(
            {
                "workflow_step_id": step_id,
                "attempt": 1,
                "workflow_run_id": run_id,
                **common,
                **stamps,
            }
        )
    threads = [
        {
            "id": f"t{i}",
            "resource_id": f"r{i % 100}",
            "title": None,
            "metadata": None,
            "message_seq": n if i == 0 else 0,
            "created_at": _at(i),
            "updated_at": _at(i),
        }
        for i in range(n)
    ]
    messages = [
        {
            "thread_id": "t0",
            "seq": k + 1,
            "id": f"m{k}",
            "role": "assistant",
            "content_text": "x",
            "content_parts": None,
            "created_at": _at(k // 3),
        }
        for k in range(n)
    ]
    calls = [
        {
            "thread_id": "t0",
            "id": f"c{k}",
            "message_seq": k + 1,
            "position": 0,
            "name": "tool",
            "args": "{}",
            "result": "ok" if k % 2 else None,
        }
        for k in range(n)
    ]
    agent_run_ids = [str(uuid.UUID(int=3 * n + i + 1, version=4)) for i in range(n)]
    agent_runs = [
        {
            "run_id": agent_run_ids[i],
            "thread_id": f"t{i}",
            "agent_name": f"agent-{i % 50}",
            "resource_id": f"r{i % 100}",
            "status": "suspended",
            "error_message": None,
            "suspend_reason": "approval",
            "missing_rpcs": None,
            "usage_input_tokens": 0,
            "usage_output_tokens": 0,
            "usage_model": "",
            "created_at": _at(i),
            "updated_at": _at(i),
        }
        for i in range(n)
    ]

    def payload(i: int) -> str:
        return f'{{"tool_call_id":"c{i}","tool_name":"tool","args":{{}}}}'

    pending = [
        {
            "run_id": agent_run_ids[i],
            "tool_call_id": f"c{i}",
            "position": 0,
            "kind": "tool-call",
            "payload": payload(i),
        }
        for i in range(n)
    ]
    decisions = [
        {
            "run_id": agent_run_ids[i],
            "tool_call_id": f"c{i}",
            "kind": "tool-call",
            "payload": payload(i),
            "status": "approved",
            "resolved_at": _at(i),
        }
        for i in range(n)
    ]
    scores = [
        {
            "run_id": agent_run_ids[i % 100],
            "scorer_name": "judge",
            "score": 0.5,
            "reason": None,
            "metadata": None,
            "created_at": _at(i),
        }
        for i in range(n)
    ]
    channels = [
        {
            "channel_id": f"ch{i}",
            "channel_name": "chat",
            "opening_data": "null",
            "user_session": None,
            "last_seen": _at(i),
        }
        for i in range(n)
    ]
    subscriptions = [{"topic": f"topic-{i % 100}", "channel_id": f"ch{i}"} for i in range(n)]
    deployments = [
        {"deployment_id": f"d{i}", "endpoint": "http://x", "last_heartbeat": _at(i)}
        for i in range(n)
    ]
    functions = [{"function_name": f"fn-{i % 100}", "deployment_id": f"d{i}"} for i in range(n)]

    def body(conn: Any) -> None:
        for table, rows in (
            (t.workflow_runs, runs),
            (t.workflow_steps, steps),
            (t.workflow_history, history),
            (t.ai_threads, threads),
            (t.ai_messages, messages),
            (t.ai_tool_calls, calls),
            (t.ai_runs, agent_runs),
            (t.ai_pending_approvals, pending),
            (t.ai_approval_decisions, decisions),
            (t.ai_run_scores, scores),
            (t.channels, channels),
            (t.channel_subscriptions, subscriptions),
            (t.deployments, deployments),
            (t.deployment_functions, functions),
        ):
            for start in range(0, len(rows), 2000):
                conn.execute(table.insert(), rows[start : start + 2000])

    await db.write(body)
    return {
        "run_ids": run_ids,
        "step_run": run_ids[0],
        "agent_run": agent_run_ids[7],
        "middle_message": f"m{n // 2}",
    }
