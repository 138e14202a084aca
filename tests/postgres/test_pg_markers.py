"""The sweepers' markers under concurrent writers (05 §4, §5 item 34, white-box).

`active_steps`, `activity_at` and `dispatch_since` are maintained inside every step and run
write; after two instances race transitions, claims, retries and status changes on parallel
steps of one run they must equal the values recomputed from the steps, and the sweepers must
agree with their predicates. The keyset bound of a non-canonical `after` id is checked
against its definition.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from pikku_storage import ManualClock, Storage
from pikku_storage.postgres._keyset import MAX_UUID, after_bound, uuid_floor
from pikku_storage.records import StalledRun, UndispatchedStep
from pikku_testing._types import StorageFactory
from tests._marker_workload import racer

pytestmark = pytest.mark.pikku_backend("postgres")

Conn = psycopg.AsyncConnection[TupleRow]

STEPS: Final = 6
RACERS: Final = 20
LATER: Final = datetime(2100, 1, 1, tzinfo=UTC)
_CANONICAL: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# Each run's markers beside the values recomputed from its steps, and the steps whose
# dispatch clock disagrees with "updated_at while pending in a running run".
_MARKERS: Final = sql.SQL(
    "SELECT r.active_steps, r.activity_at,"
    " (SELECT count(*) FROM {steps} AS s WHERE s.workflow_run_id = r.workflow_run_id"
    " AND s.status IN ('running', 'scheduled', 'suspended')),"
    " greatest(r.updated_at, (SELECT max(s.updated_at) FROM {steps} AS s"
    " WHERE s.workflow_run_id = r.workflow_run_id)),"
    " (SELECT count(*) FROM {steps} AS s WHERE s.workflow_run_id = r.workflow_run_id"
    " AND s.dispatch_since IS DISTINCT FROM CASE WHEN s.status = 'pending'"
    " AND r.status = 'running' THEN s.updated_at END)"
    " FROM {runs} AS r WHERE r.workflow_run_id = %(run_id)s"
)


def _schema(storage: Storage) -> str:
    return str(storage.workflows._db.schema)  # type: ignore[attr-defined]  # white-box


async def _markers(admin: Conn, schema: str, run_id: str) -> tuple[object, ...]:
    query = _MARKERS.format(
        steps=sql.Identifier(schema, "workflow_step"), runs=sql.Identifier(schema, "workflow_runs")
    )
    cur = await admin.execute(query, {"run_id": run_id})
    row = await cur.fetchone()
    assert row is not None
    return tuple(row)


async def test_markers_equal_values_recomputed_from_steps_after_concurrent_writes(
    storage: Storage,
    pikku_storage_factory: StorageFactory,
    pikku_clock: ManualClock,
    admin: Conn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """05 §5 Sweepers 34 (white-box): two instances, 20 concurrent writers per round; every
    round ends with markers equal to the recomputed values, and no deadlock was retried (the
    run row is always locked before step rows)."""
    caplog.set_level(logging.WARNING, logger="pikku_storage.postgres._connection")
    other = await pikku_storage_factory()
    instances = [storage.workflows, other.workflows]
    wf, schema = storage.workflows, _schema(storage)
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
            admin, schema, run_id
        )
        assert (active, activity, wrong_dispatch) == (recomputed_active, latest, 0)
        assert activity == pikku_clock.now()
    assert "retrying after 40P01" not in caplog.text

    # with the run running, the sweepers agree with their predicates
    pikku_clock.advance(1)
    await wf.update_run_status(run_id, "running")
    steps = await storage.workflow_runs.get_run_steps(run_id)
    stalled = await wf.find_stalled_runs(older_than=LATER)
    in_flight = [s for s in steps if s.status.value in {"running", "scheduled", "suspended"}]
    if in_flight:
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
    # settle every step: the run is stalled from the last write on
    for step_id in ids:
        pikku_clock.advance(0.001)
        await wf.set_step_result(step_id, None)
    assert await wf.find_stalled_runs(older_than=LATER) == [
        StalledRun(run_id=run_id, workflow="wf", idle_since=pikku_clock.now())
    ]
    assert await wf.find_undispatched_steps(older_than=LATER) == []
    assert (await _markers(admin, schema, run_id))[0] == 0


def _next_uuid(text: str) -> str | None:
    value = uuid.UUID(text).int + 1
    return None if value >= 1 << 128 else str(uuid.UUID(int=value))


@pytest.mark.parametrize("seed", range(4))
def test_uuid_floor_is_the_largest_canonical_uuid_at_or_below_any_text(seed: int) -> None:
    """Keyset cursors: `after` ids need not be canonical (05 §3.5 "by key comparison")."""
    rng = random.Random(seed)
    alphabet = "0123456789abcdef-/:g.AF~"
    texts = ["", "-", "0", "g", "ffffffff-ffff-ffff-ffff-ffffffffffffx", MAX_UUID, "a" * 40]
    for _ in range(2000):
        base = str(uuid.UUID(int=rng.getrandbits(128)))
        cut = rng.randrange(0, 38)
        noise = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 4)))
        texts.append(base[:cut] + noise)
    for text in texts:
        floor = uuid_floor(text)
        if floor is None:
            assert text < "00000000-0000-0000-0000-000000000000"
            continue
        assert _CANONICAL.fullmatch(floor), (text, floor)
        assert floor <= text, (text, floor)
        after = _next_uuid(floor)
        assert after is None or after > text, (text, floor)


def test_after_bound_of_a_text_below_every_uuid_takes_the_whole_instant() -> None:
    """`(t, id) > bound` keeps every id at the cursor's instant when no UUID sorts below it."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert after_bound(at, "-") == (at - timedelta(microseconds=1), MAX_UUID)
    assert after_bound(at, "a") == (at, "9fffffff-ffff-ffff-ffff-ffffffffffff")
    assert after_bound(datetime.min.replace(tzinfo=UTC), "") is None
