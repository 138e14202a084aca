"""White-box: the memory workflow store's spec 05 §4 markers (`active_steps`, `activity_at`,
`dispatch_since`) and its sorted sweeper lists equal values recomputed from the steps after
random interleavings of every step and run write (05 §5 item 34, the white-box half)."""

from __future__ import annotations

import random

import pytest

from pikku_storage.clock import TEST_START, ManualClock
from pikku_storage.interfaces.workflows import ACTIVE_STATUSES
from pikku_storage.memory import InMemoryWorkflowRunService, InMemoryWorkflowService
from pikku_storage.memory._workflow_store import WorkflowStore
from pikku_storage.records import StepStatus, WorkflowStatus


def _check(store: WorkflowStore) -> None:
    stalled = []
    undispatched = []
    for run in store.runs.values():
        steps = list(run.steps.values())
        assert run.active_steps == sum(s.attempts[-1].status in ACTIVE_STATUSES for s in steps)
        assert run.activity_at >= max([run.updated_at, *(s.updated_at for s in steps)])
        running = run.status is WorkflowStatus.RUNNING
        if running and run.active_steps == 0:
            stalled.append((run.activity_at, run.id))
        for step in steps:
            pending = step.attempts[-1].status is StepStatus.PENDING
            assert step.dispatch_since == (step.updated_at if pending and running else None)
            if step.dispatch_since is not None:
                undispatched.append((step.dispatch_since, step.id))
    assert store._stalled == sorted(stalled)
    assert store._undispatched == sorted(undispatched)


@pytest.mark.parametrize("seed", range(5))
async def test_markers_match_the_steps_after_random_writes(seed: int) -> None:
    rng = random.Random(seed)
    clock = ManualClock(TEST_START)
    store = WorkflowStore()
    wf = InMemoryWorkflowService(store, clock=clock)
    runs_service = InMemoryWorkflowRunService(store, clock=clock)
    run_ids = [await wf.create_run("wf", None) for _ in range(3)]
    steps = []
    for index in range(8):
        run_id = run_ids[index % 3]
        steps.append((run_id, await wf.insert_step_state(run_id, f"s{index}", None, None)))
    for _ in range(300):
        clock.advance(rng.choice([0, 0.001, 1, -1]))
        run_id, step = rng.choice(steps)
        kind = rng.randrange(11)
        if kind == 0:
            await wf.claim_step_for_execution(run_id, f"s{steps.index((run_id, step))}", None)
        elif kind == 1:
            await wf.set_step_result(step.step_id, 1)
        elif kind == 2:
            await wf.set_step_error(step.step_id, {"message": "m"})
        elif kind == 3:
            await wf.create_retry_attempt(step.step_id, rng.choice(["pending", "running"]))
        elif kind == 4:
            await wf.claim_step(step.step_id)
        elif kind == 5:
            await wf.set_step_scheduled(step.step_id)
        elif kind == 6:
            await wf.set_branch_taken(step.step_id, "b")
        elif kind == 7:
            await wf.set_step_child_run_id(step.step_id, "c")
        elif kind == 8:
            await wf.update_run_status(run_id, rng.choice(list(WorkflowStatus)))
        elif kind == 9:
            await wf.update_run_state(run_id, "k", 1)
        else:
            await wf.set_step_running(step.step_id)
        _check(store)
    assert await runs_service.delete_run(run_ids[0])
    _check(store)
    assert all(key[1] != run_ids[0] for key in store._stalled)
