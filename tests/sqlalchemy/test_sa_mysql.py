"""MySQL/MariaDB specifics: deadlocks are retried inside the backend (`RETRY_POLICY.attempts`
runs at most, then `StorageUnavailable`), run locks are `GET_LOCK` names of at most 64
characters (01 §5.4).

Transaction bodies are sync functions run in one greenlet; a test body waits for the other
transaction with `await_only`, SQLAlchemy's bridge from such a body back to the event loop."""

from __future__ import annotations

import asyncio
import logging

import pymysql
import pytest
from sqlalchemy import Update, update
from sqlalchemy.engine import Connection
from sqlalchemy.util import await_only

from pikku_storage import Storage
from pikku_storage._locks import LockName
from pikku_storage.errors import StorageUnavailable
from pikku_storage.records import Channel
from pikku_storage.sqlalchemy._connection import RETRY_POLICY
from tests.sqlalchemy.sa_helpers import connect, database

pytestmark = pytest.mark.pikku_backend("sqlalchemy-mysql")


async def test_a_real_deadlock_is_retried_and_both_transactions_land(
    pikku_storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    """01 §5.4: InnoDB picks a victim (errno 1213); the backend re-runs its whole body."""
    for channel_id in ("left", "right"):
        await pikku_storage.channels.add_channel(Channel(channel_id=channel_id, channel_name="n"))
    db = database(pikku_storage)
    channels = db.tables.channels
    first_locked, second_locked = asyncio.Event(), asyncio.Event()
    attempts = {"first": 0, "second": 0}

    def touch(channel_id: str, session: str) -> Update:
        return (
            update(channels).where(channels.c.channel_id == channel_id).values(user_session=session)
        )

    def first(conn: Connection) -> str:
        attempts["first"] += 1
        conn.execute(touch("left", '{"by":"first"}'))
        first_locked.set()
        await_only(second_locked.wait())
        conn.execute(touch("right", '{"by":"first"}'))
        return "first"

    def second(conn: Connection) -> str:
        attempts["second"] += 1
        await_only(first_locked.wait())
        conn.execute(touch("right", '{"by":"second"}'))
        second_locked.set()
        conn.execute(touch("left", '{"by":"second"}'))
        return "second"

    with caplog.at_level(logging.DEBUG, logger="pikku_storage._retry"):
        results = await asyncio.gather(db.write(first), db.write(second))
    assert sorted(results) == ["first", "second"]
    assert sorted(attempts.values()) == [1, 2]  # the victim ran twice, the other once
    assert any("re-run" in record.getMessage() for record in caplog.records)
    left = await pikku_storage.channels.get_channel_and_session("left")
    right = await pikku_storage.channels.get_channel_and_session("right")
    assert left.session == right.session  # the retried transaction wrote both rows last


async def test_retries_are_bounded_then_storage_unavailable(pikku_storage: Storage) -> None:
    """01 §5.4, 00 §6: a deadlock is re-run a bounded number of times; one that never clears
    is `StorageUnavailable`, never the driver's error."""
    db = database(pikku_storage)
    attempts = 0

    def always_deadlocks(conn: Connection) -> None:
        nonlocal attempts
        attempts += 1
        raise pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")

    with pytest.raises(StorageUnavailable, match="deadlock"):
        await db.write(always_deadlocks)
    assert attempts == RETRY_POLICY.attempts


async def test_run_locks_are_get_lock_names_of_the_namespace(pikku_storage: Storage) -> None:
    """01 §5.4: `GET_LOCK` on a dedicated connection, named `pikku:` and a SHA-256 prefix over
    namespace and lock name, at most 64 characters; released on exit."""
    db = database(pikku_storage)
    run_id = "4b0a1b8e-4f7e-4a53-9a55-0d7b8c7e9f10"
    name = str(db.ops.lock_key(LockName(run_id).digest(db.namespace)))
    assert name.startswith("pikku:")
    assert len(name) == 64
    async with pikku_storage.workflows.run_lock(run_id, timeout=0), connect(db) as conn:
        holder = (await conn.exec_driver_sql("SELECT IS_USED_LOCK(%s)", (name,))).scalar()
        own = (await conn.exec_driver_sql("SELECT CONNECTION_ID()")).scalar()
        assert holder is not None
        assert holder != own
    async with connect(db) as conn:
        assert (await conn.exec_driver_sql("SELECT IS_FREE_LOCK(%s)", (name,))).scalar() == 1
