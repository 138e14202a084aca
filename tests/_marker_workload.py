"""The racing workload of the sweepers' marker tests (05 §5 item 34), shared by the
PostgreSQL and SQLAlchemy white-box tests."""

from __future__ import annotations

import random

from pikku_storage.interfaces.workflows import WorkflowService

__all__ = ["racer"]


async def racer(
    wf: WorkflowService, run_id: str, names: list[str], ids: list[str], seed: int
) -> None:
    """A few writes of every kind on the run's steps, in an order of its own."""
    rng = random.Random(seed)
    for _ in range(4):
        index = rng.randrange(len(names))
        step_id, name = ids[index], names[index]
        match rng.randrange(10):
            case 0:
                await wf.claim_step(step_id)
            case 1:
                await wf.claim_step_for_execution(run_id, name, "rpc.fn", max_attempts=4)
            case 2:
                await wf.set_step_result(step_id, {"ok": seed})
            case 3:
                await wf.set_step_error(step_id, ValueError("boom"))
            case 4:
                await wf.create_retry_attempt(step_id, rng.choice(["pending", "running"]))
            case 5:
                await wf.set_step_scheduled(step_id)
            case 6:
                await wf.set_step_child_run_id(step_id, f"child-{seed}")
            case 7:
                await wf.set_branch_taken(step_id, f"b{seed}")
            case 8:
                await wf.update_run_status(run_id, rng.choice(["running", "suspended"]))
            case _:
                await wf.update_run_state(run_id, "k", seed)
