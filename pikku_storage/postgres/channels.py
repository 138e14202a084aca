"""`PgChannelStore` and `PgEventHubStore`: channels and topic subscriptions (see
docs/operations.md#storage-layout).

Both stores work on the same tables of one schema; either `init()` creates them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pikku_storage.clock import Clock
from pikku_storage.errors import ChannelNotFound, ConflictError
from pikku_storage.interfaces.channels import ChannelStore, EventHubStore
from pikku_storage.postgres import _rows
from pikku_storage.postgres import _sql_channels as q
from pikku_storage.postgres._connection import (
    DEFAULT_SCHEMA,
    Conn,
    PgDatabase,
    PgPool,
    execute,
    fetch_all,
    fetch_one,
)
from pikku_storage.postgres._errors import is_unique_violation
from pikku_storage.postgres._statements import Statement, compose_statements
from pikku_storage.records import ChannelAndSession

__all__ = ["PgChannelStore", "PgEventHubStore"]


@dataclass(frozen=True, slots=True)
class _ChannelStatements:
    """The channel templates of `_sql_channels`, composed once for one schema."""

    add_channel: Statement
    remove_channels: Statement
    set_user_session: Statement
    get_channel: Statement
    touch: Statement
    prune_channels: Statement


@dataclass(frozen=True, slots=True)
class _HubStatements:
    """The subscription templates of `_sql_channels`, composed once for one schema."""

    subscribe: Statement
    unsubscribe: Statement
    topic_channels: Statement


class _PgChannelsBase:
    _db: PgDatabase

    def _setup(self, pool: str | PgPool, schema: str) -> None:
        self._db = PgDatabase(pool, schema)

    async def _init(self) -> None:
        await self._db.open()

    async def _close(self) -> None:
        await self._db.close()


class PgChannelStore(_PgChannelsBase, ChannelStore):
    """`ChannelStore` on PostgreSQL; `pool` is a DSN (owned pool) or a borrowed pool."""

    def __init__(
        self, pool: str | PgPool, *, schema: str = DEFAULT_SCHEMA, clock: Clock | None = None
    ) -> None:
        super().__init__(clock=clock)
        self._setup(pool, schema)
        self._sql = compose_statements(_ChannelStatements, self._db, q, q.CHANNEL_TABLES)

    async def _add_channel(
        self, channel_id: str, channel_name: str, opening_data: str, now: datetime
    ) -> None:
        params = {
            "channel_id": channel_id,
            "channel_name": channel_name,
            "opening_data": opening_data,
            "now": now,
        }

        async def body(conn: Conn) -> None:
            await execute(conn, self._sql.add_channel, params)

        try:
            await self._db.run(body)
        except Exception as exc:
            if is_unique_violation(exc):
                raise ConflictError.channel(channel_id) from exc
            raise

    async def _remove_channels(self, channel_ids: list[str]) -> None:
        async def body(conn: Conn) -> None:
            await execute(conn, self._sql.remove_channels, {"ids": channel_ids})

        await self._db.run(body)

    async def _set_user_session(self, channel_id: str, session: str | None) -> None:
        async def body(conn: Conn) -> int:
            params = {"channel_id": channel_id, "session": session}
            return await execute(conn, self._sql.set_user_session, params)

        if await self._db.run(body) == 0:
            raise ChannelNotFound(channel_id)

    async def _get_channel_and_session(self, channel_id: str) -> ChannelAndSession | None:
        async def body(conn: Conn) -> ChannelAndSession | None:
            row = await fetch_one(conn, self._sql.get_channel, {"channel_id": channel_id})
            return None if row is None else _rows.channel_and_session(row)

        return await self._db.run(body)

    async def _touch(self, channel_id: str, now: datetime) -> None:
        async def body(conn: Conn) -> int:
            return await execute(conn, self._sql.touch, {"channel_id": channel_id, "now": now})

        if await self._db.run(body) == 0:
            raise ChannelNotFound(channel_id)

    async def _prune_channels(self, cutoff: datetime, limit: int | None) -> list[str]:
        async def body(conn: Conn) -> list[str]:
            rows = await fetch_all(
                conn, self._sql.prune_channels, {"cutoff": cutoff, "limit": limit}
            )
            rows.sort(key=lambda row: (row[1], row[0]))
            return [row[0] for row in rows]

        return await self._db.run(body)


class PgEventHubStore(_PgChannelsBase, EventHubStore):
    """`EventHubStore` on the tables of the `PgChannelStore` of the same schema."""

    def __init__(
        self, pool: str | PgPool, *, schema: str = DEFAULT_SCHEMA, clock: Clock | None = None
    ) -> None:
        super().__init__(clock=clock)
        self._setup(pool, schema)
        self._sql = compose_statements(_HubStatements, self._db, q, q.CHANNEL_TABLES)

    async def _subscribe(self, topic: str, channel_id: str) -> bool:
        async def body(conn: Conn) -> bool:
            params = {"topic": topic, "channel_id": channel_id}
            row = await fetch_one(conn, self._sql.subscribe, params)
            return row is not None and row[0] == 1

        return await self._db.run(body)

    async def _unsubscribe(self, topic: str, channel_id: str) -> bool:
        async def body(conn: Conn) -> int:
            params = {"topic": topic, "channel_id": channel_id}
            return await execute(conn, self._sql.unsubscribe, params)

        return await self._db.run(body) == 1

    async def _get_channel_ids_for_topic(self, topic: str) -> list[str]:
        async def body(conn: Conn) -> list[str]:
            return [
                row[0] for row in await fetch_all(conn, self._sql.topic_channels, {"topic": topic})
            ]

        return await self._db.run(body)
