"""Raw twin on psycopg: the PostgreSQL backend's units, hand-written on a psycopg_pool pool.

Same tables (in the bench schema), same statements as the backend sends, in the fewest round
trips the driver allows (a step transition is the run row, the step row and its attempt row
between BEGIN and COMMIT under one Sync; `save_messages` the thread bump and a multi-row
insert in one statement, without the backend's duplicate checks), UTC sessions, rows left as
tuples whose JSON text columns are parsed (`benchmarks._decode`; psycopg makes the
timestamps aware itself). Channels and deployments have no twin here.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Final

from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from benchmarks._decode import decode_runs, same
from benchmarks._workload import WORKFLOW, Op, State, message_texts

__all__ = ["RawPostgres"]

WIRE: Final = json.dumps({"type": "unknown", "id": None, "parent_run_id": None})
_RUN_COLUMNS: Final = (
    "workflow_run_id::text, workflow, status, input::text, output::text, error::text, inline,"
    " graph_hash, wire::text, created_at, updated_at, deterministic, planned_steps::text"
)

_BEGIN: Final = sql.SQL("BEGIN")
_COMMIT: Final = sql.SQL("COMMIT")


async def _utc(conn: AsyncConnection[Any]) -> None:
    """Sessions in UTC, as the backend's: psycopg then loads timestamptz without a zone lookup."""
    await conn.execute("SET TIME ZONE 'UTC'")


