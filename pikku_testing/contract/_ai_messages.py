"""Contract tests of `save_messages` (docs/services/ai-storage.md#saving-messages item 7-19)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.codec import JsonObject
from pikku_storage.errors import ConflictError, InvalidValue, ThreadNotFound
from pikku_storage.records import Message, MessageRole, ToolCall, ToolResult
from pikku_testing.contract._builders_ai import (
    assistant,
    at,
    call,
    json_identical,
    make_thread,
    result,
    snapshot,
    stored,
    synthetic,
    system,
    tool,
    user,
    wrong,
)

__all__ = ["SaveMessageTests"]

STRING_CONTENTS = ["Hello", "", '"x"', "x", "[1]", "null", "héllo wörld 中文 🎉", "a\nb\tc\\"]

PARTS: list[JsonObject] = [
    {"type": "text", "text": "look at this"},
    {"type": "image", "data": "aGVsbG8=", "mediaType": "image/png"},
    {"type": "image", "url": "https://example.com/a.png"},
    {"type": "file", "data": "JVBERi0=", "mediaType": "application/pdf", "filename": "a.pdf"},
    {"type": "x-widget", "extra": {"nested": [1, {"deep": None}], "flag": False}, "n": []},
    {"type": "numbers", "big": 2**70, "float": 1e16, "small": 1.5e-7, "neg": -3},
]

BAD_CONTENT: dict[str, object] = {
    "non-dict part": ["text"],
    "part without type": [{"text": "x"}],
    "non-string type": [{"type": 1, "text": "x"}],
    "non-JSON value": [{"type": "text", "text": {1, 2}}],
    "a dict": {"type": "text", "text": "x"},
    "a number": 7,
}

SHAPE_VIOLATIONS: dict[str, object] = {
    "tool_calls on user": Message(id="bad", role=MessageRole.USER, tool_calls=[call("tc-9")]),
    "tool_calls on system": Message(id="bad", role=MessageRole.SYSTEM, tool_calls=[call("tc-9")]),
    "tool_results on user": Message(id="bad", role=MessageRole.USER, tool_results=[result()]),
    "tool_results on assistant": Message(
        id="bad", role=MessageRole.ASSISTANT, tool_results=[result()]
    ),
    "content on tool": Message(
        id="tool-9", role=MessageRole.TOOL, content="x", tool_results=[result()]
    ),
    "tool_calls on tool": Message(
        id="tool-9", role=MessageRole.TOOL, tool_calls=[call("tc-9")], tool_results=[result()]
    ),
    "synthetic id prefix": user("tool-results-a-1"),
    "unknown role": Message(id="bad", role=wrong("robot"), content="x"),
    "naive created_at": user("bad", created_at=datetime(2026, 1, 1)),
    "non-string result": tool(ToolResult(id="tc-1", name="search", result=wrong(42))),
    "non-dict args": assistant("bad", calls=[ToolCall(id="tc-9", name="s", args=wrong([1]))]),
    "empty call name": assistant("bad", calls=[call("tc-9", "")]),
    "256-character call name": assistant("bad", calls=[call("tc-9", "n" * 256)]),
    "tool message with empty id": tool(result(), message_id=""),
    "not a Message": {"id": "bad", "role": "user", "content": "x"},
    "tool_calls not a list": Message(id="bad", role=MessageRole.ASSISTANT, tool_calls=wrong("x")),
    "dict in place of ToolCall": assistant("bad", calls=[wrong({"id": "tc-9", "name": "s"})]),
}


class SaveMessageTests:
    """`save_messages`: content, checks in order, tool results, shape and time
    (docs/contract.md)."""

    async def test_string_content_round_trips_exactly(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#saving-messages item 7."""
        await make_thread(storage)
        messages = [user(f"m-{i}", content) for i, content in enumerate(STRING_CONTENTS)]
        await storage.ai_storage.save_messages("t-1", messages)
        assert await storage.ai_storage.get_messages("t-1") == [stored(m) for m in messages]

    async def test_none_and_empty_list_content_round_trip(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#saving-messages item 7."""
        await make_thread(storage)
        messages = [user("m-none", None), assistant("m-empty", []), system("s-1", None)]
        await storage.ai_storage.save_messages("t-1", messages)
        read = await storage.ai_storage.get_messages("t-1")
        assert read == [stored(m) for m in messages]
        assert [m.content for m in read] == [None, [], None]

    async def test_content_parts_round_trip_verbatim(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#saving-messages item 8."""
        await make_thread(storage)
        messages = [user("m-1", PARTS), assistant("a-1", [PARTS[0]])]
        await storage.ai_storage.save_messages("t-1", messages)
        read = await storage.ai_storage.get_messages("t-1")
        assert read == [stored(m) for m in messages]
        assert json_identical(read[0].content, PARTS)

    @pytest.mark.parametrize("content", BAD_CONTENT.values(), ids=BAD_CONTENT.keys())
    async def test_invalid_content_raises_invalid_value_and_writes_nothing(
        self, storage: Storage, pikku_clock: ManualClock, content: object
    ) -> None:
        """docs/services/ai-storage.md#saving-messages item 9."""
        await make_thread(storage)
        await storage.ai_storage.save_messages("t-1", [user("m-0")])
        pikku_clock.advance(1)
        before = await snapshot(storage)
        with pytest.raises(InvalidValue):
            await storage.ai_storage.save_messages(
                "t-1", [user("m-1"), user("m-2", wrong(content))]
            )
        assert await snapshot(storage) == before

    @pytest.mark.parametrize(
        "batch",
        [[user()], [tool(result())], []],
        ids=["messages", "only-tool-messages", "empty"],
    )
    async def test_save_messages_to_an_unknown_thread_raises_thread_not_found(
        self, storage: Storage, batch: list[Message]
    ) -> None:
        """docs/services/ai-storage.md#saving-messages item 10."""
        with pytest.raises(ThreadNotFound) as caught:
            await storage.ai_storage.save_messages("t-1", batch)
        assert str(caught.value) == "Thread not found: t-1"
        assert await storage.agent_runs.get_thread("t-1") is None
        assert await storage.ai_storage.get_messages("t-1") == []

    async def test_a_message_id_repeated_in_a_batch_raises_conflict_and_writes_nothing(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-storage.md#saving-messages item 11."""
        await make_thread(storage)
        await storage.ai_storage.save_messages("t-1", [user("m-0")])
        pikku_clock.advance(1)
        before = await snapshot(storage)
        with pytest.raises(ConflictError) as caught:
            await storage.ai_storage.save_messages(
                "t-1", [user("m-1"), user("m-2"), assistant("m-1")]
            )
        assert str(caught.value) == "Message already exists: thread=t-1, message=m-1"
        assert await snapshot(storage) == before

    async def test_a_stored_message_id_reused_raises_conflict_and_writes_nothing(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-storage.md#saving-messages item 11."""
        await make_thread(storage)
        await storage.ai_storage.save_messages("t-1", [user("m-1")])
        pikku_clock.advance(1)
        before = await snapshot(storage)
        with pytest.raises(ConflictError) as caught:
            await storage.ai_storage.save_messages("t-1", [user("m-2"), assistant("m-1")])
        assert str(caught.value) == "Message already exists: thread=t-1, message=m-1"
        assert await snapshot(storage) == before

    async def test_one_message_id_and_tool_call_id_are_accepted_in_two_threads(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-storage.md#saving-messages item 12."""
        batch = [assistant("a-1", calls=[call("tc-1")]), tool(result("tc-1"))]
        for thread_id in ("t-1", "t-2"):
            await make_thread(storage, thread_id)
            await storage.ai_storage.save_messages(thread_id, batch)
        expected = [stored(batch[0]), synthetic("a-1", [result("tc-1")])]
        assert await storage.ai_storage.get_messages("t-1") == expected
        assert await storage.ai_storage.get_messages("t-2") == expected

    @pytest.mark.parametrize("split", [False, True], ids=["one-message", "two-messages"])
    async def test_a_tool_call_id_repeated_in_a_batch_raises_conflict_and_writes_nothing(
        self, storage: Storage, pikku_clock: ManualClock, split: bool
    ) -> None:
        """docs/services/ai-storage.md#saving-messages item 13."""
        await make_thread(storage)
        await storage.ai_storage.save_messages("t-1", [user("m-0")])
        pikku_clock.advance(1)
        before = await snapshot(storage)
        if split:
            batch = [
                assistant("a-1", calls=[call("tc-1")]),
                assistant("a-2", calls=[call("tc-1", "other")]),
            ]
        else:
            batch = [assistant("a-1", calls=[call("tc-1"), call("tc-1")])]
        with pytest.raises(ConflictError) as caught:
            await storage.ai_storage.save_messages("t-1", [user("m-1"), *batch])
        assert str(caught.value) == "Tool call already exists: thread=t-1, tool_call=tc-1"
        assert await snapshot(storage) == before

    async def test_a_stored_tool_call_id_reused_raises_conflict_and_writes_nothing(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-storage.md#saving-messages item 13."""
        await make_thread(storage)
        await storage.ai_storage.save_messages("t-1", [assistant("a-1", calls=[call("tc-1")])])
        pikku_clock.advance(1)
        before = await snapshot(storage)
        with pytest.raises(ConflictError) as caught:
            await storage.ai_storage.save_messages(
                "t-1", [user("m-2"), assistant("a-2", calls=[call("tc-1")])]
            )
        assert str(caught.value) == "Tool call already exists: thread=t-1, tool_call=tc-1"
        assert await snapshot(storage) == before

    async def test_a_tool_result_saved_later_attaches_to_its_assistant(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-storage.md#saving-messages item 14."""
        await make_thread(storage)
        asked = assistant("a-1", calls=[call("tc-1", "search", {"query": "test"})])
        await storage.ai_storage.save_messages("t-1", [asked])
        pikku_clock.advance(1)
        await storage.ai_storage.save_messages("t-1", [tool(result("tc-1", "found it"))])
        assert await storage.ai_storage.get_messages("t-1") == [
            stored(asked),
            synthetic("a-1", [result("tc-1", "found it", "search")]),
        ]

    async def test_a_tool_message_before_its_assistant_in_a_batch_attaches_its_result(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-storage.md#saving-messages item 15."""
        await make_thread(storage)
        asked = assistant("a-1", calls=[call("tc-1")])
        await storage.ai_storage.save_messages("t-1", [tool(result("tc-1")), asked])
        assert await storage.ai_storage.get_messages("t-1") == [
            stored(asked),
            synthetic("a-1", [result("tc-1")]),
        ]

    @pytest.mark.parametrize("case", ["unknown-call", "call-of-another-thread"])
    async def test_a_tool_result_without_a_matching_call_raises_invalid_value(
        self, storage: Storage, pikku_clock: ManualClock, case: str
    ) -> None:
        """docs/services/ai-storage.md#saving-messages item 16."""
        await make_thread(storage, "t-1")
        await make_thread(storage, "t-2")
        await storage.ai_storage.save_messages("t-1", [assistant("a-1", calls=[call("tc-1")])])
        await storage.ai_storage.save_messages("t-2", [assistant("a-9", calls=[call("tc-9")])])
        pikku_clock.advance(1)
        before = await snapshot(storage, ["t-1", "t-2"])
        call_id = "tc-x" if case == "unknown-call" else "tc-9"
        with pytest.raises(InvalidValue) as caught:
            await storage.ai_storage.save_messages(
                "t-1", [user("m-1"), tool(result("tc-1")), tool(result(call_id))]
            )
        assert str(caught.value) == (
            f"Tool result has no matching tool call: thread=t-1, tool_call={call_id}"
        )
        assert await snapshot(storage, ["t-1", "t-2"]) == before

    async def test_a_tool_result_for_a_call_saved_only_later_raises_invalid_value(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-storage.md#saving-messages item 16."""
        await make_thread(storage)
        before = await snapshot(storage)
        with pytest.raises(InvalidValue):
            await storage.ai_storage.save_messages("t-1", [user("m-1"), tool(result("tc-1"))])
        assert await snapshot(storage) == before
        pikku_clock.advance(1)
        asked = assistant("a-1", calls=[call("tc-1")])
        await storage.ai_storage.save_messages("t-1", [asked])
        assert await storage.ai_storage.get_messages("t-1") == [stored(asked, at(1000))]

    async def test_a_second_result_replaces_the_first_across_calls(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#saving-messages item 17."""
        await make_thread(storage)
        asked = assistant("a-1", calls=[call("tc-1")])
        await storage.ai_storage.save_messages("t-1", [asked, tool(result("tc-1", "first"))])
        await storage.ai_storage.save_messages("t-1", [tool(result("tc-1", "second"))])
        assert await storage.ai_storage.get_messages("t-1") == [
            stored(asked),
            synthetic("a-1", [result("tc-1", "second")]),
        ]

    async def test_the_later_result_in_a_batch_wins(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#saving-messages item 17."""
        await make_thread(storage)
        asked = assistant("a-1", calls=[call("tc-1"), call("tc-2")])
        batch = [
            tool(result("tc-1", "first"), result("tc-2", "x"), result("tc-1", "second")),
            asked,
            tool(result("tc-2", "y"), message_id="tool-2"),
        ]
        await storage.ai_storage.save_messages("t-1", batch)
        assert await storage.ai_storage.get_messages("t-1") == [
            stored(asked),
            synthetic("a-1", [result("tc-1", "second"), result("tc-2", "y")]),
        ]

    @pytest.mark.parametrize("bad", SHAPE_VIOLATIONS.values(), ids=SHAPE_VIOLATIONS.keys())
    async def test_a_shape_violation_raises_invalid_value_and_writes_nothing(
        self, storage: Storage, pikku_clock: ManualClock, bad: object
    ) -> None:
        """docs/services/ai-storage.md#saving-messages item 18."""
        await make_thread(storage)
        await storage.ai_storage.save_messages("t-1", [assistant("a-1", calls=[call("tc-1")])])
        pikku_clock.advance(1)
        before = await snapshot(storage)
        with pytest.raises(InvalidValue):
            await storage.ai_storage.save_messages("t-1", [user("m-1"), wrong(bad)])
        assert await snapshot(storage) == before

    async def test_messages_that_are_not_a_list_raise_invalid_value(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#saving-messages item 18."""
        await make_thread(storage)
        before = await snapshot(storage)
        for bad in (user(), "m-1", None):
            with pytest.raises(InvalidValue):
                await storage.ai_storage.save_messages("t-1", wrong(bad))
        assert await snapshot(storage) == before

    async def test_created_at_none_stores_the_clock(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/ai-storage.md#saving-messages item 19."""
        await make_thread(storage)
        pikku_clock.advance(1.5)
        await storage.ai_storage.save_messages("t-1", [user()])
        assert await storage.ai_storage.get_messages("t-1") == [stored(user(), at(1500))]

    async def test_an_aware_non_utc_created_at_reads_back_as_the_same_instant_in_utc(
        self, storage: Storage
    ) -> None:
        """docs/services/ai-storage.md#saving-messages item 19."""
        await make_thread(storage)
        india = timezone(timedelta(hours=5, minutes=30))
        await storage.ai_storage.save_messages(
            "t-1", [user(created_at=datetime(2026, 3, 1, 12, 0, tzinfo=india))]
        )
        (read,) = await storage.ai_storage.get_messages("t-1")
        assert read.created_at == datetime(2026, 3, 1, 6, 30, tzinfo=UTC)
        assert read.created_at.utcoffset() == timedelta(0)

    async def test_created_at_is_truncated_to_milliseconds(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#saving-messages item 19."""
        await make_thread(storage)
        await storage.ai_storage.save_messages(
            "t-1", [user(created_at=datetime(2026, 2, 1, 0, 0, 0, 123999, tzinfo=UTC))]
        )
        (read,) = await storage.ai_storage.get_messages("t-1")
        assert read.created_at == datetime(2026, 2, 1, 0, 0, 0, 123000, tzinfo=UTC)

    async def test_a_tool_result_name_reads_back_as_the_call_name(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#saving-messages item 19."""
        await make_thread(storage)
        asked = assistant("a-1", calls=[call("tc-1", "search")])
        await storage.ai_storage.save_messages("t-1", [asked, tool(result("tc-1", name="other"))])
        assert await storage.ai_storage.get_messages("t-1") == [
            stored(asked),
            synthetic("a-1", [result("tc-1", name="search")]),
        ]

    async def test_a_tool_message_id_and_time_are_not_returned(self, storage: Storage) -> None:
        """docs/services/ai-storage.md#saving-messages item 19."""
        await make_thread(storage)
        asked = assistant("a-1", calls=[call("tc-1")], created_at=at(1000))
        answer = tool(result("tc-1"), message_id="tool-xyz", created_at=at(9000))
        await storage.ai_storage.save_messages("t-1", [asked, answer])
        read = await storage.ai_storage.get_messages("t-1")
        assert read == [stored(asked), synthetic("a-1", [result("tc-1")], at(1000))]
        assert all(message.id != "tool-xyz" for message in read)
