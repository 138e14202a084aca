"""Two OS processes on one SQLite file: claims, create-only conflicts and insert-if-absent hold
across processes (01 §5.4: "claims, conflicts and upserts still hold across processes")."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TypedDict

import pytest

from pikku_storage import Storage
from pikku_storage.records import StepStatus

pytestmark = pytest.mark.pikku_backend("sqlite")

COUNT = 40


class _Report(TypedDict):
    """What one worker process prints: the steps, names and versions it won."""

    claimed: list[str]
    inserted: list[int]
    upserted: list[int]


# Each process opens the file, waits until both are ready (a file barrier), then races the
# other over the same steps, step names and versions, and prints what it won.
WORKER = """
import asyncio, json, sys
from pathlib import Path
from pikku_storage import open_storage
from pikku_storage.errors import ConflictError

async def main(url, role, barrier, run_id, step_ids, count):
    async with open_storage(url) as storage:
        wf = storage.workflows
        Path(barrier, role).touch()
        while len(list(Path(barrier).iterdir())) < 2:
            await asyncio.sleep(0.01)
        claimed, inserted, upserted = [], [], []
        # The two processes walk in opposite directions, so they meet in the middle.
        order = range(count) if role == "first" else reversed(range(count))
        for index in order:
            if await wf.claim_step(step_ids[index]) is not None:
                claimed.append(step_ids[index])
            try:
                await wf.insert_step_state(run_id, f"race-{index}", None, role)
                inserted.append(index)
            except ConflictError:
                pass
            if await wf.upsert_workflow_version(f"v{index}", "h", {"by": role}, "dsl"):
                upserted.append(index)
        print(json.dumps({"claimed": claimed, "inserted": inserted, "upserted": upserted}))

url, role, barrier, run_id, step_ids, count = sys.argv[1:]
asyncio.run(main(url, role, barrier, run_id, json.loads(step_ids), int(count)))
"""


@pytest.mark.real_time  # the workers poll a file barrier every 10 ms
async def test_claims_conflicts_and_versions_hold_across_two_processes(
    pikku_storage: Storage,
    pikku_storage_open_args: tuple[str, dict[str, object]],
    tmp_path: Path,
) -> None:
    url, options = pikku_storage_open_args
    assert options == {}
    wf = pikku_storage.workflows
    run_id = await wf.create_run("race", None)
    step_ids = [
        (await wf.insert_step_state(run_id, f"s{i}", None, None)).step_id for i in range(COUNT)
    ]
    barrier = tmp_path / "barrier"
    barrier.mkdir()

    async def worker(role: str) -> _Report:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            url,
            role,
            str(barrier),
            run_id,
            json.dumps(step_ids),
            str(COUNT),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        result: _Report = json.loads(out.decode())
        return result

    first, second = await asyncio.gather(worker("first"), worker("second"))
    if os.environ.get("PIKKU_SHOW_RACE"):
        print({"first": first, "second": second})

    # Claims: every step claimed by exactly one process; one `running` attempt each.
    assert sorted(first["claimed"] + second["claimed"], key=str) == sorted(step_ids)
    assert not set(first["claimed"]) & set(second["claimed"])
    steps = await pikku_storage.workflow_runs.get_run_steps(run_id)
    claimed = [step for step in steps if step.step_name.startswith("s")]
    assert all(step.status is StepStatus.RUNNING for step in claimed)
    history = await pikku_storage.workflow_runs.get_run_history(run_id)
    assert len([entry for entry in history if entry.step_name.startswith("s")]) == COUNT

    # Create-only inserts: each name stored once, by the process that reported success.
    assert sorted(first["inserted"] + second["inserted"]) == list(range(COUNT))
    for index in range(COUNT):
        state = await wf.get_step_state(run_id, f"race-{index}")
        assert state.attempt_count == 1
    winners = {index: "first" for index in first["inserted"]}
    winners |= {index: "second" for index in second["inserted"]}
    for step in steps:
        if step.step_name.startswith("race-"):
            assert step.data == winners[int(step.step_name.removeprefix("race-"))]

    # Insert-if-absent: exactly one True per version, and its graph is the one stored.
    assert sorted(first["upserted"] + second["upserted"]) == list(range(COUNT))
    for index in range(COUNT):
        version = await wf.get_workflow_version(f"v{index}", "h")
        assert version is not None
        expected = "first" if index in first["upserted"] else "second"
        assert version.graph == {"by": expected}
