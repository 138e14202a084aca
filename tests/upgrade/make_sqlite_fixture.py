"""Write tests/upgrade/fixtures/sqlite/v1.sql (an `iterdump()` of the file written) with the
library of commit 6c7f177 (before spec 05).

Run with the old package first on the path, so CI needs no git history:

    git archive 6c7f177 pikku_storage | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old python tests/upgrade/make_sqlite_fixture.py
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pikku_storage import ManualClock
from pikku_storage.records import Message, MessageRole
from pikku_storage.sqlite import open_storage

TARGET = Path(__file__).parent / "fixtures" / "sqlite" / "v1.sql"
START = datetime(2026, 1, 1, tzinfo=UTC)


async def main() -> None:
    """Runs (running with a pending step, running with a succeeded step, completed), a version,
    threads with messages and an agent run."""
    workdir = Path(tempfile.mkdtemp())
    database = workdir / "v1.db"
    clock = ManualClock(START)
    async with open_storage(f"sqlite:///{database}", clock=clock) as s:
        pending = await s.workflows.create_run("wf-pending", {"n": 1})
        await s.workflows.insert_step_state(pending, "s1", "rpc.one", {"a": 1})
        done_step = await s.workflows.create_run("wf-idle", None)
        step = await s.workflows.insert_step_state(done_step, "s1", None, None)
        await s.workflows.set_step_running(step.step_id)
        await s.workflows.set_step_result(step.step_id, {"ok": True})
        finished = await s.workflows.create_run("wf-done", None)
        await s.workflows.update_run_status(finished, "completed", output=1)
        await s.workflows.upsert_workflow_version("wf-pending", "h1", {"nodes": []}, "src")
        await s.ai_storage.create_thread("owner-alice:p1", thread_id="th-alice", title="a")
        await s.ai_storage.create_thread("owner-bob", thread_id="th-bob", title="b")
        await s.ai_storage.save_messages(
            "th-alice", [Message(id="m1", role=MessageRole.USER, content="hi", created_at=START)]
        )
        await s.ai_run_state.create_run(
            agent_name="agent", thread_id="th-alice", resource_id="owner-alice:p1"
        )
    with contextlib.closing(sqlite3.connect(database)) as conn:
        TARGET.write_text("".join(f"{line}\n" for line in conn.iterdump()))
    shutil.rmtree(workdir)
    print(TARGET, pending, done_step, finished)


if __name__ == "__main__":
    asyncio.run(main())