class RawPostgres:
    """The units on psycopg, `size` pooled autocommit connections, in schema `schema`."""

    def __init__(self, url: str, schema: str, state: State, size: int) -> None:
        self._url, self._schema, self._state, self._size = url, schema, state, size
        self._pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None

    def _q(self, text: str) -> sql.Composed:
        names = (
            "workflow_runs",
            "workflow_step_history",
            "workflow_step",
            "ai_threads",
            "ai_messages",
            "ai_tool_calls",
        )
        return sql.SQL(text).format(**{n: sql.Identifier(self._schema, n) for n in names})

    async def open(self) -> None:
        """Open the pool and compose the statements."""
        self._pool = AsyncConnectionPool(
            self._url,
            min_size=self._size,
            max_size=self._size,
            kwargs={"autocommit": True},
            configure=_utc,
            open=False,
        )
        await self._pool.open(wait=True)
        self.create_run_q = self._q(
            "INSERT INTO {workflow_runs} (workflow_run_id, workflow, status, input, inline,"
            " graph_hash, wire, created_at, updated_at, activity_at) VALUES (%(run_id)s,"
            " %(workflow)s, 'running', %(input)s::json, false, NULL, %(wire)s::json, %(now)s,"
            " %(now)s, %(now)s)"
        )
        self.insert_step_q = self._q(
            "WITH step AS (INSERT INTO {workflow_step} (workflow_step_id, workflow_run_id,"
            " step_name, rpc_name, data, status, attempt_count, created_at, updated_at)"
            " VALUES (%(step_id)s, %(run_id)s, %(name)s, 'chargeCard', %(data)s::json, 'pending',"
            " 1, %(now)s, %(now)s) RETURNING workflow_step_id, workflow_run_id)"
            " INSERT INTO {workflow_step_history} (workflow_step_id, attempt, workflow_run_id,"
            " status, created_at, updated_at)"
            " SELECT workflow_step_id, 1, workflow_run_id, 'pending', %(now)s, %(now)s FROM step"
        )
        transition = (
            " SET status = %(status)s, result = %(result)s::json, updated_at = %(now)s,"
            " running_at = CASE WHEN %(status)s = 'running' THEN %(now)s ELSE running_at END,"
            " succeeded_at = CASE WHEN %(status)s = 'succeeded' THEN %(now)s ELSE succeeded_at END"
        )
        # the run row first (the sweepers' markers: 05 §4), as the backend locks it first
        self.lock_run_q = self._q(
            "UPDATE {workflow_runs} SET activity_at = greatest(activity_at, %(now)s),"
            " active_steps = active_steps + (%(status)s = 'running')::int"
            " - (SELECT (status = 'running')::int FROM {workflow_step}"
            " WHERE workflow_step_id = %(step_id)s)"
            " WHERE workflow_run_id ="
            " (SELECT workflow_run_id FROM {workflow_step} WHERE workflow_step_id = %(step_id)s)"
        )
        self.set_step_q = self._q(
            "UPDATE {workflow_step}" + transition + " WHERE workflow_step_id = %(step_id)s"
        )
        self.set_attempt_q = self._q(
            "UPDATE {workflow_step_history}"
            + transition
            + " WHERE workflow_step_id = %(step_id)s AND attempt = ("
            "SELECT attempt_count FROM {workflow_step} WHERE workflow_step_id = %(step_id)s)"
        )
        self.list_runs_q = self._q(
            "SELECT " + _RUN_COLUMNS + " FROM {workflow_runs}"
            " ORDER BY created_at DESC, seq DESC LIMIT 50"
        )
        # the thread bump and the multi-row insert as one statement: one round trip
        self.save_messages_q = self._q(
            "WITH t AS (UPDATE {ai_threads} SET updated_at = %(now)s,"
            " message_seq = message_seq + 2 WHERE id = %(thread_id)s RETURNING message_seq)"
            " INSERT INTO {ai_messages} (thread_id, seq, id, role, content_text, content_parts,"
            " created_at) SELECT %(thread_id)s, t.message_seq - 2 + m.ord, m.id, m.role,"
            " m.content_text, NULL, %(now)s FROM t, unnest(%(ids)s::text[], %(roles)s::text[],"
            " %(texts)s::text[]) WITH ORDINALITY AS m (id, role, content_text, ord)"
        )
        # the window size is a parameter, as the backend sends it: with a literal LIMIT 20 the
        # planner, before the bench's fresh tables are analyzed, reads the whole thread
        # (bitmap scan + top-N sort, ~1 ms at 4,000 messages) where `LIMIT $2` walks the index
        self.last_messages_q = self._q(
            "SELECT m.seq, m.id, m.role, m.content_text, m.content_parts, m.created_at,"
            " m.reasoning_content, m.interrupted, c.id, c.name, c.args, c.result,"
            " c.result_undelivered FROM (SELECT * FROM {ai_messages}"
            " WHERE thread_id = %(thread_id)s ORDER BY created_at DESC, seq DESC"
            " LIMIT %(last_n)s) AS m"
            " LEFT JOIN {ai_tool_calls} AS c ON c.thread_id = m.thread_id"
            " AND c.message_seq = m.seq ORDER BY m.created_at, m.seq, c.position"
        )

    async def close(self) -> None:
        """Close the pool."""
        if self._pool is not None:
            await self._pool.close()

    @property
    def pool(self) -> AsyncConnectionPool[AsyncConnection[Any]]:
        assert self._pool is not None
        return self._pool

    def ops(self) -> dict[str, Op]:
        """The twins of the workload's SQL operations."""
        state = self._state

        async def create_run(i: int) -> None:
            params = {
                "run_id": str(uuid.uuid4()),
                "workflow": WORKFLOW,
                "input": json.dumps({"orderId": i, "total": 42.5}),
                "wire": WIRE,
                "now": datetime.now(UTC),
            }
            async with self.pool.connection() as conn:
                await conn.execute(self.create_run_q, params)

        async def transition(step_id: str, status: str, result: str | None) -> None:
            params = {
                "step_id": step_id,
                "status": status,
                "result": result,
                "now": datetime.now(UTC),
            }
            # BEGIN, the three statements and COMMIT under one Sync: one round trip
            async with self.pool.connection() as conn, conn.pipeline():
                await conn.execute(_BEGIN)
                await conn.execute(self.lock_run_q, params)
                await conn.execute(self.set_step_q, params)
                await conn.execute(self.set_attempt_q, params)
                await conn.execute(_COMMIT)

        async def step(i: int) -> None:
            step_id = str(uuid.uuid4())
            params = {
                "step_id": step_id,
                "run_id": state.run_ids[i % len(state.run_ids)],
                "name": f"raw-step-{i}",
                "data": json.dumps({"amount": i}),
                "now": datetime.now(UTC),
            }
            async with self.pool.connection() as conn:
                await conn.execute(self.insert_step_q, params)
            await transition(step_id, "running", None)
            await transition(step_id, "succeeded", json.dumps({"paymentId": f"pay-{i}"}))

        async def list_runs(i: int) -> object:
            async with self.pool.connection() as conn:
                cur = await conn.execute(self.list_runs_q)
                return decode_runs(await cur.fetchall(), same)

        async def save_messages(i: int) -> None:
            question, answer = message_texts(i)
            now = datetime.now(UTC)
            async with self.pool.connection() as conn:
                await conn.execute(
                    self.save_messages_q,
                    {
                        "thread_id": state.thread_id,
                        "now": now,
                        "ids": [f"ru{i}", f"ra{i}"],
                        "roles": ["user", "assistant"],
                        "texts": [question, answer],
                    },
                )

        async def get_messages(i: int) -> None:
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    self.last_messages_q, {"thread_id": state.thread_id, "last_n": 20}
                )
                await cur.fetchall()

        return {
            "create_run": create_run,
            "step": step,
            "list_runs": list_runs,
            "save_messages": save_messages,
            "get_messages": get_messages,
        }
