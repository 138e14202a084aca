"""SQL templates of the workflow services; `{runs}`, `{steps}`, … are schema-qualified tables.

Column lists match the row mappers of `_rows.py` position by position. JSON columns are read as
`::text` and written from the codec's text with `::json`, so no driver JSON adapter is involved.
See docs/operations.md#storage-layout.
"""

from __future__ import annotations

from typing import Final

from psycopg.sql import SQL

__all__ = [
    "CLAIM_FOR_EXECUTION",
    "CLAIM_STEP",
    "COUNT_RUNS",
    "COUNT_RUNS_BY_WORKFLOW",
    "CREATE_RETRY_ATTEMPT",
    "CREATE_RUN",
    "DELETE_RUN",
    "DISTINCT_WORKFLOW_NAMES",
    "FIND_STALLED_RUNS",
    "FIND_STALLED_RUNS_AFTER",
    "FIND_UNDISPATCHED_STEPS",
    "FIND_UNDISPATCHED_STEPS_AFTER",
    "GET_RUN",
    "GET_RUN_HISTORY",
    "GET_RUN_STATE",
    "GET_RUN_STEPS",
    "GET_STEP_INSTANCES",
    "GET_STEP_STATE",
    "GET_VERSION",
    "GRAPH_STEPS",
    "INSERT_STEP",
    "LIST_RUNS",
    "LIST_RUNS_BY_STATUS",
    "LIST_RUNS_BY_WORKFLOW",
    "LIST_RUNS_BY_WORKFLOW_STATUS",
    "LOCK_RUN",
    "LOCK_RUN_OF_STEP",
    "PRUNE_BATCH",
    "REDERIVE_DISPATCH",
    "SET_BRANCH_TAKEN",
    "SET_STEP",
    "SET_STEP_CHILD_RUN_ID",
    "STEP_NAMES",
    "SUCCEEDED_RESULTS",
    "UPDATE_RUN_STATE",
    "UPDATE_RUN_STATUS",
    "UPDATE_VERSION_STATUS",
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
    " graph_hash, wire::text, created_at, updated_at, deterministic, planned_steps::text"
)
# _rows.step_state (RunStep adds step_name, data::text)
_STEP_COLUMNS: Final = (
    "workflow_step_id::text, status, result::text, error::text, attempt_count, retries,"
    " retry_delay::text, created_at, updated_at, running_at, scheduled_at, succeeded_at,"
    " failed_at, rpc_name, from_step_name, child_run_id"
)
# A step in `running`, `scheduled` or `suspended` counts in its run's `active_steps`.
_ACTIVE: Final = "('running', 'scheduled', 'suspended')"

# Markers (docs/operations.md#storage-layout): every step write first locks its run row
# (LOCK_RUN_OF_STEP, or the run update leading the statement), then, in a snapshot taken after
# that lock, reads the step's old status (`old`), writes the step and its current attempt, and
# adjusts the run's `active_steps` by old versus new status and raises its `activity_at`. Step
# writers of one run are thus serialised by the run row, and `update_run_status`, which also
# locks the run row before touching steps, cannot deadlock with them. `dispatch_since` is the
# step's `updated_at` while it is `pending` in a `running` run, else NULL.
_OLD: Final = (
    "WITH old AS (SELECT s.workflow_run_id AS old_run_id, s.status AS old_status,"
    " s.attempt_count AS old_attempt, r.status AS run_status"
    " FROM {steps} AS s JOIN {runs} AS r ON r.workflow_run_id = s.workflow_run_id"
    " WHERE s.workflow_step_id = %(step_id)s),"
)
_RAISE_ACTIVITY: Final = " activity_at = greatest(r.activity_at, %(now)s)"
_TOUCH_RUN: Final = (
    " run AS (UPDATE {runs} AS r SET" + _RAISE_ACTIVITY + " FROM old"
    " WHERE r.workflow_run_id = old.old_run_id)"
)
# the step stays in its status: a pending one in a running run restarts its dispatch clock
_KEEP_DISPATCH: Final = (
    " dispatch_since = CASE WHEN old.old_status = 'pending' AND old.run_status = 'running'"
    " THEN %(now)s::timestamptz END"
)

LOCK_RUN: Final = SQL(
    "SELECT status FROM {runs} WHERE workflow_run_id = %(run_id)s FOR NO KEY UPDATE"
)
LOCK_RUN_OF_STEP: Final = SQL(
    "SELECT status FROM {runs} WHERE workflow_run_id ="
    " (SELECT workflow_run_id FROM {steps} WHERE workflow_step_id = %(step_id)s)"
    " FOR NO KEY UPDATE"
)

