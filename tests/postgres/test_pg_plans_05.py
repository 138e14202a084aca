"""Spec 05 plans at 100,000 rows under the default planner settings (05 §5 items 11 and 33).

The sweepers read one range of a partial index in key order: `EXPLAIN (ANALYZE)` shows no
`Seq Scan` and no `Sort`, and the index scan returns at most `limit` rows with none filtered
out, whatever the settled runs holding pending steps and the runs with work in flight. The
owners listing reads only the owners' threads through `ai_threads_resource_idx` (a sort of
those is allowed). Each test prints the figures it measured (rows read, buffers touched).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final, LiteralString

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from pikku_storage import ManualClock
from pikku_storage.postgres import _sql_ai, _sql_workflows, open_storage
from pikku_storage.postgres._ai_params import owner_ranges
from pikku_storage.postgres._connection import compose

pytestmark = pytest.mark.pikku_backend("postgres")

Conn = psycopg.AsyncConnection[TupleRow]

ROWS: Final = 100_000
LATER: Final = datetime(2030, 1, 1, tzinfo=UTC)
T0: Final = datetime(2025, 1, 1, tzinfo=UTC)

# Runs: every 10th `running`, the rest `completed`. A running run holds one `running` step
# (work in flight) except every 1000th, whose step succeeded: 100 stalled runs. Every other
# completed run holds a `pending` step (a settled run's leftover, no dispatch clock); each
# stalled run also holds one pending step with its dispatch clock running: 100 undispatched.
_WORKFLOW_SEED: Final[list[LiteralString]] = [
    "INSERT INTO {schema}.workflow_runs (workflow_run_id, workflow, status, input, inline, wire,"
    " created_at, updated_at, activity_at, active_steps)"
    " SELECT md5(i::text)::uuid, 'wf' || (i % 40),"
    " CASE WHEN i % 10 = 0 THEN 'running' ELSE 'completed' END, '1', false,"
    " '{{\"type\":\"test\"}}', timestamptz '2025-01-01' + i * interval '1 second',"
    " timestamptz '2025-01-01' + i * interval '1 second',"
    " timestamptz '2025-01-01' + i * interval '1 second',"
    " CASE WHEN i % 10 = 0 AND i % 1000 <> 0 THEN 1 ELSE 0 END"
    " FROM generate_series(1, 100000) AS i",
    "INSERT INTO {schema}.workflow_step (workflow_step_id, workflow_run_id, step_name, status,"
    " attempt_count, created_at, updated_at)"
    " SELECT md5('a' || i)::uuid, md5(i::text)::uuid, 'a',"
    " CASE WHEN i % 1000 = 0 THEN 'succeeded' WHEN i % 10 = 0 THEN 'running'"
    " WHEN i % 2 = 0 THEN 'pending' ELSE 'succeeded' END, 1,"
    " timestamptz '2025-01-01' + i * interval '1 second',"
    " timestamptz '2025-01-01' + i * interval '1 second'"
    " FROM generate_series(1, 100000) AS i",
    "INSERT INTO {schema}.workflow_step (workflow_step_id, workflow_run_id, step_name, status,"
    " attempt_count, created_at, updated_at, dispatch_since)"
    " SELECT md5('b' || k)::uuid, md5((k * 1000)::text)::uuid, 'b', 'pending', 1,"
    " timestamptz '2025-01-01' + k * interval '1 second',"
    " timestamptz '2025-01-01' + k * interval '1 second',"
    " timestamptz '2025-01-01' + k * interval '1 second'"
    " FROM generate_series(1, 100) AS k",
]

# 100,000 threads of 5000 owners ("owner-<n>" and "owner-<n>:p<i>"), one agent run each.
_AI_SEED: Final[list[LiteralString]] = [
    "INSERT INTO {schema}.ai_threads (id, resource_id, created_at, updated_at)"
    " SELECT 't' || i, 'owner-' || (i % 5000) || CASE WHEN i % 3 = 0 THEN '' ELSE ':p' || i END,"
    " timestamptz '2025-01-01' + i * interval '1 second',"
    " timestamptz '2025-01-01' + i * interval '1 second'"
    " FROM generate_series(1, 100000) AS i",
    "INSERT INTO {schema}.ai_runs (run_id, thread_id, agent_name, resource_id, status,"
    " usage_input_tokens, usage_output_tokens, usage_model, created_at, updated_at)"
    " SELECT 'run' || i, 't' || i, 'agent' || (i % 20), 'r', 'completed', 0, 0, '',"
    " timestamptz '2025-01-01', timestamptz '2025-01-01'"
    " FROM generate_series(1, 100000) AS i",
]


def _nodes(plan: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def _analyze(
    conn: Conn, query: sql.Composed, params: Mapping[str, object]
) -> tuple[list[Mapping[str, Any]], Mapping[str, Any]]:
    """The executed plan's nodes (top first) and the top node, default planner settings."""
    explain = sql.SQL("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ")
    cur = await conn.execute(explain + query, params)
    row = await cur.fetchone()
    assert row is not None
    top = row[0][0]["Plan"]
    return list(_nodes(top)), top


async def _seeded(conn: Conn, pg_url: str, schema: str, seed: list[LiteralString]) -> None:
    async with open_storage(pg_url, schema=schema, clock=ManualClock()):
        pass  # migrate the fresh schema
    for statement in seed:
        await conn.execute(sql.SQL(statement).format(schema=sql.Identifier(schema)))
    await conn.execute(sql.SQL("VACUUM ANALYZE"))


