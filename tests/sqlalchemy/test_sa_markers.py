"""The sweepers' markers under concurrent writers on SQLAlchemy (05 §4, §5 item 34, white-box).

`active_steps`, `activity_at` and `dispatch_since` are maintained inside every step and run
write; after two instances race transitions, claims, retries and status changes on parallel
steps of one run they must equal the values recomputed from the rows, and the sweepers must
agree with their predicates. The same workload as tests/postgres/test_pg_markers.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Final

import pytest
from sqlalchemy import Connection, select

from pikku_storage import ManualClock, Storage
from pikku_storage.records import StalledRun, UndispatchedStep
from pikku_testing._types import StorageFactory
from tests._marker_workload import racer

pytestmark = pytest.mark.pikku_backends("sqlite", "sqlalchemy-postgres", "sqlalchemy-mysql")

STEPS: Final = 6
RACERS: Final = 20
LATER: Final = datetime(2100, 1, 1, tzinfo=UTC)
IN_FLIGHT: Final = {"running", "scheduled", "suspended"}


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def _markers(storage: Storage, run_id: str) -> tuple[object, ...]:
    """(active_steps, activity_at, recomputed active, recomputed latest, wrong dispatch count)."""
    db = storage.workflows._db  # type: ignore[attr-defined]  # white-box
    runs, steps = db.tables.workflow_runs, db.tables.workflow_steps

    def body(conn: Connection) -> tuple[object, ...]:
        run = conn.execute(
            select(runs.c.status, runs.c.active_steps, runs.c.activity_at, runs.c.updated_at).where(
                runs.c.workflow_run_id == run_id
            )
        ).one()
        rows = conn.execute(
            select(steps.c.status, steps.c.updated_at, steps.c.dispatch_since).where(
                steps.c.workflow_run_id == run_id
            )
        ).all()
        active = sum(1 for row in rows if row.status in IN_FLIGHT)
        latest = max([_utc(run.updated_at), *(_utc(row.updated_at) for row in rows)])  # type: ignore[type-var]
        wrong = sum(
            1
            for row in rows
            if _utc(row.dispatch_since)
            != (
                _utc(row.updated_at)
                if row.status == "pending" and run.status == "running"
                else None
            )
        )
        return run.active_steps, _utc(run.activity_at), active, latest, wrong

    result: tuple[object, ...] = await db.read(body)
    return result


async def test_markers_equal_values_recomputed_from_steps_after_concurrent_writes(
    pikku_storage: Storage, pikku_storage_factory: StorageFactory, pikku_clock: ManualClock
) -> None:
    """05 §5 Sweepers 34 (white-box): two instances, 20 concurrent writers per round; every
    round ends with markers equal to the recomputed values; the sweepers then agree with
    their predicates."""
    storage = pikku_storage
    other = await pikku_storage_factory()
    instances = [storage.workflows, other.workflows]
    wf = storage.workflows
    run_id = await wf.create_run("wf", None)
    names = [f"s{index}" for index in range(STEPS)]
    ids = [(await wf.insert_step_state(run_id, name, "rpc.fn", None)).step_id for name in names]
    for round_ in range(3):
        # one instant per round, so "the latest updated_at" is defined whatever the commit order
        pikku_clock.advance(1)
        await asyncio.gather(
            *(
                racer(instances[index % 2], run_id, names, ids, round_ * RACERS + index)
                for index in range(RACERS)
            )
        )
        active, activity, recomputed_active, latest, wrong_dispatch = await _markers(
            storage, run_id
        )
        assert (active, activity, wrong_dispatch) == (recomputed_active, latest, 0)
        assert activity == pikku_clock.now()

    pikku_clock.advance(1)
    await wf.update_run_status(run_id, "running")
    steps = await storage.workflow_runs.get_run_steps(run_id)
    stalled = await wf.find_stalled_runs(older_than=LATER)
    if any(step.status.value in IN_FLIGHT for step in steps):
        assert stalled == []
    else:
        assert stalled == [StalledRun(run_id=run_id, workflow="wf", idle_since=pikku_clock.now())]
    pending = sorted(
        (s.updated_at, s.step_id, s.step_name) for s in steps if s.status.value == "pending"
    )
    assert await wf.find_undispatched_steps(older_than=LATER) == [
        UndispatchedStep(
            run_id=run_id, step_id=step_id, step_name=name, rpc_name="rpc.fn", pending_since=at
        )
        for at, step_id, name in pending
    ]
    for step_id in ids:
        pikku_clock.advance(0.001)
        await wf.set_step_result(step_id, None)
    assert await wf.find_stalled_runs(older_than=LATER) == [
        StalledRun(run_id=run_id, workflow="wf", idle_since=pikku_clock.now())
    ]
    assert await wf.find_undispatched_steps(older_than=LATER) == []
    assert (await _markers(storage, run_id))[0] == 0
