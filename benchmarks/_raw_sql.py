"""Raw twins on the SQL tables the SQLite preset and the MySQL backend create.

The statements are what the backend sends for each unit (same tables, columns and indexes),
written here by hand in the fewest round trips: SQLite on the stdlib `sqlite3` module in one
worker thread (same file, same PRAGMAs as the preset, one hop per transaction), MySQL on
aiomysql. Channels and deployments have no twin here (their ratio is left blank).

The twins do the contract's work too, as the backend must: every step write keeps the spec 05
markers (the run's `active_steps`/`activity_at`, the step's `dispatch_since`, the run row
locked first on MySQL), and reads return values, not text: JSON payloads parsed and timestamps
as aware datetimes, which psycopg's `fetchall` does by itself in the PostgreSQL twin.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from benchmarks._decode import decode_messages, decode_runs, epoch
from benchmarks._workload import WORKFLOW, Op, State, message_texts

__all__ = ["RawMysql", "RawSqlite", "Statements"]

T = TypeVar("T")
WIRE: Final = json.dumps({"type": "unknown", "id": None, "parent_run_id": None})


def _ms() -> int:
    return int(time.time() * 1000)


def _dt() -> datetime:
    """Now as MySQL's DATETIME columns take it: naive UTC, millisecond precision."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Statements:
    """The unit statements for tables named `<prefix>…`, in the driver's paramstyle."""

    def __init__(self, prefix: str, mark: str) -> None:
        runs, step, hist = (
            f"{prefix}workflow_runs",
            f"{prefix}workflow_step",
            f"{prefix}workflow_step_history",
        )
        threads, msgs = f"{prefix}ai_threads", f"{prefix}ai_messages"
        m = mark
        self.create_run = (
            f"INSERT INTO {runs} (workflow_run_id, workflow, status, input, inline, graph_hash,"
            f" wire, created_at, updated_at, activity_at)"
            f" VALUES ({m}, {m}, 'running', {m}, 0, NULL, {m}, {m}, {m}, {m})"
        )
        greatest = "MAX" if mark == "?" else "GREATEST"
        quote = '"' if mark == "?" else "`"  # `deterministic` is a MySQL keyword
        # The spec 05 markers every step write keeps, as the backend keeps them: the run row
        # first (its `activity_at` raised, `active_steps` moved by the step's old versus new
        # activity), the step's `dispatch_since` from the run's status.
        self.touch_run = (
            f"UPDATE {runs} SET activity_at = {greatest}(activity_at, {m})"
            f" WHERE workflow_run_id = {m}"
        )
        was_active = (
            f"(SELECT CASE WHEN status IN ('running', 'scheduled', 'suspended') THEN 1 ELSE 0"
            f" END FROM {step} WHERE workflow_step_id = {m})"
        )
        # SQLite (the write transaction holds the database): one statement finds the step's
        # run, moves its markers and returns its status.
        self.bump_run_of_step = (
            f"UPDATE {runs} SET active_steps = active_steps + {m} - {was_active},"
            f" activity_at = MAX(activity_at, {m}) WHERE workflow_run_id ="
            f" (SELECT workflow_run_id FROM {step} WHERE workflow_step_id = {m})"
            f" RETURNING status"
        )
        # MySQL (row locks): the run row, then the step row, locked and read; then the bump.
        self.lock_run = f"SELECT status FROM {runs} WHERE workflow_run_id = {m} FOR UPDATE"
        self.lock_step = f"SELECT status FROM {step} WHERE workflow_step_id = {m} FOR UPDATE"
        self.bump_run = (
            f"UPDATE {runs} SET active_steps = active_steps + {m},"
            f" activity_at = GREATEST(activity_at, {m}) WHERE workflow_run_id = {m}"
        )
        self.insert_step = (
            f"INSERT INTO {step} (workflow_step_id, workflow_run_id, step_name, rpc_name, data,"
            f" status, attempt_count, created_at, updated_at, dispatch_since)"
            f" VALUES ({m}, {m}, {m}, 'chargeCard', {m}, 'pending', 1, {m}, {m}, {m})"
        )
        self.insert_attempt = (
            f"INSERT INTO {hist} (workflow_step_id, attempt, workflow_run_id, status, created_at,"
            f" updated_at) VALUES ({m}, 1, {m}, 'pending', {m}, {m})"
        )
        self.step_running = (
            f"UPDATE {step} SET status = 'running', running_at = {m}, updated_at = {m},"
            f" dispatch_since = NULL WHERE workflow_step_id = {m}"
        )
        self.attempt_running = (
            f"UPDATE {hist} SET status = 'running', running_at = {m}, updated_at = {m}"
            f" WHERE workflow_step_id = {m} AND attempt = 1"
        )
        self.step_result = (
            f"UPDATE {step} SET status = 'succeeded', result = {m}, succeeded_at = {m},"
            f" updated_at = {m}, dispatch_since = NULL WHERE workflow_step_id = {m}"
        )
        self.attempt_result = (
            f"UPDATE {hist} SET status = 'succeeded', result = {m}, succeeded_at = {m},"
            f" updated_at = {m} WHERE workflow_step_id = {m} AND attempt = 1"
        )
        self.list_runs = (
            f"SELECT workflow_run_id, workflow, status, input, output, error, inline, graph_hash,"
            f" wire, created_at, updated_at, {quote}deterministic{quote}, planned_steps FROM {runs}"
            f" ORDER BY created_at DESC, seq DESC LIMIT 50"
        )
        self.bump_thread = (
            f"UPDATE {threads} SET message_seq = message_seq + 2, updated_at = {m} WHERE id = {m}"
        )
        self.thread_seq = f"SELECT message_seq FROM {threads} WHERE id = {m}"
        self.insert_message = (
            f"INSERT INTO {msgs} (thread_id, seq, id, role, content_text, content_parts,"
            f" created_at) VALUES ({m}, {m}, {m}, {m}, {m}, NULL, {m})"
        )
        calls = f"{prefix}ai_tool_calls"
        self.last_messages = (
            f"SELECT m.seq, m.id, m.role, m.content_text, m.content_parts, m.created_at, c.id,"
            f" c.name, c.args, c.result FROM (SELECT * FROM {msgs} WHERE thread_id = {m}"
            f" ORDER BY created_at DESC, seq DESC LIMIT 20) AS m LEFT JOIN {calls} AS c"
            f" ON c.thread_id = m.thread_id AND c.message_seq = m.seq"
            f" ORDER BY m.created_at, m.seq, c.position"
        )


