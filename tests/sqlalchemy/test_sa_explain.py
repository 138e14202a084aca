"""01 §6 item 56, 02 §6 items 64-65, 03 §7 backend checks: the list and window queries are
index range scans on every dialect, with 10,000+ rows stored.

Each public call runs with a statement recorder; every SELECT it sent is then explained on the
same database: PostgreSQL with `enable_seqscan` and `enable_sort` off shows no `Seq Scan` and
no `Sort`; SQLite's `EXPLAIN QUERY PLAN` shows no full `SCAN` of a table and no temporary
B-tree; MariaDB's `EXPLAIN` shows no access type `ALL` and no `Using filesort`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from pikku_storage import ManualClock, Storage
from pikku_storage.records import WorkflowStatus
from pikku_storage.sqlalchemy._connection import Database
from tests.sqlalchemy.sa_helpers import SEED_BASE, Capture, connect, seed

pytestmark = pytest.mark.pikku_backends("sqlite", "sqlalchemy-postgres", "sqlalchemy-mysql")

# Small sorts by design: the pending approvals of the runs read, ordered by position inside
# their (run_id, tool_call_id) key, and the few runs pending on one tool call, newest first
# (02 §5.2 `find_run_by_tool_call_id`: the (tool_call_id) index joined to runs, LIMIT 1).
SORT_ALLOWED = re.compile(
    r"ORDER BY \S*pending_approvals\.`?run_id`?, \S*pending_approvals\.`?position`?"
)
SORT_ALLOWED_CALLS = frozenset({"find_run_by_tool_call_id"})


async def _plans(db: Database, statements: list[tuple[str, Any]]) -> list[tuple[str, list[Any]]]:
    plans: list[tuple[str, list[Any]]] = []
    async with connect(db) as conn:
        if db.ops.name == "postgresql":
            await conn.exec_driver_sql("SET enable_seqscan = off")
            await conn.exec_driver_sql("SET enable_sort = off")
        prefix = "EXPLAIN QUERY PLAN " if db.ops.name == "sqlite" else "EXPLAIN "
        for statement, parameters in statements:
            rows = await conn.exec_driver_sql(prefix + statement, parameters)
            plans.append((statement, [tuple(row) for row in rows]))
        await conn.rollback()
    return plans


def _problems(db: Database, label: str, statement: str, plan: list[Any]) -> list[str]:
    prefix = db.table_prefix
    sort_ok = label in SORT_ALLOWED_CALLS or bool(SORT_ALLOWED.search(statement))
    found: list[str] = []
    if db.ops.name == "postgresql":
        for (line,) in plan:
            if "Seq Scan" in line and prefix in line:
                found.append(line)
            if re.search(r"(^|->\s+)(Incremental )?Sort\b", line.strip()) and not sort_ok:
                found.append(line)
    elif db.ops.name == "sqlite":
        for row in plan:
            detail = row[-1]
            full_scan = re.match(rf"SCAN {prefix}\w+( AS \w+)?$", detail)
            if full_scan or ("TEMP B-TREE" in detail and not sort_ok):
                found.append(detail)
    else:
        for row in plan:
            table, access, extra = str(row[2]), str(row[3]), str(row[9] or "")
            if table.startswith(prefix) and access == "ALL":
                found.append(f"{table}: type ALL")
            if "filesort" in extra and not sort_ok:
                found.append(f"{table}: {extra}")
    return found


async def _check(
    db: Database, capture: Capture, call: Callable[[], Awaitable[object]], label: str
) -> list[str]:
    capture.statements.clear()
    capture.active = True
    try:
        await call()
    finally:
        capture.active = False
    assert capture.statements, f"{label} sent no SELECT"
    report = []
    for statement, plan in await _plans(db, capture.statements):
        if os.environ.get("PIKKU_SHOW_PLANS"):
            print(f"--- {db.ops.name} {label}: {' '.join(statement.split())}")
            for row in plan:
                print("   ", row[-1] if db.ops.name == "sqlite" else row)
        problems = _problems(db, label, statement, plan)
        if problems:
            report.append(f"{label}: {problems}\n  {statement}\n  {plan}")
    return report


async def _analyze(db: Database) -> None:
    async with connect(db) as conn:
        if db.ops.name == "mysql":
            for table in db.tables.metadata.sorted_tables:
                await conn.exec_driver_sql(f"ANALYZE TABLE {table.name}")
        else:
            await conn.exec_driver_sql("ANALYZE")
        await conn.commit()


async def test_list_and_window_queries_use_indexes_without_sorting(
    pikku_storage: Storage, db: Database, capture: Capture, pikku_clock: ManualClock
) -> None:
    """01 §6 item 56; 02 §6 items 64-65; 03 §6.1 index use."""
    seeded = await seed(db)
    await _analyze(db)
    s = pikku_storage
    run_id = seeded["step_run"]
    cutoff = SEED_BASE + timedelta(milliseconds=100)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "list_runs": lambda: s.workflow_runs.list_runs(),
        "list_runs by name": lambda: s.workflow_runs.list_runs(workflow_name="wf-3", offset=40),
        "list_runs by status": lambda: s.workflow_runs.list_runs(status=WorkflowStatus.FAILED),
        "list_runs by both": lambda: s.workflow_runs.list_runs(
            workflow_name="wf-3", status="failed"
        ),
        "get_run_steps": lambda: s.workflow_runs.get_run_steps(run_id),
        "get_run_history": lambda: s.workflow_runs.get_run_history(run_id),
        "get_distinct_workflow_names": lambda: s.workflow_runs.get_distinct_workflow_names(),
        "get_step_state": lambda: s.workflows.get_step_state(run_id, "s3"),
        "get_completed_graph_state": lambda: s.workflows.get_completed_graph_state(run_id),
        "get_node_results": lambda: s.workflows.get_node_results(run_id, ["s1", "s2"]),
        "prune_runs": lambda: s.workflow_runs.prune_runs(finished_before=cutoff),
        "get_messages last_n": lambda: s.ai_storage.get_messages("t0", last_n=20),
        "get_messages cursor": lambda: s.ai_storage.get_messages(
            "t0", cursor=seeded["middle_message"], last_n=20
        ),
        "get_threads": lambda: s.ai_storage.get_threads("r7"),
        "list_threads": lambda: s.agent_runs.list_threads(),
        "list_threads by resource": lambda: s.agent_runs.list_threads(resource_id="r7"),
        "list_threads by agent": lambda: s.agent_runs.list_threads(agent_name="agent-7"),
        "get_runs_by_thread": lambda: s.ai_run_state.get_runs_by_thread("t7"),
        "find_run_by_tool_call_id": lambda: s.ai_run_state.find_run_by_tool_call_id("c7"),
        "get_approval_decisions": lambda: s.ai_run_state.get_approval_decisions(
            seeded["agent_run"]
        ),
        "get_distinct_agent_names": lambda: s.agent_runs.get_distinct_agent_names(),
        "prune_threads": lambda: s.agent_runs.prune_threads(updated_before=cutoff),
        "get_channel_ids_for_topic": lambda: s.eventhub.get_channel_ids_for_topic("topic-7"),
        "prune_channels": lambda: s.channels.prune_channels(last_seen_before=cutoff, limit=10),
    }
    report: list[str] = []
    for label, call in calls.items():
        report.extend(await _check(db, capture, call, label))
    # Deployments judge liveness by the clock: 50 live registrations, then 51 stale ones.
    pikku_clock.set(SEED_BASE + timedelta(seconds=30 + 10, milliseconds=-50))
    deployment_calls: dict[str, Callable[[], Awaitable[object]]] = {
        "find_function": lambda: s.deployments.find_function("fn-7"),
        "list_deployments": lambda: s.deployments.list_deployments(),
    }
    for label, call in deployment_calls.items():
        report.extend(await _check(db, capture, call, label))
    pikku_clock.set(SEED_BASE + timedelta(seconds=30, milliseconds=50))
    report.extend(await _check(db, capture, s.deployments.prune_deployments, "prune_deployments"))
    assert not report, "\n".join(report)
