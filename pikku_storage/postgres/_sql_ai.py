"""SQL templates of the AI services; `{threads}`, `{messages}`, … are schema-qualified tables.

Column lists match the row mappers of `_rows.py` position by position. JSON lives in `text`
columns as the codec wrote it (docs/services/ai-storage.md item 12). See
docs/operations.md#storage-layout.
"""

from __future__ import annotations

from typing import Final

from psycopg.sql import SQL

__all__ = [
    "AI_TABLES",
    "CREATE_RUN",
    "CREATE_THREAD",
    "DELETE_PENDING_EXCEPT",
    "DELETE_RESOURCE_MEMORY",
    "DELETE_THREAD",
    "DELETE_THREAD_MEMORY",
    "DISTINCT_AGENT_NAMES",
    "FIND_RUN_BY_TOOL_CALL",
    "GENERIC_PLAN",
    "GET_DECISIONS",
    "GET_RESOURCE_MEMORY",
    "GET_RUN",
    "GET_RUNS_BY_THREAD",
    "GET_SCORES",
    "GET_THREAD",
    "GET_THREADS",
    "GET_THREAD_MEMORY",
    "LIST_THREADS",
    "LIST_THREADS_BY_AGENT",
    "LIST_THREADS_BY_AGENT_OWNERS",
    "LIST_THREADS_BY_AGENT_RESOURCE",
    "LIST_THREADS_BY_OWNERS",
    "LIST_THREADS_BY_RESOURCE",
    "LOCK_THREAD_FOR_SAVE",
    "MESSAGES_ALL",
    "MESSAGES_BEFORE_CURSOR",
    "MESSAGES_LAST",
    "PRUNE_THREADS",
    "RESOLVE_APPROVAL",
    "RESOLVE_APPROVAL_OF_RUN",
    "SAVE_BATCH",
    "SAVE_RESOURCE_MEMORY",
    "SAVE_SCORE",
    "SAVE_THREAD_MEMORY",
    "THREAD_EXISTS",
    "UPDATE_RUN",
    "UPSERT_PENDING",
]

AI_TABLES: Final = {
    "threads": "ai_threads",
    "messages": "ai_messages",
    "calls": "ai_tool_calls",
    "thread_memory": "ai_thread_memory",
    "resource_memory": "ai_resource_memory",
    "runs": "ai_runs",
    "pending": "ai_pending_approvals",
    "decisions": "ai_approval_decisions",
    "scores": "ai_run_scores",
}

# _rows.thread
_THREAD_COLUMNS: Final = "t.id, t.resource_id, t.title, t.metadata, t.created_at, t.updated_at"

CREATE_THREAD: Final = SQL(
    "INSERT INTO {threads} (id, resource_id, title, metadata, created_at, updated_at)"
    " VALUES (%(thread_id)s, %(resource_id)s, %(title)s, %(metadata)s, %(now)s, %(now)s)"
)
GET_THREAD: Final = SQL(
    "SELECT " + _THREAD_COLUMNS + " FROM {threads} AS t WHERE t.id = %(thread_id)s"
)
GET_THREADS: Final = SQL(
    "SELECT " + _THREAD_COLUMNS + " FROM {threads} AS t WHERE t.resource_id = %(resource_id)s"
    " ORDER BY t.updated_at DESC, t.seq DESC"
)
# The cascade reaches messages, tool calls, thread memory, runs, approvals, decisions, scores.
DELETE_THREAD: Final = SQL("DELETE FROM {threads} WHERE id = %(thread_id)s")
THREAD_EXISTS: Final = SQL("SELECT 1 FROM {threads} WHERE id = %(thread_id)s")

