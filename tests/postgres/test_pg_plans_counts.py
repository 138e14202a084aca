"""`count_runs` at 100,000 runs: each status is a range count of a status index
(docs/services/workflow-runs.md).

As in spec 01 §6 item 56: with `enable_seqscan` and `enable_sort` off, `EXPLAIN (ANALYZE)` shows
no `Seq Scan` and no `Sort`; every scan is of `(status, …)` or, for one workflow,
`(workflow, status, …)`, and the index entries read are exactly the runs counted (nothing
filtered out). Under the default settings the planner may prefer a sequential scan to count a
status that holds most of the table while the visibility map is stale; the test prints that
plan and its figures (kind of scan, heap fetches, time) without judging them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, LiteralString

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from pikku_storage import ManualClock, WorkflowStatus
from pikku_storage.postgres import _sql_workflows, open_storage
from pikku_storage.postgres._connection import compose
from tests.postgres.test_pg_plans_05 import _analyze, _problems

pytestmark = pytest.mark.pikku_backend("postgres")

Conn = psycopg.AsyncConnection[TupleRow]

ROWS: Final = 100_000
# Run i: status by i % 10 (six in ten completed, two running, one failed, one in the other
# two by turns), workflow wf<i % 40>.
_SEED: Final[LiteralString] = (
    "INSERT INTO {schema}.workflow_runs (workflow_run_id, workflow, status, input, inline, wire,"
    " created_at, updated_at, activity_at)"
    " SELECT md5(i::text)::uuid, 'wf' || (i % 40),"
    " CASE WHEN i % 10 < 6 THEN 'completed' WHEN i % 10 < 8 THEN 'running'"
    " WHEN i % 10 = 8 THEN 'failed' WHEN i % 20 = 9 THEN 'suspended' ELSE 'cancelled' END,"
    " '1', false, '{{\"type\":\"test\"}}', timestamptz '2025-01-01' + i * interval '1 second',"
    " timestamptz '2025-01-01' + i * interval '1 second',"
    " timestamptz '2025-01-01' + i * interval '1 second'"
    " FROM generate_series(1, 100000) AS i"
)
_ALL: Final = {
    "completed": 60_000,
    "running": 20_000,
    "failed": 10_000,
    "suspended": 5_000,
    "cancelled": 5_000,
}
# wf3: i % 40 == 3, so i % 10 == 3 (completed) and i % 20 == 3: 2,500 runs
_WF3: Final = {"completed": 2_500}


async def test_count_runs_is_a_status_index_range_count_per_status(
    admin: Conn, pg_url: str, fresh_schema: str
) -> None:
    """count_runs [PG]: one status-index range per status, no `Seq Scan`, no `Sort`, and the
    index entries read are exactly the runs counted, among 100,000."""
    schema = fresh_schema
    async with open_storage(pg_url, schema=schema, clock=ManualClock()) as storage:
        await admin.execute(sql.SQL(_SEED).format(schema=sql.Identifier(schema)))
        await admin.execute(sql.SQL("VACUUM ANALYZE"))
        runs = storage.workflow_runs
        expected = {s: _ALL.get(s.value, 0) for s in WorkflowStatus}
        assert await runs.count_runs() == expected
        expected_wf3 = {s: _WF3.get(s.value, 0) for s in WorkflowStatus}
        assert await runs.count_runs(workflow_name="wf3") == expected_wf3

    def q(template: sql.SQL) -> sql.Composed:
        return compose(template, schema, **_sql_workflows.WORKFLOW_TABLES)

    cases: dict[str, tuple[sql.Composed, Mapping[str, object], Mapping[str, int]]] = {
        "count_runs": (q(_sql_workflows.COUNT_RUNS), {}, _ALL),
        "count_runs by workflow": (
            q(_sql_workflows.COUNT_RUNS_BY_WORKFLOW),
            {"workflow": "wf3"},
            _WF3,
        ),
    }
    problems: dict[str, list[str]] = {}
    for name, (query, params, counted) in cases.items():
        default_nodes, default_top = await _analyze(admin, query, params)
        await admin.execute("SET enable_seqscan = off")
        await admin.execute("SET enable_sort = off")
        try:
            nodes, top = await _analyze(admin, query, params)
        finally:
            await admin.execute("RESET enable_seqscan")
            await admin.execute("RESET enable_sort")
        print(f"{name}, default settings: {_figures(default_nodes, default_top)}")
        print(f"{name}, seqscan and sort off: {_figures(nodes, top)}")
        found = _problems(nodes, schema, no_sort=True)
        scans = _index_scans(nodes)
        indexes = {str(node["Index Name"]) for node in scans}
        if len(scans) != len(WorkflowStatus) or not indexes <= _STATUS_INDEXES:
            found.append(f"expected one status-index scan per status: {sorted(indexes)}")
        read = sum(node["Actual Rows"] * node["Actual Loops"] for node in scans)
        if read != sum(counted.values()):
            found.append(f"read {read} index entries to count {sum(counted.values())}")
        removed = sum(
            node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
            for node in nodes
        )
        if removed:
            found.append(f"{removed} rows filtered out")
        if found:
            problems[name] = found
    assert problems == {}


_STATUS_INDEXES: Final = frozenset(
    {"workflow_runs_status_idx", "workflow_runs_prune_idx", "workflow_runs_workflow_status_idx"}
)
_INDEX_SCANS: Final = frozenset({"Index Only Scan", "Index Scan", "Bitmap Index Scan"})


def _index_scans(nodes: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [node for node in nodes if node["Node Type"] in _INDEX_SCANS]


def _figures(nodes: list[Mapping[str, Any]], top: Mapping[str, Any]) -> str:
    kinds = sorted(
        {str(n["Node Type"]) for n in nodes if n.get("Relation Name") or "Index Name" in n}
    )
    indexes = sorted({str(n["Index Name"]) for n in _index_scans(nodes)})
    read = sum(n["Actual Rows"] * n["Actual Loops"] for n in _index_scans(nodes))
    fetched = sum(n.get("Heap Fetches", 0) for n in nodes)
    buffers = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
    return (
        f"{kinds} on {indexes}, {read} index entries read, {fetched} heap fetches,"
        f" {buffers} buffers, {top['Actual Total Time']:.1f} ms"
    )
