"""`ChannelStore` liveness, pruning, concurrency and isolation tests (docs/contract.md item 15-20,
47,
50-52, 55-56), the base of `ChannelStoreContract`."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.codec import JsonValue
from pikku_storage.errors import ChannelNotFound, ConflictError, InvalidValue
from pikku_testing._types import StorageFactory
from pikku_testing.contract._base import ContractBase
from pikku_testing.contract._builders_channels import DAY, channel, ms, read, unchecked
from pikku_testing.contract._capabilities import Capability, requires

__all__ = ["ChannelLivenessContract"]


class ChannelLivenessContract(ContractBase):
    """`last_seen`, `touch` and `prune_channels`, racing calls and namespaces
    (docs/services/channels.md)."""

    # -- 15-20: liveness and pruning ----------------------------------------------------------

    async def test_add_channel_sets_last_seen_to_now(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/channels.md item 15."""
        t0 = pikku_clock.now()
        await storage.channels.add_channel(channel())
        assert await storage.channels.prune_channels(last_seen_before=t0) == []
        assert await storage.channels.prune_channels(last_seen_before=t0 + ms(1)) == ["ch-1"]

    async def test_touch_moves_last_seen_to_now(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/channels.md item 16."""
        t0 = pikku_clock.now()
        await storage.channels.add_channel(channel())
        pikku_clock.advance(60)
        await storage.channels.touch("ch-1")
        cutoff = t0 + timedelta(seconds=30)
        assert await storage.channels.prune_channels(last_seen_before=cutoff) == []
        assert await storage.channels.get_channel_and_session("ch-1") == read()

    async def test_get_and_set_user_session_do_not_move_last_seen(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/channels.md item 16."""
        t0 = pikku_clock.now()
        await storage.channels.add_channel(channel())
        pikku_clock.advance(60)
        await storage.channels.get_channel_and_session("ch-1")
        await storage.channels.set_user_session("ch-1", {"a": 1})
        cutoff = t0 + timedelta(seconds=30)
        assert await storage.channels.prune_channels(last_seen_before=cutoff) == ["ch-1"]

    async def test_touch_stores_an_earlier_clock_time(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/channels.md item 17."""
        t0 = pikku_clock.now()
        await storage.channels.add_channel(channel())
        pikku_clock.set(t0 - timedelta(seconds=60))
        await storage.channels.touch("ch-1")
        cutoff = t0 - timedelta(seconds=30)
        assert await storage.channels.prune_channels(last_seen_before=cutoff) == ["ch-1"]

    async def test_prune_channels_orders_by_last_seen_then_id(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/channels.md item 18."""
        t0 = pikku_clock.now()
        for channel_id in ("m", "k"):
            await storage.channels.add_channel(channel(channel_id))
        pikku_clock.advance(0.0005)  # the same millisecond
        await storage.channels.add_channel(channel("c"))
        pikku_clock.advance(1)
        await storage.channels.add_channel(channel("a"))
        cutoff = t0 + timedelta(seconds=2)
        assert await storage.channels.prune_channels(last_seen_before=cutoff) == [
            "c",
            "k",
            "m",
            "a",
        ]

    async def test_prune_channels_with_limit_returns_the_oldest_first_in_batches(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/channels.md item 18."""
        t0 = pikku_clock.now()
        for channel_id in ("b", "a"):
            await storage.channels.add_channel(channel(channel_id))
        pikku_clock.advance(1)
        await storage.channels.add_channel(channel("0"))
        cutoff = t0 + timedelta(seconds=2)
        assert await storage.channels.prune_channels(last_seen_before=cutoff, limit=2) == [
            "a",
            "b",
        ]
        assert await storage.channels.prune_channels(last_seen_before=cutoff, limit=2) == ["0"]
        assert await storage.channels.prune_channels(last_seen_before=cutoff, limit=2) == []

    async def test_pruning_removes_subscriptions_and_keeps_fresh_channels_intact(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/channels.md item 19."""
        await storage.channels.add_channel(channel("stale"))
        await storage.eventhub.subscribe("topic", "stale")
        pikku_clock.advance(60)
        await storage.channels.add_channel(channel("fresh", opening_data=[1]))
        await storage.channels.set_user_session("fresh", {"u": 1})
        await storage.eventhub.subscribe("topic", "fresh")
        await storage.eventhub.subscribe("other", "fresh")
        cutoff = pikku_clock.now() - timedelta(seconds=30)
        assert await storage.channels.prune_channels(last_seen_before=cutoff) == ["stale"]
        assert await storage.eventhub.get_channel_ids_for_topic("topic") == ["fresh"]
        assert await storage.eventhub.get_channel_ids_for_topic("other") == ["fresh"]
        assert await storage.eventhub.unsubscribe("topic", "stale") is False
        got = await storage.channels.get_channel_and_session("fresh")
        assert got == read("fresh", opening_data=[1], session={"u": 1})

    async def test_prune_channels_returns_empty_when_nothing_is_stale(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/channels.md item 19."""
        assert await storage.channels.prune_channels(last_seen_before=pikku_clock.now()) == []
        await storage.channels.add_channel(channel())
        assert await storage.channels.prune_channels(last_seen_before=pikku_clock.now()) == []
        assert await storage.channels.get_channel_and_session("ch-1") == read()

    @pytest.mark.parametrize(
        "bad",
        [
            pytest.param(datetime(2026, 1, 2), id="naive"),  # the bad input
            pytest.param("2026-01-02T00:00:00Z", id="str"),
            pytest.param(date(2026, 1, 2), id="date"),
            pytest.param(1767312000, id="int"),
            pytest.param(None, id="none"),
        ],
    )
    async def test_prune_channels_rejects_a_cutoff_that_is_not_aware_and_removes_nothing(
        self, storage: Storage, bad: object
    ) -> None:
        """docs/services/channels.md item 20 (bad input)."""
        await storage.channels.add_channel(channel())
        with pytest.raises(InvalidValue):
            await storage.channels.prune_channels(last_seen_before=unchecked(bad))
        assert await storage.channels.get_channel_and_session("ch-1") == read()

    @pytest.mark.parametrize("limit", [0, -1, True, 1.5, "2"])
    async def test_prune_channels_rejects_a_bad_limit_and_removes_nothing(
        self, storage: Storage, pikku_clock: ManualClock, limit: object
    ) -> None:
        """docs/services/channels.md item 20 (bad input)."""
        await storage.channels.add_channel(channel())
        cutoff = pikku_clock.now() + DAY
        with pytest.raises(InvalidValue):
            await storage.channels.prune_channels(last_seen_before=cutoff, limit=unchecked(limit))
        assert await storage.channels.get_channel_and_session("ch-1") == read()

    async def test_prune_channels_treats_a_non_utc_cutoff_as_its_utc_instant(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/channels.md item 20."""
        plus_two = timezone(timedelta(hours=2))
        t0 = pikku_clock.now()
        await storage.channels.add_channel(channel())
        same_instant = t0.astimezone(plus_two)
        assert await storage.channels.prune_channels(last_seen_before=same_instant) == []
        later = (t0 + ms(1)).astimezone(plus_two)
        assert await storage.channels.prune_channels(last_seen_before=later) == ["ch-1"]

    async def test_prune_channels_drops_sub_millisecond_parts_of_the_cutoff(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/channels.md item 20."""
        t0 = pikku_clock.now()
        await storage.channels.add_channel(channel())
        cutoff = t0 + timedelta(microseconds=500)
        assert await storage.channels.prune_channels(last_seen_before=cutoff) == []
        assert await storage.channels.get_channel_and_session("ch-1") == read()

    # -- 47, 50-52: concurrency ---------------------------------------------------------------

    async def test_concurrent_adds_of_one_id_let_exactly_one_succeed(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 47."""
        other = await storage_factory()
        stores = (storage.channels, other.channels)
        results = await asyncio.gather(
            *(stores[i % 2].add_channel(channel(name=f"n{i}")) for i in range(20)),
            return_exceptions=True,
        )
        assert sum(result is None for result in results) == 1
        assert all(result is None or isinstance(result, ConflictError) for result in results)
        winner = results.index(None)
        assert await storage.channels.get_channel_and_session("ch-1") == read(name=f"n{winner}")

    async def test_concurrent_session_writes_leave_exactly_one_whole_value(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """docs/concepts.md#concurrency item 50."""
        other = await storage_factory()
        await storage.channels.add_channel(channel())
        sessions: list[dict[str, JsonValue]] = [{f"k{i}": i, "writer": i} for i in range(10)]
        stores = (storage.channels, other.channels)
        await asyncio.gather(
            *(stores[i % 2].set_user_session("ch-1", s) for i, s in enumerate(sessions))
        )
        got = await storage.channels.get_channel_and_session("ch-1")
        assert got.session in sessions

    async def test_concurrent_prunes_return_disjoint_lists_covering_the_stale_set(
        self, storage: Storage, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """docs/concepts.md#concurrency item 51."""
        other = await storage_factory()
        stale = [f"stale-{i:02}" for i in range(12)]
        for channel_id in stale:
            await storage.channels.add_channel(channel(channel_id))
        pikku_clock.advance(60)
        await storage.channels.add_channel(channel("fresh"))
        cutoff = pikku_clock.now() - timedelta(seconds=30)
        stores = (storage.channels, other.channels)
        results = await asyncio.gather(
            *(stores[i % 2].prune_channels(last_seen_before=cutoff, limit=5) for i in range(4))
        )
        flat = [channel_id for result in results for channel_id in result]
        assert len(flat) == len(set(flat))
        assert sorted(flat) == stale
        assert await storage.channels.get_channel_and_session("fresh") == read("fresh")

    async def test_touch_racing_prune_agrees_with_the_outcome(
        self, storage: Storage, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """docs/concepts.md#concurrency item 52."""
        other = await storage_factory()
        for round_ in range(20):
            channel_id = f"ch-{round_}"
            await storage.channels.add_channel(channel(channel_id))
            pikku_clock.advance(60)
            cutoff = pikku_clock.now() - timedelta(seconds=30)
            touched, pruned = await asyncio.gather(
                storage.channels.touch(channel_id),
                other.channels.prune_channels(last_seen_before=cutoff),
                return_exceptions=True,
            )
            assert touched is None or isinstance(touched, ChannelNotFound)
            assert isinstance(pruned, list)
            try:
                await storage.channels.get_channel_and_session(channel_id)
                gone = False
            except ChannelNotFound:
                gone = True
            assert (channel_id in pruned) is isinstance(touched, ChannelNotFound) is gone
            await storage.channels.remove_channels([channel_id])

    # -- 55-56: isolation and persistence -----------------------------------------------------

    async def test_channels_of_another_namespace_are_invisible(
        self, storage: Storage, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """docs/concepts.md#lifecycle-and-namespaces item 55."""
        isolated = await storage_factory(isolated=True)
        await storage.channels.add_channel(channel("ch-1", name="here"))
        await storage.channels.set_user_session("ch-1", {"u": "here"})
        await storage.channels.add_channel(channel("only-here"))
        with pytest.raises(ChannelNotFound):
            await isolated.channels.get_channel_and_session("ch-1")
        await isolated.channels.add_channel(channel("ch-1", name="there"))
        assert await isolated.channels.get_channel_and_session("ch-1") == read(name="there")
        cutoff = pikku_clock.now() + DAY
        assert await isolated.channels.prune_channels(last_seen_before=cutoff) == ["ch-1"]
        got = await storage.channels.get_channel_and_session("ch-1")
        assert got == read(name="here", session={"u": "here"})

    @requires(Capability.PERSISTENT)
    async def test_second_instance_sees_channels_and_sessions(
        self, storage: Storage, storage_factory: StorageFactory, pikku_clock: ManualClock
    ) -> None:
        """docs/concepts.md#lifecycle-and-namespaces item 56."""
        await storage.channels.add_channel(channel(opening_data={"v": [1, 2.5]}))
        await storage.channels.set_user_session("ch-1", {"u": 1})
        other = await storage_factory()
        got = await other.channels.get_channel_and_session("ch-1")
        assert got == read(opening_data={"v": [1, 2.5]}, session={"u": 1})
        cutoff = pikku_clock.now() + ms(1)
        assert await other.channels.prune_channels(last_seen_before=cutoff) == ["ch-1"]