# save_messages, statement 1: the existence check and the row lock serialising savers (the
# strength of an UPDATE that keeps the key, so inserts referencing the thread do not wait).
LOCK_THREAD_FOR_SAVE: Final = SQL(
    "SELECT 1 FROM {threads} WHERE id = %(thread_id)s FOR NO KEY UPDATE"
)
# The planner would plan statement 2 afresh on every call (its generic plan is costed for ten
# ids per array, above the custom plans of a two-message batch), ~0.5 ms a call; its generic
# plan is index probes whatever the batch, so the transaction asks for it.
GENERIC_PLAN: Final = SQL("SET LOCAL plan_cache_mode = force_generic_plan")
# Statement 2, run after the lock (a new snapshot): the stored duplicates and the calls the
# results may answer (_ai_params.check_batch), each id one probe of a unique index whatever the
# statistics say (a LIMIT 1 lateral: a join here read the whole thread when the planner, on a
# young table, thought it short), and, only when the batch passes every check,
# the writes: the thread bump allocating the sequence numbers, the messages, their calls (a
# result answering a call of the batch is stored with it) and the results for stored calls.
# The rows travel as three JSON texts (`_ai_params.batch_save`), not fourteen arrays: psycopg
# dumps each list in Python, most of the statement's client cost.
SAVE_BATCH: Final = SQL(
    "WITH found AS (SELECT"
    " ARRAY(SELECT x.i FROM json_to_recordset(%(messages)s::json) AS x (i text)"
    " CROSS JOIN LATERAL (SELECT FROM {messages} AS m"
    " WHERE m.thread_id = %(thread_id)s AND m.id = x.i LIMIT 1) AS hit) AS messages,"
    " ARRAY(SELECT x.i FROM json_to_recordset(%(calls)s::json) AS x (i text)"
    " CROSS JOIN LATERAL (SELECT FROM {calls} AS c"
    " WHERE c.thread_id = %(thread_id)s AND c.id = x.i LIMIT 1) AS hit) AS calls,"
    " ARRAY(SELECT x.i FROM json_to_recordset(%(results)s::json) AS x (i text)"
    " CROSS JOIN LATERAL (SELECT FROM {calls} AS c"
    " WHERE c.thread_id = %(thread_id)s AND c.id = x.i LIMIT 1) AS hit) AS answerable),"
    # the result ids are distinct: every one is answerable when as many were found
    " bump AS (UPDATE {threads} AS t SET updated_at = %(now)s,"
    " message_seq = t.message_seq + %(count)s FROM found"
    " WHERE t.id = %(thread_id)s AND %(valid)s AND cardinality(found.messages) = 0"
    " AND cardinality(found.calls) = 0"
    " AND cardinality(found.answerable) = json_array_length(%(results)s::json)"
    " RETURNING t.message_seq - %(count)s AS base),"
    " new_messages AS (INSERT INTO {messages} (thread_id, seq, id, role, content_text,"
    " content_parts, created_at, reasoning_content, interrupted)"
    " SELECT %(thread_id)s, bump.base + m.o, m.i, m.r, m.t, m.p, m.c, m.x, m.n"
    " FROM bump CROSS JOIN json_to_recordset(%(messages)s::json)"
    " AS m (o bigint, i text, r text, t text, p text, c timestamptz, x text, n boolean)),"
    " new_calls AS (INSERT INTO {calls} (thread_id, id, message_seq, position, name, args,"
    " result, result_undelivered)"
    " SELECT %(thread_id)s, c.i, bump.base + c.o, c.k, c.n, c.a, c.r, c.u"
    " FROM bump CROSS JOIN json_to_recordset(%(calls)s::json)"
    " AS c (i text, o bigint, k int, n text, a text, r text, u boolean)),"
    # text and undelivered flag are replaced together (a later result clears the flag)
    " answered AS (UPDATE {calls} AS c SET result = r.r, result_undelivered = r.u"
    " FROM bump CROSS JOIN json_to_recordset(%(results)s::json) AS r (i text, r text, u boolean)"
    " WHERE c.thread_id = %(thread_id)s AND c.id = r.i)"
    " SELECT found.messages, found.calls, found.answerable, EXISTS (SELECT FROM bump)"
    " FROM found"
)

