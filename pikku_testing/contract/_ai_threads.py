"""Contract tests of threads and working memory (docs/services/ai-storage.md#threads item 1-6,
Working memory 26-28)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.codec import JsonObject
from pikku_storage.errors import ConflictError, InvalidValue, RunNotFound, ThreadNotFound
from pikku_storage.records import AgentRunStatus, Thread, WorkingMemoryScope
from pikku_testing.contract._builders_ai import (
    T0,
    assert_cascaded,
    assistant,
    at,
    call,
    is_uuid4,
    make_run,
    make_thread,
    populate,
    snapshot,
    tool_approval,
    user,
    wrong,
)

__all__ = ["ThreadTests", "WorkingMemoryTests"]

THREAD = WorkingMemoryScope.THREAD
RESOURCE = WorkingMemoryScope.RESOURCE


class ThreadTests:
    """`create_thread`, `get_thread(s)`, `updated_at` and `delete_thread` (docs/contract.md
    Threads)."""

    async def test_create_thread_without_id_returns_a_uuid4_thread_stamped_by_the_clock(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-storage.md#threads item 1."""
        pikku_clock.set(datetime(2026, 1, 1, 0, 0, 1, 234567, tzinfo=UTC))
        thread = await storage.ai_storage.create_thread("res-1", title="Plans", metadata={"k": "v"})
        stamp = datetime(2026, 1, 1, 0, 0, 1, 234000, tzinfo=UTC)
        assert is_uuid4(thread.id)
        assert thread == Thread(
            id=thread.id,
            resource_id="res-1",
            title="Plans",
            metadata={"k": "v"},
            created_at=stamp,
            updated_at=stamp,
        )
        assert await storage.ai_storage.get_thread(thread.id) == thread
        other = await storage.ai_storage.create_thread("res-1")
        assert is_uuid4(other.id)
        assert other.id != thread.id

    async def test_create_thread_with_an_id_uses_it_and_keeps_none_fields(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-storage.md#threads item 2."""
        thread = await storage.ai_storage.create_thread("res-1", thread_id="t-1")
        expected = Thread(id="t-1", resource_id="res-1", created_at=T0, updated_at=T0)
        assert thread == expected
        assert await storage.ai_storage.get_thread("t-1") == expected

    async def test_create_thread_keeps_empty_title_and_metadata(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#threads item 2."""
        thread = await make_thread(storage, title="", metadata={})
        expected = Thread(
            id="t-1", resource_id="res-1", title="", metadata={}, created_at=T0, updated_at=T0
        )
        assert thread == expected
        assert await storage.ai_storage.get_thread("t-1") == expected

    async def test_create_thread_round_trips_nested_metadata(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#threads item 2."""
        metadata: JsonObject = {
            "a": {"b": [1, 2.5, None, True, {"c": "d"}], "e": []},
            "f": {},
            "g": "",
            "h": [[[]]],
        }
        await make_thread(storage, metadata=metadata)
        thread = await storage.ai_storage.get_thread("t-1")
        assert thread.metadata == metadata

    async def test_create_thread_with_a_taken_id_raises_conflict_and_keeps_the_first(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-storage.md#threads item 3."""
        first = await make_thread(storage, title="first", metadata={"n": 1})
        pikku_clock.advance(1)
        with pytest.raises(ConflictError) as caught:
            await make_thread(storage, "t-1", "res-2", title="second")
        assert str(caught.value) == "Thread already exists: t-1"
        assert await storage.ai_storage.get_thread("t-1") == first
        assert await storage.ai_storage.get_threads("res-2") == []

    async def test_get_thread_of_an_unknown_id_raises_thread_not_found(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-storage.md#threads item 3."""
        with pytest.raises(ThreadNotFound) as caught:
            await storage.ai_storage.get_thread("nope")
        assert isinstance(caught.value, LookupError)
        assert str(caught.value) == "Thread not found: nope"

    async def test_get_threads_returns_only_the_resource_threads_in_thread_order(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-storage.md#threads item 4."""
        await make_thread(storage, "t-a")
        pikku_clock.advance(1)
        t_b = await make_thread(storage, "t-b")
        pikku_clock.advance(1)
        await make_thread(storage, "t-c", "res-2")
        pikku_clock.advance(1)
        await storage.ai_storage.save_messages("t-a", [user()])
        t_a = await storage.ai_storage.get_thread("t-a")
        assert t_a.updated_at == at(3000)
        assert await storage.ai_storage.get_threads("res-1") == [t_a, t_b]

    async def test_get_threads_puts_the_later_created_first_when_updated_at_ties(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-storage.md#threads item 4."""
        for thread_id in ("t-1", "t-2", "t-3"):
            await make_thread(storage, thread_id)
        threads = await storage.ai_storage.get_threads("res-1")
        assert [thread.id for thread in threads] == ["t-3", "t-2", "t-1"]
        pikku_clock.advance(1)
        await storage.ai_storage.save_messages("t-1", [user()])
        await storage.ai_storage.save_messages("t-3", [user()])
        threads = await storage.ai_storage.get_threads("res-1")
        assert [thread.id for thread in threads] == ["t-3", "t-1", "t-2"]

    async def test_get_threads_of_an_unknown_resource_is_empty(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#threads item 4."""
        await make_thread(storage)
        assert await storage.ai_storage.get_threads("res-unknown") == []

    async def test_saving_messages_stamps_updated_at_and_moves_the_thread_first(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-storage.md#threads item 5."""
        await make_thread(storage, "t-1")
        pikku_clock.advance(1)
        t_2 = await make_thread(storage, "t-2")
        pikku_clock.advance(1)
        await storage.ai_storage.save_messages("t-1", [user()])
        t_1 = await storage.ai_storage.get_thread("t-1")
        assert t_1 == Thread(id="t-1", resource_id="res-1", created_at=T0, updated_at=at(2000))
        assert await storage.ai_storage.get_threads("res-1") == [t_1, t_2]
        assert await storage.agent_runs.list_threads() == [t_1, t_2]

    async def test_writes_other_than_saved_messages_leave_updated_at_unchanged(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-storage.md#threads item 5."""
        thread = await make_thread(storage)
        ai, state = storage.ai_storage, storage.ai_run_state
        pikku_clock.advance(5)
        await ai.save_messages("t-1", [])
        pikku_clock.advance(1)
        run_id = await make_run(storage, pending_approvals=[tool_approval()])
        pikku_clock.advance(1)
        await state.update_run(run_id, status=AgentRunStatus.COMPLETED)
        pikku_clock.advance(1)
        assert await state.resolve_approval("tc-1", "approved")
        pikku_clock.advance(1)
        await ai.save_working_memory("t-1", THREAD, {"a": 1})
        await ai.save_working_memory("res-1", RESOURCE, {"b": 2})
        assert await ai.delete_working_memory("t-1", THREAD)
        assert await ai.delete_working_memory("res-1", RESOURCE)
        assert await ai.get_thread("t-1") == thread
        assert await storage.agent_runs.list_threads() == [thread]

    async def test_delete_thread_removes_messages_runs_approvals_decisions_and_thread_memory(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-storage.md#threads item 6."""
        run_id = await populate(storage)
        other_before = await snapshot(storage, ["t-2"], [], namespace=False)
        await storage.ai_storage.delete_thread("t-1")  # returns None
        await assert_cascaded(storage, run_id)
        other_after = await snapshot(storage, ["t-2"], [], namespace=False)
        assert other_after == other_before

    async def test_delete_thread_drops_an_agent_with_no_other_run(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#threads item 6."""
        await populate(storage)
        names = ["shared-agent", "solo-agent"]
        assert await storage.agent_runs.get_distinct_agent_names() == names
        await storage.ai_storage.delete_thread("t-1")
        assert await storage.agent_runs.get_distinct_agent_names() == ["shared-agent"]

    async def test_a_recreated_thread_is_empty_and_accepts_the_old_ids(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-storage.md#threads item 6."""
        await populate(storage)
        await storage.ai_storage.delete_thread("t-1")
        pikku_clock.advance(1)
        thread = await make_thread(storage, "t-1")
        assert thread.created_at == at(1000)
        assert await storage.ai_storage.get_messages("t-1") == []
        assert await storage.ai_run_state.get_runs_by_thread("t-1") == []
        assert await storage.ai_storage.get_working_memory("t-1", THREAD) is None
        again = [user("m-1"), assistant("a-1", calls=[call("tc-1"), call("tc-2")])]
        await storage.ai_storage.save_messages("t-1", again)
        assert [m.id for m in await storage.ai_storage.get_messages("t-1")] == ["m-1", "a-1"]

    async def test_update_run_of_a_run_of_a_deleted_thread_raises_run_not_found(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-storage.md#threads item 6."""
        run_id = await populate(storage)
        await storage.ai_storage.delete_thread("t-1")
        with pytest.raises(RunNotFound):
            await storage.ai_run_state.update_run(run_id, status="completed")
        assert await storage.ai_run_state.get_run(run_id) is None

    async def test_delete_thread_of_an_unknown_id_returns_none(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#threads item 6."""
        await make_thread(storage)
        before = await snapshot(storage)
        await storage.ai_storage.delete_thread("nope")  # returns None
        assert await snapshot(storage) == before


class WorkingMemoryTests:
    """Thread- and resource-scoped working memory (docs/contract.md Working memory)."""

    @pytest.mark.parametrize("scope", [THREAD, RESOURCE], ids=["thread", "resource"])
    async def test_saved_working_memory_is_returned(
        self, storage: Storage, scope: WorkingMemoryScope
    ) -> None:
        """docs/services/ai-storage.md#working-memory item 26."""
        await make_thread(storage)
        memory_id = "t-1" if scope is THREAD else "res-1"
        data: JsonObject = {"facts": ["a", {"b": None}], "count": 2, "empty": {}}
        await storage.ai_storage.save_working_memory(memory_id, scope, data)
        assert await storage.ai_storage.get_working_memory(memory_id, scope) == data

    @pytest.mark.parametrize("scope", [THREAD, RESOURCE], ids=["thread", "resource"])
    async def test_a_second_save_replaces_the_whole_working_memory(
        self, storage: Storage, scope: WorkingMemoryScope
    ) -> None:
        """docs/services/ai-storage.md#working-memory item 26."""
        await make_thread(storage)
        memory_id = "t-1" if scope is THREAD else "res-1"
        await storage.ai_storage.save_working_memory(memory_id, scope, {"old": 1, "kept": 1})
        await storage.ai_storage.save_working_memory(memory_id, scope, {"kept": 2, "new": 3})
        assert await storage.ai_storage.get_working_memory(memory_id, scope) == {
            "kept": 2,
            "new": 3,
        }

    async def test_unknown_working_memory_is_none(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#working-memory item 26."""
        await make_thread(storage)
        assert await storage.ai_storage.get_working_memory("t-1", THREAD) is None
        assert await storage.ai_storage.get_working_memory("t-unknown", THREAD) is None
        assert await storage.ai_storage.get_working_memory("res-1", RESOURCE) is None

    async def test_thread_and_resource_memory_with_one_id_are_independent(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-storage.md#working-memory item 26."""
        ai = storage.ai_storage
        await make_thread(storage, "shared")
        await ai.save_working_memory("shared", THREAD, {"scope": "thread"})
        assert await ai.get_working_memory("shared", RESOURCE) is None
        await ai.save_working_memory("shared", RESOURCE, {"scope": "resource"})
        assert await ai.get_working_memory("shared", THREAD) == {"scope": "thread"}
        assert await ai.get_working_memory("shared", RESOURCE) == {"scope": "resource"}
        assert await ai.delete_working_memory("shared", THREAD)
        assert await ai.get_working_memory("shared", RESOURCE) == {"scope": "resource"}

    @pytest.mark.parametrize("method", ["get", "save", "delete"])
    async def test_an_unknown_scope_raises_invalid_value(
        self, storage: Storage, method: str
    ) -> None:
        """docs/services/ai-storage.md#working-memory item 27."""
        ai = storage.ai_storage
        await make_thread(storage, "shared")
        await ai.save_working_memory("shared", RESOURCE, {"kept": True})
        before = await snapshot(storage, ["shared"], ["shared"])
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "get": lambda: ai.get_working_memory("shared", "global"),
            "save": lambda: ai.save_working_memory("shared", "global", {"x": 1}),
            "delete": lambda: ai.delete_working_memory("shared", "global"),
        }
        with pytest.raises(InvalidValue):
            await calls[method]()
        assert await snapshot(storage, ["shared"], ["shared"]) == before

    @pytest.mark.parametrize(
        "data",
        [[1], "text", None, {"x": {1, 2}}, {"x": float("nan")}],
        ids=["list", "string", "none", "set-inside", "nan-inside"],
    )
    @pytest.mark.parametrize("scope", [THREAD, RESOURCE], ids=["thread", "resource"])
    async def test_memory_data_that_is_not_a_json_object_raises_invalid_value(
        self, storage: Storage, scope: WorkingMemoryScope, data: object
    ) -> None:
        """docs/services/ai-storage.md#working-memory item 27."""
        await make_thread(storage)
        memory_id = "t-1" if scope is THREAD else "res-1"
        await storage.ai_storage.save_working_memory(memory_id, scope, {"v": 1})
        before = await snapshot(storage)
        with pytest.raises(InvalidValue):
            await storage.ai_storage.save_working_memory(memory_id, scope, wrong(data))
        assert await snapshot(storage) == before
        assert await storage.ai_storage.get_working_memory(memory_id, scope) == {"v": 1}

    async def test_thread_memory_for_an_unknown_thread_raises_thread_not_found(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-storage.md#working-memory item 28."""
        with pytest.raises(ThreadNotFound):
            await storage.ai_storage.save_working_memory("t-1", THREAD, {"x": 1})
        assert await storage.ai_storage.get_working_memory("t-1", THREAD) is None
        await make_thread(storage)
        assert await storage.ai_storage.get_working_memory("t-1", THREAD) is None

    async def test_resource_memory_needs_no_thread(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#working-memory item 28."""
        await storage.ai_storage.save_working_memory("res-9", RESOURCE, {"x": 1})
        assert await storage.ai_storage.get_working_memory("res-9", RESOURCE) == {"x": 1}
        assert await storage.agent_runs.list_threads() == []

    @pytest.mark.parametrize("scope", [THREAD, RESOURCE], ids=["thread", "resource"])
    async def test_delete_working_memory_returns_true_then_false(
        self, storage: Storage, scope: WorkingMemoryScope
    ) -> None:
        """docs/services/ai-storage.md#working-memory item 28."""
        await make_thread(storage)
        memory_id = "t-1" if scope is THREAD else "res-1"
        await storage.ai_storage.save_working_memory(memory_id, scope, {"x": 1})
        assert await storage.ai_storage.delete_working_memory(memory_id, scope) is True
        assert await storage.ai_storage.delete_working_memory(memory_id, scope) is False
        assert await storage.ai_storage.get_working_memory(memory_id, scope) is None
        assert await storage.ai_storage.delete_working_memory("t-unknown", scope) is False
