"""The numbered migrations of a PostgreSQL namespace and the runner that applies them.

`MIGRATIONS` is append-only: a shipped entry is never edited (a test pins each one's SHA-256),
one statement per string, `{schema}` the only placeholder, filled with a quoted identifier.
`migrate()` records applied versions in `pikku_migrations` of the schema and applies what is
missing under an advisory lock, so several processes may run it at once; a store written by a
newer library raises `SchemaMismatch`. See docs/concepts.md#lifecycle-and-namespaces,
docs/operations.md#storage-layout.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Final, LiteralString

from psycopg import AsyncConnection, errors, sql
from psycopg.rows import tuple_row

from pikku_storage.errors import SchemaMismatch

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "Migration",
    "migrate",
    "migration_checksum",
    "stored_version",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """One schema version: its statements run in order, in one transaction unless flagged."""

    version: int
    statements: tuple[LiteralString, ...]
    transactional: bool = True


def migration_checksum(migration: Migration) -> str:
    """SHA-256 over the statements (U+0000 separated) and the transactional flag."""
    digest = hashlib.sha256()
    for statement in migration.statements:
        digest.update(statement.encode())
        digest.update(b"\x00")
    digest.update(b"transactional" if migration.transactional else b"autocommit")
    return digest.hexdigest()


_WORKFLOWS: Final = Migration(
    version=1,
    statements=(
        """CREATE TABLE {schema}.workflow_runs (
    workflow_run_id uuid PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    workflow text COLLATE "C" NOT NULL,
    status text NOT NULL
        CHECK (status IN ('running', 'suspended', 'completed', 'failed', 'cancelled')),
    input json,
    output json,
    error json,
    inline boolean NOT NULL,
    graph_hash text COLLATE "C",
    wire json NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
)""",
        "CREATE INDEX workflow_runs_created_idx ON {schema}.workflow_runs (created_at, seq)",
        "CREATE INDEX workflow_runs_workflow_idx ON {schema}.workflow_runs"
        " (workflow, created_at, seq)",
        "CREATE INDEX workflow_runs_status_idx ON {schema}.workflow_runs (status, created_at, seq)",
        "CREATE INDEX workflow_runs_workflow_status_idx ON {schema}.workflow_runs"
        " (workflow, status, created_at, seq)",
        "CREATE INDEX workflow_runs_prune_idx ON {schema}.workflow_runs (status, updated_at, seq)",
        """CREATE TABLE {schema}.workflow_step (
    workflow_step_id uuid PRIMARY KEY,
    workflow_run_id uuid NOT NULL
        REFERENCES {schema}.workflow_runs (workflow_run_id) ON DELETE CASCADE,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    step_name text COLLATE "C" NOT NULL,
    rpc_name text COLLATE "C",
    data json,
    status text NOT NULL CHECK (status IN
        ('pending', 'running', 'scheduled', 'succeeded', 'failed', 'suspended')),
    result json,
    error json,
    attempt_count int NOT NULL CHECK (attempt_count >= 1),
    retries int CHECK (retries >= 0),
    retry_delay json,
    branch_taken text COLLATE "C",
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    running_at timestamptz,
    scheduled_at timestamptz,
    succeeded_at timestamptz,
    failed_at timestamptz,
    CONSTRAINT workflow_step_run_name_key UNIQUE (workflow_run_id, step_name)
)""",
        "CREATE INDEX workflow_step_run_created_idx ON {schema}.workflow_step"
        " (workflow_run_id, created_at, seq)",
        """CREATE TABLE {schema}.workflow_step_history (
    workflow_step_id uuid NOT NULL
        REFERENCES {schema}.workflow_step (workflow_step_id) ON DELETE CASCADE,
    attempt int NOT NULL CHECK (attempt >= 1),
    workflow_run_id uuid NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    status text NOT NULL CHECK (status IN
        ('pending', 'running', 'scheduled', 'succeeded', 'failed', 'suspended')),
    result json,
    error json,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    running_at timestamptz,
    scheduled_at timestamptz,
    succeeded_at timestamptz,
    failed_at timestamptz,
    PRIMARY KEY (workflow_step_id, attempt)
)""",
        "CREATE INDEX workflow_step_history_run_created_idx ON {schema}.workflow_step_history"
        " (workflow_run_id, created_at, seq)",
        """CREATE TABLE {schema}.workflow_run_state (
    workflow_run_id uuid NOT NULL
        REFERENCES {schema}.workflow_runs (workflow_run_id) ON DELETE CASCADE,
    name text COLLATE "C" NOT NULL,
    value json NOT NULL,
    PRIMARY KEY (workflow_run_id, name)
)""",
        """CREATE TABLE {schema}.workflow_versions (
    workflow_name text COLLATE "C" NOT NULL,
    graph_hash text COLLATE "C" NOT NULL,
    graph json NOT NULL,
    source text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (workflow_name, graph_hash)
)""",
    ),
)

_AI: Final = Migration(
    version=2,
    statements=(
        """CREATE TABLE {schema}.ai_threads (
    id text COLLATE "C" PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    resource_id text COLLATE "C" NOT NULL,
    title text,
    metadata text,
    message_seq bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
)""",
        "CREATE INDEX ai_threads_updated_idx ON {schema}.ai_threads (updated_at, seq)",
        "CREATE INDEX ai_threads_resource_idx ON {schema}.ai_threads"
        " (resource_id, updated_at, seq)",
        """CREATE TABLE {schema}.ai_messages (
    thread_id text COLLATE "C" NOT NULL
        REFERENCES {schema}.ai_threads (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    id text COLLATE "C" NOT NULL,
    role text NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content_text text,
    content_parts text,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (thread_id, seq),
    CONSTRAINT ai_messages_thread_id_key UNIQUE (thread_id, id)
)""",
        "CREATE INDEX ai_messages_created_idx ON {schema}.ai_messages (thread_id, created_at, seq)",
        """CREATE TABLE {schema}.ai_tool_calls (
    thread_id text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    message_seq bigint NOT NULL,
    position int NOT NULL,
    name text COLLATE "C" NOT NULL,
    args text NOT NULL,
    result text,
    CONSTRAINT ai_tool_calls_pkey PRIMARY KEY (thread_id, id),
    FOREIGN KEY (thread_id, message_seq)
        REFERENCES {schema}.ai_messages (thread_id, seq) ON DELETE CASCADE
)""",
        "CREATE INDEX ai_tool_calls_message_idx ON {schema}.ai_tool_calls"
        " (thread_id, message_seq, position)",
        """CREATE TABLE {schema}.ai_thread_memory (
    thread_id text COLLATE "C" PRIMARY KEY
        REFERENCES {schema}.ai_threads (id) ON DELETE CASCADE,
    data text NOT NULL,
    updated_at timestamptz NOT NULL
)""",
        """CREATE TABLE {schema}.ai_resource_memory (
    resource_id text COLLATE "C" PRIMARY KEY,
    data text NOT NULL,
    updated_at timestamptz NOT NULL
)""",
        """CREATE TABLE {schema}.ai_runs (
    run_id text COLLATE "C" PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    thread_id text COLLATE "C" NOT NULL
        REFERENCES {schema}.ai_threads (id) ON DELETE CASCADE,
    agent_name text COLLATE "C" NOT NULL,
    resource_id text COLLATE "C" NOT NULL,
    status text NOT NULL CHECK (status IN ('running', 'suspended', 'completed', 'failed')),
    error_message text,
    suspend_reason text CHECK (suspend_reason IN ('approval', 'rpc-missing')),
    missing_rpcs text,
    usage_input_tokens bigint NOT NULL CHECK (usage_input_tokens >= 0),
    usage_output_tokens bigint NOT NULL CHECK (usage_output_tokens >= 0),
    usage_model text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
)""",
        "CREATE INDEX ai_runs_thread_idx ON {schema}.ai_runs (thread_id, created_at, seq)",
        "CREATE INDEX ai_runs_agent_idx ON {schema}.ai_runs (agent_name, thread_id)",
        """CREATE TABLE {schema}.ai_pending_approvals (
    run_id text COLLATE "C" NOT NULL
        REFERENCES {schema}.ai_runs (run_id) ON DELETE CASCADE,
    tool_call_id text COLLATE "C" NOT NULL,
    position int NOT NULL,
    kind text NOT NULL CHECK (kind IN ('tool-call', 'agent-call')),
    payload text NOT NULL,
    PRIMARY KEY (run_id, tool_call_id)
)""",
        "CREATE INDEX ai_pending_approvals_tool_call_idx ON {schema}.ai_pending_approvals"
        " (tool_call_id)",
        """CREATE TABLE {schema}.ai_approval_decisions (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id text COLLATE "C" NOT NULL
        REFERENCES {schema}.ai_runs (run_id) ON DELETE CASCADE,
    tool_call_id text COLLATE "C" NOT NULL,
    kind text NOT NULL CHECK (kind IN ('tool-call', 'agent-call')),
    payload text NOT NULL,
    status text NOT NULL CHECK (status IN ('approved', 'denied')),
    resolved_at timestamptz NOT NULL
)""",
        "CREATE INDEX ai_approval_decisions_run_idx ON {schema}.ai_approval_decisions"
        " (run_id, seq)",
    ),
)

_CHANNELS: Final = Migration(
    version=3,
    statements=(
        """CREATE TABLE {schema}.channels (
    channel_id text COLLATE "C" PRIMARY KEY,
    channel_name text COLLATE "C" NOT NULL,
    opening_data text NOT NULL,
    user_session text,
    last_seen timestamptz NOT NULL
)""",
        "CREATE INDEX channels_last_seen_idx ON {schema}.channels (last_seen, channel_id)",
        """CREATE TABLE {schema}.channel_subscriptions (
    topic text COLLATE "C" NOT NULL,
    channel_id text COLLATE "C" NOT NULL
        REFERENCES {schema}.channels (channel_id) ON DELETE CASCADE,
    PRIMARY KEY (topic, channel_id)
)""",
        "CREATE INDEX channel_subscriptions_channel_idx ON {schema}.channel_subscriptions"
        " (channel_id)",
        """CREATE TABLE {schema}.deployments (
    deployment_id text COLLATE "C" PRIMARY KEY,
    endpoint text NOT NULL,
    last_heartbeat timestamptz NOT NULL
)""",
        "CREATE INDEX deployments_heartbeat_idx ON {schema}.deployments"
        " (last_heartbeat DESC, deployment_id)",
        """CREATE TABLE {schema}.deployment_functions (
    function_name text COLLATE "C" NOT NULL,
    deployment_id text COLLATE "C" NOT NULL
        REFERENCES {schema}.deployments (deployment_id) ON DELETE CASCADE,
    PRIMARY KEY (function_name, deployment_id)
)""",
        "CREATE INDEX deployment_functions_deployment_idx ON {schema}.deployment_functions"
        " (deployment_id)",
    ),
)

# Spec 05 (docs/operations.md#storage-layout): scores, message flags, the new enum members,
# run/step/version fields and the sweepers' markers, backfilled for the rows already stored
# (active_steps and activity_at from each run's steps, dispatch_since for the pending steps of
# running runs) before the partial indexes are built.
_ADDITIONS: Final = Migration(
    version=4,
    statements=(
        """CREATE TABLE {schema}.ai_run_scores (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id text COLLATE "C" NOT NULL
        REFERENCES {schema}.ai_runs (run_id) ON DELETE CASCADE,
    scorer_name text COLLATE "C" NOT NULL,
    score double precision NOT NULL CHECK (score BETWEEN 0 AND 1),
    reason text,
    metadata text,
    created_at timestamptz NOT NULL
)""",
        "CREATE INDEX ai_run_scores_run_idx ON {schema}.ai_run_scores (run_id, created_at, seq)",
        "ALTER TABLE {schema}.ai_messages ADD COLUMN reasoning_content text,"
        " ADD COLUMN interrupted boolean NOT NULL DEFAULT false",
        "ALTER TABLE {schema}.ai_tool_calls"
        " ADD COLUMN result_undelivered boolean NOT NULL DEFAULT false",
        "ALTER TABLE {schema}.ai_runs DROP CONSTRAINT ai_runs_status_check,"
        " ADD CONSTRAINT ai_runs_status_check CHECK (status IN"
        " ('running', 'suspended', 'completed', 'failed', 'interrupted'))",
        "ALTER TABLE {schema}.ai_runs DROP CONSTRAINT ai_runs_suspend_reason_check,"
        " ADD CONSTRAINT ai_runs_suspend_reason_check CHECK (suspend_reason IN"
        " ('approval', 'rpc-missing', 'credential'))",
        "ALTER TABLE {schema}.ai_pending_approvals DROP CONSTRAINT ai_pending_approvals_kind_check,"
        " ADD CONSTRAINT ai_pending_approvals_kind_check CHECK (kind IN"
        " ('tool-call', 'agent-call', 'credential-request'))",
        "ALTER TABLE {schema}.ai_approval_decisions"
        " DROP CONSTRAINT ai_approval_decisions_kind_check,"
        " ADD CONSTRAINT ai_approval_decisions_kind_check CHECK (kind IN"
        " ('tool-call', 'agent-call', 'credential-request'))",
        "ALTER TABLE {schema}.workflow_runs"
        " ADD COLUMN deterministic boolean NOT NULL DEFAULT false,"
        " ADD COLUMN planned_steps json NOT NULL DEFAULT '[]',"
        " ADD COLUMN active_steps int NOT NULL DEFAULT 0 CHECK (active_steps >= 0),"
        " ADD COLUMN activity_at timestamptz",
        'ALTER TABLE {schema}.workflow_step ADD COLUMN from_step_name text COLLATE "C",'
        ' ADD COLUMN child_run_id text COLLATE "C", ADD COLUMN dispatch_since timestamptz',
        'ALTER TABLE {schema}.workflow_step_history ADD COLUMN child_run_id text COLLATE "C"',
        "ALTER TABLE {schema}.workflow_versions ADD COLUMN status text NOT NULL DEFAULT 'active'"
        " CHECK (status IN ('draft', 'active', 'declined'))",
        "UPDATE {schema}.workflow_runs AS r SET active_steps = m.active,"
        " activity_at = greatest(r.updated_at, m.latest)"
        " FROM (SELECT r2.workflow_run_id,"
        " count(s.workflow_step_id) FILTER"
        " (WHERE s.status IN ('running', 'scheduled', 'suspended')) AS active,"
        " max(s.updated_at) AS latest"
        " FROM {schema}.workflow_runs AS r2 LEFT JOIN {schema}.workflow_step AS s"
        " ON s.workflow_run_id = r2.workflow_run_id GROUP BY r2.workflow_run_id) AS m"
        " WHERE r.workflow_run_id = m.workflow_run_id",
        "ALTER TABLE {schema}.workflow_runs ALTER COLUMN activity_at SET NOT NULL",
        "UPDATE {schema}.workflow_step AS s SET dispatch_since = s.updated_at"
        " FROM {schema}.workflow_runs AS r"
        " WHERE r.workflow_run_id = s.workflow_run_id AND r.status = 'running'"
        " AND s.status = 'pending'",
        "CREATE INDEX workflow_runs_stalled_idx ON {schema}.workflow_runs"
        " (activity_at, workflow_run_id) WHERE status = 'running' AND active_steps = 0",
        "CREATE INDEX workflow_step_undispatched_idx ON {schema}.workflow_step"
        " (dispatch_since, workflow_step_id) WHERE dispatch_since IS NOT NULL",
    ),
)

MIGRATIONS: Final[tuple[Migration, ...]] = (_WORKFLOWS, _AI, _CHANNELS, _ADDITIONS)
LATEST_VERSION: Final = MIGRATIONS[-1].version

_CREATE_SCHEMA: Final = sql.SQL("CREATE SCHEMA IF NOT EXISTS {schema}")
_CREATE_VERSIONS: Final = sql.SQL(
    "CREATE TABLE IF NOT EXISTS {versions} (version int PRIMARY KEY, checksum text NOT NULL)"
)
_CURRENT_VERSION: Final = sql.SQL("SELECT coalesce(max(version), 0) FROM {versions}")
_RECORD_VERSION: Final = sql.SQL(
    "INSERT INTO {versions} (version, checksum) VALUES (%(version)s, %(checksum)s)"
)
_XACT_LOCK: Final = sql.SQL("SELECT pg_advisory_xact_lock(%(key)s)")
_SESSION_LOCK: Final = sql.SQL("SELECT pg_advisory_lock(%(key)s)")
_SESSION_UNLOCK: Final = sql.SQL("SELECT pg_advisory_unlock(%(key)s)")


async def _fetch_one(
    conn: AsyncConnection[tuple[object, ...]],
    query: sql.SQL | sql.Composed,
    params: dict[str, object] | None = None,
) -> tuple[object, ...] | None:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query, params)
    return await cur.fetchone()


def _lock_key(schema: str) -> int:
    digest = hashlib.sha256(b"pikku-migrations\x00" + schema.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def stored_version(conn: AsyncConnection[tuple[object, ...]], schema: str) -> int:
    """The applied version, 0 for a namespace without a version table (no lock taken).

    One statement on an autocommit connection (the common case: every later `init()`).
    """
    query = _CURRENT_VERSION.format(versions=sql.Identifier(schema, "pikku_migrations"))
    try:
        if conn.autocommit:
            row = await _fetch_one(conn, query)
        else:
            async with conn.transaction():
                row = await _fetch_one(conn, query)
    except (errors.UndefinedTable, errors.InvalidSchemaName):
        return 0
    assert row is not None
    assert isinstance(row[0], int)
    return row[0]


async def _locked_version(conn: AsyncConnection[tuple[object, ...]], schema: str) -> int:
    """Create the schema and version table if needed and read the version (lock held)."""
    await conn.execute(_CREATE_SCHEMA.format(schema=sql.Identifier(schema)))
    versions = sql.Identifier(schema, "pikku_migrations")
    await conn.execute(_CREATE_VERSIONS.format(versions=versions))
    row = await _fetch_one(conn, _CURRENT_VERSION.format(versions=versions))
    assert row is not None
    assert isinstance(row[0], int)
    return row[0]


async def _apply(
    conn: AsyncConnection[tuple[object, ...]], schema: str, migration: Migration
) -> None:
    for statement in migration.statements:
        await conn.execute(sql.SQL(statement).format(schema=sql.Identifier(schema)))
    versions = sql.Identifier(schema, "pikku_migrations")
    await conn.execute(
        _RECORD_VERSION.format(versions=versions),
        {"version": migration.version, "checksum": migration_checksum(migration)},
    )
    logger.info("applied migration %d to schema %s", migration.version, schema)


async def migrate(
    conn: AsyncConnection[tuple[object, ...]],
    schema: str,
    migrations: tuple[Migration, ...] = MIGRATIONS,
) -> int:
    """Bring `schema` to the last of `migrations`; return the version found before.

    Each pending migration is applied under the namespace's advisory lock after re-reading the
    version, so concurrent callers apply it once. Raises: `SchemaMismatch` when the store is
    newer than `migrations`.
    """
    latest = migrations[-1].version
    found = await stored_version(conn, schema)
    if found > latest:
        raise SchemaMismatch(schema, found, latest)
    for migration in migrations:
        if migration.version <= found:
            continue
        if migration.transactional:
            async with conn.transaction():
                await conn.execute(_XACT_LOCK, {"key": _lock_key(schema)})
                current = await _locked_version(conn, schema)
                if current > latest:
                    raise SchemaMismatch(schema, current, latest)
                if current < migration.version:
                    await _apply(conn, schema, migration)
        else:
            await _apply_outside_transaction(conn, schema, migration, latest)
    return found


async def _apply_outside_transaction(
    conn: AsyncConnection[tuple[object, ...]], schema: str, migration: Migration, latest: int
) -> None:
    """A non-transactional step (`CREATE INDEX CONCURRENTLY`, …) under a session lock."""
    autocommit = conn.autocommit
    await conn.set_autocommit(True)
    try:
        await conn.execute(_SESSION_LOCK, {"key": _lock_key(schema)})
        try:
            current = await _locked_version(conn, schema)
            if current > latest:
                raise SchemaMismatch(schema, current, latest)
            if current < migration.version:
                await _apply(conn, schema, migration)
        finally:
            await conn.execute(_SESSION_UNLOCK, {"key": _lock_key(schema)})
    finally:
        await conn.set_autocommit(autocommit)