# _rows.stored_message + _rows.stored_tool_call: one row per (message, call), calls in order.
_MESSAGE_ROWS: Final = (
    "SELECT m.seq, m.id, m.role, m.content_text, m.content_parts, m.created_at,"
    " m.reasoning_content, m.interrupted, c.id, c.name, c.args, c.result,"
    " c.result_undelivered FROM "
)
_WITH_CALLS: Final = (
    " LEFT JOIN {calls} AS c ON c.thread_id = m.thread_id AND c.message_seq = m.seq"
    " ORDER BY m.created_at, m.seq, c.position"
)
MESSAGES_ALL: Final = SQL(
    _MESSAGE_ROWS + "(SELECT * FROM {messages} WHERE thread_id = %(thread_id)s) AS m" + _WITH_CALLS
)
MESSAGES_LAST: Final = SQL(
    _MESSAGE_ROWS + "(SELECT * FROM {messages} WHERE thread_id = %(thread_id)s"
    " ORDER BY created_at DESC, seq DESC LIMIT %(last_n)s) AS m" + _WITH_CALLS
)
MESSAGES_BEFORE_CURSOR: Final = SQL(
    _MESSAGE_ROWS + "(SELECT w.* FROM {messages} AS cursor_message"
    " CROSS JOIN LATERAL (SELECT * FROM {messages} AS x"
    " WHERE x.thread_id = cursor_message.thread_id"
    " AND (x.created_at, x.seq) < (cursor_message.created_at, cursor_message.seq)"
    " ORDER BY x.created_at DESC, x.seq DESC LIMIT %(last_n)s) AS w"
    " WHERE cursor_message.thread_id = %(thread_id)s AND cursor_message.id = %(cursor)s) AS m"
    + _WITH_CALLS
)

GET_THREAD_MEMORY: Final = SQL("SELECT data FROM {thread_memory} WHERE thread_id = %(id)s")
GET_RESOURCE_MEMORY: Final = SQL("SELECT data FROM {resource_memory} WHERE resource_id = %(id)s")
SAVE_THREAD_MEMORY: Final = SQL(
    "INSERT INTO {thread_memory} (thread_id, data, updated_at) VALUES (%(id)s, %(data)s, %(now)s)"
    " ON CONFLICT (thread_id) DO UPDATE SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at"
)
SAVE_RESOURCE_MEMORY: Final = SQL(
    "INSERT INTO {resource_memory} (resource_id, data, updated_at)"
    " VALUES (%(id)s, %(data)s, %(now)s) ON CONFLICT (resource_id)"
    " DO UPDATE SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at"
)
DELETE_THREAD_MEMORY: Final = SQL("DELETE FROM {thread_memory} WHERE thread_id = %(id)s")
DELETE_RESOURCE_MEMORY: Final = SQL("DELETE FROM {resource_memory} WHERE resource_id = %(id)s")

# _rows.agent_run: the run's columns, then its pending set as two arrays in position order.
_RUN_COLUMNS: Final = (
    "r.run_id, r.agent_name, r.thread_id, r.resource_id, r.status, r.error_message,"
    " r.suspend_reason, r.missing_rpcs, r.usage_input_tokens, r.usage_output_tokens,"
    " r.usage_model, r.created_at, r.updated_at, p.kinds, p.payloads"
)
_PENDING_SET: Final = (
    " CROSS JOIN LATERAL (SELECT array_agg(a.kind ORDER BY a.position) AS kinds,"
    " array_agg(a.payload ORDER BY a.position) AS payloads"
    " FROM {pending} AS a WHERE a.run_id = r.run_id) AS p"
)

