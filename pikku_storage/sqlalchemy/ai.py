"""`SqlAlchemyAIStorageService`, `SqlAlchemyAIRunStateService`, `SqlAlchemyAgentRunService`.

Each hook is one transaction. `save_messages` bumps the thread row first (existence check, row
lock that serialises savers, sequence allocation), then checks duplicates and results under
that lock. Deletions lock the thread and its runs, then delete every child explicitly, so a
borrowed SQLite engine with foreign keys off leaves no orphans (see docs/services/ai-storage.md,
docs/services/agent-runs.md, docs/operations.md#storage-layout).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.engine import Connection

from pikku_storage._build import agent_run_score
from pikku_storage._owners import owner_bounds
from pikku_storage._serial import encode_missing_rpcs
from pikku_storage.codec import JsonObject, decode
from pikku_storage.errors import ConflictError, RunNotFound, ThreadNotFound
from pikku_storage.interfaces.ai import (
    AgentRunChanges,
    AgentRunService,
    AIRunStateService,
    AIStorageService,
    MessageBatch,
    NewAgentRun,
    NewScore,
    NewThread,
)
from pikku_storage.records import (
    AgentRun,
    AgentRunScore,
    ApprovalStatus,
    PendingApproval,
    ResolvedApproval,
    Thread,
    UnsetType,
    WorkingMemoryScope,
)
from pikku_storage.sqlalchemy import _rows
from pikku_storage.sqlalchemy._ai_threads import AIServiceBase
from pikku_storage.sqlalchemy._connection import chunks
from pikku_storage.sqlalchemy._errors import is_unique_violation

__all__ = ["SqlAlchemyAIRunStateService", "SqlAlchemyAIStorageService", "SqlAlchemyAgentRunService"]

ROWS_PER_UPSERT: Final = 100  # five bind parameters a row


class SqlAlchemyAIStorageService(AIServiceBase, AIStorageService):
    """Threads, messages, tool calls and working memory through SQLAlchemy
    (docs/services/ai-storage.md, docs/operations.md#storage-layout)."""

    async def _create_thread(self, thread: NewThread) -> None:
        threads = self._db.tables.ai_threads
        stmt = threads.insert().values(
            id=thread.thread_id,
            resource_id=thread.resource_id,
            title=thread.title,
            metadata=thread.metadata,
            message_seq=0,
            created_at=thread.now,
            updated_at=thread.now,
        )

        def body(conn: Connection) -> None:
            try:
                conn.execute(stmt)
            except Exception as error:
                if is_unique_violation(error):
                    raise ConflictError.thread(thread.thread_id) from error
                raise

        await self._db.write(body)

    async def _get_threads(self, resource_id: str) -> list[Thread]:
        threads = self._db.tables.ai_threads
        query = (
            select(threads)
            .where(threads.c.resource_id == resource_id)
            .order_by(threads.c.updated_at.desc(), threads.c.seq.desc())
        )

        def body(conn: Connection) -> list[Thread]:
            return [_rows.thread(row) for row in conn.execute(query).all()]

        return await self._db.read(body)

    async def _save_messages(self, thread_id: str, batch: MessageBatch) -> None:
        t = self._db.tables
        messages, calls = t.ai_messages, t.ai_tool_calls
        count = len(batch.messages)
        s = self._db.statements
        bump_params = {"p_thread_id": thread_id, "p_count": count, "p_now": batch.now}

        def stored_ids(conn: Connection, column: Any, ids: list[str]) -> set[str]:
            found: set[str] = set()
            if not ids:
                return found
            for part in chunks(ids):
                query, params = s.ids_in_thread(column, part)
                params["p_thread_id"] = thread_id
                found.update(self._db.execute(conn, query, params).scalars().all())
            return found

        def stored_before(conn: Connection, first_seq: int) -> set[str]:
            """The batch's message ids the thread held before this call."""
            found: set[str] = set()
            for part in chunks([m.message_id for m in batch.messages]):
                query = select(messages.c.id).where(
                    messages.c.thread_id == thread_id,
                    messages.c.id.in_(part),
                    messages.c.seq < first_seq,
                )
                found.update(conn.execute(query).scalars())
            return found

        def body(conn: Connection) -> None:
            if batch.empty:
                if not self._thread_exists(conn, thread_id):
                    raise ThreadNotFound(thread_id)
                return
            # Existence check, the lock that serialises savers, and the sequence allocation.
            if s.update_returning:
                last = self._db.execute(
                    conn, s.bump_thread_returning, bump_params
                ).scalar_one_or_none()
                if last is None:
                    raise ThreadNotFound(thread_id)
            else:
                if self._db.execute(conn, s.bump_thread, bump_params).rowcount == 0:
                    raise ThreadNotFound(thread_id)
                last = self._db.execute(conn, s.thread_message_seq, bump_params).scalar_one()
            first_seq = last - count + 1
            if batch.batch_conflict is not None:
                raise batch.batch_conflict  # before any query, as check_stored would
            plain = not batch.tool_calls and not batch.external_result_ids
            if plain and self._db.ops.statement_rollback:
                # No check follows the message ids': the unique key (thread, id) is the check,
                # and only a violation reads which ids were stored before.
                try:
                    self._insert_batch(conn, thread_id, batch, first_seq)
                except Exception as error:
                    if is_unique_violation(error):
                        batch.check_stored(thread_id, stored_before(conn, first_seq), (), ())
                    raise
                return
            batch.check_stored(
                thread_id,
                stored_ids(conn, messages.c.id, [m.message_id for m in batch.messages]),
                stored_ids(conn, calls.c.id, [call.tool_call_id for call in batch.tool_calls]),
                stored_ids(conn, calls.c.id, list(batch.external_result_ids)),
            )
            self._insert_batch(conn, thread_id, batch, first_seq)

        await self._db.write(body)

    def _insert_batch(
        self, conn: Connection, thread_id: str, batch: MessageBatch, first_seq: int
    ) -> None:
        t = self._db.tables
        calls = t.ai_tool_calls
        message_rows: list[dict[str, Any]] = []
        call_rows: list[dict[str, Any]] = []
        for offset, new in enumerate(batch.messages):
            seq = first_seq + offset
            message_rows.append(
                {
                    "thread_id": thread_id,
                    "seq": seq,
                    "id": new.message_id,
                    "role": new.role.value,
                    "content_text": new.content_text,
                    "content_parts": new.content_parts,
                    "created_at": new.created_at,
                    "reasoning_content": new.reasoning_content,
                    "interrupted": new.interrupted,
                }
            )
            call_rows.extend(
                {
                    "thread_id": thread_id,
                    "id": call.tool_call_id,
                    "message_seq": seq,
                    "position": position,
                    "name": call.name,
                    "args": call.args,
                    "result": None,
                    "result_undelivered": False,
                }
                for position, call in enumerate(new.tool_calls)
            )
        if message_rows:
            self._db.execute(conn, self._db.statements.insert_messages, message_rows)
        if call_rows:
            conn.execute(calls.insert(), call_rows)
        if batch.results:
            set_result = (
                calls.update()
                .where(calls.c.thread_id == bindparam("b_thread"), calls.c.id == bindparam("b_id"))
                .values(result=bindparam("b_result"), result_undelivered=bindparam("b_undelivered"))
            )
            undelivered = batch.undelivered_results
            conn.execute(
                set_result,
                [
                    {
                        "b_thread": thread_id,
                        "b_id": call_id,
                        "b_result": text,
                        "b_undelivered": call_id in undelivered,
                    }
                    for call_id, text in batch.results.items()
                ],
            )

    async def _get_working_memory(self, id: str, scope: WorkingMemoryScope) -> JsonObject | None:
        table, key = self._memory_table(scope)
        query = select(table.c.data).where(key == id)

        def body(conn: Connection) -> JsonObject | None:
            text = (conn.execute(query)).scalar_one_or_none()
            if text is None:
                return None
            data = decode(text)
            assert isinstance(data, dict)
            return data

        return await self._db.read(body)

    def _memory_table(self, scope: WorkingMemoryScope) -> tuple[Any, Any]:
        t = self._db.tables
        if scope is WorkingMemoryScope.THREAD:
            return t.ai_thread_memory, t.ai_thread_memory.c.thread_id
        return t.ai_resource_memory, t.ai_resource_memory.c.resource_id

    async def _save_working_memory(
        self, id: str, scope: WorkingMemoryScope, data: str, now: datetime
    ) -> None:
        table, key = self._memory_table(scope)
        upsert = self._db.ops.upsert(
            table,
            {key.name: id, "data": data, "updated_at": now},
            (key.name,),
            ("data", "updated_at"),
        )

        def body(conn: Connection) -> None:
            if scope is WorkingMemoryScope.THREAD and not self._thread_exists(conn, id):
                raise ThreadNotFound(id)
            conn.execute(upsert)

        await self._db.write(body)

    async def _delete_working_memory(self, id: str, scope: WorkingMemoryScope) -> bool:
        table, key = self._memory_table(scope)
        stmt = table.delete().where(key == id)

        def body(conn: Connection) -> bool:
            return bool((conn.execute(stmt)).rowcount > 0)

        return await self._db.write(body)


class SqlAlchemyAIRunStateService(AIServiceBase, AIRunStateService):
    """Agent runs and pending approvals through SQLAlchemy (docs/services/ai-run-state.md,
    docs/operations.md#storage-layout)."""

    async def _create_run(self, run: NewAgentRun) -> None:
        t = self._db.tables
        insert_run = t.ai_runs.insert().values(
            run_id=run.run_id,
            thread_id=run.thread_id,
            agent_name=run.agent_name,
            resource_id=run.resource_id,
            status=run.status.value,
            error_message=run.error_message,
            suspend_reason=None if run.suspend_reason is None else run.suspend_reason.value,
            missing_rpcs=encode_missing_rpcs(run.missing_rpcs),
            usage_input_tokens=run.usage.input_tokens,
            usage_output_tokens=run.usage.output_tokens,
            usage_model=run.usage.model,
            created_at=run.now,
            updated_at=run.now,
        )
        pending_rows = [
            {
                "run_id": run.run_id,
                "tool_call_id": approval.tool_call_id,
                "position": position,
                "kind": approval.kind,
                "payload": approval.payload,
            }
            for position, approval in enumerate(run.pending_approvals)
        ]

        def body(conn: Connection) -> None:
            if not self._thread_exists(conn, run.thread_id):
                raise ThreadNotFound(run.thread_id)
            conn.execute(insert_run)
            if pending_rows:
                conn.execute(t.ai_pending_approvals.insert(), pending_rows)

        await self._db.write(body)

    async def _update_run(self, run_id: str, changes: AgentRunChanges, now: datetime) -> None:
        t = self._db.tables
        runs, pending = t.ai_runs, t.ai_pending_approvals
        values: dict[str, Any] = {"updated_at": now}
        if not isinstance(changes.status, UnsetType):
            values["status"] = changes.status.value
        if not isinstance(changes.error_message, UnsetType):
            values["error_message"] = changes.error_message
        if not isinstance(changes.suspend_reason, UnsetType):
            reason = changes.suspend_reason
            values["suspend_reason"] = None if reason is None else reason.value
        if not isinstance(changes.missing_rpcs, UnsetType):
            values["missing_rpcs"] = encode_missing_rpcs(changes.missing_rpcs)
        if not isinstance(changes.usage, UnsetType):
            values["usage_input_tokens"] = changes.usage.input_tokens
            values["usage_output_tokens"] = changes.usage.output_tokens
            values["usage_model"] = changes.usage.model
        stmt = runs.update().where(runs.c.run_id == run_id).values(**values)
        approvals = changes.pending_approvals

        def body(conn: Connection) -> None:
            if (conn.execute(stmt)).rowcount == 0:
                raise RunNotFound(run_id)
            if isinstance(approvals, UnsetType):
                return
            # Replace by difference under the run's row lock: a kept row is never deleted, so
            # a racing resolve_approval cannot miss it (docs/operations.md#storage-layout).
            current = select(pending.c.tool_call_id).where(pending.c.run_id == run_id)
            existing = set((conn.execute(self._db.ops.for_update(current))).scalars())
            stale = sorted(existing - {approval.tool_call_id for approval in approvals})
            for part in chunks(stale):
                conn.execute(
                    pending.delete().where(
                        pending.c.run_id == run_id, pending.c.tool_call_id.in_(part)
                    )
                )
            rows = [
                {
                    "run_id": run_id,
                    "tool_call_id": approval.tool_call_id,
                    "position": position,
                    "kind": approval.kind,
                    "payload": approval.payload,
                }
                for position, approval in enumerate(approvals)
            ]
            for part in chunks(rows, ROWS_PER_UPSERT):
                conn.execute(
                    self._db.ops.upsert(
                        pending,
                        part,
                        ("run_id", "tool_call_id"),
                        ("position", "kind", "payload"),
                    )
                )

        await self._db.write(body)

    async def _get_run(self, run_id: str) -> AgentRun | None:
        runs = self._db.tables.ai_runs

        def body(conn: Connection) -> AgentRun | None:
            row = (conn.execute(select(runs).where(runs.c.run_id == run_id))).first()
            if row is None:
                return None
            return _rows.agent_run(row, (self._pending_of(conn, [run_id]))[run_id])

        return await self._db.read(body)

    async def _resolve_approval(
        self, tool_call_id: str, status: ApprovalStatus, run_id: str | None, now: datetime
    ) -> bool:
        t = self._db.tables
        pending, decisions = t.ai_pending_approvals, t.ai_approval_decisions
        claim = select(pending).where(pending.c.tool_call_id == tool_call_id)
        if run_id is not None:
            claim = claim.where(pending.c.run_id == run_id)
        claim = self._db.ops.for_update(claim.order_by(pending.c.run_id))

        def body(conn: Connection) -> bool:
            rows = list(conn.execute(claim))
            if not rows:
                return False
            run_ids = [row.run_id for row in rows]
            for part in chunks(run_ids):
                conn.execute(
                    pending.delete().where(
                        pending.c.tool_call_id == tool_call_id, pending.c.run_id.in_(part)
                    )
                )
            conn.execute(
                decisions.insert(),
                [
                    {
                        "run_id": row.run_id,
                        "tool_call_id": tool_call_id,
                        "kind": row.kind,
                        "payload": row.payload,
                        "status": status.value,
                        "resolved_at": now,
                    }
                    for row in rows
                ],
            )
            return True

        return await self._db.write(body)

    async def _find_run_by_tool_call_id(
        self, tool_call_id: str
    ) -> tuple[AgentRun, PendingApproval] | None:
        t = self._db.tables
        runs, pending = t.ai_runs, t.ai_pending_approvals
        query = (
            select(runs)
            .join(pending, pending.c.run_id == runs.c.run_id)
            .where(pending.c.tool_call_id == tool_call_id)
            .order_by(runs.c.created_at.desc(), runs.c.seq.desc())
            .limit(1)
        )

        def body(conn: Connection) -> tuple[AgentRun, PendingApproval] | None:
            row = (conn.execute(query)).first()
            if row is None:
                return None
            approvals = (self._pending_of(conn, [row.run_id]))[row.run_id]
            match = next(a for a in approvals if a.tool_call_id == tool_call_id)
            return _rows.agent_run(row, approvals), match

        return await self._db.read(body)

    async def _get_approval_decisions(self, run_id: str) -> list[ResolvedApproval]:
        decisions = self._db.tables.ai_approval_decisions
        query = select(decisions).where(decisions.c.run_id == run_id).order_by(decisions.c.seq)

        def body(conn: Connection) -> list[ResolvedApproval]:
            return [_rows.decision(row) for row in conn.execute(query).all()]

        return await self._db.read(body)

    async def _save_score(self, score: NewScore) -> None:
        t = self._db.tables
        runs = t.ai_runs
        exists = self._db.ops.for_share(select(runs.c.seq).where(runs.c.run_id == score.run_id))
        insert = t.ai_run_scores.insert().values(
            run_id=score.run_id,
            scorer_name=score.scorer_name,
            score=score.score,
            reason=score.reason,
            metadata=score.metadata,
            created_at=score.now,
        )

        def body(conn: Connection) -> None:
            # The run row, share-locked: a racing delete_thread commits first (RunNotFound
            # here) or waits for this insert and deletes it with the run.
            if conn.execute(exists).first() is None:
                raise RunNotFound(score.run_id)
            conn.execute(insert)

        await self._db.write(body)

    async def _get_scores(self, run_id: str) -> list[AgentRunScore]:
        scores = self._db.tables.ai_run_scores
        query = (
            select(scores)
            .where(scores.c.run_id == run_id)
            .order_by(scores.c.created_at, scores.c.seq)
        )

        def body(conn: Connection) -> list[AgentRunScore]:
            return [
                agent_run_score(
                    row.run_id, row.scorer_name, row.score, row.reason, row.metadata, row.created_at
                )
                for row in conn.execute(query).all()
            ]

        return await self._db.read(body)


class SqlAlchemyAgentRunService(AIServiceBase, AgentRunService):
    """Console queries, deletion and retention of AI threads through SQLAlchemy
    (docs/services/agent-runs.md)."""

    async def _list_threads(
        self,
        agent_name: str | None,
        resource_id: str | None,
        owners: list[str] | None,
        limit: int,
        offset: int,
    ) -> list[Thread]:
        threads, runs = self._db.tables.ai_threads, self._db.tables.ai_runs
        query = select(threads)
        if resource_id is not None:
            query = query.where(threads.c.resource_id == resource_id)
        if owners is not None:
            # An exact key plus the half-open range [o + ":", o + ";") per owner on the
            # `resource_id` index, binary collation: exactly the owner's prefix set, no LIKE
            # (docs/operations.md#storage-layout).
            matches = []
            for owner in owners:
                low, high = owner_bounds(owner)
                matches.append(threads.c.resource_id == owner)
                matches.append(and_(threads.c.resource_id >= low, threads.c.resource_id < high))
            query = query.where(or_(*matches))
        if agent_name is not None:
            # A scalar probe rather than EXISTS, which MariaDB turns into a semi-join that
            # sorts the agent's threads: every dialect walks the thread index in order and
            # probes (agent_name, thread_id) per thread (docs/operations.md#storage-layout).
            probe = (
                select(runs.c.seq)
                .where(runs.c.agent_name == agent_name, runs.c.thread_id == threads.c.id)
                .limit(1)
                .scalar_subquery()
            )
            query = query.where(probe.is_not(None))
        query = (
            query.order_by(threads.c.updated_at.desc(), threads.c.seq.desc())
            .limit(limit)
            .offset(offset)
        )

        def body(conn: Connection) -> list[Thread]:
            return [_rows.thread(row) for row in conn.execute(query).all()]

        return await self._db.read(body)

    async def _get_distinct_agent_names(self) -> list[str]:
        column = self._db.tables.ai_runs.c.agent_name

        def body(conn: Connection) -> list[str]:
            return sorted(self._db.ops.distinct_ascending(conn, column))

        return await self._db.read(body)

    async def _prune_threads(self, cutoff: datetime, batch_size: int) -> int:
        threads = self._db.tables.ai_threads
        stale = threads.c.updated_at < cutoff
        pick = self._db.ops.for_update(
            select(threads.c.id)
            .where(stale)
            .order_by(threads.c.updated_at, threads.c.seq)
            .limit(batch_size),
            skip_locked=True,
        )

        def body(conn: Connection) -> tuple[int, int]:
            locked = conn.execute(pick).scalars().all()
            ids: list[str] = []
            for part in chunks(locked):  # re-checked on the locked rows' latest version
                confirm = select(threads.c.id).where(threads.c.id.in_(part), stale)
                ids.extend((conn.execute(confirm)).scalars())
            deleted = 0
            if ids:
                self._delete_children(conn, ids)
                deleted = self._db.ops.delete_keys(conn, threads.c.id, ids, stale)
            return len(locked), deleted

        total = 0
        while True:
            selected, deleted = await self._db.write(body)
            total += deleted
            if selected < batch_size:
                return total
