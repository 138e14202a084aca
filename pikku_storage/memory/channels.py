"""In-memory `ChannelStore` and `EventHubStore` over one shared `ChannelState` (see
docs/operations.md#storage-layout)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from pikku_storage.clock import Clock, to_epoch_ms
from pikku_storage.codec import JsonValue, decode
from pikku_storage.errors import ChannelNotFound, ConflictError
from pikku_storage.interfaces import ChannelStore, EventHubStore
from pikku_storage.records import ChannelAndSession

__all__ = ["ChannelState", "InMemoryChannelStore", "InMemoryEventHubStore"]


@dataclass(slots=True)
class _ChannelRow:
    name: str
    opening: str  # codec JSON text
    last_seen_ms: int


@dataclass(slots=True)
class ChannelState:
    """One namespace of channels, shared by a channel store and its event hub store.

    Payloads are kept as codec text, so nothing stored aliases a caller's object. `seen` is
    sorted by (`last_seen_ms`, channel id), the prune order; each topic's subscribers are kept
    sorted, the order `get_channel_ids_for_topic` returns (so a read is a copy, not a sort);
    `channel_topics` is the internal channel -> topics index that lets a removal drop every
    subscription (see docs/operations.md#storage-layout).
    """

    channels: dict[str, _ChannelRow] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)  # absent: session None
    seen: list[tuple[int, str]] = field(default_factory=list)
    topics: dict[str, list[str]] = field(default_factory=dict)
    channel_topics: dict[str, set[str]] = field(default_factory=dict)

    def set_seen(self, channel_id: str, row: _ChannelRow, last_seen_ms: int) -> None:
        """Move the channel's entry in `seen` to `last_seen_ms`."""
        self._drop_seen(channel_id, row.last_seen_ms)
        row.last_seen_ms = last_seen_ms
        bisect.insort(self.seen, (last_seen_ms, channel_id))

    def remove(self, channel_id: str) -> bool:
        """Delete the channel with its session, liveness entry and subscriptions."""
        row = self.channels.pop(channel_id, None)
        if row is None:
            return False
        self.sessions.pop(channel_id, None)
        self._drop_seen(channel_id, row.last_seen_ms)
        for topic in self.channel_topics.pop(channel_id, set()):
            self._drop_subscriber(topic, channel_id)
        return True

    def subscribe(self, topic: str, channel_id: str) -> bool:
        if channel_id not in self.channels:
            return False
        topics = self.channel_topics.setdefault(channel_id, set())
        if topic not in topics:  # the set answers "already subscribed" without a search
            topics.add(topic)
            bisect.insort(self.topics.setdefault(topic, []), channel_id)
        return True

    def unsubscribe(self, topic: str, channel_id: str) -> bool:
        if topic not in self.channel_topics.get(channel_id, ()):
            return False
        self._drop_subscriber(topic, channel_id)
        topics = self.channel_topics[channel_id]
        topics.discard(topic)
        if not topics:
            del self.channel_topics[channel_id]
        return True

    def _drop_seen(self, channel_id: str, last_seen_ms: int) -> None:
        index = bisect.bisect_left(self.seen, (last_seen_ms, channel_id))
        if index < len(self.seen) and self.seen[index] == (last_seen_ms, channel_id):
            del self.seen[index]

    def _drop_subscriber(self, topic: str, channel_id: str) -> None:
        subscribers = self.topics[topic]
        del subscribers[bisect.bisect_left(subscribers, channel_id)]
        # a topic exists only while it has subscribers (docs/services/eventhub.md)
        if not subscribers:
            del self.topics[topic]


class InMemoryChannelStore(ChannelStore):
    """Channels in process memory; every hook runs without an `await`, so each is atomic."""

    def __init__(self, state: ChannelState | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self._state = state if state is not None else ChannelState()

    async def _add_channel(
        self, channel_id: str, channel_name: str, opening_data: str, now: datetime
    ) -> None:
        state = self._state
        if channel_id in state.channels:
            raise ConflictError.channel(channel_id)
        row = _ChannelRow(name=channel_name, opening=opening_data, last_seen_ms=to_epoch_ms(now))
        state.channels[channel_id] = row
        bisect.insort(state.seen, (row.last_seen_ms, channel_id))

    async def _remove_channels(self, channel_ids: list[str]) -> None:
        for channel_id in channel_ids:
            self._state.remove(channel_id)

    async def _set_user_session(self, channel_id: str, session: str | None) -> None:
        state = self._state
        if channel_id not in state.channels:
            raise ChannelNotFound(channel_id)
        if session is None:
            state.sessions.pop(channel_id, None)
        else:
            state.sessions[channel_id] = session

    async def _get_channel_and_session(self, channel_id: str) -> ChannelAndSession | None:
        row = self._state.channels.get(channel_id)
        if row is None:
            return None
        session = self._state.sessions.get(channel_id)
        return ChannelAndSession(
            channel_id=channel_id,
            channel_name=row.name,
            opening_data=decode(row.opening),
            session=None if session is None else cast(dict[str, JsonValue], decode(session)),
        )

    async def _touch(self, channel_id: str, now: datetime) -> None:
        row = self._state.channels.get(channel_id)
        if row is None:
            raise ChannelNotFound(channel_id)
        self._state.set_seen(channel_id, row, to_epoch_ms(now))

    async def _prune_channels(self, cutoff: datetime, limit: int | None) -> list[str]:
        state = self._state
        cutoff_ms = to_epoch_ms(cutoff)
        end = bisect.bisect_left(state.seen, (cutoff_ms,))  # strictly before the cutoff
        if limit is not None:
            end = min(end, limit)
        pruned = [channel_id for _, channel_id in state.seen[:end]]
        for channel_id in pruned:
            state.remove(channel_id)
        return pruned


class InMemoryEventHubStore(EventHubStore):
    """Subscriptions kept in the `ChannelState` of `channel_store` (see
    docs/services/eventhub.md)."""

    def __init__(self, channel_store: InMemoryChannelStore) -> None:
        super().__init__(clock=channel_store.clock)
        self._state = channel_store._state

    async def _subscribe(self, topic: str, channel_id: str) -> bool:
        return self._state.subscribe(topic, channel_id)

    async def _unsubscribe(self, topic: str, channel_id: str) -> bool:
        return self._state.unsubscribe(topic, channel_id)

    async def _get_channel_ids_for_topic(self, topic: str) -> list[str]:
        return list(self._state.topics.get(topic, ()))  # sorted: the interface's sort is linear
