"""`PgAIStorageService`, `PgAIRunStateService`, `PgAgentRunService` on PostgreSQL
(docs/operations.md#storage-layout).

The three services of one namespace share its tables; `open_storage` builds them on one pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import tuple_row

from pikku_storage._owners import resource_in_owners
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
    NewScore,
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
    one_trip,
)
from pikku_storage.postgres._errors import (
    constraint_name,
    is_foreign_key_violation,
    is_unique_violation,
)
from pikku_storage.postgres._statements import Statement, compose_statements
from pikku_storage.records import (
    UNSET,
    AgentRun,
    AgentRunScore,
    ApprovalStatus,
    PendingApproval,
    ResolvedApproval,
    Thread,
    WorkingMemoryScope,
)

__all__ = ["PgAIRunStateService", "PgAIStorageService", "PgAgentRunService"]


@dataclass(frozen=True, slots=True)
class _Statements:
    """The templates of `_sql_ai`, composed once for one schema."""

    create_run: Statement
    create_thread: Statement
    delete_pending_except: Statement
    delete_resource_memory: Statement
    delete_thread: Statement
    delete_thread_memory: Statement
    distinct_agent_names: Statement
    find_run_by_tool_call: Statement
    generic_plan: Statement
    get_decisions: Statement
    get_resource_memory: Statement
    get_run: Statement
    get_runs_by_thread: Statement
    get_scores: Statement
    get_thread: Statement
    get_threads: Statement
    get_thread_memory: Statement
    list_threads: Statement
    list_threads_by_agent: Statement
    list_threads_by_agent_owners: Statement
    list_threads_by_agent_resource: Statement
    list_threads_by_owners: Statement
    list_threads_by_resource: Statement
    lock_thread_for_save: Statement
    messages_all: Statement
    messages_before_cursor: Statement
    messages_last: Statement
    prune_threads: Statement
    resolve_approval: Statement
    resolve_approval_of_run: Statement
    save_batch: Statement
    save_resource_memory: Statement
    save_score: Statement
    save_thread_memory: Statement
    thread_exists: Statement
    update_run: Statement
    upsert_pending: Statement


class _PgAIBase:
    """Lifecycle and the reads the three AI services share."""

    _db: PgDatabase
    _sql: _Statements

    def _setup(self, pool: str | PgPool, schema: str) -> None:
        self._db = PgDatabase(pool, schema)
        self._sql = compose_statements(_Statements, self._db, q, q.AI_TABLES)

    async def _init(self) -> None:
        await self._db.open()

    async def _close(self) -> None:
        await self._db.close()

    async def _get_thread(self, thread_id: str) -> Thread | None:
        async def body(conn: Conn) -> Thread | None:
            row = await fetch_one(conn, self._sql.get_thread, {"thread_id": thread_id})
            return None if row is None else _rows.thread(row)

        return await self._db.run(body)

    async def _get_messages(
        self, thread_id: str, last_n: int | None, cursor: str | None
    ) -> list[StoredMessage]:
        params: dict[str, object] = {"thread_id": thread_id, "last_n": last_n, "cursor": cursor}
        if cursor is not None:
            query = self._sql.messages_before_cursor
        elif last_n is not None:
            query = self._sql.messages_last
        else:
            query = self._sql.messages_all

        async def body(conn: Conn) -> list[StoredMessage]:
            return _rows.stored_messages(await fetch_all(conn, query, params))

        return await self._db.run(body)

    async def _delete_thread(self, thread_id: str) -> bool:
        async def body(conn: Conn) -> int:
            return await execute(conn, self._sql.delete_thread, {"thread_id": thread_id})

        return await self._db.run(body) == 1

    async def _get_runs_by_thread(self, thread_id: str) -> list[AgentRun]:
        async def body(conn: Conn) -> list[AgentRun]:
            params = {"thread_id": thread_id}
            rows = await fetch_all(conn, self._sql.get_runs_by_thread, params)
            return [_rows.agent_run(row) for row in rows]

        return await self._db.run(body)


class PgAIStorageService(_PgAIBase, AIStorageService):
    """Threads, messages with tool calls and results, working memory (docs/services/ai-storage.md,
    docs/operations.md#storage-layout)."""

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
            await execute(conn, self._sql.create_thread, params)

        try:
            await self._db.run(body)
        except Exception as exc:
            if is_unique_violation(exc):
                raise ConflictError.thread(thread.thread_id) from exc
            raise

    async def _get_threads(self, resource_id: str) -> list[Thread]:
        async def body(conn: Conn) -> list[Thread]:
            params = {"resource_id": resource_id}
            rows = await fetch_all(conn, self._sql.get_threads, params)
            return [_rows.thread(row) for row in rows]

        return await self._db.run(body)

    async def _save_messages(self, thread_id: str, batch: MessageBatch) -> None:
        if batch.empty:

            async def exists(conn: Conn) -> bool:
                params = {"thread_id": thread_id}
                return await fetch_one(conn, self._sql.thread_exists, params) is not None

            if not await self._db.run(exists):
                raise ThreadNotFound(thread_id)
            return

        async def body(conn: Conn) -> Row | None:
            # One round trip: lock the thread, then (a new snapshot, after the lock) check the
            # batch and write it only if every check passes, in one statement.
            async with one_trip(conn):
                lock = conn.cursor(row_factory=tuple_row)
                await lock.execute(self._sql.lock_thread_for_save, {"thread_id": thread_id})
                await conn.execute(self._sql.generic_plan)
                save = conn.cursor(row_factory=tuple_row)
                await save.execute(self._sql.save_batch, p.batch_save(thread_id, batch))
            return None if await lock.fetchone() is None else await save.fetchone()

        try:
            found = await self._db.run(body)
        except Exception as exc:
            if is_unique_violation(exc):
                raise p.batch_conflict(thread_id, batch, constraint_name(exc)) from exc
            if is_foreign_key_violation(exc):
                raise ThreadNotFound(thread_id) from exc
            raise
        if found is None:
            raise ThreadNotFound(thread_id)
        p.check_batch(thread_id, batch, found)  # raises what stopped the write, in batch order
        assert found[3], "save_batch skipped a batch that passes every check"

    async def _get_working_memory(self, id: str, scope: WorkingMemoryScope) -> JsonObject | None:
        thread_scope = scope is WorkingMemoryScope.THREAD
        query = self._sql.get_thread_memory if thread_scope else self._sql.get_resource_memory

        async def body(conn: Conn) -> JsonObject | None:
            row = await fetch_one(conn, query, {"id": id})
            return None if row is None else _rows.json_object(row[0])

        return await self._db.run(body)

    async def _save_working_memory(
        self, id: str, scope: WorkingMemoryScope, data: str, now: datetime
    ) -> None:
        thread_scope = scope is WorkingMemoryScope.THREAD
        query = self._sql.save_thread_memory if thread_scope else self._sql.save_resource_memory

        async def body(conn: Conn) -> None:
            await execute(conn, query, {"id": id, "data": data, "now": now})

        try:
            await self._db.run(body)
        except Exception as exc:
            if thread_scope and is_foreign_key_violation(exc):
                raise ThreadNotFound(id) from exc
            raise

    async def _delete_working_memory(self, id: str, scope: WorkingMemoryScope) -> bool:
        thread_scope = scope is WorkingMemoryScope.THREAD
        query = self._sql.delete_thread_memory if thread_scope else self._sql.delete_resource_memory

        async def body(conn: Conn) -> int:
            return await execute(conn, query, {"id": id})

        return await self._db.run(body) == 1


class PgAIRunStateService(_PgAIBase, AIRunStateService):
    """Agent runs, usage, suspension and pending approvals (docs/services/ai-run-state.md,
    docs/operations.md#storage-layout)."""

    def __init__(
        self, pool: str | PgPool, *, schema: str = DEFAULT_SCHEMA, clock: Clock | None = None
    ) -> None:
        super().__init__(clock=clock)
        self._setup(pool, schema)

    async def _create_run(self, run: NewAgentRun) -> None:
        params = p.new_run(run)

        async def body(conn: Conn) -> None:
            await execute(conn, self._sql.create_run, params)

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
            async with one_trip(conn):
                update = conn.cursor(row_factory=tuple_row)
                await update.execute(self._sql.update_run, params)
                if pending is not UNSET:
                    keep = [a.tool_call_id for a in pending]
                    await execute(
                        conn, self._sql.delete_pending_except, {"run_id": run_id, "keep": keep}
                    )
                    if pending:
                        await execute(
                            conn,
                            self._sql.upsert_pending,
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
            row = await fetch_one(conn, self._sql.get_run, {"run_id": run_id})
            return None if row is None else _rows.agent_run(row)

        return await self._db.run(body)

    async def _resolve_approval(
        self, tool_call_id: str, status: ApprovalStatus, run_id: str | None, now: datetime
    ) -> bool:
        s = self._sql
        query = s.resolve_approval if run_id is None else s.resolve_approval_of_run
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
            row = await fetch_one(conn, self._sql.find_run_by_tool_call, params)
            return None if row is None else _rows.agent_run_with_approval(row)

        return await self._db.run(body)

    async def _get_approval_decisions(self, run_id: str) -> list[ResolvedApproval]:
        async def body(conn: Conn) -> list[ResolvedApproval]:
            rows = await fetch_all(conn, self._sql.get_decisions, {"run_id": run_id})
            return [_rows.decision(row) for row in rows]

        return await self._db.run(body)

    async def _save_score(self, score: NewScore) -> None:
        params = p.new_score(score)

        async def body(conn: Conn) -> int:
            return await execute(conn, self._sql.save_score, params)

        try:
            inserted = await self._db.run(body)
        except Exception as exc:
            if is_foreign_key_violation(exc):  # the run was deleted between read and insert
                raise RunNotFound(score.run_id) from exc
            raise
        if inserted == 0:
            raise RunNotFound(score.run_id)

    async def _get_scores(self, run_id: str) -> list[AgentRunScore]:
        async def body(conn: Conn) -> list[AgentRunScore]:
            rows = await fetch_all(conn, self._sql.get_scores, {"run_id": run_id})
            return [_rows.score(row) for row in rows]

        return await self._db.run(body)


class PgAgentRunService(_PgAIBase, AgentRunService):
    """Console listing, deletion and retention of threads (docs/services/agent-runs.md,
    docs/operations.md#storage-layout)."""

    def __init__(
        self, pool: str | PgPool, *, schema: str = DEFAULT_SCHEMA, clock: Clock | None = None
    ) -> None:
        super().__init__(clock=clock)
        self._setup(pool, schema)

    async def _list_threads(
        self,
        agent_name: str | None,
        resource_id: str | None,
        owners: list[str] | None,
        limit: int,
        offset: int,
    ) -> list[Thread]:
        s = self._sql
        params: dict[str, object] = {
            "agent_name": agent_name,
            "resource_id": resource_id,
            "limit": limit,
            "offset": offset,
        }
        if owners is not None and resource_id is not None:
            # one resource: the owners only decide whether it may be listed at all
            if not resource_in_owners(resource_id, owners):
                return []
            owners = None
        if owners is not None:
            params.update(p.owner_ranges(owners))
            by_agent = agent_name is not None
            query = s.list_threads_by_agent_owners if by_agent else s.list_threads_by_owners
        elif agent_name is None:
            query = s.list_threads if resource_id is None else s.list_threads_by_resource
        elif resource_id is None:
            query = s.list_threads_by_agent
        else:
            query = s.list_threads_by_agent_resource

        async def body(conn: Conn) -> list[Thread]:
            return [_rows.thread(row) for row in await fetch_all(conn, query, params)]

        return await self._db.run(body)

    async def _get_distinct_agent_names(self) -> list[str]:
        async def body(conn: Conn) -> list[str]:
            rows = await fetch_all(conn, self._sql.distinct_agent_names)
            return sorted(row[0] for row in rows)

        return await self._db.run(body)

    async def _prune_threads(self, cutoff: datetime, batch_size: int) -> int:
        params = {"cutoff": cutoff, "batch_size": batch_size}

        async def body(conn: Conn) -> tuple[int, int]:
            row = await fetch_one(conn, self._sql.prune_threads, params)
            assert row is not None
            return int(row[0]), int(row[1])

        deleted = 0
        while True:
            picked, gone = await self._db.run(body)
            deleted += gone
            if picked < batch_size:
                return deleted