CREATE_RUN: Final = SQL(
    "INSERT INTO {runs} (workflow_run_id, workflow, status, input, inline, graph_hash, wire,"
    " created_at, updated_at, deterministic, planned_steps, active_steps, activity_at)"
    " VALUES (%(run_id)s, %(workflow)s, 'running', %(input)s::json, %(inline)s,"
    " %(graph_hash)s, %(wire)s::json, %(now)s, %(now)s, %(deterministic)s,"
    " %(planned_steps)s::json, 0, %(now)s)"
)

GET_RUN: Final = SQL("SELECT " + _RUN_COLUMNS + " FROM {runs} WHERE workflow_run_id = %(run_id)s")

# Locks the run row; REDERIVE_DISPATCH follows in the same transaction.
UPDATE_RUN_STATUS: Final = SQL(
    "UPDATE {runs} AS r SET status = %(status)s, output = %(output)s::json,"
    " error = %(error)s::json, updated_at = %(now)s," + _RAISE_ACTIVITY + ""
    " WHERE workflow_run_id = %(run_id)s"
)
# Entering `running` starts the dispatch clock of the run's pending steps at their
# `updated_at`, leaving it stops them; rows already right are not written.
REDERIVE_DISPATCH: Final = SQL(
    "UPDATE {steps} SET dispatch_since = CASE WHEN %(running)s THEN updated_at END"
    " WHERE workflow_run_id = %(run_id)s AND status = 'pending'"
    " AND (dispatch_since IS NULL) = %(running)s"
)

# One statement: the run row update is the existence check and orders writers of one run.
UPDATE_RUN_STATE: Final = SQL(
    "WITH run AS ("
    " UPDATE {runs} AS r SET updated_at = %(now)s," + _RAISE_ACTIVITY + ""
    " WHERE workflow_run_id = %(run_id)s RETURNING workflow_run_id)"
    " INSERT INTO {state} (workflow_run_id, name, value)"
    " SELECT workflow_run_id, %(name)s, %(value)s::json FROM run"
    " ON CONFLICT (workflow_run_id, name) DO UPDATE SET value = EXCLUDED.value"
)

GET_RUN_STATE: Final = SQL(
    "SELECT name, value::text FROM {state} WHERE workflow_run_id = %(run_id)s"
)

# The run (locked first, its activity raised), the step and its first attempt in one
# statement: no row is RunNotFound (23503 too, racing a delete), 23505 ConflictError.
INSERT_STEP: Final = SQL(
    "WITH run AS ("
    " UPDATE {runs} AS r SET" + _RAISE_ACTIVITY + " WHERE workflow_run_id = %(run_id)s"
    " RETURNING workflow_run_id, status),"
    " step AS ("
    " INSERT INTO {steps} (workflow_step_id, workflow_run_id, step_name, rpc_name,"
    " from_step_name, data, status, attempt_count, retries, retry_delay, created_at, updated_at,"
    " dispatch_since)"
    " SELECT %(step_id)s::uuid, workflow_run_id, %(step_name)s::text, %(rpc_name)s::text,"
    " %(from_step_name)s::text, %(data)s::json, 'pending', 1, %(retries)s::int,"
    " %(retry_delay)s::json, %(now)s, %(now)s,"
    " CASE WHEN status = 'running' THEN %(now)s::timestamptz END FROM run"
    " RETURNING workflow_step_id, workflow_run_id)"
    " INSERT INTO {history} (workflow_step_id, attempt, workflow_run_id, status, created_at,"
    " updated_at)"
    " SELECT workflow_step_id, 1, workflow_run_id, 'pending', %(now)s, %(now)s FROM step"
)

GET_STEP_STATE: Final = SQL(
    "SELECT " + _STEP_COLUMNS + " FROM {steps}"
    " WHERE workflow_run_id = %(run_id)s AND step_name = %(step_name)s"
)

