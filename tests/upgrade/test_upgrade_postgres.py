"""A PostgreSQL schema written at version 3 (the library of commit 6c7f177) opens at version 4.

The fixture `fixtures/postgres/version3.sql` is a `pg_dump` of a schema filled through the old
library by `make_postgres_fixture.py`; it is loaded under a fresh schema, then `init()`
migrates it. Spec: 05 D14, §4, §5 item 36.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from pikku_storage import (
    ManualClock,
    SchemaMismatch,
    StalledRun,
    Storage,
    WorkflowVersion,
    WorkflowVersionStatus,
)
from pikku_storage.postgres import LATEST_VERSION, open_storage
from pikku_storage.postgres._migrations import MIGRATIONS, migrate

FIXTURE: Final = Path(__file__).parent / "fixtures" / "postgres" / "version3.sql"
PLACEHOLDER: Final = "__SCHEMA__"
OLD_COMMIT: Final = "6c7f177"
ROOT: Final = Path(__file__).resolve().parents[2]
LATER: Final = datetime(2027, 1, 1, tzinfo=UTC)

Conn = psycopg.AsyncConnection[TupleRow]

# The markers of migration 4 beside the values recomputed from the steps (05 §4).
_MARKERS: Final = sql.SQL(
    "SELECT r.workflow, r.status, r.active_steps, r.activity_at"
    " = greatest(r.updated_at, (SELECT max(s.updated_at) FROM {steps} AS s"
    " WHERE s.workflow_run_id = r.workflow_run_id)),"
    " ARRAY(SELECT s.step_name || ':' || (s.dispatch_since IS NOT DISTINCT FROM s.updated_at)"
    " || ':' || (s.dispatch_since IS NULL) FROM {steps} AS s"
    " WHERE s.workflow_run_id = r.workflow_run_id)"
    " FROM {runs} AS r ORDER BY r.seq"
)


@pytest.fixture
async def admin(pikku_postgres_url: str) -> AsyncIterator[Conn]:
    conn = await psycopg.AsyncConnection.connect(pikku_postgres_url, autocommit=True)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def old_schema(pikku_postgres_url: str) -> AsyncIterator[str]:
    """A fresh schema holding the fixture (version 3), dropped afterwards."""
    schema = f"pikku_upg_{secrets.token_hex(4)}"
    assert re.fullmatch(r"[a-z0-9_]+", schema)  # spliced unquoted, as pg_dump wrote it
    script = FIXTURE.read_text("utf-8").replace(PLACEHOLDER, schema)
    async with await psycopg.AsyncConnection.connect(pikku_postgres_url, autocommit=True) as conn:
        await conn.execute(script.encode())  # one simple-protocol script: the dump as written
    try:
        yield schema
    finally:
        async with await psycopg.AsyncConnection.connect(
            pikku_postgres_url, autocommit=True
        ) as conn:
            await conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )


async def _versions(admin: Conn, schema: str) -> list[int]:
    table = sql.Identifier(schema, "pikku_migrations")
    cur = await admin.execute(sql.SQL("SELECT version FROM {} ORDER BY 1").format(table))
    return [int(row[0]) for row in await cur.fetchall()]


async def _check_migrated(storage: Storage) -> None:
    wf, runs, console = storage.workflows, storage.workflow_runs, storage.agent_runs
    listed = await runs.list_runs()
    assert len(listed) == 3
    by_workflow = {(r.workflow, r.status.value): r for r in listed}
    for run in listed:  # 05 §1 defaults on old records
        assert run.deterministic is False
        assert run.planned_steps == []
        assert run.wire.parent_step_id is None
        assert run.wire.pikku_user_id is None
    waiting = next(r for r in listed if r.workflow == "flow" and r.input == {"n": 1})
    idle = next(r for r in listed if r.workflow == "flow" and r.input is None)
    step = await wf.get_step_state(waiting.id, "queued")
    assert (step.rpc_name, step.from_step_name, step.child_run_id) == ("rpc.queued", None, None)
    history = await runs.get_run_history(idle.id)
    assert [(h.rpc_name, h.from_step_name, h.child_run_id) for h in history] == [
        ("rpc.done", None, None)
    ]
    assert await wf.get_workflow_version("flow", "g1") == WorkflowVersion(
        graph={"nodes": [1.5]}, source="dsl", status=WorkflowVersionStatus.ACTIVE
    )
    # the sweepers find the old running work: both running runs have no step in flight
    # (a pending step is not), and the waiting run's pending step is undispatched
    done = (await runs.get_run_steps(idle.id))[0]
    assert await wf.find_stalled_runs(older_than=LATER) == [
        StalledRun(run_id=waiting.id, workflow="flow", idle_since=step.updated_at),
        StalledRun(run_id=idle.id, workflow="flow", idle_since=done.updated_at),
    ]
    pending = await wf.find_undispatched_steps(older_than=LATER)
    assert [(p.run_id, p.step_name, p.rpc_name, p.pending_since) for p in pending] == [
        (waiting.id, "queued", "rpc.queued", step.updated_at)
    ]
    assert ("other", "completed") in by_workflow  # its pending step is not work
    # the owners listing finds the old threads
    owned = await console.list_threads(owners=["owner-alice"])
    assert [t.id for t in owned] == ["t2", "t1"]
    assert [t.id for t in await console.list_threads(owners=["bob"])] == ["t3"]
    messages = await storage.ai_storage.get_messages("t1")
    assert [(m.reasoning_content, m.interrupted, m.undelivered) for m in messages] == [
        (None, False, False)
    ] * 3
    assert [r.undelivered for r in messages[2].tool_results] == [False]
    agent_runs = await console.get_thread_runs("t1")
    assert await storage.ai_run_state.get_scores(agent_runs[0].run_id) == []
    # the migrated store keeps working: a claim un-stalls the run and dispatches the step
    await wf.claim_step(step.step_id)
    assert await wf.find_undispatched_steps(older_than=LATER) == []
    assert await wf.find_stalled_runs(older_than=LATER + timedelta(days=1)) == [
        StalledRun(run_id=idle.id, workflow="flow", idle_since=done.updated_at)
    ]


async def test_a_version_3_schema_migrates_on_init_with_backfilled_markers(
    pikku_postgres_url: str, old_schema: str, admin: Conn
) -> None:
    """05 §5 item 36 [SQL] on PostgreSQL: old records read 05 §1's defaults, the migration
    backfills 05 §4's markers (D14), the sweepers find the old running runs and pending steps,
    `owners` finds the old threads."""
    assert await _versions(admin, old_schema) == [1, 2, 3]
    clock = ManualClock(datetime(2026, 6, 1, tzinfo=UTC))
    async with open_storage(pikku_postgres_url, schema=old_schema, clock=clock) as storage:
        assert await _versions(admin, old_schema) == list(range(1, LATEST_VERSION + 1))
        query = _MARKERS.format(
            steps=sql.Identifier(old_schema, "workflow_step"),
            runs=sql.Identifier(old_schema, "workflow_runs"),
        )
        cur = await admin.execute(query)
        # per run: workflow, status, active_steps, activity_at recomputed, and per step
        # "name:dispatch_since = updated_at:dispatch_since IS NULL"
        assert await cur.fetchall() == [
            ("flow", "running", 0, True, ["queued:true:false"]),
            ("flow", "running", 0, True, ["done:false:true"]),
            ("other", "completed", 0, True, ["left:false:true"]),
        ]
        await _check_migrated(storage)
    async with open_storage(pikku_postgres_url, schema=old_schema, clock=clock) as storage:
        assert len(await storage.workflow_runs.list_runs()) == 3  # a second init: nothing to do
    assert await _versions(admin, old_schema) == list(range(1, LATEST_VERSION + 1))


async def test_the_version_3_migrator_refuses_the_migrated_schema(
    pikku_postgres_url: str, old_schema: str, admin: Conn
) -> None:
    """00 §5: a library that knows only versions 1 to 3 (its `migrate()` with the shipped
    migrations up to 3, pinned unchanged) raises `SchemaMismatch` on the migrated schema."""
    async with open_storage(pikku_postgres_url, schema=old_schema, clock=ManualClock()):
        pass
    with pytest.raises(SchemaMismatch):
        await migrate(admin, old_schema, MIGRATIONS[:3])


def _old_library(tmp_path: Path) -> Path:
    """The library of the previous schema version, from git (skipped where history is missing)."""
    git = shutil.which("git")
    if (
        git is None
        or subprocess.run(
            [git, "-C", str(ROOT), "cat-file", "-e", f"{OLD_COMMIT}^{{commit}}"], check=False
        ).returncode
    ):
        pytest.skip(f"commit {OLD_COMMIT} (the version-3 library) is not in this checkout")
    target = tmp_path / "old"
    target.mkdir()
    archive = subprocess.run(
        [git, "-C", str(ROOT), "archive", OLD_COMMIT, "pikku_storage"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


async def test_the_old_library_raises_schema_mismatch_on_the_migrated_schema(
    pikku_postgres_url: str, old_schema: str, tmp_path: Path
) -> None:
    """05 §5 item 36 / 00 §5: the library of 6c7f177 itself, in another process, opening the
    migrated schema gets `SchemaMismatch` from `init()`."""
    async with open_storage(pikku_postgres_url, schema=old_schema, clock=ManualClock()):
        pass
    old = _old_library(tmp_path)
    script = textwrap.dedent(
        f"""
        import asyncio
        import pikku_storage
        from pikku_storage import SchemaMismatch
        from pikku_storage.postgres import LATEST_VERSION, open_storage

        async def main():
            assert LATEST_VERSION == 3, pikku_storage.__file__
            try:
                async with open_storage({pikku_postgres_url!r}, schema={old_schema!r}):
                    print("opened")
            except SchemaMismatch as exc:
                print("SchemaMismatch", exc)

        asyncio.run(main())
        """
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        env={"PYTHONPATH": str(old), "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert stdout.decode().startswith("SchemaMismatch"), (stdout + stderr).decode()