def _aware(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC)


def _step_args(run_id: str, i: int, now: object) -> tuple[str, list[Any], list[Any]]:
    """The new step's and attempt's values (`dispatch_since` last, filled by the caller)."""
    step_id = str(uuid.uuid4())
    step = [step_id, run_id, f"raw-step-{i}", json.dumps({"amount": i}), now, now, None]
    attempt = [step_id, run_id, now, now]
    return step_id, step, attempt


class RawSqlite:
    """The SQL units on stdlib `sqlite3`, one worker thread, one hop per transaction."""

    def __init__(self, path: str, state: State, synchronous: str = "NORMAL") -> None:
        self._path, self._state, self._sync = path, state, synchronous
        self._q = Statements("pikku_", "?")
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="raw-sqlite")
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._sync}")
        self._conn = conn

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            assert self._conn is not None
            return fn(self._conn)

        return await asyncio.get_running_loop().run_in_executor(self._pool, run)

    def _tx(self, conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            out = work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return out

    async def open(self) -> None:
        """Connect in the worker thread."""
        await asyncio.get_running_loop().run_in_executor(self._pool, self._connect)

    async def close(self) -> None:
        """Close the connection and stop the thread."""
        if self._conn is not None:
            await self._call(lambda conn: conn.close())
        self._pool.shutdown()

    def ops(self) -> dict[str, Op]:
        """The twins of the workload's SQL operations."""
        q, state = self._q, self._state

        async def create_run(i: int) -> None:
            now = _ms()
            args = [
                str(uuid.uuid4()),
                WORKFLOW,
                json.dumps({"orderId": i, "total": 42.5}),
                WIRE,
                now,
                now,
                now,
            ]
            await self._call(lambda c: self._tx(c, lambda c: c.execute(q.create_run, args)))

        async def step(i: int) -> None:
            run_id = state.run_ids[i % len(state.run_ids)]
            now0 = _ms()
            step_id, step_row, attempt = _step_args(run_id, i, now0)

            def insert(c: sqlite3.Connection) -> None:
                (status,) = c.execute(q.touch_run + " RETURNING status", [now0, run_id]).fetchone()
                step_row[-1] = now0 if status == "running" else None
                c.execute(q.insert_step, step_row)
                c.execute(q.insert_attempt, attempt)

            def running(c: sqlite3.Connection) -> None:
                now = _ms()
                c.execute(q.bump_run_of_step, [1, step_id, now, step_id]).fetchone()
                c.execute(q.step_running, [now, now, step_id])
                c.execute(q.attempt_running, [now, now, step_id])

            def result(c: sqlite3.Connection) -> None:
                now, out = _ms(), json.dumps({"paymentId": f"pay-{i}"})
                c.execute(q.bump_run_of_step, [0, step_id, now, step_id]).fetchone()
                c.execute(q.step_result, [out, now, now, step_id])
                c.execute(q.attempt_result, [out, now, now, step_id])

            for unit in (insert, running, result):
                await self._call(lambda c, unit=unit: self._tx(c, unit))  # type: ignore[misc]

        async def list_runs(i: int) -> None:
            await self._call(lambda c: decode_runs(c.execute(q.list_runs).fetchall(), epoch))

        async def save_messages(i: int) -> None:
            question, answer = message_texts(i)

            def save(c: sqlite3.Connection) -> None:
                now = _ms()
                c.execute(q.bump_thread, [now, state.thread_id])
                (last,) = c.execute(q.thread_seq, [state.thread_id]).fetchone()
                c.executemany(
                    q.insert_message,
                    [
                        [state.thread_id, last - 1, f"ru{i}", "user", question, now],
                        [state.thread_id, last, f"ra{i}", "assistant", answer, now],
                    ],
                )

            await self._call(lambda c: self._tx(c, save))

        async def get_messages(i: int) -> None:
            await self._call(
                lambda c: decode_messages(c.execute(q.last_messages, [state.thread_id]).fetchall())
            )

        return {
            "create_run": create_run,
            "step": step,
            "list_runs": list_runs,
            "save_messages": save_messages,
            "get_messages": get_messages,
        }


class RawMysql:
    """The SQL units on an aiomysql pool of `size` connections, one transaction per unit."""

    def __init__(self, url: str, prefix: str, state: State, size: int) -> None:
        self._url, self._state, self._size = url, state, size
        self._q = Statements(prefix, "%s")
        self._pool: Any = None

    async def open(self) -> None:
        """Create the pool."""
        from urllib.parse import urlsplit

        import aiomysql  # type: ignore[import-untyped]

        u = urlsplit(self._url)
        self._pool = await aiomysql.create_pool(
            host=u.hostname or "127.0.0.1",
            port=u.port or 3306,
            user=u.username or "root",
            password=u.password or "",
            db=u.path.lstrip("/"),
            minsize=1,
            maxsize=self._size,
            autocommit=False,
        )

    async def close(self) -> None:
        """Close the pool."""
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed()

    async def _tx(self, work: Callable[[Any], Any]) -> Any:
        async with self._pool.acquire() as conn:
            async with conn.cursor() as cur:
                out = await work(cur)
            await conn.commit()
            return out

    async def _read(self, sql: str, args: list[Any]) -> Any:
        async with self._pool.acquire() as conn:
            async with conn.cursor() as cur:
                await cur.execute(sql, args)
                rows = await cur.fetchall()
            await conn.commit()
            return rows

    def ops(self) -> dict[str, Op]:
        """The twins of the workload's SQL operations."""
        q, state = self._q, self._state

        async def create_run(i: int) -> None:
            now = _dt()
            args = [
                str(uuid.uuid4()),
                WORKFLOW,
                json.dumps({"orderId": i, "total": 42.5}),
                WIRE,
                now,
                now,
                now,
            ]
            await self._tx(lambda cur: cur.execute(q.create_run, args))

        async def step(i: int) -> None:
            run_id = state.run_ids[i % len(state.run_ids)]
            now0 = _dt()
            step_id, step_row, attempt = _step_args(run_id, i, now0)

            async def insert(cur: Any) -> None:
                await cur.execute(q.lock_run, [run_id])
                (status,) = await cur.fetchone()
                await cur.execute(q.touch_run, [now0, run_id])
                step_row[-1] = now0 if status == "running" else None
                await cur.execute(q.insert_step, step_row)
                await cur.execute(q.insert_attempt, attempt)

            async def transition(cur: Any, now: datetime, active: int) -> None:
                await cur.execute(q.lock_run, [run_id])
                await cur.fetchone()
                await cur.execute(q.lock_step, [step_id])
                (old,) = await cur.fetchone()
                was = 1 if old in ("running", "scheduled", "suspended") else 0
                await cur.execute(q.bump_run, [active - was, now, run_id])

            async def running(cur: Any) -> None:
                now = _dt()
                await transition(cur, now, 1)
                await cur.execute(q.step_running, [now, now, step_id])
                await cur.execute(q.attempt_running, [now, now, step_id])

            async def result(cur: Any) -> None:
                now, out = _dt(), json.dumps({"paymentId": f"pay-{i}"})
                await transition(cur, now, 0)
                await cur.execute(q.step_result, [out, now, now, step_id])
                await cur.execute(q.attempt_result, [out, now, now, step_id])

            for unit in (insert, running, result):
                await self._tx(unit)

        async def list_runs(i: int) -> None:
            decode_runs(await self._read(q.list_runs, []), _aware)

        async def save_messages(i: int) -> None:
            question, answer = message_texts(i)

            async def save(cur: Any) -> None:
                now = _ms()  # the AI tables keep epoch milliseconds (BIGINT)
                await cur.execute(q.bump_thread, [now, state.thread_id])
                await cur.execute(q.thread_seq, [state.thread_id])
                (last,) = await cur.fetchone()
                await cur.executemany(
                    q.insert_message,
                    [
                        [state.thread_id, last - 1, f"ru{i}", "user", question, now],
                        [state.thread_id, last, f"ra{i}", "assistant", answer, now],
                    ],
                )

            await self._tx(save)

        async def get_messages(i: int) -> None:
            decode_messages(await self._read(q.last_messages, [state.thread_id]))

        return {
            "create_run": create_run,
            "step": step,
            "list_runs": list_runs,
            "save_messages": save_messages,
            "get_messages": get_messages,
        }
