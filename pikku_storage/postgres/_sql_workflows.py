"""SQL templates of the workflow services; `{runs}`, `{steps}`, … are schema-qualified tables.

Column lists match the row mappers of `_rows.py` position by position. JSON columns are read as
`::text` and written from the codec's text with `::json`, so no driver JSON adapter is involved.
See docs/operations.md#storage-layout.
"""

from __future__ import annotations

from typing import Final

from psycopg.sql import SQL

__all__ = [
    "CLAIM_STEP",
    "CREATE_RETRY_ATTEMPT",
    "CREATE_RUN",
    "DELETE_RUN",
    "DISTINCT_WORKFLOW_NAMES",
    "GET_RUN",
    "GET_RUN_HISTORY",
    "GET_RUN_STATE",
    "GET_RUN_STEPS",
    "GET_STEP_STATE",
    "GET_VERSION",
    "GRAPH_STEPS",
    "INSERT_STEP",
    "LIST_RUNS",
    "LIST_RUNS_BY_STATUS",
    "LIST_RUNS_BY_WORKFLOW",
    "LIST_RUNS_BY_WORKFLOW_STATUS",
    "PRUNE_BATCH",
    "SET_BRANCH_TAKEN",
    "SET_STEP",
    "SET_STEP_ATTEMPT",
    "STEP_NAMES",
    "SUCCEEDED_RESULTS",
    "UPDATE_RUN_STATE",
    "UPDATE_RUN_STATUS",
    "UPSERT_VERSION",
    "WORKFLOW_TABLES",
]

WORKFLOW_TABLES: Final = {
    "runs": "workflow_runs",
    "steps": "workflow_step",
    "history": "workflow_step_history",
    "state": "workflow_run_state",
    "versions": "workflow_versions",
}

# _rows.workflow_run
_RUN_COLUMNS: Final = (
    "workflow_run_id::text, workflow, status, input::text, output::text, error::text, inline,"
    " graph_hash, wire::text, created_at, updated_at"
)
# _rows.step_state (RunStep adds step_name, rpc_name, data::text)
_STEP_COLUMNS: Final = (
    "workflow_step_id::text, status, result::text, error::text, attempt_count, retries,"
    " retry_delay::text, created_at, updated_at, running_at, scheduled_at, succeeded_at,"
    " failed_at"
)

CREATE_RUN: Final = SQL(
    "INSERT INTO {runs} (workflow_run_id, workflow, status, input, inline, graph_hash, wire,"
    " created_at, updated_at)"
    " VALUES (%(run_id)s, %(workflow)s, 'running', %(input)s::json, %(inline)s,"
    " %(graph_hash)s, %(wire)s::json, %(now)s, %(now)s)"
)

GET_RUN: Final = SQL("SELECT " + _RUN_COLUMNS + " FROM {runs} WHERE workflow_run_id = %(run_id)s")

UPDATE_RUN_STATUS: Final = SQL(
    "UPDATE {runs} SET status = %(status)s, output = %(output)s::json,"
    " error = %(error)s::json, updated_at = %(now)s WHERE workflow_run_id = %(run_id)s"
)

# One statement: the run row update is the existence check and orders writers of one run.
UPDATE_RUN_STATE: Final = SQL(
    "WITH run AS ("
    " UPDATE {runs} SET updated_at = %(now)s WHERE workflow_run_id = %(run_id)s"
    " RETURNING workflow_run_id)"
    " INSERT INTO {state} (workflow_run_id, name, value)"
    " SELECT workflow_run_id, %(name)s, %(value)s::json FROM run"
    " ON CONFLICT (workflow_run_id, name) DO UPDATE SET value = EXCLUDED.value"
)

GET_RUN_STATE: Final = SQL(
    "SELECT name, value::text FROM {state} WHERE workflow_run_id = %(run_id)s"
)

# Step and its first attempt in one statement: 23503 is RunNotFound, 23505 ConflictError.
INSERT_STEP: Final = SQL(
    "WITH step AS ("
    " INSERT INTO {steps} (workflow_step_id, workflow_run_id, step_name, rpc_name, data, status,"
    " attempt_count, retries, retry_delay, created_at, updated_at)"
    " VALUES (%(step_id)s, %(run_id)s, %(step_name)s, %(rpc_name)s, %(data)s::json, 'pending',"
    " 1, %(retries)s, %(retry_delay)s::json, %(now)s, %(now)s)"
    " RETURNING workflow_step_id, workflow_run_id)"
    " INSERT INTO {history} (workflow_step_id, attempt, workflow_run_id, status, created_at,"
    " updated_at)"
    " SELECT workflow_step_id, 1, workflow_run_id, 'pending', %(now)s, %(now)s FROM step"
)

