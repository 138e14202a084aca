"""Contract tests of owner-scoped thread listing (docs/services/agent-runs.md#owners, spec 05
items 6-10)."""

from __future__ import annotations

from typing import Final

import pytest

from pikku_storage import Storage, resource_in_owners
from pikku_storage.clock import ManualClock
from pikku_storage.errors import InvalidValue
from pikku_storage.records import Thread
from pikku_testing.contract._builders_ai import make_run, make_thread, user, wrong

__all__ = ["OwnerTests"]

ALICE_RESOURCES: Final = (
    "owner-alice",
    "owner-alice:p1",
    "owner-alice:a:b",
    "owner-bob:secret",
    "owner-alice-evil:p",
    "owner-alicex",
    "owner-alice ",
    "OWNER-ALICE",
    "owner-alice;x",
    "owner-al",
)
LITERAL_OWNERS: Final = ("user_1", "50%", "a\\b", "x*", "[y]", "o'q", "名前")
LITERAL_RESOURCES: Final = (
    "user_1",
    "user_1:p",
    "userX1:p",
    "user_10",
    "50%",
    "50%:x",
    "500:x",
    "50abc",
    "a\\b",
    "a\\b:c",
    "ab:c",
    "a\\\\b",
    "x*",
    "x*:1",
    "xy:1",
    "x",
    "[y]",
    "[y]:z",
    "y:z",
    "o'q",
    "o'q:r",
    "oq:r",
    "名前",
    "名前:1",
    "名前x:1",
)


async def _threads(storage: Storage, resources: tuple[str, ...], clock: ManualClock) -> None:
    """One thread per resource, `t-<i>`, each a second newer than the previous."""
    for index, resource in enumerate(resources):
        await make_thread(storage, f"t-{index}", resource)
        clock.advance(1)


def _ids(threads: list[Thread]) -> list[str]:
    return [thread.id for thread in threads]