# A transition follows LOCK_RUN_OF_STEP in its transaction, so its snapshot already holds the
# latest attempt (a retry of the step holds the same run row lock).
_TRANSITION: Final = (
    " result = CASE WHEN %(set_outcome)s THEN %(result)s::json ELSE result END,"
    " error = CASE WHEN %(set_outcome)s THEN %(error)s::json ELSE error END,"
    " running_at = CASE WHEN %(stamp_running)s THEN %(now)s ELSE running_at END,"
    " scheduled_at = CASE WHEN %(stamp_scheduled)s THEN %(now)s ELSE scheduled_at END,"
    " succeeded_at = CASE WHEN %(stamp_succeeded)s THEN %(now)s ELSE succeeded_at END,"
    " failed_at = CASE WHEN %(stamp_failed)s THEN %(now)s ELSE failed_at END,"
    " updated_at = %(now)s"
)
# `active` and `pending` say what the new status is; the row count is the step's.
SET_STEP: Final = SQL(
    _OLD + " step AS (UPDATE {steps} AS s SET status = %(status)s," + _TRANSITION + ","
    " dispatch_since = CASE WHEN %(pending)s AND old.run_status = 'running'"
    " THEN %(now)s::timestamptz END"
    " FROM old WHERE s.workflow_step_id = %(step_id)s RETURNING 1),"
    " attempt AS (UPDATE {history} AS h SET status = %(status)s," + _TRANSITION + ""
    " FROM old WHERE h.workflow_step_id = %(step_id)s AND h.attempt = old.old_attempt),"
    " run AS (UPDATE {runs} AS r SET active_steps = r.active_steps + %(active)s::int"
    " - (old.old_status IN " + _ACTIVE + ")::int," + _RAISE_ACTIVITY + ""
    " FROM old WHERE r.workflow_run_id = old.old_run_id)"
    " SELECT count(*) FROM step"
)

# The one conditional transition; `found` tells an unknown step from an unclaimable one.
CLAIM_STEP: Final = SQL(
    _OLD + " step AS (UPDATE {steps} AS s SET status = 'running', running_at = %(now)s,"
    " updated_at = %(now)s, dispatch_since = NULL"
    " WHERE s.workflow_step_id = %(step_id)s AND s.status IN ('pending', 'scheduled')"
    " RETURNING s.*),"
    " attempt AS (UPDATE {history} AS h SET status = 'running', running_at = %(now)s,"
    " updated_at = %(now)s FROM step"
    " WHERE h.workflow_step_id = step.workflow_step_id AND h.attempt = step.attempt_count),"
    " run AS (UPDATE {runs} AS r SET active_steps = r.active_steps"
    " + (old.old_status = 'pending')::int," + _RAISE_ACTIVITY + ""
    " FROM old, step WHERE r.workflow_run_id = step.workflow_run_id)"
    " SELECT EXISTS (SELECT 1 FROM old) AS found, step.* FROM (SELECT 1) AS one"
    " LEFT JOIN (SELECT " + _STEP_COLUMNS + " FROM step) AS step ON true"
)

# Each retry adds exactly one attempt, which starts without a child run.
CREATE_RETRY_ATTEMPT: Final = SQL(
    _OLD + " step AS (UPDATE {steps} AS s SET attempt_count = s.attempt_count + 1,"
    " status = %(status)s, result = NULL, error = NULL,"
    " running_at = CASE WHEN %(running)s THEN %(now)s::timestamptz END,"
    " scheduled_at = NULL, succeeded_at = NULL, failed_at = NULL, child_run_id = NULL,"
    " updated_at = %(now)s,"
    " dispatch_since = CASE WHEN NOT %(running)s AND old.run_status = 'running'"
    " THEN %(now)s::timestamptz END"
    " FROM old WHERE s.workflow_step_id = %(step_id)s RETURNING s.*),"
    " attempt AS ("
    " INSERT INTO {history} (workflow_step_id, attempt, workflow_run_id, status, created_at,"
    " updated_at, running_at)"
    " SELECT workflow_step_id, attempt_count, workflow_run_id, status, %(now)s, %(now)s,"
    " running_at FROM step),"
    " run AS (UPDATE {runs} AS r SET active_steps = r.active_steps + %(running)s::int"
    " - (old.old_status IN " + _ACTIVE + ")::int," + _RAISE_ACTIVITY + ""
    " FROM old WHERE r.workflow_run_id = old.old_run_id)"
    " SELECT " + _STEP_COLUMNS + " FROM step"
)