def _problems(nodes: list[Mapping[str, Any]], schema: str, *, no_sort: bool) -> list[str]:
    found = []
    for node in nodes:
        if node["Node Type"] == "Seq Scan" and node.get("Schema", schema) == schema:
            found.append(f"Seq Scan on {node['Relation Name']}")
        if no_sort and node["Node Type"] in {"Sort", "Incremental Sort"}:
            found.append(f"{node['Node Type']} on {node.get('Sort Key')}")
    return found


async def test_sweeper_queries_read_at_most_limit_index_entries_without_sorting(
    admin: Conn, pg_url: str, fresh_schema: str
) -> None:
    """05 §5 Sweepers 33 [PG]: no `Seq Scan`, no `Sort`; cost bounded by `limit` with 90,000
    settled runs (45,000 of them holding pending steps) and 9,900 runs with work in flight."""
    schema = fresh_schema
    await _seeded(admin, pg_url, schema, _WORKFLOW_SEED)

    def q(template: sql.SQL) -> sql.Composed:
        return compose(template, schema, **_sql_workflows.WORKFLOW_TABLES)

    w = _sql_workflows
    first_run = "a9b7ba70-783b-617e-9998-dc4dd82eb3c5"  # md5('1000')::uuid: a stalled run
    first_step = "4a8a08f0-9d37-b737-95db-f6e23b5a9b4c"  # any id: a keyset bound only
    cases = {
        "find_stalled_runs": (
            q(w.FIND_STALLED_RUNS),
            {"older_than": LATER, "limit": 10},
            "workflow_runs_stalled_idx",
        ),
        "find_stalled_runs after": (
            q(w.FIND_STALLED_RUNS_AFTER),
            {
                "older_than": LATER,
                "limit": 10,
                "after_at": datetime(2025, 1, 1, 0, 16, 40, tzinfo=UTC),
                "after_id": first_run,
            },
            "workflow_runs_stalled_idx",
        ),
        "find_undispatched_steps": (
            q(w.FIND_UNDISPATCHED_STEPS),
            {"older_than": LATER, "limit": 10},
            "workflow_step_undispatched_idx",
        ),
        "find_undispatched_steps after": (
            q(w.FIND_UNDISPATCHED_STEPS_AFTER),
            {"older_than": LATER, "limit": 10, "after_at": T0, "after_id": first_step},
            "workflow_step_undispatched_idx",
        ),
    }
    problems: dict[str, list[str]] = {}
    for name, (query, params, index) in cases.items():
        nodes, top = await _analyze(admin, query, params)
        scans = [node for node in nodes if node.get("Index Name") == index]
        found = _problems(nodes, schema, no_sort=True)
        if len(scans) != 1:
            found.append(f"expected one scan of {index}")
        else:
            scan = scans[0]
            read = scan["Actual Rows"] * scan["Actual Loops"]
            removed = scan.get("Rows Removed by Filter", 0)
            buffers = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
            print(f"{name}: {index}, {read} rows read, {removed} filtered, {buffers} buffers")
            if read > params["limit"] or removed:
                found.append(f"read {read} rows, filtered {removed}")
            if top["Actual Rows"] != params["limit"]:
                found.append(f"returned {top['Actual Rows']} rows")
        if found:
            problems[name] = found
    assert problems == {}


async def test_owner_queries_read_only_the_owners_threads_by_index(
    admin: Conn, pg_url: str, fresh_schema: str
) -> None:
    """05 §5 Owner-scoped listing 11 [PG]: index access on `ai_threads`, no sequential scan
    (a sort is allowed), and only the owners' threads read among 100,000."""
    schema = fresh_schema
    await _seeded(admin, pg_url, schema, _AI_SEED)

    def q(template: sql.SQL) -> sql.Composed:
        return compose(template, schema, **_sql_ai.AI_TABLES)

    # owner-7 and owner-12 hold 20 threads each; owner-7:p5007 lies under owner-7 (pruned);
    # owner-70's threads sort between "owner-7" and "owner-7:" and are not read
    owners = owner_ranges(["owner-7", "owner-12", "owner-7:p5007"])
    assert owners["owners"] == ["owner-7", "owner-12"]
    page = {"limit": 50, "offset": 0, **owners}
    cases = {
        "list_threads owners": (q(_sql_ai.LIST_THREADS_BY_OWNERS), page, 40),
        "list_threads agent and owners": (
            q(_sql_ai.LIST_THREADS_BY_AGENT_OWNERS),
            {**page, "agent_name": "agent7"},
            20,  # the threads of owner-7 are agent7's, those of owner-12 agent12's
        ),
    }
    problems: dict[str, list[str]] = {}
    for name, (query, params, returned) in cases.items():
        nodes, top = await _analyze(admin, query, params)
        found = _problems(nodes, schema, no_sort=False)
        threads = [
            node
            for node in nodes
            if node.get("Relation Name") == "ai_threads" and "Actual Rows" in node
        ]
        indexes = {str(node["Index Name"]) for node in nodes if "Index Name" in node}
        read = sum(node["Actual Rows"] * node["Actual Loops"] for node in threads)
        buffers = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
        print(f"{name}: {sorted(indexes)}, {read} threads read, {buffers} buffers")
        if "ai_threads_resource_idx" not in indexes:
            found.append(f"ai_threads_resource_idx not used: {sorted(indexes)}")
        if read != 40:
            found.append(f"read {read} threads, the owners hold 40")
        if top["Actual Rows"] != returned:
            found.append(f"returned {top['Actual Rows']} rows, expected {returned}")
        if found:
            problems[name] = found
    assert problems == {}