GET_STEP_STATE: Final = SQL(
    "SELECT " + _STEP_COLUMNS + " FROM {steps}"
    " WHERE workflow_run_id = %(run_id)s AND step_name = %(step_name)s"
)

# A transition is two statements of one transaction: the step by PK (its row lock orders it
# after a concurrent retry), then, in a snapshot taken after that lock, the current attempt by
# (step id, attempt_count). One data-modifying CTE would read history in the statement's
# earlier snapshot and miss an attempt a retry committed meanwhile.
_TRANSITION: Final = (
    " result = CASE WHEN %(set_outcome)s THEN %(result)s::json ELSE result END,"
    " error = CASE WHEN %(set_outcome)s THEN %(error)s::json ELSE error END,"
    " running_at = CASE WHEN %(stamp_running)s THEN %(now)s ELSE running_at END,"
    " scheduled_at = CASE WHEN %(stamp_scheduled)s THEN %(now)s ELSE scheduled_at END,"
    " succeeded_at = CASE WHEN %(stamp_succeeded)s THEN %(now)s ELSE succeeded_at END,"
    " failed_at = CASE WHEN %(stamp_failed)s THEN %(now)s ELSE failed_at END,"
    " updated_at = %(now)s"
)
SET_STEP: Final = SQL(
    "UPDATE {steps} SET status = %(status)s,"
    + _TRANSITION
    + " WHERE workflow_step_id = %(step_id)s"
)
SET_STEP_ATTEMPT: Final = SQL(
    "UPDATE {history} SET status = %(status)s,"
    + _TRANSITION
    + " WHERE workflow_step_id = %(step_id)s AND attempt = ("
    "SELECT attempt_count FROM {steps} WHERE workflow_step_id = %(step_id)s)"
)

# The one conditional transition; `found` tells an unknown step from an unclaimable one.
# On success SET_STEP_ATTEMPT (running_at stamp) follows in the same transaction.
CLAIM_STEP: Final = SQL(
    "WITH step AS ("
    " UPDATE {steps} SET status = 'running', running_at = %(now)s, updated_at = %(now)s"
    " WHERE workflow_step_id = %(step_id)s AND status IN ('pending', 'scheduled')"
    " RETURNING *)"
    " SELECT found.found, " + _STEP_COLUMNS + " FROM ("
    "SELECT EXISTS (SELECT 1 FROM {steps} WHERE workflow_step_id = %(step_id)s) AS found"
    ") AS found LEFT JOIN step ON true"
)

# The step row lock orders concurrent retries; each adds exactly one attempt.
CREATE_RETRY_ATTEMPT: Final = SQL(
    "WITH step AS ("
    " UPDATE {steps} SET attempt_count = attempt_count + 1, status = %(status)s,"
    " result = NULL, error = NULL,"
    " running_at = CASE WHEN %(running)s THEN %(now)s END,"
    " scheduled_at = NULL, succeeded_at = NULL, failed_at = NULL, updated_at = %(now)s"
    " WHERE workflow_step_id = %(step_id)s"
    " RETURNING *),"
    " attempt AS ("
    " INSERT INTO {history} (workflow_step_id, attempt, workflow_run_id, status, created_at,"
    " updated_at, running_at)"
    " SELECT workflow_step_id, attempt_count, workflow_run_id, status, %(now)s, %(now)s,"
    " running_at FROM step)"
    " SELECT " + _STEP_COLUMNS + " FROM step"
)

GRAPH_STEPS: Final = SQL(
    "SELECT step_name, status, attempt_count, retries, branch_taken FROM {steps}"
    " WHERE workflow_run_id = %(run_id)s"
)

STEP_NAMES: Final = SQL(
    "SELECT step_name FROM {steps}"
    " WHERE workflow_run_id = %(run_id)s AND step_name = ANY(%(names)s::text[])"
)

