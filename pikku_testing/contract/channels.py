"""Contract of `ChannelStore` and `EventHubStore` (see docs/services/channels.md,
docs/services/eventhub.md, docs/contract.md, 47-52, 55-56).

Every test names its spec item in its docstring. A test marked "(bad input)" covers a class of
invalid argument the spec rejects (docs/concepts.md#values) and shows, through the public API, that
nothing was
written. Liveness, concurrency and isolation tests of `ChannelStore` live in
`_channels_liveness.py`, the event hub's in `_eventhub.py`; both classes are exported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Final

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.codec import JsonValue
from pikku_storage.errors import ChannelNotFound, ConflictError, InvalidValue, NotFoundError
from pikku_testing.contract._builders_channels import (
    BAD_IDS,
    DAY,
    LONG,
    NON_JSON,
    ODD_IDS,
    assert_same_json,
    channel,
    ms,
    read,
    unchecked,
)
from pikku_testing.contract._channels_liveness import ChannelLivenessContract
from pikku_testing.contract._eventhub import EventHubStoreContract
from pikku_testing.contract._limits import ChannelLimitTests

__all__ = ["ChannelStoreContract", "EventHubStoreContract"]

OPENING_DATA: Final = [
    pytest.param(None, id="none"),
    pytest.param({}, id="empty-dict"),
    pytest.param([], id="empty-list"),
    pytest.param(0, id="zero"),
    pytest.param(0.0, id="zero-float"),
    pytest.param(False, id="false"),
    pytest.param("", id="empty-str"),
    pytest.param(2**70, id="big-int"),
    pytest.param(2.5e20, id="big-float"),
    pytest.param(-1.5, id="negative-float"),
    pytest.param(
        {"ключ": ["värde", {"😀": [1, 2.0, None, True, "\x00"]}], "n": {"a": {"b": []}}},
        id="nested-unicode",
    ),
]


class ChannelStoreContract(ChannelLimitTests, ChannelLivenessContract):
    """`ChannelStore`: channels, sessions and liveness (docs/services/channels.md)."""

    # -- 1-3: add and read -------------------------------------------------------------------

    async def test_add_channel_then_get_returns_the_channel_without_session(
        self, storage: Storage
    ) -> None:
        """docs/services/channels.md item 1."""
        await storage.channels.add_channel(channel(opening_data={"room": "lobby"}))
        got = await storage.channels.get_channel_and_session("ch-1")
        assert got == read(opening_data={"room": "lobby"}, session=None)

    async def test_opening_data_omitted_reads_none(self, storage: Storage) -> None:
        """docs/services/channels.md item 2."""
        await storage.channels.add_channel(channel())
        assert (await storage.channels.get_channel_and_session("ch-1")).opening_data is None

    @pytest.mark.parametrize("value", OPENING_DATA)
    async def test_opening_data_round_trips_with_its_type(
        self, storage: Storage, value: JsonValue
    ) -> None:
        """docs/services/channels.md item 2."""
        await storage.channels.add_channel(channel(opening_data=value))
        got = await storage.channels.get_channel_and_session("ch-1")
        assert got == read(opening_data=value)
        assert_same_json(got.opening_data, value)

    @pytest.mark.parametrize("value", NON_JSON)
    async def test_add_channel_rejects_non_json_opening_data_and_stores_nothing(
        self, storage: Storage, value: object
    ) -> None:
        """docs/services/channels.md item 3 (bad input)."""
        with pytest.raises(InvalidValue):
            await storage.channels.add_channel(channel(opening_data=unchecked(value)))
        with pytest.raises(ChannelNotFound):
            await storage.channels.get_channel_and_session("ch-1")

    # -- 4-7: ids -----------------------------------------------------------------------------

    @pytest.mark.parametrize("bad", BAD_IDS)
    async def test_add_channel_rejects_a_bad_channel_id_and_stores_nothing(
        self, storage: Storage, pikku_clock: ManualClock, bad: object
    ) -> None:
        """docs/services/channels.md item 4 (bad input)."""
        with pytest.raises(InvalidValue):
            await storage.channels.add_channel(channel(unchecked(bad)))
        cutoff = pikku_clock.now() + DAY
        assert await storage.channels.prune_channels(last_seen_before=cutoff) == []

    @pytest.mark.parametrize("bad", BAD_IDS)
    async def test_add_channel_rejects_a_bad_channel_name_and_stores_nothing(
        self, storage: Storage, bad: object
    ) -> None:
        """docs/services/channels.md item 4 (bad input)."""
        with pytest.raises(InvalidValue):
            await storage.channels.add_channel(channel(name=unchecked(bad)))
        with pytest.raises(ChannelNotFound):
            await storage.channels.get_channel_and_session("ch-1")

    async def test_add_channel_rejects_a_value_that_is_not_a_channel(
        self, storage: Storage
    ) -> None:
        """docs/services/channels.md item 4 (bad input: wrong type)."""
        record = {"channel_id": "ch-1", "channel_name": "chat", "opening_data": None}
        with pytest.raises(InvalidValue):
            await storage.channels.add_channel(unchecked(record))
        with pytest.raises(ChannelNotFound):
            await storage.channels.get_channel_and_session("ch-1")

    @pytest.mark.parametrize("bad", BAD_IDS)
    async def test_other_methods_raise_invalid_value_not_channel_not_found_for_a_bad_id(
        self, storage: Storage, bad: object
    ) -> None:
        """docs/services/channels.md item 4 (bad input)."""
        await storage.channels.add_channel(channel())
        with pytest.raises(InvalidValue):
            await storage.channels.get_channel_and_session(unchecked(bad))
        with pytest.raises(InvalidValue):
            await storage.channels.set_user_session(unchecked(bad), {"k": 1})
        with pytest.raises(InvalidValue):
            await storage.channels.touch(unchecked(bad))
        with pytest.raises(InvalidValue):
            await storage.channels.remove_channels(["ch-1", unchecked(bad)])
        assert await storage.channels.get_channel_and_session("ch-1") == read()

    async def test_ids_and_names_of_255_characters_work_in_every_method(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/channels.md item 4."""
        await storage.channels.add_channel(channel(LONG, name="n" * 255))
        await storage.channels.set_user_session(LONG, {"k": 1})
        await storage.channels.touch(LONG)
        got = await storage.channels.get_channel_and_session(LONG)
        assert got == read(LONG, name="n" * 255, session={"k": 1})
        cutoff = pikku_clock.now() + ms(1)
        assert await storage.channels.prune_channels(last_seen_before=cutoff) == [LONG]
        await storage.channels.add_channel(channel(LONG))
        await storage.channels.remove_channels([LONG])
        with pytest.raises(ChannelNotFound):
            await storage.channels.get_channel_and_session(LONG)

    async def test_similar_ids_are_distinct_channels(self, storage: Storage) -> None:
        """docs/services/channels.md item 5."""
        for index, channel_id in enumerate(ODD_IDS):
            await storage.channels.add_channel(channel(channel_id, name=f"n{index}"))
            await storage.channels.set_user_session(channel_id, {"i": index})
        for index, channel_id in enumerate(ODD_IDS):
            got = await storage.channels.get_channel_and_session(channel_id)
            assert got == read(channel_id, name=f"n{index}", session={"i": index})

    async def test_similar_ids_work_in_every_method(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/channels.md item 5."""
        for channel_id in ODD_IDS:
            await storage.channels.add_channel(channel(channel_id))
            assert await storage.eventhub.subscribe("topic", channel_id) is True
        pikku_clock.advance(60)
        for channel_id in ODD_IDS[1:]:
            await storage.channels.touch(channel_id)
        cutoff = pikku_clock.now() - timedelta(seconds=30)
        assert await storage.channels.prune_channels(last_seen_before=cutoff) == [ODD_IDS[0]]
        await storage.channels.remove_channels([ODD_IDS[1]])
        assert await storage.eventhub.unsubscribe("topic", ODD_IDS[2]) is True
        listed = await storage.eventhub.get_channel_ids_for_topic("topic")
        assert listed == sorted(ODD_IDS[3:])
        for channel_id in ODD_IDS[3:]:
            got = await storage.channels.get_channel_and_session(channel_id)
            assert got == read(channel_id)

    async def test_duplicate_add_channel_raises_conflict_and_keeps_the_first(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/channels.md item 6."""
        t0 = pikku_clock.now()
        await storage.channels.add_channel(channel(opening_data={"v": 1}))
        await storage.channels.set_user_session("ch-1", {"user": "u1"})
        await storage.eventhub.subscribe("topic", "ch-1")
        pikku_clock.advance(60)
        with pytest.raises(ConflictError) as raised:
            await storage.channels.add_channel(channel(name="other", opening_data={"v": 2}))
        assert str(raised.value) == "Channel already exists: ch-1"
        got = await storage.channels.get_channel_and_session("ch-1")
        assert got == read(opening_data={"v": 1}, session={"user": "u1"})
        assert await storage.eventhub.get_channel_ids_for_topic("topic") == ["ch-1"]
        cutoff = t0 + ms(1)  # last_seen is still T0
        assert await storage.channels.prune_channels(last_seen_before=cutoff) == ["ch-1"]

    async def test_get_channel_and_session_raises_channel_not_found_for_an_unknown_id(
        self, storage: Storage
    ) -> None:
        """docs/services/channels.md item 7."""
        with pytest.raises(ChannelNotFound) as raised:
            await storage.channels.get_channel_and_session("missing")
        assert isinstance(raised.value, NotFoundError)
        assert isinstance(raised.value, LookupError)
        assert str(raised.value) == "Channel not found: missing"

    # -- 8-11: sessions -----------------------------------------------------------------------

    async def test_set_user_session_stores_a_dict_that_reads_back_equal(
        self, storage: Storage
    ) -> None:
        """docs/services/channels.md item 8."""
        session: dict[str, JsonValue] = {"user": "u1", "roles": ["a", "b"], "n": 2**70, "f": 0.0}
        await storage.channels.add_channel(channel())
        await storage.channels.set_user_session("ch-1", session)
        got = await storage.channels.get_channel_and_session("ch-1")
        assert got == read(session=session)
        assert_same_json(got.session, session)

    async def test_set_user_session_replaces_the_whole_session(self, storage: Storage) -> None:
        """docs/services/channels.md item 8."""
        await storage.channels.add_channel(channel())
        await storage.channels.set_user_session("ch-1", {"a": 1, "b": 2})
        await storage.channels.set_user_session("ch-1", {"c": 3})
        assert await storage.channels.get_channel_and_session("ch-1") == read(session={"c": 3})

    async def test_empty_session_reads_as_empty_dict(self, storage: Storage) -> None:
        """docs/services/channels.md item 8."""
        await storage.channels.add_channel(channel())
        await storage.channels.set_user_session("ch-1", {})
        got = await storage.channels.get_channel_and_session("ch-1")
        assert got == read(session={})
        assert got.session == {}

    async def test_cleared_session_reads_none_and_can_be_set_again(self, storage: Storage) -> None:
        """docs/services/channels.md item 8."""
        await storage.channels.add_channel(channel())
        await storage.channels.set_user_session("ch-1", {"a": 1})
        await storage.channels.set_user_session("ch-1", None)
        assert (await storage.channels.get_channel_and_session("ch-1")).session is None
        await storage.channels.set_user_session("ch-1", {"b": 2})
        assert await storage.channels.get_channel_and_session("ch-1") == read(session={"b": 2})

    @pytest.mark.parametrize(
        "bad",
        [
            pytest.param([1, 2], id="list"),
            pytest.param("session", id="str"),
            pytest.param(5, id="int"),
            pytest.param(1.5, id="float"),
            pytest.param(True, id="bool"),
            *NON_JSON,
        ],
    )
    async def test_set_user_session_rejects_a_bad_session_and_keeps_the_previous(
        self, storage: Storage, bad: object
    ) -> None:
        """docs/services/channels.md item 9 (bad input)."""
        await storage.channels.add_channel(channel())
        await storage.channels.set_user_session("ch-1", {"keep": True})
        with pytest.raises(InvalidValue):
            await storage.channels.set_user_session("ch-1", unchecked(bad))
        assert await storage.channels.get_channel_and_session("ch-1") == read(
            session={"keep": True}
        )

    async def test_set_user_session_on_an_unknown_id_raises_and_creates_nothing(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/channels.md item 10."""
        with pytest.raises(ChannelNotFound) as raised:
            await storage.channels.set_user_session("ch-1", {"a": 1})
        assert str(raised.value) == "Channel not found: ch-1"
        cutoff = pikku_clock.now() + DAY
        assert await storage.channels.prune_channels(last_seen_before=cutoff) == []
        await storage.channels.add_channel(channel())
        assert await storage.channels.get_channel_and_session("ch-1") == read(session=None)

    async def test_touch_on_an_unknown_id_raises_and_creates_nothing(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """docs/services/channels.md item 10."""
        with pytest.raises(ChannelNotFound) as raised:
            await storage.channels.touch("ch-1")
        assert str(raised.value) == "Channel not found: ch-1"
        cutoff = pikku_clock.now() + DAY
        assert await storage.channels.prune_channels(last_seen_before=cutoff) == []
        await storage.channels.add_channel(channel())
        assert await storage.channels.get_channel_and_session("ch-1") == read(session=None)

    async def test_mutating_a_dict_passed_to_add_channel_changes_nothing_stored(
        self, storage: Storage
    ) -> None:
        """docs/services/channels.md item 11."""
        opening: dict[str, JsonValue] = {"list": [1], "d": {"k": "v"}}
        await storage.channels.add_channel(channel(opening_data=opening))
        opening["extra"] = 1
        inner = opening["list"]
        assert isinstance(inner, list)
        inner.append(2)
        got = await storage.channels.get_channel_and_session("ch-1")
        assert got.opening_data == {"list": [1], "d": {"k": "v"}}

    async def test_mutating_a_session_passed_to_set_user_session_changes_nothing_stored(
        self, storage: Storage
    ) -> None:
        """docs/services/channels.md item 11."""
        session: dict[str, JsonValue] = {"roles": ["a"]}
        await storage.channels.add_channel(channel())
        await storage.channels.set_user_session("ch-1", session)
        session["extra"] = 1
        roles = session["roles"]
        assert isinstance(roles, list)
        roles.append("b")
        assert await storage.channels.get_channel_and_session("ch-1") == read(
            session={"roles": ["a"]}
        )

    async def test_mutating_a_read_changes_nothing_stored_and_reads_are_distinct(
        self, storage: Storage
    ) -> None:
        """docs/services/channels.md item 11."""
        await storage.channels.add_channel(channel(opening_data={"list": [1]}))
        await storage.channels.set_user_session("ch-1", {"roles": ["a"]})
        first = await storage.channels.get_channel_and_session("ch-1")
        second = await storage.channels.get_channel_and_session("ch-1")
        assert first is not second
        assert first.opening_data is not second.opening_data
        assert first.session is not second.session
        assert isinstance(first.opening_data, dict)
        assert first.session is not None
        first.opening_data["list"] = "changed"
        first.session["roles"] = "changed"
        got = await storage.channels.get_channel_and_session("ch-1")
        assert got == read(opening_data={"list": [1]}, session={"roles": ["a"]})

    # -- 12-14: removal -----------------------------------------------------------------------

    async def test_remove_channels_removes_only_the_listed_channels(self, storage: Storage) -> None:
        """docs/services/channels.md item 12."""
        for channel_id in ("ch-1", "ch-2", "ch-3"):
            await storage.channels.add_channel(channel(channel_id))
        await storage.channels.remove_channels(["ch-1", "ch-3"])
        for channel_id in ("ch-1", "ch-3"):
            with pytest.raises(ChannelNotFound):
                await storage.channels.get_channel_and_session(channel_id)
        assert await storage.channels.get_channel_and_session("ch-2") == read("ch-2")

    async def test_remove_channels_ignores_unknown_and_repeated_ids(self, storage: Storage) -> None:
        """docs/services/channels.md item 12."""
        await storage.channels.add_channel(channel("ch-1"))
        await storage.channels.add_channel(channel("ch-2"))
        await storage.channels.remove_channels(["missing", "ch-1", "ch-1", "other"])
        with pytest.raises(ChannelNotFound):
            await storage.channels.get_channel_and_session("ch-1")
        assert await storage.channels.get_channel_and_session("ch-2") == read("ch-2")

    @pytest.mark.parametrize("kind", ["list", "tuple", "set", "generator"])
    async def test_remove_channels_accepts_any_iterable(self, storage: Storage, kind: str) -> None:
        """docs/services/channels.md item 12."""
        ids = ["ch-1", "ch-2"]
        for channel_id in (*ids, "ch-3"):
            await storage.channels.add_channel(channel(channel_id))
        argument: Iterable[str]
        if kind == "list":
            argument = list(ids)
        elif kind == "tuple":
            argument = tuple(ids)
        elif kind == "set":
            argument = set(ids)
        else:
            argument = (channel_id for channel_id in ids)
        await storage.channels.remove_channels(argument)
        for channel_id in ids:
            with pytest.raises(ChannelNotFound):
                await storage.channels.get_channel_and_session(channel_id)
        assert await storage.channels.get_channel_and_session("ch-3") == read("ch-3")

    async def test_remove_channels_of_nothing_and_twice_works(self, storage: Storage) -> None:
        """docs/services/channels.md item 12."""
        await storage.channels.add_channel(channel("ch-1"))
        await storage.channels.remove_channels([])
        assert await storage.channels.get_channel_and_session("ch-1") == read("ch-1")
        await storage.channels.remove_channels(["ch-1"])
        await storage.channels.remove_channels(["ch-1"])
        with pytest.raises(ChannelNotFound):
            await storage.channels.get_channel_and_session("ch-1")

    @pytest.mark.parametrize(
        "bad",
        [
            pytest.param("ch-1", id="bare-str"),
            pytest.param(b"ch-1", id="bare-bytes"),
            pytest.param(["ch-1", ""], id="empty-id"),
            pytest.param(["ch-1", 5], id="int-id"),
            pytest.param(["ch-1", b"ch-2"], id="bytes-id"),
            pytest.param(["ch-1", "x" * 256], id="long-id"),
            pytest.param(5, id="not-iterable"),
        ],
    )
    async def test_remove_channels_rejects_bad_input_and_removes_nothing(
        self, storage: Storage, bad: object
    ) -> None:
        """docs/services/channels.md item 13 (bad input)."""
        await storage.channels.add_channel(channel("ch-1"))
        await storage.eventhub.subscribe("topic", "ch-1")
        with pytest.raises(InvalidValue):
            await storage.channels.remove_channels(unchecked(bad))
        assert await storage.channels.get_channel_and_session("ch-1") == read("ch-1")
        assert await storage.eventhub.get_channel_ids_for_topic("topic") == ["ch-1"]

    async def test_removed_channel_disappears_from_every_topic(self, storage: Storage) -> None:
        """docs/services/channels.md item 14."""
        await storage.channels.add_channel(channel("ch-1"))
        await storage.channels.add_channel(channel("ch-2"))
        for topic in ("t1", "t2"):
            await storage.eventhub.subscribe(topic, "ch-1")
            await storage.eventhub.subscribe(topic, "ch-2")
        await storage.channels.remove_channels(["ch-1"])
        assert await storage.eventhub.get_channel_ids_for_topic("t1") == ["ch-2"]
        assert await storage.eventhub.get_channel_ids_for_topic("t2") == ["ch-2"]
        assert await storage.eventhub.unsubscribe("t1", "ch-1") is False

    async def test_readded_channel_has_no_session_and_no_subscriptions(
        self, storage: Storage
    ) -> None:
        """docs/services/channels.md item 14."""
        await storage.channels.add_channel(channel(opening_data={"v": 1}))
        await storage.channels.set_user_session("ch-1", {"a": 1})
        await storage.eventhub.subscribe("topic", "ch-1")
        await storage.channels.remove_channels(["ch-1"])
        await storage.channels.add_channel(channel(name="again"))
        assert await storage.channels.get_channel_and_session("ch-1") == read(name="again")
        assert await storage.eventhub.get_channel_ids_for_topic("topic") == []
        assert await storage.eventhub.unsubscribe("topic", "ch-1") is False
