"""05 §5 item 36 on SQLite: a store written by the library before spec 05 (migration 1 only,
fixture made by `make_sqlite_fixture.py` with commit 6c7f177) upgrades to migration 2 at init:
old records read 05 §1's defaults, the backfilled markers feed both sweepers, owners finds the
old threads, and the old library refuses the migrated store with `SchemaMismatch`."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pikku_storage import ManualClock
from pikku_storage.records import StepStatus, WorkflowStatus, WorkflowVersionStatus
from pikku_storage.sqlite import open_storage
from tests.upgrade._old import old_library, open_with_old_library

FIXTURE = Path(__file__).parent / "fixtures" / "sqlite" / "v1.sql"  # `iterdump()` of the old file
LATER = datetime(2026, 1, 2, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "v1.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(FIXTURE.read_text())
    return path


async def test_old_sqlite_store_upgrades_with_defaults_markers_and_owners(store: Path) -> None:
    """05 §5 item 36 (sqlite): defaults, sweepers and owners on data of the old library."""
    async with open_storage(f"sqlite:///{store}", clock=ManualClock(LATER)) as s:
        runs = {run.workflow: run for run in await s.workflow_runs.list_runs()}
        assert set(runs) == {"wf-pending", "wf-idle", "wf-done"}
        for run in runs.values():
            assert (run.deterministic, run.planned_steps) == (False, [])
            assert (run.wire.parent_step_id, run.wire.pikku_user_id) == (None, None)
        pending = runs["wf-pending"]
        step = await s.workflows.get_step_state(pending.id, "s1")
        assert step is not None
        assert (step.rpc_name, step.from_step_name, step.child_run_id) == ("rpc.one", None, None)
        assert step.status is StepStatus.PENDING
        history = await s.workflow_runs.get_run_history(pending.id)
        assert [entry.child_run_id for entry in history] == [None]
        version = await s.workflows.get_workflow_version("wf-pending", "h1")
        assert version is not None
        assert version.status is WorkflowVersionStatus.ACTIVE

        older = LATER + timedelta(days=1)
        stalled = await s.workflows.find_stalled_runs(older_than=older)
        assert {r.run_id for r in stalled} == {pending.id, runs["wf-idle"].id}
        assert runs["wf-done"].status is WorkflowStatus.COMPLETED
        undispatched = await s.workflows.find_undispatched_steps(older_than=older)
        assert [(u.run_id, u.step_name, u.rpc_name) for u in undispatched] == [
            (pending.id, "s1", "rpc.one")
        ]

        threads = await s.agent_runs.list_threads(owners=["owner-alice"])
        assert [t.id for t in threads] == ["th-alice"]
        messages = await s.ai_storage.get_messages("th-alice")
        assert [(m.id, m.reasoning_content, m.interrupted) for m in messages] == [
            ("m1", None, False)
        ]
        (agent_run,) = await s.ai_run_state.get_runs_by_thread("th-alice")
        assert await s.ai_run_state.get_scores(agent_run.run_id) == []
        # The widened CHECK (a rebuilt table on SQLite) takes the new member.
        await s.ai_run_state.update_run(agent_run.run_id, status="interrupted")


def test_old_library_refuses_the_migrated_store(store: Path, tmp_path: Path) -> None:
    """05 §5 item 36 (sqlite): the library of 6c7f177 raises `SchemaMismatch` at init."""

    async def upgrade() -> None:
        async with open_storage(f"sqlite:///{store}", clock=ManualClock(LATER)):
            pass

    asyncio.run(upgrade())
    opener = f"open_storage({f'sqlite:///{store}'!r})"
    verdict = open_with_old_library(
        old_library(tmp_path), "pikku_storage.sqlite", opener, version=None
    )
    assert verdict.startswith("SchemaMismatch"), verdict