# claim_step_for_execution after LOCK_RUN: one conditional UPDATE decides. A pending or
# scheduled step becomes running as CLAIM_STEP does; a failed one (below `max_attempts` when
# given) gets its next attempt, running, as CREATE_RETRY_ATTEMPT does. `found` and `matches`
# tell StepNotFound and StepFunctionMismatch from an unclaimable step (rpc_name never changes).
CLAIM_FOR_EXECUTION: Final = SQL(
    "WITH old AS (SELECT workflow_step_id, status AS old_status, rpc_name AS old_rpc_name"
    " FROM {steps} WHERE workflow_run_id = %(run_id)s AND step_name = %(step_name)s),"
    " step AS (UPDATE {steps} AS s SET status = 'running',"
    " attempt_count = s.attempt_count + (s.status = 'failed')::int,"
    " result = CASE WHEN s.status = 'failed' THEN NULL ELSE s.result END,"
    " error = CASE WHEN s.status = 'failed' THEN NULL ELSE s.error END,"
    " running_at = %(now)s,"
    " scheduled_at = CASE WHEN s.status = 'failed' THEN NULL ELSE s.scheduled_at END,"
    " succeeded_at = CASE WHEN s.status = 'failed' THEN NULL ELSE s.succeeded_at END,"
    " failed_at = CASE WHEN s.status = 'failed' THEN NULL ELSE s.failed_at END,"
    " child_run_id = CASE WHEN s.status = 'failed' THEN NULL ELSE s.child_run_id END,"
    " updated_at = %(now)s, dispatch_since = NULL"
    " FROM old WHERE s.workflow_step_id = old.workflow_step_id"
    " AND s.rpc_name IS NOT DISTINCT FROM %(rpc_name)s::text"
    " AND (s.status IN ('pending', 'scheduled') OR (s.status = 'failed'"
    " AND (%(max_attempts)s::int IS NULL OR s.attempt_count < %(max_attempts)s::int)))"
    " RETURNING s.*, old.old_status),"
    " claimed AS (UPDATE {history} AS h SET status = 'running', running_at = %(now)s,"
    " updated_at = %(now)s FROM step WHERE step.old_status <> 'failed'"
    " AND h.workflow_step_id = step.workflow_step_id AND h.attempt = step.attempt_count),"
    " retried AS ("
    " INSERT INTO {history} (workflow_step_id, attempt, workflow_run_id, status, created_at,"
    " updated_at, running_at)"
    " SELECT workflow_step_id, attempt_count, workflow_run_id, 'running', %(now)s, %(now)s,"
    " %(now)s FROM step WHERE old_status = 'failed'),"
    " run AS (UPDATE {runs} AS r SET active_steps = r.active_steps"
    " + (step.old_status <> 'scheduled')::int," + _RAISE_ACTIVITY + ""
    " FROM step WHERE r.workflow_run_id = step.workflow_run_id)"
    " SELECT EXISTS (SELECT 1 FROM old) AS found,"
    " EXISTS (SELECT 1 FROM old WHERE old_rpc_name IS NOT DISTINCT FROM %(rpc_name)s::text)"
    " AS matches, step.* FROM (SELECT 1) AS one"
    " LEFT JOIN (SELECT " + _STEP_COLUMNS + " FROM step) AS step ON true"
)

# The live step and its current attempt; the run's activity, not its `updated_at`, moves.
SET_STEP_CHILD_RUN_ID: Final = SQL(
    _OLD + " step AS (UPDATE {steps} AS s SET child_run_id = %(child_run_id)s,"
    " updated_at = %(now)s," + _KEEP_DISPATCH + ""
    " FROM old WHERE s.workflow_step_id = %(step_id)s RETURNING 1),"
    " attempt AS (UPDATE {history} AS h SET child_run_id = %(child_run_id)s,"
    " updated_at = %(now)s"
    " FROM old WHERE h.workflow_step_id = %(step_id)s AND h.attempt = old.old_attempt),"
    + _TOUCH_RUN
    + " SELECT count(*) FROM step"
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
    _OLD + " step AS (UPDATE {steps} AS s SET branch_taken = %(branch_key)s,"
    " updated_at = %(now)s," + _KEEP_DISPATCH + ""
    " FROM old WHERE s.workflow_step_id = %(step_id)s RETURNING 1),"
    + _TOUCH_RUN
    + " SELECT count(*) FROM step"
)

# _rows.step_instance
GET_STEP_INSTANCES: Final = SQL(
    "SELECT workflow_step_id::text, step_name, status, from_step_name FROM {steps}"
    " WHERE workflow_run_id = %(run_id)s ORDER BY created_at, seq"
)

