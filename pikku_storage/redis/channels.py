"""`RedisChannelStore` and `RedisEventHubStore`: channels and topic subscriptions on Redis.

A channel is a hash, its `last_seen` a score in one sorted set, its topics a reverse-index
set; every multi-key or conditional write is one Lua script. No key has a TTL: staleness is
decided from the scores and the injected clock only. See docs/services/channels.md,
docs/services/eventhub.md, docs/operations.md#storage-layout.
"""

from __future__ import annotations

from datetime import datetime

from pikku_storage.clock import to_epoch_ms
from pikku_storage.errors import ChannelNotFound, ConflictError
from pikku_storage.interfaces.channels import ChannelStore, EventHubStore
from pikku_storage.records import ChannelAndSession
from pikku_storage.redis import _rows as rows
from pikku_storage.redis._connection import RedisService
from pikku_storage.redis._errors import translated
from pikku_storage.redis._keys import ChannelKeys

__all__ = ["RedisChannelStore", "RedisEventHubStore"]


class _RedisChannelsBase(RedisService):
    """The channel keys both channel services share (the constructor is `RedisService`'s)."""

    def _keys_ready(self) -> None:
        self._keys = ChannelKeys.of(self._prefix, self._buckets > 0)


class RedisChannelStore(_RedisChannelsBase, ChannelStore):
    """Channels with sessions and liveness on Redis (see docs/services/channels.md,
    docs/operations.md#storage-layout).

    Built from a URL it owns its client; given a client or a `RedisConnection` it borrows it.
    Pair it with a `RedisEventHubStore` on the same connection and `key_prefix`.
    """

    @translated
    async def _add_channel(
        self, channel_id: str, channel_name: str, opening_data: str, now: datetime
    ) -> None:
        k = self._keys
        created = await self._scripts(
            "ch_add_channel",
            [k.channel(channel_id), k.seen()],
            [channel_id, channel_name, opening_data, to_epoch_ms(now)],
        )
        if created != 1:
            raise ConflictError.channel(channel_id)

    @translated
    async def _remove_channels(self, channel_ids: list[str]) -> None:
        k = self._keys
        keys = [k.seen()]
        for channel_id in channel_ids:
            keys += [k.channel(channel_id), k.channel_topics(channel_id)]
        await self._scripts("ch_remove_channels", keys, [k.topic_prefix(), *channel_ids])

    @translated
    async def _set_user_session(self, channel_id: str, session: str | None) -> None:
        done = await self._scripts(
            "ch_set_session", [self._keys.channel(channel_id)], [session or ""]
        )
        if done != 1:
            raise ChannelNotFound(channel_id)

    @translated
    async def _get_channel_and_session(self, channel_id: str) -> ChannelAndSession | None:
        h = rows.pairs(await self._redis.hgetall(self._keys.channel(channel_id)))
        return rows.channel_and_session(channel_id, h) if h else None

    @translated
    async def _touch(self, channel_id: str, now: datetime) -> None:
        k = self._keys
        done = await self._scripts(
            "ch_touch", [k.channel(channel_id), k.seen()], [channel_id, to_epoch_ms(now)]
        )
        if done != 1:
            raise ChannelNotFound(channel_id)

    @translated
    async def _prune_channels(self, cutoff: datetime, limit: int | None) -> list[str]:
        k = self._keys
        removed = await self._scripts(
            "ch_prune_channels",
            [k.seen()],
            [
                to_epoch_ms(cutoff),
                "" if limit is None else limit,
                k.channel_prefix(),
                k.channel_topics_prefix(),
                k.topic_prefix(),
            ],
        )
        return [rows.text(item) for item in _items(removed)]


class RedisEventHubStore(_RedisChannelsBase, EventHubStore):
    """Topic subscriptions over the keys of a `RedisChannelStore` (see docs/services/eventhub.md,
    docs/operations.md#storage-layout)."""

    @translated
    async def _subscribe(self, topic: str, channel_id: str) -> bool:
        k = self._keys
        done = await self._scripts(
            "ch_subscribe",
            [k.channel(channel_id), k.channel_topics(channel_id), k.topic(topic)],
            [topic, channel_id],
        )
        return done == 1

    @translated
    async def _unsubscribe(self, topic: str, channel_id: str) -> bool:
        k = self._keys
        removed = await self._scripts(
            "ch_unsubscribe", [k.topic(topic), k.channel_topics(channel_id)], [topic, channel_id]
        )
        return removed == 1

    @translated
    async def _get_channel_ids_for_topic(self, topic: str) -> list[str]:
        members = await self._redis.smembers(self._keys.topic(topic))
        return rows.strings(list(members))


def _items(reply: object) -> list[object]:
    return list(reply) if isinstance(reply, list) else []
