"""Round trips of the Redis hot paths, white-box: what a call sends, and that what a service
remembers between calls (a thread's resource and agents) never outlives a change made by
another process.

Spec: 02 §2 (save_messages moves the thread in every index it is listed in), 00 §7 (every call
atomic and linearizable: a remembered guess is re-checked inside the script).
"""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError
from redis.typing import EncodableT

from pikku_storage import Channel, ManualClock, Message, MessageRole, Storage
from pikku_storage.redis._connection import _Pool
from pikku_testing._types import StorageFactory
from tests.redis._redis_support import CommandSpy, client_of

BACKENDS = pytest.mark.pikku_backends("redis", "fakeredis")


def _turn(n: int) -> list[Message]:
    return [
        Message(id=f"u{n}", role=MessageRole.USER, content=f"question {n}"),
        Message(id=f"a{n}", role=MessageRole.ASSISTANT, content=f"answer {n}"),
    ]


@BACKENDS
async def test_save_messages_on_a_known_thread_sends_one_script(pikku_storage: Storage) -> None:
    """The thread's context is read once; later saves are one EVALSHA each."""
    ai = pikku_storage.ai_storage
    thread = await ai.create_thread("res-1")
    await ai.save_messages(thread.id, _turn(0))
    spy = CommandSpy(client_of(pikku_storage))
    with spy.recording():
        await ai.save_messages(thread.id, _turn(1))
    assert spy.names == ["EVALSHA:ai_save_messages"]
    assert [m.id for m in await ai.get_messages(thread.id)] == ["u0", "a0", "u1", "a1"]


@BACKENDS
async def test_save_messages_indexes_a_thread_recreated_elsewhere_under_its_new_resource(
    pikku_storage: Storage, pikku_storage_factory: StorageFactory
) -> None:
    """02 §2: the thread moves in the indexes of its current resource, not the remembered one."""
    ai = pikku_storage.ai_storage
    await ai.create_thread("res-old", thread_id="t-1")
    await ai.save_messages("t-1", _turn(0))  # remembers res-old
    other = await pikku_storage_factory()
    await other.ai_storage.delete_thread("t-1")
    await other.ai_storage.create_thread("res-new", thread_id="t-1")

    await ai.save_messages("t-1", _turn(1))

    assert [t.id for t in await ai.get_threads("res-new")] == ["t-1"]
    assert await ai.get_threads("res-old") == []
    assert [m.id for m in await ai.get_messages("t-1")] == ["u1", "a1"]


@BACKENDS
async def test_save_messages_moves_the_thread_in_an_agent_index_added_elsewhere(
    pikku_storage: Storage, pikku_storage_factory: StorageFactory, pikku_clock: ManualClock
) -> None:
    """02 §2: an agent run created by another process since the last save is an index the
    next save moves the thread in."""
    ai = pikku_storage.ai_storage
    await ai.create_thread("res-1", thread_id="t-1")
    await ai.create_thread("res-1", thread_id="t-2")
    await ai.save_messages("t-1", _turn(0))  # both remembered with no agents
    await ai.save_messages("t-2", _turn(1))
    other = await pikku_storage_factory()
    for thread_id in ("t-1", "t-2"):
        await other.ai_run_state.create_run(
            agent_name="helper", thread_id=thread_id, resource_id="res-1"
        )
    listed = await pikku_storage.agent_runs.list_threads(agent_name="helper")
    assert [t.id for t in listed] == ["t-2", "t-1"]

    pikku_clock.advance(5)
    await ai.save_messages("t-1", _turn(2))

    listed = await pikku_storage.agent_runs.list_threads(agent_name="helper")
    assert [t.id for t in listed] == ["t-1", "t-2"]


@pytest.mark.pikku_backends("redis")
async def test_calls_beyond_max_connections_wait_for_a_free_connection(
    pikku_storage_factory: StorageFactory,
) -> None:
    """A pool of one connection serves 50 concurrent calls: each waits its turn, none fails
    (the queued path of the pool, and the return that wakes it)."""
    storage = await pikku_storage_factory(max_connections=1)
    await storage.channels.add_channel(
        Channel(channel_id="ch-0", channel_name="c", opening_data=None)
    )
    hub = storage.eventhub
    found = await asyncio.gather(
        *(hub.subscribe(f"topic-{i % 5}", f"ch-{i % 2}") for i in range(50))
    )
    assert found == [i % 2 == 0 for i in range(50)]  # ch-1 does not exist
    assert await hub.get_channel_ids_for_topic("topic-0") == ["ch-0"]


@pytest.mark.parametrize(
    "args",
    [
        ("EVALSHA", "0" * 40, 2, "p:wf:{r}:run", "p:x", "ünïcode", 2**70, -5, 0, "", b"a\x00b"),
        ("CONFIG GET", "maxmemory"),
        (b"CLIENT SETNAME", "n"),
        ("SET", "k", 1.5, 1e16, "v" * 100_000),
    ],
    ids=["script", "two-word-name", "two-word-bytes", "large"],
)
def test_commands_are_packed_to_the_same_bytes_as_redis_py_packs_them(
    args: tuple[EncodableT, ...],
) -> None:
    """The C packer of the pool's connections sends what redis-py's own packer sends."""
    ours = _Pool().connection_class()
    assert type(ours) is not Connection
    assert b"".join(ours.pack_command(*args)) == b"".join(Connection().pack_command(*args))


def test_a_value_redis_py_refuses_is_refused_by_the_c_packer_too() -> None:
    ours = _Pool().connection_class()
    for bad in (None, True, object()):
        with pytest.raises(DataError):
            ours.pack_command("SET", "k", bad)  # type: ignore[arg-type]  # the refused value
