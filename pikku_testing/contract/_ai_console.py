"""Contract tests of the console and retention (docs/services/agent-runs.md item 44-49, Retention
50-51, 63)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.errors import InvalidValue
from pikku_storage.records import AgentRunRow, AgentRunStatus, SuspendReason, Thread, Usage
from pikku_testing._types import StorageFactory
from pikku_testing.contract._builders_ai import (
    T0,
    assert_cascaded,
    assistant,
    at,
    call,
    make_run,
    make_thread,
    populate,
    result,
    snapshot,
    tool,
    user,
    wrong,
)

__all__ = ["ConsoleTests"]


async def _threads_one_second_apart(
    storage: Storage, clock: ManualClock, count: int, resource_of: dict[int, str] | None = None
) -> list[str]:
    """Create `t-0` … `t-<count-1>`, one second apart; return the ids in thread order."""
    for i in range(count):
        await make_thread(storage, f"t-{i}", (resource_of or {}).get(i, "res-1"))
        clock.advance(1)
    return [f"t-{i}" for i in reversed(range(count))]


def _ids(threads: list[Thread]) -> list[str]:
    return [thread.id for thread in threads]


class ConsoleTests:
    """`AgentRunService`: listing, reading, deleting, agent names and pruning (docs/contract.md)."""

    async def test_list_threads_returns_thread_order(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/agent-runs.md item 44."""
        order = await _threads_one_second_apart(storage, pikku_clock, 4)
        assert _ids(await storage.agent_runs.list_threads()) == order
        await storage.ai_storage.save_messages("t-1", [user()])
        expected = [await storage.ai_storage.get_thread(t) for t in ("t-1", "t-3", "t-2", "t-0")]
        assert await storage.agent_runs.list_threads() == expected

    async def test_list_threads_pages_cover_every_thread_once(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/agent-runs.md item 44."""
        order = await _threads_one_second_apart(storage, pikku_clock, 7)
        console = storage.agent_runs
        pages = [await console.list_threads(limit=3, offset=offset) for offset in (0, 3, 6)]
        assert [len(page) for page in pages] == [3, 3, 1]
        assert [thread.id for page in pages for thread in page] == order
        assert await console.list_threads(limit=3, offset=7) == []
        assert await console.list_threads(limit=1000, offset=100) == []
        assert _ids(await console.list_threads(limit=2, offset=5)) == order[5:]

    async def test_list_threads_returns_fifty_by_default(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/agent-runs.md item 44."""
        order = await _threads_one_second_apart(storage, pikku_clock, 51)
        assert _ids(await storage.agent_runs.list_threads()) == order[:50]

    async def test_list_threads_by_agent_keeps_threads_with_a_run_of_that_agent(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/agent-runs.md item 44."""
        await _threads_one_second_apart(storage, pikku_clock, 4)
        await make_run(storage, "t-0", "agent-a")
        await make_run(storage, "t-1", "agent-b")
        await make_run(storage, "t-2", "agent-b")
        await make_run(storage, "t-2", "agent-a")
        await make_run(storage, "t-2", "agent-a")
        console = storage.agent_runs
        assert _ids(await console.list_threads(agent_name="agent-a")) == ["t-2", "t-0"]
        assert _ids(await console.list_threads(agent_name="agent-b")) == ["t-2", "t-1"]

    async def test_list_threads_by_resource_matches_the_thread_resource_not_a_run_resource(
        self, storage: Storage
    ) -> None:
        """docs/services/agent-runs.md item 44."""
        thread = await make_thread(storage, "t-1", "res-1")
        await make_run(storage, "t-1", resource_id="res-9")
        console = storage.agent_runs
        assert await console.list_threads(resource_id="res-1") == [thread]
        assert await console.list_threads(resource_id="res-9") == []
        assert await console.list_threads(agent_name="agent-a", resource_id="res-9") == []

    async def test_list_threads_filters_combine_and_apply_before_paging(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/agent-runs.md item 44."""
        await _threads_one_second_apart(storage, pikku_clock, 8, {1: "res-2", 6: "res-2"})
        for thread_id, agent in (("t-0", "a"), ("t-1", "a"), ("t-2", "a"), ("t-3", "b")):
            await make_run(storage, thread_id, agent)
        await make_run(storage, "t-4", "a")
        await make_run(storage, "t-6", "a")
        console = storage.agent_runs
        page = await console.list_threads(agent_name="a", resource_id="res-1", limit=2)
        assert _ids(page) == ["t-4", "t-2"]
        page = await console.list_threads(agent_name="a", resource_id="res-1", limit=2, offset=2)
        assert _ids(page) == ["t-0"]
        assert _ids(await console.list_threads(agent_name="a", limit=3)) == [
            "t-6",
            "t-4",
            "t-2",
        ]
        assert _ids(await console.list_threads(resource_id="res-2", limit=1, offset=1)) == ["t-1"]

    async def test_list_threads_with_unknown_filter_values_is_empty(self, storage: Storage) -> None:
        """docs/services/agent-runs.md item 44."""
        await make_thread(storage)
        await make_run(storage)
        console = storage.agent_runs
        assert await console.list_threads(agent_name="agent-unknown") == []
        assert await console.list_threads(resource_id="res-unknown") == []
        assert await console.list_threads(agent_name="agent-a", resource_id="res-unknown") == []

    @pytest.mark.parametrize(
        "paging",
        [
            {"limit": 0},
            {"limit": 1001},
            {"limit": True},
            {"limit": "5"},
            {"limit": None},
            {"offset": -1},
            {"offset": False},
            {"offset": 1.0},
        ],
        ids=[
            "limit-0",
            "limit-1001",
            "limit-bool",
            "limit-str",
            "limit-none",
            "offset-negative",
            "offset-bool",
            "offset-float",
        ],
    )
    async def test_list_threads_with_invalid_paging_raises_invalid_value(
        self, storage: Storage, paging: dict[str, object]
    ) -> None:
        """docs/services/agent-runs.md item 45."""
        await make_thread(storage)
        with pytest.raises(InvalidValue):
            await storage.agent_runs.list_threads(**wrong(paging))

    async def test_list_threads_accepts_the_paging_bounds(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/agent-runs.md item 45."""
        order = await _threads_one_second_apart(storage, pikku_clock, 2)
        assert _ids(await storage.agent_runs.list_threads(limit=1)) == order[:1]
        assert _ids(await storage.agent_runs.list_threads(limit=1000, offset=0)) == order

    async def test_console_get_thread_returns_the_thread_or_none(self, storage: Storage) -> None:
        """docs/services/agent-runs.md item 45."""
        thread = await make_thread(storage, title="t", metadata={"a": [1]})
        assert await storage.agent_runs.get_thread("t-1") == thread
        assert await storage.agent_runs.get_thread("t-unknown") is None

    async def test_get_thread_messages_equals_get_messages(self, storage: Storage) -> None:
        """docs/services/agent-runs.md item 46."""
        await make_thread(storage)
        batch = [
            user("m-1", [{"type": "text", "text": "hi"}]),
            assistant("a-1", "ok", calls=[call("tc-1"), call("tc-2")]),
            tool(result("tc-2", "two")),
            user("m-2", created_at=at(-5)),
        ]
        await storage.ai_storage.save_messages("t-1", batch)
        messages = await storage.agent_runs.get_thread_messages("t-1")
        assert messages == await storage.ai_storage.get_messages("t-1")
        assert [m.id for m in messages] == ["m-2", "m-1", "a-1", "tool-results-a-1"]

    async def test_get_thread_messages_returns_string_content_as_saved(
        self, storage: Storage
    ) -> None:
        """docs/services/agent-runs.md item 46."""
        await make_thread(storage)
        await storage.ai_storage.save_messages("t-1", [user("m-1", "Hello"), user("m-2", '"x"')])
        messages = await storage.agent_runs.get_thread_messages("t-1")
        assert [message.content for message in messages] == ["Hello", '"x"']

    async def test_get_thread_messages_of_an_unknown_thread_is_empty(
        self, storage: Storage
    ) -> None:
        """docs/services/agent-runs.md item 46."""
        assert await storage.agent_runs.get_thread_messages("t-unknown") == []

    async def test_get_thread_runs_returns_flat_rows_in_run_order(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/agent-runs.md item 47."""
        await make_thread(storage)
        first = await make_run(
            storage,
            status="failed",
            usage=Usage(input_tokens=10, output_tokens=5, model="gpt-x"),
            error_message="boom",
            missing_rpcs=["rpc-a"],
        )
        pikku_clock.advance(1)
        second = await make_run(
            storage, "t-1", "agent-b", "res-2", status="suspended", suspend_reason="approval"
        )
        pikku_clock.advance(1)
        await storage.ai_run_state.update_run(second, error_message="")
        assert await storage.agent_runs.get_thread_runs("t-1") == [
            AgentRunRow(
                run_id=second,
                agent_name="agent-b",
                thread_id="t-1",
                resource_id="res-2",
                status=AgentRunStatus.SUSPENDED,
                error_message="",
                suspend_reason=SuspendReason.APPROVAL,
                missing_rpcs=None,
                usage_input_tokens=0,
                usage_output_tokens=0,
                usage_model="",
                created_at=at(1000),
                updated_at=at(2000),
            ),
            AgentRunRow(
                run_id=first,
                agent_name="agent-a",
                thread_id="t-1",
                resource_id="res-1",
                status=AgentRunStatus.FAILED,
                error_message="boom",
                suspend_reason=None,
                missing_rpcs=["rpc-a"],
                usage_input_tokens=10,
                usage_output_tokens=5,
                usage_model="gpt-x",
                created_at=T0,
                updated_at=T0,
            ),
        ]

    async def test_get_thread_runs_of_an_unknown_thread_is_empty(self, storage: Storage) -> None:
        """docs/services/agent-runs.md item 47."""
        await make_thread(storage)
        await make_run(storage)
        assert await storage.agent_runs.get_thread_runs("t-unknown") == []

    async def test_console_delete_thread_returns_true_then_false_with_the_full_cascade(
        self, storage: Storage
    ) -> None:
        """docs/services/agent-runs.md item 48."""
        run_id = await populate(storage)
        other_before = await snapshot(storage, ["t-2"], [], namespace=False)
        assert await storage.agent_runs.delete_thread("t-1") is True
        await assert_cascaded(storage, run_id)
        assert await storage.agent_runs.delete_thread("t-1") is False
        assert await snapshot(storage, ["t-2"], [], namespace=False) == other_before

    async def test_distinct_agent_names_are_sorted_by_code_point(self, storage: Storage) -> None:
        """docs/services/agent-runs.md item 49."""
        await make_thread(storage, "t-1")
        await make_thread(storage, "t-2")
        for thread_id, agent in (
            ("t-1", "中"),
            ("t-1", "a"),
            ("t-2", "é"),
            ("t-2", "B"),
            ("t-1", "ns:agent"),
            ("t-2", "a"),
            ("t-1", "a"),
        ):
            await make_run(storage, thread_id, agent)
        assert await storage.agent_runs.get_distinct_agent_names() == [
            "B",
            "a",
            "ns:agent",
            "é",
            "中",
        ]

    async def test_distinct_agent_names_are_empty_without_runs(self, storage: Storage) -> None:
        """docs/services/agent-runs.md item 49."""
        assert await storage.agent_runs.get_distinct_agent_names() == []
        await make_thread(storage)
        assert await storage.agent_runs.get_distinct_agent_names() == []

    async def test_an_agent_name_disappears_with_its_last_thread(self, storage: Storage) -> None:
        """docs/services/agent-runs.md item 49."""
        await make_thread(storage, "t-1")
        await make_thread(storage, "t-2")
        await make_run(storage, "t-1", "agent-a")
        await make_run(storage, "t-2", "agent-a")
        await make_run(storage, "t-2", "agent-b")
        console = storage.agent_runs
        assert await console.delete_thread("t-2")
        assert await console.get_distinct_agent_names() == ["agent-a"]
        assert await console.delete_thread("t-1")
        assert await console.get_distinct_agent_names() == []

    async def test_prune_threads_deletes_threads_updated_strictly_before_the_cutoff(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/agent-runs.md item 50."""
        await make_thread(storage, "t-old")
        await make_thread(storage, "t-revived")
        pikku_clock.advance(10)
        await make_thread(storage, "t-edge")
        await storage.ai_storage.save_messages("t-revived", [user()])
        pikku_clock.advance(10)
        await make_thread(storage, "t-new")
        console = storage.agent_runs
        assert await console.prune_threads(updated_before=at(10_000)) == 1
        assert await console.get_thread("t-old") is None
        assert _ids(await console.list_threads()) == ["t-new", "t-edge", "t-revived"]
        assert await console.prune_threads(updated_before=at(10_000)) == 0

    async def test_prune_threads_cascades_and_keeps_resource_memory(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/agent-runs.md item 50."""
        run_id = await populate(storage)
        pikku_clock.advance(60)
        await storage.ai_storage.save_messages("t-2", [user("m-2")])
        other_before = await snapshot(storage, ["t-2"], [], namespace=False)
        assert await storage.agent_runs.prune_threads(updated_before=at(1000)) == 1
        await assert_cascaded(storage, run_id)
        assert await snapshot(storage, ["t-2"], [], namespace=False) == other_before

    async def test_prune_threads_in_small_batches_returns_the_full_count(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/agent-runs.md item 50."""
        await _threads_one_second_apart(storage, pikku_clock, 5)
        pikku_clock.advance(60)
        fresh = await make_thread(storage, "t-fresh")
        console = storage.agent_runs
        assert await console.prune_threads(updated_before=at(30_000), batch_size=2) == 5
        assert await console.list_threads() == [fresh]

    @pytest.mark.parametrize(
        "arguments",
        [
            {"updated_before": datetime(2027, 1, 1)},
            {"updated_before": "2027-01-01T00:00:00Z"},
            {"updated_before": None},
            {"updated_before": at(99_000), "batch_size": 0},
            {"updated_before": at(99_000), "batch_size": 10_001},
            {"updated_before": at(99_000), "batch_size": True},
            {"updated_before": at(99_000), "batch_size": 2.0},
        ],
        ids=["naive", "string", "none", "batch-0", "batch-10001", "batch-bool", "batch-float"],
    )
    async def test_prune_threads_with_an_invalid_argument_raises_invalid_value_and_deletes_nothing(
        self, storage: Storage, arguments: dict[str, object]
    ) -> None:
        """docs/services/agent-runs.md item 51."""
        await make_thread(storage)
        await make_run(storage)
        before = await snapshot(storage)
        with pytest.raises(InvalidValue):
            await storage.agent_runs.prune_threads(**wrong(arguments))
        assert await snapshot(storage) == before

    async def test_prune_threads_accepts_the_batch_size_bounds(self, storage: Storage) -> None:
        """docs/services/agent-runs.md item 51."""
        await make_thread(storage, "t-1")
        await make_thread(storage, "t-2")
        console = storage.agent_runs
        assert await console.prune_threads(updated_before=at(1), batch_size=1) == 2
        assert await console.prune_threads(updated_before=at(1), batch_size=10_000) == 0

    async def test_concurrent_console_deletes_of_one_thread_return_true_once(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 63."""
        await populate(storage)
        instances = [storage, await storage_factory()]
        outcomes = await asyncio.gather(
            *(instances[i % 2].agent_runs.delete_thread("t-1") for i in range(10))
        )
        assert sorted(outcomes) == [False] * 9 + [True]
        assert await storage.agent_runs.get_thread("t-1") is None
