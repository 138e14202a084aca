"""MySQL: a write over the server's `max_allowed_packet` is `InvalidValue` naming the limit and
how to raise it, never `StorageUnavailable` (the server would drop the connection, and a caller
would retry forever); the store keeps working afterwards (issue 17 item 5)."""

from __future__ import annotations

import pytest

from pikku_storage import Storage
from pikku_storage.errors import InvalidValue
from pikku_storage.records import Message, MessageRole
from tests.sqlalchemy.sa_helpers import connect, database

pytestmark = pytest.mark.pikku_backend("sqlalchemy-mysql")


async def _limit(storage: Storage) -> int:
    async with connect(database(storage)) as conn:
        return int((await conn.exec_driver_sql("SELECT @@max_allowed_packet")).scalar_one())


async def test_a_payload_over_max_allowed_packet_is_invalid_value(pikku_storage: Storage) -> None:
    limit = await _limit(pikku_storage)
    wf, ai = pikku_storage.workflows, pikku_storage.ai_storage
    big = "x" * (limit + 1)
    with pytest.raises(InvalidValue, match="max_allowed_packet") as caught:
        await wf.create_run("wf", {"blob": big})
    assert f"{limit:,}" in str(caught.value)
    assert "SET GLOBAL max_allowed_packet" in str(caught.value)
    thread = await ai.create_thread("res")
    with pytest.raises(InvalidValue, match="max_allowed_packet"):
        await ai.save_messages(thread.id, [Message(id="m1", role=MessageRole.USER, content=big)])
    # Nothing was written, and the same storage still works.
    assert await ai.get_messages(thread.id) == []
    run_id = await wf.create_run("wf", {"small": "x" * 1000})
    run = await wf.get_run(run_id)
    assert run is not None
    assert run.input == {"small": "x" * 1000}
    assert [run.id for run in await pikku_storage.workflow_runs.list_runs()] == [run_id]
