"""The stored layout: types, collations, and no rows left behind (01 §5.2, §6 55; 02 §5.2;
03 §6.1)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from pikku_storage import ManualClock, Storage
from pikku_storage.errors import InvalidValue
from pikku_storage.records import (
    Channel,
    Message,
    MessageRole,
    ToolCall,
    ToolCallApproval,
    WorkingMemoryScope,
)

pytestmark = pytest.mark.pikku_backend("postgres")

Conn = psycopg.AsyncConnection[TupleRow]

_WORKFLOW_JSON = {
    ("workflow_runs", "input"),
    ("workflow_runs", "output"),
    ("workflow_runs", "error"),
    ("workflow_runs", "wire"),
    ("workflow_step", "data"),
    ("workflow_step", "result"),
    ("workflow_step", "error"),
    ("workflow_step", "retry_delay"),
    ("workflow_step_history", "result"),
    ("workflow_step_history", "error"),
    ("workflow_run_state", "value"),
    ("workflow_versions", "graph"),
    ("workflow_runs", "planned_steps"),
}


def _schema(storage: Storage) -> str:
    return str(storage.workflows._db.schema)  # type: ignore[attr-defined]  # white-box


async def _columns(admin: Conn, schema: str) -> list[TupleRow]:
    cur = await admin.execute(
        "SELECT table_name, column_name, data_type, collation_name"
        " FROM information_schema.columns WHERE table_schema = %(schema)s",
        {"schema": schema},
    )
    return await cur.fetchall()


async def test_json_is_json_or_text_never_jsonb_and_text_compares_bytewise(
    storage: Storage, admin: Conn
) -> None:
    """D14 and 02 §0 12: workflow payloads `json`, other JSON `text`, never `jsonb`; every
    text column of an identifier is `COLLATE "C"` (code-point order, bytewise equality)."""
    columns = await _columns(admin, _schema(storage))
    types = {(table, column): data_type for table, column, data_type, _ in columns}
    assert "jsonb" not in types.values()
    assert {key for key, data_type in types.items() if data_type == "json"} == _WORKFLOW_JSON
    for table, column in (
        ("ai_threads", "metadata"),
        ("ai_messages", "content_parts"),
        ("ai_tool_calls", "args"),
        ("ai_pending_approvals", "payload"),
        ("channels", "opening_data"),
        ("channels", "user_session"),
    ):
        assert types[(table, column)] == "text"
    plain = {"title", "content_text", "result", "error_message", "missing_rpcs", "usage_model"}
    plain |= {"metadata", "content_parts", "args", "payload", "data", "kind", "status", "role"}
    plain |= {"opening_data", "user_session", "endpoint", "source", "suspend_reason", "checksum"}
    plain |= {"reasoning_content", "reason"}
    for table, column, data_type, collation in columns:
        if data_type == "text" and column not in plain:
            assert collation == "C", f"{table}.{column}"


async def _count_of(admin: Conn, schema: str, table: str, where: str, value: object) -> int:
    query = sql.SQL("SELECT count(*) FROM {} WHERE {} = %(v)s").format(
        sql.Identifier(schema, table), sql.Identifier(where)
    )
    cur = await admin.execute(query, {"v": value})
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_delete_run_and_prune_runs_leave_no_row_of_the_run(
    storage: Storage, admin: Conn, pikku_clock: ManualClock
) -> None:
    """01 §6 55: no step, history or state row of a deleted or pruned run remains."""
    wf, runs, schema = storage.workflows, storage.workflow_runs, _schema(storage)
    run_ids = []
    for index in range(3):
        run_id = await wf.create_run("wf", index)
        step = await wf.insert_step_state(run_id, "s", None, None)
        await wf.set_step_error(step.step_id, ValueError("x"))
        await wf.create_retry_attempt(step.step_id, "pending")
        await wf.update_run_state(run_id, "k", index)
        await wf.update_run_status(run_id, "failed")
        run_ids.append(run_id)
    pikku_clock.advance(1)
    assert await runs.delete_run(run_ids[0])
    assert await runs.prune_runs(finished_before=pikku_clock.now(), batch_size=1) == 2
    for run_id in run_ids:
        for table in ("workflow_runs", "workflow_step", "workflow_step_history"):
            assert await _count_of(admin, schema, table, "workflow_run_id", run_id) == 0
        assert await _count_of(admin, schema, "workflow_run_state", "workflow_run_id", run_id) == 0


async def test_delete_thread_leaves_no_row_of_the_thread_in_any_ai_table(
    storage: Storage, admin: Conn
) -> None:
    """02 §2 delete_thread: messages, calls, runs, approvals, decisions, thread memory go."""
    ai, schema = storage.ai_storage, _schema(storage)
    thread = await ai.create_thread("res", thread_id="t")
    await ai.save_messages(
        "t",
        [Message(id="m", role=MessageRole.ASSISTANT, tool_calls=[ToolCall(id="c", name="n")])],
    )
    await ai.save_working_memory("t", WorkingMemoryScope.THREAD, {"a": 1})
    await ai.save_working_memory("res", WorkingMemoryScope.RESOURCE, {"a": 1})
    run_id = await storage.ai_run_state.create_run(
        agent_name="a",
        thread_id="t",
        resource_id="res",
        pending_approvals=[
            ToolCallApproval(tool_call_id="c", tool_name="n", args=None),
            ToolCallApproval(tool_call_id="d", tool_name="n", args=None),
        ],
    )
    assert await storage.ai_run_state.resolve_approval("d", "approved")
    assert await storage.agent_runs.delete_thread(thread.id)
    for table in ("ai_threads", "ai_thread_memory"):
        column = "id" if table == "ai_threads" else "thread_id"
        assert await _count_of(admin, schema, table, column, "t") == 0
    for table in ("ai_messages", "ai_tool_calls", "ai_runs"):
        assert await _count_of(admin, schema, table, "thread_id", "t") == 0
    for table in ("ai_pending_approvals", "ai_approval_decisions"):
        assert await _count_of(admin, schema, table, "run_id", run_id) == 0
    assert await _count_of(admin, schema, "ai_resource_memory", "resource_id", "res") == 1


async def test_removed_and_pruned_channels_leave_no_subscription_rows(
    storage: Storage, admin: Conn, pikku_clock: ManualClock
) -> None:
    """03 §2: removals and prunes delete the subscriptions in the same atomic step."""
    schema = _schema(storage)
    for channel_id in ("a", "b"):
        await storage.channels.add_channel(Channel(channel_id=channel_id, channel_name="n"))
        assert await storage.eventhub.subscribe("topic", channel_id)
    await storage.channels.remove_channels(["a"])
    pikku_clock.advance(1)
    assert await storage.channels.prune_channels(last_seen_before=pikku_clock.now()) == ["b"]
    assert await _count_of(admin, schema, "channel_subscriptions", "topic", "topic") == 0


async def test_retries_beyond_the_int_column_raise_invalid_value_and_store_nothing(
    storage: Storage,
) -> None:
    """D11 sets no upper bound; PostgreSQL's `int` column does (2**31 - 1): a contract error,
    not a driver error, and no step is created."""
    wf = storage.workflows
    run_id = await wf.create_run("wf", None)
    await wf.insert_step_state(run_id, "max", None, None, retries=2**31 - 1)
    with pytest.raises(InvalidValue):
        await wf.insert_step_state(run_id, "over", None, None, retries=2**31)
    assert [step.step_name for step in await storage.workflow_runs.get_run_steps(run_id)] == ["max"]
