"""Every list, window and keyed query is index-backed (01 §6 56, 02 §6 64, 03 §7 PostgreSQL).

Each area's tables are seeded with at least 10,000 rows and analyzed; then every statement the
services send is planned with `EXPLAIN (FORMAT JSON)` under `enable_seqscan = off` and
`enable_sort = off`: no plan may scan a table of the schema sequentially, the workflow queries
may not sort at all, and each plan uses the index the spec names for it. Foreign keys that
cascade have an index leading with their columns, so cascades never scan either.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final, LiteralString, TypeAlias

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from pikku_storage import ManualClock
from pikku_storage.postgres import _sql_ai, _sql_channels, _sql_workflows, open_storage
from pikku_storage.postgres._connection import compose

pytestmark = pytest.mark.pikku_backend("postgres")

ROWS: Final = 12_000
T0: Final = datetime(2025, 1, 1, tzinfo=UTC)
MID: Final = datetime(2025, 1, 1, 1, tzinfo=UTC)
RUN1: Final = "c4ca4238-a0b9-3382-8dcc-509a6f75849b"  # md5('1')::uuid: a seeded run
STEP1: Final = "c4ca4238-a0b9-3382-8dcc-509a6f75849b"  # seeded steps reuse md5(i) too

Conn = psycopg.AsyncConnection[TupleRow]
Cases: TypeAlias = dict[str, tuple[sql.Composed, Mapping[str, object], set[str]]]


def _nodes(plan: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def _plan(conn: Conn, query: sql.Composed, params: Mapping[str, object]) -> list[Any]:
    cur = await conn.execute(sql.SQL("EXPLAIN (FORMAT JSON, VERBOSE) ") + query, params)
    row = await cur.fetchone()
    assert row is not None
    return [node for item in row[0] for node in _nodes(item["Plan"])]


async def _check(
    conn: Conn,
    schema: str,
    cases: Cases,
    *,
    no_sort: bool,
) -> dict[str, list[str]]:
    """Plan each case; return the problems per case (empty when all hold) after printing the
    indexes every plan used (the evidence)."""
    problems: dict[str, list[str]] = {}
    await conn.execute("SET enable_seqscan = off")
    await conn.execute("SET enable_sort = off")
    for name, (query, params, expected) in cases.items():
        nodes = await _plan(conn, query, params)
        used = sorted({node["Index Name"] for node in nodes if "Index Name" in node})
        kinds = sorted({node["Node Type"] for node in nodes})
        print(f"{name}: {', '.join(used)} [{', '.join(kinds)}]")
        found: list[str] = []
        for node in nodes:
            if node["Node Type"] == "Seq Scan" and node.get("Schema") == schema:
                found.append(f"Seq Scan on {node['Relation Name']}")
            if no_sort and node["Node Type"] in {"Sort", "Incremental Sort"}:
                found.append(f"{node['Node Type']} on {node.get('Sort Key')}")
        missing = expected - set(used)
        if missing:
            found.append(f"expected index {sorted(missing)}, used {used}")
        if found:
            problems[name] = found
    return problems


async def _seed(conn: Conn, schema: str, statements: list[LiteralString]) -> None:
    for statement in statements:
        await conn.execute(sql.SQL(statement).format(schema=sql.Identifier(schema)))
    await conn.execute(sql.SQL("ANALYZE"))


@pytest.fixture
async def seeded_storage(pg_url: str, fresh_schema: str) -> str:
    async with open_storage(pg_url, schema=fresh_schema, clock=ManualClock()):
        pass  # migrate the fresh schema
    return fresh_schema


_WORKFLOW_SEED: Final[list[LiteralString]] = [
    "INSERT INTO {schema}.workflow_runs (workflow_run_id, workflow, status, input, inline, wire,"
    " created_at, updated_at, activity_at, active_steps)"
    " SELECT md5(i::text)::uuid, 'wf' || (i % 40),"
    # runs past 2000 (no steps) are mostly completed, so a status is a selective filter
    " (ARRAY['running','suspended','completed','failed','cancelled'])"
    "[CASE WHEN i <= 2000 OR i % 7 = 0 THEN 1 + i % 5 ELSE 3 END], '1', false,"
    " '{{\"type\":\"test\"}}', timestamptz '2025-01-01' + i * interval '1 second',"
    " timestamptz '2025-01-01' + i * interval '1 second',"
    " timestamptz '2025-01-01' + i * interval '1 second',"
    # run i <= 2000 holds six steps, all `running` when (i - 1) % 4 = 1 (see the steps)
    " CASE WHEN i <= 2000 AND (i - 1) % 4 = 1 THEN 6 ELSE 0 END"
    " FROM generate_series(1, 12000) AS i",
    "INSERT INTO {schema}.workflow_step (workflow_step_id, workflow_run_id, step_name, status,"
    " attempt_count, created_at, updated_at, dispatch_since)"
    " SELECT md5(i::text)::uuid, md5((1 + i % 2000)::text)::uuid, 'step' || i,"
    " (ARRAY['pending','running','succeeded','failed'])[1 + i % 4], 1,"
    " timestamptz '2025-01-01' + i * interval '1 second',"
    " timestamptz '2025-01-01' + i * interval '1 second',"
    # pending (i % 4 = 0) in a running run ((1 + i % 2000) % 5 = 0)
    " CASE WHEN i % 4 = 0 AND (1 + i % 2000) % 5 = 0"
    " THEN timestamptz '2025-01-01' + i * interval '1 second' END"
    " FROM generate_series(1, 12000) AS i",
    "INSERT INTO {schema}.workflow_step_history (workflow_step_id, attempt, workflow_run_id,"
    " status, created_at, updated_at)"
    " SELECT workflow_step_id, 1, workflow_run_id, status, created_at, updated_at"
    " FROM {schema}.workflow_step",
    "INSERT INTO {schema}.workflow_run_state (workflow_run_id, name, value)"
    " SELECT md5((1 + i % 2000)::text)::uuid, 'k' || i, '1' FROM generate_series(1, 12000) AS i",
    "INSERT INTO {schema}.workflow_versions (workflow_name, graph_hash, graph, source, created_at)"
    " SELECT 'wf' || (i % 40), 'h' || i, '{{}}', 'dsl', timestamptz '2025-01-01'"
    " FROM generate_series(1, 12000) AS i",
]


async def test_workflow_queries_scan_indexes_in_order_without_sorting(
    admin: Conn, seeded_storage: str
) -> None:
    """01 §6 56 (and §4: list_runs, history, names and prune cost what they return)."""
    schema = seeded_storage
    await _seed(admin, schema, _WORKFLOW_SEED)

    def q(template: sql.SQL) -> sql.Composed:
        return compose(template, schema, **_sql_workflows.WORKFLOW_TABLES)

    w = _sql_workflows
    page = {"limit": 50, "offset": 100}
    step = {"step_id": STEP1, "now": T0}
    transition = {
        **step,
        "status": "running",
        "set_outcome": False,
        "result": None,
        "error": None,
        "stamp_running": True,
        "stamp_scheduled": False,
        "stamp_succeeded": False,
        "stamp_failed": False,
        "active": True,
        "pending": False,
    }
    names = {"run_id": RUN1, "names": ["step2000", "step4000", "x"]}
    cases: Cases = {
        "list_runs": (q(w.LIST_RUNS), page, {"workflow_runs_created_idx"}),
        "list_runs by workflow": (
            q(w.LIST_RUNS_BY_WORKFLOW),
            {**page, "workflow": "wf7"},
            {"workflow_runs_workflow_idx"},
        ),
        "list_runs by status": (
            q(w.LIST_RUNS_BY_STATUS),
            {**page, "status": "failed"},
            {"workflow_runs_status_idx"},
        ),
        "list_runs by workflow and status": (
            q(w.LIST_RUNS_BY_WORKFLOW_STATUS),
            {**page, "workflow": "wf7", "status": "failed"},
            {"workflow_runs_workflow_status_idx"},
        ),
        "get_run": (q(w.GET_RUN), {"run_id": RUN1}, {"workflow_runs_pkey"}),
        "update_run_status": (
            q(w.UPDATE_RUN_STATUS),
            {"run_id": RUN1, "status": "failed", "output": None, "error": None, "now": T0},
            {"workflow_runs_pkey"},
        ),
        "update_run_state": (
            q(w.UPDATE_RUN_STATE),
            {"run_id": RUN1, "name": "k", "value": "1", "now": T0},
            {"workflow_runs_pkey"},
        ),
        "get_run_state": (q(w.GET_RUN_STATE), {"run_id": RUN1}, {"workflow_run_state_pkey"}),
        "get_step_state": (
            q(w.GET_STEP_STATE),
            {"run_id": RUN1, "step_name": "step2000"},
            {"workflow_step_run_name_key"},
        ),
        "graph steps": (q(w.GRAPH_STEPS), {"run_id": RUN1}, set()),
        "step names": (q(w.STEP_NAMES), names, {"workflow_step_run_name_key"}),
        "succeeded results": (q(w.SUCCEEDED_RESULTS), names, {"workflow_step_run_name_key"}),
        "lock the run of a step": (
            q(w.LOCK_RUN_OF_STEP),
            step,
            {"workflow_step_pkey", "workflow_runs_pkey"},
        ),
        "lock a run": (q(w.LOCK_RUN), {"run_id": RUN1}, {"workflow_runs_pkey"}),
        "transition": (
            q(w.SET_STEP),
            transition,
            {"workflow_step_pkey", "workflow_step_history_pkey", "workflow_runs_pkey"},
        ),
        "claim_step": (
            q(w.CLAIM_STEP),
            step,
            {"workflow_step_pkey", "workflow_step_history_pkey", "workflow_runs_pkey"},
        ),
        "create_retry_attempt": (
            q(w.CREATE_RETRY_ATTEMPT),
            {**step, "status": "pending", "running": False},
            {"workflow_step_pkey", "workflow_runs_pkey"},
        ),
        "claim_step_for_execution": (
            q(w.CLAIM_FOR_EXECUTION),
            {
                "run_id": RUN1,
                "step_name": "step2000",
                "rpc_name": None,
                "max_attempts": 3,
                "now": T0,
            },
            {"workflow_step_run_name_key", "workflow_step_pkey", "workflow_runs_pkey"},
        ),
        "set_step_child_run_id": (
            q(w.SET_STEP_CHILD_RUN_ID),
            {**step, "child_run_id": "child"},
            {"workflow_step_pkey", "workflow_step_history_pkey", "workflow_runs_pkey"},
        ),
        "set_branch_taken": (
            q(w.SET_BRANCH_TAKEN),
            {**step, "branch_key": "b"},
            {"workflow_step_pkey", "workflow_runs_pkey"},
        ),
        "update_run_status: pending steps' dispatch": (
            q(w.REDERIVE_DISPATCH),
            {"run_id": RUN1, "running": True},
            set(),
        ),
        "get_step_instances": (
            q(w.GET_STEP_INSTANCES),
            {"run_id": RUN1},
            {"workflow_step_run_created_idx"},
        ),
        "find_stalled_runs": (
            q(w.FIND_STALLED_RUNS),
            {"older_than": MID, "limit": 100},
            {"workflow_runs_stalled_idx"},
        ),
        "find_stalled_runs after": (
            q(w.FIND_STALLED_RUNS_AFTER),
            {"older_than": MID, "limit": 100, "after_at": T0, "after_id": RUN1},
            {"workflow_runs_stalled_idx"},
        ),
        "find_undispatched_steps": (
            q(w.FIND_UNDISPATCHED_STEPS),
            {"older_than": MID, "limit": 100},
            {"workflow_step_undispatched_idx"},
        ),
        "find_undispatched_steps after": (
            q(w.FIND_UNDISPATCHED_STEPS_AFTER),
            {"older_than": MID, "limit": 100, "after_at": T0, "after_id": STEP1},
            {"workflow_step_undispatched_idx"},
        ),
        "get_run_steps": (q(w.GET_RUN_STEPS), {"run_id": RUN1}, {"workflow_step_run_created_idx"}),
        "get_run_history": (
            q(w.GET_RUN_HISTORY),
            {"run_id": RUN1},
            {"workflow_step_history_run_created_idx"},
        ),
        "get_distinct_workflow_names": (
            q(w.DISTINCT_WORKFLOW_NAMES),
            {},
            {"workflow_runs_workflow_idx"},
        ),
        "delete_run": (q(w.DELETE_RUN), {"run_id": RUN1}, {"workflow_runs_pkey"}),
        "prune_runs batch": (
            q(w.PRUNE_BATCH),
            {"status": "completed", "cutoff": MID, "batch_size": 100},
            {"workflow_runs_prune_idx", "workflow_runs_pkey"},
        ),
        "get_workflow_version": (
            q(w.GET_VERSION),
            {"name": "wf1", "graph_hash": "h1"},
            {"workflow_versions_pkey"},
        ),
        "upsert_workflow_version": (
            q(w.UPSERT_VERSION),
            {
                "name": "wf1",
                "graph_hash": "h1",
                "graph": "{}",
                "source": "dsl",
                "status": "active",
                "now": T0,
            },
            set(),
        ),
        "update_workflow_version_status": (
            q(w.UPDATE_VERSION_STATUS),
            {"name": "wf1", "graph_hash": "h1", "status": "draft"},
            {"workflow_versions_pkey"},
        ),
        "insert_step_state": (
            q(w.INSERT_STEP),
            {
                "step_id": "c4ca4238-a0b9-3382-8dcc-000000000000",
                "run_id": RUN1,
                "step_name": "new",
                "rpc_name": None,
                "from_step_name": None,
                "data": None,
                "retries": None,
                "retry_delay": None,
                "now": T0,
            },
            {"workflow_runs_pkey"},
        ),
    }
    assert await _check(admin, schema, cases, no_sort=True) == {}


_AI_SEED: Final[list[LiteralString]] = [
    "INSERT INTO {schema}.ai_threads (id, resource_id, message_seq, created_at, updated_at)"
    " SELECT 't' || i, 'r' || (i % 100), CASE WHEN i = 1 THEN 12000 ELSE 0 END,"
    " timestamptz '2025-01-01' + i * interval '1 second',"
    " timestamptz '2025-01-01' + i * interval '1 second'"
    " FROM generate_series(1, 12000) AS i",
    "INSERT INTO {schema}.ai_messages (thread_id, seq, id, role, content_text, created_at)"
    " SELECT 't1', i, 'm' || i, 'assistant', 'x',"
    " timestamptz '2025-01-01' + i * interval '1 second' FROM generate_series(1, 12000) AS i",
    "INSERT INTO {schema}.ai_tool_calls (thread_id, id, message_seq, position, name, args)"
    " SELECT 't1', 'tc' || i, i, 0, 'search', '{{}}' FROM generate_series(1, 12000) AS i",
    "INSERT INTO {schema}.ai_thread_memory (thread_id, data, updated_at)"
    " SELECT 't' || i, '{{}}', timestamptz '2025-01-01' FROM generate_series(1, 12000) AS i",
    "INSERT INTO {schema}.ai_resource_memory (resource_id, data, updated_at)"
    " SELECT 'r' || i, '{{}}', timestamptz '2025-01-01' FROM generate_series(1, 12000) AS i",
    "INSERT INTO {schema}.ai_runs (run_id, thread_id, agent_name, resource_id, status,"
    " usage_input_tokens, usage_output_tokens, usage_model, created_at, updated_at)"
    " SELECT 'run' || i, 't' || (1 + i % 12000), 'agent' || (i % 20), 'r', 'running', 0, 0, '',"
    " timestamptz '2025-01-01' + i * interval '1 second',"
    " timestamptz '2025-01-01' + i * interval '1 second'"
    " FROM generate_series(1, 12000) AS i",
    "INSERT INTO {schema}.ai_pending_approvals (run_id, tool_call_id, position, kind, payload)"
    " SELECT 'run' || i, 'tc' || i, 1, 'tool-call', '{{}}' FROM generate_series(1, 12000) AS i",
    "INSERT INTO {schema}.ai_approval_decisions (run_id, tool_call_id, kind, payload, status,"
    " resolved_at)"
    " SELECT 'run' || (1 + i % 100), 'tc' || i, 'tool-call', '{{}}', 'approved',"
    " timestamptz '2025-01-01' FROM generate_series(1, 12000) AS i",
]


async def test_ai_request_path_queries_use_indexes(admin: Conn, seeded_storage: str) -> None:
    """02 §6 64: no sequential scan of an `ai_` table on any request path of §5.2."""
    schema = seeded_storage
    await _seed(admin, schema, _AI_SEED)

    def q(template: sql.SQL) -> sql.Composed:
        return compose(template, schema, **_sql_ai.AI_TABLES)

    a = _sql_ai
    thread = {"thread_id": "t1"}
    page = {"limit": 50, "offset": 10}
    pending = {"tool_call_ids": ["tc1"], "kinds": ["tool-call"], "payloads": ["{}"]}
    cases: Cases = {
        "get_thread": (q(a.GET_THREAD), thread, {"ai_threads_pkey"}),
        "get_threads": (q(a.GET_THREADS), {"resource_id": "r7"}, {"ai_threads_resource_idx"}),
        "save_messages lock": (q(a.LOCK_THREAD_FOR_SAVE), thread, {"ai_threads_pkey"}),
        "save_messages checks and writes": (
            q(a.SAVE_BATCH),
            {
                **thread,
                "now": T0,
                "count": 2,
                "valid": True,
                "messages": '[{"o":1,"i":"m1","r":"user","t":"a","p":null,'
                '"c":"2025-01-01T00:00:00+00:00","x":null,"n":false},'
                '{"o":2,"i":"new","r":"assistant","t":"b","p":null,'
                '"c":"2025-01-01T00:00:00+00:00","x":null,"n":false}]',
                "calls": '[{"i":"tc1","o":2,"k":0,"n":"f","a":"{}","r":null,"u":false}]',
                "results": '[{"i":"tc2","r":"r","u":true}]',
            },
            {"ai_threads_pkey", "ai_messages_thread_id_key", "ai_tool_calls_pkey"},
        ),
        "get_messages last_n": (
            q(a.MESSAGES_LAST),
            {**thread, "last_n": 20},
            {"ai_messages_created_idx", "ai_tool_calls_message_idx"},
        ),
        "get_messages cursor": (
            q(a.MESSAGES_BEFORE_CURSOR),
            {**thread, "last_n": 20, "cursor": "m600"},
            {"ai_messages_thread_id_key", "ai_messages_created_idx"},
        ),
        "get_messages all": (q(a.MESSAGES_ALL), thread, {"ai_tool_calls_message_idx"}),
        "thread memory": (q(a.GET_THREAD_MEMORY), {"id": "t1"}, {"ai_thread_memory_pkey"}),
        "resource memory": (
            q(a.GET_RESOURCE_MEMORY),
            {"id": "r1"},
            {"ai_resource_memory_pkey"},
        ),
        "get_run": (
            q(a.GET_RUN),
            {"run_id": "run5"},
            {"ai_runs_pkey", "ai_pending_approvals_pkey"},
        ),
        "get_runs_by_thread": (
            q(a.GET_RUNS_BY_THREAD),
            {"thread_id": "t6"},
            {"ai_runs_thread_idx"},
        ),
        "update_run": (
            q(a.UPDATE_RUN),
            {
                "run_id": "run5",
                "now": T0,
                **{f"set_{f}": False for f in ("status", "error_message", "suspend_reason")},
                "set_missing_rpcs": False,
                "set_usage": False,
                **dict.fromkeys(
                    (
                        "status",
                        "error_message",
                        "suspend_reason",
                        "missing_rpcs",
                        "input_tokens",
                        "output_tokens",
                        "model",
                    )
                ),
            },
            {"ai_runs_pkey"},
        ),
        "update_run pending delete": (
            q(a.DELETE_PENDING_EXCEPT),
            {"run_id": "run5", "keep": ["tc1"]},
            {"ai_pending_approvals_pkey"},
        ),
        "update_run pending upsert": (
            q(a.UPSERT_PENDING),
            {"run_id": "run5", **pending},
            set(),
        ),
        "resolve_approval": (
            q(a.RESOLVE_APPROVAL),
            {"tool_call_id": "tc9", "status": "approved", "now": T0},
            {"ai_pending_approvals_tool_call_idx"},
        ),
        "resolve_approval of a run": (
            q(a.RESOLVE_APPROVAL_OF_RUN),
            {"tool_call_id": "tc9", "run_id": "run9", "status": "approved", "now": T0},
            set(),
        ),
        "find_run_by_tool_call_id": (
            q(a.FIND_RUN_BY_TOOL_CALL),
            {"tool_call_id": "tc9"},
            {"ai_pending_approvals_tool_call_idx", "ai_runs_pkey"},
        ),
        "get_approval_decisions": (
            q(a.GET_DECISIONS),
            {"run_id": "run5"},
            {"ai_approval_decisions_run_idx"},
        ),
        "list_threads": (q(a.LIST_THREADS), page, {"ai_threads_updated_idx"}),
        "list_threads by resource": (
            q(a.LIST_THREADS_BY_RESOURCE),
            {**page, "resource_id": "r3"},
            {"ai_threads_resource_idx"},
        ),
        "list_threads by agent": (
            q(a.LIST_THREADS_BY_AGENT),
            {**page, "agent_name": "agent3"},
            {"ai_runs_agent_idx"},
        ),
        "list_threads by agent and resource": (
            q(a.LIST_THREADS_BY_AGENT_RESOURCE),
            {**page, "agent_name": "agent3", "resource_id": "r3"},
            {"ai_threads_resource_idx", "ai_runs_agent_idx"},
        ),
        "get_distinct_agent_names": (
            q(a.DISTINCT_AGENT_NAMES),
            {},
            {"ai_runs_agent_idx"},
        ),
        "prune_threads batch": (
            q(a.PRUNE_THREADS),
            {"cutoff": MID, "batch_size": 100},
            {"ai_threads_updated_idx", "ai_threads_pkey"},
        ),
        "delete_thread": (q(a.DELETE_THREAD), thread, {"ai_threads_pkey"}),
        "save_score": (
            q(a.SAVE_SCORE),
            {
                "run_id": "run5",
                "scorer_name": "s",
                "score": 0.5,
                "reason": None,
                "metadata": None,
                "now": T0,
            },
            {"ai_runs_pkey"},
        ),
        "get_scores": (q(a.GET_SCORES), {"run_id": "run5"}, {"ai_run_scores_run_idx"}),
        "list_threads by owners": (
            q(a.LIST_THREADS_BY_OWNERS),
            {**page, "owners": ["r1", "r2"], "lows": ["r1:", "r2:"], "highs": ["r1;", "r2;"]},
            {"ai_threads_resource_idx"},
        ),
        "list_threads by agent and owners": (
            q(a.LIST_THREADS_BY_AGENT_OWNERS),
            {
                **page,
                "agent_name": "agent3",
                "owners": ["r1", "r2"],
                "lows": ["r1:", "r2:"],
                "highs": ["r1;", "r2;"],
            },
            {"ai_threads_resource_idx", "ai_runs_agent_idx"},
        ),
    }
    assert await _check(admin, schema, cases, no_sort=False) == {}


_CHANNEL_SEED: Final[list[LiteralString]] = [
    "INSERT INTO {schema}.channels (channel_id, channel_name, opening_data, last_seen)"
    " SELECT 'c' || i, 'chat', 'null', timestamptz '2025-01-01' + i * interval '1 second'"
    " FROM generate_series(1, 12000) AS i",
    "INSERT INTO {schema}.channel_subscriptions (topic, channel_id)"
    " SELECT 'topic' || (i % 100), 'c' || i FROM generate_series(1, 12000) AS i",
    "INSERT INTO {schema}.channel_subscriptions (topic, channel_id)"
    " SELECT 'other' || (i % 100), 'c' || i FROM generate_series(1, 12000) AS i",
    "INSERT INTO {schema}.deployments (deployment_id, endpoint, last_heartbeat)"
    " SELECT 'd' || i, 'http://x', timestamptz '2025-01-01' + i * interval '1 second'"
    " FROM generate_series(1, 12000) AS i",
    "INSERT INTO {schema}.deployment_functions (function_name, deployment_id)"
    " SELECT 'fn' || (i % 100), 'd' || i FROM generate_series(1, 12000) AS i",
    "INSERT INTO {schema}.deployment_functions (function_name, deployment_id)"
    " SELECT 'other' || (i % 100), 'd' || i FROM generate_series(1, 12000) AS i",
]


async def test_channel_and_deployment_queries_use_indexes(admin: Conn, seeded_storage: str) -> None:
    """03 §7, PostgreSQL checks: topic lookup, find_function, list_deployments, both prunes."""
    schema = seeded_storage
    await _seed(admin, schema, _CHANNEL_SEED)

    def q(template: sql.SQL) -> sql.Composed:
        return compose(template, schema, **_sql_channels.CHANNEL_TABLES)

    c = _sql_channels
    channel = {"channel_id": "c5"}
    late = datetime(2025, 1, 1, 3, 15, tzinfo=UTC)  # most rows older: the live window is short
    cases: Cases = {
        "get_channel_ids_for_topic": (
            q(c.TOPIC_CHANNELS),
            {"topic": "topic7"},
            {"channel_subscriptions_pkey"},
        ),
        "find_function": (
            q(c.FIND_FUNCTION),
            {"name": "fn7", "cutoff": late},
            {"deployment_functions_pkey"},
        ),
        "list_deployments": (
            q(c.LIST_DEPLOYMENTS),
            {"cutoff": late},
            {"deployments_heartbeat_idx"},
        ),
        "prune_channels": (
            q(c.PRUNE_CHANNELS),
            {"cutoff": MID, "limit": 100},
            {"channels_last_seen_idx", "channels_pkey"},
        ),
        "prune_deployments": (
            q(c.PRUNE_DEPLOYMENTS),
            {"cutoff": MID},
            {"deployments_heartbeat_idx"},
        ),
        "get_channel_and_session": (q(c.GET_CHANNEL), channel, {"channels_pkey"}),
        "touch": (q(c.TOUCH), {**channel, "now": T0}, {"channels_pkey"}),
        "set_user_session": (
            q(c.SET_USER_SESSION),
            {**channel, "session": None},
            {"channels_pkey"},
        ),
        "remove_channels": (q(c.REMOVE_CHANNELS), {"ids": ["c5", "c6"]}, {"channels_pkey"}),
        "subscribe": (q(c.SUBSCRIBE), {**channel, "topic": "t"}, {"channels_pkey"}),
        "unsubscribe": (
            q(c.UNSUBSCRIBE),
            {**channel, "topic": "topic5"},
            {"channel_subscriptions_pkey"},
        ),
        "heartbeat": (q(c.HEARTBEAT), {"deployment_id": "d5", "now": T0}, {"deployments_pkey"}),
        "start: drop unlisted functions": (
            q(c.DELETE_FUNCTIONS_EXCEPT),
            {"deployment_id": "d5", "functions": ["fn5"]},
            {"deployment_functions_deployment_idx"},
        ),
        "stop": (q(c.DELETE_DEPLOYMENT), {"deployment_id": "d5"}, {"deployments_pkey"}),
    }
    assert await _check(admin, schema, cases, no_sort=False) == {}


_FK_WITHOUT_INDEX: Final = sql.SQL(
    "SELECT c.conrelid::regclass::text, c.conname FROM pg_catalog.pg_constraint AS c"
    " WHERE c.contype = 'f' AND c.connamespace = to_regnamespace(%(schema)s)"
    " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index AS i"
    " WHERE i.indrelid = c.conrelid"
    " AND (string_to_array(i.indkey::text, ' ')::int2[])[1:array_length(c.conkey, 1)]"
    " = c.conkey)"
)


async def test_every_cascading_foreign_key_has_a_leading_index(
    admin: Conn, seeded_storage: str
) -> None:
    """Cascades (delete_run, delete_thread, prunes, removals) find children by index."""
    cur = await admin.execute(_FK_WITHOUT_INDEX, {"schema": seeded_storage})
    assert await cur.fetchall() == []
