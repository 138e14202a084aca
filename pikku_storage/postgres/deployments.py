"""`PgDeploymentService`: service discovery registrations in PostgreSQL (Spec: 03 §6.1)."""

from __future__ import annotations

from datetime import datetime

from psycopg import sql

from pikku_storage.clock import Clock
from pikku_storage.interfaces.deployments import DeploymentService
from pikku_storage.postgres import _rows
from pikku_storage.postgres import _sql_channels as q
from pikku_storage.postgres._connection import (
    DEFAULT_SCHEMA,
    Conn,
    PgDatabase,
    PgPool,
    execute,
    fetch_all,
)
from pikku_storage.records import DeploymentConfig, DeploymentInfo

__all__ = ["PgDeploymentService"]


class PgDeploymentService(DeploymentService):
    """`DeploymentService` on PostgreSQL; `pool` is a DSN (owned pool) or a borrowed pool.

    Liveness is judged in Python from the injected clock: queries receive the cutoff.
    """

    def __init__(
        self,
        pool: str | PgPool,
        *,
        schema: str = DEFAULT_SCHEMA,
        heartbeat_interval: float = 10.0,
        heartbeat_ttl: float = 30.0,
        prune_on_heartbeat: bool = True,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            heartbeat_interval=heartbeat_interval,
            heartbeat_ttl=heartbeat_ttl,
            prune_on_heartbeat=prune_on_heartbeat,
            clock=clock,
        )
        self._db = PgDatabase(pool, schema)
        self._upsert = self._q(q.UPSERT_DEPLOYMENT)
        self._delete_functions = self._q(q.DELETE_FUNCTIONS_EXCEPT)
        self._insert_functions = self._q(q.INSERT_FUNCTIONS)
        self._delete = self._q(q.DELETE_DEPLOYMENT)
        self._beat = self._q(q.HEARTBEAT)
        self._find = self._q(q.FIND_FUNCTION)
        self._list = self._q(q.LIST_DEPLOYMENTS)
        self._prune = self._q(q.PRUNE_DEPLOYMENTS)

    def _q(self, template: sql.SQL) -> sql.Composed:
        return self._db.compose(template, **q.CHANNEL_TABLES)

    async def _init(self) -> None:
        await self._db.open()

    async def _close(self) -> None:
        await self._db.close()

    async def _write_registration(
        self, conn: Conn, config: DeploymentConfig, previous_id: str | None, now: datetime
    ) -> None:
        """The statements of one registration, for a transaction the caller opened."""
        ident = {"deployment_id": config.deployment_id}
        functions = {**ident, "functions": config.functions}
        if previous_id is not None:
            await execute(conn, self._delete, {"deployment_id": previous_id})
        await execute(conn, self._upsert, {**ident, "endpoint": config.endpoint, "now": now})
        await execute(conn, self._delete_functions, functions)
        await execute(conn, self._insert_functions, functions)

    async def _register(
        self, config: DeploymentConfig, previous_id: str | None, now: datetime
    ) -> None:
        async def body(conn: Conn) -> None:
            async with conn.pipeline(), conn.transaction():
                await self._write_registration(conn, config, previous_id, now)

        await self._db.run(body)

    async def _heartbeat(self, config: DeploymentConfig, now: datetime) -> None:
        async def body(conn: Conn) -> int:
            params = {"deployment_id": config.deployment_id, "now": now}
            return await execute(conn, self._beat, params)

        if await self._db.run(body) == 0:  # vanished (pruned, deleted): register again
            await self._register(config, None, now)

    async def _unregister(self, deployment_id: str) -> None:
        async def body(conn: Conn) -> None:
            await execute(conn, self._delete, {"deployment_id": deployment_id})

        await self._db.run(body)

    async def _find_function(self, name: str, cutoff: datetime) -> list[DeploymentInfo]:
        async def body(conn: Conn) -> list[DeploymentInfo]:
            rows = await fetch_all(conn, self._find, {"name": name, "cutoff": cutoff})
            return [_rows.deployment_info(row) for row in rows]

        return await self._db.run(body)

    async def _list_deployments(self, cutoff: datetime) -> list[DeploymentInfo]:
        async def body(conn: Conn) -> list[DeploymentInfo]:
            rows = await fetch_all(conn, self._list, {"cutoff": cutoff})
            return [_rows.deployment_info(row) for row in rows]

        return await self._db.run(body)

    async def _prune_deployments(self, cutoff: datetime) -> list[str]:
        async def body(conn: Conn) -> list[str]:
            return [row[0] for row in await fetch_all(conn, self._prune, {"cutoff": cutoff})]

        return await self._db.run(body)
