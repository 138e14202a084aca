"""`PgDeploymentService`: service discovery registrations in PostgreSQL (see
docs/operations.md#storage-layout)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pikku_storage.clock import Clock
from pikku_storage.interfaces.deployments import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_HEARTBEAT_TTL,
    DeploymentService,
)
from pikku_storage.postgres import _rows
from pikku_storage.postgres import _sql_channels as q
from pikku_storage.postgres._connection import (
    DEFAULT_SCHEMA,
    Conn,
    PgDatabase,
    PgPool,
    execute,
    fetch_all,
    one_trip,
)
from pikku_storage.postgres._statements import Statement, compose_statements
from pikku_storage.records import DeploymentConfig, DeploymentInfo

__all__ = ["PgDeploymentService"]


@dataclass(frozen=True, slots=True)
class _Statements:
    """The deployment templates of `_sql_channels`, composed once for one schema."""

    upsert_deployment: Statement
    delete_functions_except: Statement
    insert_functions: Statement
    delete_deployment: Statement
    heartbeat: Statement
    find_function: Statement
    list_deployments: Statement
    prune_deployments: Statement


class PgDeploymentService(DeploymentService):
    """`DeploymentService` on PostgreSQL; `pool` is a DSN (owned pool) or a borrowed pool.

    Liveness is judged in Python from the injected clock: queries receive the cutoff.
    """

    def __init__(
        self,
        pool: str | PgPool,
        *,
        schema: str = DEFAULT_SCHEMA,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_ttl: float = DEFAULT_HEARTBEAT_TTL,
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
        self._sql = compose_statements(_Statements, self._db, q, q.CHANNEL_TABLES)

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
            await execute(conn, self._sql.delete_deployment, {"deployment_id": previous_id})
        await execute(
            conn, self._sql.upsert_deployment, {**ident, "endpoint": config.endpoint, "now": now}
        )
        await execute(conn, self._sql.delete_functions_except, functions)
        await execute(conn, self._sql.insert_functions, functions)

    async def _register(
        self, config: DeploymentConfig, previous_id: str | None, now: datetime
    ) -> None:
        async def body(conn: Conn) -> None:
            async with one_trip(conn):
                await self._write_registration(conn, config, previous_id, now)

        await self._db.run(body)

    async def _heartbeat(self, config: DeploymentConfig, now: datetime) -> None:
        async def body(conn: Conn) -> int:
            params = {"deployment_id": config.deployment_id, "now": now}
            return await execute(conn, self._sql.heartbeat, params)

        if await self._db.run(body) == 0:  # vanished (pruned, deleted): register again
            await self._register(config, None, now)

    async def _unregister(self, deployment_id: str) -> None:
        async def body(conn: Conn) -> None:
            await execute(conn, self._sql.delete_deployment, {"deployment_id": deployment_id})

        await self._db.run(body)

    async def _find_function(self, name: str, cutoff: datetime) -> list[DeploymentInfo]:
        async def body(conn: Conn) -> list[DeploymentInfo]:
            rows = await fetch_all(conn, self._sql.find_function, {"name": name, "cutoff": cutoff})
            return [_rows.deployment_info(row) for row in rows]

        return await self._db.run(body)

    async def _list_deployments(self, cutoff: datetime) -> list[DeploymentInfo]:
        async def body(conn: Conn) -> list[DeploymentInfo]:
            rows = await fetch_all(conn, self._sql.list_deployments, {"cutoff": cutoff})
            return [_rows.deployment_info(row) for row in rows]

        return await self._db.run(body)

    async def _prune_deployments(self, cutoff: datetime) -> list[str]:
        async def body(conn: Conn) -> list[str]:
            return [
                row[0]
                for row in await fetch_all(conn, self._sql.prune_deployments, {"cutoff": cutoff})
            ]

        return await self._db.run(body)
