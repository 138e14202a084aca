"""The benchmark workload written directly on psycopg, for the our/raw ratios on PostgreSQL.

It runs the PostgreSQL backend's own statement templates (`postgres/_sql_*.py`) grouped and
pipelined as the backend groups them (a transition is two statements in one pipelined
transaction, `save_messages` two round trips), so SQL and round trips are the backend's, on
one plain autocommit connection, with ids, JSON text and timestamps made inline and rows left
as tuples. What the ratio measures is therefore the library's own
cost: validation, the codec, the pool checkout, error translation and record building.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from pikku_storage._cli._bench_ops import FUNCTIONS, TOPICS, WORKFLOW, BenchState
from pikku_storage._cli._namespaces import NamespaceSpec
from pikku_storage.postgres import _sql_ai as qa
from pikku_storage.postgres import _sql_channels as qc
from pikku_storage.postgres import _sql_workflows as qw

__all__ = ["RawPg"]

_WIRE: Final = json.dumps({"type": "unknown", "id": None, "parent_run_id": None})
_TTL: Final = timedelta(seconds=30)


def _step_params(step_id: str, status: str, stamp: str, result: str | None) -> dict[str, object]:
    return {
        "step_id": step_id,
        "status": status,
        "set_outcome": result is not None,
        "result": result,
        "error": None,
        "stamp_running": stamp == "running",
        "stamp_scheduled": False,
        "stamp_succeeded": stamp == "succeeded",
        "stamp_failed": False,
        "now": datetime.now(UTC),
        "active": status == "running",
        "pending": False,
    }


class RawPg:
    """The seven operations on psycopg, in the bench namespace (its schema)."""

    def __init__(self, spec: NamespaceSpec, state: BenchState) -> None:
        self._url = spec.url
        self._schema = str(spec.options["schema"])
        self._state = state
        self._run_ids: list[str] = []
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    def _q(self, template: sql.SQL, tables: dict[str, str]) -> sql.Composed:
        return template.format(
            **{key: sql.Identifier(self._schema, name) for key, name in tables.items()}
        )

    async def open(self) -> None:
        self._conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
        w, a, c = qw.WORKFLOW_TABLES, qa.AI_TABLES, qc.CHANNEL_TABLES
        self._create_run = self._q(qw.CREATE_RUN, w)
        self._insert_step = self._q(qw.INSERT_STEP, w)
        self._set_step = self._q(qw.SET_STEP, w)
        self._lock_run_of_step = self._q(qw.LOCK_RUN_OF_STEP, w)
        self._list_runs = self._q(qw.LIST_RUNS, w)
        self._lock_thread = self._q(qa.LOCK_THREAD_FOR_SAVE, a)
        self._save_checks = self._q(qa.SAVE_CHECKS, a)
        self._insert_messages = self._q(qa.INSERT_MESSAGES, a)
        self._messages_last = self._q(qa.MESSAGES_LAST, a)
        self._subscribe = self._q(qc.SUBSCRIBE, c)
        self._topic_channels = self._q(qc.TOPIC_CHANNELS, c)
        self._heartbeat = self._q(qc.HEARTBEAT, c)
        self._find = self._q(qc.FIND_FUNCTION, c)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    @property
    def conn(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        assert self._conn is not None
        return self._conn

    async def create_run(self, i: int) -> None:
        run_id = str(uuid.uuid4())
        now = datetime.now(UTC)
        params = {
            "run_id": run_id,
            "workflow": WORKFLOW,
            "input": json.dumps({"orderId": i, "total": 42.5}),
            "inline": False,
            "graph_hash": None,
            "wire": _WIRE,
            "now": now,
            "deterministic": False,
            "planned_steps": "[]",
        }
        await self.conn.execute(self._create_run, params)
        self._run_ids.append(run_id)

    async def step(self, i: int) -> None:
        step_id = str(uuid.uuid4())
        await self.conn.execute(
            self._insert_step,
            {
                "step_id": step_id,
                "run_id": self._run_ids[i % len(self._run_ids)],
                "step_name": f"step-{i}",
                "rpc_name": "chargeCard",
                "data": json.dumps({"amount": i}),
                "retries": None,
                "retry_delay": None,
                "now": datetime.now(UTC),
                "from_step_name": None,
            },
        )
        await self._transition(_step_params(step_id, "running", "running", None))
        result = json.dumps({"paymentId": f"pay-{i}"})
        await self._transition(_step_params(step_id, "succeeded", "succeeded", result))

    async def _transition(self, params: dict[str, object]) -> None:
        """The run row lock, then the step with its attempt and the run's markers: one pipelined
        transaction, as the backend."""
        conn = self.conn
        async with conn.pipeline(), conn.transaction():
            await conn.execute(self._lock_run_of_step, params)
            await conn.execute(self._set_step, params)

    async def list_runs(self, i: int) -> None:
        cur = await self.conn.execute(self._list_runs, {"limit": 50, "offset": 0})
        await cur.fetchall()

    async def save_messages(self, i: int) -> None:
        thread_id, now = self._state.thread_id, datetime.now(UTC)
        ids = [f"ru{i}", f"ra{i}"]
        conn = self.conn
        async with conn.pipeline(), conn.transaction():
            lock = conn.cursor(row_factory=tuple_row)
            await lock.execute(self._lock_thread, {"thread_id": thread_id, "now": now, "count": 2})
            checks = conn.cursor(row_factory=tuple_row)
            await checks.execute(
                self._save_checks,
                {"thread_id": thread_id, "message_ids": ids, "call_ids": [], "result_ids": []},
            )
            locked = await lock.fetchone()
            found = await checks.fetchone()
            if locked is None or found is None or found[0]:
                raise RuntimeError("bench thread missing or message ids reused")
            first = int(str(locked[0])) - 1
            await conn.execute(
                self._insert_messages,
                {
                    "thread_id": thread_id,
                    "seqs": [first, first + 1],
                    "ids": ids,
                    "roles": ["user", "assistant"],
                    "texts": [
                        f"question {i}: where is my order?",
                        f"answer {i}: it ships tomorrow.",
                    ],
                    "parts": [None, None],
                    "created_at": [now, now],
                    "reasoning": [None, None],
                    "interrupted": [False, False],
                },
            )

    async def get_messages(self, i: int) -> None:
        cur = await self.conn.execute(
            self._messages_last, {"thread_id": self._state.thread_id, "last_n": 20}
        )
        await cur.fetchall()

    async def subscribe(self, i: int) -> None:
        topic = f"raw-topic-{i % TOPICS}"
        params = {"topic": topic, "channel_id": self._state.channel_ids[i]}
        cur = await self.conn.execute(self._subscribe, params)
        await cur.fetchone()
        cur = await self.conn.execute(self._topic_channels, {"topic": topic})
        await cur.fetchall()

    async def heartbeat(self, i: int) -> None:
        now = datetime.now(UTC)
        params = {"deployment_id": self._state.deployment_id, "now": now}
        await self.conn.execute(self._heartbeat, params)
        cur = await self.conn.execute(
            self._find, {"name": FUNCTIONS[i % len(FUNCTIONS)], "cutoff": now - _TTL}
        )
        await cur.fetchall()
