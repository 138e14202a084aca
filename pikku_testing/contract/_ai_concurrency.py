"""Contract tests of concurrent conversation writes (docs/concepts.md#concurrency item 57-59,
62)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from pikku_storage import Storage
from pikku_storage.errors import ConflictError, ThreadNotFound
from pikku_storage.records import Thread, WorkingMemoryScope
from pikku_testing._types import StorageFactory
from pikku_testing.contract._builders_ai import make_run, make_thread, stored, user

__all__ = ["StorageConcurrencyTests"]


async def _instances(storage: Storage, storage_factory: StorageFactory) -> list[Storage]:
    """The test's storage and a second instance on the same namespace."""
    return [storage, await storage_factory()]


class StorageConcurrencyTests:
    """Racing creates, saves and deletes on one thread (docs/contract.md Concurrency)."""

    async def test_concurrent_create_thread_with_one_id_succeeds_once(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 57."""
        instances = await _instances(storage, storage_factory)
        outcomes = await asyncio.gather(
            *(
                instances[i % 2].ai_storage.create_thread(f"res-{i}", thread_id="t-1")
                for i in range(10)
            ),
            return_exceptions=True,
        )
        winners = [outcome for outcome in outcomes if isinstance(outcome, Thread)]
        losers = [outcome for outcome in outcomes if isinstance(outcome, ConflictError)]
        assert (len(winners), len(losers)) == (1, 9)
        assert await storage.ai_storage.get_thread("t-1") == winners[0]
        assert await storage.agent_runs.list_threads() == winners

    async def test_concurrent_batches_on_one_thread_are_stored_whole_and_contiguous(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 58."""
        instances = await _instances(storage, storage_factory)
        await make_thread(storage)
        batches = [[user(f"b{b}-m{i}", f"{b}.{i}") for i in range(5)] for b in range(20)]
        await asyncio.gather(
            *(
                instances[b % 2].ai_storage.save_messages("t-1", batch)
                for b, batch in enumerate(batches)
            )
        )
        read = await storage.ai_storage.get_messages("t-1")
        assert len(read) == 100
        assert len({message.id for message in read}) == 100
        chunks = [read[start : start + 5] for start in range(0, 100, 5)]
        for chunk in chunks:
            batch_number = int(chunk[0].id.split("-")[0][1:])
            assert chunk == [stored(message) for message in batches[batch_number]]

    async def test_concurrent_saves_of_one_message_id_succeed_once(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 59."""
        instances = await _instances(storage, storage_factory)
        await make_thread(storage)
        outcomes = await asyncio.gather(
            instances[0].ai_storage.save_messages("t-1", [user("m-1", "first")]),
            instances[1].ai_storage.save_messages("t-1", [user("m-1", "second")]),
            return_exceptions=True,
        )
        assert sorted(type(outcome).__name__ for outcome in outcomes) == [
            "ConflictError",
            "NoneType",
        ]
        read = await storage.ai_storage.get_messages("t-1")
        content = "first" if outcomes[0] is None else "second"
        assert read == [stored(user("m-1", content))]

    async def test_delete_thread_racing_writers_leaves_nothing_behind(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 62."""
        instances = await _instances(storage, storage_factory)
        await make_thread(storage)

        def writers(index: int) -> list[Awaitable[object]]:
            service = instances[index % 2]
            return [
                service.ai_storage.save_messages("t-1", [user(f"m-{index}")]),
                make_run(service, "t-1", f"agent-{index}"),
                service.ai_storage.save_working_memory(
                    "t-1", WorkingMemoryScope.THREAD, {"writer": index}
                ),
            ]

        outcomes = await asyncio.gather(
            *writers(0),
            *writers(1),
            instances[1].ai_storage.delete_thread("t-1"),
            *writers(2),
            *writers(3),
            return_exceptions=True,
        )
        run_ids = [outcome for outcome in outcomes if isinstance(outcome, str)]
        for outcome in outcomes:
            assert outcome is None or isinstance(outcome, str | ThreadNotFound), outcome
        await make_thread(storage)
        assert await storage.ai_storage.get_messages("t-1") == []
        assert await storage.ai_run_state.get_runs_by_thread("t-1") == []
        assert await storage.ai_storage.get_working_memory("t-1", WorkingMemoryScope.THREAD) is None
        for run_id in run_ids:
            assert await storage.ai_run_state.get_run(run_id) is None
        assert await storage.agent_runs.get_distinct_agent_names() == []
