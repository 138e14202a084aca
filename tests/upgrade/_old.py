"""What the upgrade tests and fixture generators share: the library of the commit before
spec 05 (from git), a probe that opens a store with it in its own interpreter, and the
scenario the PostgreSQL and Redis fixtures were written with (05 §5 item 36)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pytest

from pikku_storage import (
    ManualClock,
    Message,
    MessageRole,
    StalledRun,
    Storage,
    ToolCall,
    ToolResult,
    WorkflowVersion,
    WorkflowVersionStatus,
)

OLD_COMMIT: Final = "6c7f177"
ROOT: Final = Path(__file__).resolve().parents[2]
LATER: Final = datetime(2027, 1, 1, tzinfo=UTC)  # after every record of the scenario


def old_library(tmp_path: Path) -> Path:
    """`pikku_storage` of `OLD_COMMIT`, extracted under `tmp_path` (skips where the checkout
    lacks that history)."""
    git = shutil.which("git")
    if (
        git is None
        or subprocess.run(
            [git, "-C", str(ROOT), "cat-file", "-e", f"{OLD_COMMIT}^{{commit}}"], check=False
        ).returncode
    ):
        pytest.skip(f"commit {OLD_COMMIT} (the library before spec 05) is not in this checkout")
    target = tmp_path / "old"
    target.mkdir()
    archive = subprocess.run(
        [git, "-C", str(ROOT), "archive", OLD_COMMIT, "pikku_storage"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def open_with_old_library(old: Path, module: str, opener: str, *, version: int | None) -> str:
    """Run `async with <opener>:` with `from <module> import open_storage` of the old library
    in a fresh interpreter; its output: "SchemaMismatch …", "opened", or a traceback. With
    `version`, the probe first checks that it really loaded that schema version's library."""
    check = f"assert LATEST_VERSION == {version}, pikku_storage.__file__" if version else ""
    imports = f"from {module} import open_storage" + (", LATEST_VERSION" if version else "")
    script = textwrap.dedent(
        f"""
        import asyncio
        import pikku_storage
        from pikku_storage.errors import SchemaMismatch
        {imports}

        async def main():
            {check}
            try:
                async with {opener}:
                    print("opened")
            except SchemaMismatch as exc:
                print("SchemaMismatch", exc)

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": str(old), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        cwd=old,  # `-c` puts the working directory first on sys.path
        timeout=120,
    )
    return done.stdout + done.stderr


async def write_scenario(storage: Storage, clock: ManualClock) -> None:
    """Runs running with a pending step, running with a succeeded step, completed with a
    pending step; a version; threads of two owners with messages and an agent run."""
    wf = storage.workflows
    waiting = await wf.create_run("flow", {"n": 1}, graph_hash="g1")
    await wf.insert_step_state(waiting, "queued", "rpc.queued", {"d": 1})
    clock.advance(1)
    idle = await wf.create_run("flow", None)
    step = await wf.insert_step_state(idle, "done", "rpc.done", None, retries=2)
    await wf.set_step_running(step.step_id)
    await wf.set_step_result(step.step_id, {"ok": True})
    clock.advance(1)
    settled = await wf.create_run("other", None)
    await wf.insert_step_state(settled, "left", None, None)
    await wf.update_run_status(settled, "completed", output=1)
    await wf.upsert_workflow_version("flow", "g1", {"nodes": [1.5]}, "dsl")
    ai, state = storage.ai_storage, storage.ai_run_state
    for thread_id, resource in (("t1", "owner-alice"), ("t2", "owner-alice:p1"), ("t3", "bob")):
        clock.advance(1)
        await ai.create_thread(resource, thread_id=thread_id, title=thread_id)
        await ai.save_messages(
            thread_id,
            [
                Message(id=f"{thread_id}-u", role=MessageRole.USER, content="hi"),
                Message(
                    id=f"{thread_id}-a",
                    role=MessageRole.ASSISTANT,
                    content="ok",
                    tool_calls=[ToolCall(id=f"{thread_id}-c", name="tool", args={})],
                ),
                Message(
                    id=f"{thread_id}-r",
                    role=MessageRole.TOOL,
                    tool_results=[ToolResult(id=f"{thread_id}-c", name="tool", result="r")],
                ),
            ],
        )
    await state.create_run(agent_name="agent", thread_id="t1", resource_id="owner-alice")


async def check_scenario_migrated(storage: Storage) -> None:
    """What `write_scenario` left reads 05 §1's defaults after the upgrade, the sweepers find
    its running work, `owners` finds its threads, and the store keeps working."""
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
