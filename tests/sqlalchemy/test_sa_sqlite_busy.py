"""SQLite across connections: a write waits for the file's write lock up to `busy_timeout`
and then succeeds; only when the lock stays taken for the whole timeout is it
`StorageUnavailable` (issue 11 item 2; 00 §6)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from pikku_storage import ManualClock
from pikku_storage.errors import InvalidValue, StorageUnavailable
from pikku_storage.sqlite import open_storage


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


@pytest.mark.real_time  # one lock held for 0.2 s
async def test_a_write_waits_for_the_lock_and_then_succeeds(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    async with open_storage(f"sqlite:///{path}", clock=ManualClock()) as storage:
        run_id = await storage.workflows.create_run("wf", None)
        other = _hold_write_lock(path)
        try:
            write = asyncio.create_task(storage.workflows.update_run_state(run_id, "k", 1))
            await asyncio.sleep(0.2)
            assert not write.done()  # it waits for the lock instead of failing
        finally:
            other.execute("COMMIT")
            other.close()
        await write
        assert await storage.workflows.get_run_state(run_id) == {"k": 1}


@pytest.mark.real_time  # the busy timeout is 0.1 s
async def test_a_lock_held_past_the_busy_timeout_is_storage_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    async with open_storage(f"sqlite:///{path}", clock=ManualClock(), busy_timeout=0.1) as storage:
        run_id = await storage.workflows.create_run("wf", None)
        other = _hold_write_lock(path)
        try:
            with pytest.raises(StorageUnavailable, match="busy timeout"):
                await storage.workflows.update_run_state(run_id, "k", 1)
            # Reads do not need the write lock (WAL).
            assert await storage.workflows.get_run_state(run_id) == {}
        finally:
            other.execute("COMMIT")
            other.close()
        await storage.workflows.update_run_state(run_id, "k", 2)
        assert await storage.workflows.get_run_state(run_id) == {"k": 2}


@pytest.mark.parametrize("value", ["NORMAL ", "off", 1, None])
def test_a_bad_synchronous_value_is_invalid_value(tmp_path: Path, value: object) -> None:
    with pytest.raises(InvalidValue, match="synchronous"):
        open_storage(f"sqlite:///{tmp_path / 'x.db'}", synchronous=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "expected"), [("normal", 1), ("full", 2), ("FULL", 2)])
async def test_synchronous_sets_the_pragma(tmp_path: Path, value: str, expected: int) -> None:
    """`synchronous="normal"` is the default under WAL; `"full"` fsyncs every commit."""
    async with open_storage(f"sqlite:///{tmp_path / 'x.db'}", synchronous=value) as storage:
        db = storage.workflows._db  # type: ignore[attr-defined]  # white-box
        found = await db.connection(
            lambda conn: conn.exec_driver_sql("PRAGMA synchronous").scalar_one()
        )
        assert found == expected
