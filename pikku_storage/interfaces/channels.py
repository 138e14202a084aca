"""`ChannelStore` and `EventHubStore`: validation once, then one backend hook per call
(docs/services/channels.md, docs/services/eventhub.md)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable
from datetime import datetime

from pikku_storage import _validate as v
from pikku_storage.codec import JsonInputObject, encode, encode_object
from pikku_storage.errors import ChannelNotFound, InvalidValue
from pikku_storage.interfaces._base import Service
from pikku_storage.records import Channel, ChannelAndSession

__all__ = ["ChannelStore", "EventHubStore"]


class ChannelStore(Service):
    """WebSocket channels, their sessions and liveness (see docs/services/channels.md)."""

    async def add_channel(self, channel: Channel) -> None:
        """Create the channel with no session, `last_seen` now. Raises: `ConflictError`."""
        if not isinstance(channel, Channel):
            raise InvalidValue(f"channel must be a Channel, got {type(channel).__name__}")
        channel_id = v.identifier("channel_id", channel.channel_id)
        name = v.identifier("channel_name", channel.channel_name)
        opening = encode(channel.opening_data, "opening_data")
        await self._add_channel(channel_id, name, opening, self._now())

    async def remove_channels(self, channel_ids: Iterable[str]) -> None:
        """Remove the listed channels with their subscriptions, atomically; unknown ids ignored."""
        ids = list(dict.fromkeys(v.identifier_list("channel_ids", channel_ids)))
        if ids:
            await self._remove_channels(ids)

    async def set_user_session(self, channel_id: str, session: JsonInputObject | None) -> None:
        """Replace the whole session; `None` clears it. Raises: `ChannelNotFound`."""
        v.identifier("channel_id", channel_id)
        text = None if session is None else encode_object(session, "session")
        await self._set_user_session(channel_id, text)

    async def get_channel_and_session(self, channel_id: str) -> ChannelAndSession:
        """The channel with its session; a pure read. Raises: `ChannelNotFound`."""
        v.identifier("channel_id", channel_id)
        found = await self._get_channel_and_session(channel_id)
        if found is None:
            raise ChannelNotFound(channel_id)
        return found

    async def touch(self, channel_id: str) -> None:
        """Set `last_seen` to the clock, even backwards. Raises: `ChannelNotFound`."""
        v.identifier("channel_id", channel_id)
        await self._touch(channel_id, self._now())

    async def prune_channels(
        self, *, last_seen_before: datetime, limit: int | None = None
    ) -> list[str]:
        """Remove channels last seen strictly before the cutoff, oldest first (ties by id)."""
        cutoff = v.aware_cutoff("last_seen_before", last_seen_before)
        if limit is not None:
            limit = v.count("limit", limit)
            if limit < 1:
                raise InvalidValue(f"limit must be >= 1: {limit}")
        return await self._prune_channels(cutoff, limit)

    @abstractmethod
    async def _add_channel(
        self, channel_id: str, channel_name: str, opening_data: str, now: datetime
    ) -> None:
        """Raises `ConflictError.channel`."""

    @abstractmethod
    async def _remove_channels(self, channel_ids: list[str]) -> None:
        """Distinct, non-empty ids; channels and subscriptions in one atomic step."""

    @abstractmethod
    async def _set_user_session(self, channel_id: str, session: str | None) -> None:
        """Raises `ChannelNotFound`."""

    @abstractmethod
    async def _get_channel_and_session(self, channel_id: str) -> ChannelAndSession | None: ...

    @abstractmethod
    async def _touch(self, channel_id: str, now: datetime) -> None:
        """Raises `ChannelNotFound`."""

    @abstractmethod
    async def _prune_channels(self, cutoff: datetime, limit: int | None) -> list[str]:
        """Ids in (`last_seen`, id) order; the staleness test re-checked at removal."""


class EventHubStore(Service):
    """Topic -> channel subscriptions over one `ChannelStore`'s data (see
    docs/services/eventhub.md)."""

    async def subscribe(self, topic: str, channel_id: str) -> bool:
        """`True` when subscribed after the call; `False` (nothing stored) for no channel."""
        v.identifier("topic", topic)
        v.identifier("channel_id", channel_id)
        return await self._subscribe(topic, channel_id)

    async def unsubscribe(self, topic: str, channel_id: str) -> bool:
        """`True` iff a subscription was removed."""
        v.identifier("topic", topic)
        v.identifier("channel_id", channel_id)
        return await self._unsubscribe(topic, channel_id)

    async def get_channel_ids_for_topic(self, topic: str) -> list[str]:
        """Subscribed channel ids in code-point order; `[]` for an unknown topic."""
        return sorted(await self._get_channel_ids_for_topic(v.identifier("topic", topic)))

    @abstractmethod
    async def _subscribe(self, topic: str, channel_id: str) -> bool:
        """Existence check and insert in one atomic step."""

    @abstractmethod
    async def _unsubscribe(self, topic: str, channel_id: str) -> bool: ...

    @abstractmethod
    async def _get_channel_ids_for_topic(self, topic: str) -> list[str]: ...
