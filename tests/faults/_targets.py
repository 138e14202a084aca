"""The private servers of the fault tests as targets: a URL, and how to stop and start it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
from psycopg import sql

from pikku_storage import ManualClock, Storage, open_storage
from tests.faults._servers import PrivatePostgres
from tests.redis._redis_support import PrivateRedis, client_of, snapshot

__all__ = ["TARGETS", "Target", "make_target"]

POOL_TIMEOUT: Final = 1.0  # PostgreSQL: how long a call waits for a connection in an outage
# name -> the conftest fixture of its server
TARGETS: Final = {
    "postgres-fast": "private_postgres",
    "postgres-immediate": "private_postgres",
    "redis-shutdown": "private_redis",
    "redis-crash": "private_redis_aof",
}


@dataclass
class Target:
    """One private server and how to take it down and bring it back."""

    name: str
    url: str
    stop: Callable[[], None]
    start: Callable[[], None]
    options: dict[str, Any] = field(default_factory=dict)

    def open(self, namespace: str, **options: Any) -> Storage:
        key = "schema" if self.url.startswith("postgresql") else "key_prefix"
        return open_storage(
            self.url, clock=ManualClock(), **{key: namespace, **self.options, **options}
        )

    async def leftovers(self, storage: Storage) -> dict[str, int]:
        """Data the namespace still holds besides its bookkeeping (version, counters)."""
        if self.url.startswith("postgresql"):
            schema: str = storage.workflows._db.schema  # type: ignore[attr-defined]  # white-box
            async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                cur = await conn.execute(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = %s AND table_name <> 'pikku_migrations'",
                    (schema,),
                )
                out = {}
                for (table,) in await cur.fetchall():
                    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
                    (n,) = await (await conn.execute(query)).fetchone()  # type: ignore[misc]
                    if n:
                        out[table] = n
                return out
        prefix: str = storage.workflows.key_prefix  # type: ignore[attr-defined]  # white-box
        keys = await snapshot(client_of(storage), prefix)
        # A lock whose release could not reach the server stays until its lease runs out: a
        # lease (a key with a TTL), not an orphan. One without a TTL would be.
        return {
            k: 1
            for k, (_, _, ttl) in keys.items()
            if k != f"{prefix}:layout"
            and not k.endswith("}:seq")
            and not (":wf:lock:" in k and ttl > 0)
        }


def _postgres(server: PrivatePostgres, mode: str) -> Target:
    return Target(
        f"postgres-{mode}",
        server.url,
        lambda: server.stop(mode),
        server.start,
        {"timeout": POOL_TIMEOUT},
    )


def _redis(server: PrivateRedis, name: str) -> Target:
    return Target(name, server.url, server.stop, server.start)


def make_target(name: str, server: PrivatePostgres | PrivateRedis) -> Target:
    """Target `name` (a key of `TARGETS`) on its server."""
    if isinstance(server, PrivatePostgres):
        return _postgres(server, name.split("-")[1])
    return _redis(server, name)
