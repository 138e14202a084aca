"""Provider of the `postgres-pgbouncer` backend: the postgres contract through PgBouncer.

Data connections go through PgBouncer in transaction pooling mode (`PIKKU_TEST_PGBOUNCER_URL`)
with `prepare_threshold=None`; workflow locks use `lock_url`, a direct URL of the server behind
it, found by asking the server its own address through the pooler. Schemas are created and
emptied on that direct URL too, as the `postgres` provider does (docs/contract.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pikku_storage import Clock, Storage
from pikku_storage.postgres import open_storage
from pikku_testing._provider_postgres import STORAGE_DEFAULTS, PostgresProvider
from pikku_testing.providers import Namespace, NamespaceRequest

__all__ = ["PgBouncerProvider", "direct_url"]

_SERVER: Final = sql.SQL("SELECT host(inet_server_addr()), inet_server_port(), current_database()")


async def direct_url(pooled_url: str) -> str:
    """The URL of the PostgreSQL server behind the pooler at `pooled_url` (same user and
    options, the server's own address, port and database)."""
    async with await psycopg.AsyncConnection.connect(
        pooled_url, autocommit=True, prepare_threshold=None
    ) as conn:
        cur = await conn.execute(_SERVER)
        row = await cur.fetchone()
    if row is None or row[0] is None:
        raise RuntimeError(f"the server behind {pooled_url} is not reached over TCP")
    params = dict(conninfo_to_dict(pooled_url))
    params.update(host=str(row[0]), port=str(row[1]), dbname=str(row[2]))
    return make_conninfo("", **params)


class PgBouncerProvider(PostgresProvider):
    """Schemas `pikku_test_<worker>_<label>` on the server behind PgBouncer, used through it."""

    name = "postgres-pgbouncer"
    server = "pgbouncer"

    def __init__(self) -> None:
        super().__init__()
        self._direct: dict[str, str] = {}  # pooler URL -> the server's direct URL

    @asynccontextmanager
    async def namespace(self, request: NamespaceRequest) -> AsyncIterator[Namespace]:
        pooled = request.server_url
        if pooled is None:
            raise ValueError("the postgres-pgbouncer provider needs a PgBouncer URL")
        if pooled not in self._direct:
            self._direct[pooled] = await direct_url(pooled)
        direct = self._direct[pooled]
        schema = await self._take(direct, f"pikku_test_{request.worker}_{request.label}")
        options: dict[str, object] = {
            "schema": schema,
            "lock_url": direct,
            "prepare_threshold": None,
        }
        try:
            yield Namespace(
                provider=self,
                open_args=(pooled, options),
                state={"url": pooled, "schema": schema, "lock_url": direct},
            )
        finally:
            await self._give_back(direct, schema)

    def make_storage(self, namespace: Namespace, clock: Clock, **options: object) -> Storage:
        url, schema = namespace.state["url"], namespace.state["schema"]
        lock_url = namespace.state["lock_url"]
        assert isinstance(url, str)
        assert isinstance(schema, str)
        assert isinstance(lock_url, str)
        merged = {**STORAGE_DEFAULTS, "lock_url": lock_url, "prepare_threshold": None, **options}
        return open_storage(url, schema=schema, clock=clock, **merged)  # type: ignore[arg-type]  # options are checked by open_storage