# The run and its pending approvals in one statement; 23503 is ThreadNotFound.
CREATE_RUN: Final = SQL(
    "WITH run AS ("
    " INSERT INTO {runs} (run_id, thread_id, agent_name, resource_id, status, error_message,"
    " suspend_reason, missing_rpcs, usage_input_tokens, usage_output_tokens, usage_model,"
    " created_at, updated_at)"
    " VALUES (%(run_id)s, %(thread_id)s, %(agent_name)s, %(resource_id)s, %(status)s,"
    " %(error_message)s, %(suspend_reason)s, %(missing_rpcs)s, %(input_tokens)s,"
    " %(output_tokens)s, %(model)s, %(now)s, %(now)s)"
    " RETURNING run_id)"
    " INSERT INTO {pending} (run_id, tool_call_id, position, kind, payload)"
    " SELECT run.run_id, a.tool_call_id, a.position, a.kind, a.payload FROM run"
    " CROSS JOIN unnest(%(tool_call_ids)s::text[], %(kinds)s::text[], %(payloads)s::text[])"
    " WITH ORDINALITY AS a (tool_call_id, kind, payload, position)"
)
GET_RUN: Final = SQL(
    "SELECT " + _RUN_COLUMNS + " FROM {runs} AS r" + _PENDING_SET + " WHERE r.run_id = %(run_id)s"
)
GET_RUNS_BY_THREAD: Final = SQL(
    "SELECT "
    + _RUN_COLUMNS
    + " FROM {runs} AS r"
    + _PENDING_SET
    + " WHERE r.thread_id = %(thread_id)s ORDER BY r.created_at DESC, r.seq DESC"
)
# UNSET fields keep their value (`set_…` false); the run row lock orders concurrent updates.
UPDATE_RUN: Final = SQL(
    "UPDATE {runs} SET"
    " status = CASE WHEN %(set_status)s THEN %(status)s::text ELSE status END,"
    " error_message = CASE WHEN %(set_error_message)s THEN %(error_message)s::text"
    " ELSE error_message END,"
    " suspend_reason = CASE WHEN %(set_suspend_reason)s THEN %(suspend_reason)s::text"
    " ELSE suspend_reason END,"
    " missing_rpcs = CASE WHEN %(set_missing_rpcs)s THEN %(missing_rpcs)s::text"
    " ELSE missing_rpcs END,"
    " usage_input_tokens = CASE WHEN %(set_usage)s THEN %(input_tokens)s::bigint"
    " ELSE usage_input_tokens END,"
    " usage_output_tokens = CASE WHEN %(set_usage)s THEN %(output_tokens)s::bigint"
    " ELSE usage_output_tokens END,"
    " usage_model = CASE WHEN %(set_usage)s THEN %(model)s::text ELSE usage_model END,"
    " updated_at = %(now)s"
    " WHERE run_id = %(run_id)s"
)
# The pending set is replaced by difference, so a kept approval is never absent
# (docs/operations.md#storage-layout).
DELETE_PENDING_EXCEPT: Final = SQL(
    "DELETE FROM {pending} WHERE run_id = %(run_id)s AND NOT (tool_call_id = ANY(%(keep)s::text[]))"
)
UPSERT_PENDING: Final = SQL(
    "INSERT INTO {pending} (run_id, tool_call_id, position, kind, payload)"
    " SELECT %(run_id)s, a.tool_call_id, a.position, a.kind, a.payload"
    " FROM unnest(%(tool_call_ids)s::text[], %(kinds)s::text[], %(payloads)s::text[])"
    " WITH ORDINALITY AS a (tool_call_id, kind, payload, position)"
    " ON CONFLICT (run_id, tool_call_id) DO UPDATE SET position = EXCLUDED.position,"
    " kind = EXCLUDED.kind, payload = EXCLUDED.payload"
)
# A racing second DELETE finds the rows gone and claims nothing (READ COMMITTED).
_RESOLVE_INSERT: Final = (
    " INSERT INTO {decisions} (run_id, tool_call_id, kind, payload, status, resolved_at)"
    " SELECT run_id, tool_call_id, kind, payload, %(status)s, %(now)s FROM claimed"
    " ORDER BY run_id"
)
RESOLVE_APPROVAL: Final = SQL(
    "WITH claimed AS (DELETE FROM {pending} WHERE tool_call_id = %(tool_call_id)s"
    " RETURNING run_id, tool_call_id, kind, payload)" + _RESOLVE_INSERT
)
RESOLVE_APPROVAL_OF_RUN: Final = SQL(
    "WITH claimed AS (DELETE FROM {pending}"
    " WHERE tool_call_id = %(tool_call_id)s AND run_id = %(run_id)s"
    " RETURNING run_id, tool_call_id, kind, payload)" + _RESOLVE_INSERT
)
FIND_RUN_BY_TOOL_CALL: Final = SQL(
    "SELECT " + _RUN_COLUMNS + ", x.kind, x.payload FROM {pending} AS x"
    " JOIN {runs} AS r ON r.run_id = x.run_id"
    + _PENDING_SET
    + " WHERE x.tool_call_id = %(tool_call_id)s ORDER BY r.created_at DESC, r.seq DESC LIMIT 1"
)
# The run's existence is checked by the insert itself: no row is RunNotFound (23503 too,
# racing a delete). Neither the run's nor the thread's `updated_at` moves.
SAVE_SCORE: Final = SQL(
    "INSERT INTO {scores} (run_id, scorer_name, score, reason, metadata, created_at)"
    " SELECT run_id, %(scorer_name)s::text, %(score)s::double precision, %(reason)s::text,"
    " %(metadata)s::text, %(now)s FROM {runs} WHERE run_id = %(run_id)s"
)
# _rows.score
GET_SCORES: Final = SQL(
    "SELECT run_id, scorer_name, score, reason, metadata, created_at FROM {scores}"
    " WHERE run_id = %(run_id)s ORDER BY created_at, seq"
)

