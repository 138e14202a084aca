"""`SqlAlchemyDeploymentService`: registrations and their functions in two tables.

`start` is one transaction (drop an earlier id, upsert the row, replace the function rows);
`heartbeat` stamps the row or, if it vanished, re-registers in the same transaction; stale
rows are locked, re-checked and deleted with their functions (see docs/services/deployments.md,
docs/operations.md#storage-layout).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from pikku_storage.clock import Clock
from pikku_storage.interfaces.deployments import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_HEARTBEAT_TTL,
    DeploymentService,
)
from pikku_storage.records import DeploymentConfig, DeploymentInfo
from pikku_storage.sqlalchemy import _rows
from pikku_storage.sqlalchemy._connection import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_SYNCHRONOUS,
    Bind,
    SqlAlchemyService,
    chunks,
)

__all__ = ["SqlAlchemyDeploymentService"]


class SqlAlchemyDeploymentService(SqlAlchemyService, DeploymentService):
    """Service discovery through SQLAlchemy (docs/services/deployments.md,
    docs/operations.md#storage-layout).

    Takes the connection arguments of every SQLAlchemy service, then the heartbeat options of
    `DeploymentService`. `close()` stops a started instance, then disposes an owned engine.
    """

    def __init__(
        self,
        bind: Bind,
        *,
        schema: str | None = None,
        table_prefix: str = "pikku_",
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_ttl: float = DEFAULT_HEARTBEAT_TTL,
        prune_on_heartbeat: bool = True,
        clock: Clock | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        engine_options: Mapping[str, Any] | None = None,
        synchronous: str = DEFAULT_SYNCHRONOUS,
    ) -> None:
        DeploymentService.__init__(
            self,
            heartbeat_interval=heartbeat_interval,
            heartbeat_ttl=heartbeat_ttl,
            prune_on_heartbeat=prune_on_heartbeat,
            clock=clock,
        )
        self._attach(
            bind,
            schema=schema,
            table_prefix=table_prefix,
            busy_timeout=busy_timeout,
            engine_options=engine_options,
            synchronous=synchronous,
        )

    def _delete(self, conn: Connection, deployment_ids: list[str]) -> None:
        deployments, functions = self._db.tables.deployments, self._db.tables.deployment_functions
        self._db.ops.delete_keys(conn, functions.c.deployment_id, deployment_ids)
        self._db.ops.delete_keys(conn, deployments.c.deployment_id, deployment_ids)

    def _write_registration(
        self, conn: Connection, config: DeploymentConfig, now: datetime
    ) -> None:
        deployments, functions = self._db.tables.deployments, self._db.tables.deployment_functions
        conn.execute(
            self._db.ops.upsert(
                deployments,
                {
                    "deployment_id": config.deployment_id,
                    "endpoint": config.endpoint,
                    "last_heartbeat": now,
                },
                ("deployment_id",),
                ("endpoint", "last_heartbeat"),
            )
        )
        conn.execute(functions.delete().where(functions.c.deployment_id == config.deployment_id))
        if config.functions:
            conn.execute(
                functions.insert(),
                [
                    {"function_name": name, "deployment_id": config.deployment_id}
                    for name in config.functions
                ],
            )

    async def _register(
        self, config: DeploymentConfig, previous_id: str | None, now: datetime
    ) -> None:
        def body(conn: Connection) -> None:
            if previous_id is not None:
                self._delete(conn, [previous_id])
            self._write_registration(conn, config, now)

        await self._db.write(body)

    async def _heartbeat(self, config: DeploymentConfig, now: datetime) -> None:
        stamp = self._db.statements.heartbeat
        params = {"p_deployment": config.deployment_id, "p_now": now}

        def body(conn: Connection) -> None:
            if self._db.execute(conn, stamp, params).rowcount == 0:
                self._write_registration(conn, config, now)

        await self._db.write(body)

    async def _unregister(self, deployment_id: str) -> None:
        def body(conn: Connection) -> None:
            self._delete(conn, [deployment_id])

        await self._db.write(body)

    async def _find_function(self, name: str, cutoff: datetime) -> list[DeploymentInfo]:
        query = self._db.statements.find_function
        params = {"p_name": name, "p_cutoff": cutoff}

        def body(conn: Connection) -> list[DeploymentInfo]:
            return [
                _rows.deployment_info(row) for row in self._db.execute(conn, query, params).all()
            ]

        return await self._db.read(body)

    async def _list_deployments(self, cutoff: datetime) -> list[DeploymentInfo]:
        deployments = self._db.tables.deployments
        query = select(deployments).where(deployments.c.last_heartbeat > cutoff)

        def body(conn: Connection) -> list[DeploymentInfo]:
            return [_rows.deployment_info(row) for row in conn.execute(query).all()]

        return await self._db.read(body)

    async def _prune_deployments(self, cutoff: datetime) -> list[str]:
        deployments = self._db.tables.deployments
        stale = deployments.c.last_heartbeat <= cutoff
        pick = self._db.ops.for_update(select(deployments.c.deployment_id).where(stale))

        def body(conn: Connection) -> list[str]:
            # Locked, so a concurrent heartbeat either landed first (and the re-check keeps
            # the row out of `pick`) or waits and then re-registers.
            locked = conn.execute(pick).scalars().all()
            ids: list[str] = []
            for part in chunks(locked):  # re-checked on the locked rows' latest version
                confirm = select(deployments.c.deployment_id).where(
                    deployments.c.deployment_id.in_(part), stale
                )
                ids.extend((conn.execute(confirm)).scalars())
            self._delete(conn, ids)
            return ids

        return await self._db.write(body)