SUCCEEDED_RESULTS: Final = SQL(
    "SELECT step_name, result::text FROM {steps}"
    " WHERE workflow_run_id = %(run_id)s AND step_name = ANY(%(names)s::text[])"
    " AND status = 'succeeded'"
)

SET_BRANCH_TAKEN: Final = SQL(
    "UPDATE {steps} SET branch_taken = %(branch_key)s, updated_at = %(now)s"
    " WHERE workflow_step_id = %(step_id)s"
)

UPSERT_VERSION: Final = SQL(
    "INSERT INTO {versions} (workflow_name, graph_hash, graph, source, created_at)"
    " VALUES (%(name)s, %(graph_hash)s, %(graph)s::json, %(source)s, %(now)s)"
    " ON CONFLICT (workflow_name, graph_hash) DO NOTHING"
)

GET_VERSION: Final = SQL(
    "SELECT graph::text, source FROM {versions}"
    " WHERE workflow_name = %(name)s AND graph_hash = %(graph_hash)s"
)

_PAGE: Final = " ORDER BY created_at DESC, seq DESC LIMIT %(limit)s OFFSET %(offset)s"

LIST_RUNS: Final = SQL("SELECT " + _RUN_COLUMNS + " FROM {runs}" + _PAGE)
LIST_RUNS_BY_WORKFLOW: Final = SQL(
    "SELECT " + _RUN_COLUMNS + " FROM {runs} WHERE workflow = %(workflow)s" + _PAGE
)
LIST_RUNS_BY_STATUS: Final = SQL(
    "SELECT " + _RUN_COLUMNS + " FROM {runs} WHERE status = %(status)s" + _PAGE
)
LIST_RUNS_BY_WORKFLOW_STATUS: Final = SQL(
    "SELECT " + _RUN_COLUMNS + " FROM {runs}"
    " WHERE workflow = %(workflow)s AND status = %(status)s" + _PAGE
)

GET_RUN_STEPS: Final = SQL(
    "SELECT " + _STEP_COLUMNS + ", step_name, rpc_name, data::text FROM {steps}"
    " WHERE workflow_run_id = %(run_id)s ORDER BY created_at, seq"
)

# _rows.history_entry
GET_RUN_HISTORY: Final = SQL(
    "SELECT h.workflow_step_id::text, h.status, h.result::text, h.error::text, h.attempt,"
    " s.retries, s.retry_delay::text, h.created_at, h.updated_at, h.running_at,"
    " h.scheduled_at, h.succeeded_at, h.failed_at, s.step_name"
    " FROM {history} AS h JOIN {steps} AS s ON s.workflow_step_id = h.workflow_step_id"
    " WHERE h.workflow_run_id = %(run_id)s ORDER BY h.created_at, h.seq"
)

# Loose index scan: each step takes the smallest name above the previous one.
DISTINCT_WORKFLOW_NAMES: Final = SQL(
    "WITH RECURSIVE names (workflow) AS ("
    " (SELECT workflow FROM {runs} ORDER BY workflow LIMIT 1)"
    " UNION ALL"
    " SELECT (SELECT r.workflow FROM {runs} AS r WHERE r.workflow > names.workflow"
    " ORDER BY r.workflow LIMIT 1) FROM names WHERE names.workflow IS NOT NULL)"
    " SELECT workflow FROM names WHERE workflow IS NOT NULL"
)

DELETE_RUN: Final = SQL("DELETE FROM {runs} WHERE workflow_run_id = %(run_id)s")

# One prune batch of one status: the ids through (status, updated_at, seq), then a delete by
# primary key that re-checks each picked run (D7).
PRUNE_BATCH: Final = SQL(
    "WITH picked AS MATERIALIZED (SELECT ARRAY("
    "SELECT workflow_run_id FROM {runs}"
    " WHERE status = %(status)s AND updated_at < %(cutoff)s"
    " ORDER BY updated_at, seq LIMIT %(batch_size)s) AS ids),"
    " gone AS ("
    " DELETE FROM {runs} WHERE workflow_run_id = ANY((SELECT ids FROM picked)::uuid[])"
    " AND status = %(status)s AND updated_at < %(cutoff)s"
    " RETURNING 1)"
    " SELECT (SELECT cardinality(ids) FROM picked), (SELECT count(*) FROM gone)"
)
