"""`SqlAlchemyChannelStore` and `SqlAlchemyEventHubStore` on one namespace's tables.

Removals and prunes lock the channel rows, then delete subscriptions explicitly before the
channels, so correctness never depends on foreign-key enforcement; `subscribe` checks the
channel with a locking read in the same transaction as its idempotent insert (see
docs/services/channels.md, docs/services/eventhub.md, docs/operations.md#storage-layout).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from pikku_storage.errors import ChannelNotFound, ConflictError
from pikku_storage.interfaces.channels import ChannelStore, EventHubStore
from pikku_storage.records import ChannelAndSession
from pikku_storage.sqlalchemy import _rows
from pikku_storage.sqlalchemy._connection import SqlAlchemyService, chunks
from pikku_storage.sqlalchemy._errors import is_unique_violation

__all__ = ["SqlAlchemyChannelStore", "SqlAlchemyEventHubStore"]


class SqlAlchemyChannelStore(SqlAlchemyService, ChannelStore):
    """WebSocket channels and their sessions through SQLAlchemy (docs/services/channels.md,
    docs/operations.md#storage-layout).

    Its `init()` also creates the event hub's table (one migration covers both).
    """

    async def _add_channel(
        self, channel_id: str, channel_name: str, opening_data: str, now: datetime
    ) -> None:
        stmt = self._db.tables.channels.insert().values(
            channel_id=channel_id,
            channel_name=channel_name,
            opening_data=opening_data,
            user_session=None,
            last_seen=now,
        )

        def body(conn: Connection) -> None:
            try:
                conn.execute(stmt)
            except Exception as error:
                if is_unique_violation(error):
                    raise ConflictError.channel(channel_id) from error
                raise

        await self._db.write(body)

    def _remove(self, conn: Connection, channel_ids: Sequence[str]) -> None:
        """Delete subscriptions, then channels; the channel rows are locked first."""
        channels, subs = self._db.tables.channels, self._db.tables.channel_subscriptions
        ops = self._db.ops
        ops.lock_keys(conn, channels.c.channel_id, channel_ids)
        ops.delete_keys(conn, subs.c.channel_id, channel_ids)
        ops.delete_keys(conn, channels.c.channel_id, channel_ids)

    async def _remove_channels(self, channel_ids: list[str]) -> None:
        def body(conn: Connection) -> None:
            self._remove(conn, channel_ids)

        await self._db.write(body)

    async def _set_user_session(self, channel_id: str, session: str | None) -> None:
        channels = self._db.tables.channels
        stmt = (
            channels.update()
            .where(channels.c.channel_id == channel_id)
            .values(user_session=session)
        )

        def body(conn: Connection) -> None:
            if (conn.execute(stmt)).rowcount == 0:
                raise ChannelNotFound(channel_id)

        await self._db.write(body)

    async def _get_channel_and_session(self, channel_id: str) -> ChannelAndSession | None:
        channels = self._db.tables.channels
        query = select(channels).where(channels.c.channel_id == channel_id)

        def body(conn: Connection) -> ChannelAndSession | None:
            row = (conn.execute(query)).first()
            return None if row is None else _rows.channel_and_session(row)

        return await self._db.read(body)

    async def _touch(self, channel_id: str, now: datetime) -> None:
        channels = self._db.tables.channels
        stmt = channels.update().where(channels.c.channel_id == channel_id).values(last_seen=now)

        def body(conn: Connection) -> None:
            if (conn.execute(stmt)).rowcount == 0:
                raise ChannelNotFound(channel_id)

        await self._db.write(body)

    async def _prune_channels(self, cutoff: datetime, limit: int | None) -> list[str]:
        channels, subs = self._db.tables.channels, self._db.tables.channel_subscriptions
        stale = channels.c.last_seen < cutoff
        pick = (
            select(channels.c.channel_id)
            .where(stale)
            .order_by(channels.c.last_seen, channels.c.channel_id)
        )
        if limit is not None:
            pick = pick.limit(limit)
        # Concurrent prunes skip each other's rows, so their results are disjoint.
        pick = self._db.ops.for_update(pick, skip_locked=True)

        def body(conn: Connection) -> list[str]:
            locked = conn.execute(pick).scalars().all()
            ids: list[str] = []
            for part in chunks(locked):  # re-checked on the locked rows' latest version
                confirm = select(channels.c.channel_id).where(
                    channels.c.channel_id.in_(part), stale
                )
                kept = set((conn.execute(confirm)).scalars())
                ids.extend(channel_id for channel_id in part if channel_id in kept)
            self._db.ops.delete_keys(conn, subs.c.channel_id, ids)
            self._db.ops.delete_keys(conn, channels.c.channel_id, ids)
            return ids

        return await self._db.write(body)


class SqlAlchemyEventHubStore(SqlAlchemyService, EventHubStore):
    """Topic subscriptions over a `SqlAlchemyChannelStore`'s namespace (docs/services/eventhub.md,
    docs/operations.md#storage-layout).

    Build it on the same engine (or URL), `schema` and `table_prefix` as its channel store.
    """

    async def _subscribe(self, topic: str, channel_id: str) -> bool:
        s = self._db.statements
        exists, insert = s.channel_exists_for_share, s.subscribe
        params = {"p_topic": topic, "p_channel": channel_id}

        def body(conn: Connection) -> bool:
            if self._db.execute(conn, exists, params).first() is None:
                return False
            self._db.execute(conn, insert, params)
            return True

        return await self._db.write(body)

    async def _unsubscribe(self, topic: str, channel_id: str) -> bool:
        stmt = self._db.statements.unsubscribe
        params = {"p_topic": topic, "p_channel": channel_id}

        def body(conn: Connection) -> bool:
            return bool(self._db.execute(conn, stmt, params).rowcount == 1)

        return await self._db.write(body)

    async def _get_channel_ids_for_topic(self, topic: str) -> list[str]:
        query = self._db.statements.topic_channels
        params = {"p_topic": topic}

        def body(conn: Connection) -> list[str]:
            return list(self._db.execute(conn, query, params).scalars().all())

        return await self._db.read(body)