# _rows.decision
GET_DECISIONS: Final = SQL(
    "SELECT run_id, kind, payload, status, resolved_at FROM {decisions}"
    " WHERE run_id = %(run_id)s ORDER BY seq"
)

_THREAD_PAGE: Final = " ORDER BY t.updated_at DESC, t.seq DESC LIMIT %(limit)s OFFSET %(offset)s"
_HAS_AGENT_RUN: Final = (
    "EXISTS (SELECT 1 FROM {runs} AS r WHERE r.thread_id = t.id AND r.agent_name = %(agent_name)s)"
)
LIST_THREADS: Final = SQL("SELECT " + _THREAD_COLUMNS + " FROM {threads} AS t" + _THREAD_PAGE)
LIST_THREADS_BY_RESOURCE: Final = SQL(
    "SELECT " + _THREAD_COLUMNS + " FROM {threads} AS t"
    " WHERE t.resource_id = %(resource_id)s" + _THREAD_PAGE
)
LIST_THREADS_BY_AGENT: Final = SQL(
    "SELECT " + _THREAD_COLUMNS + " FROM {threads} AS t WHERE " + _HAS_AGENT_RUN + _THREAD_PAGE
)
LIST_THREADS_BY_AGENT_RESOURCE: Final = SQL(
    "SELECT " + _THREAD_COLUMNS + " FROM {threads} AS t"
    " WHERE t.resource_id = %(resource_id)s AND " + _HAS_AGENT_RUN + _THREAD_PAGE
)

# Owners (docs/services/agent-runs.md#owners): the exact ids, then one range
# [owner + ":", owner + ";") per owner, each an index range on (resource_id, updated_at, seq);
# the owners are pruned first (one under another adds nothing), so no thread is read twice.
_OWNED: Final = (
    "(SELECT x.* FROM {threads} AS x WHERE x.resource_id = ANY(%(owners)s::text[])"
    " UNION ALL"
    " SELECT x.* FROM unnest(%(lows)s::text[], %(highs)s::text[]) AS b (lo, hi)"
    " CROSS JOIN LATERAL (SELECT * FROM {threads} AS y"
    " WHERE y.resource_id >= b.lo AND y.resource_id < b.hi) AS x) AS t"
)
LIST_THREADS_BY_OWNERS: Final = SQL("SELECT " + _THREAD_COLUMNS + " FROM " + _OWNED + _THREAD_PAGE)
LIST_THREADS_BY_AGENT_OWNERS: Final = SQL(
    "SELECT " + _THREAD_COLUMNS + " FROM " + _OWNED + " WHERE " + _HAS_AGENT_RUN + _THREAD_PAGE
)

# Skip scan over (agent_name, thread_id): cost in distinct names, not runs.
DISTINCT_AGENT_NAMES: Final = SQL(
    "WITH RECURSIVE names (agent_name) AS ("
    " (SELECT agent_name FROM {runs} ORDER BY agent_name LIMIT 1)"
    " UNION ALL"
    " SELECT (SELECT r.agent_name FROM {runs} AS r WHERE r.agent_name > names.agent_name"
    " ORDER BY r.agent_name LIMIT 1) FROM names WHERE names.agent_name IS NOT NULL)"
    " SELECT agent_name FROM names WHERE agent_name IS NOT NULL"
)

# One prune batch: the ids through (updated_at, seq), then a delete by primary key that
# re-checks `updated_at` on the locked row, so a thread bumped meanwhile survives.
PRUNE_THREADS: Final = SQL(
    "WITH picked AS MATERIALIZED (SELECT ARRAY("
    "SELECT id FROM {threads} WHERE updated_at < %(cutoff)s"
    " ORDER BY updated_at, seq LIMIT %(batch_size)s) AS ids),"
    " gone AS ("
    " DELETE FROM {threads} WHERE id = ANY((SELECT ids FROM picked)::text[])"
    " AND updated_at < %(cutoff)s RETURNING 1)"
    " SELECT (SELECT cardinality(ids) FROM picked), (SELECT count(*) FROM gone)"
)
