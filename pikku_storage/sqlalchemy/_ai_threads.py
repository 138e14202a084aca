"""Reads and the deletion cascade the three SQLAlchemy AI services share: threads, message
windows with their tool calls, runs with their pending approvals (see docs/services/ai-storage.md,
docs/services/agent-runs.md, docs/operations.md#storage-layout)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.engine import Connection

from pikku_storage.interfaces.ai import StoredMessage
from pikku_storage.records import AgentRun, PendingApproval, Thread
from pikku_storage.sqlalchemy import _rows
from pikku_storage.sqlalchemy._connection import SqlAlchemyService, chunks

__all__ = ["AIServiceBase"]


class AIServiceBase(SqlAlchemyService):
    """Reads and the deletion cascade the three AI services share."""

    def _thread_exists(self, conn: Connection, thread_id: str) -> bool:
        """Whether the thread exists, holding it against deletion until commit."""
        threads = self._db.tables.ai_threads
        query = self._db.ops.for_share(select(threads.c.seq).where(threads.c.id == thread_id))
        return (conn.execute(query)).first() is not None

    async def _get_thread(self, thread_id: str) -> Thread | None:
        threads = self._db.tables.ai_threads

        def body(conn: Connection) -> Thread | None:
            row = (conn.execute(select(threads).where(threads.c.id == thread_id))).first()
            return None if row is None else _rows.thread(row)

        return await self._db.read(body)

    async def _get_messages(
        self, thread_id: str, last_n: int | None, cursor: str | None
    ) -> list[StoredMessage]:
        t = self._db.tables
        m = t.ai_messages

        def body(conn: Connection) -> list[StoredMessage]:
            if cursor is None and last_n is not None:
                newest = self._db.statements.newest_messages
                params = {"p_thread_id": thread_id, "p_limit": last_n}
                rows = list(self._db.execute(conn, newest, params).all()[::-1])
                return self._with_calls(conn, thread_id, rows, everything=False)
            query = select(m).where(m.c.thread_id == thread_id)
            if cursor is not None:
                anchor = (
                    conn.execute(
                        select(m.c.created_at, m.c.seq).where(
                            m.c.thread_id == thread_id, m.c.id == cursor
                        )
                    )
                ).first()
                if anchor is None:
                    return []
                query = query.where(
                    self._db.ops.before(m.c.created_at, m.c.seq, anchor.created_at, anchor.seq)
                )
            if last_n is None:
                rows = list(conn.execute(query.order_by(m.c.created_at, m.c.seq)))
            else:
                newest = query.order_by(m.c.created_at.desc(), m.c.seq.desc()).limit(last_n)
                rows = list(reversed(list(conn.execute(newest))))
            return self._with_calls(
                conn, thread_id, rows, everything=last_n is None and cursor is None
            )

        return await self._db.read(body)

    def _with_calls(
        self, conn: Connection, thread_id: str, rows: list[_rows.AnyRow], *, everything: bool
    ) -> list[StoredMessage]:
        """The messages of `rows` with their tool calls (`everything`: the whole thread's)."""
        calls = self._db.tables.ai_tool_calls
        if not rows:
            return []
        call_rows: list[_rows.AnyRow] = []
        ordered = (calls.c.message_seq, calls.c.position)
        if everything:
            call_rows.extend(
                conn.execute(select(calls).where(calls.c.thread_id == thread_id).order_by(*ordered))
            )
        else:
            seqs = [row.seq for row in rows]
            low, high = min(seqs), max(seqs)
            if high - low < 4 * len(seqs):
                # A window's sequence numbers are (nearly) contiguous: one prebuilt range scan
                # of the (thread, message_seq) index, filtered here.
                wanted = set(seqs)
                params = {"p_thread_id": thread_id, "p_low": low, "p_high": high}
                call_rows.extend(
                    call
                    for call in self._db.execute(
                        conn, self._db.statements.calls_in_range, params
                    ).all()
                    if call.message_seq in wanted
                )
                seqs = []
            for part in chunks(seqs):
                call_rows.extend(
                    conn.execute(
                        select(calls)
                        .where(calls.c.thread_id == thread_id, calls.c.message_seq.in_(part))
                        .order_by(*ordered)
                    )
                )
        if not call_rows:  # no message of the window has tool calls
            return [_rows.stored_message(row) for row in rows]
        by_message: defaultdict[int, list[_rows.AnyRow]] = defaultdict(list)
        for call in call_rows:
            by_message[call.message_seq].append(call)
        stored = []
        for row in rows:
            message = _rows.stored_message(row)
            message.tool_calls = [_rows.stored_tool_call(c) for c in by_message[row.seq]]
            stored.append(message)
        return stored

    def _pending_of(
        self, conn: Connection, run_ids: Sequence[str]
    ) -> dict[str, list[PendingApproval]]:
        pending = self._db.tables.ai_pending_approvals
        found: dict[str, list[PendingApproval]] = {run_id: [] for run_id in run_ids}
        for part in chunks(run_ids):
            query = (
                select(pending)
                .where(pending.c.run_id.in_(part))
                .order_by(pending.c.run_id, pending.c.position)
            )
            for row in conn.execute(query).all():
                found[row.run_id].append(_rows.approval(row))
        return found

    async def _get_runs_by_thread(self, thread_id: str) -> list[AgentRun]:
        runs = self._db.tables.ai_runs
        query = (
            select(runs)
            .where(runs.c.thread_id == thread_id)
            .order_by(runs.c.created_at.desc(), runs.c.seq.desc())
        )

        def body(conn: Connection) -> list[AgentRun]:
            rows = conn.execute(query).all()
            pending = self._pending_of(conn, [row.run_id for row in rows])
            return [_rows.agent_run(row, pending[row.run_id]) for row in rows]

        return await self._db.read(body)

    def _delete_children(self, conn: Connection, thread_ids: Sequence[str]) -> None:
        """Delete the threads' runs (locked first), scores, approvals, decisions, messages,
        calls and thread memory; the threads themselves are the caller's."""
        t, ops = self._db.tables, self._db.ops
        runs = t.ai_runs
        run_ids = ops.lock_keys(conn, runs.c.thread_id, thread_ids, runs.c.run_id)
        ops.delete_keys(conn, t.ai_run_scores.c.run_id, run_ids)
        ops.delete_keys(conn, t.ai_approval_decisions.c.run_id, run_ids)
        ops.delete_keys(conn, t.ai_pending_approvals.c.run_id, run_ids)
        ops.delete_keys(conn, runs.c.thread_id, thread_ids)
        for table in (t.ai_tool_calls, t.ai_messages, t.ai_thread_memory):
            ops.delete_keys(conn, table.c.thread_id, thread_ids)

    async def _delete_thread(self, thread_id: str) -> bool:
        threads = self._db.tables.ai_threads
        lock = self._db.ops.for_update(select(threads.c.seq).where(threads.c.id == thread_id))

        def body(conn: Connection) -> bool:
            if (conn.execute(lock)).first() is None:
                return False
            self._delete_children(conn, [thread_id])
            conn.execute(threads.delete().where(threads.c.id == thread_id))
            return True

        return await self._db.write(body)
