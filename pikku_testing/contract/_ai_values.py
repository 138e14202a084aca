"""Contract tests of identifiers and values in `AIStorageService` (docs/contract.md Identifiers
52-56)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, TypeAlias

import pytest

from pikku_storage import Storage
from pikku_storage.codec import JsonObject
from pikku_storage.errors import InvalidValue
from pikku_storage.records import Message, MessageRole, Thread, WorkingMemoryScope
from pikku_testing._types import StorageFactory
from pikku_testing.contract._builders_ai import (
    NON_JSON,
    SCALARS,
    T0,
    assistant,
    call,
    expected_run,
    json_identical,
    make_run,
    make_thread,
    result,
    snapshot,
    stored,
    synthetic,
    tool,
    tool_approval,
    user,
    wrong,
)

__all__ = ["BAD_IDS", "StorageValueTests"]

THREAD = WorkingMemoryScope.THREAD
RESOURCE = WorkingMemoryScope.RESOURCE

Call: TypeAlias = Callable[[Storage, object], Awaitable[object]]

ODD_IDS: Final = {
    "one-char": "x",
    "unicode": "é",
    "emoji": "🎉",
    "spaces-and-quotes": "a b 'c' \"d\"",
    "colon": "x:y",
    "braces": "{tag}",
    "percent": "100%",
    "255-cjk": "中" * 255,
    "255-mixed": ("é:{}% '\"x" * 40)[:255],
}

BAD_IDS: Final[dict[str, object]] = {"empty": "", "256-chars": "x" * 256, "int": 7, "bytes": b"t-1"}

ID_CALLS: Final[dict[str, Call]] = {
    "create_thread thread_id": lambda s, x: s.ai_storage.create_thread("res-1", thread_id=wrong(x)),
    "create_thread resource_id": lambda s, x: s.ai_storage.create_thread(wrong(x)),
    "get_thread": lambda s, x: s.ai_storage.get_thread(wrong(x)),
    "get_threads": lambda s, x: s.ai_storage.get_threads(wrong(x)),
    "delete_thread": lambda s, x: s.ai_storage.delete_thread(wrong(x)),
    "save_messages thread_id": lambda s, x: s.ai_storage.save_messages(wrong(x), [user("m-9")]),
    "message id": lambda s, x: s.ai_storage.save_messages("t-1", [user(wrong(x))]),
    "tool call id": lambda s, x: s.ai_storage.save_messages(
        "t-1", [assistant("a-9", calls=[call(wrong(x))])]
    ),
    "tool result id": lambda s, x: s.ai_storage.save_messages("t-1", [tool(result(wrong(x)))]),
    "tool message id": lambda s, x: s.ai_storage.save_messages(
        "t-1", [user("m-9"), tool(result(), message_id=wrong(x))]
    ),
    "get_messages thread_id": lambda s, x: s.ai_storage.get_messages(wrong(x)),
    "get_messages cursor": lambda s, x: s.ai_storage.get_messages("t-1", cursor=wrong(x)),
    "get thread memory": lambda s, x: s.ai_storage.get_working_memory(wrong(x), THREAD),
    "get resource memory": lambda s, x: s.ai_storage.get_working_memory(wrong(x), RESOURCE),
    "save thread memory": lambda s, x: s.ai_storage.save_working_memory(wrong(x), THREAD, {}),
    "save resource memory": lambda s, x: s.ai_storage.save_working_memory(wrong(x), RESOURCE, {}),
    "delete thread memory": lambda s, x: s.ai_storage.delete_working_memory(wrong(x), THREAD),
    "delete resource memory": lambda s, x: s.ai_storage.delete_working_memory(wrong(x), RESOURCE),
}

TEXT_CALLS: Final[dict[str, Call]] = {
    "thread id": lambda s, x: s.ai_storage.create_thread("res-1", thread_id=wrong(f"t{x}")),
    "resource id": lambda s, x: s.ai_storage.create_thread(wrong(f"r{x}")),
    "title": lambda s, x: s.ai_storage.create_thread("res-1", thread_id="t-9", title=f"a{x}"),
    "message id": lambda s, x: s.ai_storage.save_messages("t-1", [user(f"m{x}")]),
    "string content": lambda s, x: s.ai_storage.save_messages("t-1", [user("m-9", f"a{x}")]),
    "tool call id": lambda s, x: s.ai_storage.save_messages(
        "t-1", [assistant("a-9", calls=[call(f"tc{x}")])]
    ),
    "tool call name": lambda s, x: s.ai_storage.save_messages(
        "t-1", [assistant("a-9", calls=[call("tc-9", f"n{x}")])]
    ),
    "tool result text": lambda s, x: s.ai_storage.save_messages(
        "t-1", [tool(result("tc-1", f"r{x}"))]
    ),
    "tool result name": lambda s, x: s.ai_storage.save_messages(
        "t-1", [tool(result("tc-1", name=f"n{x}"))]
    ),
    "memory id": lambda s, x: s.ai_storage.save_working_memory(f"r{x}", RESOURCE, {}),
    "cursor": lambda s, x: s.ai_storage.get_messages("t-1", cursor=f"m{x}"),
}
# Where only a lone surrogate is wrong: U+0000 is fine inside JSON (docs/contract.md Identifiers
# 54).
JSON_TEXT_CALLS: Final[dict[str, Call]] = {
    "metadata value": lambda s, x: s.ai_storage.create_thread(
        "res-1", thread_id="t-9", metadata={"k": f"v{x}"}
    ),
    "metadata key": lambda s, x: s.ai_storage.create_thread(
        "res-1", thread_id="t-9", metadata={f"k{x}": 1}
    ),
    "content part": lambda s, x: s.ai_storage.save_messages(
        "t-1", [user("m-9", [{"type": "text", "text": f"a{x}"}])]
    ),
    "args value": lambda s, x: s.ai_storage.save_messages(
        "t-1", [assistant("a-9", calls=[call("tc-9", args={"q": f"a{x}"})])]
    ),
    "args key": lambda s, x: s.ai_storage.save_messages(
        "t-1", [assistant("a-9", calls=[call("tc-9", args={f"q{x}": 1})])]
    ),
    "memory value": lambda s, x: s.ai_storage.save_working_memory("t-1", THREAD, {"m": f"a{x}"}),
    "memory key": lambda s, x: s.ai_storage.save_working_memory("res-1", RESOURCE, {f"m{x}": 1}),
}

JSON_CALLS: Final[dict[str, Call]] = {
    "metadata": lambda s, x: s.ai_storage.create_thread(
        "res-1", thread_id="t-9", metadata=wrong({"v": x})
    ),
    "args": lambda s, x: s.ai_storage.save_messages(
        "t-1", [user("m-9"), assistant("a-9", calls=[call("tc-9", args=wrong({"v": [x]}))])]
    ),
    "content part": lambda s, x: s.ai_storage.save_messages(
        "t-1", [user("m-9", wrong([{"type": "data", "v": x}]))]
    ),
    "thread memory": lambda s, x: s.ai_storage.save_working_memory("t-1", THREAD, wrong({"v": x})),
    "resource memory": lambda s, x: s.ai_storage.save_working_memory(
        "res-1", RESOURCE, wrong({"v": {"w": x}})
    ),
}


async def _seed(storage: Storage) -> None:
    """Thread `t-1` with a call `tc-1` and thread memory: lookups that would succeed."""
    await make_thread(storage)
    await storage.ai_storage.save_messages("t-1", [assistant("a-1", calls=[call("tc-1")])])
    await storage.ai_storage.save_working_memory("t-1", THREAD, {"kept": True})


class StorageValueTests:
    """Identifiers, text and JSON values through `AIStorageService` (docs/contract.md
    Identifiers)."""

    @pytest.mark.parametrize("odd", ODD_IDS.values(), ids=ODD_IDS.keys())
    async def test_unusual_ids_round_trip_as_every_kind_of_id(
        self, storage: Storage, odd: str
    ) -> None:
        """docs/concepts.md#values item 52."""
        ai, state, console = storage.ai_storage, storage.ai_run_state, storage.agent_runs
        await ai.create_thread(odd, thread_id=odd, title=odd)
        asked = assistant(odd, odd, calls=[call(odd, odd, {odd: odd})])
        await ai.save_messages(odd, [asked, tool(result(odd, odd))])
        approval = tool_approval(odd, odd, {odd: odd})
        run_id = await make_run(storage, odd, odd, odd, pending_approvals=[approval])
        await ai.save_working_memory(odd, THREAD, {odd: "thread"})
        await ai.save_working_memory(odd, RESOURCE, {odd: "resource"})
        thread = Thread(id=odd, resource_id=odd, title=odd, created_at=T0, updated_at=T0)
        assert await ai.get_thread(odd) == thread
        assert await ai.get_threads(odd) == [thread]
        assert await console.list_threads(agent_name=odd, resource_id=odd) == [thread]
        assert await ai.get_messages(odd) == [
            stored(asked),
            synthetic(odd, [result(odd, odd, odd)]),
        ]
        assert await ai.get_messages(odd, cursor=odd) == []
        run = expected_run(
            run_id, thread_id=odd, agent_name=odd, resource_id=odd, pending_approvals=[approval]
        )
        assert await state.get_runs_by_thread(odd) == [run]
        assert await state.find_run_by_tool_call_id(odd) == (run, approval)
        assert await console.get_distinct_agent_names() == [odd]
        assert await ai.get_working_memory(odd, THREAD) == {odd: "thread"}
        assert await ai.get_working_memory(odd, RESOURCE) == {odd: "resource"}

    async def test_ids_that_an_escaping_scheme_could_merge_stay_distinct(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 52."""
        ai = storage.ai_storage
        ids = ["x:y", "x%3Ay", "a}b", "a", "a%7Db", "{a}", "a b", "a:b:c"]
        for thread_id in ids:
            await ai.create_thread(thread_id, thread_id=thread_id)
            await ai.save_messages(thread_id, [user(thread_id, thread_id)])
            await ai.save_working_memory(thread_id, RESOURCE, {"id": thread_id})
        await ai.delete_thread("x:y")
        for thread_id in ids[1:]:
            assert await ai.get_messages(thread_id) == [stored(user(thread_id, thread_id))]
            assert [t.id for t in await ai.get_threads(thread_id)] == [thread_id]
        for thread_id in ids:
            assert await ai.get_working_memory(thread_id, RESOURCE) == {"id": thread_id}
        assert await ai.get_threads("x:y") == []

    @pytest.mark.parametrize("method", ID_CALLS.values(), ids=ID_CALLS.keys())
    async def test_an_empty_overlong_or_non_string_id_raises_invalid_value(
        self, storage: Storage, method: Call
    ) -> None:
        """docs/concepts.md#values item 53."""
        await _seed(storage)
        before = await snapshot(storage)
        for bad in BAD_IDS.values():
            with pytest.raises(InvalidValue):
                await method(storage, bad)
        assert await snapshot(storage) == before

    @pytest.mark.parametrize("method", TEXT_CALLS.values(), ids=TEXT_CALLS.keys())
    async def test_nul_in_an_id_or_text_and_a_lone_surrogate_raise_invalid_value(
        self, storage: Storage, method: Call
    ) -> None:
        """docs/concepts.md#values item 54."""
        await _seed(storage)
        before = await snapshot(storage)
        for bad in ("\x00", "\ud800", "\udfff"):
            with pytest.raises(InvalidValue):
                await method(storage, bad)
        assert await snapshot(storage) == before

    @pytest.mark.parametrize("method", JSON_TEXT_CALLS.values(), ids=JSON_TEXT_CALLS.keys())
    async def test_a_lone_surrogate_inside_json_raises_invalid_value(
        self, storage: Storage, method: Call
    ) -> None:
        """docs/concepts.md#values item 54."""
        await _seed(storage)
        before = await snapshot(storage)
        with pytest.raises(InvalidValue):
            await method(storage, "\ud83c")
        assert await snapshot(storage) == before

    async def test_nul_inside_metadata_args_content_and_memory_round_trips(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 54."""
        ai = storage.ai_storage
        payload: JsonObject = {"k\x00": "v\x00", "list": ["\x00"]}
        await make_thread(storage, metadata=payload)
        parts: list[JsonObject] = [{"type": "text", "text": "a\x00b", **payload}]
        batch = [user("m-1", parts), assistant("a-1", calls=[call("tc-1", args=payload)])]
        await ai.save_messages("t-1", batch)
        await ai.save_working_memory("t-1", THREAD, payload)
        await ai.save_working_memory("res-1", RESOURCE, payload)
        assert (await ai.get_thread("t-1")).metadata == payload
        assert await ai.get_messages("t-1") == [stored(m) for m in batch]
        assert await ai.get_working_memory("t-1", THREAD) == payload
        assert await ai.get_working_memory("res-1", RESOURCE) == payload

    @pytest.mark.parametrize("method", JSON_CALLS.values(), ids=JSON_CALLS.keys())
    async def test_a_non_json_value_raises_invalid_value_and_writes_nothing(
        self, storage: Storage, method: Call
    ) -> None:
        """docs/concepts.md#values item 55."""
        await _seed(storage)
        before = await snapshot(storage)
        for value in NON_JSON.values():
            with pytest.raises(InvalidValue):
                await method(storage, value)
        assert await snapshot(storage) == before

    @pytest.mark.parametrize("metadata", [[1], "x", 1, True], ids=["list", "str", "int", "bool"])
    async def test_metadata_that_is_not_a_dict_raises_invalid_value(
        self, storage: Storage, metadata: object
    ) -> None:
        """docs/concepts.md#values item 55."""
        with pytest.raises(InvalidValue):
            await storage.ai_storage.create_thread(
                "res-1", thread_id="t-1", metadata=wrong(metadata)
            )
        assert await storage.agent_runs.get_thread("t-1") is None
        assert await storage.agent_runs.list_threads() == []

    async def test_json_scalars_round_trip_with_their_types(self, storage: Storage) -> None:
        """docs/concepts.md#values item 55."""
        ai = storage.ai_storage
        await make_thread(storage, metadata=SCALARS)
        part: JsonObject = {"type": "data", **SCALARS}
        batch = [user("m-1", [part]), assistant("a-1", calls=[call("tc-1", args=SCALARS)])]
        await ai.save_messages("t-1", batch)
        await ai.save_working_memory("t-1", THREAD, SCALARS)
        await ai.save_working_memory("res-1", RESOURCE, SCALARS)
        read = await ai.get_messages("t-1")
        assert json_identical((await ai.get_thread("t-1")).metadata, SCALARS)
        assert json_identical(read[0].content, [part])
        assert json_identical(read[1].tool_calls[0].args, SCALARS)
        assert json_identical(await ai.get_working_memory("t-1", THREAD), SCALARS)
        assert json_identical(await ai.get_working_memory("res-1", RESOURCE), SCALARS)

    async def test_enum_parameters_accept_plain_strings_and_reads_return_members(
        self, storage: Storage
    ) -> None:
        """docs/concepts.md#values item 56."""
        ai = storage.ai_storage
        await make_thread(storage)
        batch = [
            Message(id="m-1", role=wrong("user"), content="hi"),
            Message(id="a-1", role=wrong("assistant"), tool_calls=[call("tc-1")]),
            Message(id="tool-1", role=wrong("tool"), tool_results=[result("tc-1")]),
        ]
        await ai.save_messages("t-1", batch)
        read = await ai.get_messages("t-1")
        assert [type(m.role) for m in read] == [MessageRole] * 3
        assert [m.role for m in read] == [MessageRole.USER, MessageRole.ASSISTANT, MessageRole.TOOL]
        await ai.save_working_memory("t-1", "thread", {"a": 1})
        await ai.save_working_memory("res-1", "resource", {"b": 2})
        assert await ai.get_working_memory("t-1", THREAD) == {"a": 1}
        assert await ai.get_working_memory("res-1", RESOURCE) == {"b": 2}
        assert await ai.delete_working_memory("t-1", "thread")
        assert await ai.delete_working_memory("res-1", "resource")

    async def test_two_namespaces_do_not_see_each_other(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#values item 56."""
        other = await storage_factory(isolated=True)
        thread = await make_thread(storage)
        run_id = await make_run(storage, pending_approvals=[tool_approval()])
        await storage.ai_storage.save_working_memory("res-1", RESOURCE, {"a": 1})
        assert await other.agent_runs.get_thread("t-1") is None
        assert await other.ai_storage.get_threads("res-1") == []
        assert await other.agent_runs.list_threads() == []
        assert await other.ai_run_state.get_run(run_id) is None
        assert await other.ai_run_state.find_run_by_tool_call_id("tc-1") is None
        assert await other.agent_runs.get_distinct_agent_names() == []
        assert await other.ai_storage.get_working_memory("res-1", RESOURCE) is None
        await make_thread(other, "t-1", "res-2")
        assert await storage.ai_storage.get_thread("t-1") == thread
