"""`PgAIStorageService`, `PgAIRunStateService`, `PgAgentRunService` on PostgreSQL (02 §5.2).

The three services of one namespace share its tables; `open_storage` builds them on one pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import sql
from psycopg.rows import tuple_row

from pikku_storage.clock import Clock
from pikku_storage.codec import JsonObject
from pikku_storage.errors import (
    ConflictError,
    RunNotFound,
    ThreadNotFound,
)
from pikku_storage.interfaces.ai import (
    AgentRunChanges,
    AgentRunService,
    AIRunStateService,
    AIStorageService,
    MessageBatch,
    NewAgentRun,
    NewThread,
    StoredMessage,
)
from pikku_storage.postgres import _ai_params as p
from pikku_storage.postgres import _rows
from pikku_storage.postgres import _sql_ai as q
from pikku_storage.postgres._connection import (
    DEFAULT_SCHEMA,
    Conn,
    PgDatabase,
    PgPool,
    Row,
    execute,
    fetch_all,
    fetch_one,
)
from pikku_storage.postgres._errors import (
    constraint_name,
    is_foreign_key_violation,
    is_unique_violation,
)
from pikku_storage.records import (
    UNSET,
    AgentRun,
    ApprovalStatus,
    PendingApproval,
    ResolvedApproval,
    Thread,
    WorkingMemoryScope,
)

__all__ = ["PgAIRunStateService", "PgAIStorageService", "PgAgentRunService"]


def _composed(db: PgDatabase) -> dict[str, sql.Composed]:
    """Every template of `_sql_ai` composed for the schema, by constant name."""
    return {
        name: db.compose(getattr(q, name), **q.AI_TABLES)
        for name in q.__all__
        if name != "AI_TABLES"
    }


@dataclass(frozen=True, slots=True)
class _Statements:
    by_name: dict[str, sql.Composed]

    def __getitem__(self, name: str) -> sql.Composed:
        return self.by_name[name]


class _PgAIBase:
    """Lifecycle and the reads the three AI services share."""

    _db: PgDatabase
    _sql: _Statements

    def _setup(self, pool: str | PgPool, schema: str) -> None:
        self._db = PgDatabase(pool, schema)
        self._sql = _Statements(_composed(self._db))

    async def _init(self) -> None:
        await self._db.open()

    async def _close(self) -> None:
        await self._db.close()

    async def _get_thread(self, thread_id: str) -> Thread | None:
        async def body(conn: Conn) -> Thread | None:
            row = await fetch_one(conn, self._sql["GET_THREAD"], {"thread_id": thread_id})
            return None if row is None else _rows.thread(row)

        return await self._db.run(body)

    async def _get_messages(
        self, thread_id: str, last_n: int | None, cursor: str | None
    ) -> list[StoredMessage]:
        params: dict[str, object] = {"thread_id": thread_id, "last_n": last_n, "cursor": cursor}
        if cursor is not None:
            query = self._sql["MESSAGES_BEFORE_CURSOR"]
        elif last_n is not None:
            query = self._sql["MESSAGES_LAST"]
        else:
            query = self._sql["MESSAGES_ALL"]

        async def body(conn: Conn) -> list[Row]:
            return await fetch_all(conn, query, params)

        messages: list[StoredMessage] = []
        current_seq: object = None
        for row in await self._db.run(body):
            if not messages or row[0] != current_seq:
                current_seq = row[0]
                messages.append(_rows.stored_message(row))
            call = _rows.stored_tool_call(row)
            if call is not None:
                messages[-1].tool_calls.append(call)
        return messages

    async def _delete_thread(self, thread_id: str) -> bool:
        async def body(conn: Conn) -> int:
            return await execute(conn, self._sql["DELETE_THREAD"], {"thread_id": thread_id})

        return await self._db.run(body) == 1

    async def _get_runs_by_thread(self, thread_id: str) -> list[AgentRun]:
        async def body(conn: Conn) -> list[AgentRun]:
            params = {"thread_id": thread_id}
            rows = await fetch_all(conn, self._sql["GET_RUNS_BY_THREAD"], params)
            return [_rows.agent_run(row) for row in rows]

        return await self._db.run(body)


class PgAIStorageService(_PgAIBase, AIStorageService):
    """Threads, messages with tool calls and results, working memory (02 §2, §5.2)."""

    def __init__(
        self, pool: str | PgPool, *, schema: str = DEFAULT_SCHEMA, clock: Clock | None = None
    ) -> None:
        super().__init__(clock=clock)
        self._setup(pool, schema)

    async def _create_thread(self, thread: NewThread) -> None:
        params = {
            "thread_id": thread.thread_id,
            "resource_id": thread.resource_id,
            "title": thread.title,
            "metadata": thread.metadata,
            "now": thread.now,
        }

        async def body(conn: Conn) -> None:
            await execute(conn, self._sql["CREATE_THREAD"], params)

        try:
            await self._db.run(body)
        except Exception as exc:
            if is_unique_violation(exc):
                raise ConflictError.thread(thread.thread_id) from exc
            raise

    async def _get_threads(self, resource_id: str) -> list[Thread]:
        async def body(conn: Conn) -> list[Thread]:
            params = {"resource_id": resource_id}
            rows = await fetch_all(conn, self._sql["GET_THREADS"], params)
            return [_rows.thread(row) for row in rows]

        return await self._db.run(body)

    async def _save_messages(self, thread_id: str, batch: MessageBatch) -> None:
        if batch.empty:

            async def exists(conn: Conn) -> bool:
                params = {"thread_id": thread_id}
                return await fetch_one(conn, self._sql["THREAD_EXISTS"], params) is not None

            if not await self._db.run(exists):
                raise ThreadNotFound(thread_id)
            return

        async def body(conn: Conn) -> None:
            # Round trip 1: lock the thread (allocating sequence numbers), then check.
            async with conn.pipeline(), conn.transaction():
                lock = conn.cursor(row_factory=tuple_row)
                params = {"thread_id": thread_id, "now": batch.now, "count": count}
                await lock.execute(self._sql["LOCK_THREAD_FOR_SAVE"], params)
                checks = conn.cursor(row_factory=tuple_row)
                await checks.execute(self._sql["SAVE_CHECKS"], p.batch_checks(thread_id, batch))
                locked = await lock.fetchone()
                found = await checks.fetchone()
                if locked is None:
                    raise ThreadNotFound(thread_id)
                assert found is not None
                p.check_batch(thread_id, batch, found)
                # Round trip 2: the writes and the commit.
                first_seq = int(locked[0]) - count + 1
                for name, write in p.batch_writes(thread_id, batch, first_seq):
                    await execute(conn, self._sql[name], write)

        count = len(batch.messages)
        try:
            await self._db.run(body)
        except Exception as exc:
            if is_unique_violation(exc):
                raise p.batch_conflict(thread_id, batch, constraint_name(exc)) from exc
            if is_foreign_key_violation(exc):
                raise ThreadNotFound(thread_id) from exc
            raise

    async def _get_working_memory(self, id: str, scope: WorkingMemoryScope) -> JsonObject | None:
        query = self._sql[
            "GET_THREAD_MEMORY" if scope is WorkingMemoryScope.THREAD else "GET_RESOURCE_MEMORY"
        ]

        async def body(conn: Conn) -> JsonObject | None:
            row = await fetch_one(conn, query, {"id": id})
            return None if row is None else _rows.json_object(row[0])

        return await self._db.run(body)

    async def _save_working_memory(
        self, id: str, scope: WorkingMemoryScope, data: str, now: datetime
    ) -> None:
        thread_scope = scope is WorkingMemoryScope.THREAD
        query = self._sql["SAVE_THREAD_MEMORY" if thread_scope else "SAVE_RESOURCE_MEMORY"]

        async def body(conn: Conn) -> None:
            await execute(conn, query, {"id": id, "data": data, "now": now})

        try:
            await self._db.run(body)
        except Exception as exc:
            if thread_scope and is_foreign_key_violation(exc):
                raise ThreadNotFound(id) from exc
            raise

    async def _delete_working_memory(self, id: str, scope: WorkingMemoryScope) -> bool:
        query = self._sql[
            "DELETE_THREAD_MEMORY"
            if scope is WorkingMemoryScope.THREAD
            else "DELETE_RESOURCE_MEMORY"
        ]

        async def body(conn: Conn) -> int:
            return await execute(conn, query, {"id": id})

        return await self._db.run(body) == 1


class PgAIRunStateService(_PgAIBase, AIRunStateService):
    """Agent runs, usage, suspension and pending approvals (02 §3, §5.2)."""

    def __init__(
        self, pool: str | PgPool, *, schema: str = DEFAULT_SCHEMA, clock: Clock | None = None
    ) -> None:
        super().__init__(clock=clock)
        self._setup(pool, schema)

    async def _create_run(self, run: NewAgentRun) -> None:
        params = p.new_run(run)

        async def body(conn: Conn) -> None:
            await execute(conn, self._sql["CREATE_RUN"], params)

        try:
            await self._db.run(body)
        except Exception as exc:
            if is_foreign_key_violation(exc):
                raise ThreadNotFound(run.thread_id) from exc
            raise

    async def _update_run(self, run_id: str, changes: AgentRunChanges, now: datetime) -> None:
        params = p.run_changes(run_id, changes, now)
        pending = changes.pending_approvals

        async def body(conn: Conn) -> int:
            async with conn.pipeline(), conn.transaction():
                update = conn.cursor(row_factory=tuple_row)
                await update.execute(self._sql["UPDATE_RUN"], params)
                if pending is not UNSET:
                    keep = [a.tool_call_id for a in pending]
                    await execute(
                        conn, self._sql["DELETE_PENDING_EXCEPT"], {"run_id": run_id, "keep": keep}
                    )
                    if pending:
                        await execute(
                            conn,
                            self._sql["UPSERT_PENDING"],
                            {
                                "run_id": run_id,
                                "tool_call_ids": keep,
                                "kinds": [a.kind for a in pending],
                                "payloads": [a.payload for a in pending],
                            },
                        )
            return update.rowcount

        try:
            updated = await self._db.run(body)
        except Exception as exc:
            if is_foreign_key_violation(exc):
                raise RunNotFound(run_id) from exc
            raise
        if updated == 0:
            raise RunNotFound(run_id)

    async def _get_run(self, run_id: str) -> AgentRun | None:
        async def body(conn: Conn) -> AgentRun | None:
            row = await fetch_one(conn, self._sql["GET_RUN"], {"run_id": run_id})
            return None if row is None else _rows.agent_run(row)

        return await self._db.run(body)

    async def _resolve_approval(
        self, tool_call_id: str, status: ApprovalStatus, run_id: str | None, now: datetime
    ) -> bool:
        query = self._sql["RESOLVE_APPROVAL" if run_id is None else "RESOLVE_APPROVAL_OF_RUN"]
        params = {
            "tool_call_id": tool_call_id,
            "run_id": run_id,
            "status": status.value,
            "now": now,
        }

        async def body(conn: Conn) -> int:
            return await execute(conn, query, params)

        return await self._db.run(body) > 0

    async def _find_run_by_tool_call_id(
        self, tool_call_id: str
    ) -> tuple[AgentRun, PendingApproval] | None:
        async def body(conn: Conn) -> tuple[AgentRun, PendingApproval] | None:
            params = {"tool_call_id": tool_call_id}
            row = await fetch_one(conn, self._sql["FIND_RUN_BY_TOOL_CALL"], params)
            if row is None:
                return None
            approval = _rows.approvals([row[15]], [row[16]])[0]
            return _rows.agent_run(row), approval

        return await self._db.run(body)

    async def _get_approval_decisions(self, run_id: str) -> list[ResolvedApproval]:
        async def body(conn: Conn) -> list[ResolvedApproval]:
            rows = await fetch_all(conn, self._sql["GET_DECISIONS"], {"run_id": run_id})
            return [_rows.decision(row) for row in rows]

        return await self._db.run(body)


class PgAgentRunService(_PgAIBase, AgentRunService):
    """Console listing, deletion and retention of threads (02 §4, §5.2)."""

    def __init__(
        self, pool: str | PgPool, *, schema: str = DEFAULT_SCHEMA, clock: Clock | None = None
    ) -> None:
        super().__init__(clock=clock)
        self._setup(pool, schema)

    async def _list_threads(
        self, agent_name: str | None, resource_id: str | None, limit: int, offset: int
    ) -> list[Thread]:
        if agent_name is None:
            name = "LIST_THREADS" if resource_id is None else "LIST_THREADS_BY_RESOURCE"
        else:
            name = (
                "LIST_THREADS_BY_AGENT" if resource_id is None else "LIST_THREADS_BY_AGENT_RESOURCE"
            )
        params = {
            "agent_name": agent_name,
            "resource_id": resource_id,
            "limit": limit,
            "offset": offset,
        }

        async def body(conn: Conn) -> list[Thread]:
            return [_rows.thread(row) for row in await fetch_all(conn, self._sql[name], params)]

        return await self._db.run(body)

    async def _get_distinct_agent_names(self) -> list[str]:
        async def body(conn: Conn) -> list[str]:
            rows = await fetch_all(conn, self._sql["DISTINCT_AGENT_NAMES"])
            return sorted(row[0] for row in rows)

        return await self._db.run(body)

    async def _prune_threads(self, cutoff: datetime, batch_size: int) -> int:
        params = {"cutoff": cutoff, "batch_size": batch_size}

        async def body(conn: Conn) -> tuple[int, int]:
            row = await fetch_one(conn, self._sql["PRUNE_THREADS"], params)
            assert row is not None
            return int(row[0]), int(row[1])

        deleted = 0
        while True:
            picked, gone = await self._db.run(body)
            deleted += gone
            if picked < batch_size:
                return deleted
