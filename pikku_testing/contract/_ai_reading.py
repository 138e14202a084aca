"""Contract tests of `get_messages` (docs/services/ai-storage.md#reading-messages item 20-25)."""

from __future__ import annotations

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.codec import JsonObject, JsonValue
from pikku_storage.errors import InvalidValue
from pikku_storage.records import Message, Usage, WorkingMemoryScope
from pikku_testing.contract._builders_ai import (
    T0,
    assistant,
    at,
    call,
    make_run,
    make_thread,
    result,
    stored,
    synthetic,
    tool,
    tool_approval,
    user,
    wrong,
)

__all__ = ["ReadMessageTests"]


async def _save_numbered(storage: Storage, count: int, *, batch: int = 100) -> list[Message]:
    """Save `m-0` … `m-<count-1>` to `t-1`, one millisecond apart; return them as stored."""
    messages = [user(f"m-{i}", f"text {i}", created_at=at(i)) for i in range(count)]
    for start in range(0, count, batch):
        await storage.ai_storage.save_messages("t-1", messages[start : start + batch])
    return [stored(message) for message in messages]


class ReadMessageTests:
    """Order, synthetic messages, `last_n`, cursors, cost and copies (docs/contract.md Reading)."""

    async def test_messages_come_back_ascending_by_created_at_when_an_older_one_is_saved_later(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-storage.md#reading-messages item 20."""
        await make_thread(storage)
        later = [user("m-2", created_at=at(2000)), user("m-3", created_at=at(3000))]
        await storage.ai_storage.save_messages("t-1", later)
        older = [user("m-1", created_at=at(1000)), user("m-0", created_at=at(-1000))]
        await storage.ai_storage.save_messages("t-1", older)
        read = await storage.ai_storage.get_messages("t-1")
        assert read == [stored(older[1]), stored(older[0]), stored(later[0]), stored(later[1])]

    async def test_equal_created_at_keeps_insertion_order_within_and_across_batches(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-storage.md#reading-messages item 20."""
        await make_thread(storage)
        await storage.ai_storage.save_messages("t-1", [user("b"), user("a")])
        await storage.ai_storage.save_messages("t-1", [user("d"), user("c", created_at=T0)])
        read = await storage.ai_storage.get_messages("t-1")
        assert [message.id for message in read] == ["b", "a", "d", "c"]

    async def test_a_synthetic_message_holds_the_answered_calls_in_call_order(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-storage.md#reading-messages item 21."""
        await make_thread(storage)
        calls = [call("tc-1"), call("tc-2", "fetch", {"url": "u"}), call("tc-3", "calc", {})]
        asked = assistant("a-1", "Let me check", calls=calls, created_at=at(1000))
        await storage.ai_storage.save_messages("t-1", [asked])
        pikku_clock.advance(5)
        answers = [tool(result("tc-3", "third")), tool(result("tc-1", "first"), message_id="x")]
        await storage.ai_storage.save_messages("t-1", answers)
        assert await storage.ai_storage.get_messages("t-1") == [
            stored(asked),
            synthetic("a-1", [result("tc-1", "first"), result("tc-3", "third", "calc")], at(1000)),
        ]

    async def test_an_assistant_without_answered_calls_has_no_synthetic_message(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-storage.md#reading-messages item 21."""
        await make_thread(storage)
        batch = [assistant("a-1", calls=[call("tc-1"), call("tc-2")]), user("m-1")]
        await storage.ai_storage.save_messages("t-1", batch)
        assert await storage.ai_storage.get_messages("t-1") == [stored(m) for m in batch]

    async def test_last_n_returns_the_last_messages_ascending(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#reading-messages item 22."""
        await make_thread(storage)
        messages = await _save_numbered(storage, 5)
        assert await storage.ai_storage.get_messages("t-1", last_n=2) == messages[3:]
        assert await storage.ai_storage.get_messages("t-1", last_n=1) == messages[4:]

    async def test_last_n_does_not_count_synthetic_messages(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#reading-messages item 22."""
        await make_thread(storage)
        batch = [
            user("m-1"),
            assistant("a-1", calls=[call("tc-1")]),
            tool(result("tc-1")),
            user("m-2"),
            assistant("a-2", calls=[call("tc-2")]),
            tool(result("tc-2", "two")),
        ]
        await storage.ai_storage.save_messages("t-1", batch)
        a_1 = [stored(batch[1]), synthetic("a-1", [result("tc-1")])]
        a_2 = [stored(batch[4]), synthetic("a-2", [result("tc-2", "two")])]
        assert await storage.ai_storage.get_messages("t-1", last_n=2) == [stored(batch[3]), *a_2]
        assert await storage.ai_storage.get_messages("t-1", last_n=3) == [
            *a_1,
            stored(batch[3]),
            *a_2,
        ]

    async def test_last_n_larger_than_the_count_returns_all(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#reading-messages item 22."""
        await make_thread(storage)
        messages = await _save_numbered(storage, 5)
        assert await storage.ai_storage.get_messages("t-1", last_n=10) == messages

    async def test_last_n_zero_returns_nothing(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#reading-messages item 22."""
        await make_thread(storage)
        await _save_numbered(storage, 5)
        assert await storage.ai_storage.get_messages("t-1", last_n=0) == []

    async def test_last_n_none_returns_all(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#reading-messages item 22."""
        await make_thread(storage)
        messages = await _save_numbered(storage, 5)
        assert await storage.ai_storage.get_messages("t-1", last_n=None) == messages

    @pytest.mark.parametrize(
        "last_n", [-1, True, "2", 2.0], ids=["negative", "bool", "str", "float"]
    )
    async def test_an_invalid_last_n_raises_invalid_value(
        self, storage: Storage, last_n: object
    ) -> None:
        """docs/services/ai-storage.md#reading-messages item 22."""
        await make_thread(storage)
        await _save_numbered(storage, 3)
        with pytest.raises(InvalidValue):
            await storage.ai_storage.get_messages("t-1", last_n=wrong(last_n))
        with pytest.raises(InvalidValue):
            await storage.ai_storage.get_messages("t-1", last_n=wrong(last_n), cursor="m-2")

    async def test_a_cursor_alone_returns_the_fifty_messages_before_it(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-storage.md#reading-messages item 23."""
        await make_thread(storage)
        messages = await _save_numbered(storage, 60)
        assert await storage.ai_storage.get_messages("t-1", cursor="m-59") == messages[9:59]

    async def test_a_cursor_with_last_n_returns_that_many_before_it(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#reading-messages item 23."""
        await make_thread(storage)
        messages = await _save_numbered(storage, 60)
        assert (
            await storage.ai_storage.get_messages("t-1", cursor="m-59", last_n=3)
            == (messages[56:59])
        )
        assert (
            await storage.ai_storage.get_messages("t-1", cursor="m-2", last_n=5) == (messages[:2])
        )
        assert await storage.ai_storage.get_messages("t-1", cursor="m-0") == []

    async def test_a_cursor_splits_equal_created_at_by_insertion_order(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-storage.md#reading-messages item 23."""
        await make_thread(storage)
        first = [user(f"m-{i}") for i in range(3)]
        second = [user(f"m-{i}") for i in range(3, 6)]
        await storage.ai_storage.save_messages("t-1", first)
        await storage.ai_storage.save_messages("t-1", second)
        expected = [stored(message) for message in first + second]
        assert await storage.ai_storage.get_messages("t-1", cursor="m-4") == expected[:4]
        assert (
            await storage.ai_storage.get_messages("t-1", cursor="m-4", last_n=2) == (expected[2:4])
        )
        assert await storage.ai_storage.get_messages("t-1", cursor="m-1") == expected[:1]

    async def test_a_cursor_with_last_n_zero_returns_nothing(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#reading-messages item 23."""
        await make_thread(storage)
        await _save_numbered(storage, 5)
        assert await storage.ai_storage.get_messages("t-1", cursor="m-4", last_n=0) == []

    @pytest.mark.parametrize(
        "cursor", ["m-unknown", "m-other", "tool-results-a-1"], ids=["unknown", "other", "synth"]
    )
    async def test_a_cursor_that_is_no_stored_message_of_the_thread_returns_nothing(
        self, storage: Storage, cursor: str
    ) -> None:
        """docs/services/ai-storage.md#reading-messages item 23."""
        await make_thread(storage, "t-1")
        await make_thread(storage, "t-2")
        batch = [user("m-1"), assistant("a-1", calls=[call("tc-1")]), tool(result("tc-1"))]
        await storage.ai_storage.save_messages("t-1", [*batch, user("m-2")])
        await storage.ai_storage.save_messages("t-2", [user("m-other")])
        assert await storage.ai_storage.get_messages("t-1", cursor=cursor) == []
        assert await storage.ai_storage.get_messages("t-1", cursor=cursor, last_n=2) == []

    async def test_get_messages_of_an_unknown_thread_is_empty(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#reading-messages item 24."""
        assert await storage.ai_storage.get_messages("t-unknown") == []
        assert await storage.ai_storage.get_messages("t-unknown", last_n=5) == []
        assert await storage.ai_storage.get_messages("t-unknown", cursor="m-1") == []

    async def test_windows_of_a_long_thread_are_correct(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#reading-messages item 24."""
        await make_thread(storage)
        messages = await _save_numbered(storage, 2000, batch=500)
        ai = storage.ai_storage
        assert await ai.get_messages("t-1", last_n=20) == messages[1980:]
        assert await ai.get_messages("t-1", cursor="m-1000", last_n=20) == messages[980:1000]
        assert await ai.get_messages("t-1", cursor="m-1000") == messages[950:1000]
        assert await ai.get_messages("t-1") == messages  # more than one batch of a backend

    async def test_mutating_returned_records_changes_nothing_stored(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#reading-messages item 25."""
        ai = storage.ai_storage
        await make_thread(storage, metadata={"tags": ["a"]})
        parts: list[JsonObject] = [{"type": "text", "text": "hi", "meta": {"k": [1]}}]
        batch = [user("m-1", parts), assistant("a-1", calls=[call("tc-1", "s", {"q": [1]})])]
        await ai.save_messages("t-1", [*batch, tool(result("tc-1"))])
        await ai.save_working_memory("t-1", WorkingMemoryScope.THREAD, {"list": [1]})
        approval = tool_approval("tc-1", args={"x": [1]})
        run_id = await make_run(storage, pending_approvals=[approval], missing_rpcs=["r"])

        thread = await ai.get_thread("t-1")
        assert thread.metadata is not None
        thread.metadata["tags"] = ["changed"]
        read = await ai.get_messages("t-1")
        assert isinstance(read[0].content, list)
        read[0].content[0]["meta"] = None
        read[0].content.append({"type": "text", "text": "extra"})
        read[1].tool_calls[0].args["q"] = None
        read[1].tool_calls.append(call("tc-9"))
        read[2].tool_results[0].result = "changed"
        memory = await ai.get_working_memory("t-1", WorkingMemoryScope.THREAD)
        assert memory is not None
        memory["list"] = None
        run = await storage.ai_run_state.get_run(run_id)
        assert run is not None
        run.pending_approvals.clear()
        assert run.missing_rpcs is not None
        run.missing_rpcs.append("s")
        run.usage.input_tokens = 99

        assert (await ai.get_thread("t-1")).metadata == {"tags": ["a"]}
        assert await ai.get_messages("t-1") == [
            stored(batch[0]),
            stored(batch[1]),
            synthetic("a-1", [result("tc-1", name="s")]),
        ]
        assert await ai.get_working_memory("t-1", WorkingMemoryScope.THREAD) == {"list": [1]}
        run = await storage.ai_run_state.get_run(run_id)
        assert run is not None
        assert run.pending_approvals == [tool_approval("tc-1", args={"x": [1]})]
        assert run.missing_rpcs == ["r"]
        assert run.usage == Usage()

    async def test_mutating_saved_objects_changes_nothing_stored(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#reading-messages item 25."""
        ai = storage.ai_storage
        tags: list[JsonValue] = ["a"]
        await make_thread(storage, metadata={"tags": tags})
        part: JsonObject = {"type": "text", "text": "hi"}
        parts = [part]
        query: list[JsonValue] = [1]
        batch = [user("m-1", parts), assistant("a-1", calls=[call("tc-1", "s", {"q": query})])]
        await ai.save_messages("t-1", batch)
        remembered: list[JsonValue] = [1]
        await ai.save_working_memory("res-1", WorkingMemoryScope.RESOURCE, {"list": remembered})
        approval_x: list[JsonValue] = [1]
        approval_args: JsonObject = {"x": approval_x}
        rpcs = ["r"]
        usage = Usage(input_tokens=1)
        run_id = await make_run(
            storage,
            pending_approvals=[tool_approval("tc-1", args=approval_args)],
            missing_rpcs=rpcs,
            usage=usage,
        )

        tags.append("b")
        part["text"] = "changed"
        parts.append({"type": "text", "text": "extra"})
        query.append(2)
        batch[1].tool_calls[0].name = "changed"
        remembered.append(2)
        approval_x.append(2)
        rpcs.append("s")
        usage.input_tokens = 99

        assert (await ai.get_thread("t-1")).metadata == {"tags": ["a"]}
        read = await ai.get_messages("t-1")
        assert read[0].content == [{"type": "text", "text": "hi"}]
        assert read[1].tool_calls == [call("tc-1", "s", {"q": [1]})]
        assert await ai.get_working_memory("res-1", WorkingMemoryScope.RESOURCE) == {"list": [1]}
        run = await storage.ai_run_state.get_run(run_id)
        assert run is not None
        assert run.pending_approvals == [tool_approval("tc-1", args={"x": [1]})]
        assert run.missing_rpcs == ["r"]
        assert run.usage == Usage(input_tokens=1)