# Sweepers: one range of a partial index each, in key order, no join and no sort. `after` is
# a keyset bound made by `_keyset` (the largest UUID at or below the cursor's id).
# (Ordered by the qualified `uuid` columns: a bare name would pick the `::text` output.)
_STALLED: Final = (
    "SELECT r.workflow_run_id::text, r.workflow, r.activity_at FROM {runs} AS r"
    " WHERE r.status = 'running' AND r.active_steps = 0 AND r.activity_at < %(older_than)s"
)
_STALLED_PAGE: Final = " ORDER BY r.activity_at, r.workflow_run_id LIMIT %(limit)s"
FIND_STALLED_RUNS: Final = SQL(_STALLED + _STALLED_PAGE)
FIND_STALLED_RUNS_AFTER: Final = SQL(
    _STALLED
    + " AND (r.activity_at, r.workflow_run_id) > (%(after_at)s, %(after_id)s::uuid)"
    + _STALLED_PAGE
)
_UNDISPATCHED: Final = (
    "SELECT s.workflow_run_id::text, s.workflow_step_id::text, s.step_name, s.rpc_name,"
    " s.dispatch_since FROM {steps} AS s"
    " WHERE s.dispatch_since IS NOT NULL AND s.dispatch_since < %(older_than)s"
)
_UNDISPATCHED_PAGE: Final = " ORDER BY s.dispatch_since, s.workflow_step_id LIMIT %(limit)s"
FIND_UNDISPATCHED_STEPS: Final = SQL(_UNDISPATCHED + _UNDISPATCHED_PAGE)
FIND_UNDISPATCHED_STEPS_AFTER: Final = SQL(
    _UNDISPATCHED
    + " AND (s.dispatch_since, s.workflow_step_id) > (%(after_at)s, %(after_id)s::uuid)"
    + _UNDISPATCHED_PAGE
)

UPSERT_VERSION: Final = SQL(
    "INSERT INTO {versions} (workflow_name, graph_hash, graph, source, created_at, status)"
    " VALUES (%(name)s, %(graph_hash)s, %(graph)s::json, %(source)s, %(now)s, %(status)s)"
    " ON CONFLICT (workflow_name, graph_hash) DO NOTHING"
)

UPDATE_VERSION_STATUS: Final = SQL(
    "UPDATE {versions} SET status = %(status)s"
    " WHERE workflow_name = %(name)s AND graph_hash = %(graph_hash)s"
)

# _rows.workflow_version
GET_VERSION: Final = SQL(
    "SELECT graph::text, source, status FROM {versions}"
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

# Runs per status, one column per status in `WorkflowStatus` order: each an index-only range
# count of `(status, created_at, seq)` or `(workflow, status, created_at, seq)`; one snapshot.
COUNT_RUNS: Final = SQL(
    "SELECT (SELECT count(*) FROM {runs} WHERE status = 'running'),"
    " (SELECT count(*) FROM {runs} WHERE status = 'suspended'),"
    " (SELECT count(*) FROM {runs} WHERE status = 'completed'),"
    " (SELECT count(*) FROM {runs} WHERE status = 'failed'),"
    " (SELECT count(*) FROM {runs} WHERE status = 'cancelled')"
)
COUNT_RUNS_BY_WORKFLOW: Final = SQL(
    "SELECT (SELECT count(*) FROM {runs} WHERE workflow = %(workflow)s AND status = 'running'),"
    " (SELECT count(*) FROM {runs} WHERE workflow = %(workflow)s AND status = 'suspended'),"
    " (SELECT count(*) FROM {runs} WHERE workflow = %(workflow)s AND status = 'completed'),"
    " (SELECT count(*) FROM {runs} WHERE workflow = %(workflow)s AND status = 'failed'),"
    " (SELECT count(*) FROM {runs} WHERE workflow = %(workflow)s AND status = 'cancelled')"
)

GET_RUN_STEPS: Final = SQL(
    "SELECT " + _STEP_COLUMNS + ", step_name, data::text FROM {steps}"
    " WHERE workflow_run_id = %(run_id)s ORDER BY created_at, seq"
)

# _rows.history_entry
GET_RUN_HISTORY: Final = SQL(
    "SELECT h.workflow_step_id::text, h.status, h.result::text, h.error::text, h.attempt,"
    " s.retries, s.retry_delay::text, h.created_at, h.updated_at, h.running_at,"
    " h.scheduled_at, h.succeeded_at, h.failed_at, s.rpc_name, s.from_step_name,"
    " h.child_run_id, s.step_name"
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
