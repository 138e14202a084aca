"""`EventHubStoreContract`: topic subscriptions (docs/services/eventhub.md, docs/contract.md item
21-27, 48-49, 55-56).

Exported by `pikku_testing.contract.channels`, the area's public module.
"""

from __future__ import annotations

import asyncio

import pytest

from pikku_storage import Storage
from pikku_storage.errors import ChannelNotFound, InvalidValue
from pikku_testing._types import StorageFactory
from pikku_testing.contract._base import ContractBase
from pikku_testing.contract._builders_channels import BAD_IDS, LONG, channel, read, unchecked
from pikku_testing.contract._capabilities import Capability, requires

__all__ = ["EventHubStoreContract"]


class EventHubStoreContract(ContractBase):
    """`EventHubStore`: topic -> channel subscriptions over the channel store's data
    (docs/services/eventhub.md)."""

    async def test_subscribe_returns_true_and_the_topic_lists_the_channel(
        self, storage: Storage
    ) -> None:
        """docs/services/eventhub.md item 21."""
        await storage.channels.add_channel(channel())
        assert await storage.eventhub.subscribe("topic", "ch-1") is True
        assert await storage.eventhub.get_channel_ids_for_topic("topic") == ["ch-1"]

    async def test_repeated_subscribe_returns_true_and_lists_the_channel_once(
        self, storage: Storage
    ) -> None:
        """docs/services/eventhub.md item 21."""
        await storage.channels.add_channel(channel())
        await storage.eventhub.subscribe("topic", "ch-1")
        assert await storage.eventhub.subscribe("topic", "ch-1") is True
        assert await storage.eventhub.get_channel_ids_for_topic("topic") == ["ch-1"]

    async def test_subscribe_of_an_unknown_channel_returns_false_and_stores_nothing(
        self, storage: Storage
    ) -> None:
        """docs/services/eventhub.md item 22."""
        assert await storage.eventhub.subscribe("topic", "ch-1") is False
        assert await storage.eventhub.get_channel_ids_for_topic("topic") == []
        await storage.channels.add_channel(channel())
        assert await storage.eventhub.get_channel_ids_for_topic("topic") == []
        assert await storage.eventhub.unsubscribe("topic", "ch-1") is False

    async def test_unsubscribe_returns_true_then_false(self, storage: Storage) -> None:
        """docs/services/eventhub.md item 23."""
        await storage.channels.add_channel(channel())
        await storage.eventhub.subscribe("topic", "ch-1")
        assert await storage.eventhub.unsubscribe("topic", "ch-1") is True
        assert await storage.eventhub.unsubscribe("topic", "ch-1") is False
        assert await storage.channels.get_channel_and_session("ch-1") == read()

    async def test_unsubscribe_of_an_unknown_topic_channel_or_pair_returns_false(
        self, storage: Storage
    ) -> None:
        """docs/services/eventhub.md item 23."""
        await storage.channels.add_channel(channel("ch-1"))
        await storage.channels.add_channel(channel("ch-2"))
        await storage.eventhub.subscribe("t1", "ch-1")
        await storage.eventhub.subscribe("t2", "ch-2")
        assert await storage.eventhub.unsubscribe("unknown", "ch-1") is False
        assert await storage.eventhub.unsubscribe("t1", "missing") is False
        assert await storage.eventhub.unsubscribe("t1", "ch-2") is False
        assert await storage.eventhub.get_channel_ids_for_topic("t1") == ["ch-1"]
        assert await storage.eventhub.get_channel_ids_for_topic("t2") == ["ch-2"]

    async def test_unknown_topic_and_topic_whose_subscribers_left_list_nothing(
        self, storage: Storage
    ) -> None:
        """docs/services/eventhub.md item 23."""
        assert await storage.eventhub.get_channel_ids_for_topic("unknown") == []
        await storage.channels.add_channel(channel("ch-1"))
        await storage.channels.add_channel(channel("ch-2"))
        await storage.eventhub.subscribe("topic", "ch-1")
        await storage.eventhub.subscribe("topic", "ch-2")
        await storage.eventhub.unsubscribe("topic", "ch-1")
        await storage.channels.remove_channels(["ch-2"])
        assert await storage.eventhub.get_channel_ids_for_topic("topic") == []

    async def test_topic_lists_subscribers_in_code_point_order(self, storage: Storage) -> None:
        """docs/services/eventhub.md item 24."""
        for channel_id in ("b", "a", "é", "B", "😀", "a b"):
            await storage.channels.add_channel(channel(channel_id))
            await storage.eventhub.subscribe("topic", channel_id)
        listed = await storage.eventhub.get_channel_ids_for_topic("topic")
        assert listed == ["B", "a", "a b", "b", "é", "😀"]

    async def test_unsubscribing_from_one_topic_leaves_the_others(self, storage: Storage) -> None:
        """docs/services/eventhub.md item 25."""
        await storage.channels.add_channel(channel())
        for topic in ("t1", "t2", "t3"):
            await storage.eventhub.subscribe(topic, "ch-1")
        assert await storage.eventhub.unsubscribe("t2", "ch-1") is True
        assert await storage.eventhub.get_channel_ids_for_topic("t1") == ["ch-1"]
        assert await storage.eventhub.get_channel_ids_for_topic("t2") == []
        assert await storage.eventhub.get_channel_ids_for_topic("t3") == ["ch-1"]

    async def test_similar_topic_names_are_distinct(self, storage: Storage) -> None:
        """docs/services/eventhub.md item 25."""
        topics = ["a:b", "a:b:c", "a", "a ", "A", "é", "e\u0301", "😀", LONG, LONG[:-1]]
        for index, topic in enumerate(topics):
            await storage.channels.add_channel(channel(f"ch-{index:02}"))
            assert await storage.eventhub.subscribe(topic, f"ch-{index:02}") is True
        for index, topic in enumerate(topics):
            assert await storage.eventhub.get_channel_ids_for_topic(topic) == [f"ch-{index:02}"]

    @pytest.mark.parametrize("bad", BAD_IDS)
    async def test_subscribe_rejects_a_bad_topic_or_channel_id_and_stores_nothing(
        self, storage: Storage, bad: object
    ) -> None:
        """docs/services/eventhub.md item 26 (bad input)."""
        await storage.channels.add_channel(channel())
        with pytest.raises(InvalidValue):
            await storage.eventhub.subscribe(unchecked(bad), "ch-1")
        with pytest.raises(InvalidValue):
            await storage.eventhub.subscribe("topic", unchecked(bad))
        assert await storage.eventhub.get_channel_ids_for_topic("topic") == []
        assert await storage.eventhub.unsubscribe("topic", "ch-1") is False

    @pytest.mark.parametrize("bad", BAD_IDS)
    async def test_unsubscribe_rejects_a_bad_topic_or_channel_id_and_removes_nothing(
        self, storage: Storage, bad: object
    ) -> None:
        """docs/services/eventhub.md item 26 (bad input)."""
        await storage.channels.add_channel(channel())
        await storage.eventhub.subscribe("topic", "ch-1")
        with pytest.raises(InvalidValue):
            await storage.eventhub.unsubscribe(unchecked(bad), "ch-1")
        with pytest.raises(InvalidValue):
            await storage.eventhub.unsubscribe("topic", unchecked(bad))
        assert await storage.eventhub.get_channel_ids_for_topic("topic") == ["ch-1"]

    @pytest.mark.parametrize("bad", BAD_IDS)
    async def test_get_channel_ids_for_topic_rejects_a_bad_topic(
        self, storage: Storage, bad: object
    ) -> None:
        """docs/services/eventhub.md item 26 (bad input)."""
        with pytest.raises(InvalidValue):
            await storage.eventhub.get_channel_ids_for_topic(unchecked(bad))

    async def test_init_of_either_store_in_any_order_is_idempotent(
        self, storage_factory: StorageFactory
    ) -> None:
        """docs/services/eventhub.md item 27."""
        fresh = await storage_factory(isolated=True)
        await fresh.eventhub.init()
        await fresh.eventhub.init()
        await fresh.channels.init()
        await fresh.channels.init()
        await fresh.channels.add_channel(channel())
        assert await fresh.eventhub.subscribe("topic", "ch-1") is True
        assert await fresh.eventhub.get_channel_ids_for_topic("topic") == ["ch-1"]

    # -- 48-49: concurrency -------------------------------------------------------------------

    async def test_concurrent_subscribes_of_one_pair_all_succeed_and_list_once(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 48."""
        other = await storage_factory()
        await storage.channels.add_channel(channel())
        hubs = (storage.eventhub, other.eventhub)
        results = await asyncio.gather(*(hubs[i % 2].subscribe("topic", "ch-1") for i in range(10)))
        assert results == [True] * 10
        assert await storage.eventhub.get_channel_ids_for_topic("topic") == ["ch-1"]

    async def test_concurrent_unsubscribes_of_one_pair_let_exactly_one_return_true(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 48."""
        other = await storage_factory()
        await storage.channels.add_channel(channel())
        await storage.eventhub.subscribe("topic", "ch-1")
        hubs = (storage.eventhub, other.eventhub)
        results = await asyncio.gather(
            *(hubs[i % 2].unsubscribe("topic", "ch-1") for i in range(10))
        )
        assert sorted(results) == [False] * 9 + [True]
        assert await storage.eventhub.get_channel_ids_for_topic("topic") == []

    async def test_subscribe_racing_remove_channels_never_leaves_an_orphan(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 49."""
        other = await storage_factory()
        for round_ in range(50):
            channel_id = f"ch-{round_:02}"
            await storage.channels.add_channel(channel(channel_id))
            subscribed, _ = await asyncio.gather(
                storage.eventhub.subscribe("topic", channel_id),
                other.channels.remove_channels([channel_id]),
            )
            assert subscribed in (True, False)
            with pytest.raises(ChannelNotFound):
                await storage.channels.get_channel_and_session(channel_id)
            assert channel_id not in await storage.eventhub.get_channel_ids_for_topic("topic")
        assert await storage.eventhub.get_channel_ids_for_topic("topic") == []

    # -- 55-56: isolation and persistence -----------------------------------------------------

    async def test_subscriptions_of_another_namespace_are_invisible(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#lifecycle-and-namespaces item 55."""
        isolated = await storage_factory(isolated=True)
        await storage.channels.add_channel(channel("ch-1"))
        await storage.eventhub.subscribe("topic", "ch-1")
        assert await isolated.eventhub.get_channel_ids_for_topic("topic") == []
        assert await isolated.eventhub.subscribe("topic", "ch-1") is False
        assert await isolated.eventhub.unsubscribe("topic", "ch-1") is False
        await isolated.channels.add_channel(channel("ch-2"))
        await isolated.eventhub.subscribe("topic", "ch-2")
        assert await storage.eventhub.get_channel_ids_for_topic("topic") == ["ch-1"]
        assert await isolated.eventhub.get_channel_ids_for_topic("topic") == ["ch-2"]

    @requires(Capability.PERSISTENT)
    async def test_second_instance_sees_subscriptions(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#lifecycle-and-namespaces item 56."""
        await storage.channels.add_channel(channel("ch-1"))
        await storage.eventhub.subscribe("topic", "ch-1")
        other = await storage_factory()
        assert await other.eventhub.get_channel_ids_for_topic("topic") == ["ch-1"]
        assert await other.eventhub.unsubscribe("topic", "ch-1") is True
        assert await storage.eventhub.get_channel_ids_for_topic("topic") == []