class OwnerTests:
    """`list_threads(owners=...)`: an authorization constraint on a thread's own resource."""

    async def test_owners_lists_the_owner_and_its_sub_resources_only(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """Spec 05 §5 item 6."""
        await _threads(storage, ALICE_RESOURCES, pikku_clock)
        listed = await storage.agent_runs.list_threads(owners=["owner-alice"])
        assert [t.resource_id for t in listed] == [
            "owner-alice:a:b",
            "owner-alice:p1",
            "owner-alice",
        ]
        assert listed == [await storage.ai_storage.get_thread(t) for t in ("t-2", "t-1", "t-0")]

    async def test_a_shorter_owner_matches_only_its_own_resource(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """Spec 05 §5 item 6."""
        await _threads(storage, ALICE_RESOURCES, pikku_clock)
        listed = await storage.agent_runs.list_threads(owners=["owner-al"])
        assert [t.resource_id for t in listed] == ["owner-al"]

    async def test_empty_owners_lists_nothing(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """Spec 05 §5 item 7."""
        await _threads(storage, ALICE_RESOURCES, pikku_clock)
        await make_run(storage, "t-0", resource_id="owner-alice")
        console = storage.agent_runs
        assert await console.list_threads(owners=[]) == []
        assert await console.list_threads(owners=()) == []
        assert await console.list_threads(owners=[], agent_name="agent-a") == []
        assert await console.list_threads(owners=[], resource_id="owner-alice") == []

    async def test_owners_none_lists_every_thread(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """Spec 05 §5 item 7."""
        await _threads(storage, ALICE_RESOURCES, pikku_clock)
        console = storage.agent_runs
        assert await console.list_threads(owners=None) == await console.list_threads()
        assert len(await console.list_threads(owners=None)) == len(ALICE_RESOURCES)

    @pytest.mark.parametrize("owner", LITERAL_OWNERS)
    async def test_owners_with_pattern_characters_match_literally(
        self, storage: Storage, pikku_clock: ManualClock, owner: str
    ) -> None:
        """Spec 05 §5 item 8."""
        await _threads(storage, LITERAL_RESOURCES, pikku_clock)
        listed = await storage.agent_runs.list_threads(owners=[owner])
        expected = [r for r in LITERAL_RESOURCES if r == owner or r.startswith(owner + ":")]
        assert sorted(t.resource_id for t in listed) == sorted(expected)
        assert len(expected) == 2

    async def test_resource_in_owners_agrees_with_list_threads(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """Spec 05 §5 item 8."""
        resources = ALICE_RESOURCES + LITERAL_RESOURCES
        await _threads(storage, resources, pikku_clock)
        for owners in (["owner-alice"], ["owner-al"], *([o] for o in LITERAL_OWNERS)):
            listed = {t.resource_id for t in await storage.agent_runs.list_threads(owners=owners)}
            assert listed == {r for r in resources if resource_in_owners(r, owners)}

    async def test_resource_in_owners_refuses_a_bare_string(self) -> None:
        """Spec 05 §5 item 10."""
        with pytest.raises(InvalidValue):
            resource_in_owners("a", wrong("a"))
        assert resource_in_owners("a:b", ("a",)) is True
        assert resource_in_owners("ab", ["a"]) is False

    async def test_a_thread_matching_several_owners_is_listed_once(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """Spec 05 §5 item 9."""
        await _threads(storage, ("a:b:c", "a", "a:b", "b"), pikku_clock)
        listed = await storage.agent_runs.list_threads(owners=["a", "a:b", "a"])
        assert _ids(listed) == ["t-2", "t-1", "t-0"]

    async def test_owners_and_agent_name_and_resource_id_combine(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """Spec 05 §5 item 9."""
        await _threads(storage, ("o:1", "o:2", "p:1", "o"), pikku_clock)
        await make_run(storage, "t-0", "agent-a", resource_id="o:1")
        await make_run(storage, "t-2", "agent-a", resource_id="p:1")
        await make_run(storage, "t-1", "agent-b", resource_id="o:2")
        console = storage.agent_runs
        assert _ids(await console.list_threads(owners=["o"], agent_name="agent-a")) == ["t-0"]
        assert _ids(await console.list_threads(owners=["o", "p"], agent_name="agent-a")) == [
            "t-2",
            "t-0",
        ]
        assert _ids(await console.list_threads(owners=["o"], resource_id="o:2")) == ["t-1"]
        assert await console.list_threads(owners=["o"], resource_id="p:1") == []
        assert (
            await console.list_threads(owners=["o"], resource_id="o:2", agent_name="agent-a") == []
        )
        assert await console.list_threads(owners=["o"], agent_name="agent-z") == []

    async def test_owner_pages_follow_thread_order_and_cover_each_thread_once(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """Spec 05 §5 item 9."""
        resources = (*tuple(f"o:{i % 3}" for i in range(7)), "o", "q:1", "q")
        await _threads(storage, resources, pikku_clock)
        console = storage.agent_runs
        whole = await console.list_threads(owners=["o"])
        assert _ids(whole) == [f"t-{i}" for i in (7, 6, 5, 4, 3, 2, 1, 0)]
        for limit in (1, 3):
            pages = [
                await console.list_threads(owners=["o"], limit=limit, offset=offset)
                for offset in range(0, 9, limit)
            ]
            assert [t for page in pages for t in page] == whole
        assert await console.list_threads(owners=["o"], offset=8) == []

    async def test_a_save_messages_reorders_the_owner_listing(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """Spec 05 §5 item 9."""
        await _threads(storage, ("o:1", "o:2", "o"), pikku_clock)
        await storage.ai_storage.save_messages("t-0", [user()])
        listed = await storage.agent_runs.list_threads(owners=["o"], limit=2)
        assert _ids(listed) == ["t-0", "t-2"]
        assert await storage.agent_runs.list_threads(owners=["o"]) == [
            await storage.ai_storage.get_thread(t) for t in ("t-0", "t-2", "t-1")
        ]

    async def test_a_deleted_thread_leaves_the_owner_listing(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """Spec 05 §5 item 9."""
        await _threads(storage, ("o:1", "o:1", "o"), pikku_clock)
        await storage.agent_runs.delete_thread("t-0")
        await storage.agent_runs.delete_thread("t-1")
        assert _ids(await storage.agent_runs.list_threads(owners=["o"])) == ["t-2"]
        await make_thread(storage, "t-9", "o:1")
        assert _ids(await storage.agent_runs.list_threads(owners=["o"])) == ["t-9", "t-2"]

    @pytest.mark.parametrize(
        "owners",
        ["owner-alice", b"owner", [1], ["a", None], [""], ["a\x00"], ["x" * 256], {"a"}],
    )
    async def test_list_threads_with_bad_owners_raises_invalid_value(
        self, storage: Storage, owners: object
    ) -> None:
        """Spec 05 §5 item 10."""
        with pytest.raises(InvalidValue):
            await storage.agent_runs.list_threads(owners=wrong(owners))

    async def test_list_threads_with_101_owners_raises_invalid_value(
        self, storage: Storage
    ) -> None:
        """Spec 05 §5 item 10."""
        with pytest.raises(InvalidValue):
            await storage.agent_runs.list_threads(owners=[f"o{i}" for i in range(101)])
        assert await storage.agent_runs.list_threads(owners=[f"o{i}" for i in range(100)]) == []

    @pytest.mark.parametrize(("limit", "offset"), [(0, 0), (1001, 0), (1, -1), (True, 0)])
    async def test_a_bad_page_is_reported_also_with_empty_owners(
        self, storage: Storage, limit: object, offset: object
    ) -> None:
        """Spec 05 §5 item 10."""
        with pytest.raises(InvalidValue):
            await storage.agent_runs.list_threads(
                owners=[], limit=wrong(limit), offset=wrong(offset)
            )
